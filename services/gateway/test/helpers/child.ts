import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";

const GATEWAY_DIR = join(__dirname, "..", "..");
const MAIN = join(GATEWAY_DIR, "src", "main.ts");

export interface GatewayProcess {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Runs src/main.ts in a separate Node process (TypeScript through tsx), as the container would. */
export function spawnGateway(args: string[], env: Record<string, string>): GatewayProcess {
  const proc = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], {
    cwd: GATEWAY_DIR,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  proc.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  return { proc, output: () => out, exited };
}

/** Polls url until it answers 200 (bounded). */
export async function waitForHttp200(url: string, timeoutMs: number, p?: GatewayProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (p && p.proc.exitCode !== null) throw new Error(`process exited early:\n${p.output()}`);
    try {
      const r = await fetch(url);
      await r.body?.cancel();
      if (r.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not 200 within ${timeoutMs} ms${p ? `:\n${p.output()}` : ""}`);
}
