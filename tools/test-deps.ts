/**
 * The first step of `npm test`: what the suite needs from outside node_modules is there, so the
 * README's `npm ci && npm test` passes on a fresh Debian machine. The gateway tests start a real
 * nats-server, the web end-to-end test drives a real Chromium (with a font, so its screenshots are
 * legible), and the render tests run the pinned helm, unpacked from its npm package. Missing Debian
 * packages are installed with apt-get when this may (root, or passwordless sudo); otherwise it stops
 * with one line naming the command to run. `decide` is the whole decision, pure; the rest probes
 * and acts on it.
 */
import { spawnSync } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { helmBinary } from "./preflight/helm";

/** The Debian packages the test suite needs, the one list (.ci/run and CI install nothing else). */
export const TEST_PACKAGES = [
  { name: "nats-server", why: "the gateway tests start a real NATS server", required: true },
  { name: "chromium", why: "the web end-to-end test drives a real browser", required: true },
  { name: "fonts-dejavu-core", why: "a font, so the browser's screenshots are legible", required: false },
] as const;

export type TestPackage = (typeof TEST_PACKAGES)[number]["name"];

/** What is on this machine. */
export interface Probe {
  /** The packages that are missing. */
  readonly missing: readonly TestPackage[];
  /** Why the pinned helm binary cannot be unpacked, when it cannot. */
  readonly helmError?: string;
  readonly root: boolean;
  /** `sudo -n true` succeeds (asked only when something is missing and this is not root). */
  readonly passwordlessSudo: boolean;
  readonly aptGet: boolean;
}

export type Decision =
  | { readonly kind: "ready" }
  | {
      readonly kind: "install";
      readonly packages: readonly TestPackage[];
      /** The commands to run, in order (argv). */
      readonly commands: readonly (readonly string[])[];
    }
  | { readonly kind: "stop"; readonly line: string };

const APT_FLAGS = ["-y", "-qq", "--no-install-recommends"];

/** The one command a person runs to install `packages`. */
export function installCommand(packages: readonly string[], sudo: boolean): string {
  return `${sudo ? "sudo " : ""}apt-get update && ${sudo ? "sudo " : ""}apt-get install ${APT_FLAGS.filter((f) => f !== "-qq").join(" ")} ${packages.join(" ")}`;
}

const PREFIX = "test-deps:";

/** What to do about a machine: nothing, install these, or stop with one line. */
export function decide(p: Probe): Decision {
  if (p.helmError !== undefined)
    return {
      kind: "stop",
      line:
        `${PREFIX} the pinned helm (the render tests run it) cannot be unpacked: ${p.helmError.split("\n")[0]!}` +
        (p.helmError.includes("npm ci") ? "" : "; run `npm ci`"),
    };
  const required = p.missing.filter((m) => TEST_PACKAGES.find((t) => t.name === m)?.required);
  const canInstall = p.aptGet && (p.root || p.passwordlessSudo);
  if (p.missing.length === 0 || (required.length === 0 && !canInstall)) return { kind: "ready" };
  // Every missing package, the wanted ones too, in the list's order.
  const packages = TEST_PACKAGES.map((t) => t.name).filter((n) => p.missing.includes(n));
  if (canInstall) {
    const prefix = p.root ? [] : ["sudo", "-n"];
    const apt = [...prefix, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"];
    return {
      kind: "install",
      packages,
      commands: [
        [...apt, "update", "-qq"],
        [...apt, "install", ...APT_FLAGS, ...packages],
      ],
    };
  }
  const what = required.join(" and ");
  const why = required.map((r) => TEST_PACKAGES.find((t) => t.name === r)!.why).join("; ");
  if (p.aptGet)
    return {
      kind: "stop",
      line: `${PREFIX} ${what} missing (${why}) and installing needs root: run \`${installCommand(packages, true)}\`, then npm test again`,
    };
  return {
    kind: "stop",
    line:
      `${PREFIX} ${what} missing (${why}) and this machine has no apt-get: install ${what} with its package ` +
      "manager, then run `NATS_SERVER_BIN=<path> CHROMIUM_BIN=<path> npm test` (the paths they were installed at)",
  };
}

const executable = (file: string) => {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** Where a command is: $PATH, then the sbin directories Debian installs servers in. */
function onPath(command: string): boolean {
  const dirs = [...(process.env["PATH"] ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin", "/sbin"];
  return dirs.some((d) => d !== "" && executable(join(d, command)));
}

/** What the tests look for, where they look (services/gateway/test/helpers, web/test/e2e.test.ts). */
function missingPackages(): TestPackage[] {
  const natsServer = process.env["NATS_SERVER_BIN"];
  const chromium = process.env["CHROMIUM_BIN"] ?? "/usr/bin/chromium";
  const missing: TestPackage[] = [];
  if (!(natsServer ? executable(natsServer) : onPath("nats-server"))) missing.push("nats-server");
  if (!executable(chromium)) missing.push("chromium");
  // Only Debian's own font matters (its Chromium's); elsewhere the system's fonts serve.
  if (onPath("dpkg") && !existsSync("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"))
    missing.push("fonts-dejavu-core");
  return missing;
}

export function probe(): Probe {
  let helmError: string | undefined;
  try {
    helmBinary();
  } catch (e) {
    helmError = (e as Error).message;
  }
  const missing = missingPackages();
  const root = process.getuid?.() === 0;
  const passwordlessSudo =
    missing.length > 0 && !root && onPath("sudo") && spawnSync("sudo", ["-n", "true"]).status === 0;
  return {
    missing,
    ...(helmError === undefined ? {} : { helmError }),
    root,
    passwordlessSudo,
    aptGet: onPath("apt-get"),
  };
}

/** Probes, acts, and returns the exit code: 0 ready, 1 stopped (with its one line on stderr). */
export function main(): number {
  const decision = decide(probe());
  if (decision.kind === "ready") return 0;
  if (decision.kind === "stop") {
    console.error(decision.line);
    return 1;
  }
  console.error(`${PREFIX} installing ${decision.packages.join(", ")} with apt-get (the tests need them)`);
  for (const argv of decision.commands) {
    const r = spawnSync(argv[0]!, argv.slice(1), { stdio: ["ignore", "ignore", "inherit"] });
    if (r.status !== 0) {
      console.error(
        `${PREFIX} \`${argv.join(" ")}\` failed (${r.error?.message ?? `exit ${String(r.status)}`}): run \`${installCommand(decision.packages, false)}\` as root and look at its output`,
      );
      return 1;
    }
  }
  const still = missingPackages().filter((m) => TEST_PACKAGES.find((t) => t.name === m)?.required);
  if (still.length > 0) {
    console.error(
      `${PREFIX} apt-get installed ${decision.packages.join(", ")}, yet ${still.join(" and ")} cannot be found: ` +
        "unset NATS_SERVER_BIN / CHROMIUM_BIN if they point elsewhere, then run `npm test` again",
    );
    return 1;
  }
  return 0;
}

if (require.main === module) process.exit(main());
