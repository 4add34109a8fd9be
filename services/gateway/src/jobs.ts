import { createHash, randomUUID } from "node:crypto";
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  headers,
  nanos,
  type JetStreamClient,
  type JetStreamManager,
  type KV,
  type MsgHdrs,
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
  /** Dropped once the job is finished (see {@link finishedRecord}): results outlive prompts by nothing. */
  input?: JobRequest["input"];
  options?: JobRequest["options"];
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

/**
 * The record as stored once the job is terminal: without its input and options. The prompt is only
 * needed to run the job; keeping it for the result TTL multiplied the store's size and kept tenant
 * text at rest for no use.
 */
export function finishedRecord(r: JobRecord): JobRecord {
  const { input: _input, options: _options, ...rest } = r;
  return rest;
}

export interface JobEntry {
  record: JobRecord;
  revision: number;
}

/** Field-level validation errors: `[{ field: "options.temperature", message }]`. */
export function fieldErrors(err: z.ZodError): { field: string; message: string }[] {
  return err.issues.map((i) => ({ field: i.path.length ? i.path.join(".") : "(body)", message: i.message }));
}

/** The store (or the queue) is at its bounds: the job was NOT accepted. */
export class StoreFullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StoreFullError";
  }
}

/** The tenant's queued jobs already hold its quota of bytes: the job was NOT accepted. */
export class QuotaExceededError extends Error {
  constructor(
    readonly owner: string,
    readonly used: number,
    readonly quota: number,
  ) {
    super(
      `API key '${owner}' has ${used} bytes of jobs queued or running; its quota is ${quota} bytes. ` +
        "The job was NOT accepted: retry once some of them have finished",
    );
    this.name = "QuotaExceededError";
  }
}

/** JetStream refused a write because a stream or bucket limit is reached (discard: new). */
export function isStoreFull(err: unknown): boolean {
  const e = err as { message?: string; api_error?: { err_code?: number } } | undefined;
  return (
    [10047, 10077, 10078].includes(e?.api_error?.err_code ?? 0) ||
    /maximum (bytes|messages|msgs)|insufficient resources|resource limits exceeded/i.test(e?.message ?? "")
  );
}

/** Fraction of a bucket's bounds up to which new jobs are admitted: the rest is room for accepted ones. */
export const ADMIT_UP_TO = 0.9;

export interface StoreUsage {
  kvBytes: number;
  kvRecords: number;
  queued: number;
  idempotencyBytes: number;
  queuedIndexRecords: number;
}

/**
 * Whether a new job of `bytes` may be admitted. New jobs stop at {@link ADMIT_UP_TO} of the jobs
 * bucket's bounds, so jobs already accepted still have room for their claims and results (an update
 * that grows a record counts against max bytes too); the queue itself is admitted to its limit.
 */
export function storeRefusal(u: StoreUsage, bytes: number, c: GatewayConfig["jobs"]): string | null {
  if (u.kvBytes + bytes > c.kvMaxBytes * ADMIT_UP_TO) {
    return `the job store holds ${u.kvBytes} of its ${c.kvMaxBytes} bytes`;
  }
  if (u.kvRecords + 1 > c.kvMaxRecords * ADMIT_UP_TO) {
    return `the job store holds ${u.kvRecords} of its ${c.kvMaxRecords} records`;
  }
  if (u.queued + 1 > c.maxQueued) return `the queue holds ${u.queued} jobs, its limit`;
  if (u.idempotencyBytes > c.idempotencyMaxBytes * ADMIT_UP_TO) {
    return `the idempotency store holds ${u.idempotencyBytes} of its ${c.idempotencyMaxBytes} bytes`;
  }
  if (u.queuedIndexRecords + 1 > c.kvMaxRecords * ADMIT_UP_TO) {
    return `the queued-jobs index holds ${u.queuedIndexRecords} entries`;
  }
  return null;
}

/**
 * Bytes of unfinished jobs per owner, fed by a watch of the queued-jobs index bucket (one entry per
 * job between submission and its end, written by every api replica, deleted by whoever finishes the
 * job). All replicas see the same entries, so the quota holds across replicas, give or take the
 * submissions racing on them. An entry that outlives its job (a crash between the two writes) ages out
 * with the bucket's TTL; entries are dropped here at the same age, as the bucket drops them silently.
 */
export class QueuedBytes {
  private readonly jobs = new Map<string, { owner: string; bytes: number; at: number }>();
  private readonly totals = new Map<string, number>();
  constructor(private readonly ttlMs: number) {}

  set(id: string, owner: string, bytes: number, at: number): void {
    this.delete(id);
    this.jobs.set(id, { owner, bytes, at });
    this.totals.set(owner, (this.totals.get(owner) ?? 0) + bytes);
  }

  delete(id: string): void {
    const j = this.jobs.get(id);
    if (!j) return;
    this.jobs.delete(id);
    const t = (this.totals.get(j.owner) ?? 0) - j.bytes;
    if (t > 0) this.totals.set(j.owner, t);
    else this.totals.delete(j.owner);
  }

  /** Drops entries older than the TTL (the bucket has dropped them too). */
  expire(now: number): void {
    for (const [id, j] of this.jobs) if (now - j.at >= this.ttlMs) this.delete(id);
  }

  used(owner: string): number {
    return this.totals.get(owner) ?? 0;
  }
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
    /** Queued-jobs index: key = job id, value {owner, bytes}, from submission until the job ends. */
    readonly queued: KV,
    readonly cfg: GatewayConfig["jobs"],
    private readonly timeoutMs: number,
  ) {
    this.queuedBytes = new QueuedBytes(cfg.ttlSeconds * 1000);
  }

  readonly queuedBytes: QueuedBytes;
  private usageCache: { at: number; value: Promise<StoreUsage> } | undefined;
  private stopTracking: (() => void) | undefined;

  /**
   * Follows the queued-jobs index (api role): needed for the per-tenant quota. Resolves once the
   * entries present now are loaded.
   */
  async trackQueuedBytes(): Promise<void> {
    let synced!: () => void;
    const ready = new Promise<void>((r) => (synced = r));
    const w = await this.queued.watch({ initializedFn: () => synced() });
    const sweep = setInterval(() => this.queuedBytes.expire(Date.now()), 10_000);
    sweep.unref();
    this.stopTracking = () => {
      clearInterval(sweep);
      w.stop();
    };
    void (async () => {
      for await (const e of w) {
        if (e.operation === "PUT") {
          try {
            const v = decodeJson<{ owner: string; bytes: number }>(e.value);
            this.queuedBytes.set(e.key, v.owner, v.bytes, e.created.getTime());
          } catch {
            // not an index entry: ignore
          }
        } else this.queuedBytes.delete(e.key);
      }
    })();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([ready, new Promise<void>((r) => (timer = setTimeout(r, this.timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Stream state of the buckets and the queue, at most 1 s old. */
  usage(): Promise<StoreUsage> {
    const now = Date.now();
    if (this.usageCache && now - this.usageCache.at < 1000) return this.usageCache.value;
    const value = (async () => {
      const [kv, q, idem, qi] = await Promise.all([
        this.jsm.streams.info(`KV_${this.cfg.kvBucket}`),
        this.jsm.streams.info(this.cfg.stream),
        this.jsm.streams.info(`KV_${this.cfg.idempotencyBucket}`),
        this.jsm.streams.info(`KV_${queuedIndexBucket(this.cfg)}`),
      ]);
      return {
        kvBytes: kv.state.bytes,
        kvRecords: kv.state.messages,
        queued: q.state.messages,
        idempotencyBytes: idem.state.bytes,
        queuedIndexRecords: qi.state.messages,
      };
    })();
    this.usageCache = { at: now, value };
    value.catch(() => (this.usageCache = undefined));
    return value;
  }

  /** Removes the job from the queued-jobs index (it has ended). Best effort: the TTL is the backstop. */
  async release(id: string): Promise<void> {
    try {
      await this.queued.delete(id);
    } catch {
      // the entry ages out with the bucket's TTL
    }
  }

  close(): void {
    this.stopTracking?.();
  }

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
      // New, never Old: at its limit the queue refuses the next job (a 507 to its client) instead of
      // silently dropping the oldest accepted one.
      discard: DiscardPolicy.New,
      // A queued job whose record has expired is useless: drop the message at the same age.
      max_age: ttlNanos,
      max_msgs: cfg.maxQueued,
      max_bytes: cfg.maxQueued * QUEUE_MSG_BYTES,
      max_msg_size: QUEUE_MSG_BYTES,
      duplicate_window: dupWindow,
    });
    await ensureStream(jsm, {
      name: cfg.dlqStream,
      subjects: [cfg.dlqSubject],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: cfg.replicas,
      // Old: a full dead-letter stream drops its oldest entries. The failed jobs' records keep
      // their own reason; refusing new dead letters instead would leave failed jobs retrying forever.
      discard: DiscardPolicy.Old,
      max_age: nanos(cfg.dlqMaxAgeSeconds * 1000),
      max_msgs: cfg.dlqMaxMsgs,
      max_bytes: cfg.dlqMaxBytes,
      max_msg_size: 16 * 1024,
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
    const kv = await js.views.kv(cfg.kvBucket, { ...kvOpts, max_bytes: cfg.kvMaxBytes });
    const idem = await js.views.kv(cfg.idempotencyBucket, {
      ...kvOpts,
      max_bytes: cfg.idempotencyMaxBytes,
    });
    const queuedBucket = queuedIndexBucket(cfg);
    const queued = await js.views.kv(queuedBucket, { ...kvOpts, max_bytes: queuedIndexMaxBytes(cfg) });
    // Buckets created earlier (or by an older version) get the configured bounds on their streams.
    const bounds: Record<string, Partial<StreamConfig>> = {
      [cfg.kvBucket]: { max_bytes: cfg.kvMaxBytes, max_msgs: cfg.kvMaxRecords },
      [cfg.idempotencyBucket]: { max_bytes: cfg.idempotencyMaxBytes, max_msgs: cfg.kvMaxRecords },
      [queuedBucket]: { max_bytes: queuedIndexMaxBytes(cfg), max_msgs: cfg.kvMaxRecords },
    };
    for (const [bucket, b] of Object.entries(bounds)) {
      const info = await jsm.streams.info(`KV_${bucket}`);
      const want = { ...b, max_age: ttlNanos, duplicate_window: dupWindow, discard: DiscardPolicy.New };
      if (differs(info.config, want)) await jsm.streams.update(`KV_${bucket}`, { ...info.config, ...want });
    }
    return new JobStore(nc, js, jsm, kv, idem, queued, cfg, timeoutMs);
  }

  /**
   * Stores the job (KV) and publishes it to the work queue; resolves only once JetStream has
   * acknowledged both, so a 202 always means the job is durable. With an idempotency key, a retry
   * of the same request returns the same id (and finishes an interrupted earlier submission).
   */
  async submit(
    owner: string,
    req: JobRequest,
    idempotencyKey?: string,
    maxQueuedBytes?: number,
    /** Writes the trace context into the queue message's headers (tracing on). */
    traceHeaders?: (h: MsgHdrs) => void,
  ): Promise<SubmitResult> {
    try {
      return await this.submitChecked(owner, req, idempotencyKey, maxQueuedBytes, traceHeaders);
    } catch (err) {
      if (isStoreFull(err))
        throw new StoreFullError(`JetStream refused the write: ${(err as Error).message}`);
      throw err;
    }
  }

  private async submitChecked(
    owner: string,
    req: JobRequest,
    idempotencyKey: string | undefined,
    maxQueuedBytes: number | undefined,
    traceHeaders: ((h: MsgHdrs) => void) | undefined,
  ): Promise<SubmitResult> {
    let id: string = randomUUID();
    let replayed = false;
    if (idempotencyKey !== undefined) {
      const bodyHash = createHash("sha256").update(JSON.stringify(req)).digest("hex");
      const k = createHash("sha256").update(`${owner}\n${idempotencyKey}`).digest("hex");
      const prev = await this.idem.get(k);
      if (prev && prev.operation === "PUT") {
        const v = decodeJson<{ job_id: string; body_hash: string }>(prev.value);
        if (v.body_hash !== bodyHash) throw new IdempotencyConflictError();
        id = v.job_id;
        replayed = true;
      } else {
        await this.admit(owner, req, id, maxQueuedBytes);
        try {
          await this.idem.create(k, encodeJson({ job_id: id, body_hash: bodyHash }));
        } catch (err) {
          if (!isRevisionConflict(err)) throw err;
          // A concurrent submission with the same key won: replay it.
          const again = await this.idem.get(k);
          if (!again || again.operation !== "PUT") throw err;
          const v = decodeJson<{ job_id: string; body_hash: string }>(again.value);
          if (v.body_hash !== bodyHash) throw new IdempotencyConflictError();
          id = v.job_id;
          replayed = true;
        }
      }
    } else {
      await this.admit(owner, req, id, maxQueuedBytes);
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
    const data = encodeJson(record);
    if (replayed) {
      const existing = await this.get(id);
      // Already picked up or finished: nothing left to do for the replay.
      if (existing && existing.record.status !== "queued") return { id, replayed };
      // Queued: only the queue message may be missing (it is deduplicated by id).
      if (existing) {
        await this.publish(id, traceHeaders);
        return { id, replayed };
      }
      // No record: the first attempt stopped before storing it; this one does the whole submission.
    }
    // Indexed before the record exists, so no queued record is ever missing from its owner's quota.
    await this.queued.put(id, encodeJson({ owner, bytes: data.length }));
    this.queuedBytes.set(id, owner, data.length, Date.now());
    try {
      await this.kv.create(id, data);
    } catch (err) {
      if (!replayed || !isRevisionConflict(err)) throw err;
      // A concurrent replay stored it first: it publishes too (deduplicated).
    }
    await this.publish(id, traceHeaders);
    return { id, replayed };
  }

  private async publish(id: string, traceHeaders?: (h: MsgHdrs) => void): Promise<void> {
    let h: MsgHdrs | undefined;
    if (traceHeaders) {
      h = headers();
      traceHeaders(h);
    }
    // Nats-Msg-Id = job id: a replayed submission inside the duplicate window is not queued twice,
    // and a duplicate outside it is harmless (workers skip jobs that are no longer queued).
    await this.js.publish(this.cfg.subject, encodeJson({ id }), {
      msgID: id,
      timeout: this.timeoutMs,
      headers: h,
    });
  }

  /** Refuses a new job when the store is near its bounds or the owner's quota is used up. */
  private async admit(owner: string, req: JobRequest, id: string, maxQueuedBytes: number | undefined) {
    // The record's size without timestamps' variance: what the quota and the bounds are about.
    const bytes =
      encodeJson({ id, owner, model: req.model, input: req.input, options: req.options }).length + 128;
    const full = storeRefusal(await this.usage(), bytes, this.cfg);
    if (full) throw new StoreFullError(full);
    if (maxQueuedBytes !== undefined) {
      const used = this.queuedBytes.used(owner);
      if (used + bytes > maxQueuedBytes) throw new QuotaExceededError(owner, used, maxQueuedBytes);
    }
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
      const next: JobRecord = finishedRecord({
        ...e.record,
        status: "cancelled",
        finished_at: new Date().toISOString(),
      });
      try {
        await this.update(next, e.revision);
        await this.release(id);
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

/** Upper bound of one work-queue message (`{"id"}` plus subject and Nats-Msg-Id header). */
const QUEUE_MSG_BYTES = 512;

/** The queued-jobs index bucket, named after the jobs bucket. */
export function queuedIndexBucket(cfg: GatewayConfig["jobs"]): string {
  return `${cfg.kvBucket}-queued`;
}

/** An index entry is ~100 bytes with its subject; deletes leave markers of the same size. */
function queuedIndexMaxBytes(cfg: GatewayConfig["jobs"]): number {
  return cfg.kvMaxRecords * 256;
}

/** Whether any of `want`'s settings differs in `have`. */
export function differs(have: Partial<StreamConfig>, want: Partial<StreamConfig>): boolean {
  return (Object.keys(want) as (keyof StreamConfig)[]).some(
    (k) => JSON.stringify(have[k]) !== JSON.stringify(want[k]),
  );
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
    const { name: _name, retention: _retention, storage: _storage, ...editable } = cfg;
    if (differs(c, editable)) await jsm.streams.update(cfg.name, { ...c, ...editable });
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
