/** Dockerfile rules: read the Dockerfile an image resource builds and check its stages. */
import * as path from "node:path";
import type { Instruction } from "dockerfile-ast";
import { stringList } from "../lib/config";
import { buildPropsOf } from "../lib/builds";
import {
  copiesFromBuildStage,
  dockerfileOf,
  finalBase,
  finalChain,
  readDockerfile,
  runsOf,
  substitute,
  withBuildArgs,
  type ParsedDockerfile,
  type Stage,
} from "../lib/dockerfile";
import { packageProblems, toolchainOf } from "../lib/packages";
import { loadShell, type Shell } from "../lib/shell";
import { displayImage, hasDigest, tagProblem } from "../lib/images";
import { defineResourcePolicy, type ResourceContext } from "../lib/policy";
import { globMatch } from "../lib/values";

interface DockerfileConfig {
  readonly rootDir?: string;
}

const rootDirSchema = {
  rootDir: {
    type: "string" as const,
    description:
      "Directory relative Dockerfile paths are resolved from (default: the working directory, then the repo root).",
  },
};

/** Any resource that builds an image from a Dockerfile (Image resources, buildx commands). */
const isImage = (type: string, props: Record<string, unknown>) => buildPropsOf(type, props) !== undefined;

const rel = (p: string) => path.relative(process.cwd(), p) || p;

/** The parsed Dockerfile of an image resource, or a reason it cannot be checked. */
function load(ctx: ResourceContext<DockerfileConfig>): ParsedDockerfile | { error: string } | undefined {
  const build = buildPropsOf(ctx.type, ctx.props);
  const src = build && dockerfileOf(build, ctx.config.rootDir);
  if (!src || src.kind === "unknown") return undefined; // no build, or paths unknown during preview
  try {
    return withBuildArgs(readDockerfile(src.path), src.buildArgs);
  } catch (e) {
    return {
      error: `cannot read Dockerfile ${rel(src.path)}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
    };
  }
}

/** Runs `check` over the image's Dockerfile; read errors are reported by `reportErrors` rules only. */
function withDockerfile(
  ctx: ResourceContext<DockerfileConfig>,
  report: (m: string) => void,
  check: (df: ParsedDockerfile, file: string) => void,
  reportErrors = false,
): void {
  const df = load(ctx);
  if (!df) return;
  if ("error" in df) {
    if (reportErrors) report(df.error);
    return;
  }
  if (df.stages.length === 0) {
    if (reportErrors) report(`Dockerfile ${rel(df.path)} has no FROM instruction`);
    return;
  }
  check(df, rel(df.path));
}

const lineOf = (ins: Instruction) => ins.getRange().start.line + 1;

/** Runs `check` when the image's Dockerfile reads and has stages; read errors reported on request. */
async function withRuns(
  ctx: ResourceContext<DockerfileConfig>,
  report: (m: string) => void,
  check: (df: ParsedDockerfile, file: string, shell: Shell) => void,
  reportErrors = false,
): Promise<void> {
  let parsed: { df: ParsedDockerfile; file: string } | undefined;
  withDockerfile(ctx, report, (df, file) => (parsed = { df, file }), reportErrors);
  if (parsed) check(parsed.df, parsed.file, await loadShell());
}

/** The multi-stage rule's findings for a parsed Dockerfile (`file` names it in the messages). */
export function multiStageFindings(df: ParsedDockerfile, file: string, shell: Shell): string[] {
  const out: string[] = [];
  const report = (m: string) => out.push(m);
  if (df.stages.length < 2) {
    report(`${file}: single-stage build; add a separate build stage`);
    return out;
  }
  const chain = finalChain(df);
  for (const run of runsOf(df, chain, shell)) {
    const where =
      run.stage === chain[0]
        ? "the final stage"
        : `stage ${run.stage.name ?? run.stage.index} (the final stage builds on it)`;
    for (const c of run.script.commands) {
      const tool = toolchainOf(c.argv);
      if (tool) report(`${file}:${run.lineOf(c.row)}: ${where} ${tool}; move the toolchain to a build stage`);
    }
  }
  if (copiesFromBuildStage(df)) return out;
  if (chain.length === 1)
    report(`${file}: the final stage does not COPY --from a build stage; the build stages are unused`);
  else {
    const parent = chain[1]!;
    report(
      `${file}:${chain[0]!.line}: the final stage builds FROM stage ${parent.name ?? parent.index} and copies nothing from another stage, so it ships that stage whole; start it FROM a slim base and COPY --from the artifacts`,
    );
  }
  return out;
}

export const dockerfileMultiStage = defineResourcePolicy<DockerfileConfig>({
  name: "dockerfile-multi-stage",
  description: "Built images use a separate build stage; the final stage has no toolchain.",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps:
    "Build in a `FROM <sdk> AS build` stage and `COPY --from=build` only the artifacts (and production dependencies) into a slim final stage. Do not run compilers, package managers' dev installs or `npm ci` in the final stage, and do not build the final stage FROM the build stage.",
  config: rootDirSchema,
  appliesTo: isImage,
  validate: (ctx, report) =>
    withRuns(
      ctx,
      report,
      (df, file, shell) => multiStageFindings(df, file, shell).forEach((m) => report(m)),
      true,
    ),
});

export const DEFAULT_SLIM_BASES = [
  "scratch",
  "gcr.io/distroless/*",
  "cgr.dev/chainguard/*",
  "*:*slim*",
  "alpine:*",
  "*:*alpine*",
  "*/alpine:*",
  "*cuda:*-runtime-*",
];

function baseMatches(globs: readonly string[], stage: Stage): boolean {
  if (stage.base.toLowerCase() === "scratch") return globs.includes("scratch");
  if (!stage.ref) return false;
  const candidates = [
    displayImage(stage.ref),
    `${stage.ref.registry}/${stage.ref.repository}:${stage.ref.tag ?? ""}`,
  ];
  return globs.some((g) => candidates.some((c) => globMatch(g, c)));
}

export const dockerfileSlimBase = defineResourcePolicy<DockerfileConfig & { allowedBases: string[] }>({
  name: "dockerfile-slim-base",
  description:
    "The final stage's base image is on the slim allowlist (distroless, `*-slim`, alpine, chainguard, scratch, cuda `*-runtime-*`).",
  enforcementLevel: "mandatory",
  severity: "medium",
  remediationSteps:
    "Base the final stage on a minimal image: `gcr.io/distroless/<runtime>:nonroot`, `cgr.dev/chainguard/<runtime>`, a `*-slim` or alpine variant, `scratch` for static binaries, or `nvidia/cuda:<ver>-runtime-<os>` (not `-devel`) for GPU services.",
  config: {
    ...rootDirSchema,
    allowedBases: stringList("Globs of allowed final-stage bases.", DEFAULT_SLIM_BASES),
  },
  appliesTo: isImage,
  validate: (ctx, report) =>
    withDockerfile(ctx, report, (df, file) => {
      const base = finalBase(df);
      if (!base) return;
      if (base.unresolved) {
        report(`${file}:${base.line}: final base ${base.base} cannot be resolved (ARG without default)`);
        return;
      }
      if (!baseMatches(ctx.config.allowedBases ?? DEFAULT_SLIM_BASES, base)) {
        report(`${file}:${base.line}: final stage base ${base.base} is not a slim base image`);
      }
    }),
});

export const dockerfilePinnedBase = defineResourcePolicy<DockerfileConfig & { requireDigest: boolean }>({
  name: "dockerfile-pinned-base",
  description: "Every `FROM` is pinned (tag; digest preferred), never `latest`.",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps:
    "Pin each base as `image:tag@sha256:<digest>` (or at least a specific version tag). Give base-image ARGs a default so the reference is always pinned; let Renovate/Dependabot bump digests.",
  config: {
    ...rootDirSchema,
    requireDigest: {
      type: "boolean",
      description: "Also require an `@sha256:` digest on every base.",
      default: false,
    },
  },
  appliesTo: isImage,
  validate: (ctx, report) =>
    withDockerfile(ctx, report, (df, file) => {
      for (const s of df.stages) {
        if (s.parent !== undefined || s.base.toLowerCase() === "scratch") continue;
        if (s.unresolved) {
          report(`${file}:${s.line}: FROM ${s.base} depends on an ARG without a default`);
          continue;
        }
        if (!s.ref) continue;
        const problem = tagProblem(s.ref);
        if (problem) report(`${file}:${s.line}: FROM ${s.base} ${problem}`);
        else if (ctx.config.requireDigest && !hasDigest(s.ref))
          report(`${file}:${s.line}: FROM ${s.base} has no digest`);
      }
    }),
});

export const DEFAULT_NONROOT_BASES = [
  "gcr.io/distroless/*:nonroot",
  "gcr.io/distroless/*:*-nonroot",
  "cgr.dev/chainguard/*",
];

export const dockerfileNonRoot = defineResourcePolicy<DockerfileConfig & { nonRootBases: string[] }>({
  name: "dockerfile-non-root",
  description: "The final stage runs as a non-root `USER`.",
  enforcementLevel: "mandatory",
  severity: "high",
  remediationSteps:
    "Add `USER <uid>` (numeric, e.g. `USER 65532` or `USER nonroot`) at the end of the final stage, or use a base that defaults to a non-root user (`gcr.io/distroless/*:nonroot`, chainguard). Make files the app writes owned by that user (`COPY --chown`).",
  config: {
    ...rootDirSchema,
    nonRootBases: stringList("Globs of bases whose default user is non-root.", DEFAULT_NONROOT_BASES),
  },
  appliesTo: isImage,
  validate: (ctx, report) =>
    withDockerfile(ctx, report, (df, file) => {
      const chain = finalChain(df);
      for (const stage of chain) {
        const users = stage.instructions.filter((i) => i.getKeyword() === "USER");
        const last = users[users.length - 1];
        if (!last) continue;
        const user = substitute(last.getArguments()[0]?.getValue() ?? "", df.globalArgs).split(":")[0] ?? "";
        if (user === "" || user === "root" || user === "0") {
          report(`${file}:${lineOf(last)}: the final stage runs as root (USER ${user || "?"})`);
        } else if (user.includes("$")) {
          report(`${file}:${lineOf(last)}: USER ${user} cannot be resolved; use a literal non-root user`);
        }
        return;
      }
      const base = chain[chain.length - 1];
      if (base && baseMatches(ctx.config.nonRootBases ?? DEFAULT_NONROOT_BASES, base)) return;
      report(
        `${file}: the final stage has no USER instruction and its base ${base?.base ?? "?"} runs as root`,
      );
    }),
});

/** The package-hygiene rule's findings: the final stage's RUNs (every stage's with `allStages`). */
export function packageHygieneFindings(
  df: ParsedDockerfile,
  file: string,
  shell: Shell,
  allStages: boolean,
): string[] {
  const out: string[] = [];
  const report = (m: string) => out.push(m);
  const stages = allStages ? df.stages : finalChain(df);
  for (const run of runsOf(df, stages, shell)) {
    const { commands, error } = run.script;
    if (error)
      report(
        `${file}:${run.lineOf(error.row)}: RUN is not valid shell (${error.message}); the commands around the error were still checked`,
      );
    for (const p of packageProblems({ ...run, commands }))
      report(`${file}:${run.lineOf(commands[p.command]!.row)}: ${p.message}`);
  }
  return out;
}

export const dockerfilePackageHygiene = defineResourcePolicy<DockerfileConfig & { allStages: boolean }>({
  name: "dockerfile-package-hygiene",
  description: "No package caches or recommended packages left in image layers.",
  enforcementLevel: "advisory",
  severity: "low",
  remediationSteps:
    "In the RUN that installs: `apt-get install -y --no-install-recommends ... && rm -rf /var/lib/apt/lists/*`, `apk add --no-cache`, `pip install --no-cache-dir` (or `ENV PIP_NO_CACHE_DIR=1`), `dnf install ... && dnf clean all`, `zypper install ... && zypper clean --all`, `npm ci && npm cache clean --force`, `yarn install && yarn cache clean` — the cleanup after the install — or a BuildKit cache or tmpfs mount on the manager's cache directory (`RUN --mount=type=cache,target=/var/lib/apt/lists`, `target=/root/.cache/pip`, `target=/root/.npm`).",
  config: {
    ...rootDirSchema,
    allStages: {
      type: "boolean",
      description: "Check build stages too, not only the shipped final stage.",
      default: false,
    },
  },
  appliesTo: isImage,
  validate: (ctx, report) =>
    withRuns(ctx, report, (df, file, shell) =>
      packageHygieneFindings(df, file, shell, ctx.config.allStages ?? false).forEach((m) => report(m)),
    ),
});

export const dockerfilePolicies = [
  dockerfileMultiStage,
  dockerfileSlimBase,
  dockerfilePinnedBase,
  dockerfileNonRoot,
  dockerfilePackageHygiene,
];
