import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { createServer, connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

/**
 * Finds the nats-server binary: $NATS_SERVER_BIN, then $PATH, then the sbin directories where the
 * Debian package installs it. Throws (never skips) when it is missing: the tests need a real broker.
 */
export function natsServerBinary(): string {
  const explicit = process.env.NATS_SERVER_BIN;
  if (explicit) return explicit;
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin", "/sbin"];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, "nats-server");
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  throw new Error(
    "nats-server binary not found: install it (Debian: apt-get install -y nats-server) or set NATS_SERVER_BIN. " +
      "The gateway tests need a real JetStream broker and are never skipped.",
  );
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = netConnect({ host: "127.0.0.1", port });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
}

export interface NatsServer {
  url: string;
  port: number;
  storeDir: string;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same store directory. */
  start(): Promise<void>;
  /** Stops and removes the store directory. */
  dispose(): Promise<void>;
}

/** Starts `nats-server -js -sd <tmpdir> -a 127.0.0.1 -p <free port>` and waits until it accepts connections. */
export async function startNatsServer(): Promise<NatsServer> {
  const bin = natsServerBinary();
  const storeDir = mkdtempSync(join(tmpdir(), "gateway-nats-"));
  const port = await freePort();
  let proc: ChildProcess | undefined;
  let output = "";

  const start = async () => {
    output = "";
    const p = spawn(bin, ["-js", "-sd", storeDir, "-a", "127.0.0.1", "-p", String(port)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    proc = p;
    p.stdout?.on("data", (d: Buffer) => (output += d.toString()));
    p.stderr?.on("data", (d: Buffer) => (output += d.toString()));
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (p.exitCode !== null) throw new Error(`nats-server exited with ${p.exitCode}:\n${output}`);
      if (/Server is ready/.test(output) && (await canConnect(port))) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    p.kill("SIGKILL");
    throw new Error(`nats-server did not become ready within 15 s:\n${output}`);
  };

  const stop = async () => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise<void>((r) => p.once("exit", () => r()));
    p.kill("SIGTERM");
    const t = setTimeout(() => p.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(t);
  };

  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    stop,
    start,
    async dispose() {
      await stop();
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}
