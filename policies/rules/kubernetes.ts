/** Workload rules over every pod spec: resources, probes, Pod Security "restricted", read-only root. */
import {
  containersOf,
  isInjectionPlaceholder,
  isLongRunning,
  isNativeSidecar,
  podSpecsOf,
  type ContainerRef,
  type PodSpecRef,
} from "../lib/k8s";
import { defineResourcePolicy, type ResourceContext } from "../lib/policy";
import { arr, isUnknown, obj, str, type Obj } from "../lib/values";

const hasPods = (type: string, props: Obj) => podSpecsOf(type, props).length > 0;

const present = (v: unknown) => v !== undefined && v !== null && v !== "";

/** The containers a rule judges: those no container-narrowed exemption of the rule covers. */
function judged(ctx: ResourceContext<unknown>, pod: PodSpecRef, kinds?: Parameters<typeof containersOf>[1]) {
  return containersOf(pod, kinds).filter((c) => !ctx.containerExemption(c.name));
}

export const k8sResourcesRequired = defineResourcePolicy({
  name: "k8s-resources-required",
  description: "Every container sets cpu/memory requests and a memory limit.",
  enforcementLevel: "mandatory",
  severity: "medium",
  remediationSteps:
    "Set `resources.requests.cpu`, `resources.requests.memory` and `resources.limits.memory` on every container and init container (a CPU limit is optional; it causes throttling). Size from observed usage; requests drive scheduling and the memory limit protects the node.",
  appliesTo: hasPods,
  validate: (ctx, report) => {
    for (const pod of podSpecsOf(ctx.type, ctx.props)) {
      for (const c of judged(ctx, pod, ["container", "initContainer"])) {
        const resources = c.container["resources"];
        if (isUnknown(resources)) continue;
        const r = obj(resources) ?? {};
        const requests = obj(r["requests"]);
        const limits = obj(r["limits"]);
        if (isUnknown(r["requests"]) || isUnknown(r["limits"])) continue;
        const missing: string[] = [];
        if (!present(requests?.["cpu"])) missing.push("requests.cpu");
        if (!present(requests?.["memory"])) missing.push("requests.memory");
        if (!present(limits?.["memory"])) missing.push("limits.memory");
        if (missing.length > 0) report(`${c.kind} "${c.name}" is missing resources ${missing.join(", ")}`);
      }
    }
  },
});

export const k8sProbesRequired = defineResourcePolicy<{ requireLiveness: boolean }>({
  name: "k8s-probes-required",
  description: "Long-running pods have readiness and liveness (or startup) probes on every container.",
  enforcementLevel: "mandatory",
  severity: "medium",
  remediationSteps:
    "Add a `readinessProbe` (gates traffic) and a `livenessProbe` (restarts a hung process) to each app container; slow starters (model servers) add a `startupProbe` so liveness does not kill them while loading. Jobs and CronJobs are exempt.",
  config: {
    requireLiveness: {
      type: "boolean",
      description: "Require a liveness or startup probe in addition to readiness.",
      default: true,
    },
  },
  appliesTo: hasPods,
  validate: (ctx, report) => {
    for (const pod of podSpecsOf(ctx.type, ctx.props)) {
      if (!isLongRunning(pod)) continue;
      for (const c of judged(ctx, pod, ["container"])) {
        if (isInjectionPlaceholder(c, pod)) continue;
        const missing: string[] = [];
        if (!present(c.container["readinessProbe"])) missing.push("readinessProbe");
        if (
          ctx.config.requireLiveness !== false &&
          !present(c.container["livenessProbe"]) &&
          !present(c.container["startupProbe"])
        ) {
          missing.push("livenessProbe (or startupProbe)");
        }
        if (missing.length > 0) report(`${c.kind} "${c.name}" has no ${missing.join(" and no ")}`);
      }
    }
  },
});

const RESTRICTED_VOLUME_TYPES = new Set([
  "configMap",
  "csi",
  "downwardAPI",
  "emptyDir",
  "ephemeral",
  "persistentVolumeClaim",
  "projected",
  "secret",
]);

const SECCOMP_OK = new Set(["RuntimeDefault", "Localhost"]);

function podLevelProblems(pod: PodSpecRef): string[] {
  const out: string[] = [];
  for (const f of ["hostNetwork", "hostPID", "hostIPC"]) {
    if (pod.spec[f] === true) out.push(`${f}: true`);
  }
  arr(pod.spec["volumes"]).forEach((v) => {
    const vol = obj(v);
    if (!vol) return;
    const kinds = Object.keys(vol).filter((k) => k !== "name");
    for (const k of kinds) {
      if (!RESTRICTED_VOLUME_TYPES.has(k)) out.push(`volume "${str(vol["name"]) ?? "?"}" uses ${k}`);
    }
  });
  const psc = obj(pod.spec["securityContext"]);
  if (psc?.["runAsUser"] === 0) out.push("pod securityContext.runAsUser: 0");
  if (str(obj(psc?.["seccompProfile"])?.["type"]) === "Unconfined") out.push("pod seccompProfile Unconfined");
  return out;
}

function containerProblems(c: ContainerRef, pod: PodSpecRef): string[] | undefined {
  const scIn = c.container["securityContext"];
  if (isUnknown(scIn)) return undefined;
  const sc = obj(scIn) ?? {};
  const psc = obj(pod.spec["securityContext"]) ?? {};
  const out: string[] = [];
  if (sc["privileged"] === true) out.push("privileged");
  if (sc["allowPrivilegeEscalation"] !== false) out.push("allowPrivilegeEscalation is not false");
  const runAsNonRoot = sc["runAsNonRoot"] ?? psc["runAsNonRoot"];
  if (runAsNonRoot !== true && !isUnknown(runAsNonRoot)) out.push("runAsNonRoot is not true");
  if (sc["runAsUser"] === 0) out.push("runAsUser: 0");
  const caps = obj(sc["capabilities"]);
  const drop = arr(caps?.["drop"]).map((x) => String(x).toUpperCase());
  if (!drop.includes("ALL")) out.push("capabilities.drop lacks ALL");
  const add = arr(caps?.["add"]).map((x) => String(x).toUpperCase().replace(/^CAP_/, ""));
  const badAdd = add.filter((a) => a !== "NET_BIND_SERVICE");
  if (badAdd.length > 0) out.push(`capabilities.add ${badAdd.join(",")}`);
  const seccomp = str(obj(sc["seccompProfile"])?.["type"]) ?? str(obj(psc["seccompProfile"])?.["type"]);
  if (!seccomp || !SECCOMP_OK.has(seccomp)) out.push("no RuntimeDefault/Localhost seccompProfile");
  arr(c.container["ports"]).forEach((p) => {
    const hostPort = obj(p)?.["hostPort"];
    if (typeof hostPort === "number" && hostPort !== 0) out.push(`hostPort ${hostPort}`);
  });
  return out;
}

export const k8sPodSecurityRestricted = defineResourcePolicy({
  name: "k8s-pod-security-restricted",
  description:
    'Pods meet Pod Security "restricted": not privileged, no privilege escalation, non-root, drop ALL capabilities, seccomp RuntimeDefault, no host namespaces, ports or hostPath.',
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps:
    "Set pod `securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}` and on every container `securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}` (add only NET_BIND_SERVICE). Remove hostNetwork/hostPID/hostIPC, hostPort and hostPath volumes. System namespaces that need host access (kube-system, gpu-operator) are exempted by namespace in the stack config, with a reason.",
  appliesTo: hasPods,
  validate: (ctx, report) => {
    for (const pod of podSpecsOf(ctx.type, ctx.props)) {
      const podProblems = podLevelProblems(pod);
      if (podProblems.length > 0) report(`pod spec: ${podProblems.join("; ")}`);
      for (const c of judged(ctx, pod)) {
        const problems = containerProblems(c, pod);
        if (problems && problems.length > 0) report(`${c.kind} "${c.name}": ${problems.join("; ")}`);
      }
    }
  },
});

export const k8sReadonlyRootFs = defineResourcePolicy({
  name: "k8s-readonly-root-fs",
  description: "Containers run with a read-only root filesystem.",
  enforcementLevel: "advisory",
  severity: "low",
  remediationSteps:
    "Set `securityContext.readOnlyRootFilesystem: true` and mount an `emptyDir` where the app writes (e.g. /tmp, caches).",
  appliesTo: hasPods,
  validate: (ctx, report) => {
    for (const pod of podSpecsOf(ctx.type, ctx.props)) {
      for (const c of containersOf(pod, ["container", "initContainer"])) {
        const sc = c.container["securityContext"];
        if (isUnknown(sc) || isUnknown(obj(sc)?.["readOnlyRootFilesystem"])) continue;
        if (obj(sc)?.["readOnlyRootFilesystem"] !== true) {
          report(
            `${c.kind} "${c.name}"${isNativeSidecar(c) ? " (sidecar)" : ""} has a writable root filesystem`,
          );
        }
      }
    }
  },
});

export const kubernetesPolicies = [
  k8sResourcesRequired,
  k8sProbesRequired,
  k8sPodSecurityRestricted,
  k8sReadonlyRootFs,
];
