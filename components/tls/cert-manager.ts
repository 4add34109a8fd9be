/**
 * cert-manager and the platform's ClusterIssuers: a self-signed CA chain (a selfSigned issuer signs
 * a CA Certificate, a CA issuer signs in-cluster certificates), and ACME with a DNS-01 solver for
 * endpoints something outside the cluster must trust (registry pushes from CI, the ingress the
 * front end calls). Each certificate names the issuer it wants; every Certificate and ClusterIssuer
 * is awaited until Ready, so an unissued certificate fails `pulumi up` instead of passing silently.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { appLabels, platformNamespace } from "../meta";
import { pinnedChart } from "../k8s-kit";
import type { SecretStore } from "../secrets/store";
import { chartImages, charts, type ImageVersion } from "../versions";
import type { IssuerChoice } from "./schema";

export const CERT_MANAGER_API = "cert-manager.io/v1";

/**
 * pulumi-kubernetes awaits custom resources only when told how: `pulumi.com/waitFor` with
 * `condition=Ready` waits for the Ready condition to be True (kubectl wait semantics), and
 * `pulumi.com/timeoutSeconds` bounds the wait, after which the update fails.
 */
export const WAIT_FOR_ANNOTATION = "pulumi.com/waitFor";
export const TIMEOUT_ANNOTATION = "pulumi.com/timeoutSeconds";
/** DNS-01 waits for the TXT record to propagate before the CA validates it: allow 15 minutes. */
export const CERTIFICATE_TIMEOUT_SECONDS = 900;
export function readyAnnotations(timeoutSeconds = CERTIFICATE_TIMEOUT_SECONDS): Record<string, string> {
  return { [WAIT_FOR_ANNOTATION]: "condition=Ready", [TIMEOUT_ANNOTATION]: String(timeoutSeconds) };
}

/** The ACME issuer: account email, directory, and the DNS-01 solver's token Secret. */
export interface AcmeIssuerSpec {
  readonly email: string;
  readonly server: string;
  readonly dns01: {
    readonly provider: "cloudflare";
    readonly zones: readonly string[];
    /** Secret (in cert-manager's namespace) and key holding the DNS provider's API token. */
    readonly tokenSecret: { readonly name: string; readonly key: string };
  };
}

/** Which ClusterIssuers the platform runs. */
export interface IssuerSpec {
  /** The in-cluster CA chain (local, and in-cluster-only certificates). */
  readonly selfSigned: boolean;
  readonly acme?: AcmeIssuerSpec;
}

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
/** Name and key of the Secret holding the ACME DNS-01 solver's API token. */
export const ACME_DNS_TOKEN_SECRET = "acme-dns01-token";
export const ACME_DNS_TOKEN_KEY = "api-token";

/** The cert-manager DNS-01 solver for a provider, its token taken from a Secret. */
export function dns01Solver(dns01: AcmeIssuerSpec["dns01"]): Record<string, unknown> {
  const ref = { name: dns01.tokenSecret.name, key: dns01.tokenSecret.key };
  const solver: Record<string, unknown> = { dns01: { cloudflare: { apiTokenSecretRef: ref } } };
  return dns01.zones.length > 0 ? { ...solver, selector: { dnsZones: [...dns01.zones] } } : solver;
}

/**
 * The issuer objects, in creation order, and the ClusterIssuer name per issuer choice.
 * `namespace` is cert-manager's own (where a ClusterIssuer's secrets live).
 */
export function issuerObjects(
  spec: IssuerSpec,
  namespace: string,
): { objects: CertManagerObject[]; clusterIssuers: Partial<Record<IssuerChoice, string>> } {
  const objects: CertManagerObject[] = [];
  const clusterIssuers: Partial<Record<IssuerChoice, string>> = {};
  if (spec.selfSigned) {
    clusterIssuers["self-signed"] = CA_ISSUER;
    objects.push(
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
    );
  }
  if (spec.acme) {
    clusterIssuers.acme = ACME_ISSUER;
    objects.push({
      role: "acme-issuer",
      kind: "ClusterIssuer",
      metadata: { name: ACME_ISSUER },
      spec: {
        acme: {
          email: spec.acme.email,
          server: spec.acme.server,
          // The ACME account key; cert-manager generates it.
          privateKeySecretRef: { name: `${ACME_ISSUER}-account` },
          solvers: [dns01Solver(spec.acme.dns01)],
        },
      },
    });
  }
  if (objects.length === 0) throw new Error("cert-manager needs at least one issuer (self-signed or acme)");
  return { objects, clusterIssuers };
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
export interface CertManagerValues extends CertManagerImage {
  readonly crds: { readonly enabled: boolean; readonly keep: boolean };
  readonly replicaCount: number;
  readonly resources: ContainerResources;
  readonly webhook: {
    readonly replicaCount: number;
    readonly resources: ContainerResources;
  } & CertManagerImage;
  readonly cainjector: {
    readonly replicaCount: number;
    readonly resources: ContainerResources;
  } & CertManagerImage;
  readonly acmesolver?: CertManagerImage;
  readonly startupapicheck?: CertManagerImage;
  readonly prometheus: { readonly enabled: boolean };
}
/**
 * A component's image, set only when its digest is traced (versions.ts `chartImages`). With both
 * `tag` and `digest` the chart renders `repository:tag@digest`; the registry and name stay its own.
 */
interface CertManagerImage {
  readonly image?: { readonly tag: string; readonly digest: string };
}
function certManagerImage(image: ImageVersion): CertManagerImage {
  return image.digest ? { image: { tag: image.tag, digest: image.digest } } : {};
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
  const img = chartImages.certManager.images;
  return {
    ...certManagerImage(img.controller),
    // CRDs stay when the release is removed so certificates are not garbage-collected with it.
    crds: { enabled: true, keep: true },
    replicaCount: replicas,
    resources: res("64Mi"),
    webhook: { ...certManagerImage(img.webhook), replicaCount: replicas, resources: res("32Mi") },
    cainjector: { ...certManagerImage(img.cainjector), replicaCount: 1, resources: res("64Mi") },
    // The HTTP-01 solver pods the controller starts (an argument of its, not a pod of the chart).
    ...(img.acmesolver.digest ? { acmesolver: certManagerImage(img.acmesolver) } : {}),
    ...(img.startupapicheck.digest ? { startupapicheck: certManagerImage(img.startupapicheck) } : {}),
    prometheus: { enabled: true },
  };
}

export interface CertManagerArgs {
  /** Provider of the cluster cert-manager runs in. */
  readonly provider: k8s.Provider;
  /** Which ClusterIssuers to run. */
  readonly issuers: {
    readonly selfSigned: boolean;
    readonly acme?: Omit<AcmeIssuerSpec, "dns01"> & {
      readonly dns01: Omit<AcmeIssuerSpec["dns01"], "tokenSecret">;
      /** The DNS provider's API token (a Pulumi secret); written to a Secret in cert-manager's namespace. */
      readonly dnsApiToken: pulumi.Input<string>;
    };
  };
  /** Writes the DNS-01 token Secret (needed with acme). */
  readonly secretStore?: SecretStore;
  /** Namespace of cert-manager itself. */
  readonly namespace?: string;
  /** Controller and webhook replicas (2+ in prod). */
  readonly replicas?: number;
  /** Resources that must exist first (e.g. the cluster's nodes). */
  readonly dependsOn?: readonly pulumi.Resource[];
}

/** cert-manager (pinned chart) plus the platform's ClusterIssuers. */
export class CertManager extends pulumi.ComponentResource {
  /** ClusterIssuer name per issuer choice (only the issuers this stack runs). */
  public readonly clusterIssuers: Partial<Record<IssuerChoice, string>>;
  public readonly namespace: string;
  /** The chart; custom resources of cert-manager's kinds depend on it. */
  public readonly chart: k8s.helm.v4.Chart;
  private readonly provider: k8s.Provider;
  private readonly name: string;
  private readonly ready: Partial<Record<IssuerChoice, pulumi.Resource>> = {};
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
    const acmeArgs = args.issuers.acme;
    let tokenSecret: pulumi.Resource | undefined;
    if (acmeArgs) {
      if (!args.secretStore) throw new Error("the acme issuer needs a SecretStore for its DNS-01 token");
      tokenSecret = args.secretStore.secret(
        ACME_DNS_TOKEN_SECRET,
        this.namespace,
        { [ACME_DNS_TOKEN_KEY]: acmeArgs.dnsApiToken },
        { component: "tls", dependsOn: [ns] },
      ).resource;
    }
    const spec: IssuerSpec = {
      selfSigned: args.issuers.selfSigned,
      ...(acmeArgs
        ? {
            acme: {
              email: acmeArgs.email,
              server: acmeArgs.server,
              dns01: {
                ...acmeArgs.dns01,
                tokenSecret: { name: ACME_DNS_TOKEN_SECRET, key: ACME_DNS_TOKEN_KEY },
              },
            },
          }
        : {}),
    };
    const { objects, clusterIssuers } = issuerObjects(spec, this.namespace);
    this.clusterIssuers = clusterIssuers;
    let previous: pulumi.Resource = this.chart;
    for (const o of objects) {
      const acme = o.role === "acme-issuer";
      const resource = new k8s.apiextensions.CustomResource(
        `${name}-${o.role}`,
        {
          apiVersion: CERT_MANAGER_API,
          kind: o.kind,
          metadata: {
            ...o.metadata,
            labels: appLabels(o.metadata.name, "tls"),
            // Ready once the CA secret exists / the ACME account is registered.
            annotations: readyAnnotations(),
          },
          spec: o.spec,
        },
        // Each link of the CA chain needs the one before it; the ACME issuer needs its token.
        {
          ...childOpts,
          dependsOn: acme ? [this.chart, ...(tokenSecret ? [tokenSecret] : [])] : [this.chart, previous],
        },
      );
      if (acme) this.ready.acme = resource;
      else previous = this.ready["self-signed"] = resource;
    }
    this.registerOutputs({ clusterIssuers: this.clusterIssuers, namespace: this.namespace });
  }

  /**
   * A Certificate `name` in `namespace` for `dnsNames`, signed by the ClusterIssuer of `issuer`;
   * returns the name of the TLS Secret (`tls.crt`, `tls.key`, `ca.crt`) cert-manager writes, and
   * the Certificate, for consumers to order themselves after it. The Certificate is awaited until
   * Ready: a certificate that cannot be issued fails the update.
   */
  certificate(
    name: string,
    namespace: string,
    dnsNames: readonly string[],
    opts: { issuer: IssuerChoice; dependsOn?: readonly pulumi.Resource[] },
  ): { secretName: string; certificate: pulumi.Resource } {
    const id = `${namespace}/${name}`;
    if (this.issued.has(id)) throw new Error(`certificate ${id} is requested twice`);
    const clusterIssuer = this.clusterIssuers[opts.issuer];
    const issuerReady = this.ready[opts.issuer];
    if (!clusterIssuer || !issuerReady)
      throw new Error(`certificate ${id} asks for the ${opts.issuer} issuer, which this stack does not run`);
    this.issued.add(id);
    const secretName = `${name}-tls`;
    const certificate = new k8s.apiextensions.CustomResource(
      `${this.name}-cert-${namespace}-${name}`,
      {
        apiVersion: CERT_MANAGER_API,
        kind: "Certificate",
        metadata: { name, namespace, labels: appLabels(name, "tls"), annotations: readyAnnotations() },
        spec: certificateSpec(secretName, dnsNames, clusterIssuer),
      },
      {
        parent: this,
        provider: this.provider,
        dependsOn: [this.chart, issuerReady, ...(opts.dependsOn ?? [])],
      },
    );
    return { secretName, certificate };
  }
}
