import type { IncomingMessage, ServerResponse } from "node:http";
import type { Backend } from "./backend";
import type { Metrics } from "./metrics";

const DATA = Buffer.from("data:");
const DONE = Buffer.from("[DONE]");
const USAGE = Buffer.from('"completion_tokens":');
const ROUTE = "/v1/chat/completions";

function countEvents(chunk: Buffer): number {
  let n = 0;
  let i = chunk.indexOf(DATA);
  while (i !== -1) {
    n++;
    i = chunk.indexOf(DATA, i + 5);
  }
  return n;
}

function completionTokens(chunk: Buffer | undefined): number {
  if (!chunk) return 0;
  const i = chunk.lastIndexOf(USAGE);
  if (i === -1) return 0;
  let j = i + USAGE.length;
  while (chunk[j] === 0x20) j++;
  let v = 0;
  for (let c = chunk[j]; c !== undefined && c >= 0x30 && c <= 0x39; c = chunk[++j]) v = v * 10 + (c - 0x30);
  return v;
}

function sendError(res: ServerResponse, status: number, type: string, message: string) {
  const body = JSON.stringify({ error: { type, message } });
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

/**
 * Relays one chat completion to the backend. The request body is forwarded byte for byte (no
 * re-serialisation); the response is piped with backpressure (the upstream socket is paused while the
 * client's socket buffer is full) and the upstream request is destroyed when the client goes away.
 * SSE chunks are only scanned for `data:` markers to count events for the tokens-per-second metric.
 */
export function relayChat(
  backend: Backend,
  metrics: Metrics,
  res: ServerResponse,
  body: Buffer,
  model: string,
  stream: boolean,
  startNs: bigint,
): void {
  const modelLabel = metrics.models.value(model);
  const up = backend.postChat(body, stream ? "text/event-stream" : "application/json");
  let upRes: IncomingMessage | undefined;
  let done = false;
  let firstByteNs = 0n;
  let events = 0;
  let sawDone = false;
  let lastChunk: Buffer | undefined;

  const finish = (status: number) => {
    if (done) return;
    done = true;
    const seconds = Number(process.hrtime.bigint() - startNs) / 1e9;
    metrics.httpDuration.observe({ method: "POST", route: ROUTE, status_code: status }, seconds);
  };

  up.setTimeout(backend.timeoutMs, () =>
    up.destroy(Object.assign(new Error("backend timeout"), { code: "ETIMEDOUT" })),
  );

  up.on("error", (err: NodeJS.ErrnoException) => {
    if (res.headersSent) {
      // Mid-stream failure: cut the client connection so the truncation is visible.
      res.destroy();
      finish(res.statusCode);
      return;
    }
    if (res.destroyed) return;
    const timeout = err.code === "ETIMEDOUT";
    const status = timeout ? 504 : 502;
    sendError(
      res,
      status,
      "upstream_error",
      timeout
        ? "The model backend did not answer in time"
        : `The model backend is unreachable (${err.code ?? err.message})`,
    );
    finish(status);
  });

  res.on("close", () => {
    if (!res.writableFinished) {
      // Client left: cancel the upstream generation.
      metrics.relayCancelled.inc();
      up.destroy();
      upRes?.destroy();
      finish(499);
    }
  });

  up.on("response", (r) => {
    upRes = r;
    const status = r.statusCode ?? 502;
    const ct = r.headers["content-type"];
    const isSse = stream && status === 200 && typeof ct === "string" && ct.startsWith("text/event-stream");
    const headers: Record<string, string | number> = {};
    if (ct) headers["content-type"] = ct;
    if (isSse) {
      headers["cache-control"] = "no-cache";
      headers["x-accel-buffering"] = "no";
    } else if (r.headers["content-length"]) {
      headers["content-length"] = r.headers["content-length"];
    }
    if (res.destroyed) return;
    res.writeHead(status, headers);

    r.on("data", (chunk: Buffer) => {
      if (firstByteNs === 0n) {
        firstByteNs = process.hrtime.bigint();
        if (isSse)
          metrics.timeToFirstToken.observe({ model: modelLabel }, Number(firstByteNs - startNs) / 1e9);
      }
      if (isSse) {
        events += countEvents(chunk);
        if (!sawDone && chunk.indexOf(DONE) !== -1) sawDone = true;
      } else lastChunk = chunk;
      if (!res.write(chunk)) r.pause();
    });
    res.on("drain", () => r.resume());
    r.on("end", () => {
      // The final `data: [DONE]` sentinel is not a token.
      if (sawDone && events > 0) events--;
      res.end();
      finish(status);
      if (status === 200 && firstByteNs !== 0n) {
        const genSeconds = Number(process.hrtime.bigint() - (isSse ? firstByteNs : startNs)) / 1e9;
        const tokens = isSse ? events : completionTokens(lastChunk);
        if (tokens > 0 && genSeconds > 0) {
          metrics.tokensPerSecond.observe({ model: modelLabel, source: "relay" }, tokens / genSeconds);
        }
      }
    });
    r.on("error", () => {
      res.destroy();
      finish(status);
    });
  });
}
