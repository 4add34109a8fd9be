/**
 * Render mode against the plain preflight, every stack, in one process: the plain run, then the
 * same stacks with every chart rendered and checked from a warm chart cache (the chart sources
 * verified once, as in one CLI run). Best of `rounds` each, so a cold disk cache does not count;
 * each round is a new render session, so it renders everything it checks.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChartSource } from "../tools/preflight/charts";
import { RenderSession } from "../tools/preflight/render";
import { runStacks } from "../tools/preflight/run";
import { listStacks } from "../tools/preflight/stack-config";

export interface RenderBenchResult {
  stacks: string[];
  charts: number;
  renderedObjects: number;
  plainMs: number;
  renderMs: number;
  ratio: number;
}

async function runAll(
  stacks: readonly string[],
  charts?: ChartSource,
): Promise<{ ms: number; charts: number; objects: number }> {
  const started = performance.now();
  // A fresh session per round, as per CLI run: every round renders every chart again.
  const session = charts ? new RenderSession() : undefined;
  let count = 0;
  let objects = 0;
  // As the CLI runs them: in order, the next program evaluated while this stack renders.
  for await (const { stack, result: r } of runStacks(stacks, {
    ...(charts ? { charts } : {}),
    ...(session ? { session } : {}),
  })) {
    if (r.kind !== "plan") throw new Error(`${stack}: invalid stack config`);
    if (r.chartErrors.length) throw new Error(`${stack}: ${r.chartErrors[0]!.message}`);
    count += r.plan.summary.charts.rendered;
    objects += r.plan.summary.charts.objects;
  }
  return { ms: performance.now() - started, charts: count, objects };
}

export async function benchRender(chartDir: string, rounds = 2): Promise<RenderBenchResult> {
  const stacks = listStacks(process.cwd());
  const home = mkdtempSync(join(tmpdir(), "bench-render-"));
  try {
    const source = new ChartSource(chartDir, home);
    await runAll(stacks); // warm the module and schema caches for both modes
    await runAll(stacks, source); // and the chart cache (sources verified once per run)
    let plain = Infinity;
    let render = Infinity;
    let charts = 0;
    let objects = 0;
    for (let i = 0; i < rounds; i++) {
      plain = Math.min(plain, (await runAll(stacks)).ms);
      const r = await runAll(stacks, source);
      render = Math.min(render, r.ms);
      charts = r.charts;
      objects = r.objects;
    }
    return {
      stacks,
      charts,
      renderedObjects: objects,
      plainMs: Math.round(plain),
      renderMs: Math.round(render),
      ratio: Math.round((render / plain) * 100) / 100,
    };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
