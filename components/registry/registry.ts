/**
 * The platform's private registry: CNCF Distribution in the cluster (TLS from cert-manager,
 * htpasswd auth, a persistent volume, exposed by SNI passthrough on the mesh ingress gateway), or
 * an external registry (GHCR, ECR, ...) reached with credentials from stack secrets. Either way it
 * hands out one endpoint, push credentials and the pull `.dockerconfigjson`.
 */
import { createHash } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import YAML from "yaml";
import type { Environment } from "../schema-kit";
import { appLabels, MESH_GATEWAY, platformNamespace, selectorLabels } from "../meta";
import type { SecretStore } from "../secrets/store";
import type { CertManager } from "../tls/cert-manager";
import { imageRef, images } from "../versions";
import { dockerConfigJson, type RegistryAuth, type RegistryCredentials } from "./credentials";
import type { RegistryConfig } from "./schema";

export const REGISTRY_PORT = 5000;
const DATA_DIR = "/var/lib/registry";
const AUTH_DIR = "/auth";
const CERT_DIR = "/certs";
/** Where the image's default command reads config.yml. */
const CONFIG_DIR = "/etc/distribution";
/** The registry image runs as root by default; any fixed non-root uid works for it. */
const REGISTRY_UID = 1000;

/**
 * Distribution's config.yml (no secrets: the htpasswd and TLS key are files from Secrets). A file
 * rather than REGISTRY_* env, whose names (REGISTRY_AUTH...) read as credentials to every scanner.
 * One replica, so the upload-signing `http.secret` may be generated at start.
 */
export function registryConfigFile(): string {
  return YAML.stringify({
    version: 0.1,
    log: { level: "info", fields: { service: "registry" } },
    storage: { filesystem: { rootdirectory: DATA_DIR }, delete: { enabled: true } },
    http: {
      addr: `:${REGISTRY_PORT}`,
      tls: { certificate: `${CERT_DIR}/tls.crt`, key: `${CERT_DIR}/tls.key` },
      headers: { "X-Content-Type-Options": ["nosniff"] },
    },
    auth: { htpasswd: { realm: "ai-delivery-platform", path: `${AUTH_DIR}/htpasswd` } },
  });
}

export interface RegistryPodInputs {
  readonly image: string;
  readonly configMap: string;
  readonly htpasswdSecret: string;
  readonly tlsSecret: string;
  readonly pvcName: string;
}

/** The registry's pod template spec: restricted security context, probes, resources, file mounts. */
export function registryPodSpec(p: RegistryPodInputs): k8s.types.input.core.v1.PodSpec {
  const probe = (periodSeconds: number): k8s.types.input.core.v1.Probe => ({
    // `/` answers 200 without credentials; kubelet does not verify the serving certificate.
    httpGet: { path: "/", port: "https", scheme: "HTTPS" },
    periodSeconds,
    timeoutSeconds: 3,
    failureThreshold: 3,
  });
  return {
    automountServiceAccountToken: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: REGISTRY_UID,
      runAsGroup: REGISTRY_UID,
      fsGroup: REGISTRY_UID,
      seccompProfile: { type: "RuntimeDefault" },
    },
    containers: [
      {
        name: "registry",
        image: p.image,
        ports: [{ name: "https", containerPort: REGISTRY_PORT, protocol: "TCP" }],
        readinessProbe: probe(5),
        livenessProbe: { ...probe(15), initialDelaySeconds: 10 },
        resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "512Mi" } },
        securityContext: {
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          runAsNonRoot: true,
          capabilities: { drop: ["ALL"] },
          seccompProfile: { type: "RuntimeDefault" },
        },
        volumeMounts: [
          { name: "config", mountPath: CONFIG_DIR, readOnly: true },
          { name: "data", mountPath: DATA_DIR },
          { name: "auth", mountPath: AUTH_DIR, readOnly: true },
          { name: "tls", mountPath: CERT_DIR, readOnly: true },
          { name: "tmp", mountPath: "/tmp" },
        ],
      },
    ],
    volumes: [
      {
        name: "config",
        configMap: { name: p.configMap, items: [{ key: "config.yml", path: "config.yml" }] },
      },
      { name: "data", persistentVolumeClaim: { claimName: p.pvcName } },
      // Files readable by the registry's group (fsGroup); 0440 since the uid does not own them.
      {
        name: "auth",
        secret: {
          secretName: p.htpasswdSecret,
          defaultMode: 0o440,
          items: [{ key: "htpasswd", path: "htpasswd" }],
        },
      },
      {
        name: "tls",
        secret: {
          secretName: p.tlsSecret,
          defaultMode: 0o440,
          items: [
            { key: "tls.crt", path: "tls.crt" },
            { key: "tls.key", path: "tls.key" },
          ],
        },
      },
      { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
    ],
  };
}

/**
 * The server entry the mesh's ingress Gateway needs for the registry: TLS passed through by SNI,
 * so the registry's own certificate reaches clients and blob uploads are not re-buffered.
 */
export function registryGatewayServer(hostname: string) {
  return {
    port: { number: 443, name: "tls-registry", protocol: "TLS" },
    hosts: [`*/${hostname}`],
    tls: { mode: "PASSTHROUGH" },
  };
}

/** VirtualService spec routing `hostname` (SNI) from the mesh ingress gateway to the registry. */
export function registryVirtualServiceSpec(hostname: string, serviceHost: string, servicePort: number) {
  return {
    hosts: [hostname],
    gateways: [MESH_GATEWAY],
    tls: [
      {
        match: [{ port: 443, sniHosts: [hostname] }],
        route: [{ destination: { host: serviceHost, port: { number: servicePort } } }],
      },
    ],
  };
}

export interface RegistryArgs {
  /** The registry section of the stack config. */
  readonly config: RegistryConfig;
  readonly environment: Environment;
  /** Expose through the mesh ingress gateway (else a LoadBalancer Service). */
  readonly meshEnabled: boolean;
  /** Provider of the cluster (in-cluster mode). */
  readonly provider: k8s.Provider;
  /**
   * In-cluster: the generated credentials (see registryCredentials). External: username from config
   * and the `platform:registryPassword` secret, with `htpasswd` unused.
   */
  readonly credentials: Pick<RegistryCredentials, "username" | "password"> &
    Partial<Pick<RegistryCredentials, "htpasswd">>;
  /** Where the htpasswd Secret is written. */
  readonly secretStore: SecretStore;
  /** Issues the registry's serving certificate (in-cluster mode). */
  readonly tls?: CertManager;
  /** Resources the registry's objects wait for (cluster ready). */
  readonly dependsOn?: readonly pulumi.Resource[];
}

/** A private registry: in-cluster Distribution or an external one. */
export class Registry extends pulumi.ComponentResource {
  /** Registry host as image references name it (`registry.example.org`, `ghcr.io`). */
  public readonly endpoint: string;
  /** Server, username and password for pushes; a Pulumi secret. */
  public readonly pushCredentials: pulumi.Output<{ server: string; username: string; password: string }>;
  /** The `.dockerconfigjson` for pull secrets; a Pulumi secret. */
  public readonly dockerConfigJson: pulumi.Output<string>;
  /** Push/pull auth: what the image builds log in with and the pull secrets hold. */
  public readonly auth: RegistryAuth;
  /** Namespace of the in-cluster registry (undefined in external mode). */
  public readonly namespace?: string;
  /**
   * What a push needs to be serving (in-cluster): the Deployment (awaited until its pod is ready),
   * its Service, the ingress route (VirtualService) and the Certificate (awaited until Ready). An
   * image push depends on these, not on the component as a whole.
   */
  public readonly pushPath: pulumi.Resource[] = [];

  constructor(name: string, args: RegistryArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:registry:Registry", name, {}, opts);
    const { config, credentials } = args;
    const external = config.mode === "external";
    if (external && !config.external)
      throw new Error("platform:registry.external is required in external mode (server and username)");
    this.endpoint = external ? config.external!.server : config.hostname;
    this.auth = {
      server: this.endpoint,
      username: credentials.username,
      password: pulumi.secret(credentials.password),
    };
    this.pushCredentials = pulumi.secret(
      pulumi
        .all([credentials.username, credentials.password])
        .apply(([username, password]) => ({ server: this.endpoint, username, password })),
    );
    this.dockerConfigJson = dockerConfigJson(this.auth);

    if (!external) {
      if (!args.tls) throw new Error("an in-cluster registry needs cert-manager for its certificate");
      if (!credentials.htpasswd)
        throw new Error("an in-cluster registry needs the htpasswd of registryCredentials()");
      this.namespace = config.namespace;
      this.inCluster(name, args, credentials.htpasswd, args.tls);
    }

    this.registerOutputs({
      endpoint: this.endpoint,
      namespace: this.namespace,
      pushCredentials: this.pushCredentials,
      dockerConfigJson: this.dockerConfigJson,
    });
  }

  private inCluster(
    name: string,
    args: RegistryArgs,
    htpasswd: pulumi.Output<string>,
    tls: CertManager,
  ): void {
    const { config } = args;
    const ns = config.namespace;
    const k8sOpts = { parent: this, provider: args.provider };
    const labels = appLabels("registry", "registry", images.registry.tag);
    const namespace = platformNamespace(
      ns,
      { meshInjection: args.meshEnabled, podSecurity: "restricted", component: "registry" },
      { ...k8sOpts, dependsOn: [...(args.dependsOn ?? [])] },
    );
    const after = { ...k8sOpts, dependsOn: [namespace] };

    const htpasswdSecret = args.secretStore.secret(
      "registry-htpasswd",
      ns,
      { htpasswd },
      { component: "registry", dependsOn: [namespace] },
    );
    const { secretName: tlsSecret, certificate } = tls.certificate("registry", ns, [config.hostname], {
      issuer: config.tls.issuer,
      dependsOn: [namespace],
    });
    const configFile = registryConfigFile();
    const configMap = new k8s.core.v1.ConfigMap(
      `${name}-config`,
      { metadata: { name: "registry-config", namespace: ns, labels }, data: { "config.yml": configFile } },
      after,
    );
    const pvc = new k8s.core.v1.PersistentVolumeClaim(
      `${name}-data`,
      {
        metadata: { name: "registry-data", namespace: ns, labels },
        spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: config.storageSize } } },
      },
      // Losing the volume loses every pushed image: protected in prod (the volume only: the
      // ConfigMap, Deployment and Service are replaced freely).
      { ...after, protect: args.environment === "prod" },
    );
    const deployment = new k8s.apps.v1.Deployment(
      `${name}-deployment`,
      {
        metadata: { name: "registry", namespace: ns, labels },
        spec: {
          replicas: 1,
          // A ReadWriteOnce volume cannot be attached to two pods during a rolling update.
          strategy: { type: "Recreate" },
          selector: { matchLabels: selectorLabels("registry") },
          template: {
            metadata: {
              labels,
              // Config changes roll the pod (a ConfigMap edit alone would not).
              annotations: {
                "platform.ai/config-sha256": createHash("sha256")
                  .update(configFile)
                  .digest("hex")
                  .slice(0, 16),
              },
            },
            spec: registryPodSpec({
              image: imageRef(images.registry, true),
              configMap: "registry-config",
              htpasswdSecret: htpasswdSecret.name,
              tlsSecret,
              pvcName: "registry-data",
            }),
          },
        },
      },
      // After its Certificate: the pod mounts the TLS Secret cert-manager writes from it.
      { ...after, dependsOn: [namespace, configMap, pvc, htpasswdSecret.resource, certificate] },
    );
    const servicePort = 443;
    const service = new k8s.core.v1.Service(
      `${name}-service`,
      {
        metadata: { name: "registry", namespace: ns, labels },
        spec: {
          // Without the mesh, nodes reach the registry on a LoadBalancer (K3s ServiceLB, cloud LB).
          type: args.meshEnabled ? "ClusterIP" : "LoadBalancer",
          selector: selectorLabels("registry"),
          ports: [{ name: "https", port: servicePort, targetPort: "https", protocol: "TCP" }],
        },
      },
      after,
    );
    this.pushPath.push(certificate, deployment, service);
    if (args.meshEnabled)
      this.pushPath.push(
        new k8s.apiextensions.CustomResource(
          `${name}-virtualservice`,
          {
            apiVersion: "networking.istio.io/v1beta1", // the version the schema package covers
            kind: "VirtualService",
            metadata: { name: "registry", namespace: ns, labels },
            spec: registryVirtualServiceSpec(
              config.hostname,
              `registry.${ns}.svc.cluster.local`,
              servicePort,
            ),
          },
          after,
        ),
      );
  }
}
