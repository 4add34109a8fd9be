/**
 * Dockerfiles of image resources: which file a `docker:index/image:Image` builds, parsed once per
 * path (dockerfile-ast) into stages with ARG-resolved base images.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { DockerfileParser, type Instruction } from "dockerfile-ast";
import { parseImageRef, type ImageRef } from "./images";
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
  return { ...df, globalArgs: vars, stages: buildStages(df.instructions, vars) };
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
