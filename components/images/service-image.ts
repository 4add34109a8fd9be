/**
 * A first-party service image: built from a context in this repo (multi-stage Dockerfile) by
 * `docker buildx build` with an SBOM and a provenance attestation, pushed to the platform's
 * registry, and consumed by digest. Paths are relative to the repo root (where `pulumi` runs).
 *
 * Why a buildx command and not an Image resource (docs/architecture.md, "Conventions"): `@pulumi/docker`'s
 * Image builds through the daemon's classic build API, which has no attestations, and its docs send
 * new programs to `@pulumi/docker-build`; that provider's embedded buildx turns provenance off and
 * it has no `--attest`/`--sbom` input (pulumi/pulumi-docker-build#73). buildx itself gives all of it:
 * BuildKit, a registry cache, several platforms, the attestations, and nothing runs on preview.
 *
 * The build is one `command:local:Command` whose script is fixed (BUILD_SCRIPT) and whose every
 * parameter is a named variable (`imageBuildEnvironment`), so reviews and the policy pack read what
 * it builds (policies/lib/builds.ts) without parsing shell.
 */
import { createHash } from "node:crypto";
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import * as path from "node:path";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import type { RegistryAuth } from "../registry/credentials";

const SECRET_WORDS = new Set([
  "password",
  "passwd",
  "pass",
  "pwd",
  "secret",
  "secrets",
  "token",
  "auth",
  "credential",
  "credentials",
  "npmrc",
  "apikey",
  "privatekey",
]);

/** True when a build-arg name looks like a credential (`NPM_TOKEN`, `dbPassword`, `API_KEY`). */
export function isSecretLikeArg(name: string): boolean {
  if (/(api|private|access|secret|signing|ssh)[-_]?key/i.test(name)) return true;
  const words = name.split(/[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])/).map((w) => w.toLowerCase());
  return words.some((w) => SECRET_WORDS.has(w));
}

/** Problems with build args, one message each; build args are stored in the image, so never secrets. */
export function buildArgProblems(args: Readonly<Record<string, string>>): string[] {
  return Object.keys(args)
    .filter(isSecretLikeArg)
    .map(
      (k) =>
        `build arg "${k}" looks like a secret: build args are stored in the image history and its provenance. ` +
        "Use a BuildKit secret mount (RUN --mount=type=secret) outside Pulumi, or fetch it at runtime.",
    );
}

/** A repo-relative path: no absolute paths, no escaping the repo with `..`. */
export function repoRelative(what: string, p: string): string {
  const norm = path.posix.normalize(p.replace(/\\/g, "/"));
  if (path.isAbsolute(p) || norm.startsWith("../") || norm === "..")
    throw new Error(`${what} must be relative to the repository root and stay inside it, got "${p}"`);
  return norm.replace(/\/$/, "");
}

/** The tag of an image built from `context`: its package.json version, else `dev`. */
export function defaultTag(context: string, rootDir = process.cwd()): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(rootDir, context, "package.json"), "utf8")) as {
      version?: unknown;
    };
    if (typeof pkg.version === "string" && pkg.version) return pkg.version.replace(/[^A-Za-z0-9_.-]/g, "-");
  } catch {
    // no package.json: fall through
  }
  return "dev";
}

// ---- what Docker sends: .dockerignore, and a digest of the context it selects ----------------

interface IgnoreRule {
  readonly negate: boolean;
  readonly re: RegExp;
  /** The pattern up to its first wildcard: an exception can only reopen paths under it. */
  readonly literal: string;
}

/** A .dockerignore pattern (moby/patternmatcher: `**`, `*`, `?`, `[...]`) as a regular expression. */
function patternRegExp(pattern: string): RegExp {
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*" && pattern[i + 1] === "*") {
      i++;
      if (pattern[i + 1] === "/") {
        i++;
        re += "(?:.*/)?";
      } else re += ".*";
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 1);
      if (end < 0) re += "\\[";
      else {
        re += `[${pattern
          .slice(i + 1, end)
          .replace(/^!/, "^")
          .replace(/\\/g, "\\\\")}]`;
        i = end;
      }
    } else if (c === "\\" && i + 1 < pattern.length) re += `\\${pattern[++i]!}`;
    else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** The rules of a .dockerignore file, in order (the last matching rule decides). */
export function parseDockerignore(text: string): IgnoreRule[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const negate = l.startsWith("!");
      const body = path.posix.normalize((negate ? l.slice(1) : l).trim()).replace(/^\/+|\/+$/g, "");
      return { negate, re: patternRegExp(body), literal: body.replace(/[*?[\\].*$/, "") };
    });
}

/** The index of the rule that decides `file` (context-relative): the last that matches it or a parent. */
function decidingRule(rules: readonly IgnoreRule[], file: string): number {
  const parts = file.split("/");
  let decided = -1;
  rules.forEach((rule, i) => {
    for (let n = 1; n <= parts.length; n++)
      if (rule.re.test(parts.slice(0, n).join("/"))) {
        decided = i;
        return;
      }
  });
  return decided;
}

/** Whether Docker leaves `file` (context-relative, `/`-separated) out: a rule matches it or a parent. */
export function isIgnored(rules: readonly IgnoreRule[], file: string): boolean {
  const i = decidingRule(rules, file);
  return i >= 0 && !rules[i]!.negate;
}

/**
 * The ignore file BuildKit reads for a build: `<dockerfile>.dockerignore` beside the Dockerfile,
 * else the context's `.dockerignore`.
 */
export function ignoreFileOf(
  context: string,
  dockerfile: string,
  rootDir = process.cwd(),
): string | undefined {
  for (const f of [`${dockerfile}.dockerignore`, path.posix.join(context, ".dockerignore")])
    if (existsSync(path.join(rootDir, f))) return f;
  return undefined;
}

/**
 * sha256 over the Dockerfile and every file of the context Docker would send (paths and contents,
 * in order): the build runs again exactly when its inputs change, whatever the tag says.
 */
export function contextDigest(context: string, dockerfile: string, rootDir = process.cwd()): string {
  if (!existsSync(path.join(rootDir, dockerfile)))
    throw new Error(
      `no Dockerfile at ${dockerfile} (relative to ${rootDir}, where pulumi runs: the repository root)`,
    );
  const ignoreFile = ignoreFileOf(context, dockerfile, rootDir);
  const rules = ignoreFile ? parseDockerignore(readFileSync(path.join(rootDir, ignoreFile), "utf8")) : [];
  // An ignored directory is read only when a later exception (`!`) may reopen something inside it.
  const pruned = (dir: string) => {
    const i = decidingRule(rules, dir);
    if (i < 0 || rules[i]!.negate) return false;
    return !rules
      .slice(i + 1)
      .some(
        (r) =>
          r.negate && (r.literal.startsWith(`${dir}/`) || r.literal === dir || dir.startsWith(r.literal)),
      );
  };
  const hash = createHash("sha256");
  hash.update("dockerfile\0");
  hash.update(readFileSync(path.join(rootDir, dockerfile)));
  hash.update("\0");
  const walk = (rel: string) => {
    const abs = path.join(rootDir, context, rel);
    for (const name of readdirSync(abs).sort()) {
      const file = rel ? `${rel}/${name}` : name;
      const st = lstatSync(path.join(abs, name));
      if (st.isDirectory()) {
        if (!pruned(file)) walk(file);
      } else if (st.isSymbolicLink() && !isIgnored(rules, file)) {
        hash.update(`${file}\0->${readlinkSync(path.join(abs, name))}\0`);
      } else if (st.isFile() && !isIgnored(rules, file)) {
        hash.update(`${file}\0${st.mode & 0o111 ? "x" : "-"}\0`);
        hash.update(readFileSync(path.join(abs, name)));
        hash.update("\0");
      }
    }
  };
  walk("");
  return hash.digest("hex");
}

// ---- the build ------------------------------------------------------------------------------

/**
 * The build script: an isolated Docker config for the registry login (the password comes on stdin
 * and never reaches the user's config), buildx with the attestations and the registry cache, then
 * the pushed index's digest on stdout. Needs a builder that attests (docker-container driver, or
 * the containerd image store): `docker buildx create --use`.
 */
export const BUILD_SCRIPT = [
  "set -eu",
  'host_config="${DOCKER_CONFIG:-$HOME/.docker}"',
  'export BUILDX_CONFIG="${BUILDX_CONFIG:-$host_config/buildx}"',
  'export DOCKER_CONTEXT="${DOCKER_CONTEXT:-$(docker context show 2>/dev/null || echo default)}"',
  'cfg="$(mktemp -d)"',
  "trap 'rm -rf \"$cfg\"' EXIT",
  'if [ -d "$host_config/contexts" ]; then cp -R "$host_config/contexts" "$cfg/"; fi',
  'export DOCKER_CONFIG="$cfg"',
  'docker login "$IMAGE_REGISTRY" --username "$IMAGE_REGISTRY_USER" --password-stdin >/dev/null',
  'set -- --file "$IMAGE_DOCKERFILE" --tag "$IMAGE_NAME" --platform "$IMAGE_PLATFORMS" \\',
  '  --sbom="$IMAGE_SBOM" --provenance="$IMAGE_PROVENANCE" --push --metadata-file "$cfg/metadata.json"',
  'if [ -n "${IMAGE_TARGET:-}" ]; then set -- "$@" --target "$IMAGE_TARGET"; fi',
  'if [ -n "${IMAGE_CACHE:-}" ]; then',
  '  set -- "$@" --cache-from "type=registry,ref=$IMAGE_CACHE" --cache-to "type=registry,ref=$IMAGE_CACHE,mode=max"',
  "fi",
  'while IFS= read -r arg; do if [ -n "$arg" ]; then set -- "$@" --build-arg "$arg"; fi; done <<EOF',
  "${IMAGE_BUILD_ARGS:-}",
  "EOF",
  'docker buildx build "$@" "$IMAGE_CONTEXT" >&2',
  'sed -n \'s/.*"containerimage.digest": *"\\(sha256:[0-9a-f]*\\)".*/\\1/p\' "$cfg/metadata.json" | head -n 1',
].join("\n");

/** The attestations every first-party image carries (what the pack's image-build-attested checks). */
export const ATTESTATIONS = { sbom: "true", provenance: "mode=max" } as const;

export interface ServiceImageArgs {
  /** Build context, relative to the repo root (`services/gateway`). */
  readonly context: string;
  /** Dockerfile, relative to the repo root; defaults to `<context>/Dockerfile`. */
  readonly dockerfile?: string;
  /** Repository inside the registry (`platform/gateway`). */
  readonly repository: string;
  /** Image tag (a version or git SHA; never `latest`). */
  readonly tag: string;
  /** Final stage to build (multi-stage target). */
  readonly target?: string;
  /** Platforms to build for, e.g. `linux/amd64` (several: a multi-platform index). */
  readonly platform?: string | readonly string[];
  /** Non-secret build args; secret-looking names are rejected. */
  readonly args?: Readonly<Record<string, string>>;
  /** Use (and refresh) a registry build cache at `repository:buildcache`. */
  readonly cacheFrom?: boolean;
  /** Where to push, with credentials (the password goes to `docker login` on stdin, as a secret). */
  readonly registry: RegistryAuth;
  /** Repo root the paths are relative to (default: the working directory, where `pulumi` runs). */
  readonly rootDir?: string;
}

/** The build, as the Command's named variables (pure: tests and the policy pack read the same). */
export interface ImageBuild {
  /** `registry/repository:tag` as pushed. */
  readonly imageName: string;
  readonly repoRef: string;
  readonly context: string;
  readonly dockerfile: string;
  /** IMAGE_* variables of BUILD_SCRIPT. */
  readonly environment: Record<string, pulumi.Input<string>>;
}

/** The build of a ServiceImage: validated paths, tag and build args, and the script's variables. */
export function imageBuild(a: ServiceImageArgs): ImageBuild {
  const problems = buildArgProblems(a.args ?? {});
  if (problems.length) throw new Error(`image ${a.repository}: ${problems.join("; ")}`);
  if (a.tag.toLowerCase() === "latest") throw new Error(`image ${a.repository}: tag "latest" is not allowed`);
  const context = repoRelative("build context", a.context);
  const dockerfile = repoRelative("dockerfile", a.dockerfile ?? `${context}/Dockerfile`);
  const repoRef = `${a.registry.server}/${a.repository}`;
  const imageName = `${repoRef}:${a.tag}`;
  const platforms = typeof a.platform === "string" ? [a.platform] : [...(a.platform ?? ["linux/amd64"])];
  return {
    imageName,
    repoRef,
    context,
    dockerfile,
    environment: {
      IMAGE_NAME: imageName,
      IMAGE_CONTEXT: context,
      IMAGE_DOCKERFILE: dockerfile,
      IMAGE_PLATFORMS: platforms.join(","),
      IMAGE_SBOM: ATTESTATIONS.sbom,
      IMAGE_PROVENANCE: ATTESTATIONS.provenance,
      IMAGE_REGISTRY: a.registry.server,
      IMAGE_REGISTRY_USER: a.registry.username,
      ...(a.target ? { IMAGE_TARGET: a.target } : {}),
      ...(a.cacheFrom ? { IMAGE_CACHE: `${repoRef}:buildcache` } : {}),
      ...(a.args && Object.keys(a.args).length
        ? {
            IMAGE_BUILD_ARGS: Object.entries(a.args)
              .map(([k, v]) => `${k}=${v}`)
              .join("\n"),
          }
        : {}),
    },
  };
}

/** `registry/repository@sha256:…` from the script's output (the pushed index's digest). */
export function repoDigestOf(repoRef: string, stdout: string): string {
  const digest = stdout.trim();
  if (!/^sha256:[0-9a-f]{64}$/.test(digest))
    throw new Error(`the build of ${repoRef} printed no image digest (got "${digest.slice(0, 80)}")`);
  return `${repoRef}@${digest}`;
}

/** A built and pushed first-party image, attested; deploy `repoDigest`, never the tag. */
export class ServiceImage extends pulumi.ComponentResource {
  /** `registry/repository:tag` as pushed. */
  public readonly imageName: string;
  /** `registry/repository@sha256:...`: what workloads deploy. */
  public readonly repoDigest: pulumi.Output<string>;
  /** Repo-relative path of the Dockerfile built (what the dockerfile-* policies read). */
  public readonly dockerfile: string;

  constructor(name: string, args: ServiceImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:images:ServiceImage", name, {}, opts);
    const build = imageBuild(args);
    this.imageName = build.imageName;
    this.dockerfile = build.dockerfile;
    // The component's dependsOn is not inherited by its children: the push itself must wait for
    // what it needs (the registry serving, its route and certificate).
    const image = new command.local.Command(
      `${name}-image`,
      {
        create: BUILD_SCRIPT,
        environment: build.environment,
        stdin: pulumi.secret(args.registry.password),
        // Rebuilt when what Docker would send changes, not only when the tag does.
        triggers: [contextDigest(build.context, build.dockerfile, args.rootDir)],
        logging: "stderr",
      },
      { parent: this, ...(opts?.dependsOn ? { dependsOn: opts.dependsOn } : {}) },
    );
    // A digest is not a secret; the output is marked secret only because the password is an input.
    this.repoDigest = pulumi.unsecret(image.stdout.apply((out) => repoDigestOf(build.repoRef, out)));
    this.registerOutputs({
      imageName: this.imageName,
      repoDigest: this.repoDigest,
      dockerfile: this.dockerfile,
    });
  }
}
