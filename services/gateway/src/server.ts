import Fastify, {
  LogController,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type onRequestHookHandler,
} from "fastify";
import { type ApiKey, type KeyStore, RateLimiter, type Scope, presentedKey } from "./auth";
import type { Backend } from "./backend";
import type { Readiness } from "./health";
import {
  IdempotencyConflictError,
  type JobRecord,
  type JobStore,
  fieldErrors,
  isJobId,
  jobRequestSchema,
} from "./jobs";
import type { Metrics } from "./metrics";
import { relayChat } from "./relay";

declare module "fastify" {
  interface FastifyRequest {
    apiKey: ApiKey | null;
    startNs: bigint;
    /** Set when the chat relay took the response over; it records its own duration metric. */
    relayed: boolean;
  }
}

export interface AppOptions {
  keys: KeyStore;
  backend: Backend;
  metrics: Metrics;
  readiness: Readiness;
  /** Absent: the job endpoints answer 503 (e.g. the relay-only benchmark). */
  jobs?: JobStore;
  maxBodyBytes?: number;
  rateLimit?: { rps: number; burst: number };
  /** Prefix for status_url; a relative URL is returned when unset. */
  publicBaseUrl?: string;
  logLevel?: string;
}

type ErrorBody = { error: { type: string; code: string; message: string; fields?: unknown } };

function err(type: string, code: string, message: string, fields?: unknown): ErrorBody {
  return fields === undefined
    ? { error: { type, code, message } }
    : { error: { type, code, message, fields } };
}

const JOBS_ROUTE_PREFIX = "/v1/jobs";
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** Public view of a job record (input and owner are not echoed back). */
export function jobView(r: JobRecord, ttlSeconds?: number) {
  return {
    id: r.id,
    status: r.status,
    model: r.model,
    attempts: r.attempts,
    created_at: r.created_at,
    updated_at: r.updated_at,
    started_at: r.started_at,
    finished_at: r.finished_at,
    expires_at: ttlSeconds ? new Date(Date.parse(r.updated_at) + ttlSeconds * 1000).toISOString() : undefined,
    result: r.result,
    error: r.error,
    last_error: r.status === "queued" ? r.last_error : undefined,
  };
}

/** Builds the API-role HTTP app (not listening). Tests and the benchmark start it in-process. */
export function buildApp(opts: AppOptions): FastifyInstance {
  const { keys, backend, metrics, readiness, jobs } = opts;
  const maxBodyBytes = opts.maxBodyBytes ?? 256 * 1024;
  const limiter = new RateLimiter(opts.rateLimit ?? { rps: 10, burst: 20 });
  const base = opts.publicBaseUrl ?? "";

  const app = Fastify({
    logger: { level: opts.logLevel ?? "info" },
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: maxBodyBytes,
    return503OnClosing: true,
  });
  app.decorateRequest("apiKey", null);
  app.decorateRequest("startNs", 0n);
  app.decorateRequest("relayed", false);

  app.setErrorHandler((e: FastifyError, req, reply) => {
    const status = e.statusCode ?? 500;
    if (status === 413) {
      return reply
        .code(413)
        .send(
          err(
            "invalid_request_error",
            "payload_too_large",
            `Request body exceeds the limit of ${maxBodyBytes} bytes`,
          ),
        );
    }
    if (status === 415) {
      return reply
        .code(415)
        .send(err("invalid_request_error", "unsupported_media_type", "Send the body as application/json"));
    }
    if (status >= 400 && status < 500) {
      return reply
        .code(status)
        .send(err("invalid_request_error", "bad_request", `Invalid request: ${e.message}`));
    }
    req.log.error({ err: e }, "request failed");
    return reply.code(500).send(err("api_error", "internal_error", "Internal error"));
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send(err("not_found_error", "route_not_found", `No route for ${req.method} ${req.url}`)),
  );

  app.addHook("onResponse", (req, reply, done) => {
    // A hijacked relay response still emits 'finish', so Fastify runs this hook for it too; the relay
    // observes the duration itself (it also sees 499s and upstream errors), so skip it here to avoid
    // counting every relayed request twice.
    if (req.relayed) {
      done();
      return;
    }
    const route = req.routeOptions.url ?? "unmatched";
    metrics.httpDuration.observe(
      { method: req.method, route, status_code: reply.statusCode },
      reply.elapsedTime / 1000,
    );
    done();
  });

  const authenticate =
    (scope: Scope): onRequestHookHandler =>
    (req, reply, done) => {
      req.startNs = process.hrtime.bigint();
      const raw = presentedKey(req.headers);
      if (raw === undefined) {
        metrics.authFailures.inc({ reason: "missing" });
        void reply
          .code(401)
          .header("www-authenticate", 'Bearer realm="gateway"')
          .send(
            err(
              "authentication_error",
              "missing_api_key",
              "Missing API key: send it as 'Authorization: Bearer <key>' or in the 'x-api-key' header",
            ),
          );
        return;
      }
      const key = keys.lookup(raw);
      if (!key) {
        metrics.authFailures.inc({ reason: "invalid" });
        void reply
          .code(401)
          .header("www-authenticate", 'Bearer realm="gateway", error="invalid_token"')
          .send(err("authentication_error", "invalid_api_key", "Invalid API key"));
        return;
      }
      if (key.disabled) {
        metrics.authFailures.inc({ reason: "disabled" });
        void reply
          .code(403)
          .send(err("permission_error", "key_disabled", `API key '${key.name}' is disabled`));
        return;
      }
      if (!key.scopes.has(scope)) {
        metrics.authFailures.inc({ reason: "scope" });
        void reply
          .code(403)
          .send(
            err(
              "permission_error",
              "insufficient_scope",
              `API key '${key.name}' does not have the '${scope}' scope`,
            ),
          );
        return;
      }
      const wait = limiter.take(key);
      if (wait > 0) {
        metrics.rateLimited.inc();
        const rl = key.rateLimit ?? opts.rateLimit ?? { rps: 10, burst: 20 };
        void reply
          .code(429)
          .header("retry-after", String(wait))
          .send(
            err(
              "rate_limit_error",
              "rate_limited",
              `Rate limit exceeded for API key '${key.name}' (${rl.rps} requests/s, burst ${rl.burst}); retry after ${wait} s`,
            ),
          );
        return;
      }
      req.apiKey = key;
      done();
    };

  const modelAllowed = (req: FastifyRequest, reply: FastifyReply, model: string): boolean => {
    const key = req.apiKey!;
    if (key.models && !key.models.has(model)) {
      metrics.authFailures.inc({ reason: "model" });
      void reply
        .code(403)
        .send(
          err("permission_error", "model_not_allowed", `API key '${key.name}' may not use model '${model}'`),
        );
      return false;
    }
    return true;
  };

  const unavailable = (reply: FastifyReply, message: string) =>
    reply
      .code(503)
      .header("retry-after", "1")
      .send(err("service_unavailable", "queue_unavailable", message));

  // ------------------------------------------------------------------ health
  app.get("/healthz", (_req, reply) => reply.send({ status: "ok" }));
  app.get("/readyz", async (_req, reply) => {
    const reason = await readiness.check();
    return reason === null
      ? reply.send({ status: "ready" })
      : reply.code(503).send({ status: "not ready", reason });
  });

  // ------------------------------------------------------------------ jobs
  app.post(JOBS_ROUTE_PREFIX, { onRequest: authenticate("jobs") }, async (req, reply) => {
    const parsed = jobRequestSchema.safeParse(req.body);
    if (!parsed.success) {
      return reply
        .code(400)
        .send(
          err(
            "invalid_request_error",
            "validation_failed",
            "The job request is invalid",
            fieldErrors(parsed.error),
          ),
        );
    }
    if (!modelAllowed(req, reply, parsed.data.model)) return reply;
    const idemHeader = req.headers["idempotency-key"];
    if (idemHeader !== undefined && (typeof idemHeader !== "string" || !IDEMPOTENCY_KEY.test(idemHeader))) {
      return reply.code(400).send(
        err("invalid_request_error", "validation_failed", "Invalid Idempotency-Key header", [
          {
            field: "header.idempotency-key",
            message: "must be 1-255 printable ASCII characters without spaces",
          },
        ]),
      );
    }
    if (!jobs) return unavailable(reply, "The job queue is not configured on this gateway");
    let result;
    try {
      result = await jobs.submit(req.apiKey!.name, parsed.data, idemHeader);
    } catch (e) {
      if (e instanceof IdempotencyConflictError) {
        return reply.code(422).send(err("invalid_request_error", "idempotency_key_reused", e.message));
      }
      req.log.warn({ err: e }, "job submission failed");
      return unavailable(
        reply,
        "The job queue is unavailable: the job was NOT accepted. Retry later with the same Idempotency-Key, so a retry can never run the job twice.",
      );
    }
    if (!result.replayed) metrics.jobsSubmitted.inc({ model: metrics.models.value(parsed.data.model) });
    const statusUrl = `${base}${JOBS_ROUTE_PREFIX}/${result.id}`;
    if (result.replayed) void reply.header("idempotent-replayed", "true");
    return reply
      .code(202)
      .header("location", statusUrl)
      .send({ id: result.id, status: "queued", status_url: statusUrl });
  });

  app.get<{ Params: { id: string } }>(
    `${JOBS_ROUTE_PREFIX}/:id`,
    { onRequest: authenticate("jobs") },
    async (req, reply) => {
      if (!jobs) return unavailable(reply, "The job queue is not configured on this gateway");
      const { id } = req.params;
      let entry;
      try {
        entry = isJobId(id) ? await jobs.get(id) : null;
      } catch (e) {
        req.log.warn({ err: e }, "job lookup failed");
        return unavailable(reply, "The job store is unavailable; retry later");
      }
      // Jobs of other keys look exactly like unknown (or expired) jobs.
      if (!entry || entry.record.owner !== req.apiKey!.name) {
        return reply
          .code(404)
          .send(err("not_found_error", "job_not_found", `Job '${id}' not found (or expired)`));
      }
      return reply.send(jobView(entry.record, jobs.cfg.ttlSeconds));
    },
  );

  app.delete<{ Params: { id: string } }>(
    `${JOBS_ROUTE_PREFIX}/:id`,
    { onRequest: authenticate("jobs") },
    async (req, reply) => {
      if (!jobs) return unavailable(reply, "The job queue is not configured on this gateway");
      const { id } = req.params;
      let r;
      try {
        r = isJobId(id)
          ? await jobs.cancel(id, req.apiKey!.name)
          : ({ ok: false, reason: "not_found" } as const);
      } catch (e) {
        req.log.warn({ err: e }, "job cancel failed");
        return unavailable(reply, "The job store is unavailable; retry later");
      }
      if (r.ok) {
        metrics.jobOutcomes.inc({ outcome: "cancelled" });
        return reply.send(jobView(r.record, jobs.cfg.ttlSeconds));
      }
      if (r.reason === "not_found") {
        return reply
          .code(404)
          .send(err("not_found_error", "job_not_found", `Job '${id}' not found (or expired)`));
      }
      return reply
        .code(409)
        .send(
          err(
            "conflict_error",
            "job_not_cancellable",
            `Job '${id}' is ${r.record.status}; only queued jobs can be cancelled`,
          ),
        );
    },
  );

  // ------------------------------------------------------------------ chat relay
  void app.register((scope, _o, done) => {
    // Keep the raw bytes: the relay forwards them as they came (no re-serialisation).
    scope.addContentTypeParser("application/json", { parseAs: "buffer" }, (_req, body, next) =>
      next(null, body),
    );
    scope.post("/v1/chat/completions", { onRequest: authenticate("chat") }, (req, reply) => {
      const raw = req.body as Buffer;
      let body: { model?: unknown; messages?: unknown; stream?: unknown };
      try {
        body = JSON.parse(raw.toString("utf8")) as typeof body;
      } catch {
        void reply.code(400).send(err("invalid_request_error", "invalid_json", "The body is not valid JSON"));
        return;
      }
      const fields: { field: string; message: string }[] = [];
      if (body === null || typeof body !== "object" || Array.isArray(body)) {
        fields.push({ field: "(body)", message: "must be a JSON object" });
      } else {
        if (typeof body.model !== "string" || body.model.length === 0) {
          fields.push({ field: "model", message: "must be a non-empty string" });
        }
        if (!Array.isArray(body.messages) || body.messages.length === 0) {
          fields.push({ field: "messages", message: "must be a non-empty array" });
        }
        if (body.stream !== undefined && typeof body.stream !== "boolean") {
          fields.push({ field: "stream", message: "must be a boolean" });
        }
      }
      if (fields.length > 0) {
        void reply
          .code(400)
          .send(
            err(
              "invalid_request_error",
              "validation_failed",
              "The chat completion request is invalid",
              fields,
            ),
          );
        return;
      }
      const model = body.model as string;
      if (!modelAllowed(req, reply, model)) return;
      req.relayed = true;
      reply.hijack();
      relayChat(backend, metrics, reply.raw, raw, model, body.stream === true, req.startNs);
    });
    done();
  });

  return app;
}

/** The metrics port: /metrics, /healthz, /readyz. Both roles serve it. */
export function buildOpsApp(opts: {
  metrics: Metrics;
  readiness: Readiness;
  logLevel?: string;
}): FastifyInstance {
  const app = Fastify({
    logger: { level: opts.logLevel ?? "info" },
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.get("/metrics", async (_req, reply) => {
    const body = await opts.metrics.registry.metrics();
    return reply.header("content-type", opts.metrics.registry.contentType).send(body);
  });
  app.get("/healthz", (_req, reply) => reply.send({ status: "ok" }));
  app.get("/readyz", async (_req, reply) => {
    const reason = await opts.readiness.check();
    return reason === null
      ? reply.send({ status: "ready" })
      : reply.code(503).send({ status: "not ready", reason });
  });
  return app;
}
