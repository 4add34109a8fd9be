import {
  type Context,
  type Span,
  type SpanOptions,
  type TextMapGetter,
  type TextMapSetter,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  trace,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  type SpanExporter,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import type { IncomingHttpHeaders } from "node:http";
import { ConfigError } from "./config";

export { SpanKind, SpanStatusCode, type Span };

/** Reads W3C headers from Node's lower-cased header object (repeated headers: the first). */
const httpGetter: TextMapGetter<IncomingHttpHeaders> = {
  keys: (h) => Object.keys(h),
  get: (h, k) => h[k],
};

/** Collects injected headers as a flat name/value list (what undici's dispatch takes). */
const flatSetter: TextMapSetter<string[]> = {
  set: (out, k, v) => {
    out.push(k, v);
  },
};

/** Carrier over NATS message headers (nats.js `MsgHdrs`, or anything with get/set). */
export interface HeaderCarrier {
  get(k: string): string;
  set(k: string, v: string): void;
}
const natsGetter: TextMapGetter<HeaderCarrier | undefined> = {
  keys: () => ["traceparent", "tracestate"],
  // nats.js answers "" for an absent header.
  get: (h, k) => h?.get(k) || undefined,
};
const natsSetter: TextMapSetter<HeaderCarrier> = { set: (h, k, v) => h.set(k, v) };

/**
 * The gateway's tracing, present only when an OTLP endpoint is configured. Everything that traces
 * takes it as `Tracing | undefined` and does nothing (allocates nothing) when it is undefined, so the
 * relay's hot path pays one branch with tracing off.
 */
export class Tracing {
  readonly propagator = new W3CTraceContextPropagator();

  constructor(
    private readonly provider: TracerProvider,
    private readonly tracer = provider.getTracer("gateway"),
  ) {}

  /** The context an incoming request continues: its `traceparent`/`tracestate`, else a new trace. */
  extractHttp(headers: IncomingHttpHeaders): Context {
    return this.propagator.extract(ROOT_CONTEXT, headers, httpGetter);
  }

  extractNats(headers: HeaderCarrier | undefined): Context {
    return this.propagator.extract(ROOT_CONTEXT, headers, natsGetter);
  }

  /** `traceparent` (and `tracestate`) naming `span` as the parent, as a flat header list. */
  headersFor(span: Span): string[] {
    const out: string[] = [];
    this.propagator.inject(trace.setSpan(ROOT_CONTEXT, span), out, flatSetter);
    return out;
  }

  injectNats(span: Span, headers: HeaderCarrier): void {
    this.propagator.inject(trace.setSpan(ROOT_CONTEXT, span), headers, natsSetter);
  }

  /** A span, child of `parent` (default: the active context's span). */
  start(name: string, options: SpanOptions, parent: Context = context.active()): Span {
    return this.tracer.startSpan(name, options, parent);
  }

  /**
   * The client span of one POST to a model backend, child of `parent`: what the relay and the
   * worker both record for the call (the backend continues the trace under it).
   */
  backendCall(
    backend: { readonly hostname: string; readonly port: number },
    path: string,
    parent: Span,
    model?: string,
  ): Span {
    return this.start(
      "POST",
      {
        kind: SpanKind.CLIENT,
        attributes: {
          "http.request.method": "POST",
          "server.address": backend.hostname,
          "server.port": backend.port,
          "url.path": path,
          ...(model === undefined ? {} : { "gen_ai.request.model": model }),
        },
      },
      this.contextOf(parent),
    );
  }

  /** A context with `span` as the parent of what starts in it. */
  contextOf(span: Span): Context {
    return trace.setSpan(ROOT_CONTEXT, span);
  }

  /** Runs `fn` with `span` active: log lines written meanwhile carry its ids (see {@link logFields}). */
  with<T>(span: Span, fn: () => T, parent: Context = context.active()): T {
    return context.with(trace.setSpan(parent, span), fn);
  }

  activeSpan(): Span | undefined {
    return trace.getActiveSpan();
  }

  /** pino mixin: the active span's ids, for every log line written inside a request or job. */
  readonly logFields = (): Record<string, string> => {
    const sc = trace.getActiveSpan()?.spanContext();
    return sc ? { trace_id: sc.traceId, span_id: sc.spanId } : {};
  };

  /** Flushes what is buffered and stops exporting. */
  async shutdown(): Promise<void> {
    await this.provider.shutdown();
  }
}

/** Ends a span with an HTTP status: error status for 5xx (for a server span) or any >= 400 (client). */
export function endWithStatus(span: Span, status: number, client: boolean): void {
  span.setAttribute("http.response.status_code", status);
  if (status >= 500 || (client && status >= 400)) span.setStatus({ code: SpanStatusCode.ERROR });
  span.end();
}

/** OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG, as the spec names them (default parentbased_always_on). */
export function samplerFromEnv(env: NodeJS.ProcessEnv): Sampler {
  const name = (env.OTEL_TRACES_SAMPLER ?? "").trim().toLowerCase() || "parentbased_always_on";
  const argRaw = Number(env.OTEL_TRACES_SAMPLER_ARG);
  const ratio = Number.isFinite(argRaw) && argRaw >= 0 && argRaw <= 1 ? argRaw : 1;
  switch (name) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return new TraceIdRatioBasedSampler(ratio);
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
    case "parentbased_always_on":
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    default: {
      const message = `unknown sampler "${name}" (expected always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio)`;
      throw new ConfigError(`Invalid gateway configuration:\n  - OTEL_TRACES_SAMPLER: ${message}`, [
        { variable: "OTEL_TRACES_SAMPLER", message },
      ]);
    }
  }
}

/** The OTLP/HTTP traces URL: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, else OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces. */
export function tracesUrl(env: NodeJS.ProcessEnv): string | undefined {
  const signal = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  if (signal) return signal;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  return base ? `${base.replace(/\/+$/, "")}/v1/traces` : undefined;
}

let contextManagerSet = false;

/**
 * Tracing from the standard OTEL_* variables; undefined (tracing off) when no endpoint is set or
 * OTEL_SDK_DISABLED=true. `exporter` replaces the OTLP exporter (tests).
 */
export function tracingFromEnv(
  env: NodeJS.ProcessEnv,
  role: string,
  opts: { exporter?: SpanExporter; scheduledDelayMillis?: number } = {},
): Tracing | undefined {
  const url = tracesUrl(env);
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true" || (!url && !opts.exporter)) return undefined;
  // The request's context follows its async continuations (hooks, handler, NATS calls), so spans
  // started and log lines written there find their parent without it being passed around. Once per
  // process (tests run both roles in one).
  if (!contextManagerSet) {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    contextManagerSet = true;
  }
  const delay = Number(env.OTEL_BSP_SCHEDULE_DELAY);
  const provider = new TracerProvider({
    sampler: samplerFromEnv(env),
    resource: resourceFromAttributes({
      "service.name": env.OTEL_SERVICE_NAME?.trim() || `gateway-${role}`,
      "gateway.role": role,
    }),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter: opts.exporter ?? new OTLPTraceExporter({ url }),
        scheduledDelayMillis: opts.scheduledDelayMillis ?? (delay > 0 ? delay : 5000),
      }),
    ],
  });
  return new Tracing(provider);
}
