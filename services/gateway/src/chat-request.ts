import type { KeyLimits } from "./auth";
import type { TopValue } from "./json-scan";

export interface ChatRequestView {
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

/**
 * Checks a chat completion body from its top-level members (see json-scan): what the gateway needs
 * (model, messages, stream) and the key's bounds on `n` and the token budget. Everything else is the
 * backend's to judge.
 */
export function checkChatRequest(
  root: TopValue["type"],
  fields: Map<string, TopValue>,
  limits: Required<KeyLimits>,
  keyName: string,
): { ok: true; view: ChatRequestView } | { ok: false; problems: Problems } {
  const problems: Problems = [];
  if (root !== "object")
    return { ok: false, problems: [{ field: "(body)", message: "must be a JSON object" }] };
  const model = fields.get("model");
  if (model?.type !== "string" || model.value.length === 0) {
    problems.push({ field: "model", message: "must be a non-empty string" });
  }
  const messages = fields.get("messages");
  if (messages?.type !== "array" || messages.length === 0) {
    problems.push({ field: "messages", message: "must be a non-empty array" });
  }
  const stream = fields.get("stream");
  if (stream !== undefined && stream.type !== "boolean" && stream.type !== "null") {
    problems.push({ field: "stream", message: "must be a boolean" });
  }
  boundedInt(fields, "n", limits.maxN, keyName, problems);
  // Both names of the output budget: the newer one is what current SDKs send.
  boundedInt(fields, "max_tokens", limits.maxTokens, keyName, problems);
  boundedInt(fields, "max_completion_tokens", limits.maxTokens, keyName, problems);
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    view: {
      model: (model as { value: string }).value,
      stream: stream?.type === "boolean" && stream.value,
    },
  };
}
