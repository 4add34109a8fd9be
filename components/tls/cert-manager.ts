/**
 * cert-manager and the platform's ClusterIssuer: a self-signed CA chain for local and dev (a
 * selfSigned issuer signs a CA Certificate, a CA issuer signs everything else), or ACME for prod
 * (HTTP-01 answered through the Istio ingress). Other components ask it for certificates.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { appLabels, platformNamespace } from "../meta";
import { pinnedChart } from "../k8s-kit";
import { charts } from "../versions";

export const CERT_MANAGER_API = "cert-manager.io/v1";

/** Which issuer the platform's certificates come from. */
export type IssuerSpec =
  | { readonly kind: "self-signed" }
  | {
      readonly kind: "acme";
      readonly email: string;
      readonly server: string;
      /** Ingress class cert-manager's HTTP-01 solver uses (Istio serves `istio`). */
      readonly ingressClass: string;
    };

/** A cert-manager custom resource as the component registers it. */
export interface CertManagerObject {
  /** Role used in the Pulumi resource name (`${name}-<role>`). */
  readonly role: string;
  readonly kind: "ClusterIssuer" | "Certificate";
  readonly metadata: { readonly name: string; readonly namespace?: string };
  readonly spec: Record<string, unknown>;
}

export const SELF_SIGNED_ISSUER = "platform-selfsigned";
export const CA_ISSUER = "platform-ca";
export const ACME_ISSUER = "platform-acme";

/**
 * The issuer objects, in creation order, and the name of the ClusterIssuer that signs the
 * platform's certificates. `namespace` is cert-manager's own (where a ClusterIssuer's CA secret lives).
 */
export function issuerObjects(
  spec: IssuerSpec,
  namespace: string,
): { objects: CertManagerObject[]; clusterIssuer: string } {
  if (spec.kind === "acme")
    return {
      clusterIssuer: ACME_ISSUER,
      objects: [
        {
          role: "acme-issuer",
          kind: "ClusterIssuer",
          metadata: { name: ACME_ISSUER },
          spec: {
            acme: {
              email: spec.email,
              server: spec.server,
              // The ACME account key; cert-manager generates it.
              privateKeySecretRef: { name: `${ACME_ISSUER}-account` },
              solvers: [{ http01: { ingress: { class: spec.ingressClass } } }],
            },
          },
        },
      ],
    };
  return {
    clusterIssuer: CA_ISSUER,
    objects: [
      {
        role: "selfsigned-issuer",
        kind: "ClusterIssuer",
        metadata: { name: SELF_SIGNED_ISSUER },
        spec: { selfSigned: {} },
      },
      {
        role: "ca-certificate",
        kind: "Certificate",
        metadata: { name: CA_ISSUER, namespace },
        spec: {
          isCA: true,
          commonName: "ai-delivery-platform CA",
          secretName: CA_ISSUER,
          duration: "87600h", // 10 years: rotating the root means re-trusting it on every node
          privateKey: { algorithm: "ECDSA", size: 256 },
          issuerRef: { name: SELF_SIGNED_ISSUER, kind: "ClusterIssuer", group: "cert-manager.io" },
        },
      },
      {
        role: "ca-issuer",
        kind: "ClusterIssuer",
        metadata: { name: CA_ISSUER },
        spec: { ca: { secretName: CA_ISSUER } },
      },
    ],
  };
}

/** The spec of a serving Certificate for `dnsNames`, signed by `clusterIssuer`. */
export function certificateSpec(
  secretName: string,
  dnsNames: readonly string[],
  clusterIssuer: string,
): Record<string, unknown> {
  if (dnsNames.length === 0) throw new Error(`certificate ${secretName} needs at least one DNS name`);
  return {
    secretName,
    dnsNames: [...dnsNames],
    duration: "2160h",
    renewBefore: "360h",
    privateKey: { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" },
    usages: ["server auth", "digital signature", "key encipherment"],
    issuerRef: { name: clusterIssuer, kind: "ClusterIssuer", group: "cert-manager.io" },
  };
}

/** The subset of the cert-manager chart's values the platform sets (typed: opaque under mocks). */
export interface CertManagerValues {
  readonly crds: { readonly enabled: boolean; readonly keep: boolean };
  readonly replicaCount: number;
  readonly resources: ContainerResources;
  readonly webhook: { readonly replicaCount: number; readonly resources: ContainerResources };
  readonly cainjector: { readonly replicaCount: number; readonly resources: ContainerResources };
  readonly prometheus: { readonly enabled: boolean };
}
interface ContainerResources {
  readonly requests: { readonly cpu: string; readonly memory: string };
  readonly limits: { readonly memory: string };
}

export function certManagerValues(replicas: number): CertManagerValues {
  const res = (memory: string): ContainerResources => ({
    requests: { cpu: "10m", memory },
    limits: { memory: `${parseInt(memory, 10) * 4}Mi` },
  });
  return {
    // CRDs stay when the release is removed so certificates are not garbage-collected with it.
    crds: { enabled: true, keep: true },
    replicaCount: replicas,
    resources: res("64Mi"),
    webhook: { replicaCount: replicas, resources: res("32Mi") },
    cainjector: { replicaCount: 1, resources: res("64Mi") },
    prometheus: { enabled: true },
  };
}

export interface CertManagerArgs {
  /** Provider of the cluster cert-manager runs in. */
  readonly provider: k8s.Provider;
  /** Which ClusterIssuer signs the platform's certificates. */
  readonly issuer: IssuerSpec;
  /** Namespace of cert-manager itself. */
  readonly namespace?: string;
  /** Controller and webhook replicas (2+ in prod). */
  readonly replicas?: number;
  /** Resources that must exist first (e.g. the cluster's nodes). */
  readonly dependsOn?: readonly pulumi.Resource[];
}

/** cert-manager (pinned chart) plus the platform's ClusterIssuer chain. */
export class CertManager extends pulumi.ComponentResource {
  /** Name of the ClusterIssuer that signs the platform's certificates. */
  public readonly clusterIssuerName: string;
  public readonly namespace: string;
  /** The chart; custom resources of cert-manager's kinds depend on it. */
  public readonly chart: k8s.helm.v4.Chart;
  private readonly provider: k8s.Provider;
  private readonly name: string;
  private readonly ready: pulumi.Resource[];
  private readonly issued = new Set<string>();

  constructor(name: string, args: CertManagerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:tls:CertManager", name, {}, opts);
    this.name = name;
    this.provider = args.provider;
    this.namespace = args.namespace ?? "cert-manager";
    const childOpts = { parent: this, provider: this.provider };
    // cert-manager's own pods are restricted-compliant; its webhook stays out of the mesh.
    const ns = platformNamespace(
      this.namespace,
      { meshInjection: false, podSecurity: "restricted", component: "tls" },
      { ...childOpts, dependsOn: [...(args.dependsOn ?? [])] },
    );
    this.chart = pinnedChart(
      `${name}-chart`,
      charts.certManager,
      { release: "cert-manager", namespace: this.namespace, values: certManagerValues(args.replicas ?? 1) },
      { ...childOpts, dependsOn: [ns] },
    );
    const { objects, clusterIssuer } = issuerObjects(args.issuer, this.namespace);
    this.clusterIssuerName = clusterIssuer;
    let previous: pulumi.Resource = this.chart;
    for (const o of objects) {
      previous = new k8s.apiextensions.CustomResource(
        `${name}-${o.role}`,
        {
          apiVersion: CERT_MANAGER_API,
          kind: o.kind,
          metadata: { ...o.metadata, labels: appLabels(o.metadata.name, "tls") },
          spec: o.spec,
        },
        // Each link of the CA chain needs the one before it.
        { ...childOpts, dependsOn: [this.chart, previous] },
      );
    }
    this.ready = [previous];
    this.registerOutputs({ clusterIssuerName: this.clusterIssuerName, namespace: this.namespace });
  }

  /**
   * A Certificate `name` in `namespace` for `dnsNames`, signed by the platform's ClusterIssuer;
   * returns the name of the TLS Secret (`tls.crt`, `tls.key`, `ca.crt`) cert-manager writes, and
   * the Certificate, for consumers to order themselves after it.
   */
  certificate(
    name: string,
    namespace: string,
    dnsNames: readonly string[],
    opts: { dependsOn?: readonly pulumi.Resource[] } = {},
  ): { secretName: string; certificate: pulumi.Resource } {
    const id = `${namespace}/${name}`;
    if (this.issued.has(id)) throw new Error(`certificate ${id} is requested twice`);
    this.issued.add(id);
    const secretName = `${name}-tls`;
    const certificate = new k8s.apiextensions.CustomResource(
      `${this.name}-cert-${namespace}-${name}`,
      {
        apiVersion: CERT_MANAGER_API,
        kind: "Certificate",
        metadata: { name, namespace, labels: appLabels(name, "tls") },
        spec: certificateSpec(secretName, dnsNames, this.clusterIssuerName),
      },
      {
        parent: this,
        provider: this.provider,
        dependsOn: [this.chart, ...this.ready, ...(opts.dependsOn ?? [])],
      },
    );
    return { secretName, certificate };
  }
}
