/**
 * Traces: both roles run as real processes exporting to an OTLP/HTTP receiver on loopback (the
 * exporter sends OTLP JSON). A chat completion continues the caller's `traceparent`, the backend gets
 * the gateway's client span as parent, a job's worker spans continue the submitting request's trace
 * (through the NATS message headers), and log lines written inside requests and jobs carry the ids.
 * With no endpoint set nothing is traced and no trace header reaches the backend.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { samplerFromEnv, tracesUrl, tracingFromEnv } from "../src/tracing";
import { type GatewayProcess, spawnGateway, waitForHttp200 } from "./helpers/child";
import { FakeBackend } from "./helpers/fake-backend";
import {
  KEYS,
  KEY_ENTRIES,
  type ApiJson,
  type TestGateway,
  auth,
  startApi,
  testConfig,
  waitForJob,
} from "./helpers/gateway";
import { type NatsServer, freePort, startNatsServer } from "./helpers/nats-server";

/** A span as OTLP JSON has it (the JS exporter writes ids as hex). */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: { stringValue?: string; intValue?: string | number } }[];
  service: string;
}
const KIND = { server: 2, client: 3, producer: 4, consumer: 5 };

/** An OTLP/HTTP traces receiver: keeps every span it is sent, with its resource's service.name. */
class OtlpReceiver {
  readonly spans: OtlpSpan[] = [];
  readonly bodies: string[] = [];
  contentTypes = new Set<string>();
  private server: Server = createServer((req, res) => this.handle(req, res));

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    return this;
  }
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  private handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/v1/traces") {
        res.writeHead(404).end();
        return;
      }
      this.contentTypes.add(String(req.headers["content-type"]));
      const text = Buffer.concat(chunks).toString("utf8");
      this.bodies.push(text);
      const body = JSON.parse(text) as {
        resourceSpans: {
          resource: { attributes: OtlpSpan["attributes"] };
          scopeSpans: { spans: Omit<OtlpSpan, "service">[] }[];
        }[];
      };
      for (const rs of body.resourceSpans) {
        const service = rs.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue ?? "";
        for (const ss of rs.scopeSpans) for (const s of ss.spans) this.spans.push({ ...s, service });
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  }
  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

const attr = (s: OtlpSpan, key: string) => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue !== undefined ? Number(v.intValue) : undefined);
};

const hex = (n: number) =>
  Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join("");

/** Parses `00-<trace>-<span>-<flags>`. */
function parseTraceparent(v: unknown): { traceId: string; spanId: string } {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/.exec(String(v));
  if (!m) throw new Error(`not a traceparent: ${String(v)}`);
  return { traceId: m[1]!, spanId: m[2]! };
}

const PROMPT = "TRACE-CANARY-41c2-prompt";

let nats: NatsServer;
let backend: FakeBackend;
let receiver: OtlpReceiver;
const children: GatewayProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), "gateway-tracing-"));

beforeAll(async () => {
  nats = await startNatsServer();
  backend = await new FakeBackend().start();
  receiver = await new OtlpReceiver().start();
});

afterAll(async () => {
  for (const c of children) if (c.proc.exitCode === null) c.proc.kill("SIGKILL");
  await receiver?.close();
  await backend?.close();
  await nats?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe("tracing on (OTLP endpoint set)", () => {
  it("continues the caller's trace through the relay and the job queue, and into the logs", async () => {
    const keysFile = join(dir, "keys.json");
    writeFileSync(keysFile, JSON.stringify({ keys: KEY_ENTRIES }));
    const [port, apiMetrics, workerMetrics] = [await freePort(), await freePort(), await freePort()];
    const common = {
      NATS_URL: nats.url,
      BACKEND_URL: backend.url,
      HOST: "127.0.0.1",
      LOG_LEVEL: "debug",
      MODELS: "echo,flaky",
      WORKER_MAX_ATTEMPTS: "4",
      WORKER_BACKOFF_BASE_MS: "50",
      WORKER_BACKOFF_MAX_MS: "100",
      WORKER_ACK_WAIT_SECONDS: "2",
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: "100",
    };
    const api = spawnGateway(["--role", "api"], {
      ...common,
      OTEL_SERVICE_NAME: "gateway-api",
      API_KEYS_FILE: keysFile,
      PORT: String(port),
      METRICS_PORT: String(apiMetrics),
    });
    const worker = spawnGateway(["--role", "worker"], {
      ...common,
      OTEL_SERVICE_NAME: "gateway-worker",
      METRICS_PORT: String(workerMetrics),
    });
    children.push(api, worker);
    await waitForHttp200(`http://127.0.0.1:${apiMetrics}/readyz`, 30_000, api);
    await waitForHttp200(`http://127.0.0.1:${workerMetrics}/readyz`, 30_000, worker);
    const base = `http://127.0.0.1:${port}`;

    // A chat completion inside the caller's trace.
    const chatTrace = hex(32);
    const callerSpan = hex(16);
    const r = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { ...auth(KEYS.alice), traceparent: `00-${chatTrace}-${callerSpan}-01`, tracestate: "k=v" },
      body: JSON.stringify({ model: "echo", messages: [{ role: "user", content: PROMPT }] }),
    });
    expect(r.status).toBe(200);
    await r.text();
    // A model the deployment does not serve: its name is never an attribute.
    const other = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: auth(KEYS.alice),
      body: JSON.stringify({ model: "echo-400", messages: [{ role: "user", content: PROMPT }] }),
    });
    expect(other.status).toBe(400);
    await other.text();

    // A job that fails twice (retried) and then succeeds, in another trace.
    const jobTrace = hex(32);
    const j = await fetch(`${base}/v1/jobs`, {
      method: "POST",
      headers: { ...auth(KEYS.alice), traceparent: `00-${jobTrace}-${hex(16)}-01` },
      body: JSON.stringify({ model: "flaky", input: PROMPT }),
    });
    expect(j.status).toBe(202);
    const jobId = ((await j.json()) as ApiJson).id;
    expect((await waitForJob(base, jobId)).status).toBe("succeeded");

    // Both processes stopped: their last spans are flushed on the way out.
    api.proc.kill("SIGTERM");
    worker.proc.kill("SIGTERM");
    expect(await Promise.all([api.exited, worker.exited])).toEqual([0, 0]);
    expect([...receiver.contentTypes]).toEqual(["application/json"]);

    // --- the relay: server span continues the caller's, the client span is its child, the backend
    // got the client span as parent, with the caller's tracestate.
    const chatCall = backend.calls.find((c) => c.endpoint === "chat/completions" && c.model === "echo")!;
    const sent = parseTraceparent(chatCall.headers.traceparent);
    expect(sent.traceId).toBe(chatTrace);
    expect(chatCall.headers.tracestate).toBe("k=v");
    const chatSpans = receiver.spans.filter((s) => s.traceId === chatTrace);
    const server = chatSpans.find((s) => s.kind === KIND.server)!;
    const client = chatSpans.find((s) => s.kind === KIND.client)!;
    expect(server).toMatchObject({ name: "POST /v1/chat/completions", parentSpanId: callerSpan });
    expect(server.service).toBe("gateway-api");
    expect(attr(server, "http.route")).toBe("/v1/chat/completions");
    expect(attr(server, "http.response.status_code")).toBe(200);
    expect(attr(server, "gen_ai.request.model")).toBe("echo");
    expect(client.parentSpanId).toBe(server.spanId);
    expect(attr(client, "http.response.status_code")).toBe(200);
    expect(sent.spanId).toBe(client.spanId);

    const otherServer = receiver.spans.find(
      (s) => s.kind === KIND.server && attr(s, "http.response.status_code") === 400,
    )!;
    expect(attr(otherServer, "gen_ai.request.model")).toBe("other");

    // --- the job: submit (producer) under the request's server span; every delivery's span
    // (consumer) under the producer, in the same trace; the worker's backend calls under those.
    const jobSpans = receiver.spans.filter((s) => s.traceId === jobTrace);
    const jobServer = jobSpans.find((s) => s.kind === KIND.server)!;
    const producer = jobSpans.find((s) => s.kind === KIND.producer)!;
    const consumers = jobSpans.filter((s) => s.kind === KIND.consumer);
    const workerClients = jobSpans.filter((s) => s.kind === KIND.client);
    expect(jobServer.name).toBe("POST /v1/jobs");
    expect(attr(jobServer, "http.response.status_code")).toBe(202);
    expect(producer).toMatchObject({ name: "job submit", parentSpanId: jobServer.spanId });
    expect(attr(producer, "gateway.job.id")).toBe(jobId);
    expect(consumers).toHaveLength(3);
    for (const c of consumers) {
      expect(c).toMatchObject({
        name: "job process",
        parentSpanId: producer.spanId,
        service: "gateway-worker",
      });
      expect(attr(c, "gateway.job.id")).toBe(jobId);
      expect(attr(c, "gen_ai.request.model")).toBe("flaky");
    }
    expect(workerClients.map((c) => attr(c, "http.response.status_code")).sort()).toEqual([200, 503, 503]);
    for (const c of workerClients) expect(consumers.map((x) => x.spanId)).toContain(c.parentSpanId);
    const flakyCalls = backend.calls.filter((c) => c.model === "flaky");
    expect(flakyCalls).toHaveLength(3);
    for (const c of flakyCalls) {
      const tp = parseTraceparent(c.headers.traceparent);
      expect(tp.traceId).toBe(jobTrace);
      expect(workerClients.map((x) => x.spanId)).toContain(tp.spanId);
    }

    // --- logs: lines written inside the job submission and inside job processing carry the ids.
    const lines = (p: GatewayProcess) =>
      p
        .output()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const queued = lines(api).find((l) => l.msg === "job queued")!;
    expect(queued).toMatchObject({ trace_id: jobTrace, span_id: jobServer.spanId, job_id: jobId });
    const retries = lines(worker).filter((l) => l.msg === "job attempt failed, retrying");
    expect(retries).toHaveLength(2);
    for (const l of retries) {
      expect(l.trace_id).toBe(jobTrace);
      expect(consumers.map((c) => c.spanId)).toContain(l.span_id);
    }
    // Lines outside any request or job have no trace ids.
    expect(lines(api).find((l) => l.msg === "api listening")).not.toHaveProperty("trace_id");

    // No prompt or completion text in any exported span.
    expect(receiver.bodies.join("\n")).not.toContain(PROMPT);
  });
});

describe("tracing off (no endpoint)", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startApi(testConfig(nats.url, backend.url));
  });
  afterAll(async () => {
    await gw?.close();
  });

  it("is not set up, and no trace header reaches the backend, not even the caller's", async () => {
    expect(tracingFromEnv({}, "api")).toBeUndefined();
    expect(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "" }, "api")).toBeUndefined();
    expect(
      tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:1", OTEL_SDK_DISABLED: "true" }, "api"),
    ).toBeUndefined();
    const before = receiver.spans.length;
    const r = await fetch(`${gw.base}/v1/chat/completions`, {
      method: "POST",
      headers: { ...auth(KEYS.alice), traceparent: `00-${hex(32)}-${hex(16)}-01` },
      body: JSON.stringify({ model: "llama", messages: [{ role: "user", content: "hi" }] }),
    });
    expect(r.status).toBe(200);
    await r.text();
    const call = backend.calls.findLast((c) => c.model === "llama")!;
    expect(call.headers).not.toHaveProperty("traceparent");
    expect(call.headers).not.toHaveProperty("tracestate");
    expect(receiver.spans.length).toBe(before);
  });
});

describe("tracing configuration", () => {
  it("reads the standard variables", () => {
    expect(tracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" })).toBe(
      "http://collector:4318/v1/traces",
    );
    expect(
      tracesUrl({
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://other:4318/custom",
      }),
    ).toBe("http://other:4318/custom");
    expect(samplerFromEnv({}).toString()).toMatch(/ParentBased/);
    expect(
      samplerFromEnv({ OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.25" }).toString(),
    ).toMatch(/0\.25/);
    expect(() => samplerFromEnv({ OTEL_TRACES_SAMPLER: "sometimes" })).toThrow(/OTEL_TRACES_SAMPLER/);
  });
});
