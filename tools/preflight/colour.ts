/**
 * Colours for the terminal report: on when the stream is a terminal, off for NO_COLOR (any
 * non-empty value, https://no-color.org), TERM=dumb and anything piped. FORCE_COLOR turns them on
 * (or off with 0/false) whatever the stream, as Node itself reads it. Plain ANSI SGR codes: no
 * dependency, and the report stays greppable once they are stripped.
 */

export interface Palette {
  readonly red: (s: string) => string;
  readonly yellow: (s: string) => string;
  readonly green: (s: string) => string;
  readonly cyan: (s: string) => string;
  readonly bold: (s: string) => string;
  readonly dim: (s: string) => string;
}

/** Whether to colour what goes to `stream` under `env`. */
export function colourEnabled(
  stream: { readonly isTTY?: boolean },
  env: Readonly<Record<string, string | undefined>> = process.env,
): boolean {
  const force = env["FORCE_COLOR"];
  if (force !== undefined) return force !== "0" && force.toLowerCase() !== "false";
  if (env["NO_COLOR"]) return false;
  if (env["TERM"] === "dumb") return false;
  return stream.isTTY === true;
}

const sgr = (open: number, close: number) => (s: string) => (s ? `\x1b[${open}m${s}\x1b[${close}m` : s);
const same = (s: string) => s;

export const PLAIN: Palette = { red: same, yellow: same, green: same, cyan: same, bold: same, dim: same };

export const ANSI: Palette = {
  red: sgr(31, 39),
  yellow: sgr(33, 39),
  green: sgr(32, 39),
  cyan: sgr(36, 39),
  bold: sgr(1, 22),
  dim: sgr(2, 22),
};

export const palette = (on: boolean): Palette => (on ? ANSI : PLAIN);

/** The text without its colours. */
// eslint-disable-next-line no-control-regex
export const stripColour = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, "");

/** The colour of a finding's level: errors red, warnings and advisories yellow. */
export function levelColour(p: Palette, level: string): (s: string) => string {
  if (/^(mandatory|schema|leak|error|config)$/.test(level)) return p.red;
  if (/^(advisory|warning|remediate)$/.test(level) || level.endsWith(" warning")) return p.yellow;
  return p.red;
}
