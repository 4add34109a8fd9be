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
import { charts } from "../components/versions";
import {
  GPU_OPERATOR_CHART_VERSION,
  GPU_OPERATOR_VALUES,
  unknownValueKeys,
} from "./fixtures/gpu-operator-values";
import { render, renderStack } from "./harness";
import { k3sGpuPools } from "../components/cluster/k3s";
import { memoryFitProblems, memoryUtilization } from "../components/gpu/memory";
import { memoryWarnings } from "../components/inference/stack";
import { parse as parseYaml } from "yaml";
import { readFileSync } from "node:fs";
import { platformSchema } from "../components/config";

/** The dev stack file's platform config, parsed by the schema (no secrets needed). */
function parsePlatformConfigForTest() {
  const doc = parseYaml(readFileSync("Pulumi.dev.yaml", "utf8")) as { config: Record<string, unknown> };
  const raw = Object.fromEntries(
    Object.entries(doc.config)
      .filter(([k]) => k.startsWith("platform:"))
      .map(([k, v]) => [k.slice("platform:".length), v]),
  );
  return platformSchema.parse(raw);
}

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
  const l4Sliced = {
    name: "gpu-l4",
    gpu: { product: "NVIDIA-L4", sharing: { timeSlicing: { replicas: 2 } } },
  };
  const vllm = (replicas: number, args: string[] = []) => ({
    name: "llama-8b",
    args,
    sizeB: 8,
    count: 1,
    replicas,
  });

  it("two vLLM replicas at the default 0.9 do not fit one time-sliced L4, and the message says why", () => {
    const problems = memoryFitProblems(l4Sliced, [vllm(2)]);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.message).toMatch(
      /24 GiB GPU 2 ways.*0\.9 \+ 0\.9 = 180%.*43\.2 GiB of 24 GiB.*at most 0\.5/,
    );
  });

  it("fits when each replica reserves its share (memory, not slices, is counted)", () => {
    const small = { ...vllm(2, ["--gpu-memory-utilization", "0.45"]), sizeB: 3 };
    expect(memoryFitProblems(l4Sliced, [small])).toEqual([]);
    // An 8B fp16 model (~14.9 GiB) does not fit its 0.45 × 24 GiB share: the weights are counted too.
    expect(memoryFitProblems(l4Sliced, [{ ...small, sizeB: 8 }])[0]!.message).toMatch(/14\.9 GiB.*10\.8 GiB/);
    expect(memoryUtilization(["--gpu-memory-utilization=0.3"])).toBe(0.3);
  });

  it("flags weights larger than the reservation", () => {
    const big = { ...vllm(1), name: "llama-70b", sizeB: 70 };
    const [p] = memoryFitProblems({ ...l4Sliced, gpu: { ...l4Sliced.gpu, sharing: {} } }, [big]);
    expect(p!.message).toMatch(/70B parameters take ~130\.4 GiB.*21\.6 GiB/);
  });

  it("the dev stack's two 0.85 replicas on a 2-way sliced L4 are warned about", () => {
    const dev = parsePlatformConfigForTest();
    const warnings = memoryWarnings(dev.inference, k3sGpuPools(dev.cluster as never));
    expect(warnings.join("\n")).toMatch(/gpu-l4.*0\.85 \+ 0\.85 = 170%/);
  });
});
