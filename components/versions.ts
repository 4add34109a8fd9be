/**
 * Every pinned version in one place: charts (repository + version) and images (tag, and digest
 * where the platform pulls a third-party image into its own workloads). Bump here, nowhere else.
 */

export interface ChartVersion {
  readonly chart: string;
  readonly version: string;
  readonly repo: string;
}

export interface ImageVersion {
  readonly repository: string;
  readonly tag: string;
  /** `sha256:...` of the multi-arch index; used where the stack pins by digest (prod). */
  readonly digest?: string;
}

/** `repo:tag`, or `repo:tag@digest` when pinning by digest. */
export function imageRef(image: ImageVersion, byDigest: boolean): string {
  return byDigest && image.digest
    ? `${image.repository}:${image.tag}@${image.digest}`
    : `${image.repository}:${image.tag}`;
}

export const K3S_VERSION = "v1.32.5+k3s1";

export const charts = {
  /** NVIDIA GPU operator: driver, container toolkit, device plugin, GFD, MIG manager, DCGM exporter. */
  gpuOperator: { chart: "gpu-operator", version: "v25.3.4", repo: "https://helm.ngc.nvidia.com/nvidia" },
  /** The device plugin alone (with GFD/NFD), for hosts whose drivers and toolkit are preinstalled. */
  nvidiaDevicePlugin: {
    chart: "nvidia-device-plugin",
    version: "0.17.1",
    repo: "https://nvidia.github.io/k8s-device-plugin",
  },
} as const satisfies Record<string, ChartVersion>;

export const images = {} as const satisfies Record<string, ImageVersion>;
