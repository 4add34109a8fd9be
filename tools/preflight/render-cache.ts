/**
 * A persistent cache of `helm template` results, so a second preflight run re-renders only the
 * charts whose inputs changed (the edit–preflight loop, a CI job that restores the cache).
 *
 * `helm template`'s output is a function of the helm binary, the chart's files, the arguments and
 * the values; the key is a digest of exactly those (the chart by its content, not its path), so an
 * entry can never stand in for a render with other inputs. Only successful renders are stored,
 * already parsed (JSON reads several times faster than the YAML it came from). A missing, stale
 * or corrupt entry is a miss: the chart renders and the entry is written again.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, relative } from "node:path";
import { HELM } from "../../components/versions";
import type { RawObject } from "./render";

/** Bumped when the stored shape changes, so old entries are misses rather than misreads. */
const FORMAT = 2;

/** A stored document: its template and its JSON text (the text is what identical documents share). */
interface StoredDocument {
  readonly source: string;
  readonly json: string;
}

/** `${XDG_CACHE_HOME:-~/.cache}/ai-delivery-platform/renders`: the CLI's default. */
export function userRenderCache(): string {
  const base = process.env["XDG_CACHE_HOME"] || join(homedir(), ".cache");
  return join(base, "ai-delivery-platform", "renders");
}

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");

/**
 * The content digest of a chart source: a `.tgz` by its bytes, an unpacked folder by every file's
 * relative path and bytes (sorted, so the walk order does not matter).
 */
export function chartFingerprint(path: string): string {
  if (!statSync(path).isDirectory()) return sha256(readFileSync(path));
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) files.push(full);
    }
  };
  walk(path);
  const hash = createHash("sha256");
  for (const file of files.sort()) {
    const bytes = readFileSync(file);
    hash.update(`${relative(path, file)}\0${bytes.length}\0`).update(bytes);
  }
  return hash.digest("hex");
}

/** The cache key of one render: helm, the chart's content, the arguments without its path, values. */
export function renderKey(
  chart: { readonly path: string; readonly fingerprint: string },
  args: readonly string[],
  values: string,
): string {
  const portable = args.map((a) => (a === chart.path ? "<chart>" : a));
  return sha256(JSON.stringify([FORMAT, HELM.version, HELM.sha256, chart.fingerprint, portable, values]));
}

export class RenderCache {
  /** Chart fingerprints by path, computed once per cache (per run). */
  private readonly fingerprints = new Map<string, string>();

  constructor(
    readonly dir: string,
    /** Entries kept; the least recently written beyond this are removed on write. */
    private readonly maxEntries = 512,
  ) {}

  fingerprint(path: string): string {
    let f = this.fingerprints.get(path);
    if (f === undefined) this.fingerprints.set(path, (f = chartFingerprint(path)));
    return f;
  }

  /**
   * The entry's documents, or undefined on a miss. `documents` interns them by text: renders with
   * other values still print the same CRDs, and one parsed object for all of them is parsed once
   * and judged once by the checks that remember what they judged.
   */
  get(key: string, documents?: Map<string, unknown>): readonly RawObject[] | undefined {
    let text: string;
    try {
      text = readFileSync(join(this.dir, `${key}.json`), "utf8");
    } catch {
      return undefined;
    }
    try {
      const entry = JSON.parse(text) as { format?: unknown; key?: unknown; docs?: unknown };
      // The key inside guards against a truncated or foreign file under the right name.
      if (entry.format !== FORMAT || entry.key !== key || !Array.isArray(entry.docs)) return undefined;
      return (entry.docs as StoredDocument[]).map(({ source, json }) => {
        const known = documents?.get(json) as Record<string, unknown> | undefined;
        const object = known ?? (JSON.parse(json) as Record<string, unknown>);
        if (!known) documents?.set(json, object);
        return { object, source };
      });
    } catch {
      return undefined;
    }
  }

  set(key: string, raw: readonly RawObject[]): void {
    try {
      mkdirSync(this.dir, { recursive: true });
      const target = join(this.dir, `${key}.json`);
      // Write then rename: a concurrent run reads a whole entry or none.
      const partial = `${target}.${process.pid}.partial`;
      const docs: StoredDocument[] = raw.map((r) => ({ source: r.source, json: JSON.stringify(r.object) }));
      writeFileSync(partial, JSON.stringify({ format: FORMAT, key, docs }));
      renameSync(partial, target);
      this.prune();
    } catch {
      // A cache that cannot be written costs speed, never a verdict.
    }
  }

  private prune(): void {
    const entries = readdirSync(this.dir).filter((f) => f.endsWith(".json"));
    if (entries.length <= this.maxEntries) return;
    const byAge = entries
      .map((f) => ({ f, t: statSync(join(this.dir, f)).mtimeMs }))
      .sort((a, b) => a.t - b.t);
    for (const { f } of byAge.slice(0, entries.length - this.maxEntries))
      rmSync(join(this.dir, f), { force: true });
  }
}
