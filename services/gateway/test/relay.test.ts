import { type IncomingMessage, request } from "node:http";
import type { AddressInfo } from "node:net";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyStore } from "../src/auth";
import { Backend } from "../src/backend";
import { Readiness } from "../src/health";
import { type Metrics, createMetrics } from "../src/metrics";
import { buildApp } from "../src/server";
import { FakeBackend } from "./helpers/fake-backend";
import { KEYS, KEY_ENTRIES, type ApiJson, auth, json, metricValue } from "./helpers/gateway";
import { freePort } from "./helpers/nats-server";

let fake: FakeBackend;
let app: FastifyInstance;
let metrics: Metrics;
let base: string;
const closers: (() => Promise<void>)[] = [];

async function relayOnly(backendUrl: string, timeoutMs = 30_000) {
  const m = createMetrics({ defaultMetrics: false, models: ["echo"] });
  const backend = new Backend(backendUrl, { timeoutMs });
  const a = buildApp({
    keys: new KeyStore(KEY_ENTRIES),
    backend,
    metrics: m,
    readiness: new Readiness({ needsJetStream: false }),
    rateLimit: { rps: 1000, burst: 1000 },
    logLevel: "silent",
  });
  await a.listen({ host: "127.0.0.1", port: 0 });
  closers.push(async () => {
    await a.close();
    backend.close();
  });
  return { app: a, metrics: m, base: `http://127.0.0.1:${(a.server.address() as AddressInfo).port}` };
}

beforeAll(async () => {
  fake = await new FakeBackend().start();
  ({ app, metrics, base } = await relayOnly(fake.url));
});

afterAll(async () => {
  for (const c of closers) await c();
  await fake?.close();
});

const chat = (body: unknown, key = KEYS.alice, signal?: AbortSignal) =>
  fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: auth(key),
    body: JSON.stringify(body),
    signal,
  });

const until = async (cond: () => boolean, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return cond();
};

describe("non-stream chat completions", () => {
  it("proxies the request byte for byte and returns the backend's answer", async () => {
    const body = {
      model: "echo",
      messages: [{ role: "user", content: "hi" }],
      temperature: 0.2,
      vendor_x: { a: 1 },
    };
    const r = await chat(body);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("application/json");
    const j = await json(r);
    expect(j.choices[0]!.message.content).toBe("echo: hi");
    expect(fake.calls.at(-1)?.body).toEqual(body);
  });

  it("passes backend errors through with their status", async () => {
    const r = await chat({ model: "bad-400", messages: [{ role: "user", content: "x" }] });
    expect(r.status).toBe(400);
    expect((await json(r)).error.message).toBe("context length exceeded");
  });

  it("answers 502 with a clear body when the backend is unreachable", async () => {
    const dead = await relayOnly(`http://127.0.0.1:${await freePort()}/v1`);
    const r = await fetch(`${dead.base}/v1/chat/completions`, {
      method: "POST",
      headers: auth(KEYS.alice),
      body: JSON.stringify({ model: "echo", messages: [{ role: "user", content: "x" }] }),
    });
    expect(r.status).toBe(502);
    const j = await json(r);
    expect(j.error.type).toBe("upstream_error");
    expect(j.error.message).toMatch(/unreachable/);
  });

  it("answers 504 when the backend does not answer in time", async () => {
    const slow = await relayOnly(fake.url, 300);
    const r = await fetch(`${slow.base}/v1/chat/completions`, {
      method: "POST",
      headers: auth(KEYS.alice),
      body: JSON.stringify({ model: "slow", messages: [{ role: "user", content: "x" }] }),
    });
    expect(r.status).toBe(504);
  });
});

describe("streaming relay", () => {
  it("relays the SSE stream unchanged and records time to first token", async () => {
    const tpsSeries = 'gateway_tokens_per_second_count{model="echo",source="relay"}';
    const tpsBefore = metricValue(await metrics.registry.metrics(), tpsSeries) ?? 0;
    const r = await chat({ model: "echo", stream: true, messages: [{ role: "user", content: "stream" }] });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("text/event-stream");
    expect(r.headers.get("cache-control")).toBe("no-cache");
    const text = await r.text();
    const events = text.split("\n\n").filter(Boolean);
    // Five tokens, the last chunk with finish_reason, then the sentinel.
    expect(events).toHaveLength(7);
    expect(
      events.slice(0, 5).map((e) => (JSON.parse(e.slice(6)) as ApiJson).choices[0]!.delta.content),
    ).toEqual(["tok0 ", "tok1 ", "tok2 ", "tok3 ", "tok4 "]);
    expect(JSON.parse(events[5]!.slice(6))).toMatchObject({
      choices: [{ delta: {}, finish_reason: "stop" }],
    });
    expect(events[6]).toBe("data: [DONE]");
    const m = await metrics.registry.metrics();
    expect(metricValue(m, 'gateway_time_to_first_token_seconds_count{model="echo"}')).toBe(1);
    expect(metricValue(m, tpsSeries)).toBe(tpsBefore + 1);
    expect(m).toMatch(
      /gateway_http_request_duration_seconds_count\{method="POST",route="\/v1\/chat\/completions",status_code="200"\} [1-9]/,
    );
  });

  it("records one request-duration sample per relayed request", async () => {
    const series =
      'gateway_http_request_duration_seconds_count{method="POST",route="/v1/chat/completions",status_code="200"}';
    const before = metricValue(await metrics.registry.metrics(), series) ?? 0;
    for (const stream of [false, true]) {
      const r = await chat({ model: "echo", stream, messages: [{ role: "user", content: "count" }] });
      expect(r.status).toBe(200);
      await r.text();
    }
    expect(metricValue(await metrics.registry.metrics(), series)).toBe(before + 2);
  });

  it("cancels the upstream request when the client disconnects", async () => {
    const ac = new AbortController();
    const r = await chat(
      { model: "slow-stream", stream: true, messages: [{ role: "user", content: "long" }] },
      KEYS.alice,
      ac.signal,
    );
    expect(r.status).toBe(200);
    const reader = r.body!.getReader();
    const first = await reader.read();
    expect(Buffer.from(first.value as Uint8Array).toString("utf8")).toContain("tok0");
    const call = fake.callsFor("slow-stream").at(-1)!;
    expect(call.aborted).toBe(false);
    ac.abort();
    // The backend sees its request closed well before the 20 s the full stream would take.
    expect(await until(() => call.aborted, 3000)).toBe(true);
    expect(call.finished).toBe(false);
    const m = await metrics.registry.metrics();
    expect(metricValue(m, "gateway_relay_client_disconnects_total")).toBeGreaterThanOrEqual(1);
  });

  it("applies backpressure: a client that stops reading stalls the backend, then gets every byte", async () => {
    const { port } = app.server.address() as AddressInfo;
    const payload = JSON.stringify({
      model: "firehose",
      stream: true,
      messages: [{ role: "user", content: "x" }],
    });
    let received = 0;
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", port, method: "POST", path: "/v1/chat/completions", headers: auth(KEYS.alice) },
        resolve,
      );
      req.on("error", reject);
      req.end(payload);
    });
    expect(res.statusCode).toBe(200);
    res.pause(); // stop reading
    const call = await fake.waitForCall((c) => c.model === "firehose");
    expect(await until(() => call.backpressured, 5000)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    // Without backpressure the gateway would drain the backend (64 MiB) into memory.
    expect(call.bytesWritten).toBeLessThan(16 * 1024 * 1024);
    expect(call.finished).toBe(false);
    const ended = new Promise<void>((resolve) => res.on("end", resolve));
    res.on("data", (c: Buffer) => (received += c.length));
    res.resume();
    await ended;
    expect(call.finished).toBe(true);
    expect(received).toBe(call.bytesWritten + "data: [DONE]\n\n".length);
  });
});

describe("chat completions: auth and validation", () => {
  it("requires a key and the chat scope / model permission", async () => {
    const none = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "echo", messages: [{ role: "user", content: "x" }] }),
    });
    expect(none.status).toBe(401);
    const forbidden = await chat(
      { model: "gpt-9", messages: [{ role: "user", content: "x" }] },
      KEYS.llamaOnly,
    );
    expect(forbidden.status).toBe(403);
    expect((await json(forbidden)).error.code).toBe("model_not_allowed");
    const chatOnly = await chat({ model: "echo", messages: [{ role: "user", content: "x" }] }, KEYS.chatOnly);
    expect(chatOnly.status).toBe(200);
    await chatOnly.body?.cancel();
  });

  it("answers 400 with field errors to malformed requests, without calling the backend", async () => {
    const before = fake.calls.length;
    const r = await chat({ model: "", messages: [], stream: "yes" });
    expect(r.status).toBe(400);
    const fields = (await json(r)).error.fields.map((f: { field: string }) => f.field);
    expect(fields).toEqual(["model", "messages", "stream"]);
    const bad = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: auth(KEYS.alice),
      body: "{",
    });
    expect(bad.status).toBe(400);
    expect(fake.calls.length).toBe(before);
  });

  it("answers 413 to an oversized body", async () => {
    const r = await chat({ model: "echo", messages: [{ role: "user", content: "x".repeat(400 * 1024) }] });
    expect(r.status).toBe(413);
  });
});
