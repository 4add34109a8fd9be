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

export const K3S_VERSION = "v1.36.1+k3s1";

const ISTIO_REPO = "https://istio-release.storage.googleapis.com/charts";
const ISTIO_VERSION = "1.30.3";

export const charts = {
  /** NATS server with JetStream: the gateway's job queue and result store. */
  nats: { chart: "nats", version: "2.14.2", repo: "https://nats-io.github.io/k8s/helm/charts/" },
  /** KEDA: scales the gateway's workers on JetStream consumer lag. */
  keda: { chart: "keda", version: "2.20.2", repo: "https://kedacore.github.io/charts" },
  /** NVIDIA GPU operator: driver, container toolkit, device plugin, GFD, MIG manager, DCGM exporter. */
  gpuOperator: { chart: "gpu-operator", version: "v26.7.0", repo: "https://helm.ngc.nvidia.com/nvidia" },
  /** The device plugin alone (with GFD/NFD), for hosts whose drivers and toolkit are preinstalled. */
  nvidiaDevicePlugin: {
    chart: "nvidia-device-plugin",
    version: "0.20.0",
    repo: "https://nvidia.github.io/k8s-device-plugin",
  },

  // Istio: one version for every chart of the control plane.
  istioBase: { chart: "base", version: ISTIO_VERSION, repo: ISTIO_REPO },
  istioCni: { chart: "cni", version: ISTIO_VERSION, repo: ISTIO_REPO },
  istiod: { chart: "istiod", version: ISTIO_VERSION, repo: ISTIO_REPO },
  istioGateway: { chart: "gateway", version: ISTIO_VERSION, repo: ISTIO_REPO },
  flagger: { chart: "flagger", version: "1.44.0", repo: "https://flagger.app" },
  kubePrometheusStack: {
    chart: "kube-prometheus-stack",
    version: "88.5.3",
    repo: "https://prometheus-community.github.io/helm-charts",
  },
  openTelemetryCollector: {
    chart: "opentelemetry-collector",
    version: "0.170.0",
    repo: "https://open-telemetry.github.io/opentelemetry-helm-charts",
  },
  externalSecrets: {
    chart: "external-secrets",
    version: "2.9.0",
    repo: "https://charts.external-secrets.io",
  },
  certManager: { chart: "cert-manager", version: "v1.21.1", repo: "https://charts.jetstack.io" },
} as const satisfies Record<string, ChartVersion>;

export const images = {
  /** CNCF Distribution, the in-cluster registry (multi-arch index digest). */
  registry: {
    repository: "docker.io/library/registry",
    tag: "3.0.0",
    digest: "sha256:6c5666b861f3505b116bb9aa9b25175e71210414bd010d92035ff64018f9457e",
  },
  // Digests as published for these tags (multi-arch index); re-check with `crane digest <ref>` on bump.
  vllm: {
    repository: "vllm/vllm-openai",
    tag: "v0.14.0",
    digest: "sha256:1d6866b87630d94f5e0cdae55ab5abb4ce0b03fcb84d9d10612f9d518d19d4fd",
  },
  /** llama.cpp's CPU server; `server-b<build>` tags are immutable builds (never the moving `server`). */
  llamacpp: {
    repository: "ghcr.io/ggml-org/llama.cpp",
    tag: "server-b11176",
    digest: "sha256:6257697a7f5d034b8fb499ddb07af3e250506352f94102054252a23f3b85e0af",
  },

  // The collector chart names no default image; contrib carries the prometheusremotewrite exporter.
  otelCollectorContrib: {
    repository: "docker.io/otel/opentelemetry-collector-contrib",
    tag: "0.158.0",
    digest: "sha256:c5918f78992ee73b0d6f0e599423ac5ec52dd5d9726733114d6eca53d5a32ed5",
  },
} as const satisfies Record<string, ImageVersion>;
