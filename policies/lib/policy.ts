/**
 * How the pack's rules are declared: one `defineResourcePolicy` / `defineStackPolicy` per rule,
 * which adds the shared `exemptions` config, reads inputs without tripping over preview unknowns,
 * and turns a matching exemption into `notApplicable`.
 */
import type {
  EnforcementLevel,
  PolicyResource,
  ReportViolation,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  Severity,
  StackValidationArgs,
  StackValidationPolicy,
} from "@pulumi/policy";
import { EXEMPTIONS_SCHEMA, findExemption, type Exemption, type JSONSchema } from "./config";
import { namespaceOf, objectNameOf } from "./k8s";
import { raw, type Obj } from "./values";

export interface BaseConfig {
  readonly exemptions?: readonly Exemption[];
}

export interface ResourceContext<C> {
  readonly type: string;
  /** Pulumi resource name (for the CLI: the object's name or the Dockerfile path). */
  readonly name: string;
  readonly urn: string;
  /** Inputs with CrossGuard's proxies removed; preview unknowns are sentinel strings. */
  readonly props: Obj;
  readonly config: C & BaseConfig;
  /** Kubernetes namespace (`default` when unset) for namespaced objects and charts. */
  readonly namespace: string | undefined;
  readonly objectName: string | undefined;
  readonly args: ResourceValidationArgs;
  /** The exemption narrowed to this container of the resource, if any (rules that judge containers). */
  readonly containerExemption: (container: string) => Exemption | undefined;
}

interface PolicyMeta {
  readonly name: string;
  readonly description: string;
  readonly enforcementLevel: EnforcementLevel;
  readonly severity: Severity;
  readonly remediationSteps: string;
  readonly tags?: string[];
  /** Config properties besides the shared `exemptions`. */
  readonly config?: Record<string, JSONSchema>;
}

export interface ResourcePolicyDef<C> extends PolicyMeta {
  /** Cheap type filter; resources it rejects are `notApplicable` (keeps the hot path short). */
  readonly appliesTo: (type: string, props: Obj) => boolean;
  readonly validate: (ctx: ResourceContext<C>, report: (message: string) => void) => void | Promise<void>;
  /** Returns remediated inputs, or undefined when nothing needs to change. */
  readonly remediate?: (ctx: ResourceContext<C>) => Obj | undefined;
  /** Optional stack-wide part of the same rule (run by `pulumi preview`, skipped by the CLI). */
  readonly validateStack?: (ctx: StackContext<C>, report: ReportViolation) => void | Promise<void>;
}

export interface StackContext<C> {
  readonly resources: readonly PolicyResource[];
  readonly config: C & BaseConfig;
  readonly args: StackValidationArgs;
  /** Raw inputs of a stack resource. */
  readonly propsOf: (r: PolicyResource) => Obj;
  readonly exemptionOf: (r: PolicyResource) => Exemption | undefined;
}

function schemaOf(meta: PolicyMeta) {
  return { properties: { ...(meta.config ?? {}), exemptions: EXEMPTIONS_SCHEMA } };
}

function contextOf<C>(args: ResourceValidationArgs, props: Obj): ResourceContext<C> {
  const base = {
    type: args.type,
    name: args.name,
    urn: args.urn,
    props,
    config: args.getConfig<C & BaseConfig>(),
    namespace: namespaceOf(args.type, props),
    objectName: objectNameOf(props),
    args,
  };
  return { ...base, containerExemption: (container) => exemptionFor({ ...base, container }) };
}

function exemptionFor(ctx: {
  type: string;
  name: string;
  namespace?: string | undefined;
  objectName?: string | undefined;
  container?: string;
  config: BaseConfig;
}) {
  return findExemption(ctx.config.exemptions, {
    type: ctx.type,
    name: ctx.name,
    ...(ctx.namespace !== undefined ? { namespace: ctx.namespace } : {}),
    ...(ctx.objectName !== undefined ? { objectName: ctx.objectName } : {}),
    ...(ctx.container !== undefined ? { container: ctx.container } : {}),
  });
}

export type PackPolicy = ResourceValidationPolicy & {
  validateStack?: StackValidationPolicy["validateStack"];
};

function stackContext<C>(args: StackValidationArgs): StackContext<C> {
  const config = args.getConfig<C & BaseConfig>();
  const cache = new Map<PolicyResource, Obj>();
  const propsOf = (r: PolicyResource): Obj => {
    let p = cache.get(r);
    if (!p) {
      p = raw(r.props);
      cache.set(r, p);
    }
    return p;
  };
  return {
    resources: args.resources,
    config,
    args,
    propsOf,
    exemptionOf: (r) => {
      const props = propsOf(r);
      return exemptionFor({
        type: r.type,
        name: r.name,
        namespace: namespaceOf(r.type, props),
        objectName: objectNameOf(props),
        config,
      });
    },
  };
}

export function defineResourcePolicy<C extends object = Record<string, never>>(
  def: ResourcePolicyDef<C>,
): PackPolicy {
  const policy: PackPolicy = {
    name: def.name,
    description: def.description,
    enforcementLevel: def.enforcementLevel,
    severity: def.severity,
    remediationSteps: def.remediationSteps,
    configSchema: schemaOf(def),
    ...(def.tags ? { tags: def.tags } : {}),
    // Synchronous up to the type check: not-applicable is the hot path (most resources, most rules).
    validateResource: (args, reportViolation) => {
      const props = raw(args.props);
      if (!def.appliesTo(args.type, props)) return args.notApplicable(`not a ${def.name} resource`);
      const ctx = contextOf<C>(args, props);
      const exempt = exemptionFor(ctx);
      if (exempt) return args.notApplicable(`exempt: ${exempt.reason}`);
      const result = def.validate(ctx, reportViolation);
      return result instanceof Promise ? result : undefined;
    },
  };
  if (def.remediate) {
    const remediate = def.remediate;
    policy.remediateResource = (args) => {
      const props = raw(args.props);
      if (!def.appliesTo(args.type, props)) return args.notApplicable(`not a ${def.name} resource`);
      const ctx = contextOf<C>(args, props);
      const exempt = exemptionFor(ctx);
      if (exempt) return args.notApplicable(`exempt: ${exempt.reason}`);
      return remediate(ctx);
    };
  }
  if (def.validateStack) {
    const validateStack = def.validateStack;
    policy.validateStack = (args, report) => validateStack(stackContext<C>(args), report);
  }
  return policy;
}

export interface StackPolicyDef<C> extends PolicyMeta {
  readonly validate: (ctx: StackContext<C>, report: ReportViolation) => void | Promise<void>;
}

export function defineStackPolicy<C extends object = Record<string, never>>(
  def: StackPolicyDef<C>,
): StackValidationPolicy {
  return {
    name: def.name,
    description: def.description,
    enforcementLevel: def.enforcementLevel,
    severity: def.severity,
    remediationSteps: def.remediationSteps,
    configSchema: schemaOf(def),
    ...(def.tags ? { tags: def.tags } : {}),
    validateStack: (args, report) => def.validate(stackContext<C>(args), report),
  };
}

/** Copy-on-write update of `path` inside `root` (other subtrees, secrets included, are shared). */
export function updateIn(root: Obj, path: readonly (string | number)[], fn: (v: unknown) => unknown): Obj {
  const step = (cur: unknown, i: number): unknown => {
    if (i === path.length) return fn(cur);
    const seg = path[i]!;
    if (typeof seg === "number") {
      const a = Array.isArray(cur) ? [...(cur as unknown[])] : [];
      a[seg] = step(a[seg], i + 1);
      return a;
    }
    const o = cur !== null && typeof cur === "object" && !Array.isArray(cur) ? { ...(cur as Obj) } : {};
    o[seg] = step(o[seg], i + 1);
    return o;
  };
  return step(root, 0) as Obj;
}
