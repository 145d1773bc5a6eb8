/**
 * One-time codes sent by SMS or e-mail (NIST SP 800-63B §5.1.3.2 out-of-band authenticators via
 * the PSTN, a RESTRICTED authenticator: they give `substantial`, never `high`, PRODUCT.md Levels).
 *
 * - A code is 6 random digits (crypto.randomInt), valid 5 minutes, stored only as a salted SHA-256
 *   hash in a short-lived `MessageCode` record of the OIDC model store, keyed by a fresh id that
 *   the sign-in journey keeps. The hash keeps codes out of backups and dumps; it is no defence
 *   against someone who reads the live store within 5 minutes (10^6 candidates), nor meant to be.
 * - Single use: `store.consume` is an atomic compare-and-set, so of parallel right answers exactly
 *   one succeeds (§5.1.3.2: "the verifier SHALL accept the secret only once").
 * - 5 code comparisons per record, then it is destroyed; and the same person-wide lockout as the
 *   other codes (CODE_ATTEMPTS: 10 wrong codes lock code entry for 10 minutes, §5.2.2).
 * - Sending is rate limited per person (1 a minute, 5 an hour) and per destination (5 an hour), so
 *   neither one account nor one phone number can be used to flood someone with messages.
 * Refusals are results, not exceptions; nothing here logs a code, a hash or a full destination.
 */
import crypto from 'node:crypto';
import type { Logger } from 'pino';
import type { CounterRepository, OidcModelStore } from '../store/index.js';
import type { Locale } from '../http/i18n.js';
import { CODE_RE } from './totp.service.js';
import { claimCodeAttempt, clearCodeAttempts } from './attempts.js';
import { maskDestination } from './notifier/mask.js';
import type { Channel, ChannelNotifier, Notifier } from './notifier/types.js';

export { maskEmail, maskPhone } from './notifier/mask.js';

export const MESSAGE_CODE = Object.freeze({
  model: 'MessageCode',
  digits: 6,
  ttlSeconds: 5 * 60,
  /** Code comparisons one record allows; the last wrong one destroys it. */
  maxAttempts: 5,
});

export const MESSAGE_SEND_LIMITS = Object.freeze({
  /** At most one message per person in this interval. */
  personIntervalMs: 60_000,
  windowMs: 60 * 60_000,
  perPersonPerWindow: 5,
  /** A number or address receiving codes for several accounts (or journeys) is limited too: 1 a minute, 5 an hour. */
  perDestinationPerWindow: 5,
});

export type SendResult =
  | { ok: true; id: string; sentTo: string; expiresAt: number }
  | { ok: false; reason: 'rate_limited'; retryAfterMs: number }
  /** The channel is not offered, or delivery failed (`cause`: the notifier's stable error code). */
  | { ok: false; reason: 'unavailable'; cause?: string };

export interface SendOptions {
  /**
   * Everything a real send does (limits counted, a record written) except the message: the record's
   * hash is of a code nobody knows, so no answer will ever match it. Self-service recovery takes
   * this path when the number and contact match no account, so that neither its answer, its status
   * nor its time tells the two apart (OWASP ASVS 5.0 6.3.8).
   */
  decoy?: boolean;
  /**
   * Returns once the record is written and delivers afterwards (a failure is logged, not returned):
   * a gateway's latency then shows in no response's time. Used with `decoy`.
   */
  background?: boolean;
  /**
   * The limits on the destination (1 code a minute, 5 an hour, whoever asks): `count` (the default)
   * refuses with `rate_limited`; `quiet` answers as if sent and sends nothing (recovery: a 429 only
   * for a phone on file would tell it apart); `skip` neither checks nor counts them — the default of
   * a decoy, so that requests naming someone else's phone cannot use up its codes.
   */
  destinationLimit?: 'count' | 'quiet' | 'skip';
}

export type MessageCodeResult = { ok: true; channel: Channel } | { ok: false; reason: 'invalid' | 'expired' | 'locked' | 'used' };

export interface MessageCodeService {
  /** The channels this deployment can send codes to. */
  channels(): Set<Channel>;
  /**
   * Sends a new code to `destination` (the person's E.164 phone number or e-mail address, as stored
   * on their account). An earlier code sent to the person stays valid until it expires or is used.
   */
  send(personId: string, channel: Channel, destination: string, locale: Locale, options?: SendOptions): Promise<SendResult>;
  /**
   * Checks `code` against the record `id` sent to `personId`. `expired` also covers a record that
   * no longer exists (expired, or destroyed after 5 wrong codes): either way, send a new code.
   */
  verify(personId: string, id: string, code: string): Promise<MessageCodeResult>;
}

/** Thrown only for a caller's broken invariant (a destination that is not a phone number or address). */
export class MessageCodeInputError extends Error {
  readonly code = 'message_code_input';
  constructor(message: string) {
    super(message);
    this.name = 'MessageCodeInputError';
  }
}

interface MessageCodeRecord {
  personId: string;
  channel: Channel;
  salt: string;
  hash: string;
  sentTo: string;
  createdAt: number;
  expiresAt: number;
}

const E164_RE = /^\+[1-9]\d{7,14}$/;
const EMAIL_RE = /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/;
const ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const TEXTS: Record<Locale, { subject: string; text: (code: string) => string }> = {
  vi: {
    subject: 'Mã xác thực dinhdanh',
    text: (code) => `Mã xác thực dinhdanh của bạn là ${code}. Mã có hiệu lực 5 phút. Không chia sẻ mã này cho ai.`,
  },
  en: {
    subject: 'Your dinhdanh verification code',
    text: (code) => `Your dinhdanh verification code is ${code}. It is valid for 5 minutes. Do not share this code with anyone.`,
  },
};

function digest(salt: string, id: string, personId: string, code: string): string {
  return crypto.createHash('sha256').update(`${salt}\u0000${id}\u0000${personId}\u0000${code}`).digest('base64url');
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

/** Destinations appear in counter keys only as hashes (no phone numbers or addresses in the store). */
function destinationKey(channel: Channel, destination: string): string {
  return crypto.createHash('sha256').update(`${channel}\u0000${destination.toLowerCase()}`).digest('base64url');
}

function isRecord(payload: Record<string, unknown>): payload is Record<string, unknown> & MessageCodeRecord {
  return typeof payload.personId === 'string' && typeof payload.salt === 'string' && typeof payload.hash === 'string'
    && typeof payload.expiresAt === 'number' && (payload.channel === 'sms' || payload.channel === 'email');
}

export function createMessageCodeService(deps: {
  store: OidcModelStore;
  counters: CounterRepository;
  notifier: Notifier | ChannelNotifier;
  now?: () => number;
  /** crypto.randomInt by default; returns an integer in [min, max). */
  random?: (min: number, max: number) => number;
  /** For delivery failures only (channel and error code; never the text or the destination). */
  logger?: Pick<Logger, 'warn'>;
}): MessageCodeService {
  const now = deps.now ?? Date.now;
  const random = deps.random ?? ((min: number, max: number) => crypto.randomInt(min, max));
  const attemptsKey = (id: string) => `message-code-attempts:${id}`;
  const channels = (): Set<Channel> =>
    'channels' in deps.notifier ? deps.notifier.channels() : new Set<Channel>(['sms', 'email']);

  /**
   * Fixed windows counted with `counters.increment`. A request refused by any limit counts against
   * none of them (so `retryAfterMs` is exact and a refused retry does not push the next one back);
   * the pre-check is a plain read, and the atomic increments that follow catch a parallel burst
   * that slipped past it (then the burst's extra requests are refused, and do count).
   *
   * Returns how long to wait when a limit on `personId` refuses the send, or `quiet` when only the
   * destination's limits are full and the caller asked for `destinationLimit: 'quiet'`.
   */
  async function rateLimit(personId: string, channel: Channel, destination: string, t: number, destinationLimit: 'count' | 'quiet' | 'skip'): Promise<number | 'quiet' | undefined> {
    const L = MESSAGE_SEND_LIMITS;
    const dest = destinationKey(channel, destination);
    const limits = [
      { key: `message-send:person-minute:${personId}`, windowMs: L.personIntervalMs, max: 1, onDestination: false },
      { key: `message-send:person-hour:${personId}`, windowMs: L.windowMs, max: L.perPersonPerWindow, onDestination: false },
      ...(destinationLimit === 'skip' ? [] : [
        { key: `message-send:destination-minute:${dest}`, windowMs: L.personIntervalMs, max: 1, onDestination: true },
        { key: `message-send:destination-hour:${dest}`, windowMs: L.windowMs, max: L.perDestinationPerWindow, onDestination: true },
      ]),
    ];
    const decide = (states: Array<{ count: number; expiresAt: number } | undefined>, over: (count: number, max: number) => boolean): number | 'quiet' | undefined => {
      const full = limits.flatMap((l, i) => { const c = states[i]; return c && over(c.count, l.max) ? [{ l, wait: c.expiresAt - t }] : []; });
      if (full.length === 0) return undefined;
      if (destinationLimit === 'quiet' && full.every((f) => f.l.onDestination)) return 'quiet';
      return Math.max(0, ...full.map((f) => f.wait));
    };
    const current = await Promise.all(limits.map((l) => deps.counters.get(l.key, t)));
    const before = decide(current, (count, max) => count >= max);
    if (before !== undefined) return before;
    const counted = await Promise.all(limits.map((l) => deps.counters.increment(l.key, l.windowMs, t)));
    return decide(counted, (count, max) => count > max);
  }

  return {
    channels,

    async send(personId, channel, destination, locale, options = {}) {
      if (channel === 'sms' ? !E164_RE.test(destination) : !(EMAIL_RE.test(destination) && destination.length <= 254)) {
        throw new MessageCodeInputError(channel === 'sms' ? 'the destination is not an E.164 phone number' : 'the destination is not an e-mail address');
      }
      if (!channels().has(channel)) return { ok: false, reason: 'unavailable' };

      const t = now();
      const wait = await rateLimit(personId, channel, destination, t, options.destinationLimit ?? (options.decoy ? 'skip' : 'count'));
      if (typeof wait === 'number') return { ok: false, reason: 'rate_limited', retryAfterMs: wait };
      // The destination has had its codes for now: answered as if sent, and nothing is sent.
      const decoy = options.decoy === true || wait === 'quiet';

      const code = String(random(0, 10 ** MESSAGE_CODE.digits)).padStart(MESSAGE_CODE.digits, '0');
      // A decoy's record holds the hash of a code that is never sent, under a salt nobody sees.
      const id = crypto.randomUUID();
      const salt = crypto.randomBytes(16).toString('base64url');
      const sentTo = maskDestination(channel, destination);
      const expiresAt = t + MESSAGE_CODE.ttlSeconds * 1000;
      const record: MessageCodeRecord = { personId, channel, salt, hash: digest(salt, id, personId, code), sentTo, createdAt: t, expiresAt };
      await deps.store.upsert(MESSAGE_CODE.model, id, { ...record }, MESSAGE_CODE.ttlSeconds);

      const text = TEXTS[locale] ?? TEXTS.vi;
      const deliver = async (): Promise<string | undefined> => {
        try {
          await deps.notifier.send({ channel, to: destination, subject: channel === 'email' ? text.subject : undefined, text: text.text(code) });
          return undefined;
        } catch (err) {
          await deps.store.destroy(MESSAGE_CODE.model, id);
          const cause = typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : 'error';
          deps.logger?.warn({ component: 'message-code', channel, cause }, 'a one-time code message could not be delivered');
          return cause;
        }
      };
      if (decoy) return { ok: true, id, sentTo, expiresAt };
      if (options.background) {
        // After the answer is written (the next turn of the event loop), so that none of the
        // delivery's work lands in this response's time.
        setImmediate(() => { void deliver().catch(() => {}); });
        return { ok: true, id, sentTo, expiresAt };
      }
      const cause = await deliver();
      if (cause !== undefined) return { ok: false, reason: 'unavailable', cause };
      return { ok: true, id, sentTo, expiresAt };
    },

    async verify(personId, id, code) {
      const t = now();
      const admitted = await claimCodeAttempt(deps.counters, personId, t);
      if (!admitted) return { ok: false, reason: 'locked' };
      if (typeof id !== 'string' || !ID_RE.test(id)) return { ok: false, reason: 'invalid' };

      const payload = await deps.store.find(MESSAGE_CODE.model, id);
      if (!payload) return { ok: false, reason: 'expired' };
      if (!isRecord(payload) || payload.personId !== personId) return { ok: false, reason: 'invalid' };
      if (payload.consumed !== undefined) return { ok: false, reason: 'used' };
      if (payload.expiresAt <= t) return { ok: false, reason: 'expired' };

      // Counted before comparing, atomically: a burst of parallel guesses gets 5 comparisons, no more.
      const attempts = await deps.counters.increment(attemptsKey(id), MESSAGE_CODE.ttlSeconds * 1000, t);
      if (attempts.count > MESSAGE_CODE.maxAttempts) {
        await deps.store.destroy(MESSAGE_CODE.model, id);
        return { ok: false, reason: 'expired' };
      }
      if (typeof code !== 'string' || !CODE_RE.test(code) || !sameHash(digest(payload.salt, id, personId, code), payload.hash)) {
        if (attempts.count >= MESSAGE_CODE.maxAttempts) await deps.store.destroy(MESSAGE_CODE.model, id);
        return { ok: false, reason: 'invalid' };
      }
      if (!(await deps.store.consume(MESSAGE_CODE.model, id))) return { ok: false, reason: 'used' };
      await clearCodeAttempts(deps.counters, personId);
      return { ok: true, channel: payload.channel };
    },
  };
}
