/**
 * Logs and dead letters never contain prompt, completion or backend body text. A canary prompt goes
 * through every path that fails or logs (jobs the backend rejects while quoting the prompt, retried
 * and dead-lettered jobs, relayed errors and streams, malformed bodies), with both roles running as
 * real processes at the most verbose log level; the canary must appear in no output line and no
 * stored dead letter.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type GatewayProcess, spawnGateway, waitForHttp200 } from "./helpers/child";
import { FakeBackend } from "./helpers/fake-backend";
import { KEYS, KEY_ENTRIES, type ApiJson, auth, natsConnect } from "./helpers/gateway";
import { type NatsServer, freePort, startNatsServer } from "./helpers/nats-server";

let nats: NatsServer;
let backend: FakeBackend;
const children: GatewayProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), "gateway-canary-"));

beforeAll(async () => {
  nats = await startNatsServer();
  backend = await new FakeBackend().start();
});

afterAll(async () => {
  for (const c of children) if (c.proc.exitCode === null) c.proc.kill("SIGKILL");
  await backend?.close();
  await nats?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const CANARY = "CANARY-7f3e9b-do-not-log";

describe("a canary prompt", () => {
  it("appears in no log line of either role and in no stored dead letter", async () => {
    const keysFile = join(dir, "keys.json");
    writeFileSync(keysFile, JSON.stringify({ keys: KEY_ENTRIES }));
    const [port, apiMetrics, workerMetrics] = [await freePort(), await freePort(), await freePort()];
    const common = {
      NATS_URL: nats.url,
      BACKEND_URL: backend.url,
      HOST: "127.0.0.1",
      LOG_LEVEL: "trace",
      WORKER_MAX_ATTEMPTS: "2",
      WORKER_BACKOFF_BASE_MS: "50",
      WORKER_BACKOFF_MAX_MS: "100",
      WORKER_ACK_WAIT_SECONDS: "2",
    };
    const api = spawnGateway(["--role", "api"], {
      ...common,
      API_KEYS_FILE: keysFile,
      PORT: String(port),
      METRICS_PORT: String(apiMetrics),
    });
    const worker = spawnGateway(["--role", "worker"], { ...common, METRICS_PORT: String(workerMetrics) });
    children.push(api, worker);
    await waitForHttp200(`http://127.0.0.1:${apiMetrics}/readyz`, 30_000, api);
    await waitForHttp200(`http://127.0.0.1:${workerMetrics}/readyz`, 30_000, worker);
    const base = `http://127.0.0.1:${port}`;

    // Jobs: rejected at once (400 quoting the prompt), retried then dead-lettered (500 quoting it),
    // and one that succeeds (its completion repeats the prompt).
    const ids: string[] = [];
    for (const model of ["echo-400", "echo-500", "echo"]) {
      const r = await fetch(`${base}/v1/jobs`, {
        method: "POST",
        headers: auth(KEYS.alice),
        body: JSON.stringify({ model, input: `please process ${CANARY}` }),
      });
      expect(r.status).toBe(202);
      ids.push(((await r.json()) as ApiJson).id);
    }
    // Relay: backend errors quoting the prompt, a stream, and bodies the gateway refuses itself.
    for (const body of [
      { model: "echo-400", messages: [{ role: "user", content: CANARY }] },
      { model: "echo-500", messages: [{ role: "user", content: CANARY }] },
      { model: "echo", stream: true, messages: [{ role: "user", content: CANARY }] },
    ]) {
      const r = await fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: auth(KEYS.alice),
        body: JSON.stringify(body),
      });
      await r.text();
    }
    for (const raw of [`{"model":"echo","messages":"${CANARY}`, `{"model":"${CANARY}","model":"x"}`]) {
      for (const path of ["/v1/chat/completions", "/v1/jobs"]) {
        const r = await fetch(`${base}${path}`, { method: "POST", headers: auth(KEYS.alice), body: raw });
        expect(r.status).toBe(400);
        await r.text();
      }
    }

    // Wait for the jobs to end.
    const deadline = Date.now() + 20_000;
    const finals: ApiJson[] = [];
    for (const id of ids) {
      for (;;) {
        const r = await fetch(`${base}/v1/jobs/${id}`, { headers: auth(KEYS.alice) });
        const j = (await r.json()) as ApiJson;
        if (["succeeded", "failed"].includes(j.status)) {
          finals.push(j);
          break;
        }
        if (Date.now() > deadline) throw new Error(`job ${id} did not finish: ${JSON.stringify(j)}`);
        await new Promise((res) => setTimeout(res, 100));
      }
    }
    expect(finals.map((j) => j.status)).toEqual(["failed", "failed", "succeeded"]);
    expect(finals[1]!.attempts).toBe(2);

    // Every dead letter stored.
    const nc = await natsConnect(nats.url);
    try {
      const jsm = await nc.jetstreamManager();
      const info = await jsm.streams.info("GATEWAY_JOBS_DLQ");
      expect(info.state.messages).toBe(2);
      for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
        const m = await jsm.streams.getMessage("GATEWAY_JOBS_DLQ", { seq });
        expect(new TextDecoder().decode(m.data)).not.toContain(CANARY);
      }
    } finally {
      await nc.close();
    }

    // Every log line, with both processes stopped (flushed).
    api.proc.kill("SIGTERM");
    worker.proc.kill("SIGTERM");
    await Promise.all([api.exited, worker.exited]);
    const lines = `${api.output()}\n${worker.output()}`.split("\n").filter(Boolean);
    expect(lines.some((l) => l.includes("job dead-lettered"))).toBe(true);
    expect(lines.some((l) => l.includes("job attempt failed, retrying"))).toBe(true);
    expect(lines.filter((l) => l.includes(CANARY))).toEqual([]);
    // Nor the failed jobs' records: their reasons say what happened without the backend's text.
    expect(JSON.stringify(finals.slice(0, 2))).not.toContain(CANARY);
    expect(finals[0]!.error.reason).toMatch(/HTTP 400 \(BadRequestError, context_length_exceeded\)/);
  });
});
