import { type Socket, connect } from "node:net";

/** A raw TCP client on 127.0.0.1: what an abusive (or just slow) client does, byte by byte. */
export interface RawClient {
  socket: Socket;
  /** Everything received so far. */
  received(): string;
  /** Resolves with the time (ms since connect) the server closed the socket, or null after `withinMs`. */
  closedWithin(withinMs: number): Promise<number | null>;
  /** Waits until `pattern` appears in what was received (bounded). */
  waitFor(pattern: RegExp, withinMs: number): Promise<boolean>;
  close(): void;
}

export async function rawConnect(port: number): Promise<RawClient> {
  const socket = connect({ host: "127.0.0.1", port });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const started = Date.now();
  let data = "";
  let closedAt: number | null = null;
  const closeWaiters: (() => void)[] = [];
  socket.on("data", (d: Buffer) => (data += d.toString("latin1")));
  socket.on("error", () => undefined);
  socket.on("close", () => {
    closedAt = Date.now() - started;
    for (const w of closeWaiters) w();
  });
  return {
    socket,
    received: () => data,
    closedWithin(withinMs) {
      if (closedAt !== null) return Promise.resolve(closedAt);
      return new Promise((resolve) => {
        const t = setTimeout(() => resolve(null), withinMs);
        closeWaiters.push(() => {
          clearTimeout(t);
          resolve(closedAt);
        });
      });
    },
    async waitFor(pattern, withinMs) {
      const deadline = Date.now() + withinMs;
      while (!pattern.test(data) && Date.now() < deadline && closedAt === null) {
        await new Promise((r) => setTimeout(r, 10));
      }
      return pattern.test(data);
    },
    close: () => socket.destroy(),
  };
}

/** The JSON body of the (last) HTTP response in `raw`. */
export function responseJson(raw: string): unknown {
  const i = raw.lastIndexOf("\r\n\r\n");
  return JSON.parse(raw.slice(i + 4));
}
