/** Human and machine views of a plan: the component tree, the summary, markdown and files. */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import type { Plan, PlanResource } from "./run";
import { isKubernetesObjectType } from "./schemas";

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

export function summaryLine(plan: Plan): string {
  const s = plan.summary;
  const charts =
    plan.charts || s.charts.total === 0
      ? `${s.charts.rendered} charts rendered (${s.charts.objects} objects)` +
        (s.charts.notRendered ? `, ${s.charts.notRendered} not rendered` : "")
      : `${s.charts.total} charts not rendered (no --charts)`;
  return (
    `${plan.stack}: ${s.resources} resources in ${s.components} components; ${charts}; ` +
    `${s.mandatory} mandatory, ${s.advisory} advisory, ${s.remediate} remediated; ` +
    `${s.schemaErrors} schema errors; ${s.secretLeaks} secret leaks; ` +
    `${s.fidelityErrors} fidelity errors, ${s.fidelityWarnings} warnings; ${s.ms} ms`
  );
}

export function problemsText(plan: Plan): string {
  const lines: string[] = [];
  for (const v of plan.violations) lines.push(`  [${v.level}] ${v.policy}: ${v.message}\n      at ${v.urn}`);
  for (const e of plan.schemaErrors) lines.push(`  [schema] ${e.message}\n      at ${e.urn}`);
  const chartOf = new Map(plan.resources.filter((r) => r.rendered).map((r) => [r.urn, r.parent ?? ""]));
  const from = (urn: string) => {
    const chart = chartOf.get(urn);
    return chart ? ` (rendered by ${chart.split("::").pop() ?? chart})` : "";
  };
  for (const l of plan.secretLeaks)
    lines.push(`  [leak] ${l.key} found at ${l.path}\n      in ${l.urn}${from(l.urn)}`);
  for (const f of plan.findings)
    lines.push(
      `  [${f.check}${f.severity === "warning" ? " warning" : ""}] ${f.message}${f.field ? ` (field ${f.field})` : ""}\n      at ${f.urn}`,
    );
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
      `| ${p.stack} | ${s.resources} | ${s.components} | ${s.charts.rendered} of ${s.charts.total} | ${s.mandatory} | ${s.advisory} | ${s.schemaErrors} | ${s.secretLeaks} | ${s.fidelityErrors} | ${s.fidelityWarnings} |`,
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
    const findings = [
      ...p.violations
        .filter((v) => v.level !== "remediate")
        .map(
          (v) =>
            `| ${v.level} | \`${v.policy}\` | ${v.message.replace(/\|/g, "\\|")} | \`${v.urn.split("::").pop() ?? ""}\` |`,
        ),
      ...p.schemaErrors.map(
        (e) => `| schema | | ${e.message.replace(/\|/g, "\\|")} | \`${e.urn.split("::").pop() ?? ""}\` |`,
      ),
      ...p.secretLeaks.map(
        (l) => `| leak | \`${l.key}\` | ${l.path} | \`${l.urn.split("::").pop() ?? ""}\` |`,
      ),
      // What the engine or the API server would refuse (errors) or what never runs (warnings).
      ...p.findings.map(
        (f) =>
          `| ${f.check}${f.severity === "warning" ? " warning" : ""} | ${f.field ? `\`${f.field}\`` : ""} | ${f.message.replace(/\|/g, "\\|")} | \`${f.urn.split("::").pop() ?? ""}\` |`,
      ),
    ];
    if (findings.length)
      out.push("", "| level | policy / key | message | resource |", "|---|---|---|---|", ...findings);
    else out.push("", "No findings.");
  }
  return out.join("\n") + "\n";
}

/** out/<stack>/plan.json and out/<stack>/manifests/*.yaml (Secret data redacted). */
export function writePlanFiles(outDir: string, plan: Plan): void {
  const dir = join(outDir, plan.stack);
  rmSync(join(dir, "manifests"), { recursive: true, force: true });
  mkdirSync(join(dir, "manifests"), { recursive: true });
  writeFileSync(join(dir, "plan.json"), JSON.stringify(plan, null, 2) + "\n");
  plan.resources.forEach((r, i) => {
    if (!r.custom || !isKubernetesObjectType(r.type)) return;
    const obj = { ...(r.inputs as Record<string, unknown>) };
    if (obj["kind"] === "Secret") {
      for (const field of ["data", "stringData"]) {
        const data = obj[field] as Record<string, unknown> | undefined;
        if (data) obj[field] = Object.fromEntries(Object.keys(data).map((k) => [k, "[redacted]"]));
      }
    }
    const file = `${String(i).padStart(4, "0")}-${(typeof obj["kind"] === "string" ? obj["kind"] : "object").toLowerCase()}-${r.name.replace(/[^A-Za-z0-9_.-]/g, "_")}.yaml`;
    writeFileSync(join(dir, "manifests", file), stringify(obj));
  });
}
