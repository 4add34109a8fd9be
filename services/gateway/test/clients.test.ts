/**
 * Contract tests with the real clients (issue 15, item 2), unmodified, against the gateway (api role
 * on a real nats-server) and the fake backend: the official `openai` SDK, and the Vercel AI SDK with
 * `@ai-sdk/openai-compatible` (chat and completions models) and `@ai-sdk/openai` (its default model,
 * the Responses API). Retries are off so every status reaches the client once.
 */
import { createOpenAI } from "@ai-sdk/openai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { APICallError, embed, generateText, streamText } from "ai";
import type { APIError } from "openai";
import OpenAI, {
  APIUserAbortError,
  AuthenticationError,
  BadRequestError,
  InternalServerError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
  UnprocessableEntityError,
} from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeBackend, fakeEmbedding } from "./helpers/fake-backend";
import { KEYS, type TestGateway, startApi, testConfig } from "./helpers/gateway";
import { type NatsServer, startNatsServer } from "./helpers/nats-server";

// The AI SDK's warnings (e.g. a completion model without tool support) are not under test.
(globalThis as { AI_SDK_LOG_WARNINGS?: boolean }).AI_SDK_LOG_WARNINGS = false;

let nats: NatsServer;
let fake: FakeBackend;
let gw: TestGateway;

beforeAll(async () => {
  nats = await startNatsServer();
  fake = await new FakeBackend().start();
  gw = await startApi(testConfig(nats.url, fake.url, { MODELS: "echo,llama,slow-stream" }));
});

afterAll(async () => {
  await gw?.close();
  await fake?.close();
  await nats?.dispose();
});

const sdk = (key: string = KEYS.alice) =>
  new OpenAI({ apiKey: key, baseURL: `${gw.base}/v1`, maxRetries: 0, timeout: 30_000 });
const user = (content: string) => [{ role: "user" as const, content }];

const until = async (cond: () => boolean, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  return cond();
};

/** The fake's open slow-stream call on `endpoint`, once it has started. */
const openSlowCall = (endpoint: string) =>
  fake.waitForCall((c) => c.model === "slow-stream" && c.endpoint === endpoint && !c.aborted && !c.finished);

/** What a promise rejected with (fails the test if it resolved). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection");
}

/** streamText over `model`: every token of the fake's stream, its finish reason and usage, no error. */
async function expectWholeStream(model: Parameters<typeof streamText>[0]["model"]): Promise<void> {
  const errors: unknown[] = [];
  const r = streamText({ model, prompt: "hi", maxRetries: 0, onError: (e) => void errors.push(e) });
  let text = "";
  for await (const t of r.textStream) text += t;
  expect(text).toBe("tok0 tok1 tok2 tok3 tok4 ");
  expect(await r.finishReason).toBe("stop");
  expect((await r.usage).outputTokens).toBe(5);
  expect(errors).toEqual([]);
}

describe("openai SDK", () => {
  it("chat completion, not streaming", async () => {
    const r = await sdk().chat.completions.create({ model: "echo", messages: user("hi") });
    expect(r.choices[0]?.message.content).toBe("echo: hi");
    expect(r.choices[0]?.finish_reason).toBe("stop");
    expect(r.usage?.completion_tokens).toBe(5);
  });

  it("chat completion, streaming, with usage", async () => {
    const stream = await sdk().chat.completions.create({
      model: "echo",
      messages: user("hi"),
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let finish: string | null = null;
    let usage: number | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage?.completion_tokens ?? usage;
    }
    expect(text).toBe("tok0 tok1 tok2 tok3 tok4 ");
    expect(finish).toBe("stop");
    expect(usage).toBe(5);
  });

  it("completion, not streaming and streaming", async () => {
    const r = await sdk().completions.create({ model: "echo", prompt: "hi", max_tokens: 8 });
    expect(r.choices[0]?.text).toBe("echo: hi");
    const stream = await sdk().completions.create({ model: "echo", prompt: "hi", stream: true });
    const parts: string[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      parts.push(chunk.choices[0]?.text ?? "");
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(parts.join("")).toBe("tok0 tok1 tok2 tok3 tok4 ");
    expect(finish).toBe("stop");
  });

  it("embeddings (the SDK asks for base64 and decodes it)", async () => {
    const r = await sdk().embeddings.create({ model: "echo", input: ["a", "bb"] });
    expect(r.data).toHaveLength(2);
    r.data[1]!.embedding.forEach((v, i) => expect(v).toBeCloseTo(fakeEmbedding("bb")[i]!, 6));
  });

  it("responses, not streaming and streaming", async () => {
    const r = await sdk().responses.create({ model: "echo", input: "hi", max_output_tokens: 16 });
    expect(r.output_text).toBe("echo: hi");
    expect(r.usage?.output_tokens).toBe(5);
    const stream = await sdk().responses.create({ model: "echo", input: "hi", stream: true });
    const types: string[] = [];
    let text = "";
    for await (const e of stream) {
      types.push(e.type);
      if (e.type === "response.output_text.delta") text += e.delta;
    }
    expect(text).toBe("tok0 tok1 tok2 tok3 tok4 ");
    expect(types[0]).toBe("response.created");
    expect(types.at(-1)).toBe("response.completed");
  });

  it("models: list (the key's subset) and retrieve", async () => {
    const ids: string[] = [];
    for await (const m of sdk().models.list()) ids.push(m.id);
    expect(ids).toEqual(["echo", "llama", "slow-stream"]);
    const llama: string[] = [];
    for await (const m of sdk(KEYS.llamaOnly).models.list()) llama.push(m.id);
    expect(llama).toEqual(["llama"]);
    expect((await sdk().models.retrieve("echo")).id).toBe("echo");
  });

  it.each([
    ["chat", "chat/completions"],
    ["completions", "completions"],
    ["responses", "responses"],
  ] as const)(
    "abort of a %s stream: the stream ends and the backend call is cancelled",
    async (_n, endpoint) => {
      const ac = new AbortController();
      const opts = { signal: ac.signal };
      const client = sdk();
      const stream =
        endpoint === "chat/completions"
          ? await client.chat.completions.create(
              { model: "slow-stream", messages: user("x"), stream: true },
              opts,
            )
          : endpoint === "completions"
            ? await client.completions.create({ model: "slow-stream", prompt: "x", stream: true }, opts)
            : await client.responses.create({ model: "slow-stream", input: "x", stream: true }, opts);
      const call = await openSlowCall(endpoint);
      let seen = 0;
      // The SDK ends an aborted stream's iteration quietly (APIUserAbortError is for a pending request).
      for await (const _chunk of stream) {
        if (++seen === 3) ac.abort();
      }
      expect(seen).toBeLessThan(100);
      expect(await until(() => call.aborted, 10_000)).toBe(true);
      expect(call.finished).toBe(false);
    },
  );

  it("abort of a pending request: APIUserAbortError, and the backend call is cancelled", async () => {
    const ac = new AbortController();
    const pending = rejection(
      sdk().chat.completions.create({ model: "slow", messages: user("x") }, { signal: ac.signal }),
    );
    const call = await fake.waitForCall((c) => c.model === "slow" && !c.aborted && !c.finished);
    ac.abort();
    expect(await pending).toBeInstanceOf(APIUserAbortError);
    expect(await until(() => call.aborted, 10_000)).toBe(true);
  });

  it("maps every error status to its class, with OpenAI's code and the message", async () => {
    const chat = (model: string, key?: string, extra: object = {}) =>
      rejection(sdk(key).chat.completions.create({ model, messages: user("x"), ...extra }));
    const cases: [Promise<unknown>, new (...a: never[]) => APIError, number, string | null][] = [
      // The gateway's own refusals.
      [chat("echo", undefined, { n: 99 }), BadRequestError, 400, "validation_failed"],
      [chat("echo", "sk-not-a-key"), AuthenticationError, 401, "invalid_api_key"],
      [chat("echo", KEYS.llamaOnly), PermissionDeniedError, 403, "model_not_allowed"],
      [rejection(sdk().models.retrieve("nope")), NotFoundError, 404, "model_not_found"],
      // The backend's, passed through with their status.
      [chat("bad-400"), BadRequestError, 400, "backend_error"],
      [chat("auth-401"), AuthenticationError, 401, "invalid_api_key"],
      [chat("forbidden-403"), PermissionDeniedError, 403, "forbidden"],
      [chat("not-found-404"), NotFoundError, 404, "model_not_found"],
      [chat("bad-422"), UnprocessableEntityError, 422, "unprocessable"],
      [chat("rate-limited"), RateLimitError, 429, "rate_limit_exceeded"],
      [chat("fail-500"), InternalServerError, 500, "backend_error"],
      [chat("html-502"), InternalServerError, 502, "backend_error"],
    ];
    fake.flakyFailures = 1;
    cases.push([chat("flaky"), InternalServerError, 503, "backend_error"]);
    for (const [p, cls, status, code] of cases) {
      const e = await p;
      expect(e, `${status} ${code}`).toBeInstanceOf(cls);
      expect((e as APIError).status).toBe(status);
      expect((e as APIError).code, `${status}`).toBe(code);
      expect((e as APIError).message).toMatch(new RegExp(`^${status} \\S`));
    }
    const limited = (await chat("rate-limited")) as RateLimitError;
    expect(limited.headers?.get("retry-after")).toBe("7");
    // The gateway's own rate limit: `limited` has a burst of 2.
    const own = sdk(KEYS.limited);
    const results = await Promise.all(
      [0, 1, 2].map((i) => rejection(own.models.list()).catch(() => i)), // resolves: not an error
    );
    expect(results.some((r) => r instanceof RateLimitError && r.code === "rate_limited")).toBe(true);
  });
});

describe("Vercel AI SDK with @ai-sdk/openai-compatible", () => {
  const provider = (key: string = KEYS.alice) =>
    createOpenAICompatible({ name: "gateway", baseURL: `${gw.base}/v1`, apiKey: key, includeUsage: true });

  it("generateText (chat model and completion model)", async () => {
    const r = await generateText({ model: provider()("echo"), prompt: "hi", maxRetries: 0 });
    expect(r.text).toBe("echo: hi");
    expect(r.finishReason).toBe("stop");
    expect(r.usage.outputTokens).toBe(5);
    const c = await generateText({ model: provider().completionModel("echo"), prompt: "hi", maxRetries: 0 });
    const call = fake.calls.at(-1)!;
    expect(call.endpoint).toBe("completions");
    // The AI SDK turns the prompt into a transcript ("user:\nhi\n\nassistant:\n"); the fake echoes it.
    expect(c.text).toBe(`echo: ${String(call.body.prompt)}`);
    expect(call.body.prompt).toContain("hi");
  });

  it("streamText: every token, finish reason and usage, no error", async () => {
    await expectWholeStream(provider()("echo"));
  });

  it("embed", async () => {
    const r = await embed({ model: provider().embeddingModel("echo"), value: "bb", maxRetries: 0 });
    r.embedding.forEach((v, i) => expect(v).toBeCloseTo(fakeEmbedding("bb")[i]!, 6));
  });

  it("abort: the stream stops and the backend call is cancelled", async () => {
    const ac = new AbortController();
    const r = streamText({
      model: provider()("slow-stream"),
      prompt: "x",
      abortSignal: ac.signal,
      maxRetries: 0,
      onError: () => undefined,
    });
    const call = await openSlowCall("chat/completions");
    let seen = 0;
    await rejection(
      (async () => {
        for await (const _t of r.textStream) if (++seen === 3) ac.abort();
        throw new Error("ended"); // an ended stream counts too: the point is the backend cancel
      })(),
    );
    expect(await until(() => call.aborted, 10_000)).toBe(true);
    expect(call.finished).toBe(false);
    expect(seen).toBeLessThan(2000);
  });

  it("errors reach the caller as APICallError with the gateway's status and message", async () => {
    const e = await rejection(
      generateText({ model: provider(KEYS.llamaOnly)("echo"), prompt: "x", maxRetries: 0 }),
    );
    expect(APICallError.isInstance(e)).toBe(true);
    expect((e as APICallError).statusCode).toBe(403);
    expect((e as APICallError).message).toMatch(/may not use model 'echo'/);
  });
});

describe("Vercel AI SDK with @ai-sdk/openai (default model: the Responses API)", () => {
  const provider = (key: string = KEYS.alice) => createOpenAI({ baseURL: `${gw.base}/v1`, apiKey: key });

  it("generateText", async () => {
    const r = await generateText({
      model: provider()("echo"),
      prompt: "hi",
      maxOutputTokens: 16,
      maxRetries: 0,
    });
    expect(r.text).toBe("echo: hi");
    expect(r.finishReason).toBe("stop");
    expect(r.usage.outputTokens).toBe(5);
    expect(fake.calls.at(-1)).toMatchObject({ endpoint: "responses", body: { max_output_tokens: 16 } });
  });

  it("streamText", async () => {
    await expectWholeStream(provider()("echo"));
    expect(fake.calls.at(-1)).toMatchObject({ endpoint: "responses", stream: true });
  });

  it("abort: the stream stops and the backend call is cancelled", async () => {
    const ac = new AbortController();
    const r = streamText({
      model: provider()("slow-stream"),
      prompt: "x",
      abortSignal: ac.signal,
      maxRetries: 0,
      onError: () => undefined,
    });
    const call = await openSlowCall("responses");
    let seen = 0;
    await rejection(
      (async () => {
        for await (const _t of r.textStream) if (++seen === 3) ac.abort();
        throw new Error("ended");
      })(),
    );
    expect(await until(() => call.aborted, 10_000)).toBe(true);
    expect(call.finished).toBe(false);
  });

  it("a refused key is an APICallError with status 403", async () => {
    const e = await rejection(
      generateText({ model: provider(KEYS.llamaOnly)("echo"), prompt: "x", maxRetries: 0 }),
    );
    expect(APICallError.isInstance(e)).toBe(true);
    expect((e as APICallError).statusCode).toBe(403);
  });
});
