/**
 * Telling a citizen, on every contact on file, that a second factor was added or removed
 * (SECURITY.md #39: a factor bound by someone who only had the password must not go unnoticed),
 * that someone made them a delegate of an enterprise, or what self-service did to their account
 * (a registration tried with their number, a password reset, an account reset asked for, ready or
 * done). Delivery problems are logged and never stop the sign-in or the change.
 */
import type { Logger } from 'pino';
import crypto from 'node:crypto';
import type { CounterRepository, PersonRepository } from '../store/index.js';
import type { Locale } from '../http/i18n.js';
import type { ChannelNotifier } from './notifier/index.js';

export interface FactorNotices {
  factorAdded(personId: string, type: 'totp' | 'passkey', locale: Locale): Promise<void>;
  factorRemoved(personId: string, type: 'totp' | 'passkey', locale: Locale): Promise<void>;
  /** The person may now act for an enterprise (told in Vietnamese: their own language is not known here). */
  delegated(personId: string, what: { enterprise: string; code: string; role: string }): Promise<void>;
  /** Someone proved a phone while registering this person's identification number (every contact). */
  registrationAttempt(personId: string, locale: Locale): Promise<void>;
  /** The password was reset through recovery (every contact). */
  passwordReset(personId: string, locale: Locale): Promise<void>;
  /** An account reset was asked for (every contact), with the link that cancels it and when it would be ready. */
  accountResetRequested(personId: string, cancelUrl: string, readyAtMs: number, locale: Locale): Promise<void>;
  /** The waiting period ended: the link that completes the reset, to `phone` only (the verified phone). */
  accountResetReady(personId: string, phone: string, completeUrl: string, locale: Locale): Promise<boolean>;
  /** The account reset was completed (every contact). */
  accountResetDone(personId: string, locale: Locale): Promise<void>;
}

const TEXT = {
  vi: {
    totp: 'ứng dụng xác thực',
    passkey: 'khóa truy cập (passkey)',
    added: (what: string, when: string) => `dinhdanh: Một ${what} vừa được thêm vào tài khoản định danh của bạn lúc ${when}. Nếu không phải bạn, hãy gọi tổng đài dịch vụ công ngay.`,
    removed: (what: string, when: string) => `dinhdanh: Một ${what} vừa được gỡ khỏi tài khoản định danh của bạn lúc ${when}. Nếu không phải bạn, hãy gọi tổng đài dịch vụ công ngay.`,
    subject: 'Thay đổi bảo mật tài khoản định danh',
    delegated: (enterprise: string, code: string, role: string, when: string) => `dinhdanh: Lúc ${when}, ${enterprise} (mã số ${code}) đã ủy quyền cho bạn với vai trò ${role}. Nếu bạn không biết việc này, hãy liên hệ doanh nghiệp hoặc gọi tổng đài dịch vụ công.`,
    delegatedSubject: 'Bạn được ủy quyền thay mặt doanh nghiệp',
    registrationAttempt: (when: string) => `dinhdanh: Lúc ${when}, có người đã thử đăng ký tài khoản định danh mới bằng số định danh của bạn. Tài khoản của bạn không thay đổi. Nếu không phải bạn, hãy gọi tổng đài dịch vụ công.`,
    passwordReset: (when: string) => `dinhdanh: Mật khẩu tài khoản định danh của bạn đã được đặt lại lúc ${when}; mọi phiên đăng nhập đã kết thúc. Nếu không phải bạn, hãy gọi tổng đài dịch vụ công ngay.`,
    resetRequested: (when: string, ready: string, url: string) => `dinhdanh: Lúc ${when}, có yêu cầu đặt lại tài khoản định danh của bạn (xóa mọi yếu tố xác thực thứ hai). Nếu không có gì thay đổi, yêu cầu có hiệu lực sau ${ready}. Nếu không phải bạn, hủy ngay tại: ${url}`,
    resetReady: (url: string) => `dinhdanh: Thời gian chờ đã hết. Đặt mật khẩu mới cho tài khoản định danh của bạn tại: ${url} (hiệu lực 24 giờ, dùng một lần).`,
    resetDone: (when: string) => `dinhdanh: Tài khoản định danh của bạn đã được đặt lại lúc ${when}: mật khẩu mới, mọi yếu tố xác thực thứ hai đã bị xóa. Nếu không phải bạn, hãy gọi tổng đài dịch vụ công ngay.`,
    accountSubject: 'Thông báo về tài khoản định danh',
  },
  en: {
    totp: 'authenticator app',
    passkey: 'passkey',
    added: (what: string, when: string) => `dinhdanh: An ${what} was added to your identification account at ${when}. If this was not you, call the public services hotline now.`,
    removed: (what: string, when: string) => `dinhdanh: An ${what} was removed from your identification account at ${when}. If this was not you, call the public services hotline now.`,
    subject: 'Security change on your identification account',
    delegated: (enterprise: string, code: string, role: string, when: string) => `dinhdanh: At ${when}, ${enterprise} (code ${code}) made you its delegate in the role ${role}. If you do not know about this, contact the enterprise or call the public services hotline.`,
    delegatedSubject: 'You may now act for an enterprise',
    registrationAttempt: (when: string) => `dinhdanh: At ${when}, someone tried to register a new identification account with your identification number. Your account has not changed. If this was not you, call the public services hotline.`,
    passwordReset: (when: string) => `dinhdanh: The password of your identification account was reset at ${when}; every session has ended. If this was not you, call the public services hotline now.`,
    resetRequested: (when: string, ready: string, url: string) => `dinhdanh: At ${when}, someone asked to reset your identification account (removing every second factor). Unless cancelled, it takes effect after ${ready}. If this was not you, cancel it now: ${url}`,
    resetReady: (url: string) => `dinhdanh: The waiting period is over. Set a new password for your identification account at ${url} (valid 24 hours, once).`,
    resetDone: (when: string) => `dinhdanh: Your identification account was reset at ${when}: a new password, every second factor removed. If this was not you, call the public services hotline now.`,
    accountSubject: 'About your identification account',
  },
} as const;

/** At most this many security notices per destination per hour: the rest are audited, not sent. */
export const NOTICES_PER_HOUR = 5;

export function createFactorNotices(deps: { notifier: ChannelNotifier; persons: PersonRepository; counters: CounterRepository; logger: Logger; now?: () => number }): FactorNotices {
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ component: 'factor-notices' });

  const at = (locale: Locale, ms = now()) => new Intl.DateTimeFormat(locale === 'vi' ? 'vi-VN' : 'en-GB', { dateStyle: 'short', timeStyle: 'short', timeZone: 'Asia/Ho_Chi_Minh' }).format(ms);

  /** Sends to every contact of the person (or only the phone); true when at least one message went out. */
  async function tell(personId: string, subject: string, body: string, only?: { phone: string }): Promise<boolean> {
    const person = await deps.persons.findById(personId);
    if (!person) return false;
    if (only) {
      if (!deps.notifier.channels().has('sms')) return false;
      try {
        await deps.notifier.send({ channel: 'sms', to: only.phone, text: body });
        return true;
      } catch (err) {
        log.warn({ person: personId, code: (err as { code?: string }).code }, 'account notice not delivered');
        return false;
      }
    }
    const channels = deps.notifier.channels();
    // Notices cannot be turned into a way to flood someone's phone or mailbox (or the SMS bill):
    // each destination gets a few an hour, counted atomically before sending.
    const allowed = async (to: string) => {
      const key = `notice:${crypto.createHash('sha256').update(to.toLowerCase()).digest('base64url')}`;
      const state = await deps.counters.increment(key, 60 * 60_000, now());
      if (state.count > NOTICES_PER_HOUR) log.info({ person: personId }, 'security notice not sent: hourly limit for the destination');
      return state.count <= NOTICES_PER_HOUR;
    };
    const sends: Array<Promise<void>> = [];
    if (person.phone && channels.has('sms') && (await allowed(person.phone))) sends.push(deps.notifier.send({ channel: 'sms', to: person.phone, text: body }));
    if (person.email && channels.has('email') && (await allowed(person.email))) sends.push(deps.notifier.send({ channel: 'email', to: person.email, subject, text: body }));
    let delivered = false;
    for (const result of await Promise.allSettled(sends)) {
      if (result.status === 'rejected') log.warn({ person: personId, code: (result.reason as { code?: string }).code }, 'security notice not delivered');
      else delivered = true;
    }
    return delivered;
  }
  const told = async (p: Promise<boolean>) => { await p; };

  return {
    factorAdded: (personId, type, locale) => told(tell(personId, TEXT[locale].subject, TEXT[locale].added(TEXT[locale][type], at(locale)))),
    factorRemoved: (personId, type, locale) => told(tell(personId, TEXT[locale].subject, TEXT[locale].removed(TEXT[locale][type], at(locale)))),
    delegated: (personId, what) => told(tell(personId, TEXT.vi.delegatedSubject, TEXT.vi.delegated(what.enterprise, what.code, what.role, at('vi')))),
    registrationAttempt: (personId, locale) => told(tell(personId, TEXT[locale].accountSubject, TEXT[locale].registrationAttempt(at(locale)))),
    passwordReset: (personId, locale) => told(tell(personId, TEXT[locale].subject, TEXT[locale].passwordReset(at(locale)))),
    accountResetRequested: (personId, cancelUrl, readyAtMs, locale) =>
      told(tell(personId, TEXT[locale].subject, TEXT[locale].resetRequested(at(locale), at(locale, readyAtMs), cancelUrl))),
    accountResetReady: (personId, phone, completeUrl, locale) => tell(personId, TEXT[locale].accountSubject, TEXT[locale].resetReady(completeUrl), { phone }),
    accountResetDone: (personId, locale) => told(tell(personId, TEXT[locale].subject, TEXT[locale].resetDone(at(locale)))),
  };
}
