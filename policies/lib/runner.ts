/**
 * Runs the pack's policies over recorded resources the way CrossGuard does: per-policy levels and
 * config from a policy-pack config file (schema defaults merged in, as the engine does),
 * `notApplicable`, `isType`/`asType`, remediations before validation, stack policies last.
 * Used by the preflight, the `policy check` CLI, the tests and the bench.
 */
import type {
  EnforcementLevel,
  Policies,
  PolicyConfigSchema,
  PolicyPackConfig,
  PolicyResource,
  PolicyResourceOptions,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidationArgs,
  StackValidationPolicy,
} from "@pulumi/policy";

/** A resource as the runner sees it: plain input values (secrets already unwrapped). */
export interface ResourceRecord {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
  readonly parent?: string;
  readonly protect?: boolean;
  readonly dependencies?: readonly string[];
  readonly inputs: Record<string, unknown>;
}

export type ViolationLevel = Exclude<EnforcementLevel, "disabled">;

export interface Violation {
  readonly policy: string;
  readonly level: ViolationLevel;
  readonly urn: string;
  readonly message: string;
}

class NotApplicableError extends Error {}

const throwNotApplicable = (reason?: string): never => {
  throw new NotApplicableError(reason ?? "not applicable");
};

interface PolicyWithSchema {
  readonly name: string;
  readonly enforcementLevel?: EnforcementLevel;
  readonly configSchema?: PolicyConfigSchema;
}

/** Effective level and config of one policy, schema defaults merged under the file's values. */
export function resolvePolicyConfig(
  policy: PolicyWithSchema,
  config: PolicyPackConfig | undefined,
  packLevel: EnforcementLevel = "advisory",
): { level: EnforcementLevel; props: Record<string, unknown> } {
  const defaults: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(policy.configSchema?.properties ?? {})) {
    const d = (schema as { default?: unknown }).default;
    if (d !== undefined) defaults[key] = structuredClone(d);
  }
  const all = config?.["all"];
  const allLevel = typeof all === "string" ? all : (all as { enforcementLevel?: EnforcementLevel })?.enforcementLevel;
  const entry = config?.[policy.name];
  if (typeof entry === "string") return { level: entry, props: defaults };
  const { enforcementLevel, ...props } = (entry ?? {}) as { enforcementLevel?: EnforcementLevel };
  return {
    level: enforcementLevel ?? allLevel ?? policy.enforcementLevel ?? packLevel,
    props: { ...defaults, ...props },
  };
}

function isTypeOf(type: string, resourceClass: unknown): boolean {
  const token = (resourceClass as { __pulumiType?: unknown }).__pulumiType;
  return typeof token === "string" && token === type;
}

function optionsOf(r: ResourceRecord): PolicyResourceOptions {
  return {
    protect: r.protect ?? false,
    ignoreChanges: [],
    aliases: [],
    customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
    additionalSecretOutputs: [],
    ...(r.parent ? { parent: r.parent } : {}),
  };
}

function isResourcePolicy(p: Policies[number]): p is ResourceValidationPolicy {
  return "validateResource" in p || "remediateResource" in p;
}

export interface RunOptions {
  readonly config?: PolicyPackConfig;
  /** Skip stack policies (the CLI over plain manifests has no stack). */
  readonly resourcesOnly?: boolean;
}

/** Runs every policy over the resources and returns the violations, in resource order. */
export async function runPolicies(
  policies: Policies,
  resources: readonly ResourceRecord[],
  options: RunOptions = {},
): Promise<Violation[]> {
  const violations: Violation[] = [];
  const stackTags: ReadonlyMap<string, string> = new Map();
  const resolved = policies.map((p) => ({ policy: p, ...resolvePolicyConfig(p, options.config) }));
  const active = resolved.filter((r) => r.level !== "disabled");
  const resourcePolicies = active.filter((r) => isResourcePolicy(r.policy)) as {
    policy: ResourceValidationPolicy;
    level: EnforcementLevel;
    props: Record<string, unknown>;
  }[];
  const remediated = new Map<string, Record<string, unknown>>();

  for (const r of resources) {
    let props = r.inputs;
    for (const { policy, level, props: config } of resourcePolicies) {
      const args: ResourceValidationArgs = {
        type: r.type,
        props,
        urn: r.urn,
        name: r.name,
        opts: optionsOf(r),
        stackTags,
        isType: (cls) => isTypeOf(r.type, cls),
        asType: ((cls: unknown) => (isTypeOf(r.type, cls) ? props : undefined)) as ResourceValidationArgs["asType"],
        getConfig: <T extends object>() => config as T,
        notApplicable: throwNotApplicable,
      };
      let effective: ViolationLevel = level === "disabled" ? "advisory" : level;
      if (level === "remediate" && policy.remediateResource) {
        try {
          const fixed = (await policy.remediateResource(args)) as Record<string, unknown> | undefined;
          if (fixed) {
            props = fixed;
            args.props = fixed;
            remediated.set(r.urn, fixed);
            violations.push({
              policy: policy.name,
              level: "remediate",
              urn: r.urn,
              message: `remediated: ${policy.description}`,
            });
          }
        } catch (e) {
          if (!(e instanceof NotApplicableError)) throw e;
        }
        // A violation that survives remediation is reported as mandatory, as CrossGuard does.
        effective = "mandatory";
      }
      const validations = policy.validateResource
        ? Array.isArray(policy.validateResource)
          ? policy.validateResource
          : [policy.validateResource]
        : [];
      for (const validate of validations) {
        try {
          await validate(args, (message, urn) =>
            violations.push({ policy: policy.name, level: effective, urn: urn ?? r.urn, message }),
          );
        } catch (e) {
          if (!(e instanceof NotApplicableError)) throw e;
        }
      }
    }
  }

  if (options.resourcesOnly) return violations;

  const stackPolicies = active.filter((r) => !isResourcePolicy(r.policy)) as {
    policy: StackValidationPolicy;
    level: EnforcementLevel;
    props: Record<string, unknown>;
  }[];
  if (stackPolicies.length === 0) return violations;
  const policyResources = toPolicyResources(resources, remediated);
  for (const { policy, level, props: config } of stackPolicies) {
    const args: StackValidationArgs = {
      resources: policyResources,
      stackTags,
      getConfig: <T extends object>() => config as T,
      notApplicable: throwNotApplicable,
    };
    const effective: ViolationLevel = level === "disabled" || level === "remediate" ? "mandatory" : level;
    try {
      await policy.validateStack(args, (message, urn) =>
        violations.push({ policy: policy.name, level: effective, urn: urn ?? "", message }),
      );
    } catch (e) {
      if (!(e instanceof NotApplicableError)) throw e;
    }
  }
  return violations;
}

function toPolicyResources(
  resources: readonly ResourceRecord[],
  remediated: ReadonlyMap<string, Record<string, unknown>>,
): PolicyResource[] {
  const byUrn = new Map<string, PolicyResource>();
  const out = resources.map((r) => {
    const props = remediated.get(r.urn) ?? r.inputs;
    const pr: PolicyResource = {
      type: r.type,
      props,
      urn: r.urn,
      name: r.name,
      opts: optionsOf(r),
      dependencies: [],
      propertyDependencies: {},
      isType: (cls) => isTypeOf(r.type, cls),
      asType: ((cls: unknown) => (isTypeOf(r.type, cls) ? props : undefined)) as PolicyResource["asType"],
    };
    byUrn.set(r.urn, pr);
    return pr;
  });
  resources.forEach((r, i) => {
    const pr = out[i]!;
    if (r.parent) pr.parent = byUrn.get(r.parent);
    pr.dependencies = (r.dependencies ?? []).flatMap((u) => byUrn.get(u) ?? []);
  });
  return out;
}
