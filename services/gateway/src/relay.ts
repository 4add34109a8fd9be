import type { IncomingHttpHeaders, ServerResponse } from "node:http";
import type { Dispatcher } from "undici";
import { type Backend, isBackendTimeout } from "./backend";
import { type ApiErrorBody, apiError } from "./errors";
import type { Metrics } from "./metrics";
import type { RelayEndpoint } from "./relay-request";
import { SpanStatusCode, type Span, type Tracing, endWithStatus } from "./tracing";

const DONE = Buffer.from("[DONE]");
/** Backend error bodies are small; a larger one is cut here and answered with our own body. */
const MAX_ERROR_BODY = 64 * 1024;

/** An endpoint's token markers as bytes, made once per endpoint. */
interface Markers {
  sse: Buffer;
  sseDone: boolean;
  usage: Buffer;
}
const markerCache = new WeakMap<RelayEndpoint, Markers | null>();
function markersOf(ep: RelayEndpoint): Markers | null {
  let m = markerCache.get(ep);
  if (m === undefined) {
    m = ep.tokens
      ? {
          sse: Buffer.from(ep.tokens.sseMarker),
          sseDone: ep.tokens.sseDone,
          usage: Buffer.from(ep.tokens.usageMember),
        }
      : null;
    markerCache.set(ep, m);
  }
  return m;
}

/** Occurrences of `marker` in `chunk` (token events in an SSE chunk). */
export function countMarkers(chunk: Buffer, marker: Buffer): number {
  let n = 0;
  let i = chunk.indexOf(marker);
  while (i !== -1) {
    n++;
    i = chunk.indexOf(marker, i + marker.length);
  }
  return n;
}

/** The integer after the last `member` in `chunk` (the usage's output tokens in a JSON body), or 0. */
export function usageTokens(chunk: Buffer | undefined, member: Buffer): number {
  if (!chunk) return 0;
  const i = chunk.lastIndexOf(member);
  if (i === -1) return 0;
  let j = i + member.length;
  while (chunk[j] === 0x20) j++;
  let v = 0;
  for (let c = chunk[j]; c !== undefined && c >= 0x30 && c <= 0x39; c = chunk[++j]) v = v * 10 + (c - 0x30);
  return v;
}

/**
 * Backend response headers a client needs besides the body: `Retry-After` (the SDKs wait that long
 * before retrying a 429/503) and OpenAI's `x-ratelimit-*` budget headers.
 */
export function passThroughHeaders(h: IncomingHttpHeaders): Record<string, string> {
  const flat: string[] = [];
  addPassThrough(h, flat);
  const out: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

/** {@link passThroughHeaders}, appended to a flat name/value list (what writeHead takes fastest). */
function addPassThrough(h: IncomingHttpHeaders, out: string[]): void {
  for (const name in h) {
    if (name === "retry-after" || name === "retry-after-ms" || name.startsWith("x-ratelimit-")) {
      const v = h[name];
      if (typeof v === "string") out.push(name, v);
    }
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * A backend error body in OpenAI's shape. An already complete one goes through byte for byte; vLLM's
 * older flat `{object: "error", message, type, code}` and partial `{error: {message}}` bodies are
 * completed; anything else (an HTML page from a proxy, a truncated body) is replaced by our own
 * message, since the client's SDK could not read it anyway.
 */
export function normalizeBackendError(status: number, body: Buffer): Buffer {
  let v: unknown;
  try {
    v = JSON.parse(body.toString("utf8"));
  } catch {
    v = undefined;
  }
  const src = isObject(v) ? (isObject(v.error) ? v.error : v.object === "error" ? v : undefined) : undefined;
  if (src && typeof src.message === "string") {
    if (
      src === (v as Record<string, unknown>).error &&
      typeof src.type === "string" &&
      typeof src.code === "string" &&
      (typeof src.param === "string" || src.param === null)
    ) {
      return body;
    }
    const code = typeof src.code === "string" ? src.code : "backend_error";
    const e = apiError(
      typeof src.type === "string" ? src.type : "upstream_error",
      code,
      src.message,
      typeof src.param === "string" ? src.param : null,
    );
    return Buffer.from(JSON.stringify(e));
  }
  return Buffer.from(
    JSON.stringify(
      apiError(
        "upstream_error",
        "backend_error",
        `The model backend answered HTTP ${status} without details`,
      ),
    ),
  );
}

const JSON_CONTENT_TYPE = "application/json; charset=utf-8";

function sendJson(res: ServerResponse, status: number, body: Buffer | ApiErrorBody, extra: string[] = []) {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
  extra.push("content-type", JSON_CONTENT_TYPE, "content-length", String(buf.length));
  res.writeHead(status, extra);
  res.end(buf);
}

export interface RelayHandle {
  /**
   * Ends the relay from the gateway's side (e.g. its key was revoked): the upstream request is
   * cancelled and the client gets `body`: as the response when none has started, as a final SSE
   * `data:` event on a stream (the SDKs raise it as an API error), else by a cut connection.
   */
  terminate(status: number, body: ApiErrorBody): void;
}

/** The client left, or the gateway ended the relay: why the upstream request is aborted. */
class RelayAbort extends Error {
  override readonly name = "RelayAbort";
}
const CLIENT_LEFT = new RelayAbort("the client closed the connection");
const TERMINATED = new RelayAbort("the gateway ended the relay");

/**
 * One relayed request: undici's dispatch handler for the upstream response, which it writes straight
 * to the client's response as it arrives. One object per request, no streams in between.
 */
class Relay implements Dispatcher.DispatchHandler, RelayHandle {
  private controller: Dispatcher.DispatchController | null = null;
  /** The duration metric is recorded (the relay's outcome is settled). */
  private done = false;
  /** The upstream request is over (answered whole, failed or aborted): nothing left to cancel. */
  private upstreamOver = false;
  /** The gateway ended the relay (terminate, or the client left): later upstream events are ignored. */
  private aborted = false;
  private status = 0;
  private isSse = false;
  private firstByteNs = 0n;
  private events = 0;
  private sawDone = false;
  private lastChunk: Buffer | undefined = undefined;
  /** Set for a backend error status: its body, read whole (small), is completed into OpenAI's shape. */
  private errorChunks: Buffer[] | null = null;
  private errorSize = 0;
  private errorHeaders: string[] = [];
  private drainWatched = false;
  /** Non-SSE: the latest chunk, written when the next one comes or with the end (one write for a one-chunk body). */
  private held: Buffer | undefined = undefined;

  constructor(
    private readonly metrics: Metrics,
    private readonly res: ServerResponse,
    private readonly ep: RelayEndpoint,
    private readonly modelLabel: string,
    private readonly markers: Markers | null,
    private readonly stream: boolean,
    private readonly startNs: bigint,
    /** Called once the client's response is closed (ended or cut): e.g. the stream admission's release. */
    private readonly onClosed: () => void,
    /** Tracing on: the request's server span and this relay's client span, ended with the outcome. */
    private readonly spans: { server: Span; client: Span } | null,
  ) {
    res.once("close", this.onClientClose);
  }

  private finish(status: number) {
    if (this.done) return;
    this.done = true;
    const seconds = Number(process.hrtime.bigint() - this.startNs) / 1e9;
    this.metrics.httpDuration.observe({ method: "POST", route: this.ep.route, status_code: status }, seconds);
    const spans = this.spans;
    if (spans) {
      // The upstream status when there was one; else (unreachable, timeout, cancelled) the error.
      if (this.status !== 0) endWithStatus(spans.client, this.status, true);
      else {
        spans.client.setStatus({ code: SpanStatusCode.ERROR });
        spans.client.end();
      }
      endWithStatus(spans.server, status, false);
    }
  }

  private readonly onClientClose = () => {
    this.onClosed();
    if (this.res.writableFinished) return;
    // The client left before the end: cancel the upstream generation.
    if (!this.aborted) {
      this.aborted = true;
      this.metrics.relayCancelled.inc();
    }
    this.abortUpstream(CLIENT_LEFT);
    this.finish(499);
  };

  private readonly onDrain = () => this.controller?.resume();

  private abortUpstream(reason: RelayAbort) {
    if (this.upstreamOver) return;
    this.upstreamOver = true;
    // Not yet on a connection: onRequestStart aborts it when it gets one.
    this.controller?.abort(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.aborted) controller.abort(this.res.destroyed ? CLIENT_LEFT : TERMINATED);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    if (this.aborted || this.res.destroyed) {
      controller.abort(CLIENT_LEFT);
      return;
    }
    this.status = statusCode;
    const ct = headers["content-type"];
    const out: string[] = [];
    addPassThrough(headers, out);
    if (statusCode >= 400) {
      this.errorChunks = [];
      this.errorHeaders = out;
      return;
    }
    this.isSse =
      this.stream && statusCode === 200 && typeof ct === "string" && ct.startsWith("text/event-stream");
    if (typeof ct === "string") out.push("content-type", ct);
    if (this.isSse) out.push("cache-control", "no-cache", "x-accel-buffering", "no");
    else {
      const cl = headers["content-length"];
      if (typeof cl === "string") out.push("content-length", cl);
    }
    this.res.writeHead(statusCode, out);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.aborted) return;
    if (this.errorChunks) {
      if (this.errorSize < MAX_ERROR_BODY) this.errorChunks.push(chunk);
      this.errorSize += chunk.length;
      return;
    }
    if (this.firstByteNs === 0n) {
      this.firstByteNs = process.hrtime.bigint();
      if (this.isSse)
        this.metrics.timeToFirstToken.observe(
          { model: this.modelLabel },
          Number(this.firstByteNs - this.startNs) / 1e9,
        );
    }
    const m = this.markers;
    if (m) {
      if (this.isSse) {
        this.events += countMarkers(chunk, m.sse);
        if (m.sseDone && !this.sawDone && chunk.indexOf(DONE) !== -1) this.sawDone = true;
      } else this.lastChunk = chunk;
    }
    let out: Buffer | undefined = chunk;
    if (!this.isSse) {
      out = this.held;
      this.held = chunk;
      if (!out) return;
    }
    // Backpressure: the upstream socket is not read while the client's socket buffer is full.
    if (!this.res.write(out)) {
      controller.pause();
      if (!this.drainWatched) {
        this.drainWatched = true;
        this.res.on("drain", this.onDrain);
      }
    }
  }

  onResponseEnd(): void {
    this.upstreamOver = true;
    if (this.aborted || this.res.destroyed) return;
    const status = this.status;
    if (this.errorChunks) {
      const raw = this.errorSize > MAX_ERROR_BODY ? Buffer.alloc(0) : Buffer.concat(this.errorChunks);
      sendJson(this.res, status, normalizeBackendError(status, raw), this.errorHeaders);
      this.finish(status);
      return;
    }
    // The final `data: [DONE]` sentinel is not a token.
    if (this.sawDone && this.events > 0) this.events--;
    if (this.held) this.res.end(this.held);
    else this.res.end();
    this.finish(status);
    const m = this.markers;
    if (m && status === 200 && this.firstByteNs !== 0n) {
      const genSeconds =
        Number(process.hrtime.bigint() - (this.isSse ? this.firstByteNs : this.startNs)) / 1e9;
      const tokens = this.isSse ? this.events : usageTokens(this.lastChunk, m.usage);
      if (tokens > 0 && genSeconds > 0) {
        this.metrics.tokensPerSecond.observe(
          { model: this.modelLabel, source: "relay" },
          tokens / genSeconds,
        );
      }
    }
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.upstreamOver = true;
    if (this.aborted || err instanceof RelayAbort) return;
    const res = this.res;
    if (res.headersSent) {
      // Mid-stream failure: cut the client connection so the truncation is visible.
      res.destroy();
      this.finish(res.statusCode);
      return;
    }
    if (res.destroyed) return;
    const timeout = isBackendTimeout(err);
    const status = timeout ? 504 : 502;
    const code = (err as NodeJS.ErrnoException).code;
    sendJson(
      res,
      status,
      timeout
        ? apiError("upstream_error", "backend_timeout", "The model backend did not answer in time")
        : apiError(
            "upstream_error",
            "backend_unreachable",
            `The model backend is unreachable (${code ?? "connection failed"})`,
          ),
    );
    this.finish(status);
  }

  terminate(status: number, errBody: ApiErrorBody): void {
    const res = this.res;
    if (this.aborted || this.done || res.writableEnded || res.destroyed) return;
    this.aborted = true;
    this.abortUpstream(TERMINATED);
    if (!res.headersSent) sendJson(res, status, errBody);
    else if (this.isSse) res.end(`data: ${JSON.stringify(errBody)}\n\n`);
    else res.destroy();
    this.finish(status);
  }
}

/**
 * Relays one request of endpoint `ep` (chat, completions, embeddings, responses) to the backend. The
 * request body is forwarded byte for byte (no re-serialisation); the upstream response is written
 * to the client as it arrives, with backpressure (the upstream socket is not read while the
 * client's socket buffer is full), and the upstream request is aborted when the client goes away.
 * SSE chunks are only scanned for the endpoint's token marker, to count events for the
 * tokens-per-second metric.
 */
export function relay(
  backend: Backend,
  metrics: Metrics,
  res: ServerResponse,
  ep: RelayEndpoint,
  body: Buffer,
  model: string,
  stream: boolean,
  startNs: bigint,
  onClosed: () => void = () => undefined,
  tracing?: Tracing,
  serverSpan?: Span | null,
): RelayHandle {
  const modelLabel = metrics.model(model);
  if (!tracing || !serverSpan) {
    const r = new Relay(metrics, res, ep, modelLabel, markersOf(ep), stream, startNs, onClosed, null);
    backend.dispatch(ep.upstreamPath, body, stream, r);
    return r;
  }
  const client = tracing.backendCall(backend, backend.basePath + ep.upstreamPath, serverSpan, modelLabel);
  const r = new Relay(metrics, res, ep, modelLabel, markersOf(ep), stream, startNs, onClosed, {
    server: serverSpan,
    client,
  });
  // The backend continues the request's trace as a child of this call.
  backend.dispatch(ep.upstreamPath, body, stream, r, tracing.headersFor(client));
  return r;
}
