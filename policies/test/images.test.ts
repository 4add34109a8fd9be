import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
  DIGEST,
  deployment,
  goodContainer,
  goodPodSpec,
  helmChart,
  workload,
  WORKLOAD_KINDS,
} from "./fixtures";
import { validate } from "./helper";
import { parseImageRef, registryAllowed } from "../lib/images";

const withImage = (image: string) => goodPodSpec({ containers: [goodContainer({ image })] });
const FIXTURES = path.join(__dirname, "fixtures", "docker");

describe("image references", () => {
  it("parses registries, tags and digests", () => {
    expect(parseImageRef("nginx")).toEqual({ registry: "docker.io", repository: "nginx" });
    expect(parseImageRef("localhost:5000/app:1")).toEqual({
      registry: "localhost:5000",
      repository: "app",
      tag: "1",
    });
    expect(parseImageRef(`ghcr.io/a/b:1.0@${DIGEST}`)).toEqual({
      registry: "ghcr.io",
      repository: "a/b",
      tag: "1.0",
      digest: DIGEST,
    });
    expect(parseImageRef("registry-1.docker.io/library/redis:7")?.registry).toBe("docker.io");
    expect(registryAllowed("registry.platform.local:5000", ["registry.platform.local"])).toBe(true);
    expect(registryAllowed("europe-docker.pkg.dev", ["*.pkg.dev"])).toBe(true);
    expect(registryAllowed("evil.example.com", ["docker.io"])).toBe(false);
  });
});

describe("image-tag-pinned", () => {
  const P = "image-tag-pinned";
  it.each(WORKLOAD_KINDS)("flags untagged and :latest images in a %s", async (kind) => {
    const spec = goodPodSpec({
      initContainers: [goodContainer({ name: "init", image: "busybox" })],
      containers: [goodContainer({ image: "ghcr.io/acme/app:latest" })],
    });
    const r = await validate(P, workload(kind, spec));
    expect(r.violations).toHaveLength(2);
    expect(r.violations.join("\n")).toMatch(/busybox has no tag/);
    expect(r.violations.join("\n")).toMatch(/:latest/);
  });
  it.each(["nginx:1.27.3", `nginx@${DIGEST}`, `ghcr.io/acme/app:1.2.3@${DIGEST}`])(
    "passes %s",
    async (image) => {
      expect((await validate(P, deployment(withImage(image)))).violations).toEqual([]);
    },
  );
  it("checks image objects in Helm values, not chart defaults", async () => {
    const chart = helmChart({
      image: { repository: "grafana/grafana", tag: "latest" },
      sidecar: { image: { repository: "kiwigrid/k8s-sidecar" } },
    });
    const r = await validate(P, chart);
    expect(r.violations).toEqual([expect.stringContaining("grafana/grafana:latest")]);
  });
  it("checks the name a built image is pushed as", async () => {
    const img = {
      type: "docker:index/image:Image",
      props: {
        imageName: "registry.platform.local/gateway",
        build: { context: path.join(FIXTURES, "good") },
      },
    };
    expect((await validate(P, img)).violations).toEqual([expect.stringContaining("built image")]);
  });
  it("skips images unknown during preview", async () => {
    const r = await validate(P, deployment(withImage("x")), {
      unknown: [["spec", "template", "spec", "containers", 0, "image"]],
    });
    expect(r).toMatchObject({ violations: [], previewNotes: [] });
  });
  it("respects allowImages", async () => {
    expect(
      (await validate(P, deployment(withImage("busybox")), { config: { allowImages: ["busybox*"] } }))
        .violations,
    ).toEqual([]);
  });
});

describe("image-digest-in-prod", () => {
  const P = "image-digest-in-prod";
  it("flags tag-only images, noting prod", async () => {
    const r = await validate(P, deployment(withImage("nginx:1.27.3")), {
      config: { enforcementLevel: "mandatory", environment: "prod" },
    });
    expect(r.violations).toEqual([expect.stringContaining("required in prod")]);
  });
  it("is advisory by default and still reports in dev", async () => {
    expect((await validate(P, deployment(withImage("nginx:1.27.3")))).violations).toHaveLength(1);
  });
  it("passes digests", async () => {
    expect((await validate(P, deployment(withImage(`nginx:1.27.3@${DIGEST}`)))).violations).toEqual([]);
  });
  it("does not apply to local stacks", async () => {
    expect(
      (await validate(P, deployment(withImage("nginx:1.27.3")), { config: { environment: "local" } }))
        .violations,
    ).toEqual([]);
  });
  it("checks Helm values with a tag", async () => {
    expect(
      (await validate(P, helmChart({ image: { repository: "grafana/grafana", tag: "11.3.0" } }))).violations,
    ).toHaveLength(1);
  });
  it("reads a Helm value's digest from `digest`, from `sha` (bare hex or prefixed) and from `tag@digest`", async () => {
    const hex = DIGEST.slice("sha256:".length);
    for (const image of [
      { registry: "docker.io", repository: "grafana/grafana", tag: "11.3.0", digest: DIGEST },
      { registry: "docker.io", repository: "grafana/grafana", tag: "11.3.0", sha: hex },
      { registry: "registry.k8s.io", repository: "kube-state-metrics/kube-state-metrics", sha: DIGEST },
      { repository: "ghcr.io/kedacore/keda", tag: `2.20.2@${DIGEST}` },
    ])
      expect((await validate(P, helmChart({ image }))).violations, JSON.stringify(image)).toEqual([]);
    // An empty `sha` (the charts' default) pins nothing.
    expect(
      (await validate(P, helmChart({ image: { repository: "grafana/grafana", tag: "11.3.0", sha: "" } })))
        .violations,
    ).toHaveLength(1);
  });
});

describe("image-allowed-registries", () => {
  const P = "image-allowed-registries";
  it.each(WORKLOAD_KINDS)("flags an unknown registry in a %s", async (kind) => {
    const r = await validate(P, workload(kind, withImage("registry.evil.example/app:1.0")));
    expect(r.violations).toEqual([expect.stringContaining("registry.evil.example")]);
  });
  it("passes default public registries and Docker Hub short names", async () => {
    for (const image of [
      "nginx:1.27",
      "ghcr.io/a/b:1",
      "nvcr.io/nvidia/tritonserver:24.08-py3",
      "registry.k8s.io/pause:3.10",
    ]) {
      expect((await validate(P, deployment(withImage(image)))).violations).toEqual([]);
    }
  });
  it("allows a stack's extraRegistries", async () => {
    const r = deployment(withImage("registry.platform.local/gateway:1.0.0"));
    expect((await validate(P, r)).violations).toHaveLength(1);
    expect(
      (await validate(P, r, { config: { extraRegistries: ["registry.platform.local"] } })).violations,
    ).toEqual([]);
  });
  it("replaces the default list with allowedRegistries", async () => {
    const r = await validate(P, deployment(withImage("nginx:1.27")), {
      config: { allowedRegistries: ["ghcr.io"] },
    });
    expect(r.violations).toHaveLength(1);
  });
  it("checks Helm values with a registry field", async () => {
    const r = await validate(
      P,
      helmChart({ image: { registry: "quay.evil.example", repository: "x/y", tag: "1" } }),
    );
    expect(r.violations).toHaveLength(1);
  });
  it("checks a built image's push target and Dockerfile bases", async () => {
    const img = {
      type: "docker:index/image:Image",
      props: {
        imageName: "registry.evil.example/gateway:1.0.0",
        build: { context: path.join(FIXTURES, "good") },
        registry: { server: "registry.evil.example", username: "u" },
      },
    };
    const r = await validate(P, img);
    expect(r.violations).toHaveLength(2);
    const ok = await validate(P, img, { config: { extraRegistries: ["registry.evil.example"] } });
    expect(ok.violations).toEqual([]);
  });
});
