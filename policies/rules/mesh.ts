/** Istio rules: strict mTLS everywhere, and every workload in the mesh. */
import { helmChartName, isHelmChart, kindOf, metadataOf, podSpecsOf } from "../lib/k8s";
import { defineResourcePolicy } from "../lib/policy";
import { obj, str, type Obj } from "../lib/values";

const WEAK_MODES = new Set(["PERMISSIVE", "DISABLE"]);

const isPeerAuthentication = (type: string, props: Obj) => {
  const k = kindOf(type, props);
  return k?.kind === "PeerAuthentication" && k.group === "security.istio.io";
};

const isIstioResource = (type: string, props: Obj) => {
  if (isHelmChart(type)) return helmChartName(props) === "istiod";
  const k = kindOf(type, props);
  return k !== undefined && k.group.endsWith("istio.io");
};

interface MtlsConfig {
  readonly rootNamespace: string;
  readonly requireMeshWide: boolean;
}

export const meshStrictMtls = defineResourcePolicy<MtlsConfig>({
  name: "mesh-strict-mtls",
  description:
    "No PERMISSIVE/DISABLE PeerAuthentication (including port-level); when the mesh is on, a mesh-wide STRICT PeerAuthentication `default` in the root namespace.",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps:
    "Set `spec.mtls.mode: STRICT` (and no PERMISSIVE/DISABLE in `portLevelMtls`). Install a mesh-wide policy: PeerAuthentication `default` in `istio-system` with `spec: {mtls: {mode: STRICT}}` and no selector. For a port that must accept plaintext (e.g. a probe port), exempt the resource by name with a reason.",
  config: {
    rootNamespace: { type: "string", description: "Istio root namespace.", default: "istio-system" },
    requireMeshWide: {
      type: "boolean",
      description: "Require the mesh-wide STRICT PeerAuthentication when Istio is in the stack.",
      default: true,
    },
  },
  appliesTo: isPeerAuthentication,
  validate: (ctx, report) => {
    const spec = obj(ctx.props["spec"]) ?? {};
    const mode = str(obj(spec["mtls"])?.["mode"]);
    if (mode && WEAK_MODES.has(mode.toUpperCase())) report(`PeerAuthentication sets mtls.mode ${mode}`);
    for (const [port, v] of Object.entries(obj(spec["portLevelMtls"]) ?? {})) {
      const m = str(obj(v)?.["mode"]);
      if (m && WEAK_MODES.has(m.toUpperCase()))
        report(`PeerAuthentication sets portLevelMtls[${port}].mode ${m}`);
    }
  },
  validateStack: (ctx, report) => {
    if (ctx.config.requireMeshWide === false) return;
    const root = ctx.config.rootNamespace ?? "istio-system";
    let meshOn = false;
    let meshWide = false;
    for (const r of ctx.resources) {
      const props = ctx.propsOf(r);
      if (isIstioResource(r.type, props)) meshOn = true;
      if (!isPeerAuthentication(r.type, props)) continue;
      const md = metadataOf(props);
      const spec = obj(props["spec"]) ?? {};
      if (
        str(md["name"]) === "default" &&
        str(md["namespace"]) === root &&
        !obj(spec["selector"]) &&
        str(obj(spec["mtls"])?.["mode"])?.toUpperCase() === "STRICT"
      ) {
        meshWide = true;
      }
    }
    if (meshOn && !meshWide) {
      report(
        `Istio is in the stack but there is no STRICT PeerAuthentication "default" in ${root} (mesh-wide mTLS)`,
      );
    }
  },
});

const INJECT = "sidecar.istio.io/inject";

export const meshSidecarInjection = defineResourcePolicy({
  name: "mesh-sidecar-injection",
  description: "Workload namespaces are labelled for sidecar injection and no pod opts out.",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps:
    'Label the namespace `istio-injection: enabled` (or `istio.io/rev: <revision>`, or `istio.io/dataplane-mode: ambient`) and remove `sidecar.istio.io/inject: "false"` from pod templates. System namespaces (kube-system, istio-system, gpu-operator, monitoring...) are listed in `exemptions` with a reason.',
  appliesTo: (type, props) => {
    const k = kindOf(type, props);
    return (k?.kind === "Namespace" && k.group === "") || podSpecsOf(type, props).length > 0;
  },
  validate: (ctx, report) => {
    const k = kindOf(ctx.type, ctx.props);
    if (k?.kind === "Namespace") {
      const labels = obj(metadataOf(ctx.props)["labels"]) ?? {};
      const injection = str(labels["istio-injection"]);
      const rev = str(labels["istio.io/rev"]);
      const ambient = str(labels["istio.io/dataplane-mode"]) === "ambient";
      if (injection === "disabled")
        report(`namespace ${ctx.objectName ?? ctx.name} disables injection (istio-injection: disabled)`);
      else if (injection !== "enabled" && !rev && !ambient) {
        report(
          `namespace ${ctx.objectName ?? ctx.name} is not labelled for injection (istio-injection: enabled or istio.io/rev)`,
        );
      }
      return;
    }
    for (const pod of podSpecsOf(ctx.type, ctx.props)) {
      const annotations = obj(pod.metadata["annotations"]) ?? {};
      const labels = obj(pod.metadata["labels"]) ?? {};
      for (const [where, v] of [
        ["annotation", annotations[INJECT]],
        ["label", labels[INJECT]],
      ] as const) {
        if (v === false || (typeof v === "string" && v.toLowerCase() === "false")) {
          report(`pod template opts out of the mesh (${where} ${INJECT}: "false")`);
        }
      }
    }
  },
});

export const meshPolicies = [meshStrictMtls, meshSidecarInjection];
