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
import { PolicyConfigError, validatePackConfig } from "./config";

export { PolicyConfigError, validatePackConfig };

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

/** Throws without capturing a stack: `notApplicable` is the common path, once per resource and policy. */
const throwNotApplicable = (reason?: string): never => {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  let e: NotApplicableError;
  try {
    e = new NotApplicableError(reason ?? "not applicable");
  } finally {
    Error.stackTraceLimit = limit;
  }
  throw e;
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
  const allLevel =
    typeof all === "string" ? all : (all as { enforcementLevel?: EnforcementLevel })?.enforcementLevel;
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

/** A policy may carry a stack-wide part too (`validateStack` beside `validateResource`). */
function stackPartOf(p: Policies[number]): StackValidationPolicy["validateStack"] | undefined {
  const v = (p as Partial<StackValidationPolicy>).validateStack;
  return typeof v === "function" ? v : undefined;
}

/** CrossGuard's preview error for a read of an unknown value (see `unknownCheckingProxy`). */
function isUnknownValueError(e: unknown): e is Error {
  return e instanceof Error && e.constructor.name === "UnknownValueError";
}

export interface RunOptions {
  readonly config?: PolicyPackConfig;
  /** Skip stack policies (the CLI over plain manifests has no stack). */
  readonly resourcesOnly?: boolean;
  /**
   * Run remediations (default true). Without them (plain manifests cannot be rewritten), a
   * remediate-level policy's violations are reported as mandatory, as CrossGuard does for
   * violations that survive remediation.
   */
  readonly remediate?: boolean;
}

/**
 * Runs every policy over the resources and returns the violations, in resource order. Throws a
 * `PolicyConfigError` when the config does not match the pack (e.g. an exemption without a reason).
 */
export async function runPolicies(
  policies: Policies,
  resources: readonly ResourceRecord[],
  options: RunOptions = {},
): Promise<Violation[]> {
  const problems = validatePackConfig(policies, options.config);
  if (problems.length > 0) throw new PolicyConfigError(problems);
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
  const runRemediations = options.remediate !== false;

  const argsFor = (r: ResourceRecord, props: Record<string, unknown>, config: Record<string, unknown>) => {
    const args: ResourceValidationArgs = {
      type: r.type,
      props,
      urn: r.urn,
      name: r.name,
      opts: optionsOf(r),
      stackTags,
      isType: (cls) => isTypeOf(r.type, cls),
      asType: ((cls: unknown) =>
        isTypeOf(r.type, cls) ? args.props : undefined) as ResourceValidationArgs["asType"],
      getConfig: <T extends object>() => config as T,
      notApplicable: throwNotApplicable,
    };
    return args;
  };
  const previewNote = (policy: string, urn: string, e: Error) =>
    violations.push({
      policy,
      level: "advisory",
      urn,
      message: `can't run policy '${policy}' during preview: ${e.message}`,
    });

  for (const r of resources) {
    let props = r.inputs;
    // Remediations first, all of them, each seeing the previous one's result (as the engine does).
    if (runRemediations) {
      for (const { policy, level, props: config } of resourcePolicies) {
        if (level !== "remediate" || !policy.remediateResource) continue;
        try {
          const fixed = (await policy.remediateResource(argsFor(r, props, config))) as
            Record<string, unknown> | undefined;
          if (fixed) {
            props = fixed;
            remediated.set(r.urn, fixed);
            violations.push({
              policy: policy.name,
              level: "remediate",
              urn: r.urn,
              message: `remediated: ${policy.description}`,
            });
          }
        } catch (e) {
          if (isUnknownValueError(e)) previewNote(policy.name, r.urn, e);
          else if (!(e instanceof NotApplicableError)) throw e;
        }
      }
    }
    for (const { policy, level, props: config } of resourcePolicies) {
      // A violation that survives remediation is reported as mandatory, as CrossGuard does.
      const effective: ViolationLevel = level === "disabled" || level === "remediate" ? "mandatory" : level;
      const validations = policy.validateResource
        ? Array.isArray(policy.validateResource)
          ? policy.validateResource
          : [policy.validateResource]
        : [];
      for (const validate of validations) {
        try {
          await validate(argsFor(r, props, config), (message, urn) =>
            violations.push({ policy: policy.name, level: effective, urn: urn ?? r.urn, message }),
          );
        } catch (e) {
          if (isUnknownValueError(e)) previewNote(policy.name, r.urn, e);
          else if (!(e instanceof NotApplicableError)) throw e;
        }
      }
    }
  }

  if (options.resourcesOnly) return violations;

  const stackPolicies = active.flatMap((r) => {
    const validateStack = stackPartOf(r.policy);
    return validateStack ? [{ ...r, validateStack }] : [];
  });
  if (stackPolicies.length === 0) return violations;
  const policyResources = toPolicyResources(resources, remediated);
  for (const { policy, level, props: config, validateStack } of stackPolicies) {
    const args: StackValidationArgs = {
      resources: policyResources,
      stackTags,
      getConfig: <T extends object>() => config as T,
      notApplicable: throwNotApplicable,
    };
    const effective: ViolationLevel = level === "disabled" || level === "remediate" ? "mandatory" : level;
    try {
      await validateStack(args, (message, urn) =>
        violations.push({ policy: policy.name, level: effective, urn: urn ?? "", message }),
      );
    } catch (e) {
      if (isUnknownValueError(e)) previewNote(policy.name, "", e);
      else if (!(e instanceof NotApplicableError)) throw e;
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
