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

const ISTIO_REPO = "https://istio-release.storage.googleapis.com/charts";
const ISTIO_VERSION = "1.26.2";

export const charts = {
  // Istio: one version for every chart of the control plane.
  istioBase: { chart: "base", version: ISTIO_VERSION, repo: ISTIO_REPO },
  istioCni: { chart: "cni", version: ISTIO_VERSION, repo: ISTIO_REPO },
  istiod: { chart: "istiod", version: ISTIO_VERSION, repo: ISTIO_REPO },
  istioGateway: { chart: "gateway", version: ISTIO_VERSION, repo: ISTIO_REPO },
  flagger: { chart: "flagger", version: "1.41.0", repo: "https://flagger.app" },
  kubePrometheusStack: {
    chart: "kube-prometheus-stack",
    version: "70.4.2",
    repo: "https://prometheus-community.github.io/helm-charts",
  },
  openTelemetryCollector: {
    chart: "opentelemetry-collector",
    version: "0.126.0",
    repo: "https://open-telemetry.github.io/opentelemetry-helm-charts",
  },
  externalSecrets: {
    chart: "external-secrets",
    version: "0.18.2",
    repo: "https://charts.external-secrets.io",
  },
} as const satisfies Record<string, ChartVersion>;

export const images = {
  // The collector chart names no default image; contrib carries the prometheusremotewrite exporter.
  otelCollectorContrib: {
    repository: "docker.io/otel/opentelemetry-collector-contrib",
    tag: "0.127.0",
  },
} as const satisfies Record<string, ImageVersion>;
