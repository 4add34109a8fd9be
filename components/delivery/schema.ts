import { z } from "zod";
import { doc, formatKey, hostname, type ConfigProblem, type Environment } from "../schema-kit";
import { vercelTargets } from "./targets";

const ghName = z
  .string()
  .regex(/^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$/, "must be a GitHub owner or repository name");

/** A git branch name or a fnmatch pattern GitHub accepts in branch policies (`release/*`). */
const branchPattern = z
  .string()
  .regex(/^[A-Za-z0-9._/*-]+$/, "must be a branch name or pattern such as main or release/*");

const githubSchema = z.strictObject({
  enabled: doc(z.boolean().default(false), "Manage the GitHub side of delivery from this stack.", true),
  owner: doc(ghName.optional(), "Organisation or user that owns the repository.", "acme"),
  repository: doc(
    ghName.optional(),
    "Repository name (it must exist: it holds this program).",
    "ai-platform",
  ),
  defaultBranch: doc(
    branchPattern.default("main"),
    "The default branch: the ruleset protects it and deployments come from it.",
    "main",
  ),
  manageRepository: doc(
    z.boolean().default(false),
    "This stack owns the repository-wide parts (settings, ruleset, OIDC subject template, the secret-less " +
      "preview environment). Exactly one stack per repository should set it; every stack adds its own " +
      "environment with its own Pulumi token as an environment secret.",
    true,
  ),
  adoptRepository: doc(
    z.boolean().default(false),
    "Adopt the existing repository into this stack (`import`), ignoring its current settings; set it " +
      "for the first `pulumi up` only, then remove it so the settings are applied.",
    true,
  ),
  requiredApprovals: doc(
    z.number().int().min(0).max(10).default(1),
    "Approving reviews a pull request into the default branch needs (ruleset).",
    1,
  ),
  environment: doc(
    z
      .strictObject({
        name: doc(
          z
            .string()
            .regex(/^[A-Za-z0-9._-]{1,255}$/, "must be an environment name")
            .optional(),
          "GitHub environment of this stack (default: platform:environment).",
          "prod",
        ),
        branches: doc(
          z.array(branchPattern).min(1).optional(),
          "Branches allowed to deploy to the environment (default: the default branch).",
          ["main"],
        ),
        waitTimerMinutes: doc(
          z.number().int().min(0).max(43200).default(0),
          "Minutes a deployment waits after approval.",
          5,
        ),
      })
      .default({ waitTimerMinutes: 0 }),
    "The stack's GitHub environment: deployment branch policy, reviewers, variables.",
    { name: "prod", branches: ["main"] },
  ),
  reviewers: doc(
    z
      .strictObject({
        users: z.array(ghName).default([]),
        teams: z.array(ghName).default([]),
      })
      .default({ users: [], teams: [] }),
    "Required reviewers of the environment, as user logins and team slugs (resolved to ids; at most 6).",
    { users: ["alice"], teams: ["platform-leads"] },
  ),
});

const vercelSchema = z.strictObject({
  enabled: doc(z.boolean().default(false), "Manage the Vercel front end from this stack.", true),
  project: doc(z.string().min(1).optional(), "Vercel project name.", "ai-platform-web"),
  team: doc(z.string().min(1).optional(), "Vercel team slug or id (omit for a personal account).", "acme"),
  manageProject: doc(
    z.boolean().default(false),
    "This stack creates the project (linked to the repository); other stacks look it up by name. " +
      "Exactly one stack per project should set it.",
    true,
  ),
  targets: doc(
    z
      .array(z.enum(["preview", "production"]))
      .min(1)
      .optional(),
    "Vercel targets this stack's gateway serves (default: production for prod, preview otherwise). " +
      "Never development: the gateway key is sensitive.",
    ["preview"],
  ),
  domain: doc(
    hostname.optional(),
    "Production domain of the front end (needs the production target).",
    "app.example.org",
  ),
  previewBranch: doc(
    branchPattern.optional(),
    "Scope this stack's preview variables to one git branch (Vercel's branch-specific preview variables): " +
      "previews of that branch call this stack's gateway, every other preview the stack without it.",
    "staging",
  ),
  framework: doc(z.enum(["nextjs"]).default("nextjs"), "Framework preset of the project.", "nextjs"),
  rootDirectory: doc(
    z
      .string()
      .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, "must be a relative path such as web or apps/web")
      .optional(),
    "Directory of the web app inside the repository; it must exist. Unset: the project is not linked " +
      "to the repository (nothing to build yet), the variables are still written.",
    "web",
  ),
});

export const deliverySchema = z.strictObject({
  github: doc(
    githubSchema.default(githubSchema.parse({})),
    "GitHub repository settings, rulesets, environments and Actions secrets (token: platform:githubToken).",
    { enabled: true, owner: "acme", repository: "ai-platform", reviewers: { teams: ["platform-leads"] } },
  ),
  vercel: doc(
    vercelSchema.default(vercelSchema.parse({})),
    "Vercel front end with preview/production variables (token: platform:vercelApiToken).",
    { enabled: true, project: "ai-platform-web", domain: "app.example.org" },
  ),
});
export type DeliveryConfig = z.infer<typeof deliverySchema>;
export type GithubConfig = DeliveryConfig["github"];
export type VercelConfig = DeliveryConfig["vercel"];
export type VercelTarget = "preview" | "production";

/** Checks of `platform:delivery`: what GitHub and Vercel need when on, and prod's reviewers. */
export function deliveryChecks(c: {
  readonly environment: Environment;
  readonly delivery: DeliveryConfig;
}): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const gh = c.delivery.github;
  const vc = c.delivery.vercel;
  if (gh.enabled) {
    if (!gh.owner)
      out.push({
        key: formatKey(["delivery", "github", "owner"]),
        message: "is required when github is enabled",
        example: '"acme"',
      });
    if (!gh.repository)
      out.push({
        key: formatKey(["delivery", "github", "repository"]),
        message: "is required when github is enabled",
        example: '"ai-platform"',
      });
  }
  if (vc.enabled && !vc.project)
    out.push({
      key: formatKey(["delivery", "vercel", "project"]),
      message: "is required when vercel is enabled",
      example: '"ai-platform-web"',
    });
  const reviewerCount = gh.reviewers.users.length + gh.reviewers.teams.length;
  if (c.environment === "prod" && gh.enabled && reviewerCount === 0)
    out.push({
      key: formatKey(["delivery", "github", "reviewers"]),
      message: "prod needs at least one required reviewer",
      example: '{"teams":["platform-leads"]}',
    });
  if (reviewerCount > 6)
    out.push({
      key: formatKey(["delivery", "github", "reviewers"]),
      message: `GitHub allows at most 6 required reviewers per environment; ${reviewerCount} given`,
    });
  if (vc.enabled && vc.domain && !vercelTargets(c.environment, vc).includes("production"))
    out.push({
      key: formatKey(["delivery", "vercel", "domain"]),
      message: "a production domain needs the production target in platform:delivery.vercel.targets",
      example: '["production"]',
    });
  if (vc.enabled && vc.previewBranch && vercelTargets(c.environment, vc).includes("production"))
    out.push({
      key: formatKey(["delivery", "vercel", "previewBranch"]),
      message: 'branch-specific variables are preview-only; use targets ["preview"] or remove previewBranch',
      example: '["preview"]',
    });
  if (vc.enabled && vc.manageProject && !(gh.owner && gh.repository))
    out.push({
      key: formatKey(["delivery", "vercel", "manageProject"]),
      message:
        "creating the Vercel project links it to the repository: set platform:delivery.github.owner and repository",
    });
  return out;
}
