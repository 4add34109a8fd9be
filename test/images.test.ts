import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import {
  buildArgProblems,
  defaultTag,
  isSecretLikeArg,
  ServiceImage,
  serviceImageInputs,
  type ServiceImageArgs,
} from "../components/images/service-image";
import { dockerfileOf, finalBase, readDockerfile } from "../policies/lib/dockerfile";
import { isSecretWrapped, render, renderStack } from "./harness";

const IMAGE = "docker:index/image:Image";
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
  it("builds the context's multi-stage Dockerfile for a platform and target, pushing, not on preview", () => {
    const i = serviceImageInputs(
      args({ target: "runtime", platform: "linux/arm64", args: { NODE_VERSION: "22" }, cacheFrom: true }),
    );
    expect(i.imageName).toBe("registry.example.org/platform/fixture:1.2.3");
    expect(i.build).toMatchObject({
      context: FIXTURE,
      dockerfile: `${FIXTURE}/Dockerfile`,
      target: "runtime",
      platform: "linux/arm64",
      args: { NODE_VERSION: "22" },
      cacheFrom: { images: ["registry.example.org/platform/fixture:1.2.3"] },
      builderVersion: "BuilderBuildKit",
    });
    expect(i.buildOnPreview).toBe(false);
    expect(i.skipPush).toBe(false);
  });

  it("adds explicit cache refs and leaves cache out when disabled", () => {
    expect(serviceImageInputs(args({ cacheFrom: ["ghcr.io/acme/cache:buildcache"] })).build).toMatchObject({
      cacheFrom: { images: ["ghcr.io/acme/cache:buildcache", "registry.example.org/platform/fixture:1.2.3"] },
    });
    expect(serviceImageInputs(args({ cacheFrom: false })).build).not.toHaveProperty("cacheFrom");
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
    expect(() => serviceImageInputs(args({ args: { NPM_TOKEN: "x", NODE_VERSION: "22" } }))).toThrow(
      /build arg "NPM_TOKEN" looks like a secret/,
    );
    expect(buildArgProblems({ NODE_VERSION: "22" })).toEqual([]);
  });

  it("rejects paths outside the repo and the latest tag", () => {
    expect(() => serviceImageInputs(args({ context: "/abs/path" }))).toThrow(
      /relative to the repository root/,
    );
    expect(() => serviceImageInputs(args({ dockerfile: "../elsewhere/Dockerfile" }))).toThrow(
      /stay inside it/,
    );
    expect(() => serviceImageInputs(args({ tag: "latest" }))).toThrow(/latest/);
  });

  it("tags by the context's package.json version, else dev", () => {
    expect(defaultTag(FIXTURE)).toBe("1.2.3");
    expect(defaultTag("test/fixtures/does-not-exist")).toBe("dev");
  });

  it("points the pack's dockerfile rules at the file it builds", () => {
    const src = dockerfileOf(serviceImageInputs(args()) as unknown as Record<string, unknown>);
    expect(src?.kind).toBe("file");
    const df = readDockerfile((src as { path: string }).path);
    expect(df.stages).toHaveLength(2);
    expect(finalBase(df)?.base).toBe("gcr.io/distroless/nodejs22-debian12:nonroot");
  });
});

describe("ServiceImage", () => {
  it("pushes with the registry password as a secret and exposes repoDigest", async () => {
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
    const image = r.get(IMAGE, "fixture-image");
    expect(isSecretWrapped(image.inputs["registry"])).toBe(true);
    expect(r.plain(image).registry).toEqual({
      server: "registry.example.org",
      username: "platform",
      password: "s3cr3t-pw",
    });
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

  it("the platform builds the gateway from services/gateway and pushes it to its registry", async () => {
    const r = await renderStack("local", {
      overrides: { "platform:registry": { images: { tag: "git-3f2c1ab" } } },
    });
    const image = r.plain(r.get(IMAGE, "local-gateway-image"));
    expect(image.build).toMatchObject({
      context: "services/gateway",
      dockerfile: "services/gateway/Dockerfile",
      platform: "linux/amd64",
    });
    expect(image.imageName).toBe("registry.platform.local/platform/gateway:git-3f2c1ab");
    expect(image.registry.server).toBe("registry.platform.local");
    expect(image.buildOnPreview).toBe(false);
    const img = r.get(IMAGE, "local-gateway-image");
    // Pushed after the in-cluster registry is up.
    expect(
      r.registrations.find((x) => x.urn === img.parent)?.dependsOn.some((u) => u.includes("Registry")),
    ).toBe(true);
  });
});
