/**
 * The delivery components' resource graphs (GitHub, Vercel), their config checks, and the dev/prod
 * stacks through the whole preflight: secrets only in secret sinks.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { committedConfig, existingClusterFor, PUBLIC_TLS, unexpectedMandatory } from "./stack-overrides";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ConfigError, parsePlatformConfig } from "../components/config";
import {
  adoptOptions,
  branchSlug,
  defaultBranchRules,
  environmentSpec,
  GitHubDelivery,
} from "../components/delivery/github";
import {
  PIPELINE_STACKS,
  PREVIEW_ENVIRONMENT,
  PREVIEW_TEAM,
  REQUIRED_CHECKS,
  WORKFLOW_FILES,
} from "../components/delivery/pipeline";
import { vercelTargets } from "../components/delivery/targets";
import { listStacks } from "../tools/preflight/stack-config";
import { appDirectory, frontendVariables, VercelFrontend } from "../components/delivery/vercel";
import { githubConfig, vercelConfig } from "./delivery-fixtures";
import { isSecretWrapped, render, renderStack, type Registration } from "./harness";

const GH = {
  provider: "pulumi:providers:github",
  repo: "github:index/repository:Repository",
  ruleset: "github:index/repositoryRuleset:RepositoryRuleset",
  env: "github:index/repositoryEnvironment:RepositoryEnvironment",
  policy: "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy",
  secret: "github:index/actionsSecret:ActionsSecret",
  envSecret: "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret",
  envVar: "github:index/actionsEnvironmentVariable:ActionsEnvironmentVariable",
  repoVar: "github:index/actionsVariable:ActionsVariable",
  oidc: "github:index/actionsRepositoryOidcSubjectClaimCustomizationTemplate:ActionsRepositoryOidcSubjectClaimCustomizationTemplate",
};
const VC = {
  provider: "pulumi:providers:vercel",
  project: "vercel:index/project:Project",
  variable: "vercel:index/projectEnvironmentVariable:ProjectEnvironmentVariable",
  domain: "vercel:index/projectDomain:ProjectDomain",
};

const TOKEN = "ghp_test-token-value";
const PULUMI_TOKEN = "pul-test-access-token";
const API_KEY = "gateway-key-test-value";

function renderGithub(overrides: Record<string, unknown>, environment = "prod") {
  return render(() => {
    new GitHubDelivery("gh", {
      config: githubConfig(overrides),
      environment,
      stack: environment,
      token: TOKEN,
      pulumiAccessToken: PULUMI_TOKEN,
      pulumiOrganization: "acme",
      gatewayUrl: "https://ai.example.org",
    });
  });
}

describe("GitHubDelivery", () => {
  it("uses an explicit provider with owner and the token as a secret", async () => {
    const r = await renderGithub({});
    const [p] = r.ofType(GH.provider);
    expect(p!.inputs["owner"]).toBe("acme");
    expect(isSecretWrapped(p!.inputs["token"])).toBe(true);
    expect(r.plain(p!)["token"]).toBe(TOKEN);
  });

  it("with manageRepository: adopts and protects the repository, rules the default branch", async () => {
    const r = await renderGithub({ manageRepository: true, requiredApprovals: 2 });
    const repo = r.get(GH.repo, "gh-repository");
    expect(repo.protect).toBe(true);
    expect(r.plain(repo)).toMatchObject({
      name: "ai-platform",
      allowMergeCommit: false,
      deleteBranchOnMerge: true,
    });

    const ruleset = r.plain(r.get(GH.ruleset, "gh-default-branch"));
    expect(ruleset).toMatchObject({ target: "branch", enforcement: "active", repository: "ai-platform" });
    expect(ruleset.conditions.refName.includes).toEqual(["~DEFAULT_BRANCH"]);
    expect(ruleset.rules).toMatchObject({ nonFastForward: true, deletion: true });
    expect(ruleset.rules.pullRequest.requiredApprovingReviewCount).toBe(2);
    const checks = ruleset.rules.requiredStatusChecks.requiredChecks as { context: string }[];
    expect(checks.map((c) => c.context)).toEqual(REQUIRED_CHECKS);
    // Rules only after the repository is adopted.
    expect(r.get(GH.ruleset, "gh-default-branch").dependsOn).toContain(repo.urn);

    const oidc = r.plain(r.get(GH.oidc, "gh-oidc-subject"));
    expect(oidc).toMatchObject({
      useDefault: false,
      includeClaimKeys: ["repo", "context", "job_workflow_ref"],
    });
  });

  it("stores the stack's Pulumi token as a secret of its own environment only (`value`, secret)", async () => {
    for (const [environment, manageRepository] of [
      ["prod", true],
      ["dev", false],
    ] as const) {
      const r = await renderGithub({ manageRepository }, environment);
      expect(r.ofType(GH.secret)).toEqual([]);
      const s = r.get(GH.envSecret, "gh-pulumi-access-token");
      expect(s.inputs["secretName"]).toBe("PULUMI_ACCESS_TOKEN");
      expect(s.inputs["environment"]).toBe(environment);
      expect(isSecretWrapped(s.inputs["value"])).toBe(true);
      expect(r.plain(s)["value"]).toBe(PULUMI_TOKEN);
      expect(s.inputs["plaintextValue"]).toBeUndefined();
      expect(s.dependsOn).toContain(r.get(GH.env, "gh-environment").urn);
    }
  });

  it("with manageRepository: a secret-less preview environment naming the OIDC organization and team", async () => {
    const r = await renderGithub({ manageRepository: true });
    const preview = r.plain(r.get(GH.env, "gh-preview-environment"));
    expect(preview).toMatchObject({ environment: PREVIEW_ENVIRONMENT });
    expect(preview["reviewers"]).toBeUndefined();
    expect(r.ofType(GH.envSecret).filter((x) => x.inputs["environment"] === PREVIEW_ENVIRONMENT)).toEqual([]);
    expect(() =>
      environmentSpec(githubConfig({ environment: { name: PREVIEW_ENVIRONMENT } }), "dev"),
    ).toThrow(/reserved/);
  });

  it("without manageRepository: only the stack's environment, nothing repository-wide", async () => {
    const r = await renderGithub({}, "dev");
    for (const t of [GH.repo, GH.ruleset, GH.secret, GH.oidc]) expect(r.ofType(t)).toEqual([]);
    expect(r.ofType(GH.env)).toHaveLength(1);
  });

  it("prod environment: required reviewers resolved to ids, no self review, no admin bypass", async () => {
    const r = await renderGithub({ reviewers: { users: ["alice"], teams: ["platform-leads"] } });
    const env = r.plain(r.get(GH.env, "gh-environment"));
    expect(env).toMatchObject({
      environment: "prod",
      preventSelfReview: true,
      canAdminsBypass: false,
      deploymentBranchPolicy: { protectedBranches: false, customBranchPolicies: true },
    });
    const [reviewers] = env.reviewers as { users: unknown[]; teams: unknown[] }[];
    expect(reviewers!.users).toHaveLength(1);
    expect(reviewers!.teams).toHaveLength(1);
    for (const id of [...reviewers!.users, ...reviewers!.teams]) expect(Number.isInteger(id)).toBe(true);
    expect(reviewers!.users[0]).not.toBe(reviewers!.teams[0]);
  });

  it("deploys only from the configured branches", async () => {
    const r = await renderGithub(
      { environment: { name: "staging", branches: ["main", "release/*"] } },
      "dev",
    );
    const policies = r.ofType(GH.policy).map((p) => r.plain(p) as Record<string, unknown>);
    expect(policies.map((p) => p["branchPattern"])).toEqual(["main", "release/*"]);
    for (const p of policies) expect(p["environment"]).toBe("staging");
    expect(r.plain(r.get(GH.env, "gh-environment"))["canAdminsBypass"]).toBe(true);
  });

  it("environment variables are plain values only (stack, gateway URL)", async () => {
    const r = await renderGithub({ manageRepository: true });
    const vars = [...r.ofType(GH.envVar), ...r.ofType(GH.repoVar)];
    expect(vars.map((v) => [v.inputs["environment"], v.inputs["variableName"], v.inputs["value"]])).toEqual([
      [PREVIEW_ENVIRONMENT, "PULUMI_ORGANIZATION", "acme"],
      [PREVIEW_ENVIRONMENT, "PULUMI_PREVIEW_TEAM", PREVIEW_TEAM],
      ["prod", "PULUMI_STACK", "prod"],
      ["prod", "GATEWAY_URL", "https://ai.example.org"],
    ]);
  });

  it("parents every child to the component", async () => {
    const r = await renderGithub({ manageRepository: true });
    const [component] = r.ofType("platform:delivery:GitHubDelivery");
    const children = r.registrations.filter((x) => x.type.startsWith("github:") || x.type === GH.provider);
    expect(children.length).toBeGreaterThan(6);
    for (const c of children) expect(c.parent).toBe(component!.urn);
  });

  it("pure helpers", () => {
    expect(branchSlug("release/*")).toBe("release-x");
    // Adoption imports the repository by name and ignores (only) its settings on that run.
    expect(adoptOptions({ adoptRepository: false, repository: "r" })).toEqual({});
    const adopt = adoptOptions({ adoptRepository: true, repository: "r" });
    expect(adopt.import).toBe("r");
    expect(adopt.ignoreChanges).toEqual(expect.arrayContaining(["allowMergeCommit", "deleteBranchOnMerge"]));
    expect(adopt.ignoreChanges).not.toContain("name");
    expect(defaultBranchRules(["a"], 0).pullRequest).toMatchObject({
      requiredApprovingReviewCount: 0,
      requireLastPushApproval: false,
    });
  });
});

/** A checkout that has the web app (the real repository does not, yet). */
const withWeb = (() => {
  const dir = mkdtempSync(path.join(tmpdir(), "delivery-"));
  mkdirSync(path.join(dir, "web"));
  return dir;
})();

function renderVercel(overrides: Record<string, unknown>, environment = "dev", rootDir = withWeb) {
  return render(() => {
    new VercelFrontend("web", {
      config: vercelConfig(overrides),
      environment,
      apiToken: "vercel-api-token-test",
      repository: "acme/ai-platform",
      productionBranch: "main",
      gatewayUrl: "https://ai.dev.example.org",
      gatewayApiKey: API_KEY,
      rootDir,
    });
  });
}

const variables = (r: Awaited<ReturnType<typeof renderVercel>>) =>
  Object.fromEntries(r.ofType(VC.variable).map((v) => [v.inputs["key"] as string, v]));

describe("VercelFrontend", () => {
  it("creates a Next.js project linked to the repository when it owns the project", async () => {
    const r = await renderVercel({ manageProject: true, rootDirectory: "web" });
    const p = r.plain(r.get(VC.project, "web-project"));
    expect(p).toMatchObject({
      name: "ai-platform-web",
      framework: "nextjs",
      rootDirectory: "web",
      gitRepository: { type: "github", repo: "acme/ai-platform", productionBranch: "main" },
      gitForkProtection: true,
    });
    const [provider] = r.ofType(VC.provider);
    expect(isSecretWrapped(provider!.inputs["apiToken"])).toBe(true);
  });

  it("no app directory yet: the project is neither pointed at one nor linked (nothing to build)", async () => {
    const r = await renderVercel({ manageProject: true });
    const p = r.plain(r.get(VC.project, "web-project"));
    expect(p["rootDirectory"]).toBeUndefined();
    expect(p["gitRepository"]).toBeUndefined();
    expect(r.ofType(VC.variable)).toHaveLength(2);
  });

  it("refuses a rootDirectory that is not a directory of the checkout", () => {
    expect(() => appDirectory("no-such-app")).toThrow(/not a directory of the repository/);
    expect(() => appDirectory("web", path.join(process.cwd(), "test"))).toThrow(/rootDirectory "web"/);
  });

  it("looks the project up by name when another stack owns it", async () => {
    const r = await renderVercel({ manageProject: false }, "prod");
    expect(r.ofType(VC.project)).toEqual([]);
    for (const v of r.ofType(VC.variable)) expect(v.inputs["projectId"]).toMatch(/^prj_/);
  });

  it("gateway URL for the stack's targets; the API key sensitive, secret, never for development", async () => {
    for (const [env, target] of [
      ["dev", "preview"],
      ["prod", "production"],
    ] as const) {
      const r = await renderVercel({ manageProject: true }, env);
      const vars = variables(r);
      expect(Object.keys(vars).sort()).toEqual(["GATEWAY_API_KEY", "GATEWAY_URL"]);
      const url = r.plain(vars["GATEWAY_URL"]!);
      expect(url).toMatchObject({ sensitive: false, targets: [target], value: "https://ai.dev.example.org" });
      const key = vars["GATEWAY_API_KEY"]!;
      expect(key.inputs["sensitive"]).toBe(true);
      expect(isSecretWrapped(key.inputs["value"])).toBe(true);
      expect(r.plain(key)["targets"]).toEqual([target]);
    }
  });

  it("both targets from one stack when configured", async () => {
    const r = await renderVercel({ targets: ["preview", "production"] });
    for (const v of r.ofType(VC.variable)) expect(r.plain(v)["targets"]).toEqual(["preview", "production"]);
  });

  it("production domain", async () => {
    const r = await renderVercel({ domain: "app.example.org", targets: ["production"] }, "prod");
    expect(r.plain(r.get(VC.domain, "web-domain"))["domain"]).toBe("app.example.org");
    expect((await renderVercel({})).ofType(VC.domain)).toEqual([]);
  });

  it("pure helpers: sensitive variables never target development", () => {
    expect(vercelTargets("prod", {})).toEqual(["production"]);
    expect(vercelTargets("dev", {})).toEqual(["preview"]);
    expect(vercelTargets("dev", { targets: ["production"] })).toEqual(["production"]);
    const vars = frontendVariables(["preview", "development" as never]);
    for (const v of vars) expect(v.targets).toEqual(["preview"]);
  });
});

describe("delivery config", () => {
  const base = {
    "platform:environment": "prod",
    "platform:cluster": JSON.stringify({ kind: "existing" }),
  };
  const secrets = new Set(["githubToken", "pulumiAccessToken", "vercelApiToken"]);
  const problems = (delivery: unknown) => {
    try {
      parsePlatformConfig(
        { ...base, ...PUBLIC_TLS, "platform:delivery": JSON.stringify(delivery) },
        new Set([...secrets, "acmeDnsApiToken"]),
      );
      return [];
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as ConfigError).problems.map((p) => `${p.key}: ${p.message}`);
    }
  };
  const gh = { enabled: true, owner: "acme", repository: "r" };

  it("prod needs a reviewer", () => {
    expect(problems({ github: gh })).toEqual([
      expect.stringMatching(/^platform:delivery\.github\.reviewers: prod needs at least one/),
    ]);
    expect(problems({ github: { ...gh, reviewers: { teams: ["leads"] } } })).toEqual([]);
  });

  it("at most 6 reviewers", () => {
    const users = ["a", "b", "c", "d", "e", "f", "g"];
    expect(problems({ github: { ...gh, reviewers: { users } } })).toEqual([
      expect.stringMatching(/reviewers: GitHub allows at most 6/),
    ]);
  });

  it("a production domain needs the production target", () => {
    const vercel = { enabled: true, project: "web", domain: "app.example.org", targets: ["preview"] };
    expect(problems({ github: { ...gh, reviewers: { users: ["a"] } }, vercel })).toEqual([
      expect.stringMatching(/^platform:delivery\.vercel\.domain: a production domain needs/),
    ]);
  });

  it("rejects a development target and a typo'd key", () => {
    const out = problems({
      github: { ...gh, reviewers: { users: ["a"] }, manageRepositry: true },
      vercel: { enabled: true, project: "web", targets: ["development"] },
    });
    expect(out).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^platform:delivery\.github\.manageRepositry: unknown key \(did you mean "manageRepository"\?\)/,
        ),
        expect.stringMatching(/^platform:delivery\.vercel\.targets\[0\]/),
      ]),
    );
  });
});

// K3s is another issue's work: run the committed delivery config on an existing cluster, without
// workloads (the delivery components do not depend on them).
const overrides = {
  "platform:cluster": { kind: "existing", distribution: "k3s" },
  "platform:inference": { namespace: "inference", services: [] },
  "platform:apps": { services: [] },
};

describe.each(PIPELINE_STACKS)("stack %s through the preflight", (stack) => {
  it("registers the delivery components with 0 mandatory violations and 0 leaks", async () => {
    const r = await renderStack(stack, { overrides });
    const { environment, delivery } = committedConfig(stack);
    expect(r.plan.summary.secretLeaks).toBe(0);
    expect(r.plan.secretLeaks).toEqual([]);
    expect(unexpectedMandatory(stack, r.plan.violations)).toEqual([]);
    expect(r.ofType("platform:delivery:GitHubDelivery")).toHaveLength(1);
    expect(r.ofType("platform:delivery:VercelFrontend")).toHaveLength(1);
    const env = environmentSpec(delivery.github, environment).name;
    expect(r.ofType(GH.env).map((e) => r.plain(e)["environment"] as unknown)).toEqual(
      delivery.github.manageRepository ? [PREVIEW_ENVIRONMENT, env] : [env],
    );
    expect(r.ofType(GH.ruleset)).toHaveLength(delivery.github.manageRepository ? 1 : 0);
    expect(r.ofType(VC.project)).toHaveLength(delivery.vercel.manageProject ? 1 : 0);
    expect(r.outputs["repositoryUrl"]).toBe("https://github.com/example-org/ai-delivery-platform");
    expect(typeof r.outputs["vercelProjectId"]).toBe("string");
  });

  it("plants secrets only in secret sinks, marked secret", async () => {
    const r = await renderStack(stack, { overrides });
    const holding = (needle: RegExp) =>
      r.registrations.filter((x: Registration) => needle.test(JSON.stringify(x.inputs))).map((x) => x.type);
    expect(holding(/pfcanary-githubToken-/)).toEqual([GH.provider]);
    expect(holding(/pfcanary-vercelApiToken-/)).toEqual([VC.provider]);
    expect(holding(/pfcanary-pulumiAccessToken-/)).toEqual([GH.envSecret]);
    const key = r.ofType(VC.variable).find((v) => v.inputs["key"] === "GATEWAY_API_KEY")!;
    expect(isSecretWrapped(key.inputs["value"])).toBe(true);
    expect(r.plain(key)["value"]).toMatch(/^pfcanary-generated-/);
  });
});

// --- every path in the repository the program and the workflows point at exists --------------------

/** Input paths (dot-joined) that name a path in the repository: a Vercel root, an image build's. */
const REPO_PATH_INPUTS = [/(^|\.)rootDirectory$/, /(^|\.)environment\.IMAGE_(CONTEXT|DOCKERFILE)$/];

/** `[where, path]` for every repository path in the registrations' inputs. */
function repoPaths(registrations: readonly Registration[]): [string, string][] {
  const out: [string, string][] = [];
  const walk = (where: string, at: string, v: unknown) => {
    if (typeof v === "string") {
      if (REPO_PATH_INPUTS.some((re) => re.test(at))) out.push([`${where} ${at}`, v]);
    } else if (Array.isArray(v)) v.forEach((x, i) => walk(where, `${at}[${i}]`, x));
    else if (v && typeof v === "object")
      for (const [k, x] of Object.entries(v as Record<string, unknown>))
        walk(where, at ? `${at}.${k}` : k, x);
  };
  for (const r of registrations) walk(`${r.type} ${r.name}`, "", r.inputs);
  return out;
}

/** Paths in the workflows: policy packs and their per-stack configs (matrix expanded). */
function workflowPaths(): [string, string][] {
  const out: [string, string][] = [];
  for (const file of WORKFLOW_FILES) {
    const wf = parse(readFileSync(file, "utf8")) as {
      jobs: Record<
        string,
        { strategy?: { matrix?: { stack?: string[] } }; steps: { with?: Record<string, unknown> }[] }
      >;
    };
    for (const [id, job] of Object.entries(wf.jobs))
      for (const stack of job.strategy?.matrix?.stack ?? [""])
        for (const step of job.steps)
          for (const key of ["policyPacks", "policyPackConfigs", "work-dir"])
            if (typeof step.with?.[key] === "string")
              out.push([
                `${file}:${id} ${key}`,
                step.with[key].replace(/\$\{\{\s*matrix\.stack\s*\}\}/g, stack),
              ]);
  }
  return out;
}

describe("repository paths", () => {
  // The committed stacks, whole, on an existing cluster with their GPU pools (K3s is another issue's).
  const stackOverrides = (stack: string) =>
    committedConfig(stack).cluster.kind === "k3s" ? existingClusterFor(stack) : {};

  it.each(listStacks(process.cwd()))(
    "every path stack %s points at in the repository exists",
    async (stack) => {
      const r = await renderStack(stack, { overrides: stackOverrides(stack) });
      const paths = repoPaths(r.registrations);
      const missing = paths.filter(([, p]) => !existsSync(p));
      expect(missing).toEqual([]);
      // Every first-party image's context and Dockerfile, and the Vercel root of the stack that links it.
      const c = committedConfig(stack);
      const built = (c.inference.gateway.enabled ? 1 : 0) + c.apps.services.length;
      const kinds = paths.map(([at]) => at.split(" ").pop());
      expect(kinds.filter((k) => k === "environment.IMAGE_CONTEXT")).toHaveLength(built);
      expect(kinds.filter((k) => k === "environment.IMAGE_DOCKERFILE")).toHaveLength(built);
      const linked =
        c.delivery.vercel.enabled && c.delivery.vercel.manageProject && c.delivery.vercel.rootDirectory;
      expect(kinds.filter((k) => k === "rootDirectory")).toHaveLength(linked ? 1 : 0);
    },
  );

  it("the stacks do point at repository paths (Dockerfiles, build contexts, the web root), and the checker is live", async () => {
    const r = await renderStack("dev", { overrides: stackOverrides("dev") });
    const found = repoPaths(r.registrations).map(([at]) => at.split(" ").pop());
    expect(found).toEqual(
      expect.arrayContaining(["environment.IMAGE_CONTEXT", "environment.IMAGE_DOCKERFILE", "rootDirectory"]),
    );
    const bad = repoPaths([
      { type: "vercel:index/project:Project", name: "p", inputs: { rootDirectory: "web-nope" } } as never,
    ]);
    expect(bad).toEqual([["vercel:index/project:Project p rootDirectory", "web-nope"]]);
  });

  it("every path the workflows point at exists", () => {
    const paths = workflowPaths();
    expect(paths.length).toBeGreaterThan(0);
    expect(paths.filter(([, p]) => !existsSync(p))).toEqual([]);
  });
});
