/**
 * Is this name (a key, an env var, a flag, an XML element) one that holds a credential? Names are
 * judged by whole words, not substrings: `author`, `tokenizer`, `credentialsId`, `GF_AUTH_*` and
 * `OAUTH2_PROXY_*` settings all contain a secret-sounding substring and hold no secret. A name is
 * split into words (`dbPassword` → db password, `OAUTH2_PROXY_SKIP_AUTH_ROUTES` → oauth2 proxy skip
 * auth routes), then read the way a person reads it: the credential noun (password, token, key…)
 * is what the value is, unless a word after it says the value is something about the credential
 * (its file, name, URL, length, TTL…), a word before it says it is not secret (public key, CSRF
 * token, max tokens), or a verb before it makes the whole name a switch (`PASS_ACCESS_TOKEN=true`).
 */

/** How strongly a name says its value is a credential. */
export type NameStrength = "strong" | "weak" | "none";

/** Nouns that name a credential whatever precedes them. */
const STRONG_NOUNS = new Set([
  "password",
  "passwords",
  "passwd",
  "passphrase",
  "pwd",
  "pw",
  "pass",
  "secret",
  "secrets",
  "token",
  "tokens",
  "credential",
  "credentials",
  "creds",
  "pat",
  // Glued forms, after splitting (`apikey`, `APIKEY`, `accesstoken`).
  "apikey",
  "apikeys",
  "privatekey",
  "secretkey",
  "accesskey",
  "authtoken",
  "accesstoken",
  "apitoken",
]);

/**
 * Nouns that name a credential only in some uses: `key` (a toleration's key, a Secret's key name,
 * a cache key), `auth` (a method, a section), `authorization` (a header: a credential only with a
 * scheme or a random value). A value under one must also look random.
 */
const WEAK_NOUNS = new Set(["key", "keys", "auth", "authorization"]);

/**
 * Words before `key` that make it a credential outright (`API_KEY`, `secretAccessKey`,
 * `SIGNING_KEY`, Azure's `AccountKey`). Other qualifiers leave it weak (`STRIPE_KEY`).
 */
const STRONG_KEY_QUALIFIERS = new Set([
  "api",
  "secret",
  "private",
  "access",
  "signing",
  "sign",
  "encryption",
  "encrypt",
  "decryption",
  "master",
  "license",
  "licence",
  "account",
  "shared",
  "client",
  "session",
  "hmac",
  "jwt",
  "webhook",
  "ssh",
  "deploy",
  "admin",
  "root",
  "service",
  "app",
  "application",
  "subscription",
  "storage",
  "auth",
  "cookie",
  "crypto",
  "aes",
  "rsa",
  "gpg",
  "pgp",
  "sas",
  "integration",
  "personal",
]);

/**
 * Words before `key` that make it not a credential: database and data-structure keys, public
 * material, and `passwordKey`/`userKey`, which name a key inside a Secret.
 */
const NON_SECRET_KEY_QUALIFIERS = new Set([
  "public",
  "pub",
  "publishable",
  "primary",
  "foreign",
  "partition",
  "sort",
  "hash",
  "cache",
  "caching",
  "idempotency",
  "routing",
  "lookup",
  "map",
  "object",
  "dedup",
  "dedupe",
  "deduplication",
  "group",
  "shard",
  "sharding",
  "index",
  "idx",
  "natural",
  "sequence",
  "schema",
  "bucket",
  "hot",
  "label",
  "annotation",
  "node",
  "config",
  "configmap",
  "metric",
  "metrics",
  "tag",
  "row",
  "column",
  "field",
  "unique",
  "composite",
  "range",
  "authorized",
  "known",
  "host",
  "trusted",
  "verification",
  "verify",
  "ca",
  "cert",
  "certificate",
  "value",
  "item",
  "entry",
  "dict",
  "json",
  "yaml",
  "property",
  "topic",
  "message",
  "event",
  "state",
  "redis",
  "s3",
  "path",
  "file",
  "user",
  "username",
  "email",
  "password",
  "passwd",
  "pwd",
  "pass",
  "token",
  "tokens",
  "secret",
  "secrets",
  "credential",
  "credentials",
  "tls",
  "selector",
  "match",
  "feature",
  "flag",
  "toggle",
  "i18n",
  "translation",
  "locale",
  "react",
  "list",
]);

/** Words before a strong noun that make it not a credential (`public_key`, `MAX_TOKENS`). */
const NON_SECRET_PRECEDING = new Set([
  "public",
  "pub",
  "publishable",
  "csrf",
  "xsrf",
  "anti",
  "max",
  "min",
  "num",
  "number",
  "count",
  "total",
  "limit",
  "budget",
  "usage",
  "input",
  "output",
  "prompt",
  "completion",
  "context",
  "batched",
  "reserved",
  "special",
  "stop",
  "pad",
  "bos",
  "eos",
  "unk",
  "mask",
  "cls",
  "sep",
  "next",
  "page",
  "pagination",
  "continuation",
  "cancellation",
  "cancel",
  "sync",
  "lexer",
  "parser",
  "syntax",
  "first",
  // A digest of the Secret (Helm's `checksum/secret` annotation), not the Secret.
  "checksum",
  "hash",
  "sha",
  "sha1",
  "sha256",
  "md5",
  "digest",
  "fingerprint",
  // A Secret's name, not its content: `existingSecret`, `imagePullSecrets`, `tlsSecret`.
  "existing",
  "external",
  "from",
  "pull",
  "tls",
  "cert",
  "certificate",
  "ca",
]);

/**
 * Words after the credential noun that make the value something about the credential (its
 * location, name, format, lifetime, a switch for it) rather than the credential itself.
 */
const QUALIFIERS_AFTER = new Set(
  (
    "id ids name names ref refs reference references key keys file files path paths dir directory folder " +
    "location loc url urls uri uris endpoint endpoints host hostname hosts port address addr server servers " +
    "length len size min max minimum maximum count limit limits enabled enable enables disabled disable " +
    "required require requires optional mode modes type types kind style format formats ttl expiry expires " +
    "expiration lifetime age duration timeout timeouts interval period seconds secs minutes mins hours days " +
    "ms rotation policy policies strategy provider providers method methods source sources selector template " +
    "templates version versions header headers audience audiences aud issuer iss scope scopes claim claims " +
    "attribute attributes attr field fields prefix suffix regex pattern patterns namespace namespaces ns " +
    "label labels annotation annotations role roles group groups user users username usernames email " +
    "emails domain domains algorithm algorithms alg cipher store stores storage backend backends manager " +
    "controller service svc handler handlers callback redirect login logout signup grant flow exchange " +
    "introspection revocation generator charset chars characters alphabet lookup mapping map list lists " +
    "whitelist allowlist blocklist blacklist schema spec description desc help hint message messages title " +
    "placeholder prompt param params parameter parameters arg args argument option options config configs " +
    "configuration settings setting properties props metadata info env envvar variable var vars " +
    "mount mounts volume volumes arn arns region vault kv engine plugin plugins review reviewer " +
    "validation validator verification verify check checks checker rules rule condition conditions " +
    "status state error errors reason histogram total bucket buckets metric metrics rate ratio " +
    "percent percentage threshold weight priority order sort index idx level levels depth image images " +
    "tag tags digest checksum hash hashes sha fingerprint thumbprint cert certs certificate certificates " +
    "ca bundle chain subject sub nonce salt iterations rounds cost strength complexity entropy " +
    "history reuse attempts retries retry lockout reset change changed update updated created create " +
    "delete deleted last modified time timestamp date when at since until before after ts epoch " +
    "renew renewal reload cache cached caching parse parser lexer encoder decoder " +
    "prefixes suffixes pool pools queue queues topic topics channel channels stream streams " +
    "table tables column columns db database collection tokenizer embedding embeddings " +
    "hook hooks event events trigger triggers action actions permission permissions display caption"
  )
    .split(/\s+/)
    .filter(Boolean),
);

/** Words after the noun that still describe the credential's own value (`TOKEN_VALUE`, `PASSWORD_B64`). */
const PASS_THROUGH_AFTER = new Set([
  "value",
  "val",
  "str",
  "string",
  "b64",
  "base64",
  "hex",
  "raw",
  "plain",
  "plaintext",
  "literal",
  "data",
  "txt",
  "text",
  "override",
  "encoded",
  "enc",
  "encrypted",
  "old",
  "new",
  "current",
  "prev",
  "previous",
  "primary",
  "secondary",
  "main",
  "default",
]);

/** Verbs that make a name a switch about the credential (`PASS_ACCESS_TOKEN=true`). */
const SWITCH_VERBS = new Set([
  "pass",
  "set",
  "skip",
  "use",
  "uses",
  "enable",
  "disable",
  "allow",
  "require",
  "forward",
  "strip",
  "validate",
  "verify",
  "check",
  "rotate",
  "expose",
  "inject",
  "generate",
  "show",
  "hide",
  "mask",
  "redact",
  "persist",
  "save",
  "include",
  "exclude",
  "ignore",
  "accept",
  "reject",
  "trust",
  "propagate",
  "send",
  "log",
  "print",
  "prefer",
  "auto",
  "insecure",
  "no",
  "without",
  "has",
  "is",
  "should",
  "can",
  "must",
]);

const PREPOSITIONS = new Set(["to", "for", "of", "into", "with", "about", "per", "via", "by"]);

/**
 * Documented settings whose name ends in a credential noun but whose value is a switch or a
 * label: oauth2-proxy's `PASS_*`/`SET_*`/`SKIP_*` flags, Kubernetes' token-mount switches. The
 * verb rule above already reads most of them this way; the list pins the documented ones.
 */
export const KNOWN_NON_SECRET_NAMES: ReadonlySet<string> = new Set(
  [
    "OAUTH2_PROXY_PASS_ACCESS_TOKEN",
    "OAUTH2_PROXY_PASS_BASIC_AUTH",
    "OAUTH2_PROXY_SET_BASIC_AUTH",
    "OAUTH2_PROXY_PASS_AUTHORIZATION_HEADER",
    "OAUTH2_PROXY_SET_AUTHORIZATION_HEADER",
    "OAUTH2_PROXY_SKIP_JWT_BEARER_TOKENS",
    "OAUTH2_PROXY_SKIP_AUTH_PREFLIGHT",
    "OAUTH2_PROXY_SKIP_AUTH_STRIP_HEADERS",
    "OAUTH2_PROXY_SKIP_AUTH_ROUTES",
    "OAUTH2_PROXY_SKIP_AUTH_REGEX",
    "OAUTH2_PROXY_AUTH_LOGGING",
    "OAUTH2_PROXY_PREFER_EMAIL_TO_USER",
    "OAUTH2_PROXY_BASIC_AUTH_PASSWORD_FILE",
    "GF_AUTH_BASIC_ENABLED",
    "GF_AUTH_DISABLE_LOGIN_FORM",
    "GF_AUTH_DISABLE_SIGNOUT_MENU",
    "GF_AUTH_ANONYMOUS_ENABLED",
    "GF_AUTH_PROXY_ENABLED",
    "GF_AUTH_PROXY_AUTO_SIGN_UP",
    "GF_AUTH_GENERIC_OAUTH_USE_REFRESH_TOKEN",
    "GF_AUTH_GENERIC_OAUTH_USE_PKCE",
    "automountServiceAccountToken",
    "TOKENIZERS_PARALLELISM",
  ].map((n) => normalise(n)),
);

function normalise(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, "");
}

/**
 * Credential nouns that appear glued to another word in one-case names (`PGPASSWORD`,
 * `dbpassword`, `clientsecret`, `nextauth_secret`). Plain `key` is not among them: `monkey`,
 * `turkey` and `hotkey` end in it.
 */
const GLUED_SUFFIXES = [
  "password",
  "passwd",
  "passphrase",
  "secret",
  "token",
  "apikey",
  "accesskey",
  "secretkey",
  "privatekey",
  "credentials",
  "credential",
];

/** Words that end in a glued suffix but are one word. */
const GLUED_EXCEPTIONS = new Set(["nosecret", "untoken"]);

/**
 * The words of a name: camelCase, snake_case, kebab-case, dotted and slashed segments all split;
 * lower-cased; glued credential nouns split off (`pgpassword` → pg password).
 */
export function nameWords(name: string): string[] {
  const spaced = name
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2")
    .toLowerCase();
  const out: string[] = [];
  for (const w of spaced.split(/[^a-z0-9]+/)) {
    if (!w) continue;
    if (STRONG_NOUNS.has(w) || WEAK_NOUNS.has(w) || GLUED_EXCEPTIONS.has(w)) {
      out.push(w);
      continue;
    }
    const suffix = GLUED_SUFFIXES.find((s) => w.length > s.length && w.endsWith(s));
    if (suffix) out.push(w.slice(0, -suffix.length), suffix);
    else out.push(w);
  }
  // `api key`, `access token`… read as one noun, so the qualifier before them is the next word.
  for (let i = 0; i + 1 < out.length; i++) {
    const pair = out[i]! + out[i + 1]!;
    if ((pair === "apikey" || pair === "apitoken" || pair === "authtoken") && STRONG_NOUNS.has(pair))
      out.splice(i, 2, pair);
  }
  return out;
}

const isNumberWord = (w: string) => /^\d+$/.test(w);

/** True when one of `words` is a credential noun (`token`, `password`, `apikey`, `key`…). */
export function hasCredentialNoun(words: readonly string[]): boolean {
  return words.some((w) => STRONG_NOUNS.has(w) || WEAK_NOUNS.has(w));
}

/** Judges one name. Pure; cached by `secretNameStrength`. */
export function judgeName(name: string): NameStrength {
  if (KNOWN_NON_SECRET_NAMES.has(normalise(name))) return "none";
  const words = nameWords(name);
  // The last credential noun decides; words after it may only describe its value.
  let at = -1;
  for (let i = words.length - 1; i >= 0; i--) {
    const w = words[i]!;
    if (STRONG_NOUNS.has(w) || WEAK_NOUNS.has(w)) {
      at = i;
      break;
    }
  }
  if (at < 0) return "none";
  const noun = words[at]!;
  const after = words.slice(at + 1);
  const before = words.slice(0, at);
  const prev = before[before.length - 1];
  let strength: NameStrength = STRONG_NOUNS.has(noun) ? "strong" : "weak";

  if (noun === "key" || noun === "keys") {
    if (prev === undefined) return "none"; // bare `key`: a toleration's, a selector's, a Secret key's name
    if (STRONG_KEY_QUALIFIERS.has(prev)) strength = "strong";
    else if (NON_SECRET_KEY_QUALIFIERS.has(prev)) return "none";
  }
  if (strength === "weak") {
    // A weak noun must end the name (`basic_auth`, `STRIPE_KEY`): `GF_AUTH_ANONYMOUS_ORG_ROLE` is
    // a setting of the auth section.
    if (!after.every((w) => PASS_THROUGH_AFTER.has(w) || isNumberWord(w))) return "none";
  } else if (after.some((w) => QUALIFIERS_AFTER.has(w))) {
    return "none";
  }
  if (prev !== undefined && NON_SECRET_PRECEDING.has(prev)) return "none";
  // A verb shortly before the noun makes the name a switch (`SKIP_JWT_BEARER_TOKENS`); a
  // preposition makes it a name about the credential (`keyVaultToStoreSecrets`, `path_to_token`).
  for (let i = Math.max(0, at - 3); i < at; i++)
    if (SWITCH_VERBS.has(words[i]!) || PREPOSITIONS.has(words[i]!)) return "none";
  return strength;
}

const cache = new Map<string, NameStrength>();

/** `judgeName`, cached (names repeat across resources). */
export function secretNameStrength(name: string): NameStrength {
  let hit = cache.get(name);
  if (hit === undefined) {
    hit = judgeName(name);
    if (cache.size > 20_000) cache.clear();
    cache.set(name, hit);
  }
  return hit;
}
