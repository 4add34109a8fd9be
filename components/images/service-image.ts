/**
 * A first-party service image: built from a context in this repo (multi-stage Dockerfile), pushed
 * to the platform's registry, and consumed by digest. Paths are relative to the repo root (where
 * `pulumi` runs), which is also how docker.Image v4 and the pack's dockerfile-* rules read them:
 * the Dockerfile path lands in `build.dockerfile`, so the policies open the same file the build uses.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import * as docker from "@pulumi/docker";
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
        `build arg "${k}" looks like a secret: build args are stored in the image history. ` +
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
  /** Platform to build for, e.g. `linux/amd64`. */
  readonly platform?: string;
  /** Non-secret build args; secret-looking names are rejected. */
  readonly args?: Readonly<Record<string, string>>;
  /** Use the previously pushed `repository:tag` as cache (and these extra refs). */
  readonly cacheFrom?: boolean | readonly string[];
  /** Where to push, with credentials (the password is a secret sink of docker.Image). */
  readonly registry: RegistryAuth;
  /** Build during preview too (default false). */
  readonly buildOnPreview?: boolean;
}

/** The docker.Image inputs for a ServiceImage (pure: tests and policies reason about them). */
export function serviceImageInputs(a: ServiceImageArgs): docker.ImageArgs & { imageName: string } {
  const problems = buildArgProblems(a.args ?? {});
  if (problems.length) throw new Error(`image ${a.repository}: ${problems.join("; ")}`);
  if (a.tag.toLowerCase() === "latest") throw new Error(`image ${a.repository}: tag "latest" is not allowed`);
  const context = repoRelative("build context", a.context);
  const dockerfile = repoRelative("dockerfile", a.dockerfile ?? `${context}/Dockerfile`);
  const repoRef = `${a.registry.server}/${a.repository}`;
  const imageName = `${repoRef}:${a.tag}`;
  const cache =
    a.cacheFrom === false || a.cacheFrom === undefined
      ? []
      : [...(a.cacheFrom === true ? [] : a.cacheFrom), imageName];
  return {
    imageName,
    build: {
      context,
      dockerfile,
      ...(a.platform ? { platform: a.platform } : {}),
      ...(a.target ? { target: a.target } : {}),
      ...(a.args && Object.keys(a.args).length ? { args: { ...a.args } } : {}),
      ...(cache.length ? { cacheFrom: { images: cache } } : {}),
      builderVersion: docker.BuilderVersion.BuilderBuildKit,
    },
    registry: {
      server: a.registry.server,
      username: a.registry.username,
      password: pulumi.secret(a.registry.password),
    },
    buildOnPreview: a.buildOnPreview ?? false,
    skipPush: false,
  };
}

/** A built and pushed first-party image; deploy `repoDigest`, never the tag. */
export class ServiceImage extends pulumi.ComponentResource {
  /** `registry/repository:tag` as pushed. */
  public readonly imageName: string;
  /** `registry/repository@sha256:...`: what workloads deploy. */
  public readonly repoDigest: pulumi.Output<string>;
  /** Repo-relative path of the Dockerfile built (what the dockerfile-* policies read). */
  public readonly dockerfile: string;

  constructor(name: string, args: ServiceImageArgs, opts?: pulumi.ComponentResourceOptions) {
    super("platform:images:ServiceImage", name, {}, opts);
    const inputs = serviceImageInputs(args);
    this.imageName = inputs.imageName;
    this.dockerfile = (inputs.build as docker.types.input.DockerBuild).dockerfile as string;
    // The component's dependsOn is not inherited by its children: the push itself must wait for
    // what it needs (the registry serving, its route and certificate).
    const image = new docker.Image(`${name}-image`, inputs, {
      parent: this,
      ...(opts?.dependsOn ? { dependsOn: opts.dependsOn } : {}),
    });
    this.repoDigest = image.repoDigest;
    this.registerOutputs({
      imageName: this.imageName,
      repoDigest: this.repoDigest,
      dockerfile: this.dockerfile,
    });
  }
}
