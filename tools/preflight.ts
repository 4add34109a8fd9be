/**
 * `npm run preflight [-- --stack NAME ...] [--charts DIR|pull] [--json FILE] [--markdown FILE] [--out DIR]
 *   [--baseline DIR|FILE|GIT_REF] [--diff-markdown FILE]`
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
import { RenderCache, userRenderCache } from "./preflight/render-cache";
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  componentTree,
  markdown,
  problemsText,
  summaryLine,
  withHints,
  writePlanFiles,
} from "./preflight/report";
import type { ConfigProblem } from "../components/config";
import { failed, runStacks, type Plan } from "./preflight/run";
import { listStacks, UsageError } from "./preflight/stack-config";
import {
  readBaselineDir,
  readBaselineReport,
  RefBaseline,
  resolveBaseline,
  type Baseline,
  type BaselineSource,
} from "./preflight/baseline";
import { colourEnabled, palette } from "./preflight/colour";
import { diffPlans, type StackDiff } from "./preflight/diff";
import { diffMarkdown, diffText } from "./preflight/diff-report";
import { configHint } from "./preflight/hints";
import { Progress } from "./preflight/progress";

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
        "render-cache": { type: "string" },
        "stack-traces": { type: "boolean", default: false },
        baseline: { type: "string" },
        "diff-markdown": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: false,
    });
  } catch (e) {
    console.error(`preflight: ${(e as Error).message}`);
    return 2;
  }
  if (args.values.help) {
    console.log(USAGE);
    return 0;
  }
  // A report on stdout keeps stdout for itself: the per-stack text goes to stderr then.
  const toStdout = [args.values.json, args.values.markdown, args.values["diff-markdown"]].includes("-");
  // Colours where the text goes, when that is a terminal (NO_COLOR, FORCE_COLOR: colour.ts).
  const paint = palette(colourEnabled(toStdout ? process.stderr : process.stdout));
  const errPaint = palette(colourEnabled(process.stderr));
  // The stack under way, on stderr when it is a terminal; cleared before anything else is printed.
  const progress = new Progress(process.stderr);
  const say = (text: string) => {
    progress.stop();
    if (toStdout) console.error(text);
    else console.log(text);
  };
  const complain = (text: string) => {
    progress.stop();
    console.error(text);
  };
  const dir = process.cwd();
  if (args.values["diff-markdown"] && !args.values.baseline) {
    console.error("preflight: --diff-markdown needs --baseline DIR|GIT_REF");
    return 2;
  }
  let source: BaselineSource | undefined;
  if (args.values.baseline) {
    try {
      source = resolveBaseline(args.values.baseline, dir);
    } catch (e) {
      console.error(`preflight: ${(e as Error).message}`);
      return 2;
    }
  }
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
  // Renders persist across runs unless `--render-cache off`; a chart renders again when its content,
  // arguments or values change (tools/preflight/render-cache.ts).
  const cacheDir = args.values["render-cache"] ?? userRenderCache();
  const session = charts
    ? new RenderSession(undefined, undefined, cacheDir === "off" ? undefined : new RenderCache(cacheDir))
    : undefined;
  // At a git ref, the baseline's own preflight runs in a worktree meanwhile (its own process).
  const atRef = source?.kind === "ref" ? new RefBaseline(source) : undefined;
  const interrupted = () => {
    atRef?.cleanup();
    process.exit(130);
  };
  if (atRef) {
    process.once("SIGINT", interrupted);
    process.once("SIGTERM", interrupted);
  }
  const values = args.values;
  const src = source;
  try {
    const baseline = atRef?.run(stacks, {
      ...(args.values.stack ? { stacks: args.values.stack } : {}),
      ...(args.values.charts ? { charts: args.values.charts } : {}),
      cwd: dir,
    });
    // Settled in its turn below; a failure meanwhile is not unhandled.
    baseline?.catch(() => undefined);
    return await evaluate(baseline);
  } finally {
    progress.stop();
    atRef?.cleanup();
    process.removeListener("SIGINT", interrupted);
    process.removeListener("SIGTERM", interrupted);
  }

  async function evaluate(atRefBaseline: Promise<Baseline> | undefined): Promise<number> {
    const plans: Plan[] = [];
    const reports: StackReport[] = [];
    let exit = 0;
    // In order, each stack's program evaluated while the one before it renders and is checked.
    const results = runStacks(stacks, {
      dir,
      stackTraces: values["stack-traces"],
      ...(program ? { program } : {}),
      ...(charts ? { charts } : {}),
      ...(session ? { session } : {}),
    });
    for (let i = 0; ; i++) {
      if (i < stacks.length) progress.start(stacks[i]!, i, stacks.length);
      let next;
      try {
        next = await results.next();
      } catch (e) {
        if (e instanceof UsageError || e instanceof HelmUnavailable) {
          complain(`preflight: ${e.message}`);
          return 2;
        }
        throw e;
      }
      progress.stop();
      if (next.done) break;
      const { stack, result } = next.value;
      if (result.kind === "usage-error") {
        complain(`${errPaint.bold(stack)}: ${errPaint.red(result.message)}`);
        reports.push({ stack, status: "error", reason: result.message });
        exit = 2;
        continue;
      }
      if (result.kind === "config-error") {
        const ctx = { stackFile: `Pulumi.${stack}.yaml` };
        reports.push({
          stack,
          status: "config-error",
          problems: result.problems.map((p) => ({ ...p, hint: configHint(p.key, ctx) })),
        });
        complain(
          `${errPaint.bold(stack)}: ${errPaint.red("invalid stack config")} (${result.problems.length} problems, ${result.registered} resources registered); fix them in ${ctx.stackFile}:`,
        );
        for (const p of result.problems)
          complain(`  - ${p.key}: ${p.message}${p.example ? ` (e.g. ${p.example})` : ""}`);
        exit = 2;
        continue;
      }
      const plan = result.plan;
      plans.push(plan);
      reports.push({ stack, status: failed(plan) ? "findings" : "ok", plan });
      for (const e of result.chartErrors) {
        complain(`${stack}: ${e.message}`);
        exit = 2;
      }
      try {
        writePlanFiles(values.out, plan);
      } catch (e) {
        complain(
          `preflight: cannot write ${values.out}/${stack}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
        );
        return 2;
      }
      if (!values.quiet) say(componentTree(plan));
      const problems = problemsText(plan, paint);
      if (problems) say(problems);
      say(summaryLine(plan, paint));
      if (failed(plan) && exit === 0) exit = 1;
    }
    if (helmHome) rmSync(helmHome, { recursive: true, force: true });
    if (session && session.counts.cached > 0)
      console.error(
        `preflight: ${session.counts.cached} chart renders from the render cache, ${session.counts.rendered} by helm (--render-cache off renders all)`,
      );
    // The baseline diff: each evaluated stack against its baseline plan. It changes no exit code.
    let diff: { label: string; stacks: StackDiff[] } | undefined;
    if (src) {
      let base: Baseline;
      if (src.kind === "ref") {
        progress.start(`baseline ${src.label}`);
        base = await atRefBaseline!;
        progress.stop();
      } else
        try {
          base =
            src.kind === "dir"
              ? readBaselineDir(src.path, stacks, src.label)
              : readBaselineReport(src.path, stacks, src.label);
        } catch (e) {
          complain(`preflight: ${(e as Error).message}`);
          return 2;
        }
      const diffs = plans.map((p) =>
        diffPlans(p.stack, base.plans.get(p.stack), withHints(p), base.notes.get(p.stack)),
      );
      diff = { label: base.label, stacks: diffs };
      say(diffText(base.label, diffs, paint));
    }
    const diffOf = (stack: string) => diff?.stacks.find((d) => d.stack === stack);
    // Every requested stack is in every report, with its status; one shape whatever their number.
    const emit = (target: string, text: string) =>
      target === "-" ? process.stdout.write(text) : writeFileSync(target, text);
    const diffSection = () => (diff ? diffMarkdown(diff.label, diff.stacks, unevaluated(reports)) : "");
    try {
      if (values.json)
        emit(
          values.json,
          JSON.stringify(
            {
              ...(diff ? { baseline: diff.label } : {}),
              stacks: reports.map((r) => {
                const d = diffOf(r.stack);
                return r.status === "ok" || r.status === "findings"
                  ? { ...r, plan: withHints(r.plan), ...(d ? { diff: d } : {}) }
                  : r;
              }),
            },
            null,
            2,
          ) + "\n",
        );
      if (values.markdown)
        emit(values.markdown, markdown(plans, unevaluated(reports)) + (diff ? `\n${diffSection()}` : ""));
      if (values["diff-markdown"]) emit(values["diff-markdown"], diffSection());
    } catch (e) {
      complain(`preflight: cannot write a report: ${(e as Error).message}`);
      return 2;
    }
    return exit;
  }
}

/** One stack in the JSON and Markdown reports. */
type StackReport =
  | { stack: string; status: "ok" | "findings"; plan: Plan }
  | { stack: string; status: "config-error"; problems: readonly (ConfigProblem & { hint: string })[] }
  | { stack: string; status: "error"; reason: string };

/** The stacks that have no plan, with what the reports say instead. */
function unevaluated(reports: readonly StackReport[]): { stack: string; status: string; lines: string[] }[] {
  return reports.flatMap((r) =>
    r.status === "config-error"
      ? [
          {
            stack: r.stack,
            status: "config error",
            lines: r.problems.map((p) => `${p.key}: ${p.message} (fix: ${p.hint})`),
          },
        ]
      : r.status === "error"
        ? [{ stack: r.stack, status: "not evaluated", lines: [r.reason] }]
        : [],
  );
}

const USAGE = `Usage: npm run preflight -- [options]

Evaluates every stack (or those named) offline under Pulumi's mock runtime, runs the policy pack,
validates every Kubernetes object, hunts secret canaries and runs the fidelity checks.

Options:
  --stack NAME       a stack to evaluate (repeatable; default: every Pulumi.<stack>.yaml here)
  --charts DIR|pull  render every Helm chart from chart packages in DIR, or from the per-user cache
                     that \`pull\` fills (docs/render-mode.md)
  --render-cache DIR|off  where renders persist between runs, keyed by chart content, arguments
                     and values (default: ~/.cache/ai-delivery-platform/renders); off renders all
  --json FILE        write {"stacks": [...]}: each stack's status and plan, problems or reason
  --markdown FILE    write the Markdown report (CI's job summary)
                     FILE may be - for stdout (the per-stack text then goes to stderr)
  --out DIR          where plan.json and manifests/ go per stack (default: out)
  --baseline DIR|FILE|GIT_REF
                     diff each stack against a baseline: an earlier run's --out folder, its
                     --json report, or a commit (its preflight runs in a temporary git worktree);
                     added, removed, replaced and updated resources and the new findings, in the
                     terminal, the Markdown and the JSON (the exit code is the run's own)
  --diff-markdown FILE  write only the baseline diff as Markdown (a pull-request comment); - for stdout
  --quiet            no component tree
  --program MODULE   evaluate another Pulumi program with each stack's config
  --stack-traces     keep JavaScript stack traces while the program runs
  -h, --help         this text

On a terminal: colours (off with NO_COLOR, forced with FORCE_COLOR) and the stack under way on
stderr; piped, neither.

Exit: 0 clean; 1 a mandatory violation, schema error, secret leak or fidelity error; 2 bad input
(a config error, an unreadable stack, a chart that cannot be rendered).`;

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
  // Exit once stdout has drained: process.exit drops what a pipe has not taken yet (a large
  // `--json -` report arrived cut short).
  (code) => process.stdout.write("", () => process.exit(code)),
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
