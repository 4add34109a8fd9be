/**
 * How a model server scales: a KEDA ScaledObject on the runtime's own metrics (the triggers come
 * from the service's SLO, inference/slo.ts), scale-to-zero where the gateway can wake the model,
 * and the config checks that keep both honest. Pure: no resources are created here.
 */
import type { Environment, ConfigProblem, KeyPath } from "../schema-kit";
import { formatKey } from "../schema-kit";
import type { InferenceConfig, InferenceServiceConfig } from "./schema";
import type { KedaTrigger } from "./slo";
import { deploymentStartBudgetSeconds, MODEL_SCALE_BEHAVIOR } from "./spec";

/** What the platform offers a model server's autoscaler. */
export interface ScalingPlatform {
  readonly environment: Environment;
  /** KEDA runs (it is installed with the gateway). */
  readonly keda: boolean;
  /** The platform's Prometheus runs (every trigger queries it). */
  readonly prometheus: boolean;
}

type ScaledService = Pick<InferenceServiceConfig, "name" | "replicas" | "autoscaling" | "canary">;

/**
 * Whether the gateway can wake this service from zero: it relays to the first service only (its
 * MODELS, so only that name labels its per-model metrics), and the signal is read from Prometheus.
 */
export function hasActivation(
  config: Pick<InferenceConfig, "services" | "gateway">,
  s: Pick<InferenceServiceConfig, "name">,
  platform: Pick<ScalingPlatform, "keda" | "prometheus">,
): boolean {
  return (
    config.gateway.enabled && platform.keda && platform.prometheus && config.services[0]?.name === s.name
  );
}

/**
 * Scale-to-zero, decided by the environment: on in dev, where an idle GPU is waste and a cold start
 * is acceptable, off everywhere else. A service's `autoscaling.scaleToZero` or `replicas.min: 0`
 * asks for it explicitly (the checks refuse that without an activation trigger). Never with a
 * canary: Flagger analyses against a running primary.
 */
export function scaleToZeroDefault(
  environment: Environment,
  s: Pick<ScaledService, "replicas" | "autoscaling" | "canary">,
  activation: boolean,
): boolean {
  if (s.replicas.min === 0) return true;
  if (s.autoscaling.scaleToZero !== undefined) return s.autoscaling.scaleToZero;
  return environment === "dev" && activation && !s.canary.enabled;
}

/** A model server's replica count: KEDA between bounds (maybe from zero), or a fixed count. */
export type ModelScaling =
  | {
      readonly kind: "keda";
      readonly minReplicaCount: number;
      readonly maxReplicaCount: number;
      /** KEDA's idle count (0) when the service idles at zero above a minimum of one. */
      readonly idleReplicaCount?: 0;
      /** Scale-to-zero: the gateway's jobs wake the service for this long (s), its start budget. */
      readonly activationWindowSeconds?: number;
    }
  | { readonly kind: "fixed"; readonly replicas: number };

/**
 * The service's scaling: KEDA when it and Prometheus run, else a fixed count (the checks refuse
 * bounds that would need an autoscaler there).
 */
export function modelScaling(
  s: ScaledService & Pick<InferenceServiceConfig, "runtime" | "model">,
  platform: ScalingPlatform,
  activation: boolean,
): ModelScaling {
  const floor = Math.max(1, s.replicas.min);
  if (!platform.keda || !platform.prometheus) return { kind: "fixed", replicas: floor };
  if (!(scaleToZeroDefault(platform.environment, s, activation) && activation))
    return { kind: "keda", minReplicaCount: floor, maxReplicaCount: s.replicas.max };
  const window = deploymentStartBudgetSeconds(s);
  // KEDA scales 0 <-> 1 on activation; idleReplicaCount keeps a minimum above one once active.
  return floor > 1
    ? {
        kind: "keda",
        minReplicaCount: floor,
        maxReplicaCount: s.replicas.max,
        idleReplicaCount: 0,
        activationWindowSeconds: window,
      }
    : { kind: "keda", minReplicaCount: 0, maxReplicaCount: s.replicas.max, activationWindowSeconds: window };
}

/** Seconds without activity before KEDA takes a model to zero: model loads are too dear to flap. */
export const MODEL_COOLDOWN_SECONDS = 900;

/** keda.sh/v1alpha1 ScaledObject spec of a model server. */
export function modelScaledObjectSpec(
  name: string,
  scaling: Extract<ModelScaling, { kind: "keda" }>,
  triggers: readonly KedaTrigger[],
) {
  return {
    scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name },
    minReplicaCount: scaling.minReplicaCount,
    maxReplicaCount: scaling.maxReplicaCount,
    ...(scaling.idleReplicaCount === undefined ? {} : { idleReplicaCount: scaling.idleReplicaCount }),
    pollingInterval: 15,
    cooldownPeriod: MODEL_COOLDOWN_SECONDS,
    advanced: { horizontalPodAutoscalerConfig: { behavior: MODEL_SCALE_BEHAVIOR } },
    triggers: triggers.map((t) => ({ ...t, metadata: { ...t.metadata } })),
  };
}

/**
 * The gateway's worker retries while the model it fronts starts from zero: its backoff doubles from
 * 1 s up to its 60 s cap (services/gateway/src/config.ts defaults), and a job must outlast the
 * start budget rather than fail against a replica that is still loading.
 */
export function coldStartRetries(startBudgetSeconds: number): { maxAttempts: number; backoffMaxMs: number } {
  const backoffMaxMs = 60_000;
  // The jitter draws each wait from [delay/2, delay]: counted at its shortest, the first 6 waits
  // (0.5 + 1 + ... + 16 s) take 31.5 s, and every later one at least 30 s.
  const attempts = 7 + Math.ceil(Math.max(0, startBudgetSeconds - 31.5) / (backoffMaxMs / 2000));
  // The gateway accepts at most 100 attempts.
  return { maxAttempts: Math.min(100, attempts), backoffMaxMs };
}

/** Config checks of a service's autoscaling against what the platform runs. */
export function autoscalingProblems(
  path: KeyPath,
  s: ScaledService & Pick<InferenceServiceConfig, "runtime">,
  platform: ScalingPlatform,
  activation: boolean,
): ConfigProblem[] {
  const at = (...rest: PropertyKey[]) => formatKey([...path, ...rest]);
  const out: ConfigProblem[] = [];
  const wantsZero = s.replicas.min === 0 || s.autoscaling.scaleToZero === true;
  // A refusal names what asked for zero: `replicas.min: 0`, else `autoscaling.scaleToZero`.
  const zeroKey = s.replicas.min === 0 ? at("replicas", "min") : at("autoscaling", "scaleToZero");
  const zeroExample = s.replicas.min === 0 ? "1" : "false";
  if (s.replicas.min === 0 && s.autoscaling.scaleToZero === false)
    out.push({
      key: at("replicas", "min"),
      message:
        "replicas.min 0 is scale-to-zero, which autoscaling.scaleToZero turns off; set min to 1 or drop scaleToZero",
      example: "1",
    });
  else if (wantsZero && s.canary.enabled)
    out.push({
      key: zeroKey,
      message:
        "scale-to-zero and a canary exclude each other: Flagger analyses a canary against a running primary",
      example: zeroExample,
    });
  else if (wantsZero && !activation)
    out.push({
      key: zeroKey,
      message:
        "scale-to-zero needs an activation trigger: the gateway's jobs for the model, read from Prometheus. It needs platform:inference.gateway.enabled and platform:monitoring.enabled, and the service first in platform:inference.services (the one the gateway relays to)",
      example: zeroExample,
    });
  const autoscaled = s.replicas.max > Math.max(1, s.replicas.min) || wantsZero;
  if (autoscaled && (!platform.keda || !platform.prometheus) && out.length === 0)
    out.push({
      key: at("replicas", "max"),
      message: `a model server scales with KEDA on its own metrics (never on CPU), which needs ${[
        ...(platform.keda ? [] : ["KEDA (installed with platform:inference.gateway)"]),
        ...(platform.prometheus ? [] : ["Prometheus (platform:monitoring.enabled)"]),
      ].join(" and ")}; enable them or fix the count (replicas.max = replicas.min)`,
      example: String(Math.max(1, s.replicas.min)),
    });
  return out;
}
