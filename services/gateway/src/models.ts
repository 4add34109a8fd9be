/** One entry of `GET /v1/models`, in OpenAI's shape. */
export interface ModelObject {
  id: string;
  object: "model";
  /** Unix seconds; the gateway reports when this replica started serving the list. */
  created: number;
  owned_by: string;
}

export const MODEL_OWNER = "gateway";

/**
 * The models a key sees: those this deployment serves (MODELS, in its order), narrowed to the key's
 * allow-list when it has one. A model a key may use but the deployment does not serve is not listed.
 */
export function visibleModels(served: readonly string[], allowed: ReadonlySet<string> | undefined): string[] {
  return allowed ? served.filter((m) => allowed.has(m)) : [...served];
}

export function modelObject(id: string, created: number): ModelObject {
  return { id, object: "model", created, owned_by: MODEL_OWNER };
}

/** `GET /v1/models` body: `{object: "list", data: [...]}`. */
export function modelList(ids: readonly string[], created: number): { object: "list"; data: ModelObject[] } {
  return { object: "list", data: ids.map((id) => modelObject(id, created)) };
}
