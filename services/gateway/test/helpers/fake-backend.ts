import { EventEmitter } from "node:events";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";

export interface BackendCall {
  model: string;
  stream: boolean;
  body: Record<string, unknown>;
  /** For stream calls: true once the client (the gateway) went away before the stream ended. */
  aborted: boolean;
  /** For "firehose": whether res.write() ever returned false (the gateway applied backpressure). */
  backpressured: boolean;
  bytesWritten: number;
  finished: boolean;
}

/**
 * A fake OpenAI-compatible backend (POST /v1/chat/completions) on 127.0.0.1, behaving by model name:
 *  - any model: non-stream → echo of the last message; stream → `tokens` SSE chunks then [DONE]
 *  - "slow-stream": 2000 tokens, one every 10 ms (for cancellation tests)
 *  - "firehose": 64 KiB SSE chunks, up to 64 MiB, honouring backpressure (for backpressure tests)
 *  - "fail-500": always HTTP 500;  "bad-400": always HTTP 400
 *  - "flaky": HTTP 503 for the first `flakyFailures` calls, then echo
 *  - "hang-once": the first call never answers (until the client goes away), later calls echo
 *  - "slow": answers after `slowMs`
 *  - "echo-400" / "echo-500": HTTP 400 / 500 whose error message quotes the last message, as real
 *    backends do ("... your prompt '...' is too long")
 *  - "rate-limited": HTTP 429 with Retry-After and x-ratelimit-* headers
 *  - "html-502": HTTP 502 with an HTML page (a proxy in front of the model); "legacy-400": HTTP 400
 *    in vLLM's older flat error shape
 * Emits "call" with each BackendCall when a request arrives.
 */
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
    if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
      const call: BackendCall = {
        model: String(body.model),
        stream: body.stream === true,
        body,
        aborted: false,
        backpressured: false,
        bytesWritten: 0,
        finished: false,
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

  private echo(call: BackendCall, res: ServerResponse) {
    const messages = call.body.messages as { content: string }[];
    const n = ++this.counter;
    this.json(res, 200, {
      id: `chatcmpl-${n}`,
      object: "chat.completion",
      model: call.model,
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: `echo: ${messages.at(-1)?.content ?? ""}` },
          finish_reason: "stop",
        },
      ],
      usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 },
    });
    call.finished = true;
  }

  private lastContent(call: BackendCall): string {
    const messages = call.body.messages as { content: string }[] | undefined;
    return messages?.at(-1)?.content ?? "";
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
    const total = call.model === "slow-stream" ? 2000 : this.tokens;
    const delay = call.model === "slow-stream" ? 10 : 0;
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    let i = 0;
    const next = () => {
      if (res.destroyed) return;
      if (i >= total) {
        res.end("data: [DONE]\n\n");
        call.finished = true;
        return;
      }
      const chunk = {
        id: "chatcmpl-stream",
        object: "chat.completion.chunk",
        model: call.model,
        choices: [{ index: 0, delta: { content: `tok${i} ` }, finish_reason: null }],
      };
      i++;
      res.write(`data: ${JSON.stringify(chunk)}\n\n`);
      if (delay) setTimeout(next, delay);
      else setImmediate(next);
    };
    next();
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
