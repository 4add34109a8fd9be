/**
 * Render mode: every `kubernetes:helm.sh/v4:Chart` registration expanded into the objects a real
 * preview registers, emulating helm.v4.Chart (pulumi-kubernetes provider/pkg/provider/helm/v4):
 * `helm template` with the same release name, namespace, version and values, CRDs included unless
 * `skipCrds`; Helm hooks dropped (reported, each); namespaced objects without a namespace get the
 * release namespace; children named `<chart resource>:<namespace>/<name>` under the Chart, so two
 * identical objects are duplicate URNs; Secret data marked secret. Values-schema failures and any
 * other helm failure are findings. Each chart renders as soon as the charts it depends on have: it
 * sees, as installed API versions, the CRDs of what it depends on (the engine constructs a chart
 * after its dependencies, so this is what a first `pulumi up` shows it).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { CORE_SCHEMA, load as loadYaml } from "js-yaml";
import { ChartSourceError, firstLine, type ChartRef, type ChartSource } from "./charts";
import { runHelm, type HelmResult } from "./helm";
import { BUILTIN_CLUSTER_SCOPED_KINDS, describe, groupOf, identity, type Finding } from "./objects";
import { wrapSecret, type Registration } from "./recorder";
import { renderKey, type RenderCache } from "./render-cache";

export const CHART_TYPE = "kubernetes:helm.sh/v4:Chart";

/** API groups Kubernetes itself serves (a kind there needs no CRD). */
export function isBuiltinGroup(group: string): boolean {
  return (
    group === "" ||
    group === "core" ||
    (group.endsWith(".k8s.io") && !group.endsWith(".x-k8s.io")) ||
    ["apps", "batch", "policy", "autoscaling"].includes(group)
  );
}

/** The Pulumi type token of a Kubernetes object (`v1` is the `core` group). */
export function typeToken(apiVersion: string, kind: string): string {
  return `kubernetes:${apiVersion.includes("/") ? apiVersion : `core/${apiVersion}`}:${kind}`;
}

/** A string field, or "" (never `[object Object]`). */
export const str = (v: unknown): string => (typeof v === "string" || typeof v === "number" ? String(v) : "");

/** The qualified type part of a URN (`a$b$kubernetes:helm.sh/v4:Chart`). */
const qualifiedType = (urn: string) => urn.split("::")[2] ?? "";

/** The URN the engine gives a child of `parent`. */
export function childUrn(parent: string, type: string, name: string): string {
  const [head, project] = parent.split("::");
  return `${head}::${project}::${qualifiedType(parent)}$${type}::${name}`;
}

/** A dropped Helm hook: helm.v4.Chart never applies it. */
export interface DroppedHook {
  /** The Chart that rendered it. */
  readonly urn: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
  readonly events: string;
  /** What it would have created: itself, or the Secret a certificate-generating Job writes. */
  readonly creates: readonly { readonly kind: string; readonly name: string; readonly namespace?: string }[];
}

/**
 * What a hook would have created. A hook Secret or ConfigMap is itself; a Job running a
 * certificate generator (kube-webhook-certgen and its kin) names its Secret in `--secret-name`.
 */
export function hookCreates(o: Record<string, unknown>, namespace?: string): DroppedHook["creates"] {
  const id = identity(o);
  const ns = id.namespace ?? namespace;
  if (id.kind === "Secret" || id.kind === "ConfigMap")
    return [{ kind: id.kind, name: id.name, ...(ns ? { namespace: ns } : {}) }];
  const text = JSON.stringify(o["spec"] ?? {});
  const names = [...text.matchAll(/--secret-name[= ]([A-Za-z0-9.-]+)/g)].map((m) => m[1]!);
  return [...new Set(names)].map((name) => ({ kind: "Secret", name, ...(ns ? { namespace: ns } : {}) }));
}

export interface ChartRender {
  readonly urn: string;
  readonly ref: string;
  readonly objects: number;
}

export interface RenderResult {
  /** Rendered objects as registrations under their Chart. */
  readonly registrations: Registration[];
  readonly findings: Finding[];
  readonly droppedHooks: DroppedHook[];
  /** Charts that could not be rendered for want of a usable source (exit 2). */
  readonly sourceErrors: ChartSourceError[];
  readonly charts: ChartRender[];
  /** Chart registrations in the plan. */
  readonly total: number;
}

export interface RenderOptions {
  readonly source: ChartSource;
  /** `1.35.1`: what the cluster reports (helm's `--kube-version`). */
  readonly kubeVersion: string;
  /** Plain inputs of a registration (secret markers dropped: canaries are in the values). */
  readonly plainOf: (r: Registration) => Record<string, unknown>;
  /** helm processes at once (default: one per core). */
  readonly concurrency?: number;
  /** The run this render belongs to: identical helm invocations of its stacks render once. */
  readonly session?: RenderSession;
}

interface ChartInputs {
  readonly ref: ChartRef;
  readonly release: string;
  readonly namespace: string;
  readonly values: Record<string, unknown>;
  readonly skipCrds: boolean;
  readonly resourcePrefix: string;
}

function chartInputs(r: Registration, plain: Record<string, unknown>): ChartInputs {
  const repoOpts = (plain["repositoryOpts"] ?? {}) as Record<string, unknown>;
  const repo = typeof repoOpts["repo"] === "string" ? repoOpts["repo"] : undefined;
  return {
    ref: {
      chart: str(plain["chart"]),
      version: str(plain["version"]),
      ...(repo ? { repo } : {}),
    },
    release: typeof plain["name"] === "string" && plain["name"] ? plain["name"] : r.name,
    namespace: typeof plain["namespace"] === "string" ? plain["namespace"] : "",
    values: (plain["values"] ?? {}) as Record<string, unknown>,
    skipCrds: plain["skipCrds"] === true,
    resourcePrefix: typeof plain["resourcePrefix"] === "string" ? plain["resourcePrefix"] : r.name,
  };
}

/** URNs `urn` waits for: its dependsOn, transitively, and every descendant of those. */
export function dependencyClosure(regs: readonly Registration[]): (urn: string) => Set<string> {
  const byUrn = new Map(regs.map((r) => [r.urn, r]));
  const children = new Map<string, string[]>();
  for (const r of regs) if (r.parent) children.set(r.parent, [...(children.get(r.parent) ?? []), r.urn]);
  const memo = new Map<string, Set<string>>();
  const closure = (urn: string): Set<string> => {
    const hit = memo.get(urn);
    if (hit) return hit;
    const seen = new Set<string>();
    memo.set(urn, seen);
    const stack = [...(byUrn.get(urn)?.dependsOn ?? [])];
    // An ancestor's dependsOn delays its children too.
    for (let p = byUrn.get(urn)?.parent; p; p = byUrn.get(p)?.parent)
      stack.push(...(byUrn.get(p)?.dependsOn ?? []));
    while (stack.length) {
      const u = stack.pop()!;
      if (seen.has(u)) continue;
      seen.add(u);
      stack.push(...(byUrn.get(u)?.dependsOn ?? []), ...(children.get(u) ?? []));
    }
    return seen;
  };
  return closure;
}

export interface RawObject {
  readonly object: Record<string, unknown>;
  readonly source: string;
}

/**
 * The documents of a helm template output, with the template each came from. Read with js-yaml's
 * core schema, which takes what Go's YAML takes here (multi-line quoted scalars indented no deeper
 * than their key, as some CRDs print them; no timestamp or binary types for plain scalars) and is
 * several times faster than a CST-keeping parser on megabytes of CRDs. `documents` holds what was
 * parsed before by document text: a chart rendered with other values still prints the same CRDs.
 */
export function parseManifests(text: string, documents?: Map<string, unknown>): RawObject[] {
  const out: RawObject[] = [];
  // helm separates documents with `---` and writes `# Source: <chart>/<template>` on the next line.
  for (const chunk of text.split(/^---[ \t]*$/m)) {
    if (!chunk.trim()) continue;
    let value = documents?.get(chunk);
    if (value === undefined) {
      try {
        value = loadYaml(chunk, { schema: CORE_SCHEMA });
      } catch (e) {
        throw new Error(`rendered YAML does not parse: ${(e as Error).message.split("\n")[0]}`);
      }
      documents?.set(chunk, value);
    }
    const source = /^# Source: (\S+)/m.exec(chunk)?.[1] ?? "";
    if (value === null || typeof value !== "object" || Array.isArray(value)) continue;
    const o = value as Record<string, unknown>;
    // List kinds expand to their items, as the provider does.
    if (typeof o["kind"] === "string" && o["kind"].endsWith("List") && Array.isArray(o["items"])) {
      for (const item of o["items"] as unknown[])
        if (item && typeof item === "object") out.push({ object: item as Record<string, unknown>, source });
    } else out.push({ object: o, source });
  }
  return out;
}

export type HelmRunner = (
  args: readonly string[],
  env: { home: string; input?: string },
) => Promise<HelmResult>;

/** What one `helm template` gave: its documents, or why there are none. */
export type Rendering =
  | { readonly kind: "rendered"; readonly raw: readonly RawObject[] }
  | { readonly kind: "failed"; readonly result: HelmResult }
  | { readonly kind: "unparsable"; readonly message: string };

/**
 * The renders of one preflight run (a CLI invocation, one bench round). Stacks of one run install
 * many of the same charts with the same values, and helm's output is a function of the chart, the
 * arguments and the values alone, so an identical invocation renders and parses once and its
 * stacks share the documents (read-only downstream: every registration copies what it changes).
 * With a `cache`, successful renders also persist across runs (render-cache.ts: keyed by the
 * chart's content, the arguments and the values), so a new run renders only what changed.
 */
export class RenderSession {
  private readonly renders = new Map<string, Promise<Rendering>>();
  /** Parsed documents by their text, shared by every render of the session. */
  private readonly documents = new Map<string, unknown>();
  /** The same for documents read from the persistent cache (by their JSON text). */
  private readonly cachedDocuments = new Map<string, unknown>();
  private running = 0;
  private readonly queued: (() => void)[] = [];

  constructor(
    private readonly helm: HelmRunner = runHelm,
    /** helm processes at once over all the session's stacks (they render side by side). */
    private readonly concurrency = availableParallelism(),
    /** Renders kept across runs; none by default (tests, and `--render-cache off`). */
    private readonly cache?: RenderCache,
  ) {}

  /** Renders this session took from the persistent cache, and rendered with helm. */
  readonly counts = { cached: 0, rendered: 0 };

  /** `helm template ARGS` with `values` on stdin (`--values -`); `chart` is the path in ARGS. */
  template(args: readonly string[], values: string, chart?: string): Promise<Rendering> {
    const key = JSON.stringify([args, values]);
    let hit = this.renders.get(key);
    if (!hit) this.renders.set(key, (hit = this.run(args, values, chart)));
    return hit;
  }

  private async run(args: readonly string[], values: string, chart?: string): Promise<Rendering> {
    const cacheKey =
      this.cache && chart
        ? renderKey({ path: chart, fingerprint: this.cache.fingerprint(chart) }, args, values)
        : undefined;
    const cached = cacheKey ? this.cache!.get(cacheKey, this.cachedDocuments) : undefined;
    if (cached) {
      this.counts.cached++;
      return { kind: "rendered", raw: cached };
    }
    this.counts.rendered++;
    // First come, first served: the stack that asked first, the one reported first, renders first.
    if (this.running < this.concurrency) this.running++;
    else await new Promise<void>((start) => this.queued.push(start));
    let result: HelmResult;
    try {
      // A private empty helm home per render, removed with it: a shared render must not depend on
      // the home of the stack that asked first.
      const home = mkdtempSync(join(tmpdir(), "preflight-helm-"));
      try {
        result = await this.helm(args, { home, input: values });
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
    } finally {
      // A waiting render takes the slot over; otherwise it is free.
      const next = this.queued.shift();
      if (next) next();
      else this.running--;
    }
    if (result.code !== 0) return { kind: "failed", result };
    try {
      const raw = parseManifests(result.stdout, this.documents);
      if (cacheKey) this.cache!.set(cacheKey, raw);
      return { kind: "rendered", raw };
    } catch (e) {
      return { kind: "unparsable", message: (e as Error).message };
    }
  }
}

/** CRDs' scope by `group/Kind`, and the `group/version[/Kind]` strings helm takes as API versions. */
function crdFacts(objects: Iterable<Record<string, unknown>>): {
  scope: Map<string, "Namespaced" | "Cluster">;
  apiVersions: string[];
} {
  const scope = new Map<string, "Namespaced" | "Cluster">();
  const apiVersions: string[] = [];
  for (const o of objects) {
    if (o["kind"] !== "CustomResourceDefinition") continue;
    const spec = (o["spec"] ?? {}) as Record<string, unknown>;
    const group = str(spec["group"]);
    const kind = str(((spec["names"] ?? {}) as Record<string, unknown>)["kind"]);
    scope.set(`${group}/${kind}`, spec["scope"] === "Cluster" ? "Cluster" : "Namespaced");
    for (const v of (spec["versions"] ?? []) as Record<string, unknown>[]) {
      if (v["served"] === false) continue;
      apiVersions.push(`${group}/${str(v["name"])}`, `${group}/${str(v["name"])}/${kind}`);
    }
  }
  return { scope, apiVersions };
}

const hookOf = (o: Record<string, unknown>): string | undefined => {
  const meta = (o["metadata"] ?? {}) as Record<string, unknown>;
  const hook = ((meta["annotations"] ?? {}) as Record<string, unknown>)["helm.sh/hook"];
  return typeof hook === "string" ? hook : undefined;
};

/** Limits a stderr dump to the lines that say what failed. */
function helmError(stderr: string): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("WARNING") && !/^(walk\.go|install\.go)/.test(l));
  return lines
    .slice(0, 8)
    .join("; ")
    .replace(/^Error:\s*/, "");
}

/**
 * Runs `work` on every item as soon as every item it depends on has settled, at most `concurrency`
 * at once: a chart waits for its own dependencies only, never for a whole wave of unrelated ones.
 * Among ready items the one heading the longest chain of dependents starts first (it gates the
 * most), then declaration order. Dependencies outside `items` are ignored. A cycle cannot happen in
 * a real program (the engine refuses it); if one does, what is stuck is released anyway.
 */
export async function runDag<T>(
  items: readonly T[],
  depsOf: (item: T) => readonly T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  const index = new Map(items.map((t, i) => [t, i]));
  const deps = items.map((t) =>
    [...new Set(depsOf(t))].map((d) => index.get(d)).filter((d) => d !== undefined),
  );
  const dependents = items.map((): number[] => []);
  deps.forEach((ds, i) => ds.forEach((d) => d !== i && dependents[d]!.push(i)));
  const waiting = deps.map((ds, i) => ds.filter((d) => d !== i).length);
  const height: number[] = [];
  const heightOf = (i: number, trail: Set<number>): number => {
    if (height[i] !== undefined) return height[i];
    if (trail.has(i)) return 0;
    trail.add(i);
    const h = Math.max(0, ...dependents[i]!.map((d) => 1 + heightOf(d, trail)));
    trail.delete(i);
    return (height[i] = h);
  };
  items.forEach((_, i) => heightOf(i, new Set()));
  const queued = new Array<boolean>(items.length).fill(false);
  const ready: number[] = [];
  const enqueue = (i: number) => {
    if (queued[i]) return;
    queued[i] = true;
    ready.push(i);
    ready.sort((a, b) => height[b]! - height[a]! || a - b);
  };
  waiting.forEach((w, i) => w === 0 && enqueue(i));
  const limit = Math.max(1, concurrency);
  let running = 0;
  let settled = 0;
  return new Promise<void>((resolve, reject) => {
    let failed = false;
    const fill = () => {
      if (failed) return;
      if (settled === items.length) return resolve();
      if (!ready.length && running === 0) items.forEach((_, i) => enqueue(i));
      while (running < limit && ready.length) {
        const i = ready.shift()!;
        running++;
        work(items[i]!).then(
          () => {
            running--;
            settled++;
            for (const d of dependents[i]!) if (--waiting[d]! === 0) enqueue(d);
            fill();
          },
          (e: unknown) => {
            failed = true;
            reject(e instanceof Error ? e : new Error(String(e)));
          },
        );
      }
    };
    fill();
  });
}

/** Renders every Chart of the plan. */
export async function renderCharts(
  regs: readonly Registration[],
  options: RenderOptions,
): Promise<RenderResult> {
  const charts = regs.filter((r) => r.type === CHART_TYPE);
  const findings: Finding[] = [];
  const droppedHooks: DroppedHook[] = [];
  const sourceErrors: ChartSourceError[] = [];
  const done: ChartRender[] = [];
  const rawByChart = new Map<string, readonly RawObject[]>();
  const session = options.session ?? new RenderSession();
  const closure = dependencyClosure(regs);
  const firstParty = regs
    .filter((r) => r.custom && r.type.startsWith("kubernetes:"))
    .map((r) => options.plainOf(r));
  const firstPartyCrds = crdFacts(firstParty);

  const chartDeps = new Map(
    charts.map((c) => [c, charts.filter((d) => d !== c && closure(c.urn).has(d.urn))]),
  );
  await runDag(
    charts,
    (c) => chartDeps.get(c)!,
    options.concurrency ?? availableParallelism(),
    async (c) => {
      const inputs = chartInputs(c, options.plainOf(c));
      const refText = `${inputs.ref.chart}-${inputs.ref.version}`;
      let path: string;
      try {
        path = await options.source.resolve(inputs.ref);
      } catch (e) {
        if (e instanceof ChartSourceError) return void sourceErrors.push(e);
        throw e;
      }
      const depsObjects = chartDeps
        .get(c)!
        .flatMap((d) => (rawByChart.get(d.urn) ?? []).map((x) => x.object));
      const deps = crdFacts(depsObjects);
      const args = [
        "template",
        inputs.release,
        path,
        "--namespace",
        inputs.namespace || "default",
        "--kube-version",
        options.kubeVersion,
        "--values",
        "-",
        ...(inputs.skipCrds ? [] : ["--include-crds"]),
        ...[...new Set([...firstPartyCrds.apiVersions, ...deps.apiVersions])].flatMap((v) => [
          "--api-versions",
          v,
        ]),
      ];
      const rendering = await session.template(args, JSON.stringify(inputs.values), path);
      if (rendering.kind === "failed") {
        const r = rendering.result;
        const text = helmError(r.stderr) || firstLine(r.stderr);
        if (/values don't meet the specifications of the schema/.test(r.stderr))
          findings.push({
            check: "render",
            severity: "error",
            urn: c.urn,
            field: "values",
            message: `chart ${refText} (release ${inputs.release}): the values fail the chart's values.schema.json, so helm.v4.Chart fails: ${text}`,
          });
        // Anything else is no verdict on the plan: the chart could not be rendered at all.
        else
          sourceErrors.push(
            new ChartSourceError(
              inputs.ref,
              `helm template fails: ${text}`,
              "fix the values or the chart package",
            ),
          );
        return;
      }
      if (rendering.kind === "unparsable")
        return void findings.push({
          check: "render",
          severity: "error",
          urn: c.urn,
          message: `chart ${refText}: ${rendering.message}`,
        });
      rawByChart.set(c.urn, rendering.raw);
    },
  );

  // Namespace scope of custom kinds comes from every CRD the stack installs.
  const allRaw = [...rawByChart.values()].flat().map((x) => x.object);
  const scope = crdFacts([...firstParty, ...allRaw]).scope;
  const unresolved = new Set<string>();
  const registrations: Registration[] = [];
  for (const c of charts) {
    const raw = rawByChart.get(c.urn);
    if (!raw) continue;
    const inputs = chartInputs(c, options.plainOf(c));
    const refText = `${inputs.ref.chart}-${inputs.ref.version}`;
    const seen = new Map<string, string>();
    let count = 0;
    for (const { object, source } of raw) {
      const hook = hookOf(object);
      const id = identity(object);
      if (hook) {
        // Test hooks are excluded by helm.v4.Chart in every mode; say nothing of them.
        if (hook.split(",").some((h) => h.trim() === "test")) continue;
        const namespace = id.namespace ?? (inputs.namespace || undefined);
        droppedHooks.push({
          urn: c.urn,
          kind: id.kind,
          name: id.name,
          ...(namespace ? { namespace } : {}),
          events: hook,
          creates: hookCreates(object, namespace),
        });
        findings.push({
          check: "render",
          severity: "warning",
          urn: c.urn,
          field: source,
          message: `chart ${refText}: Helm hook ${id.kind} ${id.name} (${hook}) is dropped by helm.v4.Chart and never runs`,
        });
        continue;
      }
      if (!id.kind || !id.apiVersion || !id.name) {
        findings.push({
          check: "render",
          severity: "error",
          urn: c.urn,
          field: source,
          message: `chart ${refText}: ${source || "a template"} renders an object without kind, apiVersion or metadata.name`,
        });
        continue;
      }
      const apiVersion = id.apiVersion.startsWith("core/") ? id.apiVersion.slice(5) : id.apiVersion;
      const group = groupOf(apiVersion);
      const obj: Record<string, unknown> = { ...object, apiVersion };
      if (!id.namespace) {
        const s = isBuiltinGroup(group)
          ? BUILTIN_CLUSTER_SCOPED_KINDS.has(id.kind)
            ? "Cluster"
            : "Namespaced"
          : scope.get(`${group}/${id.kind}`);
        if (s === "Namespaced")
          obj["metadata"] = {
            ...(object["metadata"] as Record<string, unknown>),
            namespace: inputs.namespace || "default",
          };
        else if (!s) unresolved.add(`${apiVersion}/${id.kind}`);
      }
      const ns = ((obj["metadata"] ?? {}) as Record<string, unknown>)["namespace"];
      const name = `${inputs.resourcePrefix}:${typeof ns === "string" && ns ? `${ns}/` : ""}${id.name}`;
      const type = typeToken(apiVersion, id.kind);
      const urn = childUrn(c.urn, type, name);
      const earlier = seen.get(urn);
      if (earlier !== undefined) {
        findings.push({
          check: "render",
          severity: "error",
          urn,
          field: source,
          message: `chart ${refText} renders ${describe(obj)} twice (${earlier} and ${source}): duplicate resource URN, helm.v4.Chart fails`,
        });
        continue;
      }
      seen.set(urn, source);
      if (apiVersion === "v1" && id.kind === "Secret")
        for (const k of ["data", "stringData"]) if (k in obj) obj[k] = wrapSecret(obj[k]);
      registrations.push({
        urn,
        type,
        name,
        parent: c.urn,
        custom: true,
        // The Go SDK gives a child its parent's protect.
        protect: c.protect,
        dependsOn: [...c.dependsOn],
        inputs: obj,
        rendered: { chartUrn: c.urn, ref: refText, source },
      });
      count++;
    }
    done.push({ urn: c.urn, ref: refText, objects: count });
  }
  for (const k of unresolved)
    findings.push({
      check: "render",
      severity: "warning",
      urn: charts[0]?.urn ?? "",
      message: `no CRD in the plan says whether ${k} is namespaced; rendered without a namespace, as helm.v4.Chart does offline`,
    });
  return { registrations, findings, droppedHooks, sourceErrors, charts: done, total: charts.length };
}
