/**
 * The shared test harness: Pulumi's mock runtime with the preflight's recorder, so tests see every
 * registration (type, name, parent, inputs with secret markers, protect, dependsOn) exactly as the
 * preflight does. Each call starts a fresh runtime.
 */
import * as pulumi from "@pulumi/pulumi";
import {
  installRecorder,
  propsOf,
  runRecorded,
  unwrapSecrets,
  type Registration,
} from "../tools/preflight/recorder";
import { runStack, type RunStackOptions, type StackResult } from "../tools/preflight/run";

export { isSecretWrapped, unwrapSecrets } from "../tools/preflight/recorder";
export type { Registration } from "../tools/preflight/recorder";

export interface Rendered {
  readonly registrations: readonly Registration[];
  /** Stack outputs as registered (secrets wrapped). */
  readonly outputs: Record<string, unknown>;
  /** Registrations of a type token. */
  ofType(type: string): Registration[];
  /** The one registration with this type and name (throws otherwise). */
  get(type: string, name: string): Registration;
  /** Plain (secret-unwrapped) inputs of a registration. */
  plain(r: Registration): Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests index freely
}

function rendered(registrations: Registration[]): Rendered {
  const stack = registrations.find((r) => r.type === "pulumi:pulumi:Stack");
  return {
    registrations,
    outputs: stack?.outputs ?? {},
    ofType: (type) => registrations.filter((r) => r.type === type),
    get(type, name) {
      const hits = registrations.filter((r) => r.type === type && r.name === name);
      if (hits.length !== 1)
        throw new Error(
          `expected one ${type} named ${name}, found ${hits.length}; have: ${registrations
            .filter((r) => r.type === type)
            .map((r) => r.name)
            .join(", ")}`,
        );
      return hits[0]!;
    },
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests index freely
    plain: (r) => unwrapSecrets(propsOf(r)) as Record<string, any>,
  };
}

/**
 * Runs `program` as a stack under mocks with the given flat config (`platform:key` → value; objects
 * are JSON-encoded for you) and returns everything it registered.
 */
export async function render(
  program: () => object | void,
  options: { config?: Record<string, unknown>; secretKeys?: string[]; stack?: string } = {},
): Promise<Rendered> {
  const recording = await installRecorder("ai-delivery-platform", options.stack ?? "test");
  const config: Record<string, string> = {};
  for (const [k, v] of Object.entries(options.config ?? {}))
    config[k] = typeof v === "string" ? v : JSON.stringify(v);
  pulumi.runtime.setAllConfig(config, options.secretKeys ?? []);
  await runRecorded(() => program() ?? {});
  return rendered(recording.registrations);
}

/** Runs a committed stack (Pulumi.<stack>.yaml, canaries for secrets) through the whole preflight. */
export async function preflightStack(stack: string, options: RunStackOptions = {}): Promise<StackResult> {
  return runStack(stack, { dir: process.cwd(), ...options });
}

/** Like preflightStack but returns the rendered registrations and fails on a config error. */
export async function renderStack(stack: string, options: RunStackOptions = {}) {
  const result = await preflightStack(stack, options);
  if (result.kind !== "plan")
    throw new Error(
      `stack ${stack} config rejected: ${result.problems.map((p) => `${p.key}: ${p.message}`).join("; ")}`,
    );
  return { plan: result.plan, ...rendered(result.registrations) };
}
