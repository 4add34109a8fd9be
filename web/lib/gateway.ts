/**
 * Calls to the inference gateway (server-only: it sends GATEWAY_API_KEY) and the translation of its
 * failures into answers for the browser: a status the browser can act on, and a sentence a user can
 * read. The gateway's own error shape is `{"error": {"type", "code", "message"}}`
 * (services/gateway/README.md, "Errors").
 */
import type { ApiErrorBody } from "./api";
import type { GatewayConfig } from "./config";

export class AppError extends Error {
  /** The gateway's own status when this error is its answer; undefined when it never answered. */
  upstreamStatus?: number;

  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }

  toResponse(): Response {
    const body: ApiErrorBody = {
      error: {
        code: this.code,
        message: this.message,
        ...(this.retryAfterSeconds !== undefined ? { retryAfterSeconds: this.retryAfterSeconds } : {}),
      },
    };
    return Response.json(body, {
      status: this.status,
      headers: {
        "cache-control": "no-store",
        ...(this.retryAfterSeconds !== undefined ? { "retry-after": String(this.retryAfterSeconds) } : {}),
      },
    });
  }
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date), capped at an hour. */
export function retryAfterSeconds(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const v = value.trim();
  const seconds = /^\d+$/.test(v) ? Number(v) : Math.ceil((Date.parse(v) - now) / 1000);
  if (!Number.isFinite(seconds)) return undefined;
  return Math.min(3600, Math.max(0, seconds));
}

interface GatewayErrorBody {
  error?: { code?: unknown; message?: unknown; type?: unknown };
}

/** The gateway's message, if its body has one, shortened: it is shown to the user. */
function gatewayMessage(body: string): { code?: string; message?: string } {
  try {
    const e = (JSON.parse(body) as GatewayErrorBody | null)?.error;
    const code = typeof e?.code === "string" ? e.code : undefined;
    const message = typeof e?.message === "string" ? e.message.slice(0, 300) : undefined;
    return { ...(code ? { code } : {}), ...(message ? { message } : {}) };
  } catch {
    return {};
  }
}

/**
 * What a gateway answer with this status means for the user. The gateway's 401 is this app's
 * misconfiguration, not the user's: it becomes a 502 so the browser does not take it for its own login.
 */
export function fromGatewayStatus(
  status: number,
  headers: { get(name: string): string | null },
  body: string,
  what = "request",
): AppError {
  const e = describeGatewayStatus(status, headers, body, what);
  e.upstreamStatus = status;
  return e;
}

function describeGatewayStatus(
  status: number,
  headers: { get(name: string): string | null },
  body: string,
  what: string,
): AppError {
  const g = gatewayMessage(body);
  const detail = g.message ? `: ${g.message}` : "";
  const code = g.code ?? `gateway_${status}`;
  if (status === 401)
    return new AppError(
      502,
      "gateway_unauthorized",
      `The gateway rejected this app's API key (401${g.code ? ` ${g.code}` : ""}). Check GATEWAY_API_KEY.`,
    );
  if (status === 429 || status === 503 || status === 507) {
    const after = retryAfterSeconds(headers.get("retry-after"));
    const when = after !== undefined ? `try again in ${after} s` : "try again shortly";
    const why =
      status === 429
        ? "The gateway is rate-limiting this app"
        : status === 503
          ? "The gateway is unavailable"
          : "The gateway's job store is full";
    return new AppError(
      status,
      code,
      `${why} (${status}): ${when}.${g.message ? ` (${g.message})` : ""}`,
      after,
    );
  }
  if (status === 504)
    return new AppError(504, code, `The model did not answer in time (gateway 504)${detail}.`);
  if (status >= 500) return new AppError(502, code, `The model backend failed (gateway ${status})${detail}.`);
  if (status === 403) return new AppError(403, code, `The gateway refused the ${what} (403)${detail}.`);
  if (status === 404) return new AppError(404, code, `Not found at the gateway (404)${detail}.`);
  return new AppError(status, code, `The gateway rejected the ${what} (${status})${detail}.`);
}

/** A fetch that never got an answer: the gateway is down, unresolvable or too slow. */
export function unreachable(cfg: GatewayConfig, err: unknown): AppError {
  const e = err as { name?: string; code?: string; cause?: { code?: string } } | undefined;
  if (e?.name === "TimeoutError")
    return new AppError(504, "gateway_timeout", `The gateway at ${cfg.gatewayUrl} did not answer in time.`);
  // fetch wraps the socket error (ECONNREFUSED, ENOTFOUND) in a TypeError's cause.
  const why = e?.code ?? e?.cause?.code ?? (err instanceof Error ? err.message : String(err));
  return new AppError(502, "gateway_unreachable", `Cannot reach the gateway at ${cfg.gatewayUrl} (${why}).`);
}

export interface GatewayRequest {
  readonly method?: "GET" | "POST";
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  readonly signal?: AbortSignal;
  /** Bound on the whole call; the user's own abort (signal) ends it sooner. */
  readonly timeoutMs?: number;
}

/** Calls `{gatewayUrl}/v1{path}` with the app's key; throws AppError for anything but 2xx. */
export async function callGateway<T>(
  cfg: GatewayConfig,
  path: string,
  req: GatewayRequest = {},
  what?: string,
): Promise<{ status: number; body: T }> {
  const signals = [AbortSignal.timeout(req.timeoutMs ?? 10_000), ...(req.signal ? [req.signal] : [])];
  let res: Response;
  try {
    res = await fetch(`${cfg.gatewayUrl}/v1${path}`, {
      method: req.method ?? "GET",
      headers: {
        authorization: `Bearer ${cfg.apiKey}`,
        accept: "application/json",
        ...(req.body !== undefined ? { "content-type": "application/json" } : {}),
        ...req.headers,
      },
      ...(req.body !== undefined ? { body: JSON.stringify(req.body) } : {}),
      signal: AbortSignal.any(signals),
    });
  } catch (err) {
    throw unreachable(cfg, err);
  }
  const text = await res.text();
  if (!res.ok) throw fromGatewayStatus(res.status, res.headers, text, what);
  try {
    return { status: res.status, body: JSON.parse(text) as T };
  } catch {
    throw new AppError(
      502,
      "gateway_bad_response",
      `The gateway answered ${res.status} with a body that is not JSON.`,
    );
  }
}

/** The answer of every API route while the configuration is invalid (the page says the same). */
export function misconfigured(problems: readonly { message: string }[]): Response {
  return new AppError(
    503,
    "config_invalid",
    `This app is misconfigured: ${problems.map((p) => p.message).join(" ")}`,
  ).toResponse();
}
