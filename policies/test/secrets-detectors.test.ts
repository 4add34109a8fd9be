/**
 * Secret detection, detector by detector and filter by filter, each with cases it must take and
 * cases it must leave; then the sample set (secrets-samples.ts) through the whole scan.
 */
import { describe, expect, it } from "vitest";
import {
  DEFAULT_ENTROPY,
  detectArgPair,
  detectInString,
  isLiteralUnderSecretName,
  loadSecretlint,
  scanForSecrets,
  secretlintMatchIsPlaceholder,
} from "../lib/secrets";
import { findToken, TOKEN_FORMATS } from "../lib/secrets-formats";
import { judgeName, nameWords, KNOWN_NON_SECRET_NAMES } from "../lib/secrets-names";
import {
  acceptValue,
  findInText,
  isBasicCredential,
  isBearerCredential,
  isCurlCredential,
  isPath,
} from "../lib/secrets-text";
import {
  hasSequentialRun,
  isFiller,
  isIdentifierConstant,
  isPlaceholder,
  isPublicMaterial,
  looksLikeCode,
  looksLikeIdentifier,
  looksLikeRandomLetters,
  looksLikeWords,
  namesACredential,
} from "../lib/secrets-values";
import {
  ALNUM,
  B64,
  BENIGN,
  formSamples,
  HELD_OUT_BENIGN,
  HELD_OUT_POSITIVES,
  HEX,
  POSITIVES,
  pw,
  rand,
  TOKENS,
  URLSAFE,
  type Sample,
} from "./secrets-samples";

const RULES = DEFAULT_ENTROPY;
const R = (seed: string, n = 32) => rand(seed, ALNUM, n);

describe("names, judged by whole words", () => {
  it.each([
    ["dbPassword", ["db", "password"]],
    ["OAUTH2_PROXY_SKIP_AUTH_ROUTES", ["oauth2", "proxy", "skip", "auth", "routes"]],
    ["PGPASSWORD", ["pg", "password"]],
    ["APIKey", ["apikey"]],
    ["x-api-key", ["x", "apikey"]],
    ["checksum/secret", ["checksum", "secret"]],
  ])("splits %s", (name, words) => {
    expect(nameWords(name)).toEqual(words);
  });

  it.each([
    ["DB_PASSWORD", "strong"],
    ["apiKey", "strong"],
    ["API_KEY", "strong"],
    ["secret_access_key", "strong"],
    ["GITHUB_PAT", "strong"],
    ["AZURE_DEVOPS_PAT", "strong"],
    ["SECRET_KEY_BASE", "strong"],
    ["todo_secret_do_not_commit", "strong"],
    ["some_api_token_123", "strong"],
    ["mySecretString", "strong"],
    ["ADMIN_PASS", "strong"],
    ["db_pwd", "strong"],
    ["passphrase", "strong"],
    ["--hf-token", "strong"],
    ["OAUTH2_PROXY_COOKIE_SECRET", "strong"],
    ["GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET", "strong"],
    ["AccountKey", "strong"],
    ["STRIPE_KEY", "weak"],
    ["ENCRYPTION_KEY", "strong"],
    ["auth", "weak"],
    ["basic_auth", "weak"],
    ["Authorization", "weak"],
  ] as const)("%s holds a credential (%s)", (name, strength) => {
    expect(judgeName(name)).toBe(strength);
  });

  it.each([
    "author",
    "authority",
    "tokenizer",
    "tokenizer_mode",
    "credentialsId",
    "jobCredentialsId",
    "keyId",
    "kms_key_id",
    "AWS_ACCESS_KEY_ID",
    "key",
    "monkey",
    "public_key",
    "publicToken",
    "csrf_token",
    "max_tokens",
    "pad_token",
    "passwordKey",
    "existingSecretPasswordKey",
    "existingSecret",
    "imagePullSecrets",
    "secretName",
    "secretKeyRef",
    "tokenTTL",
    "TOKEN_URL",
    "DB_PASSWORD_FILE",
    "password_min_length",
    "primaryKey",
    "cacheKey",
    "authorized_keys",
    "checksum/secret",
    "keyVaultToStoreSecrets",
    "GF_AUTH_GENERIC_OAUTH_SCOPES",
    "GF_AUTH_GENERIC_OAUTH_AUTH_URL",
    "GF_AUTH_ANONYMOUS_ORG_ROLE",
    "GF_AUTH_GENERIC_OAUTH_USE_REFRESH_TOKEN",
    "GF_AUTH_TOKEN_ROTATION_INTERVAL_MINUTES",
    "OAUTH2_PROXY_PASS_ACCESS_TOKEN",
    "OAUTH2_PROXY_SKIP_JWT_BEARER_TOKENS",
    "OAUTH2_PROXY_SET_AUTHORIZATION_HEADER",
    "OAUTH2_PROXY_HTPASSWD_FILE",
    "automountServiceAccountToken",
  ])("%s does not", (name) => {
    expect(judgeName(name)).toBe("none");
  });

  it("lists documented settings by their exact names", () => {
    // The verb rule alone would pass this one; the list pins it.
    expect(KNOWN_NON_SECRET_NAMES.has("oauth2proxypassbasicauth")).toBe(true);
    expect(judgeName("OAUTH2_PROXY_PASS_BASIC_AUTH")).toBe("none");
    expect(judgeName("OAUTH2_PROXY_BASIC_AUTH_PASSWORD")).toBe("strong");
  });
});

describe("placeholder and test-value filter", () => {
  it.each([
    "<YOUR_API_KEY>",
    "your-token-here",
    "YOUR_API_KEY_HERE",
    "${DB_PASSWORD}",
    "$CI_JOB_TOKEN",
    "$(cat /run/secrets/token)",
    "{{ .Values.auth.password }}",
    "${{ secrets.GITHUB_TOKEN }}",
    "%API_KEY%",
    "#{DbPassword}#",
    "__API_KEY__",
    "%(password)s",
    "{% States.Array($states.context.taskToken) %}",
    "********",
    "••••••••",
    "[Redacted]",
    "<redacted>",
    "REDACTED",
    "**GDPR COMPLIANT**",
    "sk-...",
    "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
    "AKIAIOSFODNN7EXAMPLE".replace("IOSFODNN7", rand("p", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 9)),
    "changeme",
    "change-it",
    "REPLACE_ME",
    "insert-your-client-secret-here",
    "dummy-password",
    "!Ref DbPassword",
    "aaaaaaaaaaaa",
  ])("%s stands for a credential", (v) => {
    expect(isPlaceholder(v) || isFiller(v)).toBe(true);
  });

  it.each([R("f1"), pw("f2"), TOKENS.githubPat, "hunter2hunter2", "Xk9#mQ2$vL7pWz4!", "SuperSecret123"])(
    "%s is a value",
    (v) => {
      expect(isPlaceholder(v)).toBe(false);
      expect(isFiller(v)).toBe(false);
    },
  );

  it("takes the name repeated as the value for a filler, and nothing else about the name", () => {
    expect(isFiller("DB_PASSWORD", "DB_PASSWORD")).toBe(true);
    expect(isFiller("api-key", "api_key")).toBe(true);
    expect(isFiller(R("f3"), "DB_PASSWORD")).toBe(false);
  });

  it("knows typed runs and constant names", () => {
    expect(hasSequentialRun("0123456789abcdefghij", 8)).toBe(true);
    expect(hasSequentialRun(R("f4"), 8)).toBe(false);
    expect(isIdentifierConstant("OPENAI_API_KEY")).toBe(true);
    expect(isIdentifierConstant("NEXUS-GPT4-API-KEY")).toBe(true);
    expect(isIdentifierConstant("J8K2M-9QX7P-3RT6Y-4WD1Z")).toBe(false);
  });

  it("leaves public material and ciphertexts made to be committed", () => {
    expect(isPublicMaterial("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + rand("k", B64, 43) + " ops@host")).toBe(
      true,
    );
    expect(isPublicMaterial("-----BEGIN CERTIFICATE-----\nMIIB")).toBe(true);
    expect(isPublicMaterial("sha256:" + rand("d", HEX, 64))).toBe(true);
    expect(isPublicMaterial("ENC[AES256_GCM,data:" + rand("e", B64, 20) + ",type:str]")).toBe(true);
    expect(isPublicMaterial("$ANSIBLE_VAULT;1.1;AES256")).toBe(true);
    expect(isPublicMaterial(TOKENS.pem)).toBe(false);
    expect(isPublicMaterial(R("f5"))).toBe(false);
  });

  it("tells code, identifiers, words and credential names from values", () => {
    for (const code of [
      "process.env.GITHUB_TOKEN",
      "getToken(ctx)",
      "!keyProps.found",
      "/^Unexpected token/i",
    ])
      expect(looksLikeCode(code), code).toBe(true);
    expect(looksLikeCode(R("c1"))).toBe(false);
    for (const id of [
      "privateKeyBase64",
      "Uint8Array",
      "OAuth2Client",
      "?NonExpressionParenEnd",
      "ArrowToken$1",
    ])
      expect(looksLikeIdentifier(id), id).toBe(true);
    for (const tok of [R("c2", 20), rand("c3", "abcdefghijklmnopqrstuvwxyz0123456789", 32)])
      expect(looksLikeIdentifier(tok), tok).toBe(false);
    expect(looksLikeWords("kubernetes.io/hostname")).toBe(true);
    expect(looksLikeWords("platform:alertWebhookUrl")).toBe(true);
    expect(looksLikeWords("ssgjwqjexsiwx2")).toBe(false);
    expect(looksLikeRandomLetters("ZUJDOiZVQmulfZXiIHNk")).toBe(true);
    expect(looksLikeRandomLetters("AbstractSingletonProxyFactoryBean")).toBe(false);
    for (const n of [
      "platform:githubToken",
      "gh-token",
      "redis-password",
      "github:index/actionsSecret:ActionsSecret",
    ])
      expect(namesACredential(n), n).toBe(true);
    expect(namesACredential("sk-live-pasted-secret-4f9a2c")).toBe(false);
  });

  it("tells paths from base64 that starts with a slash", () => {
    expect(isPath("/run/secrets/token")).toBe(true);
    expect(isPath("./key.pem")).toBe(true);
    expect(isPath("/" + rand("b", B64, 42) + "=")).toBe(false);
  });
});

describe("provider token formats", () => {
  const formats = [...new Set(TOKEN_FORMATS.map((f) => f.id))];

  it.each(Object.entries(TOKENS).filter(([k]) => !["jwt", "pem", "awsSecret"].includes(k)))(
    "finds %s under any key and inside text",
    (_name, token) => {
      expect(findToken(token)).toBeDefined();
      expect(findToken(`config:\n  x: "${token}"\n`)).toBeDefined();
      expect(findToken(`{\\"v\\":\\"x\\"}\\n${token}`)).toBeDefined();
    },
  );

  it.each([
    ["a placeholder body", ["glp", "at-", "X".repeat(20)].join("")],
    ["an x-run", ["h", "f_", "x".repeat(34)].join("")],
    ["too short", ["gh", "p_", R("t1", 20)].join("")],
    ["too long", ["gs", "k_", R("t2", 60)].join("")],
    [
      "glued to a word",
      "use" + ["_h", "f_", rand("t3", "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 34)].join(""),
    ],
    ["low entropy", ["AI", "za", "a".repeat(35)].join("")],
    ["an example key", ["AK", "IA"].join("") + rand("t4", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 9) + "EXAMPLE"],
    ["inside a longer hex run", "rapi" + ["da", "pi"].join("") + rand("t5", HEX, 32)],
    ["an image digest", "ghcr.io/acme/app@sha256:" + rand("t6", HEX, 64)],
  ])("leaves %s", (_what, value) => {
    expect(findToken(value)).toBeUndefined();
  });

  it("covers the formats the issue names, and more", () => {
    for (const id of ["gitlab", "grafana", "huggingface", "vault", "vercel", "groq", "databricks", "google"])
      expect(formats).toContain(id);
    for (const id of ["notion", "azure", "anthropic", "npm", "github", "slack", "stripe", "aws"])
      expect(formats).toContain(id);
  });

  it("requires Anthropic's admin key shape, not just its prefix", () => {
    expect(findToken(TOKENS.anthropicAdmin)?.id).toBe("anthropic");
    expect(findToken(TOKENS.anthropicAdmin.slice(0, -2) + "BB")).toBeUndefined();
  });
});

describe("credentials written into text", () => {
  const value = R("w1");
  it.each([
    ["key = value", `api_token = ${value}`],
    ["key: value", `api_token: ${value}`],
    [":=", `apiToken := "${value}"`],
    ["=>", `"api_token" => "${value}"`],
    ["?=", `API_TOKEN ?= "${value}"`],
    [".=", `$apiToken .= "${value}"`],
    ["::=", `API_TOKEN ::= "${value}"`],
    ["||=", `@token ||= "${value}"`],
    ["XML element", `<apiToken>${value}</apiToken>`],
    ["XML key/value attributes", `<add key="ApiToken" value="${value}" />`],
    ["XML keyed element", `<entry key="apiToken">${value}</entry>`],
    ["setProperty", `System.setProperty("API_TOKEN", "${value}")`],
    ["var K string =", `var apiToken string = "${value}"`],
    ["typed const", `const API_TOKEN: &str = "${value}";`],
    ["#define", `#define API_TOKEN "${value}"`],
    ["name/value fields", `- name: API_TOKEN\n  value: ${value}`],
    ["escaped JSON", `{\\"api_token\\": \\"${value}\\"}`],
    ["Bearer with a space", `Authorization: Bearer ${value}`],
    ["Basic with a space", `Authorization: Basic ${Buffer.from("svc:" + pw("w2")).toString("base64")}`],
    ["a free-standing Bearer", `header: Bearer ${value}`],
    ["curl -u", `curl -u deploy:${pw("w3")} https://h.example.org`],
    ["--flag value", `serve --api-key ${value} --port 8000`],
    ["--flag=value", `serve --api-key=${value}`],
    ["sshpass -p", `sshpass -p '${pw("w4")}' ssh h`],
    [".netrc", `machine h.example.org login ci password ${pw("w5")}`],
    ["URL query", `https://h.example.org/x?access_token=${value}`],
    ["npm _authToken", `//npm.example.org/:_authToken=${value}`],
  ])("finds %s", (_form, text) => {
    expect(findInText(text, RULES)).toBeDefined();
  });

  it.each([
    ["a placeholder", `api_token = <YOUR_API_TOKEN>`],
    ["a reference", `api_token = \${API_TOKEN}`],
    ["code", `api_token = getToken(ctx)`],
    ["a dotted reference", `api_token = settings.API_TOKEN`],
    ["a ternary", `x = cond ? 'token' : '${value}'`],
    ["a list of names", `resources: ["secrets", "configmaps"]`],
    ["an ARN field", `arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-${rand("w6", ALNUM, 6)}`],
    ["a badge token", `![cov](https://codecov.io/gh/acme/x/graph/badge.svg?token=${R("w7", 10)})`],
    ["a scheme followed by code", `createGateway({ apiKey: token }).speech(modelId)`],
    ["curl user:password", `curl -u user:password https://h`],
    ["curl default credentials", `curl -u guest:guest https://h`],
    ["--token-file", `serve --token-file /run/secrets/token`],
    ["a switch before a name", `pulumi config set --secret platform:githubToken`],
    ["npm token from the environment", `//registry.npmjs.org/:_authToken=\${NPM_TOKEN}`],
    ["prose", `The token used to authenticate; set password = your password.`],
  ])("leaves %s", (_what, text) => {
    expect(findInText(text, RULES)).toBeUndefined();
  });

  it("accepts a value by the name's strength and the text's evidence", () => {
    expect(acceptValue(R("v1"), "STRIPE_KEY", "weak", RULES, { quoted: false, text: true })).toBe(true);
    expect(acceptValue("dark-mode-v2", "FEATURE_KEY", "weak", RULES, { quoted: false, text: true })).toBe(
      false,
    );
    expect(acceptValue("configmaps", "secrets", "strong", RULES, { quoted: true, text: true })).toBe(false);
    expect(acceptValue(rand("v2", "0123456789", 18), "client_secret", "strong", RULES)).toBe(true);
    expect(acceptValue("1700000000000", "token_expiry_ms", "strong", RULES)).toBe(false);
    expect(acceptValue(R("v3"), "author", "none", RULES)).toBe(false);
  });

  it("reads curl, Basic and Bearer credentials", () => {
    expect(isCurlCredential(`svc:${pw("c1")}`)).toBe(true);
    expect(isCurlCredential(`'${R("c2")}:'`)).toBe(true); // an API key as the user, no password
    expect(isCurlCredential("1000:1000")).toBe(false);
    expect(isCurlCredential('"$USER:$PASS"')).toBe(false);
    expect(isCurlCredential("neo:[PASSWORD]")).toBe(false);
    expect(isBasicCredential(Buffer.from("svc:" + pw("c3")).toString("base64"))).toBe(true);
    expect(isBasicCredential(Buffer.from("user:password").toString("base64"))).toBe(false);
    expect(isBearerCredential(R("c4", 40), RULES)).toBe(true);
    expect(isBearerCredential("<token>", RULES)).toBe(false);
  });
});

describe("--flag value pairs as separate arguments", () => {
  it("judges the value with the flag as its name", () => {
    expect(detectArgPair("--api-key", R("a1", 40), false, RULES)?.detector).toBe("flag");
    expect(detectArgPair("--hf-token", R("a2", 34), false, RULES)?.detector).toBe("flag");
    expect(detectArgPair("--api-key", "$(API_KEY)", false, RULES)).toBeUndefined();
    expect(detectArgPair("--token-file", "/run/secrets/token", false, RULES)).toBeUndefined();
    expect(detectArgPair("--port", "8000", false, RULES)).toBeUndefined();
  });

  it("reads -u as curl's user:password only in a curl command", () => {
    expect(detectArgPair("-u", `svc:${pw("a3")}`, true, RULES)?.detector).toBe("curl-credentials");
    expect(detectArgPair("-u", "1000:1000", false, RULES)).toBeUndefined();
  });

  it("finds them in args arrays and command lines, and says where", async () => {
    const found = await scanForSecrets(
      { args: ["serve", "--api-key", R("a4", 40)], command: ["sh", "-c", `run --hf-token ${R("a5", 34)}`] },
      RULES,
    );
    expect(found.map((f) => [f.path, f.detector])).toEqual(
      expect.arrayContaining([
        [["args", 2], "flag"],
        [["command", 2], "flag"],
      ]),
    );
    expect(found).toHaveLength(2);
  });
});

describe("names and literals in the structured rules", () => {
  it("asks a weak name for a random value, a strong one for any literal", () => {
    expect(isLiteralUnderSecretName("DB_PASSWORD", "hunter2hunter2", 4)).toBe(true);
    expect(isLiteralUnderSecretName("STRIPE_KEY", R("l1"), 4)).toBe(true);
    expect(isLiteralUnderSecretName("FEATURE_KEY", "dark-mode", 4)).toBe(false);
    expect(isLiteralUnderSecretName("auth", "kubernetes", 4)).toBe(false);
    expect(isLiteralUnderSecretName("DB_PASSWORD", "<password>", 4)).toBe(false);
    expect(isLiteralUnderSecretName("author", R("l2"), 4)).toBe(false);
  });

  it("skips Sealed Secrets' ciphertexts", async () => {
    const sealed = { spec: { encryptedData: { password: "AgB" + rand("s1", B64, 300) } } };
    expect(await scanForSecrets(sealed, RULES)).toEqual([]);
    expect(await scanForSecrets({ spec: { password: "AgB" + rand("s1", B64, 300) } }, RULES)).not.toEqual([]);
  });
});

describe("the secretlint recommended preset", () => {
  it("loads and runs on this Node (its engines field asks for 22; the pinned release works on 20)", async () => {
    const lint = await loadSecretlint();
    const rules = new Set(
      (await lint([TOKENS.gitlabPat, TOKENS.groq, TOKENS.npm].join("\n\n"))).map((m) => m.ruleId),
    );
    expect(rules).toEqual(
      new Set([
        "@secretlint/secretlint-rule-gitlab",
        "@secretlint/secretlint-rule-groq",
        "@secretlint/secretlint-rule-npm",
      ]),
    );
  });

  it("has its matches filtered like the pack's own", () => {
    expect(secretlintMatchIsPlaceholder("postgres://app:<password>@db")).toBe(true);
    expect(secretlintMatchIsPlaceholder("_authToken=${NPM_TOKEN}")).toBe(true);
    expect(secretlintMatchIsPlaceholder(["h", "f_", "x".repeat(34)].join(""))).toBe(true);
    expect(secretlintMatchIsPlaceholder(TOKENS.npm)).toBe(false);
    expect(secretlintMatchIsPlaceholder(`postgres://app:${pw("s2")}@db`)).toBe(false);
  });
});

/** `{ text }` samples go through the string detectors too, as the preflight's stack-file check does. */
const textOf = (s: Sample) => (s.input as { text?: unknown }).text;

describe("the sample set", () => {
  const positives = [...POSITIVES, ...HELD_OUT_POSITIVES, ...formSamples("acme"), ...formSamples("zeta")];
  const benign = [...BENIGN, ...HELD_OUT_BENIGN];

  it.each(positives.map((s) => [`${s.cls}: ${s.what}`, s] as const))("finds %s", async (_n, s) => {
    expect(await scanForSecrets(s.input, RULES)).not.toEqual([]);
    const t = textOf(s);
    if (typeof t === "string") expect(detectInString(t, undefined, RULES)).toBeDefined();
  });

  it.each(benign.map((s) => [`${s.cls}: ${s.what}`, s] as const))("leaves %s", async (_n, s) => {
    expect(await scanForSecrets(s.input, RULES)).toEqual([]);
  });

  it("draws tokens from the generator, the same on every run", () => {
    expect(rand("seed", URLSAFE, 16)).toBe(rand("seed", URLSAFE, 16));
    expect(rand("seed-1", ALNUM, 16)).not.toBe(rand("seed-2", ALNUM, 16));
  });
});
