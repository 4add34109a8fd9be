/**
 * Provider token formats: the prefixes and alphabets providers publish for their credentials
 * (GitHub's `ghp_`, GitLab's `glpat-`, Hugging Face's `hf_`…), checked against the rule
 * definitions of public secret scanners. A fixed prefix plus an exact alphabet and length is
 * evidence on its own, so these match under any key and inside any text. Synchronous and
 * regex-only: one combined test of the prefixes, then only the formats whose prefix is present.
 */
import { isPlaceholder } from "./secrets-values";
import { shannonEntropy } from "./values";

export interface TokenFormat {
  readonly id: string;
  /** For messages: "a GitLab token". */
  readonly label: string;
  /**
   * The cheap pre-test: the literal prefixes a match starts with (`ghp_|gho_`), or, after `~`, a
   * literal found inside every match (`~Q~`).
   */
  readonly hint: string;
  readonly re: RegExp;
  /** Minimum Shannon entropy of the match (bits/char): `AIzaaaaa…` is the format, not a key. */
  readonly minEntropy: number;
}

/** Not glued to a longer identifier; an escaped line break (`\n`) before the token is fine. */
const LEFT = String.raw`(?:(?<=\\[nrt])|(?<![A-Za-z0-9_]))`;
const END = {
  alnum: "(?![A-Za-z0-9])",
  word: "(?![A-Za-z0-9_])",
  urlsafe: "(?![A-Za-z0-9_-])",
  b64: "(?![A-Za-z0-9+/=])",
  none: "",
} as const;

type Spec = readonly [
  id: string,
  label: string,
  hint: string,
  body: string,
  end?: keyof typeof END,
  minEntropy?: number,
  left?: string,
];

/**
 * The formats. Bodies are the published shapes; where a provider has several token types under
 * one prefix family they share a line. Sources: gitleaks' and secretlint's rule definitions
 * (facts only; no sample of theirs is copied).
 */
const SPECS: readonly Spec[] = [
  ["github", "a GitHub token", "ghp_|gho_|ghu_|ghs_|ghr_", String.raw`gh[pousr]_[A-Za-z0-9]{36}`, "alnum"],
  ["github", "a GitHub token", "github_pat_", String.raw`github_pat_[A-Za-z0-9_]{82}`, "word"],
  [
    "gitlab",
    "a GitLab token",
    "glpat-|gldt-|glrt-|glft-|glsoat-|glffct-",
    String.raw`gl(?:pat|dt|rt|ft|soat|ffct)-[\w-]{20,300}(?:\.[0-9a-z]{2}[0-9a-z]{7})?`,
    "urlsafe",
  ],
  ["gitlab", "a GitLab token", "glptt-", String.raw`glptt-[0-9a-f]{40}`, "alnum"],
  ["gitlab", "a GitLab token", "glimt-", String.raw`glimt-[\w-]{25}`, "urlsafe"],
  ["gitlab", "a GitLab token", "glagent-", String.raw`glagent-[\w-]{50}`, "urlsafe"],
  ["gitlab", "a GitLab token", "gloas-", String.raw`gloas-[\w-]{64}`, "urlsafe"],
  ["gitlab", "a GitLab token", "glcbt-", String.raw`glcbt-[0-9a-zA-Z]{1,5}_[\w-]{20}`, "urlsafe"],
  ["gitlab", "a GitLab runner registration token", "GR1348941", String.raw`GR1348941[\w-]{20}`, "urlsafe"],
  ["grafana", "a Grafana token", "glc_", String.raw`glc_[A-Za-z0-9+/]{32,400}={0,3}`, "b64"],
  ["grafana", "a Grafana token", "glsa_", String.raw`glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}`, "alnum"],
  ["grafana", "a Grafana API key", "eyJrIjoi", String.raw`eyJrIjoi[A-Za-z0-9]{70,400}={0,3}`, "b64"],
  ["huggingface", "a Hugging Face token", "hf_", String.raw`hf_[A-Za-z]{34}`, "alnum"],
  ["huggingface", "a Hugging Face token", "api_org_", String.raw`api_org_[A-Za-z]{34}`, "alnum"],
  ["vault", "a Vault token", "hvs.|hvr.", String.raw`hv[sr]\.[\w-]{90,120}`, "urlsafe"],
  ["vault", "a Vault token", "hvb.", String.raw`hvb\.[\w-]{138,300}`, "urlsafe"],
  [
    "vercel",
    "a Vercel token",
    "vcp_|vci_|vca_|vcr_|vck_",
    String.raw`vc[pciark]_[A-Za-z0-9]{20,60}`,
    "alnum",
  ],
  ["groq", "a Groq API key", "gsk_", String.raw`gsk_[A-Za-z0-9]{52}`, "alnum"],
  ["databricks", "a Databricks token", "dapi", String.raw`dapi[a-fA-F0-9]{32}(?:-\d)?`, "alnum"],
  ["google", "a Google API key", "AIza", String.raw`AIza[\w-]{35}`, "urlsafe"],
  ["google", "a Google OAuth client secret", "GOCSPX-", String.raw`GOCSPX-[\w-]{28}`, "urlsafe"],
  ["google", "a Google OAuth access token", "ya29.", String.raw`ya29\.[\w-]{30,}`, "urlsafe"],
  ["notion", "a Notion token", "ntn_", String.raw`ntn_\d{11}[A-Za-z0-9]{35}`, "alnum"],
  ["notion", "a Notion token", "secret_", String.raw`secret_[A-Za-z0-9]{43}`, "alnum", 3.5],
  [
    "azure",
    "an Azure client secret",
    "~Q~",
    String.raw`[a-zA-Z0-9_~.]{3}\dQ~[a-zA-Z0-9_~.-]{31,34}`,
    "none",
    3.0,
    String.raw`(?:(?<=\\[nrt])|(?<![A-Za-z0-9_~.-]))`,
  ],
  [
    "anthropic",
    "an Anthropic key",
    "sk-ant-",
    String.raw`sk-ant-(?:api|admin)0\d-[\w-]{86,128}AA`,
    "urlsafe",
  ],
  [
    "openai",
    "an OpenAI key",
    "~T3BlbkFJ",
    String.raw`sk-(?:(?:proj|svcacct|admin)-)?[\w-]{20,}T3BlbkFJ[\w-]{20,}`,
    "urlsafe",
  ],
  ["openai", "an OpenAI key", "sk-", String.raw`sk-(?:proj|svcacct|admin)-[\w-]{80,}`, "urlsafe"],
  // Bare `sk-` keys (OpenAI's legacy 48, and providers that copied the shape with 32 hex).
  ["sk", "an `sk-` API key", "sk-", String.raw`sk-[A-Za-z0-9]{32,64}`, "alnum", 3.5],
  ["npm", "an npm token", "npm_", String.raw`npm_[A-Za-z0-9]{36}`, "alnum"],
  [
    "aws",
    "an AWS access key id",
    "A3T|AKIA|ASIA|ABIA|ACCA",
    String.raw`(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}`,
    "alnum",
  ],
  ["aws", "an Amazon Bedrock API key", "ABSK", String.raw`ABSK[A-Za-z0-9+/]{109,269}={0,2}`, "b64"],
  [
    "slack",
    "a Slack token",
    "xoxa-|xoxb-|xoxp-|xoxo-|xoxs-|xoxr-|xoxe-",
    String.raw`xox[abposre]-(?:\d-)?[A-Za-z0-9-]{10,250}`,
    "urlsafe",
  ],
  ["slack", "a Slack token", "xoxe.xox", String.raw`xoxe\.xox[bp]-\d-[A-Za-z0-9]{100,}`, "alnum"],
  ["slack", "a Slack app token", "xapp-", String.raw`xapp-\d-[A-Za-z0-9]+-\d+-[a-z0-9]+`, "alnum"],
  [
    "slack",
    "a Slack webhook URL",
    "hooks.slack.com/",
    String.raw`hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{43,56}`,
    "none",
  ],
  [
    "stripe",
    "a Stripe key",
    "sk_live_|sk_test_|sk_prod_|rk_live_|rk_test_|rk_prod_",
    String.raw`[rs]k_(?:live|test|prod)_[A-Za-z0-9]{10,99}`,
    "alnum",
  ],
  ["stripe", "a Stripe webhook secret", "whsec_", String.raw`whsec_[A-Za-z0-9]{32,}`, "alnum"],
  ["sendgrid", "a SendGrid key", "SG.", String.raw`SG\.[\w-]{22}\.[\w-]{43}`, "urlsafe"],
  ["docker", "a Docker Hub token", "dckr_", String.raw`dckr_(?:pat|oat)_[\w-]{27,}`, "urlsafe"],
  [
    "digitalocean",
    "a DigitalOcean token",
    "doo_v1_|dop_v1_|dor_v1_",
    String.raw`do[opr]_v1_[a-f0-9]{64}`,
    "alnum",
  ],
  ["pulumi", "a Pulumi access token", "pul-", String.raw`pul-[a-f0-9]{40}`, "alnum"],
  [
    "pypi",
    "a PyPI token",
    "pypi-",
    String.raw`pypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[\w-]{50,}`,
    "urlsafe",
  ],
  [
    "doppler",
    "a Doppler token",
    "dp.",
    String.raw`dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40,44}`,
    "alnum",
  ],
  [
    "tailscale",
    "a Tailscale key",
    "tskey-",
    String.raw`tskey-[a-z]{2,20}-[0-9A-Za-z_]{8,40}-[0-9A-Za-z_]{16,60}`,
    "word",
  ],
  ["linear", "a Linear API key", "lin_", String.raw`lin_(?:api|oauth)_[A-Za-z0-9_]{32,128}`, "word"],
  [
    "shopify",
    "a Shopify token",
    "shpat_|shpca_|shppa_|shpss_",
    String.raw`shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}`,
    "alnum",
  ],
  ["sentry", "a Sentry token", "sntryu_", String.raw`sntryu_[a-f0-9]{64}`, "alnum"],
  ["sentry", "a Sentry token", "sntrys_", String.raw`sntrys_eyJ[A-Za-z0-9+/=_]{50,}`, "b64"],
  ["postman", "a Postman key", "PMAK-", String.raw`PMAK-[a-f0-9]{24}-[a-f0-9]{34}`, "alnum"],
  ["perplexity", "a Perplexity key", "pplx-", String.raw`pplx-[A-Za-z0-9]{48}`, "alnum"],
  ["figma", "a Figma token", "figd_", String.raw`figd_[\w-]{40,200}`, "urlsafe"],
  [
    "age",
    "an age secret key",
    "AGE-SECRET-KEY-1",
    String.raw`AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}`,
    "alnum",
  ],
  [
    "cloudflare",
    "a Cloudflare token",
    "cfk_|cfut_|cfat_",
    String.raw`(?:cfk|cfut|cfat)_[A-Za-z0-9]{40}[0-9a-f]{8}`,
    "alnum",
  ],
  [
    "cloudflare",
    "a Cloudflare origin CA key",
    "v1.0-",
    String.raw`v1\.0-[a-f0-9]{24}-[a-f0-9]{146}`,
    "alnum",
  ],
  [
    "1password",
    "a 1Password service account token",
    "ops_eyJ",
    String.raw`ops_eyJ[A-Za-z0-9+/]{100,}={0,3}`,
    "b64",
  ],
  [
    "1password",
    "a 1Password secret key",
    "A3-",
    String.raw`A3-[A-Z0-9]{6}-(?:[A-Z0-9]{11}|[A-Z0-9]{6}-[A-Z0-9]{5})-[A-Z0-9]{5}-[A-Z0-9]{5}-[A-Z0-9]{5}`,
    "alnum",
  ],
  ["atlassian", "an Atlassian API token", "ATATT3", String.raw`ATATT3[A-Za-z0-9_=-]{186}`, "urlsafe"],
  ["newrelic", "a New Relic key", "NRAK-|NRII-", String.raw`NR(?:AK|II)-[A-Za-z0-9-]{27,32}`, "alnum"],
  ["heroku", "a Heroku API key", "HRKU-AA", String.raw`HRKU-AA[\w-]{58}`, "urlsafe"],
  ["twilio", "a Twilio API key", "SK", String.raw`SK[0-9a-fA-F]{32}`, "alnum", 3.2],
  [
    "discord",
    "a Discord webhook URL",
    "~/api/webhooks/",
    String.raw`discord(?:app)?\.com/api/webhooks/\d{5,30}/[\w-]{60,}`,
    "urlsafe",
  ],
  [
    "teams",
    "a Microsoft Teams webhook URL",
    "~.webhook.office.com/",
    String.raw`[a-z0-9]+\.webhook\.office\.com/webhookb2/[a-z0-9-]{36}@[a-z0-9-]{36}/IncomingWebhook/[a-z0-9]{32}/[a-z0-9-]{36}`,
    "none",
  ],
  // In a URL it follows `/bot`, so only a digit may not precede it.
  ["telegram", "a Telegram bot token", "~:AA", String.raw`\d{8,10}:AA[\w-]{33}`, "urlsafe", 3.0, "(?<!\\d)"],
  [
    "dynatrace",
    "a Dynatrace token",
    "dt0c01.",
    String.raw`dt0c01\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{64}`,
    "alnum",
  ],
  [
    "planetscale",
    "a PlanetScale token",
    "pscale_",
    String.raw`pscale_(?:tkn|oauth|pw)_[\w=.-]{32,64}`,
    "urlsafe",
  ],
  ["rubygems", "a RubyGems key", "rubygems_", String.raw`rubygems_[a-f0-9]{48}`, "alnum"],
  ["prefect", "a Prefect key", "pnu_", String.raw`pnu_[A-Za-z0-9]{36}`, "alnum"],
  [
    "flyio",
    "a Fly.io token",
    "fo1_|fm1|fm2",
    String.raw`(?:fo1_[\w-]{43}|fm[12][ar]?_[A-Za-z0-9+/]{100,}={0,3})`,
    "b64",
  ],
  ["square", "a Square token", "sq0", String.raw`sq0(?:atp|csp)-[\w-]{22,43}`, "urlsafe"],
  [
    "harness",
    "a Harness key",
    "pat.|sat.",
    String.raw`(?:pat|sat)\.[\w-]{22}\.[A-Za-z0-9]{24}\.[A-Za-z0-9]{20}`,
    "alnum",
  ],
  [
    "terraform",
    "a Terraform Cloud token",
    "~.atlasv1.",
    String.raw`[A-Za-z0-9]{14}\.atlasv1\.[\w=-]{60,70}`,
    "urlsafe",
  ],
  ["openshift", "an OpenShift token", "sha256~", String.raw`sha256~[\w-]{43}`, "urlsafe"],
  ["octopus", "an Octopus Deploy key", "API-", String.raw`API-[A-Z0-9]{26}`, "alnum", 3.5],
  ["infracost", "an Infracost key", "ico-", String.raw`ico-[A-Za-z0-9]{32}`, "alnum"],
  ["scalingo", "a Scalingo token", "tk-us-", String.raw`tk-us-[\w-]{48}`, "urlsafe"],
  ["brevo", "a Brevo key", "xkeysib-", String.raw`xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}`, "alnum"],
  ["easypost", "an EasyPost key", "EZAK|EZTK", String.raw`EZ[AT]K[A-Za-z0-9]{54}`, "alnum"],
  ["duffel", "a Duffel token", "duffel_", String.raw`duffel_(?:test|live)_[\w=-]{43}`, "urlsafe"],
  ["frameio", "a Frame.io token", "fio-u-", String.raw`fio-u-[\w=-]{64}`, "urlsafe"],
  ["shippo", "a Shippo token", "shippo_", String.raw`shippo_(?:live|test)_[a-fA-F0-9]{40}`, "alnum"],
  ["readme", "a ReadMe key", "rdme_", String.raw`rdme_[a-z0-9]{70}`, "alnum"],
  ["clojars", "a Clojars token", "CLOJARS_", String.raw`CLOJARS_[a-z0-9]{60}`, "alnum"],
  ["maxmind", "a MaxMind license key", "~_mmk", String.raw`[A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk`, "alnum"],
  ["airtable", "an Airtable token", "pat", String.raw`pat[A-Za-z0-9]{14}\.[a-f0-9]{64}`, "alnum"],
  ["jfrog", "a JFrog key", "AKCp", String.raw`AKCp[A-Za-z0-9]{69}`, "alnum"],
  ["jfrog", "a JFrog reference token", "cmVmd", String.raw`cmVmd[A-Za-z0-9]{59}`, "alnum"],
  ["facebook", "a Facebook access token", "EAAM|EAAC", String.raw`EAA[MC][A-Za-z0-9]{100,}`, "alnum"],
  ["mapbox", "a Mapbox secret token", "sk.eyJ", String.raw`sk\.eyJ[\w-]{50,}\.[\w-]{20,}`, "urlsafe"],
  ["alibaba", "an Alibaba access key id", "LTAI", String.raw`LTAI[A-Za-z0-9]{20}`, "alnum"],
  ["adobe", "an Adobe client secret", "p8e-", String.raw`p8e-[A-Za-z0-9]{32}`, "alnum"],
  [
    "settlemint",
    "a SettleMint token",
    "sm_aat_|sm_pat_|sm_sat_",
    String.raw`sm_(?:aat|pat|sat)_[A-Za-z0-9]{16}`,
    "alnum",
  ],
  [
    "sourcegraph",
    "a Sourcegraph token",
    "sgp_",
    String.raw`sgp_(?:[a-fA-F0-9]{16}_|local_)?[a-fA-F0-9]{40}`,
    "alnum",
  ],
  ["flutterwave", "a Flutterwave key", "FLWSECK", String.raw`FLWSECK(?:_TEST)?-[a-hA-H0-9]{32}-X`, "alnum"],
  [
    "definednetworking",
    "a Defined Networking key",
    "dnkey-",
    String.raw`dnkey-[\w=-]{26}-[\w=-]{52}`,
    "urlsafe",
  ],
  ["mailchimp", "a Mailchimp key", "~-us", String.raw`[a-f0-9]{32}-us\d{1,2}`, "alnum"],
  ["clickhouse", "a ClickHouse Cloud key", "4b1d", String.raw`4b1d[A-Za-z0-9]{38}`, "alnum"],
];

export const TOKEN_FORMATS: readonly TokenFormat[] = SPECS.map(
  ([id, label, hint, body, end = "none", minEntropy = 3.0, left = LEFT]) => ({
    id,
    label,
    hint,
    re: new RegExp(left + body + END[end], "g"),
    minEntropy,
  }),
);

/**
 * Every format is a run of at least 20 token characters (the shortest, an AWS key id, is 20;
 * Telegram's is split by a colon into 8+ and 35). Most strings have no such run, and a character
 * class is far cheaper to scan for than a hundred prefixes.
 */
const TOKEN_RUN_RE = /[\w+/=.~-]{20}/;

/** Prefix literals by first character (an ASCII code), with the formats they start. */
const BY_FIRST: ({ prefix: string; formats: TokenFormat[] }[] | undefined)[] = new Array<undefined>(128);
/** Formats recognised by a literal inside them (`Q~`, `:AA`, `-us`), not by a prefix. */
const INFIX: { infix: string; formats: TokenFormat[] }[] = [];
for (const f of TOKEN_FORMATS) {
  if (f.hint.startsWith("~")) {
    const infix = f.hint.slice(1);
    const entry = INFIX.find((e) => e.infix === infix);
    if (entry) entry.formats.push(f);
    else INFIX.push({ infix, formats: [f] });
    continue;
  }
  for (const prefix of f.hint.split("|")) {
    const list = (BY_FIRST[prefix.charCodeAt(0)] ??= []);
    const entry = list.find((e) => e.prefix === prefix);
    if (entry) entry.formats.push(f);
    else list.push({ prefix, formats: [f] });
  }
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
/**
 * Any prefix at the start of a word, as one regex factored by first character (`g(?:hp_|lpat-|…)`)
 * so the engine tries one branch per position, not a hundred: the common case, no prefix at all,
 * is one fast scan.
 */
const ANY_PREFIX_RE = new RegExp(
  String.raw`(?:(?<=\\[nrt])|(?<![A-Za-z0-9_]))(?:` +
    BY_FIRST.flatMap((list, c) =>
      list
        ? [`${escapeRe(String.fromCharCode(c))}(?:${list.map((e) => escapeRe(e.prefix.slice(1))).join("|")})`]
        : [],
    ).join("|") +
    ")",
);

/** [A-Za-z0-9_]: a prefix glued to one of these is part of a longer word, not a token. */
function isWordChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95;
}

/**
 * The first provider-format token in `value` that is not a placeholder, if any. Cheap tests first
 * (a long enough run, an infix literal, any prefix); then one pass over the characters finds the
 * prefixes that start a word (after a separator, or an escaped `\n`), and only the formats they
 * begin, and those whose infix literal is present, run their regex.
 */
export function findToken(value: string): TokenFormat | undefined {
  if (value.length < 16 || !TOKEN_RUN_RE.test(value)) return undefined;
  let candidates: Set<TokenFormat> | undefined;
  for (const e of INFIX)
    if (value.includes(e.infix)) for (const f of e.formats) (candidates ??= new Set()).add(f);
  if (candidates === undefined && !ANY_PREFIX_RE.test(value)) return undefined;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const list = c < 128 ? BY_FIRST[c] : undefined;
    if (list === undefined) continue;
    if (i > 0 && isWordChar(value.charCodeAt(i - 1)) && !(i > 1 && value.charCodeAt(i - 2) === 92)) continue;
    for (const e of list)
      if (value.startsWith(e.prefix, i)) for (const f of e.formats) (candidates ??= new Set()).add(f);
  }
  if (candidates === undefined) return undefined;
  for (const f of TOKEN_FORMATS) if (candidates.has(f) && matchesFormat(f, value)) return f;
  return undefined;
}

function matchesFormat(f: TokenFormat, value: string): boolean {
  f.re.lastIndex = 0;
  for (let m = f.re.exec(value); m; m = f.re.exec(value)) {
    const token = m[0];
    if (!isPlaceholder(token) && !isPlaceholder(bodyOf(token)) && shannonEntropy(token) >= f.minEntropy)
      return true;
  }
  return false;
}

/** The part after a token's prefix (`glpat-XXXX…` → `XXXX…`), for the placeholder test. */
function bodyOf(token: string): string {
  const m = /^[A-Za-z0-9]{1,12}[_.-](?:[a-z]{2,8}\d*[_-])?/.exec(token);
  return m ? token.slice(m[0].length) : token;
}
