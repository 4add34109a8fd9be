import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { GpuPool } from "./gpu-pool";
import type { ClusterHandle, GpuPool as GpuPoolSpec } from "./handle";
import type { ExistingClusterConfig } from "./schema";

export interface ExistingClusterArgs {
  /** The cluster section of the stack config. */
  readonly config: ExistingClusterConfig;
  /** kubeconfig from a config secret; when absent the ambient kubeconfig (and `context`) is used. */
  readonly kubeconfig?: pulumi.Input<string>;
}

/** GPU pools of an existing cluster, described by node selectors. */
export function existingGpuPools(config: ExistingClusterConfig): GpuPoolSpec[] {
  return config.gpuPools.map((p) => ({
    name: p.name,
    nodeSelector: p.nodeSelector,
    nodes: p.nodes,
    gpu: p.gpu,
  }));
}

/** A cluster someone else runs (managed Kubernetes, a laptop cluster), reached by kubeconfig. */
export class ExistingCluster extends pulumi.ComponentResource implements ClusterHandle {
  public readonly provider: k8s.Provider;
  public readonly kubeconfig?: pulumi.Output<string>;
  public readonly distribution: ClusterHandle["distribution"];
  public readonly gpuPools: readonly GpuPoolSpec[];
  public readonly ready: readonly pulumi.Resource[];

  constructor(name: string, args: ExistingClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:cluster:ExistingCluster", name, {}, opts);
    const { config } = args;
    this.kubeconfig = args.kubeconfig === undefined ? undefined : pulumi.secret(args.kubeconfig);
    this.provider = new k8s.Provider(
      `${name}-provider`,
      {
        ...(this.kubeconfig ? { kubeconfig: this.kubeconfig } : {}),
        ...(config.context ? { context: config.context } : {}),
      },
      { parent: this },
    );
    this.distribution = config.distribution;
    this.gpuPools = existingGpuPools(config);
    // Records of each pool's declared capacity (for gpu-capacity-fits); nothing to wait for here.
    for (const p of this.gpuPools) new GpuPool(`${name}-pool-${p.name}`, p, { parent: this });
    this.ready = [];
    this.registerOutputs({ distribution: this.distribution, gpuPools: this.gpuPools.map((p) => p.name) });
  }
}
