/**
 * The transmitter's metadata and stream-management API (OpenID Shared Signals Framework 1.0 §7,
 * §8.1) as portals meet it over real HTTP: create, read, update, replace, delete, status and
 * verification; one portal never reaching another's stream; client authentication as at the token
 * endpoint (a secret, a rotated secret's grace period, a private_key_jwt assertion used once); push
 * URLs held to the back-channel logout rules; bad bodies refused with nothing changed; and none of
 * it on the operators' listener.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import type { Portal } from '../helpers/rp.js';
import { EVENT, SSF_POLL, SSF_PUSH } from '../../src/events/event-types.js';
import { composeServices } from '../../src/services.js';

let srv: TestServer;
beforeAll(async () => { srv = await startTestServer(); });
afterAll(async () => { await srv.close(); });

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

async function call(authorization: string | undefined, method: string, path: string, body?: unknown, raw?: { type: string; text: string }) {
  const res = await fetch(`${srv.issuer}${path}`, {
    method,
    headers: { ...(authorization ? { authorization } : {}), ...(raw ? { 'content-type': raw.type } : body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: raw ? raw.text : body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: (text ? JSON.parse(text) : undefined) as Record<string, unknown> & Array<Record<string, unknown>> };
}
const as = (p: Portal) => basic(p.client_id, p.client_secret);
const POLL = { events_requested: [EVENT.accountDisabled], delivery: { method: SSF_POLL } };

describe('metadata', () => {
  it('is served at /.well-known/ssf-configuration with the endpoints, methods and scheme (SSF 1.0 §7.1)', async () => {
    const meta = await call(undefined, 'GET', '/.well-known/ssf-configuration');
    expect(meta.status).toBe(200);
    expect(meta.json).toEqual({
      spec_version: '1_0', issuer: srv.issuer, jwks_uri: `${srv.issuer}/jwks`, delivery_methods_supported: [SSF_PUSH, SSF_POLL],
      configuration_endpoint: `${srv.issuer}/ssf/stream`, status_endpoint: `${srv.issuer}/ssf/status`, verification_endpoint: `${srv.issuer}/ssf/verify`,
      authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6749' }], default_subjects: 'ALL',
    });
    const discovery = (await (await fetch(`${srv.issuer}/.well-known/openid-configuration`)).json()) as { jwks_uri: string };
    expect(meta.json.jwks_uri).toBe(discovery.jwks_uri);
  });

  it('neither the metadata nor the API is on the operators\' listener', async () => {
    for (const path of ['/.well-known/ssf-configuration', '/ssf/stream', '/ssf/status']) {
      expect((await fetch(`${srv.adminUrl}${path}`)).status).toBe(404);
    }
  });
});

describe('a portal\'s stream', () => {
  it('create, read, update, replace, status, verify, delete — and a second stream is refused', async () => {
    const p = await srv.addPortal();
    const created = await call(as(p), 'POST', '/ssf/stream', { events_requested: [EVENT.accountDisabled, 'https://example.com/unknown'], delivery: { method: SSF_POLL }, description: 'cổng thử' });
    expect(created.status).toBe(201);
    const id = created.json.stream_id as string;
    expect(created.json).toMatchObject({ iss: srv.issuer, aud: p.client_id, events_requested: [EVENT.accountDisabled], events_delivered: [EVENT.accountDisabled], delivery: { method: SSF_POLL, endpoint_url: `${srv.issuer}/ssf/poll` }, min_verification_interval: 15, description: 'cổng thử' });
    expect((await call(as(p), 'POST', '/ssf/stream', POLL)).status).toBe(409);
    expect((await call(as(p), 'GET', `/ssf/stream?stream_id=${id}`)).json.stream_id).toBe(id);
    expect((await call(as(p), 'GET', '/ssf/stream')).json.map((s) => s.stream_id)).toEqual([id]);

    const patched = await call(as(p), 'PATCH', '/ssf/stream', { stream_id: id, events_requested: [EVENT.sessionRevoked, EVENT.credentialChange] });
    expect(patched.status).toBe(200);
    expect(patched.json).toMatchObject({ events_requested: [EVENT.sessionRevoked, EVENT.credentialChange], description: 'cổng thử', delivery: { method: SSF_POLL } });
    const replaced = await call(as(p), 'PUT', '/ssf/stream', { stream_id: id, delivery: { method: SSF_PUSH, endpoint_url: 'http://localhost:9999/events', authorization_header: 'Bearer bí-mật-không-trả-lại'.replace(/[^\x20-\x7e]/g, 'x') } });
    expect(replaced.status).toBe(200);
    expect(replaced.json).toMatchObject({ events_requested: [], delivery: { method: SSF_PUSH, endpoint_url: 'http://localhost:9999/events' } });
    expect(JSON.stringify(replaced.json)).not.toContain('Bearer');
    const stored = await srv.system.store.ssf.findStream(id);
    expect(stored!.authorizationHeader).not.toContain('Bearer');

    expect((await call(as(p), 'POST', '/ssf/status', { stream_id: id, status: 'paused', reason: 'bảo trì' })).json).toEqual({ stream_id: id, status: 'paused', reason: 'bảo trì' });
    expect((await call(as(p), 'GET', `/ssf/status?stream_id=${id}`)).json.status).toBe('paused');
    expect((await call(as(p), 'POST', '/ssf/status', { stream_id: id, status: 'enabled' })).status).toBe(200);

    expect((await call(as(p), 'POST', '/ssf/verify', { stream_id: id, state: 'abc' })).status).toBe(204);
    const again = await call(as(p), 'POST', '/ssf/verify', { stream_id: id });
    expect(again.status).toBe(429);
    expect(Number(again.headers.get('retry-after'))).toBeGreaterThan(0);

    expect((await call(as(p), 'DELETE', `/ssf/stream?stream_id=${id}`)).status).toBe(204);
    expect((await call(as(p), 'GET', '/ssf/stream')).json).toEqual([]);
    expect(await srv.system.store.ssf.findStream(id)).toBeUndefined();
    await srv.system.audit.flush();
    const events = (await srv.system.store.audit.list(0, 10_000)).filter((e) => e.event.startsWith('SSF_STREAM') && e.details.portal === p.client_id).map((e) => e.event);
    expect(events).toEqual(['SSF_STREAM_CREATED', 'SSF_STREAM_UPDATED', 'SSF_STREAM_UPDATED', 'SSF_STREAM_UPDATED', 'SSF_STREAM_UPDATED', 'SSF_STREAM_DELETED']);
  });

  it('a new push endpoint drops the old authorization header; no delivery means poll; a disabled stream gets no verification event', async () => {
    const p = await srv.addPortal();
    const made = await call(as(p), 'POST', '/ssf/stream', {});
    expect(made.status).toBe(201);
    expect(made.json.delivery).toEqual({ method: SSF_POLL, endpoint_url: `${srv.issuer}/ssf/poll` });
    const id = made.json.stream_id as string;
    await call(as(p), 'PATCH', '/ssf/stream', { stream_id: id, delivery: { method: SSF_PUSH, endpoint_url: 'http://localhost:9998/a', authorization_header: 'Bearer for-a' } });
    expect((await srv.system.store.ssf.findStream(id))!.authorizationHeader).not.toBeNull();
    await call(as(p), 'PATCH', '/ssf/stream', { stream_id: id, delivery: { method: SSF_PUSH, endpoint_url: 'http://localhost:9998/a' } });
    expect((await srv.system.store.ssf.findStream(id))!.authorizationHeader).not.toBeNull();
    await call(as(p), 'PATCH', '/ssf/stream', { stream_id: id, delivery: { method: SSF_PUSH, endpoint_url: 'http://localhost:9998/b' } });
    expect((await srv.system.store.ssf.findStream(id))!.authorizationHeader).toBeNull();
    expect((await call(as(p), 'POST', '/ssf/status', { stream_id: id, status: 'disabled' })).status).toBe(200);
    expect((await call(as(p), 'POST', '/ssf/verify', { stream_id: id })).status).toBe(204);
    await srv.system.securityEvents.settled();
    expect(await srv.system.store.ssf.undelivered(id, Date.now(), 10)).toEqual([]);
  });

  it('another portal cannot read, change, verify, poll or delete it: 404, and nothing changes', async () => {
    const owner = await srv.addPortal();
    const other = await srv.addPortal();
    const id = (await call(as(owner), 'POST', '/ssf/stream', POLL)).json.stream_id as string;
    const before = await srv.system.store.ssf.findStream(id);
    expect((await call(as(other), 'GET', `/ssf/stream?stream_id=${id}`)).status).toBe(404);
    expect((await call(as(other), 'PATCH', '/ssf/stream', { stream_id: id, events_requested: [] })).status).toBe(404);
    expect((await call(as(other), 'PUT', '/ssf/stream', { stream_id: id, delivery: { method: SSF_POLL } })).status).toBe(404);
    expect((await call(as(other), 'POST', '/ssf/status', { stream_id: id, status: 'disabled' })).status).toBe(404);
    expect((await call(as(other), 'GET', `/ssf/status?stream_id=${id}`)).status).toBe(404);
    expect((await call(as(other), 'POST', '/ssf/verify', { stream_id: id })).status).toBe(404);
    expect((await call(as(other), 'POST', '/ssf/poll', { returnImmediately: true })).status).toBe(404);
    expect((await call(as(other), 'DELETE', `/ssf/stream?stream_id=${id}`)).status).toBe(404);
    expect(await srv.system.store.ssf.findStream(id)).toEqual(before);
  });

  it('push URLs follow the back-channel logout URL rules; bad bodies get a 4xx and change nothing', async () => {
    const p = await srv.addPortal();
    for (const endpoint_url of ['https://portal.example/events#frag', 'https://user:pw@portal.example/events', 'http://portal.example/events', 'HTTPS://Portal.Example/events', 'not a url', 42]) {
      const res = await call(as(p), 'POST', '/ssf/stream', { delivery: { method: SSF_PUSH, endpoint_url } });
      expect({ endpoint_url, status: res.status, error: res.json.error }).toEqual({ endpoint_url, status: 400, error: 'invalid_request' });
    }
    const bad: Array<[unknown, number]> = [
      [{ delivery: { method: 'urn:example:smoke-signals' } }, 400],
      [{ delivery: { method: SSF_POLL }, events_requested: 'all' }, 400],
      [{ delivery: { method: SSF_POLL }, events_requested: [{ $ne: 1 }] }, 400],
      [{ delivery: { $ne: 1 } }, 400],
      [[POLL], 400],
      [{ delivery: { method: SSF_POLL }, description: 'x'.repeat(300) }, 400],
    ];
    for (const [body, status] of bad) expect((await call(as(p), 'POST', '/ssf/stream', body)).status).toBe(status);
    expect((await call(as(p), 'POST', '/ssf/stream', undefined, { type: 'application/json', text: '{"delivery":' })).status).toBe(400);
    expect((await call(as(p), 'POST', '/ssf/stream', undefined, { type: 'application/x-www-form-urlencoded', text: 'delivery[method]=x' })).status).toBe(415);
    expect((await call(as(p), 'POST', '/ssf/stream', undefined, { type: 'application/json', text: `{"description":"${'x'.repeat(40_000)}"}` })).status).toBe(413);
    expect(await srv.system.store.ssf.findStreamByClient(p.client_id)).toBeUndefined();
    const id = (await call(as(p), 'POST', '/ssf/stream', POLL)).json.stream_id as string;
    for (const body of [{ stream_id: id, status: 'on' }, { stream_id: { $ne: 1 }, status: 'paused' }, { status: 'paused' }]) {
      expect((await call(as(p), 'POST', '/ssf/status', body)).status).toBe(400);
    }
    for (const body of [{ maxEvents: -1 }, { maxEvents: 1.5 }, { maxEvents: 5000 }, { returnImmediately: 'yes' }, { ack: 'all' }, { setErrs: [] }, { setErrs: { a: { err: 1 } } }]) {
      expect((await call(as(p), 'POST', '/ssf/poll', body)).status).toBe(400);
    }
    expect((await srv.system.store.ssf.findStream(id))!.status).toBe('enabled');
  });
});

describe('client authentication, as at the token endpoint', () => {
  it('no credentials, a wrong secret, an unknown or disabled portal: 401 with WWW-Authenticate', async () => {
    const p = await srv.addPortal();
    for (const auth of [undefined, basic(p.client_id, 'wrong'), basic('no-such-client', p.client_secret), 'Basic !!!', 'Digest abc', `Bearer ${'x'.repeat(20)}`]) {
      const res = await call(auth, 'GET', '/ssf/stream');
      expect({ auth, status: res.status, error: res.json.error, challenge: !!res.headers.get('www-authenticate') }).toEqual({ auth, status: 401, error: 'invalid_client', challenge: true });
    }
    const cli = await composeServices(srv.system.config);
    try {
      await cli.portalAdmin.disable(p.client_id, 'ops.test');
    } finally {
      await cli.store.close();
    }
    expect((await call(as(p), 'GET', '/ssf/stream')).status).toBe(401);
  });

  it('a rotated secret works during its grace period and the new one at once', async () => {
    const p = await srv.addPortal();
    const cli = await composeServices(srv.system.config);
    let fresh: string;
    try {
      fresh = (await cli.portalAdmin.rotateSecret(p.client_id, 3600_000, { operator: 'cli:ops', reason: 'rotation under test', via: 'cli' })).client_secret;
    } finally {
      await cli.store.close();
    }
    expect((await call(basic(p.client_id, fresh), 'GET', '/ssf/stream')).status).toBe(200);
    expect((await call(as(p), 'GET', '/ssf/stream')).status).toBe(200);
  });

  it('a private_key_jwt portal: its assertion works once, a replay, a wrong audience or a secret are refused', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const p = await srv.addPortal({ authMethod: 'private_key_jwt', jwks: { keys: [jwk] } } as never);
    const assertion = (aud: string, jti = crypto.randomUUID()) => new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(p.client_id).setSubject(p.client_id).setAudience(aud)
      .setIssuedAt().setExpirationTime('2m').setJti(jti).sign(privateKey);
    const once = await assertion(srv.issuer);
    expect((await call(`Bearer ${once}`, 'POST', '/ssf/stream', POLL)).status).toBe(201);
    expect((await call(`Bearer ${once}`, 'GET', '/ssf/stream')).status).toBe(401);
    expect((await call(`Bearer ${await assertion(`${srv.issuer}/ssf/stream`)}`, 'GET', '/ssf/stream')).status).toBe(200);
    expect((await call(`Bearer ${await assertion('https://elsewhere.example')}`, 'GET', '/ssf/stream')).status).toBe(401);
    expect((await call(basic(p.client_id, 'anything'), 'GET', '/ssf/stream')).status).toBe(401);
  });
});
