/**
 * Loads `Pulumi.yaml` + `Pulumi.<stack>.yaml` into the flat key → string map Pulumi hands a program,
 * and plants a unique canary for every secret key of the schema that has no value. A project file
 * named for another project is refused. A stack that imports ESC environments (`environment:`) may
 * get any key from them, which offline cannot be read: a required key the file lacks gets a
 * stand-in (its schema example; `local` for the tier), and a note says so instead of a "required"
 * error.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import type { z } from "zod";
import { CONFIG_NAMESPACE, platformSchema, PROJECT_NAME, SECRET_KEY_NAMES } from "../../components/config";
import { plaintextSecretLines, plaintextSecrets, replaceAt, type PlaintextSecret } from "./stack-secrets";

export class UsageError extends Error {}

export const CANARY_PREFIX = "pfcanary";

export interface StackConfig {
  readonly project: string;
  readonly stack: string;
  /** Flat config as Pulumi passes it: objects JSON-encoded. */
  readonly config: Record<string, string>;
  /** Full keys (`platform:x`) that are secrets. */
  readonly secretKeys: string[];
  /** canary value → the config key it stands for. */
  readonly canaries: Map<string, string>;
  /** Credentials the stack file holds in plain text (each replaced by a canary for the run). */
  readonly plaintextSecrets: PlaintextSecret[];
  /** The stack file's name (`Pulumi.dev.yaml`), for messages. */
  readonly stackFile: string;
  /** The ESC environments the stack file imports (`environment:`), in order. */
  readonly environments: readonly string[];
  /** What offline could not check, for the report (never a problem): what ESC may supply. */
  readonly notes: readonly StackNote[];
}

/** A note about the stack file: a key and what was done about it. */
export interface StackNote {
  readonly key: string;
  readonly message: string;
}

/** The ESC environments of a stack file's `environment:` (a list of names, or `imports:` of one). */
function environmentsOf(value: unknown, file: string): string[] {
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : (value as { imports?: unknown }).imports;
  if (Array.isArray(list) && list.every((e) => typeof e === "string" && e.length > 0))
    return list as string[];
  throw new UsageError(
    `${file}: environment must be a list of ESC environment names, e.g. "environment: [my-project/dev]"`,
  );
}

/**
 * Stand-ins that are not the schema's example: the tier is `local`, whose checks are the most
 * lenient, so a tier ESC supplies never turns the rest of the file into errors it does not have.
 */
const STAND_INS: Readonly<Record<string, unknown>> = { [`${CONFIG_NAMESPACE}:environment`]: "local" };

/** The top-level platform keys without a default, with the value a stand-in takes. */
function requiredKeys(): { key: string; standIn: unknown }[] {
  return Object.entries(platformSchema.shape)
    .filter(([, schema]) => !(schema as z.ZodType).safeParse(undefined).success)
    .map(([name, schema]) => {
      const key = `${CONFIG_NAMESPACE}:${name}`;
      const example = ((schema as z.ZodType).meta() as { example?: unknown } | undefined)?.example;
      return { key, standIn: key in STAND_INS ? STAND_INS[key] : example };
    });
}

export function listStacks(dir: string): string[] {
  return readdirSync(dir)
    .map((f) => /^Pulumi\.([A-Za-z0-9_.-]+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
}

function readYaml(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    return parse(text) as unknown;
  } catch (e) {
    // A broken file is in git all the same: say which of its lines hold a credential.
    const leaks = plaintextSecretLines(text).map(
      (l) => `; line ${l.line} (${l.key}) holds ${l.what} in plain text: use \`pulumi config set --secret\``,
    );
    throw new UsageError(
      `${file} is not valid YAML: ${(e as Error).message.split("\n")[0]}${leaks.join("")}`,
    );
  }
}

/** A canary: unique, recognisable, and credential-shaped enough to trip content-based detectors. */
export function makeCanary(key: string): string {
  return `${CANARY_PREFIX}-${key}-${randomBytes(12).toString("hex")}`;
}

export function loadStackConfig(
  dir: string,
  stack: string,
  overrides: Record<string, unknown> = {},
): StackConfig {
  const projectFile = join(dir, "Pulumi.yaml");
  const stackFile = join(dir, `Pulumi.${stack}.yaml`);
  if (!existsSync(stackFile))
    throw new UsageError(
      `unknown stack "${stack}": no ${`Pulumi.${stack}.yaml`} (stacks: ${listStacks(dir).join(", ") || "none"})`,
    );
  const project = readYaml(projectFile) as { name?: unknown } | null;
  if (!project || typeof project.name !== "string")
    throw new UsageError(`${projectFile} has no project name`);
  if (project.name !== PROJECT_NAME)
    throw new UsageError(
      `Pulumi.yaml names the project "${project.name}", but this program's stacks, URNs and policy pack ` +
        `are the project "${PROJECT_NAME}": set \`name: ${PROJECT_NAME}\` in Pulumi.yaml (a renamed project ` +
        `starts every stack's state afresh)`,
    );
  const doc = (readYaml(stackFile) ?? {}) as { config?: Record<string, unknown>; environment?: unknown };
  const fileName = `Pulumi.${stack}.yaml`;
  const environments = environmentsOf(doc.environment, fileName);
  const values: Record<string, unknown> = { ...(doc.config ?? {}), ...overrides };
  // What an imported ESC environment may supply cannot be read offline: a required key the file
  // lacks is evaluated with its example, and said to be external, not missing.
  const notes: StackNote[] = [];
  if (environments.length > 0) {
    const from = `ESC environment${environments.length === 1 ? "" : "s"} ${environments.join(", ")}`;
    notes.push({
      key: "environment",
      message: `${fileName} imports ${from}: what it supplies is not checked offline`,
    });
    for (const { key, standIn } of requiredKeys()) {
      if (values[key] !== undefined || standIn === undefined) continue;
      values[key] = standIn;
      notes.push({
        key,
        message: `supplied by ${from}, not checked offline (evaluated with the stand-in ${JSON.stringify(standIn)})`,
      });
    }
  }
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  const canaries = new Map<string, string>();
  // A committed plain-text credential is reported, and a canary takes its place for the run: the
  // hunt then shows where it would land, and out/ never holds the real value.
  const schemaSecrets = new Set(SECRET_KEY_NAMES.map((n) => `${CONFIG_NAMESPACE}:${n}`));
  const qualified = (k: string) => (k.includes(":") ? k : `${project.name as string}:${k}`);
  const leaked = plaintextSecrets(
    Object.fromEntries(Object.entries(values).map(([k, v]) => [qualified(k), v])),
    schemaSecrets,
  );
  for (const s of leaked) {
    const rawKey = Object.keys(values).find((k) => qualified(k) === s.key)!;
    const canary = makeCanary(s.key.slice(s.key.indexOf(":") + 1));
    canaries.set(canary, s.key);
    values[rawKey] = replaceAt(values[rawKey], s.at, canary);
  }
  for (const [rawKey, value] of Object.entries(values)) {
    const key = qualified(rawKey);
    if (value !== null && typeof value === "object" && "secure" in value) {
      // Encrypted values cannot be read offline: a canary stands in for them.
      const canary = makeCanary(key.slice(key.indexOf(":") + 1));
      secretKeys.push(key);
      config[key] = canary;
      canaries.set(canary, key);
      continue;
    }
    config[key] = typeof value === "string" ? value : JSON.stringify(value);
  }
  for (const name of SECRET_KEY_NAMES) {
    const key = `${CONFIG_NAMESPACE}:${name}`;
    if (!secretKeys.includes(key)) secretKeys.push(key);
    if (config[key] === undefined) {
      const canary = makeCanary(name);
      config[key] = canary;
      canaries.set(canary, key);
    }
  }
  for (const s of leaked) if (schemaSecrets.has(s.key) && !secretKeys.includes(s.key)) secretKeys.push(s.key);
  return {
    project: project.name,
    stack,
    config,
    secretKeys,
    canaries,
    plaintextSecrets: leaked,
    stackFile: fileName,
    environments,
    notes,
  };
}
