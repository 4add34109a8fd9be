/**
 * The logs and traces stores beside Prometheus: Loki (single binary, filesystem storage on the
 * platform's own claim), Grafana Alloy as the node log agent (a DaemonSet tailing /var/log/pods;
 * Promtail, its predecessor, is end of life since March 2026), and Tempo (single binary, local
 * storage on the platform's own claim). All run in `monitoring`, outside the mesh like Grafana and
 * the collector, so their callers (Grafana, the collector, Alloy, Prometheus) need no
 * AuthorizationPolicy: Istio enforces those only on injected pods.
 */
import type { Environment } from "../schema-kit";
import type { ImageVersion } from "../versions";
import { chartImages } from "../versions";

export const LOKI = "loki";
export const TEMPO = "tempo";
export const ALLOY = "alloy";
/** Loki's HTTP port (push and query), on its Service `loki`. */
export const LOKI_HTTP_PORT = 3100;
/** Tempo's HTTP port (query API, /metrics) and its OTLP receivers, on its Service `tempo`. */
export const TEMPO_HTTP_PORT = 3200;
export const TEMPO_OTLP_GRPC_PORT = 4317;

/** In-cluster URLs of the stores, from a namespace (Services named by fullnameOverride). */
export function storeEndpoints(namespace: string): {
  lokiUrl: string;
  lokiPushUrl: string;
  tempoUrl: string;
  tempoOtlpGrpc: string;
} {
  const loki = `http://${LOKI}.${namespace}:${LOKI_HTTP_PORT}`;
  return {
    lokiUrl: loki,
    lokiPushUrl: `${loki}/loki/api/v1/push`,
    tempoUrl: `http://${TEMPO}.${namespace}:${TEMPO_HTTP_PORT}`,
    tempoOtlpGrpc: `http://${TEMPO}.${namespace}:${TEMPO_OTLP_GRPC_PORT}`,
  };
}

/** Tempo reads Go durations (no days): whole days and weeks as hours. Loki takes the same. */
export function retentionHours(retention: string): string {
  const m = /^([1-9][0-9]*)(d|w)$/.exec(retention);
  if (!m) throw new Error(`retention ${retention}: expected whole days or weeks (3d, 2w)`);
  return `${Number(m[1]) * (m[2] === "w" ? 168 : 24)}h`;
}

interface Resources {
  requests: { cpu: string; memory: string };
  limits: { memory: string };
}

const res = (cpu: string, memory: string, limit: string): Resources => ({
  requests: { cpu, memory },
  limits: { memory: limit },
});

/** Sizes per environment: edge-sized single binaries; local fits a laptop. */
export function storeSizing(env: Environment): { loki: Resources; tempo: Resources; alloy: Resources } {
  switch (env) {
    case "local":
      return {
        loki: res("50m", "128Mi", "512Mi"),
        tempo: res("50m", "128Mi", "512Mi"),
        alloy: res("20m", "64Mi", "256Mi"),
      };
    case "dev":
    case "staging":
      return {
        loki: res("100m", "256Mi", "1Gi"),
        tempo: res("100m", "256Mi", "1Gi"),
        alloy: res("50m", "128Mi", "512Mi"),
      };
    case "prod":
      return {
        loki: res("500m", "1Gi", "2Gi"),
        tempo: res("500m", "1Gi", "2Gi"),
        alloy: res("100m", "256Mi", "1Gi"),
      };
  }
}

/** The restricted container context (Pod Security `restricted`, the pack's securityContext rule). */
const RESTRICTED = {
  runAsNonRoot: true,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
} as const;

/**
 * `registry/repository:tag@digest` split the way the Grafana charts take it (they print
 * `registry/repository:tag`, so the digest rides on the tag), only when a digest is traced:
 * otherwise nothing is set and the chart's default (the same tag, its appVersion) stays, as for
 * every other chart image without a traced digest.
 */
export function splitImage(
  image: ImageVersion,
): { registry: string; repository: string; tag: string } | undefined {
  if (!image.digest) return undefined;
  const slash = image.repository.indexOf("/");
  return {
    registry: image.repository.slice(0, slash),
    repository: image.repository.slice(slash + 1),
    tag: `${image.tag}@${image.digest}`,
  };
}

/**
 * Loki's values (chart `loki`, monolithic): one replica, filesystem chunks and TSDB index on the
 * platform's claim (`claim`), retention by the compactor; everything the chart can add around it
 * (gateway, memcached caches, canary, rules sidecar, MinIO, rollout operator) is off. The chart's
 * own pod and container security contexts are already `restricted` (uid 10001, read-only root).
 */
export function lokiValues(opts: {
  env: Environment;
  retention: string;
  claim: string;
}): Record<string, unknown> {
  const img = splitImage(chartImages.loki.images.loki);
  return {
    fullnameOverride: LOKI,
    deploymentMode: "Monolithic",
    loki: {
      ...(img ? { image: img } : {}),
      auth_enabled: false,
      commonConfig: { replication_factor: 1 },
      storage: { type: "filesystem" },
      schemaConfig: {
        configs: [
          {
            from: "2026-01-01",
            store: "tsdb",
            object_store: "filesystem",
            schema: "v13",
            index: { prefix: "index_", period: "24h" },
          },
        ],
      },
      limits_config: { retention_period: retentionHours(opts.retention) },
      compactor: { retention_enabled: true, delete_request_store: "filesystem" },
    },
    singleBinary: {
      replicas: 1,
      resources: storeSizing(opts.env).loki,
      // The platform's claim (protected in prod by itself), mounted as the chart's `storage` volume.
      persistence: {
        enabled: false,
        dataVolumeParameters: { persistentVolumeClaim: { claimName: opts.claim } },
      },
    },
    // The chart's validate.yaml refuses replicas in two modes at once: the scalable targets get none.
    read: { replicas: 0 },
    write: { replicas: 0 },
    backend: { replicas: 0 },
    sidecar: { rules: { enabled: false } },
    gateway: { enabled: false },
    chunksCache: { enabled: false },
    resultsCache: { enabled: false },
    lokiCanary: { enabled: false },
    test: { enabled: false },
    minio: { enabled: false },
    rollout_operator: { enabled: false },
    // Prometheus selects every ServiceMonitor; Loki is outside the mesh, so plain HTTP.
    monitoring: { serviceMonitor: { enabled: true } },
  };
}

/** Tempo's values (chart `tempo`, single binary): OTLP in, local blocks on the platform's claim. */
export function tempoValues(opts: {
  env: Environment;
  retention: string;
  claim: string;
}): Record<string, unknown> {
  const img = splitImage(chartImages.tempo.images.tempo);
  return {
    fullnameOverride: TEMPO,
    tempo: {
      ...img,
      retention: retentionHours(opts.retention),
      reportingEnabled: false,
      resources: storeSizing(opts.env).tempo,
      securityContext: RESTRICTED,
      // Only OTLP: the collector is the one sender (no Jaeger receivers, no ports for them).
      receivers: {
        otlp: {
          protocols: {
            grpc: { endpoint: `0.0.0.0:${TEMPO_OTLP_GRPC_PORT}` },
            http: { endpoint: "0.0.0.0:4318" },
          },
        },
      },
      extraVolumeMounts: [{ name: "storage", mountPath: "/var/tempo" }],
    },
    extraVolumes: [{ name: "storage", persistentVolumeClaim: { claimName: opts.claim } }],
    serviceMonitor: { enabled: true },
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      fsGroup: 10001,
      seccompProfile: { type: "RuntimeDefault" },
    },
  };
}

/**
 * Alloy's pipeline: the pods of its own node (by NODE_NAME) as targets, their CRI log files under
 * /var/log/pods, labelled namespace/pod/container, pushed to Loki.
 */
export function alloyConfig(lokiPushUrl: string): string {
  return `discovery.kubernetes "pods" {
  role = "pod"
  selectors {
    role  = "pod"
    field = "spec.nodeName=" + sys.env("NODE_NAME")
  }
}

discovery.relabel "pods" {
  targets = discovery.kubernetes.pods.targets
  rule {
    source_labels = ["__meta_kubernetes_namespace"]
    target_label  = "namespace"
  }
  rule {
    source_labels = ["__meta_kubernetes_pod_name"]
    target_label  = "pod"
  }
  rule {
    source_labels = ["__meta_kubernetes_pod_container_name"]
    target_label  = "container"
  }
  rule {
    source_labels = ["__meta_kubernetes_pod_uid", "__meta_kubernetes_pod_container_name"]
    separator     = "/"
    replacement   = "/var/log/pods/*$1/*.log"
    target_label  = "__path__"
  }
}

local.file_match "pods" {
  path_targets = discovery.relabel.pods.output
}

loki.source.file "pods" {
  targets    = local.file_match.pods.targets
  forward_to = [loki.process.pods.receiver]
}

loki.process "pods" {
  stage.cri {}
  forward_to = [loki.write.loki.receiver]
}

loki.write "loki" {
  endpoint {
    url = "${lokiPushUrl}"
  }
}
`;
}

/**
 * Alloy's values (chart `alloy`): a DaemonSet reading /var/log read-only from the host. It runs as
 * root (the kubelet writes pod logs 0640 root) without privilege escalation or capabilities; the
 * hostPath is what Pod Security `restricted` refuses, hence the policy pack's exemption.
 */
export function alloyValues(opts: { env: Environment; lokiPushUrl: string }): Record<string, unknown> {
  const img = splitImage(chartImages.alloy.images.alloy);
  return {
    fullnameOverride: ALLOY,
    // Its PodLogs CRDs serve the Kubernetes-API log source, which this pipeline does not use.
    crds: { create: false },
    ...(img ? { image: img } : {}),
    controller: { type: "daemonset", volumes: { extra: [{ name: "alloy-data", emptyDir: {} }] } },
    alloy: {
      configMap: { create: true, content: alloyConfig(opts.lokiPushUrl) },
      enableReporting: false,
      // Positions (how far each file was read) need a writable path on a read-only root.
      storagePath: "/var/lib/alloy",
      mounts: {
        varlog: true,
        dockercontainers: false,
        extra: [{ name: "alloy-data", mountPath: "/var/lib/alloy" }],
      },
      extraEnv: [{ name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } }],
      resources: storeSizing(opts.env).alloy,
      securityContext: {
        runAsUser: 0,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ["ALL"] },
        seccompProfile: { type: "RuntimeDefault" },
      },
      livenessProbe: {
        httpGet: { path: "/-/healthy", port: 12345 },
        initialDelaySeconds: 30,
        periodSeconds: 30,
      },
    },
    configReloader: {
      resources: { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "64Mi" } },
    },
  };
}
