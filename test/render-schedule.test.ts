// The render scheduler: a chart starts once every chart it depends on has settled, never waiting
// for unrelated ones, with a bounded number of helm processes at once.
import { describe, expect, it } from "vitest";
import { runDag } from "../tools/preflight/render";

/** Runs `runDag` with work that finishes only when the test says so, logging every start and end. */
function controlled(items: string[], deps: Record<string, string[]>, concurrency: number) {
  const log: string[] = [];
  const finish = new Map<string, () => void>();
  let running = 0;
  let peak = 0;
  const done = runDag(
    items,
    (i) => deps[i] ?? [],
    concurrency,
    (i) => {
      log.push(`start ${i}`);
      peak = Math.max(peak, ++running);
      return new Promise<void>((resolve) =>
        finish.set(i, () => {
          running--;
          log.push(`end ${i}`);
          resolve();
        }),
      );
    },
  );
  // Lets every promise callback scheduled so far run.
  const settle = () => new Promise<void>((r) => setImmediate(r));
  const end = async (i: string) => {
    const f = finish.get(i);
    if (!f) throw new Error(`${i} is not running`);
    finish.delete(i);
    f();
    await settle();
  };
  return { log, done, end, settle, running: () => [...finish.keys()].sort(), peak: () => peak };
}

describe("runDag", () => {
  it("starts a chart as soon as its own dependencies are done, not after a whole wave", async () => {
    // base gates cni gates istiod; slow has no dependents and stays running throughout.
    const s = controlled(["slow", "base", "cni", "istiod"], { cni: ["base"], istiod: ["base", "cni"] }, 2);
    await s.settle();
    expect(s.running()).toEqual(["base", "slow"]);
    await s.end("base");
    expect(s.running()).toEqual(["cni", "slow"]);
    await s.end("cni");
    expect(s.running()).toEqual(["istiod", "slow"]);
    await s.end("istiod");
    await s.end("slow");
    await s.done;
    expect(s.log.indexOf("start istiod")).toBeLessThan(s.log.indexOf("end slow"));
  });

  it("never starts an item before every item it depends on has ended, nor runs more than the pool", async () => {
    const items = ["a", "b", "c", "d", "e", "f", "g", "h"];
    const deps: Record<string, string[]> = {
      c: ["a"],
      d: ["a", "b"],
      e: ["c"],
      f: ["d", "e"],
      h: ["g", "a"],
    };
    for (const concurrency of [1, 2, 3]) {
      const s = controlled(items, deps, concurrency);
      await s.settle();
      // End whatever runs, alphabetically last first, until everything is done.
      while (s.running().length) await s.end(s.running().at(-1)!);
      await s.done;
      expect(s.peak()).toBeLessThanOrEqual(concurrency);
      for (const i of items) {
        expect(s.log.filter((l) => l === `start ${i}`)).toHaveLength(1);
        for (const d of deps[i] ?? [])
          expect(s.log.indexOf(`end ${d}`)).toBeLessThan(s.log.indexOf(`start ${i}`));
      }
    }
  });

  it("starts the head of the longest chain first when the pool is full", async () => {
    const s = controlled(["leaf", "other", "root", "mid", "tip"], { mid: ["root"], tip: ["mid"] }, 1);
    await s.settle();
    expect(s.running()).toEqual(["root"]);
    await s.end("root");
    expect(s.running()).toEqual(["mid"]);
  });

  it("ignores dependencies outside the items and self-dependencies", async () => {
    const s = controlled(["a", "b"], { a: ["elsewhere", "a"], b: ["a"] }, 2);
    await s.settle();
    expect(s.running()).toEqual(["a"]);
    await s.end("a");
    await s.end("b");
    await s.done;
  });

  it("releases a dependency cycle instead of hanging", async () => {
    const s = controlled(["a", "b", "c"], { a: ["b"], b: ["a"], c: ["a"] }, 2);
    await s.settle();
    expect(s.running()).toEqual(["a", "b"]);
    await s.end("a");
    await s.end("b");
    await s.end("c");
    await s.done;
    expect(s.log.filter((l) => l.startsWith("start")).sort()).toEqual(["start a", "start b", "start c"]);
  });

  it("resolves on no items and rejects with the work's error", async () => {
    await runDag(
      [],
      () => [],
      2,
      () => Promise.resolve(),
    );
    await expect(
      runDag(
        ["a"],
        () => [],
        2,
        () => Promise.reject(new Error("helm exploded")),
      ),
    ).rejects.toThrow("helm exploded");
  });
});
