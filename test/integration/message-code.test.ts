/**
 * One-time codes by SMS or e-mail at sign-in (development outbox): a second step for
 * `substantial`, never for `high`; each code works once; the factor change notices reach the
 * contacts on file and the codes never reach the log.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type * as oidc from 'openid-client';
import type { TestServer } from '../helpers/harness.js';
import { Browser, alertText, formAction, hiddenField } from '../helpers/browser.js';
import { authRequest, redeem, type Portal } from '../helpers/rp.js';
import { HIGH, MINUTE, SUBSTANTIAL, pageSteps, startWithPortal, totpCode, totpSecret } from '../helpers/pages.js';

let now = Date.now();
let srv: TestServer, portal: Portal, config: oidc.Configuration;
beforeAll(async () => { ({ srv, portal, config } = await startWithPortal({ now: () => now })); });
afterAll(async () => { await srv.close(); });

const { url, password, submit } = pageSteps({ server: () => srv });
const outbox = () => {
  const file = path.join(srv.system.config.outboxDir, 'outbox.jsonl');
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { channel: string; to: string; text: string }) : [];
};
const lastCodeTo = (to: string) => {
  const m = outbox().filter((e) => e.to === to).at(-1);
  return /(\d{6})/.exec(m?.text ?? '')?.[1];
};

function sendForm(html: string, channel: string): { action: string; csrf: string } {
  const m = new RegExp(`<form method="post" action="([^"]*send-code)"[^>]*>\\s*<input type="hidden" name="_csrf" value="([^"]*)">\\s*<input type="hidden" name="channel" value="${channel}">`).exec(html);
  if (!m) throw new Error(`no send form for ${channel}`);
  return { action: m[1]!, csrf: m[2]! };
}

describe('codes by message at sign-in', () => {
  it('a person without a factor reaches substantial with a code by SMS; the code works once', async () => {
    const person = await srv.addPerson({ phone: '0912345678' });
    now += MINUTE;
    const browser = new Browser(srv.issuer);
    const req = await authRequest(config, portal, { acr_values: SUBSTANTIAL });
    const enrol = await password(browser, req, person);
    expect(enrol.text).toContain('+84 *** *** 678');
    const send = sendForm(enrol.text, 'sms');
    const codePage = await browser.post(url(send.action), { _csrf: send.csrf, channel: 'sms' });
    expect(codePage.status).toBe(200);
    expect(codePage.text).toContain('name="code"');
    const code = lastCodeTo('+84912345678');
    expect(code).toMatch(/^\d{6}$/);

    const wrong = await submit(browser, codePage, { code: code === '000000' ? '111111' : '000000' });
    expect(wrong.status).toBe(400);
    let done = await submit(browser, wrong, { code: code! });
    if (done.text.includes('name="decision"')) done = await submit(browser, done, { decision: 'allow' });
    const claims = (await redeem(config, req, done.location!)).claims()!;
    expect(claims.acr).toBe(SUBSTANTIAL);
    expect(claims.amr).toEqual(['pwd', 'sms', 'mfa']);

    // The same code in another sign-in is refused.
    const again = new Browser(srv.issuer);
    const page2 = await password(again, await authRequest(config, portal, { acr_values: SUBSTANTIAL }), person);
    const send2 = sendForm(page2.text, 'sms');
    now += 2 * MINUTE; // past the one-per-minute sending limit
    const codePage2 = await again.post(url(send2.action), { _csrf: send2.csrf, channel: 'sms' });
    const reused = await submit(again, codePage2, { code: code! });
    expect(reused.status).toBe(400);
    expect(reused.location).toBeNull();
  });

  it('is not offered, and refused, when the portal asks for high', async () => {
    const person = await srv.addPerson({ level: '2', email: 'binh@example.vn' });
    now += MINUTE;
    const browser = new Browser(srv.issuer);
    const page = await password(browser, await authRequest(config, portal, { acr_values: HIGH }), person);
    expect(page.text).toContain('data-testid="totp-secret"');
    expect(page.text).not.toContain('send-code');
    const forged = await browser.post(url(formAction(page.text).replace(/\/enrol$/, '/send-code')), { _csrf: hiddenField(page.text, '_csrf'), channel: 'email' });
    expect(forged.status).toBe(400);
    expect(outbox().some((e) => e.to === 'binh@example.vn')).toBe(false);
  });

  it('tells the contacts on file when an authenticator is added', async () => {
    const person = await srv.addPerson({ email: 'chi@example.vn' });
    now += MINUTE;
    const browser = new Browser(srv.issuer);
    const page = await password(browser, await authRequest(config, portal, { acr_values: SUBSTANTIAL }), person);
    const secret = totpSecret(page.text);
    await submit(browser, page, { code: await totpCode(secret, now) });
    const notice = outbox().filter((e) => e.to === 'chi@example.vn').at(-1);
    expect(notice?.text).toMatch(/ứng dụng xác thực vừa được thêm/);
    expect(notice?.text).not.toContain(secret);
  });

  it('answers a sending burst with a clear limit, not an error', async () => {
    const person = await srv.addPerson({ phone: '0987654321' });
    now += MINUTE;
    const browser = new Browser(srv.issuer);
    const page = await password(browser, await authRequest(config, portal, { acr_values: SUBSTANTIAL }), person);
    const send = sendForm(page.text, 'sms');
    const first = await browser.post(url(send.action), { _csrf: send.csrf, channel: 'sms' });
    expect(first.status).toBe(200);
    const second = await browser.post(url(send.action), { _csrf: send.csrf, channel: 'sms' });
    expect(second.status).toBe(429);
    expect(alertText(second.text)).toMatch(/chờ/);
  });
});

describe('security notices cannot be used to flood a contact', () => {
  it('sends at most 20 notices of factor changes an hour to one destination (an allowance of their own: cheaper notices cannot use it up)', async () => {
    const person = await srv.addPerson({ email: 'dung@example.vn' });
    for (let i = 0; i < 23; i += 1) {
      await srv.system.notices.factorAdded(person.id, 'totp', 'vi');
    }
    expect(outbox().filter((e) => e.to === 'dung@example.vn')).toHaveLength(20);
    now += 61 * MINUTE;
    await srv.system.notices.factorAdded(person.id, 'totp', 'vi');
    expect(outbox().filter((e) => e.to === 'dung@example.vn')).toHaveLength(21);
  });
});
