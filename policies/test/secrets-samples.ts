/**
 * The pack's own secret-detection sample set: credentials in the shapes they take in config files,
 * code, command lines and resource inputs (positives), and look-alikes that are not credentials
 * (benign): placeholders, references, documented settings with secret-sounding names, hashes,
 * ids. Every token is generated at run time from a seeded generator in the provider's published
 * format, so no literal credential is in the source tree for a repository scanner to flag, and
 * the set is stable from run to run.
 *
 * Each sample is an input as a resource would carry it (`{ text }` for free text); detection is
 * "at least one finding" from the pack's scan.
 */

/**
 * Deterministic generator: the seed string hashed (xmur3) into the state of mulberry32, first
 * outputs discarded, so nearby seeds (`a1`, `a2`) give unrelated tokens.
 */
function rng(seed: string): () => number {
  let h = 1779033703 ^ seed.length;
  for (let i = 0; i < seed.length; i++) {
    h = Math.imul(h ^ seed.charCodeAt(i), 3432918353);
    h = (h << 13) | (h >>> 19);
  }
  h = Math.imul(h ^ (h >>> 16), 2246822507);
  h = Math.imul(h ^ (h >>> 13), 3266489909);
  let a = (h ^ (h >>> 16)) >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (let i = 0; i < 4; i++) next();
  return next;
}

export const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
export const LOWER = "abcdefghijklmnopqrstuvwxyz";
export const DIGITS = "0123456789";
export const HEX = "0123456789abcdef";
export const ALNUM = UPPER + LOWER + DIGITS;
export const LETTERS = UPPER + LOWER;
export const B64 = ALNUM + "+/";
export const URLSAFE = ALNUM + "_-";

/** `n` characters of `charset`, the same for the same seed. */
export function rand(seed: string, charset: string, n: number): string {
  const next = rng(seed);
  let s = "";
  for (let i = 0; i < n; i++) s += charset[Math.floor(next() * charset.length)]!;
  return s;
}

/** A token: a prefix (split so it is not a literal) and a random body. */
export const tok = (prefix: string, seed: string, charset: string, n: number, suffix = ""): string =>
  [prefix, rand(seed, charset, n), suffix].join("");

/** A random password-like literal (letters, digits, a few symbols). */
export const pw = (seed: string, n = 18): string => rand(seed, ALNUM + "!#%^*-_", n);

const uuid = (seed: string): string => {
  const h = rand(seed, HEX, 32);
  return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join("-");
};
const b64 = (s: string) => Buffer.from(s).toString("base64");

/** Provider tokens in their published formats (checked against upstream rule definitions). */
export const TOKENS = {
  githubPat: tok("gh" + "p_", "gh1", ALNUM, 36),
  githubOauth: tok("gh" + "o_", "gh2", ALNUM, 36),
  githubApp: tok("gh" + "s_", "gh3", ALNUM, 36),
  githubFine: tok("github" + "_pat_", "gh4", ALNUM, 22, "_" + rand("gh5", ALNUM, 59)),
  gitlabPat: tok("glp" + "at-", "gl1", URLSAFE, 20),
  gitlabRoutable: tok("glp" + "at-", "gl2", URLSAFE, 36, "." + rand("gl3", LOWER + DIGITS, 9)),
  gitlabDeploy: tok("gld" + "t-", "gl4", ALNUM, 20),
  gitlabRunner: tok("glr" + "t-", "gl5", ALNUM, 20),
  gitlabTrigger: tok("glp" + "tt-", "gl6", HEX, 40),
  grafanaCloud: tok("gl" + "c_", "gf1", B64, 68, "=="),
  grafanaSa: tok("gl" + "sa_", "gf2", ALNUM, 32, "_" + rand("gf3", HEX, 8)),
  hfUser: tok("h" + "f_", "hf1", LETTERS, 34),
  hfOrg: tok("api" + "_org_", "hf2", LETTERS, 34),
  vaultService: tok("hv" + "s.", "hv1", URLSAFE, 95),
  vaultBatch: tok("hv" + "b.", "hv2", URLSAFE, 150),
  vercelPat: tok("vc" + "p_", "vc1", ALNUM, 56),
  vercelAiGateway: tok("vc" + "k_", "vc2", ALNUM, 40),
  groq: tok("gs" + "k_", "gq1", ALNUM, 52),
  databricks: tok("da" + "pi", "db1", HEX, 32),
  databricksSuffixed: tok("da" + "pi", "db2", HEX, 32, "-2"),
  googleApi: tok("AI" + "za", "gc1", URLSAFE, 35),
  googleOauthSecret: tok("GOC" + "SPX-", "gc2", URLSAFE, 28),
  notion: tok("nt" + "n_", "nt1", DIGITS, 11, rand("nt2", ALNUM, 35)),
  azureClientSecret: [rand("az1", ALNUM, 3), "8Q~", rand("az2", ALNUM + "_~.-", 34)].join(""),
  anthropicAdmin: tok("sk-ant-" + "admin01-", "an1", URLSAFE, 93, "AA"),
  anthropicApi: tok("sk-ant-" + "api03-", "an2", URLSAFE, 93, "AA"),
  openaiProject: tok("sk-" + "proj-", "oa1", URLSAFE, 74, "T3Blbk" + "FJ" + rand("oa2", URLSAFE, 74)),
  npm: tok("np" + "m_", "np1", ALNUM, 36),
  awsAccessKeyId: tok("AK" + "IA", "aw1", UPPER + "234567", 16),
  awsSecret: rand("aw2", B64, 40),
  slackBot: ["xo" + "xb", rand("sl1", DIGITS, 12), rand("sl2", DIGITS, 13), rand("sl3", ALNUM, 24)].join("-"),
  slackWebhook: [
    "https://hooks.slack" + ".com/services",
    "T" + rand("sl4", UPPER + DIGITS, 8),
    "B" + rand("sl5", UPPER + DIGITS, 10),
    rand("sl6", ALNUM, 24),
  ].join("/"),
  stripeLive: tok("sk" + "_live_", "st1", ALNUM, 32),
  stripeRestricted: tok("rk" + "_live_", "st2", ALNUM, 32),
  sendgrid: ["S" + "G", rand("sg1", URLSAFE, 22), rand("sg2", URLSAFE, 43)].join("."),
  dockerHub: tok("dckr" + "_pat_", "dk1", URLSAFE, 27),
  digitalOcean: tok("dop" + "_v1_", "do1", HEX, 64),
  pulumi: tok("pu" + "l-", "pu1", HEX, 40),
  pypi: tok("pypi-" + "AgEIcHlwaS5vcmc", "py1", URLSAFE, 70),
  doppler: tok("dp." + "st.", "dp1", ALNUM, 43),
  tailscale: ["tskey", "auth", rand("ts1", ALNUM, 17), rand("ts2", ALNUM, 33)].join("-"),
  linear: tok("lin" + "_api_", "li1", ALNUM, 40),
  shopify: tok("shp" + "at_", "sh1", HEX, 32),
  sentryUser: tok("sntr" + "yu_", "se1", HEX, 64),
  postman: tok("PM" + "AK-", "pm1", HEX, 24, "-" + rand("pm2", HEX, 34)),
  perplexity: tok("pp" + "lx-", "px1", ALNUM, 48),
  figma: tok("fi" + "gd_", "fg1", URLSAFE, 40),
  ageKey: tok("AGE-SECRET" + "-KEY-1", "ag1", "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58),
  jwt: [
    "ey" + "J" + b64('{"alg":"HS256","typ":"JWT"}').slice(3).replace(/=+$/, ""),
    "ey" + "J" + b64('{"sub":"svc-deploy","iat":1700000000}').slice(3).replace(/=+$/, ""),
    rand("jw1", URLSAFE, 43),
  ].join("."),
  pem: [
    "-----BEGIN ",
    "OPENSSH PRIVATE KEY-----\n",
    rand("pk1", B64, 70),
    "\n",
    rand("pk2", B64, 70),
    "\n-----END OPENSSH ",
    "PRIVATE KEY-----\n",
  ].join(""),
} as const;

export interface Sample {
  /** What the sample is, for the test name. */
  readonly what: string;
  /** The class it stands for (detector or filter), for the per-class tally. */
  readonly cls: string;
  /** The input as a resource carries it. */
  readonly input: unknown;
}

const text = (cls: string, what: string, t: string): Sample => ({ cls, what, input: { text: t } });
const env = (cls: string, name: string, value: string): Sample => ({
  cls,
  what: `env ${name}`,
  input: { env: [{ name, value }] },
});
const args = (cls: string, what: string, a: string[]): Sample => ({ cls, what, input: { args: a } });
const keyed = (cls: string, key: string, value: string): Sample => ({
  cls,
  what: `${key}: …`,
  input: { spec: { [key]: value } },
});

const T = TOKENS;
const R = (seed: string, n = 32) => rand(seed, ALNUM, n);
const hex = (seed: string, n: number) => rand(seed, HEX, n);

/** Credentials that must be found. */
export const POSITIVES: readonly Sample[] = [
  // Provider formats, under keys that say nothing.
  ...(
    [
      ["github classic PAT", T.githubPat],
      ["github OAuth token", T.githubOauth],
      ["github app token", T.githubApp],
      ["github fine-grained PAT", T.githubFine],
      ["gitlab PAT", T.gitlabPat],
      ["gitlab routable PAT", T.gitlabRoutable],
      ["gitlab deploy token", T.gitlabDeploy],
      ["gitlab runner token", T.gitlabRunner],
      ["gitlab trigger token", T.gitlabTrigger],
      ["grafana cloud token", T.grafanaCloud],
      ["grafana service account token", T.grafanaSa],
      ["hugging face user token", T.hfUser],
      ["hugging face org token", T.hfOrg],
      ["vault service token", T.vaultService],
      ["vault batch token", T.vaultBatch],
      ["vercel PAT", T.vercelPat],
      ["vercel AI gateway key", T.vercelAiGateway],
      ["groq key", T.groq],
      ["databricks token", T.databricks],
      ["databricks token with suffix", T.databricksSuffixed],
      ["google API key", T.googleApi],
      ["google OAuth client secret", T.googleOauthSecret],
      ["notion token", T.notion],
      ["azure client secret", T.azureClientSecret],
      ["anthropic admin key", T.anthropicAdmin],
      ["anthropic API key", T.anthropicApi],
      ["openai project key", T.openaiProject],
      ["npm token", T.npm],
      ["aws access key id", T.awsAccessKeyId],
      ["slack bot token", T.slackBot],
      ["slack webhook", T.slackWebhook],
      ["stripe live key", T.stripeLive],
      ["stripe restricted key", T.stripeRestricted],
      ["sendgrid key", T.sendgrid],
      ["docker hub PAT", T.dockerHub],
      ["digitalocean PAT", T.digitalOcean],
      ["pulumi token", T.pulumi],
      ["pypi token", T.pypi],
      ["doppler token", T.doppler],
      ["tailscale auth key", T.tailscale],
      ["linear key", T.linear],
      ["shopify token", T.shopify],
      ["sentry user token", T.sentryUser],
      ["postman key", T.postman],
      ["perplexity key", T.perplexity],
      ["figma token", T.figma],
      ["age secret key", T.ageKey],
      ["JWT", T.jwt],
      ["PEM private key", T.pem],
    ] as const
  ).map(([what, t]) => ({ cls: "provider", what, input: { note: t } })),

  // The same formats inside text.
  text(
    "provider",
    "gitlab PAT in a header",
    `curl -H "PRIVATE-TOKEN: ${T.gitlabPat}" https://gitlab.example.org/api/v4/projects`,
  ),
  text("provider", "hf token in python", `login(token="${T.hfUser}")`),
  text(
    "provider",
    "vault token in a shell export",
    `export VAULT_ADDR=https://vault:8200\nexport VAULT_TOKEN=${T.vaultService}`,
  ),
  text(
    "provider",
    "databricks host and token",
    `[DEFAULT]\nhost = https://adb-1.azuredatabricks.net\ntoken = ${T.databricks}`,
  ),
  text(
    "provider",
    "google key in a JS config",
    `const firebaseConfig = { apiKey: "${T.googleApi}", projectId: "demo" };`,
  ),
  text("provider", "notion token in JSON text", JSON.stringify({ integration: T.notion })),
  text(
    "provider",
    "azure secret in a connection setting",
    `AZURE_CLIENT_ID=${uuid("az3")}\nAZURE_CLIENT_SECRET=${T.azureClientSecret}`,
  ),
  text("provider", "anthropic admin key in a header", `-H "x-api-key: ${T.anthropicAdmin}"`),
  text("provider", "groq key in a node label value", T.groq),
  text("provider", "npm _authToken line", `//registry.npmjs.org/:_authToken=${T.npm}\nalways-auth=true`),
  text(
    "provider",
    "npm _authToken legacy uuid",
    `registry=https://npm.example.org/\n//npm.example.org/:_authToken=${uuid("np2")}`,
  ),
  text(
    "provider",
    "grafana token in yaml text",
    `datasource:\n  secureJsonData:\n    httpHeaderValue1: "Bearer ${T.grafanaSa}"`,
  ),
  text("provider", "vercel token in a CLI line", `vercel deploy --prod --token ${T.vercelPat}`),
  text(
    "provider",
    "aws key pair in credentials file",
    `[default]\naws_access_key_id = ${T.awsAccessKeyId}\naws_secret_access_key = ${T.awsSecret}`,
  ),
  text("provider", "sendgrid key in escaped JSON", `{\\"apiKey\\":\\"${T.sendgrid}\\"}`),
  text(
    "provider",
    "github token in a git URL",
    `https://x-access-token:${T.githubApp}@github.com/acme/repo.git`,
  ),

  // Assignment forms with random literals (no provider prefix).
  text("assign", "go short", `apiToken := "${R("a1")}"`),
  text("assign", "go normal", `var authToken string = "${R("a2")}"`),
  text("assign", "go backticks", "secretKey := `" + R("a3") + "`"),
  text("assign", "java", `private static final String dbPassword = "${pw("a4")}";`),
  text("assign", "c#", `string clientSecret = "${R("a5")}";`),
  text("assign", "kotlin typed", `val accessToken: String = "${R("a6")}"`),
  text("assign", "kotlin untyped", `var apiKey = "${R("a7")}"`),
  text("assign", "typescript typed", `const serviceToken: string = "${R("a8")}";`),
  text("assign", "php concat", `$apiSecret .= "${R("a9")}";`),
  text("assign", "php array", `$config['db_password'] = '${pw("a10")}';`),
  text("assign", "php define", `define('AUTH_KEY', '${pw("a11", 40)}');`),
  text("assign", "make ?=", `SECRET_TOKEN ?= "${R("a12")}"`),
  text("assign", "make ::=", `DEPLOY_TOKEN ::= "${R("a13")}"`),
  text("assign", "make :::=", `REGISTRY_PASSWORD :::= "${pw("a14")}"`),
  text("assign", "make :=", `API_TOKEN := ${R("a15")}`),
  text("assign", "logstash =>", `  "api_token" => "${R("a16")}"`),
  text("assign", "ruby symbol =>", `{ :api_key => "${R("a17")}" }`),
  text("assign", "ruby ||=", `@token ||= "${R("a18")}"`),
  text("assign", "setProperty", `System.setProperty("API_TOKEN", "${R("a19")}")`),
  text("assign", "put pair", `props.put("db.password", "${pw("a20")}");`),
  text("assign", "python environ", `os.environ["OPENAI_API_KEY"] = "${R("a21", 48)}"`),
  text("assign", "getenv default", `token = os.getenv("SERVICE_TOKEN", "${R("a22")}")`),
  text("assign", "header dict", `headers["X-Api-Key"] = "${R("a23")}"`),
  text("assign", "xml element", `<config><password>${pw("a24")}</password></config>`),
  text("assign", "xml element multiline", `<apiKey>\n    ${R("a25")}\n</apiKey>`),
  text("assign", "xml add key/value", `<add key="ClientSecret" value="${R("a26")}" />`),
  text("assign", "xml property name/value", `<property name="db.password" value="${pw("a27")}"/>`),
  text("assign", "ini", `[database]\nhost = db\npassword = ${pw("a28")}\n`),
  text("assign", "dotenv quoted", `DB_HOST=db\nDB_PASSWORD="${pw("a29")}"\n`),
  text("assign", "shell export", `export GITHUB_PAT=${R("a30", 40)}`),
  text("assign", "json in text", `{"client_secret": "${R("a31")}", "client_id": "web"}`),
  text("assign", "escaped json", `{\\"password\\": \\"${pw("a32")}\\"}`),
  text("assign", "yaml in text", `auth:\n  username: deploy\n  password: ${pw("a33")}\n`),
  text("assign", "toml", `[api]\napi_key = "${R("a34")}"`),
  text("assign", "hcl", `resource "x" "y" {\n  admin_password = "${pw("a35")}"\n}`),
  text("assign", "properties", `spring.datasource.password=${pw("a36")}`),
  text("assign", "ado connection string", `Server=db;Database=app;User Id=sa;Password=${pw("a37")};`),
  text(
    "assign",
    "azure storage connection string",
    `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${rand("a38", B64, 86)}==;EndpointSuffix=core.windows.net`,
  ),
  text("assign", "*_KEY name", `STRIPE_KEY=${R("a39")}`),
  text("assign", "*_PAT name", `AZURE_DEVOPS_PAT: ${R("a40", 52)}`),
  text("assign", "signing key", `SIGNING_KEY = "${R("a41", 44)}"`),
  text("assign", "keyword mid-name", `todo_secret_do_not_commit = ${R("a42", 30)}`),
  text("assign", "keyword then type word", `mySecretString=${R("a43", 30)}`),
  text("assign", "keyword then number", `some_api_token_123 = "${R("a44", 60)}"`),
  text("assign", "pass abbreviation", `ADMIN_PASS=${pw("a45")}`),
  text("assign", "pwd abbreviation", `db_pwd: "${pw("a46")}"`),
  text("assign", "glued upper-case name", `PGPASSWORD=${pw("a47")} psql -h db`),
  text("assign", "passphrase", `passphrase: ${pw("a48", 24)}`),
  text("assign", "uuid as token", `utils.GetEnvOrDefault("api_token", "${uuid("a49")}")`),
  text(
    "assign",
    "query string token",
    `https://api.example.org/v1/items?access_token=${R("a50", 40)}&page=2`,
  ),
  text(
    "assign",
    "sas signature",
    `https://acct.blob.core.windows.net/c/f?sv=2022-11-02&sp=r&sig=${rand("a51", B64, 43)}%3D`,
  ),

  // Values with spaces after a known scheme.
  text("scheme", "bearer header", `Authorization: Bearer ${R("s1", 40)}`),
  text("scheme", "basic header", `Authorization: Basic ${b64("svc-deploy:" + pw("s2"))}`),
  text("scheme", "token scheme", `-H "Authorization: token ${R("s3", 40)}"`),
  text("scheme", "bearer in JSON", JSON.stringify({ headers: { Authorization: `Bearer ${R("s4", 40)}` } })),
  keyed("scheme", "Authorization", `Bearer ${R("s5", 40)}`),
  keyed("scheme", "authorization", `Basic ${b64("admin:" + pw("s6"))}`),
  text("scheme", "custom auth header", `X-Auth-Token: ${R("s7", 40)}`),

  // curl -u / --user.
  text("curl", "curl -u", `curl -fsS -u deploy:${pw("c1")} https://artifacts.example.org/x.tgz`),
  text("curl", "curl --user quoted", `curl --user 'svc-ci:${pw("c2")}' -X POST https://ci.example.org/hook`),
  text(
    "curl",
    "curl -u double quoted",
    `curl -s -u "admin:${pw("c3")}" http://localhost:9200/_cluster/health`,
  ),
  text(
    "curl",
    "curl -u on a continuation line",
    `curl -X PUT https://registry.example.org/v2/x \\\n  -u builder:${pw("c4")}`,
  ),
  text("curl", "curl --user=", `curl --user=ops:${pw("c5")} https://h.example.org`),
  args("curl", "curl args array", ["curl", "-u", `svc:${pw("c6")}`, "https://h.example.org/api"]),

  // --flag value pairs.
  args("flag", "--api-key pair", ["serve", "--api-key", R("f1", 40)]),
  args("flag", "--hf-token pair (hf_)", ["download", "--hf-token", T.hfUser]),
  args("flag", "--hf-token pair (random)", ["--hf-token", R("f2", 34)]),
  args("flag", "--password pair", ["--user", "app", "--password", pw("f3")]),
  args("flag", "--token= one element", ["--token=" + R("f4")]),
  args("flag", "-p style secret flag", ["--db-password", pw("f5")]),
  args("flag", "--client-secret pair", ["--client-id", "web", "--client-secret", R("f6")]),
  text(
    "flag",
    "command string --api-key",
    `vllm serve meta-llama/Llama-3.1-8B --api-key ${R("f7", 40)} --port 8000`,
  ),
  text(
    "flag",
    "command string --token=",
    `runner register --url https://ci.example.org --token=${R("f8", 40)}`,
  ),
  text("flag", "command string --password", `docker login ghcr.io -u ci --password ${pw("f9")}`),
  text("flag", "mysql --password=", `mysql -h db -u app --password=${pw("f10")} app < dump.sql`),
  {
    cls: "flag",
    what: "command array with sh -c",
    input: { command: ["sh", "-c", `exec app --secret-key ${R("f11", 40)}`] },
  },

  // URL userinfo.
  text("url", "postgres URL", `postgres://app:${pw("u1")}@db.internal:5432/app`),
  text("url", "redis URL", `redis://:${pw("u2")}@cache:6379/0`),
  text("url", "amqp URL in text", `broker_url = "amqp://worker:${pw("u3")}@mq:5672//"`),
  text("url", "mongodb+srv URL", `mongodb+srv://svc:${pw("u4")}@cluster0.example.mongodb.net/app`),

  // Structured: secret-like names with literal values.
  env("name", "DB_PASSWORD", pw("n1")),
  env("name", "GITHUB_PAT", R("n2", 40)),
  env("name", "STRIPE_KEY", R("n3")),
  env("name", "ENCRYPTION_KEY", R("n4", 44)),
  env("name", "OAUTH2_PROXY_COOKIE_SECRET", R("n5", 32)),
  env("name", "OAUTH2_PROXY_CLIENT_SECRET", R("n6", 32)),
  env("name", "GF_SECURITY_ADMIN_PASSWORD", pw("n7")),
  env("name", "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET", R("n8")),
  env("name", "HF_TOKEN", R("n9", 34)),
  env("name", "API_KEY", R("n10")),
  keyed("name", "apiKey", R("n11", 20)),
  keyed("name", "clientSecret", R("n12")),
  keyed("name", "privateKey", R("n13", 64)),
  keyed("name", "secret_access_key", rand("n14", B64, 40)),
  keyed("name", "webhookSecret", R("n15")),
  keyed("name", "auth", b64("robot:" + pw("n16"))),
];

/** Look-alikes that must not be flagged. */
export const BENIGN: readonly Sample[] = [
  // Placeholders and test values where a credential would go.
  text("placeholder", "EXAMPLE marker", `aws_access_key_id = ${"AK" + "IA" + rand("p1", UPPER, 9)}EXAMPLE`),
  text("placeholder", "EXAMPLE key", `aws_secret_access_key = ${rand("p2", B64, 29)}EXAMPLEKEY`),
  text("placeholder", "x-run token", `hf_token = "h${"f_"}${"x".repeat(34)}"`),
  text("placeholder", "X-run gitlab token", `token: glp${"at-"}${"X".repeat(11)}-${"X".repeat(8)}`),
  text("placeholder", "x-run with structure", `password: xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`),
  text("placeholder", "<YOUR_API_KEY>", `OPENAI_API_KEY=<YOUR_API_KEY>`),
  text("placeholder", "angle placeholder in JSON", `{"api_key": "<your-api-key>"}`),
  text("placeholder", "your-token-here", `token = "your-token-here"`),
  text("placeholder", "YOUR_..._HERE", `api_key=YOUR_API_KEY_HERE`),
  text("placeholder", "insert here", `client_secret: "insert-your-client-secret-here"`),
  text("placeholder", "${VAR}", `password: "\${DB_PASSWORD}"`),
  text("placeholder", "$VAR", `export API_TOKEN=$CI_JOB_TOKEN`),
  text("placeholder", "${VAR:-default}", `password=\${PGPASSWORD:-}`),
  text("placeholder", "$(cmd)", `token: $(cat /run/secrets/token)`),
  text("placeholder", "{{ .Values.x }}", `password: {{ .Values.auth.password | quote }}`),
  text("placeholder", "${{ secrets.X }}", `token: \${{ secrets.GITHUB_TOKEN }}`),
  text("placeholder", "%VAR%", `set API_KEY=%API_KEY%`),
  text("placeholder", "#{VAR}#", `"password": "#{DbPassword}#"`),
  text("placeholder", "__VAR__", `ApiKey=__API_KEY__`),
  text("placeholder", "{name} format", `password="{password}"`),
  text("placeholder", "%(name)s format", `dsn = "user=app password=%(password)s"`),
  text("placeholder", "****", `password: "********"`),
  text("placeholder", "[Redacted]", `token: [Redacted]`),
  text("placeholder", "<redacted>", `Authorization: Bearer <redacted>`),
  text("placeholder", "REDACTED word", `api_key = "REDACTED"`),
  text("placeholder", "bullets", `password: "••••••••"`),
  text("placeholder", "ellipsis", `api_key: "sk-..."`),
  text("placeholder", "changeme", `password: changeme`),
  text("placeholder", "change-it", `keystore_password = "change-it"`),
  text("placeholder", "replace me", `secret: "REPLACE_ME"`),
  text("placeholder", "dummy", `password: dummy-password`),
  text("placeholder", "value is the name", `DB_PASSWORD=DB_PASSWORD`),
  text("placeholder", "value is the noun", `token: "token"`),
  text("placeholder", "test value", `password = "test"`),
  text("placeholder", "bearer placeholder", `Authorization: Bearer \${TOKEN}`),
  text("placeholder", "bearer angle placeholder", `-H "Authorization: Bearer <token>"`),
  text("placeholder", "url password placeholder", `postgres://app:<password>@db:5432/app`),
  text("placeholder", "url password reference", `https://ci:\${CI_TOKEN}@git.example.org/r.git`),
  text("placeholder", "curl user:password", `curl -u user:password https://h.example.org`),
  text("placeholder", "curl $USER:$PASS", `curl -sL --user "$USERNAME:$PASSWORD" "$URL"`),
  text("placeholder", "curl [PASSWORD]", `curl --user neo:[PASSWORD] http://[IP]:7474/`),
  text("placeholder", "curl <user:password>", `curl -u <user:password> https://h.example.org/`),
  text("placeholder", "curl test:test", `curl -i -u 'test:test' http://localhost`),
  text("placeholder", "curl user only", `curl -u "myuser" http://localhost:8080/`),
  text("placeholder", "curl template", `curl --user "{{ .Values.user }}:{{ .Values.password }}" http://h`),
  args("placeholder", "--api-key $(VAR)", ["serve", "--api-key", "$(API_KEY)"]),
  args("placeholder", "--hf-token ${VAR}", ["--hf-token", "${HF_TOKEN}"]),
  args("placeholder", "--token-file path", ["--token-file", "/run/secrets/token"]),
  args("placeholder", "--password-file path", ["--password-file=/etc/app/pw"]),
  args("placeholder", "--api-key env var name", ["--api-key-env", "OPENAI_API_KEY"]),
  env("placeholder", "API_TOKEN", "<token>"),
  env("placeholder", "DB_PASSWORD", "$(DB_PASSWORD)"),
  keyed("placeholder", "apiKey", "YOUR_API_KEY"),
  keyed("placeholder", "password", "{{ .Values.password }}"),

  // Names judged by whole words; settings that only sound secret.
  keyed("name", "author", "jane.doe@example.org"),
  keyed("name", "authority", "https://login.example.org/" + uuid("b1")),
  keyed("name", "credentialsId", uuid("b2")),
  keyed("name", "jobCredentialsId", uuid("b3")),
  keyed("name", "tokenizer", "meta-llama/Llama-3.1-8B-Instruct"),
  keyed("name", "tokenizer_mode", "mistral"),
  keyed("name", "keyId", uuid("b4")),
  keyed("name", "kms_key_id", "arn:aws:kms:eu-west-1:123456789012:key/" + uuid("b5")),
  keyed("name", "public_key", rand("b6", B64, 43) + "="),
  keyed("name", "publicToken", R("b7", 43)),
  keyed("name", "csrf_token", R("b8", 43)),
  keyed("name", "tokenSecretName", "gh-token"),
  keyed("name", "passwordKey", "admin-password"),
  keyed("name", "existingSecretPasswordKey", "redis-password"),
  keyed("name", "secretName", "db-credentials"),
  keyed("name", "tokenTTL", "24h"),
  keyed("name", "api_version", "2024-05-01"),
  keyed("name", "primaryKey", "order_id"),
  keyed("name", "cacheKey", "v2-" + rand("b9", HEX, 12)),
  keyed("name", "idempotencyKey", uuid("b10")),
  keyed("name", "key", "nvidia.com/gpu"),
  keyed("name", "monkey", R("b11", 20)),
  keyed("name", "authorized_keys", "ssh-ed25519 " + rand("b12", B64, 68) + " ops@bastion"),
  keyed("name", "signingKeyAlgorithm", "RS256"),
  keyed("name", "tokenEndpoint", "https://auth.example.org/oauth/token"),
  keyed("name", "password_min_length", "12"),
  ...(
    [
      ["GF_AUTH_GENERIC_OAUTH_SCOPES", "openid email profile offline_access"],
      ["GF_AUTH_GENERIC_OAUTH_AUTH_URL", "https://sso.example.org/realms/acme/protocol/openid-connect/auth"],
      [
        "GF_AUTH_GENERIC_OAUTH_TOKEN_URL",
        "https://sso.example.org/realms/acme/protocol/openid-connect/token",
      ],
      [
        "GF_AUTH_GENERIC_OAUTH_API_URL",
        "https://sso.example.org/realms/acme/protocol/openid-connect/userinfo",
      ],
      ["GF_AUTH_GENERIC_OAUTH_NAME", "Keycloak-SSO"],
      ["GF_AUTH_GENERIC_OAUTH_CLIENT_ID", "grafana-dashboards"],
      ["GF_AUTH_GENERIC_OAUTH_ROLE_ATTRIBUTE_PATH", "contains(roles[*], 'admin') && 'Admin' || 'Viewer'"],
      ["GF_AUTH_GENERIC_OAUTH_ALLOWED_DOMAINS", "example.org"],
      ["GF_AUTH_GENERIC_OAUTH_USE_REFRESH_TOKEN", "true"],
      ["GF_AUTH_GENERIC_OAUTH_AUTH_STYLE", "InHeader"],
      ["GF_AUTH_PROXY_HEADER_NAME", "X-WEBAUTH-USER"],
      ["GF_AUTH_ANONYMOUS_ORG_ROLE", "Viewer"],
      ["GF_AUTH_ANONYMOUS_ORG_NAME", "Main Org."],
      ["GF_AUTH_SIGNOUT_REDIRECT_URL", "https://sso.example.org/logout"],
      ["GF_AUTH_LDAP_CONFIG_FILE", "/etc/grafana/ldap.toml"],
      ["GF_AUTH_JWT_HEADER_NAME", "X-JWT-Assertion"],
      ["GF_AUTH_TOKEN_ROTATION_INTERVAL_MINUTES", "10"],
      ["OAUTH2_PROXY_PROVIDER", "keycloak-oidc"],
      ["OAUTH2_PROXY_EMAIL_DOMAINS", "example.org"],
      ["OAUTH2_PROXY_UPSTREAMS", "http://127.0.0.1:8080/"],
      ["OAUTH2_PROXY_SKIP_AUTH_ROUTES", "GET=^/healthz$,^/metrics$"],
      ["OAUTH2_PROXY_PASS_ACCESS_TOKEN", "true"],
      ["OAUTH2_PROXY_SKIP_JWT_BEARER_TOKENS", "true"],
      ["OAUTH2_PROXY_OIDC_ISSUER_URL", "https://sso.example.org/realms/acme"],
      ["OAUTH2_PROXY_SET_AUTHORIZATION_HEADER", "true"],
      [
        "OAUTH2_PROXY_AUTH_LOGGING_FORMAT",
        "{{.Client}} - {{.Username}} [{{.Timestamp}}] [{{.Status}}] {{.Message}}",
      ],
      ["OAUTH2_PROXY_HTPASSWD_FILE", "/etc/oauth2-proxy/htpasswd"],
      ["OAUTH2_PROXY_CODE_CHALLENGE_METHOD", "S256"],
    ] as const
  ).map(([name, value]) => env("setting", name, value)),

  // Code and config that reads a credential rather than holding one.
  text("reference", "getter call", `token = getToken(ctx)`),
  text("reference", "environ lookup", `password = os.environ["DB_PASSWORD"]`),
  text("reference", "go getenv", `apiKey := os.Getenv("API_KEY")`),
  text("reference", "process.env", `const token = process.env.GITHUB_TOKEN;`),
  text("reference", "settings attribute", `API_KEY = settings.API_KEY`),
  text("reference", "pulumi secret", `const password = config.requireSecret("dbPassword");`),
  text(
    "reference",
    "file settings",
    `bearer_token_file: /var/run/secrets/kubernetes.io/serviceaccount/token\npassword_file: /etc/alertmanager/smtp`,
  ),
  text(
    "reference",
    "credentials file",
    `authorization:\n  type: Bearer\n  credentials_file: /etc/prometheus/token`,
  ),
  text("reference", "secretKeyRef", `valueFrom:\n  secretKeyRef:\n    name: db\n    key: password`),
  text(
    "reference",
    "docker build secret",
    `RUN --mount=type=secret,id=npm_token NPM_TOKEN=$(cat /run/secrets/npm_token) npm ci`,
  ),
  text("reference", "npm authToken from env", `//registry.npmjs.org/:_authToken=\${NPM_TOKEN}`),
  text("reference", "import of names", `import { chainKey, sessionToken } from "./keys";`),

  // Rendered-chart and manifest text.
  text(
    "config",
    "grafana.ini oauth section",
    `[auth.generic_oauth]\nenabled = true\nname = SSO\nclient_id = grafana\nscopes = openid email profile\nauth_url = https://sso.example.org/auth\ntoken_url = https://sso.example.org/token\napi_url = https://sso.example.org/userinfo\nuse_refresh_token = true\n[security]\nadmin_user = admin\ncookie_secure = true\n`,
  ),
  text(
    "config",
    "prometheus basic_auth with file",
    `basic_auth:\n  username: prom\n  password_file: /etc/secrets/pw\nbearer_token_file: /var/run/secrets/token`,
  ),
  text(
    "config",
    "kube flags",
    `--authentication-token-webhook=true --authorization-mode=Webhook --token-ttl=1h --service-account-key-file=/etc/k8s/sa.pub --tls-private-key-file=/etc/tls/tls.key`,
  ),
  text("config", "vllm flags", `--tokenizer-mode auto --max-num-batched-tokens 8192 --max-model-len 32768`),
  text("config", "secret namespace flag", `--secret-namespace=external-secrets --enable-leader-election`),
  text(
    "config",
    "description prose",
    `The token used to authenticate against the API. Create one under Settings, then set password = your password.`,
  ),
  text(
    "config",
    "istio proxy args",
    `proxy sidecar --domain $(POD_NAMESPACE).svc.cluster.local --proxyLogLevel=warning --log_output_level=default:info`,
  ),
  text(
    "config",
    "nginx auth settings",
    `auth_basic "Restricted";\nauth_basic_user_file /etc/nginx/.htpasswd;\nproxy_set_header Authorization "";`,
  ),
  text(
    "config",
    "helm notes",
    `To get the admin password run:\n  kubectl get secret grafana -o jsonpath="{.data.admin-password}" | base64 -d`,
  ),
  text(
    "config",
    "jenkins withCredentials",
    `withCredentials([usernamePassword(credentialsId: '${uuid("r1")}', usernameVariable: 'USER', passwordVariable: 'PASS')])`,
  ),
  text("config", "alphabet constant", `const validKeyChars = "0123456789abcdefghijklmnopqrstuvwxyz_-."`),
  text("config", "name of a secret", `LLM_SECRET_NAME = "NEXUS-GPT4-API-KEY"`),

  // Hashes, digests, ids and public material.
  keyed("hash", "image", "ghcr.io/acme/app:1.2.3@sha256:" + rand("h1", HEX, 64)),
  keyed("hash", "digest", "sha256:" + rand("h2", HEX, 64)),
  keyed("hash", "commit", rand("h3", HEX, 40)),
  keyed("hash", "integrity", "sha512-" + rand("h4", B64, 86) + "=="),
  keyed("hash", "checksum", rand("h5", HEX, 64)),
  keyed("hash", "clientId", uuid("h6")),
  keyed("hash", "tenantId", uuid("h7")),
  keyed(
    "hash",
    "caBundle",
    b64("-----BEGIN CERTIFICATE-----\n" + rand("h8", B64, 64) + "\n-----END CERTIFICATE-----\n"),
  ),
  keyed(
    "hash",
    "tls.crt",
    "-----BEGIN CERTIFICATE-----\n" + rand("h9", B64, 64) + "\n-----END CERTIFICATE-----\n",
  ),
  keyed(
    "hash",
    "publicKey",
    "-----BEGIN PUBLIC KEY-----\n" + rand("h10", B64, 64) + "\n-----END PUBLIC KEY-----\n",
  ),
  keyed("hash", "pod-template-hash", rand("h11", LOWER + DIGITS, 10)),
  text(
    "hash",
    "identifiers around token prefixes",
    `use_hf_transfer_and_accelerate_downloads = true; task-runner-${rand("h12", LOWER, 20)}; rapidapi${rand("h13", HEX, 32)}x`,
  ),
  text("hash", "git ssh remote", `git@github.com:acme/platform.git`),
  text("hash", "url with user only", `https://deploy@git.example.org/acme/repo.git`),
  text("hash", "uuid list", `ids: [${uuid("h14")}, ${uuid("h15")}]`),
];

/**
 * A second set, written after the detectors and run once against them to see how they carry
 * over to shapes they were not built on (they caught 25 of 39 and flagged 5 of 43 then; the
 * classes missed were fixed, not the samples). Kept as regression cases.
 */
export const HELD_OUT_POSITIVES: readonly Sample[] = [
  text("num", "16-digit id under token", `asanaToken = "${rand("x1", DIGITS, 16)}"`),
  text("num", "18-digit under secret", `discord_client_secret: "${rand("x2", DIGITS, 18)}"`),
  text("netrc", "netrc", `machine api.example.org\n  login bot\n  password ${pw("x3")}`),
  text("netrc", "netrc one line", `machine git.example.org login ci password ${pw("x4")}`),
  text("pair", "k8s env yaml in text", `env:\n  - name: DB_PASSWORD\n    value: ${pw("x5")}\n`),
  text("pair", "json name/value in text", `[{"name": "API_TOKEN", "value": "${R("x6")}"}]`),
  text(
    "assign",
    "kubectl from-literal",
    `kubectl create secret generic db --from-literal=password=${pw("x7")}`,
  ),
  text("assign", "docker -e", `docker run -e API_KEY=${R("x8")} app`),
  text("assign", "helm --set", `helm install x --set auth.password=${pw("x9")}`),
  text("assign", "python kwarg", `conn = psycopg.connect(host="db", password="${pw("x10")}")`),
  text("assign", "rust const", `const API_KEY: &str = "${R("x11")}";`),
  text("assign", "c define", `#define API_SECRET "${R("x12")}"`),
  text("assign", "go struct field", `cfg := Config{\n  Token: "${R("x13")}",\n}`),
  text("assign", "powershell env", `$env:API_KEY = "${R("x14")}"`),
  text(
    "assign",
    "compose env list",
    `environment:\n  - POSTGRES_PASSWORD=${pw("x15")}\n  - POSTGRES_USER=app`,
  ),
  text(
    "assign",
    "jdbc url query",
    `jdbc:postgresql://db:5432/app?user=app&password=${encodeURIComponent(pw("x16"))}`,
  ),
  text("assign", "xml keyed element", `<entry key="password">${pw("x17")}</entry>`),
  text("assign", "minified json", `{"user":"svc","password":"${pw("x18")}"}`),
  text("assign", "php array arrow", `'password' => '${pw("x19")}',`),
  text("assign", "swift let typed", `let apiKey: String = "${R("x20")}"`),
  text("assign", "twilio auth token hex", `TWILIO_AUTH_TOKEN=${hex("x21", 32)}`),
  text("assign", "heroku uuid key", `HEROKU_API_KEY=${uuid("x22")}`),
  text("assign", "session token aws", `aws_session_token = ${rand("x27", B64, 120)}`),
  text("assign", "cookie secret", `OAUTH2_PROXY_COOKIE_SECRET="${rand("x28", URLSAFE, 32)}="`),
  text("cli", "sshpass -p", `sshpass -p '${pw("x29")}' ssh deploy@10.0.0.5`),
  text("cli", "mysql -p glued", `mysql -u root -p${pw("x30")} -h db app`),
  text(
    "provider",
    "telegram token in bot URL",
    `https://api.telegram.org/bot${rand("x31", DIGITS, 10)}:AA${rand("x32", URLSAFE, 33)}/sendMessage`,
  ),
  text(
    "provider",
    "gitlab PAT in clone URL",
    `git clone https://oauth2:${T.gitlabPat}@gitlab.example.org/acme/app.git`,
  ),
  text("provider", "vault header", `X-Vault-Token: ${T.vaultService}`),
  text(
    "provider",
    "discord webhook",
    `https://discord.com/api/webhooks/${rand("x33", DIGITS, 18)}/${rand("x34", URLSAFE, 68)}`,
  ),
  text("scheme", "bearer lowercase header", `authorization: bearer ${R("x35", 40)}`),
  text("scheme", "basic in JSON headers", `{"Authorization": "Basic ${b64("svc:" + pw("x36"))}"}`),
  keyed("name", "adminPassword", "Sup3r-" + pw("x37", 10)),
  keyed("name", "AWS_SECRET_ACCESS_KEY", rand("x38", B64, 40)),
  keyed("name", "jwtSecret", R("x39", 48)),
  keyed("name", "encryption_key", rand("x40", HEX, 64)),
  { cls: "flag", what: "args with = and quotes", input: { args: ["--api-token='" + R("x41") + "'"] } },
  {
    cls: "flag",
    what: "args -t short flag after long secret flag",
    input: { args: ["--secret", R("x42", 40)] },
  },
  {
    cls: "flag",
    what: "command with --access-token",
    input: { command: ["sh", "-c", "gh api --access-token " + R("x43", 40)] },
  },
];

export const HELD_OUT_BENIGN: readonly Sample[] = [
  text("ph", "gha secret ref", `password: \${{ secrets.DB_PASSWORD }}`),
  text("ph", "cfn Ref", `MasterUserPassword: !Ref DbPassword`),
  text(
    "ph",
    "ansible vault tag",
    `password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  ${rand("y1", HEX, 60)}`,
  ),
  text("ph", "none/null", `api_key = None\ntoken = null\nsecret = undefined`),
  text("ph", "sql param", `SELECT * FROM users WHERE password = ? AND token = :token`),
  text("ph", "bcrypt hash", `password_hash = "$2b$12$${rand("y2", ALNUM + "./", 53)}"`),
  text("ph", "token type", `token_type = "Bearer"\ngrant_type: client_credentials\nauth_method = "oauth2"`),
  text(
    "ph",
    "html form",
    `<input type="password" name="password" placeholder="Password" autocomplete="current-password">`,
  ),
  text(
    "ph",
    "i18n",
    `{"password": "Password", "forgotPassword": "Forgot your password?", "passwordHint": "At least 12 characters", "token_expired": "Your session token has expired"}`,
  ),
  text(
    "ph",
    "tokenizer config",
    `{"pad_token": "<pad>", "eos_token": "</s>", "bos_token": "<s>", "unk_token": "<unk>", "cls_token": "[CLS]", "mask_token": "[MASK]", "model_max_length": 131072}`,
  ),
  text(
    "ph",
    "helm checksum annotation",
    `checksum/secret: ${rand("y3", HEX, 64)}\nchecksum/config: ${rand("y4", HEX, 64)}`,
  ),
  keyed("ph", "checksum/secret", rand("y5", HEX, 64)),
  text("ph", "password regex", `password_regex: "^(?=.*[A-Z])(?=.*\\\\d).{12,}$"`),
  text("ph", "auth0 domain", `AUTH0_DOMAIN=acme.eu.auth0.com\nAUTH0_CLIENT_ID=${R("y6")}`),
  text(
    "ph",
    "placeholders mix",
    `API_KEY=<insert-token>\nTOKEN={{API_KEY}}\nSECRET=$API_SECRET\nPASSWORD=%DB_PASSWORD%`,
  ),
  text("ph", "starred provider tokens", `ghp_${"*".repeat(36)} AKIA${"*".repeat(16)} sk-proj-...`),
  text(
    "ph",
    "redaction variants",
    `password: [FILTERED]\ntoken: (hidden)\nsecret: ***REMOVED***\napi_key: N/A\nauth: TBD`,
  ),
  text(
    "ph",
    "your key here",
    `api_key: your_api_key_here\ntoken: YOUR-TOKEN\nsecret: replace_with_your_key\nkey: <api-key>`,
  ),
  text("ph", "erb", `token: <%= ENV["TOKEN"] %>`),
  text(
    "ph",
    "sops value",
    `password: ENC[AES256_GCM,data:${rand("y7", B64, 24)},iv:${rand("y8", B64, 43)}=,tag:${rand("y9", B64, 22)}==,type:str]`,
  ),
  keyed(
    "ph",
    "password",
    "ENC[AES256_GCM,data:" + rand("y10", B64, 24) + ",iv:" + rand("y11", B64, 43) + "=,type:str]",
  ),
  text("ph", "spring default placeholder", `spring.datasource.password=\${DB_PASS:}`),
  text("ph", "secret123", `password: secret123`),
  text("ph", "empty quotes", `"apiKey": ""`),
  text("ph", "curl netrc", `curl --netrc-file ~/.netrc https://h.example.org`),
  text("ph", "prose with password", `If you forget the admin password, reset it with the CLI.`),
  text(
    "ph",
    "kube token review",
    `--authentication-token-webhook-config-file=/etc/k8s/webhook.yaml --token-auth-file=/etc/k8s/tokens.csv`,
  ),
  text(
    "ph",
    "oauth urls",
    `token_url: https://oauth2.googleapis.com/token\nauth_uri: https://accounts.google.com/o/oauth2/auth`,
  ),
  text("ph", "git sha pinned action", `uses: actions/checkout@${rand("y12", HEX, 40)} # v4`),
  text("ph", "npm integrity", `"integrity": "sha512-${rand("y13", B64, 86)}=="`),
  text("ph", "docker digest", `FROM node:20@sha256:${rand("y14", HEX, 64)}`),
  text(
    "ph",
    "pub key in authorized_keys",
    `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${rand("y15", B64, 43)} ops@host`,
  ),
  text("ph", "max tokens flags", `--max-tokens 4096 --max-prompt-tokens=8192 --num-tokens 100`),
  text("ph", "uuid ids", `request_id=${rand("y16", HEX, 32)} trace_id=${rand("y17", HEX, 32)}`),
  keyed("ph", "sessionAffinity", "ClientIP"),
  keyed("ph", "secretKey", "aws-credentials"),
  keyed("ph", "keySecret", "kafka-keystore"),
  keyed("ph", "tokenSecret", "gh-app-token"),
  keyed("ph", "credentialsSecret", "aws-creds"),
  {
    cls: "ph",
    what: "args: --secret boolean then positional",
    input: { args: ["config", "set", "--secret", "platform:githubToken"] },
  },
  { cls: "ph", what: "args: --token-file", input: { args: ["--token-file", "/var/run/secrets/token"] } },
  { cls: "ph", what: "docker run -u uid:gid", input: { args: ["run", "-u", "1000:1000", "app"] } },
  {
    cls: "ph",
    what: "sealed secret",
    input: {
      apiVersion: "bitnami.com/v1alpha1",
      kind: "SealedSecret",
      spec: { encryptedData: { password: "AgB" + rand("y18", B64, 400) + "==" } },
    },
  },
];

/**
 * The assignment forms of config files and programming languages, each with secrets of several
 * alphabets under a provider-named identifier (`acmeToken`, `ACME_TOKEN`).
 */
export const ASSIGNMENT_FORMS: Readonly<Record<string, string>> = {
  "ini quoted": '{i}Token="{s}"',
  "ini quoted, spaced": '{i}Token = "{s}"',
  "ini unquoted": "{i}Token={s}",
  "ini unquoted, spaced": "{i}Token = {s}",
  json: '{\n    "{i}_token": "{s}"\n}',
  "json holding an ini line": '{"config.ini": "{I}_TOKEN={s}\\nBACKUP_ENABLED=true"}',
  "xml element, multi-line": "<{i}Token>\n    {s}\n</{i}Token>",
  "yaml unquoted": "{i}_token: {s}",
  "yaml single-quoted": "{i}_token: '{s}'",
  "yaml double-quoted": '{i}_token: "{s}"',
  "c#": 'string {i}Token = "{s}";',
  "go var": 'var {i}Token string = "{s}"',
  "go :=": '{i}Token := "{s}"',
  "go backticks": "{i}Token := `{s}`",
  java: 'String {i}Token = "{s}";',
  kotlin: 'var {i}Token = "{s}"',
  "php .=": '${i}Token .= "{s}"',
  "python single-quoted": "{i}Token = '{s}'",
  "python double-quoted": '{i}Token = "{s}"',
  setProperty: 'System.setProperty("{I}_TOKEN", "{s}")',
  "logstash =>": '  "{i}Token" => "{s}"',
  "make =": '{I}_TOKEN = "{s}"',
  "make :=": '{I}_TOKEN := "{s}"',
  "make ::=": '{I}_TOKEN ::= "{s}"',
  "make :::=": '{I}_TOKEN :::= "{s}"',
  "make ?=": '{I}_TOKEN ?= "{s}"',
};

/** Secret shapes for the forms: base36, hex, digits, a UUID, base64, prefixed URL-safe. */
export const FORM_SECRETS: Readonly<Record<string, (seed: string) => string>> = {
  "base36 x32": (seed) => rand(seed, LOWER + DIGITS, 32),
  "hex x40": (seed) => hex(seed, 40),
  "digits x18": (seed) => rand(seed, DIGITS, 18),
  uuid: (seed) => uuid(seed),
  "base64 x44": (seed) => rand(seed, B64, 43) + "=",
  "prefixed url-safe": (seed) => "b_" + rand(seed, URLSAFE, 44),
};

/** One sample per form and secret shape. */
export function formSamples(identifier: string): Sample[] {
  const out: Sample[] = [];
  for (const [shape, gen] of Object.entries(FORM_SECRETS))
    for (const [form, template] of Object.entries(ASSIGNMENT_FORMS)) {
      const t = template
        .replaceAll("{i}", identifier)
        .replaceAll("{I}", identifier.toUpperCase())
        .replaceAll("{s}", gen(`${identifier}/${shape}/${form}`));
      out.push(text("form", `${form}, ${shape}`, t));
    }
  return out;
}
