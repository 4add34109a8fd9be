/**
 * The monitoring stack: kube-prometheus-stack (Prometheus, Alertmanager, Grafana with its admin
 * credentials from a generated Secret), an OpenTelemetry collector (traces, and metrics written into
 * Prometheus), the logs and traces stores (stores.ts: Loki with Alloy, Tempo), the GPU dashboard,
 * inference SLO alerts and an Alertmanager webhook whose URL stays in a Secret.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { Distribution } from "../cluster/handle";
import type { Environment } from "../schema-kit";
import { customResource, pinnedChart } from "../k8s-kit";
import { appLabels, GPU_POOL_LABEL, platformNamespace } from "../meta";
import type { SecretRef, SecretStore } from "../secrets/store";
import { chartImages, charts, images, pinnedTag, type ImageVersion } from "../versions";
import { gpuDashboard } from "./dashboard";
import { sloRuleGroups } from "./rules";
import { storeRetention, type MonitoringConfig } from "./schema";
import { alloyValues, LOKI, lokiValues, storeEndpoints, TEMPO, tempoValues } from "./stores";

export const MONITORING_NAMESPACE = "monitoring";
const FULLNAME = "kps";
export const PROMETHEUS_SERVICE_ACCOUNT = `${FULLNAME}-prometheus`;
export const PROMETHEUS_URL = `http://${FULLNAME}-prometheus.${MONITORING_NAMESPACE}:9090`;
export const GRAFANA_URL = `http://grafana.${MONITORING_NAMESPACE}.svc.cluster.local`;
export const OTEL_COLLECTOR_ENDPOINT = `http://otel-collector.${MONITORING_NAMESPACE}:4317`;
/** Label every AlertmanagerConfig of the platform carries (Alertmanager selects on it). */
export const ALERTMANAGER_CONFIG_LABEL = { "platform.ai/alertmanager-config": "platform" } as const;
const GRAFANA_ADMIN_SECRET = "grafana-admin";
const WEBHOOK_SECRET = "alertmanager-webhook";

/** Where Prometheus is, for Flagger and the mesh's scrape allow (all fixed by fullnameOverride). */
export function prometheusEndpoint(): { url: string; namespace: string; serviceAccount: string } {
  return { url: PROMETHEUS_URL, namespace: MONITORING_NAMESPACE, serviceAccount: PROMETHEUS_SERVICE_ACCOUNT };
}

/**
 * TLS a ServiceMonitor/PodMonitor endpoint uses to scrape a mesh workload's own port under STRICT
 * mTLS (`scheme: "https"`): the certificates Prometheus's cert-only sidecar writes. Alternatively
 * scrape the sidecar's merged metrics on port 15020, path /stats/prometheus, in plain HTTP.
 */
export const MESH_SCRAPE_TLS = {
  caFile: "/etc/prom-certs/root-cert.pem",
  certFile: "/etc/prom-certs/cert-chain.pem",
  keyFile: "/etc/prom-certs/key.pem",
  insecureSkipVerify: true,
} as const;

interface Resources {
  requests: { cpu: string; memory: string };
  limits: { memory: string };
}

const res = (cpu: string, memory: string, limit: string): Resources => ({
  requests: { cpu, memory },
  limits: { memory: limit },
});

/** Sizes per environment: local fits a laptop next to a small model. */
export function monitoringSizing(env: Environment): {
  prometheus: Resources;
  alertmanager: Resources;
  grafana: Resources;
  /** Each of Grafana's two k8s-sidecar containers (dashboards, datasources). */
  grafanaSidecar: Resources;
  nodeExporter: Resources;
  kubeStateMetrics: Resources;
  operator: Resources;
  otel: Resources;
} {
  switch (env) {
    case "local":
      return {
        prometheus: res("100m", "512Mi", "1Gi"),
        alertmanager: res("10m", "32Mi", "128Mi"),
        grafana: res("50m", "128Mi", "256Mi"),
        grafanaSidecar: res("10m", "64Mi", "128Mi"),
        nodeExporter: res("10m", "32Mi", "64Mi"),
        kubeStateMetrics: res("10m", "64Mi", "128Mi"),
        operator: res("50m", "64Mi", "256Mi"),
        otel: res("50m", "128Mi", "256Mi"),
      };
    // Staging rehearses prod's shape on dev's sizes.
    case "dev":
    case "staging":
      return {
        prometheus: res("250m", "1Gi", "2Gi"),
        alertmanager: res("20m", "64Mi", "256Mi"),
        grafana: res("100m", "256Mi", "512Mi"),
        grafanaSidecar: res("10m", "64Mi", "128Mi"),
        nodeExporter: res("20m", "32Mi", "64Mi"),
        kubeStateMetrics: res("20m", "64Mi", "256Mi"),
        operator: res("100m", "128Mi", "256Mi"),
        otel: res("100m", "256Mi", "512Mi"),
      };
    case "prod":
      return {
        prometheus: res("1", "4Gi", "8Gi"),
        alertmanager: res("50m", "128Mi", "512Mi"),
        grafana: res("200m", "512Mi", "1Gi"),
        grafanaSidecar: res("20m", "96Mi", "256Mi"),
        nodeExporter: res("50m", "64Mi", "128Mi"),
        kubeStateMetrics: res("50m", "128Mi", "512Mi"),
        operator: res("200m", "256Mi", "512Mi"),
        otel: res("500m", "512Mi", "1Gi"),
      };
  }
}

/** Typed kube-prometheus-stack values (the parts we set). */
export interface KubePrometheusStackValues {
  fullnameOverride: string;
  crds: { enabled: boolean };
  prometheusOperator: {
    resources: Resources;
    /** The operator's TLS listener mounts the `<fullname>-admission` Secret: on only with its issuer. */
    tls: { enabled: boolean };
    admissionWebhooks: AdmissionWebhookValues;
    prometheusConfigReloader?: ShaImage;
  } & ShaImage;
  defaultRules: { rules: Partial<Record<ControlPlaneRule, boolean>> };
  kubeControllerManager: { enabled: boolean };
  kubeScheduler: { enabled: boolean };
  kubeProxy: { enabled: boolean };
  kubeEtcd: { enabled: boolean };
  prometheus: {
    serviceAccount: { create: boolean; name: string };
    prometheusSpec: {
      replicas: number;
      retention: string;
      resources: Resources;
      enableRemoteWriteReceiver: boolean;
      ruleSelectorNilUsesHelmValues: boolean;
      serviceMonitorSelectorNilUsesHelmValues: boolean;
      podMonitorSelectorNilUsesHelmValues: boolean;
      storageSpec: {
        volumeClaimTemplate: {
          spec: { accessModes: string[]; resources: { requests: { storage: string } } };
        };
      };
      podMetadata?: { labels: Record<string, string>; annotations: Record<string, string> };
      volumes?: Record<string, unknown>[];
      volumeMounts?: Record<string, unknown>[];
    } & ShaImage;
  };
  alertmanager: {
    alertmanagerSpec: {
      resources: Resources;
      alertmanagerConfigSelector: { matchLabels: Record<string, string> };
      alertmanagerConfigMatcherStrategy: { type: "None" | "OnNamespace" };
    } & ShaImage;
  };
  grafana: {
    fullnameOverride: string;
    admin: { existingSecret: string; userKey: string; passwordKey: string };
    /** With storage: the platform's own PVC (`existingClaim`), so it alone carries `protect`. */
    persistence: { enabled: false } | { enabled: true; existingClaim: string };
    /** Loki and Tempo beside the chart's own Prometheus datasource, when they run. */
    additionalDataSources: GrafanaDataSource[];
    /** The chart's chown init container runs as root; the pod's fsGroup already owns the volume. */
    initChownData: { enabled: false };
    resources: Resources;
    sidecar: {
      resources: Resources;
      dashboards: {
        enabled: boolean;
        label: string;
        labelValue: string;
        searchNamespace: string;
        startupProbe: SidecarProbe;
      };
      datasources: { startupProbe: SidecarProbe };
    } & ShaImage;
  } & ShaImage;
  "kube-state-metrics": { metricLabelsAllowlist: string[]; resources: Resources } & ShaImage;
  /** The subchart's `image.digest` (it forbids `sha`); its tag and distroless suffix stay the chart's. */
  "prometheus-node-exporter": { resources: Resources; image?: { digest: string } };
}

/**
 * An image of kube-prometheus-stack or one of its subcharts, set only when its digest is traced
 * (versions.ts `chartImages`): each renders `registry/repository:tag@sha256:<sha>`, so the tag
 * stays beside the digest.
 */
interface ShaImage {
  image?: { registry: string; repository: string; tag: string; sha: string };
}

/**
 * `sha` is the bare hex everywhere (the templates prepend `@sha256:`) except kube-state-metrics,
 * whose template prints `@<sha>`: it takes the whole `sha256:...`.
 */
function shaImage(image: ImageVersion, form: "hex" | "prefixed" = "hex"): ShaImage {
  if (!image.digest) return {};
  const slash = image.repository.indexOf("/");
  return {
    image: {
      registry: image.repository.slice(0, slash),
      repository: image.repository.slice(slash + 1),
      tag: image.tag,
      sha: form === "hex" ? image.digest.replace(/^sha256:/, "") : image.digest,
    },
  };
}

/** An HTTP probe of a k8s-sidecar's health server (the chart sets its HEALTH_PORT from the port). */
interface SidecarProbe {
  httpGet: { path: "/healthz"; port: number };
  periodSeconds: number;
  failureThreshold: number;
}

/** A Grafana datasource as the chart's `additionalDataSources` provisions it. */
export interface GrafanaDataSource {
  name: string;
  type: "loki" | "tempo";
  uid: string;
  url: string;
  access: "proxy";
  jsonData?: Record<string, unknown>;
}

/**
 * Grafana's datasources for the stores that run: Loki (logs) and Tempo (traces, linked to their
 * pods' logs in Loki and to Prometheus's series), by their in-cluster Services.
 */
export function storeDataSources(cfg: MonitoringConfig, namespace: string): GrafanaDataSource[] {
  const at = storeEndpoints(namespace);
  const logs = cfg.logs.enabled;
  return [
    ...(logs
      ? [{ name: "Loki", type: "loki" as const, uid: LOKI, url: at.lokiUrl, access: "proxy" as const }]
      : []),
    ...(cfg.traces.enabled
      ? [
          {
            name: "Tempo",
            type: "tempo" as const,
            uid: TEMPO,
            url: at.tempoUrl,
            access: "proxy" as const,
            jsonData: {
              serviceMap: { datasourceUid: "prometheus" },
              ...(logs ? { tracesToLogsV2: { datasourceUid: LOKI, filterByTraceID: true } } : {}),
            },
          },
        ]
      : []),
  ];
}

/** Grafana's PVC when `grafanaStorageSize` is set (created by the platform, not the chart). */
export const GRAFANA_CLAIM = "grafana";

/**
 * The startup probe of one Grafana sidecar: k8s-sidecar serves `/healthz` on its HEALTH_PORT, which
 * the chart takes from this probe's port; the ports are the chart's per-sidecar defaults.
 */
function sidecarStartup(port: 8082 | 8084): SidecarProbe {
  return { httpGet: { path: "/healthz", port }, periodSeconds: 5, failureThreshold: 60 };
}

/**
 * The operator's admission webhook and the `<fullname>-admission` Secret its TLS listener mounts.
 * The chart makes that Secret in a pre-install hook Job (`patch`), and helm.v4.Chart drops hooks:
 * so the Secret is issued by cert-manager (the chart's own self-signed Issuer, CA and Certificate,
 * CA injected into the webhook configurations), or, without cert-manager, webhook and TLS are off.
 */
export type AdmissionWebhookValues =
  | { enabled: true; certManager: { enabled: true }; patch: { enabled: false } }
  | { enabled: false; certManager: { enabled: false }; patch: { enabled: false } };

export function admissionWebhookValues(certManager: boolean): {
  tls: { enabled: boolean };
  admissionWebhooks: AdmissionWebhookValues;
} {
  return certManager
    ? {
        tls: { enabled: true },
        admissionWebhooks: { enabled: true, certManager: { enabled: true }, patch: { enabled: false } },
      }
    : {
        tls: { enabled: false },
        admissionWebhooks: { enabled: false, certManager: { enabled: false }, patch: { enabled: false } },
      };
}

/** Default rule groups of the control-plane components (`defaultRules.rules.*`). */
export type ControlPlaneRule =
  "kubeControllerManager" | "kubeSchedulerAlerting" | "kubeSchedulerRecording" | "kubeProxy" | "etcd";

/**
 * Which control-plane components Prometheus can scrape. K3s (and k3d) run controller-manager,
 * scheduler, kube-proxy and etcd inside the k3s process, with no Service or pod to scrape: their
 * monitors find no target and their `*Down` alerts fire forever. Managed control planes (EKS, GKE,
 * AKS) hide controller-manager, scheduler and etcd; their nodes still run kube-proxy. Every other
 * cluster keeps all four on.
 */
export function controlPlaneMonitors(distribution: Distribution): {
  controllerManager: boolean;
  scheduler: boolean;
  proxy: boolean;
  etcd: boolean;
} {
  const embedded = distribution === "k3s" || distribution === "k3d";
  const managed = distribution === "eks" || distribution === "gke" || distribution === "aks";
  const hidden = embedded || managed;
  return { controllerManager: !hidden, scheduler: !hidden, proxy: !embedded, etcd: !hidden };
}

/**
 * Values of kube-prometheus-stack. With the mesh on, Prometheus gets a cert-only Istio sidecar
 * (no traffic capture; Istio's documented recipe) so it has a mesh identity and client certs to
 * scrape STRICT-mTLS workloads, and the default-deny allows it by that identity.
 */
export function kubePrometheusStackValues(
  cfg: MonitoringConfig,
  env: Environment,
  opts: { grafanaAdminSecret: string; mesh: boolean; distribution: Distribution; certManager: boolean },
): KubePrometheusStackValues {
  const size = monitoringSizing(env);
  const cp = controlPlaneMonitors(opts.distribution);
  const img = chartImages.kubePrometheusStack.images;
  const reloader = shaImage(img.configReloader).image;
  const meshCerts = opts.mesh
    ? {
        podMetadata: {
          labels: { "sidecar.istio.io/inject": "true" },
          annotations: {
            "traffic.sidecar.istio.io/includeInboundPorts": "",
            "traffic.sidecar.istio.io/includeOutboundIPRanges": "",
            "proxy.istio.io/config": '{"proxyMetadata":{"OUTPUT_CERTS":"/etc/istio-output-certs"}}',
            "sidecar.istio.io/userVolumeMount":
              '[{"name":"istio-certs","mountPath":"/etc/istio-output-certs"}]',
          },
        },
        volumes: [{ name: "istio-certs", emptyDir: { medium: "Memory" } }],
        volumeMounts: [{ name: "istio-certs", mountPath: "/etc/prom-certs/" }],
      }
    : {};
  return {
    fullnameOverride: FULLNAME,
    crds: { enabled: true },
    prometheusOperator: {
      ...shaImage(img.prometheusOperator),
      // The operator starts this next to Prometheus and Alertmanager (no pod of the chart runs it).
      ...(reloader ? { prometheusConfigReloader: { image: reloader } } : {}),
      resources: size.operator,
      ...admissionWebhookValues(opts.certManager),
    },
    // Off where the component cannot be scraped (its monitor and its rules, so nothing pages).
    defaultRules: {
      rules: {
        kubeControllerManager: cp.controllerManager,
        kubeSchedulerAlerting: cp.scheduler,
        kubeSchedulerRecording: cp.scheduler,
        kubeProxy: cp.proxy,
        etcd: cp.etcd,
      },
    },
    kubeControllerManager: { enabled: cp.controllerManager },
    kubeScheduler: { enabled: cp.scheduler },
    kubeProxy: { enabled: cp.proxy },
    kubeEtcd: { enabled: cp.etcd },
    prometheus: {
      serviceAccount: { create: true, name: PROMETHEUS_SERVICE_ACCOUNT },
      // The Prometheus custom resource's image: the operator runs it, so the pack never sees it.
      prometheusSpec: {
        ...shaImage(img.prometheus),
        replicas: cfg.prometheusReplicas,
        retention: cfg.retention,
        resources: size.prometheus,
        // The OpenTelemetry collector writes OTLP metrics in with remote write.
        enableRemoteWriteReceiver: true,
        // Pick up every rule and monitor in the cluster, not only this release's.
        ruleSelectorNilUsesHelmValues: false,
        serviceMonitorSelectorNilUsesHelmValues: false,
        podMonitorSelectorNilUsesHelmValues: false,
        storageSpec: {
          volumeClaimTemplate: {
            spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: cfg.storageSize } } },
          },
        },
        ...meshCerts,
      },
    },
    alertmanager: {
      alertmanagerSpec: {
        ...shaImage(img.alertmanager),
        resources: size.alertmanager,
        alertmanagerConfigSelector: { matchLabels: { ...ALERTMANAGER_CONFIG_LABEL } },
        // The platform's receiver takes alerts from every namespace, not only `monitoring`.
        alertmanagerConfigMatcherStrategy: { type: "None" },
      },
    },
    grafana: {
      ...shaImage(img.grafana),
      fullnameOverride: "grafana",
      // The password lives only in the Secret; values carry its name and keys.
      admin: {
        existingSecret: opts.grafanaAdminSecret,
        userKey: "admin-user",
        passwordKey: "admin-password",
      },
      persistence: cfg.grafanaStorageSize
        ? { enabled: true, existingClaim: GRAFANA_CLAIM }
        : { enabled: false },
      initChownData: { enabled: false },
      additionalDataSources: storeDataSources(cfg, MONITORING_NAMESPACE),
      resources: size.grafana,
      sidecar: {
        ...shaImage(img.grafanaSidecar),
        resources: size.grafanaSidecar,
        dashboards: {
          enabled: true,
          label: "grafana_dashboard",
          labelValue: "1",
          searchNamespace: "ALL",
          startupProbe: sidecarStartup(8084),
        },
        datasources: { startupProbe: sidecarStartup(8082) },
      },
    },
    // GPU panels and alerts join DCGM series to nodes by their pool label.
    "kube-state-metrics": {
      ...shaImage(img.kubeStateMetrics, "prefixed"),
      metricLabelsAllowlist: [`nodes=[${GPU_POOL_LABEL}]`],
      resources: size.kubeStateMetrics,
    },
    "prometheus-node-exporter": {
      ...(img.nodeExporter.digest ? { image: { digest: img.nodeExporter.digest } } : {}),
      resources: size.nodeExporter,
    },
  };
}

export interface OtelCollectorValues {
  mode: "deployment";
  fullnameOverride: string;
  /** `tag` carries the digest when one is traced: the chart's `digest` key would drop the tag. */
  image: { repository: string; tag: string };
  replicaCount: number;
  resources: Resources;
  securityContext: Record<string, unknown>;
  config: Record<string, unknown>;
}

/**
 * Where the collector sends traces: `otelTracesEndpoint` when set (an external store), else the
 * in-cluster Tempo's OTLP gRPC port when `traces` runs, else nowhere (the debug exporter).
 */
export function tracesEndpoint(cfg: MonitoringConfig): string | undefined {
  return (
    cfg.otelTracesEndpoint ??
    (cfg.traces.enabled ? storeEndpoints(MONITORING_NAMESPACE).tempoOtlpGrpc : undefined)
  );
}

/** The collector's otlp exporter speaks TLS by default; an `http://` (or scheme-less) in-cluster endpoint does not. */
export function otlpExporter(endpoint: string): { endpoint: string; tls: { insecure: boolean } } {
  return {
    endpoint: endpoint.replace(/^https?:\/\//, ""),
    tls: { insecure: !endpoint.startsWith("https://") },
  };
}

/**
 * The collector: OTLP in (gRPC 4317, HTTP 4318); metrics out to Prometheus by remote write;
 * traces over OTLP to `tracesEndpoint`, or to the debug exporter (a log line per batch).
 */
export function otelCollectorValues(cfg: MonitoringConfig, env: Environment): OtelCollectorValues {
  const traces = tracesEndpoint(cfg);
  const tracesExporter = traces ? "otlp" : "debug";
  const image: ImageVersion = images.otelCollectorContrib;
  return {
    mode: "deployment",
    fullnameOverride: "otel-collector",
    // `repository:tag` is all the template prints without `image.digest` (with it, `repository@digest`).
    image: { repository: image.repository, tag: pinnedTag(image) ?? image.tag },
    replicaCount: env === "prod" ? 2 : 1,
    resources: monitoringSizing(env).otel,
    securityContext: {
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    config: {
      exporters: {
        debug: { verbosity: "basic" },
        prometheusremotewrite: {
          endpoint: `${PROMETHEUS_URL}/api/v1/write`,
          resource_to_telemetry_conversion: { enabled: true },
        },
        ...(traces ? { otlp: otlpExporter(traces) } : {}),
      },
      service: {
        pipelines: {
          traces: {
            receivers: ["otlp"],
            processors: ["memory_limiter", "batch"],
            exporters: [tracesExporter],
          },
          metrics: {
            receivers: ["otlp"],
            processors: ["memory_limiter", "batch"],
            exporters: ["prometheusremotewrite"],
          },
        },
      },
    },
  };
}

/** The Alertmanager route and receiver: the webhook URL is read from a Secret key, never inlined. */
export function alertmanagerConfigSpec(secret: { name: string; key: string }): Record<string, unknown> {
  return {
    route: {
      receiver: "platform-webhook",
      groupBy: ["alertname", "namespace"],
      groupWait: "30s",
      groupInterval: "5m",
      repeatInterval: "4h",
      matchers: [{ name: "severity", value: "warning|critical", matchType: "=~" }],
    },
    receivers: [{ name: "platform-webhook", webhookConfigs: [{ urlSecret: secret, sendResolved: true }] }],
  };
}

/** PodMonitor of every Envoy (sidecars, ingress): istio_requests_total feeds Flagger and dashboards. */
export function envoyPodMonitorSpec(): Record<string, unknown> {
  return {
    selector: { matchExpressions: [{ key: "security.istio.io/tlsMode", operator: "Exists" }] },
    namespaceSelector: { any: true },
    podMetricsEndpoints: [
      {
        path: "/stats/prometheus",
        interval: "30s",
        relabelings: [
          {
            action: "keep",
            sourceLabels: ["__meta_kubernetes_pod_container_name"],
            regex: "istio-proxy",
          },
          {
            action: "replace",
            sourceLabels: ["__meta_kubernetes_pod_ip"],
            regex: "(.*)",
            replacement: "$1:15090",
            targetLabel: "__address__",
          },
        ],
      },
    ],
  };
}

export interface MonitoringStackArgs {
  readonly config: MonitoringConfig;
  readonly environment: Environment;
  readonly provider: k8s.Provider;
  readonly secretStore: SecretStore;
  /** The mesh runs: give Prometheus mesh certificates and scrape every Envoy. */
  readonly mesh: boolean;
  /** The cluster's distribution: which control-plane components can be scraped. */
  readonly distribution: Distribution;
  /**
   * cert-manager's chart, when it runs: it issues the operator's webhook certificate (the chart's
   * own hook Job would, but hooks are dropped), so the monitoring chart is applied after it.
   */
  readonly certManager?: pulumi.Resource;
  /** Resources that must exist first (cluster ready; istiod, so Prometheus gets its sidecar). */
  readonly dependsOn?: readonly pulumi.Resource[];
}

export class MonitoringStack extends pulumi.ComponentResource {
  public readonly namespace: string = MONITORING_NAMESPACE;
  public readonly prometheusUrl: string = PROMETHEUS_URL;
  public readonly grafanaUrl: string = GRAFANA_URL;
  /** OTLP/gRPC endpoint workloads send traces and metrics to, when the collector runs. */
  public readonly otlpEndpoint?: string;
  /** The Secret with Grafana's admin user and password. */
  public readonly grafanaAdmin: SecretRef;
  /** The chart that installs the monitoring.coreos.com CRDs: ServiceMonitors depend on it. */
  public readonly crds: k8s.helm.v4.Chart;

  constructor(name: string, args: MonitoringStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:monitoring:MonitoringStack", name, {}, opts);
    const { config: cfg, provider, environment: env } = args;
    const after = (...deps: pulumi.Input<pulumi.Resource>[]) => ({
      parent: this,
      provider,
      dependsOn: [...(args.dependsOn ?? []), ...deps],
    });

    // `privileged`: node-exporter (a DaemonSet here) reads host metrics through hostNetwork,
    // hostPID and hostPath mounts of /proc and /sys, which every stricter level forbids. Alloy, the
    // log agent, shares it for its hostPath of /var/log rather than a second privileged namespace.
    const ns = platformNamespace(
      MONITORING_NAMESPACE,
      { meshInjection: false, podSecurity: "privileged", component: "monitoring" },
      after(),
    );
    this.grafanaAdmin = args.secretStore.generated(GRAFANA_ADMIN_SECRET, MONITORING_NAMESPACE, {
      passwords: { "admin-password": { length: 32 } },
      literals: { "admin-user": "admin" },
      component: "monitoring",
      dependsOn: [ns],
    });
    // Grafana's database (users, UI-made dashboards): the platform's own claim, protected in prod
    // by itself; the chart only mounts it.
    const grafanaClaim = cfg.grafanaStorageSize
      ? new k8s.core.v1.PersistentVolumeClaim(
          `${name}-grafana-storage`,
          {
            metadata: {
              name: GRAFANA_CLAIM,
              namespace: MONITORING_NAMESPACE,
              labels: appLabels("grafana", "monitoring"),
            },
            spec: {
              accessModes: ["ReadWriteOnce"],
              resources: { requests: { storage: cfg.grafanaStorageSize } },
            },
          },
          { ...after(ns), protect: env === "prod" },
        )
      : undefined;
    const stack = pinnedChart(
      `${name}-kube-prometheus-stack`,
      charts.kubePrometheusStack,
      {
        release: "kube-prometheus-stack",
        namespace: MONITORING_NAMESPACE,
        values: kubePrometheusStackValues(cfg, env, {
          grafanaAdminSecret: this.grafanaAdmin.name,
          mesh: args.mesh,
          distribution: args.distribution,
          certManager: args.certManager !== undefined,
        }),
      },
      // Not protected: protect on the chart reaches every rendered object (a replaced ConfigMap fails)
      // but not the TSDB volumes the operator creates (Kubernetes retains StatefulSet PVCs).
      after(
        ns,
        this.grafanaAdmin.resource,
        ...(args.certManager ? [args.certManager] : []),
        ...(grafanaClaim ? [grafanaClaim] : []),
      ),
    );
    this.crds = stack;

    if (cfg.otel) {
      pinnedChart(
        `${name}-otel-collector`,
        charts.openTelemetryCollector,
        { release: "otel-collector", namespace: MONITORING_NAMESPACE, values: otelCollectorValues(cfg, env) },
        after(ns, stack),
      );
      this.otlpEndpoint = OTEL_COLLECTOR_ENDPOINT;
    }

    // The stores' volumes are the platform's own claims, as Grafana's: protected in prod by
    // themselves (the charts stay unprotected, so their ConfigMaps can be replaced).
    const storeClaim = (app: string, size: string) =>
      new k8s.core.v1.PersistentVolumeClaim(
        `${name}-${app}-storage`,
        {
          metadata: { name: app, namespace: MONITORING_NAMESPACE, labels: appLabels(app, "monitoring") },
          spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: size } } },
        },
        { ...after(ns), protect: env === "prod" },
      );
    const at = storeEndpoints(MONITORING_NAMESPACE);
    if (cfg.logs.enabled) {
      const claim = storeClaim(LOKI, cfg.logs.storageSize);
      const retention = storeRetention(cfg.logs, env);
      const loki = pinnedChart(
        `${name}-loki`,
        charts.loki,
        {
          release: LOKI,
          namespace: MONITORING_NAMESPACE,
          values: lokiValues({ env, retention, claim: LOKI }),
        },
        // After kube-prometheus-stack: its ServiceMonitor needs the chart's CRDs.
        after(ns, claim, stack),
      );
      // The node agent pushes to Loki: applied after it so its first batches find it.
      pinnedChart(
        `${name}-alloy`,
        charts.alloy,
        {
          release: "alloy",
          namespace: MONITORING_NAMESPACE,
          values: alloyValues({ env, lokiPushUrl: at.lokiPushUrl }),
        },
        after(ns, loki),
      );
    }
    if (cfg.traces.enabled) {
      const claim = storeClaim(TEMPO, cfg.traces.storageSize);
      const retention = storeRetention(cfg.traces, env);
      pinnedChart(
        `${name}-tempo`,
        charts.tempo,
        {
          release: TEMPO,
          namespace: MONITORING_NAMESPACE,
          values: tempoValues({ env, retention, claim: TEMPO }),
        },
        after(ns, claim, stack),
      );
    }

    new k8s.core.v1.ConfigMap(
      `${name}-gpu-dashboard`,
      {
        metadata: {
          name: "gpu-dashboard",
          namespace: MONITORING_NAMESPACE,
          labels: { ...appLabels("gpu-dashboard", "monitoring"), grafana_dashboard: "1" },
        },
        data: { "gpu-pools.json": JSON.stringify(gpuDashboard()) },
      },
      after(ns),
    );

    customResource(
      `${name}-inference-slo`,
      {
        apiVersion: "monitoring.coreos.com/v1",
        kind: "PrometheusRule",
        objectName: "inference-slo",
        namespace: MONITORING_NAMESPACE,
        component: "monitoring",
        spec: { groups: sloRuleGroups(cfg.slo) },
      },
      after(stack),
    );

    if (args.mesh)
      customResource(
        `${name}-envoy-stats`,
        {
          apiVersion: "monitoring.coreos.com/v1",
          kind: "PodMonitor",
          objectName: "envoy-stats",
          namespace: MONITORING_NAMESPACE,
          component: "monitoring",
          spec: envoyPodMonitorSpec(),
        },
        after(stack),
      );

    if (cfg.alertWebhook) {
      const webhook = args.secretStore.fromConfig("alertWebhookUrl", MONITORING_NAMESPACE, {
        name: WEBHOOK_SECRET,
        dataKey: "url",
        component: "monitoring",
        dependsOn: [ns],
      });
      customResource(
        `${name}-alert-webhook`,
        {
          apiVersion: "monitoring.coreos.com/v1alpha1",
          kind: "AlertmanagerConfig",
          objectName: "platform-webhook",
          namespace: MONITORING_NAMESPACE,
          component: "monitoring",
          labels: { ...ALERTMANAGER_CONFIG_LABEL },
          spec: alertmanagerConfigSpec({ name: webhook.name, key: "url" }),
        },
        after(stack, webhook.resource),
      );
    }

    this.registerOutputs({
      namespace: this.namespace,
      prometheusUrl: this.prometheusUrl,
      grafanaUrl: this.grafanaUrl,
      grafanaAdminSecret: this.grafanaAdmin.name,
      otlpEndpoint: this.otlpEndpoint,
    });
  }
}
