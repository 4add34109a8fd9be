/**
 * Generates the README's config reference from the zod schema (descriptions, defaults, examples),
 * so the docs cannot drift from what the program accepts. `--check` fails when README is stale.
 */
import { readFileSync, writeFileSync } from "node:fs";
import * as prettier from "prettier";
import type { z } from "zod";
import { CONFIG_NAMESPACE, platformSchema, SECRET_KEYS } from "../components/config";

interface Row {
  key: string;
  type: string;
  def: string;
  doc: string;
}

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  innerType?: z.ZodType;
  options?: z.ZodType[];
  entries?: Record<string, string>;
  values?: unknown[];
  defaultValue?: unknown;
}
const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;

function typeName(s: z.ZodType): string {
  const d = defOf(s);
  switch (d.type) {
    case "optional":
    case "default":
    case "pipe":
      return d.innerType ? typeName(d.innerType) : d.type;
    case "enum":
      return Object.values(d.entries ?? {})
        .map((v) => `\`${v}\``)
        .join(" \\| ");
    case "literal":
      return (d.values ?? []).map((v) => `\`${JSON.stringify(v)}\``).join(" \\| ");
    case "array":
      return `${d.element ? typeName(d.element) : "any"}[]`;
    case "record":
      return "map";
    default:
      return d.type;
  }
}

function rows(s: z.ZodType, key: string, out: Row[], inheritedDoc = ""): void {
  const meta = (s.meta() ?? {}) as { description?: string; example?: unknown };
  const d = defOf(s);
  let inner = s;
  let def = "";
  for (
    let cur = defOf(inner);
    cur.innerType && ["optional", "default"].includes(cur.type);
    cur = defOf(inner)
  ) {
    if (cur.type === "default" && def === "") def = JSON.stringify(cur.defaultValue);
    inner = cur.innerType;
  }
  const innerMeta = (inner.meta() ?? {}) as { description?: string; example?: unknown };
  const doc = meta.description ?? innerMeta.description ?? inheritedDoc;
  const example = meta.example ?? innerMeta.example;
  const id = defOf(inner);
  const docText = `${doc}${example !== undefined ? ` e.g. \`${JSON.stringify(example)}\`` : ""}`;
  if (id.type === "object" && id.shape) {
    if (doc) out.push({ key, type: "object", def: def && def.length < 40 ? `\`${def}\`` : "", doc: docText });
    for (const [k, v] of Object.entries(id.shape)) rows(v, `${key}.${k}`, out);
    return;
  }
  if (id.type === "union" && id.options) {
    out.push({ key, type: "one of", def: "", doc: docText });
    for (const o of id.options) {
      const kind = defOf(defOf(o).shape?.["kind"] ?? o).values?.[0];
      rows(o, `${key}{kind=${String(kind)}}`, out);
    }
    return;
  }
  if (id.type === "array" && id.element && defOf(id.element).type === "object") {
    out.push({ key: `${key}[]`, type: "list", def: def ? `\`${def}\`` : "", doc: docText });
    for (const [k, v] of Object.entries(defOf(id.element).shape ?? {})) rows(v, `${key}[].${k}`, out);
    return;
  }
  void d;
  out.push({ key, type: typeName(inner), def: def ? `\`${def}\`` : "", doc: docText });
}

export function configReference(): string {
  const out: Row[] = [];
  for (const [k, v] of Object.entries(platformSchema.shape))
    rows(v as z.ZodType, `${CONFIG_NAMESPACE}:${k}`, out);
  const esc = (t: string) => t.replace(/\|/g, "\\|").replace(/\n/g, " ");
  const lines = [
    "| key | type | default | description |",
    "|---|---|---|---|",
    ...out.map((r) => `| \`${r.key}\` | ${r.type} | ${r.def} | ${esc(r.doc)} |`),
    "",
    "Secret keys (`pulumi config set --secret <key> <value>`; never committed):",
    "",
    "| key | needed when |",
    "|---|---|",
    ...Object.entries(SECRET_KEYS).map(
      ([k, v]) => `| \`${CONFIG_NAMESPACE}:${k}\` | ${esc(v.description)} |`,
    ),
  ];
  return lines.join("\n");
}

const BEGIN = "<!-- config-reference:begin (npm run config-docs) -->";
const END = "<!-- config-reference:end -->";

/** README with a fresh reference, formatted as Prettier would (so `prettier --check` agrees). */
export async function renderReadme(readme: string): Promise<string> {
  const a = readme.indexOf(BEGIN);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error("README.md has no config-reference markers");
  const next = `${readme.slice(0, a + BEGIN.length)}\n\n${configReference()}\n\n${readme.slice(b)}`;
  const options = (await prettier.resolveConfig("README.md")) ?? {};
  return prettier.format(next, { ...options, parser: "markdown" });
}

async function main(): Promise<number> {
  const readme = readFileSync("README.md", "utf8");
  const next = await renderReadme(readme);
  if (!process.argv.includes("--check")) writeFileSync("README.md", next);
  else if (next !== readme) {
    console.error("README.md config reference is stale: run `npm run config-docs`");
    return 1;
  }
  return 0;
}

if (require.main === module) void main().then((code) => process.exit(code));
