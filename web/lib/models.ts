/**
 * The models the pickers offer. The gateway's list (GET /v1/models, OpenAI's shape: its MODELS narrowed
 * to this app's key) is the truth, an empty one included. GATEWAY_MODELS only stands in when the list
 * cannot be loaded (the gateway unreachable, too slow, or failing with a 5xx); a refusal (4xx) is said
 * as such. Whenever the list is not the gateway's own non-empty one, the page says why.
 */
import type { ModelList } from "./api";
import type { GatewayConfig } from "./config";
import { AppError, callGateway } from "./gateway";

/** What GET /v1/models should answer, `{object: "list", data: [{id, ...}]}`, checked as it comes. */
interface OpenAIModels {
  data?: unknown;
}

const modelId = (m: unknown): unknown =>
  typeof m === "object" && m !== null ? (m as { id?: unknown }).id : undefined;

const TYPE_ONE = "type a model name";

function fallback(cfg: GatewayConfig, why: string): ModelList {
  const models = [...cfg.models];
  const then =
    models.length > 0
      ? "showing the models configured in GATEWAY_MODELS"
      : `and GATEWAY_MODELS is not set: ${TYPE_ONE}`;
  return { models, source: "config", notice: `${why}; ${then}.` };
}

/** The gateway could not give its list (as opposed to answering it, or refusing it with a 4xx). */
function listUnavailable(err: unknown): boolean {
  if (!(err instanceof AppError)) return true;
  // No status of the gateway's own: unreachable, timed out, or a body that is not JSON.
  return err.upstreamStatus === undefined || err.upstreamStatus >= 500;
}

const why = (err: unknown) => (err instanceof AppError ? err.message.replace(/\.$/, "") : String(err));

export async function listModels(cfg: GatewayConfig, signal?: AbortSignal): Promise<ModelList> {
  let body: OpenAIModels | null;
  try {
    // Short bound: the list only fills a picker, and a page must not hang on it.
    ({ body } = await callGateway<OpenAIModels | null>(cfg, "/models", {
      timeoutMs: 3000,
      ...(signal ? { signal } : {}),
    }));
  } catch (err) {
    if (listUnavailable(err)) return fallback(cfg, `Could not load the gateway's model list (${why(err)})`);
    return {
      models: [],
      source: "none",
      notice: `The gateway refused this app its model list (${why(err)}); ${TYPE_ONE}.`,
    };
  }
  const data: unknown[] = Array.isArray(body?.data) ? body.data : [];
  const ids = data.map(modelId).filter((id): id is string => typeof id === "string" && id !== "");
  if (ids.length > 0) return { models: [...new Set(ids)], source: "gateway" };
  const unused =
    cfg.models.length > 0
      ? " GATEWAY_MODELS is not offered instead: it only stands in while the gateway's list cannot be loaded."
      : "";
  return {
    models: [],
    source: "gateway",
    notice:
      "The gateway lists no model this app's key may use (its MODELS setting is empty, or names none of " +
      `the key's models); ${TYPE_ONE}.${unused}`,
  };
}
