import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { GpuPool } from "../cluster/handle";
import type { Environment } from "../schema-kit";
import { selectorLabels } from "../meta";
import type { InferenceServiceConfig } from "./schema";
import {
  canarySpec,
  DEFAULT_CANARY_SLO,
  deploymentCustomTimeouts,
  deploymentStartBudgetSeconds,
  ENVOY_STATS_PORTS,
  hpaSpec,
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
  type CanarySlo,
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
  /** Canary analysis thresholds (default: 1 % errors, p99 5 s). */
  readonly slo?: CanarySlo;
  /** ServiceAccount carrying the registry's imagePullSecrets. */
  readonly serviceAccountName?: string;
  /** Resources that must exist first (CRDs of Flagger and the Prometheus operator, namespaces, secrets). */
  readonly dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/**
 * One model server: vLLM on a GPU pool or llama.cpp on CPU, with its model cache, probes sized for
 * model load, autoscaling, disruption budget, network policy, metrics, mesh routing, and (when
 * enabled) a Flagger canary with automatic rollback.
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
          // No `replicas`: the HPA owns the count (and Flagger, with canary, scales this one to zero).
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

    const hpa = new k8s.autoscaling.v2.HorizontalPodAutoscaler(
      `${name}-hpa`,
      { metadata: meta(s.name), spec: hpaSpec(s.name, s.replicas) },
      child({ dependsOn: [this.deployment] }),
    );

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

    const canary = s.canary.enabled;
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
      new k8s.apiextensions.CustomResource(
        `${name}-canary`,
        {
          apiVersion: "flagger.app/v1beta1",
          kind: "Canary",
          metadata: meta(s.name),
          spec: canarySpec(s, ns, args.slo ?? DEFAULT_CANARY_SLO),
        },
        child({ dependsOn: [this.deployment, hpa, ...(args.dependsOn ?? [])] }),
      );
    }

    this.modelName = s.name;
    this.url = modelUrl(s, ns);
    this.registerOutputs({ modelName: this.modelName, url: this.url });
  }
}
