/**
 * `--baseline DIR|FILE|GIT_REF`: the plans a run is compared with. DIR is an earlier run's `--out`
 * folder (its `<stack>/plan.json`: every resource's URN, type and inputs with secrets already
 * redacted, and every finding); FILE an earlier run's `--json` report; GIT_REF a commit, where the
 * same preflight runs in a temporary `git worktree` (reusing this checkout's node_modules through
 * symlinks, so no `npm ci`), which is removed afterwards.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import type { DiffPlan } from "./diff";
import { UsageError } from "./stack-config";

export type BaselineSource =
  | { readonly kind: "dir"; readonly path: string; readonly label: string }
  | { readonly kind: "report"; readonly path: string; readonly label: string }
  | {
      readonly kind: "ref";
      readonly ref: string;
      readonly sha: string;
      /** The repository's top level and the run's directory inside it (`""` at the top). */
      readonly root: string;
      readonly prefix: string;
      readonly label: string;
    };

/** Each stack's baseline plan, or why there is none. */
export interface Baseline {
  readonly label: string;
  readonly plans: ReadonlyMap<string, DiffPlan>;
  readonly notes: ReadonlyMap<string, string>;
}

const git = (cwd: string, args: string[]) => spawnSync("git", args, { cwd, encoding: "utf8" });

/** An existing path is a folder or a report; anything else must name a commit of the repository here. */
export function resolveBaseline(arg: string, cwd: string): BaselineSource {
  const path = resolve(cwd, arg);
  if (existsSync(path))
    return statSync(path).isDirectory()
      ? { kind: "dir", path, label: arg }
      : { kind: "report", path, label: arg };
  const sha = git(cwd, ["rev-parse", "--verify", "--quiet", `${arg}^{commit}`]);
  if (sha.status !== 0 || !sha.stdout.trim())
    throw new UsageError(
      `--baseline ${arg}: no such folder or report, and not a commit of this repository (an earlier run's --out folder, its --json report, or a git ref)`,
    );
  const root = git(cwd, ["rev-parse", "--show-toplevel"]).stdout.trim();
  const prefix = git(cwd, ["rev-parse", "--show-prefix"]).stdout.trim();
  const full = sha.stdout.trim();
  return { kind: "ref", ref: arg, sha: full, root, prefix, label: `${arg} (${full.slice(0, 7)})` };
}

function readJson(file: string): unknown {
  return JSON.parse(readFileSync(file, "utf8")) as unknown;
}

const isPlan = (v: unknown): v is DiffPlan =>
  typeof v === "object" && v !== null && Array.isArray((v as { resources?: unknown }).resources);

/** `<dir>/<stack>/plan.json` of each stack. */
export function readBaselineDir(dir: string, stacks: readonly string[], label = dir): Baseline {
  const plans = new Map<string, DiffPlan>();
  const notes = new Map<string, string>();
  for (const stack of stacks) {
    const file = join(dir, stack, "plan.json");
    if (!existsSync(file)) {
      notes.set(stack, `no ${stack}/plan.json in the baseline`);
      continue;
    }
    try {
      const plan = readJson(file);
      if (isPlan(plan)) plans.set(stack, plan);
      else notes.set(stack, `${stack}/plan.json of the baseline has no resources list`);
    } catch (e) {
      notes.set(stack, `${stack}/plan.json of the baseline is not JSON: ${(e as Error).message}`);
    }
  }
  return { label, plans, notes };
}

/** The plans of an earlier `--json` report (`{stacks: [{stack, status, plan}]}`). */
export function readBaselineReport(file: string, stacks: readonly string[], label = file): Baseline {
  let report: unknown;
  try {
    report = readJson(file);
  } catch (e) {
    throw new UsageError(`--baseline ${label}: not a JSON report (${(e as Error).message})`);
  }
  const entries = (report as { stacks?: unknown }).stacks;
  if (!Array.isArray(entries))
    throw new UsageError(`--baseline ${label}: not a preflight --json report (no "stacks" list)`);
  const plans = new Map<string, DiffPlan>();
  const notes = new Map<string, string>();
  for (const stack of stacks) {
    const entry = (entries as { stack?: unknown; status?: unknown; plan?: unknown }[]).find(
      (e) => e.stack === stack,
    );
    if (entry && isPlan(entry.plan)) plans.set(stack, entry.plan);
    else
      notes.set(stack, entry ? `the baseline has no plan (${String(entry.status)})` : "not in the baseline");
  }
  return { label, plans, notes };
}

export interface RefRunOptions {
  /** The stacks the run asked for (`--stack`), or undefined for every stack the ref has. */
  readonly stacks?: readonly string[];
  /** `--charts DIR|pull` of the run, so both sides render alike (DIR resolved against `cwd`). */
  readonly charts?: string;
  /** The run's directory (for a relative `--charts DIR`). */
  readonly cwd: string;
}

/** What the child preflight at the ref is asked: quiet, into `out`, with the run's stacks and charts. */
export function baselineArgs(out: string, options: RefRunOptions): string[] {
  const charts = options.charts;
  return [
    "--quiet",
    "--out",
    out,
    ...(options.stacks ?? []).flatMap((s) => ["--stack", s]),
    ...(charts
      ? ["--charts", charts === "pull" || isAbsolute(charts) ? charts : resolve(options.cwd, charts)]
      : []),
  ];
}

/**
 * Runs the ref's own preflight in a temporary worktree and reads its plans; the worktree is removed
 * whatever happens (`cleanup` also removes it early, for a run that is interrupted).
 */
export class RefBaseline {
  private readonly tmp: string;
  private readonly tree: string;
  private readonly links: string[] = [];
  private removed = false;

  constructor(private readonly source: Extract<BaselineSource, { kind: "ref" }>) {
    this.tmp = mkdtempSync(join(tmpdir(), "preflight-baseline-"));
    this.tree = join(this.tmp, "tree");
  }

  /** Creates the worktree and runs the preflight there; resolves to the plans of `stacks`, never rejects. */
  async run(stacks: readonly string[], options: RefRunOptions): Promise<Baseline> {
    try {
      return await this.runInTree(stacks, options);
    } catch (e) {
      return this.none(stacks, `the baseline run failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private async runInTree(stacks: readonly string[], options: RefRunOptions): Promise<Baseline> {
    const { root, sha, prefix, label } = this.source;
    const add = git(root, ["worktree", "add", "--detach", "--quiet", this.tree, sha]);
    if (add.status !== 0)
      return this.none(stacks, `git worktree add failed: ${add.stderr.trim().split("\n")[0] ?? ""}`);
    this.linkNodeModules();
    const cwd = join(this.tree, prefix);
    const script = join(this.tree, "tools", "preflight.ts");
    if (!existsSync(script)) return this.none(stacks, `${label} has no tools/preflight.ts`);
    const out = join(this.tmp, "out");
    const tsx = require.resolve("tsx/cli");
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" };
    delete env["FORCE_COLOR"];
    const result = await new Promise<{ code: number | null; stderr: string }>((done) => {
      const child = spawn(process.execPath, [tsx, script, ...baselineArgs(out, options)], {
        cwd,
        env,
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr.setEncoding("utf8");
      child.stderr.on("data", (d: string) => {
        if (stderr.length < 64_000) stderr += d;
      });
      child.on("error", (e) => done({ code: null, stderr: e.message }));
      child.on("close", (code) => done({ code, stderr }));
    });
    const baseline = readBaselineDir(out, stacks, label);
    // A stack the ref's preflight could not evaluate says why, from the ref's own words.
    const notes = new Map(baseline.notes);
    for (const stack of notes.keys()) {
      const line = result.stderr.split("\n").find((l) => l.startsWith(`${stack}: `));
      notes.set(
        stack,
        line
          ? `not evaluated at ${label}: ${line.slice(stack.length + 2)}`
          : `no plan at ${label} (its preflight exited ${String(result.code)}${result.code === 2 && result.stderr ? `: ${result.stderr.trim().split("\n")[0]}` : ""})`,
      );
    }
    return { label, plans: baseline.plans, notes };
  }

  private none(stacks: readonly string[], why: string): Baseline {
    return { label: this.source.label, plans: new Map(), notes: new Map(stacks.map((s) => [s, why])) };
  }

  /** node_modules of the checkout (root and each workspace that has its own) linked into the tree. */
  private linkNodeModules(): void {
    const { root } = this.source;
    let workspaces: string[] = [];
    try {
      const pkg = readJson(join(root, "package.json")) as { workspaces?: unknown };
      if (Array.isArray(pkg.workspaces))
        workspaces = pkg.workspaces.filter((w): w is string => typeof w === "string");
    } catch {
      // no workspaces
    }
    for (const dir of [".", ...workspaces]) {
      const from = join(root, dir, "node_modules");
      const to = join(this.tree, dir, "node_modules");
      if (!existsSync(from) || !existsSync(join(this.tree, dir)) || existsSync(to)) continue;
      symlinkSync(from, to, "dir");
      this.links.push(to);
    }
  }

  /** Removes the worktree (the links first, so nothing of the checkout's node_modules is touched). */
  cleanup(): void {
    if (this.removed) return;
    this.removed = true;
    for (const link of this.links)
      try {
        unlinkSync(link);
      } catch {
        // already gone
      }
    if (existsSync(this.tree)) git(this.source.root, ["worktree", "remove", "--force", this.tree]);
    rmSync(this.tmp, { recursive: true, force: true });
    git(this.source.root, ["worktree", "prune"]);
  }
}
