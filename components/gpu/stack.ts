/**
 * The NVIDIA GPU stack for whatever cluster the platform runs on: the GPU operator (driver,
 * container toolkit, device plugin, GFD/NFD, MIG manager, DCGM exporter) configured for the
 * distribution, or the device plugin alone for hosts whose drivers and toolkit are preinstalled.
 *
 * RuntimeClass `nvidia`: exactly one owner. In operator mode the operator creates it
 * (`operator.runtimeClass`); in device-plugin mode this component does (server-side apply, forced,
 * so it adopts the copy K3s pre-installs for auto-detected runtimes instead of failing on it).
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { stringify } from "yaml";
import type { Distribution, GpuPool } from "../cluster/handle";
import { appLabels, GPU_RUNTIME_CLASS, GPU_TAINT, platformNamespace } from "../meta";
import { pinnedChart } from "../k8s-kit";
import { chartImages, charts, pinnedTag, type ChartVersion, type ImageVersion } from "../versions";
import type { GpuConfig } from "./schema";
import { defaultSharingConfig, devicePluginConfigs, migStrategy } from "./sharing";

/**
 * Containerd paths of K3s (and k3d, which runs K3s in containers). K3s regenerates `config` on every
 * start, so the toolkit must not rely on edits to it: with containerd 2.x (config v3) K3s imports
 * every `config-v3.toml.d/*.toml`, which is where the toolkit's runtime entry goes (`dropIn`).
 */
export const K3S_CONTAINERD = {
  config: "/var/lib/rancher/k3s/agent/etc/containerd/config.toml",
  dropIn: "/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.d/99-nvidia.toml",
  socket: "/run/k3s/containerd/containerd.sock",
} as const;

export const DEVICE_PLUGIN_CONFIG_MAP = "platform-gpu-sharing";

interface EnvVar {
  readonly name: string;
  readonly value: string;
}
interface Toleration {
  readonly key: string;
  readonly operator: "Exists";
  readonly effect: string;
}

/**
 * The GPU operator chart values this platform sets (chart gpu-operator 26.x, see versions.ts). Every
 * key must exist in the chart's values (test/fixtures/gpu-operator-values.ts guards it): Helm ignores
 * unknown keys silently. (`operator.defaultRuntime` is gone: the operator detects the runtime.)
 */
export interface GpuOperatorValues {
  readonly operator: { readonly runtimeClass: string } & Partial<OperandVersion>;
  readonly driver: { readonly enabled: boolean; readonly manager?: OperandVersion };
  readonly toolkit: { readonly enabled: true; readonly env: readonly EnvVar[] } & Partial<OperandVersion>;
  readonly nfd: { readonly enabled: boolean };
  /** The NFD subchart: it renders `repository:tag`, so a digest rides in the tag (`tag@sha256:…`). */
  readonly "node-feature-discovery"?: { readonly image: { readonly tag: string } };
  readonly daemonsets: { readonly tolerations: readonly Toleration[] };
  readonly devicePlugin: {
    readonly config: {
      readonly create: true;
      readonly name: string;
      readonly default: string;
      readonly data: Record<string, string>;
    };
  } & Partial<OperandVersion>;
  readonly gfd?: OperandVersion;
  readonly mig: { readonly strategy: "single" | "mixed" };
  readonly migManager: {
    readonly enabled: boolean;
    readonly config: { readonly default: string };
  } & Partial<OperandVersion>;
  readonly dcgmExporter: {
    readonly enabled: true;
    readonly serviceMonitor: { readonly enabled: boolean; readonly interval: string };
  } & Partial<OperandVersion>;
}

/**
 * An operand's ClusterPolicy `version`, set only when its digest is traced (versions.ts
 * `chartImages`). The operator builds each operand's image as `repository/image:version` (only a
 * version starting `sha256:` gets an `@` instead), and reads the version for nothing else, so
 * `v1.20.0@sha256:...` pins the digest and keeps the tag; repository and image stay the chart's.
 */
interface OperandVersion {
  readonly version: string;
}
function operandVersion(image: ImageVersion): Partial<OperandVersion> {
  const version = pinnedTag(image);
  return version ? { version } : {};
}
/** `{ [key]: { version } }` for an operand whose values live under their own key, when pinned. */
function operandAt<K extends string>(key: K, image: ImageVersion): Partial<Record<K, OperandVersion>> {
  const version = pinnedTag(image);
  return (version ? { [key]: { version } } : {}) as Partial<Record<K, OperandVersion>>;
}

/** The NFD subchart's image tag, when it installs NFD and its image is pinned by digest. */
function nfdImage(image: ImageVersion | undefined): Pick<GpuOperatorValues, "node-feature-discovery"> {
  const tag = image && pinnedTag(image);
  return tag ? { "node-feature-discovery": { image: { tag } } } : {};
}

/** The device-plugin chart values this platform sets (chart nvidia-device-plugin). */
export interface DevicePluginValues {
  /**
   * The chart renders `repository:tag` and reads the tag nowhere else, so a traced digest rides in
   * it (`v0.20.0@sha256:...`, the chart's default tag before it); set only when traced.
   */
  readonly image?: { readonly tag: string };
  readonly runtimeClassName: string;
  readonly migStrategy: "none" | "single" | "mixed";
  readonly config: { readonly map: Record<string, string>; readonly default: string };
  readonly tolerations: readonly Toleration[];
  readonly gfd: { readonly enabled: true };
  readonly nfd: { readonly enabled: boolean };
  /** The NFD subchart: it renders `repository:tag`, so a digest rides in the tag (`tag@sha256:…`). */
  readonly "node-feature-discovery"?: { readonly image: { readonly tag: string } };
}

const GPU_TOLERATION: Toleration = { key: GPU_TAINT.key, operator: "Exists", effect: GPU_TAINT.effect };

/**
 * Container-toolkit env for the distribution (the toolkit of operator 26.x). K3s runs its own
 * containerd at its own paths: the toolkit reads the effective config from K3s's generated file (it
 * cannot `containerd config dump` K3s's embedded containerd), talks to K3s's socket, and writes its
 * `nvidia` runtime into the drop-in K3s imports, which survives K3s rewriting config.toml at restart.
 */
export function toolkitEnv(distribution: Distribution): EnvVar[] {
  const env: EnvVar[] = [
    { name: "CONTAINERD_RUNTIME_CLASS", value: GPU_RUNTIME_CLASS },
    // Pods opt in with runtimeClassName; non-GPU pods keep runc.
    { name: "CONTAINERD_SET_AS_DEFAULT", value: "false" },
  ];
  if (distribution === "k3s" || distribution === "k3d")
    env.unshift(
      { name: "CONTAINERD_CONFIG", value: K3S_CONTAINERD.config },
      { name: "RUNTIME_CONFIG_SOURCE", value: `file=${K3S_CONTAINERD.config}` },
      { name: "RUNTIME_DROP_IN_CONFIG", value: K3S_CONTAINERD.dropIn },
      { name: "CONTAINERD_SOCKET", value: K3S_CONTAINERD.socket },
    );
  return env;
}

const sharingData = (pools: readonly GpuPool[]) =>
  Object.fromEntries(Object.entries(devicePluginConfigs(pools)).map(([k, v]) => [k, stringify(v)]));

export interface GpuStackOptions {
  readonly distribution: Distribution;
  readonly pools: readonly GpuPool[];
  readonly gpu: GpuConfig;
  /** Monitoring is on: the operator creates a ServiceMonitor for the DCGM exporter. */
  readonly monitoring: boolean;
  /** Node feature discovery already runs in the cluster (then the chart's is not deployed). */
  readonly nfdPreinstalled?: boolean;
}

export function operatorValues(o: GpuStackOptions): GpuOperatorValues {
  const strategy = migStrategy(o.pools);
  // The operands reach pods only through the ClusterPolicy, where the pack cannot see them.
  const img = chartImages.gpuOperator.images;
  return {
    // The chart renders `repository/image:version` for the operator too.
    operator: { runtimeClass: GPU_RUNTIME_CLASS, ...operandVersion(img.operator) },
    // The driver's own image is per-OS (`<version>-<os>`), with no traced digest; its manager's is.
    driver: { enabled: o.gpu.driver === "operator", ...operandAt("manager", img.driverManager) },
    toolkit: { enabled: true, env: toolkitEnv(o.distribution), ...operandVersion(img.toolkit) },
    nfd: { enabled: !o.nfdPreinstalled },
    ...nfdImage(o.nfdPreinstalled ? undefined : img.nodeFeatureDiscovery),
    daemonsets: { tolerations: [GPU_TOLERATION] },
    devicePlugin: {
      ...operandVersion(img.devicePlugin),
      config: {
        create: true,
        name: DEVICE_PLUGIN_CONFIG_MAP,
        default: defaultSharingConfig(o.pools),
        data: sharingData(o.pools),
      },
    },
    // GPU feature discovery runs the device plugin's image.
    ...operandAt("gfd", img.devicePlugin),
    mig: { strategy: strategy === "none" ? "single" : strategy },
    // Profiles come from the operator's default MIG config, chosen per node by the mig.config label.
    migManager: {
      enabled: strategy !== "none",
      config: { default: "all-disabled" },
      ...operandVersion(img.migManager),
    },
    dcgmExporter: {
      enabled: true,
      serviceMonitor: { enabled: o.monitoring, interval: "15s" },
      ...operandVersion(img.dcgmExporter),
    },
  };
}

export function devicePluginValues(o: GpuStackOptions): DevicePluginValues {
  const tag = pinnedTag(chartImages.nvidiaDevicePlugin.images.devicePlugin);
  return {
    ...(tag ? { image: { tag } } : {}),
    runtimeClassName: GPU_RUNTIME_CLASS,
    migStrategy: migStrategy(o.pools),
    config: { map: sharingData(o.pools), default: defaultSharingConfig(o.pools) },
    tolerations: [GPU_TOLERATION],
    gfd: { enabled: true },
    nfd: { enabled: !o.nfdPreinstalled },
  };
}

export interface NvidiaGpuStackArgs extends GpuStackOptions {
  /** The cluster's provider. */
  readonly provider: k8s.Provider;
  /** Namespace of the stack (privileged Pod Security: drivers and toolkit run on the host). */
  readonly namespace?: string;
  /** Resources the stack waits for (the cluster's nodes). */
  readonly dependsOn?: readonly pulumi.Resource[];
}

/** NVIDIA GPU operator, or the device plugin alone, for the cluster's GPU pools. */
export class NvidiaGpuStack extends pulumi.ComponentResource {
  public readonly namespace: string;
  public readonly chart: k8s.helm.v4.Chart;
  public readonly runtimeClass?: k8s.node.v1.RuntimeClass;

  constructor(name: string, args: NvidiaGpuStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:gpu:NvidiaGpuStack", name, {}, opts);
    this.namespace = args.namespace ?? "gpu-operator";
    const k8sOpts = { parent: this, provider: args.provider, dependsOn: [...(args.dependsOn ?? [])] };
    const ns = platformNamespace(
      this.namespace,
      { meshInjection: false, podSecurity: "privileged", component: "gpu" },
      k8sOpts,
    );
    const operator = args.gpu.mode === "operator";
    const chart: ChartVersion = operator ? charts.gpuOperator : charts.nvidiaDevicePlugin;
    const values = operator ? operatorValues(args) : devicePluginValues(args);
    this.chart = pinnedChart(
      `${name}-${operator ? "operator" : "device-plugin"}`,
      chart,
      { release: chart.chart, namespace: this.namespace, values },
      { ...k8sOpts, dependsOn: [...k8sOpts.dependsOn, ns] },
    );
    if (!operator)
      this.runtimeClass = new k8s.node.v1.RuntimeClass(
        `${name}-runtime-class`,
        {
          metadata: {
            name: GPU_RUNTIME_CLASS,
            labels: appLabels("nvidia", "gpu"),
            annotations: { "pulumi.com/patchForce": "true" },
          },
          handler: GPU_RUNTIME_CLASS,
        },
        k8sOpts,
      );
    this.registerOutputs({
      mode: args.gpu.mode,
      namespace: this.namespace,
      chart: `${chart.chart}@${chart.version}`,
      pools: args.pools.map((p) => p.name),
    });
  }
}
