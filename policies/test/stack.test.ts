import { describe, expect, it } from "vitest";
import { deployment, goodPodSpec, gpuPodSpec, workload } from "./fixtures";
import { validateStack, type TestResource } from "./helper";

const pvc: TestResource = {
  type: "kubernetes:core/v1:PersistentVolumeClaim",
  name: "data",
  props: { metadata: { name: "data", namespace: "db" }, spec: {} },
};
const registry: TestResource = {
  type: "platform:registry:RegistryStorage",
  name: "registry",
  props: { storage: "50Gi" },
};

describe("prod-stateful-protected", () => {
  const P = "prod-stateful-protected";
  const prod = { config: { environment: "prod" } };
  const claims = { volumeClaimTemplates: [{ metadata: { name: "data" }, spec: {} }] };
  it("flags unprotected PVCs, StatefulSets whose claims go with them, and the registry in prod", async () => {
    const sts = workload("StatefulSet", goodPodSpec(), {
      name: "pg",
      spec: { ...claims, persistentVolumeClaimRetentionPolicy: { whenDeleted: "Delete" } },
    });
    const r = await validateStack(P, [pvc, registry, sts, deployment()], prod);
    expect(r.violations.map((v) => v.message)).toEqual([
      "kubernetes:core/v1:PersistentVolumeClaim db/data holds state but is not protected",
      "platform:registry:RegistryStorage registry holds state but is not protected",
      "kubernetes:apps/v1:StatefulSet apps/pg holds state but is not protected",
    ]);
    expect(r.violations[0]?.urn).toContain("PersistentVolumeClaim");
  });
  it("passes StatefulSets whose claims outlive them (the default Retain) or that have none", async () => {
    const retained = workload("StatefulSet", goodPodSpec(), {
      name: "nats",
      spec: { ...claims, persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain" } },
    });
    const byDefault = workload("StatefulSet", goodPodSpec(), { name: "js", spec: claims });
    const stateless = workload("StatefulSet", goodPodSpec(), { name: "cache" });
    expect((await validateStack(P, [retained, byDefault, stateless], prod)).violations).toEqual([]);
  });
  it("passes protected resources", async () => {
    expect(
      (
        await validateStack(
          P,
          [
            { ...pvc, protect: true },
            { ...registry, protect: true },
          ],
          prod,
        )
      ).violations,
    ).toEqual([]);
  });
  it("does nothing outside prod", async () => {
    expect((await validateStack(P, [pvc, registry])).violations).toEqual([]);
    expect((await validateStack(P, [pvc], { config: { environment: "dev" } })).violations).toEqual([]);
  });
  it("honours statefulTypes and exemptions", async () => {
    const cache: TestResource = { type: "platform:inference:ModelCache", name: "cache", props: {} };
    expect(
      (
        await validateStack(P, [cache], {
          config: { environment: "prod", statefulTypes: ["platform:*:ModelCache"] },
        })
      ).violations,
    ).toHaveLength(1);
    const config = {
      environment: "prod",
      exemptions: [{ namespace: "db", reason: "scratch volume, rebuilt on demand" }],
    };
    expect((await validateStack(P, [pvc], { config })).violations).toEqual([]);
  });
});

describe("gpu-capacity-fits", () => {
  const P = "gpu-capacity-fits";
  const pool = (name: string, nodes: number, gpusPerNode: number, replicas?: number): TestResource => ({
    type: "platform:cluster:GpuPool",
    name: `pool-${name}`,
    props: { name, nodes, gpusPerNode, ...(replicas ? { sharing: { replicas } } : {}) },
  });
  const llm = (name: string, gpus: number, replicas: number, poolName = "a100") =>
    deployment(gpuPodSpec({ nodeSelector: { "platform.ai/gpu-pool": poolName } }, gpus), {
      name,
      spec: { replicas },
    });
  const hpa = (target: string, maxReplicas: number): TestResource => ({
    type: "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
    name: `${target}-hpa`,
    props: {
      metadata: { name: target, namespace: "apps" },
      spec: { scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: target }, maxReplicas },
    },
  });
  const scaledObject = (target: string, maxReplicaCount: number): TestResource => ({
    type: "kubernetes:apiextensions.k8s.io:CustomResource",
    name: `${target}-so`,
    props: {
      apiVersion: "keda.sh/v1alpha1",
      kind: "ScaledObject",
      metadata: { name: target, namespace: "apps" },
      spec: { scaleTargetRef: { name: target }, maxReplicaCount },
    },
  });

  it("passes demand within capacity", async () => {
    expect(
      (await validateStack(P, [pool("a100", 2, 4), llm("llm", 2, 2), llm("emb", 1, 4)])).violations,
    ).toEqual([]);
  });
  it("flags demand over capacity using replicas", async () => {
    const r = await validateStack(P, [pool("a100", 1, 4), llm("llm", 2, 3)]);
    expect(r.violations).toEqual([
      expect.objectContaining({
        message: expect.stringContaining('"a100" needs up to 6 GPUs but declares 4'),
      }),
    ]);
  });
  it("uses HPA maxReplicas and KEDA maxReplicaCount", async () => {
    expect(
      (await validateStack(P, [pool("a100", 1, 4), llm("llm", 1, 1), hpa("llm", 8)])).violations,
    ).toHaveLength(1);
    expect(
      (await validateStack(P, [pool("a100", 1, 4), llm("llm", 1, 1), scaledObject("llm", 3)])).violations,
    ).toEqual([]);
    expect(
      (await validateStack(P, [pool("a100", 1, 4), llm("llm", 1, 1), scaledObject("llm", 5)])).violations,
    ).toHaveLength(1);
  });
  it("counts GPU sharing replicas", async () => {
    expect((await validateStack(P, [pool("t4", 1, 1, 4), llm("small", 1, 4, "t4")])).violations).toEqual([]);
  });
  it("flags unknown pools and GPU workloads without a pool", async () => {
    const noPool = deployment(gpuPodSpec(), { name: "stray" });
    const r = await validateStack(P, [pool("a100", 1, 4), llm("llm", 1, 1, "h100"), noPool]);
    expect(r.violations.map((v) => v.message)).toEqual([
      expect.stringContaining('selects GPU pool "h100", which is not declared'),
      expect.stringContaining("selects no GPU pool"),
    ]);
  });
  it("is silent when no pools are declared", async () => {
    expect((await validateStack(P, [llm("llm", 8, 8)])).violations).toEqual([]);
  });
});

describe("gpu-autoscaling-not-on-cpu", () => {
  const P = "gpu-autoscaling-not-on-cpu";
  const llm = deployment(gpuPodSpec({ nodeSelector: { "platform.ai/gpu-pool": "l4" } }), { name: "llm" });
  const web = deployment(goodPodSpec(), { name: "web" });
  const target = (name: string) => ({ apiVersion: "apps/v1", kind: "Deployment", name });
  const hpa = (name: string, spec: Record<string, unknown>, version = "v2"): TestResource => ({
    type: `kubernetes:autoscaling/${version}:HorizontalPodAutoscaler`,
    name: `${name}-hpa`,
    props: {
      metadata: { name, namespace: "apps" },
      spec: { scaleTargetRef: target(name), maxReplicas: 3, ...spec },
    },
  });
  const cpu = {
    type: "Resource",
    resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 75 } },
  };
  const scaledObject = (name: string, triggers: Record<string, unknown>[]): TestResource => ({
    type: "kubernetes:keda.sh/v1alpha1:ScaledObject",
    name: `${name}-so`,
    props: {
      apiVersion: "keda.sh/v1alpha1",
      kind: "ScaledObject",
      metadata: { name, namespace: "apps" },
      spec: { scaleTargetRef: target(name), triggers },
    },
  });
  const prometheus = {
    type: "prometheus",
    metadata: { query: "sum(vllm:num_requests_waiting)", threshold: "4" },
  };

  it("refuses a CPU HPA on a GPU server, in every form that means CPU", async () => {
    for (const scaler of [
      hpa("llm", { metrics: [cpu] }),
      // A v2 HPA without metrics and a v1 one both scale on CPU.
      hpa("llm", {}),
      hpa("llm", { targetCPUUtilizationPercentage: 80 }, "v1"),
    ]) {
      const r = await validateStack(P, [llm, scaler]);
      expect(r.violations.map((v) => v.message)).toEqual([
        "HorizontalPodAutoscaler apps/llm scales the GPU Deployment llm on cpu",
      ]);
    }
  });
  it("refuses a KEDA cpu or memory trigger on a GPU server", async () => {
    const r = await validateStack(P, [
      llm,
      scaledObject("llm", [prometheus, { type: "memory", metadata: {} }]),
    ]);
    expect(r.violations.map((v) => v.message)).toEqual([
      "ScaledObject apps/llm scales the GPU Deployment llm on memory",
    ]);
  });
  it("passes a GPU server on its own metrics, and a CPU HPA on a CPU workload", async () => {
    const external = {
      type: "External",
      external: { metric: { name: "queue" }, target: { type: "Value", value: "1" } },
    };
    const r = await validateStack(P, [
      llm,
      web,
      scaledObject("llm", [prometheus]),
      hpa("llm", { metrics: [external] }),
      hpa("web", { metrics: [cpu] }),
    ]);
    expect(r.violations).toEqual([]);
  });
});
