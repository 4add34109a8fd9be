import { z } from "zod";
import { doc, duration, quantity } from "../schema-kit";

export const monitoringSchema = z.strictObject({
  enabled: doc(
    z.boolean().default(true),
    "kube-prometheus-stack, Grafana, OpenTelemetry and SLO alerts.",
    true,
  ),
  retention: doc(duration.default("2d"), "Prometheus retention.", "15d"),
  storageSize: doc(quantity.default("10Gi"), "Prometheus volume size.", "100Gi"),
  otel: doc(z.boolean().default(true), "Run the OpenTelemetry collector.", true),
  alertWebhook: doc(
    z.boolean().default(false),
    "Send alerts to the webhook in the platform:alertWebhookUrl secret.",
    true,
  ),
  slo: doc(
    z
      .strictObject({
        errorRatePercent: z.number().min(0).max(100).default(1),
        p95LatencyMs: z.number().int().positive().default(2000),
        p99LatencyMs: z.number().int().positive().default(5000),
        timeToFirstTokenMs: z.number().int().positive().default(1000),
        queueDepth: z.number().int().positive().default(100),
      })
      .default({
        errorRatePercent: 1,
        p95LatencyMs: 2000,
        p99LatencyMs: 5000,
        timeToFirstTokenMs: 1000,
        queueDepth: 100,
      }),
    "Inference SLO thresholds for the alert rules.",
    { errorRatePercent: 0.5, p99LatencyMs: 3000 },
  ),
});
export type MonitoringConfig = z.infer<typeof monitoringSchema>;
