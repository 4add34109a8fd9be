/**
 * The container contract: which process a Kubernetes container really starts. The image's
 * ENTRYPOINT/CMD (the Dockerfile's final stage, over what its base image brings) are combined with
 * the pod's `command`/`args` exactly as the kubelet and the container runtime combine them:
 *
 *   pod `command` set   → command + args          (the image's ENTRYPOINT and CMD are both ignored)
 *   only `args` set     → ENTRYPOINT + args       (the image's CMD is ignored)
 *   neither             → ENTRYPOINT + CMD
 *
 * (an empty list counts as unset, as in containerd's WithProcessArgs). `$(VAR)` in the pod's
 * command/args expands from the container's env; the image's ENTRYPOINT/CMD never expand.
 *
 * Pure: it reads parsed Dockerfiles (policies/lib/dockerfile.ts) and plain container specs.
 */
import * as path from "node:path";
import type { Instruction } from "dockerfile-ast";
import {
  finalChain,
  flagsOf,
  keywordArgs,
  substitute,
  type ParsedDockerfile,
} from "../../policies/lib/dockerfile";
import type { ImageRef } from "../../policies/lib/images";

/** A contract that cannot be computed (unknown base image, no command at all...). */
export class ContractError extends Error {
  override readonly name = "ContractError";
}

/** What an image's config holds for its process (the OCI image config's fields). */
export interface ImageConfig {
  /** `ENTRYPOINT`, undefined when unset. */
  readonly entrypoint?: readonly string[];
  /** `CMD`, undefined when unset. */
  readonly cmd?: readonly string[];
  /** `WORKDIR`, absolute ("/" when never set). */
  readonly workingDir: string;
  /** `ENV`, in order. */
  readonly env: Readonly<Record<string, string>>;
  /** `USER`, when set. */
  readonly user?: string;
  /** `SHELL` that wraps shell-form instructions (`/bin/sh -c` unless changed). */
  readonly shell: readonly string[];
  /** Whether the image has that shell at all (distroless and scratch images do not). */
  readonly hasShell: boolean;
  /** Paths of well-known binaries in the image (`node` → `/nodejs/bin/node`). */
  readonly binaries: Readonly<Record<string, string>>;
}

/** One entry of the base-image table: what an external base brings before our Dockerfile runs. */
export interface BaseImage {
  readonly description: string;
  /** Where the facts come from upstream (checked, not guessed). */
  readonly source: string;
  matches(ref: ImageRef): boolean;
  config(ref: ImageRef): ImageConfig;
}

const DEFAULT_SHELL = ["/bin/sh", "-c"] as const;
const STD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function distroless(ref: ImageRef, extra: Partial<ImageConfig>): ImageConfig {
  const tag = ref.tag ?? "latest";
  const nonroot = /(^|-)nonroot($|-)/.test(tag);
  const debug = /(^|-)debug($|-)/.test(tag);
  return {
    workingDir: nonroot ? "/home/nonroot" : "/",
    user: nonroot ? "65532" : "0",
    env: { PATH: STD_PATH, SSL_CERT_FILE: "/etc/ssl/certs/ca-certificates.crt" },
    // The :debug variants carry busybox (and its sh); the others have no shell at all.
    shell: debug ? ["/busybox/sh", "-c"] : [...DEFAULT_SHELL],
    hasShell: debug,
    binaries: {},
    ...extra,
  };
}

/**
 * The base images this project builds on, with the process config each brings. Anything else is
 * a ContractError: add it here (with its upstream source) rather than guess.
 */
export const BASE_IMAGES: readonly BaseImage[] = [
  {
    description: "gcr.io/distroless/nodejs* (nodejs20-debian12, nodejs22-debian12:nonroot, ...)",
    source:
      'GoogleContainerTools/distroless nodejs/BUILD: oci_image(entrypoint = ["/nodejs/bin/node"]), no cmd; ' +
      "base/base.bzl: workdir / (root) or /home/nonroot (uid 65532), PATH and SSL_CERT_FILE env",
    matches: (r) => r.registry === "gcr.io" && /^distroless\/nodejs\d*(-debian\d+)?$/.test(r.repository),
    config: (r) =>
      distroless(r, { entrypoint: ["/nodejs/bin/node"], binaries: { node: "/nodejs/bin/node" } }),
  },
  {
    description: "gcr.io/distroless/{static,base,base-nossl,cc}*",
    source: "GoogleContainerTools/distroless base/base.bzl, cc/BUILD: no entrypoint, no cmd",
    matches: (r) =>
      r.registry === "gcr.io" && /^distroless\/(static|base|base-nossl|cc)(-debian\d+)?$/.test(r.repository),
    config: (r) => distroless(r, {}),
  },
  {
    description: "node:* (Docker official image, e.g. node:20.20.2-bookworm-slim)",
    source:
      'nodejs/docker-node 20/bookworm-slim/Dockerfile: ENTRYPOINT ["docker-entrypoint.sh"], CMD [ "node" ]',
    matches: (r) =>
      r.registry === "docker.io" && (r.repository === "node" || r.repository === "library/node"),
    config: () => ({
      entrypoint: ["docker-entrypoint.sh"],
      cmd: ["node"],
      workingDir: "/",
      env: { PATH: STD_PATH },
      shell: [...DEFAULT_SHELL],
      hasShell: true,
      binaries: { node: "/usr/local/bin/node" },
    }),
  },
];

const SCRATCH: ImageConfig = {
  workingDir: "/",
  env: {},
  shell: [...DEFAULT_SHELL],
  hasShell: false,
  binaries: {},
};

/** The table entry's config for an external base (`undefined` ref = `scratch`). Throws when unknown. */
export function baseImageConfig(
  ref: ImageRef | undefined,
  table: readonly BaseImage[] = BASE_IMAGES,
): ImageConfig {
  if (!ref) return SCRATCH;
  const hit = table.find((b) => b.matches(ref));
  if (!hit)
    throw new ContractError(
      `base image ${ref.registry}/${ref.repository}:${ref.tag ?? "latest"} is not in the base-image table ` +
        "(tools/preflight/contract.ts BASE_IMAGES): its ENTRYPOINT/CMD are unknown",
    );
  return hit.config(ref);
}

/** An ENTRYPOINT/CMD/SHELL value: exec form (a JSON array of strings) or shell form (a string). */
export type CommandForm =
  | { readonly form: "exec"; readonly argv: readonly string[] }
  | { readonly form: "shell"; readonly command: string };

/** Exec form when the arguments are a JSON array of strings (Docker's rule), shell form otherwise. */
export function parseCommandForm(raw: string): CommandForm {
  const text = raw.trim();
  if (text.startsWith("[")) {
    try {
      const v: unknown = JSON.parse(text);
      if (Array.isArray(v) && v.every((x): x is string => typeof x === "string"))
        return { form: "exec", argv: v };
    } catch {
      // not JSON: shell form, as Docker falls back to
    }
  }
  return { form: "shell", command: text };
}

/** The argv a form stands for: exec form as is, shell form wrapped in the image's SHELL. */
export function formArgv(f: CommandForm, shell: readonly string[]): string[] {
  return f.form === "exec" ? [...f.argv] : [...shell, f.command];
}

/** A COPY/ADD of the final image: where it lands (absolute) and where from. */
export interface ImageCopy {
  /** `--from` stage name or image, undefined for the build context. */
  readonly from?: string;
  readonly sources: readonly string[];
  /** Absolute destination as given (a trailing `/` kept: a directory). */
  readonly dest: string;
  readonly line: number;
}

export interface ImageContents {
  readonly config: ImageConfig;
  /** COPY/ADD instructions of the final stage and the stages it builds FROM, in build order. */
  readonly copies: readonly ImageCopy[];
}

function resolveIn(dir: string, p: string): string {
  const trailing = p.endsWith("/") && p !== "/";
  const abs = path.posix.resolve(dir, p);
  return trailing ? `${abs}/` : abs;
}

/**
 * The final image's process config and copied paths: the base image's table entry, then every
 * instruction of the final stage's chain (FROM <stage> inherits that stage's config).
 */
export function imageContents(
  df: ParsedDockerfile,
  table: readonly BaseImage[] = BASE_IMAGES,
): ImageContents {
  const chain = finalChain(df).reverse();
  const root = chain[0];
  if (!root) throw new ContractError(`${df.path}: no FROM`);
  if (root.unresolved)
    throw new ContractError(`${df.path}:${root.line}: base image "${root.base}" is unresolved`);
  const base = baseImageConfig(root.ref, table);
  const c: { -readonly [K in keyof ImageConfig]: ImageConfig[K] } & { env: Record<string, string> } = {
    ...base,
    env: { ...base.env },
  };
  const copies: ImageCopy[] = [];
  for (const stage of chain) {
    // Per stage (BuildKit's dispatch state): an ENTRYPOINT clears the inherited CMD unless this
    // stage set CMD before it.
    let cmdSet = false;
    const vars = new Map<string, string>(df.globalArgs);
    for (const ins of stage.instructions) {
      const kw = ins.getKeyword();
      const sub = (s: string) => substitute(s, new Map([...vars, ...Object.entries(c.env)]));
      switch (kw) {
        case "ARG":
          for (const a of ins.getArguments()) {
            const [k, ...v] = a.getValue().split("=");
            if (k && v.length) vars.set(k, v.join("="));
          }
          break;
        case "ENV":
          for (const p of propertiesOf(ins)) c.env[p.name] = sub(p.value);
          break;
        case "WORKDIR":
          c.workingDir = path.posix.resolve(c.workingDir, sub(keywordArgs(ins).trim()));
          break;
        case "USER":
          c.user = sub(keywordArgs(ins).trim());
          break;
        case "SHELL": {
          const f = parseCommandForm(keywordArgs(ins));
          if (f.form !== "exec")
            throw new ContractError(`${df.path}:${line(ins)}: SHELL must be in exec form`);
          c.shell = f.argv;
          break;
        }
        case "CMD":
          c.cmd = formArgv(parseCommandForm(keywordArgs(ins)), c.shell);
          cmdSet = true;
          break;
        case "ENTRYPOINT":
          c.entrypoint = formArgv(parseCommandForm(keywordArgs(ins)), c.shell);
          if (!cmdSet) delete c.cmd;
          break;
        case "COPY":
        case "ADD": {
          const raw = keywordArgs(ins).trim();
          const f = parseCommandForm(raw);
          const words = f.form === "exec" ? [...f.argv] : ins.getArguments().map((a) => a.getValue());
          const dest = words.pop();
          if (dest === undefined || words.length === 0) break;
          const from = flagsOf(ins, "from")[0];
          copies.push({
            ...(from ? { from: from.toLowerCase() } : {}),
            sources: words.map(sub),
            dest: resolveIn(c.workingDir, sub(dest)),
            line: line(ins),
          });
          break;
        }
        default:
          break;
      }
    }
  }
  if (c.entrypoint?.length === 1 && c.entrypoint[0] === "") delete c.entrypoint; // ENTRYPOINT [""] resets it
  const config: ImageConfig = { ...c };
  return { config, copies };
}

function line(ins: Instruction): number {
  return ins.getRange().start.line + 1;
}

function propertiesOf(ins: Instruction): { name: string; value: string }[] {
  const props = (
    ins as unknown as { getProperties?: () => { getName(): string; getValue(): string | null }[] }
  ).getProperties;
  if (typeof props !== "function") return [];
  return props.call(ins).map((p) => ({ name: p.getName(), value: p.getValue() ?? "" }));
}

/** `$(VAR)` expansion of a pod's command/args (Kubernetes' rules: `$$` escapes, unknown names stay). */
export function expandKubernetesVars(s: string, env: ReadonlyMap<string, string>): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch !== "$" || i + 1 >= s.length) {
      out += ch;
      continue;
    }
    const next = s[i + 1]!;
    if (next === "$") {
      out += "$";
      i++;
    } else if (next === "(") {
      const close = s.indexOf(")", i + 2);
      if (close < 0) {
        out += s.slice(i);
        break;
      }
      const name = s.slice(i + 2, close);
      const v = env.get(name);
      out += v !== undefined ? v : `$(${name})`;
      i = close;
    } else out += ch;
  }
  return out;
}

/** The parts of a Kubernetes container the process depends on (plain values). */
export interface ContainerSpec {
  readonly command?: readonly string[];
  readonly args?: readonly string[];
  readonly workingDir?: string;
  readonly env?: readonly { readonly name: string; readonly value?: string; readonly valueFrom?: unknown }[];
}

/**
 * The argv the container starts, as Kubernetes combines the image's ENTRYPOINT/CMD with the pod's
 * command/args. `env` (the container's env, for `$(VAR)`) defaults to the literal values of
 * `container.env`. Throws when nothing would run ("no command specified").
 */
export function effectiveArgv(
  image: Pick<ImageConfig, "entrypoint" | "cmd">,
  container: ContainerSpec,
  env: ReadonlyMap<string, string> = literalEnv(container),
): string[] {
  const podCommand = (container.command ?? []).map((s) => expandKubernetesVars(s, env));
  const podArgs = (container.args ?? []).map((s) => expandKubernetesVars(s, env));
  const argv =
    podCommand.length > 0
      ? [...podCommand, ...podArgs]
      : [...(image.entrypoint ?? []), ...(podArgs.length > 0 ? podArgs : (image.cmd ?? []))];
  if (argv.length === 0)
    throw new ContractError("no command specified: neither the image nor the pod sets one");
  return argv;
}

function literalEnv(container: ContainerSpec): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of container.env ?? []) if (e.value !== undefined) m.set(e.name, e.value);
  return m;
}

/** The process a container runs: argv, working directory and environment. */
export interface ContainerProcess {
  readonly argv: readonly string[];
  readonly workingDir: string;
  /** Image ENV, overridden by the container's env (in order). */
  readonly env: Readonly<Record<string, string>>;
  /** Contract problems that do not stop the computation (a shell form without a shell...). */
  readonly problems: readonly string[];
}

/**
 * The full process of a container. `resolveValueFrom` supplies values of `valueFrom` env entries
 * (secretKeyRef, configMapKeyRef...); entries it leaves undefined are omitted, as a missing
 * optional key would be.
 */
export function containerProcess(
  image: ImageConfig,
  container: ContainerSpec,
  resolveValueFrom: (valueFrom: unknown, name: string) => string | undefined = () => undefined,
): ContainerProcess {
  const podEnv = new Map<string, string>();
  for (const e of container.env ?? []) {
    const v =
      e.value !== undefined ? expandKubernetesVars(e.value, podEnv) : resolveValueFrom(e.valueFrom, e.name);
    if (v !== undefined) podEnv.set(e.name, v);
  }
  const argv = effectiveArgv(image, container, podEnv);
  const problems: string[] = [];
  if (!image.hasShell && argv[0] === image.shell[0])
    problems.push(`the process is ${argv[0]} (a shell form), which the image does not have`);
  const ep = image.entrypoint;
  const shellFormEntrypoint =
    ep !== undefined && ep.length === image.shell.length + 1 && image.shell.every((w, i) => ep[i] === w);
  if (shellFormEntrypoint && (container.command ?? []).length === 0 && argv.length > ep.length)
    problems.push(
      "shell-form ENTRYPOINT: the CMD/args after it reach the shell as $0, $1... and its command ignores them",
    );
  return {
    argv,
    workingDir: container.workingDir
      ? path.posix.resolve(image.workingDir, container.workingDir)
      : image.workingDir,
    env: { ...image.env, ...Object.fromEntries(podEnv) },
    problems,
  };
}
