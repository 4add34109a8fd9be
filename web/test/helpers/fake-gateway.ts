import { type IncomingHttpHeaders, type Server, type ServerResponse, createServer } from "node:http";

export interface GatewayCall {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: unknown;
  /** Resolves when the caller went away before the answer was complete (the app cancelled it). */
  readonly abandoned: Promise<void>;
  /** True once the answer was written completely. */
  completed: boolean;
}

export type Handler = (call: GatewayCall, res: ServerResponse) => void;

/**
 * A stand-in for the inference gateway on 127.0.0.1, for the route handlers' unit tests: each test
 * sets `handler` to answer as the gateway would (its JSON errors, SSE streams, jobs), and reads back
 * what the app sent in `calls`.
 */
export class FakeGateway {
  readonly calls: GatewayCall[] = [];
  handler: Handler = (_call, res) => void res.writeHead(404).end();
  private readonly server: Server;
  private port = 0;

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let abandon: () => void = () => undefined;
        const call: GatewayCall = {
          method: req.method ?? "",
          path: req.url ?? "",
          headers: req.headers,
          body: text ? (JSON.parse(text) as unknown) : undefined,
          abandoned: new Promise<void>((r) => (abandon = r)),
          completed: false,
        };
        res.on("finish", () => (call.completed = true));
        res.on("close", () => {
          if (!res.writableFinished) abandon();
        });
        this.calls.push(call);
        this.handler(call, res);
      });
    });
  }

  /** The base URL, as GATEWAY_URL holds it. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
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
}

/** The gateway's error answer (services/gateway/README.md, "Errors"). */
export function gatewayError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify({ error: { type: "error", code, message } }));
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** One OpenAI chat.completion.chunk SSE event. */
export function sseChunk(content: string | null, finish: string | null = null): string {
  const delta = content === null ? {} : { content };
  return `data: ${JSON.stringify({
    id: "chatcmpl-1",
    object: "chat.completion.chunk",
    model: "m",
    choices: [{ index: 0, delta, finish_reason: finish }],
  })}\n\n`;
}

export function startSse(res: ServerResponse): void {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
}

/** A complete, well-formed stream of `tokens`. */
export function streamTokens(res: ServerResponse, tokens: string[]): void {
  startSse(res);
  for (const t of tokens) res.write(sseChunk(t));
  res.end(`${sseChunk(null, "stop")}data: [DONE]\n\n`);
}
