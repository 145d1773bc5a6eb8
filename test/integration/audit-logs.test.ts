/**
 * Security events for second factors are recorded (enrolment, success, failure, lockout, recovery
 * code use, message codes) and no log line ever carries a password, a code, a TOTP seed, a
 * recovery code or a full identification number (SECURITY.md #40).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type * as oidc from 'openid-client';
import type { TestServer } from '../helpers/harness.js';
import { Browser } from '../helpers/browser.js';
import { authRequest, type Portal } from '../helpers/rp.js';
import { MINUTE, SUBSTANTIAL, pageSteps, shownRecoveryCodes, startWithPortal, totpCode, totpSecret } from '../helpers/pages.js';

let now = Date.now();
const lines: string[] = [];
let srv: TestServer, portal: Portal, config: oidc.Configuration;
beforeAll(async () => { ({ srv, portal, config } = await startWithPortal({ now: () => now, logSink: (l) => { lines.push(l); } })); });
afterAll(async () => { await srv.close(); });

const { url, password, submit } = pageSteps({ server: () => srv });
const events = () => lines.map((l) => JSON.parse(l) as { event?: string }).filter((e) => e.event).map((e) => e.event!);

describe('second-factor audit and logs', () => {
  it('records the events and leaks no secret into any log line', async () => {
    const person = await srv.addPerson({ phone: '0911222333' });
    const secrets: string[] = [person.password, person.pid];
    now += MINUTE;

    // Enrol an authenticator app inside a sign-in.
    const browser = new Browser(srv.issuer);
    const enrol = await password(browser, await authRequest(config, portal, { acr_values: SUBSTANTIAL }), person);
    const seed = totpSecret(enrol.text);
    const firstCode = await totpCode(seed, now);
    const codesPage = await submit(browser, enrol, { code: firstCode });
    const recoveryCodes = shownRecoveryCodes(codesPage.text);
    secrets.push(seed, firstCode, ...recoveryCodes, ...recoveryCodes.map((c) => c.replaceAll('-', '')));

    // A wrong code, then a recovery code, then a code by SMS.
    now += MINUTE;
    const second = new Browser(srv.issuer);
    let page = await password(second, await authRequest(config, portal), person);
    const right = await totpCode(seed, now);
    const wrong = right === '123456' ? '654321' : '123456';
    secrets.push(right, wrong);
    page = await submit(second, page, { code: wrong });
    const recovery = await second.get(url(/href="([^"]*\?method=recovery)"/.exec(page.text)![1]!));
    await submit(second, recovery, { method: 'recovery', code: recoveryCodes[0]! });

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
