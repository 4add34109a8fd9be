import { EventEmitter } from "node:events";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";

export interface ModelCall {
  readonly model: string;
  readonly stream: boolean;
  readonly prompt: string;
  /** Stream chunks written so far. */
  written: number;
  /** The stream reached its [DONE]. */
  finished: boolean;
  /** The caller (the gateway) went away before the answer was complete. */
  aborted: boolean;
}

/**
 * A fake OpenAI-compatible model backend (POST /v1/chat/completions) on 127.0.0.1 for the browser
 * test, after services/gateway/test/helpers/fake-backend.ts, with a stream that is slow enough to watch
 * (`tokenDelayMs` between chunks) and ends as real servers end it: a last chunk with finish_reason
 * "stop", then [DONE].
 *  - any model, streaming: the words of {@link answerFor} one chunk at a time
 *  - any model, not streaming: `echo: <last message>` (the gateway's workers call it so for jobs)
 *  - "fail-500": HTTP 500 with an OpenAI-style error body
 */
export class ModelBackend extends EventEmitter {
  readonly calls: ModelCall[] = [];
  tokenDelayMs = 150;
  private readonly server: Server;
  port = 0;

  constructor() {
    super();
    this.server = createServer((req, res) => this.handle(req, res));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/v1`;
  }

  /** The whole streamed answer to a prompt (words joined by spaces). */
  static answerFor(prompt: string): string {
    return `Streaming reply to "${prompt}": one two three four five six seven eight nine ten, done.`;
  }

  static tokensFor(prompt: string): string[] {
    return ModelBackend.answerFor(prompt)
      .split(" ")
      .map((w, i) => (i === 0 ? w : ` ${w}`));
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

  /** The next call matching `pred` (already made, or within timeoutMs). */
  waitForCall(pred: (c: ModelCall) => boolean, timeoutMs = 15_000): Promise<ModelCall> {
    const hit = this.calls.find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.off("call", on);
        reject(new Error("the model backend got no matching call in time"));
      }, timeoutMs);
      const on = (c: ModelCall) => {
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
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        model?: string;
        stream?: boolean;
        messages?: { content: unknown }[];
      };
      const last = body.messages?.at(-1)?.content;
      const call: ModelCall = {
        model: String(body.model),
        stream: body.stream === true,
        prompt: typeof last === "string" ? last : JSON.stringify(last),
        written: 0,
        finished: false,
        aborted: false,
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

  private respond(call: ModelCall, res: ServerResponse) {
    if (call.model === "fail-500")
      return this.json(res, 500, { error: { message: "the model crashed", type: "server_error" } });
    if (!call.stream) {
      call.finished = true;
      return this.json(res, 200, {
        id: "chatcmpl-job",
        object: "chat.completion",
        model: call.model,
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: `echo: ${call.prompt}` },
            finish_reason: "stop",
          },
        ],
        usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 },
      });
    }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const tokens = ModelBackend.tokensFor(call.prompt);
    const chunk = (delta: Record<string, unknown>, finish: string | null) =>
      `data: ${JSON.stringify({
        id: "chatcmpl-stream",
        object: "chat.completion.chunk",
        model: call.model,
        choices: [{ index: 0, delta, finish_reason: finish }],
      })}\n\n`;
    const next = () => {
      if (res.destroyed) return;
      if (call.written >= tokens.length) {
        res.end(`${chunk({}, "stop")}data: [DONE]\n\n`);
        call.finished = true;
        return;
      }
      res.write(chunk({ content: tokens[call.written] }, null));
      call.written++;
      setTimeout(next, this.tokenDelayMs);
    };
    res.write(chunk({ role: "assistant", content: "" }, null));
    next();
  }
}
