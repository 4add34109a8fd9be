/**
 * The offline preview diff: one stack's plan against a baseline plan (an earlier run's
 * `<stack>/plan.json`, or the same preflight run at a git ref). Resources are matched by URN, as
 * the engine matches them: added, removed, replaced (a change to an input the provider replaces
 * on) and updated, each change with its input path; and the findings that are new or gone. Inputs
 * are the plan's, whose secrets are already `[secret]`, so no diff can show a secret's value.
 */
import { CANARY_PREFIX } from "./stack-config";

/** The part of a plan resource the diff reads (plan.json of any version has it). */
export interface DiffResource {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
  readonly custom?: boolean;
  readonly inputs?: unknown;
}

/** The part of a plan the diff reads. */
export interface DiffPlan {
  readonly resources: readonly DiffResource[];
  readonly violations?: readonly { policy: string; level: string; urn: string; message: string }[];
  readonly schemaErrors?: readonly { urn: string; message: string }[];
  readonly secretLeaks?: readonly { key: string; urn: string; path: string }[];
  readonly findings?: readonly {
    check: string;
    severity: string;
    urn: string;
    field?: string;
    message: string;
  }[];
  readonly warnings?: readonly { message: string; urn?: string }[];
}

export interface InputChange {
  /** `spec.template.spec.containers[server].image`; `` for the inputs as a whole. */
  readonly path: string;
  /** Absent when the path is new. */
  readonly before?: unknown;
  /** Absent when the path is gone. */
  readonly after?: unknown;
}

export interface ChangedResource {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
  readonly changes: InputChange[];
  /** For a replacement: the inputs the provider replaces on that changed. */
  readonly replaceOn?: string[];
}

export interface ResourceRef {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
}

/** A finding in the diff's terms: what kind, which rule, where, and what it says. */
export interface DiffFinding {
  /** `policy`, `schema`, `leak`, `warning`, or a fidelity check (`admission`, `reference`...). */
  readonly kind: string;
  /** `mandatory`, `advisory`, `remediate`, `error` or `warning`. */
  readonly level: string;
  /** The policy, the leaked key, the check. */
  readonly rule: string;
  readonly urn: string;
  readonly message: string;
  readonly hint?: string;
}

export interface StackDiff {
  readonly stack: string;
  /** False when the baseline has no plan for the stack: everything is added. */
  readonly baseline: boolean;
  /** Why there is no baseline plan, when there is none. */
  readonly baselineNote?: string;
  readonly added: ResourceRef[];
  readonly removed: ResourceRef[];
  readonly replaced: ChangedResource[];
  readonly updated: ChangedResource[];
  readonly newFindings: DiffFinding[];
  readonly resolvedFindings: DiffFinding[];
}

const STACK_TYPE = "pulumi:pulumi:Stack";

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * A stack secret's canary is new on every run (stack-config makeCanary): one that a plan shows in
 * plain (a leak, reported as such) would otherwise be a change on every diff. It reads `[secret]`.
 */
const CANARY = new RegExp(`${CANARY_PREFIX}-[A-Za-z0-9_.:-]+?-[0-9a-f]{24}`, "g");

/** A copy of a plan's inputs with every stack canary as `[secret]`. */
export function maskCanaries(v: unknown): unknown {
  if (typeof v === "string") return v.includes(CANARY_PREFIX) ? v.replace(CANARY, "[secret]") : v;
  if (Array.isArray(v)) return v.map(maskCanaries);
  if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, maskCanaries(x)]));
  return v;
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => equal(a[k], b[k]));
  }
  return false;
}

/** A key as a path segment: `.name`, or `["app.kubernetes.io/name"]` when it is not a plain word. */
const segment = (path: string, key: string) =>
  /^[A-Za-z_$][\w$-]*$/.test(key) ? (path ? `${path}.${key}` : key) : `${path}[${JSON.stringify(key)}]`;

/** Arrays of objects each with a unique string `name` (containers, ports, env) are matched by name. */
function byName(list: readonly unknown[]): Map<string, unknown> | undefined {
  const out = new Map<string, unknown>();
  for (const x of list) {
    if (!isObject(x) || typeof x["name"] !== "string" || out.has(x["name"])) return undefined;
    out.set(x["name"], x);
  }
  return out;
}

/** Every leaf path where `before` and `after` differ (a whole subtree when one side lacks it). */
export function inputChanges(before: unknown, after: unknown, path = ""): InputChange[] {
  if (equal(before, after)) return [];
  const change = (): InputChange[] => [
    { path, ...(before !== undefined ? { before } : {}), ...(after !== undefined ? { after } : {}) },
  ];
  // A subtree one side lacks is its leaves (an empty object or list stays one change).
  const empty = (other: unknown) => (isObject(other) ? {} : Array.isArray(other) ? [] : undefined);
  const [b, a] = [before ?? empty(after), after ?? empty(before)];
  const size = (v: unknown) => (isObject(v) ? Object.keys(v).length : Array.isArray(v) ? v.length : 0);
  if (size(b) + size(a) === 0) return change();
  if (isObject(b) && isObject(a)) {
    const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])];
    return keys.flatMap((k) => inputChanges(b[k], a[k], segment(path, k)));
  }
  if (Array.isArray(b) && Array.isArray(a)) {
    const named = [byName(b), byName(a)] as const;
    if (named[0] && named[1]) {
      const [x, y] = named;
      const names = [...new Set([...x.keys(), ...y.keys()])];
      return names.flatMap((n) => inputChanges(x.get(n), y.get(n), `${path}[${n}]`));
    }
    const n = Math.max(b.length, a.length);
    return Array.from({ length: n }, (_, i) => inputChanges(b[i], a[i], `${path}[${i}]`)).flat();
  }
  return change();
}

/** The value at a dotted path (`spec.selector`), undefined when absent. */
function at(value: unknown, path: string): unknown {
  let cur = value;
  for (const key of path.split(".")) {
    if (!isObject(cur)) return undefined;
    cur = cur[key];
  }
  return cur;
}

/** Inputs every Kubernetes object is replaced on: its identity. */
const KUBERNETES_IDENTITY = ["apiVersion", "kind", "metadata.name", "metadata.namespace"];

/** Immutable fields per kind: the Kubernetes provider replaces the object when one of them changes. */
const KUBERNETES_IMMUTABLE: Readonly<Record<string, readonly string[]>> = {
  Deployment: ["spec.selector"],
  ReplicaSet: ["spec.selector"],
  DaemonSet: ["spec.selector"],
  StatefulSet: ["spec.selector", "spec.serviceName", "spec.volumeClaimTemplates", "spec.podManagementPolicy"],
  Job: ["spec.selector", "spec.template", "spec.completionMode"],
  Service: ["spec.clusterIP", "spec.clusterIPs"],
  PersistentVolumeClaim: [
    "spec.accessModes",
    "spec.storageClassName",
    "spec.volumeName",
    "spec.volumeMode",
    "spec.selector",
    "spec.dataSource",
  ],
  Secret: ["type"],
  RoleBinding: ["roleRef"],
  ClusterRoleBinding: ["roleRef"],
  StorageClass: ["provisioner", "parameters", "reclaimPolicy", "volumeBindingMode"],
};

const isKubernetesObject = (inputs: unknown) =>
  isObject(inputs) && typeof inputs["apiVersion"] === "string" && typeof inputs["kind"] === "string";

/**
 * The inputs whose change makes the provider replace the resource rather than update it, among
 * those that changed: a Kubernetes object's identity and its kind's immutable fields (an immutable
 * ConfigMap's or Secret's data too); a command's `triggers`; any input of a `random:` resource;
 * otherwise a top-level `name`, `namespace` or `kind`.
 */
export function replaceTriggers(type: string, before: unknown, after: unknown): string[] {
  let paths: readonly string[];
  if (isKubernetesObject(before) || isKubernetesObject(after)) {
    const kind = String(
      (isObject(after) ? after["kind"] : undefined) ?? (before as Record<string, unknown>)["kind"],
    );
    const immutable =
      isObject(after) && after["immutable"] === true && isObject(before) && before["immutable"] === true;
    paths = [
      ...KUBERNETES_IDENTITY,
      ...(KUBERNETES_IMMUTABLE[kind] ?? []),
      ...(immutable && (kind === "ConfigMap" || kind === "Secret")
        ? ["data", "stringData", "binaryData"]
        : []),
    ];
  } else if (type.startsWith("command:")) {
    // A command reruns its create (a replacement) when a trigger changes.
    paths = ["triggers"];
  } else if (type.startsWith("random:")) {
    return inputChanges(before, after).map((c) => c.path || "inputs");
  } else paths = ["name", "namespace", "kind"];
  return paths.filter((p) => !equal(at(before, p), at(after, p)));
}

/** Every finding of a plan, in the diff's terms. */
export function planFindings(plan: DiffPlan): DiffFinding[] {
  const hint = (x: object) => {
    const h = (x as { hint?: unknown }).hint;
    return typeof h === "string" ? { hint: h } : {};
  };
  return [
    ...(plan.violations ?? []).map((v) => ({
      kind: "policy",
      level: v.level,
      rule: v.policy,
      urn: v.urn,
      message: v.message,
      ...hint(v),
    })),
    ...(plan.schemaErrors ?? []).map((e) => ({
      kind: "schema",
      level: "error",
      rule: "schema",
      urn: e.urn,
      message: e.message,
      ...hint(e),
    })),
    ...(plan.secretLeaks ?? []).map((l) => ({
      kind: "leak",
      level: "error",
      rule: l.key,
      urn: l.urn,
      message: `${l.key} found at ${l.path}`,
      ...hint(l),
    })),
    ...(plan.findings ?? []).map((f) => ({
      kind: f.check,
      level: f.severity,
      rule: f.field ? `${f.check} ${f.field}` : f.check,
      urn: f.urn,
      message: f.message,
      ...hint(f),
    })),
    ...(plan.warnings ?? []).map((w) => ({
      kind: "warning",
      level: "warning",
      rule: "program",
      urn: w.urn ?? "",
      message: w.message,
      ...hint(w),
    })),
  ];
}

const findingKey = (f: DiffFinding) => JSON.stringify([f.kind, f.level, f.rule, f.urn, f.message]);

const ref = (r: DiffResource): ResourceRef => ({ urn: r.urn, type: r.type, name: r.name });

/** The diff of one stack's plan against its baseline (undefined: the baseline has none). */
export function diffPlans(
  stack: string,
  baseline: DiffPlan | undefined,
  current: DiffPlan,
  baselineNote?: string,
): StackDiff {
  const resources = (p: DiffPlan | undefined) =>
    new Map((p?.resources ?? []).filter((r) => r.type !== STACK_TYPE).map((r) => [r.urn, r]));
  const before = resources(baseline);
  const after = resources(current);
  const added: ResourceRef[] = [];
  const replaced: ChangedResource[] = [];
  const updated: ChangedResource[] = [];
  for (const [urn, r] of after) {
    const b = before.get(urn);
    if (!b) {
      added.push(ref(r));
      continue;
    }
    // A local component's props are what it registered as outputs, not inputs: nothing to update.
    if (r.custom === false && r.type.startsWith("platform:")) continue;
    const [was, is] = [maskCanaries(b.inputs), maskCanaries(r.inputs)];
    const changes = inputChanges(was, is);
    if (changes.length === 0) continue;
    const replaceOn = replaceTriggers(r.type, was, is);
    if (replaceOn.length > 0) replaced.push({ ...ref(r), changes, replaceOn });
    else updated.push({ ...ref(r), changes });
  }
  const removed = [...before.values()].filter((r) => !after.has(r.urn)).map(ref);
  const old = baseline ? planFindings(baseline) : [];
  const now = planFindings(current);
  const oldKeys = new Set(old.map(findingKey));
  const nowKeys = new Set(now.map(findingKey));
  return {
    stack,
    baseline: baseline !== undefined,
    ...(baseline === undefined && baselineNote ? { baselineNote } : {}),
    added,
    removed,
    replaced,
    updated,
    newFindings: now.filter((f) => !oldKeys.has(findingKey(f))),
    resolvedFindings: old.filter((f) => !nowKeys.has(findingKey(f))),
  };
}

/** True when nothing changed. */
export const unchanged = (d: StackDiff): boolean =>
  d.baseline &&
  d.added.length + d.removed.length + d.replaced.length + d.updated.length === 0 &&
  d.newFindings.length + d.resolvedFindings.length === 0;

/** `3 to add, 1 to replace, …`: the counts of a stack's diff. */
export function diffCounts(d: StackDiff): string {
  const parts = [
    `${d.added.length} to add`,
    `${d.removed.length} to remove`,
    `${d.replaced.length} to replace`,
    `${d.updated.length} to update`,
    `${d.newFindings.length} new findings`,
    `${d.resolvedFindings.length} resolved`,
  ];
  return parts.join(", ");
}

/** What the plan shows for a secret value (recorder.ts redactSecrets). */
const SECRET = "[secret]";

/** A value as a diff line shows it: JSON, cut at `max` characters. */
export function showValue(v: unknown, max = 120): string {
  if (v === undefined) return "(none)";
  if (v === SECRET) return SECRET;
  // JSON of anything a plan holds (functions and symbols never reach one).
  const text = (JSON.stringify(v) as string | undefined) ?? typeof v;
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** `path: before → after` for one change. */
export const changeLine = (c: InputChange): string =>
  `${c.path || "(inputs)"}: ${showValue(c.before)} → ${showValue(c.after)}`;
