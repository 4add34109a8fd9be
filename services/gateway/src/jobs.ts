import { createHash, randomUUID } from "node:crypto";
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  nanos,
  type JetStreamClient,
  type JetStreamManager,
  type KV,
  type NatsConnection,
  type StreamConfig,
} from "nats";
import { z } from "zod";
import type { GatewayConfig } from "./config";

// ---------------------------------------------------------------------------------------------
// Request schema
// ---------------------------------------------------------------------------------------------

const messageSchema = z.strictObject({
  role: z.enum(["system", "user", "assistant", "tool"]),
  content: z.string(),
  name: z.string().min(1).max(64).optional(),
});

const optionsSchema = z.strictObject({
  max_tokens: z.number().int().min(1).max(1_000_000).optional(),
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().gt(0).max(1).optional(),
  stop: z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(8)]).optional(),
  seed: z.number().int().optional(),
  presence_penalty: z.number().min(-2).max(2).optional(),
  frequency_penalty: z.number().min(-2).max(2).optional(),
  n: z.literal(1).optional(),
});

export const jobRequestSchema = z.strictObject({
  model: z
    .string()
    .min(1)
    .max(256)
    .regex(/^[A-Za-z0-9._:/@-]+$/, "must contain only A-Z a-z 0-9 . _ : / @ -"),
  /** A prompt (sent as one user message) or a list of chat messages. */
  input: z.union([z.string().min(1), z.array(messageSchema).min(1).max(1000)]),
  options: optionsSchema.default({}),
});

export type JobRequest = z.output<typeof jobRequestSchema>;
export type JobStatus = "queued" | "running" | "succeeded" | "failed" | "cancelled";
export const TERMINAL: ReadonlySet<JobStatus> = new Set(["succeeded", "failed", "cancelled"]);

export interface JobResult {
  content: string | null;
  finish_reason: string | null;
  usage?: { prompt_tokens?: number; completion_tokens?: number; total_tokens?: number };
  model?: string;
}

export interface JobRecord {
  id: string;
  owner: string;
  model: string;
  input: JobRequest["input"];
  options: JobRequest["options"];
  status: JobStatus;
  /** Number of times a worker claimed the job (a crashed worker's claim counts). */
  attempts: number;
  created_at: string;
  updated_at: string;
  started_at?: string;
  finished_at?: string;
  worker?: string;
  result?: JobResult;
  /** Last retryable failure while the job waits for its next attempt. */
  last_error?: string;
  /** Set when the job failed for good (dead-lettered). */
  error?: { reason: string; attempts: number };
}

export interface JobEntry {
  record: JobRecord;
  revision: number;
}

/** Field-level validation errors: `[{ field: "options.temperature", message }]`. */
export function fieldErrors(err: z.ZodError): { field: string; message: string }[] {
  return err.issues.map((i) => ({ field: i.path.length ? i.path.join(".") : "(body)", message: i.message }));
}

export class IdempotencyConflictError extends Error {
  constructor() {
    super("Idempotency-Key was already used with a different request body");
  }
}

export function isRevisionConflict(err: unknown): boolean {
  const e = err as { message?: string; api_error?: { err_code?: number } } | undefined;
  return e?.api_error?.err_code === 10071 || /wrong last sequence/i.test(e?.message ?? "");
}

const enc = new TextEncoder();
const dec = new TextDecoder();
export const encodeJson = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v));
export const decodeJson = <T>(b: Uint8Array): T => JSON.parse(dec.decode(b)) as T;

export type SubmitResult = { id: string; replayed: boolean };
export type CancelResult =
  | { ok: true; record: JobRecord }
  | { ok: false; reason: "not_found" }
  | { ok: false; reason: "not_cancellable"; record: JobRecord };

/**
 * JetStream resources of the gateway:
 *  - work-queue stream `jobs.stream` on `jobs.subject` (one message per job, payload `{"id"}`, Nats-Msg-Id = job id),
 *    durable pull consumer `jobs.consumer` (explicit ack, unlimited deliveries: attempts are counted in KV);
 *  - dead-letter stream `jobs.dlqStream` on `jobs.dlqSubject` (limits retention, kept 14 days);
 *  - KV bucket `jobs.kvBucket` (job records, key = job id) and `jobs.idempotencyBucket`
 *    (key = sha256(owner, Idempotency-Key)), both with TTL `jobs.ttlSeconds` since the last write.
 */
export class JobStore {
  private constructor(
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    readonly kv: KV,
    readonly idem: KV,
    readonly cfg: GatewayConfig["jobs"],
    private readonly timeoutMs: number,
  ) {}

  /** Creates or updates the streams, consumer and buckets (idempotent; every replica does it at start). */
  static async open(
    nc: NatsConnection,
    cfg: GatewayConfig["jobs"],
    ackWaitSeconds: number,
    timeoutMs: number,
  ) {
    const jsm = await nc.jetstreamManager({ timeout: timeoutMs });
    const js = nc.jetstream({ timeout: timeoutMs });
    const ttlNanos = nanos(cfg.ttlSeconds * 1000);
    const dupWindow = Math.min(ttlNanos, nanos(120_000));

    await ensureStream(jsm, {
      name: cfg.stream,
      subjects: [cfg.subject],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      num_replicas: cfg.replicas,
      discard: DiscardPolicy.Old,
      // A queued job whose record has expired is useless: drop the message at the same age.
      max_age: ttlNanos,
      duplicate_window: dupWindow,
    });
    await ensureStream(jsm, {
      name: cfg.dlqStream,
      subjects: [cfg.dlqSubject],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: cfg.replicas,
      max_age: nanos(14 * 86_400_000),
      duplicate_window: nanos(120_000),
    });
    const consumerCfg = {
      durable_name: cfg.consumer,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: cfg.subject,
      ack_wait: nanos(ackWaitSeconds * 1000),
      max_deliver: -1,
      max_ack_pending: 10_000,
    };
    try {
      const info = await jsm.consumers.info(cfg.stream, cfg.consumer);
      if (info.config.ack_wait !== consumerCfg.ack_wait) {
        await jsm.consumers.update(cfg.stream, cfg.consumer, { ack_wait: consumerCfg.ack_wait });
      }
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await jsm.consumers.add(cfg.stream, consumerCfg);
    }

    const kvOpts = { history: 1, ttl: cfg.ttlSeconds * 1000, replicas: cfg.replicas, timeout: timeoutMs };
    const kv = await js.views.kv(cfg.kvBucket, kvOpts);
    const idem = await js.views.kv(cfg.idempotencyBucket, kvOpts);
    // Buckets created earlier with another TTL: align the backing stream's max_age with the configuration.
    for (const bucket of [cfg.kvBucket, cfg.idempotencyBucket]) {
      const info = await jsm.streams.info(`KV_${bucket}`);
      if (info.config.max_age !== ttlNanos) {
        await jsm.streams.update(`KV_${bucket}`, {
          ...info.config,
          max_age: ttlNanos,
          duplicate_window: dupWindow,
        });
      }
    }
    return new JobStore(nc, js, jsm, kv, idem, cfg, timeoutMs);
  }

  /**
   * Stores the job (KV) and publishes it to the work queue; resolves only once JetStream has
   * acknowledged both, so a 202 always means the job is durable. With an idempotency key, a retry
   * of the same request returns the same id (and finishes an interrupted earlier submission).
   */
  async submit(owner: string, req: JobRequest, idempotencyKey?: string): Promise<SubmitResult> {
    let id: string = randomUUID();
    let replayed = false;
    if (idempotencyKey !== undefined) {
      const bodyHash = createHash("sha256").update(JSON.stringify(req)).digest("hex");
      const k = createHash("sha256").update(`${owner}\n${idempotencyKey}`).digest("hex");
      try {
        await this.idem.create(k, encodeJson({ job_id: id, body_hash: bodyHash }));
      } catch (err) {
        if (!isRevisionConflict(err)) throw err;
        const prev = await this.idem.get(k);
        if (!prev || prev.operation !== "PUT") throw err;
        const v = decodeJson<{ job_id: string; body_hash: string }>(prev.value);
        if (v.body_hash !== bodyHash) throw new IdempotencyConflictError();
        id = v.job_id;
        replayed = true;
      }
    }
    const now = new Date().toISOString();
    const record: JobRecord = {
      id,
      owner,
      model: req.model,
      input: req.input,
      options: req.options,
      status: "queued",
      attempts: 0,
      created_at: now,
      updated_at: now,
    };
    try {
      await this.kv.create(id, encodeJson(record));
    } catch (err) {
      if (!replayed || !isRevisionConflict(err)) throw err;
      const existing = await this.get(id);
      // Already picked up or finished: nothing left to do for the replay.
      if (existing && existing.record.status !== "queued") return { id, replayed };
    }
    // Nats-Msg-Id = job id: a replayed submission inside the duplicate window is not queued twice,
    // and a duplicate outside it is harmless (workers skip jobs that are no longer queued).
    await this.js.publish(this.cfg.subject, encodeJson({ id }), { msgID: id, timeout: this.timeoutMs });
    return { id, replayed };
  }

  async get(id: string): Promise<JobEntry | null> {
    if (!isJobId(id)) return null;
    const e = await this.kv.get(id);
    if (!e || e.operation !== "PUT" || e.value.length === 0) return null;
    return { record: decodeJson<JobRecord>(e.value), revision: e.revision };
  }

  /** Compare-and-set update; throws on revision conflict (see {@link isRevisionConflict}). */
  async update(record: JobRecord, revision: number): Promise<number> {
    record.updated_at = new Date().toISOString();
    return this.kv.update(record.id, encodeJson(record), revision);
  }

  /** Cancels a queued job (compare-and-set, retried on concurrent changes). */
  async cancel(id: string, owner: string): Promise<CancelResult> {
    for (let i = 0; i < 5; i++) {
      const e = await this.get(id);
      if (!e || e.record.owner !== owner) return { ok: false, reason: "not_found" };
      if (e.record.status !== "queued") return { ok: false, reason: "not_cancellable", record: e.record };
      const next: JobRecord = { ...e.record, status: "cancelled", finished_at: new Date().toISOString() };
      try {
        await this.update(next, e.revision);
        return { ok: true, record: next };
      } catch (err) {
        if (!isRevisionConflict(err)) throw err;
      }
    }
    throw new Error(`job ${id} kept changing while being cancelled`);
  }

  async deadLetter(record: JobRecord, reason: string): Promise<void> {
    await this.js.publish(
      this.cfg.dlqSubject,
      encodeJson({
        id: record.id,
        owner: record.owner,
        model: record.model,
        attempts: record.attempts,
        reason,
        failed_at: new Date().toISOString(),
      }),
      { msgID: `dlq-${record.id}`, timeout: this.timeoutMs },
    );
  }

  /** Consumer lag for metrics (and what the KEDA nats-jetstream scaler reads). */
  async depth(): Promise<{ pending: number; inFlight: number; deadLettered: number }> {
    const [c, dlq] = await Promise.all([
      this.jsm.consumers.info(this.cfg.stream, this.cfg.consumer),
      this.jsm.streams.info(this.cfg.dlqStream),
    ]);
    return { pending: c.num_pending, inFlight: c.num_ack_pending, deadLettered: dlq.state.messages };
  }

  /** Round trip to JetStream (readiness). */
  async ping(): Promise<void> {
    await this.jsm.getAccountInfo();
  }
}

const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export function isJobId(id: string): boolean {
  return JOB_ID.test(id);
}

function isNotFound(err: unknown): boolean {
  const e = err as { message?: string; api_error?: { code?: number } } | undefined;
  return e?.api_error?.code === 404 || /not found/i.test(e?.message ?? "");
}

async function ensureStream(jsm: JetStreamManager, cfg: Partial<StreamConfig> & { name: string }) {
  try {
    const info = await jsm.streams.info(cfg.name);
    const c = info.config;
    const same =
      c.max_age === cfg.max_age &&
      c.duplicate_window === cfg.duplicate_window &&
      JSON.stringify(c.subjects) === JSON.stringify(cfg.subjects);
    if (!same) await jsm.streams.update(cfg.name, { ...c, ...cfg });
  } catch (err) {
    if (!isNotFound(err)) throw err;
    try {
      await jsm.streams.add(cfg);
    } catch (addErr) {
      // Another replica created it meanwhile.
      if (!/already in use/i.test((addErr as Error).message)) throw addErr;
    }
  }
}
