import { beforeAll, describe, expect, it } from "vitest";
import { copiesFromBuildStage, homeOf, parseDockerfile, runScript } from "../lib/dockerfile";
import {
  covers,
  packageCall,
  parseMount,
  pipNoCacheDirHonoured,
  removedPaths,
  removes,
  toolchainOf,
} from "../lib/packages";
import { loadShell, type Shell } from "../lib/shell";
import { multiStageFindings, packageHygieneFindings } from "../rules/dockerfile";

let shell: Shell;
beforeAll(async () => {
  shell = await loadShell();
});

const words = (s: string) => s.split(" ");
/** The hygiene findings of a Dockerfile text (final stage only unless `all`). */
const hygiene = (text: string, all = false) =>
  packageHygieneFindings(parseDockerfile(text), "Dockerfile", shell, all);
/** A final stage that RUNs `script` (the usual shape of a case). */
const run = (script: string, head = "") => hygiene(`FROM debian:12-slim\n${head}RUN ${script}\n`);

describe("packageCall: managers, verbs behind options, aliases", () => {
  it.each([
    ["dnf -y in jq", "rpm", "in", "install"],
    ["yum --setopt=tsflags=nodocs -y upgrade", "rpm", "upgrade", "install"],
    ["microdnf reinstall -y x", "rpm", "reinstall", "install"],
    ["dnf --enablerepo epel distro-sync", "rpm", "distro-sync", "install"],
    ["dnf -y group install Development", "rpm", "group install", "install"],
    ["tdnf downgrade x", "rpm", "downgrade", "install"],
    ["dnf clean all", "rpm", "clean all", "clean"],
    ["dnf clean packages", "rpm", "clean packages", "other"],
    ["dnf list installed", "rpm", "list", "other"],
    ["zypper -n in -t pattern devel", "zypper", "in", "install"],
    ["zypper --non-interactive dup", "zypper", "dup", "install"],
    ["zypper cc -a", "zypper", "cc", "clean"],
    ["apt-get -o Dpkg::Options::=--force-confold -y install x", "apt", "install", "install"],
    ["apt-get -qq update", "apt", "update", "other"],
    ["apt full-upgrade -y", "apt", "full-upgrade", "install"],
    ["aptitude -y safe-upgrade", "aptitude", "safe-upgrade", "install"],
    ["/usr/bin/apk --no-cache add x", "apk", "add", "install"],
    ["apk del x", "apk", "del", "other"],
    ["pip install x", "pip", "install", "install"],
    ["pip2 install x", "pip", "install", "install"],
    ["pip3.12 download x", "pip", "download", "install"],
    ["python3 -u -m pip install x", "pip", "install", "install"],
    ["pip cache purge", "pip", "cache purge", "clean"],
    ["npm ci", "npm", "ci", "install"],
    ["npm --prefix /app i", "npm", "i", "install"],
    ["npm run build", "npm", "run", "other"],
    ["npm cache clean --force", "npm", "cache clean", "clean"],
    ["yarn", "yarn", "", "install"],
    ["yarn --frozen-lockfile", "yarn", "", "install"],
    ["yarn global add x", "yarn", "global add", "install"],
    ["yarn build", "yarn", "build", "other"],
  ])("%s → %s %s (%s)", (cmd, manager, verb, action) =>
    expect(packageCall(words(cmd))).toMatchObject({ manager, verb, action }),
  );

  it("leaves option values out of the operands and finds them by any spelling", () => {
    const apk = packageCall(words("apk add --virtual .build-deps gcc musl-dev"))!;
    expect(apk.operands).toEqual(["gcc", "musl-dev"]);
    const apt = packageCall(words("apt-get -o A=1 -oAPT::Install-Recommends=0 --option=B=2 install x"))!;
    expect(apt.optionValues("-o", "--option")).toEqual(["A=1", "APT::Install-Recommends=0", "B=2"]);
    expect(packageCall(words("pip install --cache-dir=/c x"))!.option("--cache-dir")).toBe("/c");
    expect(packageCall(words("gcc -o x x.c"))).toBeUndefined();
    expect(packageCall(words("python3 app.py"))).toBeUndefined();
  });
});

describe("paths, mounts and pip's boolean", () => {
  it("a mount covers its target and what is under it, never everything", () => {
    expect(covers("/var/lib/apt", "/var/lib/apt/lists")).toBe(true);
    expect(covers("/var/lib/apt/lists/", "/var/lib/apt/lists")).toBe(true);
    expect(covers("/var/cache/apt", "/var/lib/apt/lists")).toBe(false);
    expect(covers("/var/lib/apt/lists/partial", "/var/lib/apt/lists")).toBe(false);
    expect(covers("/", "/var/cache/apk")).toBe(false);
  });

  it("rm -r of the dir, its contents or a parent empties it; other rm do not", () => {
    expect(removes("/var/lib/apt/lists/*", "/var/lib/apt/lists")).toBe(true);
    expect(removes("/var/lib/apt/*", "/var/lib/apt/lists")).toBe(true);
    expect(removes("/var/lib/apt/lists/partial", "/var/lib/apt/lists")).toBe(false);
    expect(removes("/var/lib/apt/lists/*.gz", "/var/lib/apt/lists")).toBe(false);
    expect(removedPaths(words("rm -rf a b"))).toEqual(["a", "b"]);
    expect(removedPaths(words("rm -r -f -- -x"))).toEqual(["-x"]);
    expect(removedPaths(words("rm -f a"))).toEqual([]);
    expect(removedPaths(words("echo -rf a"))).toEqual([]);
  });

  it("parses --mount values (bind by default)", () => {
    expect(parseMount("type=cache,target=/root/.cache/pip,sharing=locked")).toEqual({
      type: "cache",
      target: "/root/.cache/pip",
    });
    expect(parseMount("type=tmpfs,dst=/var/lib/apt/lists")).toEqual({
      type: "tmpfs",
      target: "/var/lib/apt/lists",
    });
    expect(parseMount("from=build,source=/out,target=/mnt")).toEqual({
      type: "bind",
      from: "build",
      source: "/out",
      target: "/mnt",
    });
  });

  it("pip disables its cache for any valid boolean in PIP_NO_CACHE_DIR, even a false one", () => {
    for (const v of ["1", "true", "yes", "on", "off", "false", "0"])
      expect(pipNoCacheDirHonoured(v)).toBe(true);
    for (const v of ["", "maybe", undefined]) expect(pipNoCacheDirHonoured(v)).toBe(false);
  });

  it("homes: $HOME, /root for root, /home/NAME, unknown for a bare uid", () => {
    expect(homeOf("", new Map())).toBe("/root");
    expect(homeOf("0:0", new Map())).toBe("/root");
    expect(homeOf("app", new Map())).toBe("/home/app");
    expect(homeOf("10001", new Map())).toBeUndefined();
    expect(homeOf("10001", new Map([["HOME", "/app"]]))).toBe("/app");
  });
});

describe("RUN scripts as Docker hands them to the shell", () => {
  it("keeps continuations (rows map to lines), drops comment and empty continuation lines", () => {
    const lines = ["RUN apt-get update \\", "  # why", "", "  && apt-get install x", "RUN next"];
    expect(runScript(lines, { line: 0, character: 4 }, 3)).toEqual({
      text: "apt-get update \\\n  && apt-get install x",
      rows: [0, 3],
    });
  });

  it("keeps here-document lines verbatim, comments included", () => {
    const lines = ["RUN cat <<EOF > /x", "# not a comment here", "EOF"];
    expect(runScript(lines, { line: 0, character: 4 }, 2, new Set([1, 2])).rows).toEqual([0, 1, 2]);
  });

  it("reports findings on the line of the command, not of the RUN", () => {
    expect(run("apt-get update \\\n  # comment\n  && apk add curl")).toEqual([
      "Dockerfile:4: apk add without --no-cache; or rm -rf /var/cache/apk/* after it, or a cache mount at /var/cache/apk",
    ]);
  });
});

describe("dockerfile-package-hygiene: yum/dnf/microdnf/tdnf", () => {
  it.each([
    "dnf -y in jq",
    "dnf install -y jq",
    "yum -y reinstall jq",
    "dnf -y upgrade",
    "dnf -y up jq",
    "yum -y update",
    "dnf -y distro-sync",
    "dnf -y downgrade jq",
    "dnf -y group install Tools",
    "yum -y localinstall /tmp/x.rpm",
    "microdnf install -y jq",
    "tdnf install -y jq",
  ])("flags `%s` without clean all, passes it with one after", (cmd) => {
    expect(run(cmd)).toEqual([expect.stringContaining("without `clean all` after it")]);
    const tool = cmd.split(" ")[0];
    expect(run(`${cmd} && ${tool} clean all`)).toEqual([]);
  });

  it("a clean before the install does not count, and says so", () => {
    expect(run("dnf clean all && dnf -y install jq")).toEqual([
      expect.stringContaining("(the cleanup runs before it, so the cache stays)"),
    ]);
  });

  it("rm of the manager's cache dir counts; other verbs need nothing", () => {
    expect(run("dnf -y in jq && rm -rf /var/cache/dnf")).toEqual([]);
    expect(run("dnf -y in jq && rm -rf /var/cache/apk")).toHaveLength(1);
    expect(run("dnf -y remove jq && dnf list installed")).toEqual([]);
    expect(run("dnf -y in jq && dnf clean packages")).toHaveLength(1);
  });
});

describe("dockerfile-package-hygiene: apt-get, apt, aptitude", () => {
  it("flags recommends and lists; passes the canonical RUN", () => {
    expect(run("apt-get update && apt-get install -y curl")).toEqual([
      "Dockerfile:2: apt-get install without --no-install-recommends",
      expect.stringMatching(/^Dockerfile:2: apt-get install: apt lists not removed in the same RUN/),
    ]);
    expect(
      run("apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*"),
    ).toEqual([]);
    expect(
      run("apt update && apt install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists"),
    ).toEqual([]);
  });

  it("understands -o APT::Install-Recommends, aptitude's flags and an apt.conf.d written earlier", () => {
    const tail = " && rm -rf /var/lib/apt/lists/*";
    expect(run(`apt-get -o APT::Install-Recommends=false install -y x${tail}`)).toEqual([]);
    expect(run(`apt-get -oAPT::Install-Recommends=0 install -y x${tail}`)).toEqual([]);
    expect(run(`aptitude install -y --without-recommends x${tail}`)).toEqual([]);
    expect(run(`aptitude install -yR x${tail}`)).toEqual([]);
    expect(run(`aptitude install -y x${tail}`)).toEqual([
      "Dockerfile:2: aptitude install without --no-install-recommends",
    ]);
    const conf = `RUN echo 'APT::Install-Recommends "false";' > /etc/apt/apt.conf.d/99norecommends\n`;
    expect(run(`apt-get install -y x${tail}`, conf)).toEqual([]);
  });

  it("text that only mentions a flag or a command is not one", () => {
    expect(
      run('echo "--no-install-recommends" && apt-get install -y x && rm -rf /var/lib/apt/lists/*'),
    ).toEqual([expect.stringContaining("without --no-install-recommends")]);
    expect(run('echo "apt-get install -y x; pip install y"')).toEqual([]);
  });

  it("upgrades leave lists too; the cleanup must follow the install", () => {
    expect(run("apt-get update && apt-get -y upgrade")).toEqual([
      expect.stringContaining("apt lists not removed"),
    ]);
    expect(
      run("rm -rf /var/lib/apt/lists/* && apt-get update && apt-get install -y --no-install-recommends x"),
    ).toEqual([expect.stringContaining("the cleanup runs before it")]);
  });
});

describe("dockerfile-package-hygiene: mounts count only on the manager's cache dir", () => {
  const apt = "apt-get update && apt-get install -y --no-install-recommends x";
  it.each([
    ["--mount=type=cache,target=/var/lib/apt/lists", 0],
    ["--mount=type=cache,target=/var/lib/apt,sharing=locked", 0],
    ["--mount=type=tmpfs,target=/var/lib/apt/lists", 0],
    ["--mount=type=cache,target=/var/cache/apt", 1],
    ["--mount=type=cache,target=/root/.cache/pip", 1],
    ["--mount=type=bind,target=/var/lib/apt/lists", 1],
    ["--mount=type=secret,id=x", 1],
  ])("apt with %s: %d finding(s)", (mount, n) => expect(run(`${mount} ${apt}`)).toHaveLength(n));

  it.each([
    ["--mount=type=cache,target=/var/cache/apk apk add x", 0],
    ["--mount=type=cache,target=/var/cache/apt apk add x", 1],
    ["--mount=type=cache,target=/root/.cache/pip pip install x", 0],
    ["--mount=type=cache,target=/root/.cache pip install x", 0],
    ["--mount=type=cache,target=/root/.npm pip install x", 1],
    ["--mount=type=cache,target=/var/cache/dnf dnf -y in x", 0],
    ["--mount=type=cache,target=/var/cache/zypp zypper -n in x", 0],
    ["--mount=type=cache,target=/root/.npm npm ci", 0],
    ["--mount=type=cache,target=/usr/local/share/.cache/yarn yarn install", 0],
  ])("%s: %d finding(s)", (script, n) => expect(run(script)).toHaveLength(n));

  it("a mount at root's cache does not cover another user's", () => {
    expect(run("--mount=type=cache,target=/root/.cache/pip pip install x", "USER app\n")).toHaveLength(1);
    expect(run("--mount=type=cache,target=/home/app/.cache/pip pip install x", "USER app\n")).toEqual([]);
    expect(run("--mount=type=cache,target=$HOME/.cache/pip pip install x", "ENV HOME=/srv\n")).toEqual([]);
  });
});

describe("dockerfile-package-hygiene: apk", () => {
  it.each([
    ["apk add curl", 1],
    ["apk upgrade", 1],
    ["apk --no-cache add curl", 0],
    ["apk add --no-cache curl", 0],
    ["apk update && apk add curl && rm -rf /var/cache/apk/*", 0],
    ["apk del curl", 0],
    ["sudo apk add curl", 1],
  ])("%s: %d", (script, n) => expect(run(script)).toHaveLength(n));
});

describe("dockerfile-package-hygiene: pip, pip2, pip3, python -m pip, PIP_NO_CACHE_DIR", () => {
  it.each([
    ["pip install x", 1],
    ["pip2 install x", 1],
    ["pip3 install x", 1],
    ["python3 -m pip install x", 1],
    ["pip download x", 1],
    ["pip install --no-cache-dir x", 0],
    ["pip --no-cache-dir install x", 0],
    ["PIP_NO_CACHE_DIR=1 pip install x", 0],
    ["PIP_NO_CACHE_DIR=off pip install x", 0],
    ["PIP_NO_CACHE_DIR= pip install x", 1],
    ["export PIP_NO_CACHE_DIR=1 && pip install x", 0],
    ["PIP_NO_CACHE_DIR=1; pip install x", 1],
    ["env PIP_NO_CACHE_DIR=1 pip install x", 0],
    ["pip install x && rm -rf /root/.cache/pip", 0],
    ["pip install x && rm -rf ~/.cache", 0],
    ["pip install x && pip cache purge", 0],
    ["pip list && pip uninstall -y x", 0],
  ])("%s: %d", (script, n) => expect(run(script)).toHaveLength(n));

  it("honours ENV and ARG set before the RUN, in the stage or a stage it builds on", () => {
    expect(run("pip install x", "ENV PIP_NO_CACHE_DIR=1\n")).toEqual([]);
    expect(run("pip install x", "ARG PIP_NO_CACHE_DIR=true\n")).toEqual([]);
    expect(hygiene("FROM python:3.12-slim\nRUN pip install x\nENV PIP_NO_CACHE_DIR=1\n")).toHaveLength(1);
    const inherited = "FROM python:3.12-slim AS base\nENV PIP_NO_CACHE_DIR=1\nFROM base\nRUN pip install x\n";
    expect(hygiene(inherited)).toEqual([]);
    const argOnly = "FROM python:3.12-slim AS base\nARG PIP_NO_CACHE_DIR=1\nFROM base\nRUN pip install x\n";
    expect(hygiene(argOnly)).toHaveLength(1); // ARGs do not pass to a child stage
    expect(run("pip install x", "ENV PIP_CACHE_DIR=/cache\n")).toEqual([
      expect.stringContaining("a cache mount at /cache"),
    ]);
  });
});

describe("dockerfile-package-hygiene: npm, yarn, zypper", () => {
  it.each([
    ["npm ci", 1],
    ["npm ci && npm cache clean --force", 0],
    ["npm ci && npm cache clean", 1],
    ["npm install -g x && rm -rf /root/.npm", 0],
    ["npm run build", 0],
    ["yarn", 1],
    ["yarn install --frozen-lockfile && yarn cache clean", 0],
    ["yarn build", 0],
    ["YARN_CACHE_FOLDER=/tmp/yc yarn install && rm -rf /tmp/yc", 0],
    ["zypper -n in curl", 1],
    ["zypper -n install curl && zypper clean --all", 0],
    ["zypper --non-interactive in curl && zypper cc", 0],
    ["zypper -n in curl && rm -rf /var/cache/zypp/*", 0],
    ["zypper refresh", 0],
  ])("%s: %d", (script, n) => expect(run(script)).toHaveLength(n));
});

describe("dockerfile-package-hygiene: the shell around the command", () => {
  it("sees installs in sh -c, exec form, here-documents, conditionals and wrappers", () => {
    expect(run(`sh -c "apk add curl"`)).toHaveLength(1);
    expect(run(`["apk", "add", "curl"]`)).toHaveLength(1);
    expect(run(`["/bin/sh", "-c", "apk add --no-cache curl"]`)).toEqual([]);
    expect(hygiene("FROM alpine:3.20\nRUN <<EOF\nset -e\napk add curl\nEOF\n")).toEqual([
      expect.stringMatching(/^Dockerfile:4: apk add without --no-cache/),
    ]);
    expect(run('if [ -n "$X" ]; then apk add curl; fi')).toHaveLength(1);
    expect(run("xargs -a pkgs apk add")).toHaveLength(1);
  });

  it("reports a RUN that is not valid shell; skips non-POSIX shells", () => {
    expect(run('apk add --no-cache x && echo "oops')).toEqual([
      expect.stringMatching(/^Dockerfile:2: RUN is not valid shell/),
    ]);
    expect(
      hygiene(
        'FROM mcr.microsoft.com/windows/servercore:ltsc2022\nSHELL ["powershell", "-Command"]\nRUN apk add x\n',
      ),
    ).toEqual([]);
  });

  it("checks build stages only with allStages", () => {
    const text = "FROM alpine:3.20 AS build\nRUN apk add gcc\nFROM alpine:3.20\nCOPY --from=build /a /a\n";
    expect(hygiene(text)).toEqual([]);
    expect(hygiene(text, true)).toEqual([expect.stringMatching(/^Dockerfile:2: apk add/)]);
  });
});

describe("dockerfile-multi-stage", () => {
  const ms = (text: string) => multiStageFindings(parseDockerfile(text), "Dockerfile", shell);

  it("a final stage built FROM the build stage without COPY --from is not multi-stage", () => {
    const text =
      'FROM python:3.12-slim AS build\nRUN pip install --no-cache-dir -r r.txt\nFROM build\nCMD ["app"]\n';
    expect(ms(text)).toEqual([
      expect.stringMatching(/^Dockerfile:3: the final stage builds FROM stage build and copies nothing/),
    ]);
    expect(copiesFromBuildStage(parseDockerfile(text))).toBe(false);
  });

  it("a final stage FROM a shared slim base that copies from the build stage is", () => {
    const text =
      "FROM node:20 AS build\nRUN echo built\nFROM gcr.io/distroless/nodejs20-debian12 AS base\nFROM base\nCOPY --from=build /app /app\n";
    expect(ms(text)).toEqual([]);
  });

  it("copies from an external image are no build stage; numeric and mount references are", () => {
    const head = "FROM golang:1.22 AS build\nRUN echo x\nFROM alpine:3.20\n";
    expect(ms(`${head}COPY --from=busybox:1.36 /bin/sh /bin/sh\n`)).toEqual([
      expect.stringContaining("does not COPY --from a build stage"),
    ]);
    expect(ms(`${head}COPY --from=0 /out /out\n`)).toEqual([]);
    expect(ms(`${head}RUN --mount=from=build,source=/out,target=/mnt cp /mnt/app /app\n`)).toEqual([]);
  });

  it("finds toolchains by command, not by text", () => {
    const head =
      "FROM golang:1.22 AS build\nRUN go build -o /app\nFROM alpine:3.20\nCOPY --from=build /app /app\n";
    expect(ms(`${head}RUN echo "make sure gcc is absent"\n`)).toEqual([]);
    expect(ms(`${head}RUN sudo make install\n`)).toEqual([
      expect.stringContaining("the final stage runs `make`"),
    ]);
    expect(ms(`${head}RUN apk add --no-cache --virtual .b gcc\n`)).toEqual([
      "Dockerfile:5: the final stage installs gcc; move the toolchain to a build stage",
    ]);
    expect(ms(`${head}RUN dnf -y in libpq-devel\n`)).toEqual([
      expect.stringContaining("installs libpq-devel"),
    ]);
  });

  it("toolchainOf", () => {
    expect(toolchainOf(words("cargo build --release"))).toBe("runs `cargo build`");
    expect(toolchainOf(words("npm ci"))).toBe("runs `npm ci`");
    expect(toolchainOf(words("pip install /dist/app.whl"))).toBeUndefined();
    expect(toolchainOf(words("pip wheel ."))).toBe("runs `pip wheel`");
    expect(toolchainOf(words("apt-get install -y libpq5"))).toBeUndefined();
    expect(toolchainOf(words("go version"))).toBeUndefined();
  });
});
