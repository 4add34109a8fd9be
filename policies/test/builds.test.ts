import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { validate } from "./helper";
import { attestationOn, imageBuildOf, provenanceMode } from "../lib/builds";
import { dockerfileOf } from "../lib/dockerfile";
import type { Obj } from "../lib/values";

const FIXTURES = path.join(__dirname, "fixtures", "docker");
const COMMAND = "command:local:Command";

/** A build command shaped like the platform's ServiceImage: a fixed script over IMAGE_* variables. */
function buildCommand(env: Obj = {}, script?: string): { type: string; props: Obj } {
  return {
    type: COMMAND,
    props: {
      create:
        script ??
        [
          "set -eu",
          'docker login "$IMAGE_REGISTRY" --username "$IMAGE_REGISTRY_USER" --password-stdin',
          'set -- --file "$IMAGE_DOCKERFILE" --tag "$IMAGE_NAME" --sbom="$IMAGE_SBOM" --provenance="$IMAGE_PROVENANCE" --push',
          'docker buildx build "$@" "$IMAGE_CONTEXT"',
        ].join("\n"),
      environment: {
        IMAGE_NAME: "registry.platform.local/apps/web:1.0.0",
        IMAGE_REGISTRY: "registry.platform.local",
        IMAGE_REGISTRY_USER: "platform",
        IMAGE_CONTEXT: path.join(FIXTURES, "good"),
        IMAGE_DOCKERFILE: path.join(FIXTURES, "good", "Dockerfile"),
        IMAGE_SBOM: "true",
        IMAGE_PROVENANCE: "mode=max",
        ...env,
      },
    },
  };
}

describe("imageBuildOf", () => {
  it("reads a buildx command: the name pushed, the registry, the Dockerfile, the attestations", () => {
    const b = imageBuildOf(COMMAND, buildCommand({ IMAGE_BUILD_ARGS: "NODE_VERSION=22\nA=b=c" }).props)!;
    expect(b).toMatchObject({
      kind: "buildx-command",
      imageName: "registry.platform.local/apps/web:1.0.0",
      registry: "registry.platform.local",
      sbom: "true",
      provenance: "mode=max",
    });
    const src = dockerfileOf(b.buildProps!);
    expect(src).toMatchObject({ kind: "file", path: path.join(FIXTURES, "good", "Dockerfile") });
    expect(src?.kind === "file" && Object.fromEntries(src.buildArgs)).toEqual({
      NODE_VERSION: "22",
      A: "b=c",
    });
  });

  it("reads literal flags and --attest, and the Image resources of both docker providers", () => {
    const literal = imageBuildOf(COMMAND, {
      create: "docker buildx build --sbom=false --attest type=provenance,mode=max -t x .",
    })!;
    expect(literal).toMatchObject({ sbom: "false", provenance: "type=provenance,mode=max" });
    expect(imageBuildOf(COMMAND, { create: "docker build --attest type=sbom ." })?.sbom).toBe("type=sbom");
    expect(
      imageBuildOf("docker:index/image:Image", { imageName: "r/x:1", registry: { server: "r" } }),
    ).toMatchObject({
      kind: "docker-image",
      imageName: "r/x:1",
      registry: "r",
    });
    expect(
      imageBuildOf("docker-build:index:Image", {
        tags: ["r/x:1"],
        registries: [{ address: "r" }],
        context: { location: "app" },
        dockerfile: { location: "app/Dockerfile" },
      }),
    ).toMatchObject({
      kind: "docker-build-image",
      imageName: "r/x:1",
      registry: "r",
      buildProps: { build: { context: "app" } },
    });
  });

  it("is not a build when the command runs no docker build", () => {
    expect(imageBuildOf(COMMAND, { create: "echo hello" })).toBeUndefined();
    expect(imageBuildOf("kubernetes:core/v1:ConfigMap", {})).toBeUndefined();
  });

  it("reads settings as buildx does", () => {
    for (const on of ["true", "1", "mode=max", "type=sbom"]) expect(attestationOn(on), on).toBe(true);
    for (const off of [undefined, "", "false", "0", "type=sbom,disabled=true"])
      expect(attestationOn(off), String(off)).toBe(false);
    expect(provenanceMode("true")).toBe("min");
    expect(provenanceMode("mode=max")).toBe("max");
  });
});

describe("image-build-attested", () => {
  const P = "image-build-attested";

  it("passes a build with an SBOM and max provenance", async () => {
    expect((await validate(P, buildCommand())).violations).toEqual([]);
  });

  it("flags a build without an SBOM, without provenance, or with min provenance", async () => {
    expect((await validate(P, buildCommand({ IMAGE_SBOM: "false" }))).violations).toEqual([
      expect.stringMatching(/without an SBOM attestation \(--sbom=false\)/),
    ]);
    const noFlags = buildCommand({}, 'docker buildx build --tag "$IMAGE_NAME" --push .');
    expect((await validate(P, noFlags)).violations).toEqual([
      expect.stringMatching(/without an SBOM attestation \(--sbom=<unset>\)/),
      expect.stringMatching(/without a provenance attestation/),
    ]);
    const min = buildCommand({ IMAGE_PROVENANCE: "true" });
    expect((await validate(P, min)).violations).toEqual([expect.stringMatching(/mode=min/)]);
    expect((await validate(P, min, { config: { provenanceMode: "min" } })).violations).toEqual([]);
  });

  it("flags Image resources, which cannot attest", async () => {
    const docker = {
      type: "docker:index/image:Image",
      props: { imageName: "r/x:1", build: { context: "." } },
    };
    expect((await validate(P, docker)).violations).toEqual([
      expect.stringContaining("cannot attach an SBOM"),
    ]);
    const dockerBuild = { type: "docker-build:index:Image", props: { tags: ["r/x:1"], push: true } };
    expect((await validate(P, dockerBuild)).violations).toHaveLength(1);
    // A Dockerfile checked on its own (the policy CLI) pushes nothing.
    const dockerfileOnly = { type: "docker:index/image:Image", props: { build: { context: FIXTURES } } };
    expect((await validate(P, dockerfileOnly)).violations).toEqual([]);
  });

  it("ignores commands that build nothing, and respects allowImages", async () => {
    expect(
      (await validate(P, { type: COMMAND, props: { create: "echo docker is great" } })).violations,
    ).toEqual([]);
    const off = buildCommand({ IMAGE_SBOM: "false" });
    expect(
      (await validate(P, off, { config: { allowImages: ["registry.platform.local/apps/*"] } })).violations,
    ).toEqual([]);
  });
});

describe("image rules on a build command", () => {
  it("image-tag-pinned checks the name it pushes", async () => {
    const r = await validate(
      "image-tag-pinned",
      buildCommand({ IMAGE_NAME: "registry.platform.local/apps/web" }),
    );
    expect(r.violations).toEqual([expect.stringContaining("built image")]);
  });

  it("image-allowed-registries checks its push target and its Dockerfile's bases", async () => {
    const r = await validate(
      "image-allowed-registries",
      buildCommand({ IMAGE_NAME: "registry.evil.example/web:1", IMAGE_REGISTRY: "registry.evil.example" }),
    );
    expect(r.violations).toHaveLength(2);
    const ok = await validate("image-allowed-registries", buildCommand(), {
      config: { extraRegistries: ["registry.platform.local"] },
    });
    expect(ok.violations).toEqual([]);
  });
});

describe("the Dockerfile and build-arg rules judge a build whichever resource runs it", () => {
  const single = {
    IMAGE_CONTEXT: path.join(FIXTURES, "single"),
    IMAGE_DOCKERFILE: path.join(FIXTURES, "single", "Dockerfile"),
  };
  it("a buildx command's single-stage Dockerfile is refused, as an Image resource's would be", async () => {
    expect((await validate("dockerfile-multi-stage", buildCommand(single))).violations).toHaveLength(1);
    expect((await validate("dockerfile-multi-stage", buildCommand())).violations).toEqual([]);
  });
  it("a buildx command's secret-like build arg is refused", async () => {
    const leaky = buildCommand({ IMAGE_BUILD_ARGS: "NPM_TOKEN=npm-abc123\nNODE_VERSION=22" });
    const r = await validate("docker-build-args-no-secrets", leaky);
    expect(r.violations).toEqual([expect.stringContaining("NPM_TOKEN")]);
    expect((await validate("docker-build-args-no-secrets", buildCommand())).violations).toEqual([]);
  });
  it("a command that builds nothing is not theirs to judge", async () => {
    const plain = { type: COMMAND, props: { create: "uptime" } };
    expect((await validate("dockerfile-multi-stage", plain)).violations).toEqual([]);
  });
});
