/**
 * Security notices cannot be silenced: against the real SQLite store (in memory, so the counters
 * are the atomic ones production uses) with one injected clock. The notifier is a recording fake of
 * the output boundary (what would go to the SMS gateway or the SMTP relay), the audit a recording
 * AuditService.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import crypto from 'node:crypto';
import pino from 'pino';
import { createStore, type NewPerson, type Store } from '../store/index.js';
import type { AuditDetails, AuditService, SecurityEventName } from '../audit/index.js';
import type { Channel, ChannelNotifier, OutgoingMessage } from './notifier/index.js';
import {
  CRITICAL_NOTICES_PER_HOUR, NOTICES_PER_HOUR, createFactorNotices, type FactorNotices,
} from './factor-notices.js';

const T0 = Date.UTC(2030, 0, 1, 8, 0, 0);
const MINUTE = 60_000;
const PHONE = '+84912345678';
const EMAIL = 'an.nguyen@example.vn';
const CANCEL = `https://id.example.gov.vn/recover/cancel/${'c'.repeat(43)}`;

let clock = T0;
let store: Store;
let sent: OutgoingMessage[];
let audited: Array<{ event: SecurityEventName; details: AuditDetails }>;
let offered: Set<Channel>;
let notices: FactorNotices;

const notifier: ChannelNotifier = {
  channels: () => offered,
  send: async (message) => { sent.push(message); },
};
const audit: AuditService = {
  record: (event, details = {}) => { audited.push({ event, details }); },
  flush: async () => {},
};

beforeEach(async () => {
  clock = T0;
  sent = [];
  audited = [];
  offered = new Set<Channel>(['sms', 'email']);
  store = await createStore('sqlite::memory:', { now: () => clock });
  notices = createFactorNotices({ notifier, persons: store.persons, counters: store.counters, logger: pino({ level: 'silent' }), audit, now: () => clock });
});
afterEach(async () => { await store.close(); });

let pidSeq = 0;
async function person(contacts: Partial<Pick<NewPerson, 'phone' | 'phoneVerified' | 'email' | 'emailVerified'>> = {}) {
  pidSeq += 1;
  return store.persons.create({
    id: crypto.randomUUID(), pid: `0010900${String(pidSeq).padStart(5, '0')}`, name: 'Nguyễn Văn An', familyName: 'Nguyễn', givenName: 'An',
    birthdate: '1990-03-15', gender: 'male', address: null, level: 1, passwordHash: 'not-a-hash', status: 'active',
    phone: PHONE, phoneVerified: true, email: EMAIL, emailVerified: true, ...contacts,
  });
}

const to = (destination: string) => sent.filter((m) => m.to === destination);
const suppressed = () => audited.filter((e) => e.event === 'SECURITY_NOTICE_SUPPRESSED').map((e) => e.details);
/** The outbox rule: a link is the only http(s) URL in a text. */
const linkOf = (m: OutgoingMessage | undefined) => {
  const urls = [...(m?.text ?? '').matchAll(/https?:\/\/[^\s]+/g)].map((x) => x[0]);
  return urls.length === 1 ? urls[0] : undefined;
};
const hasUrl = (m: OutgoingMessage) => /https?:\/\//.test(m.text);
const hasCode = (m: OutgoingMessage) => /(?<!\d)\d{6}(?!\d)/.test(m.text);

describe('notices anyone can cause cannot use up the ones that tell the owner', () => {
  it(`after ${NOTICES_PER_HOUR} cheap notices to a destination, a password reset and an account reset still reach both contacts`, async () => {
    const p = await person();
    // The registration notice (once an hour a person) and delegations use up the destination's allowance.
    await notices.registrationAttempt(p.id, 'vi');
    for (let i = 0; i < NOTICES_PER_HOUR; i += 1) await notices.delegated(p.id, { enterprise: 'Công ty A', code: '0101234567', role: 'nhân viên' });
    expect(to(PHONE)).toHaveLength(NOTICES_PER_HOUR);
    expect(to(EMAIL)).toHaveLength(NOTICES_PER_HOUR);
    // The sixth cheap notice is held back on both contacts, and each hold-back is audited.
    expect(suppressed()).toEqual([
      { person: p.id, notice: 'delegated', channel: 'sms', limit: 'destination' },
      { person: p.id, notice: 'delegated', channel: 'email', limit: 'destination' },
    ]);

    sent = [];
    await notices.passwordReset(p.id, 'vi');
    await notices.accountResetRequested(p.id, CANCEL, clock + 72 * 60 * MINUTE, 'vi');
    await notices.factorAdded(p.id, 'passkey', 'en');
    await notices.factorRemoved(p.id, 'totp', 'en');
    await notices.accountResetDone(p.id, 'vi');
    for (const destination of [PHONE, EMAIL]) {
      const got = to(destination);
      expect(got).toHaveLength(5);
      expect(got[0]!.text).toMatch(/Mật khẩu tài khoản định danh của bạn đã được đặt lại/);
      expect(linkOf(got[1])).toBe(CANCEL);
      expect(got[2]!.text).toMatch(/passkey was added/);
      expect(got[3]!.text).toMatch(/authenticator app was removed/);
      expect(got[4]!.text).toMatch(/đã được đặt lại lúc/);
    }
    expect(suppressed()).toHaveLength(2);
  });

  it('registration notices from several people sharing a phone are held back by the destination allowance, and audited', async () => {
    // Contacts are not unique: a family phone on several accounts.
    const people = [];
    for (let i = 0; i < NOTICES_PER_HOUR + 1; i += 1) people.push(await person({ email: null, emailVerified: false }));
    for (const p of people) await notices.registrationAttempt(p.id, 'en');
    expect(to(PHONE)).toHaveLength(NOTICES_PER_HOUR);
    expect(suppressed()).toEqual([{ person: people.at(-1)!.id, notice: 'registration_attempt', channel: 'sms', limit: 'destination' }]);
    await notices.passwordReset(people[0]!.id, 'en');
    expect(to(PHONE).at(-1)!.text).toMatch(/password of your identification account was reset/);
  });

  it('critical notices have an allowance of their own, which held back is audited too', async () => {
    const p = await person({ phone: null, phoneVerified: false });
    for (let i = 0; i < CRITICAL_NOTICES_PER_HOUR + 1; i += 1) await notices.factorAdded(p.id, 'totp', 'vi');
    expect(to(EMAIL)).toHaveLength(CRITICAL_NOTICES_PER_HOUR);
    expect(suppressed()).toEqual([{ person: p.id, notice: 'factor_added', channel: 'email', limit: 'destination' }]);
    clock += 61 * MINUTE;
    await notices.factorAdded(p.id, 'totp', 'vi');
    expect(to(EMAIL)).toHaveLength(CRITICAL_NOTICES_PER_HOUR + 1);
  });
});

describe('a registration tried with the number', () => {
  it('is told once an hour a person; the second is not sent and is audited', async () => {
    const p = await person();
    await notices.registrationAttempt(p.id, 'vi');
    await notices.registrationAttempt(p.id, 'vi');
    expect(to(PHONE)).toHaveLength(1);
    expect(to(EMAIL)).toHaveLength(1);
    expect(to(PHONE)[0]!.text).toMatch(/thử đăng ký tài khoản định danh mới/);
    expect(suppressed()).toEqual([{ person: p.id, notice: 'registration_attempt', channel: ['sms', 'email'], limit: 'person' }]);
    // The person's limit is counted before the destination's: the held-back one used none of it.
    for (let i = 0; i < NOTICES_PER_HOUR - 1; i += 1) await notices.delegated(p.id, { enterprise: 'Công ty B', code: '0109876543', role: 'kế toán' });
    expect(to(PHONE)).toHaveLength(NOTICES_PER_HOUR);
    expect(suppressed()).toHaveLength(1);
    // An hour later it is told again.
    clock += 61 * MINUTE;
    await notices.registrationAttempt(p.id, 'vi');
    expect(to(PHONE)).toHaveLength(NOTICES_PER_HOUR + 1);
  });
});

describe('the account reset\'s cancel link reaches verified contacts only', () => {
  it.each(['vi', 'en'] as const)('an unverified e-mail is told of the reset without the link; the verified phone gets the link (%s)', async (locale) => {
    const p = await person({ emailVerified: false });
    await notices.accountResetRequested(p.id, CANCEL, clock + 72 * 60 * MINUTE, locale);
    const sms = to(PHONE);
    const mail = to(EMAIL);
    expect(sms).toHaveLength(1);
    expect(mail).toHaveLength(1);
    expect(linkOf(sms[0])).toBe(CANCEL);
    expect(hasUrl(mail[0]!)).toBe(false);
    // Still says a reset was asked for and to call the hotline if it was not them.
    expect(mail[0]!.text).toMatch(locale === 'vi' ? /yêu cầu đặt lại tài khoản định danh/ : /asked to reset your identification account/);
    expect(mail[0]!.text).toMatch(locale === 'vi' ? /gọi tổng đài dịch vụ công/ : /call the public services hotline/);
    expect(mail[0]!.subject).toBeTruthy();
  });

  it('an unverified phone is told without the link; a verified e-mail gets it', async () => {
    const p = await person({ phoneVerified: false });
    await notices.accountResetRequested(p.id, CANCEL, clock + 72 * 60 * MINUTE, 'vi');
    expect(hasUrl(to(PHONE)[0]!)).toBe(false);
    expect(linkOf(to(EMAIL)[0])).toBe(CANCEL);
  });

  it('the link that completes the reset goes to the verified phone alone, never to one not proven', async () => {
    const done = `https://id.example.gov.vn/recover/reset/${'d'.repeat(43)}`;
    const p = await person();
    expect(await notices.accountResetReady(p.id, PHONE, done, 'en')).toBe(true);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ channel: 'sms', to: PHONE });
    expect(linkOf(sent[0])).toBe(done);
    expect(await notices.accountResetReady(p.id, '+84900000000', done, 'en')).toBe(false);
    const q = await person({ phone: '+84911111111', phoneVerified: false });
    expect(await notices.accountResetReady(q.id, '+84911111111', done, 'en')).toBe(false);
    expect(sent).toHaveLength(1);
  });
});

describe('the texts', () => {
  it('carry no code and at most one link, in both languages', async () => {
    const p = await person();
    for (const locale of ['vi', 'en'] as const) {
      await notices.factorAdded(p.id, 'totp', locale);
      await notices.factorRemoved(p.id, 'passkey', locale);
      await notices.registrationAttempt(p.id, locale);
      await notices.passwordReset(p.id, locale);
      await notices.accountResetRequested(p.id, CANCEL, clock + 72 * 60 * MINUTE, locale);
      await notices.accountResetDone(p.id, locale);
      clock += 61 * MINUTE;
    }
    await notices.delegated(p.id, { enterprise: 'Công ty A', code: '0101234567', role: 'nhân viên' });
    expect(sent.length).toBeGreaterThan(20);
    for (const m of sent) {
      expect(hasCode(m)).toBe(false);
      if (hasUrl(m)) expect(linkOf(m)).toBe(CANCEL);
    }
    expect(sent.filter((m) => /[ạảđịộ]/.test(m.text)).length).toBeGreaterThan(0);
    expect(sent.filter((m) => /your identification account/.test(m.text)).length).toBeGreaterThan(0);
  });

  it('a delivery that fails is logged and never thrown; the other contact is still told', async () => {
    const p = await person();
    const failing = createFactorNotices({
      notifier: { channels: () => offered, send: async (m) => { if (m.channel === 'sms') throw Object.assign(new Error('down'), { code: 'gateway_timeout' }); sent.push(m); } },
      persons: store.persons, counters: store.counters, logger: pino({ level: 'silent' }), audit, now: () => clock,
    });
    await expect(failing.passwordReset(p.id, 'en')).resolves.toBeUndefined();
    expect(to(EMAIL)).toHaveLength(1);
  });
});
