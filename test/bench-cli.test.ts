// `npm run bench` as a command: help, bad input, and where results go (no measure is run here).
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

const bench = (...args: string[]) =>
  spawnSync(process.execPath, ["--import", "tsx", "bench/index.ts", ...args], { encoding: "utf8" });

describe("npm run bench", () => {
  it("prints its usage on --help and measures nothing", () => {
    const r = bench("--help");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Usage: npm run bench/);
    expect(r.stdout).toMatch(/--update +write the committed bench\/results\.json/);
    expect(r.stdout).toMatch(/default: out\/bench\/results\.json/);
  });
  it("refuses an unknown measure or option in one line, exit 2", () => {
    const measure = bench("--only", "nope");
    expect(measure.status).toBe(2);
    expect(measure.stderr.trim()).toBe(
      "bench: unknown measure nope (one of preflight, policy, gateway, render)",
    );
    const option = bench("--frobnicate");
    expect(option.status).toBe(2);
    expect(option.stderr).toMatch(/^bench: Unknown option '--frobnicate'/);
  });
});
