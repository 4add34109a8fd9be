import { describe, expect, it } from "vitest";
import {
  awaitBudget,
  awaitBudgetSeconds,
  budgetFindings,
  DEFAULT_AWAIT_SECONDS,
  parseDuration,
} from "../tools/preflight/budgets";
import type { PlanObject } from "../tools/preflight/objects";

function mk(
  apiVersion: string,
  kind: string,
  name: string,
  body: Record<string, unknown> = {},
  extra: Partial<PlanObject> = {},
): PlanObject {
  const { metadata, ...rest } = body as { metadata?: Record<string, unknown> };
  return {
    urn: `urn:pulumi:s::p::kubernetes:${apiVersion}:${kind}::${name}`,
    type: `kubernetes:${apiVersion}:${kind}`,
    name,
    dependsOn: [],
    rendered: false,
    ...extra,
    object: { apiVersion, kind, metadata: { name, namespace: "ai", ...metadata }, ...rest },
  };
}

const deployment = (spec: Record<string, unknown> = {}, extra: Partial<PlanObject> = {}, annotations = {}) =>
  mk("apps/v1", "Deployment", "llm", { metadata: { annotations }, spec: { replicas: 1, ...spec } }, extra);

describe("parseDuration", () => {
  it.each([
    ["45m", 2700],
    ["1h30m", 5400],
    ["90s", 90],
    ["1.5h", 5400],
    ["300ms", 0.3],
    ["2h0m10s", 7210],
    ["0", 0],
  ])("%s is %d s", (s, want) => {
    expect(parseDuration(s)).toBeCloseTo(want);
  });

  it.each(["", "45", "1d", "m", "1h 30m", "ten minutes"])("rejects %j", (s) => {
    expect(() => parseDuration(s)).toThrow(/invalid duration/);
  });
});

describe("awaitBudgetSeconds", () => {
  it("is 10 minutes for the awaited workload kinds by default", () => {
    for (const [apiVersion, kind] of [
      ["apps/v1", "Deployment"],
      ["apps/v1", "StatefulSet"],
      ["apps/v1", "DaemonSet"],
      ["batch/v1", "Job"],
      ["v1", "Pod"],
      ["v1", "Service"],
      ["networking.k8s.io/v1", "Ingress"],
    ] as const) {
      expect(awaitBudgetSeconds(mk(apiVersion, kind, "x"))).toBe(DEFAULT_AWAIT_SECONDS);
    }
  });

  it("bounds PVCs and ResourceQuotas by their own watch, and does not await unawaited kinds", () => {
    expect(awaitBudgetSeconds(mk("v1", "PersistentVolumeClaim", "x"))).toBe(300);
    expect(awaitBudgetSeconds(mk("v1", "ResourceQuota", "x"))).toBe(60);
    expect(awaitBudgetSeconds(mk("v1", "ConfigMap", "x"))).toBeUndefined();
    expect(awaitBudgetSeconds(mk("v1", "Secret", "x"))).toBeUndefined();
    expect(awaitBudgetSeconds(mk("v1", "Secret", "x", { type: "kubernetes.io/service-account-token" }))).toBe(
      5,
    );
    expect(awaitBudgetSeconds(mk("keda.sh/v1alpha1", "ScaledObject", "x"))).toBeUndefined();
    const waited = mk("keda.sh/v1alpha1", "ScaledObject", "x", {
      metadata: { annotations: { "pulumi.com/waitFor": "condition=Ready" } },
    });
    expect(awaitBudgetSeconds(waited)).toBe(600);
  });

  it("takes customTimeouts first, then pulumi.com/timeoutSeconds", () => {
    const both = deployment(
      {},
      { customTimeouts: { create: "45m", update: "1h" } },
      {
        "pulumi.com/timeoutSeconds": "120",
      },
    );
    expect(awaitBudget(both)).toEqual({ seconds: 2700, source: "customTimeouts.create 45m" });
    expect(awaitBudgetSeconds(both, "update")).toBe(3600);
    const annotated = deployment({}, {}, { "pulumi.com/timeoutSeconds": "1800" });
    expect(awaitBudgetSeconds(annotated)).toBe(1800);
    expect(awaitBudgetSeconds(deployment({}, {}, { "pulumi.com/timeoutSeconds": "30m" }))).toBe(600);
  });

  it("is undefined with pulumi.com/skipAwait", () => {
    expect(awaitBudgetSeconds(deployment({}, {}, { "pulumi.com/skipAwait": "true" }))).toBeUndefined();
  });
});

describe("budgetFindings", () => {
  const start = (o: PlanObject, seconds: number) =>
    new Map([[o.urn, { seconds, reason: "8 GiB image pull + 70B model load" }]]);

  it("reports a start budget beyond the await budget, and accepts a raised customTimeouts", () => {
    const slow = mk("apps/v1", "DaemonSet", "llm", { spec: {} });
    const found = budgetFindings([slow], start(slow, 1500));
    expect(found).toEqual([
      expect.objectContaining({
        check: "budget",
        severity: "error",
        urn: slow.urn,
        field: "customTimeouts.create",
      }),
    ]);
    expect(found[0]!.message).toMatch(/needs about 25m to start \(8 GiB image pull.*only 10m/);
    const fixed = { ...slow, customTimeouts: { create: "30m", update: "30m" } };
    expect(budgetFindings([fixed], start(fixed, 1500))).toEqual([]);
  });

  it("reports a Deployment whose start exceeds its progress deadline", () => {
    const d = deployment({}, { customTimeouts: { create: "45m" } });
    expect(budgetFindings([d], start(d, 1200))).toEqual([
      expect.objectContaining({ field: "spec.progressDeadlineSeconds" }),
    ]);
    const fixed = deployment({ progressDeadlineSeconds: 1800 }, { customTimeouts: { create: "45m" } });
    expect(budgetFindings([fixed], start(fixed, 1200))).toEqual([]);
  });

  it("reports a progressDeadlineSeconds beyond the await budget, even without a start budget", () => {
    const d = deployment({ progressDeadlineSeconds: 1800 });
    expect(budgetFindings([d], new Map())).toEqual([
      expect.objectContaining({
        field: "spec.progressDeadlineSeconds",
        message: expect.stringContaining("30m"),
      }),
    ]);
    const fixed = deployment({ progressDeadlineSeconds: 1800 }, {}, { "pulumi.com/timeoutSeconds": "1800" });
    expect(budgetFindings([fixed], new Map())).toEqual([]);
  });

  it("multiplies an OrderedReady StatefulSet's budget by its replicas", () => {
    const sts = mk("apps/v1", "StatefulSet", "db", { spec: { replicas: 3 } });
    expect(budgetFindings([sts], start(sts, 300))[0]?.message).toMatch(/15m.*× 3 replicas/);
    const parallel = mk("apps/v1", "StatefulSet", "db", {
      spec: { replicas: 3, podManagementPolicy: "Parallel" },
    });
    expect(budgetFindings([parallel], start(parallel, 300))).toEqual([]);
  });

  it("does not report skipAwait workloads, and reports unparseable customTimeouts", () => {
    const skipped = deployment({}, {}, { "pulumi.com/skipAwait": "true" });
    expect(budgetFindings([skipped], start(skipped, 5000))).toEqual([]);
    const bad = deployment({}, { customTimeouts: { create: "1d" } });
    expect(budgetFindings([bad], start(bad, 60))).toEqual([
      expect.objectContaining({ message: expect.stringContaining('invalid duration "1d"') }),
    ]);
  });
});
