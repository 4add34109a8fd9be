/**
 * The one way components put credentials into Kubernetes: stack secrets and generated credentials
 * become namespaced `Secret`s with stable names, and consumers get typed references (secretKeyRef,
 * volumes) instead of building Secret plumbing by hand.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { requireSecretValue, type PlatformSecrets, type SecretKey } from "../config";
import { appLabels, platformNamespace } from "../meta";
import { pinnedChart } from "../k8s-kit";
import { chartImages, charts, pinnedTag } from "../versions";
import type { ExternalSecretsConfig } from "./schema";

export interface SecretRef {
  readonly name: string;
  readonly namespace: string;
  /** The Secret resource, for dependsOn. */
  readonly resource: k8s.core.v1.Secret;
  /** `valueFrom.secretKeyRef` for a container env var. */
  env(envName: string, key: string): k8s.types.input.core.v1.EnvVar;
  /** A pod volume of the Secret (mode 0400), optionally only some keys. */
  volume(volumeName: string, keys?: readonly string[]): k8s.types.input.core.v1.Volume;
}

export interface SecretStoreArgs {
  /** Provider of the cluster the Secrets live in. */
  readonly provider: k8s.Provider;
  /** Stack secrets, read by `fromConfig`. */
  readonly secrets?: PlatformSecrets;
  /** External Secrets Operator (`platform:secrets.externalSecrets`); off when absent. */
  readonly externalSecrets?: ExternalSecretsConfig;
  /** Resources the operator's namespace and chart wait for (the cluster being ready). */
  readonly dependsOn?: readonly pulumi.Resource[];
}

/** Namespace of the External Secrets Operator. */
export const EXTERNAL_SECRETS_NAMESPACE = "external-secrets";

/** The stable Secret name of a stack secret: `platform:alertWebhookUrl` → `platform-alert-webhook-url`. */
export function stableSecretName(key: SecretKey): string {
  return `platform-${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** The ClusterSecretStore `spec.provider` for a backend; the operator authenticates as its own SA. */
export function clusterSecretStoreProvider(c: ExternalSecretsConfig): Record<string, unknown> {
  const sa = { name: "external-secrets", namespace: EXTERNAL_SECRETS_NAMESPACE };
  switch (c.provider) {
    case "vault":
      return {
        vault: {
          server: c.server,
          path: c.vaultPath,
          version: "v2",
          auth: { kubernetes: { mountPath: "kubernetes", role: c.vaultRole, serviceAccountRef: sa } },
        },
      };
    case "aws":
      return {
        aws: { service: "SecretsManager", region: c.region, auth: { jwt: { serviceAccountRef: sa } } },
      };
    case "gcp":
      return { gcpsm: { projectID: c.projectId } };
    case "azure":
      return { azurekv: { vaultUrl: c.server, authType: "WorkloadIdentity", serviceAccountRef: sa } };
  }
}

/** Typed values of the external-secrets chart (the parts we set). */
export interface ExternalSecretsValues extends EsoImage {
  installCRDs: boolean;
  serviceAccount: { create: boolean; name: string };
  resources: { requests: { cpu: string; memory: string }; limits: { memory: string } };
  /** The controller's health server (`--live-addr`) answers both probes; the chart has them off. */
  livenessProbe: { enabled: true };
  readinessProbe: { enabled: true };
  webhook: { resources: ExternalSecretsValues["resources"]; livenessProbe: { enabled: true } } & EsoImage;
  certController: {
    resources: ExternalSecretsValues["resources"];
    livenessProbe: { enabled: true };
  } & EsoImage;
}
/**
 * The chart renders `repository:tag` (plus `-flavour`, unset here): a traced digest rides in the tag
 * (`v2.9.0@sha256:...`); set only when one is traced (versions.ts `chartImages`).
 */
interface EsoImage {
  image?: { tag: string };
}

export function externalSecretsValues(): ExternalSecretsValues {
  const resources = { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } };
  // One image for the controller, its webhook and its cert controller.
  const tag = pinnedTag(chartImages.externalSecrets.images.externalSecrets);
  const image: EsoImage = tag ? { image: { tag } } : {};
  // Readiness is on by default for the webhook and cert controller; liveness is off everywhere.
  return {
    ...image,
    installCRDs: true,
    serviceAccount: { create: true, name: "external-secrets" },
    resources,
    livenessProbe: { enabled: true },
    readinessProbe: { enabled: true },
    webhook: { ...image, resources, livenessProbe: { enabled: true } },
    certController: { ...image, resources, livenessProbe: { enabled: true } },
  };
}

/** The reference helpers, pure so tests can check them without a runtime. */
export function secretKeyRef(
  secretName: string,
  envName: string,
  key: string,
): k8s.types.input.core.v1.EnvVar {
  return { name: envName, valueFrom: { secretKeyRef: { name: secretName, key } } };
}

export function secretVolume(
  secretName: string,
  volumeName: string,
  keys?: readonly string[],
): k8s.types.input.core.v1.Volume {
  return {
    name: volumeName,
    secret: {
      secretName,
      defaultMode: 0o400,
      ...(keys ? { items: keys.map((key) => ({ key, path: key })) } : {}),
    },
  };
}

export class SecretStore extends pulumi.ComponentResource {
  /** Name of the ClusterSecretStore when the External Secrets Operator is on. */
  public readonly clusterSecretStore?: string;
  private readonly provider: k8s.Provider;
  private readonly secrets: PlatformSecrets;
  private readonly storeName: string;
  private readonly refs = new Map<string, SecretRef>();

  constructor(name: string, args: SecretStoreArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:secrets:SecretStore", name, {}, opts);
    this.provider = args.provider;
    this.secrets = args.secrets ?? {};
    this.storeName = name;
    const eso = args.externalSecrets;
    if (eso?.enabled) {
      const k8sOpts = { parent: this, provider: args.provider, dependsOn: [...(args.dependsOn ?? [])] };
      // The operator's pods run restricted (non-root, no capabilities), so the namespace enforces it.
      const ns = platformNamespace(
        EXTERNAL_SECRETS_NAMESPACE,
        { meshInjection: false, podSecurity: "restricted", component: "secrets" },
        k8sOpts,
      );
      const chart = pinnedChart(
        `${name}-external-secrets`,
        charts.externalSecrets,
        {
          release: "external-secrets",
          namespace: EXTERNAL_SECRETS_NAMESPACE,
          values: externalSecretsValues(),
        },
        { ...k8sOpts, dependsOn: [ns] },
      );
      new k8s.apiextensions.CustomResource(
        `${name}-cluster-secret-store`,
        {
          apiVersion: "external-secrets.io/v1",
          kind: "ClusterSecretStore",
          metadata: { name: eso.storeName, labels: appLabels(eso.storeName, "secrets") },
          spec: { provider: clusterSecretStoreProvider(eso) },
        },
        { ...k8sOpts, dependsOn: [chart] },
      );
      this.clusterSecretStore = eso.storeName;
    }
    this.registerOutputs({ clusterSecretStore: this.clusterSecretStore });
  }

  /**
   * The stack secret `platform:<key>` as a Secret in `namespace` with a stable name
   * (`stableSecretName(key)` unless `name` is given) and one data key (`value` unless `dataKey`).
   */
  fromConfig(
    key: SecretKey,
    namespace: pulumi.Input<string> & string,
    options: {
      name?: string;
      dataKey?: string;
      component?: string;
      dependsOn?: pulumi.Input<pulumi.Resource>[];
    } = {},
  ): SecretRef {
    const value = requireSecretValue(this.secrets, key);
    return this.secret(
      options.name ?? stableSecretName(key),
      namespace,
      { [options.dataKey ?? "value"]: value },
      {
        ...(options.component ? { component: options.component } : {}),
        ...(options.dependsOn ? { dependsOn: options.dependsOn } : {}),
      },
    );
  }

  /**
   * A Secret of credentials the platform mints itself: each key of `passwords` becomes a
   * RandomPassword (kept in state as a secret), `literals` are non-secret companions (a user name).
   */
  generated(
    name: string,
    namespace: pulumi.Input<string> & string,
    spec: {
      passwords: Record<string, { length?: number; special?: boolean }>;
      literals?: Record<string, string>;
      component?: string;
      dependsOn?: pulumi.Input<pulumi.Resource>[];
    },
  ): SecretRef {
    const data: Record<string, pulumi.Input<string>> = { ...(spec.literals ?? {}) };
    for (const [key, p] of Object.entries(spec.passwords)) {
      data[key] = new random.RandomPassword(
        `${this.storeName}-${namespace}-${name}-${key}`,
        { length: p.length ?? 32, special: p.special ?? false },
        { parent: this },
      ).result;
    }
    return this.secret(name, namespace, data, {
      ...(spec.component ? { component: spec.component } : {}),
      ...(spec.dependsOn ? { dependsOn: spec.dependsOn } : {}),
    });
  }

  /**
   * A Secret `name` in `namespace` holding `data` (string values, wrapped as Pulumi secrets).
   * Asking twice for the same namespace/name is a bug and throws.
   */
  secret(
    name: string,
    namespace: pulumi.Input<string> & string,
    data: Record<string, pulumi.Input<string>>,
    options: { type?: string; dependsOn?: pulumi.Input<pulumi.Resource>[]; component?: string } = {},
  ): SecretRef {
    const id = `${namespace}/${name}`;
    if (this.refs.has(id)) throw new Error(`secret ${id} is defined twice`);
    const stringData: Record<string, pulumi.Output<string>> = {};
    for (const [k, v] of Object.entries(data)) stringData[k] = pulumi.secret(v);
    const resource = new k8s.core.v1.Secret(
      `${namespace}-${name}`,
      {
        metadata: { name, namespace, labels: appLabels(name, options.component ?? "secret") },
        type: options.type ?? "Opaque",
        stringData,
      },
      {
        parent: this,
        provider: this.provider,
        ...(options.dependsOn ? { dependsOn: options.dependsOn } : {}),
      },
    );
    const ref: SecretRef = {
      name,
      namespace,
      resource,
      env: (envName, key) => secretKeyRef(name, envName, key),
      volume: (volumeName, keys) => secretVolume(name, volumeName, keys),
    };
    this.refs.set(id, ref);
    return ref;
  }
}
