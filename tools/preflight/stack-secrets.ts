/**
 * Credentials committed in plain text in a stack file. `Pulumi.<stack>.yaml` is in git: a value
 * that should have been `pulumi config set --secret` is a leak the moment it is pushed, whatever
 * the program does with it. Two kinds: a key the schema declares secret given without `secure:`,
 * and any other value the pack's content detectors take for a credential (a token format, a PEM
 * key, a high-entropy literal under a secret-like name, a URL with a password).
 */
import { detectInString, DEFAULT_ENTROPY } from "../../policies/lib/secrets";

export interface PlaintextSecret {
  /** The full config key (`platform:githubToken`). */
  readonly key: string;
  /** Where inside the key's value (`servers[0].password`), "" for the value itself. */
  readonly path: string;
  /** The same path as segments ([] for the value itself). */
  readonly at: readonly (string | number)[];
  /** What was recognised, never the value. */
  readonly what: string;
}

const isSecure = (v: unknown) =>
  v !== null && typeof v === "object" && !Array.isArray(v) && Object.keys(v).join() === "secure";

function pathText(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

/** Every string leaf of a config value with its path and the nearest name above it. */
function* leaves(
  v: unknown,
  path: (string | number)[],
  name: string,
): Generator<{ value: string; path: (string | number)[]; name: string }> {
  if (typeof v === "string") yield { value: v, path, name };
  else if (Array.isArray(v)) for (const [i, x] of v.entries()) yield* leaves(x, [...path, i], name);
  else if (v !== null && typeof v === "object" && !isSecure(v))
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) yield* leaves(x, [...path, k], k);
}

/**
 * The plain-text credentials of a stack file's `config:` map. `secretKeys` are the full keys the
 * schema declares secret (`platform:githubToken`).
 */
export function plaintextSecrets(
  config: Readonly<Record<string, unknown>>,
  secretKeys: ReadonlySet<string>,
): PlaintextSecret[] {
  const out: PlaintextSecret[] = [];
  for (const [key, value] of Object.entries(config)) {
    if (isSecure(value)) continue;
    if (secretKeys.has(key)) {
      if (value !== null && value !== undefined && value !== "")
        out.push({ key, path: "", at: [], what: "a value the schema declares secret" });
      continue;
    }
    const keyName = key.slice(key.indexOf(":") + 1);
    for (const leaf of leaves(value, [], keyName)) {
      const hit = detectInString(leaf.value, leaf.name, DEFAULT_ENTROPY);
      if (hit) out.push({ key, path: pathText(leaf.path), at: leaf.path, what: hit.message });
    }
  }
  return out;
}

/** One line for a finding: the key, what it holds, and the fix. Never the value. */
export function describePlaintextSecret(stackFile: string, s: PlaintextSecret): string {
  const where = s.path ? `${s.key} (at ${s.path})` : s.key;
  const fix = s.path
    ? `move it to a key of its own set with \`pulumi config set --secret\``
    : `run \`pulumi config set --secret ${s.key} <value>\``;
  return `${stackFile}: ${where} holds ${s.what} in plain text, committed with the stack file; ${fix}, and rotate the credential (it is in git history)`;
}

/** `value` with the leaf at `at` replaced (copy-on-write; the stack file's parse is not touched). */
export function replaceAt(value: unknown, at: readonly (string | number)[], leaf: string): unknown {
  if (at.length === 0) return leaf;
  const [head, ...rest] = at;
  if (Array.isArray(value))
    return (value as unknown[]).map((x, i) => (i === head ? replaceAt(x, rest, leaf) : x));
  const o = value as Record<string, unknown>;
  return { ...o, [head!]: replaceAt(o[head!], rest, leaf) };
}

/**
 * The same search over a stack file's text, line by line, for when it does not parse as YAML:
 * each `key: value` line whose value the detectors take for a credential, by line number (the
 * file is in git whether or not it parses).
 */
export function plaintextSecretLines(text: string): { line: number; key: string; what: string }[] {
  const out: { line: number; key: string; what: string }[] = [];
  text.split("\n").forEach((raw, i) => {
    const m = /^\s*-?\s*([^\s#][^#]*?):\s+(.+?)\s*$/.exec(raw);
    if (!m || m[2]!.startsWith("#")) return;
    const key = m[1]!.replace(/^["']|["']$/g, "");
    const value = m[2]!.replace(/^["']|["']$/g, "");
    const hit = detectInString(value, key.slice(key.indexOf(":") + 1), DEFAULT_ENTROPY);
    if (hit) out.push({ line: i + 1, key, what: hit.message });
  });
  return out;
}
