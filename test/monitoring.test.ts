import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { monitoringSchema } from "../components/monitoring/schema";
import type { Distribution } from "../components/cluster/handle";
import {
  controlPlaneMonitors,
  MonitoringStack,
  otelCollectorValues,
  PROMETHEUS_URL,
} from "../components/monitoring/monitoring";
import { sloRuleGroups } from "../components/monitoring/rules";
import { STORE_RETENTION, storeRetention } from "../components/monitoring/schema";
import {
  alloyConfig,
  alloyValues,
  retentionHours,
  splitImage,
  storeEndpoints,
} from "../components/monitoring/stores";
import * as fs from "node:fs";
import * as path from "node:path";
import { SecretStore } from "../components/secrets/store";
import { chartImages, charts, images } from "../components/versions";
import { validateObject } from "../tools/preflight/schemas";
import { chartValuesKeys, unverifiedValuesKeys } from "./fixtures/chart-values-keys";
import { isSecretWrapped, render, renderStack, type Rendered } from "./harness";
import { existingClusterFor } from "./stack-overrides";

const CHART = "kubernetes:helm.sh/v4:Chart";
const SECRET = "kubernetes:core/v1:Secret";
const WEBHOOK = "https://hooks.example.org/services/T000/B000/abcdef";

async function stack(
  over: Record<string, unknown> = {},
  env: "local" | "dev" | "prod" = "dev",
  cluster: { distribution?: Distribution; certManager?: boolean } = {},
): Promise<Rendered> {
  return render(() => {
    const provider = new k8s.Provider("k8s", {});
    const store = new SecretStore("s", { provider, secrets: { alertWebhookUrl: pulumiSecret(WEBHOOK) } });
    // Stands in for cert-manager's chart (the monitoring chart must be applied after it).
    const certManager =
      cluster.certManager === false
        ? undefined
        : new k8s.core.v1.ServiceAccount(
            "cert-manager",
            { metadata: { name: "cert-manager" } },
            { provider },
          );
    new MonitoringStack("mon", {
      config: monitoringSchema.parse(over),
      environment: env,
      provider,
      secretStore: store,
      mesh: true,
      distribution: cluster.distribution ?? "k3s",
      ...(certManager ? { certManager } : {}),
    });
  });
}
const pulumiSecret = (v: string) => pulumi.secret(v);

/** True when `stringData[key]` of a Secret registration is a Pulumi secret (the whole map or the key). */
function secretKeyWrapped(inputs: Record<string, unknown>, key: string): boolean {
  const data = inputs["stringData"];
  if (isSecretWrapped(data)) return true;
  return isSecretWrapped((data as Record<string, unknown>)[key]);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- chart values are opaque JSON
const kps = (r: Rendered): any => r.plain(r.get(CHART, "mon-kube-prometheus-stack"))["values"];

describe("MonitoringStack graph", () => {
  it("gives Grafana its admin login through existingSecret, never inline", async () => {
    const r = await stack();
    const grafana = kps(r).grafana;
    expect(grafana.admin).toEqual({
      existingSecret: "grafana-admin",
      userKey: "admin-user",
      passwordKey: "admin-password",
    });
    expect(JSON.stringify(grafana)).not.toMatch(/adminPassword/);
    const secret = r.ofType(SECRET).find((s) => r.plain(s)["metadata"].name === "grafana-admin")!;
    expect(r.plain(secret)["metadata"].namespace).toBe("monitoring");
    expect(secretKeyWrapped(secret.inputs, "admin-password")).toBe(true);
    expect(r.ofType("random:index/randomPassword:RandomPassword")).toHaveLength(1);
  });

  it("sizes retention and storage from config and scrapes mesh workloads with mesh certs", async () => {
    const spec = kps(await stack({ retention: "15d", storageSize: "200Gi", prometheusReplicas: 2 }))
      .prometheus.prometheusSpec;
    expect(spec.retention).toBe("15d");
    expect(spec.replicas).toBe(2);
    expect(spec.storageSpec.volumeClaimTemplate.spec.resources.requests.storage).toBe("200Gi");
    expect(spec.enableRemoteWriteReceiver).toBe(true);
    expect(spec.podMetadata.labels["sidecar.istio.io/inject"]).toBe("true");
    expect(spec.podMetadata.annotations["traffic.sidecar.istio.io/includeInboundPorts"]).toBe("");
  });

  it("sets only values keys verified against the pinned kube-prometheus-stack and collector charts", async () => {
    const variants = [
      await stack({ grafanaStorageSize: "5Gi", otelTracesEndpoint: "https://tempo:4317" }, "prod"),
      await stack({}, "local", { distribution: "generic", certManager: false }),
    ];
    for (const r of variants)
      for (const [name, pin, keys] of [
        ["mon-kube-prometheus-stack", "kubePrometheusStack", chartValuesKeys.kubePrometheusStack],
        ["mon-otel-collector", "openTelemetryCollector", chartValuesKeys.openTelemetryCollector],
        ["mon-loki", "loki", chartValuesKeys.loki],
        ["mon-tempo", "tempo", chartValuesKeys.tempo],
        ["mon-alloy", "alloy", chartValuesKeys.alloy],
      ] as const) {
        // A bump re-checks the keys against the new chart (and moves the fixture's version).
        expect(charts[pin].version, `${name}: fixture is for another chart version`).toBe(keys.version);
        expect(unverifiedValuesKeys(r.plain(r.get(CHART, name))["values"] as object, keys), name).toEqual([]);
      }
  });

  it("gives Grafana the platform's own claim, protected in prod, and no root chown init container", async () => {
    const PVC = "kubernetes:core/v1:PersistentVolumeClaim";
    for (const env of ["dev", "prod"] as const) {
      const r = await stack({ grafanaStorageSize: "5Gi" }, env);
      const claim = r.get(PVC, "mon-grafana-storage");
      expect(claim.protect).toBe(env === "prod");
      expect(r.plain(claim)["spec"].resources.requests.storage).toBe("5Gi");
      const grafana = kps(r).grafana;
      expect(grafana.persistence).toEqual({ enabled: true, existingClaim: r.plain(claim)["metadata"].name });
      expect(grafana.initChownData).toEqual({ enabled: false });
      // The chart mounts the claim only once it exists.
      expect(r.get(CHART, "mon-kube-prometheus-stack").dependsOn).toContain(claim.urn);
    }
    const without = await stack({}, "prod");
    // Only the stores' own claims remain (Grafana's is gone).
    expect(
      without
        .ofType(PVC)
        .map((c) => c.name)
        .sort(),
    ).toEqual(["mon-loki-storage", "mon-tempo-storage"]);
    expect(kps(without).grafana.persistence).toEqual({ enabled: false });
  });

  it("never mounts the hook-made admission Secret: cert-manager issues it, or webhook and TLS are off", async () => {
    // With cert-manager: the chart's Certificate writes `kps-admission`; the patch hook Job is off.
    const withCm = await stack();
    const op = kps(withCm).prometheusOperator;
    expect(op.admissionWebhooks).toEqual({
      enabled: true,
      certManager: { enabled: true },
      patch: { enabled: false },
    });
    expect(op.tls).toEqual({ enabled: true });
    const chart = withCm.get(CHART, "mon-kube-prometheus-stack");
    const cm = withCm.registrations.find((x) => x.name === "cert-manager")!;
    expect(chart.dependsOn).toContain(cm.urn);
    // Without: nothing mounts or serves that Secret (TLS off with the webhook), so no hook is needed.
    const off = kps(await stack({}, "dev", { certManager: false })).prometheusOperator;
    expect(off.admissionWebhooks.enabled).toBe(false);
    expect(off.admissionWebhooks.certManager.enabled).toBe(false);
    expect(off.tls).toEqual({ enabled: false });
    // Whichever way, the TLS listener is on exactly when its certificate comes from cert-manager.
    for (const v of [op, off]) expect(v.tls.enabled).toBe(v.admissionWebhooks.certManager.enabled);
  });

  it("does not monitor (or alert on) control-plane parts K3s embeds or a managed cluster hides", async () => {
    const parts = ["kubeControllerManager", "kubeScheduler", "kubeProxy", "kubeEtcd"] as const;
    const rules = [
      "kubeControllerManager",
      "kubeSchedulerAlerting",
      "kubeSchedulerRecording",
      "kubeProxy",
      "etcd",
    ];
    for (const distribution of ["k3s", "k3d"] as const) {
      const v = kps(await stack({}, "dev", { distribution }));
      for (const p of parts) expect(v[p], `${distribution} ${p}`).toEqual({ enabled: false });
      for (const rule of rules) expect(v.defaultRules.rules[rule], `${distribution} ${rule}`).toBe(false);
    }
    const generic = kps(await stack({}, "dev", { distribution: "generic" }));
    for (const p of parts) expect(generic[p]).toEqual({ enabled: true });
    for (const rule of rules) expect(generic.defaultRules.rules[rule]).toBe(true);
    // Managed control planes: no controller-manager, scheduler or etcd to scrape; kube-proxy runs on nodes.
    for (const d of ["eks", "gke", "aks"] as const)
      expect(controlPlaneMonitors(d)).toEqual({
        controllerManager: false,
        scheduler: false,
        proxy: true,
        etcd: false,
      });
    // A monitor and its rules always move together.
    for (const d of ["k3s", "k3d", "generic", "kind", "eks", "gke", "aks"] as const) {
      const v = kps(await stack({}, "dev", { distribution: d }));
      expect(v.defaultRules.rules.kubeControllerManager).toBe(v.kubeControllerManager.enabled);
      expect(v.defaultRules.rules.kubeSchedulerAlerting).toBe(v.kubeScheduler.enabled);
      expect(v.defaultRules.rules.kubeSchedulerRecording).toBe(v.kubeScheduler.enabled);
      expect(v.defaultRules.rules.kubeProxy).toBe(v.kubeProxy.enabled);
      expect(v.defaultRules.rules.etcd).toBe(v.kubeEtcd.enabled);
    }
  });

  it("never protects the chart: protect would reach every rendered object, not the operator's volumes", async () => {
    // Prometheus's TSDB lives on PVCs the operator's StatefulSet creates; Kubernetes keeps them when
    // the StatefulSet goes, and a protected chart would block every replaced ConfigMap in prod.
    expect((await stack({}, "prod")).get(CHART, "mon-kube-prometheus-stack").protect).toBe(false);
    expect((await stack({}, "dev")).get(CHART, "mon-kube-prometheus-stack").protect).toBe(false);
  });

  it("labels the monitoring namespace privileged (node-exporter) and never injects it", async () => {
    const r = await stack();
    const ns = r.plain(r.ofType("kubernetes:core/v1:Namespace")[0]!)["metadata"];
    expect(ns.name).toBe("monitoring");
    expect(ns.labels["pod-security.kubernetes.io/enforce"]).toBe("privileged");
    expect(ns.labels["istio-injection"]).toBeUndefined();
  });

  it("runs an OpenTelemetry collector writing metrics into Prometheus", async () => {
    const r = await stack();
    const v = r.plain(r.get(CHART, "mon-otel-collector"))["values"];
    expect(v.mode).toBe("deployment");
    expect(v.image.tag).not.toBe("latest");
    expect(v.config.exporters.prometheusremotewrite.endpoint).toBe(`${PROMETHEUS_URL}/api/v1/write`);
    expect(v.config.service.pipelines.metrics.exporters).toEqual(["prometheusremotewrite"]);
    // Traces go to the in-cluster Tempo's OTLP gRPC port by default, else nowhere (debug).
    expect(v.config.service.pipelines.traces.exporters).toEqual(["otlp"]);
    expect(v.config.exporters.otlp).toEqual({ endpoint: "tempo.monitoring:4317", tls: { insecure: true } });
    const none = otelCollectorValues(monitoringSchema.parse({ traces: { enabled: false } }), "dev");
    expect(none.config).toMatchObject({ service: { pipelines: { traces: { exporters: ["debug"] } } } });
    const tempo = otelCollectorValues(monitoringSchema.parse({ otelTracesEndpoint: "tempo:4317" }), "dev");
    expect(tempo.config).toMatchObject({ exporters: { otlp: { endpoint: "tempo:4317" } } });
    expect((await stack({ otel: false })).ofType(CHART).map((c) => c.name)).not.toContain(
      "mon-otel-collector",
    );
  });

  it("pins every image of the monitoring charts by its traced digest, in each chart's own keys", async () => {
    const r = await stack({}, "prod");
    const v = r.plain(r.get(CHART, "mon-kube-prometheus-stack"))["values"];
    const img = chartImages.kubePrometheusStack.images;
    const hex = (d: string | undefined) => d!.replace(/^sha256:/, "");
    // `{registry, repository, tag, sha}`: the templates print `registry/repository:tag@sha256:<sha>`.
    expect(v.prometheusOperator.image).toEqual({
      registry: "quay.io",
      repository: "prometheus-operator/prometheus-operator",
      tag: "v0.93.1",
      sha: hex(img.prometheusOperator.digest),
    });
    // Images that reach pods only through the operator: its reloader flag and the custom resources.
    expect(v.prometheusOperator.prometheusConfigReloader.image.sha).toBe(hex(img.configReloader.digest));
    expect(v.prometheus.prometheusSpec.image).toMatchObject({
      tag: "v3.14.0-distroless",
      sha: hex(img.prometheus.digest),
    });
    expect(v.alertmanager.alertmanagerSpec.image).toMatchObject({
      tag: "v0.34.0",
      sha: hex(img.alertmanager.digest),
    });
    expect(v.grafana.image).toMatchObject({ repository: "grafana/grafana", sha: hex(img.grafana.digest) });
    expect(v.grafana.sidecar.image.sha).toBe(hex(img.grafanaSidecar.digest));
    // kube-state-metrics prints `@<sha>`: the whole digest. node-exporter forbids `sha`: `digest`.
    expect(v["kube-state-metrics"].image.sha).toBe(img.kubeStateMetrics.digest);
    expect(v["prometheus-node-exporter"].image).toEqual({ digest: img.nodeExporter.digest });
    // Untraced (thanos): the chart's default stays, nothing set.
    expect(v.prometheusOperator.thanosImage).toBeUndefined();
    // The collector: `tag@digest`, since the chart's `digest` key would print the digest alone.
    const otel = r.plain(r.get(CHART, "mon-otel-collector"))["values"];
    expect(otel.image).toEqual({
      repository: images.otelCollectorContrib.repository,
      tag: `${images.otelCollectorContrib.tag}@${images.otelCollectorContrib.digest}`,
    });
    // Every stack pins alike (what dev runs is what prod runs).
    expect(
      r.plain((await stack({}, "dev")).get(CHART, "mon-kube-prometheus-stack"))["values"].grafana.image,
    ).toEqual(v.grafana.image);
  });

  it("ships a GPU dashboard ConfigMap with nothing secret-looking", async () => {
    const r = await stack();
    const cm = r.plain(r.get("kubernetes:core/v1:ConfigMap", "mon-gpu-dashboard"));
    expect(cm["metadata"].labels["grafana_dashboard"]).toBe("1");
    const json = cm["data"]["gpu-pools.json"] as string;
    const titles = (JSON.parse(json) as { panels: { title: string }[] }).panels.map((p) => p.title).join(" ");
    for (const word of ["utilization", "memory", "Power", "Temperature", "pool"])
      expect(titles).toContain(word);
    for (const metric of [
      "DCGM_FI_DEV_GPU_UTIL",
      "DCGM_FI_DEV_FB_USED",
      "DCGM_FI_DEV_POWER_USAGE",
      "DCGM_FI_DEV_GPU_TEMP",
    ])
      expect(json).toContain(metric);
    expect(json).not.toMatch(/password|token|secret|apikey|BEGIN [A-Z ]*KEY/i);
  });

  it("alerts to a webhook whose URL stays in a Secret", async () => {
    const r = await stack({ alertWebhook: true });
    const am = r.plain(
      r.get("kubernetes:monitoring.coreos.com/v1alpha1:AlertmanagerConfig", "mon-alert-webhook"),
    );
    expect(am["spec"].receivers[0].webhookConfigs[0].urlSecret).toEqual({
      name: "alertmanager-webhook",
      key: "url",
    });
    expect(am["metadata"].labels["platform.ai/alertmanager-config"]).toBe("platform");
    const secret = r.ofType(SECRET).find((s) => r.plain(s)["metadata"].name === "alertmanager-webhook")!;
    expect(secretKeyWrapped(secret.inputs, "url")).toBe(true);
    for (const reg of r.registrations.filter((x) => x.type !== SECRET))
      expect(JSON.stringify(r.plain(reg)), reg.urn).not.toContain(WEBHOOK);
    expect(kps(r).alertmanager.alertmanagerSpec.alertmanagerConfigSelector.matchLabels).toEqual({
      "platform.ai/alertmanager-config": "platform",
    });
    expect(r.registrations.filter((x) => x.type.endsWith(":AlertmanagerConfig"))).toHaveLength(1);
    expect((await stack()).registrations.filter((x) => x.type.endsWith(":AlertmanagerConfig"))).toHaveLength(
      0,
    );
  });

  it("renders schema-valid monitoring.coreos.com resources", async () => {
    const r = await stack({ alertWebhook: true });
    const crs = r.registrations.filter((x) => x.type.startsWith("kubernetes:monitoring.coreos.com/"));
    expect(crs.map((c) => c.type.split(":")[2]).sort()).toEqual([
      "AlertmanagerConfig",
      "PodMonitor",
      "PrometheusRule",
    ]);
    for (const c of crs) expect(validateObject(r.plain(c)), c.name).toEqual({ ok: true });
  });
});

describe("inference SLO rules", () => {
  const slo = {
    errorRatePercent: 0.37,
    p95LatencyMs: 1234,
    p99LatencyMs: 4321,
    timeToFirstTokenMs: 777,
    queueDepth: 42,
    gpuMemoryPercent: 91,
    gpuUtilizationPercent: 88,
  };
  const alerts = Object.fromEntries(
    sloRuleGroups(slo)
      .flatMap((g) => g.rules)
      .filter((r) => r.alert)
      .map((r) => [r.alert!, r.expr]),
  );
  it.each([
    ["InferenceErrorRateHigh", "gateway_http_request_duration_seconds_count", "> 0.37"],
    [
      "InferenceLatencyP95High",
      "histogram_quantile(0.95, sum by (le, namespace, route) (rate(gateway_http_request_duration_seconds_bucket",
      "> 1.234",
    ],
    ["InferenceLatencyP99High", "histogram_quantile(0.99", "> 4.321"],
    ["TimeToFirstTokenHigh", "gateway_time_to_first_token_seconds_bucket", "> 0.777"],
    ["InferenceQueueDepthHigh", 'gateway_queue_depth{state="pending"}', "> 42"],
    ["GpuMemoryNearlyFull", "platform:gpu_memory_used_ratio:by_gpu", "> 91"],
    ["GpuPoolSaturated", "platform:gpu_utilization:avg_by_pool", "> 88"],
  ])("%s reads %s against its threshold", (alert, metric, threshold) => {
    expect(alerts[alert]).toContain(metric);
    expect(alerts[alert]!.endsWith(threshold)).toBe(true);
  });

  it("leaves the model servers' objectives to their own SLOs (inference/slo.ts)", () => {
    expect(JSON.stringify(sloRuleGroups(slo))).not.toContain("vllm:");
  });

  it("records GPU series per pool from DCGM and the node pool label", () => {
    const records = sloRuleGroups(slo)
      .flatMap((g) => g.rules)
      .filter((r) => r.record);
    const text = records.map((r) => r.expr).join("\n");
    for (const m of [
      "DCGM_FI_DEV_GPU_UTIL",
      "DCGM_FI_DEV_FB_USED",
      "DCGM_FI_DEV_FB_FREE",
      "label_platform_ai_gpu_pool",
    ])
      expect(text).toContain(m);
  });
});

describe("monitoring in the stacks", () => {
  it("prod keeps the Grafana password and the webhook URL inside Secrets (canary hunt)", async () => {
    const r = await renderStack("prod", { overrides: existingClusterFor("prod") });
    expect(r.plan.secretLeaks).toEqual([]);
    const secrets = r.ofType(SECRET).map((s) => (r.plain(s)["metadata"] as { name: string }).name);
    expect(secrets).toEqual(expect.arrayContaining(["grafana-admin", "alertmanager-webhook"]));
    // The webhook canary really is planted and lands in its Secret, wrapped.
    const webhook = r.ofType(SECRET).find((s) => r.plain(s)["metadata"].name === "alertmanager-webhook")!;
    expect(secretKeyWrapped(webhook.inputs, "url")).toBe(true);
    expect(r.plain(webhook)["stringData"]["url"]).toContain("pfcanary");
    expect(r.outputs["grafanaUrl"]).toBe("http://grafana.monitoring.svc.cluster.local");
    expect(r.outputs["grafanaAdminSecret"]).toBe("monitoring/grafana-admin");
  });

  it("local: the monitoring chart comes after cert-manager, which issues its webhook certificate", async () => {
    const r = await renderStack("local");
    const byChart = (chart: string) => r.ofType(CHART).find((c) => r.plain(c)["chart"] === chart)!;
    const stackChart = byChart("kube-prometheus-stack");
    expect(stackChart.dependsOn).toContain(byChart("cert-manager").urn);
    expect(r.plain(stackChart)["values"].prometheusOperator.admissionWebhooks.certManager.enabled).toBe(true);
    // local is K3s: no monitors of what it embeds.
    expect(r.plain(stackChart)["values"].kubeEtcd.enabled).toBe(false);
  });

  it("is switched off by config", async () => {
    const r = await renderStack("local", { overrides: { "platform:monitoring": { enabled: false } } });
    expect(r.ofType("platform:monitoring:MonitoringStack")).toHaveLength(0);
    expect(r.registrations.filter((x) => x.type.includes("monitoring.coreos.com"))).toHaveLength(0);
    // No logs or traces store without monitoring.
    expect(r.ofType(CHART).filter((c) => /-(loki|tempo|alloy)$/.test(c.name))).toEqual([]);
    // Flagger (when on) falls back to its own Prometheus; the mesh has no scrape allow.
    expect(r.registrations.filter((x) => x.name.endsWith("allow-prometheus-scrape"))).toHaveLength(0);
    expect(r.plan.schemaErrors).toEqual([]);
  });
});

describe("logs and traces stores", () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- chart values are opaque JSON
  const values = (r: Rendered, name: string): any => r.plain(r.get(CHART, name))["values"];

  it("installs Loki, Alloy and Tempo from their pinned charts, each with the pinned images", async () => {
    const r = await stack({}, "prod");
    for (const [name, pin] of [
      ["mon-loki", charts.loki],
      ["mon-tempo", charts.tempo],
      ["mon-alloy", charts.alloy],
    ] as const) {
      const c = r.plain(r.get(CHART, name));
      expect({ chart: c["chart"], version: c["version"], repo: c["repositoryOpts"].repo }, name).toEqual(pin);
    }
    expect(charts.loki.version).toBe(chartImages.loki.chartVersion);
    expect(charts.tempo.version).toBe(chartImages.tempo.chartVersion);
    expect(charts.alloy.version).toBe(chartImages.alloy.chartVersion);
    const tempo = chartImages.tempo.images.tempo;
    expect(values(r, "mon-tempo").tempo).toMatchObject({
      registry: "docker.io",
      repository: "grafana/tempo",
      tag: `${tempo.tag}@${tempo.digest}`,
    });
    // Untraced: nothing set, the chart's default (its appVersion, the pinned tag) stays.
    expect(values(r, "mon-loki").loki.image).toBeUndefined();
    expect(values(r, "mon-alloy").image).toBeUndefined();
    expect(splitImage({ repository: "docker.io/grafana/loki", tag: "3.7.6" })).toBeUndefined();
  });

  it("runs Loki as one monolithic binary on filesystem storage, on the platform's claim protected in prod", async () => {
    const PVC = "kubernetes:core/v1:PersistentVolumeClaim";
    for (const env of ["dev", "prod"] as const) {
      const r = await stack({ logs: { storageSize: "30Gi" }, traces: { storageSize: "20Gi" } }, env);
      const loki = values(r, "mon-loki");
      expect(loki.deploymentMode).toBe("Monolithic");
      expect(loki.singleBinary.replicas).toBe(1);
      expect([loki.read.replicas, loki.write.replicas, loki.backend.replicas]).toEqual([0, 0, 0]);
      expect(loki.loki.storage.type).toBe("filesystem");
      expect(loki.minio.enabled).toBe(false);
      for (const [app, size] of [
        ["loki", "30Gi"],
        ["tempo", "20Gi"],
      ] as const) {
        const claim = r.get(PVC, `mon-${app}-storage`);
        expect(claim.protect, app).toBe(env === "prod");
        expect(r.plain(claim)["spec"].resources.requests.storage).toBe(size);
        expect(r.get(CHART, `mon-${app}`).dependsOn).toContain(claim.urn);
        // The charts themselves stay unprotected (their ConfigMaps must be replaceable).
        expect(r.get(CHART, `mon-${app}`).protect).toBe(false);
      }
      expect(loki.singleBinary.persistence).toEqual({
        enabled: false,
        dataVolumeParameters: { persistentVolumeClaim: { claimName: "loki" } },
      });
      expect(values(r, "mon-tempo").extraVolumes).toEqual([
        { name: "storage", persistentVolumeClaim: { claimName: "tempo" } },
      ]);
    }
  });

  it("keeps logs and traces per environment, shorter on dev, and as configured", async () => {
    expect(STORE_RETENTION).toEqual({ local: "1d", dev: "3d", staging: "7d", prod: "14d" });
    expect(storeRetention({}, "dev")).toBe("3d");
    expect(storeRetention({ retention: "30d" }, "dev")).toBe("30d");
    expect(retentionHours("3d")).toBe("72h");
    expect(retentionHours("2w")).toBe("336h");
    expect(() => retentionHours("12h")).toThrow();
    expect(monitoringSchema.safeParse({ logs: { retention: "12h" } }).success).toBe(false);
    const dev = await stack({}, "dev");
    expect(values(dev, "mon-loki").loki.limits_config.retention_period).toBe("72h");
    expect(values(dev, "mon-loki").loki.compactor.retention_enabled).toBe(true);
    expect(values(dev, "mon-tempo").tempo.retention).toBe("72h");
    const prod = await stack({ traces: { retention: "30d" } }, "prod");
    expect(values(prod, "mon-loki").loki.limits_config.retention_period).toBe("336h");
    expect(values(prod, "mon-tempo").tempo.retention).toBe("720h");
  });

  it("adds Loki and Tempo as Grafana datasources at their Services and ports", async () => {
    const r = await stack();
    expect(kps(r).grafana.additionalDataSources).toEqual([
      { name: "Loki", type: "loki", uid: "loki", url: "http://loki.monitoring:3100", access: "proxy" },
      {
        name: "Tempo",
        type: "tempo",
        uid: "tempo",
        url: "http://tempo.monitoring:3200",
        access: "proxy",
        jsonData: {
          serviceMap: { datasourceUid: "prometheus" },
          tracesToLogsV2: { datasourceUid: "loki", filterByTraceID: true },
        },
      },
    ]);
    // The Services those URLs name: fullnameOverride, and the ports the charts serve.
    expect(values(r, "mon-loki").fullnameOverride).toBe("loki");
    expect(values(r, "mon-tempo").fullnameOverride).toBe("tempo");
    expect(values(r, "mon-tempo").tempo.receivers.otlp.protocols.grpc.endpoint).toBe("0.0.0.0:4317");
    // Prometheus scrapes both through the charts' ServiceMonitors (it selects every one).
    expect(values(r, "mon-loki").monitoring.serviceMonitor.enabled).toBe(true);
    expect(values(r, "mon-tempo").serviceMonitor.enabled).toBe(true);
    for (const name of ["mon-loki", "mon-tempo"])
      expect(r.get(CHART, name).dependsOn, name).toContain(r.get(CHART, "mon-kube-prometheus-stack").urn);
    const off = await stack({ logs: { enabled: false }, traces: { enabled: false } });
    expect(kps(off).grafana.additionalDataSources).toEqual([]);
    expect(off.ofType(CHART).map((c) => c.name)).not.toContain("mon-loki");
    expect(off.ofType(CHART).map((c) => c.name)).not.toContain("mon-tempo");
  });

  it("sends traces to Tempo unless an external endpoint is set", async () => {
    const r = await stack();
    const otel = values(r, "mon-otel-collector");
    expect(otel.config.service.pipelines.traces.exporters).toEqual(["otlp"]);
    expect(otel.config.exporters.otlp.endpoint).toBe(
      storeEndpoints("monitoring").tempoOtlpGrpc.replace("http://", ""),
    );
    const ext = otelCollectorValues(
      monitoringSchema.parse({ otelTracesEndpoint: "https://traces.example.org:4317" }),
      "dev",
    );
    expect(ext.config).toMatchObject({
      exporters: { otlp: { endpoint: "traces.example.org:4317", tls: { insecure: false } } },
    });
  });

  it("tails its own node's pod logs from /var/log into Loki's push API", () => {
    const cfg = alloyConfig("http://loki.monitoring:3100/loki/api/v1/push");
    expect(cfg).toContain('field = "spec.nodeName=" + sys.env("NODE_NAME")');
    expect(cfg).toContain('replacement   = "/var/log/pods/*$1/*.log"');
    expect(cfg).toContain('url = "http://loki.monitoring:3100/loki/api/v1/push"');
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- chart values are opaque JSON
    const v = alloyValues({ env: "dev", lokiPushUrl: "http://loki.monitoring:3100/loki/api/v1/push" }) as any;
    expect(v.controller.type).toBe("daemonset");
    expect(v.alloy.mounts.varlog).toBe(true);
    expect(v.alloy.extraEnv).toEqual([
      { name: "NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
    ]);
    expect(v.alloy.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
  });

  it("runs the log agent in monitoring (privileged, outside the mesh), exempt by name in every stack's pack config", async () => {
    const r = await stack();
    const ns = r.plain(r.ofType("kubernetes:core/v1:Namespace")[0]!)["metadata"];
    expect(r.plain(r.get(CHART, "mon-alloy"))["namespace"]).toBe(ns.name);
    expect(ns.labels["pod-security.kubernetes.io/enforce"]).toBe("privileged");
    // Outside the mesh: Istio enforces AuthorizationPolicies only on injected pods, so Grafana,
    // the collector, Alloy and Prometheus reach Loki and Tempo without an allow.
    expect(ns.labels["istio-injection"]).toBeUndefined();
    expect(r.registrations.filter((x) => x.type.endsWith(":AuthorizationPolicy"))).toEqual([]);
    for (const env of ["local", "dev", "staging", "prod"]) {
      const pack = JSON.parse(
        fs.readFileSync(path.join("policies", "config", `${env}.json`), "utf8"),
      ) as Record<string, { exemptions: { name?: string; namespace?: string; container?: string }[] }>;
      const pss = pack["k8s-pod-security-restricted"]!.exemptions.filter((e) => e.name === "alloy");
      expect(pss, env).toHaveLength(1);
      expect(pss[0]!.namespace).toBe("monitoring");
      const probes = pack["k8s-probes-required"]!.exemptions.filter((e) => e.name === "alloy");
      expect(
        probes.map((e) => e.container),
        env,
      ).toEqual(["config-reloader"]);
      // Loki and Tempo themselves pass restricted: no exemption names them.
      const all = JSON.stringify(pack);
      expect(all, env).not.toMatch(/"name": ?"(loki|tempo)/);
    }
  });
});
