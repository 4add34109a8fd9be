import * as pulumi from "@pulumi/pulumi";
import { poolCapacity, type GpuPool as GpuPoolSpec } from "./handle";

/**
 * A GPU pool's declared capacity as a resource of its own, so the policy pack's gpu-capacity-fits
 * check (a stack policy) can read it from the plan like any other resource.
 */
export class GpuPool extends pulumi.ComponentResource {
  public readonly capacity: number;

  constructor(name: string, pool: GpuPoolSpec, opts?: pulumi.ComponentResourceOptions) {
    super("platform:cluster:GpuPool", name, {}, opts);
    this.capacity = poolCapacity(pool);
    this.registerOutputs({
      name: pool.name,
      nodes: pool.nodes,
      gpusPerNode: pool.gpu.gpusPerNode,
      nodeSelector: pool.nodeSelector,
      sharing: {
        ...(pool.gpu.sharing.timeSlicing ? { replicas: pool.gpu.sharing.timeSlicing.replicas } : {}),
        ...(pool.gpu.sharing.mig ? { mig: pool.gpu.sharing.mig } : {}),
      },
      capacity: this.capacity,
    });
  }
}
