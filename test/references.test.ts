import { describe, expect, it } from "vitest";
import type { PlanObject } from "../tools/preflight/objects";
import {
  K3S_CRDS,
  dependsTransitively,
  referenceFindings,
  resolveServiceHost,
} from "../tools/preflight/references";

type Obj = Record<string, unknown>;
type Mutable = { -readonly [K in keyof PlanObject]: PlanObject[K] } & { object: Obj };

const CRD_CHART = "urn:pulumi:s::p::kubernetes:helm.sh/v4:Chart::crds";
const NS_URN = "urn:pulumi:s::p::kubernetes:core/v1:Namespace::app";

function mk(
  apiVersion: string,
  kind: string,
  name: string,
  body: Obj = {},
  opts: Partial<Mutable> & { ns?: string | null } = {},
): Mutable {
  const ns = opts.ns === undefined ? "app" : opts.ns;
  const type = `kubernetes:${apiVersion.includes("/") ? apiVersion : `core/${apiVersion}`}:${kind}`;
  const { ns: _ns, ...rest } = opts;
  const meta = { name, ...(ns ? { namespace: ns } : {}), ...(obj(body["metadata"]) ?? {}) };
  return {
    urn: `urn:pulumi:s::p::${type}::${ns ? `${ns}/` : ""}${name}`,
    type,
    name,
    dependsOn: ns && ns !== "default" ? [NS_URN] : [],
    rendered: false,
    ...rest,
    object: { apiVersion, kind, ...body, metadata: meta },
  };
}

function obj(v: unknown): Obj | undefined {
  return v && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : undefined;
}

function crd(group: string, kind: string, plural: string): Mutable {
  return {
    ...mk(
      "apiextensions.k8s.io/v1",
      "CustomResourceDefinition",
      `${plural}.${group}`,
      { spec: { group, names: { kind, plural }, scope: "Namespaced" } },
      { ns: null },
    ),
    rendered: true,
    parent: CRD_CHART,
    chart: { urn: CRD_CHART, ref: "crds-1.0.0" },
  };
}

/** A CR that waits for the CRD chart. */
function cr(apiVersion: string, kind: string, name: string, spec: Obj): Mutable {
  const o = mk(apiVersion, kind, name, { spec });
  return { ...o, dependsOn: [...o.dependsOn, CRD_CHART] };
}

function webDeployment(): Mutable {
  return mk("apps/v1", "Deployment", "web", {
    spec: {
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: { app: "web" } },
        spec: {
          serviceAccountName: "web",
          imagePullSecrets: [{ name: "regcred" }],
          containers: [
            {
              name: "web",
              image: "web:1",
              ports: [
                { name: "http", containerPort: 8080 },
                { name: "metrics", containerPort: 9090 },
              ],
              readinessProbe: { httpGet: { path: "/ready", port: "http" } },
              livenessProbe: { tcpSocket: { port: 8080 } },
              env: [{ name: "DB", valueFrom: { secretKeyRef: { name: "web-db", key: "url" } } }],
              envFrom: [{ configMapRef: { name: "web-config" } }],
              volumeMounts: [
                { name: "tls", mountPath: "/tls" },
                { name: "ca", mountPath: "/ca" },
              ],
            },
          ],
          volumes: [
            { name: "tls", secret: { secretName: "web-tls" } },
            {
              name: "ca",
              projected: {
                sources: [{ configMap: { name: "kube-root-ca.crt" } }, { configMap: { name: "web-config" } }],
              },
            },
          ],
        },
      },
    },
  });
}

function natsStatefulSet(): Mutable {
  return mk("apps/v1", "StatefulSet", "nats", {
    spec: {
      serviceName: "nats-headless",
      selector: { matchLabels: { app: "nats" } },
      volumeClaimTemplates: [{ metadata: { name: "data" }, spec: {} }],
      template: {
        metadata: { labels: { app: "nats" } },
        spec: {
          containers: [
            {
              name: "nats",
              image: "nats:2",
              ports: [
                { name: "client", containerPort: 4222 },
                { name: "monitor", containerPort: 8222 },
              ],
              volumeMounts: [{ name: "data", mountPath: "/data" }],
            },
          ],
        },
      },
    },
  });
}

function basePlan(): Mutable[] {
  return [
    mk("v1", "Namespace", "app", { metadata: { labels: { "istio-injection": "enabled" } } }, { ns: null }),
    crd("cert-manager.io", "Certificate", "certificates"),
    crd("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
    crd("monitoring.coreos.com", "PodMonitor", "podmonitors"),
    crd("keda.sh", "ScaledObject", "scaledobjects"),
    crd("networking.istio.io", "VirtualService", "virtualservices"),
    crd("networking.istio.io", "DestinationRule", "destinationrules"),
    crd("flagger.app", "Canary", "canaries"),
    webDeployment(),
    mk("v1", "ServiceAccount", "web"),
    mk("v1", "ConfigMap", "web-config", { data: { a: "b" } }),
    mk("v1", "Secret", "web-db", { stringData: { url: "x" } }),
    mk("v1", "Secret", "regcred", { type: "kubernetes.io/dockerconfigjson" }),
    cr("cert-manager.io/v1", "Certificate", "web-tls", { secretName: "web-tls" }),
    mk("v1", "Service", "web", {
      metadata: { labels: { app: "web" } },
      spec: {
        selector: { app: "web" },
        ports: [
          { name: "http", port: 80, targetPort: "http" },
          { name: "metrics", port: 9090, targetPort: "metrics" },
        ],
      },
    }),
    natsStatefulSet(),
    mk("v1", "Service", "nats-headless", {
      spec: {
        clusterIP: "None",
        selector: { app: "nats" },
        ports: [
          { name: "client", port: 4222 },
          { name: "monitor", port: 8222 },
        ],
      },
    }),
    cr("monitoring.coreos.com/v1", "ServiceMonitor", "web", {
      selector: { matchLabels: { app: "web" } },
      endpoints: [{ port: "metrics" }],
    }),
    cr("monitoring.coreos.com/v1", "PodMonitor", "nats", {
      selector: { matchLabels: { app: "nats" } },
      podMetricsEndpoints: [{ port: "monitor" }],
    }),
    cr("keda.sh/v1alpha1", "ScaledObject", "worker", {
      scaleTargetRef: { name: "web" },
      triggers: [
        {
          type: "nats-jetstream",
          metadata: { natsServerMonitoringEndpoint: "nats-headless.app.svc:8222", stream: "jobs" },
        },
        {
          type: "prometheus",
          metadata: { serverAddress: "http://web.app.svc.cluster.local:9090", query: "up", threshold: "1" },
        },
      ],
    }),
    cr("networking.istio.io/v1beta1", "VirtualService", "web", {
      hosts: ["web"],
      http: [
        {
          route: [
            { destination: { host: "web-primary", port: { number: 80 } }, weight: 90 },
            { destination: { host: "web-canary.app.svc.cluster.local", port: { number: 80 } }, weight: 10 },
          ],
        },
      ],
    }),
    cr("networking.istio.io/v1beta1", "DestinationRule", "web", {
      host: "web.app.svc.cluster.local",
      trafficPolicy: { portLevelSettings: [{ port: { number: 80 }, tls: { mode: "ISTIO_MUTUAL" } }] },
    }),
    cr("flagger.app/v1beta1", "Canary", "web", {
      targetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "web" },
      service: { port: 80, targetPort: "http" },
    }),
  ];
}

function named(plan: Mutable[], kind: string, name: string): Mutable {
  const o = plan.find((x) => x.object["kind"] === kind && obj(x.object["metadata"])?.["name"] === name);
  if (!o) throw new Error(`${kind} ${name} not in fixture`);
  return o;
}

function remove(plan: Mutable[], kind: string, name: string): Mutable[] {
  const o = named(plan, kind, name);
  return plan.filter((x) => x !== o);
}

/** The first container of a workload's pod template. */
function container(o: Mutable): Obj {
  const spec = obj(o.object["spec"])!;
  return (obj(obj(spec["template"])!["spec"])!["containers"] as Obj[])[0]!;
}

function podSpec(o: Mutable): Obj {
  return obj(obj(obj(o.object["spec"])!["template"])!["spec"])!;
}

const messages = (plan: readonly PlanObject[], options?: Parameters<typeof referenceFindings>[1]) =>
  referenceFindings(plan, options).map((f) => f.message);

describe("the fixture plan", () => {
  it("is clean", () => {
    expect(referenceFindings(basePlan())).toEqual([]);
  });
});

describe("dependsTransitively", () => {
  const a = mk("v1", "ConfigMap", "a", {}, { dependsOn: ["urn:b"] });
  const b = { ...mk("v1", "ConfigMap", "b"), urn: "urn:b", dependsOn: ["urn:chart"] };
  const c = { ...mk("v1", "ConfigMap", "c"), urn: "urn:c", parent: "urn:chart", dependsOn: [] };
  const d = { ...mk("v1", "ConfigMap", "d"), urn: "urn:d", parent: "urn:c", dependsOn: [] };
  const e = { ...mk("v1", "ConfigMap", "e"), urn: "urn:e", parent: "urn:inner", dependsOn: [] };
  const f = { ...mk("v1", "ConfigMap", "f"), urn: "urn:f", dependsOn: ["urn:outer", "urn:f"] };

  it("follows dependsOn, expands components to their objects, and a custom parent counts", () => {
    const waits = dependsTransitively([a, b, c, d]);
    expect([...waits(a.urn)].sort()).toEqual(["urn:b", "urn:c", "urn:d"]);
    expect([...waits(d.urn)]).toEqual(["urn:c"]);
    expect(waits(c.urn).size).toBe(0);
  });

  it("expands nested components when they are given, and survives cycles", () => {
    const waits = dependsTransitively([e, f], [{ urn: "urn:inner", parent: "urn:outer" }]);
    expect([...waits(f.urn)].sort()).toEqual(["urn:e", "urn:f"]);
    expect(dependsTransitively([e, f])(f.urn).has("urn:e")).toBe(false);
  });
});

describe("pod template references", () => {
  it("reports a missing Secret volume, naming both ends and the field", () => {
    const plan = remove(basePlan(), "Certificate", "web-tls");
    const found = referenceFindings(plan);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({
      check: "reference",
      severity: "error",
      urn: named(plan, "Deployment", "web").urn,
      target: "Secret app/web-tls",
      field: "spec.template.spec.volumes[tls].secret.secretName",
    });
    expect(found[0]!.message).toContain("Deployment app/web");
  });

  it("accepts a missing Secret marked optional", () => {
    const plan = remove(basePlan(), "Certificate", "web-tls");
    (podSpec(named(plan, "Deployment", "web"))["volumes"] as Obj[])[0] = {
      name: "tls",
      secret: { secretName: "web-tls", optional: true },
    };
    expect(referenceFindings(plan)).toEqual([]);
  });

  it("reports missing ConfigMaps (envFrom, projected), env Secrets, pull Secrets and ServiceAccounts", () => {
    let plan = remove(basePlan(), "ConfigMap", "web-config");
    plan = remove(plan, "Secret", "web-db");
    plan = remove(plan, "Secret", "regcred");
    plan = remove(plan, "ServiceAccount", "web");
    const fields = referenceFindings(plan)
      .map((f) => `${f.target} @ ${f.field}`)
      .sort();
    expect(fields).toEqual([
      "ConfigMap app/web-config @ spec.template.spec.containers[web].envFrom[0].configMapRef",
      "ConfigMap app/web-config @ spec.template.spec.volumes[ca].projected.sources[1].configMap.name",
      "Secret app/regcred @ spec.template.spec.imagePullSecrets[0]",
      "Secret app/web-db @ spec.template.spec.containers[web].env[DB].valueFrom.secretKeyRef",
      "ServiceAccount app/web @ spec.template.spec.serviceAccountName",
    ]);
  });

  it("counts the default ServiceAccount and kube-root-ca.crt as cluster-provided", () => {
    const plan = remove(basePlan(), "ServiceAccount", "web");
    delete podSpec(named(plan, "Deployment", "web"))["serviceAccountName"];
    expect(referenceFindings(plan)).toEqual([]);
  });

  it("counts istio-ca-root-cert only with Istio in the plan and an injected namespace", () => {
    const withCa = () => {
      const plan = basePlan();
      (podSpec(named(plan, "Deployment", "web"))["volumes"] as Obj[]).push({
        name: "istio-ca",
        configMap: { name: "istio-ca-root-cert" },
      });
      return plan;
    };
    expect(messages(withCa())).toEqual([expect.stringContaining("ConfigMap app/istio-ca-root-cert")]);
    const istiod = mk(
      "apps/v1",
      "Deployment",
      "istiod",
      { spec: { template: { metadata: { labels: { app: "istiod" } }, spec: { containers: [] } } } },
      { ns: "istio-system" },
    );
    const istioNs = mk("v1", "Namespace", "istio-system", {}, { ns: null });
    istiod.dependsOn = [istioNs.urn];
    expect(referenceFindings([...withCa(), istioNs, istiod])).toEqual([]);
    const notInjected = withCa();
    named(notInjected, "Namespace", "app").object["metadata"] = { name: "app" };
    expect(messages([...notInjected, istioNs, istiod])).toEqual([
      expect.stringContaining("istio-ca-root-cert"),
    ]);
  });

  it("satisfies StatefulSet claims from volumeClaimTemplates and reports other PVCs and mounts", () => {
    const plan = basePlan();
    const sts = named(plan, "StatefulSet", "nats");
    podSpec(sts)["volumes"] = [
      { name: "own", persistentVolumeClaim: { claimName: "data-nats-0" } },
      { name: "cache", persistentVolumeClaim: { claimName: "nats-cache" } },
    ];
    (container(sts)["volumeMounts"] as Obj[]).push({ name: "scratch", mountPath: "/s" });
    expect(
      referenceFindings(plan)
        .map((f) => f.target)
        .sort(),
    ).toEqual(["PersistentVolumeClaim app/nats-cache", "volume scratch"]);
    plan.push(mk("v1", "PersistentVolumeClaim", "nats-cache", { spec: {} }));
    podSpec(sts)["volumes"] = [...(podSpec(sts)["volumes"] as Obj[]), { name: "scratch", emptyDir: {} }];
    expect(referenceFindings(plan)).toEqual([]);
  });

  it("names the dropped Helm hook that would have created a missing Secret", () => {
    const plan = remove(basePlan(), "Certificate", "web-tls");
    const found = messages(plan, {
      droppedHooks: [
        {
          urn: "urn:hook",
          kind: "Job",
          name: "web-certgen",
          namespace: "app",
          creates: [{ kind: "Secret", name: "web-tls" }],
        },
      ],
    });
    expect(found).toEqual([
      expect.stringContaining(
        "is created only by the Helm hook Job app/web-certgen that helm.v4.Chart drops",
      ),
    ]);
  });
});

describe("Service selectors", () => {
  it("reports a selector no pod template matches, and accepts a matching one", () => {
    const plan = basePlan();
    const svc = named(plan, "Service", "web");
    obj(svc.object["spec"])!["selector"] = { app: "website" };
    const found = referenceFindings(plan).filter((f) => f.urn === svc.urn);
    expect(found).toEqual([
      expect.objectContaining({ field: "spec.selector", target: "pods labelled app=website in app" }),
    ]);
    obj(svc.object["spec"])!["selector"] = { app: "web" };
    expect(referenceFindings(plan)).toEqual([]);
  });

  it("accepts a Service without selector", () => {
    const plan = basePlan();
    plan.push(mk("v1", "Service", "external", { spec: { ports: [{ port: 5432 }] } }));
    expect(referenceFindings(plan)).toEqual([]);
  });

  it("reports a named targetPort no selected container declares", () => {
    const plan = basePlan();
    (obj(named(plan, "Service", "web").object["spec"])!["ports"] as Obj[])[0]!["targetPort"] = "web";
    expect(messages(plan)).toEqual([
      expect.stringMatching(/spec\.ports\[http\]\.targetPort names port "web"/),
    ]);
  });
});

describe("ports named by monitors, triggers, routes, canaries and probes", () => {
  it("ServiceMonitor: the endpoint port must be declared on the selected Service", () => {
    const plan = basePlan();
    const sm = named(plan, "ServiceMonitor", "web");
    (obj(sm.object["spec"])!["endpoints"] as Obj[])[0]!["port"] = "prom";
    expect(referenceFindings(plan)).toEqual([
      expect.objectContaining({ urn: sm.urn, field: "spec.endpoints[0].port", target: "Service app/web" }),
    ]);
    obj(sm.object["spec"])!["selector"] = { matchLabels: { app: "nobody" } };
    expect(messages(plan)).toEqual([expect.stringContaining("no Service in the plan matches")]);
  });

  it("PodMonitor: the endpoint port must be a container port name", () => {
    const plan = basePlan();
    const pm = named(plan, "PodMonitor", "nats");
    (obj(pm.object["spec"])!["podMetricsEndpoints"] as Obj[])[0]!["port"] = "metrics";
    expect(referenceFindings(plan)).toEqual([
      expect.objectContaining({ urn: pm.urn, field: "spec.podMetricsEndpoints[0].port" }),
    ]);
  });

  it("KEDA: host:port in trigger metadata resolves to a Service declaring the port", () => {
    const plan = basePlan();
    const so = named(plan, "ScaledObject", "worker");
    const triggers = obj(so.object["spec"])!["triggers"] as Obj[];
    obj(triggers[0]!["metadata"])!["natsServerMonitoringEndpoint"] = "nats-headless.app.svc:8223";
    obj(triggers[1]!["metadata"])!["serverAddress"] = "http://prometheus.monitoring.svc:9090";
    expect(
      referenceFindings(plan)
        .map((f) => `${f.field} -> ${f.target}`)
        .sort(),
    ).toEqual([
      "spec.triggers[0].metadata.natsServerMonitoringEndpoint -> Service app/nats-headless",
      "spec.triggers[1].metadata.serverAddress -> Service monitoring/prometheus",
    ]);
  });

  it("KEDA: per-pod host names need a headless Service; external hosts are not checked", () => {
    const plan = basePlan();
    const so = named(plan, "ScaledObject", "worker");
    const triggers = obj(so.object["spec"])!["triggers"] as Obj[];
    obj(triggers[0]!["metadata"])!["natsServerMonitoringEndpoint"] = "nats-0.nats-headless.app.svc:8222";
    obj(triggers[1]!["metadata"])!["serverAddress"] = "https://prometheus.example.com";
    expect(referenceFindings(plan)).toEqual([]);
    obj(triggers[0]!["metadata"])!["natsServerMonitoringEndpoint"] = "web-0.web.app.svc.cluster.local:80";
    expect(messages(plan)).toEqual([expect.stringContaining("is not headless")]);
  });

  it("VirtualService: the destination host and port must exist (Flagger's Services count)", () => {
    const plan = basePlan();
    const vs = named(plan, "VirtualService", "web");
    const route = obj((obj(vs.object["spec"])!["http"] as Obj[])[0])!["route"] as Obj[];
    obj(route[0]!["destination"])!["port"] = { number: 8080 };
    obj(route[1]!["destination"])!["host"] = "web-preview";
    expect(
      referenceFindings(plan)
        .map((f) => `${f.field} -> ${f.target}`)
        .sort(),
    ).toEqual([
      "spec.http[0].route[0].destination -> Service app/web-primary",
      "spec.http[0].route[1].destination -> Service app/web-preview",
    ]);
  });

  it("DestinationRule: portLevelSettings ports must be Service ports", () => {
    const plan = basePlan();
    const dr = named(plan, "DestinationRule", "web");
    obj(dr.object["spec"])!["trafficPolicy"] = { portLevelSettings: [{ port: { number: 8080 } }] };
    expect(referenceFindings(plan)).toEqual([
      expect.objectContaining({ urn: dr.urn, field: "spec.trafficPolicy.portLevelSettings[0].port" }),
    ]);
  });

  it("Canary: the targetRef must exist and the targetPort be a port of its containers", () => {
    const plan = basePlan();
    const canary = named(plan, "Canary", "web");
    obj(obj(canary.object["spec"])!["service"])!["targetPort"] = "grpc";
    expect(messages(plan)).toEqual([expect.stringContaining('spec.service.targetPort names port "grpc"')]);
    obj(obj(canary.object["spec"])!["targetRef"])!["name"] = "webapp";
    obj(canary.object["spec"])!["service"] = { name: "web", port: 80, targetPort: "http" };
    expect(referenceFindings(plan)).toEqual([
      expect.objectContaining({ field: "spec.targetRef", target: "Deployment app/webapp" }),
    ]);
  });

  it("probes: a named port must be on the probe's own container; a number needs no declaration", () => {
    const plan = basePlan();
    const c = container(named(plan, "Deployment", "web"));
    c["readinessProbe"] = { httpGet: { path: "/", port: "health" } };
    // The kubelet probes a number on the pod IP whatever `ports` lists.
    c["livenessProbe"] = { tcpSocket: { port: 8081 } };
    expect(referenceFindings(plan).map((f) => f.field)).toEqual([
      "spec.template.spec.containers[web].readinessProbe.httpGet.port",
    ]);
    c["readinessProbe"] = { httpGet: { path: "/", port: "metrics" } };
    c["livenessProbe"] = { grpc: { port: 9090 } };
    expect(referenceFindings(plan)).toEqual([]);
  });
});

describe("CRDs", () => {
  it("reports a custom resource whose CRD nothing installs", () => {
    const plan = remove(basePlan(), "CustomResourceDefinition", "canaries.flagger.app");
    expect(referenceFindings(plan)).toEqual([
      expect.objectContaining({
        urn: named(plan, "Canary", "web").urn,
        target: "CustomResourceDefinition for Canary.flagger.app",
      }),
    ]);
  });

  it("reports a CRD in the plan the custom resource does not wait for", () => {
    const plan = basePlan();
    const canary = named(plan, "Canary", "web");
    canary.dependsOn = [NS_URN];
    expect(messages(plan)).toEqual([
      expect.stringContaining("needs CustomResourceDefinition canaries.flagger.app, which the plan installs"),
    ]);
    // Depending on the CRD itself, or being rendered by the same chart, is as good.
    canary.dependsOn = [NS_URN, named(plan, "CustomResourceDefinition", "canaries.flagger.app").urn];
    expect(referenceFindings(plan)).toEqual([]);
    canary.dependsOn = [NS_URN];
    canary.chart = { urn: CRD_CHART, ref: "crds-1.0.0" };
    expect(referenceFindings(plan)).toEqual([]);
  });

  it("accepts CRDs the cluster ships only when told (K3s)", () => {
    const plan = basePlan();
    plan.push(
      mk(
        "helm.cattle.io/v1",
        "HelmChartConfig",
        "traefik",
        { spec: { valuesContent: "" } },
        { ns: "kube-system" },
      ),
    );
    expect(messages(plan)).toEqual([expect.stringContaining("HelmChartConfig.helm.cattle.io")]);
    expect(referenceFindings(plan, { clusterCrds: K3S_CRDS })).toEqual([]);
  });
});

describe("namespaces", () => {
  it("reports a namespace the plan never creates, and accepts cluster namespaces", () => {
    const plan = basePlan();
    plan.push(
      mk("v1", "ConfigMap", "x", {}, { ns: "other" }),
      mk("v1", "ConfigMap", "y", {}, { ns: "kube-system" }),
    );
    expect(referenceFindings(plan)).toEqual([
      expect.objectContaining({ field: "metadata.namespace", target: "Namespace other" }),
    ]);
  });

  it("reports a Namespace in the plan the object does not wait for; dependsOn or parent fixes it", () => {
    const plan = basePlan();
    const cm = named(plan, "ConfigMap", "web-config");
    cm.dependsOn = [];
    expect(messages(plan)).toEqual([
      expect.stringContaining("which the plan creates but ConfigMap app/web-config"),
    ]);
    cm.parent = NS_URN;
    expect(referenceFindings(plan)).toEqual([]);
  });
});

describe("resolveServiceHost", () => {
  const isNs = (ns: string) => ns === "app";
  it.each([
    ["web", { key: "app/web" }],
    ["web.app", { key: "app/web" }],
    ["web.app.svc", { key: "app/web" }],
    ["web.other.svc.cluster.local", { key: "other/web" }],
    ["nats-0.nats.app.svc.cluster.local", { key: "app/nats", pod: "nats-0" }],
    ["nats-0.nats.app", { key: "app/nats", pod: "nats-0" }],
    ["api.example.com", undefined],
    ["localhost", undefined],
    ["*.app.svc.cluster.local", undefined],
  ])("%s", (host, want) => {
    expect(resolveServiceHost(host, "app", isNs)).toEqual(want);
  });
});

describe("what exists at run time without being in the plan", () => {
  it("operator-made Prometheus pods, the kubelet Service, default/kubernetes and CoreDNS", () => {
    const o = (kind: string, apiVersion: string, name: string, namespace: string, spec: object) => ({
      urn: `urn:${kind}:${name}`,
      type: `kubernetes:${apiVersion}:${kind}`,
      name,
      dependsOn: [],
      rendered: false,
      object: { apiVersion, kind, metadata: { name, namespace }, spec },
    });
    const objects = [
      o("Prometheus", "monitoring.coreos.com/v1", "kps", "mon", {}),
      o("Deployment", "apps/v1", "operator", "mon", {
        selector: { matchLabels: { app: "op" } },
        template: {
          metadata: { labels: { app: "op" } },
          spec: {
            containers: [{ name: "op", image: "op:1", args: ["--kubelet-service=kube-system/kps-kubelet"] }],
          },
        },
      }),
      o("Service", "v1", "kps-prometheus", "mon", {
        selector: { "app.kubernetes.io/name": "prometheus", "operator.prometheus.io/name": "kps" },
        ports: [{ name: "http-web", port: 9090, targetPort: "web" }],
      }),
      o("ServiceMonitor", "monitoring.coreos.com/v1", "kubelet", "mon", {
        selector: { matchLabels: { "k8s-app": "kubelet" } },
        namespaceSelector: { matchNames: ["kube-system"] },
        endpoints: [{ port: "https-metrics" }],
      }),
      o("ServiceMonitor", "monitoring.coreos.com/v1", "apiserver", "mon", {
        selector: { matchLabels: { component: "apiserver", provider: "kubernetes" } },
        namespaceSelector: { matchNames: ["default"] },
        endpoints: [{ port: "https" }],
      }),
      o("Service", "v1", "coredns", "kube-system", {
        selector: { "k8s-app": "kube-dns" },
        ports: [{ name: "metrics", port: 9153 }],
      }),
    ];
    const findings = referenceFindings(objects, {
      clusterNamespaces: ["mon"],
      clusterCrds: [
        { group: "monitoring.coreos.com", kind: "Prometheus", why: "test" },
        { group: "monitoring.coreos.com", kind: "ServiceMonitor", why: "test" },
      ],
    });
    expect(findings.map((f) => f.message)).toEqual([]);
    // Without the operator's flag, nothing makes the kubelet Service.
    const spec = objects[1]!.object.spec as { template: { spec: { containers: { args: string[] }[] } } };
    spec.template.spec.containers[0]!.args = [];
    expect(
      referenceFindings(objects, {
        clusterNamespaces: ["mon"],
        clusterCrds: [
          { group: "monitoring.coreos.com", kind: "Prometheus", why: "t" },
          { group: "monitoring.coreos.com", kind: "ServiceMonitor", why: "t" },
        ],
      }).map((f) => f.field),
    ).toEqual(["spec.selector"]);
  });
});
