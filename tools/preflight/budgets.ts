/**
 * Await budgets: pulumi-kubernetes waits for each awaited kind to become ready for a bounded time
 * and fails the update when it runs out. A workload that legitimately needs longer to start (a
 * large image to pull, a model to load) fails `pulumi up` although nothing is wrong with it. This
 * check compares the start budget the program estimates with the await budget the provider would
 * apply, offline.
 *
 * The provider's rules (pulumi-kubernetes provider/pkg/await/await.go, awaiters.go, deployment.go,
 * statefulset.go, daemonset.go, job.go, pod.go, service.go, ingress.go and
 * provider/pkg/metadata/overrides.go):
 *
 * - Create and update await with a timeout of 10 minutes, unless the resource's `customTimeouts`
 *   (create, resp. update; the engine passes them in seconds) is set, else unless the
 *   `pulumi.com/timeoutSeconds` annotation holds an integer. The kind-specific awaiters
 *   (Deployment, StatefulSet, DaemonSet, Job, Pod, Service, Ingress: `Default<Kind>TimeoutMins =
 *   10`) all receive that timeout.
 * - A few awaiters also bound their own watch: PersistentVolume and PersistentVolumeClaim 5 minutes,
 *   ResourceQuota 1 minute, a `kubernetes.io/service-account-token` Secret 5 seconds,
 *   ReplicationController 10 minutes; the effective budget is the smaller of the two.
 * - `pulumi.com/skipAwait: "true"` skips the await entirely; so does a kind with no awaiter
 *   (ConfigMap, RBAC, custom resources...) unless `pulumi.com/waitFor` asks for a condition, which
 *   is then awaited with the same timeout. (`PULUMI_K8S_AWAIT_ALL=true` in the provider's
 *   environment also awaits every kind; the plan cannot see it and it is not modelled.)
 * - The Deployment awaiter fails as soon as the Deployment reports `Progressing=False`
 *   (ProgressDeadlineExceeded), i.e. after `spec.progressDeadlineSeconds` (600 s by default) without
 *   progress.
 */
import { obj, str } from "../../policies/lib/values";
import { describe, identity, type Finding, type PlanObject } from "./objects";

/** The provider's default create/update await timeout (await.go: `10 * time.Minute`). */
export const DEFAULT_AWAIT_SECONDS = 600;
/** Deployment `spec.progressDeadlineSeconds` when unset (Kubernetes API default). */
export const DEFAULT_PROGRESS_DEADLINE_SECONDS = 600;

/** `apiVersion/kind` → hard bound of the kind's own watch, or `null` when bound only by the timeout. */
const AWAITED: ReadonlyMap<string, number | null> = new Map<string, number | null>([
  ["apps/Deployment", null],
  ["extensions/Deployment", null],
  ["apps/StatefulSet", null],
  ["apps/DaemonSet", null],
  ["extensions/DaemonSet", null],
  ["batch/Job", null],
  ["/Pod", null],
  ["/Service", null],
  ["networking.k8s.io/Ingress", null],
  ["extensions/Ingress", null],
  ["/ReplicationController", 600],
  ["/PersistentVolume", 300],
  ["/PersistentVolumeClaim", 300],
  ["/ResourceQuota", 60],
]);

const UNITS: Readonly<Record<string, number>> = {
  ns: 1e-9,
  us: 1e-6,
  µs: 1e-6,
  μs: 1e-6,
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
};

/**
 * Parses a Pulumi duration string (`45m`, `1h30m`, `90s`, `1.5h`, `300ms`) as the engine does
 * (Go's `time.ParseDuration`: a sequence of decimal numbers with units ns, us, µs, ms, s, m, h;
 * `0` alone is allowed). Returns seconds; throws on anything else (including days, `1d`, which
 * the engine rejects although the SDK docs mention it).
 */
export function parseDuration(s: string): number {
  const text = s.trim();
  if (text === "0" || text === "+0" || text === "-0") return 0;
  const m = /^([+-]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$/.exec(text);
  if (!m) throw new Error(`invalid duration "${s}" (expected e.g. 45m, 1h30m, 90s)`);
  let total = 0;
  for (const part of m[2]!.matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    total += Number(part[1]) * UNITS[part[2]!]!;
  }
  return m[1] === "-" ? -total : total;
}

function annotations(o: PlanObject): Record<string, unknown> {
  return obj(obj(o.object["metadata"])?.["annotations"]) ?? {};
}

function kindKey(o: PlanObject): string {
  const { apiVersion, kind } = identity(o.object);
  const slash = apiVersion.lastIndexOf("/");
  return `${slash < 0 ? "" : apiVersion.slice(0, slash)}/${kind}`;
}

/** The await timeout and where it comes from. */
export interface AwaitBudget {
  readonly seconds: number;
  /** `default 10m`, `customTimeouts.create 45m`, `annotation pulumi.com/timeoutSeconds=1800`, ... */
  readonly source: string;
}

/**
 * The await budget of an object for `operation` (create by default), with its source; undefined
 * when the provider does not await the object (skipAwait, or a kind without an awaiter and no
 * `pulumi.com/waitFor`). Throws on an unparseable `customTimeouts`.
 */
export function awaitBudget(
  o: PlanObject,
  operation: "create" | "update" = "create",
): AwaitBudget | undefined {
  const ann = annotations(o);
  if (str(ann["pulumi.com/skipAwait"]) === "true") return undefined;
  const key = kindKey(o);
  const saToken = key === "/Secret" && o.object["type"] === "kubernetes.io/service-account-token";
  const waitFor = typeof ann["pulumi.com/waitFor"] === "string" && ann["pulumi.com/waitFor"] !== "";
  if (!AWAITED.has(key) && !saToken && !waitFor) return undefined;
  let timeout: AwaitBudget = { seconds: DEFAULT_AWAIT_SECONDS, source: "the provider default 10m" };
  const custom = o.customTimeouts?.[operation];
  const customSeconds = custom ? Math.trunc(parseDuration(custom)) : 0;
  const annotated = str(ann["pulumi.com/timeoutSeconds"]);
  if (customSeconds !== 0)
    timeout = { seconds: customSeconds, source: `customTimeouts.${operation} ${custom}` };
  else if (annotated !== undefined && /^[+-]?\d+$/.test(annotated.trim()))
    timeout = {
      seconds: Number(annotated.trim()),
      source: `annotation pulumi.com/timeoutSeconds=${annotated.trim()}`,
    };
  const bound = waitFor ? null : saToken ? 5 : (AWAITED.get(key) ?? null);
  if (bound !== null && bound < timeout.seconds)
    return { seconds: bound, source: `the ${identity(o.object).kind} awaiter's own ${bound}s watch` };
  return timeout;
}

/** Seconds pulumi-kubernetes awaits the object on create; undefined when it does not await it. */
export function awaitBudgetSeconds(
  o: PlanObject,
  operation: "create" | "update" = "create",
): number | undefined {
  return awaitBudget(o, operation)?.seconds;
}

const fmt = (s: number): string => {
  if (s >= 3600 && s % 60 === 0) return `${Math.floor(s / 3600)}h${s % 3600 ? `${(s % 3600) / 60}m` : ""}`;
  if (s >= 60 && s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
};

const finding = (o: PlanObject, field: string, message: string, target?: string): Finding => ({
  check: "budget",
  severity: "error",
  urn: o.urn,
  field,
  ...(target ? { target } : {}),
  message,
});

/**
 * Budget findings: a workload whose start budget (estimated by the caller: image pull, model
 * load...; per pod) or whose `spec.progressDeadlineSeconds` exceeds what pulumi-kubernetes awaits,
 * and a Deployment whose start budget exceeds its progress deadline (the controller reports
 * ProgressDeadlineExceeded and the awaiter fails). A StatefulSet with `OrderedReady` pod
 * management starts its replicas one after another, so its budget is per pod × replicas.
 */
export function budgetFindings(
  objects: readonly PlanObject[],
  startBudgets: ReadonlyMap<string, { readonly seconds: number; readonly reason: string }>,
): Finding[] {
  const out: Finding[] = [];
  for (const o of objects) {
    const start = startBudgets.get(o.urn);
    const { kind } = identity(o.object);
    const spec = obj(o.object["spec"]) ?? {};
    const pd = spec["progressDeadlineSeconds"];
    const isDeployment = kind === "Deployment";
    if (!start && !(isDeployment && typeof pd === "number")) continue;
    let budget: AwaitBudget | undefined;
    try {
      budget = awaitBudget(o);
    } catch (e) {
      out.push(finding(o, "customTimeouts.create", `${describe(o.object)}: ${(e as Error).message}.`));
      continue;
    }
    const who = describe(o.object);
    let need = start?.seconds;
    let why = start?.reason ?? "";
    if (
      start &&
      kind === "StatefulSet" &&
      (str(spec["podManagementPolicy"]) ?? "OrderedReady") === "OrderedReady"
    ) {
      const replicas = typeof spec["replicas"] === "number" ? spec["replicas"] : 1;
      if (replicas > 1) {
        need = start.seconds * replicas;
        why = `${start.reason}, × ${replicas} replicas started one after another (OrderedReady)`;
      }
    }
    if (budget && need !== undefined && need > budget.seconds) {
      out.push(
        finding(
          o,
          "customTimeouts.create",
          `${who} needs about ${fmt(need)} to start (${why}), but pulumi-kubernetes awaits it for only ${fmt(budget.seconds)} (${budget.source}); set customTimeouts.create (and update) to at least ${fmt(Math.ceil(need))} or the pulumi.com/timeoutSeconds annotation.`,
        ),
      );
    }
    if (!isDeployment) continue;
    const deadline = typeof pd === "number" ? pd : DEFAULT_PROGRESS_DEADLINE_SECONDS;
    if (budget && typeof pd === "number" && pd > budget.seconds) {
      out.push(
        finding(
          o,
          "spec.progressDeadlineSeconds",
          `${who} spec.progressDeadlineSeconds is ${fmt(pd)}, longer than the ${fmt(budget.seconds)} pulumi-kubernetes awaits it (${budget.source}): a rollout the controller still counts as progressing fails the update; raise customTimeouts.create/update to at least ${fmt(pd)}.`,
        ),
      );
    }
    if (budget && need !== undefined && need > deadline) {
      out.push(
        finding(
          o,
          "spec.progressDeadlineSeconds",
          `${who} needs about ${fmt(need)} to start (${why}), longer than its progress deadline of ${fmt(deadline)}${typeof pd === "number" ? "" : " (the default)"}: the Deployment reports ProgressDeadlineExceeded and the await fails; set spec.progressDeadlineSeconds to at least ${fmt(Math.ceil(need))}.`,
        ),
      );
    }
  }
  return out;
}
