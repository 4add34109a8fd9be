import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { KeyStore, RateLimiter, hashKey, presentedKey } from "../src/auth";
import { ConfigError, loadConfig } from "../src/config";
import { parseRole } from "../src/main";
import { backoffMs } from "../src/worker";
import { spawnGateway } from "./helpers/child";

const base = {
  NATS_URL: "nats://127.0.0.1:4222",
  BACKEND_URL: "http://127.0.0.1:8000/v1",
  API_KEYS_FILE: "/keys.json",
};
const dir = mkdtempSync(join(tmpdir(), "gateway-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configError(env: Record<string, string>, role?: string): ConfigError {
  try {
    loadConfig(env, role);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("config from the environment", () => {
  it("applies defaults", () => {
    const c = loadConfig(base);
    expect(c.role).toBe("api");
    expect(c.port).toBe(8080);
    expect(c.metricsPort).toBe(9090);
    expect(c.jobs).toMatchObject({
      stream: "GATEWAY_JOBS",
      subject: "gateway.jobs.queue",
      consumer: "gateway-workers",
      dlqStream: "GATEWAY_JOBS_DLQ",
      kvBucket: "gateway-jobs",
      idempotencyBucket: "gateway-idempotency",
      ttlSeconds: 86_400,
    });
    expect(c.worker).toMatchObject({ concurrency: 4, maxAttempts: 5, ackWaitSeconds: 30 });
    expect(c.backend.url).toBe("http://127.0.0.1:8000/v1");
  });

  it("names each missing variable with an example", () => {
    const e = configError({});
    expect(e.problems.map((p) => p.variable).sort()).toEqual(["API_KEYS_FILE", "BACKEND_URL", "NATS_URL"]);
    expect(e.message).toContain("NATS_URL: is required (example: NATS_URL=nats://");
    expect(e.message).toContain("BACKEND_URL: is required (example: BACKEND_URL=http://");
  });

  it("rejects bad values with the reason", () => {
    const e = configError({
      ...base,
      NATS_URL: "http://nope",
      PORT: "99999",
      WORKER_CONCURRENCY: "zero",
      JOBS_SUBJECT: "jobs.>",
      LOG_LEVEL: "loud",
    });
    const vars = e.problems.map((p) => p.variable).sort();
    expect(vars).toEqual(["JOBS_SUBJECT", "LOG_LEVEL", "NATS_URL", "PORT", "WORKER_CONCURRENCY"]);
    expect(e.message).toMatch(/NATS_URL: must be a comma-separated list of nats:\/\//);
  });

  it("requires API_KEYS_FILE for the api role only, and checks cross-field rules", () => {
    const { API_KEYS_FILE: _drop, ...noKeys } = base;
    expect(configError(noKeys, "api").message).toContain("API_KEYS_FILE: is required for the api role");
    expect(loadConfig(noKeys, "worker").role).toBe("worker");
    expect(configError({ ...base, METRICS_PORT: "8080" }).message).toContain(
      "METRICS_PORT: must differ from PORT",
    );
    expect(configError(base, "cook").message).toContain('unknown role "cook"');
  });

  it("parses --role", () => {
    expect(parseRole(["--role", "worker"])).toBe("worker");
    expect(parseRole(["--role=api"])).toBe("api");
    expect(parseRole([])).toBeUndefined();
  });

  it("the process exits 78 with a clear message when the configuration is invalid", async () => {
    const p = spawnGateway(["--role", "api"], { BACKEND_URL: "ftp://x" });
    expect(await p.exited).toBe(78);
    expect(p.output()).toContain("Invalid gateway configuration");
    expect(p.output()).toContain("NATS_URL: is required (example: NATS_URL=nats://nats.nats.svc:4222)");
    expect(p.output()).toContain("BACKEND_URL: must be an http:// or https:// URL");
  });
});

describe("API keys file", () => {
  it("loads hashed keys and authenticates raw keys by sha256", () => {
    const f = join(dir, "keys.json");
    writeFileSync(
      f,
      JSON.stringify({
        keys: [
          { name: "a", sha256: hashKey("secret-a").toUpperCase(), models: ["m1"] },
          { name: "b", sha256: hashKey("secret-b"), scopes: ["chat"] },
        ],
      }),
    );
    const ks = KeyStore.fromFile(f);
    expect(ks.size).toBe(2);
    expect(ks.lookup("secret-a")?.name).toBe("a");
    expect(ks.lookup("secret-a")?.models?.has("m1")).toBe(true);
    expect(ks.lookup("secret-b")?.scopes.has("jobs")).toBe(false);
    expect(ks.lookup("secret-c")).toBeUndefined();
    expect(ks.lookup(hashKey("secret-a"))).toBeUndefined(); // the hash itself is not a key
  });

  it("reports an invalid file with the file and the field", () => {
    const f = join(dir, "bad.json");
    writeFileSync(f, JSON.stringify({ keys: [{ name: "a", sha256: "abc" }] }));
    expect(() => KeyStore.fromFile(f)).toThrow(
      /bad\.json is invalid: keys\.0\.sha256: must be the 64-character hex/,
    );
    writeFileSync(f, "{");
    expect(() => KeyStore.fromFile(f)).toThrow(/cannot read JSON/);
    writeFileSync(
      f,
      JSON.stringify([
        { name: "a", sha256: hashKey("x") },
        { name: "a", sha256: hashKey("y") },
      ]),
    );
    expect(() => KeyStore.fromFile(f)).toThrow(/duplicate key name "a"/);
  });

  it("reloads the file when the mounted Secret changes, keeping the last good keys on errors", async () => {
    const f = join(dir, "reload.json");
    writeFileSync(f, JSON.stringify([{ name: "old", sha256: hashKey("k-old") }]));
    const ks = KeyStore.fromFile(f);
    const errors: string[] = [];
    ks.watch(f, 20, (e) => errors.push(e.message));
    try {
      writeFileSync(f, JSON.stringify([{ name: "new", sha256: hashKey("k-new") }]));
      utimesSync(f, new Date(), new Date(Date.now() + 5000));
      const deadline = Date.now() + 3000;
      while (!ks.lookup("k-new") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(ks.lookup("k-new")?.name).toBe("new");
      expect(ks.lookup("k-old")).toBeUndefined();
      writeFileSync(f, "not json");
      utimesSync(f, new Date(), new Date(Date.now() + 10_000));
      const d2 = Date.now() + 3000;
      while (errors.length === 0 && Date.now() < d2) await new Promise((r) => setTimeout(r, 20));
      expect(errors[0]).toMatch(/cannot read JSON/);
      expect(ks.lookup("k-new")?.name).toBe("new");
    } finally {
      ks.close();
    }
  });

  it("reads the key from Authorization: Bearer or x-api-key", () => {
    expect(presentedKey({ authorization: "Bearer abc" })).toBe("abc");
    expect(presentedKey({ authorization: "bearer abc" })).toBe("abc");
    expect(presentedKey({ authorization: "Basic abc" })).toBeUndefined();
    expect(presentedKey({ "x-api-key": "xyz" })).toBe("xyz");
    expect(presentedKey({})).toBeUndefined();
  });
});

describe("rate limiter and backoff", () => {
  it("token bucket: burst, then refill at rps", () => {
    const rl = new RateLimiter({ rps: 2, burst: 3 });
    const key = { name: "k", scopes: new Set<"jobs" | "chat">(["jobs"]), disabled: false };
    const t0 = 1_000_000;
    expect([rl.take(key, t0), rl.take(key, t0), rl.take(key, t0)]).toEqual([0, 0, 0]);
    expect(rl.take(key, t0)).toBe(1);
    expect(rl.take(key, t0 + 500)).toBe(0); // one token back after 0.5 s at 2 rps
    expect(rl.take(key, t0 + 500)).toBeGreaterThan(0);
  });

  it("exponential backoff with jitter, capped", () => {
    expect(backoffMs(1, 1000, 60_000, 1)).toBe(1000);
    expect(backoffMs(1, 1000, 60_000, 0)).toBe(500);
    expect(backoffMs(3, 1000, 60_000, 1)).toBe(4000);
    expect(backoffMs(20, 1000, 60_000, 1)).toBe(60_000);
  });
});
