import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export type JobOutcome =
  "succeeded" | "failed" | "dead_lettered" | "retried" | "cancelled" | "duplicate" | "expired" | "abandoned";

/** Source of queue depth numbers, read on scrape (consumer info from JetStream). */
export type QueueDepthSource = () => Promise<{ pending: number; inFlight: number; deadLettered: number }>;

/**
 * The `model` label takes only the names of the models this deployment serves (MODELS); any other
 * string a client sends becomes "other". A tenant thus cannot publish a value in /metrics (a secret
 * pasted into `model` would be), nor push the real models out of a first-come cap.
 */
export function modelLabel(model: string, served: ReadonlySet<string>): string {
  return served.has(model) ? model : "other";
}

const METHODS = new Set(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]);

/** The `method` label: the usual methods, else "other" (clients choose the method). */
export function methodLabel(method: string): string {
  return METHODS.has(method) ? method : "other";
}

export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<"method" | "route" | "status_code">;
  timeToFirstToken: Histogram<"model">;
  tokensPerSecond: Histogram<"model" | "source">;
  backendDuration: Histogram<"model" | "source" | "outcome">;
  jobsSubmitted: Counter<"model">;
  jobOutcomes: Counter<"outcome">;
  authFailures: Counter<"reason">;
  rateLimited: Counter;
  relayCancelled: Counter;
  workerInFlight: Gauge;
  queueDepth: Gauge<"state">;
  /** Label value for a client-supplied model name. */
  model(name: string): string;
  setQueueDepthSource(src: QueueDepthSource | undefined): void;
}

/** One registry per process (or per in-process app in tests). All metric names start with `gateway_`. */
export function createMetrics(opts: { defaultMetrics?: boolean; models?: readonly string[] } = {}): Metrics {
  const served: ReadonlySet<string> = new Set(opts.models ?? []);
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: "gateway_" });
  const registers = [registry];
  let depthSource: QueueDepthSource | undefined;

  const queueDepth = new Gauge({
    name: "gateway_queue_depth",
    help: "Jobs in the work-queue stream: pending = not yet delivered, in_flight = delivered and not acked, dead_lettered = messages in the dead-letter stream",
    labelNames: ["state"] as const,
    registers,
    async collect() {
      if (!depthSource) return;
      try {
        const d = await depthSource();
        this.set({ state: "pending" }, d.pending);
        this.set({ state: "in_flight" }, d.inFlight);
        this.set({ state: "dead_lettered" }, d.deadLettered);
      } catch {
        // JetStream unreachable: keep the last values; /readyz reports the outage.
      }
    },
  });

  return {
    registry,
    httpDuration: new Histogram({
      name: "gateway_http_request_duration_seconds",
      help: "HTTP request latency by route and status code",
      labelNames: ["method", "route", "status_code"] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    }),
    timeToFirstToken: new Histogram({
      name: "gateway_time_to_first_token_seconds",
      help: "Streaming relays (chat, completions, responses): time from request arrival to the first byte of the backend's event stream",
      labelNames: ["model"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers,
    }),
    tokensPerSecond: new Histogram({
      name: "gateway_tokens_per_second",
      help: "Generation speed per request: completion tokens (usage, or SSE data events when streaming) divided by generation time",
      labelNames: ["model", "source"] as const,
      buckets: [1, 5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560],
      registers,
    }),
    backendDuration: new Histogram({
      name: "gateway_backend_request_duration_seconds",
      help: "Duration of backend (OpenAI-compatible) calls",
      labelNames: ["model", "source", "outcome"] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    }),
    jobsSubmitted: new Counter({
      name: "gateway_jobs_submitted_total",
      help: "Jobs accepted (202) by the API, idempotent replays excluded",
      labelNames: ["model"] as const,
      registers,
    }),
    jobOutcomes: new Counter({
      name: "gateway_job_outcomes_total",
      help: "Job processing outcomes seen by workers (and cancellations seen by the API)",
      labelNames: ["outcome"] as const,
      registers,
    }),
    authFailures: new Counter({
      name: "gateway_auth_failures_total",
      help: "Requests rejected by API-key authentication or authorization",
      labelNames: ["reason"] as const,
      registers,
    }),
    rateLimited: new Counter({
      name: "gateway_rate_limited_total",
      help: "Requests rejected with 429 by the per-key rate limit",
      registers,
    }),
    relayCancelled: new Counter({
      name: "gateway_relay_client_disconnects_total",
      help: "Relayed requests (chat, completions, embeddings, responses) whose client left before the end; the upstream request was cancelled",
      registers,
    }),
    workerInFlight: new Gauge({
      name: "gateway_worker_in_flight_jobs",
      help: "Jobs this worker is processing right now",
      registers,
    }),
    queueDepth,
    model: (name) => modelLabel(name, served),
    setQueueDepthSource(src) {
      depthSource = src;
    },
  };
}
