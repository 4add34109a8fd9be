import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { GpuPool } from "../cluster/handle";
import type { Environment } from "../schema-kit";
import { selectorLabels } from "../meta";
import { modelScaledObjectSpec, type ModelScaling } from "./autoscaling";
import type { InferenceServiceConfig } from "./schema";
import { sloFanOut, type ServiceSlo } from "./slo";
import {
  canarySpec,
  deploymentCustomTimeouts,
  deploymentStartBudgetSeconds,
  ENVOY_STATS_PORTS,
  modelLabels,
  modelPodSpec,
  modelTrafficPolicy,
  modelUrl,
  modelVirtualServiceSpec,
  pdbSelector,
  PROMETHEUS_NAMESPACES,
  RUNTIMES,
  scrapeEndpoint,
  serverImage,
} from "./spec";

export interface InferenceServiceArgs {
  /** The service's entry of `platform:inference.services`. */
  readonly config: InferenceServiceConfig;
  readonly namespace: string;
  readonly environment: Environment;
  /** Provider of the cluster the service runs in. */
  readonly provider: k8s.Provider;
  /** The GPU pool (from ClusterHandle.gpuPools) when the service uses GPUs. */
  readonly pool?: GpuPool;
  /** Secret with the model hub token under `token` (when `config.hubTokenSecret`). */
  readonly hubTokenSecret?: string;
  /** Istio routing (VirtualService, DestinationRule) and, with canary, the Flagger Canary. */
  readonly mesh: boolean;
  /** ServiceMonitor for the server's /metrics. */
  readonly monitoring: boolean;
  /** The service's objectives, resolved against platform:monitoring.slo (inference/slo.ts). */
  readonly slo: ServiceSlo;
  /** KEDA between bounds (maybe from zero), or a fixed count (inference/autoscaling.ts). */
  readonly scaling: ModelScaling;
  /** What the ScaledObject needs first: KEDA's chart (its CRDs). */
  readonly autoscalerDependsOn?: pulumi.Input<pulumi.Resource>[];
  /** ServiceAccount carrying the registry's imagePullSecrets. */
  readonly serviceAccountName?: string;
  /** Resources that must exist first (CRDs of Flagger and the Prometheus operator, namespaces, secrets). */
  readonly dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/**
 * One model server: vLLM on a GPU pool or llama.cpp on CPU, with its model cache, probes sized for
 * model load, KEDA autoscaling on its own metrics, disruption budget, network policy, metrics, its
 * SLO's burn-rate alerts, mesh routing, and (when enabled) a Flagger canary that rolls back when the
 * canary breaches the SLO.
 */
export class InferenceService extends pulumi.ComponentResource {
  /** The served model name (the OpenAI `model` field). */
  public readonly modelName: string;
  /** In-cluster base URL of the OpenAI-compatible API (…/v1). */
  public readonly url: string;
  public readonly deployment: k8s.apps.v1.Deployment;

  constructor(name: string, args: InferenceServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:inference:InferenceService", name, {}, opts);
    const s = args.config;
    const ns = args.namespace;
    const prod = args.environment === "prod";
    const labels = modelLabels(s);
    const port = RUNTIMES[s.runtime].port;
    const child = (extra: pulumi.CustomResourceOptions = {}): pulumi.CustomResourceOptions => ({
      parent: this,
      provider: args.provider,
      ...(args.dependsOn ? { dependsOn: args.dependsOn } : {}),
      ...extra,
    });
    const meta = (n: string, l: Record<string, string> = labels) => ({ name: n, namespace: ns, labels: l });
    const canary = s.canary.enabled;
    const scaling = args.scaling;
    const fanOut = sloFanOut({
      name: s.name,
      namespace: ns,
      runtime: s.runtime,
      slo: args.slo,
      autoscaling: s.autoscaling,
      canary,
      mesh: args.mesh,
      monitoring: args.monitoring,
      ...(scaling.kind === "keda" && scaling.activationWindowSeconds !== undefined
        ? { activationWindowSeconds: scaling.activationWindowSeconds }
        : {}),
    });

    const cache = new k8s.core.v1.PersistentVolumeClaim(
      `${name}-cache`,
      {
        metadata: meta(`${s.name}-cache`),
        spec: {
          accessModes: [s.cacheAccessMode],
          // Named per cache: K3s's default (local-path) provisions ReadWriteOnce only.
          ...(s.cacheStorageClass ? { storageClassName: s.cacheStorageClass } : {}),
          resources: { requests: { storage: s.cacheSize } },
        },
      },
      // Re-downloading a 100+ GB model is an outage: the cache is protected in prod.
      child({ protect: prod }),
    );

    const podSpec = modelPodSpec(s, {
      cacheClaim: `${s.name}-cache`,
      // Pinned by digest wherever one is known: what dev tests is byte-for-byte what prod runs.
      image: serverImage(s, true),
      ...(args.pool ? { pool: args.pool } : {}),
      ...(args.hubTokenSecret ? { hubTokenSecret: args.hubTokenSecret } : {}),
      ...(args.serviceAccountName ? { serviceAccountName: args.serviceAccountName } : {}),
    });
    this.deployment = new k8s.apps.v1.Deployment(
      `${name}-server`,
      {
        metadata: meta(s.name),
        spec: {
          // With KEDA no `replicas`: its HPA owns the count (and Flagger, with canary, scales this one
          // to zero). A fixed count is the Deployment's own.
          ...(scaling.kind === "fixed" ? { replicas: scaling.replicas } : {}),
          selector: { matchLabels: selectorLabels(s.name) },
          progressDeadlineSeconds: deploymentStartBudgetSeconds(s),
          // A GPU pool has no spare GPUs for a surge pod: replace one at a time.
          strategy: s.gpu
            ? { type: "RollingUpdate", rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } }
            : { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
          template: {
            metadata: {
              labels,
              annotations: { "kubectl.kubernetes.io/default-container": "server" },
            },
            spec: podSpec,
          },
        },
      },
      // A first start downloads the model: await it as long as its start budget, not the default 10 minutes.
      child({ dependsOn: [cache, ...(args.dependsOn ?? [])], customTimeouts: deploymentCustomTimeouts(s) }),
    );

    // Never a CPU HPA: a GPU server's CPU says nothing of its queue (the pack refuses one).
    const scaler =
      scaling.kind === "keda"
        ? new k8s.apiextensions.CustomResource(
            `${name}-scaler`,
            {
              apiVersion: "keda.sh/v1alpha1",
              kind: "ScaledObject",
              metadata: meta(s.name),
              spec: modelScaledObjectSpec(s.name, scaling, fanOut.triggers),
            },
            child({ dependsOn: [this.deployment, ...(args.autoscalerDependsOn ?? [])] }),
          )
        : undefined;

    if (s.replicas.max > 1)
      new k8s.policy.v1.PodDisruptionBudget(
        `${name}-pdb`,
        { metadata: meta(s.name), spec: { minAvailable: 1, selector: { matchLabels: pdbSelector(s) } } },
        child(),
      );

    // Ingress only from the namespace's workloads (the gateway) and Prometheus.
    new k8s.networking.v1.NetworkPolicy(
      `${name}-netpol`,
      {
        metadata: meta(s.name),
        spec: {
          // The instance label survives Flagger's copy, so primary and canary pods are both covered.
          podSelector: { matchLabels: { "app.kubernetes.io/instance": s.name } },
          policyTypes: ["Ingress"],
          ingress: [
            { from: [{ podSelector: {} }], ports: [{ port, protocol: "TCP" }] },
            {
              from: [{ namespaceSelector: PROMETHEUS_NAMESPACES }],
              // With the mesh, Envoy's stats (istio_requests_total, what Flagger's analysis reads)
              // are scraped from the sidecar's ports too.
              ports: [port, ...(args.mesh ? ENVOY_STATS_PORTS : [])].map((p) => ({
                port: p,
                protocol: "TCP",
              })),
            },
          ],
        },
      },
      child(),
    );

    if (!canary)
      new k8s.core.v1.Service(
        `${name}-service`,
        {
          metadata: meta(s.name),
          spec: {
            selector: selectorLabels(s.name),
            ports: [{ name: "http", port, targetPort: "http", protocol: "TCP", appProtocol: "http" }],
          },
        },
        child(),
      );

    if (args.monitoring) {
      // A Service of its own for scraping: Flagger owns `<name>`, `-primary` and `-canary` with canary on.
      const metricsLabels = { ...labels, "platform.ai/metrics": s.name };
      new k8s.core.v1.Service(
        `${name}-metrics`,
        {
          metadata: meta(`${s.name}-metrics`, metricsLabels),
          spec: {
            clusterIP: "None",
            selector: { "app.kubernetes.io/instance": s.name },
            ports: [{ name: "http-metrics", port, targetPort: port, protocol: "TCP" }],
          },
        },
        child(),
      );
      new k8s.apiextensions.CustomResource(
        `${name}-monitor`,
        {
          apiVersion: "monitoring.coreos.com/v1",
          kind: "ServiceMonitor",
          metadata: meta(s.name),
          spec: {
            selector: { matchLabels: { "platform.ai/metrics": s.name } },
            endpoints: [scrapeEndpoint(args.mesh)],
          },
        },
        child(),
      );
      // The SLO's burn-rate alerts, beside the service they watch.
      if (fanOut.rules.length)
        new k8s.apiextensions.CustomResource(
          `${name}-slo`,
          {
            apiVersion: "monitoring.coreos.com/v1",
            kind: "PrometheusRule",
            metadata: meta(`${s.name}-slo`),
            spec: { groups: fanOut.rules },
          },
          child(),
        );
    }

    if (args.mesh && !canary) {
      new k8s.apiextensions.CustomResource(
        `${name}-vs`,
        {
          apiVersion: "networking.istio.io/v1beta1",
          kind: "VirtualService",
          metadata: meta(s.name),
          spec: modelVirtualServiceSpec(s, ns),
        },
        child(),
      );
      new k8s.apiextensions.CustomResource(
        `${name}-dr`,
        {
          apiVersion: "networking.istio.io/v1beta1",
          kind: "DestinationRule",
          metadata: meta(s.name),
          spec: { host: `${s.name}.${ns}.svc.cluster.local`, trafficPolicy: modelTrafficPolicy() },
        },
        child(),
      );
    }

    if (canary) {
      if (!args.mesh) throw new Error(`service ${s.name}: canary needs the mesh`);
      const templates = fanOut.metricTemplates.map(
        (t) =>
          new k8s.apiextensions.CustomResource(
            `${name}-metric-${t.name.slice(s.name.length + 1)}`,
            {
              apiVersion: "flagger.app/v1beta1",
              kind: "MetricTemplate",
              metadata: meta(t.name),
              spec: t.spec,
            },
            child(),
          ),
      );
      new k8s.apiextensions.CustomResource(
        `${name}-canary`,
        {
          apiVersion: "flagger.app/v1beta1",
          kind: "Canary",
          metadata: meta(s.name),
          spec: canarySpec(s, ns, {
            autoscalerRef: scaler
              ? {
                  apiVersion: "keda.sh/v1alpha1",
                  kind: "ScaledObject",
                  name: s.name,
                  primaryScalerQueries: fanOut.primaryScalerQueries,
                }
              : null,
            metrics: fanOut.canaryMetrics,
          }),
        },
        child({
          dependsOn: [this.deployment, ...(scaler ? [scaler] : []), ...templates, ...(args.dependsOn ?? [])],
        }),
      );
    }

    this.modelName = s.name;
    this.url = modelUrl(s, ns);
    this.registerOutputs({ modelName: this.modelName, url: this.url });
  }
}
