/**
 * The pure decisions every platform workload shares, model servers and first-party apps alike:
 * restricted Pod Security contexts, the autoscaler, the disruption budget's selector under Flagger,
 * the Flagger canary with automatic rollback on the SLOs, who may scrape, and stream-safe routes.
 * No resources are created here, so every decision is testable on plain data.
 */
import type * as k8s from "@pulumi/kubernetes";
import { FLAGGER_NAMESPACE } from "./mesh/mesh";
import { selectorLabels } from "./meta";
import { MESH_SCRAPE_TLS, MONITORING_NAMESPACE } from "./monitoring/monitoring";
import type { CanaryConfig } from "./schema-kit";

/** Non-root identity model servers run as (their images default to root; neither needs it). */
export const RUN_AS = 1000;

/** The restricted Pod Security profile, for a container (`uid`: the identity it runs as). */
export function restrictedContainerSecurity(uid: number = RUN_AS): k8s.types.input.core.v1.SecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: uid,
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  };
}

/** The restricted Pod Security profile, for a pod (fsGroup makes volumes writable for `uid`). */
export function restrictedPodSecurity(uid: number = RUN_AS): k8s.types.input.core.v1.PodSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: uid,
    fsGroup: uid,
    fsGroupChangePolicy: "OnRootMismatch",
    seccompProfile: { type: "RuntimeDefault" },
  };
}

type ScalingBehavior = k8s.types.input.autoscaling.v2.HorizontalPodAutoscalerBehavior;

/** autoscaling/v2 HPA spec on CPU (75 %); the HPA never goes below one replica. */
export function cpuHpaSpec(
  target: string,
  replicas: { min: number; max: number },
  behavior: ScalingBehavior,
): k8s.types.input.autoscaling.v2.HorizontalPodAutoscalerSpec {
  return {
    scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: target },
    minReplicas: Math.max(1, replicas.min),
    maxReplicas: replicas.max,
    metrics: [
      {
        type: "Resource",
        resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 75 } },
      },
    ],
    behavior,
  };
}

/**
 * The selector of a workload's disruption budget. Flagger copies a canaried Deployment to
 * `<name>-primary` and suffixes the selector label's value, so the primary's pods carry
 * `<name>-primary`; without a canary the Deployment's own selector.
 */
export function disruptionSelector(name: string, canary: boolean): Record<string, string> {
  return canary ? { "app.kubernetes.io/name": `${name}-primary` } : selectorLabels(name);
}

/** Istio HTTP retries that never replay a started stream: only before a request reached the server. */
export const STREAM_SAFE_RETRIES = { attempts: 2, retryOn: "connect-failure,refused-stream" } as const;

// ---- Flagger (flagger.app/v1beta1 Canary): no schema package exists, so the spec is typed here.

/** One check of a canary analysis: a Flagger builtin (Istio's metrics) or a MetricTemplate's query. */
export type FlaggerMetric = FlaggerBuiltinMetric | FlaggerTemplateMetric;

export interface FlaggerBuiltinMetric {
  readonly name: "request-success-rate" | "request-duration";
  readonly thresholdRange: { readonly min?: number; readonly max?: number };
  readonly interval: string;
}

/** A check whose query is a MetricTemplate (flagger.app/v1beta1) in the Canary's namespace. */
export interface FlaggerTemplateMetric {
  readonly name: string;
  readonly templateRef: { readonly name: string; readonly namespace: string };
  readonly thresholdRange: { readonly min?: number; readonly max?: number };
  readonly interval: string;
}

/**
 * What Flagger scales with the workload: it copies the autoscaler to `<name>-primary` for the
 * primary. A KEDA ScaledObject's trigger queries are rewritten for the primary from
 * `primaryScalerQueries` (by trigger name; Flagger's own rewrite replaces every occurrence of the
 * target's name in the query, which would also hit label values such as the served model name).
 */
export type FlaggerAutoscalerRef =
  | { readonly apiVersion: "autoscaling/v2"; readonly kind: "HorizontalPodAutoscaler"; readonly name: string }
  | {
      readonly apiVersion: "keda.sh/v1alpha1";
      readonly kind: "ScaledObject";
      readonly name: string;
      readonly primaryScalerQueries: Readonly<Record<string, string>>;
    };

interface FlaggerAnalysisBase {
  readonly interval: string;
  /** Failed checks before rollback. */
  readonly threshold: number;
  readonly metrics: readonly FlaggerMetric[];
}

/** Progressive traffic shifting. */
export interface FlaggerProgressiveAnalysis extends FlaggerAnalysisBase {
  readonly stepWeight: number;
  readonly maxWeight: number;
}

/** Blue/Green with traffic mirroring (Istio): `iterations` rounds, mirroring is only valid here. */
export interface FlaggerMirroredAnalysis extends FlaggerAnalysisBase {
  readonly iterations: number;
  readonly mirror: true;
  readonly mirrorWeight: number;
}

/** What Flagger routes: the apex Service and the VirtualService it generates in our place. */
export interface FlaggerService {
  readonly port: number;
  readonly targetPort: number;
  readonly portName: string;
  readonly gateways: readonly string[];
  readonly hosts: readonly string[];
  /** Istio HTTP matches (e.g. a path prefix on the ingress). */
  readonly match?: readonly Record<string, unknown>[];
  readonly timeout: string;
  readonly retries: { readonly attempts: number; readonly retryOn: string };
  readonly trafficPolicy?: Record<string, unknown>;
}

export interface FlaggerCanarySpec {
  readonly targetRef: { readonly apiVersion: "apps/v1"; readonly kind: "Deployment"; readonly name: string };
  readonly autoscalerRef?: FlaggerAutoscalerRef;
  readonly progressDeadlineSeconds: number;
  readonly service: FlaggerService;
  readonly analysis: FlaggerProgressiveAnalysis | FlaggerMirroredAnalysis;
}

export interface CanarySlo {
  /** Allowed error rate in percent (success rate must stay at or above 100 − this). */
  readonly errorRatePercent: number;
  /** Maximum p99 request duration in ms. */
  readonly p99LatencyMs: number;
}

export const DEFAULT_CANARY_SLO: CanarySlo = { errorRatePercent: 1, p99LatencyMs: 5000 };

/** What a Canary needs of its workload: the Deployment (and its autoscaler), its start budget and route. */
export interface CanaryTarget {
  /** Name of the Deployment and of its autoscaler. */
  readonly name: string;
  /**
   * The autoscaler Flagger copies for the primary: the workload's HorizontalPodAutoscaler when
   * unset; `null` when the workload runs a fixed count (Flagger then copies the replicas).
   */
  readonly autoscalerRef?: FlaggerAutoscalerRef | null;
  /** The analysis' checks; unset, the success rate and the p99 duration of the SLO. */
  readonly metrics?: readonly FlaggerMetric[];
  /** Seconds a new pod may take to become ready (Flagger waits this long before it rolls back). */
  readonly progressDeadlineSeconds: number;
  readonly service: FlaggerService;
  readonly canary: CanaryConfig;
}

/** Flagger's builtin success rate (Istio's non-5xx share, in %) at an error-rate objective. */
export function successRateMetric(errorRatePercent: number): FlaggerBuiltinMetric {
  return {
    name: "request-success-rate",
    thresholdRange: { min: Math.round((100 - errorRatePercent) * 100) / 100 },
    interval: "1m",
  };
}

/**
 * The Canary for a workload: Flagger owns the apex Service, `-primary`/`-canary` Services, the
 * VirtualService and DestinationRules, so the route settings live here instead. Rollback is
 * automatic after `threshold` failed checks of the success rate or the p99 latency (the SLOs).
 */
export function flaggerCanarySpec(t: CanaryTarget, slo: CanarySlo = DEFAULT_CANARY_SLO): FlaggerCanarySpec {
  const metrics: readonly FlaggerMetric[] = t.metrics ?? [
    successRateMetric(slo.errorRatePercent),
    { name: "request-duration", thresholdRange: { max: slo.p99LatencyMs }, interval: "1m" },
  ];
  const base = { interval: "1m", threshold: 5, metrics };
  const autoscalerRef =
    t.autoscalerRef === undefined
      ? { apiVersion: "autoscaling/v2" as const, kind: "HorizontalPodAutoscaler" as const, name: t.name }
      : t.autoscalerRef;
  return {
    targetRef: { apiVersion: "apps/v1", kind: "Deployment", name: t.name },
    ...(autoscalerRef ? { autoscalerRef } : {}),
    progressDeadlineSeconds: t.progressDeadlineSeconds,
    service: t.service,
    analysis: t.canary.mirror
      ? { ...base, iterations: t.canary.iterations, mirror: true, mirrorWeight: t.canary.mirrorWeight }
      : { ...base, stepWeight: t.canary.stepWeight, maxWeight: t.canary.maxWeight },
  };
}

/** Namespaces whose Prometheus may scrape workloads: the monitoring stack's, or Flagger's own. */
export const PROMETHEUS_NAMESPACES = {
  matchExpressions: [
    { key: "kubernetes.io/metadata.name", operator: "In", values: [MONITORING_NAMESPACE, FLAGGER_NAMESPACE] },
  ],
};

/** The sidecar's Envoy stats (15090) and merged-metrics (15020) ports. */
export const ENVOY_STATS_PORTS = [15090, 15020];

/**
 * How Prometheus scrapes a server on its app port: under STRICT mTLS only with the mesh
 * certificate its sidecar writes for it (MESH_SCRAPE_TLS), in plain HTTP otherwise.
 */
export function scrapeEndpoint(mesh: boolean, path = "/metrics"): Record<string, unknown> {
  return {
    port: "http-metrics",
    path,
    interval: "15s",
    ...(mesh ? { scheme: "https", tlsConfig: { ...MESH_SCRAPE_TLS } } : {}),
  };
}
