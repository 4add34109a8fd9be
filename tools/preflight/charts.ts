/**
 * Where a chart's real package comes from for render mode: a local chart cache (`--charts DIR`:
 * `<chart>-<version>.tgz` as `helm pull` writes them, or unpacked `<chart>-<version>/` folders), or
 * the per-user cache that `--charts pull` fills from each chart's repository when online. Every
 * source is checked to be the pinned version before anything renders from it.
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { runHelm } from "./helm";

/** A chart a Chart registration asks for. */
export interface ChartRef {
  readonly chart: string;
  readonly version: string;
  readonly repo?: string;
}

/** One line naming the chart, what is wrong and what to do (exit 2). */
export class ChartSourceError extends Error {
  constructor(
    readonly ref: ChartRef,
    readonly problem: string,
    readonly hint: string,
  ) {
    super(`chart ${ref.chart} ${ref.version}: ${problem}; ${hint}`);
  }
}

/** `${XDG_CACHE_HOME:-~/.cache}/ai-delivery-platform/charts`: what `--charts pull` fills. */
export function userChartCache(): string {
  const base = process.env["XDG_CACHE_HOME"] || join(homedir(), ".cache");
  return join(base, "ai-delivery-platform", "charts");
}

const stripV = (v: string) => v.replace(/^v/, "");

/** The cache entry for `ref` in `dir`, if any: the tarball first, then an unpacked folder. */
export function cacheEntry(dir: string, ref: ChartRef): string | undefined {
  const tgz = join(dir, `${ref.chart}-${ref.version}.tgz`);
  if (existsSync(tgz)) return tgz;
  const folder = join(dir, `${ref.chart}-${ref.version}`);
  if (existsSync(join(folder, "Chart.yaml"))) return folder;
  return undefined;
}

/**
 * Resolves and verifies chart sources, once per path per run (a stack set renders the same
 * charts many times).
 */
export class ChartSource {
  private readonly verified = new Map<string, Promise<string>>();

  constructor(
    /** `pull`, or a directory. */
    readonly spec: string,
    /** Private helm home (no user repositories or logins). */
    private readonly helmHome: string,
  ) {}

  get dir(): string {
    return this.spec === "pull" ? userChartCache() : this.spec;
  }

  /** The verified local path of `ref`, pulling it first in `pull` mode when it is not cached. */
  resolve(ref: ChartRef): Promise<string> {
    const key = `${ref.chart}@${ref.version}@${ref.repo ?? ""}`;
    let p = this.verified.get(key);
    if (!p) this.verified.set(key, (p = this.locate(ref)));
    return p;
  }

  private async locate(ref: ChartRef): Promise<string> {
    const dir = this.dir;
    let path = cacheEntry(dir, ref);
    if (!path && this.spec === "pull") path = await this.pull(ref, dir);
    if (!path)
      throw new ChartSourceError(
        ref,
        `not in the chart cache ${dir}`,
        ref.repo
          ? `run \`helm pull ${ref.chart} --repo ${ref.repo} --version ${ref.version} -d ${dir}\`, or \`npm run preflight -- --charts pull\` online`
          : `put ${ref.chart}-${ref.version}.tgz there`,
      );
    await this.verify(ref, path);
    return path;
  }

  private async pull(ref: ChartRef, dir: string): Promise<string | undefined> {
    if (!ref.repo)
      throw new ChartSourceError(ref, "has no repository to pull from", "give repositoryOpts.repo");
    mkdirSync(dir, { recursive: true });
    const oci = ref.repo.startsWith("oci://");
    const args = oci
      ? ["pull", `${ref.repo.replace(/\/$/, "")}/${ref.chart}`, "--version", ref.version, "-d", dir]
      : ["pull", ref.chart, "--repo", ref.repo, "--version", ref.version, "-d", dir];
    const r = await runHelm(args, { home: this.helmHome });
    if (r.code !== 0)
      throw new ChartSourceError(
        ref,
        `helm pull from ${ref.repo} failed (${firstLine(r.stderr)})`,
        `check the network, or copy ${ref.chart}-${ref.version}.tgz into ${dir}`,
      );
    return cacheEntry(dir, ref);
  }

  private async verify(ref: ChartRef, path: string): Promise<void> {
    const r = await runHelm(["show", "chart", path], { home: this.helmHome });
    if (r.code !== 0) {
      const what = statSync(path).isDirectory() ? "unreadable chart folder" : "corrupt tarball";
      throw new ChartSourceError(
        ref,
        `${what} ${path} (${firstLine(r.stderr)})`,
        "delete it and pull it again (`npm run preflight -- --charts pull`)",
      );
    }
    const meta = parseYaml(r.stdout) as { name?: unknown; version?: unknown } | null;
    const version = typeof meta?.version === "string" ? meta.version : "";
    const name = typeof meta?.name === "string" ? meta.name : "";
    if (name !== ref.chart || stripV(version) !== stripV(ref.version))
      throw new ChartSourceError(
        ref,
        `${path} holds ${name || "?"} ${version || "?"}, not the pinned version`,
        "replace it with the pinned package (versions.ts)",
      );
  }
}

export function firstLine(s: string): string {
  const line = s
    .split("\n")
    .map((l) => l.trim())
    .find((l) => l.length > 0);
  return (line ?? "no output").replace(/^Error:\s*/, "");
}
