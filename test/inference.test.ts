/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-argument --
   rendered Kubernetes objects are untyped JSON; the assertions are the type check. */
import * as k8s from "@pulumi/kubernetes";
import { describe, expect, it } from "vitest";
import type { ClusterHandle, GpuPool } from "../components/cluster/handle";
import { ConfigError, parsePlatformConfig } from "../components/config";
import {
  apiKeysFile,
  gatewayEnv,
  OTEL_COLLECTOR_OTLP_HTTP,
  gatewayVirtualServiceSpec,
  kedaValues,
  NATS_HEADLESS_SERVICE,
  natsMonitoringEndpoint,
  NATS_EXPORTER_PORT,
  natsValues,
  scaledObjectSpec,
  sha256Hex,
} from "../components/inference/gateway";
import type { InferenceServiceConfig } from "../components/inference/schema";
import { vllmService } from "./fixtures/helpers";
import {
  canarySpec,
  llamaModelArgs,
  modelPodSpec,
  modelSizeB,
  pdbSelector,
  peakGpus,
  CACHE_DIR,
  deploymentStartBudgets,
  serverEnv,
  startupBudgetSeconds,
  WRITABLE_ENV,
} from "../components/inference/spec";
import { sloFanOut } from "../components/inference/slo";
import { OTEL_COLLECTOR_ENDPOINT } from "../components/monitoring/monitoring";
import { hubToken, InferenceStack, overcommittedPools } from "../components/inference/stack";
import { SecretStore } from "../components/secrets/store";
import { GPU_POOL_LABEL } from "../components/meta";
import * as pulumi from "@pulumi/pulumi";
import { chartImages, charts, images, pinnedRef } from "../components/versions";
import { loadStackConfig } from "../tools/preflight/stack-config";
import { chartValuesKeys, unverifiedValuesKeys } from "./fixtures/chart-values-keys";
import { isSecretWrapped, render, renderStack } from "./harness";
import { existingClusterFor } from "./stack-overrides";

const svc = vllmService;

const l4: GpuPool = {
  name: "gpu-l4",
  nodeSelector: { [GPU_POOL_LABEL]: "gpu-l4" },
  nodes: 1,
  gpu: { gpusPerNode: 2, sharing: { timeSlicing: { replicas: 4 } } },
};

describe("pod spec per runtime", () => {
  it("vLLM: model, port, served name, tensor parallel, GPU scheduling, limits = requests", () => {
    const s = svc({
      gpu: { pool: "gpu-l4", count: 2 },
      quantization: "awq",
      args: ["--max-model-len", "8192"],
    });
    const pod = modelPodSpec(s, { pool: l4, cacheClaim: "m-cache", image: "vllm/vllm-openai:v1" }) as any;
    const c = pod.containers[0];
    expect(c.args.slice(0, 6)).toEqual([
      "--model",
      "org/Model-8B",
      "--port",
      "8000",
      "--served-model-name",
      "m",
    ]);
    expect(c.args).toEqual(
      expect.arrayContaining(["--tensor-parallel-size", "2", "--quantization", "awq", "--max-model-len"]),
    );
    expect(c.resources.limits["nvidia.com/gpu"]).toBe("2");
    expect(c.resources.requests["nvidia.com/gpu"]).toBe("2");
    expect(c.resources.limits.memory).toBe(c.resources.requests.memory);
    expect(pod.nodeSelector).toEqual({ [GPU_POOL_LABEL]: "gpu-l4" });
    expect(pod.runtimeClassName).toBe("nvidia");
    expect(pod.tolerations).toEqual([{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }]);
    expect(pod.volumes.find((v: any) => v.name === "shm").emptyDir.medium).toBe("Memory");
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
    });
    expect(c.securityContext.capabilities.drop).toEqual(["ALL"]);
    expect(c.startupProbe.httpGet.path).toBe("/health");
  });

  it("llama.cpp: CPU only, never tolerates the GPU taint, hub file args, threads from the CPU request", () => {
    const s = svc({
      runtime: "llamacpp",
      gpu: undefined,
      model: "Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf",
      resources: { cpu: "1500m", memory: "2Gi" },
    });
    const pod = modelPodSpec(s, {
      cacheClaim: "m-cache",
      image: "ghcr.io/ggml-org/llama.cpp:server-b1",
    }) as any;
    const c = pod.containers[0];
    expect(c.args).toEqual(
      expect.arrayContaining(["--port", "8080", "-hf", "Qwen/Qwen2.5-0.5B-Instruct-GGUF", "--metrics"]),
    );
    expect(c.args[c.args.indexOf("--hf-file") + 1]).toBe("qwen2.5-0.5b-instruct-q4_k_m.gguf");
    expect(c.args[c.args.indexOf("--threads") + 1]).toBe("2");
    expect(pod.tolerations).toBeUndefined();
    expect(pod.runtimeClassName).toBeUndefined();
    expect(pod.nodeSelector).toBeUndefined();
    expect(JSON.stringify(c.resources)).not.toContain("nvidia.com/gpu");
    expect(llamaModelArgs("/models/x.gguf")).toEqual(["-m", "/models/x.gguf"]);
    expect(llamaModelArgs("https://h/x.gguf")).toEqual(["--model-url", "https://h/x.gguf"]);
  });

  it("throws when a GPU service has no pool", () => {
    expect(() => modelPodSpec(svc({}), { cacheClaim: "c", image: "i:1" })).toThrow(/GPU pool "gpu-l4"/);
  });

  it("sizes the startup probe for model load", () => {
    expect(modelSizeB("meta-llama/Llama-3.1-70B-Instruct")).toBe(70);
    expect(modelSizeB("Qwen/Qwen2.5-0.5B-Instruct-GGUF")).toBe(0.5);
    const big = startupBudgetSeconds("vllm", "meta-llama/Llama-3.1-70B-Instruct");
    expect(big).toBeGreaterThanOrEqual(30 * 60);
    expect(big).toBeLessThanOrEqual(60 * 60);
    expect(startupBudgetSeconds("vllm", "x/Model-8B")).toBeLessThan(big);
    expect(startupBudgetSeconds("llamacpp", "q/q-0.5B")).toBeLessThan(600);
  });
});

describe("canary, mirroring and autoscaling specs", () => {
  const slo = { errorRatePercent: 0.5, timeToFirstTokenMs: 800, interTokenLatencyMs: 80, queueWaitMs: 300 };
  const inputs = (s: InferenceServiceConfig) => {
    const f = sloFanOut({
      name: s.name,
      namespace: "inference",
      runtime: s.runtime,
      slo,
      autoscaling: s.autoscaling,
      canary: true,
      mesh: true,
      monitoring: true,
    });
    return {
      autoscalerRef: {
        apiVersion: "keda.sh/v1alpha1" as const,
        kind: "ScaledObject" as const,
        name: s.name,
        primaryScalerQueries: f.primaryScalerQueries,
      },
      metrics: f.canaryMetrics,
    };
  };

  it("progressive canary: weights, the SLO's checks, the ScaledObject, streaming-safe route", () => {
    const s = svc({ canary: { enabled: true, stepWeight: 10, maxWeight: 50 } });
    const c = canarySpec(s, "inference", inputs(s));
    expect(c.targetRef.name).toBe("m");
    expect(c.autoscalerRef).toMatchObject({
      apiVersion: "keda.sh/v1alpha1",
      kind: "ScaledObject",
      name: "m",
    });
    expect(c.analysis).toMatchObject({ stepWeight: 10, maxWeight: 50, threshold: 5 });
    expect(c.analysis).not.toHaveProperty("mirror");
    expect(c.analysis.metrics.map((m) => [m.name, m.thresholdRange])).toEqual([
      ["request-success-rate", { min: 99.5 }],
      ["errors", { max: 0.5 }],
      ["time-to-first-token", { max: 0.8 }],
      ["inter-token-latency", { max: 0.08 }],
      ["queue-wait", { max: 0.3 }],
    ]);
    expect(c.service.retries.retryOn).toBe("connect-failure,refused-stream");
    expect(c.progressDeadlineSeconds).toBeGreaterThan(startupBudgetSeconds("vllm", "org/Model-8B"));
  });

  it("mirroring is modelled as Blue/Green with iterations (Flagger's only mirroring mode)", () => {
    const s = svc({ canary: { enabled: true, mirror: true, iterations: 8, mirrorWeight: 30 } });
    const c = canarySpec(s, "inference", inputs(s));
    expect(c.analysis).toMatchObject({ iterations: 8, mirror: true, mirrorWeight: 30 });
    expect(c.analysis).not.toHaveProperty("stepWeight");
    expect(c.analysis).not.toHaveProperty("maxWeight");
  });

  it("PDB selector follows Flagger's primary, peak GPUs count the canary", () => {
    expect(pdbSelector(svc({ canary: { enabled: true } }))).toEqual({
      "app.kubernetes.io/name": "m-primary",
    });
    expect(pdbSelector(svc({}))).toMatchObject({ "app.kubernetes.io/name": "m" });
    expect(peakGpus(svc({ replicas: { min: 2, max: 6 }, canary: { enabled: true } }))).toBe(8);
    expect(peakGpus(svc({ runtime: "llamacpp", gpu: undefined }))).toBe(0);
    const over = overcommittedPools(
      { namespace: "i", services: [svc({ replicas: { min: 2, max: 7 }, canary: { enabled: true } })] } as any,
      [l4],
    );
    expect(over).toEqual([{ pool: "gpu-l4", peak: 9, capacity: 8 }]);
  });

  it("KEDA scales workers on the jobs consumer's lag", () => {
    const so = scaledObjectSpec({ target: "gateway-worker", namespace: "inference", min: 1, max: 8 });
    expect(so).toMatchObject({
      minReplicaCount: 1,
      maxReplicaCount: 8,
      scaleTargetRef: { name: "gateway-worker" },
    });
    expect(so.triggers[0]).toMatchObject({
      type: "nats-jetstream",
      metadata: {
        natsServerMonitoringEndpoint: "nats-headless.inference.svc.cluster.local:8222",
        stream: "GATEWAY_JOBS",
        consumer: "gateway-workers",
        useHttps: "false",
      },
    });
  });

  it("KEDA reads the headless Service, where each clustered server resolves, on the monitor port", () => {
    // Clustered, the scaler queries `<server_name>.<endpoint host>` (or each advertised host) on the
    // endpoint's port to find the consumer leader: only the headless Service has per-pod names, and
    // the chart's client Service does not carry 8222 at all.
    expect(NATS_HEADLESS_SERVICE).toBe("nats-headless");
    expect(natsMonitoringEndpoint("ns")).toBe("nats-headless.ns.svc.cluster.local:8222");
    const so = scaledObjectSpec({ target: "w", namespace: "ns", min: 0, max: 2 });
    const host = so.triggers[0]!.metadata.natsServerMonitoringEndpoint.split(":")[0]!;
    expect(host.split(".")[0]).toBe(NATS_HEADLESS_SERVICE);
    for (const env of ["local", "prod"] as const) {
      // The monitor listener (plain HTTP, as useHttps says) is on: the headless Service exposes it.
      expect(natsValues(env, true).config.monitor).toEqual({ enabled: true, port: 8222 });
      expect(so.triggers[0]!.metadata.useHttps).toBe("false");
    }
  });
});

describe("gateway specs", () => {
  it("env uses the gateway's variable names; the api role reads its keys from a file", () => {
    const api = gatewayEnv({
      role: "api",
      natsUrl: "nats://n:4222",
      backendUrl: "http://m/v1",
      models: ["small", "large"],
      jetstreamReplicas: 3,
    });
    const names = api.map((e: any) => e.name);
    expect(names).toEqual(
      expect.arrayContaining(["NATS_URL", "BACKEND_URL", "API_KEYS_FILE", "JOBS_STREAM", "JOBS_CONSUMER"]),
    );
    expect(api.every((e: any) => e.valueFrom === undefined)).toBe(true);
    const worker = gatewayEnv({
      role: "worker",
      natsUrl: "nats://n:4222",
      backendUrl: "http://m/v1",
      models: ["small"],
      jetstreamReplicas: 1,
    });
    expect(worker.map((e: any) => e.name)).not.toContain("API_KEYS_FILE");
    // Both roles label metrics by served model; the api lists them at GET /v1/models.
    expect(api.find((e: any) => e.name === "MODELS")?.value).toBe("small,large");
    expect(worker.find((e: any) => e.name === "MODELS")?.value).toBe("small");
  });

  it("env: traces go to the monitoring collector's OTLP/HTTP port, one service name per role", () => {
    const inputs = {
      natsUrl: "nats://n:4222",
      backendUrl: "http://m/v1",
      models: ["small"],
      jetstreamReplicas: 1,
    };
    for (const role of ["api", "worker"] as const) {
      const env = gatewayEnv({ ...inputs, role, otlpEndpoint: OTEL_COLLECTOR_OTLP_HTTP });
      const value = (n: string) => env.find((e: any) => e.name === n)?.value;
      expect(value("OTEL_EXPORTER_OTLP_ENDPOINT")).toBe("http://otel-collector.monitoring:4318");
      expect(value("OTEL_SERVICE_NAME")).toBe(`gateway-${role}`);
      // Monitoring off: no endpoint, so the gateway does not trace.
      expect(gatewayEnv({ ...inputs, role }).map((e: any) => e.name)).not.toContain(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
      );
    }
    // The collector's Service has that port and its otlp receiver speaks HTTP there.
    expect(OTEL_COLLECTOR_OTLP_HTTP).toBe(OTEL_COLLECTOR_ENDPOINT.replace(/:4317$/, ":4318"));
  });

  it("keys file holds only the hash", () => {
    const file = JSON.parse(apiKeysFile([{ name: "platform", sha256: sha256Hex("k") }]));
    expect(file.keys[0].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(file)).not.toContain('"k"');
  });

  it("public route on the mesh gateway never times out a stream nor retries one", () => {
    const vs = gatewayVirtualServiceSpec("ai.example.org", "inference");
    expect(vs.gateways).toEqual(["istio-system/platform-gateway"]);
    expect(vs.http[0]).toMatchObject({
      timeout: "0s",
      retries: { retryOn: "connect-failure,refused-stream" },
    });
  });

  it("NATS: JetStream on files, clustered in prod", () => {
    expect(natsValues("prod", true).config.cluster).toEqual({ enabled: true, replicas: 3 });
    expect(natsValues("local", false).config.cluster).toEqual({ enabled: false });
    expect(natsValues("local", false).config.jetstream.fileStore.pvc.enabled).toBe(true);
  });

  it("NATS: every container the chart renders (nats, reloader, prom-exporter) is restricted and sized", () => {
    for (const env of ["local", "prod"] as const)
      for (const monitoring of [true, false]) {
        const v = natsValues(env, monitoring);
        for (const [name, c] of [
          ["nats", v.container],
          ["reloader", v.reloader],
          ["prom-exporter", v.promExporter],
        ] as const) {
          const sc = c.merge.securityContext as Record<string, any>;
          expect(sc["allowPrivilegeEscalation"], name).toBe(false);
          expect(sc["capabilities"], name).toEqual({ drop: ["ALL"] });
          expect(sc["runAsNonRoot"], name).toBe(true);
          expect(sc["seccompProfile"], name).toEqual({ type: "RuntimeDefault" });
          const res = c.merge.resources as Record<string, any>;
          expect(res["requests"]?.["cpu"], name).toBeDefined();
          expect(res["requests"]?.["memory"], name).toBeDefined();
          expect(res["limits"]?.["memory"], name).toBeDefined();
        }
      }
  });

  it("NATS: the exporter is probed on the port it listens on (the chart gives it none)", () => {
    const m = natsValues("dev", true).promExporter.merge;
    for (const probe of [m.readinessProbe, m.livenessProbe])
      expect(probe).toMatchObject({ tcpSocket: { port: NATS_EXPORTER_PORT } });
  });

  it("NATS and KEDA run their images by the digests versions.ts traces, with their tags", () => {
    const nats = natsValues("prod", true);
    const img = chartImages.nats.images;
    // `fullImageName`: the chart's `digest` would drop the tag.
    expect(nats.container.image).toEqual({
      fullImageName: `nats:2.14.2-alpine@${img.server.digest}`,
    });
    // Untraced images keep the chart's default: nothing is set for them.
    for (const [values, image] of [
      [nats.reloader, img.reloader],
      [nats.promExporter, img.exporter],
    ] as const)
      expect(values.image).toEqual(image.digest ? { fullImageName: pinnedRef(image) } : undefined);
    const keda = kedaValues(true).image;
    const k = chartImages.keda.images;
    // The chart takes a tag only and prints `registry/repository:tag`: the digest rides in it.
    expect(keda).toEqual({
      keda: { tag: `2.20.2@${k.operator.digest}` },
      metricsApiServer: { tag: `2.20.2@${k.metricsApiServer.digest}` },
      webhooks: { tag: `2.20.2@${k.webhooks.digest}` },
    });
    expect(charts.keda.version).toBe(chartImages.keda.chartVersion);
  });

  it("prod's policy still reports a model image given without a digest", async () => {
    const committed = loadStackConfig(process.cwd(), "prod").config["platform:inference"];
    const inference = JSON.parse(String(committed));
    const override = { repository: images.vllm.repository, tag: images.vllm.tag };
    inference.services[0].image = override;
    const r = await renderStack("prod", { overrides: { "platform:inference": inference } });
    const ref = `${override.repository}:${override.tag}`;
    expect(
      r.plan.violations.filter((v) => v.policy === "image-digest-in-prod").map((v) => v.message),
    ).toEqual([expect.stringContaining(`image ${ref} is not pinned by digest (required in prod)`)]);
    expect(r.plan.violations.find((v) => v.policy === "image-digest-in-prod")?.level).toBe("mandatory");
  });

  it("sets only values keys verified against the pinned nats and keda charts", () => {
    for (const [values, pin, keys] of [
      [natsValues("prod", true), "nats", chartValuesKeys.nats],
      [natsValues("local", false), "nats", chartValuesKeys.nats],
      [kedaValues(true), "keda", chartValuesKeys.keda],
      [kedaValues(false), "keda", chartValuesKeys.keda],
    ] as const) {
      // A bump re-checks the keys against the new chart (and moves the fixture's version).
      expect(charts[pin].version, `${pin}: fixture is for another chart version`).toBe(keys.version);
      expect(unverifiedValuesKeys(values, keys), pin).toEqual([]);
    }
  });
});

const PUBLIC_TLS = { acme: { email: "ops@example.org", dns01: {} }, ingress: { issuer: "acme" } };

/** Renders an InferenceStack on a fake cluster with the given inference config. */
async function renderInference(
  inference: Record<string, unknown>,
  opts: {
    mesh?: boolean;
    monitoring?: boolean;
    environment?: "local" | "dev" | "prod";
    hfToken?: boolean;
  } = {},
) {
  return render(() => {
    const provider = new k8s.Provider("k8s", {});
    const cluster: ClusterHandle = { provider, distribution: "k3s", gpuPools: [l4], ready: [] };
    const config = parsePlatformConfig(
      {
        "platform:environment": opts.environment ?? "dev",
        "platform:cluster": JSON.stringify({ kind: "existing", gpuPools: [l4] }),
        "platform:inference": JSON.stringify(inference),
        // Outside local the registry and ingress need publicly trusted certificates.
        "platform:registry": JSON.stringify({ tls: { issuer: "acme" } }),
        "platform:tls": JSON.stringify(PUBLIC_TLS),
      },
      new Set(["hfToken", "acmeDnsApiToken"]),
    );
    const stack = new InferenceStack("t", {
      cluster,
      namespace: "inference",
      environment: opts.environment ?? "dev",
      config: { ...config.inference, gateway: { ...config.inference.gateway, hostname: "ai.example.org" } },
      secretStore: new SecretStore("s", { provider }),
      secrets: opts.hfToken ? { hfToken: pulumi.secret("hf_canary_token_value") } : {},
      mesh: opts.mesh ?? true,
      monitoring: opts.monitoring ?? true,
      gatewayImage: "registry.platform.local/platform/gateway:0.1.0",
    });
    return { models: stack.models, gatewayUrl: stack.gatewayUrl };
  });
}

describe("InferenceStack objects", () => {
  // A quarter of a GPU each: the l4 pool time-slices 4 ways, so up to 4 pods may share one GPU's memory.
  const vllm = {
    name: "llm",
    runtime: "vllm",
    model: "org/Model-8B",
    args: ["--gpu-memory-utilization", "0.25"],
    gpu: { pool: "gpu-l4", count: 1 },
    replicas: { min: 1, max: 3 },
  };
  // Without the gateway there is no KEDA: a model service runs a fixed count.
  const fixed = { ...vllm, replicas: { min: 1, max: 1 } };

  it("without canary: Service, VirtualService, DestinationRule, ScaledObject, PDB, NetworkPolicy, ServiceMonitor", async () => {
    const r = await renderInference({ services: [{ ...vllm, autoscaling: { scaleToZero: false } }] });
    const kinds = r.registrations.filter((x) => x.parent?.includes("InferenceService")).map((x) => x.type);
    expect(kinds).toEqual(
      expect.arrayContaining([
        "kubernetes:core/v1:Service",
        "kubernetes:apps/v1:Deployment",
        "kubernetes:keda.sh/v1alpha1:ScaledObject",
        "kubernetes:monitoring.coreos.com/v1:PrometheusRule",
        "kubernetes:policy/v1:PodDisruptionBudget",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "kubernetes:networking.istio.io/v1beta1:VirtualService",
        "kubernetes:networking.istio.io/v1beta1:DestinationRule",
        "kubernetes:monitoring.coreos.com/v1:ServiceMonitor",
      ]),
    );
    expect(r.ofType("kubernetes:flagger.app/v1beta1:Canary")).toHaveLength(0);
    // Never a CPU HPA on a GPU server: KEDA scales it on vLLM's queue and KV cache.
    expect(r.ofType("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")).toHaveLength(0);
    const so = r.plain(r.get("kubernetes:keda.sh/v1alpha1:ScaledObject", "t-llm-scaler"));
    expect(so.spec).toMatchObject({
      minReplicaCount: 1,
      maxReplicaCount: 3,
      scaleTargetRef: { name: "llm" },
    });
    expect(so.spec.triggers.map((t: any) => t.name)).toEqual(["queue-wait", "kv-cache"]);
    const dep = r.plain(r.get("kubernetes:apps/v1:Deployment", "t-llm-server"));
    expect(dep.metadata.labels["app.kubernetes.io/component"]).toBe("model-server");
    expect(dep.spec.replicas).toBeUndefined();
  });

  it("with canary: a Flagger Canary and no Service/VirtualService/DestinationRule that would clash", async () => {
    const r = await renderInference({ services: [{ ...vllm, canary: { enabled: true, mirror: true } }] });
    const canary = r.plain(r.get("kubernetes:flagger.app/v1beta1:Canary", "t-llm-canary"));
    expect(canary.spec.analysis).toMatchObject({ mirror: true, iterations: 10 });
    const own = (type: string) =>
      r.ofType(type).filter((x) => x.parent?.includes("platform:inference:InferenceService"));
    expect(own("kubernetes:networking.istio.io/v1beta1:VirtualService")).toHaveLength(0);
    expect(own("kubernetes:networking.istio.io/v1beta1:DestinationRule")).toHaveLength(0);
    expect(own("kubernetes:core/v1:Service").map((s) => r.plain(s).metadata.name)).toEqual(["llm-metrics"]);
  });

  it("the hub token is a mounted Secret file, never a literal", async () => {
    const r = await renderInference(
      { services: [{ ...fixed, hubTokenSecret: true }], gateway: { enabled: false } },
      { hfToken: true },
    );
    const secret = r.get("kubernetes:core/v1:Secret", "inference-hf-token");
    expect(isSecretWrapped((secret.inputs as any).stringData)).toBe(true);
    const dep = r.plain(r.get("kubernetes:apps/v1:Deployment", "t-llm-server"));
    const pod = dep.spec.template.spec;
    expect(pod.volumes.find((v: any) => v.name === "hub-token").secret.secretName).toBe("hf-token");
    expect(pod.containers[0].env).toContainEqual({
      name: "HF_TOKEN_PATH",
      value: "/var/run/secrets/huggingface/token",
    });
    expect(JSON.stringify(dep)).not.toContain("hf_canary_token_value");
  });

  it("a hub token service without the secret is a clear error", () => {
    const config = { services: [svc({ hubTokenSecret: true })] } as any;
    expect(() => hubToken(config, {})).toThrow(/platform:hfToken/);
    expect(hubToken({ services: [svc({})] } as any, {})).toBeUndefined();
  });

  it("gateway traces: to the collector's OTLP/HTTP endpoint when monitoring is on, per-role service names", async () => {
    const gateway = { enabled: true, workers: { min: 0, max: 5 } };
    const envOf = (r: Awaited<ReturnType<typeof renderInference>>, role: string) =>
      Object.fromEntries(
        r
          .plain(r.get("kubernetes:apps/v1:Deployment", `t-gateway-${role}`))
          .spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]),
      );
    const on = await renderInference({ services: [vllm], gateway }, { monitoring: true });
    for (const role of ["api", "worker"]) {
      expect(envOf(on, role)).toMatchObject({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://otel-collector.monitoring:4318",
        OTEL_SERVICE_NAME: `gateway-${role}`,
      });
    }
    const off = await renderInference({ services: [vllm], gateway }, { monitoring: false });
    for (const role of ["api", "worker"]) {
      expect(envOf(off, role)).not.toHaveProperty("OTEL_EXPORTER_OTLP_ENDPOINT");
      expect(envOf(off, role)).not.toHaveProperty("OTEL_SERVICE_NAME");
    }
  });

  it("gateway: API + workers from the image, KEDA on the worker, NATS and KEDA charts, VirtualService, hashed key", async () => {
    const r = await renderInference({
      services: [vllm],
      gateway: { enabled: true, replicas: 2, workers: { min: 0, max: 5 } },
    });
    const api = r.plain(r.get("kubernetes:apps/v1:Deployment", "t-gateway-api"));
    const worker = r.plain(r.get("kubernetes:apps/v1:Deployment", "t-gateway-worker"));
    expect(api.metadata.labels["app.kubernetes.io/component"]).toBe("gateway");
    // The image's ENTRYPOINT + CMD run unchanged; the role is GATEWAY_ROLE (test/contract.test.ts).
    for (const d of [api, worker]) {
      expect(d.spec.template.spec.containers[0].command).toBeUndefined();
      expect(d.spec.template.spec.containers[0].args).toBeUndefined();
    }
    const env = Object.fromEntries(
      api.spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]),
    );
    expect(env.GATEWAY_ROLE).toBe("api");
    expect(worker.spec.template.spec.containers[0].env).toContainEqual({
      name: "GATEWAY_ROLE",
      value: "worker",
    });
    expect(env.BACKEND_URL).toBe("http://llm.inference.svc.cluster.local:8000/v1");
    // The name the backend serves under (--served-model-name) is what the gateway lists and labels.
    expect(env.MODELS).toBe(vllm.name);
    expect(env.NATS_URL).toBe("nats://nats.inference.svc.cluster.local:4222");
    expect(env.API_KEYS_FILE).toBe("/var/run/secrets/gateway/api-keys.json");
    const so = r.plain(r.get("kubernetes:keda.sh/v1alpha1:ScaledObject", "t-gateway-workers-scaler"));
    expect(so.spec).toMatchObject({
      minReplicaCount: 0,
      maxReplicaCount: 5,
      scaleTargetRef: { name: "gateway-worker" },
    });
    const charts = r.ofType("kubernetes:helm.sh/v4:Chart").map((c) => (c.inputs as any).chart);
    expect(charts.sort()).toEqual(["keda", "nats"]);
    const keys = r.get("kubernetes:core/v1:Secret", "inference-gateway-api-keys");
    expect(isSecretWrapped((keys.inputs as any).stringData)).toBe(true);
    expect(
      isSecretWrapped(
        r.registrations.find((x) => x.type === "platform:inference:InferenceGateway")!.outputs!["apiKey"],
      ),
    ).toBe(true);
    const vs = r.plain(r.get("kubernetes:networking.istio.io/v1beta1:VirtualService", "t-gateway-vs"));
    expect(vs.spec.hosts).toEqual(["ai.example.org"]);
    expect(r.outputs["gatewayUrl"]).toBe("https://ai.example.org");
  });

  it("protects the model cache in prod", async () => {
    const r = await renderInference(
      { services: [fixed], gateway: { enabled: false } },
      { environment: "prod" },
    );
    expect(r.get("kubernetes:core/v1:PersistentVolumeClaim", "t-llm-cache").protect).toBe(true);
    const dep = r.plain(r.get("kubernetes:apps/v1:Deployment", "t-llm-server"));
    // By its traced digest, the tag kept beside it.
    expect(dep.spec.template.spec.containers[0].image).toBe(
      `${images.vllm.repository}:${images.vllm.tag}@${images.vllm.digest}`,
    );
  });

  it("awaits every model Deployment for its start budget, not the provider's default 10 minutes", async () => {
    const big = { ...fixed, name: "big", model: "meta-llama/Llama-3.1-70B-Instruct" };
    const small = { name: "tiny", runtime: "llamacpp", model: "q/q-0.5B.gguf" };
    const r = await renderInference({ services: [fixed, big, small], gateway: { enabled: false } });
    const budgets = deploymentStartBudgets(inferenceSchemaOf({ services: [fixed, big, small] }));
    expect(budgets.map((b) => b.name)).toEqual(["llm", "big", "tiny"]);
    for (const b of budgets) {
      const reg = r.get("kubernetes:apps/v1:Deployment", `t-${b.name}-server`);
      const dep = r.plain(reg);
      expect(dep.metadata).toMatchObject({ name: b.name, namespace: b.namespace });
      // The await covers the start budget, which is the Deployment's own progress deadline.
      expect(dep.spec.progressDeadlineSeconds).toBe(b.startBudgetSeconds);
      expect(b.awaitSeconds).toBeGreaterThanOrEqual(b.startBudgetSeconds);
      for (const op of ["create", "update"] as const)
        expect(reg.customTimeouts?.[op], `${b.name} ${op}`).toBe(`${b.awaitSeconds}s`);
      expect(b.awaitSeconds).toBeGreaterThan(600);
    }
    // 70B: 45 minutes to load, plus pulling the image.
    expect(budgets[1]!.startBudgetSeconds).toBeGreaterThanOrEqual(45 * 60);
  });

  it("names each cache's storage class on its PVC", async () => {
    const r = await renderInference({
      storageClasses: [
        { name: "local-path", accessModes: ["ReadWriteOnce"] },
        { name: "nfs-models", accessModes: ["ReadWriteMany"] },
      ],
      services: [{ ...fixed, cacheAccessMode: "ReadWriteMany", cacheStorageClass: "nfs-models" }],
      gateway: { enabled: false },
    });
    const pvc = r.plain(r.get("kubernetes:core/v1:PersistentVolumeClaim", "t-llm-cache"));
    expect(pvc.spec).toMatchObject({ accessModes: ["ReadWriteMany"], storageClassName: "nfs-models" });
  });

  it("runs UID 1000 without a passwd entry: HOME, USER and every cache dir on a writable volume", () => {
    for (const s of [svc({}), svc({ runtime: "llamacpp", model: "q/q-0.5B.gguf", gpu: undefined })]) {
      const pod = modelPodSpec(s, { cacheClaim: "c", image: "i:1", pool: l4 });
      const c = (pod.containers as any[])[0];
      expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
      const env = Object.fromEntries(serverEnv(s).map((e) => [e.name, e.value as string]));
      expect(env["HOME"]).toBeDefined();
      expect(env["USER"]).toBeDefined();
      const writable = (c.volumeMounts as { name: string; mountPath: string; readOnly?: boolean }[])
        .filter((m) => !m.readOnly)
        .filter((m) =>
          (pod.volumes as any[]).some((v) => v.name === m.name && (v.emptyDir || v.persistentVolumeClaim)),
        )
        .map((m) => m.mountPath);
      if (s.runtime === "vllm")
        for (const k of [
          "HF_HOME",
          "TORCHINDUCTOR_CACHE_DIR",
          "TRITON_CACHE_DIR",
          "XDG_CACHE_HOME",
          "VLLM_CACHE_ROOT",
        ])
          expect(env[k], k).toBeDefined();
      for (const k of WRITABLE_ENV) {
        const dir = env[k];
        if (dir === undefined) continue;
        expect(
          writable.some((m) => dir === m || dir.startsWith(`${m}/`)),
          `${s.runtime} ${k}=${dir} is not on a writable volume`,
        ).toBe(true);
      }
      expect(env["HF_HOME"]!.startsWith(CACHE_DIR)).toBe(true);
    }
  });
});

function inferenceSchemaOf(inference: Record<string, unknown>) {
  return parsePlatformConfig(
    {
      "platform:environment": "local",
      "platform:cluster": JSON.stringify({ kind: "existing", gpuPools: [l4] }),
      "platform:inference": JSON.stringify(inference),
    },
    new Set(["hfToken"]),
  ).inference;
}

describe("bad inference config", () => {
  const base = (inference: unknown, extra: Record<string, unknown> = {}) =>
    Object.fromEntries(
      Object.entries({
        "platform:environment": "dev",
        "platform:cluster": {
          kind: "existing",
          gpuPools: [{ name: "gpu-l4", nodeSelector: { a: "b" }, nodes: 1, gpu: { gpusPerNode: 1 } }],
        },
        "platform:inference": inference,
        ...extra,
      }).map(([k, v]) => [k, JSON.stringify(v)]),
    );
  const problems = (raw: Record<string, string>) => {
    try {
      parsePlatformConfig(raw, new Set(["hfToken"]));
      return [];
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as ConfigError).problems.map((p) => `${p.key}: ${p.message}`);
    }
  };
  const m = { name: "m", runtime: "vllm", model: "x" };

  it.each([
    [
      "a pool that does not exist",
      { ...m, gpu: { pool: "nope", count: 1 } },
      /services\[0\]\.gpu\.pool: no GPU pool "nope"/,
    ],
    ["more GPUs than a node has", { ...m, gpu: { pool: "gpu-l4", count: 2 } }, /gpu\.count: 2 GPUs exceed/],
    [
      "min above max",
      { ...m, gpu: { pool: "gpu-l4", count: 1 }, replicas: { min: 3, max: 2 } },
      /replicas\.min: min \(3\)/,
    ],
    ["an unknown runtime", { ...m, runtime: "tgi" }, /services\[0\]\.runtime/],
    [
      "llama.cpp with a GPU",
      { ...m, runtime: "llamacpp", gpu: { pool: "gpu-l4", count: 1 } },
      /llamacpp runs on CPU/,
    ],
    [
      "a latest image",
      { ...m, gpu: { pool: "gpu-l4", count: 1 }, image: { repository: "r", tag: "latest" } },
      /image\.tag/,
    ],
  ])("rejects %s", (_what, service, pattern) => {
    expect(problems(base({ services: [service] })).join("\n")).toMatch(pattern);
  });

  it("rejects canary without the mesh, and without Flagger", () => {
    const s = { ...m, gpu: { pool: "gpu-l4", count: 1 }, canary: { enabled: true } };
    expect(problems(base({ services: [s] }, { "platform:mesh": { enabled: false } })).join("\n")).toMatch(
      /canary\.enabled: canary needs the mesh/,
    );
    expect(problems(base({ services: [s] }, { "platform:mesh": { flagger: false } })).join("\n")).toMatch(
      /canary needs Flagger/,
    );
  });
});

describe("committed local stack", () => {
  it("runs one llama.cpp service and the gateway with zero schema errors and leaks", async () => {
    const r = await renderStack("local");
    expect(r.plan.summary.schemaErrors).toBe(0);
    expect(r.plan.summary.secretLeaks).toBe(0);
    expect(r.outputs["models"]).toEqual(["qwen-0-5b"]);
    expect(r.ofType("platform:inference:InferenceService")).toHaveLength(1);
    // The gateway's workers and the model server, each on its own queue.
    expect(
      r
        .ofType("kubernetes:keda.sh/v1alpha1:ScaledObject")
        .map((x) => r.plain(x).metadata.name)
        .sort(),
    ).toEqual(["gateway-worker", "qwen-0-5b"]);
  });
});

describe("gateway identities in the mesh", () => {
  it("prod's gateway pods run as service accounts the default-deny allow admits, carrying the pull secret", async () => {
    const r = await renderStack("prod");
    const allow = r.registrations
      .filter((x) => x.custom)
      .map((x) => r.plain(x))
      .find((x) => x.kind === "AuthorizationPolicy" && x.metadata.name === "allow-gateway-to-models");
    const principals: string[] = allow!.spec.rules[0].from[0].source.principals;
    const admits = (sa: string) =>
      principals.some((p) => {
        const re = new RegExp(`^${p.replace(/[.]/g, "\\.").replace("*", ".*")}$`);
        return re.test(`cluster.local/ns/inference/sa/${sa}`);
      });
    for (const name of ["gateway", "gateway-worker"]) {
      const dep = r.plain(
        r.ofType("kubernetes:apps/v1:Deployment").find((d) => r.plain(d).metadata.name === name)!,
      );
      const sa: string = dep.spec.template.spec.serviceAccountName;
      expect(admits(sa)).toBe(true);
      const account = r
        .ofType("kubernetes:core/v1:ServiceAccount")
        .map((x) => r.plain(x))
        .find((x) => x.metadata.name === sa && x.metadata.namespace === "inference");
      expect(account!.imagePullSecrets).toEqual([{ name: "registry-pull" }]);
    }
    // Model servers are not gateway identities.
    expect(admits("platform-workload")).toBe(false);
  });
});

describe("model cache storage classes", () => {
  const keysOf = (inference: Record<string, unknown>) => {
    try {
      inferenceSchemaOf(inference);
      return [];
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as ConfigError).problems.map((p) => `${p.key}: ${p.message}`);
    }
  };
  const rwx = { ...svcConfig(), cacheAccessMode: "ReadWriteMany" };

  it("refuses ReadWriteMany without a class that provisions it, naming the key", () => {
    const none = keysOf({ services: [rwx] });
    expect(none).toHaveLength(1);
    expect(none[0]).toMatch(
      /^platform:inference\.services\[0\]\.cacheStorageClass: .*ReadWriteMany.*local-path/,
    );
    // K3s's local-path (the default declaration) provisions ReadWriteOnce only.
    expect(keysOf({ services: [{ ...rwx, cacheStorageClass: "local-path" }] })[0]).toMatch(
      /^platform:inference\.services\[0\]\.cacheStorageClass: storage class "local-path" provisions ReadWriteOnce only/,
    );
    expect(keysOf({ services: [{ ...rwx, cacheStorageClass: "nope" }] })[0]).toMatch(
      /cacheStorageClass: storage class "nope" is not in platform:inference.storageClasses/,
    );
    expect(
      keysOf({
        storageClasses: [{ name: "nfs-models", accessModes: ["ReadWriteMany"] }],
        services: [{ ...rwx, cacheStorageClass: "nfs-models" }],
      }),
    ).toEqual([]);
  });

  it("every committed stack's RWX cache names a class declared with ReadWriteMany", async () => {
    for (const name of ["local", "dev", "prod"] as const) {
      const r = await renderStack(name, name === "local" ? {} : { overrides: existingClusterFor(name) });
      for (const reg of r.ofType("kubernetes:core/v1:PersistentVolumeClaim")) {
        const spec = r.plain(reg).spec;
        if (!(spec.accessModes as string[]).includes("ReadWriteMany")) continue;
        expect(spec.storageClassName, `${name} ${reg.name}`).toBeDefined();
        expect(spec.storageClassName).not.toBe("local-path");
      }
    }
  }, 120_000);
});

function svcConfig() {
  return { name: "llm", runtime: "vllm", model: "org/Model-8B", gpu: { pool: "gpu-l4", count: 1 } };
}
