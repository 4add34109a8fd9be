/**
 * Dockerfiles of image resources: which file a `docker:index/image:Image` builds, parsed once per
 * path (dockerfile-ast) into stages with ARG-resolved base images.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { DockerfileParser, type Instruction } from "dockerfile-ast";
import { parseImageRef, type ImageRef } from "./images";
import { disablesAptRecommends, parseMount, type Mount } from "./packages";
import type { Shell, ShellScript } from "./shell";
import { isUnknown, obj, str, type Obj } from "./values";

export const DOCKER_IMAGE_TYPES: ReadonlySet<string> = new Set([
  "docker:index/image:Image",
  "docker:index/Image:Image",
  "docker-build:index:Image",
]);

export interface Stage {
  readonly index: number;
  /** `AS` name, lower-cased. */
  readonly name?: string;
  /** Base as written, after ARG substitution. */
  readonly base: string;
  /** Index of the stage this one builds FROM, when it is a stage reference. */
  readonly parent?: number;
  /** Parsed external base (undefined for stage references, `scratch` and unresolvable ARGs). */
  readonly ref?: ImageRef;
  readonly unresolved: boolean;
  readonly line: number;
  readonly instructions: readonly Instruction[];
}

export interface ParsedDockerfile {
  readonly path: string;
  readonly stages: readonly Stage[];
  /** Defaults of the ARGs declared before the first FROM. */
  readonly globalArgs: ReadonlyMap<string, string>;
  /** Names of the ARGs declared before the first FROM (with or without default). */
  readonly declaredArgs: ReadonlySet<string>;
  readonly instructions: readonly Instruction[];
  /** Source lines, for rebuilding the shell of a RUN as Docker hands it to the shell. */
  readonly lines: readonly string[];
  /** The line-continuation character (`# escape=` directive; a backslash by default). */
  readonly escape: string;
  /** Build args of the image resource (they set stage ARGs, which RUNs see as environment). */
  readonly buildArgs: ReadonlyMap<string, string>;
}

export type DockerfileSource =
  | { readonly kind: "file"; readonly path: string; readonly buildArgs: ReadonlyMap<string, string> }
  | { readonly kind: "unknown" };

/** Directory the program runs in: relative Dockerfile paths are resolved against it. */
export const REPO_ROOT = path.resolve(__dirname, "..", "..");

/**
 * The Dockerfile an image resource builds: `build.dockerfile` (relative to the working directory,
 * i.e. the repo root where pulumi runs), defaulting to `<build.context>/Dockerfile`.
 */
export function dockerfileOf(props: Obj, rootDir?: string): DockerfileSource | undefined {
  const buildIn = props["build"];
  const build = typeof buildIn === "string" ? { context: buildIn } : obj(buildIn);
  if (!build) return undefined;
  const ctxIn = build["context"];
  const dfIn = build["dockerfile"];
  if (isUnknown(ctxIn) || isUnknown(dfIn)) return { kind: "unknown" };
  const context = str(ctxIn) ?? ".";
  const dockerfile = str(dfIn) ?? path.join(context, "Dockerfile");
  const buildArgs = new Map<string, string>();
  for (const [k, v] of Object.entries(obj(build["args"]) ?? {})) {
    const s = str(v);
    if (s !== undefined) buildArgs.set(k, s);
  }
  return { kind: "file", path: resolveDockerfilePath(dockerfile, rootDir), buildArgs };
}

export function resolveDockerfilePath(p: string, rootDir?: string): string {
  if (path.isAbsolute(p)) return p;
  const roots = [rootDir, process.cwd(), REPO_ROOT].filter((r): r is string => typeof r === "string");
  for (const r of roots) {
    const candidate = path.resolve(r, p);
    if (existsSync(candidate)) return candidate;
  }
  return path.resolve(roots[0]!, p);
}

const cache = new Map<string, { mtimeMs: number; parsed: ParsedDockerfile }>();

export function clearDockerfileCache(): void {
  cache.clear();
}

/** Reads and parses a Dockerfile (cached per path and mtime). Throws when it cannot be read. */
export function readDockerfile(file: string): ParsedDockerfile {
  const mtimeMs = statSync(file).mtimeMs;
  const hit = cache.get(file);
  if (hit && hit.mtimeMs === mtimeMs) return hit.parsed;
  const parsed = parseDockerfile(readFileSync(file, "utf8"), file);
  cache.set(file, { mtimeMs, parsed });
  return parsed;
}

const VAR_RE = /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g;

/** Substitutes `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alt}`; unresolvable ones are kept. */
export function substitute(s: string, vars: ReadonlyMap<string, string>): string {
  return s.replace(
    VAR_RE,
    (
      whole,
      braced: string | undefined,
      op: string | undefined,
      word: string | undefined,
      bare: string | undefined,
    ) => {
      const name = braced ?? bare!;
      const v = vars.get(name);
      if (op === "-") return v !== undefined && v !== "" ? v : (word ?? "");
      if (op === "+") return v !== undefined && v !== "" ? (word ?? "") : "";
      return v ?? whole;
    },
  );
}

export function parseDockerfile(content: string, file = "Dockerfile"): ParsedDockerfile {
  const df = DockerfileParser.parse(content);
  const instructions = df.getInstructions();
  const globalArgs = new Map<string, string>();
  const declaredArgs = new Set<string>();
  for (const arg of df.getInitialARGs()) {
    const p = arg.getProperty();
    const name = p?.getName();
    const value = p?.getValue();
    if (name) declaredArgs.add(name);
    if (name && value !== null && value !== undefined) globalArgs.set(name, value);
  }
  return {
    path: file,
    stages: buildStages(instructions, globalArgs),
    globalArgs,
    declaredArgs,
    instructions,
    lines: content.split(/\r?\n/),
    escape: df.getEscapeCharacter(),
    buildArgs: new Map(),
  };
}

function buildStages(instructions: readonly Instruction[], vars: ReadonlyMap<string, string>): Stage[] {
  const stages: Stage[] = [];
  let current: { from: Instruction; body: Instruction[] } | undefined;
  const groups: { from: Instruction; body: Instruction[] }[] = [];
  for (const ins of instructions) {
    if (ins.getKeyword() === "FROM") {
      current = { from: ins, body: [] };
      groups.push(current);
    } else if (current) current.body.push(ins);
  }
  groups.forEach((g, index) => {
    const args = g.from.getArguments().map((a) => a.getValue());
    const written = args[0] ?? "";
    const base = substitute(written, vars);
    const asIdx = args.findIndex((a) => a.toLowerCase() === "as");
    const name = asIdx >= 0 ? args[asIdx + 1]?.toLowerCase() : undefined;
    const parent = stages.findIndex((s) => s.name !== undefined && s.name === base.toLowerCase());
    const unresolved = base.includes("$");
    const ref =
      parent >= 0 || unresolved || base.toLowerCase() === "scratch" ? undefined : parseImageRef(base);
    stages.push({
      index,
      ...(name ? { name } : {}),
      base,
      ...(parent >= 0 ? { parent } : {}),
      ...(ref ? { ref } : {}),
      unresolved,
      line: g.from.getRange().start.line + 1,
      instructions: g.body,
    });
  });
  return stages;
}

/** Re-resolves stage bases with the image's build args (global ARG defaults overridden). */
export function withBuildArgs(
  df: ParsedDockerfile,
  buildArgs: ReadonlyMap<string, string>,
): ParsedDockerfile {
  if (buildArgs.size === 0) return df;
  const vars = new Map(df.globalArgs);
  for (const [k, v] of buildArgs) if (df.declaredArgs.has(k)) vars.set(k, v);
  return { ...df, globalArgs: vars, stages: buildStages(df.instructions, vars), buildArgs };
}

/** The final stage and the stages it builds FROM, final first. */
export function finalChain(df: ParsedDockerfile): Stage[] {
  const out: Stage[] = [];
  let cur = df.stages[df.stages.length - 1];
  while (cur && out.length <= df.stages.length) {
    out.push(cur);
    cur = cur.parent !== undefined ? df.stages[cur.parent] : undefined;
  }
  return out;
}

/** The external base image the final stage ultimately runs on ("scratch" included). */
export function finalBase(df: ParsedDockerfile): Stage | undefined {
  const chain = finalChain(df);
  return chain[chain.length - 1];
}

export function keywordArgs(ins: Instruction): string {
  return ins.getArgumentsContent() ?? "";
}

/** Flag values of an instruction (`--mount=type=cache,...` → ["type=cache,..."]). */
export function flagsOf(ins: Instruction, flag: string): string[] {
  const f = (ins as unknown as { getFlags?: () => { getName(): string; getValue(): string | null }[] })
    .getFlags;
  if (typeof f !== "function") return [];
  return f
    .call(ins)
    .filter((x) => x.getName().toLowerCase() === flag)
    .map((x) => x.getValue() ?? "");
}

/**
 * The shell script of a RUN as Docker hands it to `/bin/sh -c`, from the source lines: continuation
 * lines kept with their backslash (the shell joins them the same way, so rows still map to lines),
 * comment and empty lines inside the continuation dropped as Docker drops them, here-document
 * lines kept verbatim. `rows[i]` is the 0-based source line of script row i.
 */
export function runScript(
  lines: readonly string[],
  start: { readonly line: number; readonly character: number },
  endLine: number,
  verbatim: ReadonlySet<number> = new Set(),
  escape = "\\",
): { text: string; rows: number[] } {
  const out: string[] = [];
  const rows: number[] = [];
  let continued = false;
  for (let l = start.line; l <= endLine && l < lines.length; l++) {
    let text = l === start.line ? lines[l]!.slice(start.character) : lines[l]!;
    if (verbatim.has(l)) {
      out.push(text);
      rows.push(l);
      continue;
    }
    if (continued && (text.trim() === "" || text.trimStart().startsWith("#"))) continue;
    continued = text.trimEnd().endsWith(escape);
    if (continued && escape !== "\\") text = `${text.trimEnd().slice(0, -escape.length)}\\`;
    out.push(text);
    rows.push(l);
  }
  return { text: out.join("\n"), rows };
}

export interface RunInfo {
  readonly stage: Stage;
  readonly ins: Instruction;
  /** 1-based line of the RUN instruction. */
  readonly line: number;
  readonly script: ShellScript;
  /** 1-based Dockerfile line of a script row (of `script.commands[i].row`). */
  readonly lineOf: (row: number) => number;
  readonly mounts: readonly Mount[];
  /** Home directory of the user the RUN runs as (undefined: a uid whose home is not known). */
  readonly home: string | undefined;
  /** An earlier RUN of the stage (or a stage it builds on) configured apt against recommends. */
  readonly aptNoRecommends: boolean;
  /** Why the RUN was not parsed (a non-POSIX `SHELL`). */
  readonly skipped?: string;
}

/** State of a stage at one instruction: what a RUN there runs with. */
interface StageState {
  env: Map<string, string>;
  user: string;
  shell: readonly string[];
  aptNoRecommends: boolean;
}

/** Home of a user: `$HOME` if set, /root for root, /home/NAME for a named user, unknown for a bare uid. */
export function homeOf(user: string, env: ReadonlyMap<string, string>): string | undefined {
  const set = env.get("HOME");
  if (set) return set;
  const name = user.split(":")[0] ?? "";
  if (name === "" || name === "root" || name === "0") return "/root";
  return /^\d+$/.test(name) || name.includes("$") ? undefined : `/home/${name}`;
}

const jsonArgv = (ins: Instruction): string[] | undefined => {
  const strings = (ins as unknown as { getJSONStrings?: () => { getValue(): string }[] }).getJSONStrings?.();
  if (!strings || strings.length === 0) return undefined;
  try {
    return strings.map((s) => JSON.parse(s.getValue()) as string);
  } catch {
    return undefined;
  }
};

interface HeredocLike {
  getContentRange(): { start: { line: number }; end: { line: number } } | null;
  getDelimiterRange(): { start: { line: number } } | null;
}
const heredocsOf = (ins: Instruction): HeredocLike[] =>
  (ins as unknown as { getHeredocs?: () => HeredocLike[] }).getHeredocs?.() ?? [];

/**
 * Every RUN of `stages` with its parsed shell and what it runs with: ENV and ARG values (a stage
 * inherits the ENV of the stage it builds FROM), the user's home, its mounts.
 */
export function runsOf(df: ParsedDockerfile, stages: readonly Stage[], shell: Shell): RunInfo[] {
  const endStates = new Map<number, StageState>();
  const out: RunInfo[] = [];
  const wanted = new Set(stages.map((s) => s.index));
  const walk = (stage: Stage, guard: number): StageState => {
    const memo = endStates.get(stage.index);
    if (memo) return memo;
    const parent =
      stage.parent !== undefined && guard < df.stages.length
        ? walk(df.stages[stage.parent]!, guard + 1)
        : undefined;
    const st: StageState = parent
      ? { ...parent, env: new Map(parent.env) }
      : { env: new Map(), user: "", shell: ["/bin/sh", "-c"], aptNoRecommends: false };
    const args = new Map<string, string>(); // stage ARGs: seen by RUNs, not inherited by child stages
    const vars = () => new Map([...df.globalArgs, ...args, ...st.env]);
    for (const ins of stage.instructions) {
      const kw = ins.getKeyword();
      if (kw === "ENV") {
        const props = (
          ins as unknown as { getProperties(): { getName(): string; getValue(): string | null }[] }
        ).getProperties();
        for (const p of props) st.env.set(p.getName(), substitute(p.getValue() ?? "", vars()));
      } else if (kw === "ARG") {
        const p = (
          ins as unknown as { getProperty(): { getName(): string; getValue(): string | null } | null }
        ).getProperty();
        const name = p?.getName();
        if (!name) continue;
        const d = p?.getValue();
        const value =
          df.buildArgs.get(name) ??
          (d !== null && d !== undefined ? substitute(d, vars()) : df.globalArgs.get(name));
        if (value !== undefined) args.set(name, value);
      } else if (kw === "USER") {
        st.user = substitute(ins.getArguments()[0]?.getValue() ?? "", vars());
      } else if (kw === "SHELL") {
        st.shell = jsonArgv(ins) ?? st.shell;
      } else if (kw === "RUN") {
        const info = runInfo(df, stage, ins, st, new Map([...args, ...st.env]), shell);
        if (info.script.commands.some(disablesAptRecommends)) st.aptNoRecommends = true;
        if (wanted.has(stage.index)) out.push(info);
      }
    }
    endStates.set(stage.index, st);
    return st;
  };
  for (const s of stages) walk(s, 0);
  return out.sort((a, b) => a.line - b.line);
}

const NON_POSIX_SHELL_RE = /^(pwsh|powershell|cmd)(\.exe)?$/i;

function runInfo(
  df: ParsedDockerfile,
  stage: Stage,
  ins: Instruction,
  st: StageState,
  runEnv: Map<string, string>,
  shell: Shell,
): RunInfo {
  const line = ins.getRange().start.line + 1;
  const home = homeOf(st.user, runEnv);
  const env = new Map(runEnv);
  if (home !== undefined && !env.has("HOME")) env.set("HOME", home);
  const vars = new Map([...df.globalArgs, ...env]);
  const mounts = flagsOf(ins, "mount").map((m) => parseMount(substitute(m, vars)));
  const common = { stage, ins, line, mounts, home, aptNoRecommends: st.aptNoRecommends };
  const exec = jsonArgv(ins);
  if (exec) return { ...common, script: shell.argv(exec, env), lineOf: () => line };
  const shellName = (st.shell[0] ?? "").split(/[\\/]/).pop() ?? "";
  if (NON_POSIX_SHELL_RE.test(shellName))
    return { ...common, script: { commands: [] }, lineOf: () => line, skipped: `SHELL ${shellName}` };
  const first = ins.getArguments()[0];
  if (!first) return { ...common, script: { commands: [] }, lineOf: () => line };
  const heredocs = heredocsOf(ins);
  const verbatim = new Set<number>();
  for (const h of heredocs) {
    const c = h.getContentRange();
    const d = h.getDelimiterRange();
    if (c) for (let l = c.start.line; l <= c.end.line; l++) verbatim.add(l);
    if (d) verbatim.add(d.start.line);
  }
  const end = ins.getRange().end.line;
  // `RUN <<EOF` with no command: BuildKit runs the here-document itself as the script.
  const content = heredocs[0]?.getContentRange();
  if (
    /^<<-?["']?[A-Za-z_]/.test(first.getValue()) &&
    /^<<\S+\s*$/.test(
      df.lines[first.getRange().start.line]!.slice(first.getRange().start.character).trim(),
    ) &&
    content
  ) {
    const { text, rows } = runScript(
      df.lines,
      { line: content.start.line, character: 0 },
      content.end.line,
      new Set(verbatim),
    );
    return { ...common, script: shell.parse(text, env), lineOf: (r) => (rows[r] ?? content.start.line) + 1 };
  }
  const { text, rows } = runScript(df.lines, first.getRange().start, end, verbatim, df.escape);
  return {
    ...common,
    script: shell.parse(text, env),
    lineOf: (r) => (rows[r] ?? ins.getRange().start.line) + 1,
  };
}

/**
 * Whether the final stage takes its artifacts from a build stage: a `COPY/ADD --from` or a
 * `RUN --mount=from=` naming a stage outside the final stage's own FROM chain. A final stage built
 * FROM the build stage ships that stage whole, and copying from an external image is no build stage.
 */
export function copiesFromBuildStage(df: ParsedDockerfile): boolean {
  const chain = finalChain(df);
  const inChain = new Set(chain.map((s) => s.index));
  const stageOf = (ref: string): number | undefined => {
    const r = substitute(ref, df.globalArgs).toLowerCase();
    if (/^\d+$/.test(r)) return Number(r) < df.stages.length ? Number(r) : undefined;
    const i = df.stages.findIndex((s) => s.name === r);
    return i >= 0 ? i : undefined;
  };
  return chain.some((s) =>
    s.instructions.some((i) => {
      const kw = i.getKeyword();
      const refs =
        kw === "COPY" || kw === "ADD"
          ? flagsOf(i, "from")
          : kw === "RUN"
            ? flagsOf(i, "mount").flatMap((m) => parseMount(m).from ?? [])
            : [];
      return refs.some((r) => {
        const idx = stageOf(r);
        return idx !== undefined && !inChain.has(idx);
      });
    }),
  );
}
