/**
 * Traces, in this process: the OpenTelemetry variables read as the specification says; with no
 * endpoint nothing starts; with one, a Koa app, a real SQLite store and the guarded fetch send their
 * spans as OTLP JSON to a real HTTP collector: request spans named by route template with the
 * request id, store spans inside the request's trace only, outbound spans with the origin only and
 * no trace context sent, errors by type never by message, and the trace id in the log lines.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import Koa from 'koa';
import Router from '@koa/router';
import pino from 'pino';
import { TracingConfigError, startTracing, tracingConfigured, tracingSettings, type Tracing } from './tracing.js';
import { instrumentStore } from './store-instrumentation.js';
import { requestContext } from '../http/request-context.js';
import { createGuardedFetch } from '../outbound/index.js';
import { createStore, type Store } from '../store/index.js';
import { OtlpReceiver, type ReceivedSpan } from '../../test/helpers/otlp-receiver.js';

describe('the OpenTelemetry variables', () => {
  it('ask for nothing without an OTLP endpoint, or when OpenTelemetry is turned off', () => {
    expect(tracingSettings({})).toBeNull();
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' })).toBeNull();
    expect(tracingConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' })).toBe(false);
    expect(tracingConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
    expect(tracingConfigured({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBe(true);
    expect(tracingConfigured({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' })).toBe(true);
  });

  it('send to <endpoint>/v1/traces, or to the traces endpoint as it is', () => {
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })!.url).toBe('http://collector:4318/v1/traces');
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel.example.vn/base/' })!.url).toBe('https://otel.example.vn/base/v1/traces');
    expect(tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:4318/custom' })!.url).toBe('http://b:4318/custom');
  });

  it('stop the start on an endpoint that is not an http(s) URL, without repeating it', () => {
    expect(() => tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318 secret' })).toThrow(TracingConfigError);
    expect(() => tracingSettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318 secret' })).not.toThrow(/secret/);
    expect(() => tracingSettings({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'grpc://user:pw@c:4317' })).toThrow(/http: or https:/);
    expect(() => tracingSettings({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'grpc://user:pw@c:4317' })).not.toThrow(/pw/);
  });

  it('take the sampler and the batch settings, ignoring bad values with a warning', () => {
    const base = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };
    expect(tracingSettings(base)).toMatchObject({
      sampler: { name: 'parentbased_always_on', ratio: 1 },
      batch: { scheduledDelayMillis: 5000, exportTimeoutMillis: 30000, maxQueueSize: 2048, maxExportBatchSize: 512 },
      warnings: [],
    });
    expect(tracingSettings({ ...base, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25', OTEL_BSP_SCHEDULE_DELAY: '200' }))
      .toMatchObject({ sampler: { name: 'parentbased_traceidratio', ratio: 0.25 }, batch: { scheduledDelayMillis: 200 }, warnings: [] });
    const bad = tracingSettings({ ...base, OTEL_TRACES_SAMPLER: 'sometimes', OTEL_TRACES_SAMPLER_ARG: '2', OTEL_BSP_MAX_QUEUE_SIZE: '-1', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })!;
    expect(bad.sampler).toEqual({ name: 'parentbased_always_on', ratio: 1 });
    expect(bad.batch.maxQueueSize).toBe(2048);
    expect(bad.warnings).toEqual([
      expect.stringContaining('OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported'),
      expect.stringContaining('OTEL_TRACES_SAMPLER=sometimes'),
      expect.stringContaining('OTEL_BSP_MAX_QUEUE_SIZE'),
    ]);
    expect(tracingSettings({ ...base, OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: 'x' })!.warnings).toEqual([expect.stringContaining('OTEL_TRACES_SAMPLER_ARG')]);
    // Not a ratio sampler: its argument is not read.
    expect(tracingSettings({ ...base, OTEL_TRACES_SAMPLER: 'always_on', OTEL_TRACES_SAMPLER_ARG: 'x' })!.warnings).toEqual([]);
  });

  it('start nothing without an endpoint', async () => {
    await expect(startTracing({})).resolves.toBeNull();
  });
});

describe('spans sent to an OTLP collector', () => {
  const receiver = new OtlpReceiver();
  let tracing: Tracing;
  let dir: string;
  let store: Store;
  let app: http.Server;
  let appBase: string;
  const logLines: Array<Record<string, unknown>> = [];
  /** A portal's endpoint: every request's headers. */
  const portalRequests: http.IncomingHttpHeaders[] = [];
  const portal = http.createServer((req, res) => {
    portalRequests.push(req.headers);
    req.resume();
    req.on('end', () => { res.statusCode = req.url === '/gone' ? 404 : 200; res.end('ok'); });
  });
  let portalBase: string;
  const requestIds: Record<string, string> = {};
  let spans: ReceivedSpan[];

  beforeAll(async () => {
    await receiver.start();
    await new Promise<void>((r) => portal.listen(0, '127.0.0.1', r));
    portalBase = `http://127.0.0.1:${(portal.address() as AddressInfo).port}`;
    tracing = (await startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.base }, { version: '9.9.9' }))!;
    expect(tracing).not.toBeNull();

    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-tracing-'));
    store = instrumentStore(await createStore(`sqlite:${path.join(dir, 'store.db')}`), [tracing.storeHook]);
    const outbound = createGuardedFetch({ allowPrivate: true, allowCidrs: [], timeoutMs: 5000, maxResponseBytes: 1024 }, { observe: tracing.outboundHook });
    const logger = pino({ mixin: tracing.logMixin }, new Writable({
      write(chunk: Buffer, _enc, cb) { logLines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>); cb(); },
    }));

    const koa = new Koa();
    koa.silent = true;
    koa.use(tracing.middleware('public'));
    koa.use(requestContext(logger, { trustRequestId: false }));
    const router = new Router();
    router.get('/portals/:clientId', async (ctx) => {
      const found = await store.portals.find(ctx.params.clientId!);
      // A store error: the message (which could quote a value) must not reach the span.
      await store.portals.setDisabled('', true).catch(() => undefined);
      const finish = tracing.storeHook('sqlite', 'persons', 'failing');
      finish(new Error('E11000 duplicate key dup key: { pid: "001099012345" }'));
      ctx.body = { found: !!found };
    });
    router.post('/notify/:clientId', async (ctx) => {
      const sent = await outbound(`${portalBase}/backchannel/logout?token=s3cr3t-t0ken`, { method: 'POST', body: new URLSearchParams({ logout_token: 'eyJ.s3cr3t' }) });
      const gone = await outbound(`${portalBase}/gone`);
      const refused = await outbound('ftp://example.vn/x').then(() => 'sent', (err: Error) => err.name);
      ctx.body = { sent: sent.status, gone: gone.status, refused };
    });
    router.get('/boom', () => {
      throw new Error('boom with 001099012345');
    });
    koa.use(router.routes());
    app = http.createServer(koa.callback());
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    appBase = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;

    for (const [key, p, method] of [
      ['portal', '/portals/portal-of-001099012345', 'GET'],
      ['notify', '/notify/abc', 'POST'],
      ['unmatched', '/interaction/Zx9secretUid/nothing-here', 'GET'],
      ['boom', '/boom', 'GET'],
    ] as const) {
      const res = await fetch(`${appBase}${p}`, { method });
      requestIds[key] = res.headers.get('x-request-id')!;
    }
    // Outside any request: the job runner's polling is not traced.
    await store.portals.find('background');
    // Sends what is buffered (the batch processor's timer is 5 s) and unregisters everything.
    await tracing.shutdown();
    spans = receiver.spans;
  });

  afterAll(async () => {
    await new Promise<void>((r) => app.close(() => r()));
    await new Promise<void>((r) => portal.close(() => r()));
    await receiver.stop();
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const requestSpan = (key: string) => {
    const found = spans.filter((s) => s.kind === 2 && s.attributes['dinhdanh.request_id'] === requestIds[key]);
    expect(found).toHaveLength(1);
    return found[0]!;
  };

  it('are OTLP JSON, with the service named dinhdanh', () => {
    expect(receiver.rejected).toEqual([]);
    expect(receiver.requests.length).toBeGreaterThan(0);
    for (const r of receiver.requests) expect(r.contentType).toMatch(/^application\/json/);
    expect(spans[0]!.resource).toMatchObject({ 'service.name': 'dinhdanh', 'service.version': '9.9.9' });
    expect(new Set(spans.map((s) => s.scope))).toEqual(new Set(['dinhdanh']));
  });

  it('name each request by its route template, with the request id, the listener and the status', () => {
    const span = requestSpan('portal');
    expect(span.name).toBe('GET /portals/:clientId');
    expect(span.parentSpanId).toBeUndefined();
    expect(span.attributes).toEqual({
      'http.request.method': 'GET', 'url.scheme': 'http', 'dinhdanh.listener': 'public', 'http.route': '/portals/:clientId',
      'http.response.status_code': 200, 'dinhdanh.request_id': requestIds.portal,
    });
    expect(span.statusCode).toBe(0);
    expect(requestSpan('notify').name).toBe('POST /notify/:clientId');
  });

  it('name a request no route took by its method alone, never its path', () => {
    const span = requestSpan('unmatched');
    expect(span.name).toBe('GET');
    expect(span.attributes['http.route']).toBeUndefined();
    expect(span.attributes['http.response.status_code']).toBe(404);
    expect(JSON.stringify(spans)).not.toContain('Zx9secretUid');
  });

  it('mark a 500 as an error, by status, never by message', () => {
    // The error escaped every middleware: Koa's own 500 (which drops the response's headers, the request id's too).
    const found = spans.filter((s) => s.kind === 2 && s.name === 'GET /boom');
    expect(found).toHaveLength(1);
    const span = found[0]!;
    expect(span.attributes['dinhdanh.request_id']).toEqual(expect.any(String));
    expect(span.statusCode).toBe(2);
    expect(span.attributes['error.type']).toBe('500');
  });

  it('give each store call of a request a span in its trace, and none outside a request', () => {
    const request = requestSpan('portal');
    const children = spans.filter((s) => s.parentSpanId === request.spanId);
    expect(children.map((s) => s.name).sort()).toEqual(['persons.failing', 'portals.find', 'portals.setDisabled']);
    for (const s of children) expect(s.traceId).toBe(request.traceId);
    expect(children.find((s) => s.name === 'portals.find')!.attributes).toEqual({
      'db.system.name': 'sqlite', 'dinhdanh.store.repository': 'portals', 'dinhdanh.store.operation': 'find',
    });
    const failed = children.find((s) => s.name === 'persons.failing')!;
    expect(failed.statusCode).toBe(2);
    expect(failed.attributes['error.type']).toBe('Error');
    // One portals.find inside the request; the one made outside it has no span.
    expect(spans.filter((s) => s.name === 'portals.find')).toHaveLength(1);
    // No person number anywhere, although a path, an error and a failing call's message held one.
    expect(JSON.stringify(spans)).not.toContain('001099012345');
  });

  it('give each outbound call a client span with its origin only, and send no trace context with it', () => {
    const request = requestSpan('notify');
    const calls = spans.filter((s) => s.kind === 3);
    expect(calls.map((s) => s.name)).toEqual(['POST', 'GET', 'GET']);
    for (const s of calls) {
      expect(s.parentSpanId).toBe(request.spanId);
      expect(s.traceId).toBe(request.traceId);
    }
    const port = Number(new URL(portalBase).port);
    expect(calls[0]!.attributes).toEqual({
      'http.request.method': 'POST', 'server.address': '127.0.0.1', 'server.port': port, 'url.scheme': 'http', 'http.response.status_code': 200,
    });
    expect(calls[0]!.statusCode).toBe(0);
    expect(calls[1]!).toMatchObject({ statusCode: 2, attributes: { 'http.response.status_code': 404, 'error.type': '404' } });
    expect(calls[2]!).toMatchObject({ statusCode: 2, attributes: { 'server.address': 'example.vn', 'error.type': 'outbound_refused' } });
    const all = JSON.stringify(spans);
    for (const secret of ['s3cr3t', '/backchannel/logout', '/gone']) expect(all).not.toContain(secret);
    // What the portal received: no traceparent, tracestate or baggage (W3C Trace Context).
    expect(portalRequests).toHaveLength(2);
    for (const headers of portalRequests) {
      expect(Object.keys(headers).filter((h) => ['traceparent', 'tracestate', 'baggage'].includes(h))).toEqual([]);
    }
  });

  it('put the trace and span ids in the log lines written within a request', () => {
    const requests = spans.filter((s) => s.kind === 2);
    expect(requests).toHaveLength(4);
    for (const request of requests) {
      const line = logLines.find((l) => l.msg === 'request' && l.req_id === request.attributes['dinhdanh.request_id']);
      expect(line).toMatchObject({ trace_id: request.traceId, span_id: request.spanId });
    }
    // Outside a span: no ids.
    expect(logLines.filter((l) => 'trace_id' in l).length).toBe(4);
  });
});
