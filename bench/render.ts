/**
 * Render mode against the plain preflight, every stack, in one process, interleaved: the plain
 * run; the same stacks with every chart checked from a warm cache (the chart sources verified once
 * as in one CLI run, and the persistent render cache filled by the warm-up, as a second CLI run
 * finds it); and the same again with every chart rendered by helm (no render cache: a run after a
 * change to every chart's values). Best of `rounds` each, so a cold disk cache does not count; each
 * round is a new render session.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChartSource } from "../tools/preflight/charts";
import { RenderSession } from "../tools/preflight/render";
import { RenderCache } from "../tools/preflight/render-cache";
import { runStacks } from "../tools/preflight/run";
import { listStacks } from "../tools/preflight/stack-config";

export interface RenderBenchResult {
  stacks: string[];
  charts: number;
  renderedObjects: number;
  plainMs: number;
  /** From the warm render cache: every chart checked, none rendered by helm. */
  renderMs: number;
  ratio: number;
  /** Every chart rendered by helm (no render cache). */
  freshRenderMs: number;
  freshRatio: number;
  /** helm renders in a warm round (0 when the cache holds every render). */
  warmHelmRenders: number;
}

async function runAll(
  stacks: readonly string[],
  charts?: ChartSource,
  cache?: RenderCache,
): Promise<{ ms: number; charts: number; objects: number; helmRenders: number }> {
  const started = performance.now();
  // A fresh session per round, as per CLI run.
  const session = charts ? new RenderSession(undefined, undefined, cache) : undefined;
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
  return {
    ms: performance.now() - started,
    charts: count,
    objects,
    helmRenders: session?.counts.rendered ?? 0,
  };
}

export async function benchRender(chartDir: string, rounds = 2): Promise<RenderBenchResult> {
  const stacks = listStacks(process.cwd());
  const home = mkdtempSync(join(tmpdir(), "bench-render-"));
  try {
    const source = new ChartSource(chartDir, home);
    const cache = new RenderCache(join(home, "renders"));
    await runAll(stacks); // warm the module and schema caches for both modes
    await runAll(stacks, source, cache); // the chart sources (verified once per run), the render cache
    const best = { plain: Infinity, render: Infinity, fresh: Infinity };
    let last = { charts: 0, objects: 0, helmRenders: 0 };
    for (let i = 0; i < rounds; i++) {
      best.plain = Math.min(best.plain, (await runAll(stacks)).ms);
      const warm = await runAll(stacks, source, cache);
      best.render = Math.min(best.render, warm.ms);
      last = warm;
      best.fresh = Math.min(best.fresh, (await runAll(stacks, source)).ms);
    }
    const ratio = (ms: number) => Math.round((ms / best.plain) * 100) / 100;
    return {
      stacks,
      charts: last.charts,
      renderedObjects: last.objects,
      plainMs: Math.round(best.plain),
      renderMs: Math.round(best.render),
      ratio: ratio(best.render),
      freshRenderMs: Math.round(best.fresh),
      freshRatio: ratio(best.fresh),
      warmHelmRenders: last.helmRenders,
    };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
