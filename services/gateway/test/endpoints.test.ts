/**
 * The OpenAI surface besides chat (issue 15, item 1): GET /v1/models and the completions, embeddings
 * and responses relays, each through the same auth, scopes, model allow-lists, body checks, bounds,
 * metrics and cancellation as chat. Relay-only app on 127.0.0.1 with the fake backend.
 */
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiKeyInput, KeyStore, hashKey } from "../src/auth";
import { Backend } from "../src/backend";
import { Readiness } from "../src/health";
import { type Metrics, createMetrics } from "../src/metrics";
import { buildApp } from "../src/server";
import { FakeBackend, fakeEmbedding } from "./helpers/fake-backend";
import { KEYS, KEY_ENTRIES, auth, metricValue } from "./helpers/gateway";

const RAW = { jobsOnly: "sk-test-jobs-only-0123456789", bounded: "sk-test-bounded-ep-0123456789" };
const EXTRA: ApiKeyInput[] = [
  { name: "jobs-only", sha256: hashKey(RAW.jobsOnly), scopes: ["jobs"] },
  { name: "bounded", sha256: hashKey(RAW.bounded), max_n: 1, max_tokens: 100 },
];
const MODELS = ["echo", "llama", "slow-stream"];

let fake: FakeBackend;
let metrics: Metrics;
let base: string;
let close: () => Promise<void>;

beforeAll(async () => {
  fake = await new FakeBackend().start();
  metrics = createMetrics({ defaultMetrics: false, models: MODELS });
  const backend = new Backend(fake.url, { timeoutMs: 30_000 });
  const app = buildApp({
    keys: new KeyStore([...KEY_ENTRIES, ...EXTRA]),
    backend,
    metrics,
    readiness: new Readiness({ needsJetStream: false }),
    rateLimit: { rps: 1000, burst: 1000 },
    logLevel: "silent",
    models: MODELS,
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  close = async () => {
    app.server.closeAllConnections();
    await app.close();
    backend.close();
  };
});

afterAll(async () => {
  await close?.();
  await fake?.close();
});

const post = (path: string, body: unknown, key: string | null = KEYS.alice, signal?: AbortSignal) =>
  fetch(`${base}${path}`, {
    method: "POST",
    headers: key === null ? { "content-type": "application/json" } : auth(key),
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal,
  });

interface ErrorJson {
  error: { message: string; type: string; code: string; param: string | null };
}
const errorOf = async (r: Response) => ((await r.json()) as ErrorJson).error;

const until = async (cond: () => boolean, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return cond();
};

/** Each new relay: a valid body for `model`, and its output-budget member. */
const RELAYS = [
  {
    path: "/v1/completions",
    endpoint: "completions",
    body: (model: string) => ({ model, prompt: "hi" }),
    budget: "max_tokens",
    streams: true,
  },
  {
    path: "/v1/embeddings",
    endpoint: "embeddings",
    body: (model: string) => ({ model, input: "hi" }),
    budget: null,
    streams: false,
  },
  {
    path: "/v1/responses",
    endpoint: "responses",
    body: (model: string) => ({ model, input: "hi" }),
    budget: "max_output_tokens",
    streams: true,
  },
] as const;

describe("GET /v1/models", () => {
  it("lists the served models in OpenAI's list shape, narrowed to the key's allow-list", async () => {
    const all = await fetch(`${base}/v1/models`, { headers: auth(KEYS.alice) });
    expect(all.status).toBe(200);
    const body = (await all.json()) as {
      object: string;
      data: { id: string; object: string; created: number; owned_by: string }[];
    };
    expect(body.object).toBe("list");
    expect(body.data.map((m) => m.id)).toEqual(MODELS);
    expect(body.data[0]).toEqual({
      id: "echo",
      object: "model",
      created: expect.any(Number),
      owned_by: "gateway",
    });
    const llama = (await (
      await fetch(`${base}/v1/models`, { headers: auth(KEYS.llamaOnly) })
    ).json()) as typeof body;
    expect(llama.data.map((m) => m.id)).toEqual(["llama"]);
    // Either scope may read the list; a key is still required.
    expect((await fetch(`${base}/v1/models`, { headers: auth(RAW.jobsOnly) })).status).toBe(200);
    const none = await fetch(`${base}/v1/models`);
    expect(none.status).toBe(401);
    expect((await errorOf(none)).code).toBe("missing_api_key");
  });

  it("retrieves one model; an unserved or forbidden one is a 404 model_not_found", async () => {
    const r = await fetch(`${base}/v1/models/echo`, { headers: auth(KEYS.alice) });
    expect(await r.json()).toMatchObject({ id: "echo", object: "model" });
    for (const [model, key] of [
      ["nope", KEYS.alice],
      ["echo", KEYS.llamaOnly],
    ] as const) {
      const e = await fetch(`${base}/v1/models/${model}`, { headers: auth(key) });
      expect(e.status).toBe(404);
      expect(await errorOf(e)).toMatchObject({
        code: "model_not_found",
        type: "invalid_request_error",
        param: "model",
      });
    }
  });
});

describe.each(RELAYS)("POST $path", (ep) => {
  it("relays the body byte for byte and answers in the endpoint's shape", async () => {
    const body = { ...ep.body("echo"), vendor_x: { a: 1 } };
    const r = await post(ep.path, body);
    expect(r.status).toBe(200);
    const j = (await r.json()) as Record<string, unknown>;
    expect(fake.calls.at(-1)).toMatchObject({ endpoint: ep.endpoint, body });
    if (ep.endpoint === "completions")
      expect(j).toMatchObject({ object: "text_completion", choices: [{ text: "echo: hi" }] });
    if (ep.endpoint === "embeddings")
      expect(j).toMatchObject({ object: "list", data: [{ embedding: fakeEmbedding("hi") }] });
    if (ep.endpoint === "responses")
      expect(j).toMatchObject({ object: "response", output: [{ content: [{ text: "echo: hi" }] }] });
    const m = await metrics.registry.metrics();
    expect(
      metricValue(
        m,
        `gateway_http_request_duration_seconds_count{method="POST",route="${ep.path}",status_code="200"}`,
      ),
    ).toBeGreaterThanOrEqual(1);
  });

  it("applies the chat relay's auth, scope and model allow-list", async () => {
    const before = fake.calls.length;
    const cases = [
      [null, 401, "missing_api_key"],
      ["sk-not-a-key", 401, "invalid_api_key"],
      [RAW.jobsOnly, 403, "insufficient_scope"],
      [KEYS.llamaOnly, 403, "model_not_allowed"],
      [KEYS.disabled, 403, "key_disabled"],
    ] as const;
    for (const [key, status, code] of cases) {
      const r = await post(ep.path, ep.body("echo"), key);
      expect(r.status, code).toBe(status);
      expect(await errorOf(r), code).toMatchObject({ code, message: expect.any(String) });
    }
    expect(fake.calls.length).toBe(before);
  });

  it("rejects duplicate keys, bad JSON, a missing input and budgets above the key's bound", async () => {
    const before = fake.calls.length;
    const dup = await post(
      ep.path,
      `{"model":"llama","model":"echo","prompt":"x","input":"x"}`,
      KEYS.llamaOnly,
    );
    expect(dup.status).toBe(400);
    expect((await errorOf(dup)).code).toBe("duplicate_key");
    const bad = await post(ep.path, "{nope");
    expect((await errorOf(bad)).code).toBe("invalid_json");
    if (ep.endpoint !== "responses") {
      const missing = await post(ep.path, { model: "echo" });
      expect(missing.status).toBe(400);
      expect(await errorOf(missing)).toMatchObject({
        code: "validation_failed",
        param: ep.endpoint === "completions" ? "prompt" : "input",
      });
    }
    if (ep.budget) {
      const over = await post(ep.path, { ...ep.body("echo"), [ep.budget]: 101 }, RAW.bounded);
      expect(over.status).toBe(400);
      expect(await errorOf(over)).toMatchObject({ code: "validation_failed", param: ep.budget });
      const ok = await post(ep.path, { ...ep.body("echo"), [ep.budget]: 100 }, RAW.bounded);
      expect(ok.status).toBe(200);
      await ok.arrayBuffer();
    }
    if (ep.endpoint === "completions") {
      const n = await post(ep.path, { ...ep.body("echo"), best_of: 2 }, RAW.bounded);
      expect(await errorOf(n)).toMatchObject({ code: "validation_failed", param: "best_of" });
    }
    expect(fake.calls.length).toBe(before + (ep.budget ? 1 : 0));
  });

  it("passes backend errors through in OpenAI's shape", async () => {
    const r = await post(ep.path, ep.body("html-502"));
    expect(r.status).toBe(502);
    expect(await errorOf(r)).toMatchObject({ type: "upstream_error", code: "backend_error" });
    const limited = await post(ep.path, ep.body("rate-limited"));
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("7");
  });

  if (ep.streams) {
    it("streams, records time to first token, and cancels the backend when the client leaves", async () => {
      const ttft = `gateway_time_to_first_token_seconds_count{model="echo"}`;
      const ttftBefore = metricValue(await metrics.registry.metrics(), ttft) ?? 0;
      const r = await post(ep.path, { ...ep.body("echo"), stream: true });
      expect(r.headers.get("content-type")).toBe("text/event-stream");
      const text = await r.text();
      expect(text).toContain("tok4 ");
      if (ep.endpoint === "responses") expect(text).toMatch(/event: response\.completed\n[^\n]*\n\n$/);
      else expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
      expect(metricValue(await metrics.registry.metrics(), ttft)).toBe(ttftBefore + 1);

      const cancelled = "gateway_relay_client_disconnects_total";
      const cancelledBefore = metricValue(await metrics.registry.metrics(), cancelled) ?? 0;
      const ac = new AbortController();
      const s = await post(ep.path, { ...ep.body("slow-stream"), stream: true }, KEYS.alice, ac.signal);
      const reader = s.body!.getReader();
      await reader.read();
      const call = await fake.waitForCall(
        (c) => c.model === "slow-stream" && c.endpoint === ep.endpoint && !c.aborted && !c.finished,
      );
      ac.abort();
      expect(await until(() => call.aborted, 10_000)).toBe(true);
      expect(call.finished).toBe(false);
      let after = cancelledBefore;
      for (let i = 0; i < 100 && after === cancelledBefore; i++) {
        after = metricValue(await metrics.registry.metrics(), cancelled) ?? 0;
        if (after === cancelledBefore) await new Promise((res) => setTimeout(res, 50));
      }
      expect(after).toBe(cancelledBefore + 1);
    });
  } else {
    it("never streams: stream: true gets the JSON answer", async () => {
      const r = await post(ep.path, { ...ep.body("echo"), stream: true });
      expect(r.headers.get("content-type")).toContain("application/json");
      expect(await r.json()).toMatchObject({ object: "list" });
    });
  }
});
