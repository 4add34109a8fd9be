/**
 * The hardening decisions as pure functions, tested directly: limits and admission, the strict JSON
 * scan, request checks, metric labels, backend error handling, store admission and the tenant quota.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { KeyStore, hashKey, keyUnusable } from "../src/auth";
import { CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES, checkRelayRequest } from "../src/relay-request";
import { ConfigError, DEFAULT_HTTP_LIMITS, loadConfig } from "../src/config";
import { clientErrorResponse } from "../src/errors";
import { ADMIT_UP_TO, QueuedBytes, differs, finishedRecord, isStoreFull, storeRefusal } from "../src/jobs";
import { scanJson } from "../src/json-scan";
import { StreamRegistry, effectiveLimits, serverTimeouts, streamRefusal } from "../src/limits";
import { methodLabel, modelLabel } from "../src/metrics";
import { modelList, visibleModels } from "../src/models";
import { countMarkers, normalizeBackendError, passThroughHeaders, usageTokens } from "../src/relay";
import { backendFailureReason } from "../src/worker";

const base = {
  NATS_URL: "nats://127.0.0.1:4222",
  BACKEND_URL: "http://127.0.0.1:8000/v1",
  API_KEYS_FILE: "/k",
};
const dir = mkdtempSync(join(tmpdir(), "gateway-decisions-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("configuration of the limits", () => {
  it("has defaults for every limit, an idle timeout that follows BACKEND_TIMEOUT_MS, and a model list", () => {
    const c = loadConfig(base);
    expect(c.http).toEqual({ ...DEFAULT_HTTP_LIMITS, idleTimeoutMs: 300_000 });
    expect(loadConfig({ ...base, BACKEND_TIMEOUT_MS: "600000" }).http.idleTimeoutMs).toBe(600_000);
    expect(c.keyDefaults).toEqual({
      maxConcurrentStreams: 256,
      maxTokens: 32_768,
      maxN: 8,
      maxQueuedBytes: 64 * 1024 ** 2,
    });
    expect(c.jobs).toMatchObject({
      maxQueued: 100_000,
      kvMaxBytes: 1024 ** 3,
      kvMaxRecords: 1_000_000,
      idempotencyMaxBytes: 256 * 1024 ** 2,
      dlqMaxBytes: 256 * 1024 ** 2,
      dlqMaxMsgs: 100_000,
      dlqMaxAgeSeconds: 14 * 86_400,
    });
    expect(c.models).toEqual([]);
    expect(loadConfig({ ...base, MODELS: " a , b,a" }).models).toEqual(["a", "b"]);
  });

  it("rejects headers timeouts above the request timeout and bad model names", () => {
    expect(() => loadConfig({ ...base, REQUEST_TIMEOUT_MS: "1000", HEADERS_TIMEOUT_MS: "2000" })).toThrow(
      /HEADERS_TIMEOUT_MS: must be <= REQUEST_TIMEOUT_MS/,
    );
    expect(() => loadConfig({ ...base, MODELS: "ok,not ok" })).toThrow(ConfigError);
  });

  it("turns the timeouts into deadlines: Node's check interval is taken off them", () => {
    const t = serverTimeouts({ ...DEFAULT_HTTP_LIMITS, requestTimeoutMs: 30_000, headersTimeoutMs: 10_000 });
    expect(t.connectionsCheckingInterval).toBe(1000);
    expect(t.requestTimeout + t.connectionsCheckingInterval).toBe(30_000);
    expect(t.headersTimeout + t.connectionsCheckingInterval).toBe(10_000);
    const short = serverTimeouts({ ...DEFAULT_HTTP_LIMITS, requestTimeoutMs: 1000, headersTimeoutMs: 500 });
    expect(short.connectionsCheckingInterval).toBe(50);
    expect(short.requestTimeout).toBe(950);
  });
});

describe("admission of streams", () => {
  it("refuses the key's (429) before the replica's (503) limit", () => {
    expect(streamRefusal({ key: 1, total: 5 }, { key: 2, total: 10 }, "k")).toBeNull();
    expect(streamRefusal({ key: 2, total: 5 }, { key: 2, total: 10 }, "k")?.status).toBe(429);
    expect(streamRefusal({ key: 0, total: 10 }, { key: 2, total: 10 }, "k")?.status).toBe(503);
    expect(streamRefusal({ key: 2, total: 10 }, { key: 2, total: 10 }, "k")?.body.error.code).toBe(
      "too_many_concurrent_requests",
    );
  });

  it("counts streams per key and terminates those whose key is no longer valid", () => {
    const reg = new StreamRegistry();
    const ended: string[] = [];
    const key = (name: string) => ({ name, scopes: new Set<"chat">(["chat"]), disabled: false });
    const a = key("a");
    const b = key("b");
    const releaseA = reg.add({ key: a, terminate: () => ended.push("a1") });
    reg.add({ key: a, terminate: () => ended.push("a2") });
    reg.add({ key: b, terminate: () => ended.push("b1") });
    expect([reg.total, reg.activeFor("a"), reg.activeFor("b")]).toEqual([3, 2, 1]);
    releaseA();
    releaseA(); // twice is harmless
    expect(reg.activeFor("a")).toBe(1);
    expect(
      reg.sweep(
        (k) => k.name !== "a",
        () => ({ error: { message: "", type: "", code: "", param: null } }),
      ),
    ).toBe(1);
    expect(ended).toEqual(["a2"]);
  });

  it("uses a key's own limits, else the defaults", () => {
    const d = { maxConcurrentStreams: 32, maxTokens: 100, maxN: 8, maxQueuedBytes: 1000 };
    expect(effectiveLimits({ limits: { maxN: 1 } }, d)).toEqual({ ...d, maxN: 1 });
    expect(effectiveLimits({}, d)).toEqual(d);
  });
});

describe("keys: expiry", () => {
  it("a key is unusable from its expires_at on, and the store tells open streams so", () => {
    const ks = new KeyStore([
      { name: "e", sha256: hashKey("k-e"), expires_at: "2030-01-01T00:00:00Z" },
      { name: "d", sha256: hashKey("k-d"), disabled: true },
    ]);
    const e = ks.lookup("k-e")!;
    expect(keyUnusable(e, Date.parse("2029-12-31T23:59:59Z"))).toBeNull();
    expect(keyUnusable(e, Date.parse("2030-01-01T00:00:00Z"))).toBe("expired");
    expect(keyUnusable(ks.lookup("k-d")!, 0)).toBe("disabled");
    expect(ks.stillValid(e, "chat", Date.parse("2029-01-01T00:00:00Z"))).toBe(true);
    expect(ks.stillValid(e, "chat", Date.parse("2031-01-01T00:00:00Z"))).toBe(false);
    // A rotated key under the same name is another key: the old one's streams end.
    ks.replace([{ name: "e", sha256: hashKey("k-e2") }]);
    expect(ks.stillValid(e, "chat", 0)).toBe(false);
  });

  it("the keys file takes expires_at with an offset only, and the per-key limits", () => {
    const f = join(dir, "keys.json");
    writeFileSync(
      f,
      JSON.stringify([{ name: "a", sha256: hashKey("x"), expires_at: "2030-01-01T00:00:00" }]),
    );
    expect(() => KeyStore.fromFile(f)).toThrow(/expires_at/);
    writeFileSync(
      f,
      JSON.stringify([
        {
          name: "a",
          sha256: hashKey("x"),
          expires_at: "2030-01-01T01:00:00+01:00",
          max_concurrent_streams: 3,
          max_tokens: 500,
          max_n: 2,
          max_queued_bytes: 4096,
        },
      ]),
    );
    const k = KeyStore.fromFile(f).lookup("x")!;
    expect(k.expiresAt).toBe(Date.parse("2030-01-01T00:00:00Z"));
    expect(k.limits).toEqual({ maxConcurrentStreams: 3, maxTokens: 500, maxN: 2, maxQueuedBytes: 4096 });
  });
});

describe("strict JSON scan", () => {
  it("accepts exactly what JSON.parse accepts, except duplicate keys (differential, 20,000 mutated bodies)", () => {
    let seed = 7;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
    const gen = (d: number): unknown => {
      const r = rnd();
      if (d > 3 || r < 0.3) return pick([1, -0.5, 1e10, 0, "a", 'é\n"\\', true, false, null, ""]);
      if (r < 0.6) return Array.from({ length: Math.floor(rnd() * 4) }, () => gen(d + 1));
      const o: Record<string, unknown> = {};
      for (let k = 0; k < rnd() * 4; k++) o[pick(["a", "b", "model", "ü"])] = gen(d + 1);
      return o;
    };
    const chars = ["{", "}", "[", "]", ",", ":", '"', "\\", "1", "-", ".", "e", "n", " ", "\u0001", "u"];
    let mismatches = 0;
    for (let t = 0; t < 20_000; t++) {
      let s = JSON.stringify(gen(0));
      if (rnd() < 0.7) {
        const p = Math.floor(rnd() * (s.length + 1));
        s = rnd() < 0.5 ? s.slice(0, p) + s.slice(p + 1) : s.slice(0, p) + pick(chars) + s.slice(p);
      }
      let native = true;
      try {
        JSON.parse(s);
      } catch {
        native = false;
      }
      const r = scanJson(Buffer.from(s), 1000);
      if (native !== (r.ok || r.code === "duplicate_key")) mismatches++;
    }
    expect(mismatches).toBe(0);
  });

  it("returns the top-level members, rejects duplicates after unescaping, deep nesting and bad UTF-8", () => {
    const ok = scanJson(
      Buffer.from('{"model":"m\\u00e9","n":2,"stream":true,"messages":[{},{}],"x":null}'),
      8,
    );
    expect(ok.ok && [...ok.fields]).toEqual([
      ["model", { type: "string", value: "mé" }],
      ["n", { type: "number", value: 2 }],
      ["stream", { type: "boolean", value: true }],
      ["messages", { type: "array", length: 2 }],
      ["x", { type: "null" }],
    ]);
    const dup = scanJson(Buffer.from('{"model":"a","mod\\u0065l":"b"}'), 8);
    expect(dup).toMatchObject({ ok: false, code: "duplicate_key", param: "model" });
    expect(scanJson(Buffer.from('{"a":[[[1]]]}'), 4).ok).toBe(true);
    expect(scanJson(Buffer.from('{"a":[[[[1]]]]}'), 4)).toMatchObject({
      ok: false,
      code: "too_deep",
      param: "a",
    });
    expect(scanJson(Buffer.from([0x7b, 0x22, 0xc3, 0x22, 0x3a, 0x31, 0x7d]), 4)).toMatchObject({
      code: "invalid_json",
    });
  });
});

describe("chat request checks", () => {
  const limits = { maxConcurrentStreams: 1, maxTokens: 100, maxN: 2, maxQueuedBytes: 1 };
  const check = (body: unknown) => {
    const r = scanJson(Buffer.from(JSON.stringify(body)), 64);
    if (!r.ok) throw new Error(r.message);
    return checkRelayRequest(CHAT, r.root, r.fields, limits, "k");
  };
  it("needs model and messages, bounds n and both token budgets, allows null", () => {
    const m = [{ role: "user", content: "x" }];
    expect(check({ model: "a", messages: m, n: 2, max_tokens: null, stream: true })).toEqual({
      ok: true,
      view: { model: "a", stream: true },
    });
    const bad = check({ model: "", messages: [], n: 3, max_tokens: 1.5, max_completion_tokens: 101 });
    expect(!bad.ok && bad.problems.map((p) => p.field)).toEqual([
      "model",
      "messages",
      "n",
      "max_tokens",
      "max_completion_tokens",
    ]);
    expect(check([1])).toEqual({
      ok: false,
      problems: [{ field: "(body)", message: "must be a JSON object" }],
    });
  });
});

describe("relay request checks per endpoint", () => {
  const limits = { maxConcurrentStreams: 1, maxTokens: 100, maxN: 2, maxQueuedBytes: 1 };
  const check = (ep: Parameters<typeof checkRelayRequest>[0], body: unknown) => {
    const r = scanJson(Buffer.from(JSON.stringify(body)), 64);
    if (!r.ok) throw new Error(r.message);
    return checkRelayRequest(ep, r.root, r.fields, limits, "k");
  };
  const fieldsOf = (r: ReturnType<typeof check>) => (r.ok ? [] : r.problems.map((p) => p.field));

  it("completions: a prompt string or non-empty array; n, best_of and max_tokens bounded", () => {
    expect(check(COMPLETIONS, { model: "a", prompt: "x", stream: true, n: 2, best_of: 2 })).toEqual({
      ok: true,
      view: { model: "a", stream: true },
    });
    expect(check(COMPLETIONS, { model: "a", prompt: ["x", "y"] }).ok).toBe(true);
    expect(
      fieldsOf(check(COMPLETIONS, { model: "a", prompt: [], n: 3, best_of: 3, max_tokens: 101 })),
    ).toEqual(["prompt", "n", "best_of", "max_tokens"]);
    expect(fieldsOf(check(COMPLETIONS, { model: "a" }))).toEqual(["prompt"]);
    expect(fieldsOf(check(COMPLETIONS, { model: "a", prompt: 5 }))).toEqual(["prompt"]);
  });

  it("embeddings: input required, never a stream, no generation bounds", () => {
    expect(check(EMBEDDINGS, { model: "e", input: "x", stream: true, n: 50 })).toEqual({
      ok: true,
      view: { model: "e", stream: false },
    });
    expect(fieldsOf(check(EMBEDDINGS, { model: "e", input: [] }))).toEqual(["input"]);
    expect(fieldsOf(check(EMBEDDINGS, { input: {} }))).toEqual(["model", "input"]);
  });

  it("responses: input optional (string or items), max_output_tokens bounded, max_tokens not its name", () => {
    expect(check(RESPONSES, { model: "r", stream: true })).toEqual({
      ok: true,
      view: { model: "r", stream: true },
    });
    expect(
      check(RESPONSES, { model: "r", input: [{ role: "user", content: "x" }], max_output_tokens: 100 }).ok,
    ).toBe(true);
    expect(
      fieldsOf(check(RESPONSES, { model: "r", input: 1, max_output_tokens: 101, stream: "yes" })),
    ).toEqual(["input", "stream", "max_output_tokens"]);
    // Not a Responses API member: the backend judges it.
    expect(check(RESPONSES, { model: "r", input: "x", n: 99 }).ok).toBe(true);
  });

  it("chat: the same bounds as before, with messages required", () => {
    expect(fieldsOf(check(CHAT, { model: "a", prompt: "x" }))).toEqual(["messages"]);
  });
});

describe("token counting on relays", () => {
  it("counts an endpoint's event markers and reads the usage member", () => {
    const sse = Buffer.from('data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n');
    expect(countMarkers(sse, Buffer.from("data:"))).toBe(3);
    const resp = Buffer.from(
      'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"a"}\n\n' +
        'event: response.completed\ndata: {"type":"response.completed"}\n\n',
    );
    expect(countMarkers(resp, Buffer.from('"response.output_text.delta"'))).toBe(1);
    expect(
      usageTokens(Buffer.from('{"usage":{"completion_tokens": 42}}'), Buffer.from('"completion_tokens":')),
    ).toBe(42);
    const out = Buffer.from('{"usage":{"output_tokens":7,"output_tokens_details":{"reasoning_tokens":0}}}');
    expect(usageTokens(out, Buffer.from('"output_tokens":'))).toBe(7);
    expect(usageTokens(undefined, Buffer.from('"output_tokens":'))).toBe(0);
  });
});

describe("model list", () => {
  it("lists the served models, narrowed to the key's allow-list, in OpenAI's shape", () => {
    expect(visibleModels(["a", "b", "c"], undefined)).toEqual(["a", "b", "c"]);
    expect(visibleModels(["a", "b", "c"], new Set(["c", "a", "z"]))).toEqual(["a", "c"]);
    expect(visibleModels([], new Set(["a"]))).toEqual([]);
    expect(modelList(["a"], 1700000000)).toEqual({
      object: "list",
      data: [{ id: "a", object: "model", created: 1700000000, owned_by: "gateway" }],
    });
  });
});

describe("metric labels", () => {
  it("only configured models and the usual methods", () => {
    const served = new Set(["m1"]);
    expect(modelLabel("m1", served)).toBe("m1");
    expect(modelLabel("sk-secret", served)).toBe("other");
    expect(methodLabel("POST")).toBe("POST");
    expect(methodLabel("PROPFIND")).toBe("other");
  });
});

describe("backend answers", () => {
  it("a failure reason has the status and identifier-like type/code, never the message", () => {
    expect(
      backendFailureReason(400, {
        error: { message: "prompt 'secret' too long", type: "BadRequestError", code: "x_y" },
      }),
    ).toBe("backend returned HTTP 400 (BadRequestError, x_y)");
    expect(backendFailureReason(500, { error: { message: "m", type: "has spaces: secret" } })).toBe(
      "backend returned HTTP 500",
    );
    expect(backendFailureReason(400, { object: "error", message: "m", type: "T", code: 400 })).toBe(
      "backend returned HTTP 400 (T, 400)",
    );
    expect(backendFailureReason(502, undefined)).toBe("backend returned HTTP 502");
  });

  it("error bodies are completed into OpenAI's shape; complete ones pass byte for byte", () => {
    const full = Buffer.from('{"error":{"message":"m","type":"t","code":"c","param":null}}');
    expect(normalizeBackendError(400, full)).toBe(full);
    expect(
      JSON.parse(normalizeBackendError(400, Buffer.from('{"error":{"message":"m"}}')).toString()),
    ).toEqual({
      error: { message: "m", type: "upstream_error", code: "backend_error", param: null },
    });
    expect(JSON.parse(normalizeBackendError(503, Buffer.from("<html>")).toString()).error.code).toBe(
      "backend_error",
    );
  });

  it("passes Retry-After and x-ratelimit-* headers only", () => {
    expect(
      passThroughHeaders({
        "retry-after": "3",
        "x-ratelimit-remaining-tokens": "0",
        server: "uvicorn",
        "set-cookie": ["a"],
      }),
    ).toEqual({ "retry-after": "3", "x-ratelimit-remaining-tokens": "0" });
  });

  it("requests Node's parser refused get 408, 431 or 400 in our shape", () => {
    expect(clientErrorResponse("ERR_HTTP_REQUEST_TIMEOUT").status).toBe(408);
    expect(clientErrorResponse("HPE_HEADER_OVERFLOW").body.error.code).toBe("headers_too_large");
    expect(clientErrorResponse("HPE_INVALID_METHOD").status).toBe(400);
  });
});

describe("job store admission", () => {
  const cfg = loadConfig({
    ...base,
    JOBS_KV_MAX_BYTES: String(10 * 1024 * 1024),
    JOBS_MAX_QUEUED: "10",
  }).jobs;
  const empty = { kvBytes: 0, kvRecords: 0, queued: 0, idempotencyBytes: 0, queuedIndexRecords: 0 };
  it("stops new jobs short of the bounds, leaving room for accepted ones", () => {
    expect(storeRefusal(empty, 1000, cfg)).toBeNull();
    expect(storeRefusal({ ...empty, kvBytes: cfg.kvMaxBytes * ADMIT_UP_TO - 1000 }, 1000, cfg)).toBeNull();
    expect(storeRefusal({ ...empty, kvBytes: cfg.kvMaxBytes * ADMIT_UP_TO - 999 }, 1000, cfg)).toMatch(
      /bytes/,
    );
    expect(storeRefusal({ ...empty, queued: 10 }, 1, cfg)).toMatch(/queue holds 10/);
    expect(storeRefusal({ ...empty, kvRecords: cfg.kvMaxRecords }, 1, cfg)).toMatch(/records/);
  });

  it("recognises JetStream's refusals at a limit", () => {
    expect(isStoreFull({ message: "maximum messages exceeded" })).toBe(true);
    expect(isStoreFull({ message: "maximum bytes exceeded" })).toBe(true);
    expect(isStoreFull({ message: "wrong last sequence: 4" })).toBe(false);
  });

  it("tracks unfinished bytes per owner and forgets entries at the TTL", () => {
    const q = new QueuedBytes(1000);
    q.set("1", "a", 100, 0);
    q.set("2", "a", 50, 500);
    q.set("3", "b", 7, 0);
    q.set("1", "a", 100, 0); // the watch echoing our own write
    expect([q.used("a"), q.used("b")]).toEqual([150, 7]);
    q.delete("2");
    q.delete("2");
    expect(q.used("a")).toBe(100);
    q.expire(1000);
    expect([q.used("a"), q.used("b")]).toEqual([0, 0]);
  });

  it("a finished record keeps no input", () => {
    const r = finishedRecord({
      id: "i",
      owner: "o",
      model: "m",
      input: "secret",
      options: { max_tokens: 1 },
      status: "succeeded",
      attempts: 1,
      created_at: "",
      updated_at: "",
    });
    expect(r).not.toHaveProperty("input");
    expect(r).not.toHaveProperty("options");
    expect(r.status).toBe("succeeded");
  });

  it("compares only the settings it wants", () => {
    expect(differs({ max_msgs: 5, max_bytes: 1 }, { max_msgs: 5 })).toBe(false);
    expect(differs({ max_msgs: 5 }, { max_msgs: 6 })).toBe(true);
  });
});
