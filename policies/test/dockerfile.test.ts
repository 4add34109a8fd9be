import { existsSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { validate } from "./helper";
import { parseDockerfile, finalChain, substitute } from "../lib/dockerfile";

const FIXTURES = path.join(__dirname, "fixtures", "docker");
const image = (dir: string, args: Record<string, string> = {}) => ({
  type: "docker:index/image:Image",
  name: dir,
  props: { imageName: `ghcr.io/acme/${dir}:1.0.0`, build: { context: path.join(FIXTURES, dir), args } },
});
const run = async (
  policy: string,
  dir: string,
  args: Record<string, string> = {},
  config?: Record<string, unknown>,
) => (await validate(policy, image(dir, args), config ? { config } : {})).violations;

describe("Dockerfile parsing", () => {
  it("resolves ARGs and stage references", () => {
    const df = parseDockerfile(
      "ARG V=1.2\nFROM node:${V}-slim AS build\nFROM build AS test\nFROM scratch\nCOPY --from=build /a /a\n",
    );
    expect(df.stages.map((s) => [s.base, s.parent])).toEqual([
      ["node:1.2-slim", undefined],
      ["build", 0],
      ["scratch", undefined],
    ]);
    expect(finalChain(df)).toHaveLength(1);
    expect(
      substitute(
        "${A:-x}-$B-${C:+y}",
        new Map([
          ["B", "b"],
          ["C", "c"],
        ]),
      ),
    ).toBe("x-b-y");
  });
  it("reads build.dockerfile relative to the working directory", async () => {
    const rel = path.relative(process.cwd(), path.join(FIXTURES, "single", "Dockerfile"));
    const r = await validate("dockerfile-multi-stage", {
      type: "docker:index/image:Image",
      props: { imageName: "x:1", build: { context: ".", dockerfile: rel } },
    });
    expect(r.violations).toEqual([expect.stringContaining("single-stage")]);
  });
  it("skips Dockerfile paths unknown during preview", async () => {
    const r = await validate("dockerfile-multi-stage", image("single"), { unknown: [["build", "context"]] });
    expect(r).toMatchObject({ violations: [], previewNotes: [] });
  });
});

describe("dockerfile-multi-stage", () => {
  const P = "dockerfile-multi-stage";
  it("passes a build stage + distroless final stage", async () => expect(await run(P, "good")).toEqual([]));
  it("passes a cuda devel → runtime build", async () => expect(await run(P, "cuda")).toEqual([]));
  it("flags a single-stage build", async () =>
    expect(await run(P, "single")).toEqual([expect.stringContaining("single-stage")]));
  it("flags toolchain installs in the final stage", async () =>
    expect(await run(P, "toolchain")).toEqual([expect.stringMatching(/final stage installs gcc/)]));
  it("reports an unreadable Dockerfile", async () =>
    expect(await run(P, "missing")).toEqual([expect.stringContaining("cannot read Dockerfile")]));
  it("flags a final stage built FROM the build stage that copies nothing from another stage", async () =>
    expect(await run(P, "from-build")).toEqual([
      expect.stringMatching(
        /from-build\/Dockerfile:5: stage build \(the final stage builds on it\) runs `go build`/,
      ),
      expect.stringMatching(
        /from-build\/Dockerfile:7: the final stage builds FROM stage build and copies nothing from another stage/,
      ),
    ]));
  it("passes artifacts taken through a RUN --mount=from= of the build stage", async () =>
    expect(await run(P, "hygiene-clean")).toEqual([]));
  it("is not applicable to other resources", async () =>
    expect((await validate(P, { type: "kubernetes:core/v1:Pod", props: {} })).notApplicable).toBeDefined());
});

describe("dockerfile-slim-base", () => {
  const P = "dockerfile-slim-base";
  it.each(["good", "cuda", "toolchain", "hygiene"])("passes %s", async (dir) =>
    expect(await run(P, dir)).toEqual([]),
  );
  it("flags a full base", async () =>
    expect(await run(P, "single")).toEqual([expect.stringContaining("node:20 is not a slim")]));
  it("flags debian (not slim)", async () =>
    expect(await run(P, "latest")).toEqual([expect.stringContaining("debian")]));
  it("flags an unresolvable ARG base and resolves it with build args", async () => {
    expect(await run(P, "args")).toEqual([expect.stringContaining("cannot be resolved")]);
    expect(await run(P, "args", { BASE: "gcr.io/distroless/static-debian12:nonroot" })).toEqual([]);
    expect(await run(P, "args", { BASE: "ubuntu:24.04" })).toEqual([expect.stringContaining("ubuntu:24.04")]);
  });
  it("uses the configured allowlist", async () => {
    expect(await run(P, "single", {}, { allowedBases: ["node:*"] })).toEqual([]);
  });
});

describe("dockerfile-pinned-base", () => {
  const P = "dockerfile-pinned-base";
  it.each(["good", "cuda", "toolchain"])("passes %s", async (dir) => expect(await run(P, dir)).toEqual([]));
  it("flags latest and untagged bases", async () => {
    const v = await run(P, "latest");
    expect(v).toHaveLength(2);
    expect(v.join("\n")).toMatch(/golang:latest uses the floating :latest tag/);
    expect(v.join("\n")).toMatch(/FROM debian has no tag/);
  });
  it("flags a base ARG without default", async () =>
    expect(await run(P, "args")).toEqual([expect.stringContaining("ARG without a default")]));
  it("can require digests", async () => {
    expect(await run(P, "good", {}, { requireDigest: true })).toEqual([]);
    expect(await run(P, "cuda", {}, { requireDigest: true })).toHaveLength(2);
  });
});

describe("dockerfile-non-root", () => {
  const P = "dockerfile-non-root";
  it.each(["good", "cuda", "toolchain", "latest"])("passes %s", async (dir) =>
    expect(await run(P, dir)).toEqual([]),
  );
  it("flags USER root", async () =>
    expect(await run(P, "args")).toEqual([expect.stringContaining("runs as root")]));
  it("flags a missing USER on a root base", async () =>
    expect(await run(P, "single")).toEqual([expect.stringContaining("no USER instruction")]));
  it("accepts a nonroot distroless base without USER", async () => {
    const r = await validate(P, image("args", { BASE: "gcr.io/distroless/static-debian12:nonroot" }));
    expect(r.violations).toEqual([expect.stringContaining("runs as root")]); // USER root overrides the base
  });
});

describe("dockerfile-package-hygiene", () => {
  const P = "dockerfile-package-hygiene";
  it.each(["good", "cuda"])("passes %s", async (dir) => expect(await run(P, dir)).toEqual([]));
  it("flags caches and recommends in the final stage", async () => {
    const v = await run(P, "hygiene");
    expect(v.join("\n")).toMatch(/--no-install-recommends/);
    expect(v.join("\n")).toMatch(/apt lists/);
    expect(v.join("\n")).toMatch(/apk add without --no-cache/);
    expect(v.join("\n")).toMatch(/pip install without --no-cache-dir/);
    expect(v.join("\n")).toMatch(/clean all/);
    expect(v).toHaveLength(5);
    expect(await run(P, "toolchain")).toHaveLength(3);
  });
  it("passes cache mounts on the manager's cache dir, ENV PIP_NO_CACHE_DIR and comment lines in RUNs", async () =>
    expect(await run(P, "hygiene-clean")).toEqual([]));
  it("understands yum/dnf/microdnf verbs and the order of clean and install", async () => {
    const v = await run(P, "rpm");
    expect(v).toEqual([
      expect.stringMatching(
        /rpm\/Dockerfile:8: microdnf upgrade without `clean all` after it \(the cleanup runs before it/,
      ),
      expect.stringMatching(/rpm\/Dockerfile:9: yum reinstall without `clean all` after it/),
    ]);
    expect(await run(P, "rpm", {}, { allStages: true })).toHaveLength(2);
  });
  it("checks build stages only when allStages is set", async () => {
    expect(await run(P, "hygiene", {}, { allStages: true })).toHaveLength(6);
  });
});

describe("the project's own Dockerfiles", () => {
  const ROOT = path.join(__dirname, "..", "..");
  const shipped = ["services/gateway/Dockerfile", "web/Dockerfile"].filter((f) =>
    existsSync(path.join(ROOT, f)),
  );
  const POLICIES = [
    "dockerfile-multi-stage",
    "dockerfile-slim-base",
    "dockerfile-pinned-base",
    "dockerfile-non-root",
    "dockerfile-package-hygiene",
  ];
  it("include the gateway's", () => expect(shipped).toContain("services/gateway/Dockerfile"));
  it.each(shipped)("%s passes every Dockerfile rule", async (file) => {
    const dir = path.join(ROOT, path.dirname(file));
    const resource = {
      type: "docker:index/image:Image",
      props: { imageName: "x:1", build: { context: dir } },
    };
    for (const policy of POLICIES)
      expect({ policy, violations: (await validate(policy, resource)).violations }).toEqual({
        policy,
        violations: [],
      });
  });
});
