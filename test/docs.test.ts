/**
 * The README and docs/ stay short, linked and true: a size budget, every relative link and anchor
 * resolves, the generated config reference is fresh, and the how-tos' snippets are run against the
 * schema, the preflight and the policy pack.
 */
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import type { PolicyPackConfig } from "@pulumi/policy";
// ajv and ajv-formats are in node_modules for @kubernetes-models/validate and fastify; the test
// checks the generated schema with them as a YAML editor's validator would.
import Ajv from "ajv";
import addFormats from "ajv-formats";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { preflightStack } from "./harness";
import {
  ConfigError,
  ENVIRONMENTS,
  parsePlatformConfig,
  platformSchema,
  SECRET_KEY_NAMES,
  SECRET_KEYS,
} from "../components/config";
import { validatePackConfig } from "../policies/lib/config";
import { policies } from "../policies/rules";
import { main, REFERENCE_FILE, renderReference, slug, USAGE } from "../tools/config-docs";
import { listStacks, loadStackConfig } from "../tools/preflight/stack-config";
import { renderSchema, SCHEMA_FILE, SCHEMA_MODELINE, stackFileSchema } from "../tools/stack-schema";

const ROOT = process.cwd();
const README_BUDGET = 20 * 1024;
const read = (file: string) => readFileSync(join(ROOT, file), "utf8");
const readme = read("README.md");
const DOCS = [
  "README.md",
  ...readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];

/** Markdown without fenced code blocks and inline code, where links are not links. */
function prose(md: string): string {
  return md.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "").replace(/`[^`\n]*`/g, "");
}

/** Anchors GitHub gives a file's headings (`-1`, `-2` for repeats). */
function anchors(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of md
    .replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "")
    .matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
    const text = m[1]!.replace(/\[([^\]]*)\]\([^)]*\)/g, "$1").replace(/[`*]/g, "");
    const base = slug(text);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Every relative link of a Markdown file that does not resolve, as `file: target (why)`. */
function brokenLinks(file: string, root = ROOT): string[] {
  const md = readFileSync(join(root, file), "utf8");
  const out: string[] = [];
  for (const m of prose(md).matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
    const target = m[1]!;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
    const [path = "", anchor] = target.split("#", 2);
    const abs = path ? resolve(dirname(join(root, file)), decodeURIComponent(path)) : join(root, file);
    if (relative(root, abs).startsWith("..")) out.push(`${file}: ${target} (outside the repository)`);
    else if (!existsSync(abs)) out.push(`${file}: ${target} (no ${relative(root, abs)})`);
    else if (anchor !== undefined && abs.endsWith(".md") && !anchors(readFileSync(abs, "utf8")).has(anchor))
      out.push(`${file}: ${target} (no heading #${anchor} in ${relative(root, abs)})`);
    else if (anchor !== undefined && statSync(abs).isDirectory())
      out.push(`${file}: ${target} (an anchor into a directory)`);
  }
  return out;
}

/** The fenced code blocks of one `### heading` section of the README, by language. */
function snippets(section: string, lang: string): string[] {
  const start = readme.indexOf(`### ${section}\n`);
  if (start < 0) throw new Error(`README has no section "${section}"`);
  const end = readme.slice(start + 4).search(/^#{2,3} /m);
  const body = end < 0 ? readme.slice(start) : readme.slice(start, start + 4 + end);
  return [...body.matchAll(new RegExp("^```" + lang + "\\n([\\s\\S]*?)^```$", "gm"))].map((m) => m[1]!);
}

describe("README", () => {
  it(`stays within ${README_BUDGET / 1024} KB`, () => {
    expect(Buffer.byteLength(readme)).toBeLessThanOrEqual(README_BUDGET);
  });

  it("lists every section in its table of contents", () => {
    const contents = readme.slice(
      readme.indexOf("## Contents"),
      readme.indexOf("\n## ", readme.indexOf("## Contents") + 1),
    );
    for (const m of readme.matchAll(/^#{2,3} (.+)$/gm))
      if (m[1] !== "Contents") expect(contents, m[1]).toContain(`](#${slug(m[1]!.replace(/`/g, ""))})`);
  });

  it("gives exactly the two quick-start commands, and they are what CI runs", () => {
    expect(readme).toContain("npm ci && npm run preflight");
    expect(readme).toContain("npm ci && npm test");
    const scripts = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts;
    expect(scripts["test"]).toBeDefined();
    expect(scripts["preflight"]).toBeDefined();
    expect(read(".ci/run")).toMatch(/^npm ci && npm test$/m);
    expect(read(".github/workflows/ci.yml")).toContain("run: npm ci && npm test");
    expect(read(".github/workflows/ci.yml")).toContain("npm run preflight");
    expect(scripts["test"]).toMatch(/^tsx tools\/test-deps\.ts && /);
  });

  it("names, for every secret, exactly the committed stacks that need it", () => {
    const lines = snippets("Set or rotate a secret", "sh").join("\n").split("\n");
    const stacks = listStacks(ROOT);
    const documented = new Map<string, string[]>();
    for (const line of lines) {
      const m = /--secret platform:(\w+)\b.*#\s*(.*)$/.exec(line);
      if (m)
        documented.set(
          m[1]!,
          stacks.filter((s) => new RegExp(`\\b${s}\\b`).test(m[2]!)),
        );
    }
    expect([...documented.keys()].sort()).toEqual([...SECRET_KEY_NAMES].sort());
    for (const key of SECRET_KEY_NAMES) {
      const needed = stacks.filter((stack) => {
        const sc = loadStackConfig(ROOT, stack);
        return SECRET_KEYS[key].requiredWhen(parsePlatformConfig(sc.config, new Set(SECRET_KEY_NAMES)));
      });
      expect(documented.get(key), key).toEqual(needed);
    }
  });

  it("add a model: the snippet passes the config check and the preflight of local", async () => {
    const [snippet] = snippets("Add a model", "yaml");
    const added = parse(snippet!) as { name: string }[];
    const stackFile = parse(read("Pulumi.local.yaml")) as { config: Record<string, { services: unknown[] }> };
    const inference = stackFile.config["platform:inference"]!;
    const result = await preflightStack("local", {
      overrides: { "platform:inference": { ...inference, services: [...inference.services, ...added] } },
    });
    if (result.kind !== "plan") throw new Error(JSON.stringify(result.problems));
    const { summary, resources } = result.plan;
    expect({
      mandatory: summary.mandatory,
      schemaErrors: summary.schemaErrors,
      secretLeaks: summary.secretLeaks,
    }).toEqual({
      mandatory: 0,
      schemaErrors: 0,
      secretLeaks: 0,
    });
    for (const { name } of added)
      expect(
        resources.some((r) => r.type === "kubernetes:apps/v1:Deployment" && r.name.includes(name)),
        name,
      ).toBe(true);
  });

  it("deploy your own service: the entry passes the config check and the preflight of local", async () => {
    const [snippet] = snippets("Deploy your own service", "yaml");
    const { services } = parse(snippet!) as { services: Record<string, unknown>[] };
    const stackFile = parse(read("Pulumi.local.yaml")) as {
      config: Record<string, { services?: unknown[] }>;
    };
    const apps = stackFile.config["platform:apps"] ?? {};
    // The team's service has no Dockerfile in this repository: a fixture's stands in for it.
    const added = services.map((a) => ({ ...a, context: "test/fixtures/service" }));
    const result = await preflightStack("local", {
      overrides: { "platform:apps": { ...apps, services: [...(apps.services ?? []), ...added] } },
    });
    if (result.kind !== "plan") throw new Error(JSON.stringify(result.problems));
    const { summary, resources } = result.plan;
    expect({
      mandatory: summary.mandatory,
      schemaErrors: summary.schemaErrors,
      secretLeaks: summary.secretLeaks,
    }).toEqual({ mandatory: 0, schemaErrors: 0, secretLeaks: 0 });
    for (const { name } of services as { name: string }[])
      for (const type of [
        "kubernetes:apps/v1:Deployment",
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "kubernetes:networking.istio.io/v1beta1:VirtualService",
        "command:local:Command",
      ])
        expect(
          resources.some((r) => r.type === type && r.name.includes(`app-${name}`)),
          `${type} of ${name}`,
        ).toBe(true);
  });

  it("add an environment: a copy of the stack of the same tier, and of its policy config, pass their checks", () => {
    const dir = mkdtempSync(join(tmpdir(), "add-environment-"));
    writeFileSync(join(dir, "Pulumi.yaml"), read("Pulumi.yaml"));
    writeFileSync(join(dir, "Pulumi.qa.yaml"), read("Pulumi.staging.yaml"));
    const sc = loadStackConfig(dir, "qa");
    expect(parsePlatformConfig(sc.config, new Set(SECRET_KEY_NAMES)).environment).toBe("staging");
    const policyConfig = JSON.parse(read("policies/config/staging.json")) as PolicyPackConfig;
    expect(validatePackConfig(policies, policyConfig)).toEqual([]);
  });

  it("deploy for real: the stack and files its commands name exist, the policy config is the stack's", () => {
    const body = snippets("Deploy for real", "sh").join("\n");
    const stack = /pulumi stack select (\S+)/.exec(body)?.[1];
    expect(listStacks(ROOT)).toContain(stack);
    const packs = [...body.matchAll(/--policy-pack (\S+)/g)].map((m) => m[1]!);
    const configs = [...body.matchAll(/--policy-pack-config (\S+)/g)].map((m) => m[1]!);
    expect(packs.length).toBeGreaterThan(0);
    expect(configs).toHaveLength(packs.length);
    for (const pack of packs) expect(existsSync(join(ROOT, pack, "PulumiPolicy.yaml")), pack).toBe(true);
    for (const config of configs) {
      expect(config).toBe(`policies/config/${stack}.json`);
      expect(validatePackConfig(policies, JSON.parse(read(config)) as PolicyPackConfig)).toEqual([]);
    }
    // The prerequisites it names, and the bootstrap order it points to.
    const section = readme.slice(readme.indexOf("### Deploy for real"), readme.indexOf("### Set or rotate"));
    for (const needed of ["Pulumi Cloud", "Docker engine", "docker buildx create --use", "network path"])
      expect(section, needed).toContain(needed);
    expect(section).toContain("](docs/deploying.md)");
  });

  it("read a preflight report: the command it gives runs offline and writes what it says", () => {
    const dir = mkdtempSync(join(tmpdir(), "read-report-"));
    const r = spawnSync(
      join(ROOT, "node_modules", ".bin", "tsx"),
      [
        join(ROOT, "tools", "preflight.ts"),
        "--stack",
        "local",
        "--out",
        join(dir, "out"),
        "--markdown",
        join(dir, "report.md"),
        "--json",
        join(dir, "report.json"),
      ],
      { cwd: ROOT, encoding: "utf8", timeout: 120_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const section = readme.slice(readme.indexOf("### Read a preflight report"), readme.indexOf("### Exempt"));
    for (const option of ["--markdown FILE", "--json FILE", "--charts DIR|pull"])
      expect(section, option).toContain(option);
    // The component tree, one `[level] ...: message` line per finding with the resource's URN, a summary line.
    expect(r.stdout).toMatch(/^ +platform:index:Platform local \(\d+ resources\)$/m);
    expect(r.stdout).toMatch(/^ {2}\[[a-z ]+\] .+\n {6}at urn:pulumi:local::/m);
    expect(r.stdout).toMatch(/^local: \d+ resources in \d+ components; .* 0 mandatory/m);
    expect(readFileSync(join(dir, "report.md"), "utf8")).toMatch(/^# Preflight\n[\s\S]*\| local \| \d+ \|/);
    const json = JSON.parse(readFileSync(join(dir, "report.json"), "utf8")) as {
      stacks: { stack: string }[];
    };
    expect(json.stacks.map((s) => s.stack)).toEqual(["local"]);
    expect(existsSync(join(dir, "out", "local", "plan.json"))).toBe(true);
  });

  it("add an environment: staging is a tier the schema accepts, and the files the steps name exist", () => {
    expect(readme).toContain("`platform:environment` is the tier (`local`, `dev`, `staging` or `prod`)");
    expect([...ENVIRONMENTS]).toEqual(["local", "dev", "staging", "prod"]);
    for (const env of ENVIRONMENTS) {
      const sc = loadStackConfig(ROOT, "local", { "platform:environment": env });
      const problems = (() => {
        try {
          parsePlatformConfig(sc.config, new Set(SECRET_KEY_NAMES));
          return [];
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          return e.problems;
        }
      })();
      expect(
        problems.map((p) => p.key),
        env,
      ).not.toContain("platform:environment");
    }
    for (const file of [
      "components/delivery/pipeline.ts",
      "policies/test/pack.test.ts",
      ".github/workflows/deploy.yml",
      "test/workflows.test.ts",
    ])
      expect(existsSync(join(ROOT, file)), file).toBe(true);
  });

  it("exempt a policy: the snippet is a valid exemption, and one without a reason is refused", () => {
    const [snippet] = snippets("Exempt a policy with a reason", "json");
    const add = JSON.parse(snippet!) as Record<string, { exemptions: Record<string, string>[] }>;
    const base = JSON.parse(read("policies/config/dev.json")) as Record<string, unknown>;
    const merged = (exemptions: (e: Record<string, string>) => Record<string, string>) => {
      const config: Record<string, unknown> = { ...base };
      for (const [policy, entry] of Object.entries(add)) {
        const current = config[policy];
        const obj = typeof current === "object" && current ? (current as { exemptions?: unknown[] }) : {};
        config[policy] = {
          ...obj,
          exemptions: [...(obj.exemptions ?? []), ...entry.exemptions.map(exemptions)],
        };
      }
      return config as PolicyPackConfig;
    };
    expect(
      validatePackConfig(
        policies,
        merged((e) => e),
      ),
    ).toEqual([]);
    expect(
      validatePackConfig(
        policies,
        merged(({ reason: _, ...rest }) => rest),
      ),
    ).not.toEqual([]);
  });
});

describe("docs", () => {
  it.each(DOCS)("%s: every relative link and anchor resolves", (file) => {
    expect(brokenLinks(file)).toEqual([]);
  });

  it("the link check is live: a missing file and a missing anchor are caught", () => {
    const root = mkdtempSync(join(tmpdir(), "docs-links-"));
    mkdirSync(join(root, "docs"));
    writeFileSync(join(root, "README.md"), "# Title\n\n## Quick start\n\n## Quick start\n");
    writeFileSync(
      join(root, "docs", "page.md"),
      "# Page\n\n[a](nope.md) [b](#nowhere) [c](#page) [d](../README.md#quick-start-1) [e](../README.md#usage)\n" +
        "[f](../../elsewhere.md) `[g](in-code.md)`\n",
    );
    expect(brokenLinks("docs/page.md", root)).toEqual([
      "docs/page.md: nope.md (no docs/nope.md)",
      "docs/page.md: #nowhere (no heading #nowhere in docs/page.md)",
      "docs/page.md: ../README.md#usage (no heading #usage in README.md)",
      "docs/page.md: ../../elsewhere.md (outside the repository)",
    ]);
  });

  it(`${REFERENCE_FILE} is the reference generated from the current schema`, async () => {
    expect(await renderReference()).toBe(read(REFERENCE_FILE));
  });

  it(`${SCHEMA_FILE} is the schema generated from the current zod schema`, async () => {
    expect(await renderSchema()).toBe(read(SCHEMA_FILE));
  });

  it(`${REFERENCE_FILE} documents every top-level and secret key`, () => {
    const reference = read(REFERENCE_FILE);
    for (const key of [...Object.keys(platformSchema.shape), ...Object.keys(SECRET_KEYS)])
      expect(reference).toContain(`\`platform:${key}\``);
  });
});

describe("the stack file JSON Schema", () => {
  const ajv = new Ajv({ allErrors: true });
  addFormats(ajv);
  const validate = ajv.compile(stackFileSchema());
  const errorsOf = (doc: unknown) =>
    validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ""}`);
  const stackFile = (stack: string) =>
    parse(read(`Pulumi.${stack}.yaml`)) as { config: Record<string, Record<string, unknown>> };

  it.each(listStacks(ROOT))("Pulumi.%s.yaml starts with the editor's schema line and is valid", (stack) => {
    expect(read(`Pulumi.${stack}.yaml`).split("\n")[0]).toBe(SCHEMA_MODELINE);
    expect(errorsOf(stackFile(stack))).toEqual([]);
  });

  it("refuses what the config check refuses: a typo'd namespace, a bad address, a plain-text secret", () => {
    const dev = stackFile("dev");
    dev.config["platfrom:mesh"] = {};
    (dev.config["platform:cluster"]!["servers"] as { address: string }[])[0]!.address = "10.20.0.300";
    dev.config["platform:githubToken"] = "ghp_plain" as never;
    const errors = errorsOf(dev);
    expect(errors).toContain("/config must NOT have additional properties");
    expect(errors).toContain('/config/platform:cluster/servers/0/address must match format "ipv4"');
    expect(errors).toContain("/config/platform:githubToken must be object");
    const local = stackFile("local");
    local.config["platform:mesh"] = { enabld: true };
    expect(errorsOf(local)).toContain("/config/platform:mesh must NOT have additional properties");
  });

  it("requires the keys without a default, unless an ESC environment may supply them", () => {
    expect(errorsOf({})).toContain(" must have required property 'config'");
    expect(errorsOf({ config: { "platform:environment": "local" } })).toContain(
      "/config must have required property 'platform:cluster'",
    );
    expect(errorsOf({ environment: ["my-project/dev"] })).toEqual([]);
    expect(errorsOf({ environment: "my-project/dev" })).toContain("/environment must be array");
  });

  it("allows the providers' settings, apps: secrets and Pulumi's values as `pulumi new` stores them", () => {
    const template = (
      parse(read("Pulumi.yaml")) as { template: { config: Record<string, { default: string }> } }
    ).template.config;
    const config = Object.fromEntries(Object.entries(template).map(([k, v]) => [k, v.default]));
    expect(
      errorsOf({
        config: {
          ...config,
          "kubernetes:context": "k3d-platform",
          "pulumi:tags": { team: "platform" },
          "apps:api-token": { secure: "v1:abc" },
        },
      }),
    ).toEqual([]);
    expect(errorsOf({ config: { ...config, "apps:api-token": "plain" } })).toContain(
      "/config/apps:api-token must be object",
    );
  });
});

describe("npm run config-docs", () => {
  /** A scratch repository root with a stale reference (and no schema yet). */
  function scratch(): { root: string; file: string } {
    const root = mkdtempSync(join(tmpdir(), "config-docs-"));
    mkdirSync(join(root, "docs"));
    const file = join(root, REFERENCE_FILE);
    writeFileSync(file, "stale\n");
    return { root, file };
  }
  const run = async (argv: string[], root: string) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(argv, { root, out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, out: out.join("\n"), err: err.join("\n") };
  };

  it("--help prints the usage, exits 0 and writes nothing", async () => {
    const { root, file } = scratch();
    for (const flag of ["--help", "-h"]) {
      const r = await run([flag], root);
      expect(r).toEqual({ code: 0, out: USAGE, err: "" });
    }
    expect(await run(["--check", "--help"], root)).toMatchObject({ code: 0 });
    expect(readFileSync(file, "utf8")).toBe("stale\n");
  });

  it("an unknown flag is a usage error naming it (exit 2), and nothing is written", async () => {
    const { root, file } = scratch();
    const r = await run(["--chek"], root);
    expect(r.code).toBe(2);
    expect(r.err.split("\n")[0]).toBe("config-docs: unknown option --chek");
    expect((await run(["extra"], root)).code).toBe(2);
    expect(readFileSync(file, "utf8")).toBe("stale\n");
  });

  it("--check fails on a stale file without writing; a plain run writes it, then --check passes", async () => {
    const { root, file } = scratch();
    const stale = await run(["--check"], root);
    expect(stale.code).toBe(1);
    expect(stale.err).toContain(`${REFERENCE_FILE} is stale`);
    expect(stale.err).toContain(`${SCHEMA_FILE} is missing`);
    expect(readFileSync(file, "utf8")).toBe("stale\n");
    expect(existsSync(join(root, SCHEMA_FILE))).toBe(false);
    expect((await run([], root)).code).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(read(REFERENCE_FILE));
    expect(readFileSync(join(root, SCHEMA_FILE), "utf8")).toBe(read(SCHEMA_FILE));
    expect((await run(["--check"], root)).code).toBe(0);
    writeFileSync(join(root, SCHEMA_FILE), "{}\n");
    const schemaStale = await run(["--check"], root);
    expect(schemaStale).toMatchObject({
      code: 1,
      err: `config-docs: ${SCHEMA_FILE} is stale: run \`npm run config-docs\``,
    });
  });

  it("the CLI exits with those codes", () => {
    const cli = (args: string[]) =>
      spawnSync(join(ROOT, "node_modules", ".bin", "tsx"), [join(ROOT, "tools", "config-docs.ts"), ...args], {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 60_000,
      });
    const help = cli(["--help"]);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain("usage: npm run config-docs");
    const bad = cli(["--nope"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("unknown option --nope");
  });
});
