/**
 * Telling a citizen, on every contact on file, that a second factor was added or removed
 * (SECURITY.md #39: a factor bound by someone who only had the password must not go unnoticed),
 * what self-service or the account area did to their account (a registration tried with their
 * number, a password reset or change, an account reset asked for, ready or done, a contact change —
 * told to the contacts before it —, "this wasn't me", a self-lock), and, to the contact chosen for
 * notices when there is one, that they may act for an enterprise or that a new browser signed in.
 * Delivery problems are logged and never stop the sign-in or the change.
 */
import type { Logger } from 'pino';
import crypto from 'node:crypto';
import type { Contact, CounterRepository, Person, PersonRepository } from '../store/index.js';
import type { Locale } from '../http/i18n.js';
import type { Channel, ChannelNotifier } from './notifier/index.js';
import type { AuditService } from '../audit/index.js';

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
  /** The citizen changed their password in the account area (every contact). */
  passwordChanged(personId: string, locale: Locale): Promise<void>;
  /**
   * A contact was added, proven, removed or chosen for notices: told to every contact that was on
   * file before the change (`before`), so that a thief who swaps them is heard by the owner's.
   */
  contactChanged(personId: string, before: readonly Contact[], change: { what: 'added' | 'verified' | 'removed' | 'notice'; masked: string }, locale: Locale): Promise<void>;
  /**
   * A sign-in from a browser not seen on the account for 90 days: when, device and network, and the
   * "this wasn't me" link (to verified contacts only). To the contact chosen for notices, or every one.
   */
  newBrowser(personId: string, what: { at: number; device: string; network: string }, makeNotMeUrl: () => Promise<string>, locale: Locale): Promise<void>;
  /** "This wasn't me" was pressed: everything ended, a new password is needed (every contact). */
  notMeReported(personId: string, locale: Locale): Promise<void>;
  /** The owner locked the account (every contact). */
  selfLocked(personId: string, locale: Locale): Promise<void>;
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
    resetRequestedNoLink: (when: string, ready: string) => `dinhdanh: Lúc ${when}, có yêu cầu đặt lại tài khoản định danh của bạn (xóa mọi yếu tố xác thực thứ hai), có hiệu lực sau ${ready}. Nếu không phải bạn, hãy gọi tổng đài dịch vụ công ngay.`,
    resetReady: (url: string) => `dinhdanh: Thời gian chờ đã hết. Đặt mật khẩu mới cho tài khoản định danh của bạn tại: ${url} (hiệu lực 24 giờ, dùng một lần).`,
    resetDone: (when: string) => `dinhdanh: Tài khoản định danh của bạn đã được đặt lại lúc ${when}: mật khẩu mới, mọi yếu tố xác thực thứ hai đã bị xóa. Nếu không phải bạn, hãy gọi tổng đài dịch vụ công ngay.`,
    accountSubject: 'Thông báo về tài khoản định danh',
    passwordChanged: (when: string) => `dinhdanh: Mật khẩu tài khoản định danh của bạn đã được đổi lúc ${when}; các phiên đăng nhập khác đã kết thúc. Nếu không phải bạn, hãy dùng "Quên mật khẩu" hoặc gọi tổng đài dịch vụ công ngay.`,
    contact: {
      added: (m: string, when: string) => `dinhdanh: Lúc ${when}, ${m} đã được thêm vào tài khoản định danh của bạn.`,
      verified: (m: string, when: string) => `dinhdanh: Lúc ${when}, ${m} đã được xác minh trên tài khoản định danh của bạn.`,
      removed: (m: string, when: string) => `dinhdanh: Lúc ${when}, ${m} đã bị gỡ khỏi tài khoản định danh của bạn.`,
      notice: (m: string, when: string) => `dinhdanh: Lúc ${when}, ${m} được chọn để nhận thông báo của tài khoản định danh.`,
    },
    contactTail: ' Nếu không phải bạn, hãy khóa tài khoản tại trang Tài khoản hoặc gọi tổng đài dịch vụ công ngay.',
    contactSubject: 'Thay đổi liên hệ của tài khoản định danh',
    newBrowser: (when: string, device: string, network: string, url: string) => `dinhdanh: Tài khoản định danh của bạn vừa đăng nhập trên một trình duyệt mới lúc ${when} (${device}, mạng ${network}). Nếu không phải bạn, bấm: ${url}`,
    newBrowserNoLink: (when: string, device: string, network: string) => `dinhdanh: Tài khoản định danh của bạn vừa đăng nhập trên một trình duyệt mới lúc ${when} (${device}, mạng ${network}). Nếu không phải bạn, hãy gọi tổng đài dịch vụ công ngay.`,
    newBrowserSubject: 'Đăng nhập từ trình duyệt mới',
    notMe: (when: string) => `dinhdanh: Lúc ${when}, bạn đã báo một lần đăng nhập không phải của bạn. Mọi phiên đăng nhập đã kết thúc; hãy đặt mật khẩu mới bằng "Quên mật khẩu" trước khi đăng nhập lại.`,
    selfLocked: (when: string) => `dinhdanh: Tài khoản định danh của bạn đã bị khóa theo yêu cầu của bạn lúc ${when}; mọi phiên đăng nhập đã kết thúc. Để mở khóa, dùng "Quên mật khẩu" cùng yếu tố xác thực thứ hai, hoặc đến bộ phận một cửa.`,
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
    resetRequestedNoLink: (when: string, ready: string) => `dinhdanh: At ${when}, someone asked to reset your identification account (removing every second factor), taking effect after ${ready}. If this was not you, call the public services hotline now.`,
    resetReady: (url: string) => `dinhdanh: The waiting period is over. Set a new password for your identification account at ${url} (valid 24 hours, once).`,
    resetDone: (when: string) => `dinhdanh: Your identification account was reset at ${when}: a new password, every second factor removed. If this was not you, call the public services hotline now.`,
    accountSubject: 'About your identification account',
    passwordChanged: (when: string) => `dinhdanh: The password of your identification account was changed at ${when}; your other sessions have ended. If this was not you, use "Forgotten password" or call the public services hotline now.`,
    contact: {
      added: (m: string, when: string) => `dinhdanh: At ${when}, ${m} was added to your identification account.`,
      verified: (m: string, when: string) => `dinhdanh: At ${when}, ${m} was verified on your identification account.`,
      removed: (m: string, when: string) => `dinhdanh: At ${when}, ${m} was removed from your identification account.`,
      notice: (m: string, when: string) => `dinhdanh: At ${when}, ${m} was chosen to receive your identification account's notices.`,
    },
    contactTail: ' If this was not you, lock your account on its Account page or call the public services hotline now.',
    contactSubject: 'Contact change on your identification account',
    newBrowser: (when: string, device: string, network: string, url: string) => `dinhdanh: Your identification account signed in from a new browser at ${when} (${device}, network ${network}). If this was not you, press: ${url}`,
    newBrowserNoLink: (when: string, device: string, network: string) => `dinhdanh: Your identification account signed in from a new browser at ${when} (${device}, network ${network}). If this was not you, call the public services hotline now.`,
    newBrowserSubject: 'Sign-in from a new browser',
    notMe: (when: string) => `dinhdanh: At ${when}, you reported a sign-in that was not yours. Every session has ended; set a new password with "Forgotten password" before you sign in again.`,
    selfLocked: (when: string) => `dinhdanh: Your identification account was locked at your request at ${when}; every session has ended. To unlock it, use "Forgotten password" with your second factor, or visit a one-stop-shop counter.`,
  },
} as const;

/**
 * At most this many notices a destination gets in an hour of the kinds anyone can cause (a
 * registration tried with the number, a delegation): the rest are audited, not sent, so notices
 * cannot be turned into a way to flood someone's phone or mailbox (or the SMS bill).
 */
export const NOTICES_PER_HOUR = 5;
/**
 * The notices only someone holding the account can cause (factor changes, password and account
 * resets) are what tells the owner of a change they did not make (ASVS 4.0.3 V2.2.3 and V2.5.5;
 * NIST SP 800-63B §6.1.2.1): they are never counted against NOTICES_PER_HOUR, which anyone can use
 * up with cheap notices, and have an allowance of their own per destination instead. It is high
 * enough that the first notices of any hour always go out (an owner whose session was stolen hears
 * of it many times over before anything is held back) and bounds what a stolen session that adds
 * and removes factors in a loop can cost in SMS.
 */
export const CRITICAL_NOTICES_PER_HOUR = 20;
/**
 * "Someone tried to register your number": at most one a person an hour, counted before the
 * destination's allowance. Anyone who knows a person's details can cause it with a phone of their
 * own, so repeating it must neither flood the person nor use up their destinations' allowance.
 */
export const REGISTRATION_NOTICES_PER_HOUR = 1;

const HOUR_MS = 60 * 60_000;

type NoticeKind =
  | 'factor_added' | 'factor_removed' | 'delegated' | 'registration_attempt'
  | 'password_reset' | 'account_reset_requested' | 'account_reset_ready' | 'account_reset_done'
  | 'password_changed' | 'contact_changed' | 'new_browser' | 'not_me' | 'self_locked';

interface TellOptions {
  /** Which notice, for the audit entry of one held back. */
  kind: NoticeKind;
  /** Counted against the destination's allowance of critical notices, which cheap notices cannot use up. */
  critical?: boolean;
  /** The text for contacts not verified: a notice carrying a link goes only to verified ones. */
  unverifiedBody?: string;
  /** The contacts to tell instead of the person's current ones (a contact change: those before it). */
  to?: readonly Contact[];
  /** Not about a change: to the contact the person chose for notices, when they chose one. */
  chosenOnly?: boolean;
  /** Counted against an allowance of its own (per destination, an hour) instead of the usual ones. */
  allowance?: { prefix: string; max: number };
}

/**
 * New-browser notices have an allowance of their own: a sign-in from a fresh browser is cheap for
 * whoever has the password, and must use up neither the notices anyone can cause nor those that
 * tell the owner of a change.
 */
export const NEW_BROWSER_NOTICES_PER_HOUR = 10;

interface Destination { channel: Channel; to: string; verified: boolean }

export function createFactorNotices(deps: { notifier: ChannelNotifier; persons: PersonRepository; counters: CounterRepository; logger: Logger; audit: AuditService; now?: () => number }): FactorNotices {
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ component: 'factor-notices' });

  const at = (locale: Locale, ms = now()) => new Intl.DateTimeFormat(locale === 'vi' ? 'vi-VN' : 'en-GB', { dateStyle: 'short', timeStyle: 'short', timeZone: 'Asia/Ho_Chi_Minh' }).format(ms);

  /** Contacts this deployment can deliver to. */
  const deliverable = (list: readonly Contact[]): Destination[] => {
    const channels = deps.notifier.channels();
    return list
      .map((c) => ({ channel: (c.kind === 'phone' ? 'sms' : 'email') as Channel, to: c.value, verified: c.verified }))
      .filter((d) => channels.has(d.channel));
  };
  const contactsOf = (person: Person): Destination[] => deliverable(person.contacts);

  /**
   * A notice held back by a limit is audited, not only logged: a run of them is the trace of
   * someone flooding a contact or trying to keep the owner from hearing about their account. For
   * the person's limit, `channel` lists every channel the notice would have gone on.
   */
  const suppressed = (personId: string, kind: NoticeKind, limit: 'destination' | 'person', channel: Channel | Channel[]) => {
    log.info({ person: personId, notice: kind, limit, channel }, 'security notice not sent: hourly limit');
    deps.audit.record('SECURITY_NOTICE_SUPPRESSED', { person: personId, notice: kind, channel, limit });
  };

  /** Counts one notice to the contact, atomically before sending; false (and audited) when over the allowance. */
  const allowed = async (personId: string, contact: Destination, options: TellOptions) => {
    const max = options.allowance?.max ?? (options.critical ? CRITICAL_NOTICES_PER_HOUR : NOTICES_PER_HOUR);
    const prefix = options.allowance?.prefix ?? (options.critical ? 'notice-critical' : 'notice');
    // The allowances only an account holder can use up (critical, new browser) are kept per account
    // and destination: an account of one's own, with someone else's address typed in as a contact,
    // must not use up the notices that address's owner gets about their own account.
    const scope = options.critical || options.allowance ? `${personId}\u0000` : '';
    const key = `${prefix}:${crypto.createHash('sha256').update(scope + contact.to.toLowerCase()).digest('base64url')}`;
    const state = await deps.counters.increment(key, HOUR_MS, now());
    if (state.count <= max) return true;
    suppressed(personId, options.kind, 'destination', contact.channel);
    return false;
  };

  /** Who a notice goes to: the given contacts, or the person's (only the chosen one, for `chosenOnly`). */
  function targetsOf(person: Person, options: Pick<TellOptions, 'to' | 'chosenOnly'>): Destination[] {
    const targets = options.to ? deliverable(options.to) : contactsOf(person);
    if (options.chosenOnly && person.noticeContact) {
      const chosen = person.contacts.find((c) => c.id === person.noticeContact && c.verified);
      const only = chosen ? deliverable([chosen]) : [];
      if (only.length) return only;
    }
    return targets;
  }

  /** Sends to every contact of the person; true when at least one message went out. */
  async function tell(personId: string, subject: string, body: string, options: TellOptions): Promise<boolean> {
    const person = await deps.persons.findById(personId);
    if (!person) return false;
    const sends: Array<Promise<void>> = [];
    for (const contact of targetsOf(person, options)) {
      if (!(await allowed(personId, contact, options))) continue;
      // A link (the account reset's cancel link) goes only to a contact proven to be the owner's: a
      // mistyped or someone else's address must not be able to cancel the owner's reset (NIST SP
      // 800-63B §6.1.2.3 binds recovery to verified contacts). The unverified contact is still
      // told, without the link.
      const text = contact.verified || options.unverifiedBody === undefined ? body : options.unverifiedBody;
      sends.push(deps.notifier.send(contact.channel === 'email' ? { channel: 'email', to: contact.to, subject, text } : { channel: 'sms', to: contact.to, text }));
    }
    let delivered = false;
    for (const result of await Promise.allSettled(sends)) {
      if (result.status === 'rejected') log.warn({ person: personId, notice: options.kind, code: (result.reason as { code?: string }).code }, 'security notice not delivered');
      else delivered = true;
    }
    return delivered;
  }
  const told = async (p: Promise<boolean>) => { await p; };

  return {
    factorAdded: (personId, type, locale) => told(tell(personId, TEXT[locale].subject, TEXT[locale].added(TEXT[locale][type], at(locale)), { kind: 'factor_added', critical: true })),
    factorRemoved: (personId, type, locale) => told(tell(personId, TEXT[locale].subject, TEXT[locale].removed(TEXT[locale][type], at(locale)), { kind: 'factor_removed', critical: true })),
    delegated: (personId, what) => told(tell(personId, TEXT.vi.delegatedSubject, TEXT.vi.delegated(what.enterprise, what.code, what.role, at('vi')), { kind: 'delegated', chosenOnly: true })),
    async registrationAttempt(personId, locale) {
      const state = await deps.counters.increment(`notice-registration:${personId}`, HOUR_MS, now());
      if (state.count > REGISTRATION_NOTICES_PER_HOUR) {
        const person = await deps.persons.findById(personId);
        if (person) suppressed(personId, 'registration_attempt', 'person', contactsOf(person).map((c) => c.channel));
        return;
      }
      await tell(personId, TEXT[locale].accountSubject, TEXT[locale].registrationAttempt(at(locale)), { kind: 'registration_attempt', chosenOnly: true });
    },
    passwordReset: (personId, locale) => told(tell(personId, TEXT[locale].subject, TEXT[locale].passwordReset(at(locale)), { kind: 'password_reset', critical: true })),
    accountResetRequested: (personId, cancelUrl, readyAtMs, locale) =>
      told(tell(personId, TEXT[locale].subject, TEXT[locale].resetRequested(at(locale), at(locale, readyAtMs), cancelUrl), {
        kind: 'account_reset_requested',
        critical: true,
        unverifiedBody: TEXT[locale].resetRequestedNoLink(at(locale), at(locale, readyAtMs)),
      })),
    async accountResetReady(personId, phone, completeUrl, locale) {
      // The link that completes the reset goes to the verified phone alone, and is never held back
      // by an allowance: the reset cannot be completed any other way. The caller checks the phone;
      // checked again here, since a link must never reach a contact that is not proven.
      const person = await deps.persons.findById(personId);
      if (!person || person.phone !== phone || !person.phoneVerified || !deps.notifier.channels().has('sms')) return false;
      try {
        await deps.notifier.send({ channel: 'sms', to: phone, text: TEXT[locale].resetReady(completeUrl) });
        return true;
      } catch (err) {
        log.warn({ person: personId, notice: 'account_reset_ready', code: (err as { code?: string }).code }, 'account notice not delivered');
        return false;
      }
    },
    accountResetDone: (personId, locale) => told(tell(personId, TEXT[locale].subject, TEXT[locale].resetDone(at(locale)), { kind: 'account_reset_done', critical: true })),
    passwordChanged: (personId, locale) => told(tell(personId, TEXT[locale].subject, TEXT[locale].passwordChanged(at(locale)), { kind: 'password_changed', critical: true })),
    contactChanged: (personId, before, change, locale) =>
      told(tell(personId, TEXT[locale].contactSubject, TEXT[locale].contact[change.what](change.masked, at(locale)) + TEXT[locale].contactTail, { kind: 'contact_changed', critical: true, to: before })),
    async newBrowser(personId, what, makeNotMeUrl, locale) {
      const person = await deps.persons.findById(personId);
      if (!person) return;
      const targets = targetsOf(person, { chosenOnly: true });
      // The link is made (a record in the store) only when a verified contact will receive it.
      if (!targets.length) return;
      const noLink = TEXT[locale].newBrowserNoLink(at(locale, what.at), what.device, what.network);
      const url = targets.some((d) => d.verified) ? await makeNotMeUrl() : undefined;
      await tell(personId, TEXT[locale].newBrowserSubject, url ? TEXT[locale].newBrowser(at(locale, what.at), what.device, what.network, url) : noLink, {
        kind: 'new_browser',
        chosenOnly: true,
        unverifiedBody: noLink,
        allowance: { prefix: 'notice-browser', max: NEW_BROWSER_NOTICES_PER_HOUR },
      });
    },
    notMeReported: (personId, locale) => told(tell(personId, TEXT[locale].subject, TEXT[locale].notMe(at(locale)), { kind: 'not_me', critical: true })),
    selfLocked: (personId, locale) => told(tell(personId, TEXT[locale].subject, TEXT[locale].selfLocked(at(locale)), { kind: 'self_locked', critical: true })),
  };
}
