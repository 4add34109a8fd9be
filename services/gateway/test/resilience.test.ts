import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type JobRecord, decodeJson } from "../src/jobs";
import { type GatewayProcess, spawnGateway, waitForHttp200 } from "./helpers/child";
import { FakeBackend } from "./helpers/fake-backend";
import {
  KEYS,
  KEY_ENTRIES,
  type TestGateway,
  auth,
  getJob,
  metricValue,
  postJob,
  startApi,
  startTestWorker,
  testConfig,
  waitForJob,
} from "./helpers/gateway";
import { type NatsServer, freePort, startNatsServer } from "./helpers/nats-server";

let nats: NatsServer;
let backend: FakeBackend;
let api: TestGateway;
const children: GatewayProcess[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  backend = await new FakeBackend().start();
  api = await startApi(testConfig(nats.url, backend.url));
});

afterAll(async () => {
  for (const c of children) if (c.proc.exitCode === null) c.proc.kill("SIGKILL");
  await api?.close();
  await backend?.close();
  await nats?.dispose();
});

async function spawnWorker(): Promise<{ p: GatewayProcess; metricsPort: number }> {
  const metricsPort = await freePort();
  const p = spawnGateway(["--role", "worker"], {
    NATS_URL: nats.url,
    BACKEND_URL: backend.url,
    HOST: "127.0.0.1",
    METRICS_PORT: String(metricsPort),
    WORKER_ACK_WAIT_SECONDS: "2",
    WORKER_CONCURRENCY: "2",
    SHUTDOWN_TIMEOUT_MS: "10000",
    LOG_LEVEL: "warn",
  });
  children.push(p);
  await waitForHttp200(`http://127.0.0.1:${metricsPort}/readyz`, 30_000, p);
  return { p, metricsPort };
}

/** Records every status written to the job's KV key from now on. */
async function watchStatuses(id: string): Promise<{ statuses: string[]; stop: () => void }> {
  const statuses: string[] = [];
  const it = await api.store.kv.watch({ key: id });
  void (async () => {
    for await (const e of it) {
      if (e.operation === "PUT") statuses.push(decodeJson<JobRecord>(e.value).status);
    }
  })();
  return { statuses, stop: () => it.stop() };
}

async function streamMessages(): Promise<number> {
  return (await api.store.jsm.streams.info(api.store.cfg.stream)).state.messages;
}

describe("a worker killed mid-job", () => {
  it("is redelivered after the ack wait and the job completes exactly once", async () => {
    const { p } = await spawnWorker();
    const r = await postJob(api.base, { model: "hang-once", input: "survive a crash" });
    expect(r.status).toBe(202);
    const id: string = r.body.id;
    const watch = await watchStatuses(id);

    const firstCall = await backend.waitForCall((c) => c.model === "hang-once");
    expect((await getJob(api.base, id)).body.status).toBe("running");
    p.proc.kill("SIGKILL");
    expect(await p.exited).toBe(null);
    expect(p.proc.signalCode).toBe("SIGKILL");

    const w = await startTestWorker(testConfig(nats.url, backend.url));
    try {
      const done = await waitForJob(api.base, id, ["succeeded", "failed"], 20_000);
      expect(done.status).toBe("succeeded");
      expect(done.result.content).toBe("echo: survive a crash");
      expect(done.attempts).toBe(2); // the dead worker's claim counts
      expect(firstCall.aborted).toBe(true); // the kill closed the backend connection
      // Wait past another ack-wait period: no further delivery may change the outcome.
      await new Promise((res) => setTimeout(res, 2500));
      expect(backend.callsFor("hang-once")).toHaveLength(2);
      expect(watch.statuses.filter((s) => s === "succeeded")).toHaveLength(1);
      expect(watch.statuses.at(-1)).toBe("succeeded");
      expect(await streamMessages()).toBe(0); // acked: gone from the work queue
      expect(
        metricValue(await w.metrics.registry.metrics(), 'gateway_job_outcomes_total{outcome="succeeded"}'),
      ).toBe(1);
    } finally {
      watch.stop();
      await w.close();
    }
  });
});

describe("a crash after the result is stored but before the ack", () => {
  it("redelivers; the next worker sees the stored result and acks without calling the backend again", async () => {
    const cfg = testConfig(nats.url, backend.url);
    let crashed = 0;
    const a = await startTestWorker(cfg, {
      id: "crashy",
      beforeAck: () => {
        crashed++;
        return Promise.reject(new Error("simulated crash before ack"));
      },
    });
    const r = await postJob(api.base, { model: "echo", input: "ack lost" });
    const id: string = r.body.id;
    const watch = await watchStatuses(id);
    const done = await waitForJob(api.base, id, ["succeeded"], 10_000);
    await a.close();
    expect(crashed).toBe(1);
    expect(done.attempts).toBe(1);
    expect(await streamMessages()).toBe(1); // never acked

    const b = await startTestWorker(cfg, { id: "healthy" });
    try {
      const deadline = Date.now() + 10_000;
      while ((await streamMessages()) > 0 && Date.now() < deadline)
        await new Promise((res) => setTimeout(res, 100));
      expect(await streamMessages()).toBe(0);
      const calls = backend.calls.filter(
        (c) => (c.body.messages as { content: string }[])[0]?.content === "ack lost",
      );
      expect(calls).toHaveLength(1);
      const final = (await getJob(api.base, id)).body;
      expect(final.status).toBe("succeeded");
      expect(final.result.content).toBe("echo: ack lost");
      expect(watch.statuses.filter((s) => s === "succeeded")).toHaveLength(1);
      const m = await b.metrics.registry.metrics();
      expect(metricValue(m, 'gateway_job_outcomes_total{outcome="duplicate"}')).toBe(1);
      expect(metricValue(m, 'gateway_job_outcomes_total{outcome="succeeded"}')).toBeUndefined();
    } finally {
      watch.stop();
      await b.close();
    }
  });
});

describe("nats-server restarted with accepted jobs pending", () => {
  it("loses none of them, and refuses (503, never 202) while the broker is down", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await postJob(api.base, { model: "echo", input: `pending ${i}` });
      expect(r.status).toBe(202);
      ids.push(r.body.id);
    }
    expect(await streamMessages()).toBe(20);

    await nats.stop();
    const downDeadline = Date.now() + 5000;
    let ready = 200;
    while (ready === 200 && Date.now() < downDeadline) {
      ready = (await fetch(`${api.opsBase}/readyz`)).status;
      if (ready === 200) await new Promise((res) => setTimeout(res, 100));
    }
    expect(ready).toBe(503);
    const refused = await postJob(api.base, { model: "echo", input: "during outage" });
    expect(refused.status).toBe(503);
    expect(refused.body.error.message).toMatch(/NOT accepted/);

    await nats.start();
    await waitForHttp200(`${api.opsBase}/readyz`, 15_000);
    expect(await streamMessages()).toBe(20);

    const w = await startTestWorker(testConfig(nats.url, backend.url));
    try {
      for (const [i, id] of ids.entries()) {
        const done = await waitForJob(api.base, id, ["succeeded", "failed"], 20_000);
        expect(done.status).toBe("succeeded");
        expect(done.result.content).toBe(`echo: pending ${i}`);
      }
      expect(await streamMessages()).toBe(0);
    } finally {
      await w.close();
    }
  });
});

describe("graceful shutdown", () => {
  it("a worker receiving SIGTERM finishes its in-flight job before exiting", async () => {
    const { p, metricsPort } = await spawnWorker();
    const r = await postJob(api.base, { model: "slow", input: "finish me" });
    const id: string = r.body.id;
    await backend.waitForCall(
      (c) => c.model === "slow" && (c.body.messages as { content: string }[])[0]?.content === "finish me",
    );
    p.proc.kill("SIGTERM");
    // Not ready any more while draining (the signal is delivered asynchronously: poll briefly).
    let ready = 200;
    for (const deadline = Date.now() + 2_000; ready === 200 && Date.now() < deadline;) {
      ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).then(
        (x) => x.status,
        () => 0,
      );
      if (ready === 200) await new Promise((res) => setTimeout(res, 10));
    }
    expect([503, 0]).toContain(ready);
    expect(await p.exited).toBe(0);
    const job = (await getJob(api.base, id, KEYS.alice)).body;
    expect(job.status).toBe("succeeded");
    expect(job.attempts).toBe(1);
    expect(p.output()).not.toMatch(/timed out/);
  });

  it("the api process serves jobs with keys from a file, keeps /metrics on the metrics port, drains on SIGTERM", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gateway-keys-"));
    const keysFile = join(dir, "api-keys.json");
    writeFileSync(keysFile, JSON.stringify({ keys: KEY_ENTRIES }));
    const [port, metricsPort] = [await freePort(), await freePort()];
    const p = spawnGateway(["--role=api"], {
      NATS_URL: nats.url,
      BACKEND_URL: backend.url,
      API_KEYS_FILE: keysFile,
      HOST: "127.0.0.1",
      PORT: String(port),
      METRICS_PORT: String(metricsPort),
      LOG_LEVEL: "warn",
    });
    children.push(p);
    try {
      await waitForHttp200(`http://127.0.0.1:${metricsPort}/readyz`, 30_000, p);
      await waitForHttp200(`http://127.0.0.1:${port}/readyz`, 10_000, p);
      const base = `http://127.0.0.1:${port}`;
      const r = await postJob(base, { model: "echo", input: "via the api process" });
      expect(r.status).toBe(202);
      expect((await postJob(base, { model: "echo", input: "x" }, auth("sk-nope"))).status).toBe(401);
      expect((await fetch(`${base}/metrics`)).status).toBe(404);
      const m = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      expect(m).toMatch(
        /gateway_http_request_duration_seconds_count\{method="POST",route="\/v1\/jobs",status_code="202"\} 1/,
      );
      expect(m).toContain("gateway_process_cpu_seconds_total");
      expect(m).toMatch(/gateway_queue_depth\{state="pending"\} 1/);
      p.proc.kill("SIGTERM");
      expect(await p.exited).toBe(0);
      // Accepted before the shutdown: still there for a worker.
      const w = await startTestWorker(testConfig(nats.url, backend.url));
      try {
        const done = await waitForJob(api.base, r.body.id, ["succeeded"], 20_000);
        expect(done.result.content).toBe("echo: via the api process");
      } finally {
        await w.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
