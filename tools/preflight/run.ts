/**
 * One stack's preflight: load its config with canaries, evaluate the program under the recorder,
 * enforce the policy pack, validate Kubernetes objects and hunt canaries. Pure of console and
 * files: the CLI (tools/preflight.ts) prints and writes.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { PolicyPackConfig, Policies } from "@pulumi/policy";
import {
  ConfigError,
  loadPlatformConfig,
  type ConfigProblem,
  type PlatformConfig,
} from "../../components/config";
import { deploymentStartBudgets } from "../../components/inference/spec";
import { definePlatform } from "../../components/program";
import { K3S_VERSION } from "../../components/versions";
import {
  PolicyConfigError,
  runPolicies,
  type ResourceRecord,
  type Violation,
} from "../../policies/lib/runner";
import { policies as packPolicies } from "../../policies/rules";
import { huntCanaries, type SecretLeak } from "./hunt";
import {
  installRecorder,
  propsOf,
  redactSecrets,
  runRecorded,
  unwrapSecrets,
  type ProgramWarning,
  type Registration,
} from "./recorder";
import { PolicyConfigFileError, readPolicyConfigFile } from "./policy-config";
import { describeYamlError, yamlSyntaxError } from "./yaml-errors";
import type { ChartSource, ChartSourceError } from "./charts";
import { fidelityFindings } from "./fidelity";
import type { Finding } from "./objects";
import { CHART_TYPE, renderCharts, type ChartRender, type DroppedHook, type RenderSession } from "./render";
import { isKubernetesObjectType, validateObject } from "./schemas";
import { HelmUnavailable } from "./helm";
import { loadStackConfig, UsageError, type StackConfig } from "./stack-config";
import { describePlaintextSecret, plaintextSecretLines } from "./stack-secrets";

export interface PlanResource {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
  readonly parent?: string;
  readonly custom: boolean;
  readonly protect: boolean;
  /** Expanded out of a Chart by render mode (as a real preview would register it). */
  readonly rendered?: true;
  readonly inputs: unknown;
}

export interface Plan {
  readonly stack: string;
  readonly resources: PlanResource[];
  readonly violations: Violation[];
  readonly schemaErrors: { urn: string; message: string }[];
  readonly secretLeaks: SecretLeak[];
  /** What the engine and the API server would refuse or never finish: render, admission, references, budgets. */
  readonly findings: Finding[];
  /** What the program logged with pulumi.log.warn (a GPU pool that may run short...): reported, never failing. */
  readonly warnings: ProgramWarning[];
  /** Render mode only: each chart rendered, with its object count, and the hooks helm.v4.Chart drops. */
  readonly charts?: { readonly rendered: ChartRender[]; readonly droppedHooks: DroppedHook[] };
  readonly summary: {
    resources: number;
    components: number;
    mandatory: number;
    advisory: number;
    remediate: number;
    schemaErrors: number;
    secretLeaks: number;
    unvalidatedKinds: string[];
    /** Chart registrations, how many were rendered, and the objects they rendered. */
    charts: { total: number; rendered: number; notRendered: number; objects: number };
    /** Fidelity findings that fail the preflight, and warnings. */
    fidelityErrors: number;
    fidelityWarnings: number;
    /** Warnings the program logged. */
    programWarnings: number;
    ms: number;
  };
}

export type StackResult =
  | {
      readonly kind: "plan";
      readonly plan: Plan;
      readonly registrations: Registration[];
      /** Charts that had no usable source in render mode (the CLI exits 2 for these). */
      readonly chartErrors: ChartSourceError[];
    }
  | {
      readonly kind: "config-error";
      readonly stack: string;
      readonly problems: readonly ConfigProblem[];
      readonly registered: number;
    };

/** What a run of several stacks says of each: its result, or why it could not be evaluated at all. */
export type StackOutcome =
  | StackResult
  | {
      /** The stack could not be evaluated (its file is missing or not YAML, helm is absent...). */
      readonly kind: "usage-error";
      readonly stack: string;
      readonly message: string;
    };

export interface RunStackOptions {
  /** Directory holding Pulumi.yaml and the stack files (default: cwd). */
  readonly dir?: string;
  /** Config values layered over the stack file (tests). */
  readonly overrides?: Record<string, unknown>;
  /** Program to run instead of the platform (tests). */
  readonly program?: () => object;
  /** Policies to enforce instead of the pack's. */
  readonly policies?: Policies;
  /** Policy-pack config (default: policies/config/<stack>.json when it exists). */
  readonly policyConfig?: PolicyPackConfig;
  /** Keep JavaScript stack traces while the program runs (slower; for debugging a throwing program). */
  readonly stackTraces?: boolean;
  /** Render mode: where chart packages come from (`--charts DIR|pull`). */
  readonly charts?: ChartSource;
  /** Render mode: the run this stack belongs to, so stacks share identical renders (default: its own). */
  readonly session?: RenderSession;
  /** The cluster's Kubernetes version charts render for (default: the pinned K3s's). */
  readonly kubeVersion?: string;
}

function readPolicyConfig(dir: string, stack: string, policies: Policies): PolicyPackConfig {
  const name = `policies/config/${stack}.json`;
  const file = join(dir, "policies", "config", `${stack}.json`);
  if (!existsSync(file)) {
    // Without it the pack runs on its defaults: not what `pulumi preview` runs in CI, and a page of
    // violations that say nothing about the missing file.
    const configDir = join(dir, "policies", "config");
    const others = existsSync(configDir) ? readdirSync(configDir).filter((f) => f.endsWith(".json")) : [];
    throw new UsageError(
      `no policy config for stack "${stack}": ${name} is missing (ENOENT). ` +
        `The preflight and the workflows run the pack ` +
        `with it (--policy-pack-config): copy the config of a stack of the same tier ` +
        `(${others.map((f) => `policies/config/${f}`).join(", ") || "none yet"}) and set its "environment" ` +
        `properties to the stack's platform:environment.`,
    );
  }
  try {
    // Read and checked against the pack here, so a bad entry names the file and the field.
    return readPolicyConfigFile(file, policies);
  } catch (e) {
    if (e instanceof PolicyConfigFileError) throw new UsageError(`${name}: ${e.detail}`);
    throw e;
  }
}

/**
 * A stack or project file that does not parse, as one usage error naming its line, column and the
 * keys around it (and the lines that hold a credential, as stack-config does for a broken file).
 */
function checkYamlSyntax(dir: string, file: string): void {
  let text: string;
  try {
    text = readFileSync(join(dir, file), "utf8");
  } catch {
    return; // loadStackConfig says what is missing
  }
  const error = yamlSyntaxError(text);
  if (!error) return;
  const leaks = plaintextSecretLines(text).map(
    (l) => `; line ${l.line} (${l.key}) holds ${l.what} in plain text: use \`pulumi config set --secret\``,
  );
  throw new UsageError(`${describeYamlError(file, error)}${leaks.join("")}`);
}

const STACK_TYPE = "pulumi:pulumi:Stack";

export async function runStack(stack: string, options: RunStackOptions = {}): Promise<StackResult> {
  return (await evaluateStack(stack, options)).result;
}

/**
 * Every stack's preflight, yielded in order. Each program is evaluated as soon as the one before
 * it has been (one at a time: Pulumi's runtime is process-wide), while the stacks before it render
 * and are checked (what follows a program only reads what it recorded), so helm keeps the other
 * cores busy. An error surfaces at the stack that raised it, after every stack before it; no
 * program after it is evaluated.
 */
export async function* runStacks(
  stacks: readonly string[],
  options: RunStackOptions = {},
): AsyncGenerator<{ readonly stack: string; readonly result: StackOutcome }> {
  const evaluated: Promise<EvaluatedStack>[] = [];
  let previous: Promise<unknown> = Promise.resolve();
  for (const stack of stacks) {
    const next = previous.then(() => evaluateStack(stack, options));
    // Surfaces in its turn (an unhandled rejection meanwhile would end the process); the next
    // stack is evaluated either way.
    evaluated.push(next);
    previous = next.catch(() => undefined);
  }
  for (const [i, stack] of stacks.entries()) {
    let result: StackOutcome;
    try {
      result = await (await evaluated[i]!).result;
    } catch (e) {
      // A stack that cannot be read, or whose program throws, is reported at its place; the other
      // stacks still are.
      const known = e instanceof UsageError || e instanceof HelmUnavailable;
      const message = e instanceof Error ? e.message.split("\n")[0]! : String(e);
      result = { kind: "usage-error", stack, message: known ? message : `the program failed: ${message}` };
    }
    yield { stack, result };
  }
}

/** A stack whose program has been evaluated; the rest of its preflight is under way. */
interface EvaluatedStack {
  readonly result: Promise<StackResult>;
}

/** Config and the program's evaluation: the part that owns Pulumi's runtime. */
async function evaluateStack(stack: string, options: RunStackOptions): Promise<EvaluatedStack> {
  const done = (result: StackResult): EvaluatedStack => ({ result: Promise.resolve(result) });
  const started = performance.now();
  const dir = options.dir ?? process.cwd();
  checkYamlSyntax(dir, "Pulumi.yaml");
  checkYamlSyntax(dir, `Pulumi.${stack}.yaml`);
  const sc = loadStackConfig(dir, stack, options.overrides);
  const recording = await installRecorder(sc.project, sc.stack);
  pulumi.runtime.setAllConfig(sc.config, sc.secretKeys);
  // Validate before the stack resource exists, so a bad config registers nothing at all.
  let platformConfig: PlatformConfig | undefined;
  if (!options.program) {
    try {
      platformConfig = loadPlatformConfig().config;
    } catch (e) {
      if (e instanceof ConfigError)
        return done({
          kind: "config-error",
          stack,
          problems: [...plaintextProblems(sc), ...e.problems],
          registered: 0,
        });
      throw e;
    }
  }
  try {
    await runRecorded(options.program ?? definePlatform, { stackTraces: options.stackTraces ?? false });
  } catch (e) {
    const error = e instanceof ConfigError ? e : findConfigError(e);
    if (error)
      return done({
        kind: "config-error",
        stack,
        problems: [...plaintextProblems(sc), ...error.problems],
        registered: recording.registrations.filter((r) => r.type !== STACK_TYPE).length,
      });
    throw e;
  }
  const result = checkStack({
    stack,
    options,
    dir,
    canaries: sc.canaries,
    stackConfig: sc,
    platformConfig,
    programRegs: recording.registrations,
    warnings: recording.warnings,
    started,
  });
  // The caller awaits it in its turn; a rejection meanwhile is not unhandled.
  result.catch(() => undefined);
  return { result };
}

/** Render mode and every check, over what the program recorded (nothing of Pulumi's runtime). */
async function checkStack(evaluated: {
  stack: string;
  options: RunStackOptions;
  dir: string;
  canaries: ReadonlyMap<string, string>;
  stackConfig: StackConfig;
  platformConfig: PlatformConfig | undefined;
  programRegs: Registration[];
  warnings: readonly ProgramWarning[];
  started: number;
}): Promise<StackResult> {
  const { stack, options, dir, canaries, stackConfig, platformConfig, programRegs, warnings, started } =
    evaluated;

  // What CrossGuard shows a policy: plain values (computed once, shared with the hunt).
  const plainCache = new Map<Registration, Record<string, unknown>>();
  const plainOf = (r: Registration) => {
    let p = plainCache.get(r);
    if (!p) plainCache.set(r, (p = unwrapSecrets(propsOf(r)) as Record<string, unknown>));
    return p;
  };
  const render = options.charts
    ? await renderCharts(programRegs, {
        source: options.charts,
        kubeVersion: options.kubeVersion ?? clusterKubeVersion(),
        plainOf,
        ...(options.session ? { session: options.session } : {}),
      })
    : undefined;
  // Rendered objects join the plan beside the program's own, as a real preview registers them.
  const regs = render ? [...programRegs, ...render.registrations] : programRegs;
  const records = policyRecords(regs, plainOf);
  const policies = options.policies ?? packPolicies;
  const policyConfig = options.policyConfig ?? readPolicyConfig(dir, stack, policies);
  let violations: Violation[];
  try {
    violations = await runPolicies(policies, records, { ...(policyConfig ? { config: policyConfig } : {}) });
  } catch (e) {
    // A config handed in (tests, --program) that does not match the pack: a user error too.
    if (e instanceof PolicyConfigError)
      throw new UsageError(`policy config of stack "${stack}": ${e.message}`);
    throw e;
  }

  const schemaErrors: { urn: string; message: string }[] = [];
  const unvalidated = new Set<string>();
  for (const r of regs) {
    if (!r.custom || !isKubernetesObjectType(r.type)) continue;
    const result = validateObject(plainOf(r));
    if (result.ok === false) schemaErrors.push({ urn: r.urn, message: result.message });
    else if (result.ok === "unknown")
      unvalidated.add(`${String(r.inputs["apiVersion"])}/${String(r.inputs["kind"])}`);
  }

  const secretLeaks = huntCanaries(regs, canaries, plainOf, new Set(render?.charts.map((c) => c.urn)));
  const findings = [
    ...stackFileFindings(stackConfig, programRegs),
    ...(render?.findings ?? []),
    ...fidelityFindings(regs, plainOf, {
      rendered: render !== undefined,
      droppedHooks: render?.droppedHooks ?? [],
      startBudgets: platformConfig ? startBudgetsOf(regs, platformConfig) : new Map(),
    }),
  ];
  const resources: PlanResource[] = regs.map((r) => ({
    urn: r.urn,
    type: r.type,
    name: r.name,
    ...(r.parent ? { parent: r.parent } : {}),
    custom: r.custom,
    protect: r.protect,
    ...(r.rendered ? { rendered: true as const } : {}),
    inputs: redactSecrets(propsOf(r)),
  }));
  const chartTotal = programRegs.filter((r) => r.type === CHART_TYPE).length;
  const count = (level: string) => violations.filter((v) => v.level === level).length;
  const plan: Plan = {
    stack,
    resources,
    violations,
    schemaErrors,
    secretLeaks,
    findings,
    warnings: warnings.map((w) => ({ message: w.message, ...(w.urn ? { urn: w.urn } : {}) })),
    ...(render ? { charts: { rendered: render.charts, droppedHooks: render.droppedHooks } } : {}),
    summary: {
      resources: regs.filter((r) => r.custom).length,
      components: regs.filter((r) => !r.custom).length,
      mandatory: count("mandatory"),
      advisory: count("advisory"),
      remediate: count("remediate"),
      schemaErrors: schemaErrors.length,
      secretLeaks: secretLeaks.length,
      unvalidatedKinds: [...unvalidated].sort(),
      charts: {
        total: chartTotal,
        rendered: render?.charts.length ?? 0,
        notRendered: chartTotal - (render?.charts.length ?? 0),
        objects: render?.registrations.length ?? 0,
      },
      fidelityErrors: findings.filter((f) => f.severity === "error").length,
      fidelityWarnings: findings.filter((f) => f.severity === "warning").length,
      programWarnings: warnings.length,
      ms: Math.round(performance.now() - started),
    },
  };
  return { kind: "plan", plan, registrations: regs, chartErrors: render?.sourceErrors ?? [] };
}

/**
 * What each model Deployment needs to become ready (image pull plus model load), by URN, from the
 * same function the inference component sizes its progress deadline and customTimeouts with: the
 * await-budget check then holds the program to its own estimate.
 */
function startBudgetsOf(
  regs: readonly Registration[],
  config: PlatformConfig,
): Map<string, { seconds: number; reason: string }> {
  const wanted = new Map(
    deploymentStartBudgets(config.inference).map((b) => [`${b.namespace}/${b.name}`, b] as const),
  );
  const out = new Map<string, { seconds: number; reason: string }>();
  for (const r of regs) {
    if (r.type !== "kubernetes:apps/v1:Deployment") continue;
    const meta = (unwrapSecrets(r.inputs["metadata"]) ?? {}) as { name?: unknown; namespace?: unknown };
    const b = wanted.get(`${String(meta.namespace)}/${String(meta.name)}`);
    if (b) out.set(r.urn, { seconds: b.startBudgetSeconds, reason: b.reason });
  }
  return out;
}

/** A committed plain-text credential, as a config problem (when the config does not parse). */
function plaintextProblems(sc: StackConfig): ConfigProblem[] {
  return sc.plaintextSecrets.map((s) => ({
    key: s.path ? `${s.key}.${s.path}` : s.key,
    message: describePlaintextSecret(sc.stackFile, s),
  }));
}

/**
 * Findings about the stack itself: each plain-text credential its file commits (an error: it is in
 * git), and what a laptop cluster needs from outside the program before the stack can work (the
 * program's `localRegistrySetup` output; a warning, since only the person creating the cluster
 * can act on it).
 */
function stackFileFindings(sc: StackConfig, regs: readonly Registration[]): Finding[] {
  const root = regs.find((r) => r.type === STACK_TYPE);
  const urn = root?.urn ?? "";
  const out: Finding[] = sc.plaintextSecrets.map((s) => ({
    check: "config",
    severity: "error",
    urn,
    field: s.path ? `${s.key}.${s.path}` : s.key,
    message: describePlaintextSecret(sc.stackFile, s),
  }));
  // What an imported ESC environment may supply is not checked offline: said, never failed.
  for (const n of sc.notes)
    out.push({ check: "config", severity: "warning", urn, field: n.key, message: n.message });
  const setup = unwrapSecrets(root?.outputs?.["localRegistrySetup"]) as { summary?: unknown } | undefined;
  if (setup && typeof setup.summary === "string")
    out.push({
      check: "cluster",
      severity: "warning",
      urn,
      field: "localRegistrySetup",
      message: setup.summary,
    });
  return out;
}

/** Pulumi wraps errors thrown inside the stack callback; find our ConfigError inside. */
function findConfigError(e: unknown): ConfigError | undefined {
  for (let cur: unknown = e, depth = 0; cur && depth < 5; depth++) {
    if (cur instanceof ConfigError) return cur;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The registrations as the policy runner takes them (the stack root is not a resource). */
export function policyRecords(
  regs: readonly Registration[],
  plainOf: (r: Registration) => Record<string, unknown> = (r) =>
    unwrapSecrets(propsOf(r)) as Record<string, unknown>,
): ResourceRecord[] {
  return regs
    .filter((r) => r.type !== STACK_TYPE)
    .map((r) => ({
      urn: r.urn,
      type: r.type,
      name: r.name,
      ...(r.parent ? { parent: r.parent } : {}),
      protect: r.protect,
      dependencies: r.dependsOn,
      inputs: plainOf(r),
    }));
}

/** True when the plan has anything that fails the preflight. */
export function failed(plan: Plan): boolean {
  const s = plan.summary;
  return s.mandatory > 0 || s.schemaErrors > 0 || s.secretLeaks > 0 || s.fidelityErrors > 0;
}

/** `1.35.1` from the pinned K3s (`v1.35.1+k3s1`): the Kubernetes the stacks' clusters run. */
export function clusterKubeVersion(): string {
  return K3S_VERSION.replace(/^v/, "").replace(/\+.*$/, "");
}
