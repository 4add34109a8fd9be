/**
 * Gateway relay benchmark: the gateway, nginx and no proxy at all (direct), on the same fake backend,
 * in one run, interleaved (loopback only, bounded in time and request count).
 *
 * Every server runs in a process of its own, so each one's CPU can be read on its own: the fake
 * OpenAI-compatible backend (a Node process listening twice: answering at once, and after
 * `backendDelayMs`), the gateway's relay (buildApp without a job queue, one app per backend, in a
 * Node process that reports its own process.cpuUsage()), and nginx (Debian's package, started here
 * on loopback with a generated config in a temp dir: a plain reverse proxy, proxy_buffering off,
 * keep-alive upstream, one worker; its CPU read from /proc). The load generator is this process: a
 * minimal keep-alive HTTP/1.1 client over raw sockets that records each response's latency and
 * time to the first body byte in microseconds (autocannon rounds to whole milliseconds).
 *
 * For each scenario (non-streaming or streaming, backend 0 or 20 ms, 50 or 200 connections), the three
 * paths take turns, `rounds` times; then time to first token is taken over sequential streaming
 * requests, the three paths in turn. Without nginx the bench says so and compares gateway and direct.
 * Targets (docs/performance.md): gateway CPU per request <= 3x nginx's; at 200 connections on the
 * 20 ms backend >= 70 % of nginx's req/s; at 50 connections p99 <= nginx's + 2 ms; time to first
 * token <= nginx's + 0.5 ms.
 */
import { type ChildProcess, execFileSync, fork, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { type AddressInfo, type Socket, connect } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { KeyStore, hashKey } from "../services/gateway/src/auth";
import { Backend } from "../services/gateway/src/backend";
import { Readiness } from "../services/gateway/src/health";
import { createMetrics } from "../services/gateway/src/metrics";
import { buildApp } from "../services/gateway/src/server";

export type PathName = "direct" | "nginx" | "gateway";
export type Mode = "json" | "stream";

export interface PathStats {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Streaming: time from the request's first byte sent to the response's first body byte. */
  ttftP50Ms?: number;
  ttftP99Ms?: number;
  requests: number;
  errors: number;
  non2xx: number;
  /** CPU of the proxy process (user + system) per completed request; null for direct. */
  proxyCpuUsPerReq: number | null;
  /** CPU of the fake backend per request (the same work on every path: a sanity check). */
  backendCpuUsPerReq: number;
}

export interface Scenario {
  mode: Mode;
  backendDelayMs: number;
  connections: number;
  paths: Partial<Record<PathName, PathStats>>;
}

export interface TtftStats {
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

export interface GatewayBenchTargets {
  maxCpuRatio: number;
  minThroughputRatio: number;
  maxAddedP99Ms: number;
  maxTtftOverheadMs: number;
}

/** Each target's verdict (null: not judged, nginx absent) and the figure it was judged on. */
export interface Verdict {
  pass: boolean | null;
  /** The worst case over the scenarios the target covers. */
  worst: number | null;
  detail: string;
}

export interface GatewayBenchResult {
  durationSec: number;
  rounds: number;
  /** The machine's 1-minute load average before and after the run (other work on it skews the figures). */
  loadAverage: { before: number; after: number };
  /** nginx's version, or why it is not in the run. */
  nginx: { version: string } | { absent: string };
  scenarios: Scenario[];
  ttft: { requests: number; paths: Partial<Record<PathName, TtftStats>> };
  targets: GatewayBenchTargets;
  verdicts: { cpu: Verdict; throughput: Verdict; p99: Verdict; ttft: Verdict };
}

export interface GatewayBenchOptions {
  connections?: number[];
  delaysMs?: number[];
  modes?: Mode[];
  /** Seconds per measured run (default 3). */
  durationSec?: number;
  /** Turns of the three paths per scenario (default 3). */
  rounds?: number;
  /** Sequential streaming requests per path for time to first token (default 500). */
  ttftRequests?: number;
  /** Write a V8 CPU profile of the gateway process into this directory (node --cpu-prof). */
  profileDir?: string;
}

export const GATEWAY_TARGETS: GatewayBenchTargets = {
  maxCpuRatio: 3,
  minThroughputRatio: 0.7,
  maxAddedP99Ms: 2,
  maxTtftOverheadMs: 0.5,
};

const BENCH_KEY = "sk-bench-0123456789abcdef";
const MESSAGES = [{ role: "user", content: "Say hello in five words." }];
const BODIES: Record<Mode, string> = {
  json: JSON.stringify({ model: "bench-model", messages: MESSAGES, max_tokens: 16 }),
  stream: JSON.stringify({ model: "bench-model", stream: true, messages: MESSAGES, max_tokens: 16 }),
};
const ROUTE = "/v1/chat/completions";

// ---------------------------------------------------------------------------------------------
// Servers: each in a process of its own (this file, forked with BENCH_ROLE set)
// ---------------------------------------------------------------------------------------------

/** The fake backend: non-streaming answers after `delayMs`; streams send a token at once, the rest over `delayMs`. */
function backendServer(delayMs: number) {
  const completion = JSON.stringify({
    id: "chatcmpl-bench",
    object: "chat.completion",
    model: "bench-model",
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: "Hello there, nice to meet." },
        finish_reason: "stop",
      },
    ],
    usage: { prompt_tokens: 12, completion_tokens: 6, total_tokens: 18 },
  });
  const completionHeaders = {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(completion),
  };
  const chunk = (t: string) =>
    `data: ${JSON.stringify({ id: "c", object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: t } }] })}\n\n`;
  const tokens = ["Hello", " there,", " nice", " to", " meet."].map(chunk);
  const streamHeaders = { "content-type": "text/event-stream", "cache-control": "no-cache" };
  const gap = delayMs / (tokens.length - 1);
  const server = createServer((req, res) => {
    let stream = false;
    req.on("data", (c: Buffer) => {
      if (!stream && c.includes('"stream":true')) stream = true;
    });
    req.on("end", () => {
      if (!stream) {
        const send = () => res.writeHead(200, completionHeaders).end(completion);
        if (delayMs > 0) setTimeout(send, delayMs);
        else send();
        return;
      }
      // The first token at once: time to first token measures the relay, not the model.
      res.writeHead(200, streamHeaders);
      if (delayMs === 0) {
        for (const t of tokens) res.write(t);
        res.end("data: [DONE]\n\n");
        return;
      }
      let i = 0;
      const next = () => {
        if (res.destroyed) return;
        res.write(tokens[i++]);
        if (i < tokens.length) setTimeout(next, gap);
        else res.end("data: [DONE]\n\n");
      };
      next();
    });
  });
  server.keepAliveTimeout = 120_000;
  return server;
}

async function listen(server: {
  listen(port: number, host: string, cb: () => void): unknown;
  address(): unknown;
}) {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as AddressInfo).port;
}

async function serveBackend(delays: number[]): Promise<number[]> {
  const ports: number[] = [];
  for (const d of delays) ports.push(await listen(backendServer(d)));
  return ports;
}

async function serveGateway(backendPorts: number[]): Promise<number[]> {
  const ports: number[] = [];
  for (const p of backendPorts) {
    const app = buildApp({
      keys: new KeyStore([
        { name: "bench", sha256: hashKey(BENCH_KEY), rate_limit: { rps: 1e7, burst: 1e7 } },
      ]),
      backend: new Backend(`http://127.0.0.1:${p}/v1`, { maxSockets: 1024 }),
      metrics: createMetrics({ models: ["bench-model"] }),
      readiness: new Readiness({ needsJetStream: false }),
      logLevel: "silent",
    });
    await app.listen({ host: "127.0.0.1", port: 0 });
    ports.push((app.server.address() as AddressInfo).port);
  }
  return ports;
}

type RoleMessage = { ports: number[] } | { cpuUs: number } | { error: string };

if (process.env["GATEWAY_BENCH_ROLE"] && process.send) {
  const role = process.env["GATEWAY_BENCH_ROLE"];
  const args = JSON.parse(process.env["GATEWAY_BENCH_ARGS"] ?? "[]") as number[];
  const send = (m: RoleMessage) => process.send!(m);
  (role === "backend" ? serveBackend(args) : serveGateway(args)).then(
    (ports) => send({ ports }),
    (e: Error) => send({ error: e.stack ?? e.message }),
  );
  process.on("message", (m: string) => {
    if (m === "cpu") {
      const u = process.cpuUsage();
      send({ cpuUs: u.user + u.system });
    } else if (m === "exit") process.exit(0); // exits normally, so --cpu-prof writes its profile
  });
  process.on("disconnect", () => process.exit(0));
}

interface NodeServer {
  kind: "node";
  pid: number;
  ports: number[];
  child: ChildProcess;
  cpuUs(): Promise<number>;
  close(): Promise<void>;
}

async function launch(
  role: "backend" | "gateway",
  args: number[],
  execArgv: string[] = [],
): Promise<NodeServer> {
  const child = fork(__filename, [], {
    env: { ...process.env, GATEWAY_BENCH_ROLE: role, GATEWAY_BENCH_ARGS: JSON.stringify(args) },
    execArgv: [...process.execArgv.filter((a) => a !== "--expose-gc"), ...execArgv],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const next = <T extends RoleMessage>(pick: (m: RoleMessage) => m is T, what: string) =>
    new Promise<T>((resolve, reject) => {
      const settle = (fn: () => void) => {
        clearTimeout(t);
        child.off("message", onMessage);
        child.off("exit", onExit);
        fn();
      };
      const t = setTimeout(
        () => settle(() => reject(new Error(`bench ${role}: no ${what} within 30 s`))),
        30_000,
      );
      const onMessage = (m: RoleMessage) => {
        if ("error" in m) settle(() => reject(new Error(`bench ${role} failed: ${m.error}`)));
        else if (pick(m)) settle(() => resolve(m));
      };
      const onExit = (code: number | null) =>
        settle(() => reject(new Error(`bench ${role} exited (${code})`)));
      child.on("message", onMessage);
      child.on("exit", onExit);
    });
  const { ports } = await next((m): m is { ports: number[] } => "ports" in m, "ports");
  return {
    kind: "node",
    pid: child.pid!,
    ports,
    child,
    cpuUs: async () => {
      const p = next((m): m is { cpuUs: number } => "cpuUs" in m, "CPU figure");
      child.send("cpu");
      return (await p).cpuUs;
    },
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((r) => child.once("exit", () => r()));
      child.send("exit");
      const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(t);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// nginx
// ---------------------------------------------------------------------------------------------

interface Nginx {
  version: string;
  ports: number[];
  cpuUs(): number;
  close(): Promise<void>;
}

/** The nginx binary, or why there is none. */
function findNginx(): { bin: string; version: string } | { absent: string } {
  for (const bin of ["nginx", "/usr/sbin/nginx"]) {
    // nginx -v prints "nginx version: nginx/1.22.1" to stderr.
    const r = spawnSync(bin, ["-v"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    if (r.error) continue;
    if (r.status === 0) return { bin, version: r.stderr.trim().replace(/^nginx version: /, "") || "nginx" };
  }
  return { absent: "nginx is not installed (Debian: apt-get install nginx)" };
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process from /proc, in microseconds (0 once it is gone). */
function procCpuUs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command (which is in parentheses and may contain spaces): state is field 3.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) / CLK_TCK) * 1e6;
  } catch {
    return 0;
  }
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    const out: number[] = [];
    for (const d of readdirSync("/proc")) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const s = readFileSync(`/proc/${d}/stat`, "utf8");
        if (Number(s.slice(s.lastIndexOf(")") + 2).split(" ")[1]) === pid) out.push(Number(d));
      } catch {
        // gone meanwhile
      }
    }
    return out;
  }
}

async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => createServer());
  const ports: number[] = [];
  for (const s of servers) ports.push(await listen(s));
  for (const s of servers) await new Promise((r) => s.close(r));
  return ports;
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** nginx as a plain reverse proxy in front of each backend port: one worker, no buffering, keep-alive upstream. */
async function startNginx(bin: string, version: string, backendPorts: number[]): Promise<Nginx> {
  const dir = mkdtempSync(join(tmpdir(), "bench-nginx-"));
  for (const d of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(join(dir, d));
  const ports = await freePorts(backendPorts.length);
  const servers = backendPorts
    .map(
      (bp, i) => `
  upstream backend_${i} {
    server 127.0.0.1:${bp};
    keepalive 512;
    keepalive_requests 100000;
    keepalive_timeout 120s;
  }
  server {
    listen 127.0.0.1:${ports[i]} backlog=4096;
    location / {
      proxy_pass http://backend_${i};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }`,
    )
    .join("\n");
  // The gateway's defaults for client connections: 10,000 requests per connection, 72 s idle.
  const conf = `worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 10000;
  keepalive_timeout 72s;
${servers}
}
`;
  writeFileSync(join(dir, "nginx.conf"), conf);
  const master = spawn(bin, ["-p", dir, "-c", join(dir, "nginx.conf")], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  master.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((r) => master.once("exit", () => r()));
  try {
    await Promise.race([
      Promise.all(ports.map((p) => waitForPort(p, 10_000))),
      exited.then(() => {
        throw new Error(`nginx exited: ${stderr.trim()}`);
      }),
    ]);
  } catch (e) {
    master.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const pid = master.pid!;
  return {
    version,
    ports,
    // Master and workers (the master only supervises; its CPU is counted all the same).
    cpuUs: () => [pid, ...childPids(pid)].reduce((s, p) => s + procCpuUs(p), 0),
    close: async () => {
      master.kill("SIGQUIT");
      const t = setTimeout(() => master.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Load generator: keep-alive HTTP/1.1 over raw sockets, microsecond timings
// ---------------------------------------------------------------------------------------------

interface LoadResult {
  latenciesMs: number[];
  ttftMs: number[];
  requests: number;
  errors: number;
  non2xx: number;
  seconds: number;
}

const CRLF2 = Buffer.from("\r\n\r\n");

function requestBytes(port: number, body: string, auth: boolean): Buffer {
  const head =
    `POST ${ROUTE} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\ncontent-type: application/json\r\n` +
    (auth ? `authorization: Bearer ${BENCH_KEY}\r\n` : "") +
    `content-length: ${Buffer.byteLength(body)}\r\n\r\n`;
  return Buffer.from(head + body);
}

/**
 * One client connection's response parser: content-length and chunked bodies. Calls `onFirstByte`
 * at the first body byte and `onEnd(status, keepAlive)` when the response is complete.
 */
class ResponseParser {
  private buf: Buffer | null = null;
  private status = 0;
  private close = false;
  private inBody = false;
  private chunked = false;
  private remaining = 0;
  private gotBody = false;

  constructor(
    private readonly onFirstByte: () => void,
    private readonly onEnd: (status: number, keepAlive: boolean) => void,
  ) {}

  push(data: Buffer): void {
    let b = this.buf ? Buffer.concat([this.buf, data]) : data;
    this.buf = null;
    for (;;) {
      if (!this.inBody) {
        const end = b.indexOf(CRLF2);
        if (end === -1) {
          this.buf = b;
          return;
        }
        const head = b.toString("latin1", 0, end).toLowerCase();
        this.status = Number(head.slice(9, 12));
        this.chunked = /\r\ntransfer-encoding: *chunked/.test(head);
        const cl = /\r\ncontent-length: *(\d+)/.exec(head);
        this.remaining = cl ? Number(cl[1]) : 0;
        this.close = /\r\nconnection: *close/.test(head);
        this.inBody = true;
        b = b.subarray(end + 4);
        if (!this.chunked && this.remaining === 0) {
          this.finish();
          if (b.length === 0) return;
          continue;
        }
      }
      if (b.length === 0) return;
      if (!this.chunked) {
        this.firstByte();
        const n = Math.min(this.remaining, b.length);
        this.remaining -= n;
        b = b.subarray(n);
        if (this.remaining === 0) {
          this.finish();
          if (b.length === 0) return;
          continue;
        }
        return;
      }
      // chunked: remaining = bytes of the current chunk's data still to come (+2 for its CRLF)
      if (this.remaining > 0) {
        this.firstByte();
        const n = Math.min(this.remaining, b.length);
        this.remaining -= n;
        b = b.subarray(n);
        if (this.remaining > 0) return;
        continue;
      }
      const eol = b.indexOf("\r\n");
      if (eol === -1) {
        this.buf = b;
        return;
      }
      const size = parseInt(b.toString("latin1", 0, eol), 16);
      if (size === 0) {
        // last chunk, no trailers: "0\r\n\r\n"
        if (b.length < eol + 4) {
          this.buf = b;
          return;
        }
        b = b.subarray(eol + 4);
        this.finish();
        if (b.length === 0) return;
        continue;
      }
      this.remaining = size + 2;
      b = b.subarray(eol + 2);
    }
  }

  private firstByte() {
    if (!this.gotBody) {
      this.gotBody = true;
      this.onFirstByte();
    }
  }

  private finish() {
    this.inBody = false;
    this.gotBody = false;
    this.onEnd(this.status, !this.close);
  }
}

const nowMs = () => performance.now();

/** `connections` keep-alive connections sending requests back to back for `durationMs`. */
function runLoad(
  port: number,
  req: Buffer,
  connections: number,
  durationMs: number,
  stream: boolean,
): Promise<LoadResult> {
  return new Promise((resolve) => {
    const r: LoadResult = { latenciesMs: [], ttftMs: [], requests: 0, errors: 0, non2xx: 0, seconds: 0 };
    const start = nowMs();
    const deadline = start + durationMs;
    let open = 0;
    const done = () => {
      if (--open === 0) {
        r.seconds = (nowMs() - start) / 1000;
        resolve(r);
      }
    };
    const conn = () => {
      open++;
      let t0 = 0;
      let settled = false;
      const s: Socket = connect(port, "127.0.0.1");
      s.setNoDelay(true);
      const send = () => {
        t0 = nowMs();
        s.write(req);
      };
      const parser = new ResponseParser(
        stream ? () => r.ttftMs.push(nowMs() - t0) : () => {},
        (status, keepAlive) => {
          const t = nowMs();
          r.requests++;
          if (status >= 200 && status < 300) r.latenciesMs.push(t - t0);
          else r.non2xx++;
          if (t >= deadline) {
            settled = true;
            s.destroy();
            done();
          } else if (keepAlive) send();
          else {
            // The server closes this connection (its requests-per-connection cap): open the next first.
            settled = true;
            s.destroy();
            conn();
            done();
          }
        },
      );
      s.on("connect", send);
      s.on("data", (d: Buffer) => parser.push(d));
      const fail = () => {
        if (settled) return;
        settled = true;
        r.errors++;
        s.destroy();
        if (nowMs() < deadline) {
          // Counted open while it waits, so the run does not end meanwhile.
          open++;
          setTimeout(() => {
            open--;
            conn();
          }, 10);
        }
        done();
      };
      s.on("error", fail);
      s.on("close", fail);
    };
    for (let i = 0; i < connections; i++) conn();
  });
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Sequential streaming requests on one connection each, the paths in turn: time to the first body byte. */
async function sequentialTtft(
  targets: { name: PathName; port: number; auth: boolean }[],
  n: number,
): Promise<Partial<Record<PathName, TtftStats>>> {
  const clients = await Promise.all(
    targets.map(
      (t) =>
        new Promise<{ name: PathName; one: () => Promise<number>; close: () => void }>((resolve, reject) => {
          const s = connect(t.port, "127.0.0.1");
          s.setNoDelay(true);
          const req = requestBytes(t.port, BODIES.stream, t.auth);
          let pending: {
            t0: number;
            first: number;
            resolve: (ms: number) => void;
            reject: (e: Error) => void;
          } | null = null;
          const parser = new ResponseParser(
            () => {
              if (pending) pending.first = nowMs() - pending.t0;
            },
            (status) => {
              const p = pending!;
              pending = null;
              if (status === 200 && p.first > 0) p.resolve(p.first);
              else p.reject(new Error(`${t.name}: HTTP ${status}`));
            },
          );
          s.on("data", (d: Buffer) => parser.push(d));
          s.on("error", (e) => (pending ? pending.reject(e) : reject(e)));
          s.once("connect", () =>
            resolve({
              name: t.name,
              one: () =>
                new Promise<number>((res, rej) => {
                  pending = { t0: nowMs(), first: 0, resolve: res, reject: rej };
                  s.write(req);
                }),
              close: () => s.destroy(),
            }),
          );
        }),
    ),
  );
  const samples = new Map<PathName, number[]>(targets.map((t) => [t.name, []]));
  try {
    for (let i = 0; i < n; i++)
      for (const c of i % 2 ? [...clients].reverse() : clients) samples.get(c.name)!.push(await c.one());
  } finally {
    for (const c of clients) c.close();
  }
  const out: Partial<Record<PathName, TtftStats>> = {};
  for (const [name, all] of samples) {
    // The first 10 % are warm-up (JIT, first connections upstream).
    const s = all.slice(Math.floor(n / 10)).sort((a, b) => a - b);
    out[name] = {
      p50Ms: round3(percentile(s, 50)),
      p99Ms: round3(percentile(s, 99)),
      meanMs: round3(s.reduce((a, b) => a + b, 0) / s.length),
    };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

/**
 * The targets' verdicts against nginx. Without nginx the same figures are given against direct (no
 * proxy at all), for information: the targets are nginx's, so nothing is judged (pass: null).
 */
function judge(
  scenarios: Scenario[],
  ttft: Partial<Record<PathName, TtftStats>>,
  t: GatewayBenchTargets,
  haveNginx: boolean,
): GatewayBenchResult["verdicts"] {
  const ref: PathName = haveNginx ? "nginx" : "direct";
  const refName = haveNginx ? "nginx" : "direct (nginx absent, not judged)";
  const none = (what: string): Verdict => ({ pass: null, worst: null, detail: `not judged: ${what}` });
  const verdict = (pass: boolean, worst: number, detail: string): Verdict => ({
    pass: haveNginx ? pass : null,
    worst: round3(worst),
    detail,
  });
  const label = (s: Scenario) => `${s.mode}, ${s.backendDelayMs} ms backend, ${s.connections} connections`;
  const worstOf = (rows: { v: number; s: Scenario }[], max: boolean) =>
    rows.reduce((a, b) => ((max ? b.v > a.v : b.v < a.v) ? b : a));
  const both = scenarios.filter((s) => s.paths.gateway && s.paths[ref]);

  // Direct has no proxy process: the gateway's own CPU per request is all there is to show.
  const cpuRows = both.map((s) => ({
    v: haveNginx
      ? s.paths.gateway!.proxyCpuUsPerReq! / s.paths.nginx!.proxyCpuUsPerReq!
      : s.paths.gateway!.proxyCpuUsPerReq!,
    s,
  }));
  const cpuW = cpuRows.length ? worstOf(cpuRows, true) : null;

  const tpRows = both
    .filter((s) => s.connections === 200 && s.backendDelayMs === 20)
    .map((s) => ({ v: s.paths.gateway!.reqPerSec / s.paths[ref]!.reqPerSec, s }));
  const tpW = tpRows.length ? worstOf(tpRows, false) : null;

  const p99Rows = both
    .filter((s) => s.connections === 50)
    .map((s) => ({ v: s.paths.gateway!.p99Ms - s.paths[ref]!.p99Ms, s }));
  const p99W = p99Rows.length ? worstOf(p99Rows, true) : null;

  const refTtft = ttft[ref];
  const ttftAdded = ttft.gateway && refTtft ? ttft.gateway.p50Ms - refTtft.p50Ms : null;
  const signed = (v: number, digits: number) => `${v >= 0 ? "+" : ""}${v.toFixed(digits)}`;
  return {
    cpu: cpuW
      ? verdict(
          cpuW.v <= t.maxCpuRatio,
          cpuW.v,
          haveNginx
            ? `worst ${cpuW.v.toFixed(2)}x nginx's CPU per request (${label(cpuW.s)})`
            : `worst ${cpuW.v.toFixed(1)} us per request, no proxy to compare (${label(cpuW.s)})`,
        )
      : none("no scenario"),
    throughput: tpW
      ? verdict(
          tpW.v >= t.minThroughputRatio,
          tpW.v,
          `worst ${(tpW.v * 100).toFixed(0)} % of ${refName}'s req/s (${label(tpW.s)})`,
        )
      : none("no 200-connection scenario on the 20 ms backend"),
    p99: p99W
      ? verdict(
          p99W.v <= t.maxAddedP99Ms,
          p99W.v,
          `worst ${signed(p99W.v, 2)} ms p99 against ${refName} (${label(p99W.s)})`,
        )
      : none("no 50-connection scenario"),
    ttft:
      ttftAdded !== null
        ? verdict(
            ttftAdded <= t.maxTtftOverheadMs,
            ttftAdded,
            `p50 ${signed(ttftAdded, 3)} ms against ${refName}`,
          )
        : none("no time to first token"),
  };
}

export async function benchGateway(opts: GatewayBenchOptions = {}): Promise<GatewayBenchResult> {
  const connectionsList = opts.connections ?? [50, 200];
  const delays = opts.delaysMs ?? [0, 20];
  const modes = opts.modes ?? ["json", "stream"];
  const durationSec = Math.min(Math.max(opts.durationSec ?? 3, 0.5), 60);
  const rounds = Math.min(Math.max(opts.rounds ?? 3, 1), 10);
  const loadBefore = loadavg()[0]!;
  const ttftRequests = Math.min(Math.max(opts.ttftRequests ?? 500, 20), 5000);

  const found = findNginx();
  const backend = await launch("backend", delays);
  const started: { close: () => Promise<void> }[] = [backend];
  try {
    const profile = opts.profileDir ? ["--cpu-prof", "--cpu-prof-dir", opts.profileDir] : [];
    const gateway = await launch("gateway", backend.ports, profile);
    started.push(gateway);
    let nginx: Nginx | undefined;
    let nginxInfo: GatewayBenchResult["nginx"];
    if ("bin" in found) {
      try {
        nginx = await startNginx(found.bin, found.version, backend.ports);
        started.push(nginx);
        nginxInfo = { version: found.version };
      } catch (e) {
        nginxInfo = { absent: `nginx did not start: ${(e as Error).message}` };
      }
    } else nginxInfo = found;
    if ("absent" in nginxInfo)
      console.error(`bench gateway: ${nginxInfo.absent}; gateway against direct only`);

    const paths: {
      name: PathName;
      ports: number[];
      auth: boolean;
      cpuUs: (() => Promise<number> | number) | null;
    }[] = [
      { name: "direct", ports: backend.ports, auth: false, cpuUs: null },
      ...(nginx
        ? [{ name: "nginx" as const, ports: nginx.ports, auth: true, cpuUs: () => nginx.cpuUs() }]
        : []),
      { name: "gateway", ports: gateway.ports, auth: true, cpuUs: () => gateway.cpuUs() },
    ];

    const scenarios: Scenario[] = [];
    for (const mode of modes)
      for (const [di, backendDelayMs] of delays.entries())
        for (const connections of connectionsList) {
          const acc = new Map<PathName, { loads: LoadResult[]; proxyCpuUs: number; backendCpuUs: number }>();
          for (const p of paths) {
            // Warm-up, not reported: connection pools filled, JIT warm.
            const warm = requestBytes(p.ports[di]!, BODIES[mode], p.auth);
            await runLoad(p.ports[di]!, warm, connections, 1000, mode === "stream");
            acc.set(p.name, { loads: [], proxyCpuUs: 0, backendCpuUs: 0 });
          }
          for (let r = 0; r < rounds; r++) {
            // The paths take turns, in a rotating order, so a drift of the machine hits them alike.
            const order = paths.map((_, i) => paths[(i + r) % paths.length]!);
            for (const p of order) {
              const req = requestBytes(p.ports[di]!, BODIES[mode], p.auth);
              const proxy0 = p.cpuUs ? await p.cpuUs() : 0;
              const backend0 = await backend.cpuUs();
              const load = await runLoad(
                p.ports[di]!,
                req,
                connections,
                durationSec * 1000,
                mode === "stream",
              );
              const backend1 = await backend.cpuUs();
              const proxy1 = p.cpuUs ? await p.cpuUs() : 0;
              const a = acc.get(p.name)!;
              a.loads.push(load);
              a.proxyCpuUs += proxy1 - proxy0;
              a.backendCpuUs += backend1 - backend0;
            }
          }
          const scenario: Scenario = { mode, backendDelayMs, connections, paths: {} };
          for (const p of paths) {
            const a = acc.get(p.name)!;
            const lat = a.loads.flatMap((l) => l.latenciesMs).sort((x, y) => x - y);
            const ttft = a.loads.flatMap((l) => l.ttftMs).sort((x, y) => x - y);
            const requests = a.loads.reduce((s, l) => s + l.requests, 0);
            const seconds = a.loads.reduce((s, l) => s + l.seconds, 0);
            scenario.paths[p.name] = {
              reqPerSec: Math.round(requests / seconds),
              p50Ms: round3(percentile(lat, 50)),
              p99Ms: round3(percentile(lat, 99)),
              ...(mode === "stream"
                ? { ttftP50Ms: round3(percentile(ttft, 50)), ttftP99Ms: round3(percentile(ttft, 99)) }
                : {}),
              requests,
              errors: a.loads.reduce((s, l) => s + l.errors, 0),
              non2xx: a.loads.reduce((s, l) => s + l.non2xx, 0),
              proxyCpuUsPerReq: p.cpuUs ? Math.round((a.proxyCpuUs / requests) * 10) / 10 : null,
              backendCpuUsPerReq: Math.round((a.backendCpuUs / requests) * 10) / 10,
            };
          }
          scenarios.push(scenario);
        }

    const ttft = await sequentialTtft(
      paths.map((p) => ({ name: p.name, port: p.ports[0]!, auth: p.auth })),
      ttftRequests,
    );
    return {
      durationSec,
      rounds,
      loadAverage: {
        before: Math.round(loadBefore * 100) / 100,
        after: Math.round(loadavg()[0]! * 100) / 100,
      },
      nginx: nginxInfo,
      scenarios,
      ttft: { requests: ttftRequests, paths: ttft },
      targets: GATEWAY_TARGETS,
      verdicts: judge(scenarios, ttft, GATEWAY_TARGETS, nginx !== undefined),
    };
  } finally {
    for (const s of started.reverse()) await s.close();
  }
}

const fmt = (n: number | null | undefined, digits = 2) =>
  n === null || n === undefined || Number.isNaN(n) ? "-" : n.toFixed(digits);

/** Every scenario's rows, the three paths side by side, as a text table. */
export function gatewayTable(r: GatewayBenchResult): string {
  const header = [
    "scenario",
    "path",
    "req/s",
    "p50 ms",
    "p99 ms",
    "TTFT p50/p99 ms",
    "proxy CPU us/req",
    "backend CPU us/req",
  ];
  const rows: string[][] = [];
  for (const s of r.scenarios)
    for (const name of ["gateway", "nginx", "direct"] as const) {
      const p = s.paths[name];
      if (!p) continue;
      rows.push([
        `${s.mode}, ${s.backendDelayMs} ms backend, ${s.connections} conns`,
        name,
        String(p.reqPerSec),
        fmt(p.p50Ms),
        fmt(p.p99Ms),
        p.ttftP50Ms === undefined ? "" : `${fmt(p.ttftP50Ms)} / ${fmt(p.ttftP99Ms)}`,
        fmt(p.proxyCpuUsPerReq, 1),
        fmt(p.backendCpuUsPerReq, 1),
      ]);
    }
  for (const name of ["gateway", "nginx", "direct"] as const) {
    const t = r.ttft.paths[name];
    if (t)
      rows.push([
        `sequential stream, 0 ms backend, 1 conn (${r.ttft.requests})`,
        name,
        "",
        "",
        "",
        `${fmt(t.p50Ms, 3)} / ${fmt(t.p99Ms, 3)}`,
        "",
        "",
      ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((x) => x[i]!.length)));
  const line = (x: string[]) => x.map((c, i) => c.padEnd(widths[i]!)).join(" | ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("-|-"), ...rows.map(line)].join("\n");
}
