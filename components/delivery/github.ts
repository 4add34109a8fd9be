/**
 * The GitHub side of delivery: the repository's settings and default-branch ruleset, the stack's
 * environment (branch policy, required reviewers, plain variables, and the stack's Pulumi token as an
 * *environment* secret), and for pull-request previews the OIDC subject claim template plus the
 * secret-less `preview` environment whose jobs exchange GitHub's OIDC token for a preview-only Pulumi
 * team token.
 *
 * Credentials: no repository-level secret exists. A stack's token is readable only by jobs bound to
 * that stack's environment, which only the environment's branches (and, for prod, its reviewers) can
 * start; a pull request can reach no stack token at all.
 *
 * Ownership: one stack per repository sets `manageRepository` and owns the repository-wide parts; every
 * stack owns its own environment. The repository itself is never created or deleted here: it already
 * exists (it holds this program), so it is adopted once (`adoptRepository`: `import`), `protect`ed, and
 * `retainOnDelete` keeps it on GitHub even if the resource leaves the program or the stack is destroyed.
 */
import * as github from "@pulumi/github";
import type * as inputs from "@pulumi/github/types/input";
import * as pulumi from "@pulumi/pulumi";
import {
  ENVIRONMENT_VARIABLES,
  OIDC_SUBJECT_CLAIMS,
  PREVIEW_ENVIRONMENT,
  PREVIEW_TEAM,
  PREVIEW_VARIABLES,
  previewOidcSubject,
  PULUMI_TOKEN_SECRET,
  REQUIRED_CHECKS,
} from "./pipeline";
import type { GithubConfig } from "./schema";

export interface GitHubDeliveryArgs {
  /** The validated `platform:delivery.github` section (enabled, with owner and repository). */
  readonly config: GithubConfig;
  /** The platform environment (`platform:environment`): default environment name, prod rules. */
  readonly environment: string;
  /** The Pulumi stack name the workflows deploy to this environment. */
  readonly stack: string;
  /** GitHub token for the provider (a secret; never the ambient GITHUB_TOKEN). */
  readonly token: pulumi.Input<string>;
  /**
   * This stack's Pulumi access token, stored as the `PULUMI_ACCESS_TOKEN` secret of this stack's
   * environment only (scope it to this stack: prod's token must not reach dev, and back).
   */
  readonly pulumiAccessToken: pulumi.Input<string>;
  /** Pulumi Cloud organization of the stacks (the preview OIDC exchange asks it for a token). */
  readonly pulumiOrganization: string;
  /** The gateway's public URL, a plain environment variable. */
  readonly gatewayUrl: pulumi.Input<string>;
}

/** Repository settings the platform expects: squash-only merges from reviewed pull requests. */
export function repositorySettings(repository: string): github.RepositoryArgs {
  return {
    name: repository,
    hasIssues: true,
    allowMergeCommit: false,
    allowRebaseMerge: false,
    allowSquashMerge: true,
    allowAutoMerge: true,
    squashMergeCommitTitle: "PR_TITLE",
    squashMergeCommitMessage: "PR_BODY",
    deleteBranchOnMerge: true,
    vulnerabilityAlerts: true,
    archiveOnDestroy: true,
  };
}

/**
 * Adopting an existing repository: `import` fails when the declared settings differ from GitHub's, so
 * the adopting run ignores them; the next run (flag removed) applies them as an ordinary update.
 */
export function adoptOptions(config: Pick<GithubConfig, "adoptRepository" | "repository">): {
  import?: string;
  ignoreChanges?: string[];
} {
  if (!config.adoptRepository || !config.repository) return {};
  const settings = Object.keys(repositorySettings(config.repository)).filter((k) => k !== "name");
  return { import: config.repository, ignoreChanges: settings };
}

/** Rules on the default branch: reviewed pull requests, the CI checks, no force pushes, no deletion. */
export function defaultBranchRules(
  checks: readonly string[] = REQUIRED_CHECKS,
  approvals = 1,
): inputs.RepositoryRulesetRules {
  return {
    pullRequest: {
      requiredApprovingReviewCount: approvals,
      dismissStaleReviewsOnPush: true,
      requireLastPushApproval: approvals > 0,
      requiredReviewThreadResolution: true,
    },
    requiredStatusChecks: {
      requiredChecks: checks.map((context) => ({ context })),
      strictRequiredStatusChecksPolicy: true,
    },
    nonFastForward: true,
    deletion: true,
  };
}

/** The environment's name and the branches allowed to deploy to it. */
export function environmentSpec(
  config: GithubConfig,
  environment: string,
): { name: string; branches: string[]; prod: boolean } {
  const name = config.environment.name ?? environment;
  // The preview environment's jobs come from any branch: a stack's token must never sit there.
  if (name === PREVIEW_ENVIRONMENT)
    throw new Error(`GitHub environment "${PREVIEW_ENVIRONMENT}" is reserved for pull-request previews`);
  return {
    name,
    branches: config.environment.branches ?? [config.defaultBranch],
    prod: environment === "prod",
  };
}

/** A resource-name-safe form of a branch pattern (`release/*` → `release-x`). */
export function branchSlug(pattern: string): string {
  return pattern.replace(/\*/g, "x").replace(/[^A-Za-z0-9-]+/g, "-");
}

export class GitHubDelivery extends pulumi.ComponentResource {
  /** `https://github.com/<owner>/<repository>` */
  public readonly repositoryUrl: pulumi.Output<string>;
  /** The stack's GitHub environment. */
  public readonly environmentName: pulumi.Output<string>;
  /** The status checks the default branch requires (only when this stack manages the repository). */
  public readonly requiredChecks: pulumi.Output<string[]>;
  /**
   * The `sub` Pulumi Cloud's OIDC policy for the preview team must match (only when this stack manages
   * the repository, which owns the subject template).
   */
  public readonly previewOidcSubject?: pulumi.Output<string>;

  constructor(name: string, args: GitHubDeliveryArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:delivery:GitHubDelivery", name, {}, opts);
    const { config } = args;
    const { owner, repository } = config;
    if (!owner || !repository) throw new Error("GitHubDelivery needs delivery.github.owner and repository");

    // Explicit provider: the token comes from stack config, never from the ambient GITHUB_TOKEN.
    const provider = new github.Provider(
      `${name}-provider`,
      { owner, token: pulumi.secret(args.token) },
      { parent: this },
    );
    const child = { parent: this, provider };

    const env = environmentSpec(config, args.environment);

    const repoDeps: pulumi.Resource[] = [];
    if (config.manageRepository) {
      const settings = repositorySettings(repository);
      const repo = new github.Repository(`${name}-repository`, settings, {
        ...child,
        ...adoptOptions(config),
        protect: true,
        retainOnDelete: true,
      });
      repoDeps.push(repo);
      const after = { ...child, dependsOn: repoDeps };
      new github.RepositoryRuleset(
        `${name}-default-branch`,
        {
          name: "default-branch",
          repository,
          target: "branch",
          enforcement: "active",
          conditions: { refName: { includes: ["~DEFAULT_BRANCH"], excludes: [] } },
          rules: defaultBranchRules(REQUIRED_CHECKS, config.requiredApprovals),
        },
        after,
      );
      // The subject Pulumi Cloud's trust policy matches: repo, environment, workflow file (previewOidcSubject).
      new github.ActionsRepositoryOidcSubjectClaimCustomizationTemplate(
        `${name}-oidc-subject`,
        { repository, useDefault: false, includeClaimKeys: [...OIDC_SUBJECT_CLAIMS] },
        after,
      );
      // Pull-request previews: an environment without secrets, any branch (no reviewers: it guards
      // nothing but the OIDC subject). Its variables name what the OIDC exchange asks Pulumi for.
      const preview = new github.RepositoryEnvironment(
        `${name}-preview-environment`,
        { repository, environment: PREVIEW_ENVIRONMENT, canAdminsBypass: true },
        after,
      );
      const inPreview = { ...child, dependsOn: [preview] };
      new github.ActionsEnvironmentVariable(
        `${name}-preview-var-organization`,
        {
          repository,
          environment: PREVIEW_ENVIRONMENT,
          variableName: PREVIEW_VARIABLES.organization,
          value: args.pulumiOrganization,
        },
        inPreview,
      );
      new github.ActionsEnvironmentVariable(
        `${name}-preview-var-team`,
        {
          repository,
          environment: PREVIEW_ENVIRONMENT,
          variableName: PREVIEW_VARIABLES.team,
          value: PREVIEW_TEAM,
        },
        inPreview,
      );
      this.previewOidcSubject = pulumi.output(previewOidcSubject(owner, repository));
    }

    const users = config.reviewers.users.map((username) =>
      github.getUserOutput({ username }, child).id.apply(Number),
    );
    const teams = config.reviewers.teams.map((slug) =>
      github.getTeamOutput({ slug, summaryOnly: true }, child).id.apply(Number),
    );
    const hasReviewers = users.length + teams.length > 0;
    const environment = new github.RepositoryEnvironment(
      `${name}-environment`,
      {
        repository,
        environment: env.name,
        deploymentBranchPolicy: { protectedBranches: false, customBranchPolicies: true },
        reviewers: hasReviewers ? [{ users, teams }] : [],
        preventSelfReview: hasReviewers,
        // In prod nobody, admins included, deploys around the approval.
        canAdminsBypass: !env.prod,
        waitTimer: config.environment.waitTimerMinutes,
      },
      { ...child, dependsOn: repoDeps },
    );
    const inEnv = { ...child, dependsOn: [environment] };
    for (const branch of env.branches)
      new github.RepositoryEnvironmentDeploymentPolicy(
        `${name}-deploy-${branchSlug(branch)}`,
        { repository, environment: env.name, branchPattern: branch },
        inEnv,
      );
    // This stack's token, readable only by jobs bound to this stack's environment.
    new github.ActionsEnvironmentSecret(
      `${name}-pulumi-access-token`,
      {
        repository,
        environment: env.name,
        secretName: PULUMI_TOKEN_SECRET,
        value: pulumi.secret(args.pulumiAccessToken),
      },
      inEnv,
    );
    // Plain values only: secrets go to ActionsEnvironmentSecret, never to variables.
    new github.ActionsEnvironmentVariable(
      `${name}-var-stack`,
      { repository, environment: env.name, variableName: ENVIRONMENT_VARIABLES.stack, value: args.stack },
      inEnv,
    );
    new github.ActionsEnvironmentVariable(
      `${name}-var-gateway-url`,
      {
        repository,
        environment: env.name,
        variableName: ENVIRONMENT_VARIABLES.gatewayUrl,
        value: args.gatewayUrl,
      },
      inEnv,
    );

    this.repositoryUrl = pulumi.output(`https://github.com/${owner}/${repository}`);
    this.environmentName = environment.environment;
    this.requiredChecks = pulumi.output(config.manageRepository ? [...REQUIRED_CHECKS] : []);
    this.registerOutputs({
      repositoryUrl: this.repositoryUrl,
      environmentName: this.environmentName,
      requiredChecks: this.requiredChecks,
      ...(this.previewOidcSubject ? { previewOidcSubject: this.previewOidcSubject } : {}),
    });
  }
}
