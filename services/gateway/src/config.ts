import { z } from "zod";

export type Role = "api" | "worker";

/** Raised when the environment does not describe a valid configuration. The message is meant for humans. */
export class ConfigError extends Error {
  constructor(
    message: string,
    readonly problems: { variable: string; message: string }[],
  ) {
    super(message);
    this.name = "ConfigError";
  }
}

/** An example value for every variable, quoted in error messages and in the README. */
export const ENV_EXAMPLES: Record<string, string> = {
  GATEWAY_ROLE: "api",
  NATS_URL: "nats://nats.nats.svc:4222",
  NATS_CREDS_FILE: "/var/run/secrets/nats/gateway.creds",
  NATS_TIMEOUT_MS: "5000",
  BACKEND_URL: "http://vllm.inference.svc:8000/v1",
  BACKEND_API_KEY_FILE: "/var/run/secrets/backend/api-key",
  BACKEND_TIMEOUT_MS: "300000",
  BACKEND_MAX_SOCKETS: "512",
  API_KEYS_FILE: "/var/run/secrets/gateway/api-keys.json",
  API_KEYS_RELOAD_MS: "30000",
  HOST: "0.0.0.0",
  PORT: "8080",
  METRICS_PORT: "9090",
  PUBLIC_BASE_URL: "https://api.example.com",
  LOG_LEVEL: "info",
  MAX_BODY_BYTES: "262144",
  RATE_LIMIT_RPS: "10",
  RATE_LIMIT_BURST: "20",
  JOB_RESULT_TTL_SECONDS: "86400",
  JOBS_STREAM: "GATEWAY_JOBS",
  JOBS_SUBJECT: "gateway.jobs.queue",
  JOBS_CONSUMER: "gateway-workers",
  DLQ_STREAM: "GATEWAY_JOBS_DLQ",
  DLQ_SUBJECT: "gateway.jobs.dead",
  JOBS_KV_BUCKET: "gateway-jobs",
  IDEMPOTENCY_KV_BUCKET: "gateway-idempotency",
  JETSTREAM_REPLICAS: "3",
  WORKER_CONCURRENCY: "4",
  WORKER_MAX_ATTEMPTS: "5",
  WORKER_BACKOFF_BASE_MS: "1000",
  WORKER_BACKOFF_MAX_MS: "60000",
  WORKER_ACK_WAIT_SECONDS: "30",
  SHUTDOWN_TIMEOUT_MS: "25000",
  MODELS: "llama-3.1-8b-instruct,qwen2.5-7b-instruct",
  REQUEST_TIMEOUT_MS: "30000",
  HEADERS_TIMEOUT_MS: "10000",
  KEEP_ALIVE_TIMEOUT_MS: "72000",
  IDLE_TIMEOUT_MS: "300000",
  MAX_REQUESTS_PER_SOCKET: "10000",
  MAX_HEADER_BYTES: "16384",
  MAX_CONNECTIONS: "4096",
  MAX_CONCURRENT_STREAMS: "1024",
  KEY_MAX_CONCURRENT_STREAMS: "256",
  MAX_JSON_DEPTH: "64",
  MAX_TOKENS: "32768",
  MAX_N: "8",
  JOBS_MAX_QUEUED: "100000",
  JOBS_KV_MAX_BYTES: "1073741824",
  JOBS_KV_MAX_RECORDS: "1000000",
  IDEMPOTENCY_KV_MAX_BYTES: "268435456",
  DLQ_MAX_BYTES: "268435456",
  DLQ_MAX_MSGS: "100000",
  DLQ_MAX_AGE_SECONDS: "1209600",
  TENANT_MAX_QUEUED_BYTES: "67108864",
};

/** Defaults of the HTTP server limits (also used by apps built without a configuration, e.g. the bench). */
export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  // Above the 60 s idle timeout of common load balancers, so they never reuse a socket we just closed.
  keepAliveTimeoutMs: 72_000,
  idleTimeoutMs: 300_000,
  maxRequestsPerSocket: 10_000,
  maxHeaderBytes: 16_384,
  maxConnections: 4096,
  maxConcurrentStreams: 1024,
};

export const DEFAULT_KEY_LIMITS: KeyLimitDefaults = {
  maxConcurrentStreams: 256,
  maxTokens: 32_768,
  maxN: 8,
  maxQueuedBytes: 64 * 1024 ** 2,
};

export const DEFAULT_MAX_JSON_DEPTH = 64;

/** Model names as the jobs API accepts them (also what may become a metric label). */
export const MODEL_NAME = /^[A-Za-z0-9._:/@-]{1,256}$/;

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const streamName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be 1-64 characters of A-Z a-z 0-9 _ -");
const subject = z
  .string()
  .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, "must be a NATS subject without wildcards");
const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), "must be an http:// or https:// URL");
const natsUrls = z
  .string()
  .min(1)
  .refine(
    (v) => v.split(",").every((u) => /^(nats|tls|ws|wss):\/\/[^\s]+$/.test(u.trim())),
    "must be a comma-separated list of nats:// (or tls://) URLs",
  );

const envSchema = z.object({
  GATEWAY_ROLE: z.enum(["api", "worker"]).optional(),
  NATS_URL: natsUrls,
  NATS_CREDS_FILE: z.string().min(1).optional(),
  NATS_TIMEOUT_MS: int(100, 60_000).default(5000),
  BACKEND_URL: httpUrl,
  BACKEND_API_KEY_FILE: z.string().min(1).optional(),
  BACKEND_TIMEOUT_MS: int(1000, 3_600_000).default(300_000),
  BACKEND_MAX_SOCKETS: int(1, 65_536).default(512),
  API_KEYS_FILE: z.string().min(1).optional(),
  API_KEYS_RELOAD_MS: int(0, 3_600_000).default(30_000),
  HOST: z.string().min(1).default("0.0.0.0"),
  PORT: int(0, 65_535).default(8080),
  METRICS_PORT: int(0, 65_535).default(9090),
  PUBLIC_BASE_URL: httpUrl.optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  MAX_BODY_BYTES: int(1024, 768 * 1024).default(256 * 1024),
  RATE_LIMIT_RPS: z.coerce.number().positive().max(1_000_000).default(10),
  RATE_LIMIT_BURST: int(1, 1_000_000).default(20),
  JOB_RESULT_TTL_SECONDS: int(1, 365 * 86_400).default(86_400),
  JOBS_STREAM: streamName.default("GATEWAY_JOBS"),
  JOBS_SUBJECT: subject.default("gateway.jobs.queue"),
  JOBS_CONSUMER: streamName.default("gateway-workers"),
  DLQ_STREAM: streamName.default("GATEWAY_JOBS_DLQ"),
  DLQ_SUBJECT: subject.default("gateway.jobs.dead"),
  JOBS_KV_BUCKET: streamName.default("gateway-jobs"),
  IDEMPOTENCY_KV_BUCKET: streamName.default("gateway-idempotency"),
  JETSTREAM_REPLICAS: int(1, 5).default(1),
  WORKER_CONCURRENCY: int(1, 1024).default(4),
  WORKER_MAX_ATTEMPTS: int(1, 100).default(5),
  WORKER_BACKOFF_BASE_MS: int(0, 3_600_000).default(1000),
  WORKER_BACKOFF_MAX_MS: int(0, 3_600_000).default(60_000),
  WORKER_ACK_WAIT_SECONDS: int(1, 3600).default(30),
  SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(25_000),
  MODELS: z
    .string()
    .refine(
      (v) => v.split(",").every((m) => MODEL_NAME.test(m.trim())),
      "must be a comma-separated list of model names (A-Z a-z 0-9 . _ : / @ -)",
    )
    .optional(),
  REQUEST_TIMEOUT_MS: int(100, 3_600_000).default(DEFAULT_HTTP_LIMITS.requestTimeoutMs),
  HEADERS_TIMEOUT_MS: int(100, 3_600_000).default(DEFAULT_HTTP_LIMITS.headersTimeoutMs),
  KEEP_ALIVE_TIMEOUT_MS: int(100, 3_600_000).default(DEFAULT_HTTP_LIMITS.keepAliveTimeoutMs),
  IDLE_TIMEOUT_MS: int(1000, 3_600_000).optional(),
  MAX_REQUESTS_PER_SOCKET: int(0, 10_000_000).default(DEFAULT_HTTP_LIMITS.maxRequestsPerSocket),
  MAX_HEADER_BYTES: int(1024, 1024 * 1024).default(DEFAULT_HTTP_LIMITS.maxHeaderBytes),
  MAX_CONNECTIONS: int(1, 1_000_000).default(DEFAULT_HTTP_LIMITS.maxConnections),
  MAX_CONCURRENT_STREAMS: int(1, 1_000_000).default(DEFAULT_HTTP_LIMITS.maxConcurrentStreams),
  KEY_MAX_CONCURRENT_STREAMS: int(1, 1_000_000).default(DEFAULT_KEY_LIMITS.maxConcurrentStreams),
  MAX_JSON_DEPTH: int(2, 1000).default(DEFAULT_MAX_JSON_DEPTH),
  MAX_TOKENS: int(1, 10_000_000).default(DEFAULT_KEY_LIMITS.maxTokens),
  MAX_N: int(1, 128).default(DEFAULT_KEY_LIMITS.maxN),
  JOBS_MAX_QUEUED: int(1, 100_000_000).default(100_000),
  JOBS_KV_MAX_BYTES: int(1024 * 1024, 2 ** 50).default(1024 ** 3),
  JOBS_KV_MAX_RECORDS: int(1, 1_000_000_000).default(1_000_000),
  IDEMPOTENCY_KV_MAX_BYTES: int(1024 * 1024, 2 ** 50).default(256 * 1024 ** 2),
  DLQ_MAX_BYTES: int(1024 * 1024, 2 ** 50).default(256 * 1024 ** 2),
  DLQ_MAX_MSGS: int(1, 1_000_000_000).default(100_000),
  DLQ_MAX_AGE_SECONDS: int(1, 365 * 86_400).default(14 * 86_400),
  TENANT_MAX_QUEUED_BYTES: int(1024, 2 ** 50).default(DEFAULT_KEY_LIMITS.maxQueuedBytes),
});

export interface GatewayConfig {
  role: Role;
  nats: { servers: string[]; credsFile?: string; timeoutMs: number };
  backend: { url: string; apiKeyFile?: string; timeoutMs: number; maxSockets: number };
  apiKeysFile?: string;
  apiKeysReloadMs: number;
  host: string;
  port: number;
  metricsPort: number;
  publicBaseUrl?: string;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  maxBodyBytes: number;
  rateLimit: { rps: number; burst: number };
  jobs: {
    ttlSeconds: number;
    stream: string;
    subject: string;
    consumer: string;
    dlqStream: string;
    dlqSubject: string;
    kvBucket: string;
    idempotencyBucket: string;
    replicas: number;
    /** Messages the work-queue stream holds at most (queued jobs); its max bytes follow from it. */
    maxQueued: number;
    kvMaxBytes: number;
    kvMaxRecords: number;
    idempotencyMaxBytes: number;
    dlqMaxBytes: number;
    dlqMaxMsgs: number;
    dlqMaxAgeSeconds: number;
  };
  worker: {
    concurrency: number;
    maxAttempts: number;
    backoffBaseMs: number;
    backoffMaxMs: number;
    ackWaitSeconds: number;
  };
  shutdownTimeoutMs: number;
  /** The models this deployment serves: the only values the `model` metric label takes (others: "other"). */
  models: string[];
  http: HttpLimits;
  /** Defaults for the per-key limits of the keys file. */
  keyDefaults: KeyLimitDefaults;
  maxJsonDepth: number;
}

/** Limits of the API's HTTP server (see README, "Limits"). */
export interface HttpLimits {
  /** Deadline for receiving a whole request (headers and body), from its first byte. */
  requestTimeoutMs: number;
  /** Deadline for receiving the request headers. */
  headersTimeoutMs: number;
  /** An idle kept-alive socket is closed after this long. */
  keepAliveTimeoutMs: number;
  /** A socket with no traffic in either direction is closed after this long. */
  idleTimeoutMs: number;
  /** A kept-alive socket is closed after this many requests (0 = unlimited). */
  maxRequestsPerSocket: number;
  maxHeaderBytes: number;
  /** Open client connections per replica; requests on connections beyond it get 503. */
  maxConnections: number;
  /** Relayed requests in flight per replica; beyond it 503. */
  maxConcurrentStreams: number;
}

export interface KeyLimitDefaults {
  maxConcurrentStreams: number;
  maxTokens: number;
  maxN: number;
  maxQueuedBytes: number;
}

function fail(problems: { variable: string; message: string }[]): never {
  const lines = problems.map((p) => {
    const example = ENV_EXAMPLES[p.variable];
    return `  - ${p.variable}: ${p.message}${example ? ` (example: ${p.variable}=${example})` : ""}`;
  });
  throw new ConfigError(`Invalid gateway configuration:\n${lines.join("\n")}`, problems);
}

/**
 * Validates the environment and returns the typed configuration, or throws a {@link ConfigError}
 * that names every bad variable with an example value. Empty strings count as unset.
 */
export function loadConfig(env: NodeJS.ProcessEnv, roleOverride?: string): GatewayConfig {
  const cleaned: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const v = env[key];
    if (v !== undefined && v.trim() !== "") cleaned[key] = v.trim();
  }
  const problems: { variable: string; message: string }[] = [];
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const variable = String(issue.path[0] ?? "environment");
      const message = cleaned[variable] === undefined ? "is required" : issue.message;
      problems.push({ variable, message });
    }
    const role = roleOverride ?? cleaned.GATEWAY_ROLE ?? "api";
    if (role === "api" && cleaned.API_KEYS_FILE === undefined) {
      problems.push({ variable: "API_KEYS_FILE", message: "is required for the api role" });
    }
    fail(problems);
  }
  const e = parsed.data;
  const role = roleOverride ?? e.GATEWAY_ROLE ?? "api";
  if (role !== "api" && role !== "worker") {
    fail([{ variable: "GATEWAY_ROLE", message: `unknown role "${role}", expected "api" or "worker"` }]);
  }
  if (role === "api" && !e.API_KEYS_FILE) {
    problems.push({ variable: "API_KEYS_FILE", message: "is required for the api role" });
  }
  if (e.WORKER_BACKOFF_MAX_MS < e.WORKER_BACKOFF_BASE_MS) {
    problems.push({ variable: "WORKER_BACKOFF_MAX_MS", message: "must be >= WORKER_BACKOFF_BASE_MS" });
  }
  if (e.PORT !== 0 && e.PORT === e.METRICS_PORT) {
    problems.push({ variable: "METRICS_PORT", message: "must differ from PORT" });
  }
  if (e.JOBS_STREAM === e.DLQ_STREAM) {
    problems.push({ variable: "DLQ_STREAM", message: "must differ from JOBS_STREAM" });
  }
  if (e.JOBS_KV_BUCKET === e.IDEMPOTENCY_KV_BUCKET) {
    problems.push({ variable: "IDEMPOTENCY_KV_BUCKET", message: "must differ from JOBS_KV_BUCKET" });
  }
  if (e.HEADERS_TIMEOUT_MS > e.REQUEST_TIMEOUT_MS) {
    problems.push({ variable: "HEADERS_TIMEOUT_MS", message: "must be <= REQUEST_TIMEOUT_MS" });
  }
  if (problems.length > 0) fail(problems);

  return {
    role,
    nats: {
      servers: e.NATS_URL.split(",").map((s) => s.trim()),
      credsFile: e.NATS_CREDS_FILE,
      timeoutMs: e.NATS_TIMEOUT_MS,
    },
    backend: {
      url: e.BACKEND_URL.replace(/\/+$/, ""),
      apiKeyFile: e.BACKEND_API_KEY_FILE,
      timeoutMs: e.BACKEND_TIMEOUT_MS,
      maxSockets: e.BACKEND_MAX_SOCKETS,
    },
    apiKeysFile: e.API_KEYS_FILE,
    apiKeysReloadMs: e.API_KEYS_RELOAD_MS,
    host: e.HOST,
    port: e.PORT,
    metricsPort: e.METRICS_PORT,
    publicBaseUrl: e.PUBLIC_BASE_URL?.replace(/\/+$/, ""),
    logLevel: e.LOG_LEVEL,
    maxBodyBytes: e.MAX_BODY_BYTES,
    rateLimit: { rps: e.RATE_LIMIT_RPS, burst: e.RATE_LIMIT_BURST },
    jobs: {
      ttlSeconds: e.JOB_RESULT_TTL_SECONDS,
      stream: e.JOBS_STREAM,
      subject: e.JOBS_SUBJECT,
      consumer: e.JOBS_CONSUMER,
      dlqStream: e.DLQ_STREAM,
      dlqSubject: e.DLQ_SUBJECT,
      kvBucket: e.JOBS_KV_BUCKET,
      idempotencyBucket: e.IDEMPOTENCY_KV_BUCKET,
      replicas: e.JETSTREAM_REPLICAS,
      maxQueued: e.JOBS_MAX_QUEUED,
      kvMaxBytes: e.JOBS_KV_MAX_BYTES,
      kvMaxRecords: e.JOBS_KV_MAX_RECORDS,
      idempotencyMaxBytes: e.IDEMPOTENCY_KV_MAX_BYTES,
      dlqMaxBytes: e.DLQ_MAX_BYTES,
      dlqMaxMsgs: e.DLQ_MAX_MSGS,
      dlqMaxAgeSeconds: e.DLQ_MAX_AGE_SECONDS,
    },
    worker: {
      concurrency: e.WORKER_CONCURRENCY,
      maxAttempts: e.WORKER_MAX_ATTEMPTS,
      backoffBaseMs: e.WORKER_BACKOFF_BASE_MS,
      backoffMaxMs: e.WORKER_BACKOFF_MAX_MS,
      ackWaitSeconds: e.WORKER_ACK_WAIT_SECONDS,
    },
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    models: e.MODELS
      ? [
          ...new Set(
            e.MODELS.split(",")
              .map((m) => m.trim())
              .filter(Boolean),
          ),
        ]
      : [],
    http: {
      requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
      headersTimeoutMs: e.HEADERS_TIMEOUT_MS,
      keepAliveTimeoutMs: e.KEEP_ALIVE_TIMEOUT_MS,
      // A silent backend (long prefill) is allowed BACKEND_TIMEOUT_MS; the client socket as long.
      idleTimeoutMs: e.IDLE_TIMEOUT_MS ?? e.BACKEND_TIMEOUT_MS,
      maxRequestsPerSocket: e.MAX_REQUESTS_PER_SOCKET,
      maxHeaderBytes: e.MAX_HEADER_BYTES,
      maxConnections: e.MAX_CONNECTIONS,
      maxConcurrentStreams: e.MAX_CONCURRENT_STREAMS,
    },
    keyDefaults: {
      maxConcurrentStreams: e.KEY_MAX_CONCURRENT_STREAMS,
      maxTokens: e.MAX_TOKENS,
      maxN: e.MAX_N,
      maxQueuedBytes: e.TENANT_MAX_QUEUED_BYTES,
    },
    maxJsonDepth: e.MAX_JSON_DEPTH,
  };
}
