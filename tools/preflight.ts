/**
 * `npm run preflight [-- --stack NAME ...] [--charts DIR|pull] [--json FILE] [--markdown FILE] [--out DIR]`
 * Offline, credential-free evaluation of every stack: exit 0 clean, 1 on a mandatory violation,
 * schema error, secret leak or fidelity error (render, admission, reference, budget), 2 on bad
 * config, usage or a chart that cannot be rendered for want of its package.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChartSource } from "./preflight/charts";
import { HelmUnavailable } from "./preflight/helm";
import { RenderSession } from "./preflight/render";
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { componentTree, markdown, problemsText, summaryLine, writePlanFiles } from "./preflight/report";
import { failed, runStacks, type Plan } from "./preflight/run";
import { listStacks, UsageError } from "./preflight/stack-config";

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        stack: { type: "string", multiple: true },
        json: { type: "string" },
        markdown: { type: "string" },
        out: { type: "string", default: "out" },
        quiet: { type: "boolean", default: false },
        program: { type: "string" },
        charts: { type: "string" },
        "stack-traces": { type: "boolean", default: false },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: false,
    });
  } catch (e) {
    console.error(`preflight: ${(e as Error).message}`);
    return 2;
  }
  if (args.values.help) {
    console.log(
      "usage: npm run preflight [-- --stack NAME ...] [--charts DIR|pull] [--json FILE] [--markdown FILE] [--out DIR] [--program MODULE] [--stack-traces]",
    );
    return 0;
  }
  const dir = process.cwd();
  const stacks = args.values.stack ?? listStacks(dir);
  if (stacks.length === 0) {
    console.error("preflight: no Pulumi.<stack>.yaml files here");
    return 2;
  }
  let program: (() => object) | undefined;
  if (args.values.program) {
    try {
      program = loadProgram(args.values.program);
    } catch (e) {
      console.error(`preflight: ${(e as Error).message}`);
      return 2;
    }
  }
  // One source for every stack, so each chart is located and verified once per run.
  const helmHome = args.values.charts ? mkdtempSync(join(tmpdir(), "preflight-charts-")) : undefined;
  const charts = args.values.charts && helmHome ? new ChartSource(args.values.charts, helmHome) : undefined;
  // And one render session: a chart every stack installs alike renders once per run.
  const session = charts ? new RenderSession() : undefined;
  const plans: Plan[] = [];
  let exit = 0;
  // In order, each stack's program evaluated while the one before it renders and is checked.
  const results = runStacks(stacks, {
    dir,
    stackTraces: args.values["stack-traces"],
    ...(program ? { program } : {}),
    ...(charts ? { charts } : {}),
    ...(session ? { session } : {}),
  });
  for (;;) {
    let next;
    try {
      next = await results.next();
    } catch (e) {
      if (e instanceof UsageError || e instanceof HelmUnavailable) {
        console.error(`preflight: ${e.message}`);
        return 2;
      }
      throw e;
    }
    if (next.done) break;
    const { stack, result } = next.value;
    if (result.kind === "config-error") {
      console.error(
        `${stack}: invalid stack config (${result.problems.length} problems, ${result.registered} resources registered):`,
      );
      for (const p of result.problems)
        console.error(`  - ${p.key}: ${p.message}${p.example ? ` (e.g. ${p.example})` : ""}`);
      exit = 2;
      continue;
    }
    const plan = result.plan;
    plans.push(plan);
    for (const e of result.chartErrors) {
      console.error(`${stack}: ${e.message}`);
      exit = 2;
    }
    writePlanFiles(args.values.out, plan);
    if (!args.values.quiet) console.log(componentTree(plan));
    const problems = problemsText(plan);
    if (problems) console.log(problems);
    console.log(summaryLine(plan));
    if (failed(plan) && exit === 0) exit = 1;
  }
  if (helmHome) rmSync(helmHome, { recursive: true, force: true });
  if (args.values.json)
    writeFileSync(args.values.json, JSON.stringify(plans.length === 1 ? plans[0] : plans, null, 2) + "\n");
  if (args.values.markdown) writeFileSync(args.values.markdown, markdown(plans));
  return exit;
}

/** `--program MODULE`: evaluate another Pulumi program (its export = function) with a stack's config. */
function loadProgram(file: string): () => object {
  let mod: unknown;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(resolve(file));
  } catch (e) {
    throw new Error(`cannot load program ${file}: ${(e as Error).message.split("\n")[0]}`);
  }
  const fn = typeof mod === "function" ? mod : (mod as { default?: unknown }).default;
  if (typeof fn !== "function")
    throw new Error(`program ${file} must export a function (export = () => outputs)`);
  return fn as () => object;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    const detail =
      e instanceof Error
        ? e.stack && e.stack.includes("\n    at ")
          ? e.stack
          : `${e.message}\n(rerun with --stack-traces for the full stack)`
        : String(e);
    console.error(`preflight: ${detail}`);
    process.exit(2);
  },
);
