/**
 * The offline preview diff (`--baseline`): resources matched by URN into added, removed, replaced
 * and updated with their input paths, secrets as `[secret]`, and the findings that are new; the
 * Markdown a pull request gets; and the CLI against an earlier run's folder and a git ref.
 */
import { preflightCli } from "./fixtures/helpers";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { baselineArgs, readBaselineReport, resolveBaseline } from "../tools/preflight/baseline";
import {
  diffPlans,
  inputChanges,
  maskCanaries,
  replaceTriggers,
  type DiffPlan,
  type StackDiff,
} from "../tools/preflight/diff";
import { DIFF_MARKER, diffMarkdown, diffText } from "../tools/preflight/diff-report";
import { runStack, type Plan } from "../tools/preflight/run";

const ROOT = process.cwd();

const cli = (args: string[], cwd = ROOT) =>
  preflightCli(args, { cwd, timeout: 240_000, env: { ...process.env, NO_COLOR: "1" } });

const urn = (type: string, name: string, parent = "platform:apps:App") =>
  `urn:pulumi:dev::ai-delivery-platform::${parent}$${type}::${name}`;

const DEPLOYMENT = "kubernetes:apps/v1:Deployment";
const CONFIGMAP = "kubernetes:core/v1:ConfigMap";

function deployment(name: string, over: Record<string, unknown> = {}) {
  return {
    urn: urn(DEPLOYMENT, name),
    type: DEPLOYMENT,
    name,
    custom: true,
    inputs: {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name, namespace: "apps", labels: { "app.kubernetes.io/name": name } },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: name } },
        template: { spec: { containers: [{ name: "web", image: "web:1" }] } },
      },
      ...over,
    },
  };
}

const planOf = (resources: DiffPlan["resources"], rest: Partial<DiffPlan> = {}): DiffPlan => ({
  resources,
  violations: [],
  schemaErrors: [],
  secretLeaks: [],
  findings: [],
  ...rest,
});

describe("input changes", () => {
  it("names each changed leaf by path, lists of named objects by name, odd keys quoted", () => {
    const before = {
      metadata: { labels: { "app.kubernetes.io/name": "a" } },
      spec: {
        containers: [
          { name: "web", image: "web:1" },
          { name: "side", image: "s:1" },
        ],
      },
    };
    const after = {
      metadata: { labels: { "app.kubernetes.io/name": "b" } },
      spec: {
        containers: [
          { name: "side", image: "s:1" },
          { name: "web", image: "web:2" },
        ],
      },
    };
    expect(inputChanges(before, after)).toEqual([
      { path: 'metadata.labels["app.kubernetes.io/name"]', before: "a", after: "b" },
      { path: "spec.containers[web].image", before: "web:1", after: "web:2" },
    ]);
  });

  it("a subtree only one side has is its leaves", () => {
    expect(inputChanges({ a: 1 }, { a: 1, b: { c: 2, d: [3] } })).toEqual([
      { path: "b.c", after: 2 },
      { path: "b.d[0]", after: 3 },
    ]);
    expect(inputChanges({ a: { b: 1 } }, {})).toEqual([{ path: "a.b", before: 1 }]);
  });

  it("replacement: a Kubernetes object's name or namespace, a Deployment's selector, a command's triggers", () => {
    const d = deployment("web").inputs;
    expect(replaceTriggers(DEPLOYMENT, d, { ...d, spec: { ...d.spec, replicas: 2 } })).toEqual([]);
    expect(
      replaceTriggers(DEPLOYMENT, d, { ...d, spec: { ...d.spec, selector: { matchLabels: { app: "x" } } } }),
    ).toEqual(["spec.selector"]);
    expect(replaceTriggers(DEPLOYMENT, d, { ...d, metadata: { ...d.metadata, namespace: "other" } })).toEqual(
      ["metadata.namespace"],
    );
    expect(replaceTriggers("command:local:Command", { triggers: ["a"] }, { triggers: ["b"] })).toEqual([
      "triggers",
    ]);
    expect(replaceTriggers("command:local:Command", { create: "a" }, { create: "b" })).toEqual([]);
    expect(
      replaceTriggers("random:index/randomPassword:RandomPassword", { length: 24 }, { length: 32 }),
    ).toEqual(["length"]);
    expect(replaceTriggers("github:index/repository:Repository", { name: "a" }, { name: "b" })).toEqual([
      "name",
    ]);
  });
});

describe("the plan diff", () => {
  it("added, removed, replaced and updated, each once, by URN", () => {
    const base = planOf([deployment("kept"), deployment("gone"), deployment("scaled"), deployment("moved")]);
    const scaled = deployment("scaled");
    const moved = deployment("moved");
    const current = planOf([
      deployment("kept"),
      { ...scaled, inputs: { ...scaled.inputs, spec: { ...scaled.inputs.spec, replicas: 3 } } },
      {
        ...moved,
        inputs: { ...moved.inputs, spec: { ...moved.inputs.spec, selector: { matchLabels: { app: "m2" } } } },
      },
      deployment("new"),
    ]);
    const d = diffPlans("dev", base, current);
    expect(d.added.map((r) => r.name)).toEqual(["new"]);
    expect(d.removed.map((r) => r.name)).toEqual(["gone"]);
    expect(d.updated).toEqual([
      expect.objectContaining({ name: "scaled", changes: [{ path: "spec.replicas", before: 1, after: 3 }] }),
    ]);
    expect(d.replaced).toEqual([
      expect.objectContaining({
        name: "moved",
        replaceOn: ["spec.selector"],
        changes: [{ path: "spec.selector.matchLabels.app", before: "moved", after: "m2" }],
      }),
    ]);
    expect(diffPlans("dev", base, base)).toMatchObject({ added: [], removed: [], replaced: [], updated: [] });
  });

  it("shows a secret input as [secret], never its value, and a stack canary as [secret]", () => {
    const cm = (data: Record<string, unknown>) => ({
      urn: urn(CONFIGMAP, "cfg"),
      type: CONFIGMAP,
      name: "cfg",
      custom: true,
      inputs: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cfg" }, data },
    });
    // What the plan holds: recorder.ts redactSecrets has replaced every secret by "[secret]".
    const d = diffPlans(
      "dev",
      planOf([cm({ token: "plain-before", mode: "a" })]),
      planOf([cm({ token: "[secret]", mode: "b" })]),
    );
    expect(d.updated[0]!.changes).toEqual([
      { path: "data.token", before: "plain-before", after: "[secret]" },
      { path: "data.mode", before: "a", after: "b" },
    ]);
    const text = diffText("base", [d]);
    expect(text).toContain('data.token: "plain-before" → [secret]');
    // A canary (a new one every run) that landed in plain text is no change, and never shown.
    const canary = (hex: string) => `pfcanary-githubToken-${hex}`;
    expect(maskCanaries({ a: `Bearer ${canary("0".repeat(24))}` })).toEqual({ a: "Bearer [secret]" });
    const leaky = diffPlans(
      "dev",
      planOf([cm({ token: canary("a".repeat(24)) })]),
      planOf([cm({ token: canary("b".repeat(24)) })]),
    );
    expect(leaky.updated).toEqual([]);
  });

  it("the whole pipeline redacts: a secret-wrapped input of a real program is [secret] in the diff", async () => {
    const program = (value: string) => () => {
      const provider = new k8s.Provider("p", {});
      new k8s.core.v1.Secret(
        "s",
        { metadata: { name: "s" }, stringData: { password: pulumi.secret(value) }, type: "Opaque" },
        { provider },
      );
      new k8s.core.v1.ConfigMap(
        "c",
        { metadata: { name: "c" }, data: { size: value.length > 8 ? "big" : "small" } },
        { provider },
      );
      return {};
    };
    const run = async (value: string) => {
      const r = await runStack("local", { program: program(value), policies: [], policyConfig: {} });
      if (r.kind !== "plan") throw new Error(r.kind);
      return r.plan;
    };
    const d = diffPlans("local", await run("hunter2"), await run("correct-horse-battery"));
    // The Secret's value changed, but the plan only ever held "[secret]": nothing to show.
    expect(d.updated.map((r) => r.name)).toEqual(["c"]);
    const all = JSON.stringify(d) + diffText("b", [d]) + diffMarkdown("b", [d]);
    expect(all).not.toContain("hunter2");
    expect(all).not.toContain("correct-horse");
  });

  it("new findings are those the baseline did not have; gone ones are resolved", () => {
    const v = (policy: string, name: string) => ({
      policy,
      level: "mandatory",
      urn: urn(DEPLOYMENT, name),
      message: `${policy} on ${name}`,
      hint: "fix it in components/apps/app.ts",
    });
    const base = planOf([deployment("a"), deployment("b")], { violations: [v("p1", "a"), v("p2", "b")] });
    const current = planOf([deployment("a"), deployment("b")], {
      violations: [v("p1", "a"), v("p3", "b")],
      warnings: [{ message: "GPU pool may run short", urn: urn(DEPLOYMENT, "a") }],
    });
    const d = diffPlans("dev", base, current);
    expect(d.newFindings.map((f) => `${f.kind}:${f.rule}`)).toEqual(["policy:p3", "warning:program"]);
    expect(d.newFindings[0]!.hint).toBe("fix it in components/apps/app.ts");
    expect(d.resolvedFindings.map((f) => f.rule)).toEqual(["p2"]);
  });

  it("a stack without a baseline plan: everything is added, and the reason is said", () => {
    const d = diffPlans("qa", undefined, planOf([deployment("a")]), "no qa/plan.json in the baseline");
    expect(d).toMatchObject({ baseline: false, baselineNote: "no qa/plan.json in the baseline" });
    expect(d.added.map((r) => r.name)).toEqual(["a"]);
    expect(diffMarkdown("main", [d])).toContain("| qa (new) | 1 |");
  });
});

describe("adding one service", () => {
  it("the baseline diff lists exactly that service's resources, and nothing else is added or removed", async () => {
    const stackFile = parse(readFileSync("Pulumi.local.yaml", "utf8")) as {
      config: Record<string, { services: { name: string }[] }>;
    };
    const inference = stackFile.config["platform:inference"]!;
    const extra = { ...inference.services[0]!, name: "qwen-extra" };
    const base = await runStack("local");
    const current = await runStack("local", {
      overrides: { "platform:inference": { ...inference, services: [...inference.services, extra] } },
    });
    if (base.kind !== "plan" || current.kind !== "plan") throw new Error("config rejected");
    const d = diffPlans("local", base.plan, current.plan);
    // The new component and everything below it, by the plan's parent links.
    const component = current.plan.resources.find(
      (r) => r.type === "platform:inference:InferenceService" && r.name === "local-inference-qwen-extra",
    )!;
    const below = new Set([component.urn]);
    for (let grew = true; grew;) {
      grew = false;
      for (const r of current.plan.resources)
        if (r.parent && below.has(r.parent) && !below.has(r.urn)) {
          below.add(r.urn);
          grew = true;
        }
    }
    expect(below.size).toBeGreaterThan(5);
    expect(d.added.map((r) => r.urn).sort()).toEqual([...below].sort());
    expect(d.removed).toEqual([]);
    expect(d.replaced).toEqual([]);
    // No existing resource is touched by adding a model (its component's outputs are not inputs).
    expect(d.updated).toEqual([]);
    expect(d.newFindings).toEqual([]);
  }, 120_000);
});

describe("the pull-request Markdown", () => {
  const d: StackDiff = {
    stack: "dev",
    baseline: true,
    added: [{ urn: "u1", type: DEPLOYMENT, name: "web" }],
    removed: [],
    replaced: [
      {
        urn: "u2",
        type: DEPLOYMENT,
        name: "api",
        replaceOn: ["spec.selector"],
        changes: [{ path: "spec.selector.matchLabels.app", before: "a", after: "b" }],
      },
    ],
    updated: [],
    newFindings: [
      {
        kind: "policy",
        level: "mandatory",
        rule: "image-tag-pinned",
        urn: "urn:pulumi:dev::p::t::web",
        message: "image web:latest | not pinned",
        hint: "fix it in components/apps/app.ts",
      },
    ],
    resolvedFindings: [],
  };

  it("starts with the marker the comment workflow updates, counts per stack, then the changes", () => {
    const md = diffMarkdown("main (abc1234)", [d], [{ stack: "prod", status: "config error" }]);
    expect(md.split("\n")[0]).toBe(DIFF_MARKER);
    expect(md).toContain("## Preflight diff against `main (abc1234)`");
    expect(md).toContain("| dev | 1 | 0 | 1 | 0 | 1 | 0 |");
    expect(md).toContain("| prod | config error |");
    expect(md).toContain("- `kubernetes:apps/v1:Deployment` `web`");
    expect(md).toContain("replaced: `spec.selector` changed");
    expect(md).toContain('spec.selector.matchLabels.app: "a" → "b"');
    expect(md).toContain(
      "| mandatory | `image-tag-pinned` | image web:latest \\| not pinned | `web` | fix it in",
    );
  });

  it("says so when nothing changed", () => {
    const none: StackDiff = { ...d, added: [], replaced: [], newFindings: [] };
    expect(diffMarkdown("main", [none])).toContain("No changes.");
    expect(diffText("main", [none])).toContain("dev: no changes");
  });
});

describe("baselines", () => {
  it("a path is a folder or a report, anything else a commit; neither is a usage error", () => {
    expect(resolveBaseline("test", ROOT)).toMatchObject({ kind: "dir" });
    expect(resolveBaseline("package.json", ROOT)).toMatchObject({ kind: "report" });
    expect(resolveBaseline("HEAD", ROOT)).toMatchObject({
      kind: "ref",
      sha: expect.stringMatching(/^[0-9a-f]{40}$/),
    });
    expect(() => resolveBaseline("no-such-ref-or-dir", ROOT)).toThrow(/not a commit of this repository/);
  });

  it("the ref's preflight is asked for the run's stacks and charts, quietly", () => {
    expect(baselineArgs("/o", { stacks: ["dev"], charts: "charts", cwd: "/r" })).toEqual([
      "--quiet",
      "--out",
      "/o",
      "--stack",
      "dev",
      "--charts",
      "/r/charts",
    ]);
    expect(baselineArgs("/o", { charts: "pull", cwd: "/r" })).toEqual([
      "--quiet",
      "--out",
      "/o",
      "--charts",
      "pull",
    ]);
  });

  it("reads the plans of an earlier --json report, and says which stacks it lacks", () => {
    const dir = mkdtempSync(join(tmpdir(), "baseline-"));
    const file = join(dir, "report.json");
    const plan = { resources: [] } as unknown as Plan;
    writeFileSync(
      file,
      JSON.stringify({
        stacks: [
          { stack: "dev", status: "ok", plan },
          { stack: "prod", status: "config-error" },
        ],
      }),
    );
    const b = readBaselineReport(file, ["dev", "prod", "qa"]);
    expect([...b.plans.keys()]).toEqual(["dev"]);
    expect(Object.fromEntries(b.notes)).toEqual({
      prod: "the baseline has no plan (config-error)",
      qa: "not in the baseline",
    });
  });
});

describe("preflight --baseline (CLI)", () => {
  it("against an earlier run's folder: no changes, the exit code the run's own, the diff in every report", () => {
    const out = mkdtempSync(join(tmpdir(), "preflight-base-"));
    const first = cli(["--stack", "local", "--quiet", "--out", join(out, "a")]);
    expect(first.code).toBe(0);
    const r = cli([
      "--stack",
      "local",
      "--quiet",
      "--out",
      join(out, "b"),
      "--baseline",
      join(out, "a"),
      "--json",
      join(out, "report.json"),
      "--markdown",
      join(out, "report.md"),
      "--diff-markdown",
      join(out, "diff.md"),
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/preflight diff against .*:\nlocal: no changes/);
    const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8")) as {
      baseline: string;
      stacks: { stack: string; diff: StackDiff }[];
    };
    expect(report.baseline).toBe(join(out, "a"));
    expect(report.stacks[0]!.diff).toMatchObject({ stack: "local", baseline: true, added: [], updated: [] });
    expect(readFileSync(join(out, "report.md"), "utf8")).toContain(DIFF_MARKER);
    expect(readFileSync(join(out, "diff.md"), "utf8")).toMatch(/^<!-- preflight-diff -->\n## Preflight diff/);
    // The same resources have the same manifest files in both runs: a plain diff -r is empty.
    const diffR = spawnSync("diff", [
      "-r",
      join(out, "a", "local", "manifests"),
      join(out, "b", "local", "manifests"),
    ]);
    expect(diffR.status).toBe(0);
  }, 240_000);

  it("against a git ref: the ref's own preflight in a temporary worktree, removed afterwards", () => {
    const worktrees = () => spawnSync("git", ["worktree", "list"], { encoding: "utf8" }).stdout;
    const before = worktrees();
    const r = cli([
      "--stack",
      "local",
      "--quiet",
      "--out",
      mkdtempSync(join(tmpdir(), "preflight-ref-")),
      "--baseline",
      "HEAD",
      "--json",
      "-",
    ]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { baseline: string; stacks: { diff: StackDiff }[] };
    expect(report.baseline).toMatch(/^HEAD \([0-9a-f]{7}\)$/);
    expect(report.stacks[0]!.diff.baseline).toBe(true);
    expect(worktrees()).toBe(before);
  }, 240_000);

  it("a baseline that is neither a folder nor a commit is one line, exit 2, before any stack runs", () => {
    const r = cli(["--stack", "local", "--baseline", "no-such-ref-or-dir"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stdout).toBe("");
  });
});
