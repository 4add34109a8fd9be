/**
 * Where to fix a finding: every finding of every report carries a one-line hint naming the file to
 * edit. A config problem names the stack file and its key; a finding on a resource names the module
 * source that creates it (from the URN's nearest component type `platform:<module>:<Type>`), a
 * policy violation also the stack's policy config for an exemption with a reason, and a finding on
 * a Helm chart (or an object rendered from one) the module that sets that chart's values.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { CONFIG_NAMESPACE, platformSchema } from "../../components/config";

/** The Pulumi type of a helm.v4.Chart (render.ts CHART_TYPE). */
const CHART = "kubernetes:helm.sh/v4:Chart";

export interface HintContext {
  /** The stack file, as messages name it (`Pulumi.dev.yaml`). */
  readonly stackFile: string;
  /** The stack's policy config, as messages name it (`policies/config/dev.json`). */
  readonly policyConfigFile: string;
  /** Component type (`platform:inference:InferenceService`) → its source file, repository-relative. */
  readonly sources: ReadonlyMap<string, string>;
  /** Top-level config keys of the stack (`platform:inference`), to point a module's warning at its config. */
  readonly configKeys?: ReadonlySet<string>;
  /** The plan's resources by URN (type and parent), to find the component above a resource. */
  readonly resources?: ReadonlyMap<string, { readonly type: string; readonly parent?: string }>;
}

/** The type chain (outermost parent first, the resource's own type last) and name of a URN. */
export function parseUrn(urn: string): { types: string[]; name: string } | undefined {
  const m = /^urn:pulumi:[^:]*::[^:]*::(.+)$/.exec(urn);
  if (!m) return undefined;
  const rest = m[1]!;
  const sep = rest.indexOf("::");
  if (sep < 0) return undefined;
  return { types: rest.slice(0, sep).split("$"), name: rest.slice(sep + 2) };
}

/**
 * The types from the resource up through its parents, its own first. A URN names only its parent's
 * type, so the plan's parent links (`ctx.resources`) carry the walk further up; without them the
 * URN's own two are all there is.
 */
export function lineage(urn: string, ctx: Pick<HintContext, "resources"> = {}): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (let cur: string | undefined = urn; cur && !seen.has(cur);) {
    seen.add(cur);
    const node: { readonly type: string; readonly parent?: string } | undefined = ctx.resources?.get(cur);
    if (!node) {
      out.push(...(parseUrn(cur)?.types ?? []).reverse());
      break;
    }
    out.push(node.type);
    cur = node.parent;
  }
  return out;
}

/** The nearest `platform:<module>:<Type>` component that is or encloses the resource. */
export function ownerComponent(
  urn: string,
  ctx: Pick<HintContext, "resources"> = {},
): { type: string; module: string } | undefined {
  for (const type of lineage(urn, ctx)) {
    const m = /^platform:([^:]+):[^:]+$/.exec(type);
    if (m) return { type, module: m[1]! };
  }
  return undefined;
}

/** True when the resource is a Helm chart or was rendered out of one. */
export const isChartOrRendered = (urn: string, ctx: Pick<HintContext, "resources"> = {}): boolean =>
  lineage(urn, ctx).includes(CHART);

/** `components/inference/service.ts`, or the module's folder when no file declares the type. */
export function sourceOf(urn: string, ctx: HintContext): string {
  const owner = ownerComponent(urn, ctx);
  if (!owner) return "components/program.ts";
  return ctx.sources.get(owner.type) ?? `components/${owner.module === "index" ? "" : `${owner.module}/`}`;
}

/** "fix it in X" for a resource, naming the chart values when it is a chart's. */
function fixIn(urn: string, ctx: HintContext): string {
  const file = sourceOf(urn, ctx);
  return isChartOrRendered(urn, ctx) ? `the chart's values are set in ${file}` : `fix it in ${file}`;
}

/** A config problem or a plain-text credential: the stack file's key. */
export function configHint(key: string, ctx: Pick<HintContext, "stackFile">): string {
  return `edit ${key} in ${ctx.stackFile}`;
}

/** A policy violation: the module source, or an exemption with a reason in the stack's policy config. */
export function policyHint(v: { policy: string; urn: string; name?: string }, ctx: HintContext): string {
  const name = v.name ?? parseUrn(v.urn)?.name;
  const exemption = `or exempt it in ${ctx.policyConfigFile} ("${v.policy}": {"exemptions": [{${name ? `"name": "${name}", ` : ""}"reason": "…"}]})`;
  if (!parseUrn(v.urn)) return `fix the stack in components/program.ts, ${exemption}`;
  return `${fixIn(v.urn, ctx)}, ${exemption}`;
}

/** A schema error, a secret leak or a fidelity finding on a resource. */
export function resourceHint(urn: string, ctx: HintContext): string {
  return fixIn(urn, ctx);
}

/** A secret that landed outside a secret sink. */
export function leakHint(urn: string, ctx: HintContext): string {
  const where = isChartOrRendered(urn, ctx) ? "in the chart's values set in" : "where it is set in";
  return `keep the value secret (a Secret reference, pulumi.secret) ${where} ${sourceOf(urn, ctx)}`;
}

/** A warning the program logged: its stack config when the module has one, and the module that logs it. */
export function warningHint(urn: string | undefined, ctx: HintContext): string {
  const owner = urn ? ownerComponent(urn, ctx) : undefined;
  if (!urn || !owner) return `see ${ctx.stackFile}`;
  const key = `platform:${owner.module}`;
  const file = sourceOf(urn, ctx);
  return ctx.configKeys?.has(key)
    ? `adjust ${key} in ${ctx.stackFile} (logged by ${file})`
    : `logged by ${file}`;
}

/** A fidelity finding: the stack file for a config check, the module otherwise. */
export function findingHint(f: { check: string; urn: string; field?: string }, ctx: HintContext): string {
  if (f.check === "config") return configHint(f.field ?? "the key", ctx);
  const owner = ownerComponent(f.urn, ctx);
  if (!owner)
    return f.check === "cluster"
      ? `create the cluster as the stack output ${f.field ?? ""} says (the cluster is platform:cluster in ${ctx.stackFile})`
      : `see ${ctx.stackFile}`;
  return resourceHint(f.urn, ctx);
}

let cached: Map<string, string> | undefined;

/**
 * Every `platform:<module>:<Type>` component of components/ with the file that declares it
 * (`super("platform:…", …)`), repository-relative. Read once per process.
 */
export function componentSources(root = join(__dirname, "..", "..")): ReadonlyMap<string, string> {
  if (cached) return cached;
  const out = new Map<string, string>();
  const visit = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) visit(path);
      else if (e.name.endsWith(".ts"))
        for (const m of readFileSync(path, "utf8").matchAll(/super\(\s*"(platform:[^:"]+:[^:"]+)"/g))
          if (!out.has(m[1]!)) out.set(m[1]!, relative(root, path).split("\\").join("/"));
    }
  };
  visit(join(root, "components"));
  cached = out;
  return out;
}

/** Every top-level config key (`platform:inference`), from the schema. */
const CONFIG_KEYS: ReadonlySet<string> = new Set(
  Object.keys(platformSchema.shape).map((k) => `${CONFIG_NAMESPACE}:${k}`),
);

/** The hint context of a committed stack: its stack file, its policy config, the module sources. */
export function hintContextFor(
  stack: string,
  resources?: readonly { readonly urn: string; readonly type: string; readonly parent?: string }[],
): HintContext {
  return {
    ...(resources ? { resources: new Map(resources.map((r) => [r.urn, r])) } : {}),
    stackFile: `Pulumi.${stack}.yaml`,
    policyConfigFile: `policies/config/${stack}.json`,
    sources: componentSources(),
    configKeys: CONFIG_KEYS,
  };
}
