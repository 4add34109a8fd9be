import { preflightCli } from "./fixtures/helpers";
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { preflightStack } from "./harness";
import leakyProgram from "./fixtures/leaky-program";
import { base64Cores } from "../tools/preflight/hunt";
import { markdown } from "../tools/preflight/report";
import { failed, type Plan } from "../tools/preflight/run";

const ROOT = process.cwd();

const cli = (args: string[], cwd = ROOT) => preflightCli(args, { cwd });

async function plan(program: () => object, overrides: Record<string, unknown> = {}): Promise<Plan> {
  const result = await preflightStack("local", { program, overrides, policies: [], policyConfig: {} });
  if (result.kind !== "plan") throw new Error("unexpected config error");
  return result.plan;
}

describe("canary hunt", () => {
  it("reports a stack secret planted in a ConfigMap with key, resource and field path", async () => {
    const p = await plan(() => {
      const token = new pulumi.Config("platform").requireSecret("githubToken");
      const provider = new k8s.Provider("p", {});
      new k8s.core.v1.ConfigMap("leaky", { metadata: { name: "leaky" }, data: { token } }, { provider });
      return {};
    });
    expect(p.secretLeaks).toEqual([
      {
        key: "platform:githubToken",
        urn: expect.stringContaining("ConfigMap::leaky"),
        path: "inputs.data.token",
      },
    ]);
    expect(failed(p)).toBe(true);
  });

  it("accepts the same secret in a Kubernetes Secret", async () => {
    const p = await plan(() => {
      const token = new pulumi.Config("platform").requireSecret("githubToken");
      const provider = new k8s.Provider("p", {});
      new k8s.core.v1.Secret("ok", { metadata: { name: "ok" }, stringData: { token } }, { provider });
      return { stillSecret: token };
    });
    expect(p.secretLeaks).toEqual([]);
  });

  it("reports a secret in a plain env literal and in a plain stack output", async () => {
    const p = await plan(() => {
      const token = new pulumi.Config("platform").requireSecret("vercelApiToken");
      const provider = new k8s.Provider("p", {});
      new k8s.core.v1.Pod(
        "envy",
        {
          spec: {
            containers: [{ name: "c", image: "busybox:1.36", env: [{ name: "TOKEN", value: token }] }],
          },
        },
        { provider },
      );
      return { leaked: pulumi.unsecret(token) };
    });
    expect(p.secretLeaks.map((l) => l.path).sort()).toEqual([
      "inputs.spec.containers[0].env[0].value",
      "outputs.leaked",
    ]);
  });

  it("follows generated credentials too", async () => {
    const { RandomPassword } = await import("@pulumi/random");
    const p = await plan(() => {
      const pw = new RandomPassword("grafana-admin", { length: 24 });
      const provider = new k8s.Provider("p", {});
      new k8s.core.v1.ConfigMap("cm", { data: { password: pw.result } }, { provider });
      return {};
    });
    expect(p.secretLeaks).toEqual([
      expect.objectContaining({ key: "generated:grafana-admin", path: "inputs.data.password" }),
    ]);
  });
});

describe("schema validation", () => {
  it("reports a string where the schema wants an integer", async () => {
    // The same wrong program the CLI test runs: a Deployment with replicas "3".
    const p = await plan(leakyProgram);
    expect(p.schemaErrors).toHaveLength(1);
    expect(p.schemaErrors[0]!.message).toMatch(/replicas must be integer/);
    expect(p.schemaErrors[0]!.urn).toContain("Deployment::bad");
  });

  it("validates Istio custom resources against their CRD schema", async () => {
    const p = await plan(() => {
      const provider = new k8s.Provider("p", {});
      new k8s.apiextensions.CustomResource(
        "pa",
        {
          apiVersion: "security.istio.io/v1",
          kind: "PeerAuthentication",
          metadata: { name: "default" },
          spec: { mtls: { mode: "STRIKT" } },
        },
        { provider },
      );
      return {};
    });
    expect(p.schemaErrors).toHaveLength(1);
  });
});

describe("the Markdown report", () => {
  it("lists what a real deployment would refuse, beside the policy findings, and counts it", () => {
    const urn = "urn:pulumi:dev::p::kubernetes:apps/v1:Deployment::api";
    const plan = {
      stack: "dev",
      resources: [],
      violations: [],
      schemaErrors: [],
      secretLeaks: [],
      findings: [
        {
          check: "admission",
          severity: "error",
          urn,
          field: "spec.template.spec.containers[api].securityContext",
          message: "restricted rejects container api: allowPrivilegeEscalation != false",
        },
        { check: "render", severity: "warning", urn, message: "hook Job x (pre-install) is dropped" },
      ],
      summary: {
        resources: 1,
        components: 0,
        mandatory: 0,
        advisory: 0,
        remediate: 0,
        schemaErrors: 0,
        secretLeaks: 0,
        unvalidatedKinds: [],
        charts: { total: 2, rendered: 1, notRendered: 1, objects: 3 },
        fidelityErrors: 1,
        fidelityWarnings: 1,
        ms: 1,
      },
    } as unknown as Plan;
    const md = markdown([plan]);
    expect(md).toContain("| dev | 1 | 0 | 1 of 2 | 0 | 0 | 0 | 0 | 1 | 1 |");
    expect(md).toContain(
      "| admission | `spec.template.spec.containers[api].securityContext` | restricted rejects container api",
    );
    expect(md).toContain("| render warning |  | hook Job x (pre-install) is dropped | `api` |");
    expect(md).not.toContain("No findings.");
  });
});

describe("preflight CLI", () => {
  it("evaluates the local stack, exit 0, and writes plan.json in the documented shape", () => {
    const out = mkdtempSync(join(tmpdir(), "preflight-"));
    const r = cli(["--stack", "local", "--out", out, "--markdown", join(out, "report.md")]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /local: \d+ resources in \d+ components; \d+ charts not rendered \(no --charts\); 0 mandatory/,
    );
    const plan = JSON.parse(readFileSync(join(out, "local", "plan.json"), "utf8")) as Plan;
    expect(Object.keys(plan).sort()).toEqual([
      "findings",
      "resources",
      "schemaErrors",
      "secretLeaks",
      "stack",
      "summary",
      "violations",
      "warnings",
    ]);
    expect(plan.resources[0]).toEqual(
      expect.objectContaining({
        urn: expect.any(String),
        type: "pulumi:pulumi:Stack",
        custom: false,
        protect: false,
      }),
    );
    expect(plan.summary).toEqual(expect.objectContaining({ mandatory: 0, schemaErrors: 0, secretLeaks: 0 }));
    expect(readFileSync(join(out, "report.md"), "utf8")).toContain("```mermaid");
  });

  it("exits 1 and names the leak and the schema error for a wrong program", () => {
    const out = mkdtempSync(join(tmpdir(), "preflight-"));
    const r = cli([
      "--stack",
      "local",
      "--out",
      out,
      "--program",
      "test/fixtures/leaky-program.ts",
      "--quiet",
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/\[leak\] platform:githubToken found at inputs\.data\.token/);
    expect(r.stdout).toMatch(/\[schema\] apps\/v1 Deployment: .*replicas must be integer/);
  });

  it("exits 2 naming the file when a stack has no policy config, instead of running the pack on defaults", () => {
    const dir = mkdtempSync(join(tmpdir(), "preflight-"));
    copyFileSync(join(ROOT, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
    writeFileSync(
      join(dir, "Pulumi.laptop.yaml"),
      "config:\n  platform:environment: local\n  platform:cluster:\n    kind: existing\n" +
        "  platform:inference:\n    gateway:\n      enabled: false\n",
    );
    const r = cli(["--quiet", "--out", join(dir, "out")], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no policy config for stack "laptop": policies/config/laptop.json is missing');
    expect(r.stdout).not.toMatch(/mandatory/);
  });

  it("puts every requested stack in every report with its status, one JSON shape, on stdout with -", () => {
    const dir = mkdtempSync(join(tmpdir(), "preflight-"));
    copyFileSync(join(ROOT, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
    copyFileSync(join(ROOT, "Pulumi.local.yaml"), join(dir, "Pulumi.good.yaml"));
    // The stack's images build from web/ and services/ (paths are the stack directory's).
    symlinkSync(join(ROOT, "web"), join(dir, "web"));
    symlinkSync(join(ROOT, "services"), join(dir, "services"));
    mkdirSync(join(dir, "policies", "config"), { recursive: true });
    copyFileSync(
      join(ROOT, "policies", "config", "local.json"),
      join(dir, "policies", "config", "good.json"),
    );
    writeFileSync(join(dir, "Pulumi.typo.yaml"), "config:\n  platform:environment: qa\n");
    writeFileSync(join(dir, "Pulumi.tabs.yaml"), "config:\n\tplatform:environment: dev\n");
    const md = join(dir, "report.md");
    const r = cli(["--quiet", "--out", join(dir, "out"), "--json", "-", "--markdown", md], dir);
    expect(r.code).toBe(2);
    const report = JSON.parse(r.stdout) as { stacks: { stack: string; status: string }[] };
    expect(report.stacks.map((s) => [s.stack, s.status])).toEqual([
      ["good", "ok"],
      ["tabs", "error"],
      ["typo", "config-error"],
    ]);
    // The per-stack text moved to stderr, beside the errors.
    expect(r.stderr).toMatch(/good: \d+ resources/);
    expect(r.stderr).toMatch(/tabs: .*not valid YAML/);
    const text = readFileSync(md, "utf8");
    expect(text).toMatch(/\| good \| \d+ \|/);
    expect(text).toContain("## tabs: not evaluated");
    expect(text).toContain("## typo: config error");
    expect(text).toMatch(/- platform:environment: /);
  });

  it("exits 2 on bad config, listing every problem by key path", () => {
    const dir = mkdtempSync(join(tmpdir(), "preflight-"));
    copyFileSync(join(ROOT, "Pulumi.yaml"), join(dir, "Pulumi.yaml"));
    writeFileSync(
      join(dir, "Pulumi.broken.yaml"),
      "config:\n  platform:environment: qa\n  platform:cluster:\n    kind: existing\n  platform:mesh:\n    enabld: true\n",
    );
    const r = cli(["--out", join(dir, "out")], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("platform:environment");
    expect(r.stderr).toContain("platform:mesh.enabld");
    expect(r.stderr).toContain("0 resources registered");
  });

  it("exits 2 with one line for an unknown stack", () => {
    const r = cli(["--stack", "nope"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain('unknown stack "nope"');
  });
});

describe("canary hunt, encoded", () => {
  it("finds a secret base64-encoded at any offset inside a ConfigMap, and not in a Secret", async () => {
    const p = await plan(() => {
      const token = new pulumi.Config("platform").requireSecret("githubToken");
      const provider = new k8s.Provider("p", {});
      const encoded = pulumi
        .unsecret(token)
        .apply((t) => Buffer.from(`Authorization: Bearer ${t}`).toString("base64"));
      new k8s.core.v1.ConfigMap("encoded", { binaryData: { auth: encoded } }, { provider });
      new k8s.core.v1.Secret("fine", { data: { auth: pulumi.secret(encoded) } }, { provider });
      return {};
    });
    expect(p.secretLeaks).toEqual([
      {
        key: "platform:githubToken",
        urn: expect.stringContaining("ConfigMap::encoded"),
        path: "inputs.binaryData.auth (base64)",
      },
    ]);
    // Every alignment of the canary leaves a core that any surrounding bytes keep intact.
    for (const prefix of ["", "a", "ab", "abc"]) {
      const text = Buffer.from(`${prefix}pfcanary-x-0123456789abcdef01234567-tail`).toString("base64");
      expect(base64Cores("pfcanary-x-0123456789abcdef01234567").some((core) => text.includes(core))).toBe(
        true,
      );
    }
  });
});
