/** GPU rules: whole-GPU limits, and GPU pods scheduled onto (only) the tainted GPU nodes. */
import { stringList } from "../lib/config";
import { containersOf, podSpecsOf, type PodSpecRef } from "../lib/k8s";
import { defineResourcePolicy, updateIn } from "../lib/policy";
import { arr, globMatch, isUnknown, obj, str, type Obj } from "../lib/values";

export const DEFAULT_GPU_RESOURCES = ["nvidia.com/gpu", "nvidia.com/mig-*"];

export interface GpuConfig {
  readonly gpuResources: string[];
}

const gpuResourcesSchema = {
  gpuResources: stringList("Extended resource names (globs) that are GPUs.", DEFAULT_GPU_RESOURCES),
};

const isGpuResource = (name: string, globs: readonly string[]) => globs.some((g) => globMatch(g, name));

/** Parses a Kubernetes quantity into a number (GPUs are integers; `1`, `"2"`). */
export function quantity(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  const s = str(v);
  if (s === undefined || !/^\d+(\.\d+)?$/.test(s.trim())) return undefined;
  return Number(s);
}

/** GPUs a pod asks for: per container the limit (or request), summed over app containers. */
export function gpusOfPod(pod: PodSpecRef, globs: readonly string[] = DEFAULT_GPU_RESOURCES): number {
  let total = 0;
  let initMax = 0;
  for (const c of containersOf(pod, ["container", "initContainer"])) {
    const resources = obj(c.container["resources"]);
    let n = 0;
    for (const part of ["limits", "requests"]) {
      for (const [k, v] of Object.entries(obj(resources?.[part]) ?? {})) {
        if (isGpuResource(k, globs)) n = Math.max(n, quantity(v) ?? 0);
      }
    }
    if (c.kind === "container") total += n;
    else initMax = Math.max(initMax, n);
  }
  return Math.max(total, initMax);
}

export const gpuLimitsEqualRequests = defineResourcePolicy<GpuConfig>({
  name: "gpu-limits-equal-requests",
  description:
    "GPU resources are set in limits; requests, if set, are equal (extended resources cannot be overcommitted).",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps:
    "Declare GPUs under `resources.limits` (e.g. `nvidia.com/gpu: 1`); Kubernetes copies the limit into requests. If you also set `requests`, make it equal to the limit, and use whole numbers.",
  config: gpuResourcesSchema,
  appliesTo: (type, props) => podSpecsOf(type, props).length > 0,
  validate: (ctx, report) => {
    const globs = ctx.config.gpuResources ?? DEFAULT_GPU_RESOURCES;
    for (const pod of podSpecsOf(ctx.type, ctx.props)) {
      for (const c of containersOf(pod)) {
        const resources = obj(c.container["resources"]);
        const requests = obj(resources?.["requests"]) ?? {};
        const limits = obj(resources?.["limits"]) ?? {};
        const names = new Set(
          [...Object.keys(requests), ...Object.keys(limits)].filter((k) => isGpuResource(k, globs)),
        );
        for (const name of names) {
          const req = requests[name];
          const lim = limits[name];
          if (isUnknown(req) || isUnknown(lim)) continue;
          if (lim === undefined) {
            report(`${c.kind} "${c.name}" requests ${name} without a limit`);
            continue;
          }
          const l = quantity(lim);
          const show = (v: unknown) => JSON.stringify(v);
          if (l === undefined || !Number.isInteger(l))
            report(`${c.kind} "${c.name}" limit ${name}=${show(lim)} is not a whole number`);
          if (req !== undefined && quantity(req) !== l) {
            report(`${c.kind} "${c.name}" ${name} request ${show(req)} differs from limit ${show(lim)}`);
          }
        }
      }
    }
  },
});

interface SchedulingConfig extends GpuConfig {
  readonly taintKey: string;
  readonly taintValue: string;
  readonly taintEffect: string;
  readonly runtimeClassName: string;
}

function tolerates(t: Obj, c: SchedulingConfig): boolean {
  const key = str(t["key"]);
  const operator = str(t["operator"]) ?? "Equal";
  const effect = str(t["effect"]);
  if (key !== undefined && key !== "" && key !== c.taintKey) return false;
  if ((key === undefined || key === "") && operator !== "Exists") return false;
  if (effect !== undefined && effect !== "" && effect !== c.taintEffect) return false;
  return operator === "Exists" || str(t["value"]) === c.taintValue;
}

function schedulingOf(ctxConfig: Partial<SchedulingConfig>): SchedulingConfig {
  return {
    gpuResources: ctxConfig.gpuResources ?? DEFAULT_GPU_RESOURCES,
    taintKey: ctxConfig.taintKey ?? "nvidia.com/gpu",
    taintValue: ctxConfig.taintValue ?? "present",
    taintEffect: ctxConfig.taintEffect ?? "NoSchedule",
    runtimeClassName: ctxConfig.runtimeClassName ?? "nvidia",
  };
}

interface PodFix {
  readonly pod: PodSpecRef;
  readonly problems: string[];
  readonly fix?: (spec: Obj) => Obj;
}

function analyse(pod: PodSpecRef, c: SchedulingConfig): PodFix | undefined {
  const tolIn = pod.spec["tolerations"];
  if (isUnknown(tolIn) || isUnknown(pod.spec["runtimeClassName"])) return undefined;
  const tolerations = arr(tolIn);
  const gpu = gpusOfPod(pod, c.gpuResources) > 0;
  const problems: string[] = [];
  if (gpu) {
    const ok = tolerations.some((t) => obj(t) && tolerates(obj(t)!, c));
    const rc = str(pod.spec["runtimeClassName"]);
    if (!ok)
      problems.push(`GPU pod does not tolerate the ${c.taintKey}=${c.taintValue}:${c.taintEffect} taint`);
    if (rc !== c.runtimeClassName)
      problems.push(`GPU pod uses runtimeClassName ${rc ?? "(none)"}, not ${c.runtimeClassName}`);
    if (problems.length === 0) return undefined;
    return {
      pod,
      problems,
      fix: (spec) => ({
        ...spec,
        runtimeClassName: c.runtimeClassName,
        tolerations: ok
          ? tolerations
          : [
              ...tolerations,
              { key: c.taintKey, operator: "Equal", value: c.taintValue, effect: c.taintEffect },
            ],
      }),
    };
  }
  if (pod.kind === "DaemonSet") return undefined; // node agents run on every node, GPU nodes included
  const explicit = tolerations.filter((t) => obj(t) && str(obj(t)!["key"]) === c.taintKey);
  const wildcard = tolerations.filter(
    (t) => obj(t) && !str(obj(t)!["key"]) && str(obj(t)!["operator"]) === "Exists",
  );
  if (explicit.length > 0) problems.push(`non-GPU pod tolerates the ${c.taintKey} taint`);
  if (wildcard.length > 0)
    problems.push("non-GPU pod tolerates every taint (operator Exists without key), GPU nodes included");
  if (problems.length === 0) return undefined;
  return {
    pod,
    problems,
    ...(explicit.length > 0
      ? { fix: (spec: Obj) => ({ ...spec, tolerations: tolerations.filter((t) => !explicit.includes(t)) }) }
      : {}),
  };
}

export const gpuScheduling = defineResourcePolicy<Partial<SchedulingConfig>>({
  name: "gpu-scheduling",
  description:
    "GPU pods tolerate the GPU taint and use the nvidia RuntimeClass; other pods do not tolerate the GPU taint.",
  enforcementLevel: "remediate",
  severity: "medium",
  remediationSteps:
    "GPU pods: add the toleration `{key: nvidia.com/gpu, operator: Equal, value: present, effect: NoSchedule}` and `runtimeClassName: nvidia` (remediation does both). Non-GPU pods: remove the nvidia.com/gpu toleration (remediated) and any catch-all `operator: Exists` toleration, so they never take GPU nodes.",
  config: {
    ...gpuResourcesSchema,
    taintKey: { type: "string", description: "GPU node taint key.", default: "nvidia.com/gpu" },
    taintValue: { type: "string", description: "GPU node taint value.", default: "present" },
    taintEffect: { type: "string", description: "GPU node taint effect.", default: "NoSchedule" },
    runtimeClassName: { type: "string", description: "RuntimeClass GPU pods must use.", default: "nvidia" },
  },
  appliesTo: (type, props) => podSpecsOf(type, props).length > 0,
  validate: (ctx, report) => {
    const c = schedulingOf(ctx.config);
    for (const pod of podSpecsOf(ctx.type, ctx.props)) {
      const a = analyse(pod, c);
      if (a) for (const p of a.problems) report(p);
    }
  },
  remediate: (ctx) => {
    const c = schedulingOf(ctx.config);
    let props = ctx.props;
    let changed = false;
    for (const pod of podSpecsOf(ctx.type, ctx.props)) {
      const a = analyse(pod, c);
      if (!a?.fix) continue;
      const fix = a.fix;
      props = updateIn(props, pod.path, (spec) => fix(obj(spec) ?? {}));
      changed = true;
    }
    return changed ? props : undefined;
  },
});

export const gpuPolicies = [gpuLimitsEqualRequests, gpuScheduling];
