/**
 * POST /api/chat: the browser's conversation (useChat's UI messages) streamed through the gateway's
 * OpenAI-compatible chat completions, as an AI SDK UI message stream.
 *
 * Failures before the first token become real HTTP errors (status, Retry-After, a readable message),
 * so the browser and any proxy see what happened; failures after it (the stream cut, the backend dying
 * mid-answer) can only travel inside the stream, as its error chunk. Either way useChat surfaces them.
 */
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import {
  APICallError,
  type TextStreamPart,
  type ToolSet,
  type UIMessage,
  convertToModelMessages,
  createUIMessageStreamResponse,
  safeValidateUIMessages,
  streamText,
  toUIMessageStream,
} from "ai";
import type { GatewayConfig } from "./config";
import { AppError, fromGatewayStatus, unreachable } from "./gateway";

const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$/;
/** The gateway refuses bodies over its MAX_BODY_BYTES (256 KiB by default); fail early and clearly. */
const MAX_BODY_BYTES = 256 * 1024;
const MAX_MESSAGES = 200;

type Part = TextStreamPart<ToolSet>;

/** Parts that come before the answer starts: whatever follows them decides the HTTP status. */
const PRELUDE = new Set<Part["type"]>(["start", "start-step", "text-start", "reasoning-start", "raw"]);

/** The innermost cause's message: "other side closed" says more than "Failed to process successful response". */
function rootMessage(err: unknown): string {
  let e = err;
  for (let depth = 0; depth < 5 && e instanceof Error && e.cause !== undefined; depth++) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

const broken = (err: unknown) =>
  new AppError(
    502,
    "stream_broken",
    `The connection to the gateway broke mid-answer (${rootMessage(err).slice(0, 200)}).`,
  );

/** An error of the model call, as the user should read it and the status it deserves. */
export function chatError(cfg: GatewayConfig, err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (APICallError.isInstance(err)) {
    if (err.statusCode === undefined) return unreachable(cfg, err.cause ?? err);
    // A 2xx whose body broke while it was read: the connection dropped mid-answer.
    if (err.statusCode < 400) return broken(err);
    return fromGatewayStatus(
      err.statusCode,
      new Headers(err.responseHeaders ?? {}),
      err.responseBody ?? "",
      "chat request",
    );
  }
  // @ai-sdk/openai-compatible: the SSE body ended before a finish_reason (a proxy or the gateway cut it).
  if (err instanceof Error && /ended without a finish reason/i.test(err.message))
    return new AppError(
      502,
      "stream_cut",
      "The answer was cut off: the gateway's stream ended before the model finished.",
    );
  // A mid-stream error event of the gateway or backend ({"error": {...}} in the SSE stream).
  const event = err as { message?: unknown } | null;
  if (!(err instanceof Error) && typeof event?.message === "string")
    return new AppError(
      502,
      "backend_error",
      `The model backend failed mid-answer: ${event.message.slice(0, 300)}.`,
    );
  return broken(err);
}

async function readBody(req: Request): Promise<{ messages: UIMessage[]; model: string }> {
  const length = Number(req.headers.get("content-length") ?? "0");
  if (length > MAX_BODY_BYTES)
    throw new AppError(
      413,
      "payload_too_large",
      "The conversation is too long for the gateway; start a new chat.",
    );
  let body: unknown;
  try {
    body = await req.json();
  } catch {
    throw new AppError(400, "invalid_json", "The request body is not JSON.");
  }
  const b = body as { messages?: unknown; model?: unknown } | null;
  if (typeof b?.model !== "string" || !MODEL_ID.test(b.model))
    throw new AppError(400, "invalid_model", "Pick a model: `model` must be a model id.");
  if (!Array.isArray(b.messages) || b.messages.length === 0 || b.messages.length > MAX_MESSAGES)
    throw new AppError(400, "invalid_messages", `\`messages\` must hold 1 to ${MAX_MESSAGES} messages.`);
  const valid = await safeValidateUIMessages({ messages: b.messages });
  if (!valid.success)
    throw new AppError(400, "invalid_messages", `Invalid messages: ${valid.error.message.slice(0, 200)}`);
  return { messages: valid.data, model: b.model };
}

export async function handleChat(req: Request, cfg: GatewayConfig): Promise<Response> {
  let input: { messages: UIMessage[]; model: string };
  try {
    input = await readBody(req);
  } catch (err) {
    if (err instanceof AppError) return err.toResponse();
    throw err;
  }
  const gateway = createOpenAICompatible({
    name: "gateway",
    baseURL: `${cfg.gatewayUrl}/v1`,
    apiKey: cfg.apiKey,
    includeUsage: true,
  });
  const result = streamText({
    model: gateway.chatModel(input.model),
    messages: await convertToModelMessages(input.messages),
    // The user leaving (tab closed, page changed, Stop) aborts the request: the gateway call with it,
    // and the gateway then cancels the backend's generation.
    abortSignal: req.signal,
    // No silent retries: the gateway already rate-limits and retries jobs; a 429 or 5xx is shown at once
    // (with Retry-After) instead of after seconds of invisible backoff.
    maxRetries: 0,
    // One line per failure instead of the SDK's default dump of the whole error object.
    onError: ({ error }) => {
      const e = chatError(cfg, error);
      console.warn(`web: chat ${input.model}: ${e.code}: ${e.message}`);
    },
  });

  // Wait for the first answer part, so an error before it can still be an HTTP status.
  const reader = result.stream.getReader();
  const head: Part[] = [];
  for (;;) {
    let next: Awaited<ReturnType<typeof reader.read>>;
    try {
      next = await reader.read();
    } catch (err) {
      return chatError(cfg, err).toResponse();
    }
    if (next.done) break;
    if (next.value.type === "error") {
      await reader.cancel();
      return chatError(cfg, next.value.error).toResponse();
    }
    head.push(next.value);
    if (!PRELUDE.has(next.value.type)) break;
  }
  const stream = new ReadableStream<Part>({
    start(controller) {
      for (const part of head) controller.enqueue(part);
    },
    async pull(controller) {
      try {
        const next = await reader.read();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      } catch (error) {
        // A broken read (socket closed mid-body) becomes the stream's error chunk: the browser keeps
        // the tokens so far and gets a message instead of a reset connection.
        controller.enqueue({ type: "error", error });
        controller.close();
      }
    },
    // The browser went away: stop reading, which ends the model call.
    cancel: (reason) => reader.cancel(reason),
  });
  return createUIMessageStreamResponse({
    stream: toUIMessageStream({ stream, onError: (err) => chatError(cfg, err).message }),
    headers: { "cache-control": "no-store" },
  });
}
