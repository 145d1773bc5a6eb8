/**
 * Security notices cannot be silenced: the notices anyone can cause (a registration tried with the
 * number, a delegation) have an hourly allowance per destination and per person; the ones only
 * someone holding the account can cause (a password or account reset, a factor change) are always
 * sent; a notice carrying a link reaches only verified contacts; what is held back is audited.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from '../helpers/harness.js';
import { linkOf, messagesTo } from './selfservice-support.js';

let srv: TestServer;
beforeAll(async () => { srv = await startTestServer(); });
afterAll(async () => { await srv.close(); });

const suppressedAudits = async () => {
  await srv.system.audit.flush();
  return (await srv.system.store.audit.list(0, 10_000)).filter((e) => e.event === 'SECURITY_NOTICE_SUPPRESSED');
};

describe('security notices', () => {
  it('a registration tried with the number is told once an hour; the allowance used up by others never holds back a password reset\'s notice', async () => {
    const phone = '+84915550001';
    const email = 'thong.bao.1@example.vn';
    const p = await srv.addPerson({ pid: '001090550001', phone, email, contactsVerified: true });
    for (let i = 0; i < 3; i += 1) await srv.system.notices.registrationAttempt(p.id, 'vi');
    const tried = messagesTo(srv, phone).filter((m) => /thử đăng ký/.test(m.text));
    expect(tried).toHaveLength(1);
    // The destination's allowance, used up by notices anyone can cause (delegations).
    for (let i = 0; i < 6; i += 1) await srv.system.notices.delegated(p.id, { enterprise: 'Công ty A', code: '0101234567', role: 'nhân viên' });
    expect(messagesTo(srv, phone).filter((m) => /ủy quyền/.test(m.text))).toHaveLength(4);
    const held = await suppressedAudits();
    expect(held.filter((e) => e.details.notice === 'registration_attempt' && e.details.limit === 'person')).toHaveLength(2);
    expect(held.filter((e) => e.details.notice === 'delegated' && e.details.limit === 'destination').length).toBeGreaterThanOrEqual(2);
    // What the owner must hear still reaches both contacts.
    await srv.system.notices.passwordReset(p.id, 'vi');
    expect(messagesTo(srv, phone).filter((m) => /đã được đặt lại/.test(m.text))).toHaveLength(1);
    expect(messagesTo(srv, email).filter((m) => /đã được đặt lại/.test(m.text))).toHaveLength(1);
    await srv.system.notices.accountResetRequested(p.id, `${srv.issuer}/recover/cancel/${'x'.repeat(43)}`, Date.now() + 3600_000, 'vi');
    expect(messagesTo(srv, phone).filter((m) => linkOf(m)?.includes('/recover/cancel/'))).toHaveLength(1);
  });

  it('the cancel link of an account reset reaches verified contacts only; an unverified one is told without it', async () => {
    const phone = '+84915550002';
    const email = 'go.nham@example.vn';
    // The phone proven (as registration leaves it), the e-mail typed once and never proven.
    const p = await srv.system.store.persons.create({
      id: crypto.randomUUID(), pid: '001090550002', name: 'Nguyễn Văn An', familyName: 'Nguyễn', givenName: 'An', birthdate: '1990-03-15', gender: 'male',
      email, emailVerified: false, phone, phoneVerified: true, address: null, level: 1, passwordHash: 'not-a-hash', status: 'active',
    });
    await srv.system.notices.accountResetRequested(p.id, `${srv.issuer}/recover/cancel/${'y'.repeat(43)}`, Date.now() + 3600_000, 'en');
    const mail = messagesTo(srv, email).at(-1)!;
    expect(mail.text).toMatch(/asked to reset your identification account/);
    expect(linkOf(mail)).toBeUndefined();
    expect(mail.text).not.toMatch(/https?:\/\//);
    const sms = messagesTo(srv, phone).at(-1)!;
    expect(linkOf(sms)).toBe(`${srv.issuer}/recover/cancel/${'y'.repeat(43)}`);
  });
});
