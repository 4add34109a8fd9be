/**
 * Hardening of the API's HTTP side (issue 15, item 3): timeouts, connection and stream caps, strict
 * relay bodies, per-key bounds, metric labels, key expiry and revocation, and OpenAI-shaped errors.
 * Relay-only apps (no JetStream), on 127.0.0.1 with the fake backend.
 */
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiKeyInput, KeyStore, hashKey } from "../src/auth";
import { Backend } from "../src/backend";
import { loadConfig } from "../src/config";
import { Readiness } from "../src/health";
import { serverTimeouts } from "../src/limits";
import { type Metrics, createMetrics } from "../src/metrics";
import { type AppOptions, buildApp } from "../src/server";
import { FakeBackend } from "./helpers/fake-backend";
import { KEYS, KEY_ENTRIES, auth } from "./helpers/gateway";
import { freePort } from "./helpers/nats-server";
import { rawConnect, responseJson } from "./helpers/raw";

const RAW = {
  pair: "sk-test-pair-0123456789",
  bounded: "sk-test-bounded-0123456789",
  expiring: "sk-test-expiring-0123456789",
  revocable: "sk-test-revocable-0123456789",
};
const EXTRA_KEYS: ApiKeyInput[] = [
  {
    name: "pair",
    sha256: hashKey(RAW.pair),
    max_concurrent_streams: 2,
    rate_limit: { rps: 1000, burst: 1000 },
  },
  {
    name: "bounded",
    sha256: hashKey(RAW.bounded),
    max_n: 1,
    max_tokens: 100,
    rate_limit: { rps: 1000, burst: 1000 },
  },
];

let fake: FakeBackend;
const closers: (() => Promise<void>)[] = [];
const dir = mkdtempSync(join(tmpdir(), "gateway-hardening-"));

interface App {
  base: string;
  port: number;
  metrics: Metrics;
  server: ReturnType<typeof buildApp>;
}

async function relayApp(extra: Partial<AppOptions> = {}, backendUrl?: string): Promise<App> {
  const metrics = createMetrics({ defaultMetrics: false, models: ["echo", "slow-stream"] });
  const backend = new Backend(backendUrl ?? fake.url, { timeoutMs: 30_000 });
  const app = buildApp({
    keys: new KeyStore([...KEY_ENTRIES, ...EXTRA_KEYS]),
    backend,
    metrics,
    readiness: new Readiness({ needsJetStream: false }),
    rateLimit: { rps: 1000, burst: 1000 },
    logLevel: "silent",
    ...extra,
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  closers.push(async () => {
    app.server.closeAllConnections();
    await app.close();
    backend.close();
  });
  const port = (app.server.address() as AddressInfo).port;
  return { base: `http://127.0.0.1:${port}`, port, metrics, server: app };
}

beforeAll(async () => {
  fake = await new FakeBackend().start();
});

afterAll(async () => {
  for (const c of closers) await c();
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

const msg = (content = "hi") => [{ role: "user", content }];
const post = (base: string, body: unknown, key: string = KEYS.alice, signal?: AbortSignal) =>
  fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: auth(key),
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal,
  });
type ErrorJson = { error: { message: string; type: string; code: string; param: string | null } };
const errorOf = async (r: Response) => ((await r.json()) as ErrorJson).error;

/** Opens a slow SSE stream and waits for its first event. */
async function openStream(base: string, key: string) {
  const ac = new AbortController();
  const r = await post(base, { model: "slow-stream", stream: true, messages: msg() }, key, ac.signal);
  expect(r.status).toBe(200);
  const reader = r.body!.getReader();
  await reader.read();
  return { ac, reader, response: r };
}

/** Reads a stream to its end (bounded); returns the text and whether it ended in time. */
async function drain(reader: ReadableStreamDefaultReader<Uint8Array>, withinMs: number) {
  let text = "";
  const deadline = Date.now() + withinMs;
  const dec = new TextDecoder();
  while (Date.now() < deadline) {
    const next = await Promise.race([
      reader.read().catch(() => ({ done: true as const, value: undefined })),
      new Promise<null>((r) => setTimeout(() => r(null), Math.max(1, deadline - Date.now()))),
    ]);
    if (next === null) break;
    if (next.done) return { text, ended: true };
    text += dec.decode(next.value);
  }
  return { text, ended: false };
}

describe("request, header, body and keep-alive timeouts", () => {
  it("closes a socket whose body trickles in, at REQUEST_TIMEOUT_MS, with a 408 in OpenAI's shape", async () => {
    const app = await relayApp({ http: { requestTimeoutMs: 1000, headersTimeoutMs: 500 } });
    const c = await rawConnect(app.port);
    c.socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEYS.alice}\r\n` +
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
    );
    // One byte every 100 ms: never idle, never done.
    const drip = setInterval(() => c.socket.writable && c.socket.write(" "), 100);
    const closedAt = await c.closedWithin(3000);
    clearInterval(drip);
    c.close();
    expect(closedAt).not.toBeNull();
    expect(closedAt!).toBeLessThanOrEqual(1600);
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
    expect(responseJson(c.received())).toEqual({
      error: {
        message: expect.any(String),
        type: "invalid_request_error",
        code: "request_timeout",
        param: null,
      },
    });
  });

  it("closes a socket whose headers trickle in, at HEADERS_TIMEOUT_MS", async () => {
    const app = await relayApp({ http: { requestTimeoutMs: 5000, headersTimeoutMs: 500 } });
    const c = await rawConnect(app.port);
    c.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    const drip = setInterval(() => c.socket.writable && c.socket.write("X-Pad: 1\r\n"), 50);
    const closedAt = await c.closedWithin(3000);
    clearInterval(drip);
    c.close();
    expect(closedAt).not.toBeNull();
    expect(closedAt!).toBeLessThanOrEqual(1000);
  });

  it("by default a slow-body socket is closed within 30 s (the deadline includes Node's check interval)", async () => {
    const cfg = loadConfig({
      NATS_URL: "nats://127.0.0.1:4222",
      BACKEND_URL: "http://127.0.0.1:1/v1",
      API_KEYS_FILE: "k",
    });
    expect(cfg.http.requestTimeoutMs).toBe(30_000);
    const t = serverTimeouts(cfg.http);
    expect(t.requestTimeout + t.connectionsCheckingInterval).toBeLessThanOrEqual(30_000);
    expect(t.headersTimeout + t.connectionsCheckingInterval).toBeLessThanOrEqual(10_000);
    // An app built without any limits (as the bench does) has them too.
    const app = await relayApp();
    expect(app.server.server.requestTimeout).toBeGreaterThan(0);
    expect(app.server.server.requestTimeout).toBeLessThanOrEqual(30_000);
    expect(app.server.server.headersTimeout).toBeLessThanOrEqual(10_000);
  });

  it("does not cut a response that lasts longer than the request timeout", async () => {
    const app = await relayApp({ http: { requestTimeoutMs: 500, headersTimeoutMs: 200 } });
    const r = await post(app.base, { model: "slow-stream", stream: true, messages: msg() });
    const { text } = await drain(r.body!.getReader(), 1500);
    // ~150 tokens after 1.5 s: the stream is alive well past the 0.5 s request timeout.
    expect(text.split("\n\n").filter(Boolean).length).toBeGreaterThan(50);
  });

  it("closes an idle kept-alive socket after KEEP_ALIVE_TIMEOUT_MS and a socket after MAX_REQUESTS_PER_SOCKET", async () => {
    const app = await relayApp({ http: { keepAliveTimeoutMs: 300, maxRequestsPerSocket: 2 } });
    const c = await rawConnect(app.port);
    c.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(await c.waitFor(/"status":"ok"/, 2000)).toBe(true);
    const closedAt = await c.closedWithin(3000);
    expect(closedAt).not.toBeNull();
    expect(closedAt!).toBeLessThan(1500);

    const d = await rawConnect(app.port);
    d.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(await d.waitFor(/(HTTP\/1\.1 200[\s\S]*){2}/, 2000)).toBe(true);
    // Node ends such a socket on its next connections check (up to 1 s here).
    expect(await d.closedWithin(2500)).not.toBeNull();
    expect(d.received().split("HTTP/1.1 200")[2]).toMatch(/connection: close/i);
  });

  it("answers 431 in OpenAI's shape to headers over MAX_HEADER_BYTES", async () => {
    const app = await relayApp({ http: { maxHeaderBytes: 4096 } });
    const c = await rawConnect(app.port);
    c.socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(8000)}\r\n\r\n`);
    await c.closedWithin(2000);
    expect(c.received()).toMatch(/^HTTP\/1\.1 431 /);
    expect(responseJson(c.received())).toEqual({
      error: {
        message: expect.any(String),
        type: "invalid_request_error",
        code: "headers_too_large",
        param: null,
      },
    });
  });
});

describe("connection and stream caps", () => {
  it("answers 503 too_many_connections on connections beyond MAX_CONNECTIONS, and closes them", async () => {
    const app = await relayApp({ http: { maxConnections: 3 } });
    const held = [];
    for (let i = 0; i < 3; i++) {
      const c = await rawConnect(app.port);
      c.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
      expect(await c.waitFor(/"status":"ok"/, 2000)).toBe(true);
      held.push(c);
    }
    const extra = await rawConnect(app.port);
    extra.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(await extra.closedWithin(2000)).not.toBeNull();
    expect(extra.received()).toMatch(/^HTTP\/1\.1 503 /);
    expect(extra.received()).toMatch(/retry-after: 1/i);
    expect((responseJson(extra.received()) as ErrorJson).error).toMatchObject({
      code: "too_many_connections",
      type: "service_unavailable",
      param: null,
    });
    // Once one closes, a new connection is served again.
    held.pop()!.close();
    await new Promise((r) => setTimeout(r, 50));
    const again = await rawConnect(app.port);
    again.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(await again.waitFor(/"status":"ok"/, 2000)).toBe(true);
    for (const c of [...held, again]) c.close();
  });

  it("refuses a key's stream beyond its max_concurrent_streams with 429, and admits it once one ends", async () => {
    const app = await relayApp();
    const a = await openStream(app.base, RAW.pair);
    const b = await openStream(app.base, RAW.pair);
    const third = await post(app.base, { model: "slow-stream", stream: true, messages: msg() }, RAW.pair);
    expect(third.status).toBe(429);
    expect(third.headers.get("retry-after")).toBe("1");
    expect(await errorOf(third)).toMatchObject({
      code: "too_many_concurrent_requests",
      type: "rate_limit_error",
      param: null,
    });
    // Another key is not affected.
    const other = await openStream(app.base, KEYS.alice);
    a.ac.abort();
    await new Promise((r) => setTimeout(r, 100));
    const fourth = await openStream(app.base, RAW.pair);
    for (const s of [b, other, fourth]) s.ac.abort();
  });

  it("refuses streams beyond MAX_CONCURRENT_STREAMS of the replica with 503", async () => {
    const app = await relayApp({ http: { maxConcurrentStreams: 2 } });
    const a = await openStream(app.base, KEYS.alice);
    const b = await openStream(app.base, KEYS.bob);
    const r = await post(app.base, { model: "echo", messages: msg() }, KEYS.chatOnly);
    expect(r.status).toBe(503);
    expect(await errorOf(r)).toMatchObject({ code: "server_busy", type: "service_unavailable" });
    a.ac.abort();
    b.ac.abort();
  });
});

describe("relay bodies: one strict parse", () => {
  it("rejects duplicate keys, so a body cannot pass the model allow-list as another model", async () => {
    const app = await relayApp();
    const before = fake.calls.length;
    for (const body of [
      '{"model":"other","model":"llama","messages":[{"role":"user","content":"x"}]}',
      '{"model":"other","mod\\u0065l":"llama","messages":[{"role":"user","content":"x"}]}',
      '{"model":"llama","messages":[{"role":"user","content":"x","role":"system"}]}',
    ]) {
      const r = await post(app.base, body, KEYS.llamaOnly);
      expect(r.status).toBe(400);
      expect(await errorOf(r)).toMatchObject({ code: "duplicate_key", type: "invalid_request_error" });
    }
    expect(fake.calls.length).toBe(before);
  });

  it("rejects nesting deeper than MAX_JSON_DEPTH (100,000 levels never reach the backend)", async () => {
    const app = await relayApp();
    const before = fake.calls.length;
    const deep = `{"model":"echo","messages":[{"role":"user","content":"x"}],"x":${"[".repeat(100_000)}${"]".repeat(100_000)}}`;
    const r = await post(app.base, deep);
    expect(r.status).toBe(400);
    expect(await errorOf(r)).toMatchObject({ code: "too_deep", param: "x" });
    const shallow = await relayApp({ maxJsonDepth: 3 });
    const r2 = await post(shallow.base, {
      model: "echo",
      messages: [{ role: "user", content: "x", y: { z: 1 } }],
    });
    expect(r2.status).toBe(400);
    expect(fake.calls.length).toBe(before);
  });

  it("answers 400 invalid_json in OpenAI's shape to a malformed body", async () => {
    const app = await relayApp();
    const r = await post(app.base, "{");
    expect(r.status).toBe(400);
    expect(await errorOf(r)).toEqual({
      message: expect.any(String),
      type: "invalid_request_error",
      code: "invalid_json",
      param: null,
    });
  });

  it("bounds n, max_tokens and max_completion_tokens per key", async () => {
    const app = await relayApp();
    const before = fake.calls.length;
    for (const [field, value] of [
      ["n", 2],
      ["n", 1.5],
      ["max_tokens", 101],
      ["max_completion_tokens", 101],
      ["max_tokens", 0],
    ] as const) {
      const r = await post(app.base, { model: "echo", messages: msg(), [field]: value }, RAW.bounded);
      expect(r.status, `${field}=${value}`).toBe(400);
      const e = await errorOf(r);
      expect(e).toMatchObject({ code: "validation_failed", param: field });
    }
    expect(fake.calls.length).toBe(before);
    const ok = await post(app.base, { model: "echo", messages: msg(), n: 1, max_tokens: 100 }, RAW.bounded);
    expect(ok.status).toBe(200);
    // The environment default applies to keys without their own bound.
    const dflt = await relayApp({ keyDefaults: { maxN: 8, maxTokens: 32_768 } });
    const big = await post(dflt.base, { model: "echo", messages: msg(), max_tokens: 32_769 });
    expect(big.status).toBe(400);
    const n8 = await post(dflt.base, { model: "echo", messages: msg(), n: 9 });
    expect(n8.status).toBe(400);
  });
});

describe("metric labels", () => {
  it("labels only the configured models; any other model string a tenant sends is 'other'", async () => {
    const app = await relayApp();
    const secret = "sk-live-pasted-secret-4f9a2c";
    const r = await post(app.base, { model: secret, stream: true, messages: msg() });
    await r.text();
    // More distinct junk models than any first-come cap, then a real one.
    for (let i = 0; i < 70; i++) {
      const j = await post(app.base, { model: `junk-${i}`, stream: true, messages: msg() });
      await j.text();
    }
    const e = await post(app.base, { model: "echo", stream: true, messages: msg() });
    await e.text();
    const text = await app.metrics.registry.metrics();
    expect(text).not.toContain(secret);
    expect(text).not.toContain("junk-");
    expect(text).toMatch(/gateway_time_to_first_token_seconds_count\{model="other"\} 71/);
    expect(text).toMatch(/gateway_time_to_first_token_seconds_count\{model="echo"\} 1/);
  });
});

describe("key expiry and revocation", () => {
  it("refuses an expired key and ends its open stream within the sweep interval", async () => {
    const keys = new KeyStore([
      ...KEY_ENTRIES,
      {
        name: "expiring",
        sha256: hashKey(RAW.expiring),
        expires_at: new Date(Date.now() + 1500).toISOString(),
      },
    ]);
    const app = await relayApp({ keys, keySweepMs: 200 });
    const s = await openStream(app.base, RAW.expiring);
    const started = Date.now();
    const { text, ended } = await drain(s.reader, 4000);
    expect(ended).toBe(true);
    expect(Date.now() - started).toBeLessThan(2500);
    // The SDKs raise a `data: {"error": ...}` event as an API error.
    expect(text).toMatch(/data: \{"error":\{[^\n]*"code":"api_key_revoked"/);
    const after = await post(app.base, { model: "echo", messages: msg() }, RAW.expiring);
    expect(after.status).toBe(401);
    expect(await errorOf(after)).toMatchObject({ code: "expired_api_key", type: "authentication_error" });
  });

  it("ends the open streams of a key removed from the keys file within the reload interval", async () => {
    const f = join(dir, "keys.json");
    const entries = [...KEY_ENTRIES, { name: "revocable", sha256: hashKey(RAW.revocable) }];
    writeFileSync(f, JSON.stringify({ keys: entries }));
    const keys = KeyStore.fromFile(f);
    keys.watch(f, 200, () => undefined);
    closers.push(() => Promise.resolve(keys.close()));
    const app = await relayApp({ keys, keySweepMs: 60_000 });
    const s = await openStream(app.base, RAW.revocable);
    const survivor = await openStream(app.base, KEYS.alice);
    writeFileSync(f, JSON.stringify({ keys: KEY_ENTRIES }));
    utimesSync(f, new Date(), new Date(Date.now() + 5000));
    const started = Date.now();
    const { text, ended } = await drain(s.reader, 3000);
    expect(ended).toBe(true);
    expect(Date.now() - started).toBeLessThan(1200);
    expect(text).toContain('"code":"api_key_revoked"');
    // Other keys' streams go on.
    const more = await drain(survivor.reader, 200);
    expect(more.ended).toBe(false);
    expect(more.text).toContain("tok");
    survivor.ac.abort();
  });
});

describe("errors in OpenAI's shape", () => {
  const shape = {
    message: expect.any(String),
    type: expect.any(String),
    code: expect.any(String),
    param: null,
  };

  it("404, 413, 502 and 504 bodies carry message, type, code and param", async () => {
    const app = await relayApp({ maxBodyBytes: 2048 });
    const nf = await fetch(`${app.base}/v1/nope`);
    expect(nf.status).toBe(404);
    expect(await errorOf(nf)).toEqual({ ...shape, code: "route_not_found" });
    const big = await post(app.base, { model: "echo", messages: msg("x".repeat(4096)) });
    expect(big.status).toBe(413);
    expect(await errorOf(big)).toEqual({ ...shape, code: "payload_too_large" });
    const dead = await relayApp({}, `http://127.0.0.1:${await freePort()}/v1`);
    const r502 = await post(dead.base, { model: "echo", messages: msg() });
    expect(r502.status).toBe(502);
    expect(await errorOf(r502)).toEqual({ ...shape, type: "upstream_error", code: "backend_unreachable" });
    const slowBackend = new Backend(fake.url, { timeoutMs: 200 });
    closers.push(() => Promise.resolve(slowBackend.close()));
    const slow = await relayApp({ backend: slowBackend });
    const r504 = await post(slow.base, { model: "slow", messages: msg() });
    expect(r504.status).toBe(504);
    expect(await errorOf(r504)).toEqual({ ...shape, type: "upstream_error", code: "backend_timeout" });
  });

  it("503 while shutting down (requests on kept-alive sockets), in the same shape", async () => {
    const app = await relayApp();
    const c = await rawConnect(app.port);
    c.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(await c.waitFor(/"status":"ok"/, 2000)).toBe(true);
    // An open stream keeps the close pending, as in a real drain.
    const s = await openStream(app.base, KEYS.bob);
    // A request under way when the close starts (an idle socket would simply be closed).
    c.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    await new Promise((r) => setTimeout(r, 50));
    const closed = app.server.close();
    await new Promise((r) => setTimeout(r, 50));
    c.socket.write("\r\n");
    expect(await c.waitFor(/HTTP\/1\.1 503[\s\S]*\}$/, 2000)).toBe(true);
    expect((responseJson(c.received()) as ErrorJson).error).toEqual({
      ...shape,
      type: "service_unavailable",
      code: "shutting_down",
    });
    c.close();
    s.ac.abort();
    await closed;
  });

  it("closes at once a socket that never carried a request, while an open stream drains to its end", async () => {
    // Default limits: nothing else would end the idle socket before the close is long overdue.
    const app = await relayApp();
    // A connection opened ahead of its request, as Node's fetch (undici) does, that never sends one.
    const idle = await rawConnect(app.port);
    const r = await post(app.base, { model: "short-stream", stream: true, messages: msg() });
    expect(r.status).toBe(200);
    const reader = r.body!.getReader();
    await reader.read();
    const started = Date.now();
    let closedAfter: number | null = null;
    const closed = app.server.close().then(() => (closedAfter = Date.now() - started));
    // Closed without waiting for anything.
    expect(await idle.closedWithin(1000)).not.toBeNull();
    expect(idle.received()).toBe("");
    // The stream in flight is not cut: it runs to its last event.
    const { text, ended } = await drain(reader, 15_000);
    expect(ended).toBe(true);
    expect(text).toContain("data: [DONE]");
    // And the close ends with it, far inside SHUTDOWN_TIMEOUT_MS (25 s by default).
    const streamEnded = Date.now() - started;
    await Promise.race([closed, new Promise((res) => setTimeout(res, 3000))]);
    expect(closedAfter).not.toBeNull();
    expect(closedAfter!).toBeLessThan(streamEnded + 3000);
  });

  it("415 to a body that is not JSON, on both body routes", async () => {
    const app = await relayApp();
    for (const path of ["/v1/chat/completions", "/v1/jobs"]) {
      const r = await fetch(`${app.base}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEYS.alice}`, "content-type": "text/plain" },
        body: "hello",
      });
      expect(r.status, path).toBe(415);
      expect(await errorOf(r)).toEqual({ ...shape, code: "unsupported_media_type" });
    }
  });

  it("passes the backend's Retry-After and x-ratelimit-* headers through on 429, nothing else", async () => {
    const app = await relayApp();
    const r = await post(app.base, { model: "rate-limited", messages: msg() });
    expect(r.status).toBe(429);
    expect(r.headers.get("retry-after")).toBe("7");
    expect(r.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    expect(r.headers.get("x-ratelimit-reset-requests")).toBe("7s");
    expect(r.headers.get("x-internal-secret")).toBeNull();
    expect(await errorOf(r)).toEqual({
      message: "slow down",
      type: "rate_limit_error",
      code: "rate_limit_exceeded",
      param: null,
    });
  });

  it("completes backend error bodies that are not in OpenAI's shape", async () => {
    const app = await relayApp();
    const html = await post(app.base, { model: "html-502", messages: msg() });
    expect(html.status).toBe(502);
    expect(await errorOf(html)).toEqual({ ...shape, type: "upstream_error", code: "backend_error" });
    const legacy = await post(app.base, { model: "legacy-400", messages: msg() });
    expect(legacy.status).toBe(400);
    expect(await errorOf(legacy)).toEqual({
      message: "max_tokens is too large",
      type: "BadRequestError",
      code: "backend_error",
      param: null,
    });
  });
});
