import type { ApiKey, KeyLimits } from "./auth";
import type { HttpLimits, KeyLimitDefaults } from "./config";
import { type ApiErrorBody, apiError } from "./errors";

/**
 * Node's HTTP server options for the configured limits. Node checks the request and headers
 * deadlines on a timer (every `connectionsCheckingInterval`, 30 s by default), so a socket could
 * outlive its deadline by up to one interval: the interval is made small and subtracted from the
 * timeouts, so REQUEST_TIMEOUT_MS / HEADERS_TIMEOUT_MS are the latest a slow socket is closed.
 */
export function serverTimeouts(l: HttpLimits): {
  requestTimeout: number;
  headersTimeout: number;
  connectionsCheckingInterval: number;
  keepAliveTimeout: number;
  connectionTimeout: number;
  maxRequestsPerSocket: number;
  maxHeaderSize: number;
} {
  const interval = Math.max(25, Math.min(1000, Math.floor(l.headersTimeoutMs / 10)));
  return {
    requestTimeout: Math.max(1, l.requestTimeoutMs - interval),
    headersTimeout: Math.max(1, l.headersTimeoutMs - interval),
    connectionsCheckingInterval: interval,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    connectionTimeout: l.idleTimeoutMs,
    maxRequestsPerSocket: l.maxRequestsPerSocket,
    maxHeaderSize: l.maxHeaderBytes,
  };
}

/** A key's effective limits: its own from the keys file, else the environment defaults. */
export function effectiveLimits(key: Pick<ApiKey, "limits">, d: KeyLimitDefaults): Required<KeyLimits> {
  return {
    maxConcurrentStreams: key.limits?.maxConcurrentStreams ?? d.maxConcurrentStreams,
    maxTokens: key.limits?.maxTokens ?? d.maxTokens,
    maxN: key.limits?.maxN ?? d.maxN,
    maxQueuedBytes: key.limits?.maxQueuedBytes ?? d.maxQueuedBytes,
  };
}

export interface Refusal {
  status: number;
  body: ApiErrorBody;
  retryAfter?: number;
}

/**
 * Admission of one more relayed request: the key's own cap first (429, the client can slow down),
 * then the replica's (503, another replica may have room).
 */
export function streamRefusal(
  active: { key: number; total: number },
  limits: { key: number; total: number },
  keyName: string,
): Refusal | null {
  if (active.key >= limits.key) {
    return {
      status: 429,
      retryAfter: 1,
      body: apiError(
        "rate_limit_error",
        "too_many_concurrent_requests",
        `API key '${keyName}' already has ${active.key} requests in flight, its limit; wait for one to finish`,
      ),
    };
  }
  if (active.total >= limits.total) {
    return {
      status: 503,
      retryAfter: 1,
      body: apiError(
        "service_unavailable",
        "server_busy",
        `This gateway replica is relaying ${active.total} requests, its limit; retry shortly`,
      ),
    };
  }
  return null;
}

/** Answer to a request that arrived on a connection beyond MAX_CONNECTIONS. */
export function connectionRefusal(max: number): Refusal {
  return {
    status: 503,
    retryAfter: 1,
    body: apiError(
      "service_unavailable",
      "too_many_connections",
      `This gateway replica has ${max} open connections, its limit; retry shortly`,
    ),
  };
}

export interface ActiveStream {
  key: ApiKey;
  terminate(status: number, body: ApiErrorBody): void;
}

/** Relayed requests in flight, per key name, so caps can be enforced and revoked keys cut off. */
export class StreamRegistry {
  private readonly byKey = new Map<string, Set<ActiveStream>>();
  private count = 0;

  get total(): number {
    return this.count;
  }

  activeFor(keyName: string): number {
    return this.byKey.get(keyName)?.size ?? 0;
  }

  add(s: ActiveStream): () => void {
    let set = this.byKey.get(s.key.name);
    if (!set) {
      set = new Set();
      this.byKey.set(s.key.name, set);
    }
    set.add(s);
    this.count++;
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      set.delete(s);
      this.count--;
      if (set.size === 0 && this.byKey.get(s.key.name) === set) this.byKey.delete(s.key.name);
    };
  }

  /** Terminates every stream whose key `valid` rejects; returns how many. */
  sweep(valid: (key: ApiKey) => boolean, body: (key: ApiKey) => ApiErrorBody): number {
    let n = 0;
    for (const set of this.byKey.values()) {
      for (const s of [...set]) {
        if (!valid(s.key)) {
          s.terminate(401, body(s.key));
          n++;
        }
      }
    }
    return n;
  }
}
