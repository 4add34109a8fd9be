/**
 * Pod Security admission, simulated offline. The policy pack judges the plan against the
 * platform's own rules (with its exemptions); this module answers a narrower question: would the
 * API server's built-in PodSecurity admission let these pods run, given the level each namespace
 * enforces? The controls are the pack's (policies/lib/pss.ts, which follows the upstream
 * pod-security-admission checks); what this module adds is the API server's side: the level and
 * version each namespace selects, where `latest` means the newest checks the *running* API server
 * knows, not the newest ever written. The pack's exemptions and allowances do not apply here.
 *
 * Enforcement applies to Pods. A Deployment, StatefulSet, Job... is admitted whatever its template
 * says (only `warn`/`audit` look at templates); its controller's pods are then refused, so the
 * workload never runs. Either way a violation is an error here.
 */
import { podSpecsOf } from "../../policies/lib/k8s";
import {
  checkPodSecurity as checkStandards,
  NEWEST_CHECKS_MINOR,
  podSecurityField,
  type PodSecurityFinding,
  type PodSecurityLevel,
} from "../../policies/lib/pss";
import { obj, str, type Obj } from "../../policies/lib/values";
import { K3S_VERSION } from "../../components/versions";
import { describe, identity, type Finding, type PlanObject } from "./objects";

export { NEWEST_CHECKS_MINOR, safeSysctls, type PodSecurityLevel } from "../../policies/lib/pss";

/** One control a pod fails, with the field (relative to the pod spec, or `metadata.` for annotations). */
export type PodSecurityViolation = PodSecurityFinding;

/** The Kubernetes minor of a version string (`v1.32.5+k3s1` → 32). */
export function kubernetesMinor(version: string): number | undefined {
  const m = /^v?1\.(\d+)(?:\.|$|\+|-)/.exec(version);
  return m ? Number(m[1]) : undefined;
}

/**
 * The minor the platform's API server runs: what `enforce-version: latest` resolves to there.
 * A 1.32 server has never heard of the 1.34 probe-host check or the 1.37 sysctls.
 */
export const SERVER_MINOR = Math.min(
  kubernetesMinor(K3S_VERSION) ?? NEWEST_CHECKS_MINOR,
  NEWEST_CHECKS_MINOR,
);

export interface PodSecurityOptions {
  /** Kubernetes minor the policy is evaluated at (default: the platform's API server). */
  readonly version?: number;
}

// ---------------------------------------------------------------------------------------------
// Pod specs

/** A pod template inside a workload object, with its field path. */
export interface PodTemplate {
  /** Dotted path of the pod spec in the object (`spec.template.spec`). */
  readonly path: string;
  readonly spec: Record<string, unknown>;
  readonly metadata?: Record<string, unknown>;
}

/**
 * Pod spec(s) of Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job
 * and CronJob. Reuses the policy pack's walker; the object's own apiVersion/kind stand in for the
 * Pulumi type token since that is what the API server sees.
 */
export function podSpecs(o: Readonly<Record<string, unknown>>): PodTemplate[] {
  const { apiVersion, kind } = identity(o);
  if (!apiVersion || !kind) return [];
  return podSpecsOf(`kubernetes:${apiVersion}:${kind}`, o as Obj).map((p) => ({
    path: p.path.join("."),
    spec: p.spec,
    metadata: p.metadata,
  }));
}

// ---------------------------------------------------------------------------------------------
// The checks: the policy pack's own (policies/lib/pss.ts), at the server's version

/**
 * Every control `spec` fails at `level`, evaluated at the platform's API server unless a version
 * is given. Fields are relative to the pod spec (`containers[app].securityContext.runAsNonRoot`),
 * or start with `metadata.` for pod annotations. `privileged` passes everything.
 */
export function checkPodSecurity(
  spec: Readonly<Record<string, unknown>>,
  level: PodSecurityLevel,
  podMetadata?: Readonly<Record<string, unknown>>,
  options: PodSecurityOptions = {},
): PodSecurityViolation[] {
  return checkStandards(spec, level, podMetadata, { version: options.version ?? SERVER_MINOR });
}

// ---------------------------------------------------------------------------------------------
// Namespaces

const ENFORCE_LABEL = "pod-security.kubernetes.io/enforce";
const ENFORCE_VERSION_LABEL = "pod-security.kubernetes.io/enforce-version";

/** Namespaces every cluster has; unlabelled, so the API server's default (privileged) applies. */
export const CLUSTER_NAMESPACES: readonly string[] = [
  "default",
  "kube-system",
  "kube-public",
  "kube-node-lease",
];

export interface NamespacePolicy {
  readonly level: PodSecurityLevel;
  /** Kubernetes minor the namespace's checks are evaluated at. */
  readonly version: number;
}

function isLevel(v: unknown): v is PodSecurityLevel {
  return v === "privileged" || v === "baseline" || v === "restricted";
}

/**
 * The enforce policy a Namespace's labels select. A missing level is the server default
 * (privileged); an unparseable one fails closed to restricted, as the API server does. The version
 * is `latest` (the server's own minor) unless pinned, and a pin beyond the server is the server.
 */
export function namespacePolicy(
  labels: Readonly<Record<string, unknown>>,
  serverVersion: number = SERVER_MINOR,
): NamespacePolicy {
  const rawLevel = labels[ENFORCE_LABEL];
  const level: PodSecurityLevel =
    rawLevel === undefined ? "privileged" : isLevel(rawLevel) ? rawLevel : "restricted";
  const pinned = /^v1\.(\d+)$/.exec(str(labels[ENFORCE_VERSION_LABEL]) ?? "");
  const version = pinned ? Math.min(Number(pinned[1]), serverVersion) : serverVersion;
  return { level, version };
}

function isNamespace(o: Readonly<Record<string, unknown>>): boolean {
  const { apiVersion, kind } = identity(o);
  return kind === "Namespace" && apiVersion === "v1";
}

/** Enforce level and version per namespace: the plan's Namespaces, plus the cluster's own. */
export function namespacePolicies(
  objects: readonly PlanObject[],
  serverVersion: number = SERVER_MINOR,
): Map<string, NamespacePolicy> {
  const out = new Map<string, NamespacePolicy>(
    CLUSTER_NAMESPACES.map((ns) => [ns, { level: "privileged", version: serverVersion }]),
  );
  for (const p of objects) {
    if (!isNamespace(p.object)) continue;
    const name = identity(p.object).name;
    const labels = obj(obj(p.object["metadata"])?.["labels"]) ?? {};
    if (name) out.set(name, namespacePolicy(labels, serverVersion));
  }
  return out;
}

/** Enforce level per namespace (see namespacePolicies). */
export function namespaceLevels(objects: readonly PlanObject[]): Map<string, PodSecurityLevel> {
  return new Map([...namespacePolicies(objects)].map(([ns, p]) => [ns, p.level]));
}

// ---------------------------------------------------------------------------------------------
// Findings

export interface AdmissionOptions {
  /** Minor of the API server (default: the platform's k3s). */
  readonly serverVersion?: number;
}

/**
 * One error per Pod Security violation in every pod template of the plan, at the level its
 * namespace enforces. Namespaces neither planned nor cluster-provided are skipped (reference
 * integrity reports those). The policy pack's exemptions do not apply here: this is the API server.
 */
export function admissionFindings(objects: readonly PlanObject[], options: AdmissionOptions = {}): Finding[] {
  const policies = namespacePolicies(objects, options.serverVersion ?? SERVER_MINOR);
  return objects.flatMap((p) => {
    const templates = podSpecs(p.object);
    if (templates.length === 0) return [];
    const id = identity(p.object);
    const namespace = id.namespace ?? "default";
    const policy = policies.get(namespace);
    if (!policy || policy.level === "privileged") return [];
    // Only Pods are enforced: a controller is admitted and its pods are refused instead.
    const subject = `${describe(p.object)} would ${id.kind === "Pod" ? "be rejected" : "have its pods rejected"}`;
    return templates.flatMap((t) =>
      checkPodSecurity(t.spec, policy.level, t.metadata, { version: policy.version }).map((v): Finding => ({
        check: "admission",
        severity: "error",
        urn: p.urn,
        field: podSecurityField(t.path, v),
        message: `${subject} by Pod Security '${policy.level}' (namespace ${namespace}, control ${v.control}): ${v.message}`,
      })),
    );
  });
}
