import { z } from "zod";
import type { GpuConfig } from "../gpu/schema";
import {
  dnsLabel,
  doc,
  duplicates,
  formatKey,
  hostAddress,
  labels,
  taint,
  type ConfigProblem,
  type KeyPath,
} from "../schema-kit";

/** How a GPU pool shares its devices: whole GPUs, time-slicing or MIG (exclusive). */
export const gpuSharingSchema = z.strictObject({
  timeSlicing: doc(
    z.strictObject({ replicas: z.number().int().min(2).max(64) }).optional(),
    "Time-slicing: each physical GPU is advertised as this many nvidia.com/gpu. It shares compute, not memory: the vLLM replicas that may land on one GPU must reserve (--gpu-memory-utilization) at most all of it together, or the config is rejected.",
    { replicas: 4 },
  ),
  mig: doc(
    z
      .strictObject({
        strategy: z.enum(["single", "mixed"]),
        profile: z
          .string()
          .regex(/^(all-disabled|all-balanced|all-[0-9]g\.[0-9]+gb)$/, "must be a MIG profile"),
      })
      .optional(),
    "MIG partitioning through the GPU operator's MIG manager.",
    { strategy: "single", profile: "all-1g.10gb" },
  ),
});

export const gpuSpecSchema = z.strictObject({
  gpusPerNode: doc(z.number().int().min(1).max(16), "Physical GPUs on each node of the pool.", 1),
  product: doc(
    z.string().optional(),
    "GPU model (as the nvidia.com/gpu.product label names it); a known one (L4, T4, A10, L40S, A100, H100, H200) also gives the memory per GPU the GPU-memory check counts.",
    "NVIDIA-L4",
  ),
  memoryGiB: doc(
    z.number().positive().max(1024).optional(),
    "Memory per GPU in GiB as the driver reports it (nvidia-smi memory.total); default: the known product's. Without either, model weights are not checked against GPU memory.",
    22.5,
  ),
  sharing: gpuSharingSchema.default({}),
});

const sshHost = z.strictObject({
  name: doc(dnsLabel, "Node name (becomes the Kubernetes node name).", "edge-1"),
  address: doc(hostAddress, "Address SSH connects to.", "10.0.10.11"),
});

const k3sPool = z.strictObject({
  name: doc(dnsLabel, "Pool name, DNS-safe and unique.", "gpu-l4"),
  kind: doc(z.enum(["cpu", "gpu"]).default("cpu"), "cpu or gpu; gpu pools need a `gpu` spec.", "gpu"),
  hosts: doc(z.array(sshHost).min(1), "Hosts of the pool.", [{ name: "edge-2", address: "10.0.10.12" }]),
  labels: doc(labels.default({}), "Extra node labels.", { "topology.kubernetes.io/zone": "rack-a" }),
  taints: doc(z.array(taint).default([]), "Extra node taints.", [
    { key: "dedicated", value: "batch", effect: "NoSchedule" },
  ]),
  gpu: gpuSpecSchema.optional(),
});

export const k3sClusterSchema = z.strictObject({
  kind: z.literal("k3s"),
  apiEndpoint: doc(
    hostAddress,
    "Address clients use for the API server; also a TLS SAN.",
    "k3s.edge.example.org",
  ),
  sshUser: doc(
    z
      .string()
      .regex(/^[a-z_][a-z0-9_-]{0,31}$/, "must be a Unix user name")
      .default("root"),
    "User SSH logs in as (needs root or passwordless sudo).",
    "ubuntu",
  ),
  tlsSans: doc(
    z.array(hostAddress).default([]),
    "Extra names or addresses in the API server certificate (the apiEndpoint is always one).",
    ["10.0.10.100", "k3s-vip.edge.example.org"],
  ),
  sshPort: doc(z.number().int().min(1).max(65535).default(22), "SSH port on every host.", 22),
  servers: doc(
    z
      .array(sshHost)
      .refine((s) => s.length === 1 || s.length === 3, "must list 1 server, or 3 for HA with embedded etcd"),
    "K3s servers: 1, or 3 for HA (embedded etcd).",
    [{ name: "server-1", address: "10.0.10.10" }],
  ),
  pools: doc(z.array(k3sPool).default([]), "Agent pools.", [
    { name: "cpu", hosts: [{ name: "edge-1", address: "10.0.10.11" }] },
  ]),
  airgap: doc(
    z
      .strictObject({
        binaryPath: z.string().min(1),
        installScriptPath: z.string().min(1),
        imagesPath: z.string().min(1).optional(),
      })
      .optional(),
    "Air-gapped install: copy these local files (binary, install.sh, optionally the airgap images tarball) instead of downloading K3s.",
    {
      binaryPath: "artifacts/k3s",
      installScriptPath: "artifacts/install.sh",
      imagesPath: "artifacts/k3s-airgap-images-amd64.tar.zst",
    },
  ),
});

export const existingClusterSchema = z.strictObject({
  kind: z.literal("existing"),
  context: doc(
    z.string().min(1).optional(),
    "kubeconfig context to use (ambient kubeconfig).",
    "k3d-platform",
  ),
  kubeconfigFromSecret: doc(
    z.boolean().default(false),
    "Read the kubeconfig from the `platform:kubeconfig` secret instead of the ambient one.",
    true,
  ),
  distribution: doc(
    z.enum(["generic", "k3s", "eks", "gke", "aks", "kind", "k3d"]).default("generic"),
    "Kubernetes distribution (selects container runtime paths for the GPU stack).",
    "eks",
  ),
  gpuPools: doc(
    z
      .array(
        z.strictObject({
          name: dnsLabel,
          nodeSelector: labels.refine((l) => Object.keys(l).length > 0, "must select at least one label"),
          nodes: z.number().int().min(1),
          gpu: gpuSpecSchema,
        }),
      )
      .default([]),
    "GPU node pools of the existing cluster, described by node selectors.",
    [
      {
        name: "gpu-a10",
        nodeSelector: { "node.kubernetes.io/instance-type": "g5.xlarge" },
        nodes: 2,
        gpu: { gpusPerNode: 1 },
      },
    ],
  ),
});

export const clusterSchema = z.discriminatedUnion("kind", [k3sClusterSchema, existingClusterSchema]);

export type ClusterConfig = z.infer<typeof clusterSchema>;
export type K3sClusterConfig = z.infer<typeof k3sClusterSchema>;
export type ExistingClusterConfig = z.infer<typeof existingClusterSchema>;
export type GpuSpec = z.infer<typeof gpuSpecSchema>;

/** A cluster's GPU-capable pools and the key they are listed under (`pools` or `gpuPools`). */
export function poolsOf(cluster: ClusterConfig): {
  readonly pools: readonly { readonly name: string; readonly gpu?: GpuSpec }[];
  readonly poolKey: "pools" | "gpuPools";
} {
  return cluster.kind === "k3s"
    ? { pools: cluster.pools, poolKey: "pools" }
    : { pools: cluster.gpuPools, poolKey: "gpuPools" };
}

/** Checks of `platform:cluster` across its items, and the MIG mode it needs of `platform:gpu`. */
export function clusterChecks(c: {
  readonly cluster: ClusterConfig;
  readonly gpu: GpuConfig;
}): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const cl = c.cluster;
  const { pools, poolKey } = poolsOf(cl);

  for (const [name, idx] of duplicates(pools, (p) => p.name))
    out.push({
      key: formatKey(["cluster", poolKey, idx[1]!, "name"]),
      message: `duplicate pool name "${name}"; pool names must be unique`,
    });

  if (cl.kind === "k3s") {
    const hosts = [...cl.servers.map((h, i) => ({ h, path: ["cluster", "servers", i] as KeyPath }))];
    cl.pools.forEach((p, pi) =>
      p.hosts.forEach((h, hi) => hosts.push({ h, path: ["cluster", "pools", pi, "hosts", hi] })),
    );
    for (const [addr, idx] of duplicates(hosts, (x) => x.h.address))
      out.push({
        key: formatKey([...hosts[idx[1]!]!.path, "address"]),
        message: `host address ${addr} is used twice; each host belongs to one role`,
      });
    for (const [name, idx] of duplicates(hosts, (x) => x.h.name))
      out.push({
        key: formatKey([...hosts[idx[1]!]!.path, "name"]),
        message: `node name "${name}" is used twice`,
      });
    cl.pools.forEach((p, i) => {
      if (p.kind === "gpu" && !p.gpu)
        out.push({
          key: formatKey(["cluster", "pools", i, "gpu"]),
          message: "a gpu pool needs a gpu spec",
          example: '{"gpusPerNode":1}',
        });
      if (p.kind === "cpu" && p.gpu)
        out.push({
          key: formatKey(["cluster", "pools", i, "kind"]),
          message: 'a pool with a gpu spec must have kind "gpu"',
          example: '"gpu"',
        });
    });
  }
  pools.forEach((p, i) => {
    const sharing = p.gpu?.sharing;
    if (sharing?.timeSlicing && sharing.mig)
      out.push({
        key: formatKey(["cluster", poolKey, i, "gpu", "sharing"]),
        message: "timeSlicing and mig are exclusive; choose one",
      });
  });

  // The operator's MIG strategy is cluster-wide, and only the operator's MIG manager partitions GPUs.
  const migPools = pools.map((p, i) => ({ p, i })).filter(({ p }) => p.gpu?.sharing.mig);
  const strategy = migPools[0]?.p.gpu?.sharing.mig?.strategy;
  for (const { p, i } of migPools) {
    if (p.gpu?.sharing.mig?.strategy !== strategy)
      out.push({
        key: formatKey(["cluster", poolKey, i, "gpu", "sharing", "mig", "strategy"]),
        message: `MIG strategy is cluster-wide; pool "${migPools[0]!.p.name}" uses "${strategy}"`,
        example: JSON.stringify(strategy),
      });
    if (c.gpu.enabled && c.gpu.mode !== "operator")
      out.push({
        key: formatKey(["cluster", poolKey, i, "gpu", "sharing", "mig"]),
        message: 'MIG needs the GPU operator\'s MIG manager; set platform:gpu.mode to "operator"',
      });
  }
  return out;
}
