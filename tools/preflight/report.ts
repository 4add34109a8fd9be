/** Human and machine views of a plan: the component tree, the summary, markdown and files. */
import { createHash } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { levelColour, PLAIN, type Palette } from "./colour";
import {
  findingHint,
  hintContextFor,
  leakHint,
  policyHint,
  resourceHint,
  warningHint,
  type HintContext,
} from "./hints";
import type { Plan, PlanResource } from "./run";
import { isKubernetesObjectType } from "./schemas";

/** A plan as plan.json and the JSON report write it: every finding with its `hint`. */
export type HintedPlan = Omit<
  Plan,
  "violations" | "schemaErrors" | "secretLeaks" | "findings" | "warnings"
> & {
  readonly violations: (Plan["violations"][number] & { hint: string })[];
  readonly schemaErrors: (Plan["schemaErrors"][number] & { hint: string })[];
  readonly secretLeaks: (Plan["secretLeaks"][number] & { hint: string })[];
  readonly findings: (Plan["findings"][number] & { hint: string })[];
  readonly warnings: (Plan["warnings"][number] & { hint: string })[];
};

/** The plan with a remediation hint on every finding (the file to edit). */
export function withHints(
  plan: Plan,
  ctx: HintContext = hintContextFor(plan.stack, plan.resources),
): HintedPlan {
  const names = new Map(plan.resources.map((r) => [r.urn, r.name]));
  return {
    ...plan,
    violations: plan.violations.map((v) => ({
      ...v,
      hint: policyHint(
        { policy: v.policy, urn: v.urn, ...(names.has(v.urn) ? { name: names.get(v.urn)! } : {}) },
        ctx,
      ),
    })),
    schemaErrors: plan.schemaErrors.map((e) => ({ ...e, hint: resourceHint(e.urn, ctx) })),
    secretLeaks: plan.secretLeaks.map((l) => ({ ...l, hint: leakHint(l.urn, ctx) })),
    findings: plan.findings.map((f) => ({ ...f, hint: findingHint(f, ctx) })),
    warnings: (plan.warnings ?? []).map((w) => ({ ...w, hint: warningHint(w.urn, ctx) })),
  };
}

/** Warnings of every kind: what never runs or needs outside help, and what the program logged. */
const warningCount = (plan: Plan) => plan.summary.fidelityWarnings + (plan.summary.programWarnings ?? 0);

interface TreeNode {
  readonly r: PlanResource;
  readonly children: TreeNode[];
  total: number;
}

function buildTree(plan: Plan): TreeNode[] {
  const nodes = new Map(plan.resources.map((r) => [r.urn, { r, children: [], total: 0 }]));
  const roots: TreeNode[] = [];
  for (const node of nodes.values()) {
    const parent = node.r.parent ? nodes.get(node.r.parent) : undefined;
    (parent ? parent.children : roots).push(node);
  }
  const count = (n: TreeNode): number =>
    (n.total = n.children.reduce((s, c) => s + count(c) + (c.r.custom ? 1 : 0), 0));
  roots.forEach(count);
  return roots;
}

/** Components only, each with the number of resources below it. */
export function componentTree(plan: Plan): string {
  const lines: string[] = [];
  const visit = (n: TreeNode, indent: string) => {
    if (n.r.custom) return;
    lines.push(`${indent}${n.r.type} ${n.r.name} (${n.total} resources)`);
    for (const c of n.children) visit(c, `${indent}  `);
  };
  buildTree(plan).forEach((n) => visit(n, ""));
  return lines.join("\n");
}

export function summaryLine(plan: Plan, paint: Palette = PLAIN): string {
  const s = plan.summary;
  const charts =
    plan.charts || s.charts.total === 0
      ? `${s.charts.rendered} charts rendered (${s.charts.objects} objects)` +
        (s.charts.notRendered ? `, ${s.charts.notRendered} not rendered` : "")
      : `${s.charts.total} charts not rendered (no --charts)`;
  // A count that fails the preflight is red, a warning yellow, when colours are on.
  const bad = (n: number, text: string) => (n > 0 ? paint.red(text) : text);
  const warn = (n: number, text: string) => (n > 0 ? paint.yellow(text) : text);
  const warnings = warningCount(plan);
  return (
    `${paint.bold(plan.stack)}: ${s.resources} resources in ${s.components} components; ${charts}; ` +
    `${bad(s.mandatory, `${s.mandatory} mandatory`)}, ${warn(s.advisory, `${s.advisory} advisory`)}, ${s.remediate} remediated; ` +
    `${bad(s.schemaErrors, `${s.schemaErrors} schema errors`)}; ${bad(s.secretLeaks, `${s.secretLeaks} secret leaks`)}; ` +
    `${bad(s.fidelityErrors, `${s.fidelityErrors} fidelity errors`)}, ${warn(warnings, `${warnings} warnings`)}; ${s.ms} ms`
  );
}

export function problemsText(
  plan: Plan,
  paint: Palette = PLAIN,
  ctx: HintContext = hintContextFor(plan.stack, plan.resources),
): string {
  const h = withHints(plan, ctx);
  const lines: string[] = [];
  const tag = (level: string, text = level) => levelColour(paint, level)(`[${text}]`);
  const fix = (hint: string) => paint.dim(`      fix: ${hint}`);
  for (const v of h.violations)
    lines.push(`  ${tag(v.level)} ${v.policy}: ${v.message}\n      at ${v.urn}\n${fix(v.hint)}`);
  for (const e of h.schemaErrors)
    lines.push(`  ${tag("schema")} ${e.message}\n      at ${e.urn}\n${fix(e.hint)}`);
  const chartOf = new Map(plan.resources.filter((r) => r.rendered).map((r) => [r.urn, r.parent ?? ""]));
  const from = (urn: string) => {
    const chart = chartOf.get(urn);
    return chart ? ` (rendered by ${chart.split("::").pop() ?? chart})` : "";
  };
  for (const l of h.secretLeaks)
    lines.push(
      `  ${tag("leak")} ${l.key} found at ${l.path}\n      in ${l.urn}${from(l.urn)}\n${fix(l.hint)}`,
    );
  for (const f of h.findings)
    lines.push(
      `  ${tag(f.severity === "warning" ? "warning" : "error", `${f.check}${f.severity === "warning" ? " warning" : ""}`)} ${f.message}${f.field ? ` (field ${f.field})` : ""}\n      at ${f.urn}\n${fix(f.hint)}`,
    );
  for (const w of h.warnings)
    lines.push(`  ${tag("warning")} ${w.message}${w.urn ? `\n      at ${w.urn}` : ""}\n${fix(w.hint)}`);
  return lines.join("\n");
}

const mermaidId = (urn: string, ids: Map<string, string>) => {
  let id = ids.get(urn);
  if (!id) ids.set(urn, (id = `n${ids.size}`));
  return id;
};

/**
 * The Markdown report: every evaluated stack's row, tree and findings, and every stack that has no
 * plan (a config error, an unreadable file) with what stopped it, so no requested stack is missing.
 */
export function markdown(
  plans: readonly Plan[],
  unevaluated: readonly { stack: string; status: string; lines: readonly string[] }[] = [],
): string {
  const out: string[] = [
    "# Preflight",
    "",
    "| stack | resources | components | charts rendered | mandatory | advisory | schema errors | secret leaks | would fail | warnings |",
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const p of plans) {
    const s = p.summary;
    out.push(
      `| ${p.stack} | ${s.resources} | ${s.components} | ${s.charts.rendered} of ${s.charts.total} | ${s.mandatory} | ${s.advisory} | ${s.schemaErrors} | ${s.secretLeaks} | ${s.fidelityErrors} | ${warningCount(p)} |`,
    );
  }
  for (const u of unevaluated) out.push(`| ${u.stack} | ${u.status} | | | | | | | | |`);
  for (const u of unevaluated)
    out.push("", `## ${u.stack}: ${u.status}`, "", ...u.lines.map((l) => `- ${l.replace(/\|/g, "\\|")}`));
  for (const p of plans) {
    out.push("", `## ${p.stack}`, "", "```mermaid", "flowchart LR");
    const ids = new Map<string, string>();
    const tree = buildTree(p);
    const visit = (n: TreeNode) => {
      if (n.r.custom) return;
      const id = mermaidId(n.r.urn, ids);
      out.push(`  ${id}["${n.r.name}<br/>${n.r.type.replace(/"/g, "'")}<br/>${n.total} resources"]`);
      for (const c of n.children) {
        if (c.r.custom) continue;
        out.push(`  ${id} --> ${mermaidId(c.r.urn, ids)}`);
        visit(c);
      }
    };
    tree.forEach(visit);
    out.push("```");
    const h = withHints(p);
    const cell = (text: string) => text.replace(/\|/g, "\\|");
    const at = (urn: string) => (urn ? `\`${urn.split("::").pop() ?? ""}\`` : "");
    const findings = [
      ...h.violations
        .filter((v) => v.level !== "remediate")
        .map((v) => `| ${v.level} | \`${v.policy}\` | ${cell(v.message)} | ${at(v.urn)} | ${cell(v.hint)} |`),
      ...h.schemaErrors.map((e) => `| schema | | ${cell(e.message)} | ${at(e.urn)} | ${cell(e.hint)} |`),
      ...h.secretLeaks.map((l) => `| leak | \`${l.key}\` | ${l.path} | ${at(l.urn)} | ${cell(l.hint)} |`),
      // What the engine or the API server would refuse (errors) or what never runs (warnings).
      ...h.findings.map(
        (f) =>
          `| ${f.check}${f.severity === "warning" ? " warning" : ""} | ${f.field ? `\`${f.field}\`` : ""} | ${cell(f.message)} | ${at(f.urn)} | ${cell(f.hint)} |`,
      ),
      // What the program logged (pulumi.log.warn): on stderr only, it would be lost in CI.
      ...h.warnings.map((w) => `| warning | | ${cell(w.message)} | ${at(w.urn ?? "")} | ${cell(w.hint)} |`),
    ];
    if (findings.length)
      out.push(
        "",
        "| level | policy / key | message | resource | fix |",
        "|---|---|---|---|---|",
        ...findings,
      );
    else out.push("", "No findings.");
  }
  return out.join("\n") + "\n";
}

/**
 * A manifest's file name, from its URN: `<kind>.<group>_<name>_<hash>.yaml`, lower case, only
 * `[a-z0-9._-]`, the hash (of the whole URN) keeping apart what the rest would merge (the same
 * type and name under two parents, names that differ in case or in a replaced character). The same
 * resource has the same file in every run, so two runs' manifests compare with a plain `diff -r`.
 */
export function manifestFileName(urn: string, type: string, name: string): string {
  const [, apiVersion = "", kind = "object"] = type.split(":");
  const group = apiVersion.includes("/") ? apiVersion.split("/")[0]! : "";
  const base = `${kind}${group && group !== "core" ? `.${group}` : ""}_${name}`
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/^[.-]+/, "")
    .slice(0, 150);
  return `${base}_${createHash("sha256").update(urn).digest("hex").slice(0, 8)}.yaml`;
}

/** out/<stack>/plan.json (every finding with its hint) and out/<stack>/manifests/*.yaml (Secret data redacted). */
export function writePlanFiles(outDir: string, plan: Plan): void {
  const dir = join(outDir, plan.stack);
  rmSync(join(dir, "manifests"), { recursive: true, force: true });
  mkdirSync(join(dir, "manifests"), { recursive: true });
  writeFileSync(join(dir, "plan.json"), JSON.stringify(withHints(plan), null, 2) + "\n");
  for (const r of plan.resources) {
    if (!r.custom || !isKubernetesObjectType(r.type)) continue;
    const obj = { ...(r.inputs as Record<string, unknown>) };
    if (obj["kind"] === "Secret") {
      for (const field of ["data", "stringData"]) {
        const data = obj[field] as Record<string, unknown> | undefined;
        if (data) obj[field] = Object.fromEntries(Object.keys(data).map((k) => [k, "[redacted]"]));
      }
    }
    writeFileSync(join(dir, "manifests", manifestFileName(r.urn, r.type, r.name)), stringify(obj));
  }
}
