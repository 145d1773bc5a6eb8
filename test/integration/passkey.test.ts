/**
 * Passkeys through the real pages over HTTP, with openid-client as the portal and a software
 * authenticator (test/helpers/soft-authenticator.ts) producing real WebAuthn responses from the
 * options the pages embed, posted the way /static/webauthn.js posts them: a JSON string in the
 * `response` field of an ordinary form with the CSRF token.
 *
 * The server runs on http://localhost:<port>: WebAuthn RP IDs are host names, never IP addresses.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type * as oidc from 'openid-client';
import type { TestServer } from '../helpers/harness.js';
import { Browser, alertText, decodeEntities, formAction, hiddenField } from '../helpers/browser.js';
import { authRequest, redeem, type Portal } from '../helpers/rp.js';
import { SoftAuthenticator, type CreationOptions, type RequestOptions } from '../helpers/soft-authenticator.js';
import { HIGH, LOW, MINUTE, SUBSTANTIAL, pageSteps, postPasskey, startWithPortal, totpCode, totpSecret, type Person } from '../helpers/pages.js';
import { createPasskeyService } from '../../src/mfa/index.js';

let now = Date.now();
let srv: TestServer, portal: Portal, config: oidc.Configuration, origin: string;
beforeAll(async () => { ({ srv, portal, config, origin } = await startWithPortal({ now: () => now, host: 'localhost' })); });
afterAll(async () => { await srv.close(); });

const { url, password, submit, toPortal, passkeyForm } = pageSteps({ server: () => srv, portal: () => portal, expectLoginForm: true });

/** Registers a passkey inside a sign-in asking for `acr`; returns the ID token claims. */
async function enrolPasskey(authenticator: SoftAuthenticator, person: Person, acr = SUBSTANTIAL) {
  const browser = new Browser(srv.issuer);
  const req = await authRequest(config, portal, { acr_values: acr });
  const page = await password(browser, req, person);
  expect(page.status).toBe(200);
  const form = passkeyForm<CreationOptions>(page.text, 'create');
  const codes = await postPasskey(browser, form, authenticator.create(form.options, origin));
  expect(codes.status).toBe(200);
  expect([...codes.text.matchAll(/data-testid="recovery-code"/g)]).toHaveLength(10);
  const back = await toPortal(browser, await submit(browser, codes, { next: 'continue' }));
  return (await redeem(config, req, back.location!)).claims()!;
}

/** Password, then the second-factor page with its passkey form. */
async function toPasskeyPage(person: Person, extra: Record<string, string> = {}) {
  const browser = new Browser(srv.issuer);
  const req = await authRequest(config, portal, extra);
  const page = await password(browser, req, person);
  expect(page.status).toBe(200);
  return { browser, req, page, form: passkeyForm<RequestOptions>(page.text, 'get') };
}

describe('registering a passkey inside the sign-in', () => {
  it('offers a passkey next to the authenticator app, and registering one ends in a token naming hwk', async () => {
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const req = await authRequest(config, portal, { acr_values: SUBSTANTIAL });
    const page = await password(browser, req, person);
    // The authenticator app stays the first form (and works without JavaScript); the passkey is offered after it.
    expect(page.text).toContain('data-testid="totp-secret"');
    expect(formAction(page.text)).toMatch(/\/enrol$/);
    expect(page.text).toContain('Đăng ký khóa truy cập (passkey)');
    expect(page.text).toMatch(/<noscript><p class="hint">[^<]*JavaScript/);
    expect(page.text).toContain('<script src="/static/webauthn.js" defer></script>');
    expect(page.text).not.toMatch(/<script>|<script type=|on(click|load)=/);

    const form = passkeyForm<CreationOptions & { attestation: string; authenticatorSelection: Record<string, string> }>(page.text, 'create');
    expect(form.action).toMatch(/\/passkey-register$/);
    expect(form.options.rp.id).toBe('localhost');
    expect(form.options.attestation).toBe('none');
    expect(form.options.authenticatorSelection).toMatchObject({ residentKey: 'preferred', userVerification: 'preferred' });
    expect(form.options.user.name).not.toContain(person.pid);
    // The options are HTML-escaped in the attribute: no raw quote ends it early.
    expect(page.text).toMatch(/data-options="\{&quot;/);

    const key = new SoftAuthenticator();
    const codes = await postPasskey(browser, form, key.create(form.options, origin));
    expect([...codes.text.matchAll(/data-testid="recovery-code"/g)]).toHaveLength(10);
    const back = await toPortal(browser, await submit(browser, codes, { next: 'continue' }));
    const claims = (await redeem(config, req, back.location!)).claims()!;
    expect(claims.acr).toBe(SUBSTANTIAL);
    expect(claims.amr).toEqual(['pwd', 'hwk', 'mfa']);

    // One confirmed passkey; the authenticator-app seed offered on the same page was dropped.
    const stored = await srv.system.store.factors.listForPerson(person.id);
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ type: 'passkey', confirmed: true, credentialId: key.credentialIds[0], signCount: 0 });
  });

  it('a refused registration keeps the enrolment page open with an error and a new challenge', async () => {
    const person = await srv.addPerson();
    now += MINUTE;
    const browser = new Browser(srv.issuer);
    const page = await password(browser, await authRequest(config, portal, { acr_values: SUBSTANTIAL }), person);
    const form = passkeyForm<CreationOptions>(page.text, 'create');
    const phished = await postPasskey(browser, form, new SoftAuthenticator().create(form.options, 'https://localhost.evil.example'));
    expect(phished.status).toBe(400);
    expect(alertText(phished.text)).toMatch(/Không đăng ký được/);
    const again = passkeyForm<CreationOptions>(phished.text, 'create');
    expect(again.options.challenge).not.toBe(form.options.challenge);
    // The earlier challenge is gone: an answer to it is refused even from the right origin.
    const stale = await postPasskey(browser, again, new SoftAuthenticator().create(form.options, origin));
    expect(stale.status).toBe(400);
    expect(await srv.system.store.factors.listForPerson(person.id)).not.toContainEqual(expect.objectContaining({ type: 'passkey' }));
  });
});

describe('signing in with a passkey', () => {
  it('password + passkey gives substantial with hwk for a device-bound key, and swk for a synced one', async () => {
    const person = await srv.addPerson();
    now += MINUTE;
    const key = new SoftAuthenticator();
    await enrolPasskey(key, person);
    now += MINUTE;

    const { browser, req, page, form } = await toPasskeyPage(person, { acr_values: LOW });
    expect(page.text).toContain('Dùng khóa truy cập (passkey)');
    expect(page.text).not.toContain('name="code"'); // no authenticator app: no code form
    expect(page.text).toContain('?method=recovery');
    expect(form.options.allowCredentials!.map((c) => c.id)).toEqual(key.credentialIds);
    expect((form.options as { userVerification?: string }).userVerification).toBe('preferred');
    const back = await toPortal(browser, await postPasskey(browser, form, key.get(form.options, origin)));
    const claims = (await redeem(config, req, back.location!)).claims()!;
    expect(claims.acr).toBe(SUBSTANTIAL);
    expect(claims.amr).toEqual(['pwd', 'hwk', 'mfa']);

    const synced = await srv.addPerson();
    const phone = new SoftAuthenticator({ backedUp: true });
    expect((await enrolPasskey(phone, synced)).amr).toEqual(['pwd', 'swk', 'mfa']);
    now += MINUTE;
    const second = await toPasskeyPage(synced);
    const back2 = await toPortal(second.browser, await postPasskey(second.browser, second.form, phone.get(second.form.options, origin)));
    expect((await redeem(config, second.req, back2.location!)).claims()!.amr).toEqual(['pwd', 'swk', 'mfa']);
  });

  it('a level-2 person gets substantial in the sign-in that registered the key (it rested on the password), high at a later one', async () => {
    const person = await srv.addPerson({ level: '2' });
    now += MINUTE;
    const key = new SoftAuthenticator();
    expect((await enrolPasskey(key, person)).acr).toBe(SUBSTANTIAL);
    now += 20 * MINUTE;
    const { browser, req, form } = await toPasskeyPage(person, { acr_values: HIGH });
    const back = await toPortal(browser, await postPasskey(browser, form, key.get(form.options, origin)));
    const claims = (await redeem(config, req, back.location!)).claims()!;
    expect(claims.acr).toBe(HIGH);
    expect(claims.amr).toEqual(['pwd', 'hwk', 'mfa']);
  });

  it('refuses a cloned authenticator (counter not increasing) with a clear page and no token', async () => {
    const person = await srv.addPerson();
    now += MINUTE;
    const key = new SoftAuthenticator();
    await enrolPasskey(key, person);
    const copy = key.clone();
    now += MINUTE;
    const first = await toPasskeyPage(person);
    await toPortal(first.browser, await postPasskey(first.browser, first.form, key.get(first.form.options, origin)));

    const second = await toPasskeyPage(person);
    const refused = await postPasskey(second.browser, second.form, copy.get(second.form.options, origin));
    expect(refused.status).toBe(400);
    expect(refused.location).toBeNull();
    expect(alertText(refused.text)).toMatch(/sao chép/);
    expect(refused.text).not.toContain('name="decision"');
    const [factor] = await srv.system.store.factors.listForPerson(person.id);
    expect(factor!.signCount).toBe(1);

    // The genuine key still works on the page shown again.
    const retry = passkeyForm<RequestOptions>(refused.text, 'get');
    await toPortal(second.browser, await postPasskey(second.browser, retry, key.get(retry.options, origin)));
  });

  it('refuses another person\'s passkey', async () => {
    const alice = await srv.addPerson();
    const binh = await srv.addPerson();
    now += MINUTE;
    const aliceKey = new SoftAuthenticator();
    const binhKey = new SoftAuthenticator();
    await enrolPasskey(aliceKey, alice);
    await enrolPasskey(binhKey, binh);
    now += MINUTE;
    // Someone with Alice's password and Binh's passkey.
    const { browser, form } = await toPasskeyPage(alice);
    const res = await postPasskey(browser, form, binhKey.get(form.options, origin, { credentialId: binhKey.credentialIds[0]! }));
    expect(res.status).toBe(400);
    expect(res.location).toBeNull();
    expect(alertText(res.text)).toMatch(/chưa được đăng ký cho tài khoản của bạn/);
  });

  it('refuses an assertion for another origin, an answer to another sign-in\'s challenge, and the same answer posted twice', async () => {
    const person = await srv.addPerson();
    now += MINUTE;
    const key = new SoftAuthenticator();
    await enrolPasskey(key, person);
    now += MINUTE;

    const { browser, form } = await toPasskeyPage(person);
    const phished = await postPasskey(browser, form, key.get(form.options, 'https://login-dinhdanh.example'));
    expect(phished.status).toBe(400);
    expect(phished.location).toBeNull();
    expect(alertText(phished.text)).toMatch(/Không xác thực được/);

    const other = await toPasskeyPage(person);
    const foreign = await postPasskey(browser, passkeyForm(phished.text, 'get'), key.get(other.form.options, origin));
    expect(foreign.status).toBe(400);
    expect(foreign.location).toBeNull();

    const page = passkeyForm<RequestOptions>(foreign.text, 'get');
    const answer = key.get(page.options, origin);
    await toPortal(browser, await postPasskey(browser, page, answer));
    const twice = await postPasskey(browser, page, answer);
    expect(twice.status).toBe(400);
    expect(twice.location).toBeNull();
  });

  it('a challenge older than five minutes is refused', async () => {
    const person = await srv.addPerson();
    now += MINUTE;
    const key = new SoftAuthenticator();
    await enrolPasskey(key, person);
    now += MINUTE;
    const { browser, form } = await toPasskeyPage(person);
    now += 6 * MINUTE;
    const res = await postPasskey(browser, form, key.get(form.options, origin));
    expect(res.status).toBe(400);
    expect(alertText(res.text)).toMatch(/hết hạn/);
  });

  it('the passkey post is a form like the others: CSRF, same origin, form encoding and a strict schema', async () => {
    const person = await srv.addPerson();
    now += MINUTE;
    const key = new SoftAuthenticator();
    await enrolPasskey(key, person);
    now += MINUTE;
    const { browser, form } = await toPasskeyPage(person);
    const answer = JSON.stringify(key.get(form.options, origin));

    expect((await browser.post(form.action, { response: answer })).status).toBe(403);
    expect((await browser.post(form.action, { _csrf: 'forged', response: answer })).status).toBe(403);
    expect((await browser.post(form.action, { _csrf: form.csrf, response: answer }, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    const json = await browser.request(form.action, {
      method: 'POST', body: JSON.stringify({ _csrf: form.csrf, response: answer }),
      headers: { 'content-type': 'application/json', origin, 'sec-fetch-site': 'same-origin' },
    });
    expect(json.status).toBe(415);
    expect((await browser.post(form.action, { _csrf: form.csrf, response: answer, 'response[$ne]': 'x' })).status).toBe(400);
    expect((await browser.post(form.action, { _csrf: form.csrf, response: 'x'.repeat(12_001) })).status).toBe(400);

    // Malformed answers get the page again with an error, never a server error.
    for (const bad of ['', 'not json', '{"id":1}', '[]', 'null']) {
      const page = await browser.get(url(`/interaction/${/\/interaction\/([^/]+)\//.exec(form.action)![1]}`));
      const fresh = passkeyForm(page.text, 'get');
      const res = await postPasskey(browser, fresh, bad);
      expect(res.status).toBe(400);
      expect(alertText(res.text)).toBeTruthy();
    }
    // Nothing above was a success: the sign-in is still waiting for the second factor.
    const page = await browser.get(url(`/interaction/${/\/interaction\/([^/]+)\//.exec(form.action)![1]}`));
    const last = passkeyForm<RequestOptions>(page.text, 'get');
    await toPortal(browser, await postPasskey(browser, last, key.get(last.options, origin)));
  });

  it('locks passkey sign-in after 10 failures for 10 minutes', async () => {
    const person = await srv.addPerson();
    now += MINUTE;
    const key = new SoftAuthenticator();
    await enrolPasskey(key, person);
    now += MINUTE;
    const start = await toPasskeyPage(person);
    let current = start.page;
    for (let i = 0; i < 10; i += 1) {
      current = await postPasskey(start.browser, passkeyForm(current.text, 'get'), '{}');
      expect(current.status).toBe(400);
    }
    const locked = await postPasskey(start.browser, passkeyForm(current.text, 'get'), key.get(passkeyForm<RequestOptions>(current.text, 'get').options, origin));
    expect(locked.status).toBe(429);
    expect(alertText(locked.text)).toMatch(/10 phút/);
    expect(locked.location).toBeNull();

    now += 10 * MINUTE;
    const again = await toPasskeyPage(person);
    await toPortal(again.browser, await postPasskey(again.browser, again.form, key.get(again.form.options, origin)));
  });
});

describe('a person with both an authenticator app and a passkey', () => {
  it('sees both on the second-factor page, and either works; without JavaScript the code form still does', async () => {
    const person = await srv.addPerson();
    now += MINUTE;
    // Authenticator app through the sign-in enrolment (the page's first form, as without JavaScript).
    const browser = new Browser(srv.issuer);
    const req = await authRequest(config, portal, { acr_values: SUBSTANTIAL });
    const enrol = await password(browser, req, person);
    const secret = totpSecret(enrol.text);
    const codes = await submit(browser, enrol, { code: await totpCode(secret, now) });
    await toPortal(browser, await submit(browser, codes, { next: 'continue' }));
    // A passkey added directly through the service (as the account page would).
    const key = new SoftAuthenticator({ backedUp: true });
    const passkeys = createPasskeyService({ factors: srv.system.store.factors, counters: srv.system.store.counters, rpId: 'localhost', rpName: 'dinhdanh', origin, now: () => now });
    const found = await srv.system.store.persons.findById(person.id);
    const { options, challenge } = await passkeys.registrationOptions(found!, await srv.system.store.factors.listForPerson(person.id));
    expect((await passkeys.finishRegistration(person.id, key.create(options, origin), challenge, 'Điện thoại')).ok).toBe(true);

    now += MINUTE;
    const withKey = await toPasskeyPage(person);
    expect(withKey.page.text).toContain('name="code"');
    expect(withKey.page.text).toContain('Mã từ ứng dụng xác thực');
    const back = await toPortal(withKey.browser, await postPasskey(withKey.browser, withKey.form, key.get(withKey.form.options, origin)));
    expect((await redeem(config, withKey.req, back.location!)).claims()!.amr).toEqual(['pwd', 'swk', 'mfa']);

    now += MINUTE;
    const withCode = await toPasskeyPage(person);
    const codeForm = /<form method="post" action="([^"]+\/second-factor)"/.exec(withCode.page.text)![1]!;
    const res = await withCode.browser.post(url(decodeEntities(codeForm)), {
      _csrf: hiddenField(withCode.page.text, '_csrf'), method: 'totp', code: await totpCode(secret, now),
    });
    const back2 = await toPortal(withCode.browser, res);
    expect((await redeem(config, withCode.req, back2.location!)).claims()!.amr).toEqual(['pwd', 'otp', 'mfa']);
  });
});

describe('the script', () => {
  it('is served from our origin as JavaScript, cacheable, under the same CSP', async () => {
    const res = await new Browser(srv.issuer).request(url('/static/webauthn.js'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.text).toContain('navigator.credentials');
    const page = await new Browser(srv.issuer).request(url('/'));
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
  });
});
