/**
 * /api/jobs: async jobs through the gateway's jobs API (POST /v1/jobs, GET /v1/jobs/:id). The browser
 * never sees the gateway's URL or key; it gets the job's id and a trimmed record to poll.
 */
import { JOB_ID, type JobStatus, type JobView } from "./api";
import type { GatewayConfig } from "./config";
import { AppError, callGateway } from "./gateway";

const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$/;
/** The gateway's Idempotency-Key grammar (1-255 printable ASCII without spaces). */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const MAX_PROMPT_CHARS = 32_000;

interface GatewayJob {
  id: string;
  status: JobStatus;
  model?: string;
  attempts?: number;
  result?: { content?: string | null; finish_reason?: string | null } | null;
  error?: { reason?: string; attempts?: number } | null;
  last_error?: string | null;
}

export function jobView(j: GatewayJob): JobView {
  return {
    id: j.id,
    status: j.status,
    ...(j.model ? { model: j.model } : {}),
    ...(typeof j.attempts === "number" ? { attempts: j.attempts } : {}),
    ...(j.result
      ? { result: { content: j.result.content ?? null, finishReason: j.result.finish_reason ?? null } }
      : {}),
    ...(j.error
      ? {
          error: {
            reason: j.error.reason ?? "unknown",
            ...(j.error.attempts !== undefined ? { attempts: j.error.attempts } : {}),
          },
        }
      : {}),
    ...(j.last_error ? { lastError: j.last_error } : {}),
  };
}

const json = (body: unknown, status: number) =>
  Response.json(body, { status, headers: { "cache-control": "no-store" } });

async function guard(run: () => Promise<Response>): Promise<Response> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof AppError) return err.toResponse();
    throw err;
  }
}

export function handleSubmitJob(req: Request, cfg: GatewayConfig): Promise<Response> {
  return guard(async () => {
    let body: { model?: unknown; prompt?: unknown };
    try {
      body = ((await req.json()) ?? {}) as typeof body;
    } catch {
      throw new AppError(400, "invalid_json", "The request body is not JSON.");
    }
    if (typeof body.model !== "string" || !MODEL_ID.test(body.model))
      throw new AppError(400, "invalid_model", "Pick a model: `model` must be a model id.");
    if (typeof body.prompt !== "string" || body.prompt.trim() === "")
      throw new AppError(400, "invalid_prompt", "Type a prompt for the job.");
    if (body.prompt.length > MAX_PROMPT_CHARS)
      throw new AppError(413, "payload_too_large", `The prompt is over ${MAX_PROMPT_CHARS} characters.`);
    // The browser's key for this submission: a resubmit after a lost answer gets the same job back.
    const idem = req.headers.get("idempotency-key");
    if (idem !== null && !IDEMPOTENCY_KEY.test(idem))
      throw new AppError(
        400,
        "invalid_idempotency_key",
        "Idempotency-Key must be 1-255 printable characters.",
      );
    const { status, body: job } = await callGateway<GatewayJob>(
      cfg,
      "/jobs",
      {
        method: "POST",
        body: { model: body.model, input: body.prompt },
        ...(idem ? { headers: { "idempotency-key": idem } } : {}),
        signal: req.signal,
      },
      "job",
    );
    return json(jobView({ ...job, model: body.model }), status);
  });
}

export function handleGetJob(req: Request, id: string, cfg: GatewayConfig): Promise<Response> {
  return guard(async () => {
    if (!JOB_ID.test(id)) throw new AppError(404, "job_not_found", "No such job.");
    const { body: job } = await callGateway<GatewayJob>(
      cfg,
      `/jobs/${encodeURIComponent(id)}`,
      { signal: req.signal },
      "job",
    );
    return json(jobView(job), 200);
  });
}
