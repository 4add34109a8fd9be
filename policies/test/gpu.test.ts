import { describe, expect, it } from "vitest";
import { deployment, goodContainer, goodPodSpec, gpuPodSpec, workload, WORKLOAD_KINDS } from "./fixtures";
import { record, remediate, runPack, validate } from "./helper";
import { runPolicies } from "../lib/runner";
import { policies } from "../rules";

const gpuContainer = (resources: Record<string, unknown>) =>
  goodPodSpec({ ...gpuPodSpec(), containers: [goodContainer({ resources })] });

describe("gpu-limits-equal-requests", () => {
  const P = "gpu-limits-equal-requests";
  it.each(WORKLOAD_KINDS)("passes equal GPU requests and limits in a %s", async (kind) => {
    expect((await validate(P, workload(kind, gpuPodSpec()))).violations).toEqual([]);
  });
  it("passes limits only", async () => {
    const spec = gpuContainer({
      requests: { cpu: "1", memory: "1Gi" },
      limits: { memory: "1Gi", "nvidia.com/gpu": 2 },
    });
    expect((await validate(P, deployment(spec))).violations).toEqual([]);
  });
  it.each(WORKLOAD_KINDS)("flags a GPU request without a limit in a %s", async (kind) => {
    const spec = gpuContainer({
      requests: { cpu: "1", memory: "1Gi", "nvidia.com/gpu": "1" },
      limits: { memory: "1Gi" },
    });
    expect((await validate(P, workload(kind, spec))).violations).toEqual([
      'container "app" requests nvidia.com/gpu without a limit',
    ]);
  });
  it("flags differing and fractional values, and MIG resources", async () => {
    const spec = gpuContainer({
      requests: { cpu: "1", memory: "1Gi", "nvidia.com/gpu": "1", "nvidia.com/mig-1g.10gb": "1" },
      limits: { memory: "1Gi", "nvidia.com/gpu": "2", "nvidia.com/mig-1g.10gb": "0.5" },
    });
    const v = (await validate(P, deployment(spec))).violations;
    expect(v).toHaveLength(3);
    expect(v.join("\n")).toContain("not a whole number");
  });
  it("is silent on CPU-only pods", async () => {
    expect((await validate(P, deployment())).violations).toEqual([]);
  });
});

describe("gpu-scheduling", () => {
  const P = "gpu-scheduling";
  const bare = gpuPodSpec({ tolerations: undefined, runtimeClassName: undefined });

  it.each(WORKLOAD_KINDS)("passes a scheduled GPU %s", async (kind) => {
    expect((await validate(P, workload(kind, gpuPodSpec()))).violations).toEqual([]);
  });
  it.each(WORKLOAD_KINDS)("flags a GPU %s without toleration and RuntimeClass", async (kind) => {
    expect((await validate(P, workload(kind, bare))).violations).toHaveLength(2);
  });
  it("accepts an Exists toleration for the GPU key", async () => {
    const spec = gpuPodSpec({ tolerations: [{ key: "nvidia.com/gpu", operator: "Exists" }] });
    expect((await validate(P, deployment(spec))).violations).toEqual([]);
  });
  it("flags non-GPU pods tolerating the GPU taint or every taint", async () => {
    const explicit = goodPodSpec({
      tolerations: [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }],
    });
    expect((await validate(P, deployment(explicit))).violations).toEqual([
      "non-GPU pod tolerates the nvidia.com/gpu taint",
    ]);
    const wildcard = goodPodSpec({ tolerations: [{ operator: "Exists" }] });
    expect((await validate(P, deployment(wildcard))).violations).toHaveLength(1);
    expect((await validate(P, workload("DaemonSet", wildcard))).violations).toEqual([]);
  });
  it.each(WORKLOAD_KINDS)("remediates a GPU %s", async (kind) => {
    const w = workload(kind, bare);
    const r = await remediate(P, w);
    expect(r.props).toBeDefined();
    expect((await validate(P, { type: w.type, props: r.props! })).violations).toEqual([]);
    expect(JSON.stringify(r.props)).toContain('"runtimeClassName":"nvidia"');
    expect(JSON.stringify(r.props)).toContain('"value":"present"');
  });
  it("remediates by removing the GPU toleration from non-GPU pods, keeping others", async () => {
    const spec = goodPodSpec({
      tolerations: [
        { key: "nvidia.com/gpu", operator: "Exists" },
        { key: "spot", operator: "Exists" },
      ],
    });
    const r = await remediate(P, deployment(spec));
    expect(
      (r.props?.["spec"] as { template: { spec: { tolerations: unknown } } }).template.spec.tolerations,
    ).toEqual([{ key: "spot", operator: "Exists" }]);
  });
  it("leaves compliant pods untouched and keeps secrets secret", async () => {
    expect((await remediate(P, deployment(gpuPodSpec()))).props).toBeUndefined();
    const w = deployment(
      goodPodSpec({
        ...bare,
        containers: [
          goodContainer({ ...(bare["containers"] as object[])[0], env: [{ name: "X", value: "s" }] }),
        ],
      }),
    );
    const r = await remediate(P, w, {
      secrets: [["spec", "template", "spec", "containers", 0, "env", 0, "value"]],
    });
    expect(r.secretPaths).toEqual(["spec.template.spec.containers[0].env[0].value"]);
  });
  it("uses configured taint and RuntimeClass", async () => {
    const spec = gpuPodSpec({
      runtimeClassName: "nvidia-cdi",
      tolerations: [{ key: "gpu", operator: "Exists" }],
    });
    const config = { taintKey: "gpu", runtimeClassName: "nvidia-cdi" };
    expect((await validate(P, deployment(spec), { config })).violations).toEqual([]);
  });
  it("is remediated in the pack and reported mandatory when remediation is off", async () => {
    const rec = record("kubernetes:apps/v1:Deployment", "llm", deployment(bare).props);
    const v = await runPack([rec]);
    expect(v.filter((x) => x.policy === P).map((x) => x.level)).toEqual(["remediate"]);
    const plain = await runPolicies(policies, [rec], { remediate: false, resourcesOnly: true });
    expect(plain.filter((x) => x.policy === P).map((x) => x.level)).toEqual(["mandatory", "mandatory"]);
  });
});
