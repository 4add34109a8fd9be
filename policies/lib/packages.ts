/**
 * Package managers as the Dockerfile rules understand them: which command is a manager, its verb
 * behind global options and aliases (`dnf -y in`, `zypper -n in`, `python3 -m pip install`), the
 * options and operands of the call, where each manager keeps its cache, and whether a RUN leaves that
 * cache (or apt's recommended packages) in the layer. Pure functions over parsed shell commands.
 */
import * as path from "node:path";
import type { Command } from "./shell";

export type Manager = "apt" | "aptitude" | "apk" | "rpm" | "zypper" | "pip" | "npm" | "yarn" | "pnpm";

export interface PackageCall {
  /** The command as written (`apt-get`, `dnf`, `pip3`, `python3 -m pip` → `pip`). */
  readonly tool: string;
  readonly manager: Manager;
  /** The verb as written (`in`, `up`, `install`); "" for a bare `yarn`. */
  readonly verb: string;
  /** What the verb does, aliases resolved. */
  readonly action: "install" | "clean" | "other";
  /** Every option word of the call, before and after the verb. */
  readonly options: readonly string[];
  /** Operands after the verb (packages, or the verb's sub-arguments), option values left out. */
  readonly operands: readonly string[];
  /** The last value of an option, by any of its spellings (`--cache-dir DIR`, `--cache-dir=DIR`). */
  readonly option: (...names: string[]) => string | undefined;
  /** Every value of an option given several times (`-o A=1 -o B=2`). */
  readonly optionValues: (...names: string[]) => string[];
}

interface ManagerSpec {
  readonly manager: Manager;
  /** Options that take a value as the next word. */
  readonly values: ReadonlySet<string>;
  /** Verbs (and aliases) that download and install packages. */
  readonly install: ReadonlySet<string>;
  readonly clean?: ReadonlySet<string>;
}

const set = (...xs: string[]): ReadonlySet<string> => new Set(xs);

const APT_VALUES = set("-o", "-c", "-t", "-a", "--option", "--config-file", "--target-release");
const RPM: ManagerSpec = {
  manager: "rpm",
  values: set(
    "-c",
    "--config",
    "--installroot",
    "--releasever",
    "--setopt",
    "--enablerepo",
    "--disablerepo",
    "--repo",
    "--repoid",
    "-x",
    "--exclude",
    "-d",
    "--debuglevel",
    "-e",
    "--errorlevel",
    "--forcearch",
    "--disableplugin",
    "--enableplugin",
    "--downloaddir",
    "--destdir",
    "--advisory",
    "--cve",
    "--color",
  ),
  // dnf/yum aliases included: `in`, `rei`, `up`, `up-min`, `dsync`, `dg`, group and module installs.
  install: set(
    "install",
    "in",
    "install-n",
    "install-na",
    "install-nevra",
    "localinstall",
    "reinstall",
    "rei",
    "upgrade",
    "up",
    "update",
    "upgrade-minimal",
    "up-min",
    "update-minimal",
    "upgrade-to",
    "update-to",
    "localupdate",
    "distro-sync",
    "distrosync",
    "dsync",
    "distribution-synchronization",
    "downgrade",
    "dg",
    "swap",
    "groupinstall",
    "groupupdate",
    "builddep",
    "group install",
    "groups install",
    "group upgrade",
    "module install",
    "module update",
    "environment install",
  ),
  clean: set("clean all"),
};

const SPECS: Readonly<Record<string, ManagerSpec>> = {
  "apt-get": {
    manager: "apt",
    values: APT_VALUES,
    install: set("install", "reinstall", "upgrade", "dist-upgrade", "full-upgrade", "build-dep"),
  },
  apt: {
    manager: "apt",
    values: APT_VALUES,
    install: set("install", "reinstall", "upgrade", "dist-upgrade", "full-upgrade", "build-dep"),
  },
  aptitude: {
    manager: "aptitude",
    values: set("-o", "-t", "-F", "-w", "-O", "--target-release", "--display-format", "--width"),
    install: set(
      "install",
      "reinstall",
      "upgrade",
      "safe-upgrade",
      "full-upgrade",
      "dist-upgrade",
      "build-dep",
      "build-depends",
    ),
  },
  apk: {
    manager: "apk",
    values: set(
      "-X",
      "--repository",
      "-p",
      "--root",
      "--arch",
      "--cache-dir",
      "--keys-dir",
      "--repositories-file",
      "-t",
      "--virtual",
      "--timeout",
      "--cache-max-age",
      "--progress-fd",
    ),
    install: set("add", "upgrade", "fix"),
  },
  yum: RPM,
  dnf: RPM,
  dnf5: RPM,
  "dnf-3": RPM,
  microdnf: RPM,
  tdnf: RPM,
  zypper: {
    manager: "zypper",
    values: set(
      "-R",
      "--root",
      "--installroot",
      "-D",
      "--reposd-dir",
      "-C",
      "--cache-dir",
      "--raw-cache-dir",
      "--solv-cache-dir",
      "--pkg-cache-dir",
      "-c",
      "--config",
      "-t",
      "--type",
      "-r",
      "--repo",
      "--from",
    ),
    install: set(
      "install",
      "in",
      "update",
      "up",
      "dist-upgrade",
      "dup",
      "patch",
      "install-new-recommends",
      "inr",
      "source-install",
      "si",
    ),
    clean: set("clean", "cc"),
  },
  pip: {
    manager: "pip",
    values: set(
      "--python",
      "--log",
      "--proxy",
      "--retries",
      "--timeout",
      "--exists-action",
      "--trusted-host",
      "--cert",
      "--client-cert",
      "--cache-dir",
      "--src",
      "-r",
      "--requirement",
      "-c",
      "--constraint",
      "-e",
      "--editable",
      "-i",
      "--index-url",
      "--extra-index-url",
      "-f",
      "--find-links",
      "-t",
      "--target",
      "--prefix",
      "--root",
      "--platform",
      "--python-version",
      "--implementation",
      "--abi",
      "--no-binary",
      "--only-binary",
      "--progress-bar",
      "--upgrade-strategy",
      "-C",
      "--config-settings",
      "--report",
      "-d",
      "--dest",
      "-w",
      "--wheel-dir",
    ),
    install: set("install", "download", "wheel"),
    clean: set("cache purge", "cache remove"),
  },
  npm: {
    manager: "npm",
    values: set(
      "--prefix",
      "--cache",
      "--registry",
      "--userconfig",
      "--globalconfig",
      "-w",
      "--workspace",
      "--loglevel",
      "--omit",
      "--include",
      "--tag",
      "--location",
      "-C",
    ),
    install: set(
      "install",
      "i",
      "in",
      "ins",
      "inst",
      "insta",
      "instal",
      "isnt",
      "isnta",
      "isntal",
      "isntall",
      "add",
      "ci",
      "clean-install",
      "ic",
      "install-clean",
      "isntall-clean",
      "install-ci-test",
      "cit",
      "install-test",
      "it",
      "update",
      "up",
      "upgrade",
      "udpate",
    ),
    clean: set("cache clean", "cache clear", "cache rm"),
  },
  yarn: {
    manager: "yarn",
    values: set(
      "--cwd",
      "--modules-folder",
      "--cache-folder",
      "--network-timeout",
      "--mutex",
      "--global-folder",
      "--registry",
      "--link-folder",
      "--use-yarnrc",
    ),
    // A bare `yarn` installs; `yarn <script>` does not.
    install: set("", "install", "add", "upgrade", "up", "global add", "global upgrade", "workspaces focus"),
    clean: set("cache clean"),
  },
  pnpm: {
    manager: "pnpm",
    values: set("-C", "--dir", "--filter", "-F", "--store-dir"),
    install: set("install", "i", "add", "update", "up", "upgrade"),
  },
};

/** Verbs of two words (`dnf group install`, `npm cache clean`, `yarn global add`). */
const TWO_WORD_VERBS = new Set([
  "group",
  "groups",
  "module",
  "environment",
  "cache",
  "global",
  "workspaces",
  "clean",
]);

const base = (p: string) => p.slice(p.lastIndexOf("/") + 1);

/** `pip3.12` → `pip`, `python3 -m pip …` → `pip …`; other commands unchanged. */
function normalise(argv: readonly string[]): readonly string[] {
  const name = base(argv[0] ?? "");
  if (/^pip[23]?(\.\d+)?$/.test(name)) return ["pip", ...argv.slice(1)];
  if (/^python[23]?(\.\d+)?$/.test(name)) {
    let i = 1;
    while (i < argv.length && /^-[BdEiIOqsSuvWX]+$/.test(argv[i]!)) i++;
    if (argv[i] === "-m" && argv[i + 1] === "pip") return ["pip", ...argv.slice(i + 2)];
    if (argv[i] === "-mpip") return ["pip", ...argv.slice(i + 1)];
    return argv;
  }
  return [name, ...argv.slice(1)];
}

/** A package-manager call, or undefined for any other command. */
export function packageCall(argvIn: readonly string[]): PackageCall | undefined {
  const argv = normalise(argvIn);
  const tool = argv[0] ?? "";
  const spec = SPECS[tool];
  if (!spec) return undefined;
  const options: string[] = [];
  const values: [string, string][] = [];
  const positional: string[] = [];
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith("-") && a.length > 1) {
      options.push(a);
      const eq = a.indexOf("=");
      if (a.startsWith("--") && eq > 0) values.push([a.slice(0, eq), a.slice(eq + 1)]);
      else if (spec.values.has(a) && i + 1 < argv.length) values.push([a, argv[++i]!]);
      else if (!a.startsWith("--") && a.length > 2 && spec.values.has(a.slice(0, 2)))
        values.push([a.slice(0, 2), a.slice(2)]); // glued: -oAPT::Install-Recommends=false
      continue;
    }
    positional.push(a);
  }
  let verb = positional[0] ?? "";
  let operands = positional.slice(1);
  if (TWO_WORD_VERBS.has(verb) && operands[0] !== undefined) {
    verb = `${verb} ${operands[0]}`;
    operands = operands.slice(1);
  }
  const action = spec.install.has(verb) ? "install" : spec.clean?.has(verb) ? "clean" : "other";
  return {
    tool,
    manager: spec.manager,
    verb,
    action,
    options,
    operands,
    option: (...names) => values.filter(([k]) => names.includes(k)).pop()?.[1],
    optionValues: (...names) => values.filter(([k]) => names.includes(k)).map(([, v]) => v),
  };
}

/** pip reads PIP_NO_CACHE_DIR as a boolean and disables the cache for any valid one (even "false"). */
export function pipNoCacheDirHonoured(value: string | undefined): boolean {
  return value !== undefined && /^(1|0|y|n|yes|no|t|f|true|false|on|off)$/i.test(value.trim());
}

/** yum is dnf on EL8+ (its cache then /var/cache/dnf); dnf5 keeps libdnf5's; microdnf varies by release. */
const RPM_CACHES: Readonly<Record<string, string[]>> = {
  yum: ["/var/cache/yum", "/var/cache/dnf"],
  dnf5: ["/var/cache/libdnf5"],
  tdnf: ["/var/cache/tdnf"],
};

/** Where a manager keeps what it downloads, for the user whose home is `home` (undefined: unknown). */
export function cacheDirsOf(
  call: PackageCall,
  env: ReadonlyMap<string, string>,
  home: string | undefined,
): string[] {
  const inHome = (p: string) => (home !== undefined ? [path.posix.join(home, p)] : []);
  switch (call.manager) {
    case "apt":
    case "aptitude":
      // Debian images delete downloaded .debs (docker-clean); the package lists stay.
      return ["/var/lib/apt/lists"];
    case "apk":
      return [call.option("--cache-dir") ?? "/var/cache/apk", "/etc/apk/cache"];
    case "rpm":
      return RPM_CACHES[call.tool] ?? ["/var/cache/dnf", "/var/cache/yum", "/var/cache/libdnf5"];
    case "zypper":
      return [call.option("-C", "--cache-dir") ?? "/var/cache/zypp"];
    case "pip": {
      const dir = call.option("--cache-dir") ?? env.get("PIP_CACHE_DIR");
      if (dir) return [dir];
      const xdg = env.get("XDG_CACHE_HOME");
      return xdg ? [path.posix.join(xdg, "pip")] : inHome(".cache/pip");
    }
    case "npm": {
      const dir = call.option("--cache") ?? env.get("npm_config_cache") ?? env.get("NPM_CONFIG_CACHE");
      return dir ? [dir] : inHome(".npm");
    }
    case "yarn": {
      const dir = call.option("--cache-folder") ?? env.get("YARN_CACHE_FOLDER");
      if (dir) return [dir];
      // yarn 1 as root uses /usr/local/share/.cache/yarn; otherwise ~/.cache/yarn; berry ~/.yarn/berry.
      return ["/usr/local/share/.cache/yarn", ...inHome(".cache/yarn"), ...inHome(".yarn/berry/cache")];
    }
    case "pnpm": {
      const dir = call.option("--store-dir") ?? env.get("npm_config_store_dir");
      return dir ? [dir] : inHome(".local/share/pnpm/store");
    }
  }
}

const norm = (p: string) => path.posix.normalize(p).replace(/(.)\/+$/, "$1");

/** Whether a mount at `target` keeps `dir` out of the layer (the target is the dir or contains it). */
export function covers(target: string, dir: string): boolean {
  const t = norm(target);
  const d = norm(dir);
  return t !== "/" && (d === t || d.startsWith(`${t}/`));
}

/** Whether `rm` of `pattern` empties `dir`: the dir itself, `dir/*`, or a parent of it. */
export function removes(pattern: string, dir: string): boolean {
  const p = norm(pattern.replace(/\/\*+$/, "").replace(/\/\.\*$/, ""));
  if (p.includes("*")) return false;
  return covers(p, dir);
}

/** Paths a command deletes recursively (`rm -rf a b`, `rm -r -f a`), none for other commands. */
export function removedPaths(argv: readonly string[]): string[] {
  if (base(argv[0] ?? "") !== "rm") return [];
  const opts = argv.slice(1).filter((a) => a.startsWith("-") && a !== "--");
  const recursive = opts.some((o) => o === "--recursive" || /^-[a-zA-Z]*[rR]/.test(o));
  if (!recursive) return [];
  const end = argv.indexOf("--");
  return argv.slice(1).filter((a, i) => (end >= 0 && i + 1 > end) || !a.startsWith("-"));
}

/** A RUN's mount (`--mount=type=cache,target=/root/.cache/pip`). */
export interface Mount {
  readonly type: string;
  readonly target?: string;
  readonly from?: string;
  readonly source?: string;
}

/** Parses a `--mount` value; the type defaults to bind, as BuildKit's does. */
export function parseMount(value: string): Mount {
  const fields = new Map<string, string>();
  for (const part of value.split(",")) {
    const eq = part.indexOf("=");
    const key = (eq >= 0 ? part.slice(0, eq) : part).trim().toLowerCase();
    const v = eq >= 0 ? part.slice(eq + 1).trim() : "true";
    fields.set(key, v.replace(/^"(.*)"$/, "$1"));
  }
  const target = fields.get("target") ?? fields.get("dst") ?? fields.get("destination");
  const source = fields.get("source") ?? fields.get("src");
  const from = fields.get("from");
  return {
    type: (fields.get("type") ?? "bind").toLowerCase(),
    ...(target !== undefined ? { target } : {}),
    ...(from !== undefined ? { from } : {}),
    ...(source !== undefined ? { source } : {}),
  };
}

/** What a RUN's package problems are judged against. */
export interface RunFacts {
  readonly commands: readonly Command[];
  readonly mounts: readonly Mount[];
  /** Home of the user the RUN runs as (undefined: not known). */
  readonly home: string | undefined;
  /** apt is configured (by an earlier command of the stage) not to install recommended packages. */
  readonly aptNoRecommends: boolean;
}

export interface Problem {
  /** Index into `commands` of the call the problem is about. */
  readonly command: number;
  readonly message: string;
}

const APT_NO_RECOMMENDS_RE = /APT::Install-Recommends\s*"?\s*=?\s*"?(false|0)\b/i;

/** A command that configures apt against recommended packages (`echo 'APT::Install-Recommends "false";' > …`). */
export const disablesAptRecommends = (c: Command): boolean =>
  c.argv.some((a) => APT_NO_RECOMMENDS_RE.test(a));

const CLEAN_HINT: Record<Manager, string> = {
  apt: "rm -rf /var/lib/apt/lists/* after it",
  aptitude: "rm -rf /var/lib/apt/lists/* after it",
  apk: "apk add --no-cache",
  rpm: "`<manager> clean all` after it",
  zypper: "`zypper clean --all` after it",
  pip: "--no-cache-dir or PIP_NO_CACHE_DIR=1",
  npm: "`npm cache clean --force` after it",
  yarn: "`yarn cache clean` after it",
  pnpm: "`pnpm store prune` after it",
};

/** Cache mounts and tmpfs mounts keep what is written under them out of the layer. */
const keepsOut = (m: Mount, dir: string) =>
  (m.type === "cache" || m.type === "tmpfs") && m.target !== undefined && covers(m.target, dir);

/**
 * The package-cache and recommended-package problems of one RUN: every install whose manager's
 * cache is neither avoided (flag, environment), mounted away (cache or tmpfs mount on the cache dir),
 * nor cleaned by a later command of the same RUN.
 */
export function packageProblems(run: RunFacts): Problem[] {
  const out: Problem[] = [];
  const calls = run.commands.map((c) => packageCall(c.argv));
  let aptNoRecommends = run.aptNoRecommends;
  run.commands.forEach((cmd, i) => {
    aptNoRecommends ||= disablesAptRecommends(cmd);
    const call = calls[i];
    if (!call || call.action !== "install") return;
    const name = `${call.tool} ${call.verb}`.trim();
    if ((call.manager === "apt" || call.manager === "aptitude") && call.verb === "install") {
      const flag =
        call.options.includes("--no-install-recommends") ||
        (call.manager === "aptitude" &&
          (call.options.includes("--without-recommends") ||
            call.options.some((o) => /^-[a-zA-Z]*R/.test(o) && !o.startsWith("--"))));
      const viaOption = call
        .optionValues("-o", "--option")
        .some((v) => /^APT::Install-Recommends=(false|0|no|off)$/i.test(v));
      if (!flag && !viaOption && !aptNoRecommends)
        out.push({ command: i, message: `${name} without --no-install-recommends` });
    }
    if (avoidsCache(call, cmd)) return;
    const dirs = cacheDirsOf(call, cmd.env, run.home);
    if (dirs.some((d) => run.mounts.some((m) => keepsOut(m, d)))) return;
    const later = run.commands.slice(i + 1);
    const cleaned = later.some((c, k) => cleans(call, calls[i + 1 + k], c, dirs));
    if (cleaned) return;
    const before = run.commands.slice(0, i).some((c, k) => cleans(call, calls[k], c, dirs));
    out.push({ command: i, message: cacheMessage(call, name, dirs, before) });
  });
  return out;
}

function avoidsCache(call: PackageCall, cmd: Command): boolean {
  switch (call.manager) {
    case "apk":
      return call.options.includes("--no-cache");
    case "pip":
      return (
        call.options.includes("--no-cache-dir") || pipNoCacheDirHonoured(cmd.env.get("PIP_NO_CACHE_DIR"))
      );
    default:
      return false;
  }
}

/** Whether `cmd` (a later or earlier command of the RUN) empties the cache `install` filled. */
function cleans(
  install: PackageCall,
  call: PackageCall | undefined,
  cmd: Command,
  dirs: readonly string[],
): boolean {
  if (call && call.manager === install.manager && call.action === "clean") {
    if (install.manager === "npm")
      return call.options.some((o) => o === "--force" || o === "-f" || /^-[a-z]*f/.test(o));
    return true;
  }
  const rm = removedPaths(cmd.argv);
  return dirs.some((d) => rm.some((p) => removes(p, d)));
}

function cacheMessage(call: PackageCall, name: string, dirs: readonly string[], before: boolean): string {
  const where = dirs[0] ?? "its cache";
  const order = before ? " (the cleanup runs before it, so the cache stays)" : "";
  switch (call.manager) {
    case "apt":
    case "aptitude":
      return `${name}: apt lists not removed in the same RUN${order}; ${CLEAN_HINT.apt}, or a cache/tmpfs mount at /var/lib/apt/lists`;
    case "apk":
      return `${name} without --no-cache${order}; or rm -rf /var/cache/apk/* after it, or a cache mount at /var/cache/apk`;
    case "pip":
      return `${name} without --no-cache-dir${order}; set PIP_NO_CACHE_DIR=1, or a cache mount at ${where}`;
    case "rpm":
      return `${name} without \`clean all\` after it${order}; or a cache mount at ${where}`;
    default:
      return `${name} leaves its cache (${where}) in the layer${order}; ${CLEAN_HINT[call.manager]}, or a cache mount at ${where}`;
  }
}

const TOOLCHAIN_PKG_RE =
  /^(build-essential|build-base|gcc|g\+\+|clang|make|cmake|git|golang|rustc|cargo|maven|gradle|default-jdk|openjdk-\d+-jdk|.+-dev|.+-devel)$/;
const COMPILERS = new Set([
  "gcc",
  "g++",
  "cc",
  "c++",
  "clang",
  "clang++",
  "make",
  "cmake",
  "ninja",
  "rustc",
  "mvn",
  "gradle",
  "tsc",
  "javac",
]);
const BUILD_VERBS: Readonly<Record<string, ReadonlySet<string>>> = {
  go: set("build", "install"),
  cargo: set("build", "install"),
  dotnet: set("build", "publish"),
};

/**
 * What in a command puts a toolchain into the image: a compiler or build tool run, a language
 * package manager installing dependencies, or a system package manager installing build packages.
 */
export function toolchainOf(argv: readonly string[]): string | undefined {
  const name = base(argv[0] ?? "");
  if (COMPILERS.has(name)) return `runs \`${name}\``;
  const verbs = BUILD_VERBS[name];
  if (verbs && verbs.has(argv[1] ?? "")) return `runs \`${name} ${argv[1]}\``;
  const call = packageCall(argv);
  if (!call) return undefined;
  if (call.manager === "pip") return call.verb === "wheel" ? "runs `pip wheel`" : undefined; // pip install of a wheel is a deployment
  if (call.manager === "npm" || call.manager === "yarn" || call.manager === "pnpm") {
    if (call.action === "install" && call.verb !== "update" && call.verb !== "up" && call.verb !== "upgrade")
      return `runs \`${`${call.tool} ${call.verb}`.trim()}\``;
    if ((call.manager === "yarn" || call.manager === "pnpm") && call.verb === "build")
      return `runs \`${call.tool} build\``;
    return undefined;
  }
  if (call.action !== "install") return undefined;
  const pkg = call.operands.find((p) => TOOLCHAIN_PKG_RE.test(p.split("=")[0]!));
  return pkg ? `installs ${pkg}` : undefined;
}
