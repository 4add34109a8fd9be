/**
 * The baseline diff as the terminal shows it and as Markdown fit for a pull-request comment (the
 * `preflight` job's summary, and the comment `preflight-comment.yml` posts).
 */
import { PLAIN, type Palette } from "./colour";
import {
  changeLine,
  diffCounts,
  unchanged,
  type ChangedResource,
  type DiffFinding,
  type StackDiff,
} from "./diff";

/** The first line of every diff comment: what the commenting workflow finds and updates. */
export const DIFF_MARKER = "<!-- preflight-diff -->";

/** Changes shown per resource, and resources per list, before "… and N more". */
const MAX_CHANGES = 25;
const MAX_RESOURCES = 150;

const more = (n: number, what: string) => `… and ${n} more ${what}`;

/** The terminal's diff section: per stack its counts, then each change, `+ - +- ~`. */
export function diffText(label: string, diffs: readonly StackDiff[], paint: Palette = PLAIN): string {
  const lines: string[] = [paint.bold(`preflight diff against ${label}:`)];
  for (const d of diffs) {
    lines.push(`${paint.bold(d.stack)}: ${unchanged(d) ? "no changes" : diffCounts(d)}`);
    if (!d.baseline)
      lines.push(paint.dim(`  (${d.baselineNote ?? "no baseline plan"}: every resource is new)`));
    for (const r of d.added) lines.push(paint.green(`  + ${r.type} ${r.name}`));
    for (const r of d.removed) lines.push(paint.red(`  - ${r.type} ${r.name}`));
    const changed = (mark: string, colour: (s: string) => string, r: ChangedResource) => {
      lines.push(
        colour(
          `  ${mark} ${r.type} ${r.name}${r.replaceOn ? ` (replaced: ${r.replaceOn.join(", ")} changed)` : ""}`,
        ),
      );
      for (const c of r.changes.slice(0, MAX_CHANGES)) lines.push(`      ${changeLine(c)}`);
      if (r.changes.length > MAX_CHANGES)
        lines.push(`      ${more(r.changes.length - MAX_CHANGES, "changes")}`);
    };
    for (const r of d.replaced) changed("+-", paint.yellow, r);
    for (const r of d.updated) changed("~", paint.cyan, r);
    for (const f of d.newFindings)
      lines.push(
        `  ${paint.red("new")} [${f.level}] ${f.rule}: ${f.message}\n      at ${f.urn}${f.hint ? `\n      fix: ${f.hint}` : ""}`,
      );
    for (const f of d.resolvedFindings)
      lines.push(`  ${paint.green("resolved")} [${f.level}] ${f.rule}: ${f.message}`);
  }
  return lines.join("\n");
}

const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");
const code = (s: string) => `\`${s.replace(/`/g, "'")}\``;

function resourceList(items: readonly { type: string; name: string }[]): string[] {
  const shown = items.slice(0, MAX_RESOURCES).map((r) => `- ${code(r.type)} ${code(r.name)}`);
  return items.length > MAX_RESOURCES
    ? [...shown, `- ${more(items.length - MAX_RESOURCES, "resources")}`]
    : shown;
}

function changedList(items: readonly ChangedResource[]): string[] {
  const out: string[] = [];
  for (const r of items.slice(0, MAX_RESOURCES)) {
    out.push(
      `- ${code(r.type)} ${code(r.name)}${r.replaceOn ? ` — replaced: ${r.replaceOn.map(code).join(", ")} changed` : ""}`,
    );
    out.push("  ```");
    for (const c of r.changes.slice(0, MAX_CHANGES)) out.push(`  ${changeLine(c).replace(/```/g, "'''")}`);
    if (r.changes.length > MAX_CHANGES) out.push(`  ${more(r.changes.length - MAX_CHANGES, "changes")}`);
    out.push("  ```");
  }
  if (items.length > MAX_RESOURCES) out.push(`- ${more(items.length - MAX_RESOURCES, "resources")}`);
  return out;
}

function findingTable(findings: readonly DiffFinding[]): string[] {
  return [
    "| level | rule | message | resource | fix |",
    "|---|---|---|---|---|",
    ...findings.map(
      (f) =>
        `| ${f.level} | ${code(f.rule)} | ${cell(f.message)} | ${f.urn ? code(f.urn.split("::").pop() ?? "") : ""} | ${cell(f.hint ?? "")} |`,
    ),
  ];
}

/** A `<details>` block, open when short. */
function details(summary: string, body: readonly string[], open: boolean): string[] {
  return [`<details${open ? " open" : ""}><summary>${summary}</summary>`, "", ...body, "", "</details>", ""];
}

/**
 * The diff as Markdown for a pull request: a table of every stack's counts, then per changed stack
 * the added, removed, replaced and updated resources (with their input changes) and the findings
 * that are new or resolved. `notEvaluated` are the stacks of the run that have no plan now.
 */
export function diffMarkdown(
  label: string,
  diffs: readonly StackDiff[],
  notEvaluated: readonly { stack: string; status: string }[] = [],
): string {
  const out: string[] = [
    DIFF_MARKER,
    `## Preflight diff against ${code(label)}`,
    "",
    "Offline: what `pulumi preview` would show, from the program and the stack files alone.",
    "",
    "| stack | add | remove | replace | update | new findings | resolved |",
    "|---|---|---|---|---|---|---|",
    ...diffs.map(
      (d) =>
        `| ${d.stack}${d.baseline ? "" : " (new)"} | ${d.added.length} | ${d.removed.length} | ${d.replaced.length} | ${d.updated.length} | ${d.newFindings.length} | ${d.resolvedFindings.length} |`,
    ),
    ...notEvaluated.map((u) => `| ${u.stack} | ${u.status} | | | | | |`),
    "",
  ];
  for (const d of diffs) {
    if (unchanged(d)) continue;
    out.push(`### ${d.stack}`, "");
    if (!d.baseline) out.push(`_${cell(d.baselineNote ?? "no baseline plan")}: every resource is new._`, "");
    const short = (n: number) => n <= 20;
    if (d.added.length)
      out.push(...details(`${d.added.length} to add`, resourceList(d.added), short(d.added.length)));
    if (d.removed.length)
      out.push(...details(`${d.removed.length} to remove`, resourceList(d.removed), short(d.removed.length)));
    if (d.replaced.length)
      out.push(
        ...details(`${d.replaced.length} to replace`, changedList(d.replaced), short(d.replaced.length)),
      );
    if (d.updated.length)
      out.push(...details(`${d.updated.length} to update`, changedList(d.updated), short(d.updated.length)));
    if (d.newFindings.length)
      out.push(`**${d.newFindings.length} new findings**`, "", ...findingTable(d.newFindings), "");
    if (d.resolvedFindings.length)
      out.push(
        `**${d.resolvedFindings.length} resolved findings**`,
        "",
        ...findingTable(d.resolvedFindings),
        "",
      );
  }
  if (diffs.length > 0 && diffs.every(unchanged)) out.push("No changes.", "");
  return out.join("\n");
}
