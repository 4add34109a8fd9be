/**
 * Content-based secret detection. CrossGuard cannot see whether an input is a Pulumi secret, so
 * the pack looks at the values. Synchronous detectors, regex-only, in this order: PEM private
 * keys, JWTs, provider token formats (lib/secrets-formats.ts), URL userinfo passwords, a literal
 * under a secret-like name (names judged by whole words, lib/secrets-names.ts), and credentials
 * written into text: assignments in every common syntax, XML, `--flag value`, `curl -u`, auth
 * schemes, URL queries, `.npmrc` (lib/secrets-text.ts). Every candidate passes the placeholder
 * and test-value filter (lib/secrets-values.ts) before it is reported. Then the @secretlint
 * recommended preset (async) runs once per resource over strings that pass a cheap candidate test,
 * and its matches go through the same placeholder filter.
 */
import { isSecretSink, hasSecretSinks } from "./sinks";
import { findToken } from "./secrets-formats";
import { secretNameStrength, type NameStrength } from "./secrets-names";
import { acceptFlagValue, acceptValue, findInText, isCurlCredential, isPath } from "./secrets-text";
import {
  isFiller,
  isPlaceholder,
  isPublicMaterial,
  looksLikeWords,
  namesACredential,
} from "./secrets-values";
import { formatPath, isUnknown, shannonEntropy, type Obj } from "./values";

export { secretNameStrength, nameWords, KNOWN_NON_SECRET_NAMES, type NameStrength } from "./secrets-names";
export { isPlaceholder, isFiller } from "./secrets-values";

/**
 * True for names that look like they hold a credential (`DB_PASSWORD`, `apiKey`, `GITHUB_PAT`,
 * `STRIPE_KEY`), judged by whole words: not `author`, `tokenizer`, `credentialsId`,
 * `secretKeyRef`, `tokenTTL`, `GF_AUTH_GENERIC_OAUTH_SCOPES` or `OAUTH2_PROXY_PASS_ACCESS_TOKEN`.
 */
export function isSecretLikeKey(key: string): boolean {
  return secretNameStrength(key) !== "none";
}

/** Secret-manager references and other indirections (`vault:…`, `op://…`, `arn:aws:secretsmanager:…`). */
const REFERENCE_RE =
  /^(\$\{|\$[A-Za-z_]|\{\{|\$\(|%\{|<%|ref\+|vault:|secret:|secretref:|sm:\/\/|awssm|gcpsm|azkv|op:\/\/|env:|arn:aws:(secretsmanager|ssm):)/i;
const NUMBERISH_RE = /^[-+]?\d+(\.\d+)?([a-z]{1,3}|%)?$/i;
const BOOLISH_RE = /^(true|false|yes|no|on|off|enabled?|disabled?|none|null|nil|required|optional|auto)$/i;
const URL_RE = /^[a-z][a-z0-9+.-]*:\/\//i;
const URL_WITH_CREDS_RE = /^[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:[^/\s@]+@/i;

/**
 * True when a string under a secret-like key is a literal value rather than a reference, path,
 * URL, flag, number, prose, placeholder or test value (`<YOUR_API_KEY>`, `changeme`, the name
 * itself repeated). `minLength` keeps settings like `basic` out.
 */
export function isLiteralSecretValue(v: string, minLength = 6, name?: string): boolean {
  if (v.length < minLength || isUnknown(v)) return false;
  const t = v.trim();
  if (t.length < minLength) return false;
  if (NUMBERISH_RE.test(t) || BOOLISH_RE.test(t) || REFERENCE_RE.test(t)) return false;
  if (isPath(t) || t.startsWith("file:")) return false;
  if (URL_RE.test(t)) return URL_WITH_CREDS_RE.test(t) && !urlPasswordIsPlaceholder(t);
  if (/\s/.test(t) && t.split(/\s+/).length > 3) return false;
  return !isPlaceholder(t) && !isFiller(t, name) && !isPublicMaterial(t) && !namesACredential(t);
}

export interface EntropyOptions {
  /** Minimum Shannon entropy, bits per character. */
  readonly entropyThreshold: number;
  /** Minimum length of a value considered. */
  readonly minLength: number;
}

export const DEFAULT_ENTROPY: EntropyOptions = { entropyThreshold: 3.0, minLength: 8 };

/** Extra randomness asked of a value under a weak name (`*_KEY`, `auth`): a key can be a setting. */
const WEAK_NAME_EXTRA_ENTROPY = 0.5;

/** A literal, long and random-looking enough to be a credential (for values under secret-like keys). */
export function looksLikeSecretValue(
  v: string,
  opts: EntropyOptions = DEFAULT_ENTROPY,
  name?: string,
): boolean {
  return isLiteralSecretValue(v, opts.minLength, name) && shannonEntropy(v) >= opts.entropyThreshold;
}

/**
 * A literal given under a credential name, for the rules that object to any literal there (env
 * vars, Helm values, Actions variables, build args): under a strong name (`DB_PASSWORD`) any
 * literal; under a weak one (`STRIPE_KEY`, `auth`) only one that also looks random, since
 * `FEATURE_KEY: dark-mode` or `auth: kubernetes` are settings.
 */
export function isLiteralUnderSecretName(name: string, value: string, minLength: number): boolean {
  const strength = secretNameStrength(name);
  if (strength === "none" || !isLiteralSecretValue(value, minLength, name)) return false;
  if (strength === "strong") return true;
  return (
    !looksLikeWords(value) &&
    shannonEntropy(value) >= DEFAULT_ENTROPY.entropyThreshold + WEAK_NAME_EXTRA_ENTROPY
  );
}

/**
 * A PEM private key: the BEGIN line, optional headers (`Proc-Type:`), then a base64 body, with real
 * or escaped (`\n`) line breaks. The body is required: CRD descriptions and docs show the armour
 * around a placeholder (`-----BEGIN PRIVATE KEY-----\n<private-key>\n...`), which is no key.
 */
export const PRIVATE_KEY_RE =
  /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:\s|\\[rn])*(?:[A-Za-z-]+:[^\n\\]*(?:\s|\\[rn])+)*[A-Za-z0-9+/=]{16}/;
export const JWT_RE = /(?:^|[^A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}/;
/**
 * Cheap pre-filter for the secretlint recommended rules: the token prefixes and shapes of the
 * preset's rules, key blocks, URLs with credentials, connection strings.
 */
export const SECRETLINT_CANDIDATE_RE =
  /(?:A3T[A-Z0-9]|AKIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ASIA)[A-Z0-9]{16}|aws_secret|_authToken|npm_[A-Za-z0-9]{30}|:\/\/[^\s/:@]+:[^\s/@]+@|xox[abposr]-|xapp-|hooks\.slack\.com|SG\.[\w-]{10,}\.|shp(?:pa|ca|at|ss)_|gh[pousr]_[A-Za-z0-9_]{30}|github_pat_|sk-[A-Za-z0-9_-]{20}|sk_(?:live|test)_|rk_(?:live|test)_|lin_api_|ops_ey|private_key|PRIVATE KEY|glpat-|gl(?:c|sa)_|hf_[A-Za-z]{30}|hv[sbr]\.|vc[pciark]_|gsk_|dapi[a-fA-F0-9]{16}|ntn_|figd_|dckr_pat_|tskey-|cf(?:k|ut|at)_|AccountKey=/;

export type SecretDetector =
  | "private-key"
  | "jwt"
  | "token"
  | "url-credentials"
  | "entropy"
  | "assignment"
  | "flag"
  | "curl-credentials"
  | "auth-header"
  | "npm-auth"
  | "url-query"
  | `secretlint:${string}`;

/**
 * A URL carrying a password in its userinfo (`scheme://user:password@host`). The password must be
 * a literal: `${VAR}`, `$(cmd)`, `<password>`, `{{ .x }}`, `***` and `password` stand for one.
 */
const URL_USERINFO_RE = /[a-z][a-z0-9+.-]*:\/\/[^\s/:@]*:([^\s/@]+)@[^\s/@]/gi;

function urlPasswordIsPlaceholder(url: string): boolean {
  URL_USERINFO_RE.lastIndex = 0;
  const m = URL_USERINFO_RE.exec(url);
  return m === null || passwordIsPlaceholder(m[1]!);
}

function passwordIsPlaceholder(p: string): boolean {
  let v = p;
  try {
    v = decodeURIComponent(p);
  } catch {
    // as written
  }
  return v.length < 3 || isPlaceholder(v) || isFiller(v) || /^[$<{%[]/.test(v) || /^x+$/i.test(v);
}

function urlCredentials(value: string): boolean {
  if (!value.includes("://") || !value.includes("@")) return false;
  URL_USERINFO_RE.lastIndex = 0;
  for (let m = URL_USERINFO_RE.exec(value); m; m = URL_USERINFO_RE.exec(value)) {
    const user = /:\/\/([^\s/:@]*):/.exec(m[0])?.[1] ?? "";
    // `guest:guest@`, `your-name:…@`: a default or a sample, not a leaked password.
    if (passwordIsPlaceholder(m[1]!) || m[1] === user) continue;
    if (user === "" || !isPlaceholder(safeDecode(user))) return true;
  }
  return false;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
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

/** A value under a name of `strength`: the name's judgement plus the value filters. */
function namedValueHit(
  value: string,
  key: string,
  strength: NameStrength,
  opts: EntropyOptions,
): { detector: SecretDetector; message: string } | undefined {
  if (!isLiteralSecretValue(value, opts.minLength, key)) return undefined;
  if (acceptValue(value, key, strength, opts)) {
    return { detector: "entropy", message: `a high-entropy literal under secret-like key "${key}"` };
  }
  return undefined;
}

type StringHit = { detector: SecretDetector; message: string } | undefined;

/**
 * Verdicts on long strings, by options and key: rendered charts repeat the same long prose (CRD
 * schemas' descriptions, in every stack that installs the chart), and the detectors are pure. Short
 * strings are cheaper to judge than to look up. Bounded: cleared when full.
 */
const MEMO_MIN_LENGTH = 256;
const MEMO_MAX_ENTRIES = 50_000;
const longStringVerdicts = new Map<string, Map<string, StringHit | null>>();
let memoEntries = 0;

/** Synchronous detectors over one string; `key` is the nearest secret-relevant name, if any. */
export function detectInString(value: string, key: string | undefined, opts: EntropyOptions): StringHit {
  if (value.length < MEMO_MIN_LENGTH) return detectUncached(value, key, opts);
  const scope = `${opts.entropyThreshold}|${opts.minLength}|${key ?? ""}`;
  let verdicts = longStringVerdicts.get(scope);
  const known = verdicts?.get(value);
  if (known !== undefined) return known ?? undefined;
  const hit = detectUncached(value, key, opts);
  if (memoEntries >= MEMO_MAX_ENTRIES) {
    longStringVerdicts.clear();
    memoEntries = 0;
    verdicts = undefined;
  }
  if (!verdicts) longStringVerdicts.set(scope, (verdicts = new Map<string, StringHit | null>()));
  verdicts.set(value, hit ?? null);
  memoEntries++;
  return hit;
}

function detectUncached(value: string, key: string | undefined, opts: EntropyOptions): StringHit {
  if (value.length < 8 || isUnknown(value)) return undefined;
  if (value.includes("PRIVATE KEY") && PRIVATE_KEY_RE.test(value))
    return { detector: "private-key", message: "a PEM private key" };
  if (value.includes("eyJ") && JWT_RE.test(value)) return { detector: "jwt", message: "a JSON Web Token" };
  const token = findToken(value);
  if (token) return { detector: "token", message: token.label };
  if (urlCredentials(value))
    return { detector: "url-credentials", message: "a URL with a password in it (user:password@)" };
  if (key !== undefined) {
    const strength = secretNameStrength(key);
    if (strength !== "none") {
      const hit = namedValueHit(value, key, strength, opts);
      if (hit) return hit;
    }
  }
  return findInText(value, opts);
}

/**
 * A `--flag value` pair or a `curl -u user:password` split over two array elements
 * (`args: ["--api-key", "…"]`): the second element judged with the first as its name.
 */
export function detectArgPair(
  flag: string,
  value: string,
  inCurl: boolean,
  opts: EntropyOptions,
): { detector: SecretDetector; message: string } | undefined {
  if (isUnknown(value) || value.startsWith("-")) return undefined;
  if (inCurl && (flag === "-u" || flag === "--user") && isCurlCredential(value))
    return { detector: "curl-credentials", message: "a user:password given to curl -u" };
  const name = flag.replace(/^-+/, "");
  if (value.length >= opts.minLength && acceptFlagValue(name, value, opts))
    return { detector: "flag", message: `a literal credential passed as --${name}` };
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

/**
 * What a scan found under an object, by the object and the scan's settings (paths relative to it).
 * Rendered charts share one parsed object between every stack that installs the same CRD, so its
 * megabytes of schema are walked once per run. Weak: forgotten with the objects. The scans treat
 * what they walk as read-only, as CrossGuard hands it to them.
 */
interface SubtreeVerdict {
  readonly findings: readonly SecretFinding[];
  readonly candidates: readonly { path: readonly (string | number)[]; value: string }[];
}
const subtreeVerdicts = new WeakMap<object, Map<string, SubtreeVerdict>>();

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
    // The preset's own allow-lists are narrower than the pack's placeholder filter.
    if (secretlintMatchIsPlaceholder(content.slice(m.range[0], m.range[1]))) continue;
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

/**
 * A secretlint match that stands for a credential: the whole match is a placeholder, or its
 * secret part is (the password of `user:<password>@`, the value of `_authToken=${NPM_TOKEN}`).
 */
export function secretlintMatchIsPlaceholder(match: string): boolean {
  if (isPlaceholder(match)) return true;
  const userinfo = /:\/\/[^\s/:@]*:([^\s/@]+)@/.exec(match);
  if (userinfo) return passwordIsPlaceholder(userinfo[1]!);
  const assigned = /[=:]\s*["']?([^\s"']+)["']?\s*$/.exec(match);
  return assigned !== null && (isPlaceholder(assigned[1]!) || assigned[1]!.startsWith("$"));
}

const NAME_FIELDS = ["name", "key", "variableName", "envName", "secretName"] as const;

/** A command-line flag on its own (`--api-key`, `-u`), whose value is the next element. */
const BARE_FLAG_RE = /^--?[A-Za-z][\w.-]{0,60}$/;

/**
 * Walks a value once and returns the credential-like strings in it. Keys give context: a string
 * under a secret-like key, or the `value` of a `{name, value}` pair with a secret-like name, is
 * judged with that name; in an array, a bare flag (`--api-key`) names the element after it;
 * every string is tested by the content detectors and, if a candidate, by secretlint.
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

  /** `["--api-key", "…"]`, `["curl", "-u", "user:pass"]`: a flag's value in the next element. */
  const visitArgPairs = (a: readonly unknown[], path: (string | number)[]): void => {
    let inCurl: boolean | undefined;
    for (let i = 0; i + 1 < a.length; i++) {
      const flag = a[i];
      const value = a[i + 1];
      if (typeof flag !== "string" || typeof value !== "string" || !BARE_FLAG_RE.test(flag)) continue;
      path.push(i + 1);
      const seen = skip?.(path) === true || findings.some((f) => samePath(f.path, path));
      if (!seen && !(allow.length > 0 && allow.some((re) => re.test(value)))) {
        inCurl ??= a.some((x) => typeof x === "string" && /(?:^|\/|\s)curl(?:\s|$)/.test(x));
        const hit = detectArgPair(flag, value, inCurl, opts);
        if (hit) findings.push({ path: [...path], ...hit });
      }
      path.pop();
    }
  };

  // Subtrees near the root are remembered by identity (see subtreeVerdicts) when nothing path-bound
  // (a sink skipper) can change their verdict.
  const scope = skip
    ? undefined
    : `${opts.entropyThreshold}|${opts.minLength}|${opts.secretlint !== false}|${allow.map(String).join(",")}`;

  const visit = (v: unknown, key: string | undefined, path: (string | number)[], depth: number): void => {
    if (skip && skip(path)) return;
    if (typeof v === "string") {
      visitString(v, key, path);
      return;
    }
    if (v === null || typeof v !== "object" || depth > 64) return;
    if (scope !== undefined && depth >= 1 && depth <= 2) {
      const sig = `${key ?? ""}|${scope}`;
      const known = subtreeVerdicts.get(v)?.get(sig);
      if (known) {
        for (const f of known.findings) findings.push({ ...f, path: [...path, ...f.path] });
        for (const c of known.candidates) candidates.push({ ...c, path: [...path, ...c.path] });
        return;
      }
      const [f0, c0, depthOf] = [findings.length, candidates.length, path.length];
      visitNode(v, key, path, depth);
      const rel = <T extends { path: readonly (string | number)[] }>(x: T): T => ({
        ...x,
        path: x.path.slice(depthOf),
      });
      let verdicts = subtreeVerdicts.get(v);
      if (!verdicts) subtreeVerdicts.set(v, (verdicts = new Map<string, SubtreeVerdict>()));
      verdicts.set(sig, { findings: findings.slice(f0).map(rel), candidates: candidates.slice(c0).map(rel) });
      return;
    }
    visitNode(v, key, path, depth);
  };

  const visitNode = (v: object, key: string | undefined, path: (string | number)[], depth: number): void => {
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        path.push(i);
        visit(v[i], key, path, depth + 1);
        path.pop();
      }
      visitArgPairs(v, path);
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
      // Sealed Secrets' ciphertexts: long, random, under secret names, and made to be committed.
      if (k === "encryptedData" && o["encryptedData"] !== null && typeof child === "object") continue;
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

function samePath(a: readonly (string | number)[], b: readonly (string | number)[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
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
