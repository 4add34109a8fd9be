/**
 * Small, allocation-free helpers for reading resource inputs defensively. Inputs arrive as plain
 * JSON (preflight, CLI) or wrapped in CrossGuard's unknown-checking proxy (preview); `raw()` strips
 * the proxy so a policy never throws on a value that is unknown during preview — unknown values
 * are then the engine's sentinel strings, which `isUnknown()` recognises and policies skip.
 */

export type Obj = Record<string, unknown>;

/** The engine's sentinels for values that are not known during preview (one per value kind). */
export const UNKNOWN_SENTINELS: ReadonlySet<string> = new Set([
  "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7", // boolean
  "3eeb2bf0-c639-47a8-9e75-3b44932eb421", // number
  "04da6b54-80e4-46f7-96ec-b56ff0331ba9", // string
  "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2", // array
  "030794c1-ac77-496b-92df-f27374a8bd58", // asset
  "e48ece36-62e2-4504-bad9-02848725956a", // archive
  "dd056dcd-154b-4c76-9bd3-c8f88648b5ff", // object
]);

/** The sentinel the engine uses for an unknown string (and, on the wire, for any unknown). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export function isUnknown(v: unknown): boolean {
  return typeof v === "string" && v.length === 36 && UNKNOWN_SENTINELS.has(v);
}

const IS_PROXY = "__isSpecialProxy";
const PROXY_TARGET = "__getSpecialProxyTarget";

/** The object behind CrossGuard's property proxies (no-op for plain objects). */
export function raw(v: unknown): Obj {
  let cur = v as Obj | undefined;
  for (let i = 0; i < 4 && cur && typeof cur === "object" && cur[IS_PROXY] === true; i++) {
    cur = cur[PROXY_TARGET] as Obj | undefined;
  }
  return cur && typeof cur === "object" ? cur : {};
}

export function obj(v: unknown): Obj | undefined {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : undefined;
}

export function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** A known string, or undefined for anything else (including unknowns). */
export function str(v: unknown): string | undefined {
  return typeof v === "string" && !isUnknown(v) ? v : undefined;
}

export function dig(v: unknown, ...path: (string | number)[]): unknown {
  let cur = v;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Obj)[seg];
  }
  return cur;
}

/** Minimal glob: `*` matches any run of characters (including `/`), `?` one character. */
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`, "i");
}

const globCache = new Map<string, RegExp>();
export function globMatch(glob: string, value: string): boolean {
  let re = globCache.get(glob);
  if (!re) {
    re = globToRegExp(glob);
    globCache.set(glob, re);
  }
  return re.test(value);
}

/** Shannon entropy in bits per character. */
export function shannonEntropy(s: string): number {
  if (s.length === 0) return 0;
  const counts = new Map<string, number>();
  for (const ch of s) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/** Dot path for messages: `spec.template.spec.containers[0].env[1].value`. */
export function formatPath(path: readonly (string | number)[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}
