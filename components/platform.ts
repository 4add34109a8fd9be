/**
 * The composition root: builds the platform's parts in dependency order from the validated stack
 * config. Each part can be switched off per stack; every part gets the same ClusterHandle, the same
 * SecretStore and the list of workload namespaces, and nothing else about the others.
 */
import type * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ExistingCluster } from "./cluster/existing";
import type { ClusterHandle } from "./cluster/handle";
import { K3sCluster, type RegistryMirror } from "./cluster/k3s";
import { requireSecretValue, type PlatformConfig, type PlatformSecrets } from "./config";
import { GitHubDelivery } from "./delivery/github";
import { VercelFrontend } from "./delivery/vercel";
import { InferenceStack } from "./inference/stack";
import { NvidiaGpuStack } from "./gpu/stack";
import { ServiceMesh } from "./mesh/mesh";
import { platformNamespace } from "./meta";
import { MonitoringStack, prometheusEndpoint } from "./monitoring/monitoring";
import { SecretStore } from "./secrets/store";
import { imageRef, images } from "./versions";

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
  /** Model services and the gateway. */
  public readonly inference: InferenceStack;
  /** The GitHub side of delivery, when `delivery.github.enabled`. */
  public readonly github?: GitHubDelivery;
  /** The Vercel front end, when `delivery.vercel.enabled`. */
  public readonly frontend?: VercelFrontend;
  /** The NVIDIA stack, when GPUs are enabled and the cluster has GPU pools. */
  public readonly gpuStack?: NvidiaGpuStack;
  /** Istio, its ingress Gateway and Flagger (platform:mesh.enabled). */
  public readonly mesh?: ServiceMesh;
  /** Prometheus, Grafana, OpenTelemetry and the SLO alerts (platform:monitoring.enabled). */
  public readonly monitoring?: MonitoringStack;

  constructor(name: string, args: PlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:index:Platform", name, {}, opts);
    const { config, secrets } = args;
    const cl = config.cluster;

    // --- registry credentials (issue 4): created before the cluster, so K3s nodes get registries.yaml ---
    const registryMirror = this.registryMirror(config);

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
          return new K3sCluster(
            `${name}-cluster`,
            {
              config: cl,
              sshPrivateKey: requireSecretValue(secrets, "sshPrivateKey"),
              // The mesh's ingress gateway serves ingress; K3s's bundled Traefik would compete for :80/:443.
              disableTraefik: config.mesh.enabled,
              ...(registryMirror ? { registry: registryMirror } : {}),
            },
            { parent: this },
          );
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
      {
        provider,
        secrets,
        externalSecrets: config.secrets.externalSecrets,
        dependsOn: [...this.cluster.ready],
      },
      { parent: this, dependsOn: Object.values(namespaces) },
    );

    // --- GPU stack (issue 3) ---
    if (config.gpu.enabled && this.cluster.gpuPools.length > 0)
      this.gpuStack = new NvidiaGpuStack(
        `${name}-gpu`,
        {
          provider,
          distribution: this.cluster.distribution,
          pools: this.cluster.gpuPools,
          gpu: config.gpu,
          monitoring: config.monitoring.enabled,
          dependsOn: this.cluster.ready,
        },
        { parent: this },
      );

    // --- registry and images (issue 4) ---
    // --- mesh and monitoring (issue 5) ---
    // Prometheus's address and identity are fixed names, so the mesh (Flagger, the scrape allow)
    // can use them while the mesh is built first: Prometheus's pod then gets its cert sidecar.
    const prometheus = config.monitoring.enabled ? prometheusEndpoint() : undefined;
    if (config.mesh.enabled)
      this.mesh = new ServiceMesh(
        `${name}-mesh`,
        {
          config: config.mesh,
          environment: config.environment,
          provider,
          distribution: this.cluster.distribution,
          workloadNamespaces: this.workloadNamespaces,
          ...(prometheus ? { prometheus } : {}),
          dependsOn: [...this.cluster.ready, ...Object.values(namespaces)],
        },
        { parent: this },
      );
    if (config.monitoring.enabled)
      this.monitoring = new MonitoringStack(
        `${name}-monitoring`,
        {
          config: config.monitoring,
          environment: config.environment,
          provider,
          secretStore: this.secretStore,
          mesh: config.mesh.enabled,
          dependsOn: [...this.cluster.ready, ...(this.mesh?.ready ?? [])],
        },
        { parent: this },
      );
    // --- inference services and gateway (issue 6) ---
    const inference = config.inference;
    this.inference = new InferenceStack(
      `${name}-inference`,
      {
        cluster: this.cluster,
        namespace: inference.namespace,
        environment: config.environment,
        config: {
          ...inference,
          gateway: {
            ...inference.gateway,
            hostname: inference.gateway.hostname ?? config.mesh.ingressHostname,
          },
        },
        secretStore: this.secretStore,
        secrets: secrets.hfToken ? { hfToken: secrets.hfToken } : {},
        mesh: config.mesh.enabled,
        monitoring: config.monitoring.enabled,
        slo: config.monitoring.slo,
        // Placeholder until the registry's repoDigest is wired in.
        gatewayImage: imageRef(images.gateway, false),
        dependsOn: Object.values(namespaces),
      },
      { parent: this },
    );
    // --- delivery pipeline (issue 7) ---
    const delivery = config.delivery;
    const gatewayUrl = this.inference.gatewayUrl ?? `https://${config.mesh.ingressHostname}`;
    if (delivery.github.enabled)
      this.github = new GitHubDelivery(
        `${name}-github`,
        {
          config: delivery.github,
          environment: config.environment,
          stack: pulumi.getStack(),
          token: requireSecretValue(secrets, "githubToken"),
          ...(delivery.github.manageRepository
            ? { pulumiAccessToken: requireSecretValue(secrets, "pulumiAccessToken") }
            : {}),
          gatewayUrl,
        },
        { parent: this },
      );
    if (delivery.vercel.enabled) {
      // The front end calls the gateway with the gateway's own generated key (its hash is in the
      // gateway's key file); without a gateway there is nothing to call, but the variable stays.
      const gatewayApiKey =
        this.inference.gatewayApiKey ??
        new random.RandomPassword(
          `${name}-frontend-gateway-key`,
          { length: 48, special: false },
          { parent: this },
        ).result;
      const gh = delivery.github;
      this.frontend = new VercelFrontend(
        `${name}-vercel`,
        {
          config: delivery.vercel,
          environment: config.environment,
          apiToken: requireSecretValue(secrets, "vercelApiToken"),
          ...(gh.owner && gh.repository ? { repository: `${gh.owner}/${gh.repository}` } : {}),
          productionBranch: gh.defaultBranch,
          gatewayUrl,
          gatewayApiKey,
        },
        { parent: this },
      );
    }

    this.registerOutputs({
      distribution: this.cluster.distribution,
      workloadNamespaces: this.workloadNamespaces,
      ingressHostname: this.mesh?.ingressHostname,
      grafanaUrl: this.monitoring?.grafanaUrl,
    });
  }

  /**
   * The in-cluster registry's hostname and pull credentials for K3s's registries.yaml (mirror +
   * auth). The registry component (issue 4) fills this in; undefined writes no registries.yaml.
   */
  private registryMirror(_config: PlatformConfig): RegistryMirror | undefined {
    return undefined;
  }
}
