/**
 * OpenTelemetry traces, optional: only when an OTLP endpoint is configured (the OpenTelemetry
 * environment variables, "OpenTelemetry Environment Variable Specification": OTEL_EXPORTER_OTLP_ENDPOINT
 * or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; OTEL_SDK_DISABLED=true and OTEL_TRACES_EXPORTER=none turn it
 * off). Without one, `startTracing` returns null and nothing of OpenTelemetry is ever imported: this
 * file imports its packages only with `await import()` after that check, and only types statically
 * (erased at compile time). No other file imports them (test/integration/tracing.test.ts checks both).
 *
 * What is traced, and what is not:
 * - a server span per request on both listeners, named `<METHOD> <route template>` (the template the
 *   metrics use, http-metrics.ts: never a raw path, which would carry interaction ids and tokens),
 *   with the request id (`dinhdanh.request_id`, as in the log lines) and the listener;
 * - a span per repository call of the store (store-instrumentation.ts calls `storeHook`), inside a
 *   request's trace only: the job runner's polling every second would otherwise be a trace a second;
 * - with MongoDB, the driver's own command spans (@opentelemetry/instrumentation-mongodb, values in
 *   the commands replaced by `?`), beside the repository spans;
 * - a client span per outbound call (back-channel logout, a portal's jwks_uri, the registry), its
 *   origin only. No trace context is sent with it (no `traceparent` header, W3C Trace Context §3):
 *   those calls go to portals, third parties, which have no business with our trace ids.
 *
 * An incoming `traceparent` is not honoured either: every request starts a trace of its own. The
 * public listener faces the internet, and W3C Trace Context §8 lets a receiver ignore what it cannot
 * trust. Spans never hold a person, a `sub`, an IP address, a path, a query or a token; errors are
 * recorded by type, never by message (a MongoDB duplicate-key message quotes the key's value).
 *
 * Log lines written while a sampled span is active carry its `trace_id` and `span_id` (the pino
 * `mixin` main.ts installs), so logs and traces join on either the trace id or the request id.
 */
import type Koa from 'koa';
import type { Logger } from 'pino';
import type { Attributes, Span, Tracer } from '@opentelemetry/api';
import type { StoreCallHook } from './metrics.js';
import type { OutboundCallHook } from '../outbound/index.js';
import { UNMATCHED, routeTemplate } from './http-metrics.js';

export interface Tracing {
  /** Koa middleware: the request's server span, active for the rest of the chain. Mount first on each listener. */
  middleware(listener: 'public' | 'admin'): Koa.Middleware;
  /** A span per store repository call (within a request's trace). */
  storeHook: StoreCallHook;
  /** A client span per outbound call (createGuardedFetch's `observe`). */
  outboundHook: OutboundCallHook;
  /** pino `mixin`: `{ trace_id, span_id }` while a sampled span is active, else nothing. */
  logMixin(): Record<string, string>;
  /** Where OpenTelemetry's own warnings (a collector that cannot be reached, …) are logged, each at most once a minute. */
  reportTo(logger: Logger): void;
  /** Ends what is under way and sends what is buffered, within `timeoutMs`; then unregisters everything. */
  shutdown(timeoutMs?: number): Promise<void>;
}

/** An OpenTelemetry variable that cannot be used as it is: the server does not start (exit 2). */
export class TracingConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TracingConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

export type SamplerName = 'always_on' | 'always_off' | 'traceidratio' | 'parentbased_always_on' | 'parentbased_always_off' | 'parentbased_traceidratio';
const SAMPLERS = new Set<string>(['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio']);

export interface TracingSettings {
  /** Where spans are sent (OTLP/HTTP, JSON). */
  url: string;
  sampler: { name: SamplerName; ratio: number };
  /** BatchSpanProcessor's settings (OTEL_BSP_*). */
  batch: { scheduledDelayMillis: number; exportTimeoutMillis: number; maxQueueSize: number; maxExportBatchSize: number };
  /** What was set but not taken, for the log. */
  warnings: string[];
}

const value = (env: Env, name: string): string | undefined => {
  const v = env[name]?.trim();
  return v ? v : undefined;
};

/** True when traces are asked for: an OTLP endpoint is set and OpenTelemetry is not turned off. */
export function tracingConfigured(env: Env): boolean {
  if (!value(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') && !value(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')) return false;
  if (value(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return false;
  if (value(env, 'OTEL_TRACES_EXPORTER')?.toLowerCase() === 'none') return false;
  return true;
}

function httpUrl(text: string, variable: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // Not echoed: the URL may carry credentials.
    throw new TracingConfigError(`${variable} is not a URL; expected e.g. http://otel-collector:4318`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TracingConfigError(`${variable} must be an http: or https: URL (OTLP over HTTP), not ${url.protocol}`);
  }
  return url;
}

/**
 * Reads the OpenTelemetry variables dinhdanh honours (null when traces are off). Pure: no
 * OpenTelemetry package is needed. Values OpenTelemetry's specification says to ignore with a
 * warning (an unknown sampler, a bad number) are; an endpoint that is not an http(s) URL stops the
 * start, since the operator asked for traces that would never leave.
 */
export function tracingSettings(env: Env): TracingSettings | null {
  if (!tracingConfigured(env)) return null;
  const warnings: string[] = [];
  // OTLP/HTTP endpoints (OTLP Exporter specification, "Endpoint URLs for OTLP/HTTP"): the
  // signal-specific one as it is, the general one with v1/traces appended.
  const specific = value(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  let url: string;
  if (specific) {
    url = httpUrl(specific, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT').href;
  } else {
    const base = httpUrl(value(env, 'OTEL_EXPORTER_OTLP_ENDPOINT')!, 'OTEL_EXPORTER_OTLP_ENDPOINT').href;
    url = `${base}${base.endsWith('/') ? '' : '/'}v1/traces`;
  }
  const protocol = value(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? value(env, 'OTEL_EXPORTER_OTLP_PROTOCOL');
  if (protocol && protocol !== 'http/json') {
    warnings.push(`OTEL_EXPORTER_OTLP_PROTOCOL=${protocol.slice(0, 20)} is not supported: spans are sent as OTLP/HTTP JSON (the OpenTelemetry Collector's otlp receiver takes it on its HTTP port, 4318)`);
  }
  const exporter = value(env, 'OTEL_TRACES_EXPORTER');
  if (exporter && exporter.toLowerCase() !== 'otlp') warnings.push(`OTEL_TRACES_EXPORTER=${exporter.slice(0, 20)} is not supported: spans are sent by OTLP`);

  let name: SamplerName = 'parentbased_always_on';
  const asked = value(env, 'OTEL_TRACES_SAMPLER')?.toLowerCase();
  if (asked && SAMPLERS.has(asked)) name = asked as SamplerName;
  else if (asked) warnings.push(`OTEL_TRACES_SAMPLER=${asked.slice(0, 30)} is not one of ${[...SAMPLERS].join(', ')}: parentbased_always_on is used`);
  let ratio = 1;
  const arg = value(env, 'OTEL_TRACES_SAMPLER_ARG');
  if (name.endsWith('traceidratio') && arg !== undefined) {
    const n = Number(arg);
    if (Number.isFinite(n) && n >= 0 && n <= 1) ratio = n;
    else warnings.push('OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1: 1 is used');
  }

  const count = (variable: string, fallback: number, min: number): number => {
    const raw = value(env, variable);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (Number.isSafeInteger(n) && n >= min) return n;
    warnings.push(`${variable} must be an integer of at least ${min}: ${fallback} is used`);
    return fallback;
  };
  // The defaults are the specification's (OTEL_BSP_*).
  const batch = {
    scheduledDelayMillis: count('OTEL_BSP_SCHEDULE_DELAY', 5000, 1),
    exportTimeoutMillis: count('OTEL_BSP_EXPORT_TIMEOUT', 30000, 1),
    maxQueueSize: count('OTEL_BSP_MAX_QUEUE_SIZE', 2048, 1),
    maxExportBatchSize: count('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 512, 1),
  };
  if (batch.maxExportBatchSize > batch.maxQueueSize) batch.maxExportBatchSize = batch.maxQueueSize;
  return { url, sampler: { name, ratio }, batch, warnings };
}

/** HTTP methods of RFC 9110 §9; anything else is `_OTHER` (OpenTelemetry HTTP semantic conventions). */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);
const methodOf = (method: string): string => (METHODS.has(method) ? method : '_OTHER');

/** An error's kind for `error.type`: its code or name, never its message. */
function errorType(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown; cause?: { code?: unknown } } | null;
  const pick = (v: unknown) => (typeof v === 'string' && /^[A-Za-z0-9_.:-]{1,64}$/.test(v) ? v : typeof v === 'number' ? String(v) : undefined);
  return pick(e?.code) ?? pick(e?.cause?.code) ?? pick(e?.name) ?? '_OTHER';
}

/** OpenTelemetry's own warnings, to the log: each distinct one at most once a minute (a collector down fails every batch). */
function diagForwarder() {
  let target: Logger | null = null;
  const pending: Array<['warn' | 'error', string]> = [];
  const last = new Map<string, number>();
  // The SDK's error handler passes an error as its JSON (stack and all): its message is enough.
  const readable = (message: string) => {
    try {
      const parsed = JSON.parse(message) as { message?: unknown };
      if (typeof parsed?.message === 'string') return parsed.message;
    } catch { /* plain text */ }
    return message;
  };
  const text = (message: string, args: unknown[]) =>
    [readable(message), ...args.map((a) => (a instanceof Error ? a.message : typeof a === 'string' ? a : ''))].filter(Boolean).join(' ').slice(0, 500);
  const emit = (level: 'warn' | 'error', message: string, args: unknown[]) => {
    const line = text(message, args);
    const now = Date.now();
    if ((last.get(line) ?? -Infinity) > now - 60_000) return;
    if (last.size >= 100) last.clear();
    last.set(line, now);
    if (target) target[level]({ component: 'opentelemetry' }, line);
    else if (pending.length < 20) pending.push([level, line]);
  };
  return {
    logger: {
      error: (message: string, ...args: unknown[]) => emit('error', message, args),
      warn: (message: string, ...args: unknown[]) => emit('warn', message, args),
      info: () => {},
      debug: () => {},
      verbose: () => {},
    },
    reportTo(logger: Logger) {
      target = logger;
      for (const [level, line] of pending.splice(0)) logger[level]({ component: 'opentelemetry' }, line);
    },
  };
}

export interface StartOptions {
  /** service.version of the resource (package.json's). */
  version?: string;
  /** Instrument the MongoDB driver: it must not have been loaded yet (main.ts starts tracing first). */
  mongodb?: boolean;
}

/**
 * Starts tracing when the environment asks for it (see tracingSettings), else returns null having
 * imported nothing of OpenTelemetry. Called before anything loads the MongoDB driver, whose
 * instrumentation hooks `require`.
 */
export async function startTracing(env: Env = process.env, options: StartOptions = {}): Promise<Tracing | null> {
  const settings = tracingSettings(env);
  if (!settings) return null;

  const api = await import('@opentelemetry/api');
  const [{ TracerProvider, BatchSpanProcessor, ParentBasedSampler, AlwaysOnSampler, AlwaysOffSampler, TraceIdRatioBasedSampler }, { AsyncLocalStorageContextManager }, { OTLPTraceExporter }, { resourceFromAttributes, detectResources, envDetector }] = await Promise.all([
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/context-async-hooks'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);

  const diag = diagForwarder();
  api.diag.setLogger(diag.logger, api.DiagLogLevel.WARN);
  for (const warning of settings.warnings) diag.logger.warn(warning);

  const { name, ratio } = settings.sampler;
  const root = name.endsWith('always_off') ? new AlwaysOffSampler() : name.endsWith('traceidratio') ? new TraceIdRatioBasedSampler(ratio) : new AlwaysOnSampler();
  const sampler = name.startsWith('parentbased_') ? new ParentBasedSampler({ root }) : root;
  // service.name dinhdanh unless OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) says otherwise.
  const resource = resourceFromAttributes({ 'service.name': 'dinhdanh', ...(options.version ? { 'service.version': options.version } : {}) })
    .merge(detectResources({ detectors: [envDetector] }));
  // The URL from `env`; headers (OTEL_EXPORTER_OTLP_HEADERS), timeout, compression and certificates
  // through the exporter's own reading of the environment.
  const exporter = new OTLPTraceExporter({ url: settings.url });
  const provider = new TracerProvider({ resource, sampler, spanProcessors: [new BatchSpanProcessor({ exporter, ...settings.batch })] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  api.context.setGlobalContextManager(contextManager);
  api.trace.setGlobalTracerProvider(provider);
  const tracer: Tracer = provider.getTracer('dinhdanh', options.version);

  let mongodbInstrumentation: { disable(): void } | null = null;
  if (options.mongodb) {
    const { createRequire } = await import('node:module');
    const require = createRequire(import.meta.url);
    let preloaded = false;
    try {
      preloaded = require.resolve('mongodb') in require.cache;
    } catch { /* not installed: nothing to instrument */ }
    if (preloaded) diag.logger.warn('the MongoDB driver was loaded before tracing started: its command spans are missing (start the server with `node dist/src/main.js` or `npm start`)');
    const { MongoDBInstrumentation } = await import('@opentelemetry/instrumentation-mongodb');
    // Within a request's trace only, as the store spans; statements with their values as `?`.
    const instrumentation = new MongoDBInstrumentation({ enabled: false, requireParentSpan: true, enhancedDatabaseReporting: false });
    instrumentation.setTracerProvider(provider);
    instrumentation.enable();
    mongodbInstrumentation = instrumentation;
  }

  const { SpanKind, SpanStatusCode, ROOT_CONTEXT, TraceFlags } = api;
  const activeSpan = (): Span | undefined => api.trace.getSpan(api.context.active());
  const finishNothing = () => {};

  return {
    middleware(listener) {
      return async function tracingMiddleware(ctx, next) {
        const method = methodOf(ctx.method);
        const path = ctx.path;
        // A root span: an incoming traceparent is not trusted (see the top of this file).
        const span = tracer.startSpan(method, {
          kind: SpanKind.SERVER,
          attributes: { 'http.request.method': method, 'url.scheme': ctx.protocol, 'dinhdanh.listener': listener },
        }, ROOT_CONTEXT);
        let status = 500;
        try {
          await api.context.with(api.trace.setSpan(ROOT_CONTEXT, span), next);
          status = ctx.status;
        } finally {
          try {
            const route = routeTemplate(ctx, path);
            const attributes: Attributes = { 'http.response.status_code': status };
            // Semantic conventions: the route when known, else the method alone as the name.
            if (route !== UNMATCHED) {
              attributes['http.route'] = route;
              span.updateName(`${method} ${route}`);
            }
            const requestId: unknown = ctx.state.requestId;
            if (typeof requestId === 'string') attributes['dinhdanh.request_id'] = requestId;
            span.setAttributes(attributes);
            // Server spans: 5xx is an error, 4xx the client's (HTTP semantic conventions, "Status").
            if (status >= 500) {
              span.setAttribute('error.type', String(status));
              span.setStatus({ code: SpanStatusCode.ERROR });
            }
          } finally {
            span.end();
          }
        }
      };
    },

    storeHook(backend, repository, operation) {
      if (!activeSpan()) return finishNothing;
      const span = tracer.startSpan(`${repository}.${operation}`, {
        kind: SpanKind.INTERNAL,
        attributes: { 'db.system.name': backend, 'dinhdanh.store.repository': repository, 'dinhdanh.store.operation': operation },
      });
      return (error) => {
        if (error !== undefined) {
          span.setAttribute('error.type', errorType(error));
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        span.end();
      };
    },

    outboundHook(method, url) {
      const name = methodOf(method);
      const attributes: Attributes = { 'http.request.method': name };
      if (url) {
        attributes['server.address'] = url.hostname.replace(/^\[|\]$/g, '');
        attributes['server.port'] = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
        attributes['url.scheme'] = url.protocol.replace(/:$/, '');
      }
      // Not made active: nothing inside the guard reads the context, and nothing is sent with the call.
      const span = tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes });
      return ({ status, error }) => {
        if (status !== undefined) span.setAttribute('http.response.status_code', status);
        // Client spans: 4xx and 5xx are errors (HTTP semantic conventions, "Status").
        if (error !== undefined || (status !== undefined && status >= 400)) {
          span.setAttribute('error.type', error !== undefined ? errorType(error) : String(status));
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        span.end();
      };
    },

    // A new object every time: pino adds the line's own fields to the one it is given.
    logMixin(): Record<string, string> {
      const span = activeSpan();
      if (!span) return {};
      const { traceId, spanId, traceFlags } = span.spanContext();
      // A span not sampled is never exported: a trace id in the log would lead nowhere.
      if ((traceFlags & TraceFlags.SAMPLED) === 0) return {};
      return { trace_id: traceId, span_id: spanId };
    },

    reportTo(logger) {
      diag.reportTo(logger);
    },

    async shutdown(timeoutMs = 3000) {
      let timer: NodeJS.Timeout | undefined;
      try {
        mongodbInstrumentation?.disable();
        // A collector that does not answer must not hold the process: what is not sent in time is lost.
        await Promise.race([
          provider.shutdown().catch((err: unknown) => diag.logger.warn('spans could not be sent at shutdown', err)),
          new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs); timer.unref(); }),
        ]);
      } finally {
        clearTimeout(timer);
        api.trace.disable();
        api.context.disable();
        api.diag.disable();
      }
    },
  };
}
