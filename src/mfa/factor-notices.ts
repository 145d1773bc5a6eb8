/**
 * Telling a citizen, on every contact on file, that a second factor was added or removed
 * (SECURITY.md #39: a factor bound by someone who only had the password must not go unnoticed),
 * or that someone made them a delegate of an enterprise. Delivery problems are logged and never
 * stop the sign-in or the change.
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
  },
  en: {
    totp: 'authenticator app',
    passkey: 'passkey',
    added: (what: string, when: string) => `dinhdanh: An ${what} was added to your identification account at ${when}. If this was not you, call the public services hotline now.`,
    removed: (what: string, when: string) => `dinhdanh: An ${what} was removed from your identification account at ${when}. If this was not you, call the public services hotline now.`,
    subject: 'Security change on your identification account',
    delegated: (enterprise: string, code: string, role: string, when: string) => `dinhdanh: At ${when}, ${enterprise} (code ${code}) made you its delegate in the role ${role}. If you do not know about this, contact the enterprise or call the public services hotline.`,
    delegatedSubject: 'You may now act for an enterprise',
  },
} as const;

/** At most this many security notices per destination per hour: the rest are audited, not sent. */
export const NOTICES_PER_HOUR = 5;

export function createFactorNotices(deps: { notifier: ChannelNotifier; persons: PersonRepository; counters: CounterRepository; logger: Logger; now?: () => number }): FactorNotices {
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ component: 'factor-notices' });

  const at = (locale: Locale) => new Intl.DateTimeFormat(locale === 'vi' ? 'vi-VN' : 'en-GB', { dateStyle: 'short', timeStyle: 'short', timeZone: 'Asia/Ho_Chi_Minh' }).format(now());

  async function tell(personId: string, subject: string, body: string) {
    const person = await deps.persons.findById(personId);
    if (!person) return;
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
    for (const result of await Promise.allSettled(sends)) {
      if (result.status === 'rejected') log.warn({ person: personId, code: (result.reason as { code?: string }).code }, 'security notice not delivered');
    }
  }

  return {
    factorAdded: (personId, type, locale) => tell(personId, TEXT[locale].subject, TEXT[locale].added(TEXT[locale][type], at(locale))),
    factorRemoved: (personId, type, locale) => tell(personId, TEXT[locale].subject, TEXT[locale].removed(TEXT[locale][type], at(locale))),
    delegated: (personId, what) => tell(personId, TEXT.vi.delegatedSubject, TEXT.vi.delegated(what.enterprise, what.code, what.role, at('vi'))),
  };
}
