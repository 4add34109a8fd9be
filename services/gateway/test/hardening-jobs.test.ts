/**
 * Hardening of the job side (issue 15, item 3): bounded JetStream resources, refusals when full
 * (507, never a lost accepted job), the per-tenant quota on queued bytes, job input dropped once a job
 * finishes, per-key bounds on the jobs API, and error codes as the README documents them.
 */
import { DiscardPolicy, RetentionPolicy, StorageType, nanos } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { queuedIndexBucket } from "../src/jobs";
import { FakeBackend } from "./helpers/fake-backend";
import {
  KEYS,
  type TestGateway,
  auth,
  json,
  natsConnect,
  postJob,
  startApi,
  startTestWorker,
  testConfig,
  waitForJob,
} from "./helpers/gateway";
import { type NatsServer, startNatsServer } from "./helpers/nats-server";

let nats: NatsServer;
let backend: FakeBackend;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  backend = await new FakeBackend().start();
});

afterAll(async () => {
  for (const c of closers.reverse()) await c();
  await backend?.close();
  await nats?.dispose();
});

let n = 0;
/** A configuration with its own streams and buckets, so each test starts empty. */
function isolated(env: Record<string, string> = {}) {
  const p = `H${++n}`;
  return testConfig(nats.url, backend.url, {
    RATE_LIMIT_RPS: "1000",
    RATE_LIMIT_BURST: "1000",
    JOBS_STREAM: `${p}_JOBS`,
    JOBS_SUBJECT: `${p.toLowerCase()}.jobs.queue`,
    JOBS_CONSUMER: `${p.toLowerCase()}-workers`,
    DLQ_STREAM: `${p}_DLQ`,
    DLQ_SUBJECT: `${p.toLowerCase()}.jobs.dead`,
    JOBS_KV_BUCKET: `${p.toLowerCase()}-jobs`,
    IDEMPOTENCY_KV_BUCKET: `${p.toLowerCase()}-idem`,
    ...env,
  });
}

async function api(env: Record<string, string> = {}): Promise<TestGateway> {
  const g = await startApi(isolated(env));
  closers.push(() => g.close());
  return g;
}

describe("bounded JetStream resources", () => {
  it("gives every stream and bucket max bytes, max messages and max age; the queue refuses rather than drops", async () => {
    const g = await api();
    const c = g.store.cfg;
    const names = [c.stream, c.dlqStream, `KV_${c.kvBucket}`, `KV_${c.idempotencyBucket}`];
    const queued = queuedIndexBucket(c);
    names.push(`KV_${queued}`);
    for (const name of names) {
      const cfg = (await g.store.jsm.streams.info(name)).config;
      expect(cfg.max_bytes, name).toBeGreaterThan(0);
      expect(cfg.max_msgs, name).toBeGreaterThan(0);
      expect(cfg.max_age, name).toBeGreaterThan(0);
    }
    const q = (await g.store.jsm.streams.info(c.stream)).config;
    expect(q.discard).toBe("new");
    expect(q.max_msgs).toBe(100_000);
    const kv = (await g.store.jsm.streams.info(`KV_${c.kvBucket}`)).config;
    expect(kv.discard).toBe("new");
    expect(kv.max_bytes).toBe(1024 ** 3);
    const dlq = (await g.store.jsm.streams.info(c.dlqStream)).config;
    expect(dlq.max_age).toBe(14 * 86_400 * 1e9);
  });

  it("applies the bounds to streams and buckets created by the previous version (unbounded, discard old)", async () => {
    const cfg = isolated();
    const nc = await natsConnect(nats.url);
    closers.push(() => nc.close());
    const jsm = await nc.jetstreamManager();
    // What the previous version created: no limits, and a queue that dropped its oldest jobs.
    await jsm.streams.add({
      name: cfg.jobs.stream,
      subjects: [cfg.jobs.subject],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: nanos(cfg.jobs.ttlSeconds * 1000),
    });
    const js = nc.jetstream();
    await js.views.kv(cfg.jobs.kvBucket, { history: 1, ttl: cfg.jobs.ttlSeconds * 1000 });
    const g = await startApi(cfg);
    const q = (await jsm.streams.info(cfg.jobs.stream)).config;
    expect([q.discard, q.max_msgs, q.max_bytes > 0]).toEqual(["new", 100_000, true]);
    const kv = (await jsm.streams.info(`KV_${cfg.jobs.kvBucket}`)).config;
    expect([kv.max_bytes, kv.max_msgs]).toEqual([1024 ** 3, 1_000_000]);
    // And later changes of the configuration reach them too.
    await g.close();
    const again = await startApi({ ...cfg, jobs: { ...cfg.jobs, maxQueued: 50, dlqMaxMsgs: 77 } });
    closers.push(() => again.close());
    expect((await jsm.streams.info(cfg.jobs.stream)).config.max_msgs).toBe(50);
    expect((await jsm.streams.info(cfg.jobs.dlqStream)).config.max_msgs).toBe(77);
  });

  it("answers 507 job_store_full once the queue is full, and every accepted job still completes", async () => {
    const g = await api({ JOBS_MAX_QUEUED: "5" });
    const accepted: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await postJob(g.base, { model: "echo", input: `fill ${i}` });
      expect(r.status).toBe(202);
      accepted.push(r.body.id);
    }
    // The usage view is cached for up to 1 s: the queue's own limit refuses the write meanwhile.
    const refused = await postJob(g.base, { model: "echo", input: "one too many" });
    expect(refused.status).toBe(507);
    expect(refused.body.error.code).toBe("job_store_full");
    expect(refused.body.error.message).toMatch(/NOT accepted/);
    const w = await startTestWorker({ ...testConfig(nats.url, backend.url), jobs: g.store.cfg });
    closers.push(() => w.close());
    for (const [i, id] of accepted.entries()) {
      const done = await waitForJob(g.base, id, ["succeeded", "failed"], 20_000);
      expect(done.status).toBe("succeeded");
      expect(done.result.content).toBe(`echo: fill ${i}`);
    }
    // Room again once they are done.
    await new Promise((r) => setTimeout(r, 1100));
    expect((await postJob(g.base, { model: "echo", input: "room again" })).status).toBe(202);
  });

  it("answers 507 when the job records reach the bucket's byte bound, before the bucket itself is full", async () => {
    const g = await api({ JOBS_KV_MAX_BYTES: String(1024 * 1024), MAX_BODY_BYTES: String(300 * 1024) });
    const big = "b".repeat(200 * 1024);
    const statuses: number[] = [];
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await postJob(g.base, { model: "echo", input: `${i}${big}` });
      statuses.push(r.status);
      if (r.status === 202) ids.push(r.body.id);
      else expect(r.body.error.code).toBe("job_store_full");
      await new Promise((res) => setTimeout(res, 1050)); // past the usage cache
    }
    expect(statuses.slice(0, 4)).toEqual([202, 202, 202, 202]);
    expect(statuses.slice(4)).toEqual([507, 507]);
    const w = await startTestWorker({ ...testConfig(nats.url, backend.url), jobs: g.store.cfg });
    closers.push(() => w.close());
    for (const id of ids) {
      expect((await waitForJob(g.base, id, ["succeeded", "failed"], 20_000)).status).toBe("succeeded");
    }
  });
});

describe("per-tenant quota on queued bytes", () => {
  it("refuses a key's job with 507 once its unfinished jobs hold TENANT_MAX_QUEUED_BYTES; other keys go on", async () => {
    const g = await api({ TENANT_MAX_QUEUED_BYTES: "12000" });
    const input = "q".repeat(3000);
    for (let i = 0; i < 3; i++) {
      expect((await postJob(g.base, { model: "echo", input: `${i}${input}` })).status).toBe(202);
    }
    const over = await postJob(g.base, { model: "echo", input: `3${input}` });
    expect(over.status).toBe(507);
    expect(over.body.error.code).toBe("queued_bytes_quota_exceeded");
    expect(over.body.error.message).toContain("'alice'");
    const bob = await postJob(g.base, { model: "echo", input: `bob${input}` }, auth(KEYS.bob));
    expect(bob.status).toBe(202);
    // Another replica (started now: it loads the index) enforces the same quota.
    const other = await startApi({
      ...isolated(),
      jobs: g.store.cfg,
      keyDefaults: { ...testConfig(nats.url, backend.url).keyDefaults, maxQueuedBytes: 12_000 },
    });
    closers.push(() => other.close());
    const there = await postJob(other.base, { model: "echo", input: `4${input}` });
    expect(there.status).toBe(507);
    expect(there.body.error.code).toBe("queued_bytes_quota_exceeded");
    // Finished jobs release their bytes.
    const w = await startTestWorker({ ...testConfig(nats.url, backend.url), jobs: g.store.cfg });
    closers.push(() => w.close());
    const deadline = Date.now() + 10_000;
    let status = 507;
    while (status === 507 && Date.now() < deadline) {
      status = (await postJob(g.base, { model: "echo", input: `again${input}` })).status;
      if (status === 507) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(202);
  });
});

describe("finished jobs", () => {
  it("keep no input in their record (the prompt is gone from the bucket once the job ends)", async () => {
    const g = await api();
    const canary = `canary-input-${Date.now()}`;
    const r = await postJob(g.base, { model: "echo", input: canary, options: { max_tokens: 8 } });
    const w = await startTestWorker({ ...testConfig(nats.url, backend.url), jobs: g.store.cfg });
    closers.push(() => w.close());
    const done = await waitForJob(g.base, r.body.id, ["succeeded"], 20_000);
    expect(done.result.content).toBe(`echo: ${canary}`);
    const e = await g.store.kv.get(r.body.id);
    const stored = JSON.parse(new TextDecoder().decode(e!.value)) as Record<string, unknown>;
    expect(stored.status).toBe("succeeded");
    expect(stored).not.toHaveProperty("input");
    expect(stored).not.toHaveProperty("options");
    // History 1: no older revision with the input is left in the bucket's stream.
    const info = await g.store.jsm.streams.info(`KV_${g.store.cfg.kvBucket}`);
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await g.store.jsm.streams.getMessage(`KV_${g.store.cfg.kvBucket}`, { seq }).catch(() => null);
      // (The echo backend's completion repeats it: only the input field matters here.)
      if (m) expect(new TextDecoder().decode(m.data)).not.toContain(`"input":"${canary}"`);
    }
  });
});

describe("jobs API: bounds and error codes", () => {
  it("bounds options.max_tokens by the key's limit (MAX_TOKENS by default)", async () => {
    const g = await api({ MAX_TOKENS: "1000" });
    const r = await postJob(g.base, { model: "echo", input: "x", options: { max_tokens: 1001 } });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("validation_failed");
    expect((r.body.error as unknown as { param: string }).param).toBe("options.max_tokens");
    expect((await postJob(g.base, { model: "echo", input: "x", options: { max_tokens: 1000 } })).status).toBe(
      202,
    );
  });

  it("answers invalid_json (as the README says) to malformed JSON, and rejects duplicate keys", async () => {
    const g = await api();
    const bad = await fetch(`${g.base}/v1/jobs`, {
      method: "POST",
      headers: auth(KEYS.alice),
      body: "{not json",
    });
    expect(bad.status).toBe(400);
    expect((await json(bad)).error).toMatchObject({ type: "invalid_request_error", code: "invalid_json" });
    const dup = await fetch(`${g.base}/v1/jobs`, {
      method: "POST",
      headers: auth(KEYS.llamaOnly),
      body: '{"model":"gpt-9","model":"llama","input":"x"}',
    });
    expect(dup.status).toBe(400);
    expect((await json(dup)).error.code).toBe("duplicate_key");
  });
});
