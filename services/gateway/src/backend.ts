import http from "node:http";
import https from "node:https";

/**
 * Connection to the OpenAI-compatible backend (vLLM, llama.cpp server, ...). One keep-alive agent per
 * process, reused by the relay and the workers. `baseUrl` ends with the API prefix, e.g. http://vllm:8000/v1.
 */
export class Backend {
  readonly agent: http.Agent;
  readonly transport: typeof http | typeof https;
  readonly hostname: string;
  readonly port: number;
  /** The base URL's path without a trailing slash (e.g. `/v1`): endpoint paths are appended to it. */
  readonly basePath: string;
  /** Header pairs shared by every chat call (Host, content type, backend auth), flat as in rawHeaders. */
  private readonly fixedHeaders: readonly string[];

  constructor(baseUrl: string, opts: { apiKey?: string; maxSockets?: number; timeoutMs?: number } = {}) {
    const u = new URL(baseUrl);
    this.transport = u.protocol === "https:" ? https : http;
    this.hostname = u.hostname.replace(/^\[|\]$/g, "");
    this.port = u.port ? Number(u.port) : u.protocol === "https:" ? 443 : 80;
    this.basePath = u.pathname.replace(/\/+$/, "");
    // URL.host is what Node would put in Host itself: brackets for IPv6, port only when not the default.
    this.fixedHeaders = [
      "host",
      u.host,
      "content-type",
      "application/json",
      ...(opts.apiKey ? ["authorization", `Bearer ${opts.apiKey}`] : []),
    ];
    this.timeoutMs = opts.timeoutMs ?? 300_000;
    const agentOpts = {
      keepAlive: true,
      keepAliveMsecs: 10_000,
      maxSockets: opts.maxSockets ?? 512,
      maxFreeSockets: 256,
    };
    this.agent = u.protocol === "https:" ? new https.Agent(agentOpts) : new http.Agent(agentOpts);
  }

  readonly timeoutMs: number;

  /**
   * Starts a POST to `path` (below the base URL, e.g. `/chat/completions`) with a ready-made body.
   * The caller handles 'response' and 'error'.
   */
  post(path: string, body: Buffer, accept: string): http.ClientRequest {
    // A flat header array is written out as given: Node skips its per-request setHeader/getHeader
    // bookkeeping (and adds no Host of its own, hence the explicit one in fixedHeaders).
    const headers = [...this.fixedHeaders, "content-length", String(body.length), "accept", accept];
    const req = this.transport.request({
      hostname: this.hostname,
      port: this.port,
      method: "POST",
      path: this.basePath + path,
      agent: this.agent,
      headers,
    });
    req.end(body);
    return req;
  }

  /**
   * Non-streaming chat completion for workers. Resolves with the status and parsed JSON body;
   * rejects with a {@link BackendError} for network failures and timeouts (retryable).
   */
  chatJson(payload: unknown, signal?: AbortSignal): Promise<{ status: number; body: unknown }> {
    return new Promise((resolve, reject) => {
      const req = this.post("/chat/completions", Buffer.from(JSON.stringify(payload)), "application/json");
      const onAbort = () => req.destroy(new BackendError("request aborted", true));
      if (signal) {
        if (signal.aborted) onAbort();
        else signal.addEventListener("abort", onAbort, { once: true });
      }
      req.setTimeout(this.timeoutMs, () =>
        req.destroy(new BackendError(`no response from backend within ${this.timeoutMs} ms`, true)),
      );
      req.on("error", (err) => {
        signal?.removeEventListener("abort", onAbort);
        reject(
          err instanceof BackendError ? err : new BackendError(`backend unreachable: ${err.message}`, true),
        );
      });
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", (err) => reject(new BackendError(`backend response failed: ${err.message}`, true)));
        res.on("end", () => {
          signal?.removeEventListener("abort", onAbort);
          const text = Buffer.concat(chunks).toString("utf8");
          let body: unknown = undefined;
          try {
            body = JSON.parse(text);
          } catch {
            // left undefined: the caller reports a non-JSON answer
          }
          // Only the parsed body: its raw text (which may quote the prompt) has no business travelling on.
          resolve({ status: res.statusCode ?? 0, body });
        });
      });
    });
  }

  close(): void {
    this.agent.destroy();
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
