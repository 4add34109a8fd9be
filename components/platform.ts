/**
 * The composition root: builds the platform's parts in dependency order from the validated stack
 * config. Each part can be switched off per stack; every part gets the same ClusterHandle, the same
 * SecretStore and the list of workload namespaces, and nothing else about the others.
 */
import * as path from "node:path";
import type * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { ExistingCluster } from "./cluster/existing";
import type { ClusterHandle } from "./cluster/handle";
import { K3sCluster } from "./cluster/k3s";
import { App, type GatewayAccess } from "./apps/app";
import { appDockerfile } from "./apps/schema";
import {
  externalEndpoints,
  requireSecretValue,
  type AppSecrets,
  type PlatformConfig,
  type PlatformSecrets,
} from "./config";
import { GitHubDelivery } from "./delivery/github";
import { VercelFrontend } from "./delivery/vercel";
import { NvidiaGpuStack } from "./gpu/stack";
import { defaultTag, ServiceImage, type ServiceImageArgs } from "./images/service-image";
import { InferenceStack } from "./inference/stack";
import { ServiceMesh } from "./mesh/mesh";
import { platformNamespace } from "./meta";
import { MonitoringStack, prometheusEndpoint } from "./monitoring/monitoring";
import {
  nodeRegistryAccess,
  registryCredentials,
  type NodeRegistryAccess,
  type RegistryCredentials,
} from "./registry/credentials";
import { PullSecrets } from "./registry/pull-secrets";
import { Registry, registryGatewayServer } from "./registry/registry";
import { SecretStore } from "./secrets/store";
import { CertManager } from "./tls/cert-manager";

export interface PlatformArgs {
  /** The validated stack config. */
  readonly config: PlatformConfig;
  /** Stack secrets as Pulumi secrets. */
  readonly secrets: PlatformSecrets;
  /** The apps' stack secrets (`apps:<key>`) they reference. */
  readonly appSecrets?: AppSecrets;
}

/** The name an app's key has in the gateway's keys file (and in its metrics and logs). */
export function gatewayClientName(app: string): string {
  return `app-${app}`;
}

/** Name of the ingress certificate; its TLS Secret (`<name>-tls`) is the Gateway's credentialName. */
const INGRESS_CERTIFICATE = "platform-ingress";

export class Platform extends pulumi.ComponentResource {
  public readonly cluster: ClusterHandle;
  public readonly secretStore: SecretStore;
  /** Namespaces that run the platform's workloads (mesh-injected, restricted Pod Security). */
  public readonly workloadNamespaces: readonly string[];
  /** The cluster's kubeconfig (secret), when the platform knows it. */
  public readonly kubeconfig?: pulumi.Output<string>;
  /** Registry mirror + auth for the nodes' container runtime (K3s registries.yaml), made before the cluster. */
  public readonly nodeRegistry?: NodeRegistryAccess;
  /** The NVIDIA stack, when GPUs are enabled and the cluster has GPU pools. */
  public readonly gpuStack?: NvidiaGpuStack;
  /** cert-manager and the platform's ClusterIssuer (when the registry or the mesh needs certificates). */
  public readonly tls?: CertManager;
  /** Istio, its ingress Gateway and Flagger (platform:mesh.enabled). */
  public readonly mesh?: ServiceMesh;
  /** Prometheus, Grafana, OpenTelemetry and the SLO alerts (platform:monitoring.enabled). */
  public readonly monitoring?: MonitoringStack;
  /** The private registry (endpoint, push credentials, pull dockerconfigjson). */
  public readonly registry?: Registry;
  /** Pull secret + `platform-workload` ServiceAccount in every workload namespace. */
  public readonly pullSecrets?: PullSecrets;
  /** First-party images, built and pushed; workloads deploy their `repoDigest`. */
  public readonly images: { gateway?: ServiceImage; apps: Record<string, ServiceImage> } = { apps: {} };
  /** Model services and the gateway. */
  public readonly inference: InferenceStack;
  /** The GitHub side of delivery, when `delivery.github.enabled`. */
  public readonly github?: GitHubDelivery;
  /** The Vercel front end, when `delivery.vercel.enabled`. */
  public readonly frontend?: VercelFrontend;
  /** The team's first-party apps (`platform:apps.services`), by name. */
  public readonly apps: Record<string, App> = {};

  constructor(name: string, args: PlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:index:Platform", name, {}, opts);
    const { config, secrets } = args;
    const cl = config.cluster;
    const reg = config.registry;
    const inClusterRegistry = reg.enabled && reg.mode === "in-cluster";

    // --- registry credentials: before the cluster, so K3s nodes get them in registries.yaml ---
    const prod = config.environment === "prod";
    // The generated password is state (K3s nodes carry it in registries.yaml): protected in prod.
    const registryCreds: RegistryCredentials | undefined = inClusterRegistry
      ? registryCredentials(name, { parent: this, protect: prod })
      : undefined;
    const registryAuth = !reg.enabled
      ? undefined
      : (registryCreds ?? {
          username: reg.external?.username ?? "",
          password: requireSecretValue(secrets, "registryPassword"),
        });
    this.nodeRegistry = registryAuth && nodeRegistryAccess(reg, registryAuth);

    // --- cluster ---
    this.cluster = ((): ClusterHandle => {
      switch (cl.kind) {
        case "existing":
          return new ExistingCluster(
            `${name}-cluster`,
            {
              config: cl,
              ...(cl.kubeconfigFromSecret ? { kubeconfig: requireSecretValue(secrets, "kubeconfig") } : {}),
            },
            { parent: this },
          );
        case "k3s":
          return new K3sCluster(
            `${name}-cluster`,
            {
              config: cl,
              sshPrivateKey: requireSecretValue(secrets, "sshPrivateKey"),
              // The mesh's ingress gateway serves ingress; K3s's bundled Traefik would compete for :80/:443.
              disableTraefik: config.mesh.enabled,
              ...(this.nodeRegistry ? { registry: this.nodeRegistry } : {}),
            },
            { parent: this },
          );
      }
    })();
    this.kubeconfig = this.cluster.kubeconfig;
    const provider = this.cluster.provider;
    const ready = [...this.cluster.ready];

    // --- workload namespaces and the secret store ---
    const apps = config.apps;
    this.workloadNamespaces = [config.inference.namespace, ...(apps.services.length ? [apps.namespace] : [])];
    const namespaces: k8s.core.v1.Namespace[] = this.workloadNamespaces.map((ns) =>
      platformNamespace(
        ns,
        { meshInjection: config.mesh.enabled, podSecurity: "restricted", component: "workloads" },
        { parent: this, provider, dependsOn: ready },
      ),
    );
    this.secretStore = new SecretStore(
      `${name}-secrets`,
      { provider, secrets, externalSecrets: config.secrets.externalSecrets, dependsOn: ready },
      { parent: this, dependsOn: namespaces },
    );

    // --- GPU stack ---
    if (config.gpu.enabled && this.cluster.gpuPools.length > 0)
      this.gpuStack = new NvidiaGpuStack(
        `${name}-gpu`,
        {
          provider,
          distribution: this.cluster.distribution,
          pools: this.cluster.gpuPools,
          gpu: config.gpu,
          monitoring: config.monitoring.enabled,
          dependsOn: ready,
        },
        { parent: this },
      );

    // --- certificates, mesh and monitoring ---
    // Each externally reached endpoint (registry, ingress) chooses its issuer; ACME uses DNS-01.
    const endpoints = externalEndpoints(config);
    const acme = config.tls.acme;
    if (endpoints.length > 0)
      this.tls = new CertManager(
        `${name}-tls`,
        {
          provider,
          issuers: {
            selfSigned: endpoints.some((e) => e.issuer === "self-signed"),
            ...(acme && endpoints.some((e) => e.issuer === "acme")
              ? {
                  acme: {
                    email: acme.email,
                    server: acme.server,
                    dns01: { provider: acme.dns01.provider, zones: acme.dns01.zones },
                    dnsApiToken: requireSecretValue(secrets, "acmeDnsApiToken"),
                  },
                }
              : {}),
          },
          secretStore: this.secretStore,
          replicas: prod ? 2 : 1,
          dependsOn: ready,
        },
        { parent: this },
      );
    // Prometheus's address and identity are fixed names, so the mesh (Flagger, the scrape allow)
    // can use them while the mesh is built first: Prometheus's pod then gets its cert sidecar.
    const prometheus = config.monitoring.enabled ? prometheusEndpoint() : undefined;
    // The ingress serves the gateway's hostname and each routed app's, under one certificate.
    const appHostnames = [...new Set(apps.services.flatMap((a) => (a.ingress ? [a.ingress.hostname] : [])))];
    if (config.mesh.enabled) {
      this.mesh = new ServiceMesh(
        `${name}-mesh`,
        {
          config: config.mesh,
          environment: config.environment,
          provider,
          distribution: this.cluster.distribution,
          workloadNamespaces: this.workloadNamespaces,
          ...(prometheus ? { prometheus } : {}),
          // The Gateway names its Secret up front; Istio serves it once cert-manager has issued it.
          ...(this.tls ? { tls: { credentialName: `${INGRESS_CERTIFICATE}-tls` } } : {}),
          ...(inClusterRegistry ? { extraGatewayServers: [registryGatewayServer(reg.hostname)] } : {}),
          ...(appHostnames.length ? { extraHostnames: appHostnames } : {}),
          dependsOn: [...ready, ...namespaces],
        },
        { parent: this },
      );
      if (this.tls) {
        const { secretName } = this.tls.certificate(
          INGRESS_CERTIFICATE,
          "istio-system",
          [config.mesh.ingressHostname, ...appHostnames],
          { issuer: config.tls.ingress.issuer, dependsOn: [this.mesh] },
        );
        if (secretName !== `${INGRESS_CERTIFICATE}-tls`)
          throw new Error(
            `ingress certificate secret ${secretName} does not match the Gateway's credentialName`,
          );
      }
    }
    if (config.monitoring.enabled)
      this.monitoring = new MonitoringStack(
        `${name}-monitoring`,
        {
          config: config.monitoring,
          environment: config.environment,
          provider,
          secretStore: this.secretStore,
          mesh: config.mesh.enabled,
          distribution: this.cluster.distribution,
          // cert-manager issues the Prometheus operator's webhook certificate (chart hooks are dropped).
          ...(this.tls ? { certManager: this.tls.chart } : {}),
          dependsOn: [...ready, ...(this.mesh?.ready ?? [])],
        },
        { parent: this },
      );

    // --- registry and images ---
    // An app's tag: the configured one, else the version of the package its Dockerfile builds.
    const appTag = (a: (typeof apps.services)[number]) =>
      reg.images.tag ?? defaultTag(path.posix.dirname(appDockerfile(a)));
    if (reg.enabled) {
      const registry = new Registry(
        `${name}-registry`,
        {
          config: reg,
          environment: config.environment,
          meshEnabled: config.mesh.enabled,
          provider,
          credentials: registryAuth!,
          secretStore: this.secretStore,
          ...(this.tls ? { tls: this.tls } : {}),
          dependsOn: [...ready, ...(this.mesh?.ready ?? [])],
        },
        // Not protected as a whole: protect would reach its ConfigMap, Deployment and Service. The
        // registry protects its volume itself (prod).
        { parent: this },
      );
      this.registry = registry;
      this.pullSecrets = new PullSecrets(
        `${name}-pull`,
        {
          provider,
          namespaces: this.workloadNamespaces,
          dockerConfigJson: registry.dockerConfigJson,
          secretStore: this.secretStore,
          dependsOn: namespaces,
        },
        { parent: this },
      );
      // First-party images: built from their context, pushed once the registry serves (Deployment
      // ready, Service, the ingress route and the issued Certificate) through the mesh's ingress.
      const buildImage = (
        suffix: string,
        tag: string,
        image: Pick<ServiceImageArgs, "context" | "dockerfile" | "repository" | "target" | "args">,
      ) =>
        new ServiceImage(
          `${name}-${suffix}`,
          {
            ...image,
            tag,
            platform: reg.images.platform,
            cacheFrom: reg.images.cacheFrom,
            registry: registry.auth,
          },
          {
            parent: this,
            dependsOn: [...registry.pushPath, ...(this.mesh && inClusterRegistry ? [this.mesh] : [])],
          },
        );
      if (config.inference.gateway.enabled) {
        // Built from the repository root: the workspace lockfile is the image's dependency tree.
        const dir = "services/gateway";
        this.images.gateway = buildImage("gateway", reg.images.tag ?? defaultTag(dir), {
          context: ".",
          dockerfile: `${dir}/Dockerfile`,
          repository: "platform/gateway",
        });
      }
      for (const a of apps.services)
        this.images.apps[a.name] = buildImage(`app-${a.name}`, appTag(a), {
          context: a.context,
          dockerfile: appDockerfile(a),
          repository: `apps/${a.name}`,
          ...(a.target ? { target: a.target } : {}),
          ...(Object.keys(a.buildArgs).length ? { args: a.buildArgs } : {}),
        });
    }

    // --- inference services and gateway ---
    const inference = config.inference;
    this.inference = new InferenceStack(
      `${name}-inference`,
      {
        cluster: this.cluster,
        namespace: inference.namespace,
        environment: config.environment,
        config: {
          ...inference,
          gateway: {
            ...inference.gateway,
            hostname: inference.gateway.hostname ?? config.mesh.ingressHostname,
          },
        },
        secretStore: this.secretStore,
        secrets: secrets.hfToken ? { hfToken: secrets.hfToken } : {},
        mesh: config.mesh.enabled,
        monitoring: config.monitoring.enabled,
        slo: config.monitoring.slo,
        gatewayClients: apps.services.filter((a) => a.callsGateway).map((a) => gatewayClientName(a.name)),
        // First-party images deploy by digest (config requires the registry when the gateway is on).
        ...(this.images.gateway ? { gatewayImage: this.images.gateway.repoDigest } : {}),
        ...(this.pullSecrets
          ? {
              serviceAccountName: this.pullSecrets.serviceAccountName,
              imagePullSecret: this.pullSecrets.secretName,
            }
          : {}),
        // CRDs (ServiceMonitor, VirtualService, Canary, ScaledObject) and sidecar injection first.
        dependsOn: [
          ...namespaces,
          ...(this.mesh?.ready ?? []),
          ...(this.mesh?.flagger ? [this.mesh.flagger] : []),
          ...(this.monitoring ? [this.monitoring.crds] : []),
          ...(this.pullSecrets ? [this.pullSecrets] : []),
          ...(this.gpuStack ? [this.gpuStack] : []),
        ],
      },
      { parent: this },
    );

    // --- first-party apps: after the gateway they may call, with the key it generated for each ---
    const inferenceNamespace = inference.namespace;
    for (const a of apps.services) {
      const image = this.images.apps[a.name];
      if (!image) throw new Error(`app ${a.name}: its image needs the registry`);
      const key = this.inference.gatewayClientKeys[gatewayClientName(a.name)];
      const gateway: GatewayAccess | undefined =
        a.callsGateway && key && this.inference.gatewayInternalUrl
          ? { url: this.inference.gatewayInternalUrl, namespace: inferenceNamespace, apiKey: key }
          : undefined;
      this.apps[a.name] = new App(
        `${name}-app-${a.name}`,
        {
          config: a,
          namespace: apps.namespace,
          environment: config.environment,
          provider,
          image: image.repoDigest,
          version: appTag(a),
          secretStore: this.secretStore,
          ...(args.appSecrets ? { stackSecrets: args.appSecrets } : {}),
          ...(gateway ? { gateway } : {}),
          mesh: config.mesh.enabled,
          monitoring: config.monitoring.enabled,
          slo: config.monitoring.slo,
          ...(this.pullSecrets ? { imagePullSecret: this.pullSecrets.secretName } : {}),
          dependsOn: [
            ...namespaces,
            ...(this.mesh?.ready ?? []),
            ...(this.mesh?.flagger ? [this.mesh.flagger] : []),
            ...(this.monitoring ? [this.monitoring.crds] : []),
            ...(this.pullSecrets ? [this.pullSecrets] : []),
          ],
        },
        { parent: this },
      );
    }

    // --- delivery pipeline ---
    const delivery = config.delivery;
    const gatewayUrl = this.inference.gatewayUrl ?? `https://${config.mesh.ingressHostname}`;
    if (delivery.github.enabled)
      this.github = new GitHubDelivery(
        `${name}-github`,
        {
          config: delivery.github,
          environment: config.environment,
          stack: pulumi.getStack(),
          token: requireSecretValue(secrets, "githubToken"),
          pulumiAccessToken: requireSecretValue(secrets, "pulumiAccessToken"),
          pulumiOrganization: pulumi.getOrganization(),
          gatewayUrl,
        },
        { parent: this },
      );
    if (delivery.vercel.enabled) {
      // The front end calls the gateway with the gateway's own generated key (its hash is in the
      // gateway's key file); without a gateway there is nothing to call, but the variable stays.
      const gatewayApiKey =
        this.inference.gatewayApiKey ??
        new random.RandomPassword(
          `${name}-frontend-gateway-key`,
          { length: 48, special: false },
          { parent: this },
        ).result;
      const gh = delivery.github;
      this.frontend = new VercelFrontend(
        `${name}-vercel`,
        {
          config: delivery.vercel,
          environment: config.environment,
          apiToken: requireSecretValue(secrets, "vercelApiToken"),
          ...(gh.owner && gh.repository ? { repository: `${gh.owner}/${gh.repository}` } : {}),
          productionBranch: gh.defaultBranch,
          gatewayUrl,
          gatewayApiKey,
        },
        { parent: this },
      );
    }

    this.registerOutputs({
      distribution: this.cluster.distribution,
      workloadNamespaces: this.workloadNamespaces,
      ingressHostname: this.mesh?.ingressHostname,
      grafanaUrl: this.monitoring?.grafanaUrl,
      registryEndpoint: this.registry?.endpoint,
      gatewayImage: this.images.gateway?.repoDigest,
      apps: Object.fromEntries(Object.entries(this.apps).map(([n, a]) => [n, a.publicUrl ?? a.url])),
    });
  }
}
