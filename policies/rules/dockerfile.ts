/** Dockerfile rules: read the Dockerfile an image resource builds and check its stages. */
import * as path from "node:path";
import type { Instruction } from "dockerfile-ast";
import { stringList } from "../lib/config";
import {
  DOCKER_IMAGE_TYPES,
  dockerfileOf,
  finalBase,
  finalChain,
  flagsOf,
  keywordArgs,
  readDockerfile,
  substitute,
  withBuildArgs,
  type ParsedDockerfile,
  type Stage,
} from "../lib/dockerfile";
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

const isImage = (type: string) => DOCKER_IMAGE_TYPES.has(type);

const rel = (p: string) => path.relative(process.cwd(), p) || p;

/** The parsed Dockerfile of an image resource, or a reason it cannot be checked. */
function load(ctx: ResourceContext<DockerfileConfig>): ParsedDockerfile | { error: string } | undefined {
  const src = dockerfileOf(ctx.props, ctx.config.rootDir);
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

const runs = (stages: readonly Stage[]): { stage: Stage; ins: Instruction; text: string }[] =>
  stages.flatMap((stage) =>
    stage.instructions
      .filter((i) => i.getKeyword() === "RUN")
      .map((ins) => ({ stage, ins, text: keywordArgs(ins) })),
  );

const lineOf = (ins: Instruction) => ins.getRange().start.line + 1;

const TOOLCHAIN_CMD_RE =
  /(?:^|[;&|(]\s*|\s)(gcc|g\+\+|clang|make|cmake|ninja|go (?:build|install)|cargo (?:build|install)|rustc|mvn|gradle|npm (?:ci|install|i)|yarn(?: install| build)?|pnpm (?:install|i|build)|tsc|javac|dotnet (?:build|publish)|pip3? wheel)(?=\s|$|;|&)/;
const PKG_INSTALL_RE = /\b(apt-get|apt|apk|yum|dnf|microdnf)\s+(?:[^;&|]*\s)?(install|add)\b([^;&|]*)/g;
const TOOLCHAIN_PKG_RE =
  /(?:^|\s)(build-essential|build-base|gcc|g\+\+|clang|make|cmake|git|golang|rustc|cargo|maven|gradle|default-jdk|openjdk-\d+-jdk|[\w.+-]+-dev|[\w.+-]+-devel)(?=\s|$)/;

function toolchainIn(text: string): string | undefined {
  PKG_INSTALL_RE.lastIndex = 0;
  for (let m = PKG_INSTALL_RE.exec(text); m; m = PKG_INSTALL_RE.exec(text)) {
    const pkg = TOOLCHAIN_PKG_RE.exec(m[3] ?? "");
    if (pkg) return `installs ${pkg[1]}`;
  }
  const cmd = TOOLCHAIN_CMD_RE.exec(text);
  return cmd ? `runs \`${cmd[1]}\`` : undefined;
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
    withDockerfile(
      ctx,
      report,
      (df, file) => {
        if (df.stages.length < 2) {
          report(`${file}: single-stage build; add a separate build stage`);
          return;
        }
        const chain = finalChain(df);
        for (const { stage, ins, text } of runs(chain)) {
          const tool = toolchainIn(text);
          if (tool) {
            const where =
              stage === chain[0]
                ? "the final stage"
                : `stage ${stage.name ?? stage.index} (the final stage builds on it)`;
            report(`${file}:${lineOf(ins)}: ${where} ${tool}; move the toolchain to a build stage`);
          }
        }
        const copiesFromStage = chain.some((s) =>
          s.instructions.some(
            (i) => (i.getKeyword() === "COPY" || i.getKeyword() === "ADD") && flagsOf(i, "from").length > 0,
          ),
        );
        if (!copiesFromStage && chain.length === 1) {
          report(`${file}: the final stage does not COPY --from a build stage; the build stages are unused`);
        }
      },
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

const CACHE_MOUNT_RE = /type=cache/;

function hygieneProblems(ins: Instruction, text: string): string[] {
  const out: string[] = [];
  const cacheMount = flagsOf(ins, "mount").some((m) => CACHE_MOUNT_RE.test(m));
  if (/\bapt(-get)?\s+(?:[^;&|]*\s)?install\b/.test(text)) {
    if (!/--no-install-recommends/.test(text) && !/Install-Recommends\s*=?\s*"?(false|0)/i.test(text)) {
      out.push("apt install without --no-install-recommends");
    }
    if (!cacheMount && !/rm\s+-[a-z]*r[a-z]*f?\s+[^;&|]*\/var\/lib\/apt\/lists/.test(text)) {
      out.push("apt lists not removed in the same layer (rm -rf /var/lib/apt/lists/*)");
    }
  }
  if (/\bapk\s+(?:[^;&|]*\s)?add\b/.test(text) && !/--no-cache/.test(text) && !cacheMount) {
    out.push("apk add without --no-cache");
  }
  if (/\bpip3?\s+install\b/.test(text) && !/--no-cache-dir/.test(text) && !cacheMount) {
    out.push("pip install without --no-cache-dir");
  }
  if (
    /\b(yum|dnf|microdnf)\s+(?:[^;&|]*\s)?install\b/.test(text) &&
    !/\bclean all\b/.test(text) &&
    !cacheMount
  ) {
    out.push("yum/dnf install without `clean all`");
  }
  return out;
}

export const dockerfilePackageHygiene = defineResourcePolicy<DockerfileConfig & { allStages: boolean }>({
  name: "dockerfile-package-hygiene",
  description: "No package caches or recommended packages left in image layers.",
  enforcementLevel: "advisory",
  severity: "low",
  remediationSteps:
    "Install with `apt-get install -y --no-install-recommends ... && rm -rf /var/lib/apt/lists/*` in one RUN, `apk add --no-cache`, `pip install --no-cache-dir`, `dnf ... && dnf clean all` — or use a BuildKit cache mount (`RUN --mount=type=cache,target=/var/cache/apt`).",
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
    withDockerfile(ctx, report, (df, file) => {
      const stages = ctx.config.allStages ? df.stages : finalChain(df);
      for (const { ins, text } of runs(stages)) {
        for (const p of hygieneProblems(ins, text)) report(`${file}:${lineOf(ins)}: ${p}`);
      }
    }),
});

export const dockerfilePolicies = [
  dockerfileMultiStage,
  dockerfileSlimBase,
  dockerfilePinnedBase,
  dockerfileNonRoot,
  dockerfilePackageHygiene,
];
