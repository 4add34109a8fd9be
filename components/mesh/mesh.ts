/**
 * The service mesh: Istio (base, CNI, istiod, an ingress gateway) with mesh-wide STRICT mTLS, a
 * default-deny AuthorizationPolicy in every workload namespace plus the few allows the platform
 * needs, a TLS Gateway other components bind VirtualServices to (MESH_GATEWAY), streaming-friendly
 * proxy defaults, and Flagger for progressive delivery wired to Prometheus.
 */
import type * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { Distribution } from "../cluster/handle";
import type { Environment } from "../schema-kit";
import { customResource, pinnedChart } from "../k8s-kit";
import { MESH_CONTRACT, MESH_GATEWAY, platformNamespace, type PodSecurityLevel } from "../meta";
import { chartImages, charts, pinnedRef, pinnedTag } from "../versions";
import type { MeshConfig } from "./schema";

export const ISTIO_NAMESPACE = MESH_GATEWAY.split("/")[0]!;
export const GATEWAY_NAME = MESH_GATEWAY.split("/")[1]!;
export const FLAGGER_NAMESPACE = "flagger";
/** Release (and Deployment, ServiceAccount) name of the ingress gateway. */
export const INGRESS_GATEWAY = "istio-ingressgateway";
/** The `istio` label the Gateway selects the ingress pods by. */
export const INGRESS_SELECTOR = { istio: "ingressgateway" } as const;
/** TLS Secret (in istio-system) the Gateway serves unless a certificate component supplies one. */
export const DEFAULT_TLS_SECRET = "platform-ingress-tls";

const SECURITY_V1 = "security.istio.io/v1";
// The installed schemas carry PeerAuthentication in v1beta1 only (served by Istio 1.30 alongside v1).
const SECURITY_V1BETA1 = "security.istio.io/v1beta1";
// The installed CRD schemas (@kubernetes-models/istio) carry networking v1beta1 and v1alpha3;
// Istio 1.30 serves v1beta1 for Gateway, so the preflight can validate what we render.
const NETWORKING = "networking.istio.io/v1beta1";
const NETWORKING_ALPHA = "networking.istio.io/v1alpha3";

/**
 * Pod Security level of each namespace the mesh creates, and why:
 * - istio-system is `privileged`: the istio-cni node agent (a DaemonSet here) writes the CNI plugin
 *   to host paths and programs iptables in pod network namespaces. In exchange, workload namespaces
 *   stay `restricted`: with the CNI no pod needs the NET_ADMIN istio-init container.
 * - flagger is `restricted` (the controller runs non-root, read-only, no capabilities), `baseline`
 *   when Flagger runs its bundled Prometheus, whose chart sets no seccomp profile.
 */
export function meshNamespaceLevels(ownPrometheus: boolean): Record<string, PodSecurityLevel> {
  return {
    [ISTIO_NAMESPACE]: "privileged",
    [FLAGGER_NAMESPACE]: ownPrometheus ? "baseline" : "restricted",
  };
}

/** Istio's `global.platform` for a distribution (CNI paths of K3s/k3d, kind, GKE...), if any. */
export function istioPlatform(distribution: Distribution): string | undefined {
  const known: Partial<Record<Distribution, string>> = {
    k3s: "k3s",
    k3d: "k3d",
    gke: "gke",
  };
  return known[distribution];
}

interface Resources {
  requests: { cpu: string; memory: string };
  limits: { memory: string };
}

/** Resources with a CPU limit too: where a chart default limit would otherwise stay (Helm merges maps). */
interface LimitedResources {
  requests: { cpu: string; memory: string };
  limits: { cpu: string; memory: string };
}

/** Sizes per environment: local runs on a laptop, prod has headroom. */
export function meshResources(env: Environment): {
  istiod: Resources;
  gateway: Resources;
  proxy: LimitedResources;
} {
  const big = env === "prod";
  return {
    istiod: {
      requests: { cpu: big ? "500m" : "100m", memory: big ? "1Gi" : "256Mi" },
      limits: { memory: big ? "2Gi" : "512Mi" },
    },
    gateway: {
      requests: { cpu: big ? "500m" : "100m", memory: big ? "512Mi" : "128Mi" },
      limits: { memory: big ? "1Gi" : "256Mi" },
    },
    // Every sidecar: the istiod chart's default limit is 2 CPUs per proxy, which Helm keeps unless
    // `limits.cpu` is set (maps merge), so the limit is explicit and sized to the environment.
    proxy: {
      requests: { cpu: big ? "50m" : "20m", memory: big ? "128Mi" : "64Mi" },
      limits: { cpu: big ? "1" : "500m", memory: big ? "512Mi" : "256Mi" },
    },
  };
}

export interface IstiodValues {
  global: {
    platform?: string;
    /**
     * `image` (set only with a traced digest, versions.ts `chartImages`) is a whole reference: the
     * injection templates use a value containing "/" as it is, for every sidecar and gateway.
     */
    proxy: { resources: LimitedResources; image?: string };
    proxy_init?: { image: string };
    defaultPodDisruptionBudget: { enabled: boolean };
  };
  pilot: {
    /** A whole reference too (a value containing "/"), only with a traced digest. */
    image?: string;
    autoscaleEnabled: boolean;
    replicaCount: number;
    resources: Resources;
    cni: { enabled: boolean };
    seccompProfile: { type: "RuntimeDefault" };
  };
  meshConfig: {
    accessLogFile: string;
    enablePrometheusMerge: boolean;
    defaultConfig: { holdApplicationUntilProxyStarts: boolean };
  };
}

export function istiodValues(cfg: MeshConfig, distribution: Distribution, env: Environment): IstiodValues {
  const platform = istioPlatform(distribution);
  const r = meshResources(env);
  const pilot = pinnedRef(chartImages.istiod.images.pilot);
  const proxy = pinnedRef(chartImages.istiod.images.proxy);
  return {
    global: {
      ...(platform ? { platform } : {}),
      // The ingress gateway's chart says `image: auto`: injection gives it this proxy too.
      proxy: { resources: r.proxy, ...(proxy ? { image: proxy } : {}) },
      ...(proxy ? { proxy_init: { image: proxy } } : {}),
      // A PDB (minAvailable 1) over a single istiod blocks every node drain: only with 2+ replicas.
      defaultPodDisruptionBudget: { enabled: cfg.istiodReplicas > 1 },
    },
    pilot: {
      ...(pilot ? { image: pilot } : {}),
      autoscaleEnabled: false,
      replicaCount: cfg.istiodReplicas,
      resources: r.istiod,
      // Sidecars are wired by the CNI node agent, so workload pods need no privileged init container.
      cni: { enabled: true },
      // The chart leaves it empty; the restricted profile (and the pack) want the runtime's default.
      seccompProfile: { type: "RuntimeDefault" },
    },
    meshConfig: {
      accessLogFile: "/dev/stdout",
      // Each sidecar serves app + proxy metrics on :15020 too (plain text, outside mTLS).
      enablePrometheusMerge: true,
      // The app starts only once its proxy is ready: no failed first calls to the model or NATS.
      defaultConfig: { holdApplicationUntilProxyStarts: true },
    },
  };
}

export interface CniValues {
  global: { platform?: string };
  /** A whole reference (the chart uses a value containing "/" as it is), only with a traced digest. */
  image?: string;
  resources: Resources;
}

export function cniValues(distribution: Distribution): CniValues {
  const platform = istioPlatform(distribution);
  const image = pinnedRef(chartImages.istioCni.images.installCni);
  return {
    global: platform ? { platform } : {},
    ...(image ? { image } : {}),
    resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
  };
}

export interface IngressGatewayValues {
  name: string;
  labels: Record<string, string>;
  serviceAccount: { create: boolean; name: string };
  replicaCount: number;
  autoscaling: { enabled: boolean };
  service: { type: string };
  resources: Resources;
  securityContext: {
    sysctls: { name: string; value: string }[];
    seccompProfile: { type: "RuntimeDefault" };
  };
  podDisruptionBudget?: { minAvailable: number };
}

export function ingressGatewayValues(cfg: MeshConfig, env: Environment): IngressGatewayValues {
  return {
    name: INGRESS_GATEWAY,
    labels: { ...INGRESS_SELECTOR },
    // Named explicitly: the default-deny allows trust this identity.
    serviceAccount: { create: true, name: INGRESS_GATEWAY },
    replicaCount: cfg.ingressReplicas,
    autoscaling: { enabled: false },
    service: { type: cfg.ingressServiceType },
    resources: meshResources(env).gateway,
    // Replaces the chart's pod default (only the sysctl that lets Envoy bind 80/443 unprivileged),
    // so that sysctl stays and the runtime's default seccomp profile joins it.
    securityContext: {
      sysctls: [{ name: "net.ipv4.ip_unprivileged_port_start", value: "0" }],
      seccompProfile: { type: "RuntimeDefault" },
    },
    ...(cfg.ingressReplicas > 1 ? { podDisruptionBudget: { minAvailable: 1 } } : {}),
  };
}

export interface FlaggerValues {
  /** The chart renders `repository:tag` only: a traced digest rides in the tag (`1.44.0@sha256:...`). */
  image?: { tag: string };
  meshProvider: "istio";
  metricsServer: string;
  prometheus: { install: boolean };
  crd: { create: boolean };
  podMonitor: { enabled: boolean; namespace?: string };
  securityContext: { enabled: boolean; context: Record<string, unknown> };
  resources: Resources;
}

/** URL of Flagger's bundled Prometheus, used when the monitoring stack is off. */
export const FLAGGER_OWN_PROMETHEUS = `http://flagger-prometheus.${FLAGGER_NAMESPACE}:9090`;

/**
 * Flagger's values. With the monitoring stack on, canary analysis queries its Prometheus (which
 * scrapes every sidecar, so istio_requests_total is there); with it off, Flagger installs its own
 * small Prometheus for the same metrics, so canaries keep their automatic rollback either way.
 */
export function flaggerValues(prometheus?: { url: string; namespace: string }): FlaggerValues {
  const tag = pinnedTag(chartImages.flagger.images.flagger);
  return {
    ...(tag ? { image: { tag } } : {}),
    meshProvider: "istio",
    metricsServer: prometheus?.url ?? FLAGGER_OWN_PROMETHEUS,
    prometheus: { install: !prometheus },
    // The CRDs come from the chart's crds/ directory; `crd.create` (Helm 2) would render them twice.
    crd: { create: false },
    // Its PodMonitor would be applied before the Prometheus operator's CRDs (Flagger comes first);
    // the monitoring stack's own Envoy PodMonitor already collects what the analysis reads.
    podMonitor: { enabled: false },
    securityContext: {
      enabled: true,
      context: {
        runAsNonRoot: true,
        runAsUser: 10001,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ["ALL"] },
        seccompProfile: { type: "RuntimeDefault" },
      },
    },
    resources: { requests: { cpu: "10m", memory: "64Mi" }, limits: { memory: "512Mi" } },
  };
}

/** SPIFFE principal of a service account (what AuthorizationPolicies match on). */
export function principal(namespace: string, serviceAccount: string): string {
  return `cluster.local/ns/${namespace}/sa/${serviceAccount}`;
}

export interface AuthorizationPolicySpec {
  readonly name: string;
  readonly spec: Record<string, unknown>;
}

/**
 * The authorization policies of one workload namespace: `deny-all` (an ALLOW policy that matches
 * nothing, so only the explicit allows below let traffic in), then exactly the platform's flows.
 */
export function workloadAuthorizationPolicies(
  namespace: string,
  opts: { prometheusPrincipal?: string },
): AuthorizationPolicySpec[] {
  const component = "app.kubernetes.io/component";
  const policies: AuthorizationPolicySpec[] = [
    { name: "deny-all", spec: {} },
    {
      name: "allow-ingress-to-gateway",
      spec: {
        selector: { matchLabels: { [component]: MESH_CONTRACT.gatewayComponent } },
        action: "ALLOW",
        rules: [{ from: [{ source: { principals: [principal(ISTIO_NAMESPACE, INGRESS_GATEWAY)] } }] }],
      },
    },
    {
      name: "allow-gateway-to-models",
      spec: {
        selector: { matchLabels: { [component]: MESH_CONTRACT.modelServerComponent } },
        action: "ALLOW",
        rules: [
          {
            from: [
              {
                source: {
                  // Prefix match: the gateway's API and worker service accounts.
                  principals: [principal(namespace, `${MESH_CONTRACT.gatewayServiceAccountPrefix}*`)],
                },
              },
            ],
          },
        ],
      },
    },
  ];
  if (opts.prometheusPrincipal)
    policies.push({
      name: "allow-prometheus-scrape",
      spec: {
        action: "ALLOW",
        rules: [
          {
            from: [{ source: { principals: [opts.prometheusPrincipal] } }],
            to: [{ operation: { methods: ["GET"], paths: [...MESH_CONTRACT.metricsPaths] } }],
          },
        ],
      },
    });
  return policies;
}

/**
 * Streaming: Envoy closes a stream that carries no bytes for `stream_idle_timeout` (5 min by
 * default), which cuts an SSE completion while a large model thinks. This EnvoyFilter, in the root
 * namespace so it applies to every proxy (ingress and sidecars), turns that timer off; client
 * disconnects still end streams at once. Route timeouts are off in Istio unless a VirtualService
 * sets one; the platform's routes set `0s` (gateway) or a long bound (models) and retry only
 * before a stream has started.
 */
export function streamingEnvoyFilterSpec(): Record<string, unknown> {
  return {
    configPatches: [
      {
        applyTo: "NETWORK_FILTER",
        match: {
          context: "ANY",
          listener: { filterChain: { filter: { name: "envoy.filters.network.http_connection_manager" } } },
        },
        patch: {
          operation: "MERGE",
          value: {
            typed_config: {
              "@type":
                "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
              stream_idle_timeout: "0s",
            },
          },
        },
      },
    ],
  };
}

/**
 * The ingress Gateway: HTTPS on every hostname it serves (the ingress hostname first, then the
 * first-party apps'), with the given TLS secret; plain HTTP only to redirect.
 */
export function gatewaySpec(
  hostnames: string | readonly string[],
  credentialName: pulumi.Input<string>,
  extraServers: readonly Record<string, unknown>[] = [],
): Record<string, unknown> {
  const hosts = typeof hostnames === "string" ? [hostnames] : [...new Set(hostnames)];
  return {
    selector: { ...INGRESS_SELECTOR },
    servers: [
      {
        port: { number: 443, name: "https", protocol: "HTTPS" },
        hosts,
        tls: { mode: "SIMPLE", credentialName },
      },
      {
        port: { number: 80, name: "http", protocol: "HTTP" },
        hosts,
        tls: { httpsRedirect: true },
      },
      ...extraServers,
    ],
  };
}

export interface ServiceMeshArgs {
  readonly config: MeshConfig;
  readonly environment: Environment;
  readonly provider: k8s.Provider;
  readonly distribution: Distribution;
  /** Namespaces that get default-deny and the platform's allows (already labelled for injection). */
  readonly workloadNamespaces: readonly string[];
  /** Prometheus, when the monitoring stack runs: Flagger queries it and it may scrape workloads. */
  readonly prometheus?: { readonly url: string; readonly namespace: string; readonly serviceAccount: string };
  /** TLS secret of the ingress (from a certificate component); DEFAULT_TLS_SECRET otherwise. */
  readonly tls?: { readonly credentialName: pulumi.Input<string>; readonly dependsOn?: pulumi.Resource[] };
  /** More servers on the ingress Gateway (e.g. the registry's TLS passthrough). */
  readonly extraGatewayServers?: readonly Record<string, unknown>[];
  /** More hostnames the Gateway serves over HTTPS (first-party apps'), beside the ingress hostname. */
  readonly extraHostnames?: readonly string[];
  /** Resources that must exist first (cluster ready, workload namespaces). */
  readonly dependsOn?: readonly pulumi.Resource[];
}

export class ServiceMesh extends pulumi.ComponentResource {
  /** `namespace/name` of the ingress Gateway (= MESH_GATEWAY). */
  public readonly gateway: string = MESH_GATEWAY;
  public readonly ingressHostname: string;
  /** istiod: sidecar injection works once this is ready; workloads depend on it. */
  public readonly ready: pulumi.Resource[];
  /** The Flagger chart, when installed (Canary resources depend on it for their CRD). */
  public readonly flagger?: k8s.helm.v4.Chart;

  constructor(name: string, args: ServiceMeshArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:mesh:ServiceMesh", name, {}, opts);
    const { config: cfg, provider } = args;
    const base = { parent: this, provider };
    const after = (...deps: pulumi.Input<pulumi.Resource>[]) => ({
      ...base,
      dependsOn: [...(args.dependsOn ?? []), ...deps],
    });
    const levels = meshNamespaceLevels(cfg.flagger && !args.prometheus);

    // System namespaces are never injected: the control plane and Flagger live outside the mesh.
    const istioNs = platformNamespace(
      ISTIO_NAMESPACE,
      { meshInjection: false, podSecurity: levels[ISTIO_NAMESPACE]!, component: "mesh" },
      after(),
    );
    const istioBase = pinnedChart(
      `${name}-istio-base`,
      charts.istioBase,
      { release: "istio-base", namespace: ISTIO_NAMESPACE, values: { defaultRevision: "default" } },
      after(istioNs),
    );
    const cni = pinnedChart(
      `${name}-istio-cni`,
      charts.istioCni,
      { release: "istio-cni", namespace: ISTIO_NAMESPACE, values: cniValues(args.distribution) },
      after(istioBase),
    );
    const istiod = pinnedChart(
      `${name}-istiod`,
      charts.istiod,
      {
        release: "istiod",
        namespace: ISTIO_NAMESPACE,
        values: istiodValues(cfg, args.distribution, args.environment),
      },
      after(istioBase, cni),
    );
    const ingress = pinnedChart(
      `${name}-ingress-gateway`,
      charts.istioGateway,
      {
        release: INGRESS_GATEWAY,
        namespace: ISTIO_NAMESPACE,
        values: ingressGatewayValues(cfg, args.environment),
      },
      after(istiod),
    );
    this.ready = [istiod];

    customResource(
      `${name}-peer-authentication`,
      {
        apiVersion: SECURITY_V1BETA1,
        kind: "PeerAuthentication",
        // `default` in the root namespace is the mesh-wide policy.
        objectName: "default",
        namespace: ISTIO_NAMESPACE,
        component: "mesh",
        spec: { mtls: { mode: "STRICT" } },
      },
      after(istioBase),
    );
    customResource(
      `${name}-streaming`,
      {
        apiVersion: NETWORKING_ALPHA,
        kind: "EnvoyFilter",
        objectName: "streaming-no-idle-timeout",
        namespace: ISTIO_NAMESPACE,
        component: "mesh",
        spec: streamingEnvoyFilterSpec(),
      },
      after(istioBase),
    );
    const credentialName = args.tls?.credentialName ?? DEFAULT_TLS_SECRET;
    customResource(
      `${name}-gateway`,
      {
        apiVersion: NETWORKING,
        kind: "Gateway",
        objectName: GATEWAY_NAME,
        namespace: ISTIO_NAMESPACE,
        component: "ingress",
        spec: gatewaySpec(
          [cfg.ingressHostname, ...(args.extraHostnames ?? [])],
          credentialName,
          args.extraGatewayServers,
        ),
      },
      after(ingress, ...(args.tls?.dependsOn ?? [])),
    );

    const prometheusPrincipal = args.prometheus
      ? principal(args.prometheus.namespace, args.prometheus.serviceAccount)
      : undefined;
    for (const ns of args.workloadNamespaces)
      for (const p of workloadAuthorizationPolicies(ns, prometheusPrincipal ? { prometheusPrincipal } : {}))
        customResource(
          `${name}-${ns}-${p.name}`,
          {
            apiVersion: SECURITY_V1,
            kind: "AuthorizationPolicy",
            objectName: p.name,
            namespace: ns,
            component: "mesh",
            spec: p.spec,
          },
          after(istioBase),
        );

    if (cfg.flagger) {
      const flaggerNs = platformNamespace(
        FLAGGER_NAMESPACE,
        { meshInjection: false, podSecurity: levels[FLAGGER_NAMESPACE]!, component: "delivery" },
        after(),
      );
      this.flagger = pinnedChart(
        `${name}-flagger`,
        charts.flagger,
        {
          release: "flagger",
          namespace: FLAGGER_NAMESPACE,
          values: flaggerValues(args.prometheus),
        },
        after(flaggerNs, istiod),
      );
    }

    this.ingressHostname = cfg.ingressHostname;
    this.registerOutputs({
      gateway: this.gateway,
      ingressHostname: this.ingressHostname,
      flagger: cfg.flagger,
    });
  }
}
