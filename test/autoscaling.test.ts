/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-argument --
   rendered Kubernetes objects are untyped JSON; the assertions are the type check. */
/**
 * Model servers scale on LLM signals (KEDA, never CPU), scale to zero only where the gateway can
 * wake them, and one SLO per service drives its alerts, its autoscaler and its canary's rollback.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ConfigError, parsePlatformConfig } from "../components/config";
import {
  autoscalingProblems,
  coldStartRetries,
  hasActivation,
  modelScaledObjectSpec,
  modelScaling,
  scaleToZeroDefault,
} from "../components/inference/autoscaling";
import type { InferenceServiceConfig } from "../components/inference/schema";
import { vllmService } from "./fixtures/helpers";
import {
  bucketFor,
  GATEWAY_JOBS_SUBMITTED,
  leMatcher,
  LLAMACPP_METRICS,
  resolveServiceSlo,
  sloFanOut,
  VLLM_METRICS,
  type ServiceSlo,
  type SloFanOutInput,
} from "../components/inference/slo";
import { deploymentStartBudgetSeconds } from "../components/inference/spec";
import { sloSchema } from "../components/monitoring/schema";
import { ENVIRONMENTS } from "../components/schema-kit";
import { policyRecords } from "../tools/preflight/run";
import { validateObject } from "../tools/preflight/schemas";
import { loadStackConfig } from "../tools/preflight/stack-config";
import { runPolicies } from "../policies/lib/runner";
import { policies } from "../policies/rules";
import { renderStack } from "./harness";

const svc = vllmService;

const SLO: ServiceSlo = {
  timeToFirstTokenMs: 800,
  interTokenLatencyMs: 80,
  errorRatePercent: 0.5,
  queueWaitMs: 300,
};

const input = (over: Partial<SloFanOutInput> = {}): SloFanOutInput => ({
  name: "m",
  namespace: "inference",
  runtime: "vllm",
  slo: SLO,
  autoscaling: { kvCacheUtilization: 0.8 },
  canary: true,
  mesh: true,
  monitoring: true,
  ...over,
});

const everything = (f: ReturnType<typeof sloFanOut>) => JSON.stringify(f);

describe("autoscaler triggers per runtime", () => {
  it("vLLM: queue wait (Little's law against the SLO) and KV-cache use, on its own pods; never CPU", () => {
    const f = sloFanOut(input({ canary: false }));
    expect(f.triggers.map((t) => [t.name, t.metricType, t.metadata.threshold])).toEqual([
      ["queue-wait", "Value", "0.3"],
      ["kv-cache", "Value", "0.8"],
    ]);
    const [wait, kv] = f.triggers;
    expect(wait!.metadata.query).toContain(
      `sum(${VLLM_METRICS.waiting}{namespace="inference",pod=~"m-[a-z0-9]+-[a-z0-9]+"})`,
    );
    expect(wait!.metadata.query).toContain(`rate(${VLLM_METRICS.finished}{`);
    expect(kv!.metadata.query).toBe(
      `avg(vllm:kv_cache_usage_perc{namespace="inference",pod=~"m-[a-z0-9]+-[a-z0-9]+"})`,
    );
    // The in-cluster Prometheus of kube-prometheus-stack (fullnameOverride kps, port 9090).
    for (const t of f.triggers)
      expect(t.metadata.serverAddress).toBe("http://kps-prometheus.monitoring:9090");
    expect(everything(f)).not.toMatch(/"type":"(cpu|memory)"/);
    // A set queuePerReplica adds a per-replica cap on the requests waiting.
    const capped = sloFanOut(
      input({ canary: false, autoscaling: { kvCacheUtilization: 0.9, queuePerReplica: 6 } }),
    );
    expect(capped.triggers.map((t) => [t.name, t.metricType, t.metadata.threshold])).toEqual([
      ["queue-wait", "Value", "0.3"],
      ["kv-cache", "Value", "0.9"],
      ["requests-waiting", "AverageValue", "6"],
    ]);
  });

  it("llama.cpp: requests deferred per replica (its build exports no KV-cache gauge nor queue time)", () => {
    const f = sloFanOut(input({ runtime: "llamacpp", canary: false }));
    expect(f.triggers).toEqual([
      {
        type: "prometheus",
        name: "requests-waiting",
        metricType: "AverageValue",
        metadata: {
          serverAddress: "http://kps-prometheus.monitoring:9090",
          query: `sum(${LLAMACPP_METRICS.deferred}{namespace="inference",pod=~"m-[a-z0-9]+-[a-z0-9]+"})`,
          threshold: "1",
        },
      },
    ]);
    expect(everything(f)).not.toContain("kv_cache");
  });

  it("with a canary, every trigger has its query for Flagger's primary, and none matches the other's pods", () => {
    const f = sloFanOut(input({ activationWindowSeconds: 600 }));
    expect(Object.keys(f.primaryScalerQueries)).toEqual(f.triggers.map((t) => t.name));
    expect(f.primaryScalerQueries["kv-cache"]).toContain('pod=~"m-primary-[a-z0-9]+-[a-z0-9]+"');
    const canaryPods = /^m-[a-z0-9]+-[a-z0-9]+$/;
    expect(canaryPods.test("m-7d4b9c8f6-x2k9p")).toBe(true);
    expect(canaryPods.test("m-primary-7d4b9c8f6-x2k9p")).toBe(false);
    // The gateway's counter is per model, not per pod: the same query for both.
    expect(f.primaryScalerQueries["gateway-jobs"]).toBe(
      f.triggers.find((t) => t.name === "gateway-jobs")!.metadata.query,
    );
  });

  it("the ScaledObject is schema-valid and keeps the model's slow scale-down", () => {
    const spec = modelScaledObjectSpec(
      "m",
      { kind: "keda", minReplicaCount: 1, maxReplicaCount: 3 },
      sloFanOut(input()).triggers,
    );
    expect(
      validateObject({ apiVersion: "keda.sh/v1alpha1", kind: "ScaledObject", metadata: { name: "m" }, spec }),
    ).toEqual({
      ok: true,
    });
    expect(spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds).toBe(
      900,
    );
  });
});

describe("scale-to-zero", () => {
  const platform = { keda: true, prometheus: true };
  const gateway = (first: string) => ({
    services: [svc({ name: first }), svc({ name: "other" })],
    gateway: { enabled: true, replicas: 1, workers: { min: 1, max: 4 } },
  });

  it("is decided by the environment: on in dev, off elsewhere; explicit settings and canaries win", () => {
    const s = svc();
    expect(ENVIRONMENTS.filter((env) => scaleToZeroDefault(env, s, true))).toEqual(["dev"]);
    expect(scaleToZeroDefault("dev", s, false)).toBe(false);
    expect(scaleToZeroDefault("dev", svc({ canary: { enabled: true } }), true)).toBe(false);
    expect(scaleToZeroDefault("dev", svc({ autoscaling: { scaleToZero: false } }), true)).toBe(false);
    expect(scaleToZeroDefault("prod", svc({ autoscaling: { scaleToZero: true } }), true)).toBe(true);
    expect(scaleToZeroDefault("prod", svc({ replicas: { min: 0, max: 2 } }), true)).toBe(true);
  });

  it("is woken only by the gateway, and only for the model it relays to", () => {
    expect(hasActivation(gateway("m"), { name: "m" }, platform)).toBe(true);
    expect(hasActivation(gateway("m"), { name: "other" }, platform)).toBe(false);
    expect(
      hasActivation(
        { ...gateway("m"), gateway: { ...gateway("m").gateway, enabled: false } },
        { name: "m" },
        platform,
      ),
    ).toBe(false);
    expect(hasActivation(gateway("m"), { name: "m" }, { keda: true, prometheus: false })).toBe(false);
  });

  it("activates on the gateway's accepted jobs for the model, for as long as the start budget", () => {
    const s = svc();
    const scaling = modelScaling(s, { environment: "dev", ...platform }, true);
    const budget = deploymentStartBudgetSeconds(s);
    expect(scaling).toEqual({
      kind: "keda",
      minReplicaCount: 0,
      maxReplicaCount: 1,
      activationWindowSeconds: budget,
    });
    const f = sloFanOut(input({ canary: false, activationWindowSeconds: budget }));
    const wake = f.triggers.find((t) => t.name === "gateway-jobs")!;
    expect(wake.metadata).toMatchObject({
      query: `sum(increase(${GATEWAY_JOBS_SUBMITTED}{namespace="inference",model="m"}[${budget}s]))`,
      activationThreshold: "0",
    });
    // Above a minimum of one, KEDA's idle count takes the service to zero.
    expect(
      modelScaling(svc({ replicas: { min: 2, max: 4 } }), { environment: "dev", ...platform }, true),
    ).toMatchObject({
      minReplicaCount: 2,
      idleReplicaCount: 0,
    });
    // Elsewhere: never below one.
    expect(modelScaling(s, { environment: "staging", ...platform }, true)).toEqual({
      kind: "keda",
      minReplicaCount: 1,
      maxReplicaCount: 1,
    });
  });

  it("reads a metric the gateway really exposes, labelled by model", () => {
    const metrics = readFileSync("services/gateway/src/metrics.ts", "utf8");
    expect(metrics).toMatch(
      new RegExp(`name: "${GATEWAY_JOBS_SUBMITTED}",[^}]*labelNames: \\["model"\\]`, "s"),
    );
  });

  it("jobs outlast the cold start: the workers retry for the start budget", () => {
    const budget = deploymentStartBudgetSeconds(svc());
    const { maxAttempts, backoffMaxMs } = coldStartRetries(budget);
    // Counted at the jitter's shortest waits (half the delay).
    let waited = 0;
    for (let attempt = 1; attempt < maxAttempts; attempt++)
      waited += Math.min(backoffMaxMs, 1000 * 2 ** (attempt - 1)) / 2000;
    expect(waited).toBeGreaterThanOrEqual(budget);
    expect(maxAttempts).toBeLessThanOrEqual(100);
  });

  it("the config refuses it without an activation trigger, with a canary, or against scaleToZero", () => {
    const check = (s: InferenceServiceConfig, activation: boolean, p = platform) =>
      autoscalingProblems(["inference", "services", 0], s, { environment: "dev", ...p }, activation).map(
        (x) => `${x.key}: ${x.message}`,
      );
    const zero = svc({ replicas: { min: 0, max: 1 } });
    expect(check(zero, true)).toEqual([]);
    expect(check(zero, false).join()).toMatch(/replicas\.min: scale-to-zero needs an activation trigger/);
    expect(check(svc({ autoscaling: { scaleToZero: true } }), false).join()).toMatch(
      /autoscaling\.scaleToZero: scale-to-zero needs/,
    );
    expect(check(svc({ replicas: { min: 0, max: 1 }, canary: { enabled: true } }), true).join()).toMatch(
      /canary/,
    );
    expect(
      check(svc({ replicas: { min: 0, max: 1 }, autoscaling: { scaleToZero: false } }), true),
    ).toHaveLength(1);
    // Bounds need KEDA and Prometheus; a fixed count does not.
    expect(
      check(svc({ replicas: { min: 1, max: 3 } }), false, { keda: false, prometheus: true }).join(),
    ).toMatch(/replicas\.max: .*KEDA \(installed with platform:inference\.gateway\)/);
    expect(check(svc(), false, { keda: false, prometheus: false })).toEqual([]);
  });

  it("through the whole config: min 0 on a model the gateway does not front is refused", () => {
    const raw = (services: unknown[]) => ({
      "platform:environment": "dev",
      "platform:cluster": JSON.stringify({
        kind: "existing",
        gpuPools: [{ name: "gpu-l4", nodeSelector: { a: "b" }, nodes: 1, gpu: { gpusPerNode: 2 } }],
      }),
      "platform:registry": JSON.stringify({ tls: { issuer: "acme" } }),
      "platform:tls": JSON.stringify({
        acme: { email: "ops@example.org", dns01: {} },
        ingress: { issuer: "acme" },
      }),
      "platform:inference": JSON.stringify({ services }),
    });
    const m = (name: string, min: number) => ({
      name,
      runtime: "vllm",
      model: "x/M-1B",
      gpu: { pool: "gpu-l4", count: 1 },
      replicas: { min, max: 1 },
    });
    expect(() => parsePlatformConfig(raw([m("a", 0)]), new Set(["acmeDnsApiToken"]))).not.toThrow();
    try {
      parsePlatformConfig(raw([m("a", 1), m("b", 0)]), new Set(["acmeDnsApiToken"]));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as ConfigError).problems.map((p) => p.key)).toEqual([
        "platform:inference.services[1].replicas.min",
      ]);
    }
  });

  it("dev's committed model scales to zero, the gateway waking it and retrying through its cold start", async () => {
    const r = await renderStack("dev");
    const so = r
      .ofType("kubernetes:keda.sh/v1alpha1:ScaledObject")
      .map((x) => r.plain(x))
      .find((x) => x.metadata.name === "llama-3-1-8b")!;
    expect(so.spec.minReplicaCount).toBe(0);
    expect(so.spec.triggers.map((t: any) => t.name)).toEqual(["queue-wait", "kv-cache", "gateway-jobs"]);
    const worker = r
      .ofType("kubernetes:apps/v1:Deployment")
      .map((x) => r.plain(x))
      .find((x) => x.metadata.name === "gateway-worker")!;
    const env = Object.fromEntries(
      worker.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]),
    );
    expect(Number(env.WORKER_MAX_ATTEMPTS)).toBe(
      coldStartRetries(
        deploymentStartBudgetSeconds({ runtime: "vllm", model: "meta-llama/Llama-3.1-8B-Instruct" }),
      ).maxAttempts,
    );
    // No HPA anywhere near a model server.
    expect(
      r.ofType("kubernetes:autoscaling/v2:HorizontalPodAutoscaler").map((x) => r.plain(x).metadata.name),
    ).not.toContain("llama-3-1-8b");
    expect(r.plan.schemaErrors).toEqual([]);
  });
});

describe("one SLO per service, fanned out", () => {
  it("defaults come from platform:monitoring.slo, so existing stacks keep their numbers", () => {
    const platform = sloSchema.parse({ errorRatePercent: 0.5, timeToFirstTokenMs: 800 });
    expect(resolveServiceSlo(svc(), platform)).toEqual({
      timeToFirstTokenMs: 800,
      interTokenLatencyMs: 100,
      errorRatePercent: 0.5,
      queueWaitMs: 500,
    });
    expect(resolveServiceSlo(svc({ slo: { queueWaitMs: 250 } }), platform).queueWaitMs).toBe(250);
  });

  it("latency objectives are the share of requests above the bucket at or below the objective", () => {
    expect(bucketFor(0.8, VLLM_METRICS.timeToFirstToken.buckets)).toBe(0.75);
    expect(bucketFor(1, VLLM_METRICS.timeToFirstToken.buckets)).toBe(1);
    expect(leMatcher(1)).toBe('le=~"1|1[.]0"');
    expect(leMatcher(0.75)).toBe('le=~"0[.]75"');
  });

  it("multi-window multi-burn-rate pages: 14.4x over 1h and 5m, 6x over 6h and 30m", () => {
    const f = sloFanOut(input());
    const alerts = f.rules.flatMap((g) => g.rules).filter((r) => r.alert);
    const errors = alerts.filter((a) => a.labels?.["slo"] === "errors");
    expect(errors.map((a) => a.expr)).toEqual([
      'inference:slo_errors:bad_ratio1h{namespace="inference",service="m"} > 0.072 and inference:slo_errors:bad_ratio5m{namespace="inference",service="m"} > 0.072',
      'inference:slo_errors:bad_ratio6h{namespace="inference",service="m"} > 0.03 and inference:slo_errors:bad_ratio30m{namespace="inference",service="m"} > 0.03',
    ]);
    const records = f.rules.flatMap((g) => g.rules).filter((r) => r.record);
    const ttft5m = records.find((r) => r.record === "inference:slo_time_to_first_token:bad_ratio5m")!;
    expect(ttft5m.expr).toBe(
      '1 - sum(rate(vllm:time_to_first_token_seconds_bucket{namespace="inference",model_name="m",le=~"0[.]75"}[5m])) / sum(rate(vllm:time_to_first_token_seconds_count{namespace="inference",model_name="m"}[5m]))',
    );
    // A p95 objective leaves 5 % of requests: 14.4 × 0.05.
    expect(alerts.find((a) => a.labels?.["slo"] === "queue_wait")!.expr).toContain("> 0.72");
    expect(new Set(alerts.map((a) => a.labels?.["slo"]))).toEqual(
      new Set(["errors", "time_to_first_token", "inter_token_latency", "queue_wait"]),
    );
  });

  it("the canary's checks are MetricTemplates on the canary's own pods, thresholds from the SLO", () => {
    const f = sloFanOut(input());
    expect(f.metricTemplates.map((t) => t.name)).toEqual([
      "m-errors",
      "m-time-to-first-token",
      "m-inter-token-latency",
      "m-queue-wait",
    ]);
    expect(f.metricTemplates[1]!.spec.query).toBe(
      'histogram_quantile(0.95, sum by (le) (rate(vllm:time_to_first_token_seconds_bucket{namespace="{{ namespace }}",pod=~"{{ target }}-[a-z0-9]+-[a-z0-9]+"}[{{ interval }}])))',
    );
    expect(f.metricTemplates[2]!.spec.query).toContain("vllm:inter_token_latency_seconds_bucket");
    for (const t of f.metricTemplates)
      expect(
        validateObject({
          apiVersion: "flagger.app/v1beta1",
          kind: "MetricTemplate",
          metadata: { name: t.name },
          spec: t.spec,
        }),
      ).toEqual({
        ok: true,
      });
    // Without the platform's Prometheus, Flagger's own scrapes Envoy only: the builtin check stays.
    expect(sloFanOut(input({ monitoring: false })).canaryMetrics.map((m) => m.name)).toEqual([
      "request-success-rate",
    ]);
  });

  // Where each number must show: [field, changed value, parts of the fan-out it moves].
  const fields: [keyof ServiceSlo, number, (keyof ReturnType<typeof sloFanOut>)[]][] = [
    ["queueWaitMs", 1500, ["rules", "triggers", "canaryMetrics"]],
    ["timeToFirstTokenMs", 2500, ["rules", "canaryMetrics"]],
    ["interTokenLatencyMs", 200, ["rules", "canaryMetrics"]],
    ["errorRatePercent", 2, ["rules", "canaryMetrics"]],
  ];
  it.each(fields)("%s moves exactly the thresholds it sets", (field, value, moved) => {
    const before = sloFanOut(input());
    const after = sloFanOut(input({ slo: { ...SLO, [field]: value } }));
    const changed = (Object.keys(before) as (keyof typeof before)[]).filter(
      (k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]),
    );
    // Nothing else: the queries (the primary's too, and the MetricTemplates') hold no threshold.
    expect(changed).toEqual(moved);
    // The new number is where it belongs, in seconds or percent as each consumer reads it.
    const shown = field === "errorRatePercent" ? String(value) : String(value / 1000);
    expect(JSON.stringify(after.canaryMetrics)).toContain(`"max":${shown}`);
    expect(JSON.stringify(after.rules)).toContain(`${value}`);
    if (moved.includes("triggers"))
      expect(after.triggers.find((t) => t.name === "queue-wait")!.metadata.threshold).toBe(shown);
  });

  it("in a rendered stack, one changed SLO number touches its PrometheusRule, ScaledObject and Canary, nothing else", async () => {
    const prod = JSON.parse(String(loadStackConfig(process.cwd(), "prod").config["platform:inference"]));
    const withSlo = (queueWaitMs: number) => ({
      "platform:inference": {
        ...prod,
        services: prod.services.map((s: any, i: number) => (i === 1 ? { ...s, slo: { queueWaitMs } } : s)),
      },
    });
    const a = await renderStack("prod", { overrides: withSlo(300) });
    const b = await renderStack("prod", { overrides: withSlo(1500) });
    // The plan's inputs, secrets redacted: the preflight plants fresh canary secrets every run.
    const byUrn = new Map(a.plan.resources.map((r) => [r.urn, JSON.stringify(r.inputs)]));
    const changed = b.plan.resources
      .filter((r) => byUrn.get(r.urn) !== JSON.stringify(r.inputs))
      .map((r) => `${r.type.split(":").pop()} ${r.name}`);
    expect(changed.sort()).toEqual([
      "Canary prod-inference-qwen-2-5-7b-canary",
      "PrometheusRule prod-inference-qwen-2-5-7b-slo",
      "ScaledObject prod-inference-qwen-2-5-7b-scaler",
    ]);
    expect(b.plan.resources.map((r) => r.urn).sort()).toEqual(a.plan.resources.map((r) => r.urn).sort());
  }, 60_000);
});

describe("the pack refuses a CPU HPA on a GPU server", () => {
  it("prod with a CPU HPA added on a vLLM server fails on a mandatory violation", async () => {
    const r = await renderStack("prod");
    const records = policyRecords(r.registrations);
    const hpa = {
      urn: "urn:pulumi:prod::ai-delivery-platform::kubernetes:autoscaling/v2:HorizontalPodAutoscaler::stray-hpa",
      type: "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
      name: "stray-hpa",
      inputs: {
        metadata: { name: "llama-3-1-70b", namespace: "inference" },
        spec: {
          scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "llama-3-1-70b" },
          maxReplicas: 2,
          metrics: [
            {
              type: "Resource",
              resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 75 } },
            },
          ],
        },
      },
    };
    const clean = await runPolicies(policies, records);
    expect(clean.filter((v) => v.policy === "gpu-autoscaling-not-on-cpu")).toEqual([]);
    const violations = (await runPolicies(policies, [...records, hpa])).filter(
      (v) => v.policy === "gpu-autoscaling-not-on-cpu",
    );
    expect(violations.map((v) => [v.level, v.message])).toEqual([
      [
        "mandatory",
        "HorizontalPodAutoscaler inference/llama-3-1-70b scales the GPU Deployment llama-3-1-70b on cpu",
      ],
    ]);
  }, 60_000);
});

describe("docs state each committed service's cold start", () => {
  it("docs/autoscaling.md gives the start budget of every model in every stack", () => {
    const doc = readFileSync("docs/autoscaling.md", "utf8");
    for (const stack of ["local", "dev", "staging", "prod"]) {
      const inference = JSON.parse(
        String(loadStackConfig(process.cwd(), stack).config["platform:inference"]),
      );
      for (const s of inference.services as { name: string; runtime: "vllm" | "llamacpp"; model: string }[])
        expect(doc, `${stack} ${s.name}`).toMatch(
          new RegExp(`\\| ${stack} +\\| \`${s.name}\` +\\|[^\\n]*\\| ${deploymentStartBudgetSeconds(s)} s `),
        );
    }
  });
});

describe("the preflight validates Flagger's kinds with the project's schemas", () => {
  const canary = (spec: Record<string, unknown>) => ({
    apiVersion: "flagger.app/v1beta1",
    kind: "Canary",
    metadata: { name: "m" },
    spec: {
      targetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "m" },
      analysis: { interval: "1m", threshold: 5, iterations: 10, metrics: [] },
      ...spec,
    },
  });

  it("accepts the committed stacks' Canaries and MetricTemplates", async () => {
    const r = await renderStack("prod");
    const flagger = r.registrations.filter((x) => x.type.startsWith("kubernetes:flagger.app/"));
    expect(new Set(flagger.map((x) => x.type))).toEqual(
      new Set(["kubernetes:flagger.app/v1beta1:Canary", "kubernetes:flagger.app/v1beta1:MetricTemplate"]),
    );
    for (const x of flagger) expect(validateObject(r.plain(x)), x.name).toEqual({ ok: true });
    expect(r.plan.summary.unvalidatedKinds.filter((k) => k.startsWith("flagger.app"))).toEqual([]);
  }, 60_000);

  it("refuses what Flagger's CRDs would refuse or prune", () => {
    const bad = (o: Record<string, unknown>) => validateObject(o);
    expect(
      bad(canary({ autoscalerRef: { apiVersion: "keda.sh/v1alpha1", kind: "KedaScaler", name: "m" } })),
    ).toMatchObject({
      ok: false,
      message: expect.stringContaining("autoscalerRef/kind must be equal to one of the allowed values"),
    });
    expect(
      bad(
        canary({
          autoscalerRef: {
            apiVersion: "keda.sh/v1alpha1",
            kind: "ScaledObject",
            name: "m",
            primaryQueries: {},
          },
        }),
      ),
    ).toMatchObject({ ok: false, message: expect.stringContaining('unknown field "primaryQueries"') });
    expect(bad(canary({ analysis: { interval: "1m", threshold: 5 } }))).toMatchObject({ ok: false });
    expect(
      bad({
        apiVersion: "flagger.app/v1beta1",
        kind: "MetricTemplate",
        metadata: { name: "t" },
        spec: { provider: { type: "prometheus" } },
      }),
    ).toMatchObject({ ok: false, message: expect.stringContaining("query") });
  });
});
