/**
 * `npm run policy -- check [--json] [--config FILE] PATH...`
 *
 * Runs the CrossGuard pack's resource rules over plain Kubernetes YAML (multi-document files,
 * `List`s, directories recursively) and Dockerfiles. Prints a table, or JSON with `--json`:
 * `[{ policy, level, kind, namespace, name, file, message }]`. Exit 0 when clean (advisories
 * allowed), 1 on a mandatory violation, 2 on bad usage, an invalid config or unreadable input.
 * Remediations do not apply to files, so remediate-level violations count as mandatory.
 */
import { readFileSync } from "node:fs";
import type { PolicyPackConfig } from "@pulumi/policy";
import { PolicyConfigError } from "../policies/lib/config";
import { LoadError, loadPaths, type SourceInfo } from "../policies/lib/loader";
import { runPolicies } from "../policies/lib/runner";
import { policies } from "../policies/rules";

export const USAGE = "usage: npm run policy -- check [--json] [--config FILE] PATH...";

export interface CliViolation {
  readonly policy: string;
  readonly level: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly file: string;
  readonly message: string;
}

export interface CliIO {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
}

const defaultIO: CliIO = {
  out: (s) => process.stdout.write(s.endsWith("\n") ? s : `${s}\n`),
  err: (s) => process.stderr.write(s.endsWith("\n") ? s : `${s}\n`),
};

class UsageError extends Error {}

interface Args {
  readonly json: boolean;
  readonly config?: string;
  readonly paths: string[];
  readonly help: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const [command, ...rest] = argv;
  if (command === "--help" || command === "-h" || command === "help")
    return { json: false, paths: [], help: true };
  if (command !== "check") throw new UsageError(command ? `unknown command "${command}"` : "missing command");
  let json = false;
  let config: string | undefined;
  const paths: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (a === "--json") json = true;
    else if (a === "--config") {
      config = rest[++i];
      if (!config) throw new UsageError("--config needs a FILE");
    } else if (a.startsWith("--config=")) config = a.slice("--config=".length);
    else if (a === "--help" || a === "-h") return { json, paths, help: true };
    else if (a === "--") paths.push(...rest.slice(i + 1).splice(0));
    else if (a.startsWith("-") && a !== "-") throw new UsageError(`unknown option "${a}"`);
    else paths.push(a);
    if (a === "--") break;
  }
  if (paths.length === 0) throw new UsageError("no PATH given");
  return { json, paths, help: false, ...(config !== undefined ? { config } : {}) };
}

function readConfig(file: string): PolicyPackConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new LoadError(file, `cannot read config (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  try {
    return JSON.parse(text) as PolicyPackConfig;
  } catch (e) {
    throw new LoadError(file, `invalid JSON (${(e as Error).message})`);
  }
}

function table(rows: readonly CliViolation[]): string {
  const header = ["LEVEL", "POLICY", "RESOURCE", "FILE", "MESSAGE"];
  const cells = rows.map((v) => [
    v.level,
    v.policy,
    v.kind === "Dockerfile" ? "Dockerfile" : `${v.kind} ${v.namespace ? `${v.namespace}/` : ""}${v.name}`,
    v.file,
    v.message,
  ]);
  const widths = header.map((h, i) => Math.min(48, Math.max(h.length, ...cells.map((c) => c[i]!.length))));
  const line = (c: readonly string[]) =>
    c
      .map((x, i) => (i === c.length - 1 ? x : x.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...cells.map(line)].join("\n");
}

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: readonly string[], io: CliIO = defaultIO): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    io.err(`policy: ${(e as Error).message}; ${USAGE}`);
    return 2;
  }
  if (args.help) {
    io.out(USAGE);
    return 0;
  }
  try {
    const config = args.config !== undefined ? readConfig(args.config) : undefined;
    const { records, sources } = loadPaths(args.paths);
    const violations = await runPolicies(policies, records, {
      ...(config ? { config } : {}),
      resourcesOnly: true,
      remediate: false,
    });
    const unknownSource: SourceInfo = { file: "", kind: "", namespace: "", name: "" };
    const rows: CliViolation[] = violations.map((v) => {
      const s = sources.get(v.urn) ?? unknownSource;
      // Dockerfile rules prefix messages with the file (useful in `pulumi preview`); the CLI has a column.
      const message =
        s.file && v.message.startsWith(s.file)
          ? v.message
              .slice(s.file.length)
              .replace(/^:(\d+)?:?\s*/, (_m, line?: string) => (line ? `line ${line}: ` : ""))
          : v.message;
      return {
        policy: v.policy,
        level: v.level,
        kind: s.kind,
        namespace: s.namespace,
        name: s.name,
        file: s.file,
        message,
      };
    });
    const files = new Set([...sources.values()].map((s) => s.file)).size;
    if (args.json) io.out(JSON.stringify(rows, null, 2));
    else if (rows.length === 0) io.out(`No violations in ${records.length} resources from ${files} files.`);
    else {
      const mandatory = rows.filter((r) => r.level === "mandatory").length;
      io.out(table(rows));
      io.out(
        `\n${rows.length} violations (${mandatory} mandatory, ${rows.length - mandatory} advisory) in ${records.length} resources from ${files} files.`,
      );
    }
    return rows.some((r) => r.level === "mandatory") ? 1 : 0;
  } catch (e) {
    if (e instanceof LoadError) {
      io.err(`policy: ${e.message}`);
      return 2;
    }
    if (e instanceof PolicyConfigError) {
      io.err(`policy: ${args.config ?? "config"}: ${e.message}`);
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
      process.stderr.write(`policy: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 2;
    },
  );
}
