/**
 * The stack program as a function: validate config, build the Platform, return the stack outputs.
 * `index.ts` exports it for the Pulumi CLI; the preflight and the tests call it under mocks.
 */
import * as pulumi from "@pulumi/pulumi";
import { K3sCluster } from "./cluster/k3s";
import { localRegistrySetup, type LocalRegistrySetup } from "./cluster/local-registry";
import { loadPlatformConfig } from "./config";
import { Platform } from "./platform";

export interface StackOutputs {
  readonly environment: string;
  readonly clusterDistribution: string;
  readonly gpuPools: string[];
  /** Served model names. */
  readonly models: string[];
  /** The inference gateway's public URL. */
  readonly gatewayUrl?: string;
  /** K3s only: where clients reach the API server. */
  readonly apiEndpoint?: string;
  /** Hostname the ingress Gateway serves (HTTPS), when the mesh is on. */
  readonly ingressHostname?: string;
  /** In-cluster Grafana URL (`kubectl -n monitoring port-forward svc/grafana 3000:80`). */
  readonly grafanaUrl?: string;
  /** Secret (namespace/name) holding Grafana's admin login; the password never leaves it. */
  readonly grafanaAdminSecret?: string;
  /** Registry host images are pushed to and pulled from (when the registry is enabled). */
  readonly registryEndpoint?: string;
  /** The gateway image by digest (`registry/platform/gateway@sha256:...`), what its Deployment runs. */
  readonly gatewayImage?: pulumi.Output<string>;
  /** First-party apps: their public URL (routed on the ingress) or in-cluster URL, by name. */
  readonly apps?: Record<string, string>;
  /** First-party app images by digest, by app name. */
  readonly appImages?: Record<string, pulumi.Output<string>>;
  /** k3d/kind only: the file and command the laptop cluster needs to pull from the registry (secret). */
  readonly localRegistrySetup?: pulumi.Output<LocalRegistrySetup | undefined>;
  /** Only present when the platform knows the kubeconfig; always a secret. */
  readonly kubeconfig?: pulumi.Output<string>;
  /** The platform repository, when GitHub delivery is on. */
  readonly repositoryUrl?: pulumi.Output<string>;
  /** The stack's GitHub environment. */
  readonly githubEnvironment?: pulumi.Output<string>;
  /** The Vercel project the front end deploys to. */
  readonly vercelProjectId?: pulumi.Output<string>;
  /** The front end's production URL, when this stack owns the domain. */
  readonly frontendUrl?: pulumi.Output<string>;
}

export function definePlatform(): StackOutputs {
  const { config, secrets, appSecrets } = loadPlatformConfig();
  const platform = new Platform(`${pulumi.getStack()}`, { config, secrets, appSecrets });
  const apps = Object.entries(platform.apps);
  return {
    environment: config.environment,
    clusterDistribution: platform.cluster.distribution,
    gpuPools: platform.cluster.gpuPools.map((p) => p.name),
    models: platform.inference.models,
    ...(platform.inference.gatewayUrl ? { gatewayUrl: platform.inference.gatewayUrl } : {}),
    ...(platform.cluster instanceof K3sCluster ? { apiEndpoint: platform.cluster.apiEndpoint } : {}),
    ...(platform.mesh ? { ingressHostname: platform.mesh.ingressHostname } : {}),
    ...(platform.monitoring
      ? {
          grafanaUrl: platform.monitoring.grafanaUrl,
          grafanaAdminSecret: `${platform.monitoring.namespace}/${platform.monitoring.grafanaAdmin.name}`,
        }
      : {}),
    ...(platform.registry ? { registryEndpoint: platform.registry.endpoint } : {}),
    ...(platform.images.gateway ? { gatewayImage: platform.images.gateway.repoDigest } : {}),
    ...(apps.length
      ? {
          apps: Object.fromEntries(apps.map(([n, a]) => [n, a.publicUrl ?? a.url])),
          appImages: Object.fromEntries(
            Object.entries(platform.images.apps).map(([n, image]) => [n, image.repoDigest]),
          ),
        }
      : {}),
    ...(platform.kubeconfig ? { kubeconfig: pulumi.secret(platform.kubeconfig) } : {}),
    ...(platform.nodeRegistry && config.cluster.kind === "existing"
      ? (() => {
          const reg = platform.nodeRegistry;
          const distribution = config.cluster.distribution;
          if (!localRegistrySetup(distribution, { ...reg, password: "" })) return {};
          return {
            localRegistrySetup: pulumi.secret(
              reg.password.apply((password) => localRegistrySetup(distribution, { ...reg, password })),
            ),
          };
        })()
      : {}),
    ...(platform.github
      ? { repositoryUrl: platform.github.repositoryUrl, githubEnvironment: platform.github.environmentName }
      : {}),
    ...(platform.frontend ? { vercelProjectId: platform.frontend.projectId } : {}),
    ...(platform.frontend?.productionUrl ? { frontendUrl: platform.frontend.productionUrl } : {}),
  };
}
