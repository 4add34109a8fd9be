/**
 * Platform SLO alerts as PrometheusRule groups: the gateway's and the GPU pools'. Metric names
 * follow the gateway (services/gateway/src/metrics.ts: gateway_http_request_duration_seconds{route,
 * status_code}, gateway_time_to_first_token_seconds{model}, gateway_queue_depth{state}) and the DCGM
 * exporter (DCGM_FI_DEV_*). Every threshold comes from `platform:monitoring.slo`. Each model
 * service's own objectives (vllm:* series) are its burn-rate alerts, beside it (inference/slo.ts).
 */
import { GPU_POOL_LABEL } from "../meta";
import type { SloConfig } from "./schema";

export interface AlertRule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface RuleGroup {
  name: string;
  interval?: string;
  rules: AlertRule[];
}

/** kube-state-metrics exports the pool node label as `label_<sanitized>` (see the allowlist). */
export const POOL_NODE_LABEL = `label_${GPU_POOL_LABEL.replace(/[^A-Za-z0-9]/g, "_")}`;

/**
 * `metric` per DCGM series with a `pool` label joined from its node's GPU-pool label; `poolMatch`
 * (a PromQL matcher such as `=~"$pool"`) keeps only some pools.
 */
export function withPool(metric: string, poolMatch = '!=""'): string {
  const nodes =
    `label_replace(label_replace(kube_node_labels{${POOL_NODE_LABEL}${poolMatch}}, "Hostname", "$1", "node", "(.*)"),` +
    ` "pool", "$1", "${POOL_NODE_LABEL}", "(.*)")`;
  return `(${metric} * on (Hostname) group_left (pool) ${nodes})`;
}

const seconds = (ms: number) => String(ms / 1000);

/** What the platform's alerts read of `platform:monitoring.slo` (the rest sets model services' SLOs). */
export type PlatformSlo = Omit<SloConfig, "interTokenLatencyMs" | "queueWaitMs">;

export function sloRuleGroups(slo: PlatformSlo): RuleGroup[] {
  const fiveXx = `sum by (namespace) (rate(gateway_http_request_duration_seconds_count{status_code=~"5.."}[5m]))`;
  const all = `sum by (namespace) (rate(gateway_http_request_duration_seconds_count[5m]))`;
  const quantile = (q: number, bucket: string, by: string) =>
    `histogram_quantile(${q}, sum by (le, ${by}) (rate(${bucket}[5m])))`;
  const page = { severity: "critical" };
  const warn = { severity: "warning" };
  return [
    {
      name: "gpu.recording",
      rules: [
        {
          record: "platform:gpu_utilization:avg_by_pool",
          expr: `avg by (pool) ${withPool("DCGM_FI_DEV_GPU_UTIL")}`,
        },
        {
          record: "platform:gpu_memory_used_ratio:by_gpu",
          expr: withPool("(DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE))"),
        },
      ],
    },
    {
      name: "inference.slo",
      rules: [
        {
          alert: "InferenceErrorRateHigh",
          expr: `100 * ${fiveXx} / ${all} > ${slo.errorRatePercent}`,
          for: "5m",
          labels: page,
          annotations: {
            summary: `Gateway 5xx responses above ${slo.errorRatePercent}% in {{ $labels.namespace }}`,
          },
        },
        {
          alert: "InferenceLatencyP95High",
          expr: `${quantile(0.95, "gateway_http_request_duration_seconds_bucket", "namespace, route")} > ${seconds(slo.p95LatencyMs)}`,
          for: "10m",
          labels: warn,
          annotations: { summary: `p95 latency of {{ $labels.route }} above ${slo.p95LatencyMs} ms` },
        },
        {
          alert: "InferenceLatencyP99High",
          expr: `${quantile(0.99, "gateway_http_request_duration_seconds_bucket", "namespace, route")} > ${seconds(slo.p99LatencyMs)}`,
          for: "10m",
          labels: page,
          annotations: { summary: `p99 latency of {{ $labels.route }} above ${slo.p99LatencyMs} ms` },
        },
        {
          alert: "TimeToFirstTokenHigh",
          expr: `${quantile(0.95, "gateway_time_to_first_token_seconds_bucket", "namespace, model")} > ${seconds(slo.timeToFirstTokenMs)}`,
          for: "10m",
          labels: page,
          annotations: {
            summary: `p95 time to first token of {{ $labels.model }} above ${slo.timeToFirstTokenMs} ms`,
          },
        },
        {
          alert: "InferenceQueueDepthHigh",
          expr: `sum by (namespace) (gateway_queue_depth{state="pending"}) > ${slo.queueDepth}`,
          for: "10m",
          labels: warn,
          annotations: { summary: `More than ${slo.queueDepth} jobs waiting in {{ $labels.namespace }}` },
        },
      ],
    },
    {
      name: "gpu.slo",
      rules: [
        {
          alert: "GpuMemoryNearlyFull",
          expr: `100 * platform:gpu_memory_used_ratio:by_gpu > ${slo.gpuMemoryPercent}`,
          for: "15m",
          labels: warn,
          annotations: {
            summary: `GPU {{ $labels.gpu }} on {{ $labels.Hostname }} (pool {{ $labels.pool }}) above ${slo.gpuMemoryPercent}% memory`,
          },
        },
        {
          alert: "GpuPoolSaturated",
          expr: `platform:gpu_utilization:avg_by_pool > ${slo.gpuUtilizationPercent}`,
          for: "30m",
          labels: warn,
          annotations: {
            summary: `GPU pool {{ $labels.pool }} above ${slo.gpuUtilizationPercent}% utilization for 30m: add capacity`,
          },
        },
      ],
    },
  ];
}
