/**
 * A portal's push endpoint for Security Event Tokens (RFC 8935) in the tests: a real HTTP server
 * that keeps every SET it is sent and answers 202, or a status it is told to (a 503 run, a 400 with
 * RFC 8935 §2.3's error body), and a receiver's checks of a SET (RFC 8417 §2, SSF 1.0 §4.1) with jose.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';

export interface PushedSet {
  set: string;
  contentType: string | undefined;
  accept: string | undefined;
  authorization: string | undefined;
}

export class SetReceiver {
  readonly received: PushedSet[] = [];
  /** Answers to give, in turn, before answering 202 again. */
  private readonly answers: Array<number | { status: 400; err: string }> = [];
  private readonly server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => { body += c; });
    req.on('end', () => {
      this.received.push({ set: body, contentType: req.headers['content-type'], accept: req.headers.accept, authorization: req.headers.authorization });
      const answer = this.answers.shift() ?? 202;
      if (typeof answer === 'object') {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ err: answer.err, description: 'refused by the test' }));
        return;
      }
      res.statusCode = answer;
      res.end();
    });
  });
  base = '';

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  url(path = '/ssf/events'): string {
    return `${this.base}${path}`;
  }

  answer(...answers: Array<number | { status: 400; err: string }>): void {
    this.answers.push(...answers);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export interface VerifiedSet {
  header: { typ?: string; alg?: string; kid?: string };
  payload: JWTPayload & { sub_id?: Record<string, unknown>; events?: Record<string, Record<string, unknown>>; txn?: string };
  /** The one event type of the SET (SSF 1.0 §4.2.1) and its members. */
  type: string;
  event: Record<string, unknown>;
}

/** What a receiving portal checks of a SET: signature by the issuer's keys, `typ`, `iss`, `aud`, no `exp`, no `sub`. */
export async function verifySet(set: string, issuer: string, audience: string): Promise<VerifiedSet> {
  const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
  const { payload, protectedHeader } = await jwtVerify(set, jwks, { issuer, audience, typ: 'secevent+jwt' });
  if ('exp' in payload) throw new Error('a SET must not carry exp (SSF 1.0 §4.1.6)');
  if ('sub' in payload) throw new Error('a SET must not carry sub (SSF 1.0 §4.1.2)');
  const events = (payload as VerifiedSet['payload']).events ?? {};
  const types = Object.keys(events);
  if (types.length !== 1) throw new Error(`a SET carries one event (SSF 1.0 §4.2.1), not ${types.length}`);
  return { header: protectedHeader as VerifiedSet['header'], payload: payload as VerifiedSet['payload'], type: types[0]!, event: events[types[0]!]! };
}

export { decodeProtectedHeader };
