import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { z } from "zod";

/**
 * API keys file (mounted from a Kubernetes Secret), JSON:
 *
 *   { "keys": [ { "name": "team-a", "sha256": "<64 hex chars: sha256 of the raw key>",
 *                 "scopes": ["jobs", "chat"], "models": ["llama-3.1-8b"],
 *                 "rate_limit": { "rps": 5, "burst": 10 }, "disabled": false,
 *                 "expires_at": "2026-12-31T00:00:00Z", "max_concurrent_streams": 8,
 *                 "max_tokens": 4096, "max_n": 1, "max_queued_bytes": 10485760 } ] }
 *
 * Only `name` and `sha256` are required. `scopes` defaults to both scopes, `models` to "any model",
 * `rate_limit` to RATE_LIMIT_RPS / RATE_LIMIT_BURST, the other limits to their environment defaults
 * (KEY_MAX_CONCURRENT_STREAMS, MAX_TOKENS, MAX_N, TENANT_MAX_QUEUED_BYTES); no `expires_at` = no expiry.
 * The raw keys never appear in the file.
 * Hash a key with: printf %s "$KEY" | sha256sum
 */
export const SCOPES = ["jobs", "chat"] as const;
export type Scope = (typeof SCOPES)[number];

const keyEntrySchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "must be 1-64 characters of A-Z a-z 0-9 . _ -"),
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, "must be the 64-character hex sha256 of the key")
    .transform((s) => s.toLowerCase()),
  scopes: z.array(z.enum(SCOPES)).min(1).optional(),
  models: z.array(z.string().min(1)).min(1).optional(),
  rate_limit: z.strictObject({ rps: z.number().positive(), burst: z.number().int().positive() }).optional(),
  disabled: z.boolean().optional(),
  // An offset is required: a local time would expire at a different instant on each replica's zone.
  expires_at: z.iso.datetime({ offset: true }).optional(),
  max_concurrent_streams: z.number().int().positive().optional(),
  max_tokens: z.number().int().positive().optional(),
  max_n: z.number().int().min(1).max(128).optional(),
  max_queued_bytes: z.number().int().positive().optional(),
});
const keysFileSchema = z.union([z.strictObject({ keys: z.array(keyEntrySchema) }), z.array(keyEntrySchema)]);

/** Per-key limits from the keys file; undefined = the environment default. */
export interface KeyLimits {
  maxConcurrentStreams?: number;
  maxTokens?: number;
  maxN?: number;
  maxQueuedBytes?: number;
}

export interface ApiKey {
  name: string;
  /** Identity of the entry: a rotated key under the same name is another key. */
  sha256?: string;
  scopes: ReadonlySet<Scope>;
  /** undefined = every model */
  models?: ReadonlySet<string>;
  rateLimit?: { rps: number; burst: number };
  disabled: boolean;
  /** Epoch ms; undefined = never. */
  expiresAt?: number;
  limits?: KeyLimits;
}

/** Why a key may not be used now, or null. */
export function keyUnusable(key: ApiKey, now: number): "disabled" | "expired" | null {
  if (key.disabled) return "disabled";
  if (key.expiresAt !== undefined && now >= key.expiresAt) return "expired";
  return null;
}

export interface ApiKeyInput {
  name: string;
  sha256: string;
  scopes?: Scope[];
  models?: string[];
  rate_limit?: { rps: number; burst: number };
  disabled?: boolean;
  expires_at?: string;
  max_concurrent_streams?: number;
  max_tokens?: number;
  max_n?: number;
  max_queued_bytes?: number;
}

export function hashKey(raw: string): string {
  return createHash("sha256").update(raw).digest("hex");
}

/** Upper bound on remembered raw keys, so the cache cannot grow without limit. */
const LOOKUP_CACHE_MAX = 1024;

export class KeyStore {
  private byHash = new Map<string, ApiKey>();
  /**
   * Raw key -> entry, for keys that matched: saves a sha256 per request on the hot path. Only hits
   * are cached (random invalid keys cannot fill it), and it is dropped whenever the key set changes.
   */
  private byRaw = new Map<string, ApiKey>();
  private timer: NodeJS.Timeout | undefined;
  private mtimeMs = -1;

  constructor(entries: ApiKeyInput[] = []) {
    this.replace(entries);
  }

  /** Parses a keys file; throws an Error naming the file and the offending entry. */
  static parseFile(path: string): ApiKeyInput[] {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, "utf8"));
    } catch (err) {
      throw new Error(`API keys file ${path}: cannot read JSON: ${(err as Error).message}`);
    }
    const parsed = keysFileSchema.safeParse(raw);
    if (!parsed.success) {
      const detail = parsed.error.issues
        .map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`)
        .join("; ");
      throw new Error(`API keys file ${path} is invalid: ${detail}`);
    }
    return Array.isArray(parsed.data) ? parsed.data : parsed.data.keys;
  }

  static fromFile(path: string): KeyStore {
    const store = new KeyStore(KeyStore.parseFile(path));
    store.mtimeMs = statSync(path).mtimeMs;
    return store;
  }

  get size(): number {
    return this.byHash.size;
  }

  replace(entries: ApiKeyInput[]): void {
    const next = new Map<string, ApiKey>();
    const names = new Set<string>();
    for (const e of entries) {
      const h = e.sha256.toLowerCase();
      if (names.has(e.name)) throw new Error(`API keys: duplicate key name "${e.name}"`);
      if (next.has(h)) throw new Error(`API keys: key "${e.name}" has the same hash as another key`);
      names.add(e.name);
      const expiresAt = e.expires_at === undefined ? undefined : Date.parse(e.expires_at);
      if (expiresAt !== undefined && Number.isNaN(expiresAt)) {
        throw new Error(`API keys: key "${e.name}" has an invalid expires_at`);
      }
      next.set(h, {
        name: e.name,
        sha256: h,
        scopes: new Set(e.scopes ?? SCOPES),
        models: e.models ? new Set(e.models) : undefined,
        rateLimit: e.rate_limit,
        disabled: e.disabled ?? false,
        expiresAt,
        limits: {
          maxConcurrentStreams: e.max_concurrent_streams,
          maxTokens: e.max_tokens,
          maxN: e.max_n,
          maxQueuedBytes: e.max_queued_bytes,
        },
      });
    }
    this.byHash = next;
    this.byRaw = new Map();
    for (const l of this.listeners) l();
  }

  private readonly listeners = new Set<() => void>();

  /** Called after every change of the key set (reloads included). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Whether `key` (an entry handed out earlier) may still be used: still in the current set, with
   * the same scope, neither disabled nor expired. Open streams are checked against this.
   */
  stillValid(key: ApiKey, scope: Scope, now = Date.now()): boolean {
    const current = key.sha256 === undefined ? undefined : this.byHash.get(key.sha256);
    return current !== undefined && current.scopes.has(scope) && keyUnusable(current, now) === null;
  }

  /** Looks a raw key up by its sha256. */
  lookup(raw: string): ApiKey | undefined {
    const cached = this.byRaw.get(raw);
    if (cached) return cached;
    const key = this.byHash.get(hashKey(raw));
    if (key) {
      if (this.byRaw.size >= LOOKUP_CACHE_MAX) this.byRaw.clear();
      this.byRaw.set(raw, key);
    }
    return key;
  }

  /**
   * Re-reads the file every `intervalMs` when its mtime changed (Secret volumes are updated in place).
   * A broken file keeps the last good set and reports through `onError`.
   */
  watch(path: string, intervalMs: number, onError: (err: Error) => void, onReload?: () => void): void {
    if (intervalMs <= 0) return;
    this.timer = setInterval(() => {
      try {
        const m = statSync(path).mtimeMs;
        if (m === this.mtimeMs) return;
        this.replace(KeyStore.parseFile(path));
        this.mtimeMs = m;
        onReload?.();
      } catch (err) {
        onError(err as Error);
      }
    }, intervalMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/** Extracts the raw key from `Authorization: Bearer <key>` or `x-api-key: <key>`. */
export function presentedKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === "string" && auth.length > 7 && auth.slice(0, 7).toLowerCase() === "bearer ") {
    const k = auth.slice(7).trim();
    return k.length > 0 ? k : undefined;
  }
  const x = headers["x-api-key"];
  return typeof x === "string" && x.length > 0 ? x : undefined;
}

/** In-memory token buckets, one per key name. Per replica: N replicas allow N times the rate. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; last: number }>();
  constructor(private readonly defaults: { rps: number; burst: number }) {}

  /** Returns 0 when allowed, otherwise the number of seconds to wait (Retry-After). */
  take(key: ApiKey, now = Date.now()): number {
    const { rps, burst } = key.rateLimit ?? this.defaults;
    let b = this.buckets.get(key.name);
    if (!b) {
      b = { tokens: burst, last: now };
      this.buckets.set(key.name, b);
    } else {
      b.tokens = Math.min(burst, b.tokens + ((now - b.last) / 1000) * rps);
      b.last = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / rps));
  }
}
