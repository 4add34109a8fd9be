import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeJson } from "../src/jobs";
import { FakeBackend } from "./helpers/fake-backend";
import {
  KEYS,
  type TestGateway,
  type TestWorker,
  auth,
  json,
  getJob,
  metricValue,
  metricsText,
  postJob,
  startApi,
  startTestWorker,
  testConfig,
  waitForJob,
} from "./helpers/gateway";
import { type NatsServer, startNatsServer } from "./helpers/nats-server";

let nats: NatsServer;
let backend: FakeBackend;
let api: TestGateway;
let worker: TestWorker;

beforeAll(async () => {
  nats = await startNatsServer();
  backend = await new FakeBackend().start();
  const cfg = testConfig(nats.url, backend.url, { RATE_LIMIT_RPS: "1000", RATE_LIMIT_BURST: "1000" });
  api = await startApi(cfg);
  worker = await startTestWorker(cfg);
});

afterAll(async () => {
  await worker?.close();
  await api?.close();
  await backend?.close();
  await nats?.dispose();
});

describe("async jobs: submit, poll, result", () => {
  it("accepts a job with 202 {id, status_url} and a worker completes it", async () => {
    const r = await postJob(api.base, { model: "echo", input: "hello there", options: { max_tokens: 16 } });
    expect(r.status).toBe(202);
    expect(r.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.body.status_url).toBe(`/v1/jobs/${r.body.id}`);
    expect(r.headers.get("location")).toBe(r.body.status_url);

    const done = await waitForJob(api.base, r.body.id);
    expect(done.status).toBe("succeeded");
    expect(done.result.content).toBe("echo: hello there");
    expect(done.result.finish_reason).toBe("stop");
    expect(done.result.usage.completion_tokens).toBe(5);
    expect(done.attempts).toBe(1);
    expect(done.expires_at).toBeTypeOf("string");
    // The worker sent the options and the prompt as a user message.
    const call = backend.calls.find(
      (c) => (c.body.messages as { content: string }[])[0]?.content === "hello there",
    );
    expect(call?.body).toMatchObject({ model: "echo", max_tokens: 16, stream: false });
  });

  it("accepts chat messages as input", async () => {
    const r = await postJob(api.base, {
      model: "echo",
      input: [
        { role: "system", content: "be brief" },
        { role: "user", content: "second message" },
      ],
    });
    expect(r.status).toBe(202);
    const done = await waitForJob(api.base, r.body.id);
    expect(done.result.content).toBe("echo: second message");
  });

  it("reports the job through the status endpoint only to its owner", async () => {
    const r = await postJob(api.base, { model: "echo", input: "private" });
    expect((await getJob(api.base, r.body.id, KEYS.bob)).status).toBe(404);
    expect((await getJob(api.base, r.body.id, KEYS.alice)).status).toBe(200);
    const unknown = await getJob(api.base, "00000000-0000-4000-8000-000000000000");
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("job_not_found");
    expect((await getJob(api.base, "not-a-uuid")).status).toBe(404);
  });
});

describe("idempotency", () => {
  it("returns the same job for the same Idempotency-Key and body, and runs it once", async () => {
    const headers = { ...auth(KEYS.alice), "idempotency-key": "order-42" };
    const body = { model: "echo", input: "only once please" };
    const first = await postJob(api.base, body, headers);
    const second = await postJob(api.base, body, headers);
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body.id).toBe(first.body.id);
    expect(second.headers.get("idempotent-replayed")).toBe("true");
    await waitForJob(api.base, first.body.id);
    const third = await postJob(api.base, body, headers);
    expect(third.body.id).toBe(first.body.id);
    await new Promise((r) => setTimeout(r, 300));
    const calls = backend.calls.filter(
      (c) => (c.body.messages as { content: string }[])[0]?.content === "only once please",
    );
    expect(calls).toHaveLength(1);
  });

  it("rejects a reused Idempotency-Key with a different body (422)", async () => {
    const headers = { ...auth(KEYS.alice), "idempotency-key": "order-43" };
    expect((await postJob(api.base, { model: "echo", input: "a" }, headers)).status).toBe(202);
    const r = await postJob(api.base, { model: "echo", input: "b" }, headers);
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe("idempotency_key_reused");
  });

  it("scopes idempotency keys per API key", async () => {
    const body = { model: "echo", input: "shared key" };
    const a = await postJob(api.base, body, { ...auth(KEYS.alice), "idempotency-key": "k-1" });
    const b = await postJob(api.base, body, { ...auth(KEYS.bob), "idempotency-key": "k-1" });
    expect(a.status).toBe(202);
    expect(b.status).toBe(202);
    expect(b.body.id).not.toBe(a.body.id);
  });

  it("rejects a malformed Idempotency-Key header", async () => {
    const r = await postJob(
      api.base,
      { model: "echo", input: "x" },
      { ...auth(KEYS.alice), "idempotency-key": "a b" },
    );
    expect(r.status).toBe(400);
    expect(r.body.error.fields[0]!.field).toBe("header.idempotency-key");
  });
});

describe("bad inputs", () => {
  it("answers 400 with field-level errors", async () => {
    const r = await postJob(api.base, { input: "", options: { temperature: 7, bogus: 1 } });
    expect(r.status).toBe(400);
    expect(r.body.error.type).toBe("invalid_request_error");
    const fields = (r.body.error.fields as { field: string }[]).map((f) => f.field);
    expect(fields).toEqual(expect.arrayContaining(["model", "input", "options.temperature", "options"]));
  });

  it("rejects unknown top-level fields and a non-object body", async () => {
    const r = await postJob(api.base, { model: "echo", input: "x", extra: true });
    expect(r.status).toBe(400);
    const arr = await postJob(api.base, [1, 2]);
    expect(arr.status).toBe(400);
    expect(arr.body.error.fields[0]!.field).toBe("(body)");
  });

  it("answers 400 to invalid JSON", async () => {
    const r = await fetch(`${api.base}/v1/jobs`, {
      method: "POST",
      headers: auth(KEYS.alice),
      body: "{not json",
    });
    expect(r.status).toBe(400);
    expect((await json(r)).error.type).toBe("invalid_request_error");
  });

  it("answers 413 to a body over MAX_BODY_BYTES", async () => {
    const r = await postJob(api.base, { model: "echo", input: "x".repeat(300 * 1024) });
    expect(r.status).toBe(413);
    expect(r.body.error.code).toBe("payload_too_large");
  });
});

describe("auth and rate limits", () => {
  it("answers 401 without a key and with a wrong key, with clear bodies", async () => {
    const none = await fetch(`${api.base}/v1/jobs/00000000-0000-4000-8000-000000000000`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toContain("Bearer");
    const nb = await json(none);
    expect(nb.error.code).toBe("missing_api_key");
    expect(nb.error.message).toMatch(/Authorization: Bearer/);

    const wrong = await postJob(api.base, { model: "echo", input: "x" }, auth("sk-wrong"));
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe("invalid_api_key");

    const viaHeader = await fetch(`${api.base}/v1/jobs`, {
      method: "POST",
      headers: { "x-api-key": KEYS.alice, "content-type": "application/json" },
      body: JSON.stringify({ model: "echo", input: "x-api-key works" }),
    });
    expect(viaHeader.status).toBe(202);
  });

  it("answers 403 for a missing scope, a disallowed model and a disabled key", async () => {
    const scope = await postJob(api.base, { model: "echo", input: "x" }, auth(KEYS.chatOnly));
    expect(scope.status).toBe(403);
    expect(scope.body.error.code).toBe("insufficient_scope");
    expect(scope.body.error.message).toContain("'jobs'");

    const model = await postJob(api.base, { model: "gpt-9", input: "x" }, auth(KEYS.llamaOnly));
    expect(model.status).toBe(403);
    expect(model.body.error.code).toBe("model_not_allowed");
    expect((await postJob(api.base, { model: "llama", input: "x" }, auth(KEYS.llamaOnly))).status).toBe(202);

    const disabled = await postJob(api.base, { model: "echo", input: "x" }, auth(KEYS.disabled));
    expect(disabled.status).toBe(403);
    expect(disabled.body.error.code).toBe("key_disabled");
  });

  it("answers 429 with Retry-After once a key exceeds its rate", async () => {
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 4; i++) {
      const r = await fetch(`${api.base}/v1/jobs/00000000-0000-4000-8000-000000000000`, {
        headers: { authorization: `Bearer ${KEYS.limited}` },
      });
      statuses.push(r.status);
      if (r.status === 429) {
        retryAfter = r.headers.get("retry-after");
        expect((await json(r)).error.code).toBe("rate_limited");
      } else await r.body?.cancel();
    }
    expect(statuses.slice(0, 2)).toEqual([404, 404]);
    expect(statuses.slice(2)).toEqual([429, 429]);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    // Another key is not affected.
    expect((await getJob(api.base, "00000000-0000-4000-8000-000000000000", KEYS.bob)).status).toBe(404);
  });
});

describe("cancellation", () => {
  it("cancels a queued job, which the worker then skips; a finished job cannot be cancelled", async () => {
    // Hold the worker back: stop it, queue, cancel, restart.
    await worker.close();
    const r = await postJob(api.base, { model: "echo", input: "cancel me" });
    const del = await fetch(`${api.base}${r.body.status_url}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${KEYS.alice}` },
    });
    expect(del.status).toBe(200);
    expect((await json(del)).status).toBe("cancelled");
    worker = await startTestWorker(
      testConfig(nats.url, backend.url, { RATE_LIMIT_RPS: "1000", RATE_LIMIT_BURST: "1000" }),
    );
    const after = await postJob(api.base, { model: "echo", input: "after cancel" });
    await waitForJob(api.base, after.body.id);
    expect((await getJob(api.base, r.body.id)).body.status).toBe("cancelled");
    expect(
      backend.calls.some((c) => (c.body.messages as { content: string }[])[0]?.content === "cancel me"),
    ).toBe(false);
    const again = await fetch(`${api.base}/v1/jobs/${after.body.id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${KEYS.alice}` },
    });
    expect(again.status).toBe(409);
    expect((await json(again)).error.code).toBe("job_not_cancellable");
    const otherOwner = await fetch(`${api.base}/v1/jobs/${after.body.id}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${KEYS.bob}` },
    });
    expect(otherOwner.status).toBe(404);
  });
});

describe("retries and dead letters", () => {
  it("retries a transiently failing backend with backoff, then succeeds", async () => {
    const r = await postJob(api.base, { model: "flaky", input: "try again" });
    const done = await waitForJob(api.base, r.body.id);
    expect(done.status).toBe("succeeded");
    expect(done.attempts).toBe(3);
    expect(backend.callsFor("flaky")).toHaveLength(3);
  });

  it("dead-letters after WORKER_MAX_ATTEMPTS with the reason kept", async () => {
    const r = await postJob(api.base, { model: "fail-500", input: "doomed" });
    const done = await waitForJob(api.base, r.body.id);
    expect(done.status).toBe("failed");
    expect(done.attempts).toBe(3);
    expect(done.error.reason).toMatch(/gave up after 3 attempts: backend returned HTTP 500/);
    // The backend's message stays out of the record and the dead letter (it may quote the prompt).
    expect(done.error.reason).not.toContain("the model crashed");
    expect(backend.callsFor("fail-500")).toHaveLength(3);

    const dlq = await api.store.jsm.streams.getMessage(api.store.cfg.dlqStream, {
      last_by_subj: api.store.cfg.dlqSubject,
    });
    const entry = decodeJson<{ id: string; reason: string; attempts: number }>(dlq.data);
    expect(entry.id).toBe(r.body.id);
    expect(entry.attempts).toBe(3);
    expect(entry.reason).toBe(done.error.reason);
  });

  it("dead-letters a non-retryable backend answer at once", async () => {
    const r = await postJob(api.base, { model: "bad-400", input: "too long" });
    const done = await waitForJob(api.base, r.body.id);
    expect(done.status).toBe("failed");
    expect(done.attempts).toBe(1);
    expect(done.error.reason).toMatch(/not retryable: backend returned HTTP 400/);
  });
});

describe("metrics and health", () => {
  it("exposes latency histograms, job outcomes and queue depth", async () => {
    const text = await metricsText(api.opsBase);
    expect(text).toMatch(
      /gateway_http_request_duration_seconds_bucket\{.*route="\/v1\/jobs".*status_code="202"/,
    );
    expect(metricValue(text, 'gateway_queue_depth{state="pending"}')).toBe(0);
    expect(metricValue(text, 'gateway_queue_depth{state="dead_lettered"}')).toBeGreaterThanOrEqual(2);
    expect(metricValue(text, 'gateway_jobs_submitted_total{model="echo"}')).toBeGreaterThan(3);
    expect(metricValue(text, 'gateway_auth_failures_total{reason="invalid"}')).toBeGreaterThanOrEqual(1);
    const wtext = await worker.metrics.registry.metrics();
    expect(wtext).toMatch(/gateway_job_outcomes_total\{outcome="succeeded"\} [1-9]/);
    expect(wtext).toMatch(/gateway_tokens_per_second_count\{model="echo",source="job"\} [1-9]/);
  });

  it("is healthy and ready while JetStream is reachable", async () => {
    expect((await fetch(`${api.base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${api.opsBase}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready" });
  });
});

describe("result TTL", () => {
  it("expires job records after JOB_RESULT_TTL_SECONDS", async () => {
    const cfg = testConfig(nats.url, backend.url, {
      JOB_RESULT_TTL_SECONDS: "3",
      JOBS_STREAM: "TTL_JOBS",
      JOBS_SUBJECT: "ttl.jobs.queue",
      JOBS_CONSUMER: "ttl-workers",
      DLQ_STREAM: "TTL_DLQ",
      DLQ_SUBJECT: "ttl.jobs.dead",
      JOBS_KV_BUCKET: "ttl-jobs",
      IDEMPOTENCY_KV_BUCKET: "ttl-idem",
    });
    const ttlApi = await startApi(cfg);
    const ttlWorker = await startTestWorker(cfg);
    try {
      const r = await postJob(ttlApi.base, { model: "echo", input: "short lived" });
      const done = await waitForJob(ttlApi.base, r.body.id, ["succeeded"], 2500);
      expect(done.result.content).toBe("echo: short lived");
      const deadline = Date.now() + 8000;
      let status = 200;
      while (Date.now() < deadline && status === 200) {
        await new Promise((res) => setTimeout(res, 250));
        status = (await getJob(ttlApi.base, r.body.id)).status;
      }
      expect(status).toBe(404);
    } finally {
      await ttlWorker.close();
      await ttlApi.close();
    }
  });
});
