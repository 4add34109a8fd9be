/**
 * First-party apps (`platform:apps`): the schema's checks with their key paths, the App's pure
 * decisions, the component as registered, and every committed stack's apps end to end (asserted on
 * the structure the stack file asks for, never on this repository's example names).
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import {
  APP_SERVICE_PORT,
  App,
  appAuthorizationPolicies,
  appCanaryTarget,
  appEnv,
  appNetworkPolicySpec,
  appPodSpec,
  appVirtualServiceSpec,
  gatewayNetworkPolicySpec,
} from "../components/apps/app";
import { appSchema, appsSchema, GATEWAY_ENV, type AppConfig } from "../components/apps/schema";
import { ConfigError, parsePlatformConfig } from "../components/config";
import { API_KEYS_FILE, GATEWAY_PORT, sha256Hex } from "../components/inference/gateway";
import { MESH_GATEWAY } from "../components/meta";
import { gatewayClientName } from "../components/platform";
import { SecretStore } from "../components/secrets/store";
import { listStacks } from "../tools/preflight/stack-config";
import { isSecretWrapped, render, renderStack } from "./harness";
import { committedConfig, existingClusterFor, unexpectedMandatory } from "./stack-overrides";

const FIXTURE = "test/fixtures/service";

function app(over: Record<string, unknown> = {}): AppConfig {
  return appSchema.parse({ name: "api", context: FIXTURE, ...over });
}

/** A minimal local config with one model (the gateway needs one) and the given apps. */
function problemsOf(apps: unknown, extra: Record<string, unknown> = {}, configKeys: string[] = []): string[] {
  const raw: Record<string, unknown> = {
    "platform:environment": "local",
    "platform:cluster": { kind: "existing" },
    "platform:inference": {
      services: [{ name: "m", runtime: "llamacpp", model: "q/q-0.5B-GGUF" }],
    },
    "platform:apps": apps,
    ...extra,
  };
  const flat = Object.fromEntries(
    Object.entries(raw).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  );
  for (const k of configKeys) flat[k] = "set";
  try {
    parsePlatformConfig(flat);
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems.map((p) => `${p.key}: ${p.message}`);
  }
}

describe("platform:apps checks", () => {
  const one = (a: Record<string, unknown>) => ({ services: [{ name: "api", context: FIXTURE, ...a }] });

  it("accepts a minimal app and defaults it: its own namespace, restricted uid, /tmp writable", () => {
    expect(problemsOf(one({}))).toEqual([]);
    expect(appsSchema.parse({}).namespace).toBe("apps");
    expect(app()).toMatchObject({ port: 8080, runAsUser: 65532, writablePaths: [], callsGateway: false });
  });

  it.each<[string, Record<string, unknown>, string, Record<string, unknown>?, string[]?]>([
    ["a context that is not a directory", { context: "no/such/dir" }, "platform:apps.services[0].context"],
    ["a context without a Dockerfile", { context: "docs" }, "platform:apps.services[0].context"],
    ["a secret-looking env name", { env: { API_TOKEN: "x" } }, "platform:apps.services[0].env.API_TOKEN"],
    [
      "a secret-looking build arg",
      { buildArgs: { NPM_TOKEN: "x" } },
      "platform:apps.services[0].buildArgs.NPM_TOKEN",
    ],
    [
      "a secret with both sources",
      { secrets: [{ env: "S", generate: { length: 32 }, stackSecret: "k" }] },
      "platform:apps.services[0].secrets[0]",
    ],
    [
      "an unset stack secret",
      { secrets: [{ env: "S", stackSecret: "apiDbUrl" }] },
      "platform:apps.services[0].secrets[0].stackSecret",
    ],
    [
      "an env var set twice",
      { env: { GATEWAY_URL: "x" }, callsGateway: true },
      "platform:apps.services[0].callsGateway",
    ],
    [
      "the gateway's hostname",
      { ingress: { hostname: "platform.local" } },
      "platform:apps.services[0].ingress.hostname",
    ],
    [
      "the registry's hostname",
      { ingress: { hostname: "registry.platform.local" } },
      "platform:apps.services[0].ingress.hostname",
    ],
    ["min above max", { replicas: { min: 3, max: 2 } }, "platform:apps.services[0].replicas.min"],
    [
      "a canary without Flagger",
      { canary: { enabled: true } },
      "platform:apps.services[0].canary.enabled",
      { "platform:mesh": { flagger: false } },
    ],
    ["/tmp listed", { writablePaths: ["/tmp"] }, "platform:apps.services[0].writablePaths[0]"],
    ["a relative writable path", { writablePaths: ["cache"] }, "platform:apps.services[0].writablePaths[0]"],
    [
      "a metrics path the mesh denies",
      { metrics: { path: "/api/metrics" } },
      "platform:apps.services[0].metrics.path",
    ],
    ["root", { runAsUser: 0 }, "platform:apps.services[0].runAsUser"],
    [
      "calling a gateway that is off",
      { callsGateway: true },
      "platform:apps.services[0].callsGateway",
      { "platform:inference": { gateway: { enabled: false } } },
    ],
    [
      "ingress without the mesh",
      { ingress: { hostname: "api.example.org" } },
      "platform:apps.services[0].ingress",
      { "platform:mesh": { enabled: false } },
    ],
  ])("refuses %s, naming the key", (_what, a, key, extra) => {
    expect(problemsOf(one(a), extra).map((p) => p.split(": ")[0])).toContain(key);
  });

  it("a set stack secret is accepted", () => {
    expect(
      problemsOf(one({ secrets: [{ env: "DB_URL", stackSecret: "apiDbUrl" }] }), {}, ["apps:apiDbUrl"]),
    ).toEqual([]);
  });

  it("across apps: unique names and routes; the apps' namespace is their own, and the registry is needed", () => {
    const two = (b: Record<string, unknown>) => ({
      services: [
        { name: "api", context: FIXTURE, ingress: { hostname: "api.example.org" } },
        { name: "api2", context: FIXTURE, ...b },
      ],
    });
    expect(problemsOf(two({ name: "api" }))).toContainEqual(
      expect.stringMatching(/^platform:apps.services\[1\].name: duplicate/),
    );
    expect(problemsOf(two({ ingress: { hostname: "api.example.org" } }))).toContainEqual(
      expect.stringMatching(
        /^platform:apps.services\[1\].ingress: api.example.org\/ is routed to another app/,
      ),
    );
    expect(problemsOf({ namespace: "inference", ...one({}) })).toContainEqual(
      expect.stringMatching(/^platform:apps.namespace: must differ/),
    );
    expect(problemsOf({ namespace: "istio-system", ...one({}) })).toContainEqual(
      expect.stringMatching(/^platform:apps.namespace:/),
    );
    expect(problemsOf(one({}), { "platform:registry": { namespace: "apps" } })).toContainEqual(
      expect.stringMatching(/^platform:registry.namespace: must differ from platform:apps.namespace/),
    );
    expect(problemsOf(one({}), { "platform:registry": { enabled: false } })).toContainEqual(
      expect.stringMatching(/^platform:registry.enabled: apps are built and pushed/),
    );
  });
});

describe("App decisions", () => {
  it("the pod: restricted as its uid, read-only root, an emptyDir on /tmp and each writable path, probes", () => {
    const a = app({
      port: 3000,
      writablePaths: ["/app/.next/cache"],
      probes: { readiness: "/api/health", startupSeconds: 30 },
    });
    const pod = appPodSpec(a, { image: "r/apps/api@sha256:x", serviceAccountName: "api" });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests index freely
    const c = (pod.containers as any[])[0];
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, fsGroup: 65532 });
    expect(c.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      runAsUser: 65532,
      capabilities: { drop: ["ALL"] },
    });
    expect(c.volumeMounts).toEqual([
      { name: "tmp", mountPath: "/tmp" },
      { name: "writable-0", mountPath: "/app/.next/cache" },
    ]);
    expect((pod.volumes as { emptyDir?: unknown }[]).every((v) => v.emptyDir)).toBe(true);
    expect(c.readinessProbe.httpGet).toEqual({ path: "/api/health", port: "http" });
    expect(c.livenessProbe.httpGet.path).toBe("/api/health");
    expect(c.startupProbe.failureThreshold * c.startupProbe.periodSeconds).toBeGreaterThanOrEqual(30);
    expect(c.resources).toEqual({ requests: { cpu: "100m", memory: "256Mi" }, limits: { memory: "256Mi" } });
    expect(pod.automountServiceAccountToken).toBe(false);
  });

  it("env: plain values, the gateway URL, and every secret as a secretKeyRef, never a literal", () => {
    const a = app({
      env: { LOG_LEVEL: "info" },
      secrets: [{ env: "SESSION_SECRET", generate: { length: 32 } }],
      callsGateway: true,
    });
    expect(appEnv(a, "http://gateway.inference.svc.cluster.local")).toEqual([
      { name: "LOG_LEVEL", value: "info" },
      { name: GATEWAY_ENV.url, value: "http://gateway.inference.svc.cluster.local" },
      { name: "SESSION_SECRET", valueFrom: { secretKeyRef: { name: "api-secrets", key: "SESSION_SECRET" } } },
      {
        name: GATEWAY_ENV.apiKey,
        valueFrom: { secretKeyRef: { name: "api-secrets", key: GATEWAY_ENV.apiKey } },
      },
    ]);
  });

  it("routes by hostname and path on the mesh Gateway, with no route timeout (streams) and stream-safe retries", () => {
    const a = app({ ingress: { hostname: "api.example.org", path: "/v2" } });
    expect(appVirtualServiceSpec(a, "apps")).toEqual({
      hosts: ["api.example.org"],
      gateways: [MESH_GATEWAY],
      http: [
        {
          name: "api",
          match: [{ uri: { prefix: "/v2" } }],
          route: [
            { destination: { host: "api.apps.svc.cluster.local", port: { number: APP_SERVICE_PORT } } },
          ],
          timeout: "0s",
          retries: { attempts: 2, retryOn: "connect-failure,refused-stream" },
        },
      ],
    });
    expect(appVirtualServiceSpec(app(), "apps")).toMatchObject({
      hosts: ["api.apps.svc.cluster.local"],
      gateways: ["mesh"],
    });
  });

  it("the canary routes what the VirtualService would, on the app's Deployment and HPA", () => {
    const a = app({
      port: 3000,
      ingress: { hostname: "api.example.org" },
      canary: { enabled: true, stepWeight: 20, maxWeight: 60 },
    });
    const t = appCanaryTarget(a, "apps");
    expect(t).toMatchObject({ name: "api", canary: { stepWeight: 20, maxWeight: 60 } });
    expect(t.service).toMatchObject({
      port: APP_SERVICE_PORT,
      targetPort: 3000,
      gateways: [MESH_GATEWAY],
      hosts: ["api.example.org"],
      match: [{ uri: { prefix: "/" } }],
    });
  });

  it("allows exactly: the ingress gateway to a routed app, the app's identity to the inference gateway", () => {
    const routed = app({ ingress: { hostname: "api.example.org" }, callsGateway: true });
    const policies = appAuthorizationPolicies(routed, "apps", "inference");
    expect(policies.map((p) => [p.namespace, p.name])).toEqual([
      ["apps", "allow-ingress-to-api"],
      ["inference", "allow-api-to-gateway"],
    ]);
    expect(policies[0]!.spec).toMatchObject({
      rules: [
        { from: [{ source: { principals: ["cluster.local/ns/istio-system/sa/istio-ingressgateway"] } }] },
      ],
    });
    expect(policies[1]!.spec).toMatchObject({
      selector: { matchLabels: { "app.kubernetes.io/component": "gateway" } },
      rules: [
        {
          from: [{ source: { principals: ["cluster.local/ns/apps/sa/api"] } }],
          to: [{ operation: { ports: [String(GATEWAY_PORT)] } }],
        },
      ],
    });
    expect(appAuthorizationPolicies(app(), "apps", "inference")).toEqual([]);
    expect(gatewayNetworkPolicySpec(routed, "apps").ingress).toEqual([
      {
        from: [
          {
            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "apps" } },
            podSelector: { matchLabels: { "app.kubernetes.io/instance": "api" } },
          },
        ],
        ports: [{ port: GATEWAY_PORT, protocol: "TCP" }],
      },
    ]);
    const np = appNetworkPolicySpec(routed, true);
    expect(np.ingress).toEqual([
      expect.objectContaining({ ports: [{ port: 8080, protocol: "TCP" }] }),
      expect.objectContaining({ ports: [15090, 15020].map((port) => ({ port, protocol: "TCP" })) }),
    ]);
  });
});

describe("App", () => {
  const renderApp = (
    config: AppConfig,
    extra: {
      mesh?: boolean;
      monitoring?: boolean;
      stackSecrets?: Record<string, pulumi.Output<string>>;
    } = {},
  ) =>
    render(() => {
      const provider = new k8s.Provider("k", {});
      const store = new SecretStore("s", { provider });
      new App("t-api", {
        config,
        namespace: "apps",
        environment: "dev",
        provider,
        image: "registry.example.org/apps/api@sha256:" + "c".repeat(64),
        version: "1.2.3",
        secretStore: store,
        ...(extra.stackSecrets ? { stackSecrets: extra.stackSecrets } : {}),
        ...(config.callsGateway
          ? {
              gateway: {
                url: "http://gateway.inference.svc.cluster.local",
                namespace: "inference",
                apiKey: "k".repeat(48),
              },
            }
          : {}),
        mesh: extra.mesh ?? true,
        monitoring: extra.monitoring ?? true,
        imagePullSecret: "platform-registry",
      });
    });

  it("registers the workload, its Service, route, allows, HPA, PDB and NetworkPolicies, parented and named", async () => {
    const r = await renderApp(
      app({ replicas: { min: 2, max: 4 }, ingress: { hostname: "api.example.org" }, callsGateway: true }),
    );
    const children = r.registrations.filter((x) => x.parent?.includes("platform:apps:App"));
    expect(children.every((x) => x.name.startsWith("t-api-"))).toBe(true);
    for (const type of [
      "kubernetes:apps/v1:Deployment",
      "kubernetes:core/v1:Service",
      "kubernetes:core/v1:ServiceAccount",
      "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
      "kubernetes:policy/v1:PodDisruptionBudget",
      "kubernetes:networking.istio.io/v1beta1:VirtualService",
    ])
      expect(r.ofType(type).length, type).toBe(1);
    const namespaces = r
      .ofType("kubernetes:networking.k8s.io/v1:NetworkPolicy")
      .map((n) => String(r.plain(n).metadata.namespace));
    expect(namespaces.sort()).toEqual(["apps", "inference"]);
    expect(r.ofType("kubernetes:security.istio.io/v1:AuthorizationPolicy")).toHaveLength(2);
    const sa = r.plain(r.get("kubernetes:core/v1:ServiceAccount", "t-api-sa"));
    expect(sa.imagePullSecrets).toEqual([{ name: "platform-registry" }]);
    // Deployed by digest; the HPA owns the count.
    const d = r.plain(r.get("kubernetes:apps/v1:Deployment", "t-api-deployment"));
    expect(d.spec.replicas).toBeUndefined();
    expect(d.spec.template.spec.containers[0].image).toMatch(/@sha256:/);
    // No ServiceMonitor without `metrics`: the mesh's Envoy PodMonitor has its request metrics.
    expect(r.ofType("kubernetes:monitoring.coreos.com/v1:ServiceMonitor")).toEqual([]);
  });

  it("lands the gateway key in the app's Secret, as a Pulumi secret, referenced from the env", async () => {
    const r = await renderApp(
      app({ callsGateway: true, secrets: [{ env: "SESSION_SECRET", generate: { length: 32 } }] }),
    );
    const secret = r.get("kubernetes:core/v1:Secret", "apps-api-secrets");
    expect(isSecretWrapped(secret.inputs["stringData"])).toBe(true);
    expect(Object.keys(r.plain(secret).stringData as Record<string, string>).sort()).toEqual([
      GATEWAY_ENV.apiKey,
      "SESSION_SECRET",
    ]);
    expect(r.ofType("random:index/randomPassword:RandomPassword").map((x) => x.name)).toEqual([
      "t-api-session-secret",
    ]);
  });

  it("takes a stack secret by reference: into the app's Secret, still a Pulumi secret, never the env", async () => {
    const r = await renderApp(app({ secrets: [{ env: "DB_URL", stackSecret: "apiDbUrl" }] }), {
      stackSecrets: { "apps:apiDbUrl": pulumi.secret("postgres://db.internal/app") },
    });
    const secret = r.get("kubernetes:core/v1:Secret", "apps-api-secrets");
    expect(isSecretWrapped(secret.inputs["stringData"])).toBe(true);
    expect(r.plain(secret).stringData).toEqual({ DB_URL: "postgres://db.internal/app" });
    const d = r.plain(r.get("kubernetes:apps/v1:Deployment", "t-api-deployment"));
    expect(JSON.stringify(d)).not.toContain("postgres://");
  });

  it("with canary: a Flagger Canary with the SLO analysis instead of its own Service and VirtualService", async () => {
    const r = await renderApp(
      app({
        ingress: { hostname: "api.example.org" },
        canary: { enabled: true },
        replicas: { min: 2, max: 3 },
      }),
    );
    expect(r.ofType("kubernetes:core/v1:Service")).toEqual([]);
    expect(r.ofType("kubernetes:networking.istio.io/v1beta1:VirtualService")).toEqual([]);
    const canary = r.plain(r.get("kubernetes:flagger.app/v1beta1:Canary", "t-api-canary"));
    expect((canary.spec.analysis.metrics as { name: string }[]).map((m) => m.name)).toEqual([
      "request-success-rate",
      "request-duration",
    ]);
    expect(canary.spec.autoscalerRef.name).toBe("api");
    // The budget follows Flagger's primary.
    expect(
      r.plain(r.get("kubernetes:policy/v1:PodDisruptionBudget", "t-api-pdb")).spec.selector.matchLabels,
    ).toEqual({
      "app.kubernetes.io/name": "api-primary",
    });
  });

  it("with metrics: a ServiceMonitor on its own Service (mesh TLS on the app port, plain on a separate one)", async () => {
    const same = await renderApp(app({ metrics: { path: "/metrics" } }));
    const ep = r0(same).spec.endpoints[0];
    expect(ep).toMatchObject({ port: "http-metrics", path: "/metrics", scheme: "https" });
    const separate = await renderApp(app({ metrics: { port: 9464 } }));
    expect(r0(separate).spec.endpoints[0].scheme).toBeUndefined();
    const d = separate.plain(separate.get("kubernetes:apps/v1:Deployment", "t-api-deployment"));
    expect(d.spec.template.metadata.annotations["traffic.sidecar.istio.io/excludeInboundPorts"]).toBe("9464");
  });
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests index freely
function r0(r: Awaited<ReturnType<typeof render>>): any {
  return r.plain(r.get("kubernetes:monitoring.coreos.com/v1:ServiceMonitor", "t-api-monitor"));
}

describe.each(listStacks(process.cwd()))("stack %s: its apps", (stack) => {
  it("each app built and deployed as its entry says, served on the ingress, calling the gateway with its own key", async () => {
    const c = committedConfig(stack);
    const r = await renderStack(
      stack,
      c.cluster.kind === "k3s" ? { overrides: existingClusterFor(stack) } : {},
    );
    expect(unexpectedMandatory(stack, r.plan.violations)).toEqual([]);
    expect(r.plan.summary).toMatchObject({ schemaErrors: 0, secretLeaks: 0 });
    expect(r.ofType("platform:apps:App")).toHaveLength(c.apps.services.length);
    const gateway = r.ofType("kubernetes:networking.istio.io/v1beta1:Gateway").map((g) => r.plain(g))[0];
    const cert = r
      .ofType("kubernetes:cert-manager.io/v1:Certificate")
      .map((x) => r.plain(x))
      .find((x) => x.metadata.namespace === "istio-system");
    for (const a of c.apps.services) {
      const name = `${stack}-app-${a.name}`;
      const build = r.plain(r.get("command:local:Command", `${name}-image`));
      expect(build.environment).toMatchObject({
        IMAGE_CONTEXT: a.context,
        IMAGE_NAME: expect.stringMatching(new RegExp(`/apps/${a.name}:`)),
        IMAGE_SBOM: "true",
        IMAGE_PROVENANCE: "mode=max",
      });
      const d = r.plain(r.get("kubernetes:apps/v1:Deployment", `${name}-deployment`));
      expect(d.metadata.namespace).toBe(c.apps.namespace);
      expect(d.spec.template.spec.containers[0].image).toBe(
        (r.outputs["appImages"] as Record<string, string>)[a.name],
      );
      expect(d.spec.template.spec.containers[0].ports[0].containerPort).toBe(a.port);
      if (a.ingress) {
        expect(gateway!.spec.servers[0].hosts).toContain(a.ingress.hostname);
        expect(cert!.spec.dnsNames).toContain(a.ingress.hostname);
        expect((r.outputs["apps"] as Record<string, string>)[a.name]).toBe(`https://${a.ingress.hostname}`);
      }
      if (a.callsGateway) {
        // The gateway's keys file holds the hash of exactly the key in the app's Secret.
        const key = r.plain(r.get("kubernetes:core/v1:Secret", `${c.apps.namespace}-${a.name}-secrets`))
          .stringData[GATEWAY_ENV.apiKey] as string;
        const keysFile = r.plain(
          r.get("kubernetes:core/v1:Secret", `${c.inference.namespace}-gateway-api-keys`),
        ).stringData[API_KEYS_FILE] as string;
        const keys = JSON.parse(keysFile) as { keys: { name: string; sha256: string }[] };
        expect(keys.keys).toContainEqual({ name: gatewayClientName(a.name), sha256: sha256Hex(key) });
      }
    }
  });
});
