export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
const ORDER: Record<LogLevel, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: 100,
};

export interface Logger {
  error(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * JSON lines on stdout (same shape as Fastify's pino logs: level, time, msg). `mixin` adds fields to
 * every line, as pino's option does (tracing on: the active span's trace_id and span_id).
 */
export function createLogger(
  level: LogLevel,
  base: Record<string, unknown> = {},
  mixin?: () => Record<string, unknown>,
  out: (line: string) => void = (line) => process.stdout.write(line),
): Logger {
  const min = ORDER[level];
  const write = (lvl: Exclude<LogLevel, "silent">, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    out(
      `${JSON.stringify({ level: ORDER[lvl], time: Date.now(), ...base, ...mixin?.(), msg, ...fields })}\n`,
    );
  };
  return {
    error: (m, f) => write("error", m, f),
    warn: (m, f) => write("warn", m, f),
    info: (m, f) => write("info", m, f),
    debug: (m, f) => write("debug", m, f),
  };
}

/** What Fastify's request logger must offer (its `FastifyBaseLogger`, pino's shape). */
export interface RequestLogger {
  level: string;
  fatal(...args: unknown[]): void;
  error(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  info(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  trace(...args: unknown[]): void;
  silent(...args: unknown[]): void;
  child(bindings: Record<string, unknown>, options?: object): RequestLogger;
}

/**
 * Fastify's per-request logger (it binds the request id), made only when the request logs
 * something: most requests never do, and a pino child per request is measurable on the relay's
 * hot path.
 */
export class LazyChildLogger implements RequestLogger {
  private made: RequestLogger | undefined;

  constructor(
    private readonly parent: RequestLogger,
    private readonly bindings: Record<string, unknown>,
    private readonly options: object,
  ) {}

  private get real(): RequestLogger {
    return (this.made ??= this.parent.child(this.bindings, this.options));
  }

  get level(): string {
    return this.made?.level ?? this.parent.level;
  }
  set level(l: string) {
    this.real.level = l;
  }
  fatal(...args: unknown[]): void {
    this.real.fatal(...args);
  }
  error(...args: unknown[]): void {
    this.real.error(...args);
  }
  warn(...args: unknown[]): void {
    this.real.warn(...args);
  }
  info(...args: unknown[]): void {
    this.real.info(...args);
  }
  debug(...args: unknown[]): void {
    this.real.debug(...args);
  }
  trace(...args: unknown[]): void {
    this.real.trace(...args);
  }
  silent(...args: unknown[]): void {
    this.real.silent(...args);
  }
  child(bindings: Record<string, unknown>, options?: object): RequestLogger {
    return this.real.child(bindings, options);
  }
}
