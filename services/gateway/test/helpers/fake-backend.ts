import { EventEmitter } from "node:events";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";

/** The OpenAI-compatible endpoints the fake serves, as paths below its `/v1`. */
export type FakeEndpoint = "chat/completions" | "completions" | "embeddings" | "responses";
const ENDPOINTS: ReadonlySet<string> = new Set([
  "chat/completions",
  "completions",
  "embeddings",
  "responses",
]);

export interface BackendCall {
  endpoint: FakeEndpoint;
  model: string;
  stream: boolean;
  body: Record<string, unknown>;
  /** For stream calls: true once the client (the gateway) went away before the stream ended. */
  aborted: boolean;
  /** For "firehose": whether res.write() ever returned false (the gateway applied backpressure). */
  backpressured: boolean;
  bytesWritten: number;
  finished: boolean;
  /** The request's headers (e.g. the trace context the gateway propagated). */
  headers: IncomingMessage["headers"];
}

/** The text a request asks about: the last chat message, the prompt, or the last input item's text. */
export function promptText(body: Record<string, unknown>): string {
  const text = (v: unknown): string => {
    if (typeof v === "string") return v;
    if (Array.isArray(v)) {
      const last: unknown = v.at(-1);
      if (typeof last === "string") return last;
      if (typeof last === "object" && last !== null) {
        const o = last as { content?: unknown; text?: unknown };
        if (o.content !== undefined) return text(o.content);
        if (typeof o.text === "string") return o.text;
      }
    }
    return "";
  };
  return text(body.messages ?? body.prompt ?? body.input);
}

/** A deterministic embedding of `s` (8 dimensions, or `dims`). */
export function fakeEmbedding(s: string, dims = 8): number[] {
  return Array.from({ length: dims }, (_, i) => ((s.length + i) % 7) / 8);
}

export class FakeBackend extends EventEmitter {
  readonly calls: BackendCall[] = [];
  flakyFailures = 2;
  slowMs = 1500;
  tokens = 5;
  private server: Server;
  private hungOnce = false;
  private counter = 0;
  port = 0;

  constructor() {
    super();
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 5000;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/v1`;
  }

  callsFor(model: string): BackendCall[] {
    return this.calls.filter((c) => c.model === model);
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    const a = this.server.address();
    this.port = typeof a === "object" && a ? a.port : 0;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** Waits for the next call matching `pred` (bounded). */
  waitForCall(pred: (c: BackendCall) => boolean, timeoutMs = 10_000): Promise<BackendCall> {
    const existing = this.calls.find(pred);
    if (existing) return Promise.resolve(existing);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.off("call", on);
        reject(new Error("backend call did not arrive in time"));
      }, timeoutMs);
      const on = (c: BackendCall) => {
        if (!pred(c)) return;
        clearTimeout(t);
        this.off("call", on);
        resolve(c);
      };
      this.on("call", on);
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse) {
    const endpoint = req.url?.startsWith("/v1/") ? req.url.slice(4) : "";
    if (req.method !== "POST" || !ENDPOINTS.has(endpoint)) {
      this.json(res, 404, {
        error: { message: `no route ${req.url}`, type: "invalid_request_error", code: null, param: null },
      });
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
      const call: BackendCall = {
        endpoint: endpoint as FakeEndpoint,
        model: String(body.model),
        stream: body.stream === true && endpoint !== "embeddings",
        body,
        aborted: false,
        backpressured: false,
        bytesWritten: 0,
        finished: false,
        headers: req.headers,
      };
      this.calls.push(call);
      res.on("close", () => {
        if (!res.writableFinished) call.aborted = true;
      });
      this.emit("call", call);
      this.respond(call, res);
    });
  }

  private json(res: ServerResponse, status: number, v: unknown) {
    const s = JSON.stringify(v);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(s) });
    res.end(s);
  }

  private lastContent(call: BackendCall): string {
    return promptText(call.body);
  }

  private error(res: ServerResponse, status: number, type: string, code: string | null, message: string) {
    this.json(res, status, { error: { message, type, code, param: null } });
  }

  /** A successful non-streaming answer in the endpoint's shape. */
  private echo(call: BackendCall, res: ServerResponse) {
    const n = ++this.counter;
    const text = `echo: ${this.lastContent(call)}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 };
    switch (call.endpoint) {
      case "chat/completions":
        this.json(res, 200, {
          id: `chatcmpl-${n}`,
          object: "chat.completion",
          created,
          model: call.model,
          choices: [
            {
              index: 0,
              message: { role: "assistant", content: text },
              logprobs: null,
              finish_reason: "stop",
            },
          ],
          usage,
        });
        break;
      case "completions":
        this.json(res, 200, {
          id: `cmpl-${n}`,
          object: "text_completion",
          created,
          model: call.model,
          choices: [{ index: 0, text, logprobs: null, finish_reason: "stop" }],
          usage,
        });
        break;
      case "embeddings":
        this.embeddings(call, res);
        break;
      case "responses":
        this.json(res, 200, this.response(call, `resp_${n}`, "completed", text));
        break;
    }
    call.finished = true;
  }

  private embeddings(call: BackendCall, res: ServerResponse) {
    const input = call.body.input;
    const inputs = Array.isArray(input) ? input : [input];
    const dims = typeof call.body.dimensions === "number" ? call.body.dimensions : 8;
    const base64 = call.body.encoding_format === "base64";
    this.json(res, 200, {
      object: "list",
      model: call.model,
      data: inputs.map((v, index) => {
        const e = fakeEmbedding(typeof v === "string" ? v : JSON.stringify(v), dims);
        return {
          object: "embedding",
          index,
          embedding: base64 ? Buffer.from(new Float32Array(e).buffer).toString("base64") : e,
        };
      }),
      usage: { prompt_tokens: inputs.length, total_tokens: inputs.length },
    });
  }

  /** A Responses API `response` object with one output message holding `text` (none while in progress). */
  private response(
    call: BackendCall,
    id: string,
    status: "in_progress" | "completed",
    text: string,
    tokens = 5,
  ) {
    const done = status === "completed";
    return {
      id,
      object: "response",
      created_at: Math.floor(Date.now() / 1000),
      status,
      model: call.model,
      output: done ? [this.message(id, "completed", text)] : [],
      error: null,
      incomplete_details: null,
      instructions: call.body.instructions ?? null,
      max_output_tokens: call.body.max_output_tokens ?? null,
      metadata: {},
      parallel_tool_calls: true,
      previous_response_id: null,
      temperature: call.body.temperature ?? null,
      tool_choice: "auto",
      tools: [],
      top_p: call.body.top_p ?? null,
      truncation: "disabled",
      usage: done
        ? {
            input_tokens: 3,
            input_tokens_details: { cached_tokens: 0 },
            output_tokens: tokens,
            output_tokens_details: { reasoning_tokens: 0 },
            total_tokens: 3 + tokens,
          }
        : null,
    };
  }

  private message(responseId: string, status: "in_progress" | "completed", text: string | null) {
    return {
      id: `msg_${responseId}`,
      type: "message",
      role: "assistant",
      status,
      content: text === null ? [] : [{ type: "output_text", text, annotations: [], logprobs: [] }],
    };
  }

  private respond(call: BackendCall, res: ServerResponse) {
    switch (call.model) {
      case "echo-400":
        return this.json(res, 400, {
          error: {
            message: `Invalid prompt: '${this.lastContent(call)}' is too long`,
            type: "BadRequestError",
            code: "context_length_exceeded",
          },
        });
      case "echo-500":
        return this.json(res, 500, {
          error: { message: `crashed while reading '${this.lastContent(call)}'` },
        });
      case "rate-limited": {
        const s = JSON.stringify({
          error: { message: "slow down", type: "rate_limit_error", code: "rate_limit_exceeded", param: null },
        });
        res.writeHead(429, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(s),
          "retry-after": "7",
          "x-ratelimit-limit-requests": "60",
          "x-ratelimit-remaining-requests": "0",
          "x-ratelimit-reset-requests": "7s",
          "x-internal-secret": "not-for-clients",
        });
        res.end(s);
        return;
      }
      case "html-502":
        res.writeHead(502, { "content-type": "text/html" });
        res.end("<html><body><h1>502 Bad Gateway</h1></body></html>");
        return;
      case "legacy-400":
        return this.json(res, 400, {
          object: "error",
          message: "max_tokens is too large",
          type: "BadRequestError",
          param: null,
          code: 400,
        });
      case "bad-422":
        return this.error(res, 422, "invalid_request_error", "unprocessable", "cannot process this input");
      case "not-found-404":
        return this.error(
          res,
          404,
          "invalid_request_error",
          "model_not_found",
          "no such model on the backend",
        );
      case "auth-401":
        return this.error(res, 401, "authentication_error", "invalid_api_key", "backend key rejected");
      case "forbidden-403":
        return this.error(res, 403, "permission_error", "forbidden", "backend refused");
      case "fail-500":
        return this.json(res, 500, { error: { message: "the model crashed" } });
      case "bad-400":
        return this.json(res, 400, { error: { message: "context length exceeded" } });
      case "flaky":
        if (this.callsFor("flaky").length <= this.flakyFailures) {
          return this.json(res, 503, { error: { message: "warming up" } });
        }
        return this.echo(call, res);
      case "hang-once":
        if (!this.hungOnce) {
          this.hungOnce = true;
          return; // never answers; the "close" listener records the abort
        }
        return this.echo(call, res);
      case "slow":
        setTimeout(() => !res.destroyed && this.echo(call, res), this.slowMs);
        return;
      case "firehose":
        return this.firehose(call, res);
    }
    if (!call.stream) return this.echo(call, res);
    // slow-stream: ~20 s, for streams a test ends itself; short-stream: ~1 s, for one that must finish.
    const total = call.model === "slow-stream" ? 2000 : call.model === "short-stream" ? 50 : this.tokens;
    const delay = call.model === "slow-stream" ? 10 : call.model === "short-stream" ? 20 : 0;
    const frames = this.streamFrames(call, total);
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const next = () => {
      if (res.destroyed) return;
      const f = frames.next();
      if (f.done) {
        res.end();
        call.finished = true;
        return;
      }
      res.write(f.value);
      if (delay) setTimeout(next, delay);
      else setImmediate(next);
    };
    next();
  }

  /** The SSE frames of a stream of `total` tokens, in the endpoint's event sequence. */
  private *streamFrames(call: BackendCall, total: number): Generator<string> {
    const data = (v: unknown) => `data: ${JSON.stringify(v)}\n\n`;
    const n = ++this.counter;
    const created = Math.floor(Date.now() / 1000);
    const includeUsage = (call.body.stream_options as { include_usage?: unknown } | undefined)?.include_usage;
    const usage = { prompt_tokens: 3, completion_tokens: total, total_tokens: 3 + total };
    if (call.endpoint === "chat/completions") {
      const chunk = (choices: unknown[], extra: object = {}) =>
        data({
          id: `chatcmpl-${n}`,
          object: "chat.completion.chunk",
          created,
          model: call.model,
          choices,
          ...extra,
        });
      for (let i = 0; i < total; i++) {
        const delta = i === 0 ? { role: "assistant", content: `tok${i} ` } : { content: `tok${i} ` };
        yield chunk([{ index: 0, delta, logprobs: null, finish_reason: null }]);
      }
      yield chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }]);
      if (includeUsage === true) yield chunk([], { usage });
      yield "data: [DONE]\n\n";
      return;
    }
    if (call.endpoint === "completions") {
      const chunk = (choices: unknown[], extra: object = {}) =>
        data({ id: `cmpl-${n}`, object: "text_completion", created, model: call.model, choices, ...extra });
      for (let i = 0; i < total; i++) {
        yield chunk([{ index: 0, text: `tok${i} `, logprobs: null, finish_reason: null }]);
      }
      yield chunk([{ index: 0, text: "", logprobs: null, finish_reason: "stop" }]);
      if (includeUsage === true) yield chunk([], { usage });
      yield "data: [DONE]\n\n";
      return;
    }
    // Responses API: named events, each with its type and a sequence number; no [DONE].
    const id = `resp_${n}`;
    const itemId = `msg_${id}`;
    let seq = 0;
    const event = (type: string, v: object) =>
      `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...v })}\n\n`;
    yield event("response.created", { response: this.response(call, id, "in_progress", "") });
    yield event("response.in_progress", { response: this.response(call, id, "in_progress", "") });
    yield event("response.output_item.added", {
      output_index: 0,
      item: this.message(id, "in_progress", null),
    });
    const part = (text: string) => ({ type: "output_text", text, annotations: [], logprobs: [] });
    const at = { item_id: itemId, output_index: 0, content_index: 0 };
    yield event("response.content_part.added", { ...at, part: part("") });
    let text = "";
    for (let i = 0; i < total; i++) {
      text += `tok${i} `;
      yield event("response.output_text.delta", { ...at, delta: `tok${i} `, logprobs: [] });
    }
    yield event("response.output_text.done", { ...at, text, logprobs: [] });
    yield event("response.content_part.done", { ...at, part: part(text) });
    yield event("response.output_item.done", { output_index: 0, item: this.message(id, "completed", text) });
    yield event("response.completed", { response: this.response(call, id, "completed", text, total) });
  }

  private firehose(call: BackendCall, res: ServerResponse) {
    res.writeHead(200, { "content-type": "text/event-stream" });
    const payload = Buffer.from(`data: ${"x".repeat(64 * 1024 - 9)}\n\n`);
    const limit = 64 * 1024 * 1024;
    const pump = () => {
      while (!res.destroyed && call.bytesWritten < limit) {
        call.bytesWritten += payload.length;
        if (!res.write(payload)) {
          call.backpressured = true;
          res.once("drain", pump);
          return;
        }
      }
      if (!res.destroyed) {
        res.end("data: [DONE]\n\n");
        call.finished = true;
      }
    };
    pump();
  }
}
