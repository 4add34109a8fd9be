/**
 * One first-party app on the cluster: a Deployment under restricted Pod Security (probes,
 * resources, read-only root with emptyDirs where it writes), its Service, the ingress route on the
 * mesh Gateway, the mesh and network allows it needs (ingress → app; app → inference gateway),
 * its secrets by reference, HPA and PDB, a ServiceMonitor, and a Flagger canary with automatic
 * rollback on the platform's SLOs. The decisions are the pure functions below the args.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { AppSecrets } from "../config";
import { GATEWAY_COMPONENT, GATEWAY_PORT } from "../inference/gateway";
import { customResource } from "../k8s-kit";
import { INGRESS_GATEWAY, ISTIO_NAMESPACE, principal } from "../mesh/mesh";
import { appLabels, MESH_GATEWAY, selectorLabels } from "../meta";
import type { Environment } from "../schema-kit";
import { secretKeyRef, type SecretStore } from "../secrets/store";
import {
  cpuHpaSpec,
  DEFAULT_CANARY_SLO,
  disruptionSelector,
  ENVOY_STATS_PORTS,
  flaggerCanarySpec,
  PROMETHEUS_NAMESPACES,
  restrictedContainerSecurity,
  restrictedPodSecurity,
  scrapeEndpoint,
  STREAM_SAFE_RETRIES,
  type CanarySlo,
  type CanaryTarget,
} from "../workload";
import { APP_SECRETS_NAMESPACE, GATEWAY_ENV, metricsPort, type AppConfig } from "./schema";

type PodSpec = k8s.types.input.core.v1.PodSpec;
type EnvVar = k8s.types.input.core.v1.EnvVar;

/** Component label of first-party apps (`app.kubernetes.io/component`). */
export const APP_COMPONENT = "app";
/** The port an app's Service (and Flagger's) listens on; it forwards to the app's own port. */
export const APP_SERVICE_PORT = 80;
/** Label of an app's metrics Service, which its ServiceMonitor selects. */
export const METRICS_LABEL = "platform.ai/metrics";

/** Apps start in seconds: follow load closely, scale down after a few calm minutes. */
export const APP_SCALE_BEHAVIOR = {
  scaleUp: { stabilizationWindowSeconds: 0, policies: [{ type: "Pods", value: 2, periodSeconds: 60 }] },
  scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: "Pods", value: 1, periodSeconds: 120 }] },
};

/** What the app is given to call the inference gateway. */
export interface GatewayAccess {
  /** In-cluster base URL (`http://gateway.<ns>.svc.cluster.local`). */
  readonly url: string;
  readonly namespace: string;
  /** The key the gateway generated for this app (secret); its hash is in the gateway's keys file. */
  readonly apiKey: pulumi.Input<string>;
}

export interface AppArgs {
  /** The app's entry of `platform:apps.services`. */
  readonly config: AppConfig;
  /** The apps' namespace (created by the Platform: mesh-injected, restricted). */
  readonly namespace: string;
  readonly environment: Environment;
  /** Provider of the cluster the app runs in. */
  readonly provider: k8s.Provider;
  /** The app's image by digest (the ServiceImage's repoDigest). */
  readonly image: pulumi.Input<string>;
  /** The image's tag, for the version label. */
  readonly version: string;
  readonly secretStore: SecretStore;
  /** Values of the stack secrets the app references (`apps:<key>`). */
  readonly stackSecrets?: AppSecrets;
  /** The inference gateway, when the app calls it (`callsGateway`). */
  readonly gateway?: GatewayAccess;
  /** Istio: ingress route, authorization allows, and the canary through Flagger. */
  readonly mesh: boolean;
  /** The Prometheus operator's CRDs exist: a ServiceMonitor. */
  readonly monitoring: boolean;
  /** Canary analysis thresholds (platform:monitoring.slo, like the models'). */
  readonly slo?: CanarySlo;
  /** The registry's pull secret in the namespace. */
  readonly imagePullSecret?: string;
  /** What must exist first (namespace, CRDs, the mesh's sidecar injector). */
  readonly dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/** Name of the app's Secret (its generated and stack secrets, and its gateway key). */
export function appSecretName(a: Pick<AppConfig, "name">): string {
  return `${a.name}-secrets`;
}

/** The keys of the app's Secret, one per referenced variable (the Secret key is the variable name). */
export function appSecretKeys(a: Pick<AppConfig, "secrets" | "callsGateway">): string[] {
  return [...a.secrets.map((s) => s.env), ...(a.callsGateway ? [GATEWAY_ENV.apiKey] : [])];
}

/** The container's environment: plain values, then every secret as a secretKeyRef (never a literal). */
export function appEnv(a: AppConfig, gatewayUrl?: string): EnvVar[] {
  const secretName = appSecretName(a);
  return [
    ...Object.entries(a.env)
      .sort(([x], [y]) => x.localeCompare(y))
      .map(([name, value]) => ({ name, value })),
    ...(a.callsGateway && gatewayUrl ? [{ name: GATEWAY_ENV.url, value: gatewayUrl }] : []),
    ...appSecretKeys(a).map((key) => secretKeyRef(secretName, key, key)),
  ];
}

/** Startup, readiness and liveness probes on the app port. */
export function appProbes(a: Pick<AppConfig, "probes">): {
  startup: k8s.types.input.core.v1.Probe;
  readiness: k8s.types.input.core.v1.Probe;
  liveness: k8s.types.input.core.v1.Probe;
} {
  const period = 5;
  const get = (p: string) => ({ httpGet: { path: p, port: "http" }, timeoutSeconds: 3 });
  return {
    startup: {
      ...get(a.probes.readiness),
      periodSeconds: period,
      failureThreshold: Math.ceil(a.probes.startupSeconds / period),
    },
    readiness: { ...get(a.probes.readiness), periodSeconds: period, failureThreshold: 3 },
    liveness: { ...get(a.probes.liveness ?? a.probes.readiness), periodSeconds: 10, failureThreshold: 3 },
  };
}

/** The app's pod: restricted, read-only root, an emptyDir for /tmp and each writable path. */
export function appPodSpec(
  a: AppConfig,
  inputs: { image: pulumi.Input<string>; serviceAccountName: string; gatewayUrl?: string },
): PodSpec {
  const probes = appProbes(a);
  const mp = metricsPort(a);
  const writable = [
    { name: "tmp", mountPath: "/tmp", sizeLimit: "128Mi" },
    ...a.writablePaths.map((p, i) => ({ name: `writable-${i}`, mountPath: p, sizeLimit: "512Mi" })),
  ];
  return {
    serviceAccountName: inputs.serviceAccountName,
    automountServiceAccountToken: false,
    securityContext: restrictedPodSecurity(a.runAsUser),
    terminationGracePeriodSeconds: 30,
    containers: [
      {
        name: "app",
        image: inputs.image,
        imagePullPolicy: "IfNotPresent",
        env: appEnv(a, inputs.gatewayUrl),
        ports: [
          { name: "http", containerPort: a.port, protocol: "TCP" },
          ...(mp !== undefined && mp !== a.port
            ? [{ name: "http-metrics", containerPort: mp, protocol: "TCP" }]
            : []),
        ],
        resources: {
          requests: { cpu: a.resources.cpu, memory: a.resources.memory },
          limits: { memory: a.resources.memory },
        },
        startupProbe: probes.startup,
        readinessProbe: probes.readiness,
        livenessProbe: probes.liveness,
        securityContext: restrictedContainerSecurity(a.runAsUser),
        volumeMounts: writable.map((w) => ({ name: w.name, mountPath: w.mountPath })),
      },
    ],
    volumes: writable.map((w) => ({ name: w.name, emptyDir: { sizeLimit: w.sizeLimit } })),
  };
}

/** In-cluster host of the app's Service. */
export function appHost(a: Pick<AppConfig, "name">, namespace: string): string {
  return `${a.name}.${namespace}.svc.cluster.local`;
}

/** The route of the app: its hostname and path prefix on the ingress Gateway, else in-mesh only. */
export function appRoute(a: Pick<AppConfig, "name" | "ingress">, namespace: string) {
  return {
    gateways: a.ingress ? [MESH_GATEWAY] : ["mesh"],
    hosts: a.ingress ? [a.ingress.hostname] : [appHost(a, namespace)],
    ...(a.ingress ? { match: [{ uri: { prefix: a.ingress.path } }] } : {}),
    // 0s: no route timeout, so streamed answers (SSE) are never cut by the route.
    timeout: "0s",
    retries: { ...STREAM_SAFE_RETRIES },
  };
}

/** VirtualService of an app without canary (Flagger generates it otherwise). */
export function appVirtualServiceSpec(a: AppConfig, namespace: string) {
  const { match, ...route } = appRoute(a, namespace);
  return {
    hosts: route.hosts,
    gateways: route.gateways,
    http: [
      {
        name: a.name,
        ...(match ? { match } : {}),
        route: [{ destination: { host: appHost(a, namespace), port: { number: APP_SERVICE_PORT } } }],
        timeout: route.timeout,
        retries: route.retries,
      },
    ],
  };
}

/** What Flagger needs of the app: its Deployment and HPA, how long a pod may start, its route. */
export function appCanaryTarget(a: AppConfig, namespace: string): CanaryTarget {
  return {
    name: a.name,
    // Pulling the image and the startup probe's budget, with a margin.
    progressDeadlineSeconds: 120 + a.probes.startupSeconds,
    service: { port: APP_SERVICE_PORT, targetPort: a.port, portName: "http", ...appRoute(a, namespace) },
    canary: a.canary,
  };
}

/** Ingress to the app's pods: the ingress gateway on the app port (when routed), Prometheus on metrics. */
export function appNetworkPolicySpec(
  a: AppConfig,
  mesh: boolean,
): k8s.types.input.networking.v1.NetworkPolicySpec {
  const tcp = (port: number) => ({ port, protocol: "TCP" });
  const mp = metricsPort(a);
  const scraped = [...(mp !== undefined ? [mp] : []), ...(mesh ? ENVOY_STATS_PORTS : [])];
  return {
    // The instance label survives Flagger's copy, so primary and canary pods are both covered.
    podSelector: { matchLabels: { "app.kubernetes.io/instance": a.name } },
    policyTypes: ["Ingress"],
    ingress: [
      ...(a.ingress
        ? [
            {
              from: [
                { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": ISTIO_NAMESPACE } } },
              ],
              ports: [tcp(a.port)],
            },
          ]
        : []),
      ...(scraped.length
        ? [{ from: [{ namespaceSelector: PROMETHEUS_NAMESPACES }], ports: [...new Set(scraped)].map(tcp) }]
        : []),
    ],
  };
}

/** In the gateway's namespace: the app's pods may reach the gateway's API port. */
export function gatewayNetworkPolicySpec(
  a: Pick<AppConfig, "name">,
  appNamespace: string,
): k8s.types.input.networking.v1.NetworkPolicySpec {
  return {
    podSelector: { matchLabels: { "app.kubernetes.io/component": GATEWAY_COMPONENT } },
    policyTypes: ["Ingress"],
    ingress: [
      {
        from: [
          {
            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": appNamespace } },
            podSelector: { matchLabels: { "app.kubernetes.io/instance": a.name } },
          },
        ],
        ports: [{ port: GATEWAY_PORT, protocol: "TCP" }],
      },
    ],
  };
}

/**
 * The mesh allows the app needs beside each namespace's default-deny: the ingress gateway may call
 * it (when routed), and its service account may call the inference gateway (when it does).
 */
export function appAuthorizationPolicies(
  a: AppConfig,
  namespace: string,
  gatewayNamespace?: string,
): { name: string; namespace: string; spec: Record<string, unknown> }[] {
  return [
    ...(a.ingress
      ? [
          {
            name: `allow-ingress-to-${a.name}`,
            namespace,
            spec: {
              selector: { matchLabels: { "app.kubernetes.io/instance": a.name } },
              action: "ALLOW",
              rules: [{ from: [{ source: { principals: [principal(ISTIO_NAMESPACE, INGRESS_GATEWAY)] } }] }],
            },
          },
        ]
      : []),
    ...(a.callsGateway && gatewayNamespace
      ? [
          {
            name: `allow-${a.name}-to-gateway`,
            namespace: gatewayNamespace,
            spec: {
              selector: { matchLabels: { "app.kubernetes.io/component": GATEWAY_COMPONENT } },
              action: "ALLOW",
              rules: [
                {
                  from: [{ source: { principals: [principal(namespace, a.name)] } }],
                  to: [{ operation: { ports: [String(GATEWAY_PORT)] } }],
                },
              ],
            },
          },
        ]
      : []),
  ];
}

export class App extends pulumi.ComponentResource {
  /** In-cluster URL of the app's Service. */
  public readonly url: string;
  /** `https://<hostname><path>` when routed on the ingress. */
  public readonly publicUrl?: string;
  public readonly deployment: k8s.apps.v1.Deployment;

  constructor(name: string, args: AppArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:apps:App", name, {}, opts);
    const a = args.config;
    const ns = args.namespace;
    if (a.callsGateway && !args.gateway)
      throw new Error(`app ${a.name} calls the gateway, which is not there`);
    if (a.canary.enabled && !args.mesh) throw new Error(`app ${a.name}: canary needs the mesh`);
    const labels = appLabels(a.name, APP_COMPONENT, args.version);
    const meta = (n: string, l: Record<string, string> = labels, namespace = ns) => ({
      name: n,
      namespace,
      labels: l,
    });
    const child = (extra: pulumi.CustomResourceOptions = {}): pulumi.CustomResourceOptions => ({
      parent: this,
      provider: args.provider,
      ...(args.dependsOn ? { dependsOn: args.dependsOn } : {}),
      ...extra,
    });

    // --- identity and secrets: its own service account (the mesh allows name it), its own Secret.
    const sa = new k8s.core.v1.ServiceAccount(
      `${name}-sa`,
      {
        metadata: meta(a.name),
        automountServiceAccountToken: false,
        ...(args.imagePullSecret ? { imagePullSecrets: [{ name: args.imagePullSecret }] } : {}),
      },
      child(),
    );
    const data: Record<string, pulumi.Input<string>> = {};
    for (const s of a.secrets) {
      if (s.generate)
        data[s.env] = new random.RandomPassword(
          `${name}-${s.env.toLowerCase().replace(/_/g, "-")}`,
          { length: s.generate.length, special: false },
          { parent: this },
        ).result;
      else {
        const key = `${APP_SECRETS_NAMESPACE}:${s.stackSecret!}`;
        const value = args.stackSecrets?.[key];
        if (!value) throw new Error(`app ${a.name}: stack secret ${key} was not read`);
        data[s.env] = value;
      }
    }
    if (a.callsGateway && args.gateway) data[GATEWAY_ENV.apiKey] = args.gateway.apiKey;
    const secret =
      Object.keys(data).length > 0
        ? args.secretStore.secret(appSecretName(a), ns, data, {
            component: APP_COMPONENT,
            ...(args.dependsOn ? { dependsOn: args.dependsOn } : {}),
          })
        : undefined;

    // --- the Deployment (no `replicas`: the HPA owns the count, Flagger the primary's).
    const mp = metricsPort(a);
    const separateMetrics = mp !== undefined && mp !== a.port;
    this.deployment = new k8s.apps.v1.Deployment(
      `${name}-deployment`,
      {
        metadata: meta(a.name),
        spec: {
          selector: { matchLabels: selectorLabels(a.name) },
          strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
          template: {
            metadata: {
              labels,
              annotations: {
                "kubectl.kubernetes.io/default-container": "app",
                // Prometheus scrapes a separate metrics port in plain HTTP, outside the mesh.
                ...(args.mesh && separateMetrics
                  ? { "traffic.sidecar.istio.io/excludeInboundPorts": String(mp) }
                  : {}),
              },
            },
            spec: appPodSpec(a, {
              image: args.image,
              serviceAccountName: a.name,
              ...(args.gateway ? { gatewayUrl: args.gateway.url } : {}),
            }),
          },
        },
      },
      child({ dependsOn: [sa, ...(secret ? [secret.resource] : []), ...(args.dependsOn ?? [])] }),
    );

    const hpa = new k8s.autoscaling.v2.HorizontalPodAutoscaler(
      `${name}-hpa`,
      { metadata: meta(a.name), spec: cpuHpaSpec(a.name, a.replicas, APP_SCALE_BEHAVIOR) },
      child({ dependsOn: [this.deployment] }),
    );
    if (a.replicas.max > 1)
      new k8s.policy.v1.PodDisruptionBudget(
        `${name}-pdb`,
        {
          metadata: meta(a.name),
          spec: { minAvailable: 1, selector: { matchLabels: disruptionSelector(a.name, a.canary.enabled) } },
        },
        child(),
      );

    new k8s.networking.v1.NetworkPolicy(
      `${name}-netpol`,
      { metadata: meta(a.name), spec: appNetworkPolicySpec(a, args.mesh) },
      child(),
    );
    if (a.callsGateway && args.gateway)
      new k8s.networking.v1.NetworkPolicy(
        `${name}-gateway-netpol`,
        {
          metadata: meta(`gateway-from-${a.name}`, labels, args.gateway.namespace),
          spec: gatewayNetworkPolicySpec(a, ns),
        },
        child(),
      );

    // --- the Service (Flagger owns `<name>`, `-primary` and `-canary` with canary on).
    const canary = a.canary.enabled;
    if (!canary)
      new k8s.core.v1.Service(
        `${name}-service`,
        {
          metadata: meta(a.name),
          spec: {
            selector: selectorLabels(a.name),
            ports: [
              {
                name: "http",
                port: APP_SERVICE_PORT,
                targetPort: "http",
                protocol: "TCP",
                appProtocol: "http",
              },
            ],
          },
        },
        child(),
      );

    if (args.mesh) {
      for (const p of appAuthorizationPolicies(a, ns, args.gateway?.namespace))
        customResource(
          `${name}-${p.name}`,
          {
            apiVersion: "security.istio.io/v1",
            kind: "AuthorizationPolicy",
            objectName: p.name,
            namespace: p.namespace,
            component: "mesh",
            spec: p.spec,
          },
          child(),
        );
      if (!canary)
        customResource(
          `${name}-vs`,
          {
            apiVersion: "networking.istio.io/v1beta1",
            kind: "VirtualService",
            objectName: a.name,
            namespace: ns,
            component: APP_COMPONENT,
            spec: appVirtualServiceSpec(a, ns),
          },
          child(),
        );
      else
        customResource(
          `${name}-canary`,
          {
            apiVersion: "flagger.app/v1beta1",
            kind: "Canary",
            objectName: a.name,
            namespace: ns,
            component: APP_COMPONENT,
            spec: { ...flaggerCanarySpec(appCanaryTarget(a, ns), args.slo ?? DEFAULT_CANARY_SLO) },
          },
          child({ dependsOn: [this.deployment, hpa, ...(args.dependsOn ?? [])] }),
        );
    }

    if (args.monitoring && mp !== undefined) {
      // A Service of its own for scraping: Flagger owns the app's Services with canary on.
      const metricsLabels = { ...labels, [METRICS_LABEL]: a.name };
      new k8s.core.v1.Service(
        `${name}-metrics`,
        {
          metadata: meta(`${a.name}-metrics`, metricsLabels),
          spec: {
            clusterIP: "None",
            selector: { "app.kubernetes.io/instance": a.name },
            ports: [{ name: "http-metrics", port: mp, targetPort: mp, protocol: "TCP" }],
          },
        },
        child(),
      );
      customResource(
        `${name}-monitor`,
        {
          apiVersion: "monitoring.coreos.com/v1",
          kind: "ServiceMonitor",
          objectName: a.name,
          namespace: ns,
          component: APP_COMPONENT,
          spec: {
            selector: { matchLabels: { [METRICS_LABEL]: a.name } },
            endpoints: [scrapeEndpoint(args.mesh && !separateMetrics, a.metrics!.path)],
          },
        },
        child(),
      );
    }

    this.url = `http://${appHost(a, ns)}`;
    if (a.ingress)
      this.publicUrl = `https://${a.ingress.hostname}${a.ingress.path === "/" ? "" : a.ingress.path}`;
    this.registerOutputs({ url: this.url, ...(this.publicUrl ? { publicUrl: this.publicUrl } : {}) });
  }
}
