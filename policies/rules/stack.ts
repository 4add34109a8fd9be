/**
 * Stack rules: protected state in prod, GPU demand that fits the declared pools, and GPU servers
 * scaled on their own load rather than on CPU.
 */
import { stringList } from "../lib/config";
import { kindOf, metadataOf, podSpecsOf } from "../lib/k8s";
import { defineStackPolicy } from "../lib/policy";
import { globMatch, isUnknown, obj, str, type Obj } from "../lib/values";
import { DEFAULT_GPU_RESOURCES, gpusOfPod, quantity } from "./gpu";

export const DEFAULT_STATEFUL_TYPES = [
  "kubernetes:core/v1:PersistentVolumeClaim",
  "kubernetes:core/v1:PersistentVolume",
  "kubernetes:apps/v1:StatefulSet",
  "platform:*:*Storage",
  "platform:*:*Database",
  "platform:*:*Bucket",
];

/**
 * Whether deleting (or replacing) a StatefulSet loses data. Its state lives in the claims of its
 * `volumeClaimTemplates`, which Kubernetes keeps when the StatefulSet goes unless
 * `persistentVolumeClaimRetentionPolicy.whenDeleted` is `Delete`; without claims it holds none.
 * Every other stateful type loses its state with itself (true).
 */
export function statefulSetLosesState(type: string, props: Obj): boolean {
  if (type !== "kubernetes:apps/v1:StatefulSet") return true;
  const spec = obj(props["spec"]) ?? {};
  const claims = spec["volumeClaimTemplates"];
  if (isUnknown(claims)) return true;
  if (!Array.isArray(claims) || claims.length === 0) return false;
  const whenDeleted = obj(spec["persistentVolumeClaimRetentionPolicy"])?.["whenDeleted"];
  return whenDeleted === "Delete" || isUnknown(whenDeleted);
}

export const prodStatefulProtected = defineStackPolicy<{ environment: string; statefulTypes: string[] }>({
  name: "prod-stateful-protected",
  description:
    "In prod, stateful resources (PVCs, PVs, StatefulSets whose claims go with them, `*Storage` components) are `protect`ed.",
  enforcementLevel: "mandatory",
  severity: "critical",
  remediationSteps:
    'Pass `{ protect: true }` (e.g. `protect: env === "prod"`) in the resource options of every stateful resource itself, not on its component or chart (children inherit protect, so ConfigMaps and Deployments would refuse replacement). Removing protection is then a deliberate two-step change.',
  config: {
    environment: {
      type: "string",
      enum: ["local", "dev", "staging", "prod"],
      description: "The stack's environment; the rule applies only in `prod`.",
      default: "dev",
    },
    statefulTypes: stringList("Type tokens (globs) that hold state.", DEFAULT_STATEFUL_TYPES),
  },
  validate: (ctx, report) => {
    if ((ctx.config.environment ?? "dev") !== "prod") return;
    const types = ctx.config.statefulTypes ?? DEFAULT_STATEFUL_TYPES;
    for (const r of ctx.resources) {
      if (!types.some((g) => globMatch(g, r.type))) continue;
      if (r.opts.protect || ctx.exemptionOf(r)) continue;
      if (!statefulSetLosesState(r.type, ctx.propsOf(r))) continue;
      const md = metadataOf(ctx.propsOf(r));
      const what = str(md["name"])
        ? `${r.type} ${str(md["namespace"]) ?? "default"}/${str(md["name"])}`
        : `${r.type} ${r.name}`;
      report(`${what} holds state but is not protected`, r.urn);
    }
  },
});

interface CapacityConfig {
  readonly poolLabel: string;
  readonly poolType: string;
  readonly gpuResources: string[];
}

interface Demand {
  readonly what: string;
  readonly urn: string;
  readonly gpus: number;
}

function nsOf(props: Obj): string {
  return str(metadataOf(props)["namespace"]) ?? "default";
}

export const gpuCapacityFits = defineStackPolicy<CapacityConfig>({
  name: "gpu-capacity-fits",
  description:
    "Per GPU pool, GPUs per pod × max replicas (HPA/KEDA, else replicas) fit the pool's declared capacity.",
  enforcementLevel: "advisory",
  severity: "medium",
  remediationSteps:
    "Lower the autoscaler's `maxReplicas`/`maxReplicaCount` or the per-pod GPU limit, enable GPU sharing (time-slicing/MIG replicas) on the pool, or grow the pool (`nodes`, `gpusPerNode`). Slices share compute, not memory: replicas that land on one GPU must also fit its memory together (the platform's config check counts that, per physical GPU). Every GPU workload should select its pool with the `platform.ai/gpu-pool` node selector.",
  config: {
    poolLabel: {
      type: "string",
      description: "Node label selecting a GPU pool.",
      default: "platform.ai/gpu-pool",
    },
    poolType: {
      type: "string",
      description: "Component type that declares a pool.",
      default: "platform:cluster:GpuPool",
    },
    gpuResources: stringList("Extended resource names (globs) that are GPUs.", DEFAULT_GPU_RESOURCES),
  },
  validate: (ctx, report) => {
    const poolLabel = ctx.config.poolLabel ?? "platform.ai/gpu-pool";
    const poolType = ctx.config.poolType ?? "platform:cluster:GpuPool";
    const globs = ctx.config.gpuResources ?? DEFAULT_GPU_RESOURCES;
    const pools = new Map<string, { capacity: number | undefined; urn: string }>();
    const scalers = new Map<string, number>();
    for (const r of ctx.resources) {
      const props = ctx.propsOf(r);
      if (r.type === poolType) {
        const name = str(props["name"]) ?? r.name;
        const nodes = quantity(props["nodes"]);
        const perNode = quantity(props["gpusPerNode"]);
        const replicas =
          quantity(obj(props["sharing"])?.["replicas"]) ??
          (isUnknown(obj(props["sharing"])?.["replicas"]) ? undefined : 1);
        pools.set(name, {
          capacity:
            nodes !== undefined && perNode !== undefined && replicas !== undefined
              ? nodes * perNode * replicas
              : undefined,
          urn: r.urn,
        });
        continue;
      }
      const k = kindOf(r.type, props);
      if (!k) continue;
      const spec = obj(props["spec"]);
      const target = obj(spec?.["scaleTargetRef"]);
      const targetName = str(target?.["name"]);
      if (!targetName) continue;
      const targetKind = str(target?.["kind"]) ?? "Deployment";
      let max: number | undefined;
      if (k.kind === "HorizontalPodAutoscaler" && k.group === "autoscaling")
        max = quantity(spec?.["maxReplicas"]);
      else if (k.kind === "ScaledObject" && k.group === "keda.sh")
        max = quantity(spec?.["maxReplicaCount"]) ?? 100;
      if (max !== undefined) scalers.set(`${nsOf(props)}/${targetKind}/${targetName}`, max);
    }
    if (pools.size === 0) return;

    const demand = new Map<string, Demand[]>();
    for (const r of ctx.resources) {
      const props = ctx.propsOf(r);
      const pods = podSpecsOf(r.type, props);
      const pod = pods[0];
      if (!pod || pod.kind === "DaemonSet" || ctx.exemptionOf(r)) continue;
      const gpus = gpusOfPod(pod, globs);
      if (gpus === 0) continue;
      const name = str(metadataOf(props)["name"]) ?? r.name;
      const what = `${pod.kind} ${nsOf(props)}/${name}`;
      const pool = str(obj(pod.spec["nodeSelector"])?.[poolLabel]);
      if (!pool) {
        report(`${what} requests GPUs but selects no GPU pool (nodeSelector ${poolLabel})`, r.urn);
        continue;
      }
      if (!pools.has(pool)) {
        report(`${what} selects GPU pool "${pool}", which is not declared`, r.urn);
        continue;
      }
      const spec = obj(props["spec"]) ?? {};
      let replicas: number;
      if (pod.kind === "Pod") replicas = 1;
      else if (pod.kind === "Job") replicas = quantity(spec["parallelism"]) ?? 1;
      else if (pod.kind === "CronJob")
        replicas = quantity(obj(obj(spec["jobTemplate"])?.["spec"])?.["parallelism"]) ?? 1;
      else replicas = scalers.get(`${nsOf(props)}/${pod.kind}/${name}`) ?? quantity(spec["replicas"]) ?? 1;
      demand.set(pool, [
        ...(demand.get(pool) ?? []),
        { what: `${what} (${gpus} × ${replicas})`, urn: r.urn, gpus: gpus * replicas },
      ]);
    }
    for (const [pool, items] of demand) {
      const p = pools.get(pool)!;
      if (p.capacity === undefined) continue;
      const total = items.reduce((s, d) => s + d.gpus, 0);
      if (total > p.capacity) {
        report(
          `GPU pool "${pool}" needs up to ${total} GPUs but declares ${p.capacity}: ${items.map((d) => d.what).join(", ")}`,
          p.urn,
        );
      }
    }
  },
});

/**
 * The resource metrics (cpu, memory) an autoscaler scales on, or [] when it reads none. An
 * autoscaling/v1 HPA knows only CPU, and a v2 HPA without metrics defaults to CPU; a KEDA
 * ScaledObject scales on resources through its `cpu` and `memory` triggers.
 */
export function resourceMetricsOf(k: { group: string; kind: string }, spec: Obj | undefined): string[] {
  if (k.kind === "HorizontalPodAutoscaler" && k.group === "autoscaling") {
    if (spec?.["targetCPUUtilizationPercentage"] !== undefined) return ["cpu"];
    const metrics = spec?.["metrics"];
    if (isUnknown(metrics)) return [];
    if (!Array.isArray(metrics) || metrics.length === 0) return ["cpu"];
    return metrics.flatMap((m) => {
      const type = str(obj(m)?.["type"]);
      const source = obj(obj(m)?.[type === "ContainerResource" ? "containerResource" : "resource"]);
      const name = str(source?.["name"]);
      return (type === "Resource" || type === "ContainerResource") && name ? [name] : [];
    });
  }
  if (k.kind === "ScaledObject" && k.group === "keda.sh") {
    const triggers = spec?.["triggers"];
    if (!Array.isArray(triggers)) return [];
    return triggers.flatMap((t) => {
      const type = str(obj(t)?.["type"]);
      return type === "cpu" || type === "memory" ? [type] : [];
    });
  }
  return [];
}

export const gpuAutoscalingNotOnCpu = defineStackPolicy<{ gpuResources: string[] }>({
  name: "gpu-autoscaling-not-on-cpu",
  description:
    "No autoscaler (HPA, KEDA ScaledObject) scales a GPU workload on CPU or memory: a GPU server is saturated long before its CPU shows it.",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps:
    "Scale the GPU server on its own load instead: a KEDA ScaledObject with Prometheus triggers on the runtime's queue and KV-cache metrics (`vllm:num_requests_waiting`, `vllm:kv_cache_usage_perc`), as the platform's model services do. Remove the CPU/memory HPA or the `cpu`/`memory` trigger.",
  config: {
    gpuResources: stringList("Extended resource names (globs) that are GPUs.", DEFAULT_GPU_RESOURCES),
  },
  validate: (ctx, report) => {
    const globs = ctx.config.gpuResources ?? DEFAULT_GPU_RESOURCES;
    const gpuWorkloads = new Set<string>();
    for (const r of ctx.resources) {
      const props = ctx.propsOf(r);
      const pod = podSpecsOf(r.type, props)[0];
      if (!pod || gpusOfPod(pod, globs) === 0) continue;
      gpuWorkloads.add(`${nsOf(props)}/${pod.kind}/${str(metadataOf(props)["name"]) ?? r.name}`);
    }
    if (gpuWorkloads.size === 0) return;
    for (const r of ctx.resources) {
      const props = ctx.propsOf(r);
      const k = kindOf(r.type, props);
      if (!k || ctx.exemptionOf(r)) continue;
      const spec = obj(props["spec"]);
      const target = obj(spec?.["scaleTargetRef"]);
      const targetName = str(target?.["name"]);
      if (!targetName) continue;
      const targetKind = str(target?.["kind"]) ?? "Deployment";
      if (!gpuWorkloads.has(`${nsOf(props)}/${targetKind}/${targetName}`)) continue;
      const resources = resourceMetricsOf(k, spec);
      if (resources.length === 0) continue;
      const name = str(metadataOf(props)["name"]) ?? r.name;
      report(
        `${k.kind} ${nsOf(props)}/${name} scales the GPU ${targetKind} ${targetName} on ${[...new Set(resources)].join(" and ")}`,
        r.urn,
      );
    }
  },
});

export const stackPolicies = [prodStatefulProtected, gpuCapacityFits, gpuAutoscalingNotOnCpu];
