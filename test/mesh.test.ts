import * as k8s from "@pulumi/kubernetes";
import { describe, expect, it } from "vitest";
import { meshSchema } from "../components/mesh/schema";
import {
  cniValues,
  DEFAULT_TLS_SECRET,
  flaggerValues,
  FLAGGER_OWN_PROMETHEUS,
  INGRESS_GATEWAY,
  istiodValues,
  istioPlatform,
  meshNamespaceLevels,
  ServiceMesh,
  workloadAuthorizationPolicies,
} from "../components/mesh/mesh";
import { MESH_CONTRACT, MESH_GATEWAY } from "../components/meta";
import { chartImages, charts, type ImageVersion } from "../components/versions";
import { validateObject } from "../tools/preflight/schemas";
import { chartValuesKeys, unverifiedValuesKeys } from "./fixtures/chart-values-keys";
import { render, renderStack, type Rendered } from "./harness";
import { existingClusterFor, unexpectedMandatory } from "./stack-overrides";
import { withDigests } from "./fixtures/with-digests";

/** Custom resources register as `kubernetes:<group>/<version>:<Kind>`. */
const isCr = (type: string) =>
  !type.startsWith("kubernetes:helm.sh/") && /^kubernetes:[a-z-]+(\.[a-z-]+)+\/v[0-9a-z]+:/.test(type);
const CHART = "kubernetes:helm.sh/v4:Chart";
const NS = "kubernetes:core/v1:Namespace";
const PROM = {
  url: "http://kps-prometheus.monitoring:9090",
  namespace: "monitoring",
  serviceAccount: "kps-prometheus",
};

async function mesh(
  over: Record<string, unknown> = {},
  extra: { prometheus?: typeof PROM; tls?: { credentialName: string } } = { prometheus: PROM },
): Promise<Rendered> {
  return render(() => {
    const provider = new k8s.Provider("k8s", {});
    new ServiceMesh("m", {
      config: meshSchema.parse({ ingressHostname: "ai.example.org", ...over }),
      environment: "dev",
      provider,
      distribution: "k3s",
      workloadNamespaces: ["inference", "batch"],
      ...extra,
    });
  });
}

const allCrs = (r: Rendered) => r.registrations.filter((x) => isCr(x.type)).map((x) => r.plain(x));
const crs = (r: Rendered, kind: string) => allCrs(r).filter((x) => x["kind"] === kind);

describe("ServiceMesh graph", () => {
  it("installs base, CNI, istiod and the ingress gateway at the pinned versions, in order", async () => {
    const r = await mesh();
    const byName = Object.fromEntries(r.ofType(CHART).map((c) => [c.name, c]));
    for (const [name, pin] of [
      ["m-istio-base", charts.istioBase],
      ["m-istio-cni", charts.istioCni],
      ["m-istiod", charts.istiod],
      ["m-ingress-gateway", charts.istioGateway],
      ["m-flagger", charts.flagger],
    ] as const) {
      const inputs = r.plain(byName[name]!);
      expect(inputs["version"]).toBe(pin.version);
      expect(inputs["repositoryOpts"]["repo"]).toBe(pin.repo);
    }
    expect(byName["m-istiod"]!.dependsOn).toContain(byName["m-istio-cni"]!.urn);
    expect(byName["m-ingress-gateway"]!.dependsOn).toContain(byName["m-istiod"]!.urn);
    const istiod = r.plain(byName["m-istiod"]!)["values"];
    expect(istiod.pilot.cni.enabled).toBe(true);
    expect(istiod.global.platform).toBe("k3s");
    const gw = r.plain(byName["m-ingress-gateway"]!)["values"];
    expect(gw.serviceAccount.name).toBe(INGRESS_GATEWAY);
  });

  it("labels its namespaces: never injected, privileged only where the CNI agent runs", async () => {
    const r = await mesh();
    const labels: Record<string, Record<string, string>> = Object.fromEntries(
      r.ofType(NS).map((n) => [r.plain(n)["metadata"].name, r.plain(n)["metadata"].labels]),
    );
    expect(labels["istio-system"]!["pod-security.kubernetes.io/enforce"]).toBe("privileged");
    expect(labels["flagger"]!["pod-security.kubernetes.io/enforce"]).toBe("restricted");
    for (const l of Object.values(labels)) expect(l["istio-injection"]).toBeUndefined();
    expect(meshNamespaceLevels(true)["flagger"]).toBe("baseline");
  });

  it("enforces STRICT mTLS mesh-wide", async () => {
    const [pa, ...rest] = crs(await mesh(), "PeerAuthentication");
    expect(rest).toHaveLength(0);
    expect(pa!["metadata"]).toMatchObject({ name: "default", namespace: "istio-system" });
    expect(pa!["spec"]).toEqual({ mtls: { mode: "STRICT" } });
  });

  it("denies everything in each workload namespace but the platform's flows", async () => {
    const policies = crs(await mesh(), "AuthorizationPolicy");
    for (const ns of ["inference", "batch"]) {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- CR specs are opaque JSON
      const here: Record<string, any> = Object.fromEntries(
        policies.filter((p) => p["metadata"].namespace === ns).map((p) => [p["metadata"].name, p["spec"]]),
      );
      expect(Object.keys(here).sort()).toEqual(
        ["allow-gateway-to-models", "allow-ingress-to-gateway", "allow-prometheus-scrape", "deny-all"].sort(),
      );
      expect(here["deny-all"]).toEqual({});
      expect(here["allow-ingress-to-gateway"].selector.matchLabels).toEqual({
        "app.kubernetes.io/component": MESH_CONTRACT.gatewayComponent,
      });
      expect(here["allow-ingress-to-gateway"].rules[0].from[0].source.principals).toEqual([
        "cluster.local/ns/istio-system/sa/istio-ingressgateway",
      ]);
      expect(here["allow-gateway-to-models"].selector.matchLabels["app.kubernetes.io/component"]).toBe(
        "model-server",
      );
      expect(here["allow-gateway-to-models"].rules[0].from[0].source.principals).toEqual([
        `cluster.local/ns/${ns}/sa/gateway*`,
      ]);
      const scrape = here["allow-prometheus-scrape"].rules[0];
      expect(scrape.from[0].source.principals).toEqual(["cluster.local/ns/monitoring/sa/kps-prometheus"]);
      expect(scrape.to[0].operation).toEqual({ methods: ["GET"], paths: ["/metrics", "/stats/prometheus"] });
    }
  });

  it("has no Prometheus allow without Prometheus", () => {
    const names = workloadAuthorizationPolicies("inference", {}).map((p) => p.name);
    expect(names).not.toContain("allow-prometheus-scrape");
    expect(names).toContain("deny-all");
  });

  it("serves the ingress Gateway over TLS from the default secret, or the one it is given", async () => {
    const [gw] = crs(await mesh(), "Gateway");
    expect(`${gw!["metadata"].namespace}/${gw!["metadata"].name}`).toBe(MESH_GATEWAY);
    const servers = gw!["spec"].servers as { port: { number: number }; hosts: string[]; tls: unknown }[];
    const https = servers.find((s) => s.port.number === 443)!;
    expect(https.hosts).toEqual(["ai.example.org"]);
    expect(https.tls).toEqual({ mode: "SIMPLE", credentialName: DEFAULT_TLS_SECRET });
    const http = servers.find((s) => s.port.number === 80)!;
    expect(http.tls).toEqual({ httpsRedirect: true });

    const [custom] = crs(await mesh({}, { tls: { credentialName: "ai-example-org-tls" } }), "Gateway");
    expect(custom!["spec"].servers[0].tls.credentialName).toBe("ai-example-org-tls");
  });

  it("turns off Envoy's stream idle timeout on every proxy so SSE streams survive", async () => {
    const [f] = crs(await mesh(), "EnvoyFilter");
    expect(f!["metadata"].namespace).toBe("istio-system"); // root namespace: all proxies
    const patch = f!["spec"].configPatches[0];
    expect(patch.match.context).toBe("ANY");
    expect(patch.patch.value.typed_config.stream_idle_timeout).toBe("0s");
  });

  it("wires Flagger to the monitoring Prometheus, or its own when monitoring is off", async () => {
    const r = await mesh();
    const values = r.plain(r.get(CHART, "m-flagger"))["values"];
    expect(values.metricsServer).toBe(PROM.url);
    expect(values.prometheus.install).toBe(false);
    expect(values.meshProvider).toBe("istio");
    expect(flaggerValues().metricsServer).toBe(FLAGGER_OWN_PROMETHEUS);
    expect(flaggerValues().prometheus.install).toBe(true);
    const off = await mesh({ flagger: false });
    expect(off.ofType(CHART).map((c) => c.name)).not.toContain("m-flagger");
  });

  it("renders only schema-valid Istio resources (and the validator catches a bad value)", async () => {
    const r = await mesh();
    const all = allCrs(r);
    expect(all.length).toBeGreaterThanOrEqual(11);
    for (const o of all)
      expect(validateObject(o), `${o["kind"]} ${o["metadata"].name}`).toEqual({ ok: true });
    const [pa] = crs(r, "PeerAuthentication");
    const typo = { ...pa!, spec: { mtls: { mode: "STRICTEST" } } };
    expect(validateObject(typo).ok).toBe(false);
  });

  it("sets only values keys verified against the pinned Istio and Flagger charts", async () => {
    const fixtures = {
      "m-istio-base": ["istioBase", chartValuesKeys.istioBase],
      "m-istio-cni": ["istioCni", chartValuesKeys.istioCni],
      "m-istiod": ["istiod", chartValuesKeys.istiod],
      "m-ingress-gateway": ["istioGateway", chartValuesKeys.istioGateway],
      "m-flagger": ["flagger", chartValuesKeys.flagger],
    } as const;
    // Every branch of the values: one and two replicas, Flagger with and without its own Prometheus.
    for (const r of [await mesh(), await mesh({ ingressReplicas: 2, istiodReplicas: 2 }, {})]) {
      const seen = r.ofType(CHART).map((c) => c.name);
      expect(seen.sort()).toEqual(Object.keys(fixtures).sort());
      for (const c of r.ofType(CHART)) {
        const [pin, keys] = fixtures[c.name as keyof typeof fixtures];
        // A bump re-checks the keys against the new chart (and moves the fixture's version).
        expect(charts[pin].version, `${c.name}: fixture is for another chart version`).toBe(keys.version);
        expect(unverifiedValuesKeys(r.plain(c)["values"] as object, keys), c.name).toEqual([]);
      }
    }
  });

  it("installs Flagger's CRDs once, from the chart's crds/ (crd.create is Helm 2's second copy)", async () => {
    for (const r of [await mesh(), await mesh({}, {})])
      expect(r.plain(r.get(CHART, "m-flagger"))["values"].crd).toEqual({ create: false });
  });

  it("istiod: no PDB over a single replica (it would block drains); sidecars have explicit CPU limits", () => {
    const cfg = (istiodReplicas: number) => meshSchema.parse({ istiodReplicas });
    for (const env of ["local", "dev", "prod"] as const) {
      expect(istiodValues(cfg(1), "k3s", env).global.defaultPodDisruptionBudget).toEqual({ enabled: false });
      expect(istiodValues(cfg(2), "k3s", env).global.defaultPodDisruptionBudget).toEqual({ enabled: true });
      // Helm merges maps: without limits.cpu the chart's 2-CPU sidecar limit would stay.
      const proxy = istiodValues(cfg(1), "generic", env).global.proxy.resources;
      const cpu = (q: string) => (q.endsWith("m") ? Number(q.slice(0, -1)) / 1000 : Number(q));
      expect(cpu(proxy.limits.cpu)).toBeGreaterThan(0);
      expect(cpu(proxy.limits.cpu)).toBeLessThanOrEqual(1);
      expect(cpu(proxy.requests.cpu)).toBeLessThanOrEqual(cpu(proxy.limits.cpu));
      expect(proxy.limits.memory).toMatch(/^\d+Mi$/);
    }
  });

  it("pins Istio's and Flagger's images once versions.ts traces their digests; until then the charts' own", () => {
    const cfg = meshSchema.parse({});
    const img = {
      ...chartImages.istiod.images,
      ...chartImages.istioCni.images,
      ...chartImages.flagger.images,
    };
    const values = () => ({
      istiod: istiodValues(cfg, "k3s", "prod"),
      cni: cniValues("k3s"),
      flagger: flaggerValues(PROM),
    });
    const untraced = Object.values(img).every((i) => !i.digest);
    if (untraced) {
      // None of them has a traced digest today (versions.ts says why): no image value is set.
      const v = values();
      expect([v.istiod.global.proxy.image, v.istiod.pilot.image, v.cni.image, v.flagger.image]).toEqual([
        undefined,
        undefined,
        undefined,
        undefined,
      ]);
      expect(v.istiod.global.proxy_init).toBeUndefined();
    }
    // With digests recorded: whole references (the templates use a value containing "/" as it is),
    // the proxy also for the init container and every injected gateway; Flagger's in its tag.
    const fake = `sha256:${"cd".repeat(32)}`;
    const v = withDigests([img.pilot, img.proxy, img.installCni, img.flagger], fake, values);
    const ref = (i: ImageVersion) => `${i.repository}:${i.tag}@${fake}`;
    expect(v.istiod.global.proxy.image).toBe(ref(img.proxy));
    expect(v.istiod.global.proxy_init).toEqual({ image: ref(img.proxy) });
    expect(v.istiod.pilot.image).toBe(ref(img.pilot));
    expect(v.cni.image).toBe(ref(img.installCni));
    expect(v.flagger.image).toEqual({ tag: `1.44.0@${fake}` });
  });

  it("maps distributions to Istio platforms", () => {
    expect(istioPlatform("k3d")).toBe("k3d");
    expect(istioPlatform("generic")).toBeUndefined();
  });
});

describe("mesh in the stacks", () => {
  it("is wired by config and injected into workload namespaces only", async () => {
    const r = await renderStack("local");
    expect(r.ofType("platform:mesh:ServiceMesh")).toHaveLength(1);
    const inference = r
      .ofType(NS)
      .map((n) => r.plain(n)["metadata"] as { name: string; labels: Record<string, string> })
      .find((m) => m.name === "inference")!;
    expect(inference.labels["istio-injection"]).toBe("enabled");
    expect(r.outputs["ingressHostname"]).toBe("platform.local");
    // Apps route on the mesh's Gateway: without it, none is routed.
    const off = await renderStack("local", {
      overrides: { "platform:mesh": { enabled: false }, "platform:apps": { services: [] } },
    });
    expect(off.ofType("platform:mesh:ServiceMesh")).toHaveLength(0);
    expect(allCrs(off).filter((x) => String(x["apiVersion"]).includes("istio.io"))).toHaveLength(0);
  });

  it.each(["local", "dev", "prod"] as const)(
    "%s: no schema errors, leaks or mandatory violations",
    async (stack) => {
      const r = await renderStack(stack, stack === "local" ? {} : { overrides: existingClusterFor(stack) });
      expect(r.plan.schemaErrors).toEqual([]);
      expect(r.plan.secretLeaks).toEqual([]);
      expect(unexpectedMandatory(stack, r.plan.violations)).toEqual([]);
      expect(r.ofType("platform:mesh:ServiceMesh")).toHaveLength(1);
    },
  );
});
