import Fastify, {
  LogController,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type onRequestHookHandler,
} from "fastify";
import type { Socket } from "node:net";
import { STATUS_CODES } from "node:http";
import { type ApiKey, type KeyStore, RateLimiter, type Scope, keyUnusable, presentedKey } from "./auth";
import type { Backend } from "./backend";
import {
  DEFAULT_HTTP_LIMITS,
  DEFAULT_KEY_LIMITS,
  DEFAULT_MAX_JSON_DEPTH,
  type HttpLimits,
  type KeyLimitDefaults,
} from "./config";
import { type ApiErrorBody, apiError, clientErrorResponse, rawHttpError, validationError } from "./errors";
import type { Readiness } from "./health";
import {
  IdempotencyConflictError,
  type JobRecord,
  type JobStore,
  QuotaExceededError,
  StoreFullError,
  fieldErrors,
  isJobId,
  jobRequestSchema,
} from "./jobs";
import { type TopValue, scanJson } from "./json-scan";
import {
  type Refusal,
  StreamRegistry,
  connectionRefusal,
  effectiveLimits,
  serverTimeouts,
  streamRefusal,
} from "./limits";
import { type Metrics, methodLabel } from "./metrics";
import { modelList, modelObject, visibleModels } from "./models";
import { LazyChildLogger } from "./log";
import { relay } from "./relay";
import { RELAY_ENDPOINTS, type RelayEndpoint, checkRelayRequest } from "./relay-request";
import { SpanKind, type Span, SpanStatusCode, type Tracing, endWithStatus } from "./tracing";

declare module "fastify" {
  interface FastifyRequest {
    apiKey: ApiKey | null;
    startNs: bigint;
    /** Set when a relay took the response over; it records its own duration metric. */
    relayed: boolean;
    /** The request's server span (tracing on), until it is ended. */
    span: Span | null;
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
  /** HTTP server limits (timeouts, connection and stream caps); defaults: {@link DEFAULT_HTTP_LIMITS}. */
  http?: Partial<HttpLimits>;
  /** Defaults of the per-key limits; defaults: {@link DEFAULT_KEY_LIMITS}. */
  keyDefaults?: Partial<KeyLimitDefaults>;
  maxJsonDepth?: number;
  /** How often open streams are checked against key expiry (revocations are checked on each reload). */
  keySweepMs?: number;
  /** The models this deployment serves (MODELS): what `GET /v1/models` lists. */
  models?: readonly string[];
  /** Tracing (OTLP endpoint configured); absent: no spans, no trace headers, nothing per request. */
  tracing?: Tracing;
}

/** A JSON request body after the one strict scan (see json-scan). */
interface ScannedBody {
  raw: Buffer;
  root: TopValue["type"];
  fields: Map<string, TopValue>;
}

const err = apiError;

function isScanned(b: unknown): b is ScannedBody {
  return typeof b === "object" && b !== null && Buffer.isBuffer((b as ScannedBody).raw);
}

/** Fastify errors that carry a status, mapped to our codes (the rest is `bad_request`). */
function fastifyClientError(e: FastifyError, maxBodyBytes: number): { status: number; body: ApiErrorBody } {
  const status = e.statusCode ?? 500;
  if (status === 413) {
    return {
      status,
      body: err(
        "invalid_request_error",
        "payload_too_large",
        `Request body exceeds the limit of ${maxBodyBytes} bytes`,
      ),
    };
  }
  if (status === 415) {
    return {
      status,
      body: err("invalid_request_error", "unsupported_media_type", "Send the body as application/json"),
    };
  }
  const code = (e as { scanCode?: string }).scanCode;
  if (code === "invalid_json" || code === "duplicate_key" || code === "too_deep") {
    return {
      status: 400,
      body: err("invalid_request_error", code, e.message, (e as { param?: string | null }).param ?? null),
    };
  }
  if (e.code === "FST_ERR_CTP_EMPTY_JSON_BODY") {
    return { status: 400, body: err("invalid_request_error", "invalid_json", "The body is empty") };
  }
  return { status, body: err("invalid_request_error", "bad_request", `Invalid request: ${e.message}`) };
}

const OVER_LIMIT = Symbol("overConnectionLimit");

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
  const { keys, backend, metrics, readiness, jobs, tracing } = opts;
  const maxBodyBytes = opts.maxBodyBytes ?? 256 * 1024;
  const limiter = new RateLimiter(opts.rateLimit ?? { rps: 10, burst: 20 });
  const base = opts.publicBaseUrl ?? "";
  const http: HttpLimits = { ...DEFAULT_HTTP_LIMITS, ...opts.http };
  const keyDefaults: KeyLimitDefaults = { ...DEFAULT_KEY_LIMITS, ...opts.keyDefaults };
  const maxJsonDepth = opts.maxJsonDepth ?? DEFAULT_MAX_JSON_DEPTH;
  const t = serverTimeouts(http);

  const app = Fastify({
    // Tracing on: every line logged inside a request carries its trace and span ids.
    logger: { level: opts.logLevel ?? "info", ...(tracing ? { mixin: tracing.logFields } : {}) },
    logController: new LogController({ disableRequestLogging: true }),
    // No pino child per request: one is made only when the request logs (see LazyChildLogger).
    childLoggerFactory: (logger, bindings, options) =>
      new LazyChildLogger(logger, bindings, options) as unknown as typeof logger,
    bodyLimit: maxBodyBytes,
    // Answered by our own hook below, in our error shape.
    return503OnClosing: false,
    requestTimeout: t.requestTimeout,
    connectionTimeout: t.connectionTimeout,
    keepAliveTimeout: t.keepAliveTimeout,
    maxRequestsPerSocket: t.maxRequestsPerSocket,
    http: {
      headersTimeout: t.headersTimeout,
      requestTimeout: t.requestTimeout,
      connectionsCheckingInterval: t.connectionsCheckingInterval,
      maxHeaderSize: t.maxHeaderSize,
    },
    // Requests Node's parser refused (too slow, headers too large, malformed): answered in our error
    // shape. Nothing of the request goes to the log.
    clientErrorHandler(e: NodeJS.ErrnoException, socket: Socket) {
      if (e.code === "ECONNRESET" || socket.destroyed) return;
      const { status, body } = clientErrorResponse(e.code);
      if (socket.writable) socket.write(rawHttpError(status, STATUS_CODES[status] ?? "Error", body));
      socket.destroy();
    },
  });
  app.decorateRequest("apiKey", null);
  app.decorateRequest("startNs", 0n);
  app.decorateRequest("relayed", false);
  app.decorateRequest("span", null);

  if (tracing) {
    // First hook: every request has its span, refusals included. The rest of the request (hooks,
    // handler and their async continuations) runs with it active.
    app.addHook("onRequest", (req, _reply, done) => {
      const method = methodLabel(req.method);
      // The route pattern, never the URL (ids, tenant text); unmatched requests have none.
      const route = req.routeOptions.url ?? "unmatched";
      const parent = tracing.extractHttp(req.headers);
      const span = tracing.start(
        `${method} ${route}`,
        { kind: SpanKind.SERVER, attributes: { "http.request.method": method, "http.route": route } },
        parent,
      );
      req.span = span;
      tracing.with(span, done, parent);
    });
    const endSpan = (req: FastifyRequest, status: number) => {
      // A relayed request's span is ended by the relay, which knows its real outcome (499s too).
      if (!req.span || req.relayed) return;
      endWithStatus(req.span, status, false);
      req.span = null;
    };
    app.addHook("onResponse", (req, reply, done) => {
      endSpan(req, reply.statusCode);
      done();
    });
    app.addHook("onRequestAbort", (req, done) => {
      endSpan(req, 499);
      done();
    });
  }

  // ------------------------------------------------------------------ connection cap
  // Counted at accept; a connection beyond the cap is answered 503 on its first request and closed,
  // so the client sees why (Node's own maxConnections would reset it without a word).
  let closing = false;
  let openConnections = 0;
  // Every open socket, for the close: those that never carried a request are closed at once (below).
  const sockets = new Set<Socket>();
  app.server.on("connection", (socket: Socket & { [OVER_LIMIT]?: boolean }) => {
    openConnections++;
    if (openConnections > http.maxConnections) socket[OVER_LIMIT] = true;
    sockets.add(socket);
    socket.once("close", () => {
      openConnections--;
      sockets.delete(socket);
    });
    // Accepted while closing, before the listener stopped: it would hold the close as below.
    if (closing) socket.destroy();
  });

  const refuse = (reply: FastifyReply, r: Refusal) => {
    if (r.retryAfter !== undefined) void reply.header("retry-after", String(r.retryAfter));
    return reply.code(r.status).send(r.body);
  };

  // While closing (SIGTERM), requests still arriving on kept-alive sockets are sent elsewhere. A socket
  // that has not received a byte yet (a client's pre-opened connection: Node's fetch opens some) is
  // closed now: Node counts it neither idle nor in flight, so the server's close would wait for it until
  // the shutdown timeout. Sockets with a request under way (or a part of one) drain as before; idle
  // kept-alive ones are closed by Fastify's close.
  app.addHook("preClose", (done) => {
    closing = true;
    for (const socket of sockets) if (socket.bytesRead === 0) socket.destroy();
    done();
  });

  app.addHook("onRequest", (req, reply, done) => {
    if ((req.socket as { [OVER_LIMIT]?: boolean })[OVER_LIMIT]) {
      void refuse(reply.header("connection", "close"), connectionRefusal(http.maxConnections));
      return;
    }
    if (closing) {
      void refuse(reply.header("connection", "close"), {
        status: 503,
        retryAfter: 1,
        body: err("service_unavailable", "shutting_down", "This gateway replica is shutting down; retry"),
      });
      return;
    }
    done();
  });

  app.setErrorHandler((e: FastifyError, req, reply) => {
    const status = e.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const r = fastifyClientError(e, maxBodyBytes);
      return reply.code(r.status).send(r.body);
    }
    // Only the error's class and code: a message could quote the request.
    req.log.error({ error: e.name, code: e.code }, "request failed");
    return reply.code(500).send(err("api_error", "internal_error", "Internal error"));
  });

  // One strict scan per JSON body (duplicate keys, depth, UTF-8): every route reads the same view.
  // JSON only: Fastify's text/plain parser would hand the routes a string (415 instead).
  app.removeContentTypeParser("text/plain");
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (_req, body, next) => {
    const raw = body as Buffer;
    const r = scanJson(raw, maxJsonDepth);
    if (!r.ok) {
      next(Object.assign(new Error(r.message), { statusCode: 400, scanCode: r.code, param: r.param }));
      return;
    }
    const scanned: ScannedBody = { raw, root: r.root, fields: r.fields };
    next(null, scanned);
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send(err("not_found_error", "route_not_found", `No route for ${req.method} ${req.url}`)),
  );

  app.addHook("onResponse", (req, reply, done) => {
    // A response that ends while closing (an open stream drained) leaves its kept-alive socket idle:
    // close it then, as Fastify's close did with the sockets idle when it began. Node's idle test
    // spares a socket on which another request has begun meanwhile. (Fastify runs this hook on every
    // response's 'finish', hijacked relays included.)
    if (closing) setImmediate(() => app.server.closeIdleConnections());
    // The relay observes the duration itself (it also sees 499s and upstream errors), so skip it
    // here to avoid counting every relayed request twice.
    if (req.relayed) {
      done();
      return;
    }
    const route = req.routeOptions.url ?? "unmatched";
    metrics.httpDuration.observe(
      { method: methodLabel(req.method), route, status_code: reply.statusCode },
      reply.elapsedTime / 1000,
    );
    done();
  });

  /** `scope` null: any valid key (e.g. the model list, which both scopes need). */
  const authenticate =
    (scope: Scope | null): onRequestHookHandler =>
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
      const unusable = keyUnusable(key, Date.now());
      if (unusable === "disabled") {
        metrics.authFailures.inc({ reason: "disabled" });
        void reply
          .code(403)
          .send(err("permission_error", "key_disabled", `API key '${key.name}' is disabled`));
        return;
      }
      if (unusable === "expired") {
        metrics.authFailures.inc({ reason: "expired" });
        void reply
          .code(401)
          .header("www-authenticate", 'Bearer realm="gateway", error="invalid_token"')
          .send(err("authentication_error", "expired_api_key", `API key '${key.name}' has expired`));
        return;
      }
      if (scope !== null && !key.scopes.has(scope)) {
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
    const body = isScanned(req.body) ? req.body : undefined;
    // The scan has checked the grammar, so this parse cannot fail; the schema wants the value tree.
    const value: unknown = body ? JSON.parse(body.raw.toString("utf8")) : undefined;
    const parsed = jobRequestSchema.safeParse(value);
    if (!parsed.success) {
      return reply.code(400).send(validationError("The job request is invalid", fieldErrors(parsed.error)));
    }
    const limits = effectiveLimits(req.apiKey!, keyDefaults);
    const maxTokens = parsed.data.options.max_tokens;
    if (maxTokens !== undefined && maxTokens > limits.maxTokens) {
      return reply.code(400).send(
        validationError("The job request is invalid", [
          {
            field: "options.max_tokens",
            message: `must be at most ${limits.maxTokens} for API key '${req.apiKey!.name}'`,
          },
        ]),
      );
    }
    if (!modelAllowed(req, reply, parsed.data.model)) return reply;
    const idemHeader = req.headers["idempotency-key"];
    if (idemHeader !== undefined && (typeof idemHeader !== "string" || !IDEMPOTENCY_KEY.test(idemHeader))) {
      return reply.code(400).send(
        validationError("Invalid Idempotency-Key header", [
          {
            field: "header.idempotency-key",
            message: "must be 1-255 printable ASCII characters without spaces",
          },
        ]),
      );
    }
    if (!jobs) return unavailable(reply, "The job queue is not configured on this gateway");
    const modelLabel = metrics.model(parsed.data.model);
    req.span?.setAttribute("gen_ai.request.model", modelLabel);
    // The job's trace context travels in the queue message's headers: the worker's span continues it.
    const submitSpan = tracing?.start("job submit", {
      kind: SpanKind.PRODUCER,
      attributes: {
        "messaging.system": "nats",
        "messaging.operation.type": "send",
        "messaging.destination.name": jobs.cfg.subject,
        "gen_ai.request.model": modelLabel,
      },
    });
    let result;
    try {
      result = await jobs.submit(
        req.apiKey!.name,
        parsed.data,
        idemHeader,
        limits.maxQueuedBytes,
        submitSpan && tracing ? (h) => tracing.injectNats(submitSpan, h) : undefined,
      );
      submitSpan?.setAttribute("gateway.job.id", result.id);
      submitSpan?.setAttribute("gateway.job.replayed", result.replayed);
      submitSpan?.end();
    } catch (e) {
      submitSpan?.setStatus({ code: SpanStatusCode.ERROR, message: (e as Error).name });
      submitSpan?.end();
      if (e instanceof IdempotencyConflictError) {
        return reply.code(422).send(err("invalid_request_error", "idempotency_key_reused", e.message));
      }
      if (e instanceof QuotaExceededError) {
        return reply
          .code(507)
          .header("retry-after", "10")
          .send(err("insufficient_storage", "queued_bytes_quota_exceeded", e.message));
      }
      if (e instanceof StoreFullError) {
        req.log.warn({ reason: e.message }, "job refused: store full");
        return reply
          .code(507)
          .header("retry-after", "30")
          .send(
            err(
              "insufficient_storage",
              "job_store_full",
              `The job store is full (${e.message}): the job was NOT accepted. Retry later.`,
            ),
          );
      }
      req.log.warn({ error: (e as Error).message }, "job submission failed");
      return unavailable(
        reply,
        "The job queue is unavailable: the job was NOT accepted. Retry later with the same Idempotency-Key, so a retry can never run the job twice.",
      );
    }
    if (!result.replayed) metrics.jobsSubmitted.inc({ model: modelLabel });
    // The job's id only (no request text); with tracing on the line carries the trace's ids too.
    if (req.log.level === "debug" || req.log.level === "trace") {
      req.log.debug({ job_id: result.id, replayed: result.replayed }, "job queued");
    }
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
        req.log.warn({ error: (e as Error).message }, "job lookup failed");
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
        req.log.warn({ error: (e as Error).message }, "job cancel failed");
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

  // ------------------------------------------------------------------ models
  const served = opts.models ?? [];
  const listedSince = Math.floor(Date.now() / 1000);
  app.get("/v1/models", { onRequest: authenticate(null) }, (req, reply) =>
    reply.send(modelList(visibleModels(served, req.apiKey!.models), listedSince)),
  );
  app.get<{ Params: { model: string } }>(
    "/v1/models/:model",
    { onRequest: authenticate(null) },
    (req, reply) => {
      const { model } = req.params;
      // A model the key may not use looks exactly like one that is not served.
      if (!visibleModels(served, req.apiKey!.models).includes(model)) {
        return reply
          .code(404)
          .send(
            err("invalid_request_error", "model_not_found", `The model '${model}' does not exist`, "model"),
          );
      }
      return reply.send(modelObject(model, listedSince));
    },
  );

  // ------------------------------------------------------------------ relays
  // Chat, completions, embeddings and responses: one path through checks, admission and the relay.
  const streams = new StreamRegistry();
  const relayRoute = (ep: RelayEndpoint) =>
    app.post(ep.route, { onRequest: authenticate("chat") }, (req, reply) => {
      const body = isScanned(req.body) ? req.body : undefined;
      const key = req.apiKey!;
      const limits = effectiveLimits(key, keyDefaults);
      // No body, or not sent as JSON: checked as an empty one (every required field missing).
      const checked = checkRelayRequest(
        ep,
        body?.root ?? "null",
        body?.fields ?? new Map<string, TopValue>(),
        limits,
        key.name,
      );
      if (!checked.ok) {
        void reply.code(400).send(validationError(`The ${ep.what} is invalid`, checked.problems));
        return;
      }
      const { model, stream } = checked.view;
      // Only the metric label: a configured model or "other", never the tenant's free text.
      req.span?.setAttribute("gen_ai.request.model", metrics.model(model));
      if (!modelAllowed(req, reply, model)) return;
      const refusal = streamRefusal(
        { key: streams.activeFor(key.name), total: streams.total },
        { key: limits.maxConcurrentStreams, total: http.maxConcurrentStreams },
        key.name,
      );
      if (refusal) {
        void refuse(reply, refusal);
        return;
      }
      req.relayed = true;
      reply.hijack();
      const stream$ = { key, terminate: (status: number, b: ApiErrorBody) => handle.terminate(status, b) };
      const handle = relay(
        backend,
        metrics,
        reply.raw,
        ep,
        body!.raw,
        model,
        stream,
        req.startNs,
        streams.add(stream$),
        tracing,
        req.span,
      );
    });
  for (const ep of RELAY_ENDPOINTS) relayRoute(ep);

  // A revoked, disabled or expired key ends its open streams: at each reload of the keys file, and
  // every keySweepMs for expiry (which needs no reload).
  const sweep = () =>
    streams.sweep(
      (k) => keys.stillValid(k, "chat"),
      (k) =>
        err(
          "authentication_error",
          "api_key_revoked",
          `API key '${k.name}' was revoked, disabled or has expired during the request`,
        ),
    );
  const unsubscribe = keys.onChange(sweep);
  const sweepTimer = setInterval(sweep, opts.keySweepMs ?? 1000);
  sweepTimer.unref();
  app.addHook("onClose", (_app, done) => {
    clearInterval(sweepTimer);
    unsubscribe();
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
