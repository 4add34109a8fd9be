import * as k8s from "@pulumi/kubernetes";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import type { GpuPool } from "../components/cluster/handle";
import { gpuSchema } from "../components/gpu/schema";
import {
  DEFAULT_SHARING_CONFIG,
  devicePluginConfigs,
  gpuNodeLabels,
  type DevicePluginConfig,
} from "../components/gpu/sharing";
import { devicePluginValues, K3S_CONTAINERD, NvidiaGpuStack, operatorValues } from "../components/gpu/stack";
import { chartImages, charts } from "../components/versions";
import {
  GPU_OPERATOR_CHART_VERSION,
  GPU_OPERATOR_VALUES,
  unknownValueKeys,
} from "./fixtures/gpu-operator-values";
import { render, renderStack } from "./harness";
import {
  deviceMemoryGiB,
  gpuMemoryGiB,
  memoryFitProblems,
  memoryUtilization,
  type MemoryPool,
  type MemoryService,
} from "../components/gpu/memory";
import { ConfigError, parsePlatformConfig } from "../components/config";
import { inferenceServiceSchema } from "../components/inference/schema";
import { memoryServiceOf, peakGpus } from "../components/inference/spec";
import { committedConfig } from "./stack-overrides";
import { withDigests } from "./fixtures/with-digests";
import { listStacks, loadStackConfig } from "../tools/preflight/stack-config";

const l4: GpuPool = {
  name: "gpu-l4",
  nodeSelector: { "platform.ai/gpu-pool": "gpu-l4" },
  nodes: 2,
  gpu: { gpusPerNode: 1, sharing: { timeSlicing: { replicas: 4 } } },
};
const h100: GpuPool = {
  name: "gpu-h100",
  nodeSelector: { "platform.ai/gpu-pool": "gpu-h100" },
  nodes: 1,
  gpu: { gpusPerNode: 8, sharing: { mig: { strategy: "mixed", profile: "all-balanced" } } },
};
const gpu = gpuSchema.parse({});
const envOf = (v: ReturnType<typeof operatorValues>) =>
  Object.fromEntries(v.toolkit.env.map((e) => [e.name, e.value]));

describe("GPU operator values", () => {
  it("points the toolkit at K3s's containerd on K3s and k3d", () => {
    for (const distribution of ["k3s", "k3d"] as const) {
      const env = envOf(operatorValues({ distribution, pools: [l4], gpu, monitoring: false }));
      expect(env["CONTAINERD_CONFIG"]).toBe(K3S_CONTAINERD.config);
      expect(env["CONTAINERD_SOCKET"]).toBe("/run/k3s/containerd/containerd.sock");
      expect(env["CONTAINERD_RUNTIME_CLASS"]).toBe("nvidia");
    }
  });

  it("on K3s the toolkit reads K3s's generated config and writes the drop-in K3s imports (26.x toolkit)", () => {
    const env = envOf(operatorValues({ distribution: "k3s", pools: [l4], gpu, monitoring: false }));
    expect(env["RUNTIME_CONFIG_SOURCE"]).toBe(`file=${K3S_CONTAINERD.config}`);
    expect(env["RUNTIME_DROP_IN_CONFIG"]).toBe(
      "/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.d/99-nvidia.toml",
    );
    const eks = envOf(operatorValues({ distribution: "eks", pools: [l4], gpu, monitoring: false }));
    expect(eks["RUNTIME_DROP_IN_CONFIG"]).toBeUndefined();
  });

  it("passes only values keys the pinned gpu-operator chart has (no silently ignored keys)", () => {
    // The fixture describes the chart at one tag; a pin bump must re-verify it.
    expect(charts.gpuOperator.version).toBe(GPU_OPERATOR_CHART_VERSION);
    const pools = [l4, h100];
    for (const distribution of ["k3s", "k3d", "eks", "generic"] as const)
      for (const monitoring of [true, false]) {
        const values = operatorValues({ distribution, pools, gpu, monitoring, nfdPreinstalled: true });
        expect(unknownValueKeys(values, GPU_OPERATOR_VALUES)).toEqual([]);
      }
    // The guard itself catches the kind of key that slipped through before.
    expect(unknownValueKeys({ operator: { defaultRuntime: "containerd" } }, GPU_OPERATOR_VALUES)).toEqual([
      "operator.defaultRuntime",
    ]);
  });

  it("pins the operands the ClusterPolicy starts by their traced digests, tags kept", () => {
    const img = chartImages.gpuOperator.images;
    const v = operatorValues({ distribution: "k3s", pools: [l4, h100], gpu, monitoring: true });
    // The operator builds `repository/image:version`: `tag@digest` keeps the tag beside the digest.
    const version = (i: { tag: string; digest?: string }) => `${i.tag}@${i.digest}`;
    expect(v.toolkit.version).toBe(version(img.toolkit));
    expect(v.devicePlugin.version).toBe(version(img.devicePlugin));
    expect(v.gfd).toEqual({ version: version(img.devicePlugin) });
    expect(v.dcgmExporter.version).toBe(version(img.dcgmExporter));
    expect(v.migManager.version).toBe(version(img.migManager));
    expect(v.driver.manager).toEqual({ version: version(img.driverManager) });
    // The tags are the chart's defaults: pinning moves no version.
    expect(img.toolkit.tag).toBe("v1.20.0");
    expect(img.devicePlugin.tag).toBe("v0.20.0");
    // Untraced (the operator itself, NFD): left to the chart until versions.ts records a digest,
    // then pinned like the operands (the NFD subchart only when the operator installs NFD).
    expect(img.operator.digest).toBeUndefined();
    expect(v.operator).toEqual({ runtimeClass: "nvidia" });
    expect(v["node-feature-discovery"]).toBeUndefined();
    const d = `sha256:${"ab".repeat(32)}`;
    withDigests([img.operator, img.nodeFeatureDiscovery], d, () => {
      const pinned = operatorValues({ distribution: "k3s", pools: [l4], gpu, monitoring: true });
      expect(pinned.operator).toEqual({ runtimeClass: "nvidia", version: `v26.7.0@${d}` });
      expect(pinned["node-feature-discovery"]).toEqual({ image: { tag: `v0.19.0@${d}` } });
      expect(unknownValueKeys(pinned, GPU_OPERATOR_VALUES)).toEqual([]);
      const preinstalled = operatorValues({
        distribution: "k3s",
        pools: [l4],
        gpu,
        monitoring: true,
        nfdPreinstalled: true,
      });
      expect(preinstalled["node-feature-discovery"]).toBeUndefined();
    });
    // Device-plugin mode: the chart prints `repository:tag`, so the digest rides in the tag.
    const plugin = chartImages.nvidiaDevicePlugin.images.devicePlugin;
    expect(devicePluginValues({ distribution: "k3s", pools: [l4], gpu, monitoring: true }).image).toEqual({
      tag: version(plugin),
    });
    expect(charts.nvidiaDevicePlugin.version).toBe(chartImages.nvidiaDevicePlugin.chartVersion);
  });

  it("leaves the runtime's default paths elsewhere", () => {
    const env = envOf(operatorValues({ distribution: "eks", pools: [l4], gpu, monitoring: false }));
    expect(env["CONTAINERD_CONFIG"]).toBeUndefined();
    expect(env["CONTAINERD_SOCKET"]).toBeUndefined();
  });

  it("installs drivers only when the operator manages them", () => {
    expect(operatorValues({ distribution: "k3s", pools: [l4], gpu, monitoring: false }).driver.enabled).toBe(
      false,
    );
    const managed = gpuSchema.parse({ driver: "operator" });
    expect(
      operatorValues({ distribution: "k3s", pools: [l4], gpu: managed, monitoring: false }).driver.enabled,
    ).toBe(true);
  });

  it("configures time-slicing per pool through the device-plugin config", () => {
    const v = operatorValues({ distribution: "k3s", pools: [l4, h100], gpu, monitoring: false });
    expect(v.devicePlugin.config.create).toBe(true);
    const cfg = parse(v.devicePlugin.config.data["gpu-l4"]!) as DevicePluginConfig;
    expect(cfg.sharing?.timeSlicing.resources).toEqual([{ name: "nvidia.com/gpu", replicas: 4 }]);
    expect((parse(v.devicePlugin.config.data["gpu-h100"]!) as DevicePluginConfig).sharing).toBeUndefined();
    // Two pools: unlabelled nodes get whole GPUs; labelled nodes their pool's config.
    expect(v.devicePlugin.config.default).toBe(DEFAULT_SHARING_CONFIG);
    expect(gpuNodeLabels("gpu-l4", l4.gpu)["nvidia.com/device-plugin.config"]).toBe("gpu-l4");
  });

  it("uses the single pool's config as the default (existing clusters need no node labels)", () => {
    expect(
      operatorValues({ distribution: "eks", pools: [l4], gpu, monitoring: false }).devicePlugin.config
        .default,
    ).toBe("gpu-l4");
  });

  it("turns on the MIG manager with the pools' strategy", () => {
    const v = operatorValues({ distribution: "k3s", pools: [l4, h100], gpu, monitoring: false });
    expect(v.mig.strategy).toBe("mixed");
    expect(v.migManager.enabled).toBe(true);
    expect(devicePluginConfigs([l4, h100])["gpu-h100"]!.flags.migStrategy).toBe("mixed");
    expect(gpuNodeLabels("gpu-h100", h100.gpu)["nvidia.com/mig.config"]).toBe("all-balanced");
    expect(
      operatorValues({ distribution: "k3s", pools: [l4], gpu, monitoring: false }).migManager.enabled,
    ).toBe(false);
  });

  it("has the operator create the DCGM ServiceMonitor only when monitoring is on", () => {
    expect(
      operatorValues({ distribution: "k3s", pools: [l4], gpu, monitoring: true }).dcgmExporter.serviceMonitor
        .enabled,
    ).toBe(true);
    expect(
      operatorValues({ distribution: "k3s", pools: [l4], gpu, monitoring: false }).dcgmExporter.serviceMonitor
        .enabled,
    ).toBe(false);
  });

  it("tolerates the GPU taint so its daemonsets reach GPU nodes", () => {
    const v = operatorValues({ distribution: "k3s", pools: [l4], gpu, monitoring: false });
    expect(v.daemonsets.tolerations).toEqual([
      { key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" },
    ]);
  });
});

describe("NvidiaGpuStack", () => {
  const stack = (mode: "operator" | "device-plugin") =>
    render(() => {
      const provider = new k8s.Provider("p", {});
      new NvidiaGpuStack("gpu", {
        provider,
        distribution: "k3s",
        pools: [l4],
        gpu: gpuSchema.parse({ mode }),
        monitoring: true,
      });
    });

  it("operator mode: the pinned operator chart in a privileged namespace; the operator owns the RuntimeClass", async () => {
    const out = await stack("operator");
    const chart = out.get("kubernetes:helm.sh/v4:Chart", "gpu-operator");
    const inputs = out.plain(chart);
    expect(inputs).toMatchObject({
      chart: charts.gpuOperator.chart,
      version: charts.gpuOperator.version,
      repositoryOpts: { repo: "https://helm.ngc.nvidia.com/nvidia" },
      namespace: "gpu-operator",
    });
    expect(inputs["values"].operator.runtimeClass).toBe("nvidia");
    expect(out.ofType("kubernetes:node.k8s.io/v1:RuntimeClass")).toHaveLength(0);
    const ns = out.get("kubernetes:core/v1:Namespace", "ns-gpu-operator");
    expect(out.plain(ns)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]).toBe("privileged");
    expect(chart.dependsOn).toContain(ns.urn);
  });

  it("device-plugin mode: the device plugin chart and exactly one RuntimeClass nvidia", async () => {
    const out = await stack("device-plugin");
    const chart = out.get("kubernetes:helm.sh/v4:Chart", "gpu-device-plugin");
    const values = out.plain(chart)["values"];
    expect(values).toEqual(devicePluginValues({ distribution: "k3s", pools: [l4], gpu, monitoring: true }));
    expect(values.runtimeClassName).toBe("nvidia");
    const rcs = out.ofType("kubernetes:node.k8s.io/v1:RuntimeClass");
    expect(rcs).toHaveLength(1);
    expect(out.plain(rcs[0]!)).toMatchObject({ metadata: { name: "nvidia" }, handler: "nvidia" });
  });
});

describe("GPU stack per stack", () => {
  it("dev and prod get the operator; local (no GPU pools) gets none", async () => {
    const dev = await renderStack("dev");
    expect(dev.ofType("platform:gpu:NvidiaGpuStack")).toHaveLength(1);
    const values = dev.plain(dev.get("kubernetes:helm.sh/v4:Chart", "dev-gpu-operator"))["values"];
    expect(values.toolkit.env).toEqual(
      expect.arrayContaining([{ name: "CONTAINERD_CONFIG", value: K3S_CONTAINERD.config }]),
    );
    expect(values.dcgmExporter.serviceMonitor.enabled).toBe(true);
    const prod = await renderStack("prod");
    const pv = prod.plain(prod.get("kubernetes:helm.sh/v4:Chart", "prod-gpu-operator"))["values"];
    expect(pv.driver.enabled).toBe(true);
    expect(pv.migManager.enabled).toBe(true);
    const local = await renderStack("local");
    expect(local.ofType("platform:gpu:NvidiaGpuStack")).toHaveLength(0);
  });
});

describe("GPU memory fit (time-slicing isolates no memory)", () => {
  const l4Sliced: MemoryPool = {
    name: "gpu-l4",
    key: "platform:cluster.pools[1]",
    gpu: { product: "NVIDIA-L4", sharing: { timeSlicing: { replicas: 2 } } },
  };
  const whole = (pool: MemoryPool): MemoryPool => ({ ...pool, gpu: { ...pool.gpu, sharing: {} } });
  const vllm = (replicas: number, args: string[] = []): MemoryService => ({
    name: "llama-8b",
    key: "platform:inference.services[0]",
    args,
    sizeB: 8,
    count: 1,
    replicas,
  });

  it("knows the memory the driver reports, a pool's own figure first, and a MIG slice's own", () => {
    expect(gpuMemoryGiB({ product: "NVIDIA-L4" })).toBeCloseTo(22.49, 2);
    expect(gpuMemoryGiB({ product: "NVIDIA-L40S" })).toBeCloseTo(44.99, 2);
    expect(gpuMemoryGiB({ product: "NVIDIA-A100-SXM4-40GB" })).toBe(40);
    expect(gpuMemoryGiB({ product: "NVIDIA-L4", memoryGiB: 20 })).toBe(20);
    expect(gpuMemoryGiB({ product: "RTX-9999" })).toBeUndefined();
    const h100 = { product: "NVIDIA-H100-80GB" };
    expect(
      deviceMemoryGiB({ ...h100, sharing: { mig: { strategy: "single", profile: "all-1g.10gb" } } }),
    ).toBe(10);
    expect(
      deviceMemoryGiB({ ...h100, sharing: { mig: { strategy: "single", profile: "all-disabled" } } }),
    ).toBe(gpuMemoryGiB(h100));
    expect(
      deviceMemoryGiB({ ...h100, sharing: { mig: { strategy: "mixed", profile: "all-balanced" } } }),
    ).toBeUndefined();
  });

  it("two vLLM replicas at the default 0.9 do not fit one time-sliced L4; the message has the numbers and the keys", () => {
    const problems = memoryFitProblems(l4Sliced, [vllm(2)]);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.key).toBe("platform:cluster.pools[1].gpu.sharing.timeSlicing.replicas");
    expect(problems[0]!.services).toEqual(["llama-8b"]);
    expect(problems[0]!.message).toMatch(/22\.5 GiB GPU 2 ways.*0\.9 \+ 0\.9 = 180%.*40\.5 GiB of 22\.5 GiB/);
    // Half an L4 (11.2 GiB) cannot hold an 8B model in bf16 (~14.9 GiB): no share is offered.
    expect(problems[0]!.message).toMatch(
      /share of 0\.5 \(11\.2 GiB\) would not hold the weights of llama-8b \(~14\.9 GiB\).*platform:inference\.services\[0\]\.quantization/,
    );
    expect(problems[0]!.message).toMatch(
      /remove platform:cluster\.pools\[1\]\.gpu\.sharing\.timeSlicing \(whole GPUs/,
    );
  });

  it("offers the share that fits when the weights allow it, and the slices whose reservations fit together", () => {
    const small = { ...vllm(4, ["--gpu-memory-utilization", "0.3"]), sizeB: 3 };
    const [p] = memoryFitProblems(
      { ...l4Sliced, gpu: { ...l4Sliced.gpu, sharing: { timeSlicing: { replicas: 4 } } } },
      [small],
    );
    expect(p!.message).toMatch(/0\.3 \+ 0\.3 \+ 0\.3 \+ 0\.3 = 120%/);
    expect(p!.message).toMatch(
      /--gpu-memory-utilization to at most 0\.25 in platform:inference\.services\[0\]\.args/,
    );
    expect(p!.message).toMatch(/set platform:cluster\.pools\[1\]\.gpu\.sharing\.timeSlicing\.replicas to 3/);
  });

  it("fits when each replica reserves its share and the weights fit it (memory, not slices, is counted)", () => {
    const small = { ...vllm(2, ["--gpu-memory-utilization", "0.45"]), sizeB: 3 };
    expect(memoryFitProblems(l4Sliced, [small])).toEqual([]);
    // An 8B bf16 model (~14.9 GiB) does not fit its 0.45 × 22.5 GiB share: the weights are counted too.
    const [p] = memoryFitProblems(l4Sliced, [{ ...small, sizeB: 8 }]);
    expect(p!.key).toBe("platform:inference.services[0].model");
    expect(p!.message).toMatch(
      /~14\.9 GiB.*reserves 10\.1 GiB.*platform:inference\.services\[0\]\.quantization/,
    );
    // Quantized to 4 bits (~3.7 GiB) it does.
    expect(memoryFitProblems(l4Sliced, [{ ...small, sizeB: 8, quantization: "awq_marlin" }])).toEqual([]);
    expect(memoryUtilization(["--gpu-memory-utilization=0.3"])).toBe(0.3);
    // Shares summing to exactly the GPU fit, despite float sums.
    expect(
      memoryFitProblems({ ...l4Sliced, gpu: { sharing: { timeSlicing: { replicas: 10 } } } }, [
        { ...vllm(10, ["--gpu-memory-utilization", "0.1"]), sizeB: 0.5 },
      ]),
    ).toEqual([]);
  });

  it("counts the shares even where the GPU's size is unknown, and weights only where it is known", () => {
    const unknown = { ...l4Sliced, gpu: { sharing: l4Sliced.gpu.sharing } };
    const [p] = memoryFitProblems(unknown, [vllm(2)]);
    expect(p!.message).toMatch(
      /time-slices each GPU 2 ways.*= 180% of it; set --gpu-memory-utilization to at most 0\.5/,
    );
    expect(memoryFitProblems(whole(unknown), [{ ...vllm(1), sizeB: 70 }])).toEqual([]);
  });

  it("flags weights larger than the reservation", () => {
    const big = { ...vllm(1), name: "llama-70b", sizeB: 70 };
    const [p] = memoryFitProblems(whole(l4Sliced), [big]);
    expect(p!.message).toMatch(/70B parameters take ~130\.4 GiB.*reserves 20\.2 GiB/);
  });

  it("a service's peak pods count its canary, as the GPU capacity does", () => {
    const svc = inferenceServiceSchema.parse({
      name: "m",
      runtime: "vllm",
      model: "org/Model-7B-AWQ",
      gpu: { pool: "gpu-l4", count: 1 },
      replicas: { min: 2, max: 3 },
      canary: { enabled: true },
      quantization: "awq",
    });
    const m = memoryServiceOf(svc, "platform:inference.services[0]");
    expect(m).toMatchObject({ sizeB: 7, quantization: "awq", key: "platform:inference.services[0]" });
    expect(m.replicas * m.count).toBe(peakGpus(svc)); // 3 replicas + 2 canary pods
  });
});

describe("GPU memory of the committed stacks", () => {
  it.each(listStacks(process.cwd()))("%s overcommits no GPU's memory", (stack) => {
    const c = committedConfig(stack);
    const pools = c.cluster.kind === "k3s" ? c.cluster.pools : c.cluster.gpuPools;
    for (const [i, p] of pools.entries()) {
      if (!p.gpu) continue;
      const services = c.inference.services
        .map((s, si) => ({ s, si }))
        .filter(({ s }) => s.runtime === "vllm" && s.gpu?.pool === p.name)
        .map(({ s, si }) => memoryServiceOf(s, `platform:inference.services[${si}]`));
      expect(memoryFitProblems({ name: p.name, key: `pool ${i}`, gpu: p.gpu }, services)).toEqual([]);
    }
  });

  it("dev runs its 8B bf16 model on a whole L4; prod shares each L4 between two 0.45 AWQ replicas", () => {
    const dev = committedConfig("dev");
    const prod = committedConfig("prod");
    const l4Of = (c: typeof dev) =>
      c.cluster.kind === "k3s" ? c.cluster.pools.find((p) => p.name === "gpu-l4")?.gpu : undefined;
    expect(l4Of(dev)?.sharing.timeSlicing).toBeUndefined();
    expect(l4Of(prod)?.sharing.timeSlicing?.replicas).toBe(2);
    const qwen = prod.inference.services.find((s) => s.name === "qwen-2-5-7b")!;
    expect(memoryUtilization(qwen.args)).toBe(0.45);
    expect(memoryServiceOf(qwen, "q").replicas).toBe(4); // = 2 L4s × 2 slices
  });

  it("an overcommitted override fails the config, naming the keys and the numbers", () => {
    const sc = loadStackConfig(process.cwd(), "prod", {
      "platform:inference": {
        ...(committedConfig("prod").inference as object),
        services: committedConfig("prod").inference.services.map((s) =>
          s.name === "qwen-2-5-7b" ? { ...s, args: ["--max-model-len", "8192"] } : s,
        ),
      },
    });
    const secrets = new Set(sc.secretKeys.map((k) => k.replace(/^platform:/, "")));
    let error: unknown;
    try {
      parsePlatformConfig(sc.config, secrets);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(1);
    expect(problems[0]!.key).toBe("platform:cluster.pools[2].gpu.sharing.timeSlicing.replicas");
    expect(problems[0]!.message).toMatch(
      /pool "gpu-l4" time-slices each 22\.5 GiB GPU 2 ways.*0\.9 \+ 0\.9 = 180%.*40\.5 GiB of 22\.5 GiB/,
    );
    expect(problems[0]!.message).toMatch(
      /at most 0\.5 in platform:inference\.services\[1\]\.args.*remove platform:cluster\.pools\[2\]\.gpu\.sharing\.timeSlicing/,
    );
  });
});
