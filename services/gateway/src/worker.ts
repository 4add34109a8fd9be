import { hostname } from "node:os";
import type { ConsumerMessages, JsMsg } from "nats";
import { type Backend, BackendError } from "./backend";
import type { GatewayConfig } from "./config";
import {
  type JobRecord,
  type JobResult,
  type JobStore,
  TERMINAL,
  decodeJson,
  finishedRecord,
  isRevisionConflict,
} from "./jobs";
import type { Logger } from "./log";
import type { Metrics } from "./metrics";
import { SpanKind, SpanStatusCode, type Span, type Tracing, endWithStatus } from "./tracing";

export interface WorkerOptions {
  store: JobStore;
  backend: Backend;
  metrics: Metrics;
  log: Logger;
  config: GatewayConfig["worker"];
  /** Tracing on: a span per delivery, child of the submitting request's (from the message headers). */
  tracing?: Tracing;
  /** Identifies this worker in job records (defaults to hostname:pid). */
  id?: string;
  /**
   * Test hook, called after the result is stored and before the ack. A rejection leaves the message
   * unacked, exactly like a crash at that point would.
   */
  beforeAck?: (jobId: string) => Promise<void>;
}

export interface Worker {
  readonly inFlight: number;
  /**
   * Stops pulling, waits up to `timeoutMs` for in-flight jobs, then aborts the rest (they are put back
   * in the queue and redelivered to another worker).
   */
  stop(timeoutMs: number): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Exponential backoff with full jitter in [delay/2, delay]: base * 2^(attempt-1), capped. */
export function backoffMs(attempt: number, base: number, max: number, rnd = Math.random()): number {
  const d = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  return Math.round(d / 2 + (d / 2) * rnd);
}

class Abandon extends Error {}

/**
 * Pulls jobs from the work-queue consumer with at most `concurrency` in flight and processes each:
 *   1. read the record; skip (ack) if it is gone (expired) or already terminal (redelivered duplicate);
 *   2. claim it with a compare-and-set on the KV revision (status running, attempts + 1);
 *   3. call the backend, keeping the message alive with `working()` heartbeats;
 *   4. store the result with a compare-and-set on the claim's revision, then ack.
 * A crash anywhere before the ack means redelivery after the ack wait; step 1 or 2 then makes the
 * job complete exactly once (a stale claim can never overwrite a newer one). Retryable failures are
 * nak'ed with backoff; after `maxAttempts` claims, or on a non-retryable backend answer, the job is
 * published to the dead-letter stream with its reason and marked failed.
 */
export function startWorker(opts: WorkerOptions): Worker {
  const { store, backend, metrics, log, config, tracing } = opts;
  const workerId = opts.id ?? `${hostname()}:${process.pid}`;
  const ackWaitMs = config.ackWaitSeconds * 1000;
  const inflight = new Set<Promise<void>>();
  const aborts = new Set<AbortController>();
  let stopping = false;
  let current: ConsumerMessages | undefined;
  let slotFreed: (() => void) | undefined;

  const loop = async () => {
    while (!stopping) {
      if (inflight.size >= config.concurrency) {
        await new Promise<void>((r) => (slotFreed = r));
        continue;
      }
      try {
        const consumer = await store.js.consumers.get(store.cfg.stream, store.cfg.consumer);
        if (stopping) break;
        current = await consumer.fetch({ max_messages: config.concurrency - inflight.size, expires: 5000 });
        for await (const m of current) {
          if (stopping) {
            // Fetched during shutdown: hand it straight back.
            m.nak();
            continue;
          }
          const p = handle(m).finally(() => {
            inflight.delete(p);
            metrics.workerInFlight.set(inflight.size);
            slotFreed?.();
            slotFreed = undefined;
          });
          inflight.add(p);
          metrics.workerInFlight.set(inflight.size);
        }
      } catch (err) {
        if (stopping) break;
        log.warn("pull from the work queue failed, retrying", { error: (err as Error).message });
        await sleep(1000);
      } finally {
        current = undefined;
      }
    }
  };

  const handle = async (m: JsMsg): Promise<void> => {
    let id: string;
    try {
      id = decodeJson<{ id: string }>(m.data).id;
      if (typeof id !== "string") throw new Error("no id");
    } catch {
      log.error("malformed work-queue message dropped", { seq: m.seq });
      m.term("malformed message");
      return;
    }
    const heartbeat = setInterval(() => m.working(), Math.max(250, Math.floor(ackWaitMs / 3)));
    const ac = new AbortController();
    aborts.add(ac);
    let span: Span | undefined;
    try {
      if (tracing) {
        const parent = tracing.extractNats(m.headers);
        span = tracing.start(
          "job process",
          {
            kind: SpanKind.CONSUMER,
            attributes: {
              "messaging.system": "nats",
              "messaging.operation.type": "process",
              "messaging.destination.name": m.subject,
              "messaging.message.id": id,
              "gateway.job.id": id,
              "gateway.job.delivery": m.info.deliveryCount,
            },
          },
          parent,
        );
        const s = span;
        await tracing.with(s, () => processJob(m, id, ac.signal, s), parent);
      } else await processJob(m, id, ac.signal, undefined);
    } catch (err) {
      span?.setStatus({ code: SpanStatusCode.ERROR, message: "left for redelivery" });
      // Unexpected (NATS unavailable, test crash hook): leave unacked; the ack wait brings it back.
      if (!(err instanceof Abandon))
        log.warn("job left for redelivery", { id, error: (err as Error).message });
      metrics.jobOutcomes.inc({ outcome: "abandoned" });
    } finally {
      span?.end();
      clearInterval(heartbeat);
      aborts.delete(ac);
    }
  };

  const processJob = async (
    m: JsMsg,
    id: string,
    signal: AbortSignal,
    span: Span | undefined,
  ): Promise<void> => {
    // 1-2: read and claim, retrying when the record changed under us.
    let record: JobRecord | undefined;
    let revision = 0;
    for (let i = 0; i < 5 && record === undefined; i++) {
      const e = await store.get(id);
      if (!e) {
        metrics.jobOutcomes.inc({ outcome: "expired" });
        await store.release(id);
        m.ack();
        return;
      }
      if (TERMINAL.has(e.record.status)) {
        metrics.jobOutcomes.inc({ outcome: e.record.status === "cancelled" ? "cancelled" : "duplicate" });
        await store.release(id);
        m.ack();
        return;
      }
      if (e.record.attempts >= config.maxAttempts) {
        // Claimed maxAttempts times already (workers crashed on it): do not try again.
        await deadLetter(
          m,
          e.record,
          e.revision,
          e.record.last_error ?? "worker stopped or crashed during every attempt",
        );
        return;
      }
      const claimed: JobRecord = {
        ...e.record,
        status: "running",
        attempts: e.record.attempts + 1,
        started_at: new Date().toISOString(),
        worker: workerId,
      };
      try {
        revision = await store.update(claimed, e.revision);
        record = claimed;
      } catch (err) {
        if (!isRevisionConflict(err)) throw err;
      }
    }
    if (!record) throw new Error(`could not claim job ${id}: it keeps changing`);

    // 3: the backend call.
    const started = performance.now();
    const modelLabel = metrics.model(record.model);
    span?.setAttribute("gen_ai.request.model", modelLabel);
    span?.setAttribute("gateway.job.attempt", record.attempts);
    let outcome: { ok: true; result: JobResult } | { ok: false; reason: string; retryable: boolean };
    try {
      outcome = await callBackend(backend, record, signal, tracing && span ? { tracing, span } : undefined);
    } catch (err) {
      if (signal.aborted && stopping) {
        // Shutdown deadline: give the job back untouched so another worker takes it now.
        const back: JobRecord = { ...record, status: "queued", attempts: record.attempts - 1 };
        await store.update(back, revision).catch(() => undefined);
        m.nak();
        throw new Abandon();
      }
      outcome = {
        ok: false,
        reason: (err as Error).message,
        retryable: !(err instanceof BackendError) || err.retryable,
      };
    }
    const seconds = (performance.now() - started) / 1000;
    metrics.backendDuration.observe(
      { model: modelLabel, source: "job", outcome: outcome.ok ? "ok" : "error" },
      seconds,
    );

    if (outcome.ok) {
      const tokens = outcome.result.usage?.completion_tokens;
      if (tokens && seconds > 0)
        metrics.tokensPerSecond.observe({ model: modelLabel, source: "job" }, tokens / seconds);
      const done: JobRecord = finishedRecord({
        ...record,
        status: "succeeded",
        result: outcome.result,
        finished_at: new Date().toISOString(),
        last_error: undefined,
      });
      if (!(await casOrYield(done, revision, m))) return;
      await store.release(id);
      if (opts.beforeAck) await opts.beforeAck(id);
      m.ack();
      metrics.jobOutcomes.inc({ outcome: "succeeded" });
      return;
    }

    if (outcome.retryable && record.attempts < config.maxAttempts) {
      const delay = backoffMs(record.attempts, config.backoffBaseMs, config.backoffMaxMs);
      const back: JobRecord = { ...record, status: "queued", last_error: outcome.reason };
      if (!(await casOrYield(back, revision, m))) return;
      m.nak(delay);
      metrics.jobOutcomes.inc({ outcome: "retried" });
      log.info("job attempt failed, retrying", {
        id,
        attempt: record.attempts,
        delay_ms: delay,
        reason: outcome.reason,
      });
      return;
    }
    const reason = outcome.retryable
      ? `gave up after ${record.attempts} attempts: ${outcome.reason}`
      : `not retryable: ${outcome.reason}`;
    await deadLetter(m, record, revision, reason);
  };

  /** Compare-and-set; on conflict another delivery owns the job now: leave this message alone. */
  const casOrYield = async (next: JobRecord, revision: number, _m: JsMsg): Promise<boolean> => {
    try {
      await store.update(next, revision);
      return true;
    } catch (err) {
      if (!isRevisionConflict(err)) throw err;
      log.warn("job was claimed by another delivery meanwhile; dropping this attempt's outcome", {
        id: next.id,
      });
      metrics.jobOutcomes.inc({ outcome: "duplicate" });
      return false;
    }
  };

  const deadLetter = async (m: JsMsg, record: JobRecord, revision: number, reason: string) => {
    // DLQ first (deduplicated by message id): a crash after it and before the KV write redelivers,
    // and the retry ends up here again without a second DLQ entry.
    await store.deadLetter(record, reason);
    const failed: JobRecord = finishedRecord({
      ...record,
      status: "failed",
      error: { reason, attempts: record.attempts },
      finished_at: new Date().toISOString(),
      last_error: undefined,
    });
    if (!(await casOrYield(failed, revision, m))) return;
    await store.release(record.id);
    m.ack();
    metrics.jobOutcomes.inc({ outcome: "dead_lettered" });
    metrics.jobOutcomes.inc({ outcome: "failed" });
    // Tracing on: the job's span (the active one) records that the job failed for good.
    tracing?.activeSpan()?.setStatus({ code: SpanStatusCode.ERROR, message: "dead-lettered" });
    log.warn("job dead-lettered", { id: record.id, reason });
  };

  const running = loop();

  return {
    get inFlight() {
      return inflight.size;
    },
    async stop(timeoutMs: number) {
      stopping = true;
      current?.stop();
      slotFreed?.();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)));
      await Promise.race([Promise.allSettled([...inflight]), deadline]);
      for (const ac of aborts) ac.abort();
      await Promise.allSettled([...inflight]);
      clearTimeout(timer);
      await running;
    },
  };
}

const SAFE_TOKEN = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * What a failed backend call may say in logs, job records and dead letters: the HTTP status and the
 * error's `type`/`code` when they are plain identifiers. Never the body's message: backends echo
 * the prompt in it ("... your prompt 'xyz' is too long"), and those places outlive the job.
 */
export function backendFailureReason(status: number, body: unknown): string {
  const err = (body as { error?: unknown } | undefined)?.error;
  const src = (typeof err === "object" && err !== null ? err : body) as
    { type?: unknown; code?: unknown } | undefined;
  const parts: string[] = [];
  for (const v of [src?.type, src?.code]) {
    const t = typeof v === "number" ? String(v) : v;
    if (typeof t === "string" && SAFE_TOKEN.test(t) && !parts.includes(t)) parts.push(t);
  }
  return `backend returned HTTP ${status}${parts.length ? ` (${parts.join(", ")})` : ""}`;
}

/** Calls the backend for one job. Network errors, timeouts, 408, 429 and 5xx are retryable. */
async function callBackend(
  backend: Backend,
  r: JobRecord,
  signal: AbortSignal,
  traced?: { tracing: Tracing; span: Span },
): Promise<{ ok: true; result: JobResult } | { ok: false; reason: string; retryable: boolean }> {
  const input = r.input ?? "";
  const messages = typeof input === "string" ? [{ role: "user", content: input }] : input;
  const payload = { ...r.options, model: r.model, messages, stream: false };
  let res: { status: number; body: unknown };
  if (!traced) res = await backend.chatJson(payload, signal);
  else {
    const { tracing } = traced;
    const client = tracing.backendCall(backend, `${backend.basePath}/chat/completions`, traced.span);
    try {
      res = await backend.chatJson(payload, signal, tracing.headersFor(client));
    } catch (err) {
      // The error's class only: a message may quote the backend.
      client.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).name });
      client.end();
      throw err;
    }
    endWithStatus(client, res.status, true);
  }
  if (res.status < 200 || res.status >= 300) {
    const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
    return { ok: false, retryable, reason: backendFailureReason(res.status, res.body) };
  }
  const b = res.body as
    | {
        model?: string;
        choices?: { message?: { content?: string | null }; finish_reason?: string | null }[];
        usage?: JobResult["usage"];
      }
    | undefined;
  const choice = b?.choices?.[0];
  if (!b || !choice) {
    return { ok: false, retryable: true, reason: "backend answered 2xx without choices[0]" };
  }
  return {
    ok: true,
    result: {
      content: choice.message?.content ?? null,
      finish_reason: choice.finish_reason ?? null,
      usage: b.usage,
      model: b.model,
    },
  };
}
