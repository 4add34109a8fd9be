import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { CONFIG_DIR, main, sarifUri, type Finding } from "../../tools/policy";
import { isHelmTemplate, loadPaths, recordsFromYaml } from "../lib/loader";

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
    const rows = JSON.parse(r.out) as Finding[];
    for (const row of rows)
      expect(Object.keys(row)).toEqual([
        "policy",
        "level",
        "severity",
        "kind",
        "namespace",
        "name",
        "file",
        "line",
        "message",
        "remediation",
      ]);
    expect(rows).toContainEqual({
      policy: "mesh-strict-mtls",
      level: "mandatory",
      severity: "high",
      kind: "PeerAuthentication",
      namespace: "web",
      name: "legacy",
      file: `${FIX}/manifests/bad/nested/more.yml`,
      line: 4,
      message: "PeerAuthentication sets mtls.mode PERMISSIVE",
      remediation: expect.stringContaining("STRICT") as string,
    });
    // The line of the field a message names, not only of the object.
    expect(rows.find((x) => x.policy === "k8s-env-no-literal-secrets")?.line).toBe(27);
    expect(rows).toContainEqual(
      expect.objectContaining({ policy: "k8s-env-no-literal-secrets", kind: "Deployment", name: "web" }),
    );
    expect(rows).toContainEqual(
      expect.objectContaining({
        policy: "dockerfile-multi-stage",
        kind: "Dockerfile",
        file: `${FIX}/docker/single/Dockerfile`,
        line: 1,
        message: "single-stage build; add a separate build stage",
      }),
    );
    expect(rows).toContainEqual(
      expect.objectContaining({
        policy: "dockerfile-slim-base",
        line: 1,
        message: expect.stringMatching(/^final/),
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
    const rows = JSON.parse(r.out) as Finding[];
    expect(rows.map((x) => x.policy)).toEqual(["mesh-strict-mtls", "image-digest-in-prod"]);
    const prod = await cli(
      "check",
      "--json",
      "--config=policies/config/prod.json",
      `${FIX}/manifests/bad/nested/more.yml`,
    );
    expect((JSON.parse(prod.out) as Finding[]).map((x) => x.level)).toEqual(["mandatory", "mandatory"]);
  });
  it("treats remediate-level violations as mandatory (files are not remediated)", async () => {
    const dir = path.join(__dirname, "fixtures", "gpu");
    const r = await cli("check", "--json", path.relative(ROOT, dir));
    const rows = JSON.parse(r.out) as Finding[];
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
    expect((JSON.parse(r.stdout) as Finding[]).length).toBeGreaterThan(3);
  });
});

/** A scratch folder with the given files (relative path → content). */
function scratch(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), "policy-cli-"));
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), text);
  }
  return dir;
}

const CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain, namespace: apps}\ndata: {a: b}\n";
const BOMB = [
  "a: &a [x, x, x, x, x, x, x, x, x, x]",
  ...["b", "c", "d", "e", "f", "g"].map(
    (k, i) =>
      `${k}: &${k} [${Array(10)
        .fill(`*${String.fromCharCode(97 + i)}`)
        .join(", ")}]`,
  ),
  "apiVersion: v1",
  "kind: ConfigMap",
  "metadata: {name: bomb}",
].join("\n");

describe("policy list", () => {
  it("prints every policy with its level per stack, severity and description", async () => {
    const r = await cli("list");
    expect(r.code).toBe(0);
    const lines = r.out.split("\n");
    // A column per stack config, whatever stacks there are.
    const stacks = readdirSync(CONFIG_DIR)
      .filter((f) => f.endsWith(".json"))
      .map((f) => f.replace(/\.json$/, "").toUpperCase())
      .sort();
    expect(stacks).toEqual(expect.arrayContaining(["DEV", "LOCAL", "PROD"]));
    expect(lines[0]!.split(/\s+/)).toEqual(["POLICY", ...stacks, "SEVERITY", "DESCRIPTION"]);
    const digest = lines.find((l) => l.startsWith("image-digest-in-prod "))!.split(/\s+/);
    expect(digest[stacks.indexOf("PROD") + 1]).toBe("mandatory");
    expect(digest[stacks.indexOf("DEV") + 1]).toBe("advisory");
    expect(digest.slice(stacks.length + 1, stacks.length + 4)).toEqual(["medium", "Images", "are"]);
    expect(lines.length).toBeGreaterThan(20);
  });
  it("as JSON", async () => {
    const rows = JSON.parse((await cli("list", "--format", "json")).out) as {
      name: string;
      levels: Record<string, string>;
      severity: string;
      description: string;
    }[];
    expect(rows.find((x) => x.name === "image-digest-in-prod")).toMatchObject({
      levels: { dev: "advisory", local: "advisory", prod: "mandatory" },
      severity: "medium",
    });
    for (const row of rows) expect(row.description).not.toMatch(/\n/);
  });
  it.each([[["list", "--format", "sarif"]], [["list", "x"]], [["list", "--config", "a.json"]]])(
    "refuses %j in one line",
    async (argv) => {
      const r = await cli(...argv);
      expect(r.code).toBe(2);
      expect(r.err.split("\n")).toHaveLength(1);
    },
  );
});

describe("policy --help and formats", () => {
  it.each([[["--help"]], [["check", "--help"]], [["-h"]]])("%j prints the help", async (argv) => {
    const r = await cli(...argv);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/--format text\|json\|sarif/);
    expect(r.out).toMatch(/exit codes: 0 clean/);
  });
  it("refuses an unknown format", async () => {
    const r = await cli("check", "--format", "xml", `${FIX}/manifests/good`);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^policy: --format must be text, json or sarif, not "xml"; usage:/);
  });
  it("writes the report to --output and says so", async () => {
    const out = path.join(scratch({}), "r.json");
    const r = await cli("check", "--format=json", "--output", out, `${FIX}/manifests/bad/nested/more.yml`);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/r\.json: 2 violations \(1 mandatory, 1 advisory\)/);
    expect((JSON.parse(readFileSync(out, "utf8")) as Finding[]).map((f) => f.policy)).toEqual([
      "mesh-strict-mtls",
      "image-digest-in-prod",
    ]);
  });
});

describe("policy check --format sarif", () => {
  const schemaRequired = (log: Record<string, unknown>) => {
    // The SARIF 2.1.0 schema's required properties, and what code scanning needs besides.
    const runs = log["runs"] as Record<string, unknown>[];
    expect(log["version"]).toBe("2.1.0");
    expect(Array.isArray(runs)).toBe(true);
    for (const run of runs) {
      const driver = (run["tool"] as { driver: Record<string, unknown> }).driver;
      expect(typeof driver["name"]).toBe("string");
      const rules = driver["rules"] as Record<string, { text?: string } & Record<string, unknown>>[];
      for (const rule of rules) {
        expect(typeof rule["id"]).toBe("string");
        for (const k of ["shortDescription", "fullDescription", "help"])
          expect(typeof rule[k]!.text).toBe("string");
      }
      for (const res of run["results"] as Record<string, unknown>[]) {
        expect(typeof (res["message"] as { text: string }).text).toBe("string");
        const idx = res["ruleIndex"] as number;
        expect(rules[idx]!["id"]).toBe(res["ruleId"]);
        const loc = (res["locations"] as { physicalLocation: Record<string, Record<string, unknown>> }[])[0]!;
        expect(loc.physicalLocation["artifactLocation"]!["uri"]).toMatch(/^[^/]/);
        expect(loc.physicalLocation["region"]!["startLine"]).toBeGreaterThanOrEqual(1);
      }
    }
    return runs[0]!;
  };

  it("is SARIF 2.1.0 with rule metadata, levels, file and line", async () => {
    const r = await cli(
      "check",
      "--format",
      "sarif",
      "--category",
      "manifests/prod",
      `${FIX}/manifests/bad`,
      `${FIX}/docker/single`,
    );
    expect(r.code).toBe(1);
    const log = JSON.parse(r.out) as Record<string, unknown>;
    expect(log["$schema"]).toMatch(/sarif-2\.1\.0/);
    const run = schemaRequired(log) as {
      automationDetails: { id: string };
      tool: {
        driver: {
          rules: {
            id: string;
            defaultConfiguration: { level: string };
            properties: Record<string, unknown>;
          }[];
        };
      };
      results: {
        ruleId: string;
        level: string;
        message: { text: string };
        locations: {
          physicalLocation: { artifactLocation: { uri: string }; region: { startLine: number } };
        }[];
      }[];
    };
    expect(run.automationDetails).toEqual({ id: "manifests/prod/" });
    const digest = run.tool.driver.rules.find((x) => x.id === "image-digest-in-prod")!;
    expect(digest.defaultConfiguration.level).toBe("warning");
    expect(digest.properties["security-severity"]).toBe("5.5");
    const env = run.results.find((x) => x.ruleId === "k8s-env-no-literal-secrets")!;
    expect(env.level).toBe("error");
    expect(env.message.text).toMatch(/^Deployment web\/web: container "web" sets DB_PASSWORD/);
    expect(env.locations[0]!.physicalLocation).toEqual({
      artifactLocation: { uri: `${FIX}/manifests/bad/app.yaml` },
      region: { startLine: 27, startColumn: 1 },
    });
    expect(
      run.results.find((x) => x.ruleId === "dockerfile-multi-stage")!.locations[0]!.physicalLocation
        .artifactLocation.uri,
    ).toBe(`${FIX}/docker/single/Dockerfile`);
  });

  it("lists only active rules; an empty result list is still a valid log", async () => {
    const config = path.join(
      scratch({ "c.json": JSON.stringify({ "mesh-strict-mtls": "disabled" }) }),
      "c.json",
    );
    const r = await cli("check", "--format", "sarif", "--config", config, `${FIX}/manifests/good`);
    expect(r.code).toBe(0);
    const run = schemaRequired(JSON.parse(r.out) as Record<string, unknown>) as {
      results: unknown[];
      tool: { driver: { rules: { id: string }[] } };
    };
    expect(run.results).toEqual([]);
    expect(run.tool.driver.rules.map((x) => x.id)).not.toContain("mesh-strict-mtls");
    expect(run.tool.driver.rules.map((x) => x.id)).toContain("k8s-probes-required");
  });

  it("URIs are relative to the working directory, encoded; outside it file: URIs", () => {
    expect(sarifUri("a b/Dockerfile", "/repo")).toBe("a%20b/Dockerfile");
    expect(sarifUri("/repo/x.yaml", "/repo")).toBe("x.yaml");
    expect(sarifUri("/elsewhere/x.yaml", "/repo")).toBe("file:///elsewhere/x.yaml");
  });
});

describe("policy check: what it reads and what it refuses", () => {
  it("applies YAML merge keys (merged containers are checked)", async () => {
    const base = [
      "x-pod: &pod",
      "  containers:",
      "    - name: app",
      "      image: ghcr.io/acme/app:1.0.0",
      "      env: [{name: DB_PASSWORD, value: hunter2hunter2}]",
      "apiVersion: apps/v1",
      "kind: Deployment",
      "metadata: {name: merged, namespace: apps}",
      "spec:",
      "  template:",
      "    spec:",
      "      <<: *pod",
      "",
    ].join("\n");
    const { records } = recordsFromYaml(base, "m.yaml");
    expect(
      (records[0]!.inputs["spec"] as { template: { spec: { containers: unknown[] } } }).template.spec
        .containers,
    ).toHaveLength(1);
    const dir = scratch({ "m.yaml": base });
    const rows = JSON.parse((await cli("check", "--json", dir)).out) as Finding[];
    expect(rows.map((x) => x.policy)).toContain("k8s-env-no-literal-secrets");
  });

  it("refuses an alias bomb in one line and still checks the rest of the folder", async () => {
    const dir = scratch({
      "bomb.yaml": BOMB,
      "ok/cm.yaml": CONFIGMAP,
      "nested/bad.yaml":
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: nginx:latest}]}\n",
    });
    const r = await cli("check", "--json", dir);
    expect(r.code).toBe(2);
    expect(r.err).toBe(
      `policy: ${path.join(dir, "bomb.yaml")}: refused: more than 1000 YAML aliases (an alias bomb?)`,
    );
    expect((JSON.parse(r.out) as Finding[]).map((x) => x.name)).toContain("p");
    expect(r.out).not.toMatch(/at .*\.ts:\d+/);
  });

  it("skips Helm templates in one line each and checks the rest", async () => {
    const dir = scratch({
      "chart/Chart.yaml": "apiVersion: v2\nname: c\nversion: 0.1.0\n",
      // In a chart's templates/ even Go-template text that is not Helm's is rendered first.
      "chart/templates/cm.yaml": 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: "{{ $name }}"}\n',
      "chart/templates/static.yaml": CONFIGMAP,
      "loose/deploy.yaml": 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: "{{ .Release.Name }}"}\n',
      "loose/broken.yaml": "{{- if .Values.on }}\napiVersion: v1\nkind: ConfigMap\n{{- end }}\n",
      "ok/cm.yaml": CONFIGMAP,
    });
    const r = await cli("check", dir);
    expect(r.code).toBe(0);
    expect(r.err.split("\n").sort()).toEqual(
      ["chart/templates/cm.yaml", "loose/broken.yaml", "loose/deploy.yaml"].map(
        (f) => `policy: ${path.join(dir, f)}: skipped (a Helm template; check its rendered output)`,
      ),
    );
    expect(r.out).toMatch(/No violations in 2 resources from 2 files; 3 skipped, 0 exempted\./);
  });

  it("tells Helm templates from manifests that carry template text", () => {
    expect(isHelmTemplate('image: "{{ .Values.image }}"\n', "x.yaml")).toBe(true);
    expect(isHelmTemplate('{{- include "x.labels" . | nindent 4 }}\n', "x.yaml")).toBe(true);
    const rule =
      "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nspec: {groups: [{rules: [{annotations: {summary: '{{ $labels.instance }} down'}}]}]}\n";
    expect(isHelmTemplate(rule, "r.yaml")).toBe(false);
    const injector =
      "apiVersion: v1\nkind: ConfigMap\ndata:\n  config: |\n    {{- if .Values.global.proxy }}\n    x: 1\n    {{- end }}\n";
    expect(isHelmTemplate(injector, "c.yaml")).toBe(false);
    expect(isHelmTemplate(CONFIGMAP, "c.yaml")).toBe(false);
  });

  it("reads List kinds of any depth (typed lists' items take the list's kind)", () => {
    const text = [
      "apiVersion: v1",
      "kind: List",
      "items:",
      "  - apiVersion: v1",
      "    kind: PodList",
      "    items:",
      "      - metadata: {name: a, namespace: x}",
      "        spec: {containers: [{name: c, image: nginx:1.27}]}",
      "  - apiVersion: v1",
      "    kind: List",
      "    items: [{apiVersion: v1, kind: ConfigMap, metadata: {name: b}}]",
      "",
    ].join("\n");
    const { records, sources } = recordsFromYaml(text, "l.yaml");
    expect(records.map((r) => `${r.type} ${r.name}`)).toEqual([
      "kubernetes:core/v1:Pod a",
      "kubernetes:core/v1:ConfigMap b",
    ]);
    expect([...sources.values()].map((s) => s.line)).toEqual([7, 11]);
    expect(records[0]!.inputs).toMatchObject({ apiVersion: "v1", kind: "Pod" });
  });

  it("skips dot folders and node_modules with a word, counts them; a dot folder given explicitly is read", async () => {
    const dir = scratch({
      ".cache/cm.yaml": CONFIGMAP,
      "node_modules/x/cm.yaml": CONFIGMAP,
      "cm.yaml": CONFIGMAP,
    });
    const r = await cli("check", dir);
    expect(r.err.split("\n")).toEqual([
      `policy: ${path.join(dir, ".cache")}: skipped (dot folder)`,
      `policy: ${path.join(dir, "node_modules")}: skipped (node_modules)`,
    ]);
    expect(r.out).toMatch(/in 1 resources from 1 files; 2 skipped, 0 exempted/);
    expect((await cli("check", path.join(dir, ".cache"))).out).toMatch(
      /in 1 resources from 1 files; 0 skipped/,
    );
  });

  it("counts exempted resources in the summary", async () => {
    const config = path.join(
      scratch({
        "c.json": JSON.stringify({
          "mesh-strict-mtls": {
            enforcementLevel: "mandatory",
            exemptions: [{ name: "legacy", reason: "migrating" }],
          },
        }),
      }),
      "c.json",
    );
    const file = `${FIX}/manifests/bad/nested/more.yml`;
    expect((await cli("check", file)).out).toMatch(/0 exempted/);
    const r = await cli("check", "--config", config, file);
    expect(r.out).toMatch(
      /1 violations \(0 mandatory, 1 advisory\) in 2 resources from 1 files; 0 skipped, 1 exempted\./,
    );
    expect(r.code).toBe(0);
  });

  it("an input with no Kubernetes objects or Dockerfiles is exit 2 with a message", async () => {
    const dir = scratch({ "values.yaml": "replicas: 2\n" });
    const r = await cli("check", dir);
    expect(r.code).toBe(2);
    expect(r.err).toBe(`policy: no Kubernetes objects or Dockerfiles in ${dir}`);
  });

  it("prints user errors in one line without a stack trace (tsx entry point)", () => {
    const dir = scratch({ "bomb.yaml": BOMB });
    for (const argv of [
      ["check", dir],
      ["check", "--config", path.join(dir, "nope.json"), dir],
      ["check", "--format"],
    ]) {
      const r = spawnSync("npx", ["tsx", "tools/policy.ts", ...argv], { cwd: ROOT, encoding: "utf8" });
      expect(r.status).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
