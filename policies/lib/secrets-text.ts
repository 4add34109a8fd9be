/**
 * Credentials written into text: config files, scripts, code, command lines. The forms a name
 * and a value take (`key = v`, `key: v`, `key := v`, `"key" => "v"`, `$key .= "v"`, `KEY ?= v`,
 * `KEY ::= v`, `var key string = "v"`, `setProperty("KEY", "v")`, `<key>v</key>`,
 * `<add key="K" value="v"/>`), `--flag value` pairs, `curl -u user:password`, `Authorization:
 * Bearer …` and `Basic …` values, URL query credentials and npm's `_authToken`. Every candidate
 * goes through the same name judgement and value filters as structured inputs.
 */
import { nameWords, secretNameStrength, type NameStrength } from "./secrets-names";
import {
  isFiller,
  isPlaceholder,
  isPublicMaterial,
  looksLikeCode,
  looksLikeIdentifier,
  looksLikeRandomLetters,
  looksLikeWords,
  namesACredential,
} from "./secrets-values";
import { shannonEntropy } from "./values";

export interface TextHit {
  readonly detector: "assignment" | "flag" | "curl-credentials" | "auth-header" | "npm-auth" | "url-query";
  readonly message: string;
}

export interface ValueRules {
  /** Minimum entropy for a value under a strong name. */
  readonly entropyThreshold: number;
  /** Shortest value considered. */
  readonly minLength: number;
}

/** Authorization schemes whose credential follows a space. */
export const SCHEME_RE =
  /^(?:bearer|basic|token|bot|digest|apikey|api-key|ssws|oauth|jwt|splunk|genie-?key)[ \t]+/i;

/** Extra randomness asked of a value under a weak name (`*_KEY`, `auth`) over a strong one. */
const WEAK_EXTRA_ENTROPY = 0.5;

/**
 * Is `raw`, found under the name `name` (of `strength`), a credential? `quoted` says the text
 * gave it as a string literal (an unquoted one must not read as code); `text` says it was found
 * in free text rather than as a structured value, where it must carry a digit or a symbol: a
 * bare word after `=` or in quotes is far more often a variable, a kind or a name than a password.
 */
export function acceptValue(
  raw: string,
  name: string,
  strength: NameStrength,
  rules: ValueRules,
  opts: { quoted: boolean; text?: boolean; followedBy?: string } = { quoted: true },
): boolean {
  if (strength === "none") return false;
  let v = raw.trim();
  // Sentence punctuation after an unquoted value is not part of it (`token: Unauthorized/`).
  if (!opts.quoted) v = v.replace(/[/.,;:!?)]+$/, "");
  let scheme = false;
  const s = SCHEME_RE.exec(v);
  if (s) {
    v = v.slice(s[0].length).trim();
    scheme = true;
  }
  if (v.length < rules.minLength || v.length > 1000) return false;
  if (isPlaceholder(v) || isFiller(v, name) || isPublicMaterial(v) || namesACredential(v)) return false;
  const decoded = decodedBase64(v);
  if (decoded !== undefined && (isPlaceholder(decoded) || isFiller(decoded))) return false;
  if (/^(?:true|false|yes|no|on|off|null|nil|none|enabled?|disabled?)$/i.test(v)) return false;
  // Numbers and sizes are settings; a long digit string (a 16-digit client secret) is not.
  if (/^[-+]?\d+(?:\.\d+)?(?:[a-z]{1,3}|%)?$/i.test(v) && !/^\d{12,}$/.test(v)) return false;
  if (isPath(v) || /^(?:file:|[a-z][a-z0-9+.-]*:\/\/)/i.test(v)) return false;
  if (/\s/.test(v) && v.split(/\s+/).length > 3) return false;
  if (!opts.quoted && !scheme && (opts.followedBy === "(" || opts.followedBy === "[" || looksLikeCode(v)))
    return false;
  if (opts.text && !scheme && !plausibleInText(v)) return false;
  const weak = strength === "weak" && !scheme;
  if ((weak || opts.text || namesASecretObject(name)) && looksLikeWords(v)) return false;
  // Digits carry at most 3.3 bits each: a long random digit string sits below the threshold
  // meant for alphanumerics, and still is one (`asana` and `discord` client secrets).
  const threshold = /^\d{12,}$/.test(v) ? Math.min(rules.entropyThreshold, 2.2) : rules.entropyThreshold;
  return shannonEntropy(v) >= threshold + (weak ? WEAK_EXTRA_ENTROPY : 0);
}

/**
 * Free text puts words, identifiers, prose and code fragments after `=` and `:` far more often
 * than credentials: a value found there must not be one of those.
 */
function plausibleInText(v: string): boolean {
  if (/[^\x20-\x7e]/.test(v)) return false; // prose in another script, typographic quotes
  if (/^[A-Za-z_. -]+$/.test(v) && !looksLikeRandomLetters(v)) return false;
  if (looksLikeIdentifier(v)) return false;
  if (/^\s*[+.]\s|\s[+.]\s*$/.test(v)) return false; // `" + JSON.stringify(x) + "`
  return true;
}

/**
 * A file path (`/run/secrets/token`, `./key.pem`, `~/.npmrc`): segments of file-name characters.
 * A base64 value can start with `/` too, but carries `+` or `=` or no second segment of words.
 */
export function isPath(v: string): boolean {
  if (!/^(?:\/|\.\.?\/|~\/)/.test(v)) return false;
  if (!/^[\w.@~/-]+$/.test(v)) return false;
  const segments = v.split("/").filter((s) => s && s !== "." && s !== ".." && s !== "~");
  return segments.length >= 2 || segments.every((s) => /^[a-z0-9._-]+$/i.test(s) && s.length <= 32);
}

/**
 * `tlsSecret`, `keySecret`, `credentialsSecret`: in Kubernetes a name ending in "secret" most often
 * holds the name of a Secret object, so a value made of words there is that name.
 */
function namesASecretObject(name: string): boolean {
  const words = nameWords(name);
  const last = words[words.length - 1];
  return last === "secret" || last === "secrets";
}

/**
 * The text a base64 value decodes to, when it is printable: `bm90IG15IHJlYWwgcGFzc3dvcmQ=` is a
 * documentation sample saying so.
 */
export function decodedBase64(v: string): string | undefined {
  if (v.length < 12 || v.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(v)) return undefined;
  const d = Buffer.from(v, "base64").toString("latin1");
  return /^[\x20-\x7e]+$/.test(d) ? d : undefined;
}

/** Cheap test: could the text hold a named credential at all? */
const TEXT_HINT_RE =
  /pass|pwd|secret|token|key|cred|auth|pat\b|_pat|bearer|basic|curl|_auth|sig=|mysql|mariadb/i;

const TYPE = String.raw`(?:[ \t]*:[ \t]*&?(?:'[a-z]+[ \t]+)?[A-Za-z_][\w.<>\[\]?]*(?=[ \t]*=)|[ \t]+(?:string|String|str|\[\]byte|bytes|char\*?)(?=[ \t]*=))?`;
const OP = String.raw`[ \t]*(:{1,3}=|\?\?=|\|\|=|\?=|\.=|\+=|=>|=(?!=)|:(?!//)|,)[ \t]*`;
const VALUE = String.raw`(?:"((?:[^"\\\n]|\\.){0,300})"|'([^'\n]{0,300})'|\x60([^\x60]{0,300})\x60|((?:bearer|basic|token|bot|digest|apikey|api-key|ssws)[ \t]+[A-Za-z0-9._~+/=-]{8,300}(?![^\s"'\x60,;]))|([^\s"'\x60,;&<>{}()\[\]\\|]{1,300}))`;
/**
 * What follows a name in `name <op> value`, in any of the common syntaxes (an optional type, the
 * operator, the value), matched at the end of a name (sticky).
 */
const TAIL_RE = new RegExp(TYPE + OP + VALUE, "iy");
/**
 * Where credential nouns occur. An assignment is parsed only around one: the name is the
 * identifier the noun sits in, the rest must follow it. Scanning the text for any `a = b` first
 * would cost far more on the strings that hold none.
 */
const NOUN_AT_RE = /pass|pwd|pw\b|secret|token|key|cred|auth|pat\b/gi;

/** Characters of a name: `spring.datasource.password`, `checksum/secret`, `api-key`. */
function isNameChar(c: number): boolean {
  return (
    (c >= 97 && c <= 122) ||
    (c >= 65 && c <= 90) ||
    (c >= 48 && c <= 57) ||
    c === 95 ||
    c === 46 ||
    c === 47 ||
    c === 45
  );
}
/** `<name attr…>value</name>`, the value possibly on its own line. */
const XML_ELEMENT_RE = /<([A-Za-z_][\w.:-]{0,100})(?:\s[^<>]{0,300})?>\s*([^<>\s][^<>]{0,300}?)\s*<\/\1\s*>/g;
/** `<add key="K" value="v"/>`, `<property name="K" value="v"/>`. */
const XML_ATTRS_RE = /\b(?:key|name)\s*=\s*"([^"]{1,100})"\s+value\s*=\s*"([^"]{0,300})"/gi;
/** `--flag value` and `--flag=value` (the `=` form is also an assignment). */
const FLAG_RE =
  /(?:^|[\s"'[,(])--?([A-Za-z][\w.-]{1,60})(?:=|[ \t]+)(?:"([^"\n]{1,300})"|'([^'\n]{1,300})'|([^\s"'\][,)]{1,300}))/g;
/** `curl … -u user:password` / `--user`, on the same line or a continuation line. */
const CURL_USER_RE = /(?:^|\s)(?:-u|--user)(?:=|[ \t]+)("[^"\n]*"|'[^'\n]*'|\S+)/g;
/** A scheme credential anywhere (`Bearer …`, `Basic …`), whatever names it. */
const FREE_SCHEME_RE = /(?:^|[^\w-])(Bearer|Basic)[ \t]+([A-Za-z0-9._~+/-]{12,}={0,2})/g;
/** Credentials in a URL's query (`?access_token=…`, Azure SAS `&sig=…`). */
const QUERY_RE =
  /[?&](access_token|auth_token|private_token|token|api_key|apikey|api-key|key|sig|signature|password|passwd|pwd|secret|client_secret)=([^&\s#"'<>]{8,})/gi;
/** A name and a value as two fields: `- name: DB_PASSWORD⏎ value: …`, `{"name": "K", "value": "v"}`. */
const PAIR_RE =
  /\bname["']?\s*[:=]\s*["']?([A-Za-z_][\w.-]{0,100})["']?\s*,?\s*-?\s*["']?value["']?\s*[:=]\s*(?:"([^"\n]{1,300})"|'([^'\n]{1,300})'|([^\s"',}]{1,300}))/g;
/** `<entry key="password">v</entry>`: the name in an attribute, the value as the content. */
const XML_KEYED_RE =
  /<([A-Za-z_][\w.:-]{0,60})\s+(?:key|name)\s*=\s*"([^"]{1,100})"[^<>]{0,200}>\s*([^<>\s][^<>]{0,300}?)\s*<\/\1\s*>/g;
/** `#define API_SECRET "v"` (C, C++, firmware). */
const DEFINE_RE = /#define[ \t]+([A-Za-z_]\w{0,100})[ \t]+"([^"\n]{1,300})"/g;
/** `.netrc`: `machine h login u password p`, on one line or several. */
const NETRC_RE = /\bmachine\s+\S+\s+(?:login\s+\S+\s+)?password\s+(\S+)/g;
/** Password flags of CLIs that take the password glued or after a short flag. */
const CLI_PASSWORD_RE =
  /\b(?:sshpass[ \t]+(?:-\w[ \t]+)*-p[ \t]*|(?:mysql|mysqldump|mysqladmin|mariadb)\b[^\n]*?[ \t]-p(?!\s))(["']?)([^\s"']{4,300})\1/g;

/** npm's `.npmrc` credentials. */
const NPM_RE = /(?:^|[\s:])_(authToken|auth|password)\s*=\s*(\S+)/g;

/** Undoes one level of JSON/shell escaping so `{\"password\": \"…\"}` reads like JSON. */
function unescape(text: string): string {
  return text.includes("\\") ? text.replace(/\\(["'])/g, "$1").replace(/\\[nrt]/g, "\n") : text;
}

/** The first credential written into `text`, if any. */
export function findInText(text: string, rules: ValueRules): TextHit | undefined {
  if (text.length < 8 || !TEXT_HINT_RE.test(text)) return undefined;
  const t = unescape(text);
  return (
    assignments(t, rules) ??
    pairs(t, rules) ??
    xml(t, rules) ??
    flags(t, rules) ??
    curl(t) ??
    cliPasswords(t, rules) ??
    freeScheme(t, rules) ??
    query(t, rules) ??
    npm(t)
  );
}

function assignments(t: string, rules: ValueRules): TextHit | undefined {
  NOUN_AT_RE.lastIndex = 0;
  for (let m = NOUN_AT_RE.exec(t); m; m = NOUN_AT_RE.exec(t)) {
    let s = m.index;
    let e = s + m[0].length;
    while (s > 0 && isNameChar(t.charCodeAt(s - 1))) s--;
    while (e < t.length && isNameChar(t.charCodeAt(e))) e++;
    NOUN_AT_RE.lastIndex = e;
    while (s < e && !/[A-Za-z_]/.test(t[s]!)) s++; // `--api-key`, `//host/:_authToken`
    const name = t.slice(s, e);
    if (name.length === 0 || name.length > 100) continue;
    const pre = t[s - 1];
    const quotedName = (pre === '"' || pre === "'" || pre === "`") && t[e] === pre;
    let p = e;
    if (quotedName) {
      p++;
      while (t[p] === " " || t[p] === "\t") p++;
      if (t[p] === "]" || t[p] === ")") p++; // `os.environ["K"] = …`, `headers["K"] = …`
    }
    TAIL_RE.lastIndex = p;
    const tm = TAIL_RE.exec(t);
    if (!tm) continue;
    const op = tm[1]!;
    const open = quotedName ? s - 1 : s;
    const lead = t.slice(Math.max(0, open - 9), open);
    // `"K", "v"` is a pair only as a call's arguments (`setProperty("K", "v")`), not in a list;
    // `cond ? 'a' : 'b'` is no pair; a query parameter is the query detector's; `:name:` is a
    // field of a colon-separated record (an ARN), and a `:symbol` names a value only before `=>`
    // (PowerShell's `$env:NAME` is a name).
    if (op === "," && !(quotedName && /\(\s*$/.test(lead))) continue;
    if (quotedName && /\?\s*$/.test(lead)) continue;
    const before = t[open - 1];
    if (before === "?" || before === "&") continue;
    if (before === ":" && op !== "=>" && !/\$(?:env|global|script|local|using):$/i.test(lead)) continue;
    const strength = secretNameStrength(name);
    if (strength === "none") continue;
    const quoted = tm[2] ?? tm[3] ?? tm[4];
    const raw = quoted ?? tm[5] ?? tm[6]!;
    const followedBy = t[TAIL_RE.lastIndex];
    const how = {
      quoted: quoted !== undefined || tm[5] !== undefined,
      text: true,
      ...(followedBy ? { followedBy } : {}),
    };
    if (acceptValue(raw, name, strength, rules, how))
      return { detector: "assignment", message: `a literal credential assigned to "${name}"` };
  }
  return undefined;
}

function pairs(t: string, rules: ValueRules): TextHit | undefined {
  PAIR_RE.lastIndex = 0;
  for (let m = t.includes("value") ? PAIR_RE.exec(t) : null; m; m = PAIR_RE.exec(t)) {
    const name = m[1]!;
    const quoted = m[2] ?? m[3];
    if (
      acceptValue(quoted ?? m[4]!, name, secretNameStrength(name), rules, {
        quoted: quoted !== undefined,
        text: true,
      })
    )
      return { detector: "assignment", message: `a literal credential as the value of "${name}"` };
  }
  DEFINE_RE.lastIndex = 0;
  for (let m = t.includes("#define") ? DEFINE_RE.exec(t) : null; m; m = DEFINE_RE.exec(t)) {
    const name = m[1]!;
    if (acceptValue(m[2]!, name, secretNameStrength(name), rules, { quoted: true, text: true }))
      return { detector: "assignment", message: `a literal credential defined as "${name}"` };
  }
  return undefined;
}

function cliPasswords(t: string, rules: ValueRules): TextHit | undefined {
  NETRC_RE.lastIndex = 0;
  for (let m = t.includes("machine") ? NETRC_RE.exec(t) : null; m; m = NETRC_RE.exec(t))
    // The position says "password": a bare word there is one (no code or variable sits there).
    if (acceptValue(m[1]!, "password", "strong", rules, { quoted: true }))
      return { detector: "assignment", message: "a literal password in .netrc form" };
  CLI_PASSWORD_RE.lastIndex = 0;
  for (
    let m = /sshpass|mysql|mariadb/.test(t) ? CLI_PASSWORD_RE.exec(t) : null;
    m;
    m = CLI_PASSWORD_RE.exec(t)
  )
    if (acceptValue(m[2]!, "password", "strong", { ...rules, minLength: 4 }, { quoted: true }))
      return { detector: "flag", message: "a literal password given to a client's -p flag" };
  return undefined;
}

function xml(t: string, rules: ValueRules): TextHit | undefined {
  if (!t.includes("<")) return undefined;
  XML_KEYED_RE.lastIndex = 0;
  for (let m = XML_KEYED_RE.exec(t); m; m = XML_KEYED_RE.exec(t)) {
    const name = m[2]!;
    if (acceptValue(m[3]!, name, secretNameStrength(name), rules, { quoted: true, text: true }))
      return { detector: "assignment", message: `a literal credential in the element keyed "${name}"` };
  }
  XML_ELEMENT_RE.lastIndex = 0;
  for (let m = XML_ELEMENT_RE.exec(t); m; m = XML_ELEMENT_RE.exec(t)) {
    const name = m[1]!.replace(/^.*:/, "");
    if (acceptValue(m[2]!, name, secretNameStrength(name), rules, { quoted: true, text: true }))
      return { detector: "assignment", message: `a literal credential in the element <${name}>` };
  }
  XML_ATTRS_RE.lastIndex = 0;
  for (let m = XML_ATTRS_RE.exec(t); m; m = XML_ATTRS_RE.exec(t)) {
    const name = m[1]!;
    if (acceptValue(m[2]!, name, secretNameStrength(name), rules, { quoted: true, text: true }))
      return { detector: "assignment", message: `a literal credential as the value of "${name}"` };
  }
  return undefined;
}

function flags(t: string, rules: ValueRules): TextHit | undefined {
  if (!t.includes("-")) return undefined;
  FLAG_RE.lastIndex = 0;
  for (let m = FLAG_RE.exec(t); m; m = FLAG_RE.exec(t)) {
    const name = m[1]!;
    const raw = m[2] ?? m[3] ?? m[4]!;
    if (raw.startsWith("-")) {
      FLAG_RE.lastIndex = m.index + m[0].length - raw.length - 1; // the next flag
      continue;
    }
    if (acceptFlagValue(name, raw, rules))
      return { detector: "flag", message: `a literal credential passed as --${name}` };
  }
  return undefined;
}

/** A `--flag value` pair: the flag's name judged like any other, the value like an unquoted one. */
export function acceptFlagValue(flag: string, value: string, rules: ValueRules): boolean {
  const name = flag.replace(/^-+/, "");
  return acceptValue(value, name, secretNameStrength(name), rules, { quoted: false, text: true });
}

function curl(t: string): TextHit | undefined {
  if (!/\bcurl\b/.test(t)) return undefined;
  CURL_USER_RE.lastIndex = 0;
  for (let m = CURL_USER_RE.exec(t); m; m = CURL_USER_RE.exec(t))
    if (isCurlCredential(m[1]!))
      return { detector: "curl-credentials", message: "a user:password given to curl -u" };
  return undefined;
}

const unquote = (s: string) => s.replace(/^["']|["']$/g, "");

/**
 * `user:password` as curl takes it (`-u`, `--user`). With an empty password the user part is the
 * credential (API keys are passed as `-u KEY:`).
 */
export function isCurlCredential(arg: string): boolean {
  const a = unquote(arg);
  const i = a.indexOf(":");
  if (i < 0) return false;
  const user = unquote(a.slice(0, i));
  const pass = unquote(a.slice(i + 1));
  const secret = pass.length > 0 ? pass : user;
  if (secret.length < 3 || isPlaceholder(secret) || isFiller(secret) || isPlaceholder(user)) return false;
  if (pass === user) return false; // `guest:guest`, `test:test`: a well-known default
  if (/^\$|^\[.*\]$|^\{.*\}$/.test(secret)) return false;
  if (/^\d+$/.test(user) && /^\d+$/.test(pass)) return false; // uid:gid
  return shannonEntropy(secret) >= 2.0;
}

function freeScheme(t: string, rules: ValueRules): TextHit | undefined {
  if (!/Bearer|Basic/.test(t)) return undefined;
  FREE_SCHEME_RE.lastIndex = 0;
  for (let m = FREE_SCHEME_RE.exec(t); m; m = FREE_SCHEME_RE.exec(t)) {
    const cred = m[2]!;
    if (m[1] === "Basic" ? isBasicCredential(cred) : isBearerCredential(cred, rules))
      return { detector: "auth-header", message: `a literal ${m[1]} credential` };
  }
  return undefined;
}

/** A Bearer token: long, random, not a placeholder. */
export function isBearerCredential(cred: string, rules: ValueRules): boolean {
  return (
    cred.length >= 16 &&
    !isPlaceholder(cred) &&
    !isFiller(cred) &&
    /\d/.test(cred) &&
    shannonEntropy(cred) >= Math.max(rules.entropyThreshold, 3.5)
  );
}

/** A Basic credential: base64 of `user:password` with a real password. */
export function isBasicCredential(cred: string): boolean {
  if (isPlaceholder(cred)) return false;
  const decoded = Buffer.from(cred, "base64").toString("latin1");
  if (!/^[\x20-\x7e]{0,200}:[\x20-\x7e]{1,200}$/.test(decoded)) return false;
  return isCurlCredential(decoded);
}

function query(t: string, rules: ValueRules): TextHit | undefined {
  if (!t.includes("=") || !/[?&]/.test(t)) return undefined;
  QUERY_RE.lastIndex = 0;
  for (let m = QUERY_RE.exec(t); m; m = QUERY_RE.exec(t)) {
    // Badge URLs carry public graph tokens (`…/badge.svg?token=…`).
    if (/badge/i.test(t.slice(Math.max(0, m.index - 120), m.index))) continue;
    let v = m[2]!;
    try {
      v = decodeURIComponent(v);
    } catch {
      // keep it as written
    }
    // A password is chosen by a person; a token or signature is generated, longer and random.
    const password = /^(?:password|passwd|pwd|secret)$/i.test(m[1]!);
    const minEntropy = password ? rules.entropyThreshold : Math.max(rules.entropyThreshold, 3.5);
    if ((password || v.length >= 12) && !isPlaceholder(v) && !isFiller(v) && shannonEntropy(v) >= minEntropy)
      return { detector: "url-query", message: `a credential in a URL query (${m[1]}=)` };
  }
  return undefined;
}

function npm(t: string): TextHit | undefined {
  if (!t.includes("_auth") && !t.includes("_password")) return undefined;
  NPM_RE.lastIndex = 0;
  for (let m = NPM_RE.exec(t); m; m = NPM_RE.exec(t)) {
    const v = unquote(m[2]!);
    if (v.length >= 8 && !isPlaceholder(v) && !isFiller(v) && !v.startsWith("$"))
      return { detector: "npm-auth", message: `an npm _${m[1]} credential` };
  }
  return undefined;
}
