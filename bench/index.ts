/**
 * `npm run bench [-- --only preflight,policy,gateway,render] [--quick] [--charts DIR] [--update]`:
 * the performance targets (docs/performance.md), measured as ratios side by side in one run. Prints
 * a table and writes out/bench/results.json; `--update` writes the committed bench/results.json
 * instead (the figures docs/performance.md quotes). Never part of `npm test`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import {
  GATEWAY_TARGETS,
  benchGateway,
  gatewayTable,
  type GatewayBenchResult,
  type Verdict,
} from "./gateway";
import { benchPolicies, type PolicyBenchResult } from "./policy-throughput";
import { benchPreflightScale, type ScaleResult } from "./preflight-scale";
import { benchRender, type RenderBenchResult } from "./render";
import { userChartCache } from "../tools/preflight/charts";

export const TARGETS = {
  preflightRatio: 1.25,
  policyRatio: 20,
  gatewayCpuRatio: GATEWAY_TARGETS.maxCpuRatio,
  gatewayThroughputRatio: GATEWAY_TARGETS.minThroughputRatio,
  gatewayAddedP99Ms: GATEWAY_TARGETS.maxAddedP99Ms,
  ttftOverheadMs: GATEWAY_TARGETS.maxTtftOverheadMs,
  renderRatio: 3,
} as const;

interface Results {
  date: string;
  node: string;
  cpus: number;
  preflight?: ScaleResult;
  policy?: PolicyBenchResult;
  gateway?: GatewayBenchResult;
  render?: RenderBenchResult;
}

const ok = (pass: boolean) => (pass ? "met" : "MISSED");

const MEASURES = ["preflight", "policy", "gateway", "render"] as const;

export const USAGE = `Usage: npm run bench -- [options]

Measures the platform's performance targets as ratios, side by side in one run.

Options:
  --only LIST    comma-separated measures: ${MEASURES.join(", ")} (default: all)
  --quick        fewer sizes and rounds (a smoke run)
  --charts DIR   chart packages for the render measure (default: the preflight's user cache)
  --out FILE     where the results go (default: out/bench/results.json)
  --update       write the committed bench/results.json (the figures the docs quote)
  --gateway-profile DIR
                 write a V8 CPU profile of the gateway's process into DIR (node --cpu-prof)
  -h, --help     this text`;

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        only: { type: "string" },
        quick: { type: "boolean", default: false },
        out: { type: "string" },
        update: { type: "boolean", default: false },
        charts: { type: "string" },
        "gateway-profile": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (e) {
    console.error(`bench: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const only = new Set((values.only ?? MEASURES.join(",")).split(","));
  const unknown = [...only].filter((m) => !(MEASURES as readonly string[]).includes(m));
  if (unknown.length) {
    console.error(`bench: unknown measure ${unknown.join(", ")} (one of ${MEASURES.join(", ")})`);
    return 2;
  }
  const out = values.out ?? (values.update ? "bench/results.json" : "out/bench/results.json");
  const { cpus } = await import("node:os");
  const results: Results = { date: new Date().toISOString(), node: process.version, cpus: cpus().length };
  const rows: string[][] = [];

  if (only.has("preflight")) {
    const r = await benchPreflightScale(values.quick ? [1, 10, 100] : [1, 10, 100, 1000]);
    results.preflight = r;
    for (const p of r.points)
      rows.push([
        `preflight, ${p.services} services (${p.resources} registrations)`,
        `${p.programMs} ms vs floor ${p.floorMs} ms (typed ${p.typedFloorMs}); heap ${p.programPeakHeapMiB} vs ${p.floorPeakHeapMiB} MiB`,
        `${p.ratio}x (typed ${p.typedRatio}x)`,
        `<= ${TARGETS.preflightRatio}x: ${ok(p.ratio <= TARGETS.preflightRatio)}`,
      ]);
    rows.push([
      "preflight growth exponent",
      "time ~ N^b",
      `${r.growthExponent}`,
      `~1 (linear): ${ok(r.growthExponent <= 1.15)}`,
    ]);
  }
  if (only.has("render")) {
    // A warm chart cache: --charts DIR, or the per-user cache `preflight --charts pull` fills.
    const dir = values.charts ?? userChartCache();
    try {
      const r = await benchRender(dir, values.quick ? 1 : 2);
      results.render = r;
      rows.push([
        `render mode, ${r.stacks.length} stacks (${r.charts} charts, ${r.renderedObjects} objects)`,
        `${r.renderMs} ms from the warm render cache (${r.warmHelmRenders} helm renders) vs plain preflight ${r.plainMs} ms`,
        `${r.ratio}x`,
        `<= ${TARGETS.renderRatio}x: ${ok(r.ratio <= TARGETS.renderRatio)}`,
      ]);
      // Not a target: what a run costs when every chart's inputs changed since the last one.
      rows.push([
        `render mode, every chart rendered by helm`,
        `${r.freshRenderMs} ms vs plain preflight ${r.plainMs} ms`,
        `${r.freshRatio}x`,
        "(no target)",
      ]);
    } catch (e) {
      rows.push([`render mode`, `not measured: ${(e as Error).message} (give --charts DIR)`, "", ""]);
    }
  }
  if (only.has("policy")) {
    const r = await benchPolicies(values.quick ? 2_000 : 10_000);
    results.policy = r;
    rows.push([
      `policy pack over ${r.resources} resources`,
      `${r.packUsPerResource} us/resource vs structuredClone ${r.cloneUsPerResource} us`,
      `${r.ratio}x`,
      `<= ${TARGETS.policyRatio}x: ${ok(r.ratio <= TARGETS.policyRatio)}`,
    ]);
  }
  let gatewayRows = "";
  if (only.has("gateway")) {
    const r = await benchGateway({
      ...(values.quick ? { durationSec: 1.5, rounds: 1, ttftRequests: 100 } : {}),
      ...(values["gateway-profile"] ? { profileDir: values["gateway-profile"] } : {}),
    });
    results.gateway = r;
    gatewayRows = gatewayTable(r);
    const against =
      "absent" in r.nginx ? `against direct only (${r.nginx.absent})` : `against ${r.nginx.version}`;
    const verdict = (v: Verdict) => (v.pass === null ? "not judged" : ok(v.pass));
    const v = r.verdicts;
    rows.push(
      [
        `gateway CPU per request, ${against}`,
        v.cpu.detail,
        "",
        `<= ${TARGETS.gatewayCpuRatio}x: ${verdict(v.cpu)}`,
      ],
      [
        "gateway req/s, 200 connections, 20 ms backend",
        v.throughput.detail,
        "",
        `>= ${TARGETS.gatewayThroughputRatio * 100} %: ${verdict(v.throughput)}`,
      ],
      [
        "gateway p99, 50 connections",
        v.p99.detail,
        "",
        `<= +${TARGETS.gatewayAddedP99Ms} ms: ${verdict(v.p99)}`,
      ],
      [
        `gateway time to first token (${r.ttft.requests} sequential streams)`,
        v.ttft.detail,
        "",
        `<= +${TARGETS.ttftOverheadMs} ms: ${verdict(v.ttft)}`,
      ],
    );
  }

  const header = ["measure", "figures", "ratio", "target"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join(" | ");
  console.log([line(header), widths.map((w) => "-".repeat(w)).join("-|-"), ...rows.map(line)].join("\n"));
  if (gatewayRows)
    console.log(
      `\ngateway relay (${results.gateway!.rounds} x ${results.gateway!.durationSec} s per path and scenario):\n${gatewayRows}`,
    );
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(results, null, 2) + "\n");
  console.log(`\nwrote ${out}`);
  return 0;
}

if (require.main === module)
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
