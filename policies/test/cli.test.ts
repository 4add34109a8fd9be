import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { main, type CliViolation } from "../../tools/policy";
import { loadPaths, recordsFromYaml } from "../lib/loader";

const ROOT = path.join(__dirname, "..", "..");
const FIX = path.relative(ROOT, path.join(__dirname, "fixtures"));

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const prev = process.cwd();
  process.chdir(ROOT);
  try {
    const code = await main(argv, { out: (s) => out.push(s), err: (s) => err.push(s) });
    return { code, out: out.join("\n"), err: err.join("\n") };
  } finally {
    process.chdir(prev);
  }
}

describe("loader", () => {
  it("reads multi-document YAML and Lists, skipping empty and non-Kubernetes documents", () => {
    const text =
      "---\n# empty\n---\nfoo: bar\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: apps/v1, kind: Deployment, metadata: {name: b, namespace: x}}\n";
    const { records, sources } = recordsFromYaml(text, "f.yaml");
    expect(records.map((r) => r.type)).toEqual([
      "kubernetes:core/v1:ConfigMap",
      "kubernetes:apps/v1:Deployment",
    ]);
    expect([...sources.values()].map((s) => `${s.kind} ${s.namespace}/${s.name}`)).toEqual([
      "ConfigMap default/a",
      "Deployment x/b",
    ]);
  });
  it("walks directories for YAML and Dockerfiles", () => {
    const { records } = loadPaths([
      path.join(__dirname, "fixtures", "manifests"),
      path.join(__dirname, "fixtures", "docker", "good"),
    ]);
    expect(records.filter((r) => r.type === "docker:index/image:Image")).toHaveLength(1);
    expect(records.length).toBe(3 + 2 + 2 + 1);
  });
});

describe("policy check", () => {
  it("exits 0 on clean manifests", async () => {
    const r = await cli("check", `${FIX}/manifests/good`, `${FIX}/docker/good/Dockerfile`);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/No violations in 4 resources from 2 files/);
  });
  it("exits 1 and prints a table on mandatory violations", async () => {
    const r = await cli("check", `${FIX}/manifests/bad`);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^LEVEL\s+POLICY\s+RESOURCE\s+FILE\s+MESSAGE/);
    expect(r.out).toContain("Deployment web/web");
    expect(r.out).not.toContain("hunter2");
  });
  it("prints JSON violations with the documented fields", async () => {
    const r = await cli("check", "--json", `${FIX}/manifests/bad`, `${FIX}/docker/single`);
    expect(r.code).toBe(1);
    const rows = JSON.parse(r.out) as CliViolation[];
    for (const row of rows)
      expect(Object.keys(row)).toEqual(["policy", "level", "kind", "namespace", "name", "file", "message"]);
    expect(rows).toContainEqual({
      policy: "mesh-strict-mtls",
      level: "mandatory",
      kind: "PeerAuthentication",
      namespace: "web",
      name: "legacy",
      file: `${FIX}/manifests/bad/nested/more.yml`,
      message: "PeerAuthentication sets mtls.mode PERMISSIVE",
    });
    expect(rows).toContainEqual(
      expect.objectContaining({ policy: "k8s-env-no-literal-secrets", kind: "Deployment", name: "web" }),
    );
    expect(rows).toContainEqual(
      expect.objectContaining({
        policy: "dockerfile-multi-stage",
        kind: "Dockerfile",
        file: `${FIX}/docker/single/Dockerfile`,
      }),
    );
  });
  it("exits 0 when only advisories remain (config relaxes levels)", async () => {
    const r = await cli(
      "check",
      "--json",
      "--config",
      "policies/config/dev.json",
      `${FIX}/manifests/bad/nested/more.yml`,
    );
    const rows = JSON.parse(r.out) as CliViolation[];
    expect(rows.map((x) => x.policy)).toEqual(["mesh-strict-mtls", "image-digest-in-prod"]);
    const prod = await cli(
      "check",
      "--json",
      "--config=policies/config/prod.json",
      `${FIX}/manifests/bad/nested/more.yml`,
    );
    expect((JSON.parse(prod.out) as CliViolation[]).map((x) => x.level)).toEqual(["mandatory", "mandatory"]);
  });
  it("treats remediate-level violations as mandatory (files are not remediated)", async () => {
    const dir = path.join(__dirname, "fixtures", "gpu");
    const r = await cli("check", "--json", path.relative(ROOT, dir));
    const rows = JSON.parse(r.out) as CliViolation[];
    expect(rows.filter((x) => x.policy === "gpu-scheduling").map((x) => x.level)).toEqual([
      "mandatory",
      "mandatory",
    ]);
    expect(r.code).toBe(1);
  });
  it.each([
    [["check", `${FIX}/invalid-yaml.txt`], /invalid YAML/],
    [["check", `${FIX}/does-not-exist`], /cannot read/],
    [["check", "--config", `${FIX}/does-not-exist.json`, `${FIX}/manifests/good`], /cannot read config/],
  ])("exits 2 on unreadable input %#", async (argv, msg) => {
    const r = await cli(...argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
    expect(r.err.split("\n")).toHaveLength(1);
  });
  it.each([[[]], [["lint", "x"]], [["check"]], [["check", "--nope", "x"]], [["check", "--config"]]])(
    "exits 2 with a one-line usage error for %j",
    async (argv) => {
      const r = await cli(...argv);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/^policy: .*usage: npm run policy -- check/);
      expect(r.err.split("\n")).toHaveLength(1);
    },
  );
  it("runs as `npm run policy` (tsx entry point)", () => {
    const r = spawnSync(
      "npx",
      ["tsx", "tools/policy.ts", "check", "--json", `${FIX}/manifests/bad/app.yaml`],
      { cwd: ROOT, encoding: "utf8" },
    );
    expect(r.status).toBe(1);
    expect((JSON.parse(r.stdout) as CliViolation[]).length).toBeGreaterThan(3);
  });
});
