// The persistent render cache: a second run renders only what changed, and no entry can stand in
// for a render with other inputs. Also the two per-object economies render mode leans on: secret
// unwrapping that copies only what it changes, and remembered verdicts on long strings.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import chartProgram from "./fixtures/chart-program";
import { detectInString, DEFAULT_ENTROPY, scanForSecrets } from "../policies/lib/secrets";
import { ChartSource } from "../tools/preflight/charts";
import { runHelm } from "../tools/preflight/helm";
import { countingHelm } from "./fixtures/helpers";
import { unwrapSecrets, redactSecrets, wrapSecret } from "../tools/preflight/recorder";
import { RenderSession, type HelmRunner } from "../tools/preflight/render";
import { chartFingerprint, RenderCache, renderKey } from "../tools/preflight/render-cache";
import { runStack } from "../tools/preflight/run";

const FIXTURES = join(process.cwd(), "test", "fixtures", "charts");
const tmp = () => mkdtempSync(join(tmpdir(), "render-cache-test-"));

async function renderWith(session: RenderSession, source: ChartSource, broken = false) {
  process.env["FIXTURE_CHART"] = "monitor-port";
  process.env["FIXTURE_BROKEN"] = broken ? "1" : "0";
  delete process.env["FIXTURE_VALUES"];
  try {
    const result = await runStack("local", {
      program: chartProgram,
      charts: source,
      session,
      policies: [],
      policyConfig: {},
    });
    if (result.kind !== "plan") throw new Error("unexpected config error");
    return result;
  } finally {
    delete process.env["FIXTURE_CHART"];
    delete process.env["FIXTURE_BROKEN"];
  }
}

const renderedInputs = (r: { registrations: { rendered?: unknown; inputs: unknown }[] }) =>
  JSON.stringify(r.registrations.filter((x) => x.rendered).map((x) => x.inputs));

describe("chart fingerprints and render keys", () => {
  it("names a chart by its content: the same files elsewhere match, one changed byte does not", () => {
    const a = join(tmp(), "c");
    const b = join(tmp(), "c");
    cpSync(join(FIXTURES, "monitor-port-0.1.0"), a, { recursive: true });
    cpSync(join(FIXTURES, "monitor-port-0.1.0"), b, { recursive: true });
    expect(chartFingerprint(a)).toBe(chartFingerprint(b));
    writeFileSync(join(b, "values.yaml"), "changed: true\n", { flag: "a" });
    expect(chartFingerprint(a)).not.toBe(chartFingerprint(b));
  });

  it("keys on every argument and the values, with the chart's path left out", () => {
    const chart = { path: "/x/chart", fingerprint: "f" };
    const args = ["template", "r", "/x/chart", "--kube-version", "1.36.0"];
    const key = renderKey(chart, args, "{}");
    expect(
      renderKey(
        { path: "/y/chart", fingerprint: "f" },
        ["template", "r", "/y/chart", "--kube-version", "1.36.0"],
        "{}",
      ),
    ).toBe(key);
    expect(renderKey(chart, args, '{"a":1}')).not.toBe(key);
    expect(renderKey(chart, [...args.slice(0, 4), "1.35.0"], "{}")).not.toBe(key);
    expect(renderKey({ ...chart, fingerprint: "g" }, args, "{}")).not.toBe(key);
  });
});

describe("a render session with a persistent cache", () => {
  it("renders once over two runs, and the second run's plan is the first one's", async () => {
    const dir = tmp();
    const source = new ChartSource(FIXTURES, tmp());
    const helm = countingHelm();
    const first = new RenderSession(helm.runner, 1, new RenderCache(dir));
    const a = await renderWith(first, source);
    expect(first.counts).toEqual({ cached: 0, rendered: 1 });
    // A new run: a new session and cache object over the same directory.
    const second = new RenderSession(helm.runner, 1, new RenderCache(dir));
    const b = await renderWith(second, source);
    expect(second.counts).toEqual({ cached: 1, rendered: 0 });
    expect(helm.templates()).toBe(1);
    expect(renderedInputs(b)).toBe(renderedInputs(a));
    expect(b.plan.findings).toEqual(a.plan.findings);
  });

  it("renders again when the values change, and keeps both entries", async () => {
    const dir = tmp();
    const source = new ChartSource(FIXTURES, tmp());
    const helm = countingHelm();
    await renderWith(new RenderSession(helm.runner, 1, new RenderCache(dir)), source);
    const broken = await renderWith(new RenderSession(helm.runner, 1, new RenderCache(dir)), source, true);
    expect(helm.templates()).toBe(2);
    expect(broken.plan.findings.some((f) => f.check === "reference" && f.severity === "error")).toBe(true);
    expect(readdirSync(dir).filter((f) => f.endsWith(".json"))).toHaveLength(2);
  });

  it("treats a corrupt or foreign entry as a miss and writes it again", async () => {
    const dir = tmp();
    const source = new ChartSource(FIXTURES, tmp());
    const helm = countingHelm();
    await renderWith(new RenderSession(helm.runner, 1, new RenderCache(dir)), source);
    const [entry] = readdirSync(dir);
    writeFileSync(join(dir, entry!), '{"format":2,"key":"another","docs":[]}');
    const again = new RenderSession(helm.runner, 1, new RenderCache(dir));
    const plan = await renderWith(again, source);
    expect(again.counts).toEqual({ cached: 0, rendered: 1 });
    expect(plan.plan.summary.charts.objects).toBeGreaterThan(0);
    writeFileSync(join(dir, entry!), "{ truncated");
    const third = new RenderSession(helm.runner, 1, new RenderCache(dir));
    await renderWith(third, source);
    expect(third.counts.rendered).toBe(1);
    expect(helm.templates()).toBe(3);
  });

  it("never stores a failed render", async () => {
    const dir = tmp();
    const failing: HelmRunner = (args, env) =>
      args[0] === "template"
        ? Promise.resolve({ code: 1, stdout: "", stderr: "Error: boom" })
        : runHelm(args, env);
    const session = new RenderSession(failing, 1, new RenderCache(dir));
    const result = await runStack("local", {
      program: () => {
        process.env["FIXTURE_CHART"] = "monitor-port";
        return chartProgram();
      },
      charts: new ChartSource(FIXTURES, tmp()),
      session,
      policies: [],
      policyConfig: {},
    });
    delete process.env["FIXTURE_CHART"];
    expect(result.kind === "plan" && result.chartErrors.length).toBe(1);
    expect(readdirSync(dir).filter((f) => f.endsWith(".json"))).toEqual([]);
  });

  it("keeps at most its bound of entries, the oldest removed first", () => {
    const dir = tmp();
    const cache = new RenderCache(dir, 2);
    cache.set("a", []);
    cache.set("b", []);
    cache.set("c", []);
    const left = readdirSync(dir).filter((f) => f.endsWith(".json"));
    expect(left).toHaveLength(2);
    expect(cache.get("c")).toEqual([]);
  });
});

describe("secret unwrapping copies only what it changes", () => {
  it("returns a value without secrets as it is, and copies the path to a secret only", () => {
    const schema = { type: "object", properties: { a: { description: "x".repeat(1000) } } };
    const plain = { spec: { schema }, list: [1, "two"] };
    expect(unwrapSecrets(plain)).toBe(plain);
    expect(redactSecrets(plain)).toBe(plain);
    const withSecret = { spec: { schema }, data: { password: wrapSecret("s3cr3t") } };
    const unwrapped = unwrapSecrets(withSecret) as typeof withSecret & { data: { password: unknown } };
    expect(unwrapped).not.toBe(withSecret);
    expect(unwrapped.data.password).toBe("s3cr3t");
    expect(unwrapped.spec).toBe(withSecret.spec);
    expect((redactSecrets(withSecret) as { data: { password: unknown } }).data.password).toBe("[secret]");
    // The original keeps its wrapper: nothing was written through.
    expect(withSecret.data.password).toEqual(wrapSecret("s3cr3t"));
    const arr = ["a", wrapSecret("b"), "c"];
    expect(unwrapSecrets(arr)).toEqual(["a", "b", "c"]);
    expect(arr[1]).toEqual(wrapSecret("b"));
  });
});

describe("remembered verdicts on long strings", () => {
  it("gives a long string the same verdict every time, per key", () => {
    const prose = `${"A description of a field in a custom resource. ".repeat(8)}`;
    expect(prose.length).toBeGreaterThanOrEqual(256);
    expect(detectInString(prose, "description", DEFAULT_ENTROPY)).toBeUndefined();
    expect(detectInString(prose, "description", DEFAULT_ENTROPY)).toBeUndefined();
    const pem = `-----BEGIN RSA PRIVATE KEY-----\n${"MIIEowIBAAKCAQEA7".repeat(20)}\n-----END RSA PRIVATE KEY-----`;
    const first = detectInString(pem, undefined, DEFAULT_ENTROPY);
    expect(first?.detector).toBe("private-key");
    expect(detectInString(pem, undefined, DEFAULT_ENTROPY)).toEqual(first);
    // A long random value is a secret under a secret-like name, and judged anew under another key.
    const random = Array.from(
      { length: 300 },
      (_, i) => "abcdefghijklmnopqrstuvwxyz0123456789"[(i * 7919) % 36],
    ).join("");
    expect(detectInString(random, "note", DEFAULT_ENTROPY)).toBeUndefined();
    expect(detectInString(random, "password", DEFAULT_ENTROPY)?.detector).toBe("entropy");
    expect(detectInString(random, "note", DEFAULT_ENTROPY)).toBeUndefined();
    expect(detectInString(random, "password", DEFAULT_ENTROPY)?.detector).toBe("entropy");
  });
});

describe("the CLI's render cache", () => {
  const TSX = join(process.cwd(), "node_modules", ".bin", "tsx");
  const run = (cacheArgs: string[], out: string, env: Record<string, string> = {}) =>
    spawnSync(
      TSX,
      ["tools/preflight.ts", "--quiet", "--stack", "local", "--charts", FIXTURES, "--out", out, ...cacheArgs],
      {
        encoding: "utf8",
        timeout: 120_000,
        env: { ...process.env, FIXTURE_CHART: "monitor-port", FIXTURE_BROKEN: "0", ...env },
      },
    );

  it("fills --render-cache DIR on the first run and renders from it on the next; off writes nothing", () => {
    const dir = tmp();
    const out = tmp();
    const program = ["--program", "test/fixtures/chart-program.ts"];
    const first = run(["--render-cache", dir, ...program], out);
    expect(first.status, first.stderr).toBe(0);
    const entries = readdirSync(dir).filter((f) => f.endsWith(".json"));
    expect(entries).toHaveLength(1);
    const second = run(["--render-cache", dir, ...program], out);
    expect(second.status, second.stderr).toBe(0);
    expect(second.stderr).toContain("1 chart renders from the render cache, 0 by helm");
    // Off: nothing read or written, not even in the default place.
    const home = tmp();
    const off = run(["--render-cache", "off", ...program], out, { XDG_CACHE_HOME: home });
    expect(off.status, off.stderr).toBe(0);
    expect(off.stderr).not.toContain("from the render cache");
    expect(readdirSync(home)).toEqual([]);
  });
});

describe("a shared subtree scanned once", () => {
  it("reports its findings at each place it is found, and judges it anew under other settings", async () => {
    const random = Array.from(
      { length: 48 },
      (_, i) => "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789"[(i * i * 7919 + i) % 46],
    ).join("");
    const spec = { config: { password: random }, note: "plain" };
    const opts = { ...DEFAULT_ENTROPY, secretlint: false };
    const first = await scanForSecrets({ spec }, opts);
    expect(first.map((f) => f.path)).toEqual([["spec", "config", "password"]]);
    const second = await scanForSecrets({ kind: "X", other: spec }, opts);
    expect(second.map((f) => f.path)).toEqual([["other", "config", "password"]]);
    // An allow pattern is another scan: the remembered verdict does not stand in for it.
    const allowed = await scanForSecrets({ spec }, { ...opts, allowPatterns: [new RegExp(random)] });
    expect(allowed).toEqual([]);
    // And a path-bound skipper is never answered from memory.
    const skipped = await scanForSecrets({ spec }, { ...opts, skip: (p) => p[1] === "config" });
    expect(skipped).toEqual([]);
  });
});
