/**
 * The canary hunt: every planted secret (stack secret keys and generated credentials) must appear
 * only inside a secret sink and only as a Pulumi secret. Anywhere else (a ConfigMap, an env literal,
 * chart values, an annotation, a plain stack output) it is a leak.
 */
import { isSecretSink } from "../../policies/lib/sinks";
import { GENERATED_SECRET_TYPES, generatedCanary, isSecretWrapped, type Registration } from "./recorder";
import { CANARY_PREFIX } from "./stack-config";

export interface SecretLeak {
  /** The config key (or `generated:<resource>`) whose value leaked. */
  readonly key: string;
  readonly urn: string;
  /** Where: `inputs.data.token`, `outputs.kubeconfig`, ... (`(not marked secret)` when in a sink but plain). */
  readonly path: string;
}

const CANARY_RE = new RegExp(`${CANARY_PREFIX}-[A-Za-z0-9_.:-]+?-(?:[0-9a-f]{24}|[0-9a-f]{16})`, "g");

function keyOf(canary: string, canaries: ReadonlyMap<string, string>): string {
  const known = canaries.get(canary);
  if (known) return known;
  const generated = /^pfcanary-generated-(.+)-[0-9a-f]{16}$/.exec(canary);
  return generated ? `generated:${generated[1]}` : canary;
}

function fmt(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

function walk(
  value: unknown,
  path: (string | number)[],
  secret: boolean,
  visit: (s: string, path: (string | number)[], secret: boolean) => void,
): void {
  if (typeof value === "string") {
    if (value.includes(CANARY_PREFIX)) visit(value, path, secret);
  } else if (isSecretWrapped(value)) {
    walk(value.value, path, true, visit);
  } else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) walk(value[i], [...path, i], secret, visit);
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) walk(v, [...path, k], secret, visit);
  }
}

/**
 * The parts of base64 text that encode a canary whatever bytes surround it: for each of the three
 * alignments, the encoding minus the groups shared with neighbouring bytes.
 */
export function base64Cores(canary: string): string[] {
  const bytes = Buffer.from(canary);
  const cores: string[] = [];
  for (let pad = 0; pad < 3; pad++) {
    const text = Buffer.concat([Buffer.alloc(pad), bytes]).toString("base64");
    const start = pad === 0 ? 0 : 4;
    const end = (pad + bytes.length) % 3 === 0 ? text.length : text.length - 4;
    cores.push(text.slice(start, end));
  }
  return cores;
}

/** The first characters of a base64 core: every canary begins with the prefix, so one alignment's cores share them. */
const headOf = (core: string) => core.slice(0, 8);

function base64Variants(canaries: Iterable<string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of canaries) for (const core of base64Cores(c)) out.set(core, c);
  return out;
}

export function huntCanaries(
  registrations: readonly Registration[],
  canaries: ReadonlyMap<string, string>,
  plainInputs: (r: Registration) => Record<string, unknown>,
  /**
   * Charts the render mode expanded. A secret value in their values is followed to where the
   * chart puts it (the rendered objects are hunted like any other), so it is not a leak by itself
   * while it stays marked secret; unrendered charts keep the conservative rule.
   */
  renderedCharts: ReadonlySet<string> = new Set(),
): SecretLeak[] {
  const leaks: SecretLeak[] = [];
  // Generated credentials are canaries too: their values are known from the resource names.
  const generated = registrations
    .filter((r) => GENERATED_SECRET_TYPES.has(r.type))
    .map((r) => generatedCanary(r.name));
  const encoded = base64Variants([...canaries.keys(), ...generated]);
  // Canaries share their prefix, so their encodings share a few heads: a text holding none of
  // those holds no encoded canary, found with a handful of scans instead of one per encoding.
  const encodedHeads = new Set([...encoded.keys()].map(headOf));
  for (const r of registrations) {
    let plain: Record<string, unknown> | undefined;
    const seen = new Set<string>();
    const report = (key: string, path: string) => {
      const id = `${key}\u0000${path}`;
      if (!seen.has(id)) leaks.push({ key, urn: r.urn, path });
      seen.add(id);
    };
    const rendered = renderedCharts.has(r.urn);
    // Every string the walk visits is in the JSON text (the prefix needs no escaping), so a text
    // without the prefix holds no canary: the walk of a big CRD would find nothing.
    const text = encoded.size > 0 ? JSON.stringify(r.inputs) : undefined;
    if (text === undefined || text.includes(CANARY_PREFIX))
      walk(r.inputs, [], false, (s, path, secret) => {
        if (rendered && secret && path[0] === "values") return;
        plain ??= plainInputs(r);
        const sink = isSecretSink(r.type, path, plain);
        for (const m of s.matchAll(CANARY_RE)) {
          if (!sink) report(keyOf(m[0], canaries), fmt(["inputs", ...path]));
          else if (!secret) report(keyOf(m[0], canaries), `${fmt(["inputs", ...path])} (not marked secret)`);
        }
      });
    // Outputs land in the state file: a canary there must always be a secret.
    walk(r.outputs, [], false, (s, path, secret) => {
      if (secret) return;
      for (const m of s.matchAll(CANARY_RE)) report(keyOf(m[0], canaries), fmt(["outputs", ...path]));
    });
    // A base64-encoded canary outside a sink (e.g. ConfigMap binaryData) is a leak too.
    if (text !== undefined) {
      const heads = new Set([...encodedHeads].filter((h) => text.includes(h)));
      for (const [b64, canary] of encoded) {
        if (!heads.has(headOf(b64)) || !text.includes(b64)) continue;
        plain ??= plainInputs(r);
        const hit = findEncoded(r.inputs, b64);
        if (hit && !isSecretSink(r.type, hit, plain))
          report(keyOf(canary, canaries), `${fmt(["inputs", ...hit])} (base64)`);
      }
    }
  }
  return leaks;
}

function findEncoded(
  value: unknown,
  needle: string,
  path: (string | number)[] = [],
): (string | number)[] | undefined {
  if (typeof value === "string") return value.includes(needle) ? path : undefined;
  if (isSecretWrapped(value)) return findEncoded(value.value, needle, path);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const hit = findEncoded(value[i], needle, [...path, i]);
      if (hit) return hit;
    }
  } else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      const hit = findEncoded(v, needle, [...path, k]);
      if (hit) return hit;
    }
  }
  return undefined;
}
