import { isUtf8 } from "node:buffer";

/**
 * One strict pass over a request body: RFC 8259 JSON only, valid UTF-8, no object with the same key
 * twice (after unescaping, so `"mod\u0065l"` and `"model"` collide), nesting at most `maxDepth`.
 * It returns the top-level members' scalar values (and array lengths) and builds nothing else.
 *
 * Why not JSON.parse: it keeps the last of duplicate keys, and another parser on the way to the model
 * may keep the first, so a body could pass the model allow-list as one model and run as another.
 * The relay forwards the body's bytes unchanged; this scan is the only parse the gateway does of them,
 * so what the checks saw is exactly what the backend gets. No maintained npm package does this
 * (duplicate detection, depth bound, no value tree) in one pass over a Buffer.
 */
export type TopValue =
  | { type: "string"; value: string }
  | { type: "number"; value: number }
  | { type: "boolean"; value: boolean }
  | { type: "null" }
  | { type: "array"; length: number }
  | { type: "object" };

export type ScanResult =
  | { ok: true; root: TopValue["type"]; fields: Map<string, TopValue> }
  | { ok: false; code: "invalid_json" | "duplicate_key" | "too_deep"; message: string; param: string | null };

class ScanError extends Error {
  constructor(
    readonly code: "invalid_json" | "duplicate_key" | "too_deep",
    message: string,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

// Byte values of the JSON punctuation (plain numbers: Buffer elements are numbers).
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

interface Frame {
  object: boolean;
  keys: Set<string> | undefined;
  count: number;
  /** Top-level member this frame belongs to (for messages). */
  key: string | undefined;
}

export function scanJson(buf: Buffer, maxDepth: number): ScanResult {
  try {
    if (!isUtf8(buf)) throw new ScanError("invalid_json", "The body is not valid UTF-8");
    return new Scanner(buf, maxDepth).run();
  } catch (e) {
    if (e instanceof ScanError) return { ok: false, code: e.code, message: e.message, param: e.param };
    throw e;
  }
}

class Scanner {
  private i = 0;
  private readonly fields = new Map<string, TopValue>();
  constructor(
    private readonly b: Buffer,
    private readonly maxDepth: number,
  ) {}

  private fail(what: string): never {
    throw new ScanError("invalid_json", `The body is not valid JSON: ${what} at byte ${this.i}`);
  }

  private ws(): void {
    const b = this.b;
    let i = this.i;
    for (;;) {
      const c = b[i];
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    this.i = i;
  }

  /** Scans a string starting at the opening quote; returns its decoded value when `decode`. */
  private string(decode: boolean): string | undefined {
    const b = this.b;
    const start = this.i;
    let i = start + 1;
    let escaped = false;
    for (;;) {
      const c = b[i];
      if (c === undefined) {
        this.i = i;
        this.fail("unterminated string");
      }
      if (c === QUOTE) break;
      if (c < 0x20) {
        this.i = i;
        this.fail("control character in string");
      }
      if (c === BACKSLASH) {
        escaped = true;
        const e = b[i + 1];
        if (e === 0x75) {
          if (!(isHex(b[i + 2]!) && isHex(b[i + 3]!) && isHex(b[i + 4]!) && isHex(b[i + 5]!))) {
            this.i = i;
            this.fail("bad \\u escape");
          }
          i += 6;
          continue;
        }
        if (
          e !== QUOTE &&
          e !== BACKSLASH &&
          e !== 0x2f &&
          e !== 0x62 &&
          e !== 0x66 &&
          e !== 0x6e &&
          e !== 0x72 &&
          e !== 0x74
        ) {
          this.i = i;
          this.fail("bad escape");
        }
        i += 2;
        continue;
      }
      i++;
    }
    this.i = i + 1;
    if (!decode) return undefined;
    // The grammar is checked above, so JSON.parse of the slice cannot fail; it does the unescaping.
    return escaped
      ? (JSON.parse(b.toString("utf8", start, i + 1)) as string)
      : b.toString("utf8", start + 1, i);
  }

  private number(): number {
    const b = this.b;
    const start = this.i;
    let i = start;
    if (b[i] === MINUS) i++;
    if (b[i] === ZERO) i++;
    else if (b[i]! >= 0x31 && b[i]! <= NINE) while (b[i]! >= ZERO && b[i]! <= NINE) i++;
    else {
      this.i = i;
      this.fail("bad number");
    }
    if (b[i] === DOT) {
      i++;
      if (!(b[i]! >= ZERO && b[i]! <= NINE)) {
        this.i = i;
        this.fail("bad number");
      }
      while (b[i]! >= ZERO && b[i]! <= NINE) i++;
    }
    if (b[i] === 0x65 || b[i] === 0x45) {
      i++;
      if (b[i] === PLUS || b[i] === MINUS) i++;
      if (!(b[i]! >= ZERO && b[i]! <= NINE)) {
        this.i = i;
        this.fail("bad number");
      }
      while (b[i]! >= ZERO && b[i]! <= NINE) i++;
    }
    this.i = i;
    return Number(b.toString("latin1", start, i));
  }

  private literal(word: string): void {
    for (let k = 0; k < word.length; k++) {
      if (this.b[this.i + k] !== word.charCodeAt(k)) this.fail("unexpected token");
    }
    this.i += word.length;
  }

  run(): ScanResult {
    const b = this.b;
    const stack: Frame[] = [];
    let root: TopValue["type"] | undefined;

    this.ws();
    for (;;) {
      // --- a value is expected at this.i
      const c = b[this.i];
      const depth = stack.length;
      let scalar: TopValue | undefined;
      if (c === LBRACE || c === LBRACKET) {
        if (depth + 1 > this.maxDepth) {
          throw new ScanError(
            "too_deep",
            `The body nests deeper than ${this.maxDepth} levels`,
            stack[1]?.key ?? this.topKey ?? null,
          );
        }
        const object = c === LBRACE;
        if (depth === 0) root = object ? "object" : "array";
        else if (depth === 1 && this.topKey !== undefined && stack[0]!.object) {
          this.fields.set(this.topKey, object ? { type: "object" } : { type: "array", length: 0 });
        }
        stack.push({
          object,
          keys: undefined,
          count: 0,
          key: depth === 1 ? this.topKey : stack[depth - 1]?.key,
        });
        this.i++;
        this.ws();
        const close = object ? RBRACE : RBRACKET;
        if (b[this.i] === close) {
          this.i++;
          stack.pop();
          if (!this.afterValue(stack)) break;
          continue;
        }
        if (object) this.key(stack);
        continue;
      }
      if (c === QUOTE) {
        const s = this.string(depth <= 1);
        scalar = { type: "string", value: s ?? "" };
      } else if (c === MINUS || (c !== undefined && c >= ZERO && c <= NINE)) {
        scalar = { type: "number", value: this.number() };
      } else if (c === 0x74) {
        this.literal("true");
        scalar = { type: "boolean", value: true };
      } else if (c === 0x66) {
        this.literal("false");
        scalar = { type: "boolean", value: false };
      } else if (c === 0x6e) {
        this.literal("null");
        scalar = { type: "null" };
      } else {
        this.fail(c === undefined ? "unexpected end" : "unexpected token");
      }
      if (depth === 0) root = scalar.type;
      else if (depth === 1 && stack[0]!.object && this.topKey !== undefined) {
        this.fields.set(this.topKey, scalar);
      }
      if (!this.afterValue(stack)) break;
    }
    this.ws();
    if (this.i !== b.length) this.fail("unexpected data after the value");
    return { ok: true, root: root!, fields: this.fields };
  }

  /** The root object's member whose value is being scanned. */
  private topKey: string | undefined;

  /** Reads `"key" :` inside the object on top of the stack; rejects a repeated key. */
  private key(stack: Frame[]): void {
    if (this.b[this.i] !== QUOTE) this.fail("expected a string key");
    const k = this.string(true)!;
    const f = stack[stack.length - 1]!;
    f.keys ??= new Set();
    if (f.keys.has(k)) {
      throw new ScanError(
        "duplicate_key",
        `The body has the key "${k.length > 64 ? `${k.slice(0, 64)}...` : k}" twice in one object`,
        stack.length === 1 ? k : (stack[1]?.key ?? null),
      );
    }
    f.keys.add(k);
    if (stack.length === 1) this.topKey = k;
    this.ws();
    if (this.b[this.i] !== COLON) this.fail("expected ':'");
    this.i++;
    this.ws();
  }

  /**
   * After a value: consumes `,` (and the next key) or closing brackets. Returns false once the root
   * value is complete.
   */
  private afterValue(stack: Frame[]): boolean {
    for (;;) {
      if (stack.length === 0) return false;
      const f = stack[stack.length - 1]!;
      f.count++;
      this.ws();
      const c = this.b[this.i];
      if (c === COMMA) {
        this.i++;
        this.ws();
        if (f.object) this.key(stack);
        return true;
      }
      if (c === (f.object ? RBRACE : RBRACKET)) {
        this.i++;
        stack.pop();
        if (stack.length === 1 && !f.object && f.key !== undefined && stack[0]!.object) {
          this.fields.set(f.key, { type: "array", length: f.count });
        }
        continue;
      }
      this.fail(f.object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
  }
}
