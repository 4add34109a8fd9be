/**
 * The fidelity checks over the whole plan, first-party and rendered objects alike: what the engine
 * would refuse (two resources owning one object), what the API server would reject (Pod Security
 * admission), what would never start (dangling references, await budgets). Reference integrity
 * needs every chart's objects, so it runs in render mode only; the others run always.
 */
import { admissionFindings } from "./admission";
import { budgetFindings } from "./budgets";
import { K3S_CRDS, referenceFindings } from "./references";
import type { Registration } from "./recorder";
import { describe, identity, type Finding, type PlanObject } from "./objects";
import { groupOf } from "./objects";
import { dependencyClosure, type DroppedHook } from "./render";
import { isKubernetesObjectType } from "./schemas";

/** The plan's Kubernetes objects, with what each waits for. */
export function planObjects(
  regs: readonly Registration[],
  plainOf: (r: Registration) => Record<string, unknown>,
): PlanObject[] {
  const closure = dependencyClosure(regs);
  const out: PlanObject[] = [];
  for (const r of regs) {
    if (!r.custom || !isKubernetesObjectType(r.type)) continue;
    out.push({
      urn: r.urn,
      type: r.type,
      name: r.name,
      ...(r.parent ? { parent: r.parent } : {}),
      dependsOn: [...closure(r.urn)],
      rendered: r.rendered !== undefined,
      ...(r.rendered ? { chart: { urn: r.rendered.chartUrn, ref: r.rendered.ref } } : {}),
      ...(r.customTimeouts ? { customTimeouts: r.customTimeouts } : {}),
      object: plainOf(r),
    });
  }
  return out;
}

/**
 * Two resources that manage the same Kubernetes object (group, kind, namespace, name): the second
 * apply fails or the two fight over it on every update.
 */
export function ownershipFindings(objects: readonly PlanObject[]): Finding[] {
  const owners = new Map<string, PlanObject>();
  const findings: Finding[] = [];
  for (const o of objects) {
    const id = identity(o.object);
    const key = `${groupOf(id.apiVersion)}/${id.kind}/${id.namespace ?? ""}/${id.name}`;
    const first = owners.get(key);
    if (!first) {
      owners.set(key, o);
      continue;
    }
    // Duplicates inside one chart are reported by the render itself (duplicate URN).
    if (first.urn === o.urn) continue;
    const by = (x: PlanObject) => (x.chart ? `chart ${x.chart.ref}` : "the program");
    findings.push({
      check: "render",
      severity: "error",
      urn: o.urn,
      target: first.urn,
      message: `${describe(o.object)} is managed twice, by ${by(first)} (${first.name}) and by ${by(o)} (${o.name}): the second apply fails; keep one owner`,
    });
  }
  return findings;
}

export interface FidelityOptions {
  /** Whether charts were rendered (reference integrity needs their objects). */
  readonly rendered: boolean;
  readonly droppedHooks: readonly DroppedHook[];
  /** Per workload URN, the time it needs to become ready (image pull, model load). */
  readonly startBudgets?: ReadonlyMap<string, { seconds: number; reason: string }>;
}

const K3S_TYPE = "platform:cluster:K3sCluster";

export function fidelityFindings(
  regs: readonly Registration[],
  plainOf: (r: Registration) => Record<string, unknown>,
  options: FidelityOptions,
): Finding[] {
  const objects = planObjects(regs, plainOf);
  const k3s = regs.some((r) => r.type === K3S_TYPE);
  return [
    ...ownershipFindings(objects),
    ...admissionFindings(objects),
    ...(options.rendered
      ? referenceFindings(objects, {
          droppedHooks: options.droppedHooks,
          ...(k3s ? { clusterCrds: K3S_CRDS } : {}),
        })
      : []),
    ...budgetFindings(objects, options.startBudgets ?? new Map()),
  ];
}
