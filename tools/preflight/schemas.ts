/**
 * Validates every Kubernetes object of a plan against its OpenAPI schema with kubernetes-models and
 * its CRD packages (Istio, Prometheus operator, cert-manager, KEDA), and Flagger's kinds against the
 * schemas the project writes (crd-schemas.ts: no package publishes them). Kinds with neither are
 * counted as unvalidated, never silently passed as valid.
 */

import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { projectModel } from "./crd-schemas";

interface Model {
  validate(): void;
}
type ModelClass = new (data: Record<string, unknown>) => Model;

/** CRD packages by API group suffix; the core package covers the built-in groups. */
const CRD_PACKAGES: readonly [test: (group: string) => boolean, pkg: string][] = [
  [(g) => g.endsWith("istio.io"), "@kubernetes-models/istio"],
  [(g) => g === "monitoring.coreos.com", "@kubernetes-models/prometheus-operator"],
  [(g) => g.endsWith("cert-manager.io"), "@kubernetes-models/cert-manager"],
  [(g) => g.endsWith("keda.sh"), "@kubernetes-models/keda"],
];

const cache = new Map<string, ModelMatch | null>();

function load(path: string, kind: string): ModelClass | null {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(path) as Record<string, unknown>;
    return (mod[kind] ?? null) as ModelClass | null;
  } catch {
    return null;
  }
}

/** Versions of a CRD group that a package ships, newest stability first. */
function siblingVersions(pkg: string, group: string): string[] {
  try {
    const dir = join(dirname(require.resolve(`${pkg}/package.json`)), group);
    const rank = (v: string) => (/^v\d+$/.test(v) ? 0 : v.includes("beta") ? 1 : 2);
    return readdirSync(dir)
      .filter((v) => /^v\d/.test(v))
      .sort((a, b) => rank(a) - rank(b) || b.localeCompare(a));
  } catch {
    return [];
  }
}

export interface ModelMatch {
  readonly Model: ModelClass;
  /** The apiVersion whose schema is used (a sibling version when the package lacks the exact one). */
  readonly apiVersion: string;
}

/**
 * The model class for apiVersion/kind, or null when no schema package covers it. When a CRD package
 * lacks the exact version (Istio promoted v1beta1 kinds to v1 with the same schema), the kind's
 * schema from a sibling version is used.
 */
export function modelFor(apiVersion: string, kind: string): ModelMatch | null {
  const id = `${apiVersion}/${kind}`;
  const hit = cache.get(id);
  if (hit !== undefined) return hit;
  const [group, version] = apiVersion.includes("/")
    ? (apiVersion.split("/", 2) as [string, string])
    : ["", apiVersion];
  const core = group === "" || !group.includes(".") || group.endsWith(".k8s.io");
  const pkg = core ? "kubernetes-models" : CRD_PACKAGES.find(([test]) => test(group))?.[1];
  let match: ModelMatch | null = null;
  if (pkg) {
    const exact = load(group ? `${pkg}/${group}/${version}/${kind}` : `${pkg}/${version}/${kind}`, kind);
    if (exact) match = { Model: exact, apiVersion };
    else if (!core)
      for (const v of siblingVersions(pkg, group)) {
        const Model = load(`${pkg}/${group}/${v}/${kind}`, kind);
        if (Model) {
          match = { Model, apiVersion: `${group}/${v}` };
          break;
        }
      }
  }
  if (!match) {
    const Model = projectModel(apiVersion, kind);
    if (Model) match = { Model, apiVersion };
  }
  cache.set(id, match);
  return match;
}

/**
 * Drops `undefined` (Pulumi leaves unset optional inputs out; JSON schema does too). What holds no
 * `undefined` is returned as it is, not copied: rendered objects never do (they come from YAML),
 * and a CRD's schema is megabytes. The model copies what it is given (setDefinedProps), so the
 * validation never writes to the caller's object.
 */
function clean(value: unknown): unknown {
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = value[i] as unknown;
      const c = clean(v);
      if (c !== v) (out ??= value.slice(0, i)).push(c);
      else out?.push(v);
    }
    return out ?? value;
  }
  if (value !== null && typeof value === "object") {
    let out: Record<string, unknown> | undefined;
    const entries = Object.entries(value as Record<string, unknown>);
    for (let i = 0; i < entries.length; i++) {
      const [k, v] = entries[i]!;
      const c = v === undefined ? undefined : clean(v);
      if (c !== v || v === undefined) {
        out ??= Object.fromEntries(entries.slice(0, i));
        if (c !== undefined) out[k] = c;
      } else if (out) out[k] = v;
    }
    return out ?? value;
  }
  return value;
}

export type SchemaResult = { ok: true } | { ok: false; message: string } | { ok: "unknown" };

export function validateObject(object: Record<string, unknown>): SchemaResult {
  const apiVersion = object["apiVersion"];
  const kind = object["kind"];
  if (typeof apiVersion !== "string" || typeof kind !== "string")
    return { ok: false, message: "object has no apiVersion/kind" };
  const match = modelFor(apiVersion, kind);
  if (!match) return { ok: "unknown" };
  try {
    const data = clean(object) as Record<string, unknown>;
    new match.Model({ ...data, apiVersion: match.apiVersion }).validate();
    return { ok: true };
  } catch (e) {
    return { ok: false, message: `${apiVersion} ${kind}: ${(e as Error).message}` };
  }
}

/** Pulumi type tokens of Kubernetes objects (not providers, charts or YAML groups). */
export function isKubernetesObjectType(type: string): boolean {
  return (
    type.startsWith("kubernetes:") &&
    !type.startsWith("kubernetes:helm.sh/") &&
    !type.startsWith("kubernetes:yaml") &&
    !type.startsWith("kubernetes:kustomize") &&
    !type.endsWith("Patch") &&
    !type.endsWith("List")
  );
}
