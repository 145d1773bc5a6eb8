/**
 * Discovery and the JWKS are served from bytes kept per provider (issue 8): they must be exactly
 * what oidc-provider answers, keep CORS for cross-origin callers, follow the request's host like the
 * library does, and change with the key set (the rotation test in operators.test.ts).
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from '../helpers/harness.js';

let srv: TestServer;
beforeAll(async () => { srv = await startTestServer(); });
afterAll(async () => { await srv.close(); });

/** A GET with exactly these headers (fetch would not let the test set Host). */
function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const url = new URL(path, srv.issuer);
  return new Promise((resolve, reject) => {
    http.get({ host: url.hostname, port: url.port, path: url.pathname, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    }).on('error', reject);
  });
}

describe('discovery and JWKS documents', () => {
  it.each(['/.well-known/openid-configuration', '/jwks'])('%s: the same bytes and headers at every request', async (path) => {
    const first = await get(path);
    const again = await get(path);
    expect(first.status).toBe(200);
    expect(again.body).toBe(first.body);
    // Every header but the per-response ones is the same: the cached answer is the library's.
    const stable = (h: http.IncomingHttpHeaders) => Object.fromEntries(Object.entries(h).filter(([name]) => !['date', 'x-request-id'].includes(name)));
    expect(stable(again.headers)).toEqual(stable(first.headers));
    expect(again.headers['access-control-allow-origin']).toBe('*');
    expect(again.headers.vary).toBe('Origin');
    if (path === '/jwks') {
      expect(again.headers['content-type']).toBe('application/jwk-set+json; charset=utf-8');
      expect(again.headers['cache-control']).toBe('public, max-age=600');
    } else {
      expect(JSON.parse(again.body)).toMatchObject({ issuer: srv.issuer, jwks_uri: `${srv.issuer}/jwks` });
    }
  });

  it('a cross-origin caller still gets CORS headers', async () => {
    await get('/jwks');
    const res = await get('/jwks', { origin: 'https://portal.example.vn' });
    expect(res.status).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe('https://portal.example.vn');
    expect(res.headers['cache-control']).toBe('public, max-age=600');
  });

  it("discovery at another host name names that host's endpoints (as the library does), never the cached ones", async () => {
    await get('/.well-known/openid-configuration');
    const port = new URL(srv.issuer).port;
    const res = await get('/.well-known/openid-configuration', { host: `localhost:${port}` });
    const doc = JSON.parse(res.body) as { issuer: string; token_endpoint: string };
    expect(doc.issuer).toBe(srv.issuer);
    expect(doc.token_endpoint).toBe(`http://localhost:${port}/token`);
    const back = JSON.parse((await get('/.well-known/openid-configuration')).body) as { token_endpoint: string };
    expect(back.token_endpoint).toBe(`${srv.issuer}/token`);
  });

  it('HEAD and unsupported methods are answered as before', async () => {
    const head = await fetch(`${srv.issuer}/jwks`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    const post = await fetch(`${srv.issuer}/jwks`, { method: 'POST' });
    expect(post.status).toBeGreaterThanOrEqual(400);
    expect(post.status).toBeLessThan(500);
  });
});
