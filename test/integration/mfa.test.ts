/**
 * Second factors and levels of assurance, through the pages with openid-client as the portal and an
 * injected clock: enrolment inside the sign-in, every sign-in asking for the factor once enrolled,
 * replayed and parallel codes, lockout and its end, step-up, identity level too low, `prompt=none`
 * below the level, and recovery codes used once.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type * as oidc from 'openid-client';
import type { TestServer } from '../helpers/harness.js';
import { Browser, alertText, hiddenField } from '../helpers/browser.js';
import { authRequest, redeem, type Portal } from '../helpers/rp.js';
import { HIGH, LOW, MINUTE, SUBSTANTIAL, TOTP_SECRET, pageSteps, shownRecoveryCodes, startWithPortal, totpCode, totpSecret, type Person } from '../helpers/pages.js';

let now = Date.now();
let srv: TestServer, portal: Portal, config: oidc.Configuration;
beforeAll(async () => { ({ srv, portal, config } = await startWithPortal({ now: () => now })); });
afterAll(async () => { await srv.close(); });

const totp = (secret: string) => totpCode(secret, now);
const { url, password, submit, toPortal } = pageSteps({ server: () => srv, portal: () => portal, expectLoginForm: true });

/** Enrols an authenticator app inside a sign-in that asks for `substantial`; returns the seed and the ID token claims. */
async function enrol(browser: Browser, person: Person) {
  const req = await authRequest(config, portal, { acr_values: SUBSTANTIAL });
  const page = await password(browser, req, person);
  expect(page.status).toBe(200);
  const secret = TOTP_SECRET.exec(page.text)?.[1];
  expect(secret).toBeDefined();
  expect(page.text).toMatch(/<img class="qr" src="data:image\/svg\+xml;base64,/);
  const codes = await submit(browser, page, { code: await totp(secret!) });
  const shown = shownRecoveryCodes(codes.text);
  expect(shown).toHaveLength(10);
  const back = await toPortal(browser, await submit(browser, codes, { next: 'continue' }));
  const tokens = await redeem(config, req, back.location!);
  return { secret: secret!, recoveryCodes: shown, claims: tokens.claims()! };
}

describe('a sign-in left open on a page', () => {
  // What a journey proved (the password) must still hold when its next page is answered: after the
  // owner changed the password, or said "this wasn't me", an enrolment page kept open by whoever
  // typed the old password binds nothing and signs nobody in (NIST SP 800-63B §6.1.2.3).
  it.each([
    ['the password changed', async (id: string) => {
      const p = (await srv.system.store.persons.findById(id))!;
      await srv.system.store.persons.updatePasswordHash(id, p.passwordHash, await srv.system.hasher.hash('một mật khẩu hoàn toàn mới của chủ'));
    }],
    ['"this wasn\'t me" was pressed', async (id: string) => {
      await srv.system.store.persons.setPasswordResetRequired(id, true);
    }],
    ['everything was ended (a lock, a reset)', async (id: string) => {
      await srv.system.access.endEverything(id, 'not_me');
    }],
  ])('does not finish once %s', async (_label, change) => {
    const person = await srv.addPerson();
    const intruder = new Browser(srv.issuer);
    const req = await authRequest(config, portal, { acr_values: SUBSTANTIAL });
    const page = await password(intruder, req, person);
    const secret = totpSecret(page.text);
    await new Promise((r) => setTimeout(r, 5)); // the real clock, which access revocation uses, moves on
    await change(person.id);
    const answer = await submit(intruder, page, { code: await totp(secret) });
    expect(answer.status).toBe(400);
    expect(answer.location ?? null).toBeNull();
    expect((await srv.system.store.factors.listForPerson(person.id)).filter((f) => f.confirmed)).toEqual([]);
  });
});

describe('enrolment inside the sign-in', () => {
  it('takes a person without a second factor through enrolment to an ID token with acr substantial naming both factors', async () => {
    const person = await srv.addPerson();
    const browser = new Browser(srv.issuer);
    const req = await authRequest(config, portal, { acr_values: SUBSTANTIAL });
    const page = await password(browser, req, person);
    expect(page.text).toContain('data-testid="totp-secret"');
    const secret = totpSecret(page.text);

    // A wrong first code keeps the enrolment open with an error; the seed stays the same.
    const wrong = await submit(browser, page, { code: '000000' === await totp(secret) ? '111111' : '000000' });
    expect(wrong.status).toBe(400);
    expect(alertText(wrong.text)).toBeTruthy();
    expect(wrong.text).toContain(secret);

    const codes = await submit(browser, wrong, { code: await totp(secret) });
    expect([...codes.text.matchAll(/data-testid="recovery-code"/g)]).toHaveLength(10);
    const back = await toPortal(browser, await submit(browser, codes, { next: 'continue' }));
    const claims = (await redeem(config, req, back.location!)).claims()!;
    expect(claims.acr).toBe(SUBSTANTIAL);
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);

    const stored = await srv.system.store.factors.listForPerson(person.id);
    expect(stored).toHaveLength(1);
    expect(stored[0]!.confirmed).toBe(true);
    expect(stored[0]!.secretCiphertext).not.toContain(secret);
  });

  it('gives a level-2 person substantial in the sign-in that enrolled the app (the binding rested on the password), high at the next', async () => {
    const person = await srv.addPerson({ level: '2' });
    now += MINUTE;
    const { claims, secret } = await enrol(new Browser(srv.issuer), person);
    expect(claims.acr).toBe(SUBSTANTIAL);
    now += MINUTE;
    const browser = new Browser(srv.issuer);
    const req = await authRequest(config, portal, { acr_values: HIGH });
    const page = await password(browser, req, person);
    const back = await toPortal(browser, await submit(browser, page, { code: await totp(secret) }));
    expect((await redeem(config, req, back.location!)).claims()!.acr).toBe(HIGH);
  });
});

describe('an enrolment page left open', () => {
  it('cannot bind its authenticator once the person has added one elsewhere, whatever the page is sent', async () => {
    const person = await srv.addPerson();
    now += MINUTE;
    // Someone holding only the password opens a substantial sign-in and keeps the enrolment page.
    const intruder = new Browser(srv.issuer);
    const req = await authRequest(config, portal, { acr_values: SUBSTANTIAL });
    const page = await password(intruder, req, person);
    const intruderSeed = totpSecret(page.text);

    // The person adds an authenticator app in their account area.
    const owner = new Browser(srv.issuer);
    let account = await owner.get(url('/account/security'));
    account = await submit(owner, account, { identifier: person.pid, password: person.password });
    const enrolPage = await owner.post(url('/account/security/totp'), { _csrf: hiddenField(account.text, '_csrf'), current_password: person.password });
    const ownerSeed = totpSecret(enrolPage.text);
    const confirmed = await owner.post(url('/account/security/totp/confirm'), {
      _csrf: hiddenField(enrolPage.text, '_csrf'), factor: hiddenField(enrolPage.text, 'factor'), code: await totp(ownerSeed),
    });
    expect(shownRecoveryCodes(confirmed.text)).toHaveLength(10);

    // The intruder's page is submitted with a right code for its own seed — and, if the page
    // offers a new seed, with a right code for that one: refused, nothing bound, and the sign-in
    // asks for the person's factor instead.
    let answer = page;
    let seed = intruderSeed;
    for (let i = 0; i < 2; i += 1) {
      now += MINUTE;
      answer = await submit(intruder, answer, { code: await totp(seed) });
      expect(answer.status).toBeLessThan(500);
      expect(answer.location).toBeNull();
      expect(shownRecoveryCodes(answer.text)).toHaveLength(0);
      if (!TOTP_SECRET.test(answer.text)) break;
      seed = totpSecret(answer.text);
    }
    expect(answer.text).not.toContain('data-testid="totp-secret"');
    expect(answer.text).toContain('name="code"');
    const factors = await srv.system.store.factors.listForPerson(person.id);
    expect(factors.filter((f) => f.confirmed)).toHaveLength(1);
    // The intruder's code does not pass as the second factor either.
    const again = await submit(intruder, answer, { code: await totp(intruderSeed) });
    expect(again.location).toBeNull();
    expect(again.status).toBe(400);
  });
});

describe('once enrolled', () => {
  it('every sign-in asks for the second factor, even when the portal asks only for low', async () => {
    const person = await srv.addPerson();
    now += MINUTE;
    const { secret } = await enrol(new Browser(srv.issuer), person);
    now += MINUTE;
    const browser = new Browser(srv.issuer);
    const req = await authRequest(config, portal, { acr_values: LOW });
    const page = await password(browser, req, person);
    expect(page.status).toBe(200);
    expect(page.text).toContain('name="code"');
    expect(page.text).not.toContain('name="identifier"');
    const back = await toPortal(browser, await submit(browser, page, { code: await totp(secret) }));
    const claims = (await redeem(config, req, back.location!)).claims()!;
    expect(claims.acr).toBe(SUBSTANTIAL);
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
  });

  it('refuses a replayed code with a clear message and no token', async () => {
    const person = await srv.addPerson();
    now += MINUTE;
    const { secret } = await enrol(new Browser(srv.issuer), person);
    now += MINUTE;
    const code = await totp(secret);
    const first = new Browser(srv.issuer);
    const firstPage = await password(first, await authRequest(config, portal), person);
    await toPortal(first, await submit(first, firstPage, { code }));

    const second = new Browser(srv.issuer);
    const secondPage = await password(second, await authRequest(config, portal), person);
    const replay = await submit(second, secondPage, { code });
    expect(replay.status).toBe(400);
    expect(alertText(replay.text)).toMatch(/đã được dùng/);
    expect(replay.location).toBeNull();
  });

  it('accepts one of two parallel submissions of the same code', async () => {
    const person = await srv.addPerson();
    now += MINUTE;
    const { secret } = await enrol(new Browser(srv.issuer), person);
    now += MINUTE;
    const browsers = [new Browser(srv.issuer), new Browser(srv.issuer)];
    const pages = await Promise.all(browsers.map(async (b) => password(b, await authRequest(config, portal), person)));
    const code = await totp(secret);
    const answers = await Promise.all(browsers.map((b, i) => submit(b, pages[i]!, { code })));
    const passed = answers.filter((r) => r.status === 303 || r.text.includes('name="decision"'));
    expect(passed).toHaveLength(1);
    expect(answers.filter((r) => r.status === 400)).toHaveLength(1);
  });

  it('locks code entry after 10 wrong codes for 10 minutes, then accepts a right one', async () => {
    const person = await srv.addPerson();
    now += MINUTE;
    const { secret } = await enrol(new Browser(srv.issuer), person);
    now += MINUTE;
    const browser = new Browser(srv.issuer);
    const req = await authRequest(config, portal);
    let page = await password(browser, req, person);
    const right = await totp(secret);
    const wrongCode = right === '123456' ? '654321' : '123456';
    for (let i = 0; i < 10; i += 1) {
      page = await submit(browser, page, { code: wrongCode });
      expect(page.status).toBe(400);
    }
    const locked = await submit(browser, page, { code: right });
    expect(locked.status).toBe(429);
    expect(alertText(locked.text)).toMatch(/10 phút/);
    expect(locked.location).toBeNull();

    now += 10 * MINUTE;
    const again = new Browser(srv.issuer);
    const req2 = await authRequest(config, portal);
    const page2 = await password(again, req2, person);
    const back = await toPortal(again, await submit(again, page2, { code: await totp(secret) }));
    expect((await redeem(config, req2, back.location!)).claims()!.acr).toBe(SUBSTANTIAL);
  });
});

describe('levels and sessions', () => {
  it('steps a low session up to substantial through enrolment, asking for the password first (binding a first factor needs it)', async () => {
    const person = await srv.addPerson();
    now += MINUTE;
    const browser = new Browser(srv.issuer);
    const lowReq = await authRequest(config, portal);
    await toPortal(browser, await password(browser, lowReq, person));

    // prompt=none cannot step up silently.
    const silent = await browser.get((await authRequest(config, portal, { acr_values: SUBSTANTIAL, prompt: 'none' })).url.href);
    expect(new URL(silent.location!).searchParams.get('error')).toBe('login_required');

    const req = await authRequest(config, portal, { acr_values: SUBSTANTIAL });
    const page = await password(browser, req, person);
    expect(page.status).toBe(200);
    const secret = totpSecret(page.text);
    const codes = await submit(browser, page, { code: await totp(secret) });
    const back = await toPortal(browser, await submit(browser, codes, { next: 'continue' }));
    expect((await redeem(config, req, back.location!)).claims()!.acr).toBe(SUBSTANTIAL);
  });

  it('high needs a second factor in the last 15 minutes: an older session steps up with the code only', async () => {
    const person = await srv.addPerson({ level: '2' });
    now += MINUTE;
    const browser = new Browser(srv.issuer);
    const { secret } = await enrol(browser, person);

    // The enrolling session is substantial: asking for high steps up with a code, no password.
    now += MINUTE;
    const first = await authRequest(config, portal, { acr_values: HIGH });
    const stepUp = await browser.get(first.url.href);
    expect(stepUp.text).toContain('name="code"');
    expect(stepUp.text).not.toContain('name="identifier"');
    const firstBack = await toPortal(browser, await submit(browser, stepUp, { code: await totp(secret) }));
    expect((await redeem(config, first, firstBack.location!)).claims()!.acr).toBe(HIGH);

    now += 10 * MINUTE;
    const fresh = await browser.get((await authRequest(config, portal, { acr_values: HIGH, prompt: 'none' })).url.href);
    expect(new URL(fresh.location!).searchParams.get('code')).toBeTruthy();

    now += 6 * MINUTE; // 16 minutes after the second factor
    const stale = await browser.get((await authRequest(config, portal, { acr_values: HIGH, prompt: 'none' })).url.href);
    expect(new URL(stale.location!).searchParams.get('error')).toBe('login_required');

    const req = await authRequest(config, portal, { acr_values: HIGH });
    const page = await browser.get(req.url.href);
    expect(page.text).toContain('name="code"');
    expect(page.text).not.toContain('name="identifier"');
    const back = await toPortal(browser, await submit(browser, page, { code: await totp(secret) }));
    const claims = (await redeem(config, req, back.location!)).claims()!;
    expect(claims.acr).toBe(HIGH);
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa']);
  });

  it('a level-1 person asked for high gets the page on raising the level and the portal unmet_authentication_requirements', async () => {
    const person = await srv.addPerson();
    now += MINUTE;
    const browser = new Browser(srv.issuer);
    const req = await authRequest(config, portal, { acr_values: HIGH });
    const page = await password(browser, req, person);
    expect(page.status).toBe(200);
    expect(alertText(page.text)).toBeTruthy();
    const link = /href="(\/interaction\/[^"]+reason=unmet)"/.exec(page.text)![1]!;
    const res = await browser.get(url(link.replace(/&amp;/g, '&')));
    const params = new URL(res.location!).searchParams;
    expect(params.get('error')).toBe('unmet_authentication_requirements');
    expect(params.get('code')).toBeNull();
  });
});

describe('recovery codes', () => {
  it('sign in once with a recovery code, are prompted to make new ones, and the code never works again', async () => {
    const person = await srv.addPerson();
    now += MINUTE;
    const { recoveryCodes } = await enrol(new Browser(srv.issuer), person);
    now += MINUTE;
    const browser = new Browser(srv.issuer);
    const req = await authRequest(config, portal);
    const page = await password(browser, req, person);
    const recoveryPage = await browser.get(url(/href="([^"]*\?method=recovery)"/.exec(page.text)![1]!));
    expect(recoveryPage.text).toContain('value="recovery"');
    const used = await submit(browser, recoveryPage, { method: 'recovery', code: recoveryCodes[0]!.toLowerCase() });
    expect(used.status).toBe(200);
    expect(alertText(used.text)).toMatch(/9/);
    expect(used.text).toContain('value="regenerate"');
    const back = await toPortal(browser, await submit(browser, used, { next: 'continue' }));
    expect((await redeem(config, req, back.location!)).claims()!.acr).toBe(SUBSTANTIAL);

    const again = new Browser(srv.issuer);
    const page2 = await password(again, await authRequest(config, portal), person);
    const recovery2 = await again.get(url(/href="([^"]*\?method=recovery)"/.exec(page2.text)![1]!));
    const refused = await submit(again, recovery2, { method: 'recovery', code: recoveryCodes[0]! });
    expect(refused.status).toBe(400);
    expect(refused.location).toBeNull();
  });
});

describe('review regressions', () => {
  it('a high sign-in older than 15 minutes is reported as substantial to a portal that asks for less', async () => {
    const person = await srv.addPerson({ level: '2' });
    now += MINUTE;
    const browser = new Browser(srv.issuer);
    const { secret } = await enrol(browser, person);
    now += MINUTE;
    const again = new Browser(srv.issuer);
    const req2 = await authRequest(config, portal, { acr_values: HIGH });
    const page2 = await password(again, req2, person);
    const back = await toPortal(again, await submit(again, page2, { code: await totp(secret) }));
    expect((await redeem(config, req2, back.location!)).claims()!.acr).toBe(HIGH);

    now += 16 * MINUTE;
    const later = await authRequest(config, portal, { acr_values: SUBSTANTIAL });
    const res = await again.get(later.url.href);
    expect(res.status).toBe(303);
    expect((await redeem(config, later, res.location!)).claims()!.acr).toBe(SUBSTANTIAL);
  });

  it('one guess budget for every code method: a lock reached with app codes also stops recovery codes', async () => {
    const person = await srv.addPerson();
    now += MINUTE;
    const { secret, recoveryCodes } = await enrol(new Browser(srv.issuer), person);
    now += MINUTE;
    const browser = new Browser(srv.issuer);
    let page = await password(browser, await authRequest(config, portal), person);
    const right = await totp(secret);
    const wrongCode = right === '123456' ? '654321' : '123456';
    for (let i = 0; i < 10; i += 1) page = await submit(browser, page, { code: wrongCode });
    const recoveryPage = await browser.get(url(/href="([^"]*\?method=recovery)"/.exec(page.text)![1]!));
    const refused = await submit(browser, recoveryPage, { method: 'recovery', code: recoveryCodes[0]! });
    expect(refused.status).toBe(429);
    expect(await srv.system.store.recoveryCodes.countUnused(person.id)).toBe(10);
  });

  it('the 100th consecutive wrong code locks code entry for good (until an operator resets the factors)', async () => {
    const person = await srv.addPerson();
    now += MINUTE;
    const { secret } = await enrol(new Browser(srv.issuer), person);
    for (let i = 0; i < 100; i += 1) await srv.system.store.counters.increment(`mfa-fail:${person.id}`, 30 * 24 * 60 * MINUTE, now, { slide: true });
    now += 60 * MINUTE;
    const browser = new Browser(srv.issuer);
    const page = await password(browser, await authRequest(config, portal), person);
    const res = await submit(browser, page, { code: await totp(secret) });
    expect(res.status).toBe(429);
    expect(res.location).toBeNull();
  });
});

describe('step-up journeys rest on a live session', () => {
  it('a step-up page left open past the idle limit cannot be completed with the code alone', async () => {
    const person = await srv.addPerson({ level: '2' });
    now += MINUTE;
    const browser = new Browser(srv.issuer);
    const { secret } = await enrol(browser, person);
    now += MINUTE;
    const page = await browser.get((await authRequest(config, portal, { acr_values: HIGH })).url.href);
    expect(page.text).toContain('name="code"');
    now += 31 * MINUTE; // the SSO session went idle while the page was open
    const late = await submit(browser, page, { code: await totp(secret) });
    expect(late.status).toBe(400);
    expect(late.location).toBeNull();
    const silent = await browser.get((await authRequest(config, portal, { prompt: 'none' })).url.href);
    expect(new URL(silent.location!).searchParams.get('error')).toBe('login_required');
  });
});
