/**
 * Validates every Kubernetes object of a plan against its OpenAPI schema with kubernetes-models and
 * its CRD packages (Istio, Prometheus operator, cert-manager, KEDA). Kinds without a published
 * schema package are counted as unvalidated, never silently passed as valid.
 */

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

const cache = new Map<string, ModelClass | null>();

/** The model class for apiVersion/kind, or null when no schema package covers it. */
export function modelFor(apiVersion: string, kind: string): ModelClass | null {
  const id = `${apiVersion}/${kind}`;
  const hit = cache.get(id);
  if (hit !== undefined) return hit;
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/", 2) : ["", apiVersion];
  const pkg =
    group === "" || !group!.includes(".") || group!.endsWith(".k8s.io")
      ? "kubernetes-models"
      : CRD_PACKAGES.find(([test]) => test(group!))?.[1];
  let model: ModelClass | null = null;
  if (pkg) {
    const path = group ? `${pkg}/${group}/${version}/${kind}` : `${pkg}/${version}/${kind}`;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const mod = require(path) as Record<string, unknown>;
      model = (mod[kind] ?? null) as ModelClass | null;
    } catch {
      model = null;
    }
  }
  cache.set(id, model);
  return model;
}

/** Drops `undefined` (Pulumi leaves unset optional inputs out; JSON schema does too). */
function clean(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(clean);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = clean(v);
    return out;
  }
  return value;
}

export type SchemaResult = { ok: true } | { ok: false; message: string } | { ok: "unknown" };

export function validateObject(object: Record<string, unknown>): SchemaResult {
  const apiVersion = object["apiVersion"];
  const kind = object["kind"];
  if (typeof apiVersion !== "string" || typeof kind !== "string")
    return { ok: false, message: "object has no apiVersion/kind" };
  const Model = modelFor(apiVersion, kind);
  if (!Model) return { ok: "unknown" };
  try {
    new Model(clean(object) as Record<string, unknown>).validate();
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
