import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import type { GpuSpec } from "./schema";

export type Distribution = "k3s" | "generic" | "eks" | "gke" | "aks" | "kind" | "k3d";

/** A GPU pool as every consumer sees it, whatever kind of cluster it lives in. */
export interface GpuPool {
  readonly name: string;
  /** Node labels that select the pool's nodes. */
  readonly nodeSelector: Readonly<Record<string, string>>;
  readonly nodes: number;
  readonly gpu: GpuSpec;
}

/** Schedulable GPUs of a pool: nodes × GPUs per node × time-slicing replicas. */
export function poolCapacity(pool: Pick<GpuPool, "nodes" | "gpu">): number {
  return pool.nodes * pool.gpu.gpusPerNode * (pool.gpu.sharing.timeSlicing?.replicas ?? 1);
}

/**
 * What every other component consumes: no component knows whether it runs on K3s or on a cluster
 * someone else runs.
 */
export interface ClusterHandle {
  readonly provider: k8s.Provider;
  /** The kubeconfig, always a Pulumi secret; undefined when the ambient kubeconfig is used. */
  readonly kubeconfig?: pulumi.Output<string>;
  readonly distribution: Distribution;
  readonly gpuPools: readonly GpuPool[];
  /** Resources that must exist before workloads are created (e.g. agents joined). */
  readonly ready: readonly pulumi.Resource[];
}
