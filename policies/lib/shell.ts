/**
 * The shell of a Dockerfile `RUN`, parsed with tree-sitter's bash grammar (web-tree-sitter, WASM) into
 * the simple commands it runs, in script order: words after quote removal, the environment each one
 * sees, and the script row it starts on. Wrappers (`sudo`, `env`, `xargs`, …) are unwrapped and
 * `sh -c '…'` / `bash <<EOF` scripts are parsed in turn, so the package rules judge what actually runs
 * instead of matching text.
 */
import { Language, Parser, type Node } from "web-tree-sitter";

export interface Command {
  /** Words after quote removal and expansion of the variables known here; wrappers removed. */
  readonly argv: readonly string[];
  /** Per word: false when it holds an expansion or substitution whose value is unknown. */
  readonly literal: readonly boolean[];
  /** Environment the command runs with: the script's exports so far plus its own `A=b` prefixes. */
  readonly env: ReadonlyMap<string, string>;
  /** 0-based row of the script the command starts on. */
  readonly row: number;
}

export interface ShellScript {
  readonly commands: readonly Command[];
  /** The first syntax error, if the script does not parse (the commands around it are still read). */
  readonly error?: { readonly row: number; readonly message: string };
}

/** Parses a shell script, or runs an exec-form argv (`RUN ["sh", "-c", "…"]`) through the same unwrapping. */
export interface Shell {
  parse(script: string, env?: ReadonlyMap<string, string>): ShellScript;
  argv(argv: readonly string[], env?: ReadonlyMap<string, string>): ShellScript;
}

let loading: Promise<Shell> | undefined;

/** The parser, loaded once per process (WASM instantiation is asynchronous; parsing is not). */
export function loadShell(): Promise<Shell> {
  loading ??= (async () => {
    await Parser.init();
    const bash = await Language.load(require.resolve("tree-sitter-bash/tree-sitter-bash.wasm"));
    const parser = new Parser();
    parser.setLanguage(bash);
    return {
      parse: (script, env = new Map()) => {
        const tree = parser.parse(script);
        if (!tree) return { commands: [], error: { row: 0, message: "the shell parser gave up" } };
        try {
          const out: Command[] = [];
          new Walker(env, 0, out, parser).statements(tree.rootNode);
          const error = tree.rootNode.hasError ? firstError(tree.rootNode) : undefined;
          return error ? { commands: out, error } : { commands: out };
        } finally {
          tree.delete(); // WASM memory is not garbage-collected
        }
      },
      argv: (argv, env = new Map()) => {
        const out: Command[] = [];
        new Walker(env, 0, out, parser).exec(argv);
        return { commands: out };
      },
    };
  })();
  return loading;
}

function firstError(root: Node): { row: number; message: string } {
  const find = (n: Node): Node | undefined => {
    if (n.isError || n.isMissing) return n;
    for (const c of n.children) if (c.hasError || c.isMissing || c.isError) return find(c) ?? c;
    return undefined;
  };
  const bad = find(root) ?? root;
  const near = bad.text.split("\n")[0]!.slice(0, 40);
  return {
    row: bad.startPosition.row,
    message: bad.isMissing ? `missing \`${bad.type}\`` : `syntax error near \`${near}\``,
  };
}

/** Unquoted backslash escapes: `\x` is `x`, a backslash-newline joins lines. */
const unescapeBare = (s: string) => s.replace(/\\\n/g, "").replace(/\\(.)/g, "$1");
/** Inside double quotes only `$`, `` ` ``, `"`, `\` and newline are escapable. */
const unescapeDouble = (s: string) => s.replace(/\\\n/g, "").replace(/\\([$`"\\])/g, "$1");
const unescapeAnsiC = (s: string) =>
  s.replace(/\\([ntr'"\\])/g, (_m, c: string) => ({ n: "\n", t: "\t", r: "\r" })[c] ?? c);

interface Decoded {
  text: string;
  literal: boolean;
}

class Walker {
  private readonly vars: Map<string, string>;
  private readonly env: Map<string, string>;
  private allexport = false;

  constructor(
    env: ReadonlyMap<string, string>,
    private readonly rowOffset: number,
    private readonly out: Command[],
    private readonly parser: Parser,
  ) {
    this.env = new Map(env);
    this.vars = new Map(env);
  }

  /** Walks any node, emitting the simple commands below it in script order. */
  statements(node: Node): void {
    switch (node.type) {
      case "command":
        this.command(node);
        return;
      case "declaration_command":
        this.declaration(node);
        return;
      case "variable_assignment":
        this.assign(node, this.allexport);
        return;
      case "unset_command":
        for (const c of node.namedChildren.slice(0)) {
          this.vars.delete(c.text);
          this.env.delete(c.text);
        }
        return;
      case "redirected_statement":
        this.redirected(node);
        return;
      default:
        for (const c of node.namedChildren) this.statements(c);
    }
  }

  private redirected(node: Node): void {
    const before = this.out.length;
    for (const c of node.childrenForFieldName("body")) this.statements(c);
    for (const r of node.childrenForFieldName("redirect")) this.statements(r);
    // `bash <<EOF` runs its here-document: the grammar hangs the redirect on the whole list, and in
    // the shell it belongs to the last command before it.
    const last = this.out.length > before ? this.out[this.out.length - 1] : undefined;
    const body = node.namedChildren.find((c) => c.type === "heredoc_redirect")?.namedChildren;
    const text = body?.find((c) => c.type === "heredoc_body");
    if (last && text && isShell(last.argv) && shellScriptOf(last.argv) === undefined) {
      this.out.pop();
      this.nested(text.text, last.env, text.startPosition.row);
    }
  }

  private declaration(node: Node): void {
    const keyword = node.child(0)?.text ?? "";
    const flags = node.namedChildren.filter((c) => c.type === "word").map((c) => c.text);
    const exports = keyword === "export" || flags.some((f) => /^-[a-z]*x/.test(f));
    for (const c of node.namedChildren) {
      if (c.type === "variable_assignment") this.assign(c, exports);
      else if (c.type === "variable_name" && exports) {
        const v = this.vars.get(c.text);
        if (v !== undefined) this.env.set(c.text, v);
      } else this.statements(c);
    }
  }

  private assign(node: Node, exported: boolean): void {
    const name = node.childForFieldName("name")?.text;
    const valueNode = node.childForFieldName("value");
    if (valueNode) this.statements(valueNode); // `x=$(dnf install …)` runs dnf
    if (!name) return;
    const value = valueNode ? this.word(valueNode) : { text: "", literal: true };
    if (!value.literal) {
      this.vars.delete(name);
      this.env.delete(name);
      return;
    }
    this.vars.set(name, value.text);
    if (exported || this.env.has(name)) this.env.set(name, value.text);
  }

  private command(node: Node): void {
    const prefix = new Map<string, string>();
    const words: Decoded[] = [];
    for (const c of node.namedChildren) {
      if (c.type === "variable_assignment") {
        const name = c.childForFieldName("name")?.text;
        const v = c.childForFieldName("value");
        const value = v ? this.word(v) : { text: "", literal: true };
        if (name && value.literal) prefix.set(name, value.text);
      }
    }
    const name = node.childForFieldName("name");
    if (name) words.push(this.word(name));
    for (const a of node.childrenForFieldName("argument")) words.push(this.word(a));
    // Substitutions inside the words run first; their commands count as well.
    for (const c of node.namedChildren) this.substitutions(c);
    if (words.length === 0) return;
    const env = new Map([...this.env, ...prefix]);
    const row = node.startPosition.row;
    if (words[0]!.text === "set") this.setOptions(words.slice(1).map((w) => w.text));
    this.emit(
      words.map((w) => w.text),
      words.map((w) => w.literal),
      env,
      row,
      node,
    );
  }

  private substitutions(node: Node): void {
    if (node.type === "command_substitution" || node.type === "process_substitution") {
      for (const c of node.namedChildren) this.statements(c);
      return;
    }
    for (const c of node.namedChildren) this.substitutions(c);
  }

  private setOptions(args: readonly string[]): void {
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (/^-[a-z]*a/.test(a) || (a === "-o" && args[i + 1] === "allexport")) this.allexport = true;
      if (/^\+[a-z]*a/.test(a) || (a === "+o" && args[i + 1] === "allexport")) this.allexport = false;
    }
  }

  private emit(
    argv: readonly string[],
    literal: readonly boolean[],
    env: ReadonlyMap<string, string>,
    row: number,
    node: Node | undefined,
  ): void {
    const inner = unwrap(argv, literal, env);
    if (!inner) return;
    const script = shellScriptOf(inner.argv);
    if (script !== undefined) {
      // `sh -c '…'`: the script is a word of this command; rows count from the command's row.
      this.nested(script, inner.env, node ? this.rowOfWord(node, script) : row);
      return;
    }
    this.out.push({ argv: inner.argv, literal: inner.literal, env: inner.env, row: row + this.rowOffset });
  }

  private nested(script: string, env: ReadonlyMap<string, string>, row: number): void {
    const tree = this.parser.parse(script);
    if (!tree) return;
    try {
      new Walker(env, this.rowOffset + row, this.out, this.parser).statements(tree.rootNode);
    } finally {
      tree.delete();
    }
  }

  /** Runs an exec-form argv: no shell of its own, but wrappers and `sh -c` still apply. */
  exec(argv: readonly string[]): void {
    this.emit(
      argv,
      argv.map(() => true),
      this.env,
      0,
      undefined,
    );
  }

  /** The row the argument `text` of a command starts on (a `-c` script may sit on a later row). */
  private rowOfWord(node: Node, text: string): number {
    const arg = node.childrenForFieldName("argument").find((a) => this.word(a).text === text);
    return (arg ?? node).startPosition.row;
  }

  /** A word after quote removal; variables known in the script are expanded. */
  word(node: Node): Decoded {
    switch (node.type) {
      case "command_name":
        return node.namedChildren[0] ? this.word(node.namedChildren[0]) : { text: "", literal: true };
      case "word":
      case "number": {
        const text = unescapeBare(node.text);
        if (text === "~" || text.startsWith("~/")) {
          const home = this.vars.get("HOME");
          return home !== undefined
            ? { text: home + text.slice(1), literal: true }
            : { text, literal: false };
        }
        return { text, literal: true };
      }
      case "raw_string":
        return { text: node.text.slice(1, -1), literal: true };
      case "ansi_c_string":
        return { text: unescapeAnsiC(node.text.slice(2, -1)), literal: true };
      case "string":
      case "concatenation": {
        // The grammar leaves some characters of a string (newlines) to no child: take the gaps too.
        const quoted = node.type === "string";
        const plain = (s: string) => (quoted ? unescapeDouble(s) : unescapeBare(s));
        let text = "";
        let literal = true;
        let at = node.startIndex;
        for (const c of node.children) {
          text += plain(node.text.slice(at - node.startIndex, c.startIndex - node.startIndex));
          at = c.endIndex;
          if (quoted && c.type === '"') continue;
          const d =
            c.type === "string_content" || !c.isNamed ? { text: plain(c.text), literal: true } : this.word(c);
          text += d.text;
          literal &&= d.literal;
        }
        text += plain(node.text.slice(at - node.startIndex));
        return { text, literal };
      }
      case "simple_expansion":
      case "expansion":
        return this.expansion(node);
      default:
        return { text: node.text, literal: false };
    }
  }

  private expansion(node: Node): Decoded {
    const m = /^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$/.exec(node.text);
    const v = m ? this.vars.get(m[1]!) : undefined;
    return v !== undefined ? { text: v, literal: true } : { text: node.text, literal: false };
  }
}

const SHELLS = new Set(["sh", "bash", "dash", "ash", "zsh", "ksh", "mksh"]);
const base = (p: string) => p.slice(p.lastIndexOf("/") + 1);

export const isShell = (argv: readonly string[]): boolean => argv.length > 0 && SHELLS.has(base(argv[0]!));

/**
 * The script of `sh -c SCRIPT …` (options before it, `-o opt` taking a value), or undefined when
 * the shell reads a file or its standard input instead.
 */
export function shellScriptOf(argv: readonly string[]): string | undefined {
  if (!isShell(argv)) return undefined;
  let c = false;
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") return c ? argv[i + 1] : undefined;
    if (/^[-+]o$/.test(a)) {
      i++;
      continue;
    }
    if (/^[-+][A-Za-z]+$/.test(a)) {
      if (a.startsWith("-") && a.includes("c")) c = true;
      continue;
    }
    return c ? a : undefined;
  }
  return undefined;
}

/** Options of a wrapper that take a value (the next word unless attached with `=` or glued). */
const WRAPPERS: Readonly<Record<string, { values: ReadonlySet<string>; assigns?: boolean }>> = {
  sudo: { values: new Set(["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-T", "-U"]), assigns: true },
  env: { values: new Set(["-u", "-C", "-S", "--unset", "--chdir"]), assigns: true },
  nice: { values: new Set(["-n", "--adjustment"]) },
  nohup: { values: new Set() },
  time: { values: new Set(["-f", "-o"]) },
  command: { values: new Set() },
  exec: { values: new Set(["-a"]) },
  eatmydata: { values: new Set() },
  stdbuf: { values: new Set(["-i", "-o", "-e"]) },
  timeout: { values: new Set(["-k", "-s", "--kill-after", "--signal"]) },
  xargs: {
    values: new Set([
      "-a",
      "-d",
      "-E",
      "-I",
      "-L",
      "-n",
      "-P",
      "-s",
      "--arg-file",
      "--delimiter",
      "--max-args",
    ]),
  },
  busybox: { values: new Set() },
};

/**
 * The command a wrapper runs (`sudo -u x apt-get …` → `apt-get …`, `env A=1 pip …` with A set),
 * recursively; undefined for `command -v x` and wrappers with nothing to run.
 */
export function unwrap(
  argv: readonly string[],
  literal: readonly boolean[],
  env: ReadonlyMap<string, string>,
): { argv: readonly string[]; literal: readonly boolean[]; env: ReadonlyMap<string, string> } | undefined {
  const name = base(argv[0] ?? "");
  const w = WRAPPERS[name];
  if (!w) return { argv, literal, env };
  const next = new Map(env);
  let i = 1;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      i++;
      break;
    }
    if (name === "command" && /^-[a-zA-Z]*[vV]/.test(a)) return undefined; // a lookup, runs nothing
    if (name === "env" && (a === "-i" || a === "--ignore-environment")) {
      next.clear();
      continue;
    }
    if (w.assigns && /^[A-Za-z_][A-Za-z0-9_]*=/.test(a)) {
      const eq = a.indexOf("=");
      next.set(a.slice(0, eq), a.slice(eq + 1));
      continue;
    }
    if (name === "timeout" && /^\d/.test(a)) {
      i++; // the duration, then the command
      break;
    }
    if (a.startsWith("-") && a.length > 1) {
      if (w.values.has(a)) i++;
      continue;
    }
    break;
  }
  if (i >= argv.length) return undefined;
  return unwrap(argv.slice(i), literal.slice(i), next);
}
