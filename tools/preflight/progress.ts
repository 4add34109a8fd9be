/**
 * Per-stack progress on stderr while the stacks run: one status line (`preflight: dev (2 of 4) …
 * 1.2 s`), rewritten in place and cleared before any other output. Only on a terminal: piped or
 * redirected, stderr gets nothing from it (each stack's summary line carries its time already).
 */

export interface ProgressStream {
  readonly isTTY?: boolean;
  write(text: string): boolean;
}

/** The status line for one stack under way. */
export function progressLine(what: string, index: number, total: number, ms: number): string {
  const of = total > 1 ? ` (${index + 1} of ${total})` : "";
  return `preflight: ${what}${of} … ${(ms / 1000).toFixed(1)} s`;
}

const CLEAR = "\r\x1b[K";

export class Progress {
  private shown = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  readonly enabled: boolean;

  constructor(
    private readonly stream: ProgressStream,
    private readonly now: () => number = () => performance.now(),
    private readonly intervalMs = 200,
  ) {
    this.enabled = stream.isTTY === true;
  }

  /** Shows `what` as under way, its elapsed time ticking until the next start or clear. */
  start(what: string, index = 0, total = 1): void {
    if (!this.enabled) return;
    this.stop();
    const started = this.now();
    const draw = () => {
      this.stream.write(CLEAR + progressLine(what, index, total, this.now() - started));
      this.shown = true;
    };
    draw();
    this.timer = setInterval(draw, this.intervalMs);
    // Never what keeps the process alive.
    this.timer.unref();
  }

  /** Removes the status line (before anything else is printed) and stops its clock. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.shown) this.stream.write(CLEAR);
    this.shown = false;
  }
}
