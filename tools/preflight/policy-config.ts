/**
 * A policy-pack config file (`policies/config/<stack>.json`, `npm run policy -- check --config`)
 * read as a user's input: a file that cannot be read, is not JSON, is not an object or does not
 * match the pack is one sentence naming the file and the field (or the line and column), never a
 * stack trace. Both CLIs exit 2 on it.
 */
import { readFileSync } from "node:fs";
import type { Policies, PolicyPackConfig } from "@pulumi/policy";
import { validatePackConfig } from "../../policies/lib/config";

export class PolicyConfigFileError extends Error {
  constructor(
    readonly file: string,
    readonly detail: string,
  ) {
    super(`${file}: ${detail}`);
    this.name = "PolicyConfigFileError";
  }
}

/** 1-based line and column of a JSON.parse error, from its "position N" (or its own line/column). */
export function jsonErrorPosition(
  text: string,
  message: string,
): { line: number; column: number } | undefined {
  const lc = /\(line (\d+) column (\d+)\)/.exec(message);
  if (lc) return { line: Number(lc[1]), column: Number(lc[2]) };
  const pos = /at position (\d+)/.exec(message);
  if (!pos) return text.trim() === "" ? { line: 1, column: 1 } : undefined;
  const before = text.slice(0, Number(pos[1]));
  const lines = before.split("\n");
  return { line: lines.length, column: lines.at(-1)!.length + 1 };
}

/** The parser's words without its position (which the message gives as line and column). */
const jsonReason = (message: string) =>
  message
    .replace(/ in JSON at position \d+( \(line \d+ column \d+\))?/, "")
    .replace(/^JSON\.parse: /, "")
    .trim();

/**
 * Parses and checks a policy-pack config. With `policies`, every entry is checked against the pack
 * (unknown policies, levels, an exemption without a reason) and all problems are in the message.
 */
export function parsePolicyConfig(file: string, text: string, policies?: Policies): PolicyPackConfig {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const message = (e as Error).message;
    const at = jsonErrorPosition(text, message);
    throw new PolicyConfigFileError(
      file,
      `invalid JSON${at ? ` at line ${at.line}, column ${at.column}` : ""}: ${jsonReason(message)}`,
    );
  }
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new PolicyConfigFileError(
      file,
      `invalid policy-pack config: expected an object of policy names, got ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}`,
    );
  const config = value as PolicyPackConfig;
  if (policies) {
    const problems = validatePackConfig(policies, config);
    if (problems.length > 0)
      throw new PolicyConfigFileError(file, `invalid policy-pack config: ${problems.join("; ")}`);
  }
  return config;
}

/** Reads and checks a policy-pack config file (see parsePolicyConfig). */
export function readPolicyConfigFile(file: string, policies?: Policies): PolicyPackConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new PolicyConfigFileError(
      file,
      `cannot read config (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
    );
  }
  return parsePolicyConfig(file, text, policies);
}
