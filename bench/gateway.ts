/**
 * Gateway relay overhead benchmark (loopback only, bounded in time and request count).
 *
 * A fake OpenAI-compatible backend and the gateway's relay (buildApp without a job queue) each run
 * in their own worker thread of this process, so the load generator (autocannon, main thread) does
 * not share an event loop with the code it measures. The backend answers after `backendDelayMs`,
 * standing in for model latency; what is compared is the same load sent directly to the backend and
 * through the gateway:
 *   - non-stream chat completions at each concurrency: p50/p99 latency, req/s, added p99, throughput ratio;
 *   - streaming: time to first SSE byte over `streamRequests` sequential requests, direct vs gateway.
 * Targets (DESIGN.md): added p99 <= 2 ms, throughput >= 80 % of direct, TTFT overhead <= 1 ms.
 */
import { Agent, createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { KeyStore, hashKey } from "../services/gateway/src/auth";
import { Backend } from "../services/gateway/src/backend";
import { Readiness } from "../services/gateway/src/health";
import { createMetrics } from "../services/gateway/src/metrics";
import { buildApp } from "../services/gateway/src/server";

export interface LatencyStats {
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  reqPerSec: number;
  requests: number;
  errors: number;
  non2xx: number;
}

export interface GatewayBenchRun {
  connections: number;
  direct: LatencyStats;
  gateway: LatencyStats;
  addedP50Ms: number;
  addedP99Ms: number;
  /** gateway req/s divided by direct req/s */
  throughputRatio: number;
}

export interface TtftStats {
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

export interface GatewayBenchResult {
  durationSec: number;
  backendDelayMs: number;
  threads: boolean;
  nonStream: GatewayBenchRun[];
  streaming: {
    requests: number;
    direct: TtftStats;
    gateway: TtftStats;
    overheadP50Ms: number;
    overheadMeanMs: number;
  };
  targets: { maxAddedP99Ms: number; minThroughputRatio: number; maxTtftOverheadMs: number };
  pass: { addedP99: boolean; throughput: boolean; ttft: boolean };
}

export interface GatewayBenchOptions {
  connections?: number[];
  durationSec?: number;
  /** Simulated model latency of the fake backend for non-stream requests (default 20 ms). */
  backendDelayMs?: number;
  /** Sequential streaming requests per side for the TTFT comparison (default 200, max 5000). */
  streamRequests?: number;
  /** Run backend and gateway in worker threads (default true); false = everything on the main thread. */
  threads?: boolean;
}

interface AutocannonResult {
  latency: { p50: number; p99: number; average: number };
  requests: { average: number; total: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>;

const BENCH_KEY = "sk-bench-0123456789abcdef";
const CHAT_BODY = JSON.stringify({
  model: "bench-model",
  messages: [{ role: "user", content: "Say hello in five words." }],
  max_tokens: 16,
});
const STREAM_BODY = JSON.stringify({
  model: "bench-model",
  stream: true,
  messages: [{ role: "user", content: "Say hello in five words." }],
});

type Role = { kind: "backend"; delayMs: number } | { kind: "gateway"; backendUrl: string };

// ---------------------------------------------------------------------------------------------
// Servers (run inside worker threads, or on the main thread when threads: false)
// ---------------------------------------------------------------------------------------------

async function startBackend(delayMs: number): Promise<{ port: number; close: () => Promise<void> }> {
  const completion = JSON.stringify({
    id: "chatcmpl-bench",
    object: "chat.completion",
    model: "bench-model",
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: "Hello there, nice to meet." },
        finish_reason: "stop",
      },
    ],
    usage: { prompt_tokens: 12, completion_tokens: 6, total_tokens: 18 },
  });
  const completionHeaders = {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(completion),
  };
  const chunk = (t: string) =>
    `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: t } }] })}\n\n`;
  const tokens = ["Hello", " there,", " nice", " to", " meet."].map(chunk);
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (c: Buffer) => parts.push(c));
    req.on("end", () => {
      const stream = Buffer.concat(parts).includes('"stream":true');
      if (stream) {
        // First token immediately: the TTFT comparison measures the relay, not the model.
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
        for (const t of tokens) res.write(t);
        res.end("data: [DONE]\n\n");
        return;
      }
      const send = () => res.writeHead(200, completionHeaders).end(completion);
      if (delayMs > 0) setTimeout(send, delayMs);
      else send();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function startGatewayRelay(backendUrl: string): Promise<{ port: number; close: () => Promise<void> }> {
  const backend = new Backend(backendUrl, { maxSockets: 1024 });
  const app = buildApp({
    keys: new KeyStore([{ name: "bench", sha256: hashKey(BENCH_KEY), rate_limit: { rps: 1e6, burst: 1e6 } }]),
    backend,
    metrics: createMetrics(),
    readiness: new Readiness({ needsJetStream: false }),
    logLevel: "silent",
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  return {
    port: (app.server.address() as AddressInfo).port,
    close: async () => {
      await app.close();
      backend.close();
    },
  };
}

async function startRole(role: Role) {
  return role.kind === "backend" ? startBackend(role.delayMs) : startGatewayRelay(role.backendUrl);
}

if (!isMainThread && (workerData as { gatewayBench?: Role } | null)?.gatewayBench) {
  const role = (workerData as { gatewayBench: Role }).gatewayBench;
  void startRole(role).then(
    (s) => {
      parentPort!.postMessage({ port: s.port });
      parentPort!.once("message", () => void s.close().then(() => process.exit(0)));
    },
    (err: Error) => parentPort!.postMessage({ error: err.stack ?? err.message }),
  );
}

async function launch(role: Role, threads: boolean): Promise<{ port: number; close: () => Promise<void> }> {
  if (!threads) return startRole(role);
  // Workers do not inherit tsx's loader: register its CommonJS hook in the thread, then load this file.
  const tsx = require.resolve("tsx/cjs");
  const w = new Worker(`require(${JSON.stringify(tsx)}); require(${JSON.stringify(__filename)});`, {
    eval: true,
    workerData: { gatewayBench: role },
  });
  const msg = await new Promise<{ port?: number; error?: string }>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("bench server thread did not start within 30 s")), 30_000);
    w.once("message", (m: { port?: number; error?: string }) => {
      clearTimeout(t);
      resolve(m);
    });
    w.once("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
  if (msg.error || !msg.port) {
    await w.terminate();
    throw new Error(`bench server thread failed: ${msg.error ?? "no port"}`);
  }
  return {
    port: msg.port,
    close: async () => {
      const exited = new Promise<void>((r) => w.once("exit", () => r()));
      w.postMessage("close");
      const t = setTimeout(() => void w.terminate(), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------------

const round = (n: number) => Math.round(n * 1000) / 1000;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

async function load(
  autocannon: Autocannon,
  url: string,
  connections: number,
  durationSec: number,
  headers: Record<string, string>,
): Promise<LatencyStats> {
  const r = await autocannon({
    url,
    connections,
    duration: durationSec,
    method: "POST",
    headers,
    body: CHAT_BODY,
  });
  return {
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    meanMs: round(r.latency.average),
    reqPerSec: round(r.requests.average),
    requests: r.requests.total,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
  };
}

/** Time from sending the request to the first body byte, for `n` sequential keep-alive requests. */
async function ttft(
  port: number,
  path: string,
  headers: Record<string, string>,
  n: number,
): Promise<TtftStats> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const body = Buffer.from(STREAM_BODY);
  const samples: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      samples.push(
        await new Promise<number>((resolve, reject) => {
          const t0 = process.hrtime.bigint();
          const req = request(
            {
              host: "127.0.0.1",
              port,
              path,
              method: "POST",
              agent,
              headers: { ...headers, "content-type": "application/json", "content-length": body.length },
            },
            (res) => {
              let first = 0;
              res.on("data", () => {
                if (first === 0) first = Number(process.hrtime.bigint() - t0) / 1e6;
              });
              res.on("end", () =>
                res.statusCode === 200 && first > 0
                  ? resolve(first)
                  : reject(new Error(`HTTP ${res.statusCode}`)),
              );
              res.on("error", reject);
            },
          );
          req.setTimeout(10_000, () => req.destroy(new Error("stream request timed out")));
          req.on("error", reject);
          req.end(body);
        }),
      );
    }
  } finally {
    agent.destroy();
  }
  // Drop the first 10 % as warm-up (JIT, connection set-up).
  const measured = samples.slice(Math.floor(n / 10)).sort((a, b) => a - b);
  return {
    p50Ms: round(percentile(measured, 50)),
    p99Ms: round(percentile(measured, 99)),
    meanMs: round(measured.reduce((a, b) => a + b, 0) / measured.length),
  };
}

export async function benchGateway(opts: GatewayBenchOptions = {}): Promise<GatewayBenchResult> {
  const connectionsList = opts.connections ?? [50, 200];
  const durationSec = Math.min(Math.max(opts.durationSec ?? 5, 1), 60);
  const backendDelayMs = opts.backendDelayMs ?? 20;
  const streamRequests = Math.min(Math.max(opts.streamRequests ?? 200, 20), 5000);
  const threads = opts.threads ?? true;
  // autocannon ships no type declarations; it is loaded as CommonJS through a typed facade.
  const autocannon = require("autocannon") as Autocannon; // eslint-disable-line @typescript-eslint/no-require-imports

  const backend = await launch({ kind: "backend", delayMs: backendDelayMs }, threads);
  let gateway: { port: number; close: () => Promise<void> } | undefined;
  try {
    gateway = await launch({ kind: "gateway", backendUrl: `http://127.0.0.1:${backend.port}/v1` }, threads);
    const directUrl = `http://127.0.0.1:${backend.port}/v1/chat/completions`;
    const gatewayUrl = `http://127.0.0.1:${gateway.port}/v1/chat/completions`;
    const json = { "content-type": "application/json" };
    const authed = { ...json, authorization: `Bearer ${BENCH_KEY}` };

    const nonStream: GatewayBenchRun[] = [];
    for (const connections of connectionsList) {
      // Short warm-up of both paths (keep-alive pools, JIT), not reported.
      await load(autocannon, directUrl, connections, 1, json);
      await load(autocannon, gatewayUrl, connections, 1, authed);
      const direct = await load(autocannon, directUrl, connections, durationSec, json);
      const viaGateway = await load(autocannon, gatewayUrl, connections, durationSec, authed);
      nonStream.push({
        connections,
        direct,
        gateway: viaGateway,
        addedP50Ms: round(viaGateway.p50Ms - direct.p50Ms),
        addedP99Ms: round(viaGateway.p99Ms - direct.p99Ms),
        throughputRatio: round(direct.reqPerSec > 0 ? viaGateway.reqPerSec / direct.reqPerSec : 0),
      });
    }

    const directTtft = await ttft(backend.port, "/v1/chat/completions", {}, streamRequests);
    const gatewayTtft = await ttft(
      gateway.port,
      "/v1/chat/completions",
      { authorization: `Bearer ${BENCH_KEY}` },
      streamRequests,
    );
    const targets = { maxAddedP99Ms: 2, minThroughputRatio: 0.8, maxTtftOverheadMs: 1 };
    const streaming = {
      requests: streamRequests,
      direct: directTtft,
      gateway: gatewayTtft,
      overheadP50Ms: round(gatewayTtft.p50Ms - directTtft.p50Ms),
      overheadMeanMs: round(gatewayTtft.meanMs - directTtft.meanMs),
    };
    return {
      durationSec,
      backendDelayMs,
      threads,
      nonStream,
      streaming,
      targets,
      pass: {
        addedP99: nonStream.every((r) => r.addedP99Ms <= targets.maxAddedP99Ms),
        throughput: nonStream.every((r) => r.throughputRatio >= targets.minThroughputRatio),
        ttft: streaming.overheadP50Ms <= targets.maxTtftOverheadMs,
      },
    };
  } finally {
    await gateway?.close();
    await backend.close();
  }
}
