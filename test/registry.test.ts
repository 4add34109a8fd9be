import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import YAML from "yaml";
import { describe, expect, it } from "vitest";
import { ConfigError, parsePlatformConfig } from "../components/config";
import { MESH_GATEWAY } from "../components/meta";
import {
  dockerConfigDocument,
  nodeRegistryAccess,
  REGISTRY_USERNAME,
} from "../components/registry/credentials";
import { PULL_SECRET_NAME, WORKLOAD_SERVICE_ACCOUNT } from "../components/registry/pull-secrets";
import { Registry, registryConfigFile, registryGatewayServer } from "../components/registry/registry";
import { registrySchema } from "../components/registry/schema";
import { SecretStore } from "../components/secrets/store";
import { images } from "../components/versions";
import { isSecretWrapped, render, renderStack, type Rendered } from "./harness";
import { listStacks } from "../tools/preflight/stack-config";
import { committedConfig, existingClusterFor, unexpectedMandatory } from "./stack-overrides";

const SECRET = "kubernetes:core/v1:Secret";
const DEPLOYMENT = "kubernetes:apps/v1:Deployment";
const PVC = "kubernetes:core/v1:PersistentVolumeClaim";
const ISSUER = "kubernetes:cert-manager.io/v1:ClusterIssuer";
const CERT = "kubernetes:cert-manager.io/v1:Certificate";
const VS = "kubernetes:networking.istio.io/v1beta1:VirtualService";
const SA = "kubernetes:core/v1:ServiceAccount";
const CONFIGMAP = "kubernetes:core/v1:ConfigMap";

const stacks: Record<string, Promise<Awaited<ReturnType<typeof renderStack>>>> = {};
function stack(name: string) {
  stacks[name] ??= renderStack(
    name,
    // K3s stacks describe hosts; the same stacks on an existing cluster exercise everything else.
    committedConfig(name).cluster.kind === "k3s" ? { overrides: existingClusterFor(name) } : {},
  );
  return stacks[name];
}

/** A Secret's stringData as the engine receives it: the whole map is wrapped when any value is secret. */
function secretData(r: Rendered, name: string): unknown {
  return r.get(SECRET, name).inputs["stringData"];
}

describe("in-cluster registry", () => {
  it("starts after the Certificate whose TLS Secret it mounts", async () => {
    const r = await stack("dev");
    const deployment = r.get(DEPLOYMENT, "dev-registry-deployment");
    const cert = r
      .ofType("kubernetes:cert-manager.io/v1:Certificate")
      .find((c) => r.plain(c).metadata.namespace === "registry");
    expect(cert).toBeDefined();
    expect(deployment.dependsOn).toContain(cert!.urn);
    const volumes = r.plain(deployment).spec.template.spec.volumes as { secret?: { secretName: string } }[];
    expect(volumes.map((v) => v.secret?.secretName)).toContain(r.plain(cert!).spec.secretName);
  });

  it("runs the pinned CNCF Distribution image, restricted, with probes and resources", async () => {
    const r = await stack("local");
    const d = r.plain(r.get(DEPLOYMENT, "local-registry-deployment"));
    const pod = d.spec.template.spec;
    const c = pod.containers[0];
    // ghcr.io's copy: the digest traced for 3.1.1 is its; pinned on every stack, tag kept beside it.
    expect(images.registry).toMatchObject({ repository: "ghcr.io/distribution/distribution", tag: "3.1.1" });
    expect(c.image).toBe(`ghcr.io/distribution/distribution:3.1.1@${images.registry.digest}`);
    expect(d.spec.replicas).toBe(1);
    expect(d.spec.strategy.type).toBe("Recreate");
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(c.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
    expect(c.readinessProbe.httpGet.scheme).toBe("HTTPS");
    expect(c.livenessProbe).toBeDefined();
    expect(c.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(c.resources.limits.memory).toBeDefined();
  });

  it("configures htpasswd auth and TLS in config.yml from mounted files, with no env", async () => {
    const r = await stack("local");
    const pod = r.plain(r.get(DEPLOYMENT, "local-registry-deployment")).spec.template.spec;
    expect(pod.containers[0].env).toBeUndefined();
    const file = YAML.parse(
      String(r.plain(r.get(CONFIGMAP, "local-registry-config")).data["config.yml"]),
    ) as {
      auth: unknown;
      http: { tls: unknown };
    };
    expect(file.auth).toEqual({ htpasswd: { realm: "ai-delivery-platform", path: "/auth/htpasswd" } });
    expect(file.http.tls).toEqual({ certificate: "/certs/tls.crt", key: "/certs/tls.key" });
    expect(registryConfigFile()).not.toMatch(/pfcanary|\$2a\$/);
    const volumes = Object.fromEntries((pod.volumes as { name: string }[]).map((v) => [v.name, v]));
    expect(volumes["config"]).toMatchObject({ configMap: { name: "registry-config" } });
    expect(volumes["auth"]).toMatchObject({ secret: { secretName: "registry-htpasswd" } });
    expect(volumes["tls"]).toMatchObject({ secret: { secretName: "registry-tls" } });
    expect(volumes["data"]).toMatchObject({ persistentVolumeClaim: { claimName: "registry-data" } });
    const mounts = Object.fromEntries(
      (pod.containers[0].volumeMounts as { name: string; mountPath: string }[]).map((m) => [
        m.name,
        m.mountPath,
      ]),
    );
    expect(mounts).toMatchObject({ config: "/etc/distribution", auth: "/auth", tls: "/certs" });
  });

  it("keeps the htpasswd (bcrypt of the generated password) wrapped as a secret", async () => {
    const r = await stack("local");
    const data = secretData(r, "registry-registry-htpasswd");
    expect(isSecretWrapped(data)).toBe(true);
    const plain = r.plain(r.get(SECRET, "registry-registry-htpasswd"));
    expect(plain.stringData.htpasswd).toMatch(new RegExp(`^${REGISTRY_USERNAME}:\\$2a\\$`));
    expect(r.plan.summary.secretLeaks).toBe(0);
  });

  it("protects its volume in prod only", async () => {
    for (const [name, protect] of [
      ["local", false],
      ["dev", false],
      ["prod", true],
    ] as const) {
      const r = await stack(name);
      const pvc = r.get(PVC, `${name}-registry-data`);
      expect(pvc.protect, name).toBe(protect);
    }
    const prod = await stack("prod");
    expect(prod.plain(prod.get(PVC, "prod-registry-data")).spec.resources.requests.storage).toBe("200Gi");
    // Not the component: protect would reach its ConfigMap, Deployment and Service.
    expect(prod.get("platform:registry:Registry", "prod-registry").protect).toBe(false);
    for (const [type, n] of [
      [CONFIGMAP, "prod-registry-config"],
      [DEPLOYMENT, "prod-registry-deployment"],
      ["kubernetes:core/v1:Service", "prod-registry-service"],
    ] as const)
      expect(prod.get(type, n).protect, n).toBe(false);
  });

  it("is reached by SNI passthrough on the mesh ingress gateway", async () => {
    const r = await stack("prod");
    const vs = r.plain(r.get(VS, "prod-registry-virtualservice"));
    expect(vs.spec.gateways).toEqual([MESH_GATEWAY]);
    expect(vs.spec.hosts).toEqual(["registry.example.org"]);
    expect(vs.spec.tls[0].match[0].sniHosts).toEqual(["registry.example.org"]);
    expect(vs.spec.tls[0].route[0].destination.host).toBe("registry.registry.svc.cluster.local");
    expect(registryGatewayServer("registry.example.org").tls.mode).toBe("PASSTHROUGH");
    expect(r.plain(r.get("kubernetes:core/v1:Service", "prod-registry-service")).spec.type).toBe("ClusterIP");
  });

  it("uses a LoadBalancer Service and no VirtualService without the mesh", async () => {
    const r = await renderStack("local", {
      overrides: { "platform:mesh": { enabled: false }, "platform:apps": { services: [] } },
    });
    expect(r.ofType(VS)).toHaveLength(0);
    expect(r.plain(r.get("kubernetes:core/v1:Service", "local-registry-service")).spec.type).toBe(
      "LoadBalancer",
    );
  });
});

describe("TLS issuer per stack", () => {
  it("local: self-signed CA chain signs the registry certificate", async () => {
    const r = await stack("local");
    const issuers = r.ofType(ISSUER).map((i) => r.plain(i));
    expect(issuers.map((i) => String(i.metadata.name)).sort()).toEqual([
      "platform-ca",
      "platform-selfsigned",
    ]);
    expect(issuers.find((i) => i.metadata.name === "platform-ca")!.spec).toEqual({
      ca: { secretName: "platform-ca" },
    });
    const ca = r.plain(r.get(CERT, "local-tls-ca-certificate"));
    expect(ca.spec).toMatchObject({
      isCA: true,
      issuerRef: { name: "platform-selfsigned", kind: "ClusterIssuer" },
    });
    const cert = r.plain(r.get(CERT, "local-tls-cert-registry-registry"));
    expect(cert.spec).toMatchObject({
      secretName: "registry-tls",
      issuerRef: { name: "platform-ca", kind: "ClusterIssuer" },
    });
    expect(cert.metadata.namespace).toBe("registry");
  });

  it.each(["dev", "prod"] as const)(
    "%s: ACME by DNS-01 (token from the acmeDnsApiToken secret) signs the registry and ingress certificates",
    async (name) => {
      const r = await stack(name);
      const issuers = r.ofType(ISSUER).map((i) => r.plain(i));
      expect(issuers.map((i) => String(i.metadata.name))).toEqual(["platform-acme"]);
      expect(issuers[0]!.spec.acme).toMatchObject({
        email: "platform-team@example.org",
        server: "https://acme-v02.api.letsencrypt.org/directory",
        solvers: [
          { dns01: { cloudflare: { apiTokenSecretRef: { name: "acme-dns01-token", key: "api-token" } } } },
        ],
      });
      const host = committedConfig(name).registry.hostname;
      const cert = r.plain(r.get(CERT, `${name}-tls-cert-registry-registry`));
      expect(cert.spec.issuerRef.name).toBe("platform-acme");
      expect(cert.spec.dnsNames).toEqual([host]);
      expect(r.plain(r.get(CERT, `${name}-tls-cert-istio-system-platform-ingress`)).spec.issuerRef.name).toBe(
        "platform-acme",
      );
      // The nodes verify the registry's certificate once it is publicly trusted.
      const token = r.plain(r.get(SECRET, "cert-manager-acme-dns01-token"));
      expect(isSecretWrapped(r.get(SECRET, "cert-manager-acme-dns01-token").inputs["stringData"])).toBe(true);
      expect(String(token.stringData["api-token"])).toMatch(/^pfcanary/);
    },
  );
});

/** Kinds that hold state: the only ones `protect` may be set on. */
const STATEFUL = new Set([
  PVC,
  "kubernetes:core/v1:PersistentVolume",
  "kubernetes:apps/v1:StatefulSet",
  // Generated credentials held outside the stack's reach (the registry password is in the nodes' registries.yaml).
  "random:index/randomPassword:RandomPassword",
  // The repository holds the code.
  "github:index/repository:Repository",
]);

describe("protect", () => {
  it.each(["local", "dev", "prod"] as const)(
    "%s: only stateful objects are protected, never their components or charts",
    async (name) => {
      const r = await stack(name);
      const protectedOnes = r.registrations.filter((x) => x.protect);
      for (const x of protectedOnes)
        expect(STATEFUL.has(x.type), `${name}: ${x.type} ${x.name} is protected`).toBe(true);
      if (name !== "prod") expect(protectedOnes.filter((x) => x.type === PVC)).toEqual([]);
    },
  );

  it("prod: every stateful object (volumes, the registry's storage and generated password) is protected", async () => {
    const r = await stack("prod");
    const stateful = r.registrations.filter(
      (x) =>
        !x.rendered &&
        [PVC, "kubernetes:core/v1:PersistentVolume", "kubernetes:apps/v1:StatefulSet"].includes(x.type),
    );
    expect(stateful.map((x) => x.name)).toEqual(expect.arrayContaining(["prod-registry-data"]));
    for (const x of stateful) expect(x.protect, x.name).toBe(true);
    expect(r.get("random:index/randomPassword:RandomPassword", "prod-registry-password").protect).toBe(true);
  });
});

describe("image push ordering", () => {
  it.each(listStacks(process.cwd()))(
    "%s: the push waits for the registry Deployment, its Service, the ingress route and the Certificate",
    async (name) => {
      const r = await stack(name);
      const image = r.get("command:local:Command", `${name}-gateway-image`);
      const need = [
        r.get(DEPLOYMENT, `${name}-registry-deployment`),
        r.get("kubernetes:core/v1:Service", `${name}-registry-service`),
        r.get(VS, `${name}-registry-virtualservice`),
        r.get(CERT, `${name}-tls-cert-registry-registry`),
        ...r.ofType("kubernetes:networking.istio.io/v1beta1:Gateway"),
      ];
      expect(need.length).toBeGreaterThan(4);
      for (const n of need) expect(image.dependsOn, `${name}: push before ${n.name}`).toContain(n.urn);
      // The Deployment and Certificate are awaited (no skipAwait; the Certificate until Ready).
      const d = r.plain(need[0]!);
      expect(d.metadata.annotations?.["pulumi.com/skipAwait"]).toBeUndefined();
      expect(r.plain(need[3]!).metadata.annotations["pulumi.com/waitFor"]).toBe("condition=Ready");
    },
  );
});

describe("pull secrets", () => {
  it("puts a dockerconfigjson Secret and a ServiceAccount referencing it in every workload namespace", async () => {
    const local = committedConfig("local");
    const r = await renderStack("local", {
      overrides: { "platform:inference": { ...local.inference, namespace: "models" } },
    });
    // The apps' namespace is a workload namespace too.
    for (const ns of local.apps.services.length ? [local.apps.namespace] : [])
      expect(r.plain(r.get(SA, `local-pull-${ns}-sa`)).imagePullSecrets).toEqual([
        { name: PULL_SECRET_NAME },
      ]);
    const secret = r.get(SECRET, `models-${PULL_SECRET_NAME}`);
    const inputs = r.plain(secret);
    expect(inputs.type).toBe("kubernetes.io/dockerconfigjson");
    expect(inputs.metadata.namespace).toBe("models");
    expect(isSecretWrapped(secret.inputs["stringData"])).toBe(true);
    const doc = JSON.parse(String(inputs.stringData[".dockerconfigjson"])) as {
      auths: Record<string, { username: string; password: string; auth: string }>;
    };
    const entry = doc.auths["registry.platform.local"]!;
    expect(entry.username).toBe(REGISTRY_USERNAME);
    expect(entry.password).toMatch(/^pfcanary-generated-/);
    expect(Buffer.from(entry.auth, "base64").toString()).toBe(`${entry.username}:${entry.password}`);
    const sa = r.plain(r.get(SA, "local-pull-models-sa"));
    expect(sa.metadata).toMatchObject({ name: WORKLOAD_SERVICE_ACCOUNT, namespace: "models" });
    expect(sa.imagePullSecrets).toEqual([{ name: PULL_SECRET_NAME }]);
  });

  it("dockerConfigDocument builds the standard auths document", () => {
    const doc = JSON.parse(dockerConfigDocument("ghcr.io", "bot", "p@ss")) as Record<string, unknown>;
    expect(doc).toEqual({
      auths: {
        "ghcr.io": { username: "bot", password: "p@ss", auth: Buffer.from("bot:p@ss").toString("base64") },
      },
    });
  });
});

describe("node registry access (K3s registries.yaml)", () => {
  it("names the registry host, keeps the password secret, and skips verification only for the self-signed CA", async () => {
    const seen: { host: string; skip: boolean; secret: boolean }[] = [];
    await render(() => {
      for (const cfg of [
        registrySchema.parse({ hostname: "registry.dev.example.org" }),
        registrySchema.parse({
          hostname: "registry.example.org",
          tls: { issuer: "acme" },
        }),
        registrySchema.parse({ mode: "external", external: { server: "ghcr.io", username: "bot" } }),
      ]) {
        const a = nodeRegistryAccess(cfg, { username: "platform", password: pulumi.output("pw") });
        void pulumi
          .isSecret(a.password)
          .then((secret) => seen.push({ host: a.hostname, skip: a.insecureSkipVerify, secret }));
      }
    });
    expect(seen).toEqual([
      { host: "registry.dev.example.org", skip: true, secret: true },
      { host: "registry.example.org", skip: false, secret: true },
      { host: "ghcr.io", skip: false, secret: true },
    ]);
  });
});

describe("external registry", () => {
  it("runs nothing in the cluster and uses the configured server and secret password", async () => {
    const r = await renderStack("local", {
      overrides: {
        "platform:registry": { mode: "external", external: { server: "ghcr.io", username: "platform-bot" } },
        "platform:registryPassword": { secure: "v1:abc" },
      },
    });
    // Other parts (models, gateway, monitoring) run as usual; nothing of the registry's does.
    const ofRegistry = (type: string) => r.ofType(type).filter((x) => /registry/i.test(x.urn));
    expect(ofRegistry(DEPLOYMENT)).toHaveLength(0);
    expect(ofRegistry(PVC)).toHaveLength(0);
    expect(ofRegistry("random:index/randomPassword:RandomPassword")).toHaveLength(0);
    expect(r.outputs["registryEndpoint"]).toBe("ghcr.io");
    const pull = r.plain(r.get(SECRET, `inference-${PULL_SECRET_NAME}`));
    const doc = JSON.parse(String(pull.stringData[".dockerconfigjson"])) as {
      auths: Record<string, { username: string; password: string }>;
    };
    expect(doc.auths["ghcr.io"]!.username).toBe("platform-bot");
    expect(doc.auths["ghcr.io"]!.password).toMatch(/^pfcanary/);
    const image = r.get("command:local:Command", "local-gateway-image");
    expect(r.plain(image).environment.IMAGE_NAME).toMatch(/^ghcr\.io\/platform\/gateway:/);
    expect(isSecretWrapped(image.inputs["stdin"])).toBe(true);
    expect(r.plan.summary.secretLeaks).toBe(0);
  });

  it("wraps push credentials and the dockerconfigjson in the component's outputs", async () => {
    const r = await render(() => {
      const provider = new k8s.Provider("p", {});
      const store = new SecretStore("s", { provider });
      new Registry("ext", {
        config: registrySchema.parse({ mode: "external", external: { server: "ghcr.io", username: "bot" } }),
        environment: "dev",
        meshEnabled: true,
        provider,
        credentials: { username: "bot", password: pulumi.secret("hunter2-token") },
        secretStore: store,
      });
    });
    const outputs = r.get("platform:registry:Registry", "ext").outputs!;
    expect(outputs["endpoint"]).toBe("ghcr.io");
    expect(isSecretWrapped(outputs["pushCredentials"])).toBe(true);
    expect(isSecretWrapped(outputs["dockerConfigJson"])).toBe(true);
  });
});

describe("stack outputs and preflight", () => {
  it.each(listStacks(process.cwd()))(
    "%s: registry and image resources, no violations or leaks",
    async (name) => {
      const r = await stack(name);
      const config = committedConfig(name);
      // One image per first-party service: the gateway and each app.
      const built = (config.inference.gateway.enabled ? 1 : 0) + config.apps.services.length;
      expect(r.ofType("platform:registry:Registry")).toHaveLength(1);
      expect(r.ofType("platform:images:ServiceImage")).toHaveLength(built);
      expect(r.ofType("command:local:Command")).toHaveLength(built);
      expect(r.plan.summary).toMatchObject({ schemaErrors: 0, secretLeaks: 0 });
      // No mandatory finding on any stack, prod included (every image by a traced digest).
      expect(unexpectedMandatory(name, r.plan.violations)).toEqual([]);
      expect(r.outputs["registryEndpoint"]).toBe(config.registry.hostname);
      const digestOf = (repository: string) =>
        new RegExp(`^${config.registry.hostname.replace(/\./g, "\\.")}/${repository}@sha256:[0-9a-f]{64}$`);
      expect(String(r.outputs["gatewayImage"])).toMatch(digestOf("platform/gateway"));
      for (const a of config.apps.services)
        expect(String((r.outputs["appImages"] as Record<string, string>)[a.name])).toMatch(
          digestOf(`apps/${a.name}`),
        );
    },
  );
});

function problems(overrides: Record<string, unknown>) {
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries({
    "platform:environment": "local",
    "platform:cluster": { kind: "existing" },
    ...overrides,
  }))
    flat[k] = typeof v === "string" ? v : JSON.stringify(v);
  try {
    parsePlatformConfig(flat, new Set(["registryPassword"]));
    return [];
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
}

describe("registry config", () => {
  it("defaults: in-cluster, linux/amd64, cache on", () => {
    const c = registrySchema.parse({});
    expect(c).toMatchObject({
      mode: "in-cluster",
      namespace: "registry",
      images: { platform: "linux/amd64", cacheFrom: true },
    });
  });

  it("external mode needs the external server", () => {
    expect(problems({ "platform:registry": { mode: "external" } })).toContainEqual(
      expect.objectContaining({ key: "platform:registry.external" }),
    );
  });

  it("rejects external settings in in-cluster mode", () => {
    const p = problems({ "platform:registry": { external: { server: "ghcr.io", username: "x" } } });
    expect(p).toContainEqual(
      expect.objectContaining({
        key: "platform:registry.external",
        message: expect.stringMatching(/only used in external mode/),
      }),
    );
  });

  it("rejects a registry hostname equal to the mesh ingress hostname", () => {
    const p = problems({
      "platform:registry": { hostname: "ai.example.org" },
      "platform:mesh": { ingressHostname: "ai.example.org" },
    });
    expect(p).toContainEqual(expect.objectContaining({ key: "platform:registry.hostname" }));
  });

  it("needs the registry while the gateway is on", () => {
    expect(problems({ "platform:registry": { enabled: false } })).toContainEqual(
      expect.objectContaining({ key: "platform:registry.enabled" }),
    );
    expect(
      problems({
        "platform:registry": { enabled: false },
        "platform:inference": { gateway: { enabled: false } },
      }),
    ).toEqual([]);
  });

  it("reports bad storage size, hostname, tag and platform together, with examples", () => {
    const p = problems({
      "platform:registry": {
        storageSize: "lots",
        hostname: "Registry_Example",
        images: { tag: "latest", platform: "windows/amd64" },
        tls: { issuer: "acme" },
      },
    });
    const keys = p.map((x) => x.key);
    expect(keys).toEqual(
      expect.arrayContaining([
        "platform:registry.storageSize",
        "platform:registry.hostname",
        "platform:registry.images.tag",
        "platform:registry.images.platform",
      ]),
    );
    expect(p.find((x) => x.key === "platform:registry.storageSize")!.example).toBe('"50Gi"');
  });

  it("acme needs the ACME account; external mode needs the registryPassword secret", () => {
    expect(problems({ "platform:registry": { tls: { issuer: "acme" } } })).toContainEqual(
      expect.objectContaining({ key: "platform:tls.acme" }),
    );
    const flat = {
      "platform:environment": "local",
      "platform:cluster": JSON.stringify({ kind: "existing" }),
      "platform:registry": JSON.stringify({
        mode: "external",
        external: { server: "ghcr.io", username: "bot" },
      }),
    };
    expect(() => parsePlatformConfig(flat, new Set())).toThrow(/platform:registryPassword/);
  });
});
