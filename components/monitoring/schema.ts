import { z } from "zod";
import { doc, duration, quantity } from "../schema-kit";

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
    "OTLP/gRPC endpoint traces are forwarded to (Tempo, Jaeger); unset logs a summary (debug exporter).",
    "tempo.monitoring:4317",
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
