/**
 * `npm run config-docs [-- --check]`: writes docs/config.md, the stack-config reference, and
 * schema/stack-config.schema.json, the JSON Schema YAML editors check stack files with, from the zod
 * schema (descriptions, defaults, examples), so neither can drift from what the program accepts.
 * One section per top-level key, a table of its fields, each description on its own line.
 * `--check` writes nothing and exits 1 when a file is stale; `--help` prints the usage.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import * as prettier from "prettier";
import type { z } from "zod";
import { APP_SECRETS_NAMESPACE } from "../components/apps/schema";
import {
  CONFIG_NAMESPACE,
  platformSchema,
  PROJECT_NAME,
  PROVIDER_NAMESPACES,
  SECRET_KEYS,
} from "../components/config";
import { renderSchema, SCHEMA_FILE, SCHEMA_MODELINE } from "./stack-schema";

/** The generated reference, relative to the repository root. */
export const REFERENCE_FILE = "docs/config.md";

export const USAGE = `usage: npm run config-docs [-- --check]

Writes ${REFERENCE_FILE} (the stack-config reference) and ${SCHEMA_FILE} (the JSON Schema of a
stack file, for YAML editors) from the zod schema in components/.

  --check     write nothing; exit 1 when either file is stale
  -h, --help  print this help and exit`;

const REPO_ROOT = join(__dirname, "..");

/** One documented key, relative to its section (`servers[].address`). */
export interface Field {
  readonly key: string;
  readonly type: string;
  /** JSON of the default, when there is one. */
  readonly def?: string;
  /** Neither optional nor defaulted: a value must be given (when its parent is). */
  readonly required: boolean;
  readonly doc: string;
  /** JSON of the schema's example, when there is one. */
  readonly example?: string;
}

/** A top-level key: its own doc, and its fields (one list per `kind` when it is a union). */
export interface Section {
  readonly key: string;
  readonly doc: string;
  readonly example?: string;
  /** The section's own type and default when it is a plain value (`platform:environment`). */
  readonly value?: Field;
  readonly variants: readonly { readonly kind?: string; readonly fields: readonly Field[] }[];
}

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  innerType?: z.ZodType;
  in?: z.ZodType;
  options?: z.ZodType[];
  entries?: Record<string, string>;
  values?: unknown[];
  defaultValue?: unknown;
}
const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;
const metaOf = (s: z.ZodType) => (s.meta() ?? {}) as { description?: string; example?: unknown };

function typeName(s: z.ZodType): string {
  const d = defOf(s);
  switch (d.type) {
    case "optional":
    case "default":
    case "nullable":
      return d.innerType ? typeName(d.innerType) : d.type;
    case "pipe":
      return d.in ? typeName(d.in) : d.type;
    case "enum":
      return Object.values(d.entries ?? {})
        .map((v) => `\`${v}\``)
        .join(" \\| ");
    case "literal":
      return (d.values ?? []).map((v) => `\`${JSON.stringify(v)}\``).join(" \\| ");
    case "array": {
      const element = d.element ? typeName(d.element) : "any";
      return element.includes("|") ? `(${element})[]` : `${element}[]`;
    }
    case "record":
      return "map";
    case "union":
      // An address is a string of one of several forms; the description says which.
      return [...new Set((d.options ?? []).map(typeName))].join(" \\| ");
    default:
      return d.type;
  }
}

/** The schema without its optional/default wrappers, the default, and whether a value is required. */
function unwrap(s: z.ZodType): { inner: z.ZodType; def?: string; required: boolean } {
  let inner = s;
  let def: string | undefined;
  let required = true;
  for (
    let cur = defOf(inner);
    cur.innerType && ["optional", "default"].includes(cur.type);
    cur = defOf(inner)
  ) {
    required = false;
    if (cur.type === "default" && def === undefined) def = JSON.stringify(cur.defaultValue);
    inner = cur.innerType;
  }
  return { inner, ...(def === undefined ? {} : { def }), required };
}

/** Description and example: the outermost schema's, else the unwrapped one's. */
function docOf(outer: z.ZodType, inner: z.ZodType): { doc: string; example?: string } {
  const doc = metaOf(outer).description ?? metaOf(inner).description ?? "";
  const example = metaOf(outer).example ?? metaOf(inner).example;
  return { doc, ...(example === undefined ? {} : { example: JSON.stringify(example) }) };
}

/** Every field under `s`, keys relative to the section, objects flattened into dotted keys. */
function fields(s: z.ZodType, key: string, out: Field[]): void {
  const { inner, def, required } = unwrap(s);
  const { doc, example } = docOf(s, inner);
  const d = defOf(inner);
  const field = (type: string, k = key): Field => ({
    key: k,
    type,
    ...(def === undefined ? {} : { def }),
    required,
    doc,
    ...(example === undefined ? {} : { example }),
  });
  if (d.type === "object" && d.shape) {
    if (doc && key) out.push(field("object"));
    for (const [k, v] of Object.entries(d.shape)) fields(v, key ? `${key}.${k}` : k, out);
    return;
  }
  if (d.type === "array" && d.element && defOf(unwrap(d.element).inner).type === "object") {
    out.push(field("list", `${key}[]`));
    for (const [k, v] of Object.entries(defOf(unwrap(d.element).inner).shape ?? {}))
      fields(v, `${key}[].${k}`, out);
    return;
  }
  out.push(field(typeName(inner)));
}

/** The `kind` literal of a union branch. */
const kindOf = (branch: z.ZodType) => {
  const kind = defOf(branch).shape?.["kind"];
  return kind ? String(defOf(kind).values?.[0]) : undefined;
};

export function sections(): Section[] {
  return Object.entries(platformSchema.shape).map(([name, schema]) => {
    const s = schema as z.ZodType;
    const key = `${CONFIG_NAMESPACE}:${name}`;
    const { inner, def, required } = unwrap(s);
    const { doc, example } = docOf(s, inner);
    const d = defOf(inner);
    const base = { key, doc, ...(example === undefined ? {} : { example }) };
    if (d.type === "union" && d.options)
      return {
        ...base,
        variants: d.options.map((o) => {
          const out: Field[] = [];
          fields(o, "", out);
          const kind = kindOf(o);
          return { ...(kind === undefined ? {} : { kind }), fields: out };
        }),
      };
    if (d.type === "object") {
      const out: Field[] = [];
      fields(inner, "", out);
      return { ...base, variants: [{ fields: out }] };
    }
    return {
      ...base,
      value: { key: "", type: typeName(inner), ...(def === undefined ? {} : { def }), required, doc },
      variants: [],
    };
  });
}

/** Defaults longer than this go below the table, with the description. */
const SHORT_DEFAULT = 40;

const esc = (t: string) => t.replace(/\|/g, "\\|").replace(/\n/g, " ");
const code = (t: string) => (t.includes("`") ? `\`\` ${t} \`\`` : `\`${t}\``);

function defaultCell(f: Field): string {
  if (f.def !== undefined) return f.def.length <= SHORT_DEFAULT ? code(f.def) : "see below";
  return f.required ? "**required**" : "";
}

function fieldTable(fs: readonly Field[]): string[] {
  return [
    "| key | type | default |",
    "| --- | --- | --- |",
    ...fs.map((f) => `| \`${f.key}\` | ${f.type} | ${esc(defaultCell(f))} |`),
  ];
}

function fieldNotes(fs: readonly Field[]): string[] {
  return fs
    .filter((f) => f.doc || f.example !== undefined || (f.def && f.def.length > SHORT_DEFAULT))
    .map((f) => {
      const parts = [f.doc];
      if (f.def && f.def.length > SHORT_DEFAULT) parts.push(`Default: ${code(f.def)}.`);
      if (f.example !== undefined) parts.push(`Example: ${code(f.example)}.`);
      return `- \`${f.key}\`: ${parts.filter(Boolean).join(" ")}`;
    });
}

function sectionText(s: Section): string[] {
  const lines = [`## \`${s.key}\``, ""];
  if (s.doc) lines.push(s.doc, "");
  if (s.value) {
    lines.push(
      `Type: ${s.value.type}. ${s.value.def !== undefined ? `Default: ${code(s.value.def)}.` : s.value.required ? "**Required.**" : "Optional."}`,
      "",
    );
  }
  if (s.example !== undefined) lines.push(`Example: ${code(s.example)}.`, "");
  const union = s.variants.length > 1;
  if (union)
    lines.push(
      `One of ${s.variants.map((v) => `\`kind: ${v.kind}\``).join(", ")}, each with its own fields:`,
      "",
    );
  for (const v of s.variants) {
    if (union) lines.push(`### \`${s.key}\` with \`kind: ${v.kind}\``, "");
    if (v.fields.length === 0) continue;
    lines.push(...fieldTable(v.fields), "");
    const notes = fieldNotes(v.fields);
    if (notes.length) lines.push(...notes, "");
  }
  return lines;
}

/** The whole reference page (before Prettier). */
export function configReference(): string {
  const all = sections();
  const lines = [
    "# Configuration reference",
    "",
    "<!-- Generated by `npm run config-docs` from the zod schema in components/; do not edit by hand. -->",
    "",
    `Every key of a stack file (\`Pulumi.<stack>.yaml\`) the program reads lives under the \`${CONFIG_NAMESPACE}:\` namespace.`,
    `Unknown keys under \`${CONFIG_NAMESPACE}:\` are rejected (with a "did you mean"), and every problem is reported at`,
    "once with its key path and an example of a right value, before any resource is registered.",
    "",
    `Besides \`${CONFIG_NAMESPACE}:\`, a stack may set \`${APP_SECRETS_NAMESPACE}:\` stack secrets and the settings of the`,
    `providers the program uses (${PROVIDER_NAMESPACES.map((n) => `\`${n}:\``).join(", ")}), which the`,
    "program does not check. A key in any other namespace is a config error naming the key it most likely",
    `meant: \`platfrom:mesh\` → \`${CONFIG_NAMESPACE}:mesh\`; an un-namespaced \`monitoring:\` (Pulumi reads it as`,
    `\`${PROJECT_NAME}:monitoring\`) → \`${CONFIG_NAMESPACE}:monitoring\`. The project in \`Pulumi.yaml\` must be named`,
    `\`${PROJECT_NAME}\` (its stacks' state, URNs and policy pack are): the preflight refuses another name.`,
    "",
    "Keys are relative to their section: `servers[].address` is the `address` of each item of the section's",
    "`servers` list. **required** means a value must be given whenever its parent is given.",
    "",
    "Sections:",
    "",
    ...all.map((s) => `- [\`${s.key}\`](#${slug(`\`${s.key}\``)})`),
    "- [Secret keys](#secret-keys)",
    "- [Editor completion](#editor-completion)",
    "- [ESC environments](#esc-environments)",
    "",
    ...all.flatMap(sectionText),
    "## Secret keys",
    "",
    `Set with \`pulumi config set --secret ${CONFIG_NAMESPACE}:<key> <value>\`; never committed. A \`pulumi preview\` or`,
    "`up` of a stack that needs one and lacks it fails before anything is registered, with the command to run.",
    "The preflight plants a canary value for every one of them instead.",
    "",
    "| key | what it is |",
    "| --- | --- |",
    ...Object.entries(SECRET_KEYS).map(
      ([k, v]) => `| \`${CONFIG_NAMESPACE}:${k}\` | ${esc(v.description)} |`,
    ),
    "",
    "## Editor completion",
    "",
    `[\`${SCHEMA_FILE}\`](../${SCHEMA_FILE}) is the JSON Schema of a whole stack file, generated with`,
    "this page. Every committed stack file starts with the comment that points YAML editors at it:",
    "",
    "```yaml",
    SCHEMA_MODELINE,
    "```",
    "",
    "VS Code's YAML extension (`redhat.vscode-yaml`) reads that line by itself. To check a new stack file",
    "before it has the line, map the schema in the workspace's `.vscode/settings.json`:",
    "",
    "```json",
    `{ "yaml.schemas": { "./${SCHEMA_FILE}": "Pulumi.*.yaml" } }`,
    "```",
    "",
    "The schema checks each value's shape, types, enums and patterns (an IPv4 address is four numbers",
    "0-255); checks across fields and sections are the preflight's (`npm run preflight`).",
    "",
    "## ESC environments",
    "",
    "A stack file may import [Pulumi ESC](https://www.pulumi.com/docs/esc/) environments, whose",
    "`pulumiConfig` then supplies keys at `pulumi preview`/`up`:",
    "",
    "```yaml",
    "environment:",
    "  - my-project/dev",
    "```",
    "",
    "Offline, what they supply cannot be read. The preflight reports it instead of failing: a note",
    "`supplied by ESC environment my-project/dev, not checked offline` for each required key the file",
    `itself lacks, evaluated with a stand-in (\`${CONFIG_NAMESPACE}:environment\` as \`local\`, \`${CONFIG_NAMESPACE}:cluster\` as its`,
    "example), and one for the import, as warnings that never fail it. Secrets are not read offline",
    "anyway: the preflight plants a canary for each. Keys in namespaces the program does not read are",
    "refused whether the file or an environment supplies them.",
    "",
  ];
  return lines.join("\n");
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** The reference page formatted as Prettier formats it (so `prettier --check` agrees). */
export async function renderReference(): Promise<string> {
  const options = (await prettier.resolveConfig(join(REPO_ROOT, REFERENCE_FILE))) ?? {};
  return prettier.format(configReference(), { ...options, parser: "markdown" });
}

export interface Io {
  /** Repository root the reference is written under (default: this repository). */
  readonly root?: string;
  readonly out?: (line: string) => void;
  readonly err?: (line: string) => void;
}

/** The CLI: exit 0 written (or fresh with --check), 1 stale with --check, 2 on usage errors. */
export async function main(argv: readonly string[], io: Io = {}): Promise<number> {
  const out = io.out ?? ((l: string) => console.log(l));
  const err = io.err ?? ((l: string) => console.error(l));
  let check = false;
  for (const a of argv) {
    if (a === "-h" || a === "--help") {
      out(USAGE);
      return 0;
    }
    if (a === "--check") check = true;
    else {
      err(`config-docs: ${a.startsWith("-") ? `unknown option ${a}` : `unexpected argument ${a}`}`);
      err(USAGE);
      return 2;
    }
  }
  const generated: [string, string][] = [
    [REFERENCE_FILE, await renderReference()],
    [SCHEMA_FILE, await renderSchema()],
  ];
  let stale = 0;
  for (const [name, next] of generated) {
    const file = join(io.root ?? REPO_ROOT, name);
    let current: string | undefined;
    try {
      current = readFileSync(file, "utf8");
    } catch {
      current = undefined;
    }
    if (check) {
      if (current === next) continue;
      err(
        `config-docs: ${name} is ${current === undefined ? "missing" : "stale"}: run \`npm run config-docs\``,
      );
      stale++;
      continue;
    }
    if (current !== next) {
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, next);
    }
    out(`config-docs: ${name} ${current === next ? "is up to date" : "written"}`);
  }
  return stale > 0 ? 1 : 0;
}

if (require.main === module) void main(process.argv.slice(2)).then((code) => process.exit(code));
