/** Workload rules over every pod spec: resources, probes, the Pod Security Standards, read-only root. */
import {
  containersOf,
  isInjectionPlaceholder,
  isLongRunning,
  isNativeSidecar,
  podSpecsOf,
  type ContainerRef,
  type PodSpecRef,
} from "../lib/k8s";
import type { JSONSchema } from "../lib/config";
import { defineResourcePolicy, type ResourceContext } from "../lib/policy";
import { checkPodSecurity, podSecurityPath, type PodSecurityFinding } from "../lib/pss";
import { formatPath, isUnknown, obj, type Obj } from "../lib/values";

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

/**
 * An init container a service mesh injects into meshed pods to send their traffic through its
 * proxy (iptables rules need root and NET_ADMIN/NET_RAW), and the Pod Security controls it may
 * fail for that. The allowance is the pack's, not the API server's: the preflight's admission
 * simulation still refuses such a pod in a namespace that enforces restricted.
 */
export interface MeshInitContainer {
  /** Init container name, exactly as the injector writes it. */
  readonly name: string;
  /** The mesh's proxy container: the allowance holds only in pods that run it. */
  readonly proxy: string;
  /** Control ids (policies/lib/pss.ts) the container may fail. */
  readonly controls: readonly string[];
  /** The only capabilities it may add, when `controls` lists a capabilities control. */
  readonly capabilities?: readonly string[];
  readonly reason: string;
}

/**
 * What redirecting traffic takes (root, extra capabilities) and nothing more: privileged, privilege
 * escalation, host namespaces, unconfined profiles... cannot be allowed this way, only exempted
 * with a reason like any other workload.
 */
const MESH_INIT_CONTROLS = ["capabilities_baseline", "capabilities_restricted", "runAsNonRoot", "runAsUser"];

export const DEFAULT_MESH_INIT_CONTAINERS: readonly MeshInitContainer[] = [
  {
    name: "istio-init",
    proxy: "istio-proxy",
    controls: ["capabilities_restricted", "runAsNonRoot", "runAsUser"],
    capabilities: ["NET_ADMIN", "NET_RAW"],
    reason:
      "Istio's sidecar injector adds istio-init to redirect the pod's traffic to istio-proxy with iptables, as uid 0 with NET_ADMIN and NET_RAW (the platform's Istio CNI makes it unnecessary; this covers pods injected without the CNI)",
  },
  {
    name: "linkerd-init",
    proxy: "linkerd-proxy",
    controls: ["capabilities_restricted", "runAsNonRoot", "runAsUser"],
    capabilities: ["NET_ADMIN", "NET_RAW"],
    reason:
      "Linkerd's proxy injector adds linkerd-init to redirect the pod's traffic to linkerd-proxy with iptables, as uid 0 with NET_ADMIN and NET_RAW and without dropping ALL",
  },
];

const MESH_INIT_SCHEMA: JSONSchema = {
  type: "array",
  description:
    "Init containers a service mesh injects to redirect a pod's traffic through its proxy, and the Pod Security controls each may fail: an init container of that name, in a pod that also runs the named proxy container, is not reported for those controls (for capabilities, only when it adds nothing beyond `capabilities`). Every other control, and every other container, is judged as usual.",
  items: {
    type: "object",
    properties: {
      name: { type: "string", minLength: 1 },
      proxy: { type: "string", minLength: 1 },
      controls: { type: "array", items: { type: "string", enum: MESH_INIT_CONTROLS } },
      capabilities: { type: "array", items: { type: "string", minLength: 1 } },
      reason: { type: "string", minLength: 3 },
    },
    required: ["name", "proxy", "controls", "reason"],
    additionalProperties: false,
  },
  default: DEFAULT_MESH_INIT_CONTAINERS.map((m) => ({ ...m })),
};

/**
 * The mesh allowance that covers `finding`, if any. Only a plain init container (not a native
 * sidecar) of a listed name qualifies, only in a pod that runs the mesh's proxy container, only
 * for the listed controls, and an added capability outside the entry's list is never covered.
 */
export function meshInitAllowance(
  allowances: readonly MeshInitContainer[] | undefined,
  finding: PodSecurityFinding,
  containers: readonly ContainerRef[],
): MeshInitContainer | undefined {
  const c = finding.container;
  if (!c || c.kind !== "initContainer" || isNativeSidecar(c)) return undefined;
  return (allowances ?? []).find(
    (a) =>
      a.name === c.name &&
      a.controls.includes(finding.control) &&
      containers.some((o) => o.name === a.proxy) &&
      (finding.capabilities ?? []).every((cap) => (a.capabilities ?? []).includes(cap)),
  );
}

/** `<path in the object>: <what is wrong and what to set> (<level> control "<name>")`. */
export function podSecurityMessage(pod: PodSpecRef, finding: PodSecurityFinding): string {
  return `${formatPath(podSecurityPath(pod.path, finding))}: ${finding.message} (Pod Security ${finding.level} control "${finding.controlName}")`;
}

export const k8sPodSecurityRestricted = defineResourcePolicy<{
  meshInitContainers: readonly MeshInitContainer[];
}>({
  name: "k8s-pod-security-restricted",
  description:
    'Pods meet every control of the Pod Security Standards "restricted" profile, baseline\'s included, as the API server checks them at the newest Kubernetes version the pack knows: one violation per failed control and field.',
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps:
    "Set pod `securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}` and on every container `securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}` (add only NET_BIND_SERVICE); never set privileged, procMount other than Default, custom SELinux types/users/roles, an unconfined AppArmor or seccomp profile, unsafe sysctls, windowsOptions.hostProcess, runAsUser 0, or a probe/hook host. Remove hostNetwork/hostPID/hostIPC, hostPort and volumes other than configMap, secret, emptyDir, projected, downwardAPI, persistentVolumeClaim, csi, ephemeral and image. System namespaces that need host access (kube-system, gpu-operator) are exempted by namespace in the stack config, with a reason; a mesh's injected init containers are allowed what `meshInitContainers` lists.",
  config: { meshInitContainers: MESH_INIT_SCHEMA },
  appliesTo: hasPods,
  validate: (ctx, report) => {
    for (const pod of podSpecsOf(ctx.type, ctx.props)) {
      const containers = containersOf(pod);
      const judgedNames = new Set(judged(ctx, pod).map((c) => c.name));
      for (const f of checkPodSecurity(pod.spec, "restricted", pod.metadata)) {
        if (f.container && !judgedNames.has(f.container.name)) continue;
        if (meshInitAllowance(ctx.config.meshInitContainers, f, containers)) continue;
        report(podSecurityMessage(pod, f));
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
