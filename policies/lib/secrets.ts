/**
 * Content-based secret detection. CrossGuard cannot see whether an input is a Pulumi secret, so
 * the pack looks at the values: PEM private keys, JWTs, high-entropy strings under secret-like
 * keys (and in `key=value` / `key: value` text), and the @secretlint recommended rules. The hot
 * path is synchronous and regex-only; secretlint (async) runs once per resource, and only over
 * strings that pass a cheap candidate test (known token prefixes and shapes).
 */
import { isSecretSink, hasSecretSinks } from "./sinks";
import { formatPath, isUnknown, shannonEntropy, type Obj } from "./values";

/** Names that suggest a credential (`DB_PASSWORD`, `apiKey`, `clientSecret`, `auth`...). */
export const SECRET_KEY_RE =
  /(pass(word|wd|phrase)?|secret|token|api[_-]?key|private[_-]?key|credential|auth)/i;

/**
 * Secret-like names that are references or settings, not values (`secretKeyRef`, `tokenTTL`,
 * cert-manager's `inject-ca-from-secret: <namespace>/<name>` annotation...).
 */
export const NOT_SECRET_KEY_RE =
  /(secret_?key_?ref|from[_-]?secret$|secret_?ref|existing_?secret|secret_?names?$|secrets?_?provider|secret_?store|secret_?(mount|volume|dir|path|file)|(pass(word)?|token|user(name)?)_?key$|(names?|namespaces?|ref|refs|path|paths|file|files|dir|url|urls|uri|endpoint|endpoints|enabled|enable|mode|type|ttl|policy|policies|audiences?|issuer|headers?|expiry|expiration|duration|length|format|strategy|provider|method|methods|source|selector|template|annotations|labels|version|count|size|timeout|interval|seconds|period|_id)$|author|authority|automount|tokenreview)/i;

const keyCache = new Map<string, boolean>();

/** True for names that look like they hold a credential, excluding references and settings. */
export function isSecretLikeKey(key: string): boolean {
  let hit = keyCache.get(key);
  if (hit === undefined) {
    hit = SECRET_KEY_RE.test(key) && !NOT_SECRET_KEY_RE.test(key);
    if (keyCache.size > 20_000) keyCache.clear();
    keyCache.set(key, hit);
  }
  return hit;
}

const REFERENCE_RE =
  /^(\$\{|\$[A-Za-z_]|\{\{|\$\(|%\{|<%|ref\+|vault:|secret:|secretref:|sm:\/\/|awssm|gcpsm|azkv|op:\/\/|env:|arn:aws:(secretsmanager|ssm):)/i;
const NUMBERISH_RE = /^[-+]?\d+(\.\d+)?([a-z]{1,3}|%)?$/i;
const BOOLISH_RE = /^(true|false|yes|no|on|off|enabled?|disabled?|none|null|nil|required|optional|auto)$/i;
const URL_RE = /^[a-z][a-z0-9+.-]*:\/\//i;
const URL_WITH_CREDS_RE = /^[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:[^/\s@]+@/i;

/**
 * True when a string under a secret-like key is a literal value rather than a reference, path,
 * URL, flag, number or prose. `minLength` keeps settings like `basic` out.
 */
export function isLiteralSecretValue(v: string, minLength = 6): boolean {
  if (v.length < minLength || isUnknown(v)) return false;
  const t = v.trim();
  if (t.length < minLength) return false;
  if (NUMBERISH_RE.test(t) || BOOLISH_RE.test(t) || REFERENCE_RE.test(t)) return false;
  if (t.startsWith("/") || t.startsWith("./") || t.startsWith("~/") || t.startsWith("file:")) return false;
  if (URL_RE.test(t)) return URL_WITH_CREDS_RE.test(t);
  if (/\s/.test(t) && t.split(/\s+/).length > 3) return false;
  return true;
}

export interface EntropyOptions {
  /** Minimum Shannon entropy, bits per character. */
  readonly entropyThreshold: number;
  /** Minimum length of a value considered. */
  readonly minLength: number;
}

export const DEFAULT_ENTROPY: EntropyOptions = { entropyThreshold: 3.0, minLength: 8 };

/** A literal, long and random-looking enough to be a credential (for values under secret-like keys). */
export function looksLikeSecretValue(v: string, opts: EntropyOptions = DEFAULT_ENTROPY): boolean {
  return isLiteralSecretValue(v, opts.minLength) && shannonEntropy(v) >= opts.entropyThreshold;
}

/**
 * A PEM private key: the BEGIN line, optional headers (`Proc-Type:`), then a base64 body, with real
 * or escaped (`\n`) line breaks. The body is required: CRD descriptions and docs show the armour
 * around a placeholder (`-----BEGIN PRIVATE KEY-----\n<private-key>\n...`), which is no key.
 */
export const PRIVATE_KEY_RE =
  /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:\s|\\[rn])*(?:[A-Za-z-]+:[^\n\\]*(?:\s|\\[rn])+)*[A-Za-z0-9+/=]{16}/;
export const JWT_RE = /(?:^|[^A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}/;
/** `password=...`, `"api_key": "..."`, `TOKEN: ...` inside text (config files, scripts). */
const ASSIGNMENT_HINT_RE = /pass|secret|token|api[_-]?key|private[_-]?key|credential/i;
const ASSIGNMENT_RE =
  /([A-Za-z0-9_.-]*(?:pass(?:word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential)[A-Za-z0-9_.-]*)["']?[ \t]*(?:=|:)[ \t]*["']?([^\s"',;}]+)/gi;
/** Cheap pre-filter for the secretlint recommended rules (token prefixes, key blocks, URLs with credentials). */
export const SECRETLINT_CANDIDATE_RE =
  /(?:A3T[A-Z0-9]|AKIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ASIA)[A-Z0-9]{16}|aws_secret|_authToken|npm_[A-Za-z0-9]{30}|:\/\/[^\s/:@]+:[^\s/@]+@|xox[abposr]-|xapp-|hooks\.slack\.com|SG\.[\w-]{10,}\.|shp(?:pa|ca|at|ss)_|gh[pousr]_[A-Za-z0-9_]{30}|github_pat_|sk-[A-Za-z0-9_-]{20}|lin_api_|ops_ey|private_key|PRIVATE KEY/;

export type SecretDetector =
  "private-key" | "jwt" | "url-credentials" | "entropy" | "assignment" | `secretlint:${string}`;

/**
 * A URL carrying a password in its userinfo (`scheme://user:password@host`). The password must be
 * a literal: `${VAR}`, `$(cmd)`, `<password>`, `{{ .x }}` and `***` stand for one.
 */
const URL_USERINFO_RE = /[a-z][a-z0-9+.-]*:\/\/[^\s/:@]+:([^\s/@]+)@[^\s/@]/gi;
const PLACEHOLDER_PASSWORD_RE = /^(?:\$|<|\{\{|%\{|\*+$|x+$)/i;

function urlCredentials(value: string): boolean {
  if (!value.includes("://") || !value.includes("@")) return false;
  URL_USERINFO_RE.lastIndex = 0;
  for (let m = URL_USERINFO_RE.exec(value); m; m = URL_USERINFO_RE.exec(value))
    if (!PLACEHOLDER_PASSWORD_RE.test(m[1]!)) return true;
  return false;
}

export interface SecretFinding {
  readonly path: readonly (string | number)[];
  readonly detector: SecretDetector;
  /** Human description, never containing the value. */
  readonly message: string;
}

export interface ScanOptions extends EntropyOptions {
  /** Values matching any of these are ignored (public keys, known fixtures...). */
  readonly allowPatterns?: readonly RegExp[];
  /** Run the @secretlint recommended rules over candidates (default true). */
  readonly secretlint?: boolean;
  /** Path prefix for findings. */
  readonly basePath?: readonly (string | number)[];
  /** Skip this subtree (secret sinks). */
  readonly skip?: (path: readonly (string | number)[]) => boolean;
}

/** Synchronous detectors over one string; `key` is the nearest secret-relevant name, if any. */
export function detectInString(
  value: string,
  key: string | undefined,
  opts: EntropyOptions,
): { detector: SecretDetector; message: string } | undefined {
  if (value.length < 8 || isUnknown(value)) return undefined;
  if (value.includes("PRIVATE KEY") && PRIVATE_KEY_RE.test(value))
    return { detector: "private-key", message: "a PEM private key" };
  if (value.includes("eyJ") && JWT_RE.test(value)) return { detector: "jwt", message: "a JSON Web Token" };
  if (urlCredentials(value))
    return { detector: "url-credentials", message: "a URL with a password in it (user:password@)" };
  if (key !== undefined && isSecretLikeKey(key) && looksLikeSecretValue(value, opts)) {
    return { detector: "entropy", message: `a high-entropy literal under secret-like key "${key}"` };
  }
  if (value.length >= 12 && ASSIGNMENT_HINT_RE.test(value)) {
    ASSIGNMENT_RE.lastIndex = 0;
    for (let m = ASSIGNMENT_RE.exec(value); m; m = ASSIGNMENT_RE.exec(value)) {
      const name = m[1]!;
      const v = m[2]!;
      if (isSecretLikeKey(name) && looksLikeSecretValue(v, opts)) {
        return { detector: "assignment", message: `a literal credential assigned to "${name}"` };
      }
    }
  }
  return undefined;
}

type SecretlintFn = (
  content: string,
) => Promise<readonly { ruleId: string; range: readonly [number, number] }[]>;
let secretlint: Promise<SecretlintFn> | undefined;

/** Loads @secretlint/core and the recommended preset once (ESM, loaded lazily). */
export function loadSecretlint(): Promise<SecretlintFn> {
  secretlint ??= (async () => {
    const [core, preset] = await Promise.all([
      import("@secretlint/core"),
      import("@secretlint/secretlint-rule-preset-recommend"),
    ]);
    const config = { rules: [{ id: "@secretlint/secretlint-rule-preset-recommend", rule: preset.creator }] };
    return async (content: string) => {
      const result = await core.lintSource({
        source: { content, filePath: "inputs.txt", contentType: "text" },
        options: { config, maskSecrets: true, noPhysicFilePath: true },
      });
      return result.messages;
    };
  })();
  return secretlint;
}

interface Candidate {
  readonly path: readonly (string | number)[];
  readonly start: number;
  readonly end: number;
}

/** Runs secretlint once over the candidate strings and maps messages back to their paths. */
async function secretlintFindings(
  candidates: readonly { path: readonly (string | number)[]; value: string }[],
): Promise<SecretFinding[]> {
  if (candidates.length === 0) return [];
  const lint = await loadSecretlint();
  let content = "";
  const spans: Candidate[] = [];
  for (const c of candidates) {
    spans.push({ path: c.path, start: content.length, end: content.length + c.value.length });
    content += c.value + "\n\n";
  }
  const messages = await lint(content);
  const out: SecretFinding[] = [];
  const seen = new Set<string>();
  for (const m of messages) {
    const span = spans.find((s) => m.range[0] >= s.start && m.range[0] < s.end);
    if (!span) continue;
    const rule = m.ruleId.replace(/^@secretlint\/secretlint-rule-/, "");
    const id = `${formatPath(span.path)}|${rule}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({
      path: span.path,
      detector: `secretlint:${rule}`,
      message: `a credential (secretlint ${rule})`,
    });
  }
  return out;
}

const NAME_FIELDS = ["name", "key", "variableName", "envName", "secretName"] as const;

/**
 * Walks a value once and returns the credential-like strings in it. Keys give context: a string
 * under a secret-like key, or the `value` of a `{name, value}` pair with a secret-like name, is
 * tested for entropy; every string is tested for private keys, JWTs and secretlint candidates.
 */
export async function scanForSecrets(root: unknown, opts: ScanOptions): Promise<SecretFinding[]> {
  const findings: SecretFinding[] = [];
  const candidates: { path: readonly (string | number)[]; value: string }[] = [];
  const allow = opts.allowPatterns ?? [];
  const skip = opts.skip;

  const visitString = (value: string, key: string | undefined, path: (string | number)[]): void => {
    if (value.length < 8) return;
    if (allow.length > 0 && allow.some((re) => re.test(value))) return;
    const hit = detectInString(value, key, opts);
    if (hit) {
      findings.push({ path: [...path], ...hit });
      return;
    }
    if (opts.secretlint !== false && value.length >= 16 && SECRETLINT_CANDIDATE_RE.test(value)) {
      candidates.push({ path: [...path], value });
    }
  };

  const visit = (v: unknown, key: string | undefined, path: (string | number)[], depth: number): void => {
    if (skip && skip(path)) return;
    if (typeof v === "string") {
      visitString(v, key, path);
      return;
    }
    if (v === null || typeof v !== "object" || depth > 64) return;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        path.push(i);
        visit(v[i], key, path, depth + 1);
        path.pop();
      }
      return;
    }
    const o = v as Obj;
    let pairName: string | undefined;
    if (typeof o["value"] === "string") {
      for (const f of NAME_FIELDS) {
        const n = o[f];
        if (typeof n === "string" && isSecretLikeKey(n)) {
          pairName = n;
          break;
        }
      }
    }
    for (const k in o) {
      const child = o[k];
      if (child === undefined || child === null || typeof child === "boolean" || typeof child === "number")
        continue;
      path.push(k);
      visit(child, k === "value" && pairName !== undefined ? pairName : k, path, depth + 1);
      path.pop();
    }
  };

  visit(root, undefined, [...(opts.basePath ?? [])], 0);
  if (candidates.length > 0) {
    const flagged = new Set(findings.map((f) => formatPath(f.path)));
    const rest = candidates.filter((c) => !flagged.has(formatPath(c.path)));
    findings.push(...(await secretlintFindings(rest)));
  }
  return findings;
}

/** Skip function for a resource's secret sinks (undefined when the type has none). */
export function sinkSkipper(
  type: string,
  inputs: Obj,
): ((path: readonly (string | number)[]) => boolean) | undefined {
  if (!hasSecretSinks(type)) return undefined;
  return (path) => path.length > 0 && isSecretSink(type, path, inputs);
}

const patternCache = new Map<string, RegExp[]>();
/** Compiles configured allow patterns once; invalid patterns throw with the offending pattern. */
export function compilePatterns(patterns: readonly string[] | undefined): RegExp[] {
  if (!patterns || patterns.length === 0) return [];
  const key = patterns.join("\u0000");
  let out = patternCache.get(key);
  if (!out) {
    out = patterns.map((p) => {
      try {
        return new RegExp(p);
      } catch {
        throw new Error(`invalid allow pattern ${JSON.stringify(p)}`);
      }
    });
    patternCache.set(key, out);
  }
  return out;
}
