/**
 * The JSON this app's API routes speak, shared by the route handlers and the browser code (so it must
 * not import anything server-only).
 */

/** Every non-2xx answer of /api/*. `retryAfterSeconds` mirrors the Retry-After header for the UI. */
export interface ApiErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly retryAfterSeconds?: number;
  };
}

export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";

export const TERMINAL_STATUSES: readonly JobStatus[] = ["succeeded", "failed", "cancelled"];

/** A job as /api/jobs answers it: the gateway's record, trimmed to what the page shows. */
export interface JobView {
  readonly id: string;
  readonly status: JobStatus;
  readonly model?: string;
  readonly attempts?: number;
  readonly result?: { readonly content: string | null; readonly finishReason: string | null };
  readonly error?: { readonly reason: string; readonly attempts?: number };
  /** Why the last attempt failed while the job waits for a retry. */
  readonly lastError?: string;
}

export interface ModelList {
  readonly models: readonly string[];
  /**
   * Where the list comes from: the gateway's GET /v1/models (empty: the key may use no served model),
   * the configured GATEWAY_MODELS (the gateway's list could not be loaded), or nowhere (the gateway
   * refused it, e.g. a bad key).
   */
  readonly source: "gateway" | "config" | "none";
  /** Why the list is empty or not the gateway's, for the page to say. */
  readonly notice?: string;
}

/** Job ids as the gateway issues them (UUIDs); anything else never reaches the gateway's URL space. */
export const JOB_ID = /^[A-Za-z0-9-]{1,64}$/;

/** The text to show for an error answer of /api/* (its body as text), whatever its shape. */
export function errorMessage(body: string, status?: number): string {
  try {
    const parsed = JSON.parse(body) as Partial<ApiErrorBody> | null;
    const message = parsed?.error?.message;
    if (typeof message === "string" && message !== "") return message;
  } catch {
    // not JSON: fall through
  }
  const text = body.trim();
  if (text !== "" && text.length <= 300 && !text.startsWith("<")) return text;
  return status ? `The app's server answered ${status}.` : "Something went wrong.";
}
