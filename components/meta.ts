/**
 * Kubernetes metadata conventions shared by every component: the recommended
 * `app.kubernetes.io/*` labels and the platform's namespaces with their mesh and Pod Security labels.
 */
import * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";

export const PART_OF = "ai-delivery-platform";

/** Node label that names a node's GPU pool; GPU workloads select on it. */
export const GPU_POOL_LABEL = "platform.ai/gpu-pool";
/** The taint every GPU node carries, and GPU pods tolerate. */
export const GPU_TAINT = { key: "nvidia.com/gpu", value: "present", effect: "NoSchedule" } as const;
/** RuntimeClass GPU pods run with. */
export const GPU_RUNTIME_CLASS = "nvidia";

/** The recommended labels (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/). */
export function appLabels(name: string, component: string, version?: string): Record<string, string> {
  return {
    "app.kubernetes.io/name": name,
    "app.kubernetes.io/instance": name,
    "app.kubernetes.io/component": component,
    "app.kubernetes.io/part-of": PART_OF,
    "app.kubernetes.io/managed-by": "pulumi",
    ...(version
      ? { "app.kubernetes.io/version": version.replace(/[^A-Za-z0-9_.-]/g, "-").slice(0, 63) }
      : {}),
  };
}

/** Selector labels: the stable subset of appLabels (never include the version). */
export function selectorLabels(name: string): Record<string, string> {
  return { "app.kubernetes.io/name": name, "app.kubernetes.io/instance": name };
}

export type PodSecurityLevel = "restricted" | "baseline" | "privileged";

export interface NamespaceSpec {
  /** Label for Istio sidecar injection (workload namespaces when the mesh is on). */
  readonly meshInjection: boolean;
  /** Pod Security admission level enforced on the namespace. */
  readonly podSecurity: PodSecurityLevel;
  /** What the namespace is for (app.kubernetes.io/component). */
  readonly component: string;
}

/** Labels of a platform namespace; pure, so tests and policies can reason about them. */
export function namespaceLabels(name: string, spec: NamespaceSpec): Record<string, string> {
  return {
    "app.kubernetes.io/name": name,
    "app.kubernetes.io/component": spec.component,
    "app.kubernetes.io/part-of": PART_OF,
    "app.kubernetes.io/managed-by": "pulumi",
    "pod-security.kubernetes.io/enforce": spec.podSecurity,
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    ...(spec.meshInjection ? { "istio-injection": "enabled" } : {}),
  };
}

/** A namespace created by the platform, labelled for the mesh and Pod Security admission. */
export function platformNamespace(
  name: string,
  spec: NamespaceSpec,
  opts: pulumi.CustomResourceOptions,
): k8s.core.v1.Namespace {
  return new k8s.core.v1.Namespace(
    `ns-${name}`,
    { metadata: { name, labels: namespaceLabels(name, spec) } },
    opts,
  );
}

/** The platform's ingress Gateway (`namespace/name`); VirtualServices of other components bind to it. */
export const MESH_GATEWAY = "istio-system/platform-gateway";

/**
 * The mesh's authorization contract: pods carry `app.kubernetes.io/component` (see appLabels) with
 * one of these values, and the platform gateway's service accounts start with `gatewayServiceAccountPrefix`.
 * The default-deny policies allow exactly: the ingress gateway → `gateway` pods, gateway service
 * accounts → `model-server` pods, Prometheus → `GET /metrics` anywhere. Anything else is denied.
 */
export const MESH_CONTRACT = {
  gatewayComponent: "gateway",
  modelServerComponent: "model-server",
  gatewayServiceAccountPrefix: "gateway",
  metricsPaths: ["/metrics", "/stats/prometheus"],
} as const;
