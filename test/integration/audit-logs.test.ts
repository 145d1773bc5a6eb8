/**
 * Security events for second factors are recorded (enrolment, success, failure, lockout, recovery
 * code use, message codes) and no log line ever carries a password, a code, a TOTP seed, a
 * recovery code or a full identification number (SECURITY.md #40).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type * as oidc from 'openid-client';
import { generate } from 'otplib';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { Browser, formAction, hiddenField, type Response } from '../helpers/browser.js';
import { authRequest, discover, type AuthRequest, type Portal } from '../helpers/rp.js';

const MINUTE = 60_000;
let now = Date.now();
const lines: string[] = [];
let srv: TestServer;
let portal: Portal;
let config: oidc.Configuration;

beforeAll(async () => {
  srv = await startTestServer({ now: () => now, logSink: (l) => { lines.push(l); } });
  portal = await srv.addPortal();
  config = await discover(srv.issuer, portal);
});
afterAll(async () => { await srv.close(); });

const url = (p: string) => new URL(p, srv.issuer).href;
const events = () => lines.map((l) => JSON.parse(l) as { event?: string }).filter((e) => e.event).map((e) => e.event!);

async function password(browser: Browser, req: AuthRequest, person: { pid: string; password: string }): Promise<Response> {
  const page = await browser.get(req.url.href);
  return browser.post(url(formAction(page.text)), { _csrf: hiddenField(page.text, '_csrf'), identifier: person.pid, password: person.password });
}

describe('second-factor audit and logs', () => {
  it('records the events and leaks no secret into any log line', async () => {
    const person = await srv.addPerson({ phone: '0911222333' });
    const secrets: string[] = [person.password, person.pid];
    now += MINUTE;

    // Enrol an authenticator app inside a sign-in.
    const browser = new Browser(srv.issuer);
    const enrol = await password(browser, await authRequest(config, portal, { acr_values: 'urn:dinhdanh:loa:substantial' }), person);
    const seed = /data-testid="totp-secret">([A-Z2-7]+)</.exec(enrol.text)![1]!;
    const firstCode = await generate({ secret: seed, epoch: Math.floor(now / 1000) });
    const codesPage = await browser.post(url(formAction(enrol.text)), { _csrf: hiddenField(enrol.text, '_csrf'), code: firstCode });
    const recoveryCodes = [...codesPage.text.matchAll(/data-testid="recovery-code">([A-Z0-9-]+)</g)].map((m) => m[1]!);
    secrets.push(seed, firstCode, ...recoveryCodes, ...recoveryCodes.map((c) => c.replaceAll('-', '')));

    // A wrong code, then a recovery code, then a code by SMS.
    now += MINUTE;
    const second = new Browser(srv.issuer);
    let page = await password(second, await authRequest(config, portal), person);
    const right = await generate({ secret: seed, epoch: Math.floor(now / 1000) });
    const wrong = right === '123456' ? '654321' : '123456';
    secrets.push(right, wrong);
    page = await second.post(url(formAction(page.text)), { _csrf: hiddenField(page.text, '_csrf'), code: wrong });
    const recovery = await second.get(url(/href="([^"]*\?method=recovery)"/.exec(page.text)![1]!));
    await second.post(url(formAction(recovery.text)), { _csrf: hiddenField(recovery.text, '_csrf'), method: 'recovery', code: recoveryCodes[0]! });

    now += MINUTE;
    const third = new Browser(srv.issuer);
    const p3 = await password(third, await authRequest(config, portal), person);
    const send = /<form method="post" action="([^"]*send-code)"[^>]*>\s*<input type="hidden" name="_csrf" value="([^"]*)">/.exec(p3.text)!;
    await third.post(url(send[1]!), { _csrf: send[2]!, channel: 'sms' });
    const outbox = fs.readFileSync(path.join(srv.system.config.outboxDir, 'outbox.jsonl'), 'utf8');
    secrets.push(...[...outbox.matchAll(/\b(\d{6})\b/g)].map((m) => m[1]!));

    const recorded = events();
    for (const e of ['LOGIN_SUCCEEDED', 'FACTOR_ENROLLED', 'RECOVERY_CODES_GENERATED', 'MFA_FAILED', 'RECOVERY_CODE_USED', 'MESSAGE_CODE_SENT']) {
      expect(recorded).toContain(e);
    }
    const all = lines.join('\n');
    for (const secret of new Set(secrets)) {
      // Digit-only secrets are looked for as whole numbers: a timestamp may contain any 6 digits.
      if (/^\d+$/.test(secret)) expect(all).not.toMatch(new RegExp(`(?<!\\d)${secret}(?!\\d)`));
      else expect(all).not.toContain(secret);
    }
  });
});
