/**
 * `npm run policy -- check [--format text|json|sarif] [--config FILE] [--output FILE] [--category ID] PATH...`
 * `npm run policy -- list [--format text|json]`
 *
 * Runs the CrossGuard pack's resource rules over plain Kubernetes YAML (multi-document files, `List`s
 * of any kind and depth, merge keys applied, directories recursively) and Dockerfiles. Prints a table,
 * JSON findings (`policy, level, severity, kind, namespace, name, file, line, message, remediation`)
 * or SARIF 2.1.0 for code scanning. Exit 0 when clean (advisories allowed), 1 on a mandatory
 * violation, 2 on bad usage, an invalid config, a refused file (invalid YAML, an alias bomb) or an
 * input without Kubernetes objects or Dockerfiles. Remediations do not apply to files, so
 * remediate-level violations count as mandatory. `list` shows every policy with its level per stack.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import type { EnforcementLevel, Policies, PolicyPackConfig, ResourceValidationPolicy } from "@pulumi/policy";
import { PolicyConfigError } from "../policies/lib/config";
import { LoadError, loadPaths, type LoadNote, type SourceInfo } from "../policies/lib/loader";
import { resolvePolicyConfig, runPolicies, type Violation } from "../policies/lib/runner";
import { policies } from "../policies/rules";
import { PolicyConfigFileError, readPolicyConfigFile } from "./preflight/policy-config";

export const USAGE =
  "usage: npm run policy -- check [--format text|json|sarif] [--config FILE] [--output FILE] [--category ID] PATH... | list [--format text|json] | --help";

export const HELP = `Check Kubernetes manifests and Dockerfiles against the CrossGuard policy pack.

usage:
  npm run policy -- check [options] PATH...   files and folders (YAML, Dockerfiles; dot folders skipped)
  npm run policy -- list [--format text|json] every policy: level per stack, severity, description
  npm run policy -- --help

options:
  --format text|json|sarif  output format (default text; --json is --format json)
  --config FILE             a policy-pack config (levels, settings, exemptions), e.g. policies/config/prod.json
  --output FILE             write the report to FILE instead of standard output
  --category ID             SARIF run category (runAutomationDetails.id), one per upload to code scanning

exit codes: 0 clean (advisories allowed), 1 a mandatory violation, 2 bad usage or config, a refused
file (invalid YAML, an alias bomb), or no Kubernetes objects or Dockerfiles in the input.`;

/** One finding as `--format json` prints it. */
export interface Finding {
  readonly policy: string;
  readonly level: string;
  readonly severity: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly file: string;
  /** 1-based line of the object, the field or the Dockerfile instruction (1 for whole-file findings). */
  readonly line: number;
  readonly message: string;
  readonly remediation: string;
}

/** @deprecated The JSON rows are `Finding`s now (severity, line and remediation added). */
export type CliViolation = Finding;

export interface CliIO {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
}

const defaultIO: CliIO = {
  out: (s) => process.stdout.write(s.endsWith("\n") ? s : `${s}\n`),
  err: (s) => process.stderr.write(s.endsWith("\n") ? s : `${s}\n`),
};

class UsageError extends Error {}

type Format = "text" | "json" | "sarif";

interface Args {
  readonly command: "check" | "list" | "help";
  readonly format: Format;
  readonly config?: string;
  readonly output?: string;
  readonly category?: string;
  readonly paths: readonly string[];
}

const FORMATS: readonly Format[] = ["text", "json", "sarif"];

export function parseArgs(argv: readonly string[]): Args {
  const [command, ...rest] = argv;
  if (command === "--help" || command === "-h" || command === "help")
    return { command: "help", format: "text", paths: [] };
  if (command !== "check" && command !== "list")
    throw new UsageError(command ? `unknown command "${command}"` : "missing command");
  let format: Format = "text";
  const opts: { config?: string; output?: string; category?: string } = {};
  const paths: string[] = [];
  const valueOf = (flag: string, i: number): [string, number] => {
    const a = rest[i]!;
    if (a.startsWith(`${flag}=`)) return [a.slice(flag.length + 1), i];
    const v = rest[i + 1];
    if (v === undefined || v === "") throw new UsageError(`${flag} needs a value`);
    return [v, i + 1];
  };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    const flag = a.split("=")[0]!;
    if (a === "--help" || a === "-h") return { command: "help", format, paths };
    if (a === "--json") format = "json";
    else if (flag === "--format") {
      const [v, j] = valueOf("--format", i);
      i = j;
      if (!FORMATS.includes(v as Format))
        throw new UsageError(`--format must be text, json or sarif, not "${v}"`);
      if (command === "list" && v === "sarif") throw new UsageError("list prints text or json");
      format = v as Format;
    } else if (flag === "--config" || flag === "--output" || flag === "--category") {
      if (command === "list") throw new UsageError(`list takes no ${flag}`);
      const [v, j] = valueOf(flag, i);
      i = j;
      opts[flag.slice(2) as "config" | "output" | "category"] = v;
    } else if (a === "--") {
      paths.push(...rest.slice(i + 1));
      break;
    } else if (a.startsWith("-") && a !== "-") throw new UsageError(`unknown option "${a}"`);
    else paths.push(a);
  }
  if (command === "list") {
    if (paths.length > 0) throw new UsageError("list takes no PATH");
    return { command, format, paths };
  }
  if (paths.length === 0) throw new UsageError("no PATH given");
  return { command, format, paths, ...opts };
}

/**
 * A policy-pack config, read as user input: unreadable, not JSON (with its line and column), not an
 * object, or not matching the pack (naming each field) is one LoadError line, exit 2.
 */
function readConfig(file: string): PolicyPackConfig {
  try {
    return readPolicyConfigFile(file, policies);
  } catch (e) {
    if (e instanceof PolicyConfigFileError) throw new LoadError(file, e.detail);
    throw e;
  }
}

/** Columns padded to their widest cell (at most `max`), the last one left as it is. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], max = 48): string {
  const widths = header.map((h, i) => Math.min(max, Math.max(h.length, ...rows.map((c) => c[i]!.length))));
  const line = (c: readonly string[]) =>
    c
      .map((x, i) => (i === c.length - 1 ? x : x.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

// --- check ------------------------------------------------------------------------------------------

/** A field path in a message (`spec.template.spec.containers[0].image`, `data.note`). */
const FIELD_PATH_RE =
  /\b((?:metadata|spec|data|stringData|rules|subjects|roleRef|webhooks|items)(?:\.[A-Za-z0-9_$-]+|\[\d+\])+)/;
/** Dockerfile rules prefix messages with `FILE:LINE:` (useful in `pulumi preview`); findings carry both. */
const FILE_PREFIX_RE = /^(\S+?)(?::(\d+))?: /;

/** A violation as a finding: where it is (file and line), its severity and remediation. */
export function toFinding(
  v: Violation,
  source: SourceInfo | undefined,
  policy: PolicyMeta | undefined,
): Finding {
  const s = source ?? { file: "", kind: "", namespace: "", name: "" };
  let message = v.message;
  let line = s.line ?? 1;
  const prefix = FILE_PREFIX_RE.exec(message);
  if (s.file && prefix && path.resolve(prefix[1]!) === path.resolve(s.file)) {
    message = message.slice(prefix[0].length);
    if (prefix[2]) line = Number(prefix[2]);
  } else {
    const field = FIELD_PATH_RE.exec(message)?.[1];
    line = (field !== undefined ? s.lineOf?.(field) : undefined) ?? line;
  }
  return {
    policy: v.policy,
    level: v.level,
    severity: policy?.severity ?? "",
    kind: s.kind,
    namespace: s.namespace,
    name: s.name,
    file: s.file,
    line,
    message,
    remediation: policy?.remediationSteps ?? "",
  };
}

export interface PolicyMeta {
  readonly name: string;
  readonly description: string;
  readonly severity?: string;
  readonly remediationSteps?: string;
  readonly tags?: readonly string[];
}

const resource = (f: Finding) =>
  f.kind === "Dockerfile" ? "Dockerfile" : `${f.kind} ${f.namespace ? `${f.namespace}/` : ""}${f.name}`;

/**
 * The pack's policies with exemptions counted: an exemption turns a rule `notApplicable` with an
 * `exempt:` reason, which the runner otherwise swallows.
 */
function countingExemptions(all: Policies, onExempt: (policy: string, urn: string) => void): Policies {
  return all.map((p) => {
    const validate = (p as Partial<ResourceValidationPolicy>).validateResource;
    if (!validate) return p;
    type Validate = Exclude<ResourceValidationPolicy["validateResource"], unknown[] | undefined>;
    const wrap =
      (v: Validate): Validate =>
      (args, report) =>
        v(
          {
            ...args,
            notApplicable: (reason?: string) => {
              if (reason?.startsWith("exempt:")) onExempt(p.name, args.urn);
              return args.notApplicable(reason);
            },
          },
          report,
        );
    return {
      ...p,
      validateResource: Array.isArray(validate) ? validate.map(wrap) : wrap(validate),
    };
  });
}

export interface Summary {
  readonly resources: number;
  readonly files: number;
  readonly skipped: number;
  readonly exempted: number;
}

export function summaryLine(findings: readonly Finding[], s: Summary): string {
  const tail = `in ${s.resources} resources from ${s.files} files; ${s.skipped} skipped, ${s.exempted} exempted.`;
  if (findings.length === 0) return `No violations ${tail}`;
  const mandatory = findings.filter((f) => f.level === "mandatory").length;
  return `${findings.length} violations (${mandatory} mandatory, ${findings.length - mandatory} advisory) ${tail}`;
}

const SARIF_LEVEL: Readonly<Record<string, "error" | "warning" | "note" | "none">> = {
  mandatory: "error",
  remediate: "error",
  advisory: "warning",
  disabled: "none",
};
/** Code scanning ranks security results by this score: over 9 critical, 7–8.9 high, 4–6.9 medium. */
const SECURITY_SEVERITY: Readonly<Record<string, string>> = {
  critical: "9.5",
  high: "8.0",
  medium: "5.5",
  low: "3.0",
};

const PACK_VERSION = (() => {
  try {
    const pkg = JSON.parse(readFileSync(path.join(__dirname, "..", "policies", "package.json"), "utf8")) as {
      version?: string;
    };
    return pkg.version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
})();

/** A repository-relative URI for code scanning (absolute paths outside the working directory as file:). */
export function sarifUri(file: string, cwd = process.cwd()): string {
  const abs = path.resolve(cwd, file);
  const rel = path.relative(cwd, abs);
  if (rel.startsWith("..") || path.isAbsolute(rel))
    return `file://${encodeURI(abs.split(path.sep).join("/"))}`;
  return encodeURI(rel.split(path.sep).join("/"));
}

/**
 * SARIF 2.1.0 (the parts code scanning reads): one run, the pack as the tool with every active
 * policy as a rule (descriptions, help, default level, security severity), one result per finding
 * at its file and line; `category` becomes the run's `automationDetails.id`.
 */
export function toSarif(
  findings: readonly Finding[],
  rules: readonly (PolicyMeta & { readonly level: EnforcementLevel })[],
  opts: { readonly category?: string; readonly cwd?: string } = {},
): Record<string, unknown> {
  const index = new Map(rules.map((r, i) => [r.name, i]));
  const oneLine = (s: string) => s.replace(/\s+/g, " ").trim();
  return {
    $schema: "https://json.schemastore.org/sarif-2.1.0.json",
    version: "2.1.0",
    runs: [
      {
        tool: {
          driver: {
            name: "crossguard-policy-pack",
            semanticVersion: PACK_VERSION,
            rules: rules.map((r) => ({
              id: r.name,
              name: r.name,
              shortDescription: { text: oneLine(r.description) },
              fullDescription: { text: oneLine(r.description) },
              help: {
                text: oneLine(r.remediationSteps ?? r.description),
                markdown: `${oneLine(r.description)}\n\n**Remediation.** ${oneLine(r.remediationSteps ?? "")}`,
              },
              defaultConfiguration: { level: SARIF_LEVEL[r.level] ?? "warning" },
              properties: {
                tags: ["security", "crossguard", ...(r.tags ?? [])],
                precision: "high",
                ...(r.severity && SECURITY_SEVERITY[r.severity]
                  ? { "security-severity": SECURITY_SEVERITY[r.severity] }
                  : {}),
              },
            })),
          },
        },
        ...(opts.category !== undefined
          ? { automationDetails: { id: opts.category.endsWith("/") ? opts.category : `${opts.category}/` } }
          : {}),
        columnKind: "utf16CodeUnits",
        results: findings.map((f) => ({
          ruleId: f.policy,
          ...(index.has(f.policy) ? { ruleIndex: index.get(f.policy) } : {}),
          level: SARIF_LEVEL[f.level] ?? "warning",
          message: { text: f.kind === "Dockerfile" ? f.message : `${resource(f)}: ${f.message}` },
          locations: [
            {
              physicalLocation: {
                artifactLocation: { uri: sarifUri(f.file, opts.cwd) },
                region: { startLine: Math.max(1, f.line), startColumn: 1 },
              },
            },
          ],
          properties: { enforcementLevel: f.level, severity: f.severity },
        })),
      },
    ],
  };
}

const noteLine = (n: LoadNote) =>
  n.status === "refused" ? `policy: ${n.path}: ${n.reason}` : `policy: ${n.path}: skipped (${n.reason})`;

async function check(args: Args, io: CliIO): Promise<number> {
  const config = args.config !== undefined ? readConfig(args.config) : undefined;
  const { records, sources, notes } = loadPaths(args.paths);
  for (const n of notes) io.err(noteLine(n));
  const refused = notes.filter((n) => n.status === "refused").length;
  if (records.length === 0) {
    if (refused === 0) io.err(`policy: no Kubernetes objects or Dockerfiles in ${args.paths.join(", ")}`);
    return 2;
  }
  const exempted = new Set<string>();
  const violations = await runPolicies(
    countingExemptions(policies, (p, urn) => exempted.add(`${p}\0${urn}`)),
    records,
    { ...(config ? { config } : {}), resourcesOnly: true, remediate: false },
  );
  const meta = new Map(policies.map((p) => [p.name, p as PolicyMeta]));
  const findings = violations.map((v) => toFinding(v, sources.get(v.urn), meta.get(v.policy)));
  const summary: Summary = {
    resources: records.length,
    files: new Set([...sources.values()].map((s) => s.file)).size,
    skipped: notes.filter((n) => n.status === "skipped").length,
    exempted: exempted.size,
  };
  let report: string;
  if (args.format === "json") report = JSON.stringify(findings, null, 2);
  else if (args.format === "sarif") {
    const rules = policies
      .map((p) => ({ ...(p as PolicyMeta), level: resolvePolicyConfig(p, config).level }))
      .filter((r) => r.level !== "disabled");
    report = JSON.stringify(
      toSarif(findings, rules, args.category !== undefined ? { category: args.category } : {}),
      null,
      2,
    );
  } else {
    const rows = findings.map((f) => [f.level, f.policy, resource(f), `${f.file}:${f.line}`, f.message]);
    report =
      findings.length === 0
        ? summaryLine(findings, summary)
        : `${table(["LEVEL", "POLICY", "RESOURCE", "FILE", "MESSAGE"], rows)}\n\n${summaryLine(findings, summary)}`;
  }
  if (args.output !== undefined) {
    try {
      writeFileSync(args.output, report.endsWith("\n") ? report : `${report}\n`);
    } catch (e) {
      throw new LoadError(args.output, `cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    io.out(`${args.output}: ${summaryLine(findings, summary)}`);
  } else io.out(report);
  if (refused > 0) return 2;
  return findings.some((f) => f.level === "mandatory") ? 1 : 0;
}

// --- list -------------------------------------------------------------------------------------------

export const CONFIG_DIR = path.join(__dirname, "..", "policies", "config");

export interface ListRow {
  readonly name: string;
  readonly severity: string;
  /** Level per stack, by the stack's config file name. */
  readonly levels: Readonly<Record<string, string>>;
  readonly description: string;
}

/** Every policy with its level in each stack's config and its first line of description. */
export function listRows(
  all: Policies,
  configs: readonly (readonly [string, PolicyPackConfig])[],
): ListRow[] {
  return all.map((p) => ({
    name: p.name,
    severity: (p as PolicyMeta).severity ?? "",
    levels: Object.fromEntries(configs.map(([stack, c]) => [stack, resolvePolicyConfig(p, c).level])),
    description: p.description.replace(/\s+/g, " ").trim(),
  }));
}

function list(args: Args, io: CliIO, configDir = CONFIG_DIR): number {
  let files: string[];
  try {
    files = readdirSync(configDir)
      .filter((f) => f.endsWith(".json"))
      .sort();
  } catch (e) {
    throw new LoadError(configDir, `cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const configs = files.map((f) => [f.replace(/\.json$/, ""), readConfig(path.join(configDir, f))] as const);
  const rows = listRows(policies, configs);
  if (args.format === "json") io.out(JSON.stringify(rows, null, 2));
  else {
    const stacks = configs.map(([s]) => s);
    io.out(
      table(
        ["POLICY", ...stacks.map((s) => s.toUpperCase()), "SEVERITY", "DESCRIPTION"],
        rows.map((r) => [r.name, ...stacks.map((s) => r.levels[s] ?? ""), r.severity, r.description]),
      ),
    );
  }
  return 0;
}

/** Runs the CLI; resolves to the exit code. Every user error is one line on stderr. */
export async function main(argv: readonly string[], io: CliIO = defaultIO): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    io.err(`policy: ${(e as Error).message}; ${USAGE}`);
    return 2;
  }
  if (args.command === "help") {
    io.out(HELP);
    return 0;
  }
  try {
    return args.command === "list" ? list(args, io) : await check(args, io);
  } catch (e) {
    if (e instanceof LoadError) {
      io.err(`policy: ${e.message}`);
      return 2;
    }
    if (e instanceof PolicyConfigError) {
      io.err(`policy: ${args.config ?? "config"}: ${e.message.split("\n").join("; ")}`);
      return 2;
    }
    throw e;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      // Not a user error but a bug; still one line (the message names what failed).
      process.stderr.write(`policy: internal error: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 2;
    },
  );
}
