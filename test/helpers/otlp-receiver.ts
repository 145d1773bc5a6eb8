/**
 * An OpenTelemetry collector for the tests: a real HTTP server taking OTLP/HTTP JSON at /v1/traces
 * (the OTLP specification's ExportTraceServiceRequest, ids in hex), keeping every span it is sent
 * with its resource, and every request's headers.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type AttributeValue = string | number | boolean | null | AttributeValue[];

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  /** SpanKind as in OTLP: 1 internal, 2 server, 3 client. */
  kind: number;
  attributes: Record<string, AttributeValue>;
  /** 0 unset, 1 ok, 2 error. */
  statusCode: number;
  resource: Record<string, AttributeValue>;
  scope: string;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: OtlpValue[] };
}
interface OtlpAttribute { key: string; value?: OtlpValue }

function decode(value: OtlpValue | undefined): AttributeValue {
  if (!value) return null;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return value.doubleValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.arrayValue) return (value.arrayValue.values ?? []).map(decode);
  return null;
}

function attributes(list: OtlpAttribute[] | undefined): Record<string, AttributeValue> {
  return Object.fromEntries((list ?? []).map((a) => [a.key, decode(a.value)]));
}

interface ExportRequest {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: Array<{
      scope?: { name?: string };
      spans?: Array<{ traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes?: OtlpAttribute[]; status?: { code?: number } }>;
    }>;
  }>;
}

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  readonly requests: Array<{ path: string; contentType: string | undefined; headers: http.IncomingHttpHeaders }> = [];
  /** What could not be read as OTLP JSON (a test fails on it). */
  readonly rejected: string[] = [];
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.requests.push({ path: req.url ?? '/', contentType: req.headers['content-type'], headers: req.headers });
      try {
        if (req.method !== 'POST' || req.url !== '/v1/traces') throw new Error(`${req.method} ${req.url}`);
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ExportRequest;
        for (const rs of body.resourceSpans ?? []) {
          const resource = attributes(rs.resource?.attributes);
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              this.spans.push({
                traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId || undefined, name: s.name, kind: s.kind,
                attributes: attributes(s.attributes), statusCode: s.status?.code ?? 0, resource, scope: ss.scope?.name ?? '',
              });
            }
          }
        }
        res.setHeader('content-type', 'application/json');
        res.end('{}');
      } catch (err) {
        this.rejected.push((err as Error).message);
        res.statusCode = 400;
        res.end();
      }
    });
  });
  base = '';

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** Resolves once `done()` holds for the spans received; polls, and gives up (throwing `what`) after `limitMs`. */
  async until(done: (spans: ReceivedSpan[]) => boolean, what: string, limitMs = 20_000): Promise<void> {
    for (let waited = 0; !done(this.spans); waited += 50) {
      if (waited >= limitMs) throw new Error(`the collector never received ${what}; it has: ${this.spans.map((s) => s.name).join(', ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
