/**
 * Facts shared by the delivery component and the workflows in `.github/workflows/`: the stacks the
 * pipeline previews and deploys, the status checks the ruleset requires, and the names of the
 * Actions secrets and variables the workflows read. `test/workflows.test.ts` parses the workflow
 * YAML and fails when it drifts from this module.
 */

/** One stack the workflows deploy from main, in order. */
export interface PipelineStage {
  /** The Pulumi stack (`Pulumi.<stack>.yaml`); names are free, its platform:environment is the tier. */
  readonly stack: string;
  /**
   * Its GitHub environment has required reviewers: `up` waits for an approval, so drift is checked on
   * demand only (a nightly job waiting for one would hold the stack's lock and displace a deploy).
   */
  readonly reviewed: boolean;
}

/**
 * THE list of stacks: every committed `Pulumi.<stack>.yaml` is a pipeline stage here (deployed from
 * main in this order, each after the one before) or a LOCAL_STACKS entry. The workflows in
 * `.github/workflows/` are checked against it (test/workflows.test.ts), and so are the stack files
 * and their policy configs.
 */
export const PIPELINE: readonly PipelineStage[] = [
  { stack: "dev", reviewed: false },
  { stack: "staging", reviewed: true },
  { stack: "prod", reviewed: true },
];

/** Stacks only people run (`pulumi up` on a laptop's cluster): the preflight covers them, no workflow does. */
export const LOCAL_STACKS: readonly string[] = ["local"];

/** Stacks the pipeline deploys in this order from main. */
export const PIPELINE_STACKS: readonly string[] = PIPELINE.map((s) => s.stack);
export type PipelineStack = string;

/** Stacks whose drift is checked nightly: the ones whose environment needs no approval. */
export const NIGHTLY_DRIFT_STACKS: readonly string[] = PIPELINE.filter((s) => !s.reviewed).map(
  (s) => s.stack,
);

/** Stacks whose drift is checked on demand (workflow_dispatch), in their reviewed environments. */
export const ON_DEMAND_DRIFT_STACKS: readonly string[] = PIPELINE.filter((s) => s.reviewed).map(
  (s) => s.stack,
);

/** The job id of a stack's `up` in deploy.yml. */
export const deployJobId = (stack: string) => `up-${stack}`;

/**
 * The stack (and GitHub environment) whose credentials only reviewed, environment-bound jobs reach:
 * the last stage, the prod tier.
 */
export const PROD_STACK = "prod";

/**
 * Stacks a pull request previews. Never prod: a preview decrypts the stack's secrets, and a pull
 * request's workflow is whatever the branch says it is. Prod is checked offline by `preflight` on pull
 * requests and previewed for real by `up (prod)` behind its required reviewers.
 */
export const PREVIEW_STACKS: readonly PipelineStack[] = PIPELINE_STACKS.filter((s) => s !== PROD_STACK);

/**
 * The GitHub environment of pull-request previews. It holds no secret: its jobs exchange GitHub's OIDC
 * token (subject `repo:…:environment:preview:job_workflow_ref:…`) for a short-lived Pulumi token of
 * `PREVIEW_TEAM`, which has access to the preview stacks only.
 */
export const PREVIEW_ENVIRONMENT = "preview";

/** Pulumi Cloud team whose token pull-request previews get through OIDC (no access to prod). */
export const PREVIEW_TEAM = "platform-preview";

/** What `pulumi/auth-actions` requests for previews: a team token (Pulumi Enterprise/Business Critical). */
export const PREVIEW_TOKEN_TYPE = "urn:pulumi:token-type:access_token:team";

/** The pull-request workflow. */
export const CI_WORKFLOW = ".github/workflows/ci.yml";
export const DEPLOY_WORKFLOW = ".github/workflows/deploy.yml";
export const DRIFT_WORKFLOW = ".github/workflows/drift.yml";
export const WORKFLOW_FILES = [CI_WORKFLOW, DEPLOY_WORKFLOW, DRIFT_WORKFLOW] as const;

/**
 * Status checks the default branch requires, exactly as GitHub names the jobs of ci.yml (a matrix job
 * named `preview (${{ matrix.stack }})` reports one check per preview stack).
 */
export const REQUIRED_CHECKS: readonly string[] = [
  "test",
  "preflight",
  "gateway (node 22)",
  ...PREVIEW_STACKS.map((s) => `preview (${s})`),
];

/**
 * The Pulumi access token of a stack: an *environment* secret of that stack's GitHub environment only
 * (never a repository secret, which every job of every branch could read).
 */
export const PULUMI_TOKEN_SECRET = "PULUMI_ACCESS_TOKEN";

/** The one concurrency group of everything that touches a stack (preview, up, refresh, drift). */
export const stackLockGroup = (stack: string) => `pulumi-${stack}`;

/** Environment variables (plain values only) each stack's GitHub environment carries. */
export const ENVIRONMENT_VARIABLES = { stack: "PULUMI_STACK", gatewayUrl: "GATEWAY_URL" } as const;

/** Plain variables of the preview environment: the Pulumi organization and team the OIDC exchange asks for. */
export const PREVIEW_VARIABLES = {
  organization: "PULUMI_ORGANIZATION",
  team: "PULUMI_PREVIEW_TEAM",
} as const;

/**
 * Claims in the repository's OIDC subject: repository, environment (or ref/event), and the workflow
 * file at its ref. Pulumi Cloud's trust policy matches on this subject (`previewOidcSubject`).
 */
export const OIDC_SUBJECT_CLAIMS = ["repo", "context", "job_workflow_ref"] as const;

/**
 * The `sub` pattern Pulumi Cloud's authorization policy for `PREVIEW_TEAM` must match: only jobs of
 * ci.yml in the preview environment of this repository, any ref (pull requests run `refs/pull/N/merge`).
 * GitHub builds the subject from `OIDC_SUBJECT_CLAIMS` in that order.
 */
export function previewOidcSubject(owner: string, repository: string): string {
  const repo = `${owner}/${repository}`;
  return `repo:${repo}:environment:${PREVIEW_ENVIRONMENT}:job_workflow_ref:${repo}/${CI_WORKFLOW}@*`;
}

/** The audience Pulumi Cloud expects in GitHub's OIDC token for an organization. */
export const pulumiOidcAudience = (organization: string) => `urn:pulumi:org:${organization}`;
