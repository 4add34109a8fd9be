/**
 * Runs one policy the way the CrossGuard analyzer does (see @pulumi/policy's server.ts): props
 * behind the unknown-checking proxy (reads of preview unknowns throw `UnknownValueError`, which
 * the engine downgrades to an advisory note), remediation props behind the secrets-preserving
 * proxy, `getConfig()` returning the policy's config with schema defaults merged in, and
 * `notApplicable()` throwing.
 */
import * as policyPkg from "@pulumi/policy";
import type {
  PolicyPackConfig,
  PolicyResource,
  ResourceValidationArgs,
  ResourceValidationPolicy,
  StackValidationArgs,
  StackValidationPolicy,
} from "@pulumi/policy";
import { secretsPreservingProxy } from "@pulumi/policy/secret";
import { policies } from "../rules";
import { resolvePolicyConfig, runPolicies, type ResourceRecord, type Violation } from "../lib/runner";
import { UNKNOWN, type Obj } from "../lib/values";

const { unknownCheckingProxy } = policyPkg as unknown as { unknownCheckingProxy: <T>(o: T) => T };

export type AnyPolicy = ResourceValidationPolicy & Partial<StackValidationPolicy>;

export function policyNamed(name: string): AnyPolicy {
  const p = policies.find((x) => x.name === name);
  if (!p) throw new Error(`no policy named ${name}`);
  return p;
}

class NotApplicable extends Error {}

export interface TestResource {
  readonly type: string;
  readonly props: Obj;
  readonly name?: string;
  readonly protect?: boolean;
  readonly parent?: string;
}

export interface RunOpts {
  /** Policy config (the policy's entry in a policy-pack config: level string or object). */
  readonly config?: PolicyPackConfig[string];
  /** Paths whose values are unknown, as during `pulumi preview`. */
  readonly unknown?: readonly (readonly (string | number)[])[];
  /** Paths whose values are Pulumi secrets (remediation must keep them secret). */
  readonly secrets?: readonly (readonly (string | number)[])[];
}

export interface ValidateResult {
  readonly violations: string[];
  readonly notApplicable?: string;
  /** Advisory notes the engine emits when a policy reads an unknown value. */
  readonly previewNotes: string[];
}

function setAt(root: Obj, path: readonly (string | number)[], fn: (v: unknown) => unknown): void {
  let cur: Record<string | number, unknown> = root;
  path.forEach((seg, i) => {
    if (i === path.length - 1) cur[seg] = fn(cur[seg]);
    else cur = cur[seg] as Record<string | number, unknown>;
  });
}

function prepare(props: Obj, opts: RunOpts): Obj {
  const copy = structuredClone(props);
  for (const p of opts.unknown ?? []) setAt(copy, p, () => UNKNOWN);
  for (const p of opts.secrets ?? []) setAt(copy, p, (v) => new policyPkg.Secret(v));
  return copy;
}

function configOf(policy: AnyPolicy, opts: RunOpts): Record<string, unknown> {
  const packConfig: PolicyPackConfig = opts.config === undefined ? {} : { [policy.name]: opts.config };
  return resolvePolicyConfig(policy, packConfig).props;
}

function argsOf(policy: AnyPolicy, r: TestResource, props: Obj, opts: RunOpts): ResourceValidationArgs {
  const config = configOf(policy, opts);
  return {
    type: r.type,
    props,
    urn: `urn:pulumi:test::platform::${r.type}::${r.name ?? "res"}`,
    name: r.name ?? "res",
    opts: {
      protect: r.protect ?? false,
      ignoreChanges: [],
      aliases: [],
      customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
      additionalSecretOutputs: [],
    },
    stackTags: new Map(),
    isType: () => false,
    asType: () => undefined,
    getConfig: <T extends object>() => config as T,
    notApplicable: (reason?: string): never => {
      throw new NotApplicable(reason ?? "not applicable");
    },
  };
}

function isUnknownValueError(e: unknown): e is Error {
  return e instanceof Error && e.constructor.name === "UnknownValueError";
}

/** Validates one resource with one policy, as the analyzer's `analyze` call does. */
export async function validate(name: string, r: TestResource, opts: RunOpts = {}): Promise<ValidateResult> {
  const policy = policyNamed(name);
  const violations: string[] = [];
  const previewNotes: string[] = [];
  let notApplicable: string | undefined;
  const validations = policy.validateResource
    ? Array.isArray(policy.validateResource)
      ? policy.validateResource
      : [policy.validateResource]
    : [];
  for (const v of validations) {
    const props = unknownCheckingProxy(prepare(r.props, { ...opts, secrets: [] }));
    try {
      await v(argsOf(policy, r, props, opts), (m) => violations.push(m));
    } catch (e) {
      if (e instanceof NotApplicable) notApplicable = e.message;
      else if (isUnknownValueError(e)) previewNotes.push(e.message);
      else throw e;
    }
  }
  return { violations, previewNotes, ...(notApplicable !== undefined ? { notApplicable } : {}) };
}

export interface RemediateResult {
  /** Remediated props (proxies and secrets unwrapped), or undefined when nothing changed. */
  readonly props?: Obj;
  /** Paths that are still secrets in the result. */
  readonly secretPaths: string[];
  readonly notApplicable?: string;
}

function serialize(v: unknown, path: string, secrets: string[]): unknown {
  if (v === null || typeof v !== "object") return v;
  const target = (v as Obj)["__isSpecialProxy"] === true ? (v as Obj)["__getSpecialProxyTarget"] : v;
  if (target !== v) return serialize(target, path, secrets);
  if (v instanceof policyPkg.Secret) {
    secrets.push(path);
    return serialize(v.value, path, secrets);
  }
  if (Array.isArray(v)) return v.map((x, i) => serialize(x, `${path}[${i}]`, secrets));
  const out: Obj = {};
  for (const [k, x] of Object.entries(v as Obj)) out[k] = serialize(x, path ? `${path}.${k}` : k, secrets);
  return out;
}

/** Remediates one resource with one policy, as the analyzer's `remediate` call does. */
export async function remediate(name: string, r: TestResource, opts: RunOpts = {}): Promise<RemediateResult> {
  const policy = policyNamed(name);
  if (!policy.remediateResource) throw new Error(`${name} has no remediation`);
  const props = unknownCheckingProxy(secretsPreservingProxy(prepare(r.props, opts)) as Obj);
  try {
    const result = (await policy.remediateResource(argsOf(policy, r, props, opts))) as Obj | undefined;
    if (!result) return { secretPaths: [] };
    const secretPaths: string[] = [];
    return { props: serialize(result, "", secretPaths) as Obj, secretPaths };
  } catch (e) {
    if (e instanceof NotApplicable) return { secretPaths: [], notApplicable: e.message };
    throw e;
  }
}

/** Runs a policy's stack validation over resources, as `analyzeStack` does. */
export async function validateStack(
  name: string,
  resources: readonly TestResource[],
  opts: RunOpts = {},
): Promise<{ violations: { message: string; urn?: string }[]; notApplicable?: string }> {
  const policy = policyNamed(name);
  if (!policy.validateStack) throw new Error(`${name} has no stack validation`);
  const config = configOf(policy, opts);
  const prs: PolicyResource[] = resources.map((r, i) => ({
    type: r.type,
    props: unknownCheckingProxy(prepare(r.props, {})),
    urn: `urn:pulumi:test::platform::${r.type}::${r.name ?? `res${i}`}`,
    name: r.name ?? `res${i}`,
    opts: {
      protect: r.protect ?? false,
      ignoreChanges: [],
      aliases: [],
      customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
      additionalSecretOutputs: [],
    },
    dependencies: [],
    propertyDependencies: {},
    isType: () => false,
    asType: () => undefined,
  }));
  const violations: { message: string; urn?: string }[] = [];
  const args: StackValidationArgs = {
    resources: prs,
    stackTags: new Map(),
    getConfig: <T extends object>() => config as T,
    notApplicable: (reason?: string): never => {
      throw new NotApplicable(reason ?? "not applicable");
    },
  };
  try {
    await policy.validateStack(args, (message, urn) => violations.push({ message, ...(urn ? { urn } : {}) }));
  } catch (e) {
    if (e instanceof NotApplicable) return { violations, notApplicable: e.message };
    throw e;
  }
  return { violations };
}

/** Runs the whole pack over records through the shared runner. */
export function runPack(records: readonly ResourceRecord[], config?: PolicyPackConfig): Promise<Violation[]> {
  return runPolicies(policies, records, config ? { config } : {});
}

export const record = (
  type: string,
  name: string,
  inputs: Obj,
  extra: Partial<ResourceRecord> = {},
): ResourceRecord => ({
  urn: `urn:pulumi:test::platform::${type}::${name}`,
  type,
  name,
  inputs,
  ...extra,
});
