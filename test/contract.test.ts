/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-argument --
   rendered Kubernetes objects are untyped JSON; the assertions are the type check. */
/**
 * The container contract (tools/preflight/contract.ts): what a pod really starts when the image's
 * ENTRYPOINT/CMD meet the pod's command/args; then the gateway's Deployments, as the dev stack
 * registers them, started for real: the argv Kubernetes would run, in a reconstruction of the
 * image's filesystem, with the pod's env and mounts, until the readiness probe answers 200.
 */
import { execFile, spawn } from "node:child_process";
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDockerfile, readDockerfile, resolveDockerfilePath } from "../policies/lib/dockerfile";
import { parseImageRef } from "../policies/lib/images";
import { type GatewayProcess, waitForHttp200 } from "../services/gateway/test/helpers/child";
import { FakeBackend } from "../services/gateway/test/helpers/fake-backend";
import { freePort, type NatsServer, startNatsServer } from "../services/gateway/test/helpers/nats-server";
import {
  BASE_IMAGES,
  baseImageConfig,
  containerProcess,
  ContractError,
  effectiveArgv,
  expandKubernetesVars,
  imageContents,
  parseCommandForm,
  type ImageConfig,
  type ImageCopy,
} from "../tools/preflight/contract";
import { renderStack } from "./harness";

const REPO = path.resolve(__dirname, "..");
const image = (entrypoint?: string[], cmd?: string[]) => ({
  ...(entrypoint ? { entrypoint } : {}),
  ...(cmd ? { cmd } : {}),
});

describe("effectiveArgv: the image's ENTRYPOINT/CMD against the pod's command/args", () => {
  const img = image(["/nodejs/bin/node"], ["dist/main.js"]);

  it("neither command nor args: ENTRYPOINT + CMD", () => {
    expect(effectiveArgv(img, {})).toEqual(["/nodejs/bin/node", "dist/main.js"]);
  });

  it("only args: ENTRYPOINT + args, the CMD is replaced (the old gateway bug)", () => {
    expect(effectiveArgv(img, { args: ["--role", "api"] })).toEqual(["/nodejs/bin/node", "--role", "api"]);
    expect(effectiveArgv(img, { args: ["dist/main.js", "--role", "api"] })).toEqual([
      "/nodejs/bin/node",
      "dist/main.js",
      "--role",
      "api",
    ]);
  });

  it("only command: the command alone, ENTRYPOINT and CMD both ignored", () => {
    expect(effectiveArgv(img, { command: ["/bin/app"] })).toEqual(["/bin/app"]);
  });

  it("command and args: command + args", () => {
    expect(effectiveArgv(img, { command: ["/bin/app"], args: ["-v"] })).toEqual(["/bin/app", "-v"]);
  });

  it("empty lists count as unset", () => {
    expect(effectiveArgv(img, { command: [], args: [] })).toEqual(["/nodejs/bin/node", "dist/main.js"]);
    expect(effectiveArgv(img, { command: [], args: ["x.js"] })).toEqual(["/nodejs/bin/node", "x.js"]);
  });

  it("an image without ENTRYPOINT runs CMD, or the args alone", () => {
    expect(effectiveArgv(image(undefined, ["/app"]), {})).toEqual(["/app"]);
    expect(effectiveArgv(image(undefined, ["/app"]), { args: ["/other", "-x"] })).toEqual(["/other", "-x"]);
    expect(effectiveArgv(image(["/ep"]), {})).toEqual(["/ep"]);
  });

  it("nothing to run is an error", () => {
    expect(() => effectiveArgv(image(), {})).toThrow(ContractError);
    expect(() => effectiveArgv(image(), { args: [] })).toThrow(/no command specified/);
  });

  it("expands $(VAR) in the pod's command/args from the container env, never in the image's", () => {
    const env = [{ name: "ROLE", value: "worker" }];
    expect(
      effectiveArgv(image(["/ep", "$(ROLE)"]), { args: ["--role=$(ROLE)", "$$(ROLE)", "$(NOPE)"], env }),
    ).toEqual(["/ep", "$(ROLE)", "--role=worker", "$(ROLE)", "$(NOPE)"]);
  });

  it("$(VAR) expansion follows Kubernetes: $$ escapes, unknown or unclosed references stay", () => {
    const env = new Map([["A", "1"]]);
    expect(expandKubernetesVars("$(A)-$$(A)-$$-$A-$(B)-$(A", env)).toBe("1-$(A)-$-$A-$(B)-$(A");
  });
});

describe("image config from the Dockerfile's final stage over its base image", () => {
  const config = (text: string) => imageContents(parseDockerfile(text)).config;

  it("exec form is a JSON array of strings, anything else is shell form", () => {
    expect(parseCommandForm('["node", "a b.js"]')).toEqual({ form: "exec", argv: ["node", "a b.js"] });
    expect(parseCommandForm("node app.js")).toEqual({ form: "shell", command: "node app.js" });
    expect(parseCommandForm("[node, app.js]")).toEqual({ form: "shell", command: "[node, app.js]" });
    expect(parseCommandForm('["a", 1]')).toEqual({ form: "shell", command: '["a", 1]' });
  });

  it("shell forms run under /bin/sh -c, or the stage's SHELL", () => {
    const c = config("FROM node:20-bookworm-slim\nENTRYPOINT exec node \\\n  app.js\nCMD --x\n");
    expect(c.entrypoint).toEqual(["/bin/sh", "-c", "exec node   app.js"]);
    expect(c.cmd).toEqual(["/bin/sh", "-c", "--x"]);
    const s = config('FROM node:20\nSHELL ["/bin/bash", "-eo", "pipefail", "-c"]\nCMD run it\n');
    expect(s.cmd).toEqual(["/bin/bash", "-eo", "pipefail", "-c", "run it"]);
    expect(s.entrypoint).toEqual(["docker-entrypoint.sh"]);
  });

  it("the base's ENTRYPOINT and CMD are inherited; the last instruction wins", () => {
    expect(config("FROM node:20.20.2-bookworm-slim\n")).toMatchObject({
      entrypoint: ["docker-entrypoint.sh"],
      cmd: ["node"],
    });
    expect(config('FROM node:20\nCMD ["a"]\nCMD ["b"]\n').cmd).toEqual(["b"]);
  });

  it("an ENTRYPOINT clears the inherited CMD, unless the same stage set CMD before it", () => {
    const reset = config('FROM node:20\nENTRYPOINT ["/ep"]\n');
    expect(reset.entrypoint).toEqual(["/ep"]);
    expect(reset.cmd).toBeUndefined();
    expect(config('FROM node:20\nCMD ["c"]\nENTRYPOINT ["/ep"]\n').cmd).toEqual(["c"]);
    expect(config('FROM node:20\nENTRYPOINT ["/ep"]\nCMD ["c"]\n').cmd).toEqual(["c"]);
    expect(config('FROM node:20\nENTRYPOINT [""]\n').entrypoint).toBeUndefined();
  });

  it("FROM <stage> inherits that stage's config (WORKDIR, ENV, CMD), other stages do not count", () => {
    const c = config(
      'FROM node:20 AS a\nWORKDIR /srv\nENV A=1\nCMD ["a.js"]\n' +
        'FROM node:20 AS other\nCMD ["other.js"]\n' +
        'FROM a\nWORKDIR sub\nENV B="${A}-2"\n',
    );
    expect(c).toMatchObject({ workingDir: "/srv/sub", cmd: ["a.js"], env: { A: "1", B: "1-2" } });
  });

  it("distroless nodejs: node is the ENTRYPOINT, no CMD, no shell; :nonroot works in /home/nonroot", () => {
    const ref = parseImageRef("gcr.io/distroless/nodejs20-debian12:nonroot")!;
    expect(baseImageConfig(ref)).toMatchObject({
      entrypoint: ["/nodejs/bin/node"],
      workingDir: "/home/nonroot",
      user: "65532",
      hasShell: false,
      binaries: { node: "/nodejs/bin/node" },
    });
    expect(baseImageConfig(ref).cmd).toBeUndefined();
    expect(baseImageConfig(parseImageRef("gcr.io/distroless/nodejs22-debian12")).workingDir).toBe("/");
    expect(
      baseImageConfig(parseImageRef("gcr.io/distroless/static-debian12:nonroot")).entrypoint,
    ).toBeUndefined();
    for (const b of BASE_IMAGES) expect(b.source).toMatch(/\//);
  });

  it("an unknown base image or an unresolved ARG base is an error, scratch is empty", () => {
    expect(() => config("FROM python:3.12\n")).toThrow(/not in the base-image table/);
    expect(() => config("FROM $BASE\n")).toThrow(ContractError);
    expect(config('FROM scratch\nCOPY app /app\nENTRYPOINT ["/app"]\n')).toMatchObject({
      entrypoint: ["/app"],
      hasShell: false,
    });
  });

  it("the gateway image: node + dist/main.js in /app/services/gateway, and what its final stage copies where", () => {
    const { config: c, copies } = imageContents(
      readDockerfile(path.join(REPO, "services/gateway/Dockerfile")),
    );
    expect(c).toMatchObject({
      entrypoint: ["/nodejs/bin/node"],
      cmd: ["dist/main.js"],
      workingDir: "/app/services/gateway",
    });
    expect(c.env.NODE_ENV).toBe("production");
    expect(copies.map((x) => [x.from ?? "context", x.sources.join(","), x.dest])).toEqual([
      ["deps", "/app/node_modules", "/app/node_modules"],
      ["deps", "/app/services/gateway/node_modules", "/app/services/gateway/node_modules"],
      ["build", "/app/services/gateway/dist", "/app/services/gateway/dist"],
      ["context", "services/gateway/package.json", "/app/services/gateway/"],
    ]);
  });
});

describe("containerProcess: argv, working directory, env and problems", () => {
  const distroless = baseImageConfig(parseImageRef("gcr.io/distroless/nodejs20-debian12:nonroot"));

  it("pod env overrides image env; valueFrom goes through the resolver; workingDir resolves", () => {
    const img: ImageConfig = {
      ...distroless,
      cmd: ["main.js"],
      env: { ...distroless.env, NODE_ENV: "production" },
    };
    const p = containerProcess(
      img,
      {
        workingDir: "app",
        env: [
          { name: "NODE_ENV", value: "test" },
          { name: "TOKEN", valueFrom: { secretKeyRef: { name: "s", key: "k" } } },
          { name: "URL", value: "http://$(TOKEN)@h" },
          { name: "GONE", valueFrom: { secretKeyRef: { name: "s", key: "missing", optional: true } } },
        ],
      },
      (v) => ((v as { secretKeyRef: { key: string } }).secretKeyRef.key === "k" ? "t0k" : undefined),
    );
    expect(p.argv).toEqual(["/nodejs/bin/node", "main.js"]);
    expect(p.workingDir).toBe("/home/nonroot/app");
    expect(p.env).toMatchObject({ NODE_ENV: "test", TOKEN: "t0k", URL: "http://t0k@h" });
    expect(p.env).not.toHaveProperty("GONE");
    expect(p.problems).toEqual([]);
  });

  it("flags a shell form on an image without a shell, and args swallowed by a shell-form ENTRYPOINT", () => {
    const noShell = containerProcess(
      { ...distroless, entrypoint: undefined, cmd: ["/bin/sh", "-c", "x"] },
      {},
    );
    expect(noShell.problems.join()).toMatch(/does not have/);
    const node = baseImageConfig(parseImageRef("node:20"));
    const swallowed = containerProcess(
      { ...node, entrypoint: ["/bin/sh", "-c", "node app.js"] },
      { args: ["--x"] },
    );
    expect(swallowed.argv).toEqual(["/bin/sh", "-c", "node app.js", "--x"]);
    expect(swallowed.problems.join()).toMatch(/ignores them/);
  });
});

// --- the gateway's Deployments, started as the cluster would start them ---------------------------

/**
 * Where the outputs of the gateway image's other stages come from on this machine, per
 * `<stage>:<path>` of a final-stage `COPY --from`. A COPY that is not listed fails the test: map it.
 */
const STAGE_OUTPUTS: Record<string, (dest: string) => Promise<void>> = {
  // `RUN tsc -p services/gateway/tsconfig.build.json` in the build stage: the workspace's compile script.
  "build:/app/services/gateway/dist": async (dest) => {
    await promisify(execFile)("npm", ["run", "compile", "-w", "services/gateway", "--", "--outDir", dest], {
      cwd: REPO,
    });
  },
  // `npm ci --omit=dev --workspace services/gateway` in the deps stage: the lockfile's hoisted
  // dependencies, and the gateway's own nested ones.
  "deps:/app/node_modules": (dest) => {
    symlinkSync(path.join(REPO, "node_modules"), dest.replace(/\/$/, ""), "dir");
    return Promise.resolve();
  },
  "deps:/app/services/gateway/node_modules": (dest) => {
    symlinkSync(path.join(REPO, "services/gateway/node_modules"), dest.replace(/\/$/, ""), "dir");
    return Promise.resolve();
  },
};

const imageFilesystems = new Map<string, Promise<{ root: string; paths: readonly string[] }>>();
const imageRoots: string[] = [];

/**
 * The image's filesystem under a temp root, rebuilt from its final stage's COPY lines: context
 * files as symlinks into the context, other stages' outputs from STAGE_OUTPUTS. Built once per
 * Dockerfile; returns the root and the image paths it holds (WORKDIR and every COPY destination).
 */
function imageFilesystem(
  dockerfile: string,
  context: string,
  copies: readonly ImageCopy[],
  workingDir: string,
): Promise<{ root: string; paths: readonly string[] }> {
  const hit = imageFilesystems.get(dockerfile);
  if (hit) return hit;
  const build = async () => {
    const root = mkdtempSync(path.join(tmpdir(), "contract-image-"));
    imageRoots.push(root);
    const inRoot = (p: string) => path.join(root, p);
    const paths = [workingDir];
    mkdirSync(inRoot(workingDir), { recursive: true });
    for (const c of copies) {
      for (const src of c.sources) {
        const host = path.join(context, src);
        // `COPY a b/` puts a file into b/, a directory's contents too; `COPY a b` makes b.
        const intoDir = c.dest.endsWith("/");
        const entries =
          c.from === undefined && intoDir && statSync(host).isDirectory()
            ? readdirSync(host).map((e) => ({ host: path.join(host, e), dest: path.posix.join(c.dest, e) }))
            : [{ host, dest: intoDir ? path.posix.join(c.dest, path.posix.basename(src)) : c.dest }];
        for (const e of entries) {
          mkdirSync(path.dirname(inRoot(e.dest)), { recursive: true });
          paths.push(e.dest);
          if (c.from === undefined) symlinkSync(e.host, inRoot(e.dest));
          else {
            const make = STAGE_OUTPUTS[`${c.from}:${src}`];
            if (!make)
              throw new Error(`COPY --from=${c.from} ${src} (line ${c.line}): add it to STAGE_OUTPUTS`);
            await make(inRoot(e.dest));
          }
        }
      }
    }
    return { root, paths };
  };
  const built = build();
  imageFilesystems.set(dockerfile, built);
  return built;
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}

describe("the gateway Deployments start what the image and the pod spec say, and become ready", () => {
  let rendered: Awaited<ReturnType<typeof renderStack>>;
  let nats: NatsServer;
  let backend: FakeBackend;
  const roots: string[] = [];

  beforeAll(async () => {
    [rendered, nats, backend] = await Promise.all([
      renderStack("local"),
      startNatsServer(),
      new FakeBackend().start(),
    ]);
  });

  afterAll(async () => {
    await nats?.dispose();
    await backend?.close();
    for (const r of [...roots, ...imageRoots]) rmSync(r, { recursive: true, force: true });
  });

  for (const role of ["api", "worker"] as const) {
    it(`${role}: the effective argv runs in the image's layout and /readyz answers 200`, async () => {
      const r = rendered;
      const dep = r.plain(r.get("kubernetes:apps/v1:Deployment", `local-inference-gateway-${role}`));
      const pod = dep.spec.template.spec;
      const ns: string = dep.metadata.namespace;
      const container = pod.containers[0];

      // The image the Deployment runs is the one the program builds: read that build's Dockerfile.
      const ref = parseImageRef(container.image)!;
      const built = r
        .ofType("command:local:Command")
        .map((i) => r.plain(i).environment as Record<string, string> | undefined)
        .filter((env) => {
          const b = env?.["IMAGE_NAME"] ? parseImageRef(env["IMAGE_NAME"]) : undefined;
          return b?.registry === ref.registry && b.repository === ref.repository;
        })
        .map((env) => ({
          build: { dockerfile: env!["IMAGE_DOCKERFILE"]!, context: env!["IMAGE_CONTEXT"]! },
        }));
      expect(built, `the image ${container.image} is built by the program`).toHaveLength(1);
      const { config: img, copies } = imageContents(
        readDockerfile(resolveDockerfilePath(built[0]!.build.dockerfile, REPO)),
      );

      // The container's root: a copy of the image's filesystem, then the pod's mounts on it.
      const image = await imageFilesystem(
        resolveDockerfilePath(built[0]!.build.dockerfile, REPO),
        path.join(REPO, built[0]!.build.context),
        copies,
        img.workingDir,
      );
      const root = mkdtempSync(path.join(tmpdir(), `contract-${role}-`));
      roots.push(root);
      cpSync(image.root, root, { recursive: true, verbatimSymlinks: true });
      const inRoot = (p: string) => path.join(root, p);
      const imagePaths = new Set(image.paths);

      // The pod's volumes: Secrets and ConfigMaps as the files the kubelet would project.
      for (const m of container.volumeMounts ?? []) {
        const vol = pod.volumes.find((v: any) => v.name === m.name);
        const dir = inRoot(m.mountPath);
        mkdirSync(dir, { recursive: true });
        imagePaths.add(m.mountPath);
        const source = vol.secret
          ? { kind: "Secret", name: vol.secret.secretName, items: vol.secret.items }
          : vol.configMap
            ? { kind: "ConfigMap", name: vol.configMap.name, items: vol.configMap.items }
            : undefined;
        if (!source) {
          expect(Object.keys(vol), `volume ${m.name}`).toContain("emptyDir");
          continue;
        }
        const obj = r
          .ofType(`kubernetes:core/v1:${source.kind}`)
          .map((x) => r.plain(x))
          .find((x) => x.metadata.name === source.name && x.metadata.namespace === ns);
        if (!obj)
          throw new Error(
            `${source.kind} ${ns}/${source.name} (mounted at ${m.mountPath}) is not registered`,
          );
        const files: Record<string, string> = { ...(obj.stringData ?? {}) };
        for (const [k, v] of Object.entries<string>(obj.data ?? {}))
          files[k] = source.kind === "Secret" ? Buffer.from(v, "base64").toString("utf8") : v;
        const items: { key: string; path: string }[] =
          source.items ?? Object.keys(files).map((k) => ({ key: k, path: k }));
        for (const it of items) {
          expect(files, `${source.kind} ${source.name} key ${it.key}`).toHaveProperty(it.key);
          writeFileSync(path.join(dir, it.path), files[it.key]!);
        }
      }

      // The pod's ports on free loopback ports (the host is shared), and its env pointed at the
      // test's NATS and backend; values naming an image path point into the root.
      const ports = new Map<number, number>();
      for (const p of container.ports ?? []) ports.set(p.containerPort, await freePort());
      const toHost = (v: string) =>
        [...imagePaths].some((p) => v === p || v.startsWith(`${p.replace(/\/$/, "")}/`)) ? inRoot(v) : v;
      const env: EnvVar[] = (container.env as EnvVar[]).map((e) => {
        if (e.value === undefined) return e;
        let value = e.value;
        if (e.name === "NATS_URL") {
          expect(value).toBe(`nats://nats.${ns}.svc.cluster.local:4222`);
          value = nats.url;
        } else if (e.name === "BACKEND_URL") {
          expect(value).toMatch(new RegExp(`^http://[a-z0-9-]+\\.${ns}\\.svc\\.cluster\\.local:\\d+/v1$`));
          value = backend.url;
        } else if (/^\d+$/.test(value) && ports.has(Number(value))) value = String(ports.get(Number(value)));
        return { name: e.name, value: toHost(value) };
      });
      const proc = containerProcess(img, { ...container, env }, (vf, name) => {
        const ref = (vf as EnvVar["valueFrom"])?.secretKeyRef;
        return ref ? `test-${ref.name}-${ref.key}` : `test-${name}`;
      });
      expect(proc.problems).toEqual([]);

      // The image's node is this test's node; every other argument is as the container gets it.
      const [bin, ...rest] = proc.argv;
      expect(bin, `argv[0] of ${JSON.stringify(proc.argv)}`).toBe(img.binaries.node);
      const argv = [process.execPath, ...rest.map(toHost)];

      const probe = container.readinessProbe.httpGet;
      const probePort =
        typeof probe.port === "number"
          ? probe.port
          : container.ports.find((p: any) => p.name === probe.port).containerPort;
      const url = `http://127.0.0.1:${ports.get(probePort)}${probe.path}`;

      const child = spawn(argv[0]!, argv.slice(1), {
        cwd: toHost(proc.workingDir),
        env: proc.env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((res) => child.once("exit", (code) => res(code)));
      const p: GatewayProcess = { proc: child, output: () => out, exited };
      try {
        await waitForHttp200(url, 20_000, p).catch((err: Error) => {
          throw new Error(
            `the ${role} pod would not become ready: it runs ${JSON.stringify(proc.argv)} in ${proc.workingDir}` +
              ` (here ${JSON.stringify(argv)})` +
              ` (exit ${child.exitCode ?? "none"}):\n${err.message}`,
          );
        });
        expect(out).toContain(role === "api" ? "api listening" : "worker pulling");
      } finally {
        if (child.exitCode === null) {
          child.kill("SIGTERM");
          const t = setTimeout(() => child.kill("SIGKILL"), 5000);
          await exited;
          clearTimeout(t);
        }
      }
    });
  }
});
