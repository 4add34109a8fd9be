import { z } from "zod";
import { doc, duration, quantity, type Environment } from "../schema-kit";

const SLO_DEFAULTS = {
  errorRatePercent: 1,
  p95LatencyMs: 2000,
  p99LatencyMs: 5000,
  timeToFirstTokenMs: 1000,
  interTokenLatencyMs: 100,
  queueWaitMs: 500,
  queueDepth: 100,
  gpuMemoryPercent: 95,
  gpuUtilizationPercent: 95,
};

export const sloSchema = z.strictObject({
  errorRatePercent: doc(z.number().min(0).max(100).default(1), "Max 5xx share of requests (%).", 0.5),
  p95LatencyMs: doc(z.number().int().positive().default(2000), "Max p95 request latency (ms).", 1500),
  p99LatencyMs: doc(z.number().int().positive().default(5000), "Max p99 request latency (ms).", 4000),
  timeToFirstTokenMs: doc(
    z.number().int().positive().default(1000),
    "Max p95 time to first streamed token (ms).",
    800,
  ),
  interTokenLatencyMs: doc(
    z.number().int().positive().default(100),
    "Max p95 time between two streamed tokens (ms); a model service's default (its `slo`).",
    80,
  ),
  queueWaitMs: doc(
    z.number().int().positive().default(500),
    "Max p95 time a request waits in a model server's queue before it runs (ms); a model service's default (its `slo`).",
    300,
  ),
  queueDepth: doc(z.number().int().positive().default(100), "Max jobs/requests waiting.", 200),
  gpuMemoryPercent: doc(
    z.number().min(1).max(100).default(95),
    "GPU framebuffer use (%) above which an alert fires.",
    90,
  ),
  gpuUtilizationPercent: doc(
    z.number().min(1).max(100).default(95),
    "Sustained GPU utilization (%) that means the pool is saturated.",
    90,
  ),
});

/** A logs or traces store: its retention defaults by environment (storeRetention) when unset. */
function storeSchema(what: "logs" | "traces") {
  return z.strictObject({
    enabled: doc(z.boolean().default(true), `Run the ${what} store (off with monitoring).`, true),
    retention: doc(
      z
        .string()
        // Whole days: Loki's retention must be a multiple of its 24h index period.
        .regex(/^[1-9][0-9]*(d|w)$/, "must be whole days or weeks such as 3d or 2w")
        .optional(),
      `How long ${what} are kept; unset: 1d on local, 3d on dev, 7d on staging, 14d on prod.`,
      "7d",
    ),
    storageSize: doc(quantity.default("10Gi"), `Volume of the ${what} store.`, "50Gi"),
  });
}

export const monitoringSchema = z.strictObject({
  enabled: doc(
    z.boolean().default(true),
    "kube-prometheus-stack, Grafana, OpenTelemetry and SLO alerts.",
    true,
  ),
  retention: doc(duration.default("2d"), "Prometheus retention.", "15d"),
  storageSize: doc(quantity.default("10Gi"), "Prometheus volume size.", "100Gi"),
  prometheusReplicas: doc(z.number().int().min(1).max(5).default(1), "Prometheus replicas.", 2),
  grafanaStorageSize: doc(
    quantity.optional(),
    "Persist Grafana (users, edits) on a volume of this size; unset keeps it stateless.",
    "5Gi",
  ),
  otel: doc(z.boolean().default(true), "Run the OpenTelemetry collector.", true),
  otelTracesEndpoint: doc(
    z.string().min(1).optional(),
    "OTLP/gRPC endpoint traces are forwarded to (an external Tempo, Jaeger); unset: the in-cluster Tempo when `traces` is on, else a logged summary (debug exporter).",
    "https://traces.example.org:4317",
  ),
  logs: doc(
    storeSchema("logs").default({ enabled: true, storageSize: "10Gi" }),
    "The in-cluster log store (Loki, single binary) and its node agent (Grafana Alloy), a Grafana datasource.",
    { enabled: true, retention: "30d", storageSize: "50Gi" },
  ),
  traces: doc(
    storeSchema("traces").default({ enabled: true, storageSize: "10Gi" }),
    "The in-cluster trace store (Tempo, single binary), fed by the OpenTelemetry collector, a Grafana datasource.",
    { enabled: true, retention: "7d", storageSize: "20Gi" },
  ),
  alertWebhook: doc(
    z.boolean().default(false),
    "Send alerts to the webhook in the platform:alertWebhookUrl secret.",
    true,
  ),
  slo: doc(
    sloSchema.default(SLO_DEFAULTS),
    "Inference SLO thresholds: the gateway's alert rules, and the defaults of every model service's `slo`.",
    {
      errorRatePercent: 0.5,
      p99LatencyMs: 3000,
    },
  ),
});
export type MonitoringConfig = z.infer<typeof monitoringSchema>;
export type SloConfig = z.infer<typeof sloSchema>;

/** Default retention of the logs and traces stores: short where data is throwaway. */
export const STORE_RETENTION: Record<Environment, string> = {
  local: "1d",
  dev: "3d",
  staging: "7d",
  prod: "14d",
};

/** The retention a store keeps: its configured one, else its environment's default. */
export function storeRetention(store: { retention?: string | undefined }, env: Environment): string {
  return store.retention ?? STORE_RETENTION[env];
}
