import type { KeyLimits } from "./auth";
import type { TopValue } from "./json-scan";

/**
 * One OpenAI-compatible endpoint the gateway relays. Everything that differs between chat,
 * completions, embeddings and responses is data here; the checks, the admission and the relay itself
 * are shared.
 */
export interface RelayEndpoint {
  /** Route on the gateway, also the `route` metric label. */
  route: string;
  /** Path appended to BACKEND_URL (which ends with the API prefix, e.g. `/v1`). */
  upstreamPath: string;
  /** Human name of one request, for error messages ("chat completion request"). */
  what: string;
  /** The member that carries the input; when `required`, it must be present and non-empty. */
  input: { field: string; required: boolean; types: readonly ("string" | "array")[] };
  /** Whether `stream: true` gets an SSE stream (embeddings never stream). */
  streams: boolean;
  /** Members bounded by the key's `max_n` (how many generations one request asks for). */
  countFields: readonly string[];
  /** Members bounded by the key's `max_tokens` (the output budget). */
  tokenFields: readonly string[];
  /**
   * What one generated token looks like, for the tokens-per-second metric: in an SSE stream, an
   * event marker counted per chunk (`data:` for chat and completions, minus the final `[DONE]`); in a
   * JSON body, the usage member holding the output tokens. null: no generated tokens (embeddings).
   */
  tokens: { sseMarker: string; sseDone: boolean; usageMember: string } | null;
}

export const CHAT: RelayEndpoint = {
  route: "/v1/chat/completions",
  upstreamPath: "/chat/completions",
  what: "chat completion request",
  input: { field: "messages", required: true, types: ["array"] },
  streams: true,
  countFields: ["n"],
  // Both names of the output budget: the newer one is what current SDKs send.
  tokenFields: ["max_tokens", "max_completion_tokens"],
  tokens: { sseMarker: "data:", sseDone: true, usageMember: '"completion_tokens":' },
};

export const COMPLETIONS: RelayEndpoint = {
  route: "/v1/completions",
  upstreamPath: "/completions",
  what: "completion request",
  input: { field: "prompt", required: true, types: ["string", "array"] },
  streams: true,
  // best_of generates that many completions server-side and returns n of them.
  countFields: ["n", "best_of"],
  tokenFields: ["max_tokens"],
  tokens: { sseMarker: "data:", sseDone: true, usageMember: '"completion_tokens":' },
};

export const EMBEDDINGS: RelayEndpoint = {
  route: "/v1/embeddings",
  upstreamPath: "/embeddings",
  what: "embeddings request",
  input: { field: "input", required: true, types: ["string", "array"] },
  streams: false,
  countFields: [],
  tokenFields: [],
  tokens: null,
};

export const RESPONSES: RelayEndpoint = {
  route: "/v1/responses",
  upstreamPath: "/responses",
  what: "response request",
  // Optional in the Responses API (a stored prompt or previous_response_id can stand in for it).
  input: { field: "input", required: false, types: ["string", "array"] },
  streams: true,
  countFields: [],
  tokenFields: ["max_output_tokens"],
  // One `response.output_text.delta` event per token (its type is quoted in the event's data).
  tokens: { sseMarker: '"response.output_text.delta"', sseDone: false, usageMember: '"output_tokens":' },
};

export const RELAY_ENDPOINTS: readonly RelayEndpoint[] = [CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES];

export interface RelayRequestView {
  model: string;
  stream: boolean;
}

type Problems = { field: string; message: string }[];

/** `name` absent or null, or an integer in [1, max]. */
function boundedInt(
  fields: Map<string, TopValue>,
  name: string,
  max: number,
  keyName: string,
  problems: Problems,
) {
  const v = fields.get(name);
  if (v === undefined || v.type === "null") return;
  if (v.type !== "number" || !Number.isInteger(v.value) || v.value < 1) {
    problems.push({ field: name, message: "must be a positive integer" });
  } else if (v.value > max) {
    problems.push({ field: name, message: `must be at most ${max} for API key '${keyName}'` });
  }
}

function inputProblem(ep: RelayEndpoint, v: TopValue | undefined): string | null {
  const { required, types } = ep.input;
  const shape = types.map((t) => (t === "string" ? "a string" : "a non-empty array")).join(" or ");
  if (v === undefined || v.type === "null") return required ? `must be ${shape}` : null;
  if (v.type === "string" && types.includes("string")) return null;
  if (v.type === "array" && types.includes("array") && v.length > 0) return null;
  return `must be ${shape}`;
}

/**
 * Checks a relayed request body from its top-level members (see json-scan): what the gateway needs
 * (model, the input member, stream) and the key's bounds on the number of generations and the token
 * budget. Everything else is the backend's to judge. `stream` is only true on endpoints that stream.
 */
export function checkRelayRequest(
  ep: RelayEndpoint,
  root: TopValue["type"],
  fields: Map<string, TopValue>,
  limits: Required<KeyLimits>,
  keyName: string,
): { ok: true; view: RelayRequestView } | { ok: false; problems: Problems } {
  const problems: Problems = [];
  if (root !== "object")
    return { ok: false, problems: [{ field: "(body)", message: "must be a JSON object" }] };
  const model = fields.get("model");
  if (model?.type !== "string" || model.value.length === 0) {
    problems.push({ field: "model", message: "must be a non-empty string" });
  }
  const input = inputProblem(ep, fields.get(ep.input.field));
  if (input !== null) problems.push({ field: ep.input.field, message: input });
  const stream = fields.get("stream");
  if (stream !== undefined && stream.type !== "boolean" && stream.type !== "null") {
    problems.push({ field: "stream", message: "must be a boolean" });
  }
  for (const f of ep.countFields) boundedInt(fields, f, limits.maxN, keyName, problems);
  for (const f of ep.tokenFields) boundedInt(fields, f, limits.maxTokens, keyName, problems);
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    view: {
      model: (model as { value: string }).value,
      stream: ep.streams && stream?.type === "boolean" && stream.value,
    },
  };
}
