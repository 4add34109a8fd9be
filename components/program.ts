/**
 * The stack program as a function: validate config, build the Platform, return the stack outputs.
 * `index.ts` exports it for the Pulumi CLI; the preflight and the tests call it under mocks.
 */
import * as pulumi from "@pulumi/pulumi";
import { loadPlatformConfig } from "./config";
import { Platform } from "./platform";

export interface StackOutputs {
  readonly environment: string;
  readonly clusterDistribution: string;
  readonly gpuPools: string[];
  /** Registry host images are pushed to and pulled from (when the registry is enabled). */
  readonly registryEndpoint?: string;
  /** The gateway image by digest (`registry/platform/gateway@sha256:...`), what its Deployment runs. */
  readonly gatewayImage?: pulumi.Output<string>;
  /** Only present when the platform knows the kubeconfig; always a secret. */
  readonly kubeconfig?: pulumi.Output<string>;
}

export function definePlatform(): StackOutputs {
  const { config, secrets } = loadPlatformConfig();
  const platform = new Platform(`${pulumi.getStack()}`, { config, secrets });
  return {
    environment: config.environment,
    clusterDistribution: platform.cluster.distribution,
    gpuPools: platform.cluster.gpuPools.map((p) => p.name),
    ...(platform.registry ? { registryEndpoint: platform.registry.endpoint } : {}),
    ...(platform.images.gateway ? { gatewayImage: platform.images.gateway.repoDigest } : {}),
    ...(platform.kubeconfig ? { kubeconfig: pulumi.secret(platform.kubeconfig) } : {}),
  };
}
