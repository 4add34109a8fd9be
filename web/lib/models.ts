/**
 * The models the pickers offer: the gateway's own list (GET /v1/models, OpenAI's shape) when it serves
 * one, else the configured GATEWAY_MODELS, and the page says which and why.
 */
import type { ModelList } from "./api";
import type { GatewayConfig } from "./config";
import { AppError, callGateway } from "./gateway";

interface OpenAIModels {
  data?: { id?: unknown }[];
}

function fallback(cfg: GatewayConfig, why: string): ModelList {
  const models = [...cfg.models];
  const then =
    models.length > 0
      ? "showing the models configured in GATEWAY_MODELS"
      : "and GATEWAY_MODELS is not set: type a model name";
  return { models, source: "config", notice: `${why}; ${then}.` };
}

export async function listModels(cfg: GatewayConfig, signal?: AbortSignal): Promise<ModelList> {
  try {
    // Short bound: the list only fills a picker, and a page must not hang on it.
    const { body } = await callGateway<OpenAIModels>(cfg, "/models", {
      timeoutMs: 3000,
      ...(signal ? { signal } : {}),
    });
    const ids = (body.data ?? []).map((m) => m.id).filter((id): id is string => typeof id === "string");
    if (ids.length === 0) return fallback(cfg, "The gateway's model list is empty");
    return { models: [...new Set(ids)], source: "gateway" };
  } catch (err) {
    if (err instanceof AppError && (err.status === 404 || err.status === 405))
      return fallback(cfg, "The gateway does not list its models (no GET /v1/models)");
    const why = err instanceof AppError ? err.message.replace(/\.$/, "") : String(err);
    return fallback(cfg, `Could not load the gateway's model list (${why})`);
  }
}
