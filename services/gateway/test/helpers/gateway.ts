import type { AddressInfo } from "node:net";
import { type NatsConnection, connect } from "nats";
import { type ApiKeyInput, KeyStore, hashKey } from "../../src/auth";
import { Backend } from "../../src/backend";
import { type GatewayConfig, loadConfig } from "../../src/config";
import { Readiness } from "../../src/health";
import { JobStore } from "../../src/jobs";
import { createLogger } from "../../src/log";
import { type Metrics, createMetrics } from "../../src/metrics";
import { buildApp, buildOpsApp } from "../../src/server";
import { type Worker, startWorker } from "../../src/worker";

/** Raw test keys and their entries (the store only ever sees the sha256). */
export const KEYS = {
  alice: "sk-test-alice-0123456789",
  bob: "sk-test-bob-0123456789",
  chatOnly: "sk-test-chat-only-0123456789",
  llamaOnly: "sk-test-llama-only-0123456789",
  limited: "sk-test-limited-0123456789",
  disabled: "sk-test-disabled-0123456789",
};

export const KEY_ENTRIES: ApiKeyInput[] = [
  { name: "alice", sha256: hashKey(KEYS.alice), rate_limit: { rps: 1000, burst: 1000 } },
  { name: "bob", sha256: hashKey(KEYS.bob), rate_limit: { rps: 1000, burst: 1000 } },
  { name: "chat-only", sha256: hashKey(KEYS.chatOnly), scopes: ["chat"] },
  { name: "llama-only", sha256: hashKey(KEYS.llamaOnly), models: ["llama"] },
  { name: "limited", sha256: hashKey(KEYS.limited), rate_limit: { rps: 0.05, burst: 2 } },
  { name: "disabled", sha256: hashKey(KEYS.disabled), disabled: true },
];

export function testConfig(
  natsUrl: string,
  backendUrl: string,
  env: Record<string, string> = {},
): GatewayConfig {
  return loadConfig({
    NATS_URL: natsUrl,
    BACKEND_URL: backendUrl,
    API_KEYS_FILE: "unused-in-process",
    NATS_TIMEOUT_MS: "2000",
    WORKER_ACK_WAIT_SECONDS: "2",
    WORKER_BACKOFF_BASE_MS: "100",
    WORKER_BACKOFF_MAX_MS: "400",
    WORKER_MAX_ATTEMPTS: "3",
    WORKER_CONCURRENCY: "4",
    LOG_LEVEL: "warn",
    // The fake backend's models that tests read metrics of.
    MODELS: "echo,llama,flaky",
    ...env,
  });
}

export async function natsConnect(url: string): Promise<NatsConnection> {
  return connect({
    servers: url,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 200,
    waitOnFirstConnect: true,
    timeout: 2000,
  });
}

export interface TestGateway {
  base: string;
  opsBase: string;
  nc: NatsConnection;
  store: JobStore;
  metrics: Metrics;
  readiness: Readiness;
  close(): Promise<void>;
}

/** API role in-process: listens on 127.0.0.1 (random ports) with the test keys. */
export async function startApi(
  cfg: GatewayConfig,
  withJobs = true,
  keys: KeyStore = new KeyStore(KEY_ENTRIES),
): Promise<TestGateway> {
  const nc = await natsConnect(cfg.nats.servers[0]!);
  const store = await JobStore.open(nc, cfg.jobs, cfg.worker.ackWaitSeconds, cfg.nats.timeoutMs);
  await store.trackQueuedBytes();
  const metrics = createMetrics({ defaultMetrics: false, models: cfg.models });
  const readiness = new Readiness({ needsJetStream: true });
  readiness.attach(nc, store);
  metrics.setQueueDepthSource(() => store.depth());
  const backend = new Backend(cfg.backend.url, { timeoutMs: cfg.backend.timeoutMs });
  const app = buildApp({
    keys,
    backend,
    metrics,
    readiness,
    jobs: withJobs ? store : undefined,
    maxBodyBytes: cfg.maxBodyBytes,
    rateLimit: cfg.rateLimit,
    logLevel: "error",
    http: cfg.http,
    keyDefaults: cfg.keyDefaults,
    maxJsonDepth: cfg.maxJsonDepth,
    models: cfg.models,
  });
  const ops = buildOpsApp({ metrics, readiness, logLevel: "error" });
  await app.listen({ host: "127.0.0.1", port: 0 });
  await ops.listen({ host: "127.0.0.1", port: 0 });
  return {
    base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    opsBase: `http://127.0.0.1:${(ops.server.address() as AddressInfo).port}`,
    nc,
    store,
    metrics,
    readiness,
    async close() {
      // As main.ts does on SIGTERM: connections still open after a grace period are cut. Clients
      // such as undici keep a spare connection that never carries a request, which app.close()
      // would otherwise wait for.
      const t = setTimeout(() => app.server.closeAllConnections(), 1000);
      await app.close();
      clearTimeout(t);
      await ops.close();
      store.close();
      backend.close();
      if (!nc.isClosed()) await nc.close();
    },
  };
}

export interface TestWorker {
  worker: Worker;
  metrics: Metrics;
  nc: NatsConnection;
  store: JobStore;
  close(): Promise<void>;
}

export async function startTestWorker(
  cfg: GatewayConfig,
  extra: { beforeAck?: (id: string) => Promise<void>; id?: string } = {},
): Promise<TestWorker> {
  const nc = await natsConnect(cfg.nats.servers[0]!);
  const store = await JobStore.open(nc, cfg.jobs, cfg.worker.ackWaitSeconds, cfg.nats.timeoutMs);
  const metrics = createMetrics({ defaultMetrics: false, models: cfg.models });
  const backend = new Backend(cfg.backend.url, { timeoutMs: cfg.backend.timeoutMs });
  const worker = startWorker({
    store,
    backend,
    metrics,
    log: createLogger("silent"),
    config: cfg.worker,
    ...extra,
  });
  return {
    worker,
    metrics,
    nc,
    store,
    async close() {
      await worker.stop(5000);
      backend.close();
      if (!nc.isClosed()) await nc.close();
    },
  };
}

/** Loose shape of the JSON bodies the tests read (jobs, errors, chat completions). */
export interface ApiJson {
  id: string;
  status: string;
  status_url: string;
  attempts: number;
  expires_at?: string;
  result: { content: string | null; finish_reason: string | null; usage: { completion_tokens: number } };
  error: {
    type: string;
    code: string;
    message: string;
    reason: string;
    attempts: number;
    fields: { field: string; message: string }[];
  };
  choices: { message: { content: string }; delta: { content: string } }[];
}

export async function json(r: Response): Promise<ApiJson> {
  return (await r.json()) as ApiJson;
}

export function auth(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}`, "content-type": "application/json" };
}

export async function postJob(
  base: string,
  body: unknown,
  headers: Record<string, string> = auth(KEYS.alice),
): Promise<{ status: number; body: ApiJson; headers: Headers }> {
  const r = await fetch(`${base}/v1/jobs`, { method: "POST", headers, body: JSON.stringify(body) });
  return { status: r.status, body: await json(r), headers: r.headers };
}

export async function getJob(
  base: string,
  id: string,
  key = KEYS.alice,
): Promise<{ status: number; body: ApiJson }> {
  const r = await fetch(`${base}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${key}` } });
  return { status: r.status, body: await json(r) };
}

/** Polls until the job reaches one of `statuses` (bounded by timeoutMs). */
export async function waitForJob(
  base: string,
  id: string,
  statuses: string[] = ["succeeded", "failed", "cancelled"],
  timeoutMs = 20_000,
): Promise<ApiJson> {
  const deadline = Date.now() + timeoutMs;
  let last: ApiJson | undefined;
  while (Date.now() < deadline) {
    const r = await getJob(base, id);
    last = r.body;
    if (r.status === 200 && statuses.includes(r.body.status)) return r.body;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(
    `job ${id} did not reach ${statuses.join("/")} within ${timeoutMs} ms; last: ${JSON.stringify(last)}`,
  );
}

export async function metricsText(opsBase: string): Promise<string> {
  return (await fetch(`${opsBase}/metrics`)).text();
}

/** Reads one sample value from Prometheus text, e.g. metricValue(t, 'gateway_job_outcomes_total{outcome="succeeded"}'). */
export function metricValue(text: string, series: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}
