/**
 * The gateway image's dependency tree is the lockfile's: its Dockerfile installs with `npm ci` from the
 * workspace lockfile (nothing resolved from semver ranges), what that `npm ci` installs is exactly the
 * gateway's production tree as package-lock.json records it (npm itself asked, offline, in a dry run
 * with the very files the stage copies), and the runtime stage copies every directory of that tree.
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { keywordArgs, readDockerfile, type Stage } from "../../../policies/lib/dockerfile";
import { imageContents } from "../../../tools/preflight/contract";

const REPO = path.resolve(__dirname, "../../..");
const WORKSPACE = "services/gateway";
const DOCKERFILE = path.join(REPO, WORKSPACE, "Dockerfile");

interface LockEntry {
  name?: string;
  version?: string;
  link?: boolean;
  resolved?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}
interface Lockfile {
  lockfileVersion: number;
  packages: Record<string, LockEntry>;
}

/** Where `name` resolves from the package at lockfile location `from` (Node's lookup, upwards). */
function resolveFrom(packages: Lockfile["packages"], from: string, name: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = dir ? `${dir}/node_modules/${name}` : `node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (!dir) return undefined;
    const up = dir.lastIndexOf("/node_modules/");
    dir = up >= 0 ? dir.slice(0, up) : "";
  }
}

/**
 * Adds to `tree` (location -> "name version", the form of npm's dry-run lines) the packages `deps`
 * resolve to from lockfile location `from`, and theirs: dependencies, optional ones where locked,
 * and peers that are not optional.
 */
function addLocked(
  packages: Lockfile["packages"],
  tree: Map<string, string>,
  from: string,
  deps: readonly string[],
  optional: ReadonlySet<string> = new Set(),
): void {
  for (const dep of deps) {
    const at = resolveFrom(packages, from, dep);
    if (at === undefined) {
      if (optional.has(dep)) continue;
      throw new Error(`${from || "(root)"} depends on ${dep}, which the lockfile does not hold`);
    }
    if (tree.has(at)) continue;
    const e = packages[at]!;
    tree.set(at, `${at.slice(at.lastIndexOf("node_modules/") + "node_modules/".length)} ${e.version}`);
    addLocked(packages, tree, at, edgesOf(e), new Set(Object.keys(e.optionalDependencies ?? {})));
  }
}

/** A package's production edges: dependencies, optional dependencies, peers that are not optional. */
const edgesOf = (e: LockEntry) => [
  ...Object.keys(e.dependencies ?? {}),
  ...Object.keys(e.optionalDependencies ?? {}),
  ...Object.keys(e.peerDependencies ?? {}).filter((p) => !e.peerDependenciesMeta?.[p]?.optional),
];

/** The production tree of `workspace` as the lockfile records it, the workspace's own link included. */
export function lockedProductionTree(lock: Lockfile, workspace: string): Map<string, string> {
  const ws = lock.packages[workspace];
  if (!ws?.name || !ws.version) throw new Error(`${workspace} is not a workspace of the lockfile`);
  const tree = new Map<string, string>([[`node_modules/${ws.name}`, `${ws.name} ${ws.version}`]]);
  addLocked(lock.packages, tree, workspace, edgesOf(ws), new Set(Object.keys(ws.optionalDependencies ?? {})));
  return tree;
}

/** The `node_modules` directories a set of lockfile locations lives in (their outermost ones). */
const moduleRoots = (locations: Iterable<string>) =>
  [
    ...new Set([...locations].map((l) => l.slice(0, l.indexOf("node_modules") + "node_modules".length))),
  ].sort();

const NPM_ENV = { ...process.env, npm_config_update_notifier: "false", npm_config_loglevel: "error" };

/**
 * What a RUN's npm commands would install in `cwd`, from npm itself: each `npm ...` command of the
 * script in order (the cache clean-up left out), `npm ci` as a dry run, offline ("name version" lines).
 */
function npmDryRun(cwd: string, run: string): string[] {
  let out: string | undefined;
  for (const cmd of run.split(/&&|\\\n/).map((c) => words(c))) {
    if (cmd[0] !== "npm" || cmd[1] === "cache") continue;
    const ci = cmd[1] === "ci";
    const args = [...cmd.slice(1), ...(ci ? ["--dry-run", "--offline"] : [])];
    const r = execFileSync("npm", args, {
      cwd,
      encoding: "utf8",
      env: NPM_ENV,
      stdio: ["ignore", "pipe", "pipe"],
    });
    if (ci) out = r;
  }
  if (out === undefined) throw new Error(`no npm ci in: ${run}`);
  return out
    .split("\n")
    .filter((l) => l.startsWith("add "))
    .map((l) => l.slice(4).trim())
    .sort();
}

const words = (s: string) => s.split(/\s+/).filter(Boolean);
const df = readDockerfile(DOCKERFILE);
const runs = (s: Stage) => s.instructions.filter((i) => i.getKeyword() === "RUN").map((i) => keywordArgs(i));
/** The `npm ci ...` command of a RUN (up to the next `&&`, `;` or line continuation). */
const npmCi = (run: string) => /\bnpm\s+ci\b[^&;|\\\n]*/.exec(run)?.[0].trim();
const depsStage = df.stages.find((s) =>
  runs(s).some((r) => {
    const ci = npmCi(r);
    return ci !== undefined && words(ci).includes("--omit=dev");
  }),
);
const workdirOf = (s: Stage) =>
  s.instructions
    .filter((i) => i.getKeyword() === "WORKDIR")
    .reduce((dir, i) => path.posix.resolve(dir, keywordArgs(i).trim()), "/");

describe("the gateway image installs exactly the lockfile's tree", () => {
  const lock = JSON.parse(readFileSync(path.join(REPO, "package-lock.json"), "utf8")) as Lockfile;
  const tree = lockedProductionTree(lock, WORKSPACE);

  it("resolves nothing from semver ranges: npm ci only, with the lockfile in the stage", () => {
    for (const s of df.stages)
      for (const r of runs(s)) expect(`${s.name}: ${r}`).not.toMatch(/\bnpm\s+(install|i|add|update)\b/);
    expect(depsStage?.name).toBe("deps");
    const ci = words(runs(depsStage!).map(npmCi).find(Boolean)!);
    expect(ci).toEqual(expect.arrayContaining(["--omit=dev", "--workspace", WORKSPACE]));
    const copied = depsStage!.instructions
      .filter((i) => i.getKeyword() === "COPY")
      .flatMap((i) =>
        i
          .getArguments()
          .map((a) => a.getValue())
          .slice(0, -1),
      );
    expect(copied).toEqual(
      expect.arrayContaining(["package-lock.json", "package.json", `${WORKSPACE}/package.json`]),
    );
  });

  it("the lockfile's production tree of the gateway is what that npm ci installs (npm's own dry run, offline)", () => {
    // The deps stage's context files, where it puts them, then its npm ci as a dry run.
    const dir = mkdtempSync(path.join(tmpdir(), "gateway-image-"));
    try {
      const workdir = workdirOf(depsStage!);
      for (const ins of depsStage!.instructions) {
        if (ins.getKeyword() === "RUN") break;
        if (ins.getKeyword() !== "COPY") continue;
        const args = ins.getArguments().map((a) => a.getValue());
        const to = args.pop()!;
        // `COPY a b/` (or several sources) puts each into b/; `COPY a b` makes b.
        const intoDir = to.endsWith("/") || args.length > 1;
        const dest = path.posix.resolve(workdir, to);
        for (const src of args) {
          const target = path.join(dir, intoDir ? path.posix.join(dest, path.posix.basename(src)) : dest);
          mkdirSync(path.dirname(target), { recursive: true });
          cpSync(path.join(REPO, src), target);
        }
      }
      const installed = npmDryRun(
        path.join(dir, workdir),
        runs(depsStage!).find((r) => npmCi(r))!,
      );
      expect(installed.length).toBeGreaterThan(10);
      expect(installed).toEqual([...tree.values()].sort());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("the build stage's compiler is the root lockfile's: the lockfile it cuts installs exactly those packages", () => {
    const build = df.stages.find((s) => s.name === "build")!;
    const run = build.instructions.find(
      (i) => i.getKeyword() === "RUN" && /<<'TOOLCHAIN'/.test(keywordArgs(i)),
    )!;
    const first = run.getRange().start.line;
    const end = df.lines.findIndex((l, n) => n > first && l === "TOOLCHAIN");
    const script = df.lines.slice(first + 1, end).join("\n");
    const names = words(df.lines[first]!.split("<<")[0]!).slice(4);
    expect(names).toEqual(["typescript", "@types/node"]);
    const dir = mkdtempSync(path.join(tmpdir(), "gateway-toolchain-"));
    try {
      execFileSync(process.execPath, ["-", path.join(REPO, "package-lock.json"), ...names], {
        cwd: dir,
        input: script,
      });
      const want = new Map<string, string>();
      addLocked(lock.packages, want, "", names);
      const next = build.instructions[build.instructions.indexOf(run) + 1]!;
      expect(npmDryRun(dir, keywordArgs(next))).toEqual([...want.values()].sort());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("the runtime stage copies every node_modules directory of that tree from the deps stage, in the lockfile's layout", () => {
    const { config, copies } = imageContents(df);
    const workdir = workdirOf(depsStage!);
    const fromDeps = copies
      .filter((c) => c.from === depsStage!.name)
      .map((c) => [c.sources.join(","), c.dest.replace(/\/$/, "")]);
    expect(fromDeps).toEqual(moduleRoots(tree.keys()).map((r) => [`${workdir}/${r}`, `${workdir}/${r}`]));
    // Run from the workspace's directory, so its own node_modules resolve first, as in the repository.
    expect(config.workingDir).toBe(`${workdir}/${WORKSPACE}`);
    expect(config.cmd).toEqual(["dist/main.js"]);
  });

  it("the tree computation follows nested copies and optional dependencies", () => {
    const fixture: Lockfile = {
      lockfileVersion: 3,
      packages: {
        "": { name: "root" },
        "node_modules/w": { link: true, resolved: "ws/w" },
        "ws/w": {
          name: "w",
          version: "1.0.0",
          dependencies: { a: "^1", b: "^2" },
          optionalDependencies: { gone: "1" },
        },
        "node_modules/a": { version: "1.2.0", dependencies: { b: "^1" } },
        "node_modules/a/node_modules/b": { version: "1.9.0" },
        "ws/w/node_modules/b": { version: "2.1.0", peerDependencies: { a: "1" } },
        "node_modules/b": { version: "3.0.0" },
        "node_modules/dev-only": { version: "9.9.9" },
      },
    };
    expect([...lockedProductionTree(fixture, "ws/w")].sort()).toEqual([
      ["node_modules/a", "a 1.2.0"],
      ["node_modules/a/node_modules/b", "b 1.9.0"],
      ["node_modules/w", "w 1.0.0"],
      ["ws/w/node_modules/b", "b 2.1.0"],
    ]);
    expect(moduleRoots(["node_modules/a/node_modules/b", "ws/w/node_modules/b"])).toEqual([
      "node_modules",
      "ws/w/node_modules",
    ]);
  });
});
