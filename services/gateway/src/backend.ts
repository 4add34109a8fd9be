import { type Dispatcher, Pool } from "undici";

/** The backend's timeouts as undici reports them (no response headers in time, a stalled body, no connection). */
const TIMEOUT_CODES: ReadonlySet<string> = new Set([
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/** Whether a backend call failed because the backend did not answer (or went silent) in time. */
export function isBackendTimeout(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && TIMEOUT_CODES.has(code);
}

/**
 * Connection to the OpenAI-compatible backend (vLLM, llama.cpp server, ...): one undici pool per
 * process, reused by the relay and the workers. Keep-alive connections (at most `maxSockets`), no
 * pipelining (one request per connection at a time: a streaming generation holds its connection).
 * `baseUrl` ends with the API prefix, e.g. http://vllm:8000/v1.
 */
export class Backend {
  readonly pool: Pool;
  /** The base URL's path without a trailing slash (e.g. `/v1`): endpoint paths are appended to it. */
  readonly basePath: string;
  /** The backend's host and port, for the relay's client span. */
  readonly hostname: string;
  readonly port: number;
  /** No response headers within this long, or this long without a byte of the body: a timeout. */
  readonly timeoutMs: number;
  /** Request headers, made once: flat name/value lists per Accept value (undici adds Host and Content-Length). */
  private readonly headers: { json: string[]; sse: string[] };

  constructor(baseUrl: string, opts: { apiKey?: string; maxSockets?: number; timeoutMs?: number } = {}) {
    const u = new URL(baseUrl);
    this.basePath = u.pathname.replace(/\/+$/, "");
    this.hostname = u.hostname;
    this.port = u.port ? Number(u.port) : u.protocol === "https:" ? 443 : 80;
    this.timeoutMs = opts.timeoutMs ?? 300_000;
    const fixed = [
      "content-type",
      "application/json",
      ...(opts.apiKey ? ["authorization", `Bearer ${opts.apiKey}`] : []),
    ];
    this.headers = {
      json: [...fixed, "accept", "application/json"],
      sse: [...fixed, "accept", "text/event-stream"],
    };
    this.pool = new Pool(u.origin, {
      connections: opts.maxSockets ?? 512,
      pipelining: 1,
      headersTimeout: this.timeoutMs,
      bodyTimeout: this.timeoutMs,
      // Idle connections are kept this long, or as long as the backend's Keep-Alive hint says, less 2 s.
      keepAliveTimeout: 10_000,
      connect: { timeout: Math.min(10_000, this.timeoutMs) },
    });
  }

  /**
   * Starts a POST to `path` (below the base URL, e.g. `/chat/completions`) with a ready-made body;
   * `handler` gets the response as it arrives (undici's dispatch handler: headers, chunks, end, error).
   * `extra`: more headers as a flat name/value list (the trace context when tracing is on).
   */
  dispatch(
    path: string,
    body: Buffer,
    sse: boolean,
    handler: Dispatcher.DispatchHandler,
    extra?: string[],
  ): void {
    const fixed = sse ? this.headers.sse : this.headers.json;
    this.pool.dispatch(
      {
        path: this.basePath + path,
        method: "POST",
        // Without extra headers the ready-made list is sent as is: nothing allocated per request.
        headers: extra ? fixed.concat(extra) : fixed,
        body,
      },
      handler,
    );
  }

  /**
   * Non-streaming chat completion for workers. Resolves with the status and parsed JSON body;
   * rejects with a {@link BackendError} for network failures and timeouts (retryable).
   */
  async chatJson(
    payload: unknown,
    signal?: AbortSignal,
    extra?: string[],
  ): Promise<{ status: number; body: unknown }> {
    let res: Dispatcher.ResponseData;
    try {
      res = await this.pool.request({
        path: `${this.basePath}/chat/completions`,
        method: "POST",
        headers: extra ? this.headers.json.concat(extra) : this.headers.json,
        body: Buffer.from(JSON.stringify(payload)),
        signal,
      });
    } catch (err) {
      if (signal?.aborted) throw new BackendError("request aborted", true);
      if (isBackendTimeout(err))
        throw new BackendError(`no response from backend within ${this.timeoutMs} ms`, true);
      throw new BackendError(`backend unreachable: ${(err as Error).message}`, true);
    }
    let text: string;
    try {
      text = await res.body.text();
    } catch (err) {
      if (signal?.aborted) throw new BackendError("request aborted", true);
      throw new BackendError(`backend response failed: ${(err as Error).message}`, true);
    }
    let body: unknown = undefined;
    try {
      body = JSON.parse(text);
    } catch {
      // left undefined: the caller reports a non-JSON answer
    }
    // Only the parsed body: its raw text (which may quote the prompt) has no business travelling on.
    return { status: res.statusCode, body };
  }

  /** Closes every connection now; requests still under way fail. */
  close(): void {
    this.pool.destroy().catch(() => undefined);
  }
}

export class BackendError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = "BackendError";
  }
}
