import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import type { Backend } from "./backend";
import { type ApiErrorBody, apiError } from "./errors";
import type { Metrics } from "./metrics";
import type { RelayEndpoint } from "./relay-request";

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
  const out: Record<string, string> = {};
  for (const name of Object.keys(h)) {
    if (name === "retry-after" || name === "retry-after-ms" || name.startsWith("x-ratelimit-")) {
      const v = h[name];
      if (typeof v === "string") out[name] = v;
    }
  }
  return out;
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

function sendJson(res: ServerResponse, status: number, body: Buffer | ApiErrorBody, extra = {}) {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    ...extra,
    "content-type": "application/json; charset=utf-8",
    "content-length": buf.length,
  });
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

/**
 * Relays one request of endpoint `ep` (chat, completions, embeddings, responses) to the backend. The
 * request body is forwarded byte for byte (no re-serialisation); the response is piped with
 * backpressure (the upstream socket is paused while the client's socket buffer is full) and the
 * upstream request is destroyed when the client goes away. SSE chunks are only scanned for the
 * endpoint's token marker, to count events for the tokens-per-second metric.
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
): RelayHandle {
  const modelLabel = metrics.model(model);
  const markers = markersOf(ep);
  const up = backend.post(ep.upstreamPath, body, stream ? "text/event-stream" : "application/json");
  let upRes: IncomingMessage | undefined;
  let done = false;
  /** Set once the gateway ended the relay itself; later upstream events are ignored. */
  let terminated = false;
  let isSse = false;
  let firstByteNs = 0n;
  let events = 0;
  let sawDone = false;
  let lastChunk: Buffer | undefined;

  const finish = (status: number) => {
    if (done) return;
    done = true;
    const seconds = Number(process.hrtime.bigint() - startNs) / 1e9;
    metrics.httpDuration.observe({ method: "POST", route: ep.route, status_code: status }, seconds);
  };

  up.setTimeout(backend.timeoutMs, () =>
    up.destroy(Object.assign(new Error("backend timeout"), { code: "ETIMEDOUT" })),
  );

  up.on("error", (err: NodeJS.ErrnoException) => {
    if (terminated) return;
    if (res.headersSent) {
      // Mid-stream failure: cut the client connection so the truncation is visible.
      res.destroy();
      finish(res.statusCode);
      return;
    }
    if (res.destroyed) return;
    const timeout = err.code === "ETIMEDOUT";
    const status = timeout ? 504 : 502;
    sendJson(
      res,
      status,
      timeout
        ? apiError("upstream_error", "backend_timeout", "The model backend did not answer in time")
        : apiError(
            "upstream_error",
            "backend_unreachable",
            `The model backend is unreachable (${err.code ?? "connection failed"})`,
          ),
    );
    finish(status);
  });

  res.on("close", () => {
    if (!res.writableFinished) {
      // Client left: cancel the upstream generation.
      if (!terminated) metrics.relayCancelled.inc();
      up.destroy();
      upRes?.destroy();
      finish(499);
    }
  });

  up.on("response", (r) => {
    upRes = r;
    if (terminated) {
      r.destroy();
      return;
    }
    const status = r.statusCode ?? 502;
    const ct = r.headers["content-type"];
    isSse = stream && status === 200 && typeof ct === "string" && ct.startsWith("text/event-stream");
    const headers: Record<string, string | number> = passThroughHeaders(r.headers);
    if (res.destroyed) return;

    if (status >= 400) {
      // Small, and read whole: it is completed into OpenAI's shape before it goes out.
      const chunks: Buffer[] = [];
      let size = 0;
      r.on("data", (c: Buffer) => {
        if (size < MAX_ERROR_BODY) chunks.push(c);
        size += c.length;
      });
      r.on("end", () => {
        if (terminated || res.destroyed) return;
        const raw = Buffer.concat(chunks);
        sendJson(
          res,
          status,
          normalizeBackendError(status, size > MAX_ERROR_BODY ? Buffer.alloc(0) : raw),
          headers,
        );
        finish(status);
      });
      r.on("error", () => {
        if (!terminated) res.destroy();
        finish(status);
      });
      return;
    }

    if (ct) headers["content-type"] = ct;
    if (isSse) {
      headers["cache-control"] = "no-cache";
      headers["x-accel-buffering"] = "no";
    } else if (r.headers["content-length"]) {
      headers["content-length"] = r.headers["content-length"];
    }
    res.writeHead(status, headers);

    r.on("data", (chunk: Buffer) => {
      if (terminated) return;
      if (firstByteNs === 0n) {
        firstByteNs = process.hrtime.bigint();
        if (isSse)
          metrics.timeToFirstToken.observe({ model: modelLabel }, Number(firstByteNs - startNs) / 1e9);
      }
      if (markers) {
        if (isSse) {
          events += countMarkers(chunk, markers.sse);
          if (markers.sseDone && !sawDone && chunk.indexOf(DONE) !== -1) sawDone = true;
        } else lastChunk = chunk;
      }
      if (!res.write(chunk)) r.pause();
    });
    res.on("drain", () => r.resume());
    r.on("end", () => {
      if (terminated) return;
      // The final `data: [DONE]` sentinel is not a token.
      if (sawDone && events > 0) events--;
      res.end();
      finish(status);
      if (markers && status === 200 && firstByteNs !== 0n) {
        const genSeconds = Number(process.hrtime.bigint() - (isSse ? firstByteNs : startNs)) / 1e9;
        const tokens = isSse ? events : usageTokens(lastChunk, markers.usage);
        if (tokens > 0 && genSeconds > 0) {
          metrics.tokensPerSecond.observe({ model: modelLabel, source: "relay" }, tokens / genSeconds);
        }
      }
    });
    r.on("error", () => {
      if (!terminated) res.destroy();
      finish(status);
    });
  });

  return {
    terminate(status, errBody) {
      if (terminated || done || res.writableEnded || res.destroyed) return;
      terminated = true;
      up.destroy();
      upRes?.destroy();
      if (!res.headersSent) sendJson(res, status, errBody);
      else if (isSse) res.end(`data: ${JSON.stringify(errBody)}\n\n`);
      else res.destroy();
      finish(status);
    },
  };
}
