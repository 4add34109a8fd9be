/**
 * A YAML file that does not parse, said where it breaks: the line, the column and the chain of
 * mapping keys around that line (`config.platform:inference.services[1].model`), so the fix starts
 * at the right key without counting lines. The `yaml` package's errors carry the position; the key
 * path comes from indentation, which survives the very errors that leave no usable document.
 */
import { parseDocument } from "yaml";

export interface YamlSyntaxError {
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly column: number;
  /** The mapping keys enclosing the line, outermost first; a sequence item as `[n]`. */
  readonly keyPath: string[];
  /** The parser's own words, without its position and code excerpt. */
  readonly message: string;
}

/** The first syntax error of `text`, or undefined when it parses. */
export function yamlSyntaxError(text: string): YamlSyntaxError | undefined {
  const doc = parseDocument(text, { prettyErrors: true });
  const e = doc.errors[0];
  if (!e) return undefined;
  const pos = e.linePos?.[0] ?? { line: 1, col: 1 };
  const message = e.message
    .split("\n")[0]!
    .replace(/ at line \d+, column \d+:?$/, "")
    .trim();
  return { line: pos.line, column: pos.col, keyPath: keyPathAt(text, pos.line), message };
}

/** `config.platform:mesh.enabled`, `services[0].name`: how messages print a key path. */
export function formatKeyPath(path: readonly string[]): string {
  return path.map((p, i) => (p.startsWith("[") || i === 0 ? p : `.${p}`)).join("");
}

/** One sentence for a usage error: file, line, column, key path and what the parser says. */
export function describeYamlError(file: string, e: YamlSyntaxError): string {
  const where = e.keyPath.length ? ` (key ${formatKeyPath(e.keyPath)})` : "";
  return `${file} is not valid YAML at line ${e.line}, column ${e.column}${where}: ${e.message}`;
}

interface Open {
  /** Column where the key or the item's dash stands. */
  readonly indent: number;
  readonly label: string;
  readonly item: boolean;
  /** A key with its value on its own line (`name: web`): it encloses nothing below it. */
  readonly leaf?: boolean;
  /** Items seen so far below this entry (for the next `[n]`). */
  items: number;
}

const KEY = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s#'"[\]{},-][^#]*?|-[^\s#][^#]*?)\s*:(?:\s|$)/;

/**
 * The keys enclosing line `line` (1-based) of `text`, and that line's own key, read from
 * indentation: each key or item opens a level that lasts until a line at its indentation or less;
 * a key whose value is on its line (`name: web`) opens none, and a block scalar's lines (`key: |`)
 * are text. A blank, comment or past-the-end line takes the path of the last content line before it.
 */
export function keyPathAt(text: string, line: number): string[] {
  const lines = text.split(/\r?\n/);
  const isContent = (l: string) => l.trim() !== "" && !l.trimStart().startsWith("#");
  let last = Math.min(line, lines.length) - 1;
  while (last >= 0 && !isContent(lines[last]!)) last--;
  const open: Open[] = [];
  // The sequence an item belongs to: the entry just outside it, or the document root.
  const root: Open = { indent: -1, label: "", item: false, items: 0 };
  // Inside a block scalar: the indentation of its key (its text is deeper).
  let block: number | undefined;
  for (let i = 0; i <= last; i++) {
    const raw = lines[i]!;
    if (!isContent(raw) || raw.startsWith("---") || raw.startsWith("...")) continue;
    // A tab (an error in YAML, and often the error reported) counts to the next multiple of 8.
    const lead = /^[ \t]*/.exec(raw)![0];
    const indent = [...lead].reduce((n, c) => (c === "\t" ? n + 8 - (n % 8) : n + 1), 0);
    if (block !== undefined && indent > block) continue;
    block = undefined;
    // The previous line's `key: value` encloses nothing: this line is not below it.
    if (open.at(-1)?.leaf) open.pop();
    let col = indent;
    let rest = raw.slice(lead.length);
    let first = true;
    // A line may open several items (`- - a: 1`), then at most one key.
    while (/^-(\s|$)/.test(rest)) {
      // An item closes what is deeper, and a previous item at its column; a key at the same
      // column is the sequence's own key (a sequence may sit at its key's indentation).
      if (first)
        while (
          open.length &&
          (open.at(-1)!.indent > col || (open.at(-1)!.indent === col && open.at(-1)!.item))
        )
          open.pop();
      first = false;
      const parent = open.at(-1) ?? root;
      open.push({ indent: col, label: `[${parent.items++}]`, item: true, items: 0 });
      const skip = /^-\s*/.exec(rest)![0].length;
      col += skip;
      rest = rest.slice(skip);
    }
    const key = KEY.exec(rest);
    if (!key) continue;
    if (first) while (open.length && open.at(-1)!.indent >= col) open.pop();
    const value = rest
      .slice(key[0].length)
      .replace(/(^|\s)#.*$/, "")
      .trim();
    if (/^[|>][-+0-9]*$/.test(value)) block = col;
    const leaf = value !== "" && block === undefined && !/^&\S+$/.test(value);
    open.push({ indent: col, label: unquote(key[1]!), item: false, ...(leaf ? { leaf } : {}), items: 0 });
  }
  return open.map((o) => o.label);
}

function unquote(k: string): string {
  if (k.startsWith('"')) {
    try {
      return JSON.parse(k) as string;
    } catch {
      return k.slice(1, -1);
    }
  }
  if (k.startsWith("'")) return k.slice(1, -1).replace(/''/g, "'");
  return k.trim();
}
