/**
 * The route handlers against a fake gateway on loopback: what they send the gateway (the key, the
 * model, the conversation), how its answers and failures reach the browser (statuses, Retry-After,
 * readable messages, streamed tokens, a cut stream), and that a browser leaving cancels the gateway call.
 */
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { POST as chat } from "../app/api/chat/route";
import { GET as health } from "../app/api/health/route";
import { GET as getJob } from "../app/api/jobs/[id]/route";
import { POST as submitJob } from "../app/api/jobs/route";
import { GET as models } from "../app/api/models/route";
import type { ApiErrorBody, JobView, ModelList } from "../lib/api";
import {
  FakeGateway,
  type GatewayCall,
  gatewayError,
  json,
  sseChunk,
  startSse,
  streamTokens,
} from "./helpers/fake-gateway";
import { readUiStream, uiChunks } from "./helpers/ui-stream";

const KEY = "sk-web-unit-test-0123456789abcdef";
const JOB_ID = "0b7f6c1e-3d2a-4c55-9f0e-2a1b3c4d5e6f";

let gateway: FakeGateway;

beforeAll(async () => {
  gateway = await new FakeGateway().start();
});
afterAll(async () => {
  await gateway?.close();
});
/** The server log's warnings (one line per failed chat turn), kept out of the test output. */
let warnings: string[];

beforeEach(() => {
  warnings = [];
  vi.spyOn(console, "warn").mockImplementation((line: string) => void warnings.push(line));
  gateway.calls.length = 0;
  vi.stubEnv("GATEWAY_URL", gateway.url);
  vi.stubEnv("GATEWAY_API_KEY", KEY);
  vi.stubEnv("GATEWAY_MODELS", "llama,qwen");
});
afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

const userMessage = (text: string, id = "u1") => ({ id, role: "user", parts: [{ type: "text", text }] });

function chatRequest(body: unknown, signal?: AbortSignal): Request {
  return new Request("http://web.test/api/chat", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

const ask = (text: string, model = "llama", signal?: AbortSignal) =>
  chat(chatRequest({ id: "c1", messages: [userMessage(text)], model, trigger: "submit-message" }, signal));

async function errorOf(res: Response): Promise<ApiErrorBody["error"]> {
  return ((await res.json()) as ApiErrorBody).error;
}

/** The one call the app made to the gateway. */
function onlyCall(): GatewayCall {
  expect(gateway.calls).toHaveLength(1);
  return gateway.calls[0]!;
}

describe("POST /api/chat", () => {
  it("streams the gateway's tokens as a UI message stream, with the key only on the gateway call", async () => {
    gateway.handler = (_call, res) => streamTokens(res, ["Hel", "lo", " there"]);
    const res = await ask("Say hello");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const out = await readUiStream(res);
    expect(out.text).toBe("Hello there");
    expect(out.errors).toEqual([]);
    expect(out.types).toContain("finish");

    const call = onlyCall();
    expect(call.method).toBe("POST");
    expect(call.path).toBe("/v1/chat/completions");
    expect(call.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(call.body).toMatchObject({
      model: "llama",
      stream: true,
      messages: [{ role: "user", content: "Say hello" }],
    });
  });

  it("a GATEWAY_URL ending in /v1 reaches the same endpoint", async () => {
    vi.stubEnv("GATEWAY_URL", `${gateway.url}/v1/`);
    gateway.handler = (_call, res) => streamTokens(res, ["ok"]);
    expect((await readUiStream(await ask("hi"))).text).toBe("ok");
    expect(onlyCall().path).toBe("/v1/chat/completions");
  });

  it("hands on the first token before the gateway has sent the rest", async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    gateway.handler = (_call, res) => {
      startSse(res);
      res.write(sseChunk("first"));
      void released.then(() => res.end(`${sseChunk(" second")}${sseChunk(null, "stop")}data: [DONE]\n\n`));
    };
    const res = await ask("stream please");
    // Read by hand: leaving a for-await loop would cancel the stream.
    const chunks = uiChunks(res);
    let seen = "";
    while (seen === "") {
      const next = await chunks.next();
      if (next.done) break;
      if (next.value.type === "text-delta") seen += next.value.delta ?? "";
    }
    // The gateway is still holding " second": what arrived came through while the stream was open.
    expect(seen).toBe("first");
    expect(gateway.calls[0]!.completed).toBe(false);
    release();
    let rest = "";
    for await (const c of chunks) if (c.type === "text-delta") rest += c.delta;
    expect(rest).toBe(" second");
  });

  it("gateway 401: a 502 that blames the app's key, without revealing it", async () => {
    gateway.handler = (_call, res) =>
      gatewayError(res, 401, "invalid_api_key", "Invalid API key", { "www-authenticate": "Bearer" });
    const res = await ask("hi");
    expect(res.status).toBe(502);
    const body = await res.text();
    expect(body).not.toContain(KEY);
    const err = (JSON.parse(body) as ApiErrorBody).error;
    expect(err.code).toBe("gateway_unauthorized");
    expect(err.message).toMatch(/rejected this app's API key \(401 invalid_api_key\).*GATEWAY_API_KEY/);
    // The operator's log says the same, in one line, without the key either.
    expect(warnings).toEqual([`web: chat llama: gateway_unauthorized: ${err.message}`]);
  });

  it("gateway 429: 429 with its Retry-After, said in the message, and no silent retries", async () => {
    gateway.handler = (_call, res) =>
      gatewayError(res, 429, "rate_limited", "Rate limit exceeded for key 'web'", { "retry-after": "7" });
    const res = await ask("hi");
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("7");
    const err = await errorOf(res);
    expect(err).toMatchObject({ code: "rate_limited", retryAfterSeconds: 7 });
    expect(err.message).toMatch(/rate-limiting this app \(429\): try again in 7 s/);
    expect(gateway.calls).toHaveLength(1);
  });

  it("gateway 5xx: a 502 naming the backend failure and the gateway's message", async () => {
    gateway.handler = (_call, res) => gatewayError(res, 500, "backend_error", "the model crashed");
    const res = await ask("hi");
    expect(res.status).toBe(502);
    expect((await errorOf(res)).message).toBe("The model backend failed (gateway 500): the model crashed.");
    gateway.handler = (_call, res) => gatewayError(res, 504, "backend_timeout", "no answer");
    expect((await ask("hi")).status).toBe(504);
  });

  it("a stream cut mid-answer keeps the tokens and ends with an error saying so", async () => {
    gateway.handler = (_call, res) => {
      startSse(res);
      res.write(sseChunk("partial"));
      setTimeout(() => res.destroy(), 50);
    };
    const out = await readUiStream(await ask("hi"));
    expect(out.text).toBe("partial");
    expect(out.errors).toHaveLength(1);
    expect(out.errors[0]).toMatch(/^The connection to the gateway broke mid-answer \(.+\)\.$/);
  });

  it("a stream that ends cleanly but without a finish reason is reported as cut off", async () => {
    gateway.handler = (_call, res) => {
      startSse(res);
      res.end(`${sseChunk("half an")}data: [DONE]\n\n`);
    };
    const out = await readUiStream(await ask("hi"));
    expect(out.text).toBe("half an");
    expect(out.errors).toEqual([
      "The answer was cut off: the gateway's stream ended before the model finished.",
    ]);
  });

  it("the browser leaving cancels the gateway call", async () => {
    let timer: NodeJS.Timeout | undefined;
    gateway.handler = (_call, res) => {
      startSse(res);
      let i = 0;
      timer = setInterval(() => res.write(sseChunk(`t${i++} `)), 20);
      res.on("close", () => clearInterval(timer));
    };
    const abort = new AbortController();
    const res = await ask("a long answer", "llama", abort.signal);
    for await (const c of uiChunks(res)) if (c.type === "text-delta") break;
    abort.abort();
    await expect(
      Promise.race([
        gateway.calls[0]!.abandoned.then(() => "cancelled"),
        new Promise((r) => setTimeout(() => r("still streaming"), 5000)),
      ]),
    ).resolves.toBe("cancelled");
    clearInterval(timer);
  });

  it("an unreachable gateway is a 502 naming GATEWAY_URL's host", async () => {
    const port = await closedPort();
    vi.stubEnv("GATEWAY_URL", `http://127.0.0.1:${port}`);
    const res = await ask("hi");
    expect(res.status).toBe(502);
    expect((await errorOf(res)).message).toMatch(
      new RegExp(`Cannot reach the gateway at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`),
    );
  });

  it("rejects a request without a model or messages before calling the gateway", async () => {
    expect((await chat(chatRequest({ messages: [userMessage("x")] }))).status).toBe(400);
    expect((await chat(chatRequest({ model: "llama", messages: [] }))).status).toBe(400);
    expect((await chat(chatRequest({ model: "llama", messages: [{ role: "user" }] }))).status).toBe(400);
    expect((await chat(chatRequest({ model: "not a model!", messages: [userMessage("x")] }))).status).toBe(
      400,
    );
    expect(gateway.calls).toEqual([]);
  });

  it("misconfigured: 503 naming the variable, and the gateway is never called", async () => {
    vi.stubEnv("GATEWAY_API_KEY", "");
    const res = await ask("hi");
    expect(res.status).toBe(503);
    const err = await errorOf(res);
    expect(err.code).toBe("config_invalid");
    expect(err.message).toMatch(/GATEWAY_API_KEY is not set/);
    expect(gateway.calls).toEqual([]);
  });
});

describe("/api/jobs", () => {
  const submit = (body: unknown, headers: Record<string, string> = {}) =>
    submitJob(
      new Request("http://web.test/api/jobs", {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
      }),
    );
  const poll = (id: string) =>
    getJob(new Request(`http://web.test/api/jobs/${id}`), { params: Promise.resolve({ id }) });

  it("submits the prompt as the job's input with the browser's Idempotency-Key, and answers 202 with the id", async () => {
    gateway.handler = (_call, res) =>
      json(res, 202, { id: JOB_ID, status: "queued", status_url: `/v1/jobs/${JOB_ID}` });
    const res = await submit({ model: "qwen", prompt: "Summarise this" }, { "idempotency-key": "k-123" });
    expect(res.status).toBe(202);
    expect((await res.json()) as JobView).toEqual({ id: JOB_ID, status: "queued", model: "qwen" });
    const call = onlyCall();
    expect(call.path).toBe("/v1/jobs");
    expect(call.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(call.headers["idempotency-key"]).toBe("k-123");
    expect(call.body).toEqual({ model: "qwen", input: "Summarise this" });
  });

  it("polls a job: the gateway's record, trimmed to what the page shows", async () => {
    gateway.handler = (call, res) =>
      json(res, 200, {
        id: JOB_ID,
        status: "succeeded",
        model: "qwen",
        attempts: 1,
        created_at: "2026-01-01T00:00:00Z",
        result: { content: "a summary", finish_reason: "stop", usage: { completion_tokens: 2 } },
        error: null,
        path: call.path,
      });
    const res = await poll(JOB_ID);
    expect(res.status).toBe(200);
    expect((await res.json()) as JobView).toEqual({
      id: JOB_ID,
      status: "succeeded",
      model: "qwen",
      attempts: 1,
      result: { content: "a summary", finishReason: "stop" },
    });
    expect(onlyCall().path).toBe(`/v1/jobs/${JOB_ID}`);
  });

  it("a failed job carries its reason; a retrying one its last error", async () => {
    gateway.handler = (_call, res) =>
      json(res, 200, {
        id: JOB_ID,
        status: "failed",
        attempts: 3,
        error: { reason: "HTTP 500", attempts: 3 },
      });
    expect(await (await poll(JOB_ID)).json()).toMatchObject({
      status: "failed",
      error: { reason: "HTTP 500", attempts: 3 },
    });
    gateway.handler = (_call, res) =>
      json(res, 200, { id: JOB_ID, status: "queued", attempts: 1, last_error: "HTTP 503" });
    expect(await (await poll(JOB_ID)).json()).toMatchObject({ status: "queued", lastError: "HTTP 503" });
  });

  it("gateway errors keep their meaning: 400 with its message, 404, 503 with Retry-After", async () => {
    gateway.handler = (_call, res) =>
      gatewayError(res, 400, "validation_failed", "The job request is invalid");
    let res = await submit({ model: "qwen", prompt: "x" });
    expect(res.status).toBe(400);
    expect((await errorOf(res)).message).toBe(
      "The gateway rejected the job (400): The job request is invalid.",
    );

    gateway.handler = (_call, res) => gatewayError(res, 404, "job_not_found", `Job '${JOB_ID}' not found`);
    res = await poll(JOB_ID);
    expect(res.status).toBe(404);

    gateway.handler = (_call, res) =>
      gatewayError(res, 503, "queue_unavailable", "The job queue is unavailable", { "retry-after": "2" });
    res = await submit({ model: "qwen", prompt: "x" });
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("2");
    expect((await errorOf(res)).retryAfterSeconds).toBe(2);
  });

  it("rejects bad input and odd job ids without calling the gateway", async () => {
    expect((await submit({ model: "qwen", prompt: "  " })).status).toBe(400);
    expect((await submit({ prompt: "x" })).status).toBe(400);
    expect((await submit({ model: "qwen", prompt: "x" }, { "idempotency-key": "has space" })).status).toBe(
      400,
    );
    expect((await poll("../models")).status).toBe(404);
    expect(gateway.calls).toEqual([]);
  });
});

describe("GET /api/models", () => {
  const list = async () =>
    (await (await models(new Request("http://web.test/api/models"))).json()) as ModelList;

  it("the gateway's own list when it serves GET /v1/models", async () => {
    gateway.handler = (_call, res) =>
      json(res, 200, { object: "list", data: [{ id: "llama-3.1-8b", object: "model" }, { id: "qwen" }] });
    expect(await list()).toEqual({ models: ["llama-3.1-8b", "qwen"], source: "gateway" });
    expect(onlyCall().headers.authorization).toBe(`Bearer ${KEY}`);
  });

  it("an empty list from the gateway is the answer: no model offered, GATEWAY_MODELS not either, said so", async () => {
    gateway.handler = (_call, res) => json(res, 200, { object: "list", data: [] });
    expect(await list()).toEqual({
      models: [],
      source: "gateway",
      notice:
        "The gateway lists no model this app's key may use (its MODELS setting is empty, or names none of " +
        "the key's models); type a model name. GATEWAY_MODELS is not offered instead: it only stands in " +
        "while the gateway's list cannot be loaded.",
    });
    vi.stubEnv("GATEWAY_MODELS", "");
    const l = await list();
    expect(l).toMatchObject({ models: [], source: "gateway" });
    expect(l.notice).not.toMatch(/GATEWAY_MODELS/);
  });

  it("GATEWAY_MODELS, said so, when the gateway fails (5xx)", async () => {
    gateway.handler = (_call, res) => gatewayError(res, 503, "server_busy", "busy");
    expect(await list()).toEqual({
      models: ["llama", "qwen"],
      source: "config",
      notice: expect.stringMatching(
        /^Could not load the gateway's model list \(The gateway is unavailable \(503\).*\); showing the models configured in GATEWAY_MODELS\.$/,
      ) as unknown,
    });
  });

  it("GATEWAY_MODELS, said so, when the gateway is unreachable", async () => {
    vi.stubEnv("GATEWAY_URL", `http://127.0.0.1:${await closedPort()}`);
    const l = await list();
    expect(l).toMatchObject({ models: ["llama", "qwen"], source: "config" });
    expect(l.notice).toMatch(
      /^Could not load the gateway's model list \(Cannot reach the gateway .*ECONNREFUSED/,
    );
  });

  it("a refusal (4xx) is said as such, without GATEWAY_MODELS", async () => {
    gateway.handler = (_call, res) => gatewayError(res, 401, "invalid_api_key", "Invalid API key");
    const l = await list();
    expect(l).toMatchObject({ models: [], source: "none" });
    expect(l.notice).toMatch(
      /^The gateway refused this app its model list \(.*401.*GATEWAY_API_KEY\); type a model name\.$/,
    );
    gateway.handler = (_call, res) =>
      gatewayError(res, 404, "route_not_found", "Route GET:/v1/models not found");
    expect(await list()).toMatchObject({
      models: [],
      source: "none",
      notice: expect.stringMatching(/404/) as unknown,
    });
  });

  it("no list anywhere: an empty list and a notice to type a model", async () => {
    vi.stubEnv("GATEWAY_MODELS", "");
    gateway.handler = (_call, res) => gatewayError(res, 500, "internal", "boom");
    const l = await list();
    expect(l.models).toEqual([]);
    expect(l.notice).toMatch(
      /^Could not load the gateway's model list \(.*500.*\).*GATEWAY_MODELS is not set/,
    );
  });
});

describe("GET /api/health", () => {
  it("200 when the configuration is valid (without calling the gateway)", async () => {
    const res = health();
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
    expect(gateway.calls).toEqual([]);
  });

  it("503 naming each bad variable", async () => {
    vi.stubEnv("GATEWAY_URL", "");
    vi.stubEnv("GATEWAY_API_KEY", "short");
    const res = health();
    expect(res.status).toBe(503);
    const body = (await res.json()) as { status: string; problems: { variable: string }[] };
    expect(body.status).toBe("misconfigured");
    expect(body.problems.map((p) => p.variable)).toEqual(["GATEWAY_URL", "GATEWAY_API_KEY"]);
  });
});

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
