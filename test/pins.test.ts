// npm run pins: the registry protocol it speaks (token challenge, digest header) and the rewrite of
// versions.ts, against a fake fetch; no network.
import { describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { chartImages, charts, images, type ImageVersion } from "../components/versions";
import { pinnedImages, registryOf, resolveDigest, setDigest } from "../tools/pins";

const DIGEST = `sha256:${"ab".repeat(32)}`;

describe("npm run pins", () => {
  it("maps references to registry hosts and paths as Docker does", () => {
    expect(registryOf("vllm/vllm-openai")).toEqual({
      host: "registry-1.docker.io",
      path: "vllm/vllm-openai",
    });
    expect(registryOf("docker.io/library/registry")).toEqual({
      host: "registry-1.docker.io",
      path: "library/registry",
    });
    expect(registryOf("redis")).toEqual({ host: "registry-1.docker.io", path: "library/redis" });
    expect(registryOf("ghcr.io/ggml-org/llama.cpp")).toEqual({ host: "ghcr.io", path: "ggml-org/llama.cpp" });
  });

  it("answers a bearer challenge with an anonymous pull token and reads Docker-Content-Digest", async () => {
    const calls: string[] = [];
    const fake = (url: string, init?: RequestInit): Promise<Response> => {
      calls.push(`${init?.method ?? "GET"} ${url}`);
      const auth = new Headers(init?.headers).get("authorization");
      if (url.startsWith("https://auth.example/token"))
        return Promise.resolve(Response.json({ token: "t0k" }));
      if (!auth)
        return Promise.resolve(
          new Response(null, {
            status: 401,
            headers: {
              "www-authenticate":
                'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull"',
            },
          }),
        );
      expect(auth).toBe("Bearer t0k");
      return Promise.resolve(
        new Response(null, { status: 200, headers: { "docker-content-digest": DIGEST } }),
      );
    };
    await expect(resolveDigest({ repository: "ghcr.io/a/b", tag: "1.0" }, fake)).resolves.toBe(DIGEST);
    expect(calls).toEqual([
      "HEAD https://ghcr.io/v2/a/b/manifests/1.0",
      "GET https://auth.example/token?service=reg&scope=repository%3Aa%2Fb%3Apull",
      "HEAD https://ghcr.io/v2/a/b/manifests/1.0",
    ]);
  });

  it("refuses an answer without a well-formed digest", async () => {
    const fake = () => Promise.resolve(new Response(null, { status: 200 }));
    await expect(resolveDigest({ repository: "ghcr.io/a/b", tag: "1.0" }, fake)).rejects.toThrow(
      /sent no digest/,
    );
  });

  it("adds or replaces the digest of exactly the matching entry", () => {
    const src = [
      'a: { repository: "ghcr.io/a/b", tag: "1.0" },',
      `c: { repository: "ghcr.io/a/c", tag: "2.0", digest: "sha256:${"cd".repeat(32)}" },`,
    ].join("\n");
    const added = setDigest(src, { repository: "ghcr.io/a/b", tag: "1.0" }, DIGEST);
    expect(added.split("\n")[0]).toBe(`a: { repository: "ghcr.io/a/b", tag: "1.0", digest: "${DIGEST}" },`);
    const replaced = setDigest(added, { repository: "ghcr.io/a/c", tag: "2.0" }, DIGEST);
    expect(replaced.split("\n")[1]).toBe(
      `c: { repository: "ghcr.io/a/c", tag: "2.0", digest: "${DIGEST}" },`,
    );
    expect(() => setDigest(src, { repository: "ghcr.io/a/x", tag: "1" }, DIGEST)).toThrow(/no entry/);
  });

  it("sets the digest on every entry of the same image, pinned or by tag only", () => {
    const src = [
      'a: { repository: "ghcr.io/a/p", tag: "0.2" },',
      'b: byTag("ghcr.io/a/p", "0.2"),',
      'c: { repository: "ghcr.io/a/p", tag: "0.3" },',
    ].join("\n");
    const next = setDigest(src, { repository: "ghcr.io/a/p", tag: "0.2" }, DIGEST).split("\n");
    expect(next[0]).toContain(`tag: "0.2", digest: "${DIGEST}"`);
    expect(next[1]).toBe(`b: { repository: "ghcr.io/a/p", tag: "0.2", digest: "${DIGEST}" },`);
    expect(next[2]).toBe('c: { repository: "ghcr.io/a/p", tag: "0.3" },');
  });

  it("resolves every image versions.ts pins, the platform's and the charts', once each", () => {
    const refs = pinnedImages().map((i) => `${i.repository}:${i.tag}`);
    expect(new Set(refs).size).toBe(refs.length);
    for (const i of Object.values(images)) expect(refs).toContain(`${i.repository}:${i.tag}`);
    for (const c of Object.values(chartImages))
      for (const i of Object.values(c.images)) expect(refs).toContain(`${i.repository}:${i.tag}`);
  });

  it("turns an image pinned by tag only (`byTag`) into an entry with its digest", () => {
    const src = `registry: byTag("docker.io/distribution/distribution", "3.1.1"),`;
    expect(setDigest(src, { repository: "docker.io/distribution/distribution", tag: "3.1.1" }, DIGEST)).toBe(
      `registry: { repository: "docker.io/distribution/distribution", tag: "3.1.1", digest: "${DIGEST}" },`,
    );
  });

  it("can write a digest for every image the committed versions.ts pins, whatever way it is written", () => {
    const source = readFileSync("components/versions.ts", "utf8");
    for (const image of Object.values(images)) {
      const next = setDigest(source, image, DIGEST);
      expect(next, `${image.repository}:${image.tag}`).not.toBe(source);
      expect(next).toContain(`tag: "${image.tag}", digest: "${DIGEST}"`);
    }
  });
});

/** Every image versions.ts records: the platform's own and each chart's, named for messages. */
const recorded: [string, ImageVersion][] = [
  ...Object.entries(images),
  ...Object.entries(chartImages).flatMap(([chart, c]) =>
    Object.entries(c.images).map(([name, i]): [string, ImageVersion] => [`${chart}.${name}`, i]),
  ),
];

describe("versions.ts image records", () => {
  it("records every digest as a sha256 digest", () => {
    const digests = recorded.filter(([, i]) => i.digest !== undefined);
    expect(digests.length).toBeGreaterThan(0);
    for (const [name, i] of digests) expect(i.digest, name).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("gives one repository:tag one digest wherever it is recorded", () => {
    const seen = new Map<string, string | undefined>();
    for (const [name, i] of recorded) {
      const ref = `${i.repository}:${i.tag}`;
      if (seen.has(ref)) expect(i.digest, `${name} (${ref})`).toBe(seen.get(ref));
      else seen.set(ref, i.digest);
    }
  });

  it("reads each chart's images from the chart version pinned in charts", () => {
    for (const [chart, c] of Object.entries(chartImages))
      expect(c.chartVersion, `${chart}: re-read its images after a chart bump`).toBe(
        charts[chart as keyof typeof charts].version,
      );
  });

  it("writes each chart image so that a digest can be set in place (as `npm run pins` does)", () => {
    const source = readFileSync("components/versions.ts", "utf8");
    for (const [name, i] of recorded) {
      const next = setDigest(source, i, DIGEST);
      expect(next, name).toContain(`tag: "${i.tag}", digest: "${DIGEST}"`);
    }
  });
});
