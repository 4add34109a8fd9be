import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parsePlatformConfig, SECRET_KEY_NAMES, SECRET_KEYS } from "../components/config";
import { failed, runStack } from "../tools/preflight/run";
import { loadStackConfig, listStacks } from "../tools/preflight/stack-config";
import {
  describePlaintextSecret,
  plaintextSecretLines,
  plaintextSecrets,
  replaceAt,
} from "../tools/preflight/stack-secrets";

const SCHEMA_SECRETS = new Set(["platform:githubToken", "platform:hfToken"]);
const TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8";

describe("plain-text credentials in a stack file", () => {
  it("finds a schema secret without secure:, and credential-shaped values under any key", () => {
    const found = plaintextSecrets(
      {
        "platform:githubToken": TOKEN,
        "platform:hfToken": { secure: "v1:AAAA" },
        "platform:cluster": { servers: [{ name: "s", address: "10.0.0.1", password: "Zq8vN3xR7tLp2Wc9Kd" }] },
        "platform:notes": "clone https://ci:Hq7vR2xW9kLm@git.example.org/r.git",
        "aws:region": "eu-west-1",
      },
      SCHEMA_SECRETS,
    );
    expect(found.map((f) => [f.key, f.path])).toEqual([
      ["platform:githubToken", ""],
      ["platform:cluster", "servers[0].password"],
      ["platform:notes", ""],
    ]);
  });

  it("passes encrypted values, references, placeholders and ordinary settings", () => {
    expect(
      plaintextSecrets(
        {
          "platform:githubToken": { secure: "v1:AAAA" },
          "platform:registry": { hostname: "registry.example.org", passwordFile: "/run/secrets/pw" },
          "platform:delivery": { github: { tokenSecretName: "gh-token", owner: "acme" } },
          "platform:url": "https://user:${PASSWORD}@host.example.org",
        },
        SCHEMA_SECRETS,
      ),
    ).toEqual([]);
  });

  it("says which key, what it holds and the fix, never the value", () => {
    const [f] = plaintextSecrets({ "platform:githubToken": TOKEN }, SCHEMA_SECRETS);
    const line = describePlaintextSecret("Pulumi.dev.yaml", f!);
    expect(line).toMatch(
      /Pulumi\.dev\.yaml: platform:githubToken .*pulumi config set --secret platform:githubToken/,
    );
    expect(line).not.toContain(TOKEN);
  });

  it("no committed stack holds one", () => {
    for (const stack of listStacks(process.cwd()))
      expect(loadStackConfig(process.cwd(), stack).plaintextSecrets, stack).toEqual([]);
  });

  it("puts a canary in the value's place for the run, so nothing of it reaches a plan or out/", () => {
    const sc = loadStackConfig(process.cwd(), "dev", {
      "platform:githubToken": TOKEN,
      "platform:notes": { dsn: "postgres://app:Hq7vR2xW9kLm@db.example.org/app" },
    });
    expect(sc.plaintextSecrets.map((s) => s.key)).toEqual(["platform:githubToken", "platform:notes"]);
    expect(JSON.stringify(sc.config)).not.toContain(TOKEN);
    expect(JSON.stringify(sc.config)).not.toContain("Hq7vR2xW9kLm");
    const dsn = (JSON.parse(sc.config["platform:notes"]!) as { dsn: string }).dsn;
    expect(sc.canaries.get(dsn)).toBe("platform:notes");
    expect(sc.secretKeys).toContain("platform:githubToken");
  });

  it("reads a stack file that does not parse line by line, naming lines and keys, never values", () => {
    const text = `config:\n  platform:githubToken: ${TOKEN}\n\tplatform:mesh: {\n  platform:environment: dev\n`;
    const lines = plaintextSecretLines(text);
    expect(lines.map((l) => [l.line, l.key])).toEqual([[2, "platform:githubToken"]]);
    expect(JSON.stringify(lines)).not.toContain(TOKEN);
  });

  it("replaces one leaf without touching the rest", () => {
    const v = { a: [{ b: "x" }, { b: "y" }], c: 1 };
    expect(replaceAt(v, ["a", 1, "b"], "z")).toEqual({ a: [{ b: "x" }, { b: "z" }], c: 1 });
    expect(v.a[1]!.b).toBe("y");
  });

  it("each stack file's header names exactly the secrets that stack needs", () => {
    for (const stack of listStacks(process.cwd())) {
      const sc = loadStackConfig(process.cwd(), stack);
      const c = parsePlatformConfig(sc.config, new Set(SECRET_KEY_NAMES));
      const needed = SECRET_KEY_NAMES.filter((n) => SECRET_KEYS[n].requiredWhen(c)).map(
        (n) => `platform:${n}`,
      );
      const header = readFileSync(`Pulumi.${stack}.yaml`, "utf8")
        .split(/^config:/m)[0]!
        .replace(/^# ?/gm, "");
      const listed = /Secrets to set once:([^(]*)/.exec(header.replace(/\n/g, " "))?.[1] ?? "";
      const named = listed.split(/[\s,]+/).filter((w) => w.startsWith("platform:"));
      if (needed.length === 0) expect(header, stack).toMatch(/Needs no secrets/);
      expect(named.sort(), stack).toEqual(needed.sort());
    }
  });

  it("fails the preflight with a finding naming the key, and nothing of the value in the plan", async () => {
    const r = await runStack("dev", { overrides: { "platform:githubToken": TOKEN } });
    if (r.kind !== "plan") throw new Error(`unexpected ${r.kind}`);
    const f = r.plan.findings.filter((x) => x.check === "config");
    expect(f).toEqual([expect.objectContaining({ severity: "error", field: "platform:githubToken" })]);
    expect(f[0]!.message).toMatch(/Pulumi\.dev\.yaml: platform:githubToken .*--secret/);
    expect(failed(r.plan)).toBe(true);
    expect(JSON.stringify(r.plan)).not.toContain(TOKEN);
  });
});

describe("what the cluster needs from outside the program", () => {
  it("a laptop cluster's registry setup is a warning on its stack, naming the stack output", async () => {
    const r = await runStack("local", {
      overrides: { "platform:cluster": { kind: "existing", distribution: "k3d" } },
    });
    if (r.kind !== "plan") throw new Error(`unexpected ${r.kind}`);
    const f = r.plan.findings.filter((x) => x.check === "cluster");
    expect(f).toEqual([expect.objectContaining({ severity: "warning", field: "localRegistrySetup" })]);
    expect(f[0]!.message).toMatch(/k3d .*--registry-config.*localRegistrySetup\.file/);
  });
});
