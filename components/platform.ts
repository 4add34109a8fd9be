/**
 * The composition root: builds the platform's parts in dependency order from the validated stack
 * config. Each part can be switched off per stack; every part gets the same ClusterHandle, the same
 * SecretStore and the list of workload namespaces, and nothing else about the others.
 */
import type * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { ExistingCluster } from "./cluster/existing";
import type { ClusterHandle } from "./cluster/handle";
import { requireSecretValue, type PlatformConfig, type PlatformSecrets } from "./config";
import { defaultTag, ServiceImage } from "./images/service-image";
import { platformNamespace } from "./meta";
import {
  nodeRegistryAccess,
  registryCredentials,
  type NodeRegistryAccess,
  type RegistryCredentials,
} from "./registry/credentials";
import { PullSecrets } from "./registry/pull-secrets";
import { Registry } from "./registry/registry";
import { SecretStore } from "./secrets/store";
import { CertManager } from "./tls/cert-manager";

export interface PlatformArgs {
  /** The validated stack config. */
  readonly config: PlatformConfig;
  /** Stack secrets as Pulumi secrets. */
  readonly secrets: PlatformSecrets;
}

export class Platform extends pulumi.ComponentResource {
  public readonly cluster: ClusterHandle;
  public readonly secretStore: SecretStore;
  /** Namespaces that run the platform's workloads (mesh-injected, restricted Pod Security). */
  public readonly workloadNamespaces: readonly string[];
  /** The cluster's kubeconfig (secret), when the platform knows it. */
  public readonly kubeconfig?: pulumi.Output<string>;
  /** Registry mirror + auth for the nodes' container runtime (K3s registries.yaml), made before the cluster. */
  public readonly nodeRegistry?: NodeRegistryAccess;
  /** cert-manager and the platform's ClusterIssuer (when the registry or the mesh needs certificates). */
  public readonly tls?: CertManager;
  /** The private registry (endpoint, push credentials, pull dockerconfigjson). */
  public readonly registry?: Registry;
  /** Pull secret + `platform-workload` ServiceAccount in every workload namespace. */
  public readonly pullSecrets?: PullSecrets;
  /** First-party images, built and pushed; workloads deploy their `repoDigest`. */
  public readonly images: { gateway?: ServiceImage } = {};

  constructor(name: string, args: PlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:index:Platform", name, {}, opts);
    const { config, secrets } = args;
    const cl = config.cluster;
    const reg = config.registry;

    // Registry credentials exist before the cluster: K3s nodes get them in registries.yaml.
    const registryCreds: RegistryCredentials | undefined =
      reg.enabled && reg.mode === "in-cluster" ? registryCredentials(name, { parent: this }) : undefined;
    const registryAuth = !reg.enabled
      ? undefined
      : (registryCreds ?? {
          username: reg.external?.username ?? "",
          password: requireSecretValue(secrets, "registryPassword"),
        });
    // For the K3s cluster (issue 3): pass as `K3sClusterArgs.registry`.
    this.nodeRegistry = registryAuth && nodeRegistryAccess(reg, registryAuth);

    // --- cluster (issue 3) ---
    this.cluster = ((): ClusterHandle => {
      switch (cl.kind) {
        case "existing":
          return new ExistingCluster(
            `${name}-cluster`,
            {
              config: cl,
              ...(cl.kubeconfigFromSecret ? { kubeconfig: requireSecretValue(secrets, "kubeconfig") } : {}),
            },
            { parent: this },
          );
        case "k3s":
          throw new Error("K3s clusters are not available yet");
      }
    })();
    this.kubeconfig = this.cluster.kubeconfig;
    const provider = this.cluster.provider;
    const k8sOpts = (): pulumi.CustomResourceOptions => ({
      parent: this,
      provider,
      dependsOn: [...this.cluster.ready],
    });

    // --- workload namespaces and the secret store ---
    this.workloadNamespaces = [config.inference.namespace];
    const namespaces: Record<string, k8s.core.v1.Namespace> = {};
    for (const ns of this.workloadNamespaces)
      namespaces[ns] = platformNamespace(
        ns,
        { meshInjection: config.mesh.enabled, podSecurity: "restricted", component: "workloads" },
        k8sOpts(),
      );
    this.secretStore = new SecretStore(
      `${name}-secrets`,
      { provider },
      { parent: this, dependsOn: Object.values(namespaces) },
    );

    // --- GPU stack (issue 3) ---
    // --- registry and images (issue 4) ---
    if ((reg.enabled && reg.mode === "in-cluster") || config.mesh.enabled)
      this.tls = new CertManager(
        `${name}-tls`,
        {
          provider,
          issuer:
            reg.tls.issuer === "acme"
              ? { kind: "acme", email: reg.tls.acmeEmail!, server: reg.tls.acmeServer, ingressClass: "istio" }
              : { kind: "self-signed" },
          replicas: config.environment === "prod" ? 2 : 1,
          dependsOn: [...this.cluster.ready],
        },
        { parent: this },
      );
    if (reg.enabled) {
      const registry = new Registry(
        `${name}-registry`,
        {
          config: reg,
          environment: config.environment,
          meshEnabled: config.mesh.enabled,
          provider,
          credentials: registryAuth!,
          secretStore: this.secretStore,
          ...(this.tls ? { tls: this.tls } : {}),
          dependsOn: [...this.cluster.ready],
        },
        // The registry holds every pushed image: protected (with its children) in prod.
        { parent: this, protect: config.environment === "prod" },
      );
      this.registry = registry;
      this.pullSecrets = new PullSecrets(
        `${name}-pull`,
        {
          provider,
          namespaces: this.workloadNamespaces,
          dockerConfigJson: registry.dockerConfigJson,
          secretStore: this.secretStore,
          dependsOn: [...Object.values(namespaces)],
        },
        { parent: this },
      );
      if (config.inference.gateway.enabled) {
        const context = "services/gateway";
        this.images.gateway = new ServiceImage(
          `${name}-gateway`,
          {
            context,
            dockerfile: `${context}/Dockerfile`,
            repository: "platform/gateway",
            tag: reg.images.tag ?? defaultTag(context),
            platform: reg.images.platform,
            cacheFrom: reg.images.cacheFrom,
            buildOnPreview: reg.images.buildOnPreview,
            registry: registry.auth,
          },
          // An in-cluster registry must be serving before the push.
          { parent: this, dependsOn: [registry] },
        );
      }
    }
    // --- mesh and monitoring (issue 5) ---
    // --- inference services and gateway (issue 6) ---
    // --- delivery pipeline (issue 7) ---

    this.registerOutputs({
      distribution: this.cluster.distribution,
      workloadNamespaces: this.workloadNamespaces,
      registryEndpoint: this.registry?.endpoint,
      gatewayImage: this.images.gateway?.repoDigest,
    });
  }
}
