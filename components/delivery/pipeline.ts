/**
 * Facts shared by the delivery component and the workflows in `.github/workflows/`: the stacks the
 * pipeline previews and deploys, the status checks the ruleset requires, and the names of the
 * Actions secrets and variables the workflows read. `test/workflows.test.ts` parses the workflow
 * YAML and fails when it drifts from this module.
 */

/** Stacks the pipeline previews on every pull request and deploys in this order from main. */
export const PIPELINE_STACKS = ["dev", "prod"] as const;
export type PipelineStack = (typeof PIPELINE_STACKS)[number];

/** The pull-request workflow. */
export const CI_WORKFLOW = ".github/workflows/ci.yml";
export const DEPLOY_WORKFLOW = ".github/workflows/deploy.yml";
export const DRIFT_WORKFLOW = ".github/workflows/drift.yml";
export const WORKFLOW_FILES = [CI_WORKFLOW, DEPLOY_WORKFLOW, DRIFT_WORKFLOW] as const;

/**
 * Status checks the default branch requires, exactly as GitHub names the jobs of ci.yml (a matrix job
 * named `preview (${{ matrix.stack }})` reports one check per stack).
 */
export const REQUIRED_CHECKS: readonly string[] = [
  "test",
  "preflight",
  ...PIPELINE_STACKS.map((s) => `preview (${s})`),
];

/** The Actions secret holding the Pulumi access token every workflow logs in with. */
export const PULUMI_TOKEN_SECRET = "PULUMI_ACCESS_TOKEN";

/** Environment variables (plain values only) each stack's GitHub environment carries. */
export const ENVIRONMENT_VARIABLES = { stack: "PULUMI_STACK", gatewayUrl: "GATEWAY_URL" } as const;

/** Claims in the OIDC subject: repository, environment or ref, and the calling workflow. */
export const OIDC_SUBJECT_CLAIMS = ["repo", "context", "job_workflow_ref"] as const;
