/**
 * The app's configuration, from the environment, validated. Server-only: it holds the gateway key.
 *
 * A bad value never crashes the server: every page shows what is wrong (naming the variable), the API
 * routes answer 503 with the same text, /api/health answers 503 so the pod is never Ready, and the
 * problems are logged once at start (instrumentation.ts). A crash loop would hide the reason behind a
 * restart counter; a blank page would hide it from the user.
 */

export interface GatewayConfig {
  /** Base URL of the gateway, without a trailing slash or `/v1` (the routes add `/v1/...`). */
  readonly gatewayUrl: string;
  readonly apiKey: string;
  /** Models to offer when the gateway's list cannot be loaded (`GATEWAY_MODELS`, comma-separated). */
  readonly models: readonly string[];
}

export interface ConfigProblem {
  readonly variable: string;
  readonly message: string;
}

export type ConfigResult =
  | { readonly ok: true; readonly config: GatewayConfig }
  | { readonly ok: false; readonly problems: readonly ConfigProblem[] };

/** Model ids as OpenAI-compatible servers name them (`org/model:tag`, `llama-3.1-8b-instruct`). */
const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$/;

const URL_EXAMPLE = "e.g. https://ai.example.org, or http://gateway.inference.svc.cluster.local in-cluster";

function gatewayUrl(raw: string | undefined, problems: ConfigProblem[]): string | undefined {
  const problem = (message: string) => problems.push({ variable: "GATEWAY_URL", message });
  const value = raw?.trim() ?? "";
  if (value === "") {
    problem(`GATEWAY_URL is not set: set it to the inference gateway's base URL (${URL_EXAMPLE}).`);
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // Not echoed: a value this broken may be a pasted secret.
    problem(`GATEWAY_URL is not a valid absolute URL: expected ${URL_EXAMPLE}.`);
    return undefined;
  }
  if (url.username || url.password) {
    problem("GATEWAY_URL must not carry credentials (user:password@); the key goes in GATEWAY_API_KEY.");
    return undefined;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    problem(`GATEWAY_URL must be an http:// or https:// URL, not ${url.protocol}// (${URL_EXAMPLE}).`);
    return undefined;
  }
  if (url.search || url.hash) {
    problem(`GATEWAY_URL must not have a query or fragment (got ${url.origin}${url.pathname}${url.search}).`);
    return undefined;
  }
  // A base path is kept (a gateway behind a path prefix); a trailing /v1 is the API version the routes
  // add themselves, so both spellings work.
  const path = url.pathname.replace(/\/+$/, "").replace(/\/v1$/, "");
  return `${url.origin}${path}`;
}

function apiKey(raw: string | undefined, problems: ConfigProblem[]): string | undefined {
  const problem = (message: string) => problems.push({ variable: "GATEWAY_API_KEY", message });
  if (raw === undefined || raw === "") {
    problem("GATEWAY_API_KEY is not set: set it to the gateway API key this app calls the gateway with.");
    return undefined;
  }
  // Header values cannot hold these; the usual cause is a Secret written with a trailing newline.
  // Trimming silently would hide a key that differs from the one whose hash the gateway holds.
  if (/[\s\p{Cc}]/u.test(raw)) {
    problem(
      "GATEWAY_API_KEY is malformed: it contains whitespace or control characters (a trailing newline from a file?).",
    );
    return undefined;
  }
  if (raw.length < 16) {
    problem(`GATEWAY_API_KEY is malformed: ${raw.length} characters, too short for a gateway key.`);
    return undefined;
  }
  return raw;
}

function models(raw: string | undefined, problems: ConfigProblem[]): string[] {
  if (raw === undefined || raw.trim() === "") return [];
  const out: string[] = [];
  for (const entry of raw.split(",").map((m) => m.trim())) {
    if (!MODEL_ID.test(entry)) {
      problems.push({
        variable: "GATEWAY_MODELS",
        message: `GATEWAY_MODELS is malformed: ${entry === "" ? "an empty entry" : JSON.stringify(entry.slice(0, 64))} is not a model id (comma-separated, e.g. llama-3.1-8b-instruct,qwen2.5-7b-instruct).`,
      });
      return [];
    }
    if (!out.includes(entry)) out.push(entry);
  }
  return out;
}

export function readConfig(env: Readonly<Record<string, string | undefined>> = process.env): ConfigResult {
  const problems: ConfigProblem[] = [];
  const url = gatewayUrl(env["GATEWAY_URL"], problems);
  const key = apiKey(env["GATEWAY_API_KEY"], problems);
  const list = models(env["GATEWAY_MODELS"], problems);
  // Next.js inlines NEXT_PUBLIC_* into the browser bundle: a key there is published to every visitor.
  if (env["NEXT_PUBLIC_GATEWAY_API_KEY"] !== undefined)
    problems.push({
      variable: "NEXT_PUBLIC_GATEWAY_API_KEY",
      message:
        "NEXT_PUBLIC_GATEWAY_API_KEY is set: NEXT_PUBLIC_ variables are sent to the browser. Unset it and rotate the key; use GATEWAY_API_KEY (server-only).",
    });
  if (problems.length > 0 || url === undefined || key === undefined) return { ok: false, problems };
  return { ok: true, config: { gatewayUrl: url, apiKey: key, models: list } };
}

/** One line per problem, for logs. */
export function describeProblems(problems: readonly ConfigProblem[]): string {
  return problems.map((p) => `  - ${p.message}`).join("\n");
}
