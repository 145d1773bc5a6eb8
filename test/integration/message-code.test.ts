/**
 * One-time codes by SMS or e-mail at sign-in (development outbox): a second step for
 * `substantial`, never for `high`; each code works once; the factor change notices reach the
 * contacts on file and the codes never reach the log.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type * as oidc from 'openid-client';
import { generate } from 'otplib';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, alertText, formAction, hiddenField, type Response } from '../helpers/browser.js';
import { authRequest, discover, redeem, type AuthRequest, type Portal } from '../helpers/rp.js';

const MINUTE = 60_000;
const SUBSTANTIAL = 'urn:dinhdanh:loa:substantial';
const HIGH = 'urn:dinhdanh:loa:high';
let now = Date.now();
let srv: TestServer;
let portal: Portal;
let config: oidc.Configuration;

beforeAll(async () => {
  srv = await startTestServer({ now: () => now });
  portal = await srv.addPortal();
  config = await discover(srv.issuer, portal);
});
afterAll(async () => { await srv.close(); });

const url = (p: string) => new URL(p, srv.issuer).href;
const outbox = () => {
  const file = path.join(srv.system.config.outboxDir, 'outbox.jsonl');
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { channel: string; to: string; text: string }) : [];
};
const lastCodeTo = (to: string) => {
  const m = outbox().filter((e) => e.to === to).at(-1);
  return /(\d{6})/.exec(m?.text ?? '')?.[1];
};

async function password(browser: Browser, req: AuthRequest, person: { pid: string; password: string }): Promise<Response> {
  const page = await browser.get(req.url.href);
  return browser.post(url(formAction(page.text)), { _csrf: hiddenField(page.text, '_csrf'), identifier: person.pid, password: person.password });
}

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

    const wrong = await browser.post(url(formAction(codePage.text)), { _csrf: hiddenField(codePage.text, '_csrf'), code: code === '000000' ? '111111' : '000000' });
    expect(wrong.status).toBe(400);
    let done = await browser.post(url(formAction(wrong.text)), { _csrf: hiddenField(wrong.text, '_csrf'), code: code! });
    if (done.text.includes('name="decision"')) done = await browser.post(url(formAction(done.text)), { _csrf: hiddenField(done.text, '_csrf'), decision: 'allow' });
    const claims = (await redeem(config, req, done.location!)).claims()!;
    expect(claims.acr).toBe(SUBSTANTIAL);
    expect(claims.amr).toEqual(['pwd', 'sms', 'mfa']);

    // The same code in another sign-in is refused.
    const again = new Browser(srv.issuer);
    const page2 = await password(again, await authRequest(config, portal, { acr_values: SUBSTANTIAL }), person);
    const send2 = sendForm(page2.text, 'sms');
    now += 2 * MINUTE; // past the one-per-minute sending limit
    const codePage2 = await again.post(url(send2.action), { _csrf: send2.csrf, channel: 'sms' });
    const reused = await again.post(url(formAction(codePage2.text)), { _csrf: hiddenField(codePage2.text, '_csrf'), code: code! });
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
    const secret = /data-testid="totp-secret">([A-Z2-7]+)</.exec(page.text)![1]!;
    await browser.post(url(formAction(page.text)), { _csrf: hiddenField(page.text, '_csrf'), code: await generate({ secret, epoch: Math.floor(now / 1000) }) });
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
