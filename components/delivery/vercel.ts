/**
 * The Vercel front end: a Next.js project linked to the repository, the gateway's URL and API key as
 * per-target variables, and the production domain.
 *
 * Ownership: one stack per project sets `manageProject` and creates it; other stacks look it up by
 * name. Each stack writes the variables of its own targets (dev → preview, prod → production), so two
 * stacks never manage the same variable.
 */
import { existsSync, statSync } from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as vercel from "@pulumiverse/vercel";
import { GATEWAY_ENV } from "../apps/schema";
import type { VercelConfig, VercelTarget } from "./schema";
import { vercelTargets } from "./targets";

export interface VercelFrontendArgs {
  /** The validated `platform:delivery.vercel` section (enabled, with a project name). */
  readonly config: VercelConfig;
  /** The platform environment (`platform:environment`): picks the default target. */
  readonly environment: string;
  /** Vercel API token (a secret). */
  readonly apiToken: pulumi.Input<string>;
  /** `owner/repository` the project deploys from (needed with `manageProject`). */
  readonly repository?: string;
  /** Branch whose pushes become production deployments. */
  readonly productionBranch: string;
  /** The gateway's public URL (plain). */
  readonly gatewayUrl: pulumi.Input<string>;
  /** The gateway API key (a secret): a sensitive variable, never on the development target. */
  readonly gatewayApiKey: pulumi.Input<string>;
  /** The repository's checkout (default: the working directory, where `pulumi` runs). */
  readonly rootDir?: string;
}

/**
 * The project's `rootDirectory`, checked against the checkout: Vercel builds whatever the directory
 * holds, so a directory that is not there fails every deployment of every push.
 */
export function appDirectory(rootDirectory: string, rootDir = process.cwd()): string {
  const dir = path.join(rootDir, rootDirectory);
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new Error(
      `delivery.vercel.rootDirectory "${rootDirectory}" is not a directory of the repository; unset it until the app exists`,
    );
  return rootDirectory;
}

export interface FrontendVariable {
  readonly key: string;
  readonly role: string;
  readonly sensitive: boolean;
  readonly targets: VercelTarget[];
  /** Preview variables of one git branch only (`delivery.vercel.previewBranch`). */
  readonly gitBranch?: string;
  readonly comment: string;
}

/**
 * The variables this stack writes. Sensitive ones never include `development` (Vercel rejects it, and
 * a developer's `vercel env pull` must not fetch the gateway key).
 */
export function frontendVariables(
  targets: readonly VercelTarget[],
  previewBranch?: string,
): FrontendVariable[] {
  const deployed = targets.filter((t) => t === "preview" || t === "production");
  const branch = previewBranch ? { gitBranch: previewBranch } : {};
  return [
    {
      key: GATEWAY_ENV.url,
      role: "gateway-url",
      sensitive: false,
      targets: [...deployed],
      ...branch,
      comment: "Inference gateway base URL (managed by Pulumi)",
    },
    {
      key: GATEWAY_ENV.apiKey,
      role: "gateway-api-key",
      sensitive: true,
      targets: [...deployed],
      ...branch,
      comment: "Inference gateway API key (managed by Pulumi)",
    },
  ];
}

export class VercelFrontend extends pulumi.ComponentResource {
  public readonly projectId: pulumi.Output<string>;
  /** `https://<domain>` when this stack owns the production domain. */
  public readonly productionUrl?: pulumi.Output<string>;
  /** Vercel targets this stack writes variables for. */
  public readonly targets: pulumi.Output<string[]>;

  constructor(name: string, args: VercelFrontendArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:delivery:VercelFrontend", name, {}, opts);
    const { config } = args;
    if (!config.project) throw new Error("VercelFrontend needs delivery.vercel.project");

    const provider = new vercel.Provider(
      `${name}-provider`,
      { apiToken: pulumi.secret(args.apiToken), ...(config.team ? { team: config.team } : {}) },
      { parent: this },
    );
    const child = { parent: this, provider };

    let projectId: pulumi.Output<string>;
    const deps: pulumi.Resource[] = [];
    if (config.manageProject) {
      if (!args.repository) throw new Error("VercelFrontend with manageProject needs the repository");
      const project = new vercel.Project(
        `${name}-project`,
        {
          name: config.project,
          framework: config.framework,
          // Linked (and so built on every push) only once the app's directory exists in the repository.
          ...(config.rootDirectory
            ? {
                rootDirectory: appDirectory(config.rootDirectory, args.rootDir),
                gitRepository: {
                  type: "github",
                  repo: args.repository,
                  productionBranch: args.productionBranch,
                },
              }
            : {}),
          // Fork pull requests must be authorised before they build with the project's variables.
          gitForkProtection: true,
        },
        child,
      );
      projectId = project.id;
      deps.push(project);
    } else {
      projectId = vercel.getProjectOutput({ name: config.project }, child).id;
    }

    const targets = vercelTargets(args.environment, config);
    const values: Record<string, pulumi.Input<string>> = {
      "gateway-url": args.gatewayUrl,
      "gateway-api-key": pulumi.secret(args.gatewayApiKey),
    };
    for (const v of frontendVariables(targets, config.previewBranch))
      new vercel.ProjectEnvironmentVariable(
        `${name}-${v.role}`,
        {
          projectId,
          key: v.key,
          value: values[v.role]!,
          sensitive: v.sensitive,
          targets: v.targets,
          ...(v.gitBranch ? { gitBranch: v.gitBranch } : {}),
          comment: v.comment,
        },
        // Replacing (new targets, sensitivity) must delete first: Vercel refuses a second variable with
        // the same key and target ("already exists").
        { ...child, dependsOn: deps, deleteBeforeReplace: true },
      );

    if (config.domain) {
      new vercel.ProjectDomain(
        `${name}-domain`,
        { projectId, domain: config.domain },
        // A domain belongs to one project at a time: release it before re-adding it.
        { ...child, dependsOn: deps, deleteBeforeReplace: true },
      );
      this.productionUrl = pulumi.output(`https://${config.domain}`);
    }

    this.projectId = projectId;
    this.targets = pulumi.output([...targets]);
    this.registerOutputs({
      projectId: this.projectId,
      targets: this.targets,
      ...(this.productionUrl ? { productionUrl: this.productionUrl } : {}),
    });
  }
}
