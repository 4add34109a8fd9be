import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import {
  ATTESTATIONS,
  BUILD_SCRIPT,
  buildArgProblems,
  contextDigest,
  defaultTag,
  imageBuild,
  isIgnored,
  isSecretLikeArg,
  parseDockerignore,
  repoDigestOf,
  ServiceImage,
  type ServiceImageArgs,
} from "../components/images/service-image";
import { imageBuildOf } from "../policies/lib/builds";
import { dockerfileOf, finalBase, readDockerfile } from "../policies/lib/dockerfile";
import { isSecretWrapped, render, renderStack } from "./harness";

const BUILD = "command:local:Command";
const FIXTURE = "test/fixtures/service";

function args(over: Partial<ServiceImageArgs> = {}): ServiceImageArgs {
  return {
    context: FIXTURE,
    repository: "platform/fixture",
    tag: "1.2.3",
    registry: { server: "registry.example.org", username: "platform", password: "not-a-real-password" },
    ...over,
  };
}

describe("build settings", () => {
  it("builds the context's Dockerfile for its platforms and target, with attestations and a registry cache", () => {
    const b = imageBuild(
      args({
        target: "runtime",
        platform: ["linux/amd64", "linux/arm64"],
        args: { NODE_VERSION: "22" },
        cacheFrom: true,
      }),
    );
    expect(b.imageName).toBe("registry.example.org/platform/fixture:1.2.3");
    expect(b.environment).toEqual({
      IMAGE_NAME: "registry.example.org/platform/fixture:1.2.3",
      IMAGE_CONTEXT: FIXTURE,
      IMAGE_DOCKERFILE: `${FIXTURE}/Dockerfile`,
      IMAGE_PLATFORMS: "linux/amd64,linux/arm64",
      IMAGE_SBOM: "true",
      IMAGE_PROVENANCE: "mode=max",
      IMAGE_REGISTRY: "registry.example.org",
      IMAGE_REGISTRY_USER: "platform",
      IMAGE_TARGET: "runtime",
      IMAGE_CACHE: "registry.example.org/platform/fixture:buildcache",
      IMAGE_BUILD_ARGS: "NODE_VERSION=22",
    });
    expect(imageBuild(args({ cacheFrom: false })).environment).not.toHaveProperty("IMAGE_CACHE");
    expect(imageBuild(args()).environment["IMAGE_PLATFORMS"]).toBe("linux/amd64");
  });

  it("the script passes every variable to buildx: attestations, cache, push, and prints the digest", () => {
    for (const flag of [
      '--sbom="$IMAGE_SBOM"',
      '--provenance="$IMAGE_PROVENANCE"',
      "--push",
      '--cache-from "type=registry,ref=$IMAGE_CACHE"',
      '--cache-to "type=registry,ref=$IMAGE_CACHE,mode=max"',
      '--platform "$IMAGE_PLATFORMS"',
      "--password-stdin",
      "--metadata-file",
    ])
      expect(BUILD_SCRIPT).toContain(flag);
    expect(ATTESTATIONS).toEqual({ sbom: "true", provenance: "mode=max" });
  });

  it("runs under sh: parses, reads its variables, and passes what buildx would get (a fake docker)", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "build-script-"));
    const bin = path.join(dir, "bin");
    mkdirSync(bin);
    // A stand-in docker: records its arguments, and writes buildx's metadata file.
    writeFileSync(
      path.join(bin, "docker"),
      [
        "#!/bin/sh",
        'echo "$*" >> "$LOG"',
        'if [ "$1" = buildx ]; then',
        '  while [ $# -gt 0 ]; do if [ "$1" = --metadata-file ]; then f="$2"; fi; shift; done',
        `  printf '{\\n  "containerimage.digest": "sha256:${"b".repeat(64)}"\\n}\\n' > "$f"`,
        "fi",
      ].join("\n"),
      { mode: 0o755 },
    );
    const b = imageBuild(args({ target: "runtime", args: { A: "1", B: "two words" }, cacheFrom: true }));
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(b.environment)) env[k] = v as string;
    const log = path.join(dir, "log");
    const r = spawnSync("/bin/sh", ["-c", BUILD_SCRIPT], {
      input: "the-password",
      encoding: "utf8",
      env: { PATH: `${bin}:${process.env["PATH"] ?? ""}`, HOME: dir, LOG: log, ...env },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(repoDigestOf(b.repoRef, r.stdout)).toBe(
      `registry.example.org/platform/fixture@sha256:${"b".repeat(64)}`,
    );
    const calls = spawnSync("cat", [log], { encoding: "utf8" }).stdout;
    expect(calls).toContain("login registry.example.org --username platform --password-stdin");
    expect(calls).not.toContain("the-password");
    const build = calls.split("\n").find((l) => l.startsWith("buildx build"))!;
    expect(build).toContain("--sbom=true --provenance=mode=max --push");
    expect(build).toContain("--target runtime");
    expect(build).toContain("--build-arg A=1 --build-arg B=two words");
    expect(build.endsWith(FIXTURE)).toBe(true);
    // Without optional variables the script still runs (no target, cache or build args).
    const bare = imageBuild(args());
    const r2 = spawnSync("/bin/sh", ["-c", BUILD_SCRIPT], {
      input: "pw",
      encoding: "utf8",
      env: {
        PATH: `${bin}:${process.env["PATH"] ?? ""}`,
        HOME: dir,
        LOG: log,
        ...(bare.environment as Record<string, string>),
      },
    });
    expect(r2.status, r2.stderr).toBe(0);
  });

  it("refuses a build that printed no digest", () => {
    expect(() => repoDigestOf("r/x", "warning: something\n")).toThrow(/printed no image digest/);
  });

  it("rejects secret-looking build args with a clear error", () => {
    for (const name of [
      "NPM_TOKEN",
      "dbPassword",
      "API_KEY",
      "GITHUB_AUTH",
      "aws_secret_access_key",
      "SSH_KEY",
    ])
      expect(isSecretLikeArg(name), name).toBe(true);
    for (const name of ["NODE_VERSION", "AUTHOR", "TARGETARCH", "KEYBOARD_LAYOUT", "BUILD_DATE"])
      expect(isSecretLikeArg(name), name).toBe(false);
    expect(() => imageBuild(args({ args: { NPM_TOKEN: "x", NODE_VERSION: "22" } }))).toThrow(
      /build arg "NPM_TOKEN" looks like a secret/,
    );
    expect(buildArgProblems({ NODE_VERSION: "22" })).toEqual([]);
  });

  it("rejects paths outside the repo and the latest tag", () => {
    expect(() => imageBuild(args({ context: "/abs/path" }))).toThrow(/relative to the repository root/);
    expect(() => imageBuild(args({ dockerfile: "../elsewhere/Dockerfile" }))).toThrow(/stay inside it/);
    expect(() => imageBuild(args({ tag: "latest" }))).toThrow(/latest/);
  });

  it("tags by the context's package.json version, else dev", () => {
    expect(defaultTag(FIXTURE)).toBe("1.2.3");
    expect(defaultTag("test/fixtures/does-not-exist")).toBe("dev");
  });

  it("the pack reads the build: its Dockerfile, pushed name and attestations", () => {
    const b = imageBuild(args());
    const info = imageBuildOf(BUILD, { create: BUILD_SCRIPT, environment: b.environment });
    expect(info).toMatchObject({
      kind: "buildx-command",
      imageName: b.imageName,
      registry: "registry.example.org",
      sbom: "true",
      provenance: "mode=max",
    });
    const src = dockerfileOf(info!.buildProps!);
    expect(src?.kind).toBe("file");
    const df = readDockerfile((src as { path: string }).path);
    expect(df.stages).toHaveLength(2);
    expect(finalBase(df)?.base).toBe("gcr.io/distroless/nodejs22-debian12:nonroot");
  });
});

describe("what Docker sends", () => {
  it("reads .dockerignore as Docker does: globs, **, parents, exceptions, last rule wins", () => {
    const rules = parseDockerignore("# comment\n**/node_modules\n/dist\n*.log\n!keep.log\ntest\n");
    expect(isIgnored(rules, "node_modules/x/index.js")).toBe(true);
    expect(isIgnored(rules, "src/node_modules/x.js")).toBe(true);
    expect(isIgnored(rules, "dist/main.js")).toBe(true);
    expect(isIgnored(rules, "a.log")).toBe(true);
    expect(isIgnored(rules, "keep.log")).toBe(false);
    expect(isIgnored(rules, "test/a.test.ts")).toBe(true);
    expect(isIgnored(rules, "src/test.ts")).toBe(false);
    expect(isIgnored(rules, "src/main.ts")).toBe(false);
  });

  it("the context digest changes with a sent file, not with an ignored one", () => {
    const root = mkdtempSync(path.join(tmpdir(), "ctx-"));
    mkdirSync(path.join(root, "app", "node_modules"), { recursive: true });
    writeFileSync(path.join(root, "app", "Dockerfile"), "FROM scratch\n");
    writeFileSync(path.join(root, "app", ".dockerignore"), "node_modules\n");
    writeFileSync(path.join(root, "app", "main.js"), "1");
    const a = contextDigest("app", "app/Dockerfile", root);
    writeFileSync(path.join(root, "app", "node_modules", "dep.js"), "x");
    expect(contextDigest("app", "app/Dockerfile", root)).toBe(a);
    writeFileSync(path.join(root, "app", "main.js"), "2");
    expect(contextDigest("app", "app/Dockerfile", root)).not.toBe(a);
    // <Dockerfile>.dockerignore takes precedence over the context's.
    writeFileSync(path.join(root, "app", "Dockerfile.dockerignore"), "main.js\n");
    const b = contextDigest("app", "app/Dockerfile", root);
    writeFileSync(path.join(root, "app", "main.js"), "3");
    expect(contextDigest("app", "app/Dockerfile", root)).toBe(b);
  });
});

describe("ServiceImage", () => {
  it("logs in with the registry password on stdin, as a secret, and exposes repoDigest", async () => {
    const r = await render(() => {
      const img = new ServiceImage("fixture", {
        ...args(),
        registry: {
          server: "registry.example.org",
          username: "platform",
          password: pulumi.secret("s3cr3t-pw"),
        },
      });
      return { digest: img.repoDigest };
    });
    const build = r.get(BUILD, "fixture-image");
    expect(isSecretWrapped(build.inputs["stdin"])).toBe(true);
    expect(r.plain(build).stdin).toBe("s3cr3t-pw");
    expect(JSON.stringify(r.plain(build).environment)).not.toContain("s3cr3t-pw");
    expect(r.plain(build).create).toBe(BUILD_SCRIPT);
    expect(r.plain(build).triggers).toEqual([contextDigest(FIXTURE, `${FIXTURE}/Dockerfile`)]);
    expect(r.outputs["digest"]).toMatch(/^registry\.example\.org\/platform\/fixture@sha256:[0-9a-f]{64}$/);
  });

  it("flows its digest into a Deployment", async () => {
    const r = await render(() => {
      const img = new ServiceImage("fixture", args());
      new k8s.apps.v1.Deployment("consumer", {
        metadata: { name: "consumer" },
        spec: {
          selector: { matchLabels: { app: "consumer" } },
          template: {
            metadata: { labels: { app: "consumer" } },
            spec: { containers: [{ name: "app", image: img.repoDigest }] },
          },
        },
      });
    });
    const d = r.plain(r.get("kubernetes:apps/v1:Deployment", "consumer"));
    expect(d.spec.template.spec.containers[0].image).toMatch(
      /^registry\.example\.org\/platform\/fixture@sha256:[0-9a-f]{64}$/,
    );
  });

  it("the platform builds the gateway from the repository root (its lockfile) and pushes it to its registry", async () => {
    const r = await renderStack("local", {
      overrides: { "platform:registry": { images: { tag: "git-3f2c1ab" } } },
    });
    const build = r.plain(r.get(BUILD, "local-gateway-image"));
    expect(build.environment).toMatchObject({
      IMAGE_CONTEXT: ".",
      IMAGE_DOCKERFILE: "services/gateway/Dockerfile",
      IMAGE_PLATFORMS: "linux/amd64",
      IMAGE_NAME: "registry.platform.local/platform/gateway:git-3f2c1ab",
      IMAGE_REGISTRY: "registry.platform.local",
    });
    const img = r.get(BUILD, "local-gateway-image");
    // Pushed after the in-cluster registry is up.
    expect(
      r.registrations.find((x) => x.urn === img.parent)?.dependsOn.some((u) => u.includes("Registry")),
    ).toBe(true);
  });
});
