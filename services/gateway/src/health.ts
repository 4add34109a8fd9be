import { Events, type NatsConnection } from "nats";
import type { JobStore } from "./jobs";

/**
 * Readiness = JetStream reachable (a round trip to the JetStream API succeeded within 1 s, cached
 * for 1 s) and the process is not shutting down. Liveness (/healthz) only says the event loop runs.
 */
export class Readiness {
  draining = false;
  private connected = true;
  private store: JobStore | undefined;
  private lastOk = 0;
  private pending: Promise<string | null> | undefined;

  constructor(
    private readonly opts: { needsJetStream: boolean; timeoutMs?: number } = { needsJetStream: true },
  ) {}

  /** Attach the store once the JetStream resources exist; follows the connection's status events. */
  attach(nc: NatsConnection, store: JobStore): void {
    this.store = store;
    this.connected = !nc.isClosed();
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === Events.Disconnect) this.connected = false;
        else if (s.type === Events.Reconnect) this.connected = true;
      }
      this.connected = false;
    })();
  }

  /** null when ready, otherwise the reason. */
  async check(): Promise<string | null> {
    if (this.draining) return "shutting down";
    if (!this.opts.needsJetStream) return null;
    if (!this.store) return "starting: JetStream resources are not set up yet";
    if (!this.connected) return "NATS connection lost, reconnecting";
    if (Date.now() - this.lastOk < 1000) return null;
    this.pending ??= this.ping(this.store).finally(() => (this.pending = undefined));
    return this.pending;
  }

  private async ping(store: JobStore): Promise<string | null> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        store.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error("timeout")), this.opts.timeoutMs ?? 1000);
        }),
      ]);
      this.lastOk = Date.now();
      return null;
    } catch (err) {
      return `JetStream unreachable: ${(err as Error).message}`;
    } finally {
      clearTimeout(timer);
    }
  }
}
