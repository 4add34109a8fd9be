/**
 * The platform's inference gateway (services/gateway) on the cluster: an API Deployment behind the
 * mesh ingress gateway, a worker Deployment scaled by KEDA on JetStream consumer lag, and the NATS
 * JetStream server both use as their queue and result store.
 */
import { createHash } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { Environment } from "../schema-kit";
import { pinnedChart } from "../k8s-kit";
import { appLabels, MESH_CONTRACT, MESH_GATEWAY, platformNamespace, selectorLabels } from "../meta";
import type { SecretStore } from "../secrets/store";
import { chartImages, charts, pinnedRef, pinnedTag, type ImageVersion } from "../versions";
import { MONITORING_NAMESPACE } from "../monitoring/monitoring";
import type { InferenceConfig } from "./schema";
import {
  PROMETHEUS_NAMESPACES,
  restrictedContainerSecurity,
  restrictedPodSecurity,
  STREAM_SAFE_RETRIES,
} from "../workload";

/** Component label of the gateway API; the mesh's AuthorizationPolicies key on it. */
export const GATEWAY_COMPONENT = "gateway";
/** Component label of the gateway's queue workers. */
export const WORKER_COMPONENT = "gateway-worker";
export const GATEWAY_PORT = 8080;
export const GATEWAY_METRICS_PORT = 9090;
export const NATS_CLIENT_PORT = 4222;
export const NATS_MONITOR_PORT = 8222;
/** The chart's Prometheus exporter sidecar. */
export const NATS_EXPORTER_PORT = 7777;
/**
 * The monitoring stack's OpenTelemetry collector, OTLP/HTTP (its `otlp-http` Service port, the otlp
 * receiver's http protocol): where the gateway exports traces. The collector runs in `monitoring`
 * outside the mesh, so no AuthorizationPolicy stands between (Istio enforces them on injected pods
 * only) and the gateway's NetworkPolicies restrict ingress only.
 */
export const OTEL_COLLECTOR_OTLP_HTTP = `http://otel-collector.${MONITORING_NAMESPACE}:4318`;
/** Release name of the nats chart (its fullname). */
export const NATS_RELEASE = "nats";
/**
 * The chart's headless Service (`<fullname>-headless`, the StatefulSet's serviceName): it carries
 * the monitor port, and `<pod>.<headless>` resolves to each server. The client Service (`nats`)
 * exposes only 4222 unless `service.ports.monitor` is turned on, and has no per-pod names.
 */
export const NATS_HEADLESS_SERVICE = `${NATS_RELEASE}-headless`;

/**
 * The monitoring endpoint KEDA's nats-jetstream scaler reads. In a cluster it asks this endpoint
 * for the servers, then queries each (`<server_name>.<this host>:8222`, or the advertised host on
 * this port) until it finds the consumer's leader: so it must be the headless Service, where both
 * resolve per server. The monitor listener is plain HTTP: `useHttps: "false"` (the scheme is used
 * for every derived URL too).
 */
export function natsMonitoringEndpoint(namespace: string): string {
  return `${NATS_HEADLESS_SERVICE}.${namespace}.svc.cluster.local:${NATS_MONITOR_PORT}`;
}
/** The gateway's JetStream names (its defaults, set explicitly because KEDA reads the same ones). */
export const JOBS = {
  stream: "GATEWAY_JOBS",
  consumer: "gateway-workers",
  kvBucket: "gateway-jobs",
} as const;
export const API_KEYS_DIR = "/var/run/secrets/gateway";
export const API_KEYS_FILE = "api-keys.json";

/** NATS servers: a 3-node JetStream cluster in prod (replicated streams), one elsewhere. */
export function natsReplicas(environment: Environment): number {
  return environment === "prod" ? 3 : 1;
}

/** The gateway's API-keys file (format of services/gateway/src/auth.ts): hashes only, never keys. */
export function apiKeysFile(entries: readonly { name: string; sha256: string }[]): string {
  return JSON.stringify({ keys: entries.map((e) => ({ name: e.name, sha256: e.sha256 })) });
}

export function sha256Hex(value: string): string {
  return createHash("sha256").update(value).digest("hex");
}

export interface GatewayEnvInputs {
  readonly role: "api" | "worker";
  readonly natsUrl: string;
  readonly backendUrl: string;
  /** The model names the backend serves (its `--served-model-name`s). */
  readonly models: readonly string[];
  readonly jetstreamReplicas: number;
  readonly publicBaseUrl?: string;
  /**
   * Worker retries that outlast a cold start, when the backend scales to zero (autoscaling.ts
   * coldStartRetries); unset, the gateway's defaults.
   */
  readonly workerRetries?: { readonly maxAttempts: number; readonly backoffMaxMs: number };
  /** OTLP/HTTP base URL traces go to (the collector, when monitoring is on); unset, tracing is off. */
  readonly otlpEndpoint?: string;
}

/** Environment of a gateway container (names and defaults of services/gateway/src/config.ts). */
export function gatewayEnv(i: GatewayEnvInputs): k8s.types.input.core.v1.EnvVar[] {
  return [
    { name: "GATEWAY_ROLE", value: i.role },
    { name: "NATS_URL", value: i.natsUrl },
    { name: "BACKEND_URL", value: i.backendUrl },
    // What GET /v1/models lists (narrowed per key), and the only values the `model` metric label
    // takes: unset, the list is empty and every series is `other`.
    { name: "MODELS", value: i.models.join(",") },
    { name: "PORT", value: String(GATEWAY_PORT) },
    { name: "METRICS_PORT", value: String(GATEWAY_METRICS_PORT) },
    { name: "JOBS_STREAM", value: JOBS.stream },
    { name: "JOBS_CONSUMER", value: JOBS.consumer },
    { name: "JOBS_KV_BUCKET", value: JOBS.kvBucket },
    { name: "JETSTREAM_REPLICAS", value: String(i.jetstreamReplicas) },
    // Generations take long; the Istio route has no timeout either.
    { name: "BACKEND_TIMEOUT_MS", value: "600000" },
    // Traces (services/gateway/README.md, "Traces"): one service name per role, so a trace shows
    // the request's hop to the worker that ran its job.
    ...(i.otlpEndpoint
      ? [
          { name: "OTEL_EXPORTER_OTLP_ENDPOINT", value: i.otlpEndpoint },
          { name: "OTEL_SERVICE_NAME", value: `gateway-${i.role}` },
        ]
      : []),
    ...(i.role === "api"
      ? [
          { name: "API_KEYS_FILE", value: `${API_KEYS_DIR}/${API_KEYS_FILE}` },
          ...(i.publicBaseUrl ? [{ name: "PUBLIC_BASE_URL", value: i.publicBaseUrl }] : []),
        ]
      : [
          { name: "WORKER_CONCURRENCY", value: "4" },
          { name: "WORKER_MAX_ATTEMPTS", value: String(i.workerRetries?.maxAttempts ?? 5) },
          ...(i.workerRetries
            ? [{ name: "WORKER_BACKOFF_MAX_MS", value: String(i.workerRetries.backoffMaxMs) }]
            : []),
        ]),
  ];
}

/** KEDA ScaledObject spec: workers follow the jobs consumer's pending messages. */
export function scaledObjectSpec(args: {
  target: string;
  namespace: string;
  min: number;
  max: number;
  lagThreshold?: number;
}) {
  return {
    scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: args.target },
    minReplicaCount: args.min,
    maxReplicaCount: args.max,
    pollingInterval: 10,
    // Jobs are long: keep workers a while after the queue drains.
    cooldownPeriod: 300,
    triggers: [
      {
        type: "nats-jetstream",
        metadata: {
          natsServerMonitoringEndpoint: natsMonitoringEndpoint(args.namespace),
          account: "$G",
          stream: JOBS.stream,
          consumer: JOBS.consumer,
          lagThreshold: String(args.lagThreshold ?? 10),
          activationLagThreshold: "0",
          useHttps: "false",
        },
      },
    ],
  };
}

/** A container of the nats chart, merged with restricted-compliant security and explicit resources. */
interface NatsContainerMerge {
  merge: { resources: object; securityContext: object };
}

/** Typed values of the nats chart (the subset we set). */
export interface NatsValues {
  config: {
    cluster: { enabled: boolean; replicas?: number };
    jetstream: {
      enabled: true;
      fileStore: { enabled: true; pvc: { enabled: true; size: string } };
      memoryStore: { enabled: false };
    };
    monitor: { enabled: true; port: number };
  };
  container: NatsContainerMerge & NatsImage;
  reloader: NatsContainerMerge & NatsImage;
  podTemplate: {
    merge: { metadata: { annotations: Record<string, string> }; spec: { securityContext: object } };
  };
  natsBox: { enabled: false };
  promExporter: {
    enabled: boolean;
    podMonitor: { enabled: boolean };
    merge: NatsContainerMerge["merge"] & { readinessProbe: object; livenessProbe: object };
  } & NatsImage;
}

/** A NATS chart container's image, set only when its digest is traced (versions.ts `chartImages`). */
interface NatsImage {
  image?: { fullImageName: string };
}

/**
 * The chart's `image.digest` renders `repo@digest` and drops the tag; `fullImageName` takes the
 * whole reference, so the pod shows the version it runs as well as the digest it pins.
 */
function natsImage(image: ImageVersion): NatsImage {
  const ref = pinnedRef(image);
  return ref ? { image: { fullImageName: ref } } : {};
}

/**
 * NATS with JetStream on file storage, restricted and non-root, its monitor port reachable by KEDA.
 * Every container the chart renders (nats, reloader, prom-exporter) gets the restricted security
 * context and resources: the chart sets neither on the exporter, and Pod Security rejects the whole
 * StatefulSet for one container without them.
 */
export function natsValues(environment: Environment, monitoring: boolean): NatsValues {
  const replicas = natsReplicas(environment);
  const img = chartImages.nats.images;
  const sidecarResources = { requests: { cpu: "10m", memory: "32Mi" }, limits: { memory: "64Mi" } };
  return {
    config: {
      cluster: replicas > 1 ? { enabled: true, replicas } : { enabled: false },
      jetstream: {
        enabled: true,
        fileStore: { enabled: true, pvc: { enabled: true, size: environment === "prod" ? "50Gi" : "5Gi" } },
        memoryStore: { enabled: false },
      },
      monitor: { enabled: true, port: NATS_MONITOR_PORT },
    },
    container: {
      ...natsImage(img.server),
      merge: {
        resources: { requests: { cpu: "100m", memory: "256Mi" }, limits: { memory: "1Gi" } },
        securityContext: restrictedContainerSecurity(),
      },
    },
    reloader: {
      ...natsImage(img.reloader),
      merge: { resources: sidecarResources, securityContext: restrictedContainerSecurity() },
    },
    podTemplate: {
      merge: {
        metadata: {
          // KEDA (outside the mesh) reads /jsz on the monitor port; STRICT mTLS would refuse it.
          // The client port stays in the mesh.
          annotations: {
            "traffic.sidecar.istio.io/excludeInboundPorts": [
              NATS_MONITOR_PORT,
              ...(monitoring ? [NATS_EXPORTER_PORT] : []),
            ].join(","),
          },
        },
        spec: { securityContext: restrictedPodSecurity() },
      },
    },
    natsBox: { enabled: false },
    promExporter: {
      enabled: monitoring,
      podMonitor: { enabled: monitoring },
      ...natsImage(img.exporter),
      merge: {
        resources: sidecarResources,
        securityContext: restrictedContainerSecurity(),
        // The chart gives the exporter no probes. Its only listener is the metrics port; a TCP
        // check of it says the process serves, without scraping NATS on every probe.
        readinessProbe: { tcpSocket: { port: NATS_EXPORTER_PORT }, periodSeconds: 10 },
        livenessProbe: { tcpSocket: { port: NATS_EXPORTER_PORT }, periodSeconds: 30, failureThreshold: 3 },
      },
    },
  };
}

/** Typed values of the keda chart (the subset we set). */
export interface KedaValues {
  /** Set per component only when its digest is traced (versions.ts `chartImages`). */
  image: Partial<Record<"keda" | "metricsApiServer" | "webhooks", { tag: string }>>;
  resources: Record<"operator" | "metricServer" | "webhooks", object>;
  podSecurityContext: Record<"operator" | "metricServer" | "webhooks", object>;
  securityContext: Record<"operator" | "metricServer" | "webhooks", object>;
  prometheus: { operator: { enabled: boolean; serviceMonitor: { enabled: boolean } } };
}

/**
 * The KEDA chart takes only a tag per image (rendered `registry/repository:tag`, and used nowhere
 * else), so a digest rides in it: `2.20.2@sha256:...`. Registry and repository stay the chart's.
 */
function kedaImage(key: keyof KedaValues["image"], image: ImageVersion): KedaValues["image"] {
  const tag = pinnedTag(image);
  return tag ? { [key]: { tag } } : {};
}

export function kedaValues(monitoring: boolean): KedaValues {
  const res = { requests: { cpu: "50m", memory: "128Mi" }, limits: { memory: "512Mi" } };
  const pod = restrictedPodSecurity();
  const ctr = restrictedContainerSecurity();
  const img = chartImages.keda.images;
  return {
    image: {
      ...kedaImage("keda", img.operator),
      ...kedaImage("metricsApiServer", img.metricsApiServer),
      ...kedaImage("webhooks", img.webhooks),
    },
    resources: { operator: res, metricServer: res, webhooks: res },
    podSecurityContext: { operator: pod, metricServer: pod, webhooks: pod },
    securityContext: { operator: ctr, metricServer: ctr, webhooks: ctr },
    prometheus: { operator: { enabled: monitoring, serviceMonitor: { enabled: monitoring } } },
  };
}

/** Public VirtualService on the mesh ingress gateway: no route timeout, no retry once a stream began. */
export function gatewayVirtualServiceSpec(hostname: string, namespace: string) {
  return {
    hosts: [hostname],
    gateways: [MESH_GATEWAY],
    http: [
      {
        name: "gateway",
        route: [{ destination: { host: `gateway.${namespace}.svc.cluster.local`, port: { number: 80 } } }],
        // 0s disables the route timeout: SSE streams and long polls stay open.
        timeout: "0s",
        retries: { ...STREAM_SAFE_RETRIES },
      },
    ],
  };
}

export interface InferenceGatewayArgs {
  readonly config: InferenceConfig["gateway"];
  readonly namespace: string;
  readonly environment: Environment;
  readonly provider: k8s.Provider;
  readonly secretStore: SecretStore;
  /** The gateway image (a repoDigest from the registry in real stacks). */
  readonly image: pulumi.Input<string>;
  /** Base URL of the OpenAI-compatible backend the gateway relays to (…/v1). */
  readonly backendUrl: string;
  /** The model names that backend serves. */
  readonly models: readonly string[];
  readonly mesh: boolean;
  readonly monitoring: boolean;
  /** Pull secret (in the namespace) for the gateway image, when it comes from a private registry. */
  readonly imagePullSecret?: string;
  /** First-party callers (apps) that get a key of their own, by the name the keys file gives it. */
  readonly clients?: readonly string[];
  /** The backend scales to zero: workers retry through its cold start (gatewayEnv). */
  readonly workerRetries?: GatewayEnvInputs["workerRetries"];
  readonly dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/**
 * Service accounts of the gateway's pods. Their names carry MESH_CONTRACT's gateway prefix: the
 * mesh's default-deny allows exactly those identities to call the model servers.
 */
export const GATEWAY_SERVICE_ACCOUNTS = {
  api: `${MESH_CONTRACT.gatewayServiceAccountPrefix}`,
  worker: `${MESH_CONTRACT.gatewayServiceAccountPrefix}-worker`,
} as const;

/** The gateway's in-cluster base URL (its Service, port 80). */
export function gatewayInternalUrl(namespace: string): string {
  return `http://gateway.${namespace}.svc.cluster.local`;
}

/** The gateway: API + workers + NATS JetStream + KEDA, with generated API keys. */
export class InferenceGateway extends pulumi.ComponentResource {
  /** The generated API key of the platform's own front end (secret). */
  public readonly apiKey: pulumi.Output<string>;
  /** The generated key of each first-party client (`clients`), by name (secret). */
  public readonly clientKeys: Readonly<Record<string, pulumi.Output<string>>>;
  /** Public URL through the mesh ingress (https), or the in-cluster URL without the mesh. */
  public readonly url: string;
  /** In-cluster URL, what in-cluster callers use. */
  public readonly internalUrl: string;
  /** KEDA's chart: every ScaledObject (the model servers' too) needs its CRDs first. */
  public readonly keda: k8s.helm.v4.Chart;

  constructor(name: string, args: InferenceGatewayArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:inference:InferenceGateway", name, {}, opts);
    const { namespace: ns, environment, config } = args;
    const child = (extra: pulumi.CustomResourceOptions = {}): pulumi.CustomResourceOptions => ({
      parent: this,
      provider: args.provider,
      ...(args.dependsOn ? { dependsOn: args.dependsOn } : {}),
      ...extra,
    });
    const apiLabels = appLabels("gateway", GATEWAY_COMPONENT);
    const workerLabels = appLabels("gateway-worker", WORKER_COMPONENT);
    const natsLabels = appLabels("nats", "queue");

    // --- NATS JetStream. Not protected: protect on the chart reaches its ConfigMaps and Services, not
    // the PVCs its StatefulSet creates (Kubernetes retains those when the StatefulSet goes).
    const nats = pinnedChart(
      `${name}-nats`,
      charts.nats,
      { release: NATS_RELEASE, namespace: ns, values: natsValues(environment, args.monitoring) },
      child(),
    );
    const natsUrl = `nats://nats.${ns}.svc.cluster.local:${NATS_CLIENT_PORT}`;

    // --- KEDA in its own namespace: its metrics API server is called by the API server, outside the mesh.
    const kedaNs = platformNamespace(
      "keda",
      { meshInjection: false, podSecurity: "restricted", component: "autoscaling" },
      child(),
    );
    this.keda = pinnedChart(
      `${name}-keda`,
      charts.keda,
      { release: "keda", namespace: "keda", values: kedaValues(args.monitoring) },
      child({ dependsOn: [kedaNs] }),
    );
    const keda = this.keda;

    // --- API keys: generated (one for the front end, one per first-party client), stored only as
    // their sha256 in the keys file.
    const generate = (resourceName: string) =>
      new random.RandomPassword(resourceName, { length: 48, special: false }, { parent: this }).result;
    const keys: { name: string; key: pulumi.Output<string> }[] = [
      { name: "platform", key: generate(`${name}-api-key`) },
      ...(args.clients ?? []).map((client) => ({ name: client, key: generate(`${name}-${client}-key`) })),
    ];
    this.apiKey = pulumi.secret(keys[0]!.key);
    this.clientKeys = Object.fromEntries(keys.slice(1).map((k) => [k.name, pulumi.secret(k.key)]));
    const keysJson = pulumi.secret(
      pulumi
        .all(keys.map((k) => k.key))
        .apply((values) =>
          apiKeysFile(keys.map((k, i) => ({ name: k.name, sha256: sha256Hex(values[i]!) }))),
        ),
    );
    const keysSecret = args.secretStore.secret(
      "gateway-api-keys",
      ns,
      { [API_KEYS_FILE]: keysJson },
      {
        component: GATEWAY_COMPONENT,
      },
    );

    const hostname = config.hostname;
    this.internalUrl = gatewayInternalUrl(ns);
    this.url = args.mesh && hostname ? `https://${hostname}` : this.internalUrl;

    for (const role of ["api", "worker"] as const)
      new k8s.core.v1.ServiceAccount(
        `${name}-${role}-sa`,
        {
          metadata: {
            name: GATEWAY_SERVICE_ACCOUNTS[role],
            namespace: ns,
            labels: role === "api" ? apiLabels : workerLabels,
          },
          automountServiceAccountToken: false,
          ...(args.imagePullSecret ? { imagePullSecrets: [{ name: args.imagePullSecret }] } : {}),
        },
        child(),
      );

    const pod = (
      role: "api" | "worker",
      labels: Record<string, string>,
    ): k8s.types.input.core.v1.PodTemplateSpec => ({
      // Prometheus scrapes the metrics port in plain HTTP from outside the mesh (NetworkPolicy
      // limits who may), so the sidecar leaves that port alone.
      metadata: {
        labels,
        ...(args.mesh
          ? { annotations: { "traffic.sidecar.istio.io/excludeInboundPorts": String(GATEWAY_METRICS_PORT) } }
          : {}),
      },
      spec: {
        serviceAccountName: GATEWAY_SERVICE_ACCOUNTS[role],
        automountServiceAccountToken: false,
        securityContext: restrictedPodSecurity(),
        terminationGracePeriodSeconds: 30,
        containers: [
          {
            name: role,
            image: args.image,
            // No command/args: the image's ENTRYPOINT (node) + CMD (dist/main.js) run as built, and
            // the role comes from GATEWAY_ROLE in gatewayEnv, its one source. `args` would replace the
            // CMD and leave `node --role <role>` (test/contract.test.ts starts what the pod would run).
            env: gatewayEnv({
              role,
              natsUrl,
              backendUrl: args.backendUrl,
              models: args.models,
              jetstreamReplicas: natsReplicas(environment),
              ...(args.workerRetries ? { workerRetries: args.workerRetries } : {}),
              ...(args.monitoring ? { otlpEndpoint: OTEL_COLLECTOR_OTLP_HTTP } : {}),
              ...(role === "api" && args.mesh && hostname ? { publicBaseUrl: `https://${hostname}` } : {}),
            }),
            ports: [
              ...(role === "api" ? [{ name: "http", containerPort: GATEWAY_PORT, protocol: "TCP" }] : []),
              { name: "http-metrics", containerPort: GATEWAY_METRICS_PORT, protocol: "TCP" },
            ],
            resources:
              role === "api"
                ? { requests: { cpu: "200m", memory: "256Mi" }, limits: { memory: "512Mi" } }
                : { requests: { cpu: "100m", memory: "192Mi" }, limits: { memory: "384Mi" } },
            readinessProbe: {
              httpGet: { path: "/readyz", port: "http-metrics" },
              periodSeconds: 5,
              failureThreshold: 3,
            },
            livenessProbe: {
              httpGet: { path: "/healthz", port: "http-metrics" },
              periodSeconds: 10,
              failureThreshold: 3,
            },
            securityContext: restrictedContainerSecurity(),
            volumeMounts: [
              { name: "tmp", mountPath: "/tmp" },
              ...(role === "api" ? [{ name: "api-keys", mountPath: API_KEYS_DIR, readOnly: true }] : []),
            ],
          },
        ],
        volumes: [
          { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
          ...(role === "api" ? [keysSecret.volume("api-keys", [API_KEYS_FILE])] : []),
        ],
      },
    });

    const deps = [nats, keysSecret.resource, ...(args.dependsOn ?? [])];
    new k8s.apps.v1.Deployment(
      `${name}-api`,
      {
        metadata: { name: "gateway", namespace: ns, labels: apiLabels },
        spec: {
          replicas: config.replicas,
          selector: { matchLabels: selectorLabels("gateway") },
          template: pod("api", apiLabels),
        },
      },
      child({ dependsOn: deps }),
    );
    const worker = new k8s.apps.v1.Deployment(
      `${name}-worker`,
      {
        metadata: { name: "gateway-worker", namespace: ns, labels: workerLabels },
        // No `replicas`: KEDA owns the count.
        spec: {
          selector: { matchLabels: selectorLabels("gateway-worker") },
          template: pod("worker", workerLabels),
        },
      },
      child({ dependsOn: deps }),
    );

    new k8s.core.v1.Service(
      `${name}-service`,
      {
        metadata: { name: "gateway", namespace: ns, labels: apiLabels },
        spec: {
          selector: selectorLabels("gateway"),
          ports: [
            { name: "http", port: 80, targetPort: "http", protocol: "TCP", appProtocol: "http" },
            { name: "http-metrics", port: GATEWAY_METRICS_PORT, targetPort: "http-metrics", protocol: "TCP" },
          ],
        },
      },
      child(),
    );

    new k8s.apiextensions.CustomResource(
      `${name}-workers-scaler`,
      {
        apiVersion: "keda.sh/v1alpha1",
        kind: "ScaledObject",
        metadata: { name: "gateway-worker", namespace: ns, labels: workerLabels },
        spec: scaledObjectSpec({ target: "gateway-worker", namespace: ns, ...config.workers }),
      },
      child({ dependsOn: [worker, keda, nats] }),
    );

    if (config.replicas > 1)
      new k8s.policy.v1.PodDisruptionBudget(
        `${name}-pdb`,
        {
          metadata: { name: "gateway", namespace: ns, labels: apiLabels },
          spec: { minAvailable: 1, selector: { matchLabels: selectorLabels("gateway") } },
        },
        child(),
      );

    const promNs = { namespaceSelector: PROMETHEUS_NAMESPACES };
    const tcp = (port: number) => ({ port, protocol: "TCP" });
    new k8s.networking.v1.NetworkPolicy(
      `${name}-netpol`,
      {
        metadata: { name: "gateway", namespace: ns, labels: apiLabels },
        spec: {
          podSelector: { matchLabels: { "app.kubernetes.io/component": GATEWAY_COMPONENT } },
          policyTypes: ["Ingress"],
          ingress: [
            {
              from: [
                { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "istio-system" } } },
              ],
              ports: [tcp(GATEWAY_PORT)],
            },
            { from: [promNs], ports: [tcp(GATEWAY_METRICS_PORT)] },
          ],
        },
      },
      child(),
    );
    new k8s.networking.v1.NetworkPolicy(
      `${name}-nats-netpol`,
      {
        metadata: { name: "nats", namespace: ns, labels: natsLabels },
        spec: {
          podSelector: { matchLabels: { "app.kubernetes.io/name": "nats" } },
          policyTypes: ["Ingress"],
          ingress: [
            {
              from: [
                { podSelector: { matchLabels: { "app.kubernetes.io/component": GATEWAY_COMPONENT } } },
                { podSelector: { matchLabels: { "app.kubernetes.io/component": WORKER_COMPONENT } } },
                // JetStream cluster routes between the NATS servers.
                { podSelector: { matchLabels: { "app.kubernetes.io/name": "nats" } } },
              ],
            },
            {
              from: [
                { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "keda" } } },
                promNs,
              ],
              ports: [tcp(NATS_MONITOR_PORT), tcp(NATS_EXPORTER_PORT)],
            },
          ],
        },
      },
      child(),
    );

    if (args.mesh) {
      // Default-deny is on in the namespace: the gateway's pods may reach NATS.
      new k8s.apiextensions.CustomResource(
        `${name}-nats-authz`,
        {
          apiVersion: "security.istio.io/v1",
          kind: "AuthorizationPolicy",
          metadata: { name: "nats-clients", namespace: ns, labels: natsLabels },
          spec: {
            selector: { matchLabels: { "app.kubernetes.io/name": "nats" } },
            action: "ALLOW",
            rules: [{ from: [{ source: { namespaces: [ns] } }] }],
          },
        },
        child(),
      );
      if (hostname)
        new k8s.apiextensions.CustomResource(
          `${name}-vs`,
          {
            apiVersion: "networking.istio.io/v1beta1",
            kind: "VirtualService",
            metadata: { name: "gateway", namespace: ns, labels: apiLabels },
            spec: gatewayVirtualServiceSpec(hostname, ns),
          },
          child(),
        );
    }

    if (args.monitoring)
      new k8s.apiextensions.CustomResource(
        `${name}-monitor`,
        {
          apiVersion: "monitoring.coreos.com/v1",
          kind: "PodMonitor",
          metadata: { name: "gateway", namespace: ns, labels: apiLabels },
          spec: {
            // API and workers both serve /metrics on the metrics port.
            selector: {
              matchExpressions: [
                {
                  key: "app.kubernetes.io/component",
                  operator: "In",
                  values: [GATEWAY_COMPONENT, WORKER_COMPONENT],
                },
              ],
            },
            podMetricsEndpoints: [{ port: "http-metrics", path: "/metrics", interval: "15s" }],
          },
        },
        child(),
      );

    this.registerOutputs({ url: this.url, apiKey: this.apiKey });
  }
}
