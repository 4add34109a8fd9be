/**
 * Shared config schema pieces (exemptions, allowlists) and validation of a policy-pack config file
 * (the `--policy-pack-config` format): unknown policies, bad levels, and config values that do not
 * match a policy's schema — notably an exemption without a `reason` — are errors.
 */
import type { EnforcementLevel, Policies, PolicyConfigSchema, PolicyPackConfig } from "@pulumi/policy";
import { globMatch } from "./values";

export type JSONSchema = PolicyConfigSchema["properties"][string];

export interface Exemption {
  readonly namespace?: string;
  readonly name?: string;
  readonly type?: string;
  /**
   * A container name (glob) inside the matched resource: only that container is exempt, from the
   * rules that judge containers one by one (probes, resources, Pod Security).
   */
  readonly container?: string;
  readonly reason: string;
}

export const EXEMPTIONS_SCHEMA: JSONSchema = {
  type: "array",
  description:
    "Resources the policy does not apply to: each entry matches a namespace, a name (Pulumi or metadata name, globs allowed) and/or a type token, optionally narrowed to one container of it, and must say why.",
  items: {
    type: "object",
    properties: {
      namespace: { type: "string", minLength: 1 },
      name: { type: "string", minLength: 1 },
      type: { type: "string", minLength: 1 },
      container: { type: "string", minLength: 1 },
      reason: { type: "string", minLength: 3 },
    },
    required: ["reason"],
    additionalProperties: false,
  },
  default: [],
};

export const stringList = (description: string, def: readonly string[] = []): JSONSchema => ({
  type: "array",
  items: { type: "string" },
  description,
  default: [...def],
});

export const ENVIRONMENT_SCHEMA: JSONSchema = {
  type: "string",
  enum: ["local", "dev", "staging", "prod"],
  description: "The stack's environment.",
  default: "dev",
};

export interface ExemptionSubject {
  readonly type: string;
  readonly name: string;
  readonly namespace?: string;
  readonly objectName?: string;
  /** Set when asking about one container; unset, container-narrowed exemptions never match. */
  readonly container?: string;
}

/** The exemption that applies to a resource (or to one of its containers), if any. */
export function findExemption(
  exemptions: readonly Exemption[] | undefined,
  s: ExemptionSubject,
): Exemption | undefined {
  if (!exemptions || exemptions.length === 0) return undefined;
  return exemptions.find((e) => {
    if (e.namespace === undefined && e.name === undefined && e.type === undefined) return false;
    if (e.container !== undefined && (s.container === undefined || !globMatch(e.container, s.container)))
      return false;
    if (e.type !== undefined && !globMatch(e.type, s.type)) return false;
    if (e.namespace !== undefined && (s.namespace === undefined || !globMatch(e.namespace, s.namespace)))
      return false;
    if (
      e.name !== undefined &&
      !globMatch(e.name, s.name) &&
      (s.objectName === undefined || !globMatch(e.name, s.objectName))
    ) {
      return false;
    }
    return true;
  });
}

const LEVELS: readonly EnforcementLevel[] = ["advisory", "mandatory", "remediate", "disabled"];

function typeOfJson(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

/** Validates `value` against the subset of JSON Schema the pack uses. */
export function validateJsonSchema(value: unknown, schema: JSONSchema | boolean, at: string): string[] {
  if (typeof schema === "boolean") return schema ? [] : [`${at}: not allowed`];
  const errors: string[] = [];
  const actual = typeOfJson(value);
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const ok = types.some((t) => t === actual || (t === "number" && actual === "integer"));
    if (!ok) return [`${at}: expected ${types.join(" or ")}, got ${actual}`];
  }
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    errors.push(`${at}: must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(", ")}`);
  }
  if (typeof value === "string" && schema.minLength !== undefined && value.length < schema.minLength) {
    errors.push(`${at}: must be at least ${schema.minLength} characters`);
  }
  if (typeof value === "number") {
    if (schema.minimum !== undefined && value < schema.minimum)
      errors.push(`${at}: must be >= ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum)
      errors.push(`${at}: must be <= ${schema.maximum}`);
  }
  if (Array.isArray(value) && schema.items !== undefined && !Array.isArray(schema.items)) {
    const items = schema.items;
    value.forEach((v, i) => errors.push(...validateJsonSchema(v, items, `${at}[${i}]`)));
  }
  if (actual === "object") {
    const o = value as Record<string, unknown>;
    for (const req of schema.required ?? []) {
      if (o[req] === undefined) errors.push(`${at}: missing required "${req}"`);
    }
    for (const [k, v] of Object.entries(o)) {
      const sub = schema.properties?.[k];
      if (sub !== undefined) errors.push(...validateJsonSchema(v, sub, `${at}.${k}`));
      else if (schema.additionalProperties === false) errors.push(`${at}: unknown property "${k}"`);
      else if (schema.additionalProperties !== undefined && typeof schema.additionalProperties === "object") {
        errors.push(...validateJsonSchema(v, schema.additionalProperties, `${at}.${k}`));
      }
    }
  }
  return errors;
}

/** Problems in a policy-pack config (empty when valid). */
export function validatePackConfig(policies: Policies, config: PolicyPackConfig | undefined): string[] {
  if (config === undefined) return [];
  if (typeof config !== "object" || config === null || Array.isArray(config))
    return ["config: expected an object"];
  const byName = new Map(policies.map((p) => [p.name, p]));
  const errors: string[] = [];
  for (const [name, entry] of Object.entries(config)) {
    const policy = byName.get(name);
    if (!policy && name !== "all") {
      errors.push(`${name}: no such policy in the pack`);
      continue;
    }
    if (typeof entry === "string") {
      if (!LEVELS.includes(entry)) errors.push(`${name}: unknown enforcement level "${entry}"`);
      continue;
    }
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      errors.push(`${name}: expected an enforcement level or an object`);
      continue;
    }
    const { enforcementLevel, ...props } = entry as { enforcementLevel?: unknown } & Record<string, unknown>;
    if (enforcementLevel !== undefined && !LEVELS.includes(enforcementLevel as EnforcementLevel)) {
      errors.push(`${name}: unknown enforcement level ${JSON.stringify(enforcementLevel)}`);
    }
    if (!policy) continue;
    const schema: JSONSchema = {
      type: "object",
      properties: policy.configSchema?.properties ?? {},
      required: policy.configSchema?.required ?? [],
      additionalProperties: false,
    };
    errors.push(...validateJsonSchema(props, schema, name));
  }
  return errors;
}

export class PolicyConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`invalid policy-pack config: ${problems.join("; ")}`);
    this.name = "PolicyConfigError";
  }
}
