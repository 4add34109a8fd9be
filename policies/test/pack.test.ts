import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import type { PolicyPackConfig } from "@pulumi/policy";
import { describe, expect, it } from "vitest";
import { deployment, FAKE, goodContainer, goodPodSpec, helmChart } from "./fixtures";
import { record, runPack } from "./helper";
import { PolicyConfigError, validatePackConfig } from "../lib/config";
import { runPolicies } from "../lib/runner";
import { UNKNOWN } from "../lib/values";
import { policies } from "../rules";

/** DESIGN.md section 7: every policy, its exact name and default level. */
const TABLE: Record<string, string> = {
  "no-plaintext-secrets": "mandatory",
  "k8s-env-no-literal-secrets": "mandatory",
  "k8s-configmap-no-secrets": "mandatory",
  "k8s-secrets-as-files": "advisory",
  "helm-values-no-secrets": "mandatory",
  "github-variable-no-secrets": "mandatory",
  "vercel-env-sensitive": "remediate",
  "docker-build-args-no-secrets": "mandatory",
  "image-tag-pinned": "mandatory",
  "image-digest-in-prod": "advisory",
  "image-allowed-registries": "mandatory",
  "image-build-attested": "mandatory",
  "dockerfile-multi-stage": "mandatory",
  "dockerfile-slim-base": "mandatory",
  "dockerfile-pinned-base": "mandatory",
  "dockerfile-non-root": "mandatory",
  "dockerfile-package-hygiene": "advisory",
  "k8s-resources-required": "mandatory",
  "k8s-probes-required": "mandatory",
  "k8s-pod-security-restricted": "mandatory",
  "k8s-readonly-root-fs": "advisory",
  "gpu-limits-equal-requests": "mandatory",
  "gpu-scheduling": "remediate",
  "mesh-strict-mtls": "mandatory",
  "mesh-sidecar-injection": "mandatory",
  "prod-stateful-protected": "mandatory",
  "gpu-capacity-fits": "advisory",
  "gpu-autoscaling-not-on-cpu": "mandatory",
};
const STACK = ["prod-stateful-protected", "gpu-capacity-fits", "gpu-autoscaling-not-on-cpu"];

describe("the pack", () => {
  it("has exactly the policies of the design table, with their default levels", () => {
    expect(Object.fromEntries(policies.map((p) => [p.name, p.enforcementLevel]))).toEqual(TABLE);
    expect(policies.map((p) => p.name)).toEqual(Object.keys(TABLE));
  });

  it.each(policies.map((p) => [p.name, p] as const))(
    "%s has description, severity, remediation and config schema",
    (_n, p) => {
      expect(p.description.length).toBeGreaterThan(20);
      expect(p.severity).toMatch(/low|medium|high|critical/);
      expect(p.remediationSteps?.length).toBeGreaterThan(40);
      expect(p.configSchema?.properties["exemptions"]).toBeDefined();
      expect(p.name).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
    },
  );

  it("marks stack policies as stack policies", () => {
    for (const p of policies) {
      expect("validateStack" in p && typeof p.validateStack === "function").toBe(
        STACK.includes(p.name) || p.name === "mesh-strict-mtls",
      );
      expect("validateResource" in p).toBe(!STACK.includes(p.name));
    }
  });

  it("has a version and a CrossGuard project file", () => {
    const pkg = JSON.parse(readFileSync(path.join(__dirname, "..", "package.json"), "utf8")) as {
      version?: string;
    };
    expect(pkg.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(readFileSync(path.join(__dirname, "..", "PulumiPolicy.yaml"), "utf8")).toMatch(/runtime:/);
    expect(readFileSync(path.join(__dirname, "..", "index.ts"), "utf8")).toMatch(/new PolicyPack\(/);
  });
});

/** Every committed policy config (one per stack: the preflight refuses a stack without one). */
const CONFIGS = readdirSync(path.join(__dirname, "..", "config"))
  .filter((f) => f.endsWith(".json"))
  .map((f) => f.replace(/\.json$/, ""));

describe("stack configs", () => {
  it.each(CONFIGS)("config/%s.json is valid and complete", (stack) => {
    const config = JSON.parse(
      readFileSync(path.join(__dirname, "..", "config", `${stack}.json`), "utf8"),
    ) as PolicyPackConfig;
    expect(validatePackConfig(policies, config)).toEqual([]);
    expect(Object.keys(config).sort()).toEqual(Object.keys(TABLE).sort());
    const text = JSON.stringify(config);
    expect(text).not.toMatch(/\/(home|Users|work)\//);
  });
  it("prod makes digests mandatory and protects state", () => {
    const prod = JSON.parse(
      readFileSync(path.join(__dirname, "..", "config", "prod.json"), "utf8"),
    ) as Record<string, Record<string, unknown>>;
    expect(prod["image-digest-in-prod"]).toMatchObject({
      enforcementLevel: "mandatory",
      environment: "prod",
    });
    expect(prod["prod-stateful-protected"]).toMatchObject({ environment: "prod" });
  });
});

describe("config validation", () => {
  it("rejects exemptions without a reason, unknown policies, levels and properties", () => {
    const problems = validatePackConfig(policies, {
      "k8s-pod-security-restricted": { exemptions: [{ namespace: "kube-system" }] },
      "no-such-policy": "advisory",
      "image-tag-pinned": "strict" as never,
      "image-allowed-registries": { extraRegistry: ["x"] },
    });
    expect(problems).toEqual([
      'k8s-pod-security-restricted.exemptions[0]: missing required "reason"',
      "no-such-policy: no such policy in the pack",
      'image-tag-pinned: unknown enforcement level "strict"',
      'image-allowed-registries: unknown property "extraRegistry"',
    ]);
  });
  it("makes the runner refuse an invalid config", async () => {
    await expect(
      runPolicies(policies, [], {
        config: { "mesh-sidecar-injection": { exemptions: [{ namespace: "x", reason: "" }] } },
      }),
    ).rejects.toBeInstanceOf(PolicyConfigError);
  });
});

describe("runner", () => {
  it("applies levels from config, including disabled", async () => {
    const rec = record(
      "kubernetes:apps/v1:Deployment",
      "web",
      deployment(goodPodSpec({ containers: [goodContainer({ image: "nginx" })] })).props,
    );
    const byDefault = await runPack([rec]);
    expect(byDefault.find((v) => v.policy === "image-tag-pinned")?.level).toBe("mandatory");
    const relaxed = await runPack([rec], {
      "image-tag-pinned": "advisory",
      "image-digest-in-prod": "disabled",
    });
    expect(relaxed.find((v) => v.policy === "image-tag-pinned")?.level).toBe("advisory");
    expect(relaxed.some((v) => v.policy === "image-digest-in-prod")).toBe(false);
  });
  it("runs the stack part of mesh-strict-mtls, and skips it with resourcesOnly", async () => {
    const chart = helmChart({}, "istiod", { namespace: "istio-system" });
    const rec = record(chart.type, "istiod", chart.props);
    expect((await runPack([rec])).filter((v) => v.policy === "mesh-strict-mtls")).toHaveLength(1);
    expect(
      (await runPolicies(policies, [rec], { resourcesOnly: true })).filter(
        (v) => v.policy === "mesh-strict-mtls",
      ),
    ).toEqual([]);
  });
  it("survives preview unknowns everywhere in a resource", async () => {
    const props = deployment(
      goodPodSpec({
        containers: [goodContainer({ image: UNKNOWN, env: UNKNOWN, securityContext: UNKNOWN })],
        tolerations: UNKNOWN,
      }),
    ).props;
    const v = await runPack([record("kubernetes:apps/v1:Deployment", "web", props)]);
    expect(v.filter((x) => x.level === "mandatory")).toEqual([]);
  });
  it("a clean platform-like stack has no mandatory violations", async () => {
    const ns = record("kubernetes:core/v1:Namespace", "apps", {
      metadata: { name: "apps", labels: { "istio-injection": "enabled" } },
    });
    const dep = record("kubernetes:apps/v1:Deployment", "gw", deployment().props);
    const secret = record("kubernetes:core/v1:Secret", "s", {
      metadata: { name: "s", namespace: "apps" },
      stringData: { token: FAKE.githubToken },
    });
    const v = await runPack([ns, dep, secret]);
    expect(v.filter((x) => x.level === "mandatory")).toEqual([]);
  });
});
