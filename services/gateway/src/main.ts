import { readFileSync } from "node:fs";
import { Events, connect, credsAuthenticator, type NatsConnection } from "nats";
import { KeyStore } from "./auth";
import { Backend } from "./backend";
import { ConfigError, type GatewayConfig, loadConfig } from "./config";
import { Readiness } from "./health";
import { JobStore } from "./jobs";
import { type Logger, createLogger } from "./log";
import { createMetrics } from "./metrics";
import { buildApp, buildOpsApp } from "./server";
import { type Tracing, tracingFromEnv } from "./tracing";
import { startWorker } from "./worker";

export { loadConfig, ConfigError } from "./config";
export { buildApp, buildOpsApp } from "./server";
export { startWorker } from "./worker";
export { JobStore } from "./jobs";
export { KeyStore, hashKey } from "./auth";
export { Backend } from "./backend";
export { Readiness } from "./health";
export { createMetrics } from "./metrics";

/** `--role api`, `--role=worker`; undefined when absent. */
export function parseRole(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--role") return argv[i + 1] ?? "";
    if (a.startsWith("--role=")) return a.slice("--role=".length);
  }
  return undefined;
}

export async function connectNats(cfg: GatewayConfig, log: Logger): Promise<NatsConnection> {
  const nc = await connect({
    servers: cfg.nats.servers,
    name: `gateway-${cfg.role}`,
    authenticator: cfg.nats.credsFile ? credsAuthenticator(readFileSync(cfg.nats.credsFile)) : undefined,
    waitOnFirstConnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    reconnectJitter: 250,
    pingInterval: 10_000,
    timeout: cfg.nats.timeoutMs,
  });
  log.info("connected to NATS", { server: nc.getServer() });
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === Events.Disconnect || s.type === Events.Reconnect) {
        log.warn(`NATS ${s.type}`, { server: typeof s.data === "string" ? s.data : JSON.stringify(s.data) });
      }
    }
  })();
  return nc;
}

/** Sets up streams, consumer and buckets, retrying while JetStream is unavailable. */
async function openStore(nc: NatsConnection, cfg: GatewayConfig, log: Logger, isStopping: () => boolean) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await JobStore.open(nc, cfg.jobs, cfg.worker.ackWaitSeconds, cfg.nats.timeoutMs);
    } catch (err) {
      if (isStopping()) throw err;
      log.warn("JetStream setup failed, retrying", { attempt, error: (err as Error).message });
      await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * attempt)));
    }
  }
}

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  let cfg: GatewayConfig;
  let tracing: Tracing | undefined;
  try {
    cfg = loadConfig(env, parseRole(argv));
    tracing = tracingFromEnv(env, cfg.role);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const log = createLogger(cfg.logLevel, { role: cfg.role }, tracing?.logFields);
  const metrics = createMetrics({ models: cfg.models });
  const readiness = new Readiness({ needsJetStream: true });
  const ops = buildOpsApp({ metrics, readiness, logLevel: cfg.logLevel });
  await ops.listen({ host: cfg.host, port: cfg.metricsPort });

  let stopping = false;
  let stopWork: (() => Promise<void>) | undefined;
  const conn: { nc?: NatsConnection } = {};
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    readiness.draining = true;
    log.info("shutting down: draining in-flight work", { signal, timeout_ms: cfg.shutdownTimeoutMs });
    const hardStop = setTimeout(() => {
      log.error("shutdown timed out, exiting");
      process.exit(1);
    }, cfg.shutdownTimeoutMs + 5000);
    hardStop.unref();
    try {
      await stopWork?.();
      await ops.close();
      if (conn.nc && !conn.nc.isClosed()) await conn.nc.drain();
      // The spans of the last requests and jobs are still buffered.
      await tracing?.shutdown();
    } catch (err) {
      log.error("error during shutdown", { error: (err as Error).message });
    }
    log.info("stopped");
    process.exit(0);
  };
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  process.once("SIGINT", () => void shutdown("SIGINT"));

  const backendKey = cfg.backend.apiKeyFile ? readFileSync(cfg.backend.apiKeyFile, "utf8").trim() : undefined;
  const backend = new Backend(cfg.backend.url, {
    apiKey: backendKey,
    maxSockets: cfg.backend.maxSockets,
    timeoutMs: cfg.backend.timeoutMs,
  });

  const nc = await connectNats(cfg, log);
  conn.nc = nc;
  const store = await openStore(nc, cfg, log, () => stopping);
  readiness.attach(nc, store);
  metrics.setQueueDepthSource(() => store.depth());
  log.info("JetStream ready", {
    stream: cfg.jobs.stream,
    consumer: cfg.jobs.consumer,
    kv: cfg.jobs.kvBucket,
    dlq: cfg.jobs.dlqStream,
  });

  if (cfg.role === "api") {
    await store.trackQueuedBytes();
    const keys = KeyStore.fromFile(cfg.apiKeysFile!);
    keys.watch(
      cfg.apiKeysFile!,
      cfg.apiKeysReloadMs,
      (e) => log.error("API keys reload failed; keeping the previous keys", { error: e.message }),
      () => log.info("API keys reloaded", { keys: keys.size }),
    );
    const app = buildApp({
      keys,
      backend,
      metrics,
      readiness,
      jobs: store,
      maxBodyBytes: cfg.maxBodyBytes,
      rateLimit: cfg.rateLimit,
      publicBaseUrl: cfg.publicBaseUrl,
      logLevel: cfg.logLevel,
      http: cfg.http,
      keyDefaults: cfg.keyDefaults,
      maxJsonDepth: cfg.maxJsonDepth,
      models: cfg.models,
      tracing,
    });
    await app.listen({ host: cfg.host, port: cfg.port });
    log.info("api listening", {
      port: cfg.port,
      metrics_port: cfg.metricsPort,
      keys: keys.size,
      tracing: tracing !== undefined,
    });
    stopWork = async () => {
      // Fastify stops accepting, answers 503 to new requests on kept-alive sockets and waits for in-flight
      // requests (including open SSE relays) to finish.
      const t = setTimeout(() => app.server.closeAllConnections(), cfg.shutdownTimeoutMs);
      await app.close();
      clearTimeout(t);
      keys.close();
      store.close();
      backend.close();
    };
  } else {
    const worker = startWorker({ store, backend, metrics, log, config: cfg.worker, tracing });
    log.info("worker pulling", { concurrency: cfg.worker.concurrency, metrics_port: cfg.metricsPort });
    stopWork = async () => {
      await worker.stop(cfg.shutdownTimeoutMs);
      backend.close();
    };
  }
}

if (require.main === module) {
  main(process.argv.slice(2), process.env).catch((err: unknown) => {
    process.stderr.write(`gateway failed to start: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
