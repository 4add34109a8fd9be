/**
 * What a value is when it sits where a credential would: a placeholder standing for one, a test
 * or filler value, public material, code, or words. Every detector applies these before it
 * reports, so documentation, templates and sample configs (the `<YOUR_API_KEY>`, `${VAR}`,
 * `{{ .Values.x }}`, `****` and `changeme` of every chart and README) do not cry wolf.
 *
 * Two tiers. `isPlaceholder` is for every detector, provider formats included: markers nobody
 * puts in a real credential. `isFiller` is for the detectors that judge by name and randomness
 * (a value under `password:`), where `test`, `dummy-password` or the name itself repeated are
 * what people write when they mean "fill this in"; a provider-format token is never one.
 */
import { hasCredentialNoun, nameWords } from "./secrets-names";

/** Template and reference syntax: the value is filled in elsewhere. */
const TEMPLATE_RE =
  /\$\{|\$\(|\{\{|\}\}|%\{|\{%|#\{|<%|%\(\w+\)[sdr]|\.(?:Values|Release|Chart|Capabilities)\./;
const WHOLE_REFERENCE_RE =
  /^(?:\$[A-Za-z_]\w*|%[A-Za-z_]\w*%|@[A-Za-z_]\w*@|__[A-Za-z0-9_]+__|\{\w*\}|\{\d+\}|%[sdvq]|:[a-z_]\w*|!(?:Ref|Sub|GetAtt|ImportValue|Join|Select|Split|FindInMap|GetAZs|Base64|Cidr|If|Equals|And|Or|Not|Condition|vault|encrypted|unsafe|secret)\b.*)$/s;
/** `<token>`, `<YOUR_API_KEY>`, `[PASSWORD]`, `[Redacted]`. */
const BRACKETED_RE = /<[^<>\n]{1,80}>|^\[[^\]\n]{1,80}\]$|^\([^)\n]{1,80}\)$/;
/** Masks and elisions: `****`, `••••`, `sk-...`, `xxxx`, `####`. */
const MASK_RE = /\*{3,}|^\*\*.+\*\*$|[•●]{2,}|…|\.{3,}|#{4,}|x{4,}|X{4,}/;
/** Words that mark an example, a redaction or an instruction. */
const MARKER_RE =
  /example|placeholder|redacted|censored|change[-_ ]?(?:me|it|this)\b|changeme|changeit|replace[-_ ]?(?:me|this|with)|replaceme|your|(?:^|[-_ ])here$|^insert|[-_ ]insert[-_ ]|^enter[-_ ]|^put[-_ ]|^paste[-_ ]|not[-_ ]?(?:a|my)?[-_ ]?real|notreal|dummy|do[-_ ]?not[-_ ]?use|lorem[-_ ]?ipsum/i;

/**
 * True for a value that stands for a credential instead of being one. Applied to the candidate
 * itself (the password of a URL, the token a regex matched), never to the text around it.
 */
export function isPlaceholder(value: string): boolean {
  const t = value.trim();
  if (t.length === 0) return true;
  if (TEMPLATE_RE.test(t) || WHOLE_REFERENCE_RE.test(t) || BRACKETED_RE.test(t)) return true;
  if (MASK_RE.test(t) || MARKER_RE.test(t)) return true;
  // One character repeated (`aaaaaaaa`, `00000000`), or a token whose body is (`glpat-XXXX…`).
  return /^(.)\1+$/.test(t);
}

/** Values people write when they mean "fill this in", compared without case or punctuation. */
const FILLERS = new Set(
  (
    "test testing tests test1 test12 test123 testtest testpass testpassword testsecret testtoken testkey " +
    "dummy fake foo bar baz qux foobar foobarbaz sample samples example examples secret secrets mysecret " +
    "yoursecret password passwords passwd pass pwd mypassword yourpassword mypass password1 password12 " +
    "password123 pass123 pass1234 token tokens mytoken yourtoken apikey myapikey yourapikey key mykey keys " +
    "secretkey accesskey privatekey credential credentials creds cred user username login default defaults " +
    "none null nil undefined empty blank unset notset na tbd todo fixme changeme changeit replaceme " +
    "placeholder redacted hidden masked removed omitted sanitized abc abc123 abcd abcdef abcdefgh 123 1234 " +
    "12345 123456 1234567 12345678 123456789 1234567890 qwerty letmein s3cr3t p4ssw0rd passw0rd secretvalue " +
    "tokenvalue passwordvalue value xyz"
  ).split(/\s+/),
);
/** Words a filler value is made of (`dummy-password`, `fake_token`, `test-secret`). */
const FILLER_WORDS = new Set(
  (
    "test testing dummy fake foo bar baz sample example my your some the a an secret password passwd pass pwd " +
    "token key api apikey value string str here placeholder change me it please default mock stub local dev demo " +
    "abc abc123 xyz 123 jwt"
  ).split(/\s+/),
);

const norm = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, "");

/**
 * True for a test value, a filler, or the name repeated as the value (`DB_PASSWORD=DB_PASSWORD`,
 * `token: "token"`, `password: dummy-password`). For name-and-randomness detectors only.
 */
export function isFiller(value: string, name?: string): boolean {
  const n = norm(value);
  if (n.length === 0 || FILLERS.has(n)) return true;
  if (name !== undefined && n === norm(name)) return true;
  const words = value
    .replace(/([a-z])([A-Z])/g, "$1 $2")
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  if (words.length > 1 && words.every((w) => FILLER_WORDS.has(w))) return true;
  return hasSequentialRun(value, 8) || isIdentifierConstant(value);
}

/** `abcdefgh`, `12345678`, `0123456789abcdef`: typed, not generated. */
export function hasSequentialRun(value: string, run: number): boolean {
  let len = 1;
  for (let i = 1; i < value.length; i++) {
    len = value.charCodeAt(i) === value.charCodeAt(i - 1) + 1 ? len + 1 : 1;
    if (len >= run) return true;
  }
  return false;
}

/**
 * An upper-case constant (`OPENAI_API_KEY`, `NEXUS-GPT4-API-KEY`): the name of a variable or a
 * secret, not a value. At most one segment may carry digits, so license-key-shaped values
 * (`J8K2M-9QX7P-…`) are not taken for names.
 */
export function isIdentifierConstant(value: string): boolean {
  if (!/^[A-Z][A-Z0-9]*(?:[_-][A-Z0-9]+)+$/.test(value)) return false;
  const segments = value.split(/[_-]/);
  return segments.filter((s) => /\d/.test(s)).length <= 1 && segments.some((s) => /^[A-Z]{3,}$/.test(s));
}

/**
 * Public keys, certificates and digests (long, random, and meant to be shared), and ciphertexts
 * of tools made to commit them (SOPS `ENC[…]`, Ansible Vault): the credential is not in them.
 */
const PUBLIC_MATERIAL_RE =
  /^(?:ENC\[(?:AES256_GCM|PGP|KMS),|\$ANSIBLE_VAULT;|(?:ssh-(?:rsa|ed25519|dss)|ecdsa-sha2-\S+|sk-(?:ssh-ed25519|ecdsa-sha2-\S+)@openssh\.com) AAAA|-----BEGIN (?:CERTIFICATE|PUBLIC KEY|RSA PUBLIC KEY|PGP PUBLIC KEY BLOCK|X509 CRL|CERTIFICATE REQUEST|NEW CERTIFICATE REQUEST|TRUSTED CERTIFICATE|SSH2 PUBLIC KEY)-----|(?:sha(?:1|224|256|384|512)|md5)[:-][A-Za-z0-9+/=]{16,}$|age1[02-9ac-hj-np-z]{58}$)/;

export function isPublicMaterial(value: string): boolean {
  return PUBLIC_MATERIAL_RE.test(value.trimStart());
}

/**
 * Code rather than a literal: a call, an index, a dotted identifier path (`settings.API_KEY`,
 * `process.env.GITHUB_TOKEN`, `os.environ["X"]`, `getToken(ctx)`).
 */
export function looksLikeCode(value: string): boolean {
  return (
    /^[!~-]?(?:this\.)?#?[A-Za-z_$][\w$]*(?:\??\.#?[A-Za-z_$][\w$]*)+[!?;]*$/.test(value) ||
    /^\/\^|^\/.+\/[dgimsuy]*$/.test(value) || // a regex literal
    looksLikeIdentifier(value) ||
    /^[A-Za-z_$][\w$.]*\s*[([]/.test(value) ||
    /^\(/.test(value) ||
    /^(?:new|await|function|lambda|return)\s/.test(value)
  );
}

/**
 * A camelCase or PascalCase identifier of real words (`privateKeyBase64`, `Uint8Array`,
 * `OAuth2Client`, `?NonExpressionParenEnd`, `ArrowToken$1`): two or more letter runs, long on
 * average, each pronounceable or a short acronym. A generated token breaks into many short runs.
 */
export function looksLikeIdentifier(value: string): boolean {
  const v = value.replace(/^[?!@#:_.~-]+/, "").replace(/(?:\$\d+|\+\+|--|[!?;])+$/, "");
  // camel/Pascal case: capitals start the words; all-lower-case with digits is a token's shape.
  if (!/^[A-Za-z][A-Za-z0-9]*$/.test(v) || !/[A-Z]/.test(v) || !/[a-z]/.test(v)) return false;
  const runs = v.match(/[A-Z]{2,}(?=[A-Z][a-z]|\d|$)|[A-Z]?[a-z]+|[A-Z]+/g) ?? [];
  if (runs.length < 2) return false;
  const letters = runs.reduce((n, r) => n + r.length, 0);
  const acronyms = runs.filter((r) => /^[A-Z]+$/.test(r));
  return (
    letters / runs.length >= 3.5 &&
    acronyms.length <= 1 &&
    acronyms.every((r) => r.length <= 5) &&
    runs.every((r) => /^[A-Z]+$/.test(r) || /[aeiouy]/i.test(r))
  );
}

/**
 * Words joined by separators (`kubernetes.io/hostname`, `dark-mode-v2`, `platform:alertWebhookUrl`):
 * a label, a setting, a config key. Random values mix case at random or carry digits.
 */
export function looksLikeWords(value: string): boolean {
  const segments = value.split(/[./:_\-@+ ]+/).filter(Boolean);
  if (segments.length === 0) return false;
  // One segment is a word only if it is short: `kubernetes` is, `ssgjwqjexsiwx2` is not.
  if (segments.length === 1 && segments[0]!.length > 10) return false;
  return segments.every((s) => /^(?:[a-z]+(?:[A-Z][a-z]+)*\d{0,2}|[A-Z][a-z]+|[A-Z]{2,5})$/.test(s));
}

/**
 * Letters only, but cased at random (`ZUJDOiZVQmulfZXiIHNk`): a generated token, not a word or an
 * identifier, whose capitals start words (few switches between cases for the length).
 */
export function looksLikeRandomLetters(value: string): boolean {
  if (value.length < 16 || !/^[A-Za-z]+$/.test(value)) return false;
  const upper = value.replace(/[^A-Z]/g, "").length / value.length;
  const switches = (value.match(/[a-z](?=[A-Z])|[A-Z](?=[a-z])/g) ?? []).length;
  return upper >= 0.25 && upper <= 0.75 && switches >= value.length / 3;
}

/**
 * A value that is the name of a credential, not the credential: `platform:githubToken`,
 * `gh-token`, `redis-password`, `NEXUS-GPT4-API-KEY`, `github:index/actionsSecret:ActionsSecret`.
 * Made of words only (a random segment such as `4f9a2c` would make it a value), one of them a
 * credential noun, in two words at least.
 */
export function namesACredential(value: string): boolean {
  if (value.length > 120 || !/^[A-Za-z0-9_.:/@-]+$/.test(value)) return false;
  const words = nameWords(value);
  return words.length >= 2 && words.every((w) => /^[a-z]+\d{0,2}$/.test(w)) && hasCredentialNoun(words);
}
