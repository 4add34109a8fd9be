import { beforeAll, describe, expect, it } from "vitest";
import { loadShell, shellScriptOf, unwrap, type Shell } from "../lib/shell";

let shell: Shell;
beforeAll(async () => {
  shell = await loadShell();
});

const argvs = (script: string, env?: Record<string, string>) =>
  shell.parse(script, new Map(Object.entries(env ?? {}))).commands.map((c) => c.argv.join(" "));
const envOf = (script: string, i: number, name: string) => shell.parse(script).commands[i]!.env.get(name);

describe("shell words", () => {
  it("removes quotes and escapes like the shell", () => {
    const [c] = shell.parse(`echo "a b \\"c\\"" 'd e' $'f\\tg' pre"mid"'x' \\-q`).commands;
    expect(c!.argv).toEqual(["echo", 'a b "c"', "d e", "f\tg", "premidx", "-q"]);
    expect(c!.literal.every(Boolean)).toBe(true);
  });

  it("expands the variables it knows and marks the others", () => {
    const { commands } = shell.parse(
      "rm -rf $HOME/.npm ${CACHE} ~/.cache $(pwd)",
      new Map([["HOME", "/root"]]),
    );
    // A substitution runs before the command it is part of.
    expect(commands.map((x) => x.argv[0])).toEqual(["pwd", "rm"]);
    const c = commands[1];
    expect(c!.argv.slice(0, 3)).toEqual(["rm", "-rf", "/root/.npm"]);
    expect(c!.literal).toEqual([true, true, true, false, true, false]);
    expect(c!.argv[4]).toBe("/root/.cache");
  });
});

describe("commands and their environment", () => {
  it("reads commands in lists, pipelines, subshells, conditionals, loops and substitutions", () => {
    expect(
      argvs(
        "set -e; a && b || c; (d | e); if f; then g; else h; fi; for p in x y; do i $p; done; while j; do k; done; v=$(l); m() { n; }",
      ),
    ).toEqual(["set -e", "a", "b", "c", "d", "e", "f", "g", "h", "i $p", "j", "k", "l", "n"]);
  });

  it("sees its own prefix assignments, exports of earlier commands, not plain shell variables", () => {
    expect(envOf("A=1 pip install x", 0, "A")).toBe("1");
    expect(envOf("A=1 b; c", 1, "A")).toBeUndefined();
    expect(envOf("export A=1 && b", 0, "A")).toBe("1");
    expect(envOf("declare -x A=2; b", 0, "A")).toBe("2");
    expect(envOf("A=1; b", 0, "A")).toBeUndefined();
    expect(envOf("A=1; export A; b", 0, "A")).toBe("1");
    expect(envOf("set -a; A=1; b", 1, "A")).toBe("1");
    expect(envOf("export A=1; unset A; b", 0, "A")).toBeUndefined();
    expect(shell.parse("b", new Map([["A", "0"]])).commands[0]!.env.get("A")).toBe("0");
  });

  it("unwraps sudo, env, xargs, timeout and friends", () => {
    expect(
      argvs(
        "sudo -u app -E apt-get install x; env -i A=1 pip install y; xargs -r -n 1 apk add < l; timeout 30 dnf in z; nice -n 5 nohup eatmydata apt-get upgrade",
      ),
    ).toEqual(["apt-get install x", "pip install y", "apk add", "dnf in z", "apt-get upgrade"]);
    expect(shell.parse("env -i A=1 pip install y", new Map([["B", "2"]])).commands[0]!.env).toEqual(
      new Map([["A", "1"]]),
    );
    expect(argvs("command -v apt-get && command apt-get install x")).toEqual(["apt-get install x"]);
  });

  it("parses sh -c scripts, exec-form argvs and here-documents run by a shell", () => {
    expect(argvs(`sh -c "apt-get update && apt-get install -y x"`)).toEqual([
      "apt-get update",
      "apt-get install -y x",
    ]);
    expect(argvs(`bash -o pipefail -ec 'apk add y | tee log'`)).toEqual(["apk add y", "tee log"]);
    expect(
      shell.argv(["/bin/sh", "-c", "dnf -y in jq && dnf clean all"]).commands.map((c) => c.argv),
    ).toEqual([
      ["dnf", "-y", "in", "jq"],
      ["dnf", "clean", "all"],
    ]);
    const here = shell.parse("true && bash <<EOF\napk add y\nEOF");
    expect(here.commands.map((c) => [c.argv.join(" "), c.row])).toEqual([
      ["true", 0],
      ["apk add y", 1],
    ]);
    expect(argvs("python3 <<EOF\nimport os\nEOF")).toEqual(["python3"]);
  });

  it("reports rows, continuation lines included, and inner scripts' rows", () => {
    const s = shell.parse('apt-get update \\\n && apt-get install x \\\n && sh -c "a\nb"');
    expect(s.commands.map((c) => c.row)).toEqual([0, 1, 2, 3]);
  });

  it("reports the first syntax error and still reads the rest", () => {
    const bad = shell.parse('apk add x && echo "unterminated');
    expect(bad.error).toBeDefined();
    expect(bad.commands[0]!.argv).toEqual(["apk", "add", "x"]);
    expect(shell.parse("a && b").error).toBeUndefined();
  });
});

describe("shellScriptOf / unwrap", () => {
  it.each([
    [["sh", "-c", "x"], "x"],
    [["/bin/bash", "-o", "pipefail", "-c", "y"], "y"],
    [["bash", "-ec", "z", "name"], "z"],
    [["sh", "script.sh"], undefined],
    [["bash", "-ex"], undefined],
    [["python3", "-c", "print(1)"], undefined],
  ])("%j → %j", (argv, script) => expect(shellScriptOf(argv)).toBe(script));

  it("returns nothing for a wrapper with nothing to run", () => {
    expect(unwrap(["sudo", "-E"], [true, true], new Map())).toBeUndefined();
    expect(unwrap(["gcc", "-o", "x"], [true, true, true], new Map())?.argv).toEqual(["gcc", "-o", "x"]);
  });
});
