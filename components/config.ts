/**
 * The stack-config schema: every `platform:*` key, its defaults and its checks, in one place.
 * Sections live beside their components (`<module>/schema.ts`); this file composes them, adds the
 * checks that span sections, and turns every problem into one error naming the key path, what is
 * wrong and an example of a right value. Nothing is registered before this has passed.
 */
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { appsChecks, appsSchema, appStackSecrets, APP_SECRETS_NAMESPACE } from "./apps/schema";
import { clusterChecks, clusterSchema } from "./cluster/schema";
import { deliveryChecks, deliverySchema } from "./delivery/schema";
import { gpuSchema } from "./gpu/schema";
import { inferenceChecks, inferenceSchema } from "./inference/schema";
import { meshSchema } from "./mesh/schema";
import { monitoringSchema } from "./monitoring/schema";
import { registryChecks, registrySchema } from "./registry/schema";
import {
  CONFIG_NAMESPACE,
  doc,
  ENVIRONMENTS,
  formatKey,
  PROJECT_NAME,
  suggest,
  type ConfigProblem,
  type KeyPath,
} from "./schema-kit";
import { secretsChecks, secretsSchema } from "./secrets/schema";
import { namespaceProblems } from "./stack-keys";
import { acmeEndpoints, tlsChecks, tlsSchema } from "./tls/schema";

export {
  CONFIG_NAMESPACE,
  ENVIRONMENTS,
  formatKey,
  PROJECT_NAME,
  RESERVED_NAMESPACES,
  suggest,
  type ConfigProblem,
  type Environment,
} from "./schema-kit";
export { ALLOWED_NAMESPACES, PROVIDER_NAMESPACES } from "./stack-keys";
export { acmeEndpoints, externalEndpoints, type ExternalEndpoint } from "./tls/schema";

/** Every non-secret `platform:*` key. Unknown keys are rejected. */
export const platformSchema = z.strictObject({
  environment: doc(
    z.enum(ENVIRONMENTS),
    "The tier this stack is: defaults, sizes and policy levels key on it, never on the stack's name.",
    "staging",
  ),
  cluster: doc(clusterSchema, "Where the platform runs: K3s over SSH, or an existing cluster.", {
    kind: "existing",
  }),
  gpu: gpuSchema.default(gpuSchema.parse({})),
  registry: registrySchema.default(registrySchema.parse({})),
  tls: tlsSchema.default(tlsSchema.parse({})),
  mesh: meshSchema.default(meshSchema.parse({})),
  secrets: secretsSchema.default(secretsSchema.parse({})),
  monitoring: monitoringSchema.default(monitoringSchema.parse({})),
  inference: inferenceSchema.default(inferenceSchema.parse({})),
  apps: appsSchema.default(appsSchema.parse({})),
  delivery: deliverySchema.default(deliverySchema.parse({})),
});

export type PlatformConfig = z.infer<typeof platformSchema>;

/** Secret keys: set with `pulumi config set --secret platform:<key>`, read with requireSecret. */
export const SECRET_KEYS = {
  sshPrivateKey: {
    description: "PEM private key SSH uses to reach K3s hosts.",
    requiredWhen: (c: PlatformConfig) => c.cluster.kind === "k3s",
  },
  kubeconfig: {
    description: "kubeconfig of an existing cluster (with cluster.kubeconfigFromSecret).",
    requiredWhen: (c: PlatformConfig) => c.cluster.kind === "existing" && c.cluster.kubeconfigFromSecret,
  },
  registryPassword: {
    description: "Password or token of an external registry.",
    requiredWhen: (c: PlatformConfig) => c.registry.enabled && c.registry.mode === "external",
  },
  acmeDnsApiToken: {
    description: "API token of the DNS provider the ACME DNS-01 solver writes challenge records with.",
    requiredWhen: (c: PlatformConfig) => acmeEndpoints(c).length > 0,
  },
  githubToken: {
    description: "GitHub token for the delivery provider (never the ambient GITHUB_TOKEN).",
    requiredWhen: (c: PlatformConfig) => c.delivery.github.enabled,
  },
  vercelApiToken: {
    description: "Vercel API token.",
    requiredWhen: (c: PlatformConfig) => c.delivery.vercel.enabled,
  },
  alertWebhookUrl: {
    description: "Alertmanager webhook URL (carries its own credential).",
    requiredWhen: (c: PlatformConfig) => c.monitoring.enabled && c.monitoring.alertWebhook,
  },
  hfToken: {
    description: "Model hub token for gated models.",
    requiredWhen: (c: PlatformConfig) => c.inference.services.some((s) => s.hubTokenSecret),
  },
  pulumiAccessToken: {
    description:
      "This stack's Pulumi access token (scoped to this stack), stored as the PULUMI_ACCESS_TOKEN secret of the stack's GitHub environment.",
    requiredWhen: (c: PlatformConfig) => c.delivery.github.enabled,
  },
} as const satisfies Record<string, { description: string; requiredWhen: (c: PlatformConfig) => boolean }>;

export type SecretKey = keyof typeof SECRET_KEYS;
export const SECRET_KEY_NAMES = Object.keys(SECRET_KEYS) as SecretKey[];

export class ConfigError extends Error {
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(
      `invalid stack config (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
        problems
          .map((p) => `  - ${p.key}: ${p.message}${p.example ? ` (e.g. ${p.example})` : ""}`)
          .join("\n"),
    );
    this.name = "ConfigError";
  }
}

type Path = KeyPath;

interface ZodDef {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  innerType?: z.ZodType;
  options?: z.ZodType[];
  valueType?: z.ZodType;
  in?: z.ZodType;
}
const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: ZodDef } })._zod.def;

/** The schema node at `path`, following objects, arrays, defaults, optionals and unions. */
function schemaAt(root: z.ZodType, path: Path, value: unknown): z.ZodType[] {
  const trail: z.ZodType[] = [];
  let node: z.ZodType | undefined = root;
  let data: unknown = value;
  let i = 0;
  while (node) {
    trail.push(node);
    const def = defOf(node);
    if (def.innerType) {
      node = def.innerType;
      continue;
    }
    if (def.type === "pipe" && def.in) {
      node = def.in;
      continue;
    }
    if (def.type === "union" && def.options) {
      // Pick the branch whose literal `kind` matches the data, else the first.
      const kind = (data as { kind?: unknown } | undefined)?.kind;
      node =
        def.options.find((o) => {
          const k = defOf(o).shape?.["kind"];
          return (
            k !== undefined &&
            (k as unknown as { _zod: { def: { values?: unknown[] } } })._zod.def.values?.includes(kind)
          );
        }) ?? def.options[0];
      continue;
    }
    if (i >= path.length) break;
    const seg = path[i++]!;
    data = (data as Record<PropertyKey, unknown> | undefined)?.[seg];
    if (def.type === "object" && def.shape) node = def.shape[String(seg)];
    else if (def.type === "array") node = def.element;
    else if (def.type === "record") node = def.valueType;
    else node = undefined;
  }
  return trail;
}

function exampleAt(root: z.ZodType, path: Path, value: unknown): string | undefined {
  const trail = schemaAt(root, path, value);
  for (let i = trail.length - 1; i >= 0; i--) {
    const example = (trail[i]!.meta() as { example?: unknown } | undefined)?.example;
    if (example !== undefined) return JSON.stringify(example);
  }
  return undefined;
}

function allowedKeys(root: z.ZodType, path: Path, value: unknown): string[] {
  const trail = schemaAt(root, path, value);
  const last = trail[trail.length - 1];
  return Object.keys((last && defOf(last).shape) ?? {});
}

function problemsFromZod(error: z.ZodError, raw: Record<string, unknown>): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      const allowed = allowedKeys(platformSchema, issue.path, raw);
      for (const k of issue.keys) {
        const hint = suggest(k, allowed);
        out.push({
          key: issue.path.length === 0 ? `${CONFIG_NAMESPACE}:${k}` : formatKey([...issue.path, k]),
          message:
            `unknown key${hint ? ` (did you mean "${hint}"?)` : ""}; ` +
            (allowed.length ? `allowed here: ${allowed.join(", ")}` : "no keys are allowed here"),
        });
      }
      continue;
    }
    let message = issue.message;
    if (valueAt(raw, issue.path) === undefined)
      message =
        issue.code === "invalid_value"
          ? `is required: one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`
          : "is required";
    const [section, field] = issue.path;
    if (issue.code === "invalid_union" && section === "cluster" && (field === undefined || field === "kind"))
      message = 'cluster.kind must be "k3s" or "existing"';
    const example = exampleAt(platformSchema, issue.path, raw);
    out.push({ key: formatKey(issue.path), message, ...(example ? { example } : {}) });
  }
  return out;
}

/** The raw value at a key path (undefined when absent). */
function valueAt(raw: unknown, path: Path): unknown {
  let cur = raw;
  for (const seg of path) cur = (cur as Record<PropertyKey, unknown> | null | undefined)?.[seg];
  return cur;
}

/**
 * Checks that span items or sections, each owned by the module whose section it concerns; they run
 * on whatever sections parsed, so every problem surfaces at once.
 */
export function crossChecks(c: PlatformConfig, configKeys: ReadonlySet<string> = new Set()): ConfigProblem[] {
  return [
    ...clusterChecks(c),
    ...inferenceChecks(c),
    ...registryChecks({
      ...c,
      namespaces: [
        { key: ["inference", "namespace"], namespace: c.inference.namespace },
        ...(c.apps.services.length > 0 ? [{ key: ["apps", "namespace"], namespace: c.apps.namespace }] : []),
      ],
    }),
    ...appsChecks(c, { root: process.cwd(), configKeys }),
    ...tlsChecks(c),
    ...deliveryChecks(c),
    ...secretsChecks(c),
  ];
}

/** What the config is read for: names that make the problems read as the stack file does. */
export interface ParseContext {
  /** The Pulumi project: un-namespaced keys of a stack file arrive as `<project>:<key>`. */
  readonly project?: string;
  /** The stack file's name, for a file that sets nothing (`Pulumi.dev.yaml`). */
  readonly stackFile?: string;
}

/** Every name under `platform:`: the sections and the secret keys. */
const PLATFORM_KEYS: readonly string[] = [...Object.keys(platformSchema.shape), ...Object.keys(SECRET_KEYS)];

/**
 * Parses raw config (values as Pulumi stores them: JSON text for objects) into a typed config, or
 * throws one ConfigError listing every problem: of the `platform:*` keys, and of keys in namespaces
 * nothing reads.
 */
export function parsePlatformConfig(
  rawConfig: Readonly<Record<string, string>>,
  presentSecrets: ReadonlySet<string> = new Set(),
  context: ParseContext = {},
): PlatformConfig {
  const raw: Record<string, unknown> = {};
  const prefix = `${CONFIG_NAMESPACE}:`;
  const problems: ConfigProblem[] = namespaceProblems(Object.keys(rawConfig), {
    project: context.project ?? PROJECT_NAME,
    platformKeys: PLATFORM_KEYS,
  });
  const secretKeys = new Set(SECRET_KEY_NAMES.map((k) => `${prefix}${k}`));
  const settings = Object.keys(rawConfig).filter((k) => !secretKeys.has(k));
  if (!settings.some((k) => k.startsWith(prefix))) {
    // Nothing to parse: say so, instead of one "invalid option" per required key.
    problems.push({
      key: context.stackFile ?? "the stack file",
      message:
        `${settings.length === 0 ? "is empty" : `sets no ${prefix}* key`}: a stack needs at least ` +
        `${prefix}environment and ${prefix}cluster under \`config:\` (copy the stack of the same tier, or see docs/config.md)`,
      example: `{"${prefix}environment":"local","${prefix}cluster":{"kind":"existing"}}`,
    });
    throw new ConfigError(problems);
  }
  for (const [fullKey, text] of Object.entries(rawConfig)) {
    if (!fullKey.startsWith(prefix)) continue;
    const key = fullKey.slice(prefix.length);
    if (key in SECRET_KEYS) continue;
    try {
      raw[key] = JSON.parse(text) as unknown;
    } catch {
      raw[key] = text; // plain strings are stored unquoted
    }
  }
  const parsed = platformSchema.safeParse(raw);
  if (!parsed.success) problems.push(...problemsFromZod(parsed.error, raw));
  // Run the cross-section checks on the sections that did parse, so all problems surface at once.
  const partial = parsed.success ? parsed.data : salvage(raw);
  if (partial) problems.push(...crossChecks(partial, new Set(Object.keys(rawConfig))));
  if (partial) {
    for (const name of SECRET_KEY_NAMES) {
      if (SECRET_KEYS[name].requiredWhen(partial) && !presentSecrets.has(name))
        problems.push({
          key: `${CONFIG_NAMESPACE}:${name}`,
          message: `secret is required (${SECRET_KEYS[name].description}); set it with \`pulumi config set --secret ${CONFIG_NAMESPACE}:${name} <value>\``,
        });
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return parsed.data!;
}

/** Best-effort config where every section that parses is kept and the others take their defaults. */
function salvage(raw: Record<string, unknown>): PlatformConfig | undefined {
  const shape = platformSchema.shape;
  const out: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(shape)) {
    const r = (schema as z.ZodType).safeParse(raw[key]);
    if (r.success) out[key] = r.data;
    else {
      const fallback = (schema as z.ZodType).safeParse(undefined);
      if (!fallback.success) return undefined; // a required section is broken; cross-checks would only echo it
      out[key] = fallback.data;
    }
  }
  return out as PlatformConfig;
}

/** Stack secrets as Pulumi secret outputs; only the keys that are set. */
export type PlatformSecrets = Readonly<Partial<Record<SecretKey, pulumi.Output<string>>>>;

/** The apps' stack secrets (`apps:<key>` → its secret value), the ones platform:apps references. */
export type AppSecrets = Readonly<Record<string, pulumi.Output<string>>>;

/** Reads and validates the current stack's config; throws ConfigError before anything is registered. */
export function loadPlatformConfig(): {
  config: PlatformConfig;
  secrets: PlatformSecrets;
  appSecrets: AppSecrets;
} {
  const all = pulumi.runtime.allConfig();
  const cfg = new pulumi.Config(CONFIG_NAMESPACE);
  const present = new Set(SECRET_KEY_NAMES.filter((k) => all[`${CONFIG_NAMESPACE}:${k}`] !== undefined));
  const config = parsePlatformConfig(all, present, {
    project: pulumi.getProject(),
    stackFile: `Pulumi.${pulumi.getStack()}.yaml`,
  });
  const secrets: Partial<Record<SecretKey, pulumi.Output<string>>> = {};
  for (const key of present) secrets[key] = cfg.requireSecret(key);
  const appsCfg = new pulumi.Config(APP_SECRETS_NAMESPACE);
  const appSecrets: Record<string, pulumi.Output<string>> = {};
  for (const { configKey } of appStackSecrets(config.apps))
    appSecrets[configKey] = appsCfg.requireSecret(configKey.slice(APP_SECRETS_NAMESPACE.length + 1));
  return { config, secrets, appSecrets };
}

/** The secret, or a clear error naming the key to set. */
export function requireSecretValue(secrets: PlatformSecrets, key: SecretKey): pulumi.Output<string> {
  const value = secrets[key];
  if (!value)
    throw new ConfigError([
      { key: `${CONFIG_NAMESPACE}:${key}`, message: `secret is required: ${SECRET_KEYS[key].description}` },
    ]);
  return value;
}
