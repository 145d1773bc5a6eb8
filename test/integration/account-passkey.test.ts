/**
 * Adding a passkey at /account/security (a software authenticator making real registrations), its
 * challenge single-use and server-side, and the new passkey then signing the person in.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type * as oidc from 'openid-client';
import type { TestServer } from '../helpers/harness.js';
import { Browser, hiddenField, type Response } from '../helpers/browser.js';
import { authRequest, redeem, type Portal } from '../helpers/rp.js';
import { SoftAuthenticator, type CreationOptions, type RequestOptions } from '../helpers/soft-authenticator.js';
import { pageSteps, postPasskey, startWithPortal, type Person } from '../helpers/pages.js';

const now = Date.now();
let srv: TestServer, portal: Portal, config: oidc.Configuration, origin: string;
beforeAll(async () => { ({ srv, portal, config, origin } = await startWithPortal({ now: () => now, host: 'localhost' })); });
afterAll(async () => { await srv.close(); });

const { url, password, submit, passkeyForm } = pageSteps({ server: () => srv });

async function openAccount(browser: Browser, person: Person): Promise<Response> {
  const page = await browser.get(url('/account/security'));
  return submit(browser, page, { identifier: person.pid, password: person.password });
}

describe('adding a passkey on the account page', () => {
  it('registers a passkey (with recovery codes when it is the first factor), which then signs the person in', async () => {
    const person = await srv.addPerson();
    const key = new SoftAuthenticator();
    const browser = new Browser(srv.issuer);
    const page = await openAccount(browser, person);
    const start = await browser.post(url('/account/security/passkey'), { _csrf: hiddenField(page.text, '_csrf'), current_password: person.password });
    expect(start.status).toBe(200);
    const form = passkeyForm<CreationOptions>(start.text, 'create');
    const response = JSON.stringify(key.create(form.options, origin));
    const done = await postPasskey(browser, form, response);
    expect([...done.text.matchAll(/data-testid="recovery-code"/g)]).toHaveLength(10);
    const [factor] = await srv.system.store.factors.listForPerson(person.id);
    expect(factor).toMatchObject({ type: 'passkey', confirmed: true });

    // The challenge worked once: the same answer again is refused.
    const replay = await postPasskey(browser, form, response);
    expect(replay.status).toBe(400);
    expect(await srv.system.store.factors.listForPerson(person.id)).toHaveLength(1);

    const signIn = new Browser(srv.issuer);
    const req = await authRequest(config, portal);
    const second = await password(signIn, req, person);
    const get = passkeyForm<RequestOptions>(second.text, 'get');
    let back = await postPasskey(signIn, get, key.get(get.options, origin));
    if (back.text.includes('name="decision"')) back = await submit(signIn, back, { decision: 'allow' });
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
    // A failed answer offers no new registration: only the form that asks for the current password
    // does (else a session left open could register a passkey without it, ASVS 5.0 7.5.1).
    expect(res.text).not.toContain('data-webauthn="create"');
    const empty = await browser.post(url('/account/security/passkey/finish'), { _csrf: hiddenField(page.text, '_csrf'), response: '{}' });
    expect(empty.status).toBe(400);
    expect(empty.text).not.toContain('data-webauthn="create"');
    expect(await srv.system.store.oidc.find('AccountPasskeyChallenge', (await srv.system.store.oidc.listByAccount('Session', person.id))[0]!.payload.uid as string)).toBeUndefined();
  });
});
