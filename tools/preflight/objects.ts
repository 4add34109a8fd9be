/**
 * The plan as the API server and the engine would meet it: every Kubernetes object, first-party
 * or rendered from a chart, in plain form with where it came from. The fidelity checks (admission,
 * reference integrity, await budgets) take these and return findings; they never see Pulumi types.
 */

/** A Kubernetes object the plan would apply. */
export interface PlanObject {
  readonly urn: string;
  /** Pulumi type token, e.g. `kubernetes:apps/v1:Deployment`. */
  readonly type: string;
  /** Pulumi resource name (for rendered objects `<chart>:<namespace>/<name>`, as helm.v4.Chart names them). */
  readonly name: string;
  readonly parent?: string;
  /** URNs this resource waits for: its own dependsOn, plus what its chart (if rendered) waits for. */
  readonly dependsOn: readonly string[];
  /** True when the object came out of a chart render rather than the program itself. */
  readonly rendered: boolean;
  /** For rendered objects: the Chart registration's URN and `<chart>-<version>`. */
  readonly chart?: { readonly urn: string; readonly ref: string };
  /** `customTimeouts` the program set on the resource, as Pulumi duration strings (`45m`). */
  readonly customTimeouts?: { readonly create?: string; readonly update?: string };
  /** The object itself, plain (no secret markers): apiVersion, kind, metadata, spec, data... */
  readonly object: Readonly<Record<string, unknown>>;
}

/** Which fidelity check found it. */
export type FindingCheck =
  | "render"
  | "admission"
  | "reference"
  | "budget"
  | "contract"
  /** The stack file itself (a credential committed in plain text). */
  | "config"
  /** What the cluster needs from outside the program (a laptop cluster's registry setup). */
  | "cluster";

/**
 * One fidelity finding. `error` fails the preflight (a real `pulumi up` would fail or the workload
 * would never run); `warning` is reported and does not fail.
 */
export interface Finding {
  readonly check: FindingCheck;
  readonly severity: "error" | "warning";
  /** The object the finding is about. */
  readonly urn: string;
  /** The field at fault, as a path (`spec.template.spec.containers[prom-exporter].securityContext`). */
  readonly field?: string;
  /** The other end, when there is one (the missing Secret, the Service without the port). */
  readonly target?: string;
  /** One sentence naming both ends and what would be right. */
  readonly message: string;
}

/** `apiVersion`/`kind`/`metadata.name`/`metadata.namespace` of an object, for lookups and messages. */
export function identity(o: Readonly<Record<string, unknown>>): {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
} {
  const meta = (o["metadata"] ?? {}) as Record<string, unknown>;
  const ns = meta["namespace"];
  const text = (v: unknown) => (typeof v === "string" ? v : "");
  return {
    apiVersion: text(o["apiVersion"]),
    kind: text(o["kind"]),
    name: text(meta["name"]),
    ...(typeof ns === "string" && ns ? { namespace: ns } : {}),
  };
}

/** `Kind namespace/name` (or `Kind name` when cluster-scoped), as findings name objects. */
export function describe(o: Readonly<Record<string, unknown>>): string {
  const id = identity(o);
  return `${id.kind} ${id.namespace ? `${id.namespace}/` : ""}${id.name}`;
}

/** Built-in cluster-scoped kinds (everything else built in is namespaced): render and references read it. */
export const BUILTIN_CLUSTER_SCOPED_KINDS: ReadonlySet<string> = new Set([
  "APIService",
  "CertificateSigningRequest",
  "ClusterRole",
  "ClusterRoleBinding",
  "ClusterTrustBundle",
  "ComponentStatus",
  "CSIDriver",
  "CSINode",
  "CustomResourceDefinition",
  "DeviceClass",
  "FlowSchema",
  "IngressClass",
  "IPAddress",
  "MutatingAdmissionPolicy",
  "MutatingAdmissionPolicyBinding",
  "MutatingWebhookConfiguration",
  "Namespace",
  "Node",
  "PersistentVolume",
  "PriorityClass",
  "PriorityLevelConfiguration",
  "ResourceSlice",
  "RuntimeClass",
  "SelfSubjectReview",
  "ServiceCIDR",
  "StorageClass",
  "TokenReview",
  "ValidatingAdmissionPolicy",
  "ValidatingAdmissionPolicyBinding",
  "ValidatingWebhookConfiguration",
  "VolumeAttachment",
  "VolumeAttributesClass",
]);

/** The API group of an apiVersion (`apps/v1` → `apps`, `v1` → the core group, ""). */
export const groupOf = (apiVersion: string): string =>
  apiVersion.includes("/") ? apiVersion.split("/")[0]! : "";
