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
import { ServiceMesh } from "./mesh/mesh";
import { platformNamespace } from "./meta";
import { MonitoringStack, prometheusEndpoint } from "./monitoring/monitoring";
import { SecretStore } from "./secrets/store";

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
  /** Istio, its ingress Gateway and Flagger (platform:mesh.enabled). */
  public readonly mesh?: ServiceMesh;
  /** Prometheus, Grafana, OpenTelemetry and the SLO alerts (platform:monitoring.enabled). */
  public readonly monitoring?: MonitoringStack;

  constructor(name: string, args: PlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:index:Platform", name, {}, opts);
    const { config, secrets } = args;
    const cl = config.cluster;

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
      {
        provider,
        secrets,
        externalSecrets: config.secrets.externalSecrets,
        dependsOn: [...this.cluster.ready],
      },
      { parent: this, dependsOn: Object.values(namespaces) },
    );

    // --- GPU stack (issue 3) ---
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
    // --- delivery pipeline (issue 7) ---

    this.registerOutputs({
      distribution: this.cluster.distribution,
      workloadNamespaces: this.workloadNamespaces,
      ingressHostname: this.mesh?.ingressHostname,
      grafanaUrl: this.monitoring?.grafanaUrl,
    });
  }
}
