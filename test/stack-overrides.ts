/**
 * K3s clusters land with issue 3; until then dev and prod run their committed config on an
 * "existing" cluster with the same GPU pools, so every other part is exercised end to end.
 */
export function existingClusterFor(stack: "dev" | "prod"): Record<string, unknown> {
  const pool = (name: string, nodes: number, gpusPerNode: number, replicas?: number) => ({
    name,
    nodeSelector: { "platform.ai/gpu-pool": name },
    nodes,
    gpu: { gpusPerNode, ...(replicas ? { sharing: { timeSlicing: { replicas } } } : {}) },
  });
  return {
    "platform:cluster": {
      kind: "existing",
      distribution: "k3s",
      gpuPools:
        stack === "prod" ? [pool("gpu-h100", 2, 4), pool("gpu-l4", 1, 2, 4)] : [pool("gpu-l4", 1, 1, 2)],
    },
  };
}
