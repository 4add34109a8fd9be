/**
 * How the preflight talks: colours only on a terminal (NO_COLOR, FORCE_COLOR), progress only on a
 * terminal's stderr, program warnings in every report, a remediation hint naming the file on every
 * finding, YAML syntax errors with line, column and key path, policy-config errors as one line
 * naming file and field (both CLIs, exit 2), and manifests named by URN.
 */
import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ANSI, colourEnabled, PLAIN, stripColour } from "../tools/preflight/colour";
import {
  componentSources,
  configHint,
  findingHint,
  hintContextFor,
  lineage,
  ownerComponent,
  parseUrn,
  policyHint,
  warningHint,
} from "../tools/preflight/hints";
import { jsonErrorPosition, parsePolicyConfig } from "../tools/preflight/policy-config";
import { Progress, progressLine } from "../tools/preflight/progress";
import {
  manifestFileName,
  markdown,
  problemsText,
  summaryLine,
  withHints,
  writePlanFiles,
} from "../tools/preflight/report";
import { runStack, type Plan } from "../tools/preflight/run";
import { keyPathAt, yamlSyntaxError } from "../tools/preflight/yaml-errors";
import { policies } from "../policies/rules";

const ROOT = process.cwd();
const TSX = join(ROOT, "node_modules", ".bin", "tsx");

function run(script: string, args: string[], cwd = ROOT, env: Record<string, string | undefined> = {}) {
  const merged: Record<string, string | undefined> = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete merged[k];
  const r = spawnSync(TSX, [join(ROOT, "tools", script), ...args], {
    cwd,
    encoding: "utf8",
    timeout: 120_000,
    env: merged,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const preflight = (args: string[], cwd = ROOT, env: Record<string, string | undefined> = {}) =>
  run("preflight.ts", args, cwd, env);

/** A scratch stack directory: Pulumi.yaml, the stack files given, and local's policy config for each. */
function scratch(stacks: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "preflight-"));
  copyFileSync(join(ROOT, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
  symlinkSync(join(ROOT, "web"), join(dir, "web"));
  symlinkSync(join(ROOT, "services"), join(dir, "services"));
  mkdirSync(join(dir, "policies", "config"), { recursive: true });
  for (const [stack, text] of Object.entries(stacks)) {
    writeFileSync(join(dir, `Pulumi.${stack}.yaml`), text);
    copyFileSync(
      join(ROOT, "policies", "config", "local.json"),
      join(dir, "policies", "config", `${stack}.json`),
    );
  }
  return dir;
}

const ESC = /\x1b\[/; // eslint-disable-line no-control-regex

describe("colours", () => {
  it("on for a terminal; off piped, for NO_COLOR (any non-empty value) and TERM=dumb; FORCE_COLOR decides first", () => {
    const tty = { isTTY: true };
    const pipe = { isTTY: false };
    expect(colourEnabled(tty, {})).toBe(true);
    expect(colourEnabled(pipe, {})).toBe(false);
    expect(colourEnabled({}, {})).toBe(false);
    expect(colourEnabled(tty, { NO_COLOR: "1" })).toBe(false);
    expect(colourEnabled(tty, { NO_COLOR: "anything" })).toBe(false);
    expect(colourEnabled(tty, { NO_COLOR: "" })).toBe(true);
    expect(colourEnabled(tty, { TERM: "dumb" })).toBe(false);
    expect(colourEnabled(pipe, { FORCE_COLOR: "1" })).toBe(true);
    expect(colourEnabled(pipe, { FORCE_COLOR: "" })).toBe(true);
    expect(colourEnabled(tty, { FORCE_COLOR: "0" })).toBe(false);
    expect(colourEnabled(tty, { FORCE_COLOR: "false" })).toBe(false);
  });

  const failing = {
    stack: "dev",
    resources: [],
    violations: [
      {
        policy: "image-tag-pinned",
        level: "mandatory",
        urn: "urn:pulumi:dev::p::kubernetes:apps/v1:Deployment::web",
        message: "not pinned",
      },
    ],
    schemaErrors: [],
    secretLeaks: [],
    findings: [],
    warnings: [],
    summary: {
      resources: 1,
      components: 0,
      mandatory: 1,
      advisory: 0,
      remediate: 0,
      schemaErrors: 0,
      secretLeaks: 0,
      unvalidatedKinds: [],
      charts: { total: 0, rendered: 0, notRendered: 0, objects: 0 },
      fidelityErrors: 0,
      fidelityWarnings: 0,
      programWarnings: 0,
      ms: 1,
    },
  } as unknown as Plan;

  it("the terminal text is the same words with or without them", () => {
    const coloured = problemsText(failing, ANSI) + summaryLine(failing, ANSI);
    const plain = problemsText(failing, PLAIN) + summaryLine(failing, PLAIN);
    expect(coloured).toMatch(ESC);
    expect(plain).not.toMatch(ESC);
    expect(stripColour(coloured)).toBe(plain);
    expect(summaryLine(failing, ANSI)).toContain("\x1b[31m1 mandatory\x1b[39m");
  });

  it("the CLI colours nothing when piped, and colours with FORCE_COLOR; NO_COLOR wins over a terminal", () => {
    const piped = preflight(
      ["--stack", "local", "--quiet", "--out", mkdtempSync(join(tmpdir(), "pf-"))],
      ROOT,
      {
        FORCE_COLOR: undefined,
        NO_COLOR: undefined,
      },
    );
    expect(piped.code).toBe(0);
    expect(piped.stdout + piped.stderr).not.toMatch(ESC);
    const forced = preflight(
      ["--stack", "local", "--quiet", "--out", mkdtempSync(join(tmpdir(), "pf-"))],
      ROOT,
      {
        FORCE_COLOR: "1",
        NO_COLOR: undefined,
      },
    );
    expect(forced.stdout).toMatch(ESC);
    expect(stripColour(forced.stdout)).toMatch(/local: \d+ resources/);
    // No progress line either: stderr is not a terminal.
    expect(piped.stderr).not.toContain("preflight: local");
  }, 120_000);
});

describe("progress", () => {
  const stream = (isTTY: boolean) => {
    const writes: string[] = [];
    return { isTTY, writes, write: (s: string) => writes.push(s) > 0 };
  };

  it("one line per stack under way, with its place and elapsed time", () => {
    expect(progressLine("dev", 1, 4, 1234)).toBe("preflight: dev (2 of 4) … 1.2 s");
    expect(progressLine("baseline main (abc1234)", 0, 1, 50)).toBe(
      "preflight: baseline main (abc1234) … 0.1 s",
    );
  });

  it("on a terminal: drawn in place and cleared before anything else is printed", () => {
    let now = 0;
    const s = stream(true);
    const p = new Progress(s, () => now);
    p.start("local", 0, 2);
    now = 1500;
    p.start("dev", 1, 2);
    p.stop();
    expect(s.writes).toEqual([
      "\r\x1b[Kpreflight: local (1 of 2) … 0.0 s",
      "\r\x1b[K",
      "\r\x1b[Kpreflight: dev (2 of 2) … 0.0 s",
      "\r\x1b[K",
    ]);
  });

  it("piped: nothing at all", () => {
    const s = stream(false);
    const p = new Progress(s);
    p.start("local");
    p.stop();
    expect(s.writes).toEqual([]);
  });
});

describe("program warnings (pulumi.log.warn)", () => {
  it("a GPU pool that may run short is in the plan, the Markdown and the JSON with its hint, not loose on stderr", async () => {
    const stackFile = parse(readFileSync("Pulumi.dev.yaml", "utf8")) as {
      config: Record<string, { services: Record<string, unknown>[] }>;
    };
    const inference = stackFile.config["platform:inference"]!;
    const [first, ...rest] = inference.services;
    const r = await runStack("dev", {
      overrides: {
        "platform:inference": {
          ...inference,
          services: [{ ...first, replicas: { min: 1, max: 3 } }, ...rest],
        },
      },
    });
    if (r.kind !== "plan") throw new Error(r.kind);
    expect(r.plan.warnings).toEqual([
      {
        message: expect.stringMatching(/^GPU pool "gpu-l4" may need \d+ GPUs at peak .* but has 1$/),
        urn: expect.stringContaining("platform:inference:InferenceStack::dev-inference"),
      },
    ]);
    expect(r.plan.summary.programWarnings).toBe(1);
    const hinted = withHints(r.plan);
    expect(hinted.warnings[0]!.hint).toBe(
      "adjust platform:inference in Pulumi.dev.yaml (logged by components/inference/stack.ts)",
    );
    expect(markdown([r.plan])).toMatch(
      /\| warning \| \| GPU pool "gpu-l4" may need .* \| `dev-inference` \| adjust platform:inference/,
    );
    expect(problemsText(r.plan)).toMatch(/\[warning\] GPU pool "gpu-l4"/);
  }, 60_000);

  it("the CLI's JSON and Markdown carry what the program logged; stderr does not", () => {
    const dir = mkdtempSync(join(tmpdir(), "preflight-warn-"));
    const program = join(dir, "warn.ts");
    writeFileSync(
      program,
      [
        `import * as pulumi from "${join(ROOT, "node_modules", "@pulumi", "pulumi")}";`,
        "export = () => {",
        '  const c = new pulumi.ComponentResource("platform:inference:InferenceStack", "w", {});',
        '  void pulumi.log.warn("pool p may run short", c);',
        "  return {};",
        "};",
        "",
      ].join("\n"),
    );
    const md = join(dir, "report.md");
    const r = preflight([
      "--stack",
      "local",
      "--quiet",
      "--out",
      join(dir, "out"),
      "--program",
      program,
      "--json",
      "-",
      "--markdown",
      md,
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toContain("warning: [runtime]");
    const report = JSON.parse(r.stdout) as {
      stacks: { plan: { warnings: { message: string; hint: string }[] } }[];
    };
    expect(report.stacks[0]!.plan.warnings).toEqual([
      expect.objectContaining({
        message: "pool p may run short",
        hint: expect.stringContaining("components/inference/stack.ts"),
      }),
    ]);
    expect(readFileSync(md, "utf8")).toContain("| warning | | pool p may run short |");
  }, 120_000);
});

describe("remediation hints", () => {
  const ctx = hintContextFor("prod");
  const deployment =
    "urn:pulumi:prod::ai-delivery-platform::platform:registry:Registry$kubernetes:apps/v1:Deployment::prod-registry-deployment";
  const chart =
    "urn:pulumi:prod::ai-delivery-platform::platform:monitoring:MonitoringStack$kubernetes:helm.sh/v4:Chart::prod-monitoring-otel-collector";

  it("reads a URN's type chain and name, and walks the plan's parents to the component", () => {
    expect(parseUrn(deployment)).toEqual({
      types: ["platform:registry:Registry", "kubernetes:apps/v1:Deployment"],
      name: "prod-registry-deployment",
    });
    expect(ownerComponent(deployment)).toEqual({ type: "platform:registry:Registry", module: "registry" });
    // A rendered object's URN names only its chart: the parents lead to the module.
    const rendered =
      "urn:pulumi:prod::p::kubernetes:helm.sh/v4:Chart$kubernetes:apps/v1:Deployment::c:ns/otel";
    const resources = new Map([
      [rendered, { type: "kubernetes:apps/v1:Deployment", parent: chart }],
      [
        chart,
        {
          type: "kubernetes:helm.sh/v4:Chart",
          parent: "urn:pulumi:prod::p::platform:index:Platform$platform:monitoring:MonitoringStack::m",
        },
      ],
    ]);
    expect(ownerComponent(rendered)).toBeUndefined();
    expect(lineage(rendered, { resources })).toEqual([
      "kubernetes:apps/v1:Deployment",
      "kubernetes:helm.sh/v4:Chart",
      "platform:monitoring:MonitoringStack",
      "platform:index:Platform",
    ]);
    expect(ownerComponent(rendered, { resources })).toEqual({
      type: "platform:monitoring:MonitoringStack",
      module: "monitoring",
    });
  });

  it("every component type of components/ maps to the file declaring it", () => {
    const sources = componentSources();
    expect(sources.get("platform:registry:Registry")).toBe("components/registry/registry.ts");
    expect(sources.get("platform:inference:InferenceService")).toBe("components/inference/service.ts");
    for (const file of sources.values()) expect(readFileSync(join(ROOT, file), "utf8")).toContain("super(");
  });

  it("a policy finding: the module file, or an exemption with a reason in the stack's policy config", () => {
    expect(policyHint({ policy: "image-digest-in-prod", urn: deployment }, ctx)).toBe(
      'fix it in components/registry/registry.ts, or exempt it in policies/config/prod.json ("image-digest-in-prod": {"exemptions": [{"name": "prod-registry-deployment", "reason": "…"}]})',
    );
    // Chart values: the module that sets them.
    expect(policyHint({ policy: "image-digest-in-prod", urn: chart }, ctx)).toMatch(
      /^the chart's values are set in components\/monitoring\/monitoring\.ts, or exempt it in policies\/config\/prod\.json/,
    );
  });

  it("a config finding: the stack file's key; a warning: the module's config and the module", () => {
    expect(configHint("platform:mesh.enabld", ctx)).toBe("edit platform:mesh.enabld in Pulumi.prod.yaml");
    expect(findingHint({ check: "config", urn: "", field: "platform:githubToken" }, ctx)).toBe(
      "edit platform:githubToken in Pulumi.prod.yaml",
    );
    expect(
      warningHint("urn:pulumi:prod::p::platform:index:Platform$platform:inference:InferenceStack::i", ctx),
    ).toBe("adjust platform:inference in Pulumi.prod.yaml (logged by components/inference/stack.ts)");
  });

  it("every finding of every kind has one, in the terminal, the Markdown and plan.json", async () => {
    // A wrong app: a secret in a ConfigMap, a string for replicas, an unpinned image, a warning.
    const r = await runStack("local", {
      program: () => {
        const token = new pulumi.Config("platform").requireSecret("githubToken");
        const provider = new k8s.Provider("p", {});
        const app = new pulumi.ComponentResource("platform:apps:App", "local-app-x", {});
        void pulumi.log.warn("x may run short", app);
        new k8s.core.v1.ConfigMap(
          "x-config",
          { metadata: { name: "x" }, data: { token } },
          { provider, parent: app },
        );
        new k8s.apps.v1.Deployment(
          "x-server",
          {
            metadata: { name: "x" },
            spec: {
              replicas: "3" as unknown as number,
              selector: { matchLabels: { app: "x" } },
              template: {
                metadata: { labels: { app: "x" } },
                spec: { containers: [{ name: "x", image: "x:latest" }] },
              },
            },
          },
          { provider, parent: app },
        );
        return {};
      },
    });
    if (r.kind !== "plan") throw new Error(r.kind);
    const hinted = withHints(r.plan);
    const kinds = {
      violations: hinted.violations,
      schemaErrors: hinted.schemaErrors,
      secretLeaks: hinted.secretLeaks,
      warnings: hinted.warnings,
    };
    for (const [kind, list] of Object.entries(kinds)) expect(list.length, kind).toBeGreaterThan(0);
    for (const f of Object.values(kinds).flat()) expect(f.hint).toContain("components/apps/app.ts");
    for (const v of hinted.violations)
      expect(v.hint).toContain(`exempt it in policies/config/local.json ("${v.policy}"`);
    const all = Object.values(kinds).flat().length + hinted.findings.length;
    const text = problemsText(r.plan);
    expect(text.split("\n").filter((l) => l.startsWith("      fix: ")).length).toBe(all);
    const md = markdown([r.plan]);
    expect(md).toContain("| level | policy / key | message | resource | fix |");
    expect(md.split("\n").filter((l) => /\| [^|]*components\/apps\/app\.ts[^|]* \|$/.test(l)).length).toBe(
      all - r.plan.violations.filter((v) => v.level === "remediate").length,
    );
    const out = mkdtempSync(join(tmpdir(), "hints-"));
    writePlanFiles(out, r.plan);
    const written = JSON.parse(readFileSync(join(out, "local", "plan.json"), "utf8")) as typeof hinted;
    expect(written.secretLeaks[0]!.hint).toBe(hinted.secretLeaks[0]!.hint);
  }, 60_000);

  it("a config error's problems name the stack file, in the terminal and the JSON", () => {
    const dir = scratch({
      broken: "config:\n  platform:environment: qa\n  platform:cluster:\n    kind: existing\n",
    });
    const r = preflight(["--quiet", "--out", join(dir, "out"), "--json", join(dir, "r.json")], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("fix them in Pulumi.broken.yaml");
    const report = JSON.parse(readFileSync(join(dir, "r.json"), "utf8")) as {
      stacks: { problems: { key: string; hint: string }[] }[];
    };
    expect(report.stacks[0]!.problems[0]).toMatchObject({
      key: "platform:environment",
      hint: "edit platform:environment in Pulumi.broken.yaml",
    });
  }, 120_000);
});

describe("YAML syntax errors", () => {
  it("the key path around a line, from indentation: keys, sequence items, compact sequences", () => {
    const text = [
      "config:",
      "  platform:inference:",
      "    services:",
      "      - name: a",
      "        model: x",
      "      - name: b",
      "        # a comment",
      "        gpu:",
      "          pool: p",
      "  platform:apps:",
      "    services:",
      "    - name: web",
      "      port: 3000",
    ].join("\n");
    expect(keyPathAt(text, 5)).toEqual(["config", "platform:inference", "services", "[0]", "model"]);
    expect(keyPathAt(text, 9)).toEqual(["config", "platform:inference", "services", "[1]", "gpu", "pool"]);
    expect(keyPathAt(text, 7)).toEqual(["config", "platform:inference", "services", "[1]", "name"]);
    expect(keyPathAt(text, 13)).toEqual(["config", "platform:apps", "services", "[0]", "port"]);
    expect(keyPathAt(text, 99)).toEqual(["config", "platform:apps", "services", "[0]", "port"]);
    // A key with its value on its line encloses nothing (a tab-indented line below is its sibling);
    // a block scalar's lines are text, not keys.
    expect(keyPathAt("config:\n  a: 1\n\tb: 2\n", 3)).toEqual(["config", "b"]);
    expect(keyPathAt("config:\n  run: |\n    not: a key\n  next: 1\n", 3)).toEqual(["config", "run"]);
    expect(keyPathAt("config:\n  run: |\n    not: a key\n  next: 1\n", 4)).toEqual(["config", "next"]);
  });

  it("the parser's line and column, and its words", () => {
    expect(yamlSyntaxError("config:\n\tplatform:environment: dev\n")).toEqual({
      line: 2,
      column: 1,
      keyPath: ["config", "platform:environment"],
      message: "Tabs are not allowed as indentation",
    });
    const bad = yamlSyntaxError(
      "config:\n  platform:inference:\n    services:\n      - name: a\n        args: [x\n      - name: b\n",
    );
    expect(bad).toMatchObject({
      line: 6,
      column: 7,
      keyPath: ["config", "platform:inference", "services", "[1]", "name"],
    });
    expect(yamlSyntaxError("config:\n  a: 1\n")).toBeUndefined();
  });

  it("a stack file that does not parse: one line with the file, line, column and key path", () => {
    const dir = scratch({
      tabs: "config:\n  platform:environment: local\n  platform:mesh:\n\tenabled: true\n",
    });
    const r = preflight(["--quiet", "--out", join(dir, "out")], dir);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      "tabs: Pulumi.tabs.yaml is not valid YAML at line 4, column 1 (key config.platform:mesh.enabled): Tabs are not allowed as indentation",
    );
    expect(r.stderr).not.toContain(dir);
  }, 120_000);
});

describe("YAML syntax errors, with a credential in the broken file", () => {
  it("still names the lines that hold one, never the value", async () => {
    const token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8";
    const dir = scratch({ leaky: `config:\n  platform:githubToken: ${token}\n\tplatform:mesh: {\n` });
    const error = await runStack("leaky", { dir }).then(
      () => undefined,
      (e: Error) => e.message,
    );
    expect(error).toMatch(
      /^Pulumi\.leaky\.yaml is not valid YAML at line 3, column 1 \(key config\.platform:mesh\): /,
    );
    expect(error).toMatch(/; line 2 \(platform:githubToken\) holds .* in plain text/);
    expect(error).not.toContain(token);
  });
});

describe("policy-config errors: one line naming the file and the field, exit 2", () => {
  const files = (configs: Record<string, string>) => {
    const dir = mkdtempSync(join(tmpdir(), "policy-config-"));
    for (const [name, text] of Object.entries(configs)) writeFileSync(join(dir, name), text);
    return dir;
  };

  it("parsing: JSON errors at their line and column, non-objects, fields the pack refuses", () => {
    expect(
      jsonErrorPosition(
        '{\n  "a": 1,\n  b\n}',
        "Expected double-quoted property name in JSON at position 14",
      ),
    ).toEqual({
      line: 3,
      column: 3,
    });
    expect(() => parsePolicyConfig("c.json", '{\n  "a": 1,\n  b\n}')).toThrow(
      /^c\.json: invalid JSON at line 3, column 3: /,
    );
    expect(() => parsePolicyConfig("c.json", "null")).toThrow(
      "c.json: invalid policy-pack config: expected an object of policy names, got null",
    );
    expect(() =>
      parsePolicyConfig(
        "c.json",
        JSON.stringify({ "k8s-secrets-as-files": { exemptions: [{ name: "x" }] } }),
        policies,
      ),
    ).toThrow(
      'c.json: invalid policy-pack config: k8s-secrets-as-files.exemptions[0]: missing required "reason"',
    );
  });

  it("npm run policy -- check --config: one line, exit 2, for each way a config is wrong", () => {
    const dir = files({
      "no-reason.json": JSON.stringify({ "k8s-secrets-as-files": { exemptions: [{ name: "x" }] } }),
      "syntax.json": '{\n  "image-tag-pinned": "mandatory",\n}\n',
      "null.json": "null",
    });
    const manifests = join(ROOT, "policies", "test", "fixtures", "manifests", "good");
    const cases: [string, RegExp][] = [
      [
        "no-reason.json",
        /no-reason\.json: invalid policy-pack config: k8s-secrets-as-files\.exemptions\[0\]: missing required "reason"$/,
      ],
      ["syntax.json", /syntax\.json: invalid JSON at line 3, column 1: /],
      ["null.json", /null\.json: invalid policy-pack config: expected an object of policy names, got null$/],
    ];
    for (const [file, message] of cases) {
      const r = run("policy.ts", ["check", "--config", join(dir, file), manifests]);
      expect({ file, code: r.code }).toEqual({ file, code: 2 });
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr.trim()).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  }, 120_000);

  it("the preflight reading policies/config/<stack>.json: the file and the field, exit 2, no stack trace", () => {
    const dir = scratch({ local: readFileSync(join(ROOT, "Pulumi.local.yaml"), "utf8") });
    const config = JSON.parse(readFileSync(join(dir, "policies", "config", "local.json"), "utf8")) as Record<
      string,
      unknown
    >;
    writeFileSync(
      join(dir, "policies", "config", "local.json"),
      JSON.stringify({
        ...config,
        "k8s-secrets-as-files": { enforcementLevel: "advisory", exemptions: [{ name: "web" }] },
      }),
    );
    const r = preflight(["--quiet", "--out", join(dir, "out")], dir);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      'local: policies/config/local.json: invalid policy-pack config: k8s-secrets-as-files.exemptions[0]: missing required "reason"',
    );
    writeFileSync(join(dir, "policies", "config", "local.json"), "{ nope");
    const syntax = preflight(["--quiet", "--out", join(dir, "out")], dir);
    expect(syntax.code).toBe(2);
    expect(syntax.stderr.trim()).toMatch(
      /^local: policies\/config\/local\.json: invalid JSON at line 1, column 3: /,
    );
  }, 120_000);
});

describe("manifests named by URN", () => {
  it("a stable, filesystem-safe name from type and name, kept apart by the URN's hash", () => {
    const a = "urn:pulumi:dev::p::platform:apps:App$kubernetes:apps/v1:Deployment::web";
    const b = "urn:pulumi:dev::p::platform:inference:InferenceService$kubernetes:apps/v1:Deployment::web";
    const name = manifestFileName(a, "kubernetes:apps/v1:Deployment", "web");
    expect(name).toMatch(/^deployment\.apps_web_[0-9a-f]{8}\.yaml$/);
    expect(manifestFileName(a, "kubernetes:apps/v1:Deployment", "web")).toBe(name);
    expect(manifestFileName(b, "kubernetes:apps/v1:Deployment", "web")).not.toBe(name);
    expect(manifestFileName("u", "kubernetes:core/v1:Secret", "chart:ns/Weird Name")).toMatch(
      /^secret_chart-ns-weird-name_[0-9a-f]{8}\.yaml$/,
    );
  });

  it("a run's manifests are one file per Kubernetes object, none lost to a collision", async () => {
    const r = await runStack("local", {
      policies: [],
      policyConfig: {},
      program: () => {
        const provider = new k8s.Provider("p", {});
        const parent = new pulumi.ComponentResource("platform:apps:App", "a", {});
        const other = new pulumi.ComponentResource("platform:inference:InferenceService", "b", {});
        for (const p of [parent, other])
          new k8s.core.v1.ConfigMap("same", { metadata: { name: "same" } }, { provider, parent: p });
        return {};
      },
    });
    if (r.kind !== "plan") throw new Error(r.kind);
    const out = mkdtempSync(join(tmpdir(), "manifests-"));
    writePlanFiles(out, r.plan);
    expect(
      readdirSync(join(out, "local", "manifests")).filter((f) => f.startsWith("configmap_same_")),
    ).toHaveLength(2);
  });
});
