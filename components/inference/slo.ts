/**
 * One SLO per model service, and everything it drives: the multi-window burn-rate alerts
 * (PrometheusRule groups), the KEDA triggers its autoscaler scales on, and the Flagger
 * MetricTemplates and checks that roll a release back when the canary breaches it. `sloFanOut` is
 * the only place a service's objectives become thresholds, so alerts, scaling and rollback never
 * disagree. Pure: no resources are created here.
 */
import type { AlertRule, RuleGroup } from "../monitoring/rules";
import type { SloConfig } from "../monitoring/schema";
import { PROMETHEUS_URL } from "../monitoring/monitoring";
import { successRateMetric, type FlaggerMetric } from "../workload";
import type { InferenceServiceConfig } from "./schema";

/** A model service's objectives, every number resolved. */
export interface ServiceSlo {
  /** p95 time to the first streamed token (ms). */
  readonly timeToFirstTokenMs: number;
  /** p95 time between two streamed tokens (ms). */
  readonly interTokenLatencyMs: number;
  /** Requests that fail, in percent of all (the error budget). */
  readonly errorRatePercent: number;
  /** p95 time a request waits in the server's queue before it runs (ms). */
  readonly queueWaitMs: number;
}

/** The service's `slo`, each unset number taken from `platform:monitoring.slo` (the platform's). */
export function resolveServiceSlo(
  s: Pick<InferenceServiceConfig, "slo">,
  platform: Pick<SloConfig, keyof ServiceSlo>,
): ServiceSlo {
  return {
    timeToFirstTokenMs: s.slo.timeToFirstTokenMs ?? platform.timeToFirstTokenMs,
    interTokenLatencyMs: s.slo.interTokenLatencyMs ?? platform.interTokenLatencyMs,
    // A zero platform objective would leave no budget to burn: the service's own minimum applies.
    errorRatePercent: s.slo.errorRatePercent ?? Math.max(platform.errorRatePercent, 0.01),
    queueWaitMs: s.slo.queueWaitMs ?? platform.queueWaitMs,
  };
}

/** A Prometheus histogram the SLO reads, with the buckets its exporter declares (seconds). */
export interface Histogram {
  readonly name: string;
  readonly buckets: readonly number[];
}

const TTFT_BUCKETS = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640,
  2560,
];
const TOKEN_BUCKETS = [
  0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80,
];
const REQUEST_BUCKETS = [
  0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680,
];

/**
 * The vLLM series the platform reads (the pinned v0.30, versions.ts), by the names and buckets of
 * vLLM's Prometheus logger (vllm/v1/metrics/loggers.py). Two were renamed on the way and their old
 * names are gone by v0.30 (vLLM hides a deprecated metric one minor release, removes it the next):
 * `vllm:gpu_cache_usage_perc` became `vllm:kv_cache_usage_perc` (0.9.2) and
 * `vllm:time_per_output_token_seconds` became `vllm:inter_token_latency_seconds` (0.11).
 */
export const VLLM_METRICS = {
  /** Gauge: requests queued for the next batch. */
  waiting: "vllm:num_requests_waiting",
  /** Gauge: used share of the KV cache, 0 to 1 (despite the name, not percent). */
  kvCache: "vllm:kv_cache_usage_perc",
  /** Counter of finished requests by `finished_reason`; `error` is one vLLM answers with a 500. */
  finished: "vllm:request_success_total",
  timeToFirstToken: { name: "vllm:time_to_first_token_seconds", buckets: TTFT_BUCKETS },
  interTokenLatency: { name: "vllm:inter_token_latency_seconds", buckets: TOKEN_BUCKETS },
  queueWait: { name: "vllm:request_queue_time_seconds", buckets: REQUEST_BUCKETS },
} as const satisfies Record<string, string | Histogram>;

/**
 * llama.cpp's server with `--metrics` (serverArgs passes it): gauges and counters only, no latency
 * histograms, and current builds (the pinned one included) no longer export the KV-cache gauge
 * older ones had (`llamacpp:kv_cache_usage_ratio`).
 */
export const LLAMACPP_METRICS = {
  /** Gauge: requests waiting for a free slot. */
  deferred: "llamacpp:requests_deferred",
} as const;

/**
 * The gateway's per-model counter of accepted jobs (services/gateway/src/metrics.ts), labelled
 * `model` with the served name for the models it fronts. It is counted when a job is accepted, so
 * it moves while the model has no replica at all: what wakes a model scaled to zero.
 */
export const GATEWAY_JOBS_SUBMITTED = "gateway_jobs_submitted_total";

/**
 * PromQL matcher of one Deployment's pods (`<deployment>-<template hash>-<suffix>`). Flagger's
 * primary copy is `<name>-primary`, one segment more, so the canary's matcher never takes it.
 */
export function podsOf(deployment: string): string {
  return `pod=~"${deployment}-[a-z0-9]+-[a-z0-9]+"`;
}

/**
 * The `le` label of a bucket bound as a regex: Prometheus clients print `1` or `1.0` (Python's
 * prints the float), and Prometheus 3 normalizes to the float form; a dot is literal.
 */
export function leMatcher(bound: number): string {
  const text = String(bound).replace(".", "[.]");
  return Number.isInteger(bound) ? `le=~"${text}|${text}[.]0"` : `le=~"${text}"`;
}

/**
 * The bucket an objective is measured at: the largest bound at or below it, so a request slower
 * than the objective is never counted as fast (one just under the objective may count as slow);
 * the smallest bound when the objective is below all of them.
 */
export function bucketFor(seconds: number, buckets: readonly number[]): number {
  const below = buckets.filter((b) => b <= seconds + 1e-9);
  return below.length ? below[below.length - 1]! : buckets[0]!;
}

/**
 * The Google SRE workbook's multi-window, multi-burn-rate pages: the budget burning 14.4 times as
 * fast as the objective allows over 1 h (2 % of a 30-day budget) and still over the last 5 min, or
 * 6 times over 6 h and the last 30 min; the short window ends the page soon after the burn stops.
 */
export const BURN_RATES = [
  { factor: 14.4, long: "1h", short: "5m", for: "2m" },
  { factor: 6, long: "6h", short: "30m", for: "15m" },
] as const;
const WINDOWS = [...new Set(BURN_RATES.flatMap((b) => [b.long, b.short]))];

/** One service level indicator: the share of bad events over a window, and its budget. */
interface Indicator {
  /** Names the recording rules (`inference:slo_<id>:bad_ratio<window>`) and labels the alerts. */
  readonly id: "errors" | "time_to_first_token" | "inter_token_latency" | "queue_wait";
  readonly alert: string;
  /** Allowed share of bad events (the error budget, 0 to 1). */
  readonly budget: number;
  readonly objective: string;
  readonly badRatio: (window: string) => string;
}

const round = (n: number) => Number(n.toPrecision(6));

/** The share of a histogram's observations above `bound`, over `window`. */
function slowShare(h: Histogram, selector: string, bound: number, window: string): string {
  return (
    `1 - sum(rate(${h.name}_bucket{${selector},${leMatcher(bound)}}[${window}]))` +
    ` / sum(rate(${h.name}_count{${selector}}[${window}]))`
  );
}

function latencyIndicator(
  id: Indicator["id"],
  alert: string,
  what: string,
  h: Histogram,
  selector: string,
  objectiveMs: number,
): Indicator {
  const bound = bucketFor(objectiveMs / 1000, h.buckets);
  return {
    id,
    alert,
    // A p95 objective: 5 % of requests may be slower.
    budget: 0.05,
    objective: `p95 ${what} ${objectiveMs} ms (measured at the ${bound} s bucket)`,
    badRatio: (w) => slowShare(h, selector, bound, w),
  };
}

/** What the fan-out needs of a service, every number resolved. */
export interface SloFanOutInput {
  readonly name: string;
  readonly namespace: string;
  readonly runtime: InferenceServiceConfig["runtime"];
  readonly slo: ServiceSlo;
  readonly autoscaling: { readonly queuePerReplica?: number; readonly kvCacheUtilization: number };
  /** Flagger runs a canary: triggers are given for the primary too, and the analysis' checks. */
  readonly canary: boolean;
  /** Istio's request metrics exist (the llama.cpp error indicator reads them). */
  readonly mesh: boolean;
  /**
   * The platform's Prometheus runs (kube-prometheus-stack): the MetricTemplates query it. Without
   * it Flagger has its own, which scrapes Envoy only: the analysis keeps its builtin check.
   */
  readonly monitoring: boolean;
  /**
   * With scale-to-zero: how long (s) after the gateway accepted a job for the model it stays
   * active (the start budget: a replica that is still loading is not scaled away).
   */
  readonly activationWindowSeconds?: number;
}

/** A KEDA trigger (keda.sh/v1alpha1 ScaledObject `spec.triggers[]`), Prometheus scaler. */
export interface KedaTrigger {
  readonly type: "prometheus";
  readonly name: string;
  /** Value: the query is the deployment's whole load; AverageValue: divided by the replicas. */
  readonly metricType: "Value" | "AverageValue";
  readonly metadata: {
    readonly serverAddress: string;
    readonly query: string;
    readonly threshold: string;
    readonly activationThreshold?: string;
  };
}

/** A flagger.app/v1beta1 MetricTemplate's spec (Prometheus provider). */
export interface MetricTemplateSpec {
  readonly provider: { readonly type: "prometheus"; readonly address: string };
  readonly query: string;
}

export interface SloFanOut {
  /** The service's PrometheusRule groups: recorded bad-event ratios and burn-rate pages. */
  readonly rules: RuleGroup[];
  /** The ScaledObject's triggers (on the service's Deployment, i.e. the canary's under Flagger). */
  readonly triggers: KedaTrigger[];
  /** The same queries for Flagger's `-primary` copy, by trigger name (with canary only). */
  readonly primaryScalerQueries: Record<string, string>;
  /** MetricTemplates to create beside the Canary, by name. */
  readonly metricTemplates: { readonly name: string; readonly spec: MetricTemplateSpec }[];
  /** The canary analysis' checks, thresholds from the SLO (rollback after `threshold` failures). */
  readonly canaryMetrics: FlaggerMetric[];
}

/** The seconds of a millisecond objective, as KEDA and Flagger take a threshold. */
const secondsOf = (ms: number) => round(ms / 1000);

/**
 * A service's SLO as its alerts, autoscaler triggers and canary checks. Every threshold below is
 * one of `input.slo`'s numbers (or the autoscaling target it sets); nothing else feeds them.
 */
export function sloFanOut(input: SloFanOutInput): SloFanOut {
  const { name, namespace: ns, slo } = input;
  const vllm = input.runtime === "vllm";
  const service = `namespace="${ns}",model_name="${name}"`;

  // --- alerts: the service's indicators, each over every window, and its burn-rate pages.
  const indicators: Indicator[] = [];
  if (vllm) {
    const finished = VLLM_METRICS.finished;
    indicators.push(
      {
        id: "errors",
        alert: "ModelErrorBudgetBurn",
        budget: slo.errorRatePercent / 100,
        objective: `errors at most ${slo.errorRatePercent} %`,
        badRatio: (w) =>
          `sum(rate(${finished}{${service},finished_reason="error"}[${w}])) / sum(rate(${finished}{${service}}[${w}]))`,
      },
      latencyIndicator(
        "time_to_first_token",
        "ModelTimeToFirstTokenBudgetBurn",
        "time to first token",
        VLLM_METRICS.timeToFirstToken,
        service,
        slo.timeToFirstTokenMs,
      ),
      latencyIndicator(
        "inter_token_latency",
        "ModelInterTokenLatencyBudgetBurn",
        "inter-token latency",
        VLLM_METRICS.interTokenLatency,
        service,
        slo.interTokenLatencyMs,
      ),
      latencyIndicator(
        "queue_wait",
        "ModelQueueWaitBudgetBurn",
        "queue wait",
        VLLM_METRICS.queueWait,
        service,
        slo.queueWaitMs,
      ),
    );
  } else if (input.mesh) {
    // llama.cpp counts no errors and keeps no latency histograms: its sidecar's request metrics
    // give the error share (primary and canary alike); its latency objectives have no indicator.
    const workload = `reporter="destination",destination_workload_namespace="${ns}",destination_workload=~"${name}(-primary)?"`;
    indicators.push({
      id: "errors",
      alert: "ModelErrorBudgetBurn",
      budget: slo.errorRatePercent / 100,
      objective: `errors at most ${slo.errorRatePercent} %`,
      badRatio: (w) =>
        `sum(rate(istio_requests_total{${workload},response_code=~"5.."}[${w}])) / sum(rate(istio_requests_total{${workload}}[${w}]))`,
    });
  }
  const labels = { namespace: ns, service: name };
  const at = `{namespace="${ns}",service="${name}"}`;
  const record = (i: Indicator, w: string) => `inference:slo_${i.id}:bad_ratio${w}`;
  const rules: RuleGroup[] = indicators.length
    ? [
        {
          name: `slo.${name}.recording`,
          rules: indicators.flatMap((i) =>
            WINDOWS.map((w): AlertRule => ({ record: record(i, w), expr: i.badRatio(w), labels })),
          ),
        },
        {
          name: `slo.${name}`,
          rules: indicators.flatMap((i) =>
            BURN_RATES.map((b): AlertRule => ({
              alert: i.alert,
              expr:
                `${record(i, b.long)}${at} > ${round(b.factor * i.budget)}` +
                ` and ${record(i, b.short)}${at} > ${round(b.factor * i.budget)}`,
              for: b.for,
              labels: { severity: "critical", slo: i.id, window: b.long },
              annotations: {
                summary: `${name}: the ${i.objective} error budget burns ${b.factor}x over ${b.long}`,
              },
            })),
          ),
        },
      ]
    : [];

  // --- autoscaler: the runtime's own load, never CPU.
  const scaling: {
    name: string;
    metricType: KedaTrigger["metricType"];
    threshold: number;
    query: (pods: string) => string;
  }[] = [];
  if (vllm) {
    const pods = (deployment: string) => `namespace="${ns}",${podsOf(deployment)}`;
    scaling.push(
      {
        // Little's law: the requests waiting, over the requests finished per second, is how long a
        // new request will wait; more replicas finish more per second, so the wait falls with them
        // (HPA "Value": replicas × wait / objective). Waiting requests per replica may thus be the
        // queue-wait objective times what a replica finishes per second.
        name: "queue-wait",
        metricType: "Value",
        threshold: secondsOf(slo.queueWaitMs),
        query: (d) =>
          `sum(${VLLM_METRICS.waiting}{${pods(d)}}) / clamp_min(sum(rate(${VLLM_METRICS.finished}{${pods(d)}}[2m])), 0.01)`,
      },
      {
        // A full KV cache preempts running requests before the queue shows it.
        name: "kv-cache",
        metricType: "Value",
        threshold: input.autoscaling.kvCacheUtilization,
        query: (d) => `avg(${VLLM_METRICS.kvCache}{${pods(d)}})`,
      },
    );
    if (input.autoscaling.queuePerReplica !== undefined)
      scaling.push({
        name: "requests-waiting",
        metricType: "AverageValue",
        threshold: input.autoscaling.queuePerReplica,
        query: (d) => `sum(${VLLM_METRICS.waiting}{${pods(d)}})`,
      });
  } else
    scaling.push({
      // No queue time is measured: a deferred request waits for a whole generation to free a
      // slot, longer than any queue-wait objective, so one deferred request per replica is the
      // target unless the service sets its own.
      name: "requests-waiting",
      metricType: "AverageValue",
      threshold: input.autoscaling.queuePerReplica ?? 1,
      query: (d) => `sum(${LLAMACPP_METRICS.deferred}{namespace="${ns}",${podsOf(d)}})`,
    });
  const activation =
    input.activationWindowSeconds === undefined
      ? []
      : [
          {
            // Wakes a model at zero replicas (activationThreshold 0: any job); its threshold is out
            // of reach, so it never asks for more than the one replica the load triggers take over.
            name: "gateway-jobs",
            metricType: "AverageValue" as const,
            query: `sum(increase(${GATEWAY_JOBS_SUBMITTED}{namespace="${ns}",model="${name}"}[${input.activationWindowSeconds}s]))`,
            threshold: "1000000",
            activationThreshold: "0",
          },
        ];
  const triggers: KedaTrigger[] = [
    ...scaling.map((t) => ({
      type: "prometheus" as const,
      name: t.name,
      metricType: t.metricType,
      metadata: { serverAddress: PROMETHEUS_URL, query: t.query(name), threshold: String(t.threshold) },
    })),
    ...activation.map((t) => ({
      type: "prometheus" as const,
      name: t.name,
      metricType: t.metricType,
      metadata: {
        serverAddress: PROMETHEUS_URL,
        query: t.query,
        threshold: t.threshold,
        activationThreshold: t.activationThreshold,
      },
    })),
  ];
  const primaryScalerQueries: Record<string, string> = input.canary
    ? Object.fromEntries([
        ...scaling.map((t) => [t.name, t.query(`${name}-primary`)] as const),
        ...activation.map((t) => [t.name, t.query] as const),
      ])
    : {};

  // --- canary analysis: the canary's own pods against the same objectives.
  const metricTemplates: SloFanOut["metricTemplates"] = [];
  const canaryMetrics: FlaggerMetric[] = input.canary ? [successRateMetric(slo.errorRatePercent)] : [];
  if (input.canary && input.monitoring && vllm) {
    const canaryPods = `namespace="{{ namespace }}",${podsOf("{{ target }}")}`;
    const p95 = (h: Histogram) =>
      `histogram_quantile(0.95, sum by (le) (rate(${h.name}_bucket{${canaryPods}}[{{ interval }}])))`;
    const finished = VLLM_METRICS.finished;
    const checks: { id: string; query: string; max: number }[] = [
      {
        id: "errors",
        query: `100 * sum(rate(${finished}{${canaryPods},finished_reason="error"}[{{ interval }}])) / sum(rate(${finished}{${canaryPods}}[{{ interval }}]))`,
        max: slo.errorRatePercent,
      },
      {
        id: "time-to-first-token",
        query: p95(VLLM_METRICS.timeToFirstToken),
        max: secondsOf(slo.timeToFirstTokenMs),
      },
      {
        id: "inter-token-latency",
        query: p95(VLLM_METRICS.interTokenLatency),
        max: secondsOf(slo.interTokenLatencyMs),
      },
      { id: "queue-wait", query: p95(VLLM_METRICS.queueWait), max: secondsOf(slo.queueWaitMs) },
    ];
    for (const c of checks) {
      const template = `${name}-${c.id}`;
      metricTemplates.push({
        name: template,
        spec: { provider: { type: "prometheus", address: PROMETHEUS_URL }, query: c.query },
      });
      canaryMetrics.push({
        name: c.id,
        templateRef: { name: template, namespace: ns },
        thresholdRange: { max: c.max },
        interval: "1m",
      });
    }
  }
  return { rules, triggers, primaryScalerQueries, metricTemplates, canaryMetrics };
}
