/**
 * How a GPU pool's sharing (time-slicing or MIG) reaches the nodes: the device plugin reads a named
 * config per node, and the MIG manager a named partition profile per node, both chosen by node
 * label. K3s nodes get these labels at install; nodes of an existing cluster carry them already
 * (or take the single pool's config as the default).
 */
import type { GpuPool } from "../cluster/handle";
import { GPU_POOL_LABEL } from "../meta";
import type { GpuSpec } from "../cluster/schema";

/** Node label naming the device-plugin config (a key of the sharing ConfigMap) a node uses. */
export const DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config";
/** Node label naming the MIG profile (of the MIG manager's config) a node is partitioned into. */
export const MIG_CONFIG_LABEL = "nvidia.com/mig.config";
/** Device-plugin config used by GPU nodes that select none: whole GPUs (cannot clash with a DNS-label pool name). */
export const DEFAULT_SHARING_CONFIG = "_default";

export type MigStrategy = "none" | "single" | "mixed";

/** Labels a GPU pool's nodes carry: the pool name, its device-plugin config and its MIG profile. */
export function gpuNodeLabels(pool: string, gpu: GpuSpec): Record<string, string> {
  return {
    [GPU_POOL_LABEL]: pool,
    [DEVICE_PLUGIN_CONFIG_LABEL]: pool,
    ...(gpu.sharing.mig ? { [MIG_CONFIG_LABEL]: gpu.sharing.mig.profile } : {}),
  };
}

/** The cluster-wide MIG strategy: the one the MIG pools share (config checks they agree), else none. */
export function migStrategy(pools: readonly GpuPool[]): MigStrategy {
  return pools.find((p) => p.gpu.sharing.mig)?.gpu.sharing.mig?.strategy ?? "none";
}

/** One device-plugin config (the plugin's `version: v1` config file format). */
export interface DevicePluginConfig {
  readonly version: "v1";
  readonly flags: { readonly migStrategy: MigStrategy };
  readonly sharing?: {
    readonly timeSlicing: {
      readonly resources: readonly { readonly name: "nvidia.com/gpu"; readonly replicas: number }[];
    };
  };
}

/** Device-plugin configs keyed by pool name, plus the whole-GPU default. */
export function devicePluginConfigs(pools: readonly GpuPool[]): Record<string, DevicePluginConfig> {
  const cluster = migStrategy(pools);
  const out: Record<string, DevicePluginConfig> = {
    [DEFAULT_SHARING_CONFIG]: { version: "v1", flags: { migStrategy: cluster } },
  };
  for (const p of pools) {
    const ts = p.gpu.sharing.timeSlicing;
    out[p.name] = {
      version: "v1",
      flags: { migStrategy: p.gpu.sharing.mig ? p.gpu.sharing.mig.strategy : "none" },
      ...(ts
        ? { sharing: { timeSlicing: { resources: [{ name: "nvidia.com/gpu", replicas: ts.replicas }] } } }
        : {}),
    };
  }
  return out;
}

/**
 * The config a node without a config label uses: the pool's own when there is exactly one pool (so an
 * existing cluster's single pool works unlabelled), else whole GPUs.
 */
export function defaultSharingConfig(pools: readonly GpuPool[]): string {
  return pools.length === 1 ? pools[0]!.name : DEFAULT_SHARING_CONFIG;
}
