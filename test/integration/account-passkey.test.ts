/**
 * Adding a passkey at /account/security (a software authenticator making real registrations), its
 * challenge single-use and server-side, and the new passkey then signing the person in.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type * as oidc from 'openid-client';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, decodeEntities, formAction, hiddenField, type Response } from '../helpers/browser.js';
import { authRequest, discover, redeem, type Portal } from '../helpers/rp.js';
import { SoftAuthenticator, type CreationOptions, type RequestOptions } from '../helpers/soft-authenticator.js';

const now = Date.now();
let srv: TestServer;
let origin: string;
let portal: Portal;
let config: oidc.Configuration;

beforeAll(async () => {
  srv = await startTestServer({ now: () => now, host: 'localhost' });
  origin = new URL(srv.issuer).origin;
  portal = await srv.addPortal();
  config = await discover(srv.issuer, portal);
});
afterAll(async () => { await srv.close(); });

const url = (p: string) => new URL(p, srv.issuer).href;

function webauthnForm<T>(html: string, kind: 'get' | 'create') {
  const m = new RegExp(`<form method="post" action="([^"]+)" data-webauthn="${kind}" data-options="([^"]*)"[^>]*>([\\s\\S]*?)</form>`).exec(html);
  if (!m) throw new Error(`no ${kind} form`);
  return { action: url(decodeEntities(m[1]!)), options: JSON.parse(decodeEntities(m[2]!)) as T, csrf: hiddenField(m[3]!, '_csrf') };
}

async function openAccount(browser: Browser, person: { pid: string; password: string }): Promise<Response> {
  const page = await browser.get(url('/account/security'));
  return browser.post(url(formAction(page.text)), { _csrf: hiddenField(page.text, '_csrf'), identifier: person.pid, password: person.password });
}

describe('adding a passkey on the account page', () => {
  it('registers a passkey (with recovery codes when it is the first factor), which then signs the person in', async () => {
    const person = await srv.addPerson();
    const key = new SoftAuthenticator();
    const browser = new Browser(srv.issuer);
    const page = await openAccount(browser, person);
    const start = await browser.post(url('/account/security/passkey'), { _csrf: hiddenField(page.text, '_csrf') });
    expect(start.status).toBe(200);
    const form = webauthnForm<CreationOptions>(start.text, 'create');
    const response = JSON.stringify(key.create(form.options, origin));
    const done = await browser.post(form.action, { _csrf: form.csrf, response });
    expect([...done.text.matchAll(/data-testid="recovery-code"/g)]).toHaveLength(10);
    const [factor] = await srv.system.store.factors.listForPerson(person.id);
    expect(factor).toMatchObject({ type: 'passkey', confirmed: true });

    // The challenge worked once: the same answer again is refused.
    const replay = await browser.post(form.action, { _csrf: form.csrf, response });
    expect(replay.status).toBe(400);
    expect(await srv.system.store.factors.listForPerson(person.id)).toHaveLength(1);

    const signIn = new Browser(srv.issuer);
    const req = await authRequest(config, portal);
    const login = await signIn.get(req.url.href);
    const second = await signIn.post(url(formAction(login.text)), { _csrf: hiddenField(login.text, '_csrf'), identifier: person.pid, password: person.password });
    const get = webauthnForm<RequestOptions>(second.text, 'get');
    let back = await signIn.post(get.action, { _csrf: get.csrf, response: JSON.stringify(key.get(get.options, origin)) });
    if (back.text.includes('name="decision"')) back = await signIn.post(url(formAction(back.text)), { _csrf: hiddenField(back.text, '_csrf'), decision: 'allow' });
    const claims = (await redeem(config, req, back.location!)).claims()!;
    expect(claims.acr).toBe('urn:dinhdanh:loa:substantial');
    expect(claims.amr).toContain('mfa');
  });

  it('refuses a registration whose challenge was never issued to this session', async () => {
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const page = await openAccount(browser, person);
    const forged = { challenge: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', rp: { id: 'localhost', name: 'x' }, user: { id: 'AAAA', name: 'x', displayName: 'x' }, pubKeyCredParams: [{ type: 'public-key', alg: -7 }] } as unknown as CreationOptions;
    const res = await browser.post(url('/account/security/passkey/finish'), {
      _csrf: hiddenField(page.text, '_csrf'),
      response: JSON.stringify(new SoftAuthenticator().create(forged, origin)),
    });
    expect(res.status).toBe(400);
    expect(await srv.system.store.factors.listForPerson(person.id)).toEqual([]);
  });
});
