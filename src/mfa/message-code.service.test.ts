/**
 * Against the real SQLite store (in memory) and the real outbox notifier in a temporary folder;
 * the store and the service share one injected clock, so expiry, windows and lockouts are moved
 * by hand, never waited for.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { createStore, type Store } from '../store/index.js';
import {
  MESSAGE_CODE, MessageCodeInputError, createMessageCodeService, maskEmail, maskPhone, type MessageCodeService,
} from './message-code.service.js';
import { createOutboxNotifier, readOutbox, routeNotifier } from './notifier/index.js';
import { NotifierError, type Notifier } from './notifier/types.js';

const T0 = Date.UTC(2030, 0, 1, 8, 0, 0);
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const PHONE = '+84912345678';
const ALICE = '3f0c1f6e-8a57-4d0e-9a43-0b1a1c2d3e4f';
const BOB = '7b2d4e6f-1a3c-4b5d-8e9f-0a1b2c3d4e5f';

let clock = T0;
const now = () => clock;
let store: Store;
let dir: string;
let logLines: string[];
let outbox: Notifier;
let service: MessageCodeService;

beforeEach(async () => {
  clock = T0;
  store = await createStore('sqlite::memory:', { now });
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dd-msgcode-'));
  logLines = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  outbox = createOutboxNotifier({ dir, logger: pino({ level: 'info' }, stream), now });
  service = createMessageCodeService({ store: store.oidc, counters: store.counters, notifier: outbox, now });
});

afterEach(async () => {
  await store.close();
  await fs.rm(dir, { recursive: true, force: true });
});

/** The code in the latest outbox message. */
async function lastCode(): Promise<string> {
  const entries = await readOutbox(dir);
  const m = /\b(\d{6})\b/.exec(entries.at(-1)?.text ?? '');
  if (!m) throw new Error('no code in the outbox');
  return m[1]!;
}

async function sendOk(personId = ALICE, channel: 'sms' | 'email' = 'sms', to = PHONE, locale: 'vi' | 'en' = 'vi') {
  const r = await service.send(personId, channel, to, locale);
  if (!r.ok) throw new Error(`send refused: ${r.reason}`);
  return { id: r.id, sentTo: r.sentTo, code: await lastCode() };
}

const wrong = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, '0');

describe('send', () => {
  it('puts the code in the outbox, a masked destination in the log and only a salted hash in the store', async () => {
    const r = await service.send(ALICE, 'sms', PHONE, 'vi');
    expect(r).toMatchObject({ ok: true, sentTo: '+84 *** *** 678', expiresAt: T0 + 5 * MINUTE });
    const { id } = r as { id: string };
    const code = await lastCode();

    const entries = await readOutbox(dir);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ channel: 'sms', to: PHONE });
    expect(entries[0]!.text).toBe(`Mã xác thực dinhdanh của bạn là ${code}. Mã có hiệu lực 5 phút. Không chia sẻ mã này cho ai.`);

    expect(logLines).toHaveLength(1);
    expect(logLines[0]).toContain('+84 *** *** 678');
    expect(logLines[0]).not.toContain(code);
    expect(logLines[0]).not.toContain(PHONE);

    const record = await store.oidc.find(MESSAGE_CODE.model, id);
    expect(record).toMatchObject({ personId: ALICE, channel: 'sms', sentTo: '+84 *** *** 678' });
    expect(JSON.stringify(record)).not.toContain(code);
    expect(JSON.stringify(record)).not.toContain(PHONE);
  });

  it('writes English for en, with a subject for e-mail, and keeps leading zeros', async () => {
    service = createMessageCodeService({ store: store.oidc, counters: store.counters, notifier: outbox, now, random: () => 42 });
    const r = await service.send(ALICE, 'email', 'an@example.vn', 'en');
    expect(r).toMatchObject({ ok: true, sentTo: 'a***@example.vn' });
    const [entry] = await readOutbox(dir);
    expect(entry).toMatchObject({ channel: 'email', to: 'an@example.vn', subject: 'Your dinhdanh verification code' });
    expect(entry!.subject).not.toContain('000042');
    expect(entry!.text).toBe('Your dinhdanh verification code is 000042. It is valid for 5 minutes. Do not share this code with anyone.');
    expect(await service.verify(ALICE, (r as { id: string }).id, '000042')).toEqual({ ok: true, channel: 'email' });
  });

  it('refuses a destination that is not a phone number or address (a caller bug, so an exception)', async () => {
    await expect(service.send(ALICE, 'sms', '0912345678', 'vi')).rejects.toThrow(MessageCodeInputError);
    await expect(service.send(ALICE, 'email', 'an@example.vn\r\nBcc: x@y.vn', 'vi')).rejects.toThrow(MessageCodeInputError);
    await expect(service.send(ALICE, 'sms', '0912345678', 'vi')).rejects.not.toThrow(/0912345678/);
  });

  it('answers unavailable for a channel that is not offered, without using up the limits', async () => {
    service = createMessageCodeService({ store: store.oidc, counters: store.counters, notifier: routeNotifier({ email: outbox }), now });
    expect(service.channels()).toEqual(new Set(['email']));
    expect(await service.send(ALICE, 'sms', PHONE, 'vi')).toEqual({ ok: false, reason: 'unavailable' });
    expect(await readOutbox(dir)).toEqual([]);
    expect((await service.send(ALICE, 'email', 'an@example.vn', 'vi')).ok).toBe(true);
  });

  it('answers unavailable when delivery fails, logs only the channel and error code, and keeps no record', async () => {
    const warn = jest.fn();
    const upserts: string[] = [];
    const failing: Notifier = {
      send: () => Promise.reject(new NotifierError('gateway_status', 'the SMS gateway answered HTTP 500', 500)),
    };
    const spyStore = { ...store.oidc, upsert: async (...args: Parameters<Store['oidc']['upsert']>) => { upserts.push(args[1]); await store.oidc.upsert(...args); } };
    service = createMessageCodeService({ store: spyStore, counters: store.counters, notifier: failing, now, random: () => 123456, logger: { warn } });
    expect(await service.send(ALICE, 'sms', PHONE, 'vi')).toEqual({ ok: false, reason: 'unavailable', cause: 'gateway_status' });
    expect(upserts).toHaveLength(1);
    expect(await store.oidc.find(MESSAGE_CODE.model, upserts[0]!)).toBeUndefined();
    expect(warn).toHaveBeenCalledTimes(1);
    const logged = JSON.stringify(warn.mock.calls);
    expect(logged).toContain('gateway_status');
    expect(logged).not.toContain('123456');
    expect(logged).not.toContain(PHONE);
  });
});

describe('verify', () => {
  it('accepts the right code once; the second time it is used', async () => {
    const { id, code } = await sendOk();
    expect(await service.verify(ALICE, id, code)).toEqual({ ok: true, channel: 'sms' });
    expect(await service.verify(ALICE, id, code)).toEqual({ ok: false, reason: 'used' });
  });

  it('of two parallel right answers exactly one succeeds', async () => {
    const { id, code } = await sendOk();
    const results = await Promise.all([service.verify(ALICE, id, code), service.verify(ALICE, id, code)]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok)).toEqual([{ ok: false, reason: 'used' }]);
  });

  it('does not accept another person\'s code, and that does not spoil it for its owner', async () => {
    const { id, code } = await sendOk();
    expect(await service.verify(BOB, id, code)).toEqual({ ok: false, reason: 'invalid' });
    expect(await service.verify(ALICE, id, code)).toEqual({ ok: true, channel: 'sms' });
  });

  it('refuses malformed codes and ids as invalid', async () => {
    const { id } = await sendOk();
    expect(await service.verify(ALICE, id, '12345')).toEqual({ ok: false, reason: 'invalid' });
    expect(await service.verify(ALICE, id, '12345a')).toEqual({ ok: false, reason: 'invalid' });
    expect(await service.verify(ALICE, 'not-an-id', '123456')).toEqual({ ok: false, reason: 'invalid' });
    expect(await service.verify(ALICE, '00000000-0000-4000-8000-000000000000', '123456')).toEqual({ ok: false, reason: 'expired' });
  });

  it('kills the record after 5 wrong codes: the right one then no longer works', async () => {
    const { id, code } = await sendOk();
    for (let i = 0; i < 5; i += 1) expect(await service.verify(ALICE, id, wrong(code))).toEqual({ ok: false, reason: 'invalid' });
    expect(await store.oidc.find(MESSAGE_CODE.model, id)).toBeUndefined();
    expect(await service.verify(ALICE, id, code)).toEqual({ ok: false, reason: 'expired' });
  });

  it('accepts the right code after 4 wrong ones', async () => {
    const { id, code } = await sendOk();
    for (let i = 0; i < 4; i += 1) expect((await service.verify(ALICE, id, wrong(code))).ok).toBe(false);
    expect(await service.verify(ALICE, id, code)).toEqual({ ok: true, channel: 'sms' });
  });

  it('gives a burst of parallel guesses no more than 5 comparisons', async () => {
    const { id, code } = await sendOk();
    const guesses = Array.from({ length: 9 }, (_, i) => String((Number(code) + 1 + i) % 1_000_000).padStart(6, '0'));
    const results = await Promise.all(guesses.map((g) => service.verify(ALICE, id, g)));
    expect(results.filter((r) => !r.ok && r.reason === 'invalid')).toHaveLength(5);
    expect(results.filter((r) => !r.ok && r.reason === 'expired')).toHaveLength(4);
    expect(await service.verify(ALICE, id, code)).toEqual({ ok: false, reason: 'expired' });
  });

  it('expires after 5 minutes', async () => {
    const first = await sendOk();
    clock += 5 * MINUTE - SECOND;
    expect(await service.verify(ALICE, first.id, first.code)).toEqual({ ok: true, channel: 'sms' });

    clock += MINUTE;
    const second = await sendOk();
    clock += 5 * MINUTE;
    expect(await service.verify(ALICE, second.id, second.code)).toEqual({ ok: false, reason: 'expired' });
  });

  it('locks code entry for 10 minutes after 10 wrong codes', async () => {
    const first = await sendOk();
    // 5 wrong codes kill the record; the next 5 attempts on it still count towards the lockout.
    for (let i = 0; i < 10; i += 1) expect((await service.verify(ALICE, first.id, wrong(first.code))).ok).toBe(false);

    clock += MINUTE;
    const second = await sendOk();
    expect(await service.verify(ALICE, second.id, second.code)).toEqual({ ok: false, reason: 'locked' });
    clock += 9 * MINUTE - SECOND; // 10 minutes after the 10th wrong code, less one second
    expect(await service.verify(ALICE, second.id, second.code)).toEqual({ ok: false, reason: 'locked' });

    clock += SECOND;
    const third = await sendOk();
    expect(await service.verify(ALICE, third.id, third.code)).toEqual({ ok: true, channel: 'sms' });
    // A success clears the failures: a wrong code now is just invalid.
    clock += MINUTE;
    const fourth = await sendOk();
    expect(await service.verify(ALICE, fourth.id, wrong(fourth.code))).toEqual({ ok: false, reason: 'invalid' });
  });

  it('shares the lockout only within one person', async () => {
    const a = await sendOk(ALICE);
    for (let i = 0; i < 10; i += 1) await service.verify(ALICE, a.id, wrong(a.code));
    const b = await sendOk(BOB, 'sms', '+84987654321');
    expect(await service.verify(BOB, b.id, b.code)).toEqual({ ok: true, channel: 'sms' });
  });
});

describe('send limits', () => {
  it('allows one message a minute per person', async () => {
    await sendOk();
    const refused = await service.send(ALICE, 'email', 'an@example.vn', 'vi');
    expect(refused).toEqual({ ok: false, reason: 'rate_limited', retryAfterMs: MINUTE });
    clock += 30 * SECOND;
    expect(await service.send(ALICE, 'sms', PHONE, 'vi')).toEqual({ ok: false, reason: 'rate_limited', retryAfterMs: 30 * SECOND });
    clock += 30 * SECOND;
    expect((await service.send(ALICE, 'sms', PHONE, 'vi')).ok).toBe(true);
    expect(await readOutbox(dir)).toHaveLength(2);
  });

  it('lets exactly one of a parallel burst through', async () => {
    const results = await Promise.all(Array.from({ length: 6 }, () => service.send(ALICE, 'sms', PHONE, 'vi')));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok).map((r) => !r.ok && r.reason)).toEqual(Array(5).fill('rate_limited'));
    expect(await readOutbox(dir)).toHaveLength(1);
  });

  it('allows 5 messages an hour per person, and again after the hour', async () => {
    for (let i = 0; i < 5; i += 1) {
      await sendOk(ALICE, 'sms', PHONE);
      clock += MINUTE;
    }
    // Minute 5: the sixth message of the hour, even to another destination.
    expect(await service.send(ALICE, 'email', 'an@example.vn', 'vi')).toEqual({ ok: false, reason: 'rate_limited', retryAfterMs: 55 * MINUTE });
    clock = T0 + 60 * MINUTE - SECOND;
    expect((await service.send(ALICE, 'sms', PHONE, 'vi')).ok).toBe(false);
    clock = T0 + 60 * MINUTE;
    expect((await service.send(ALICE, 'sms', PHONE, 'vi')).ok).toBe(true);
    expect(await readOutbox(dir)).toHaveLength(6);
  });

  it('allows 1 message a minute and 5 an hour per destination across accounts, and again after the hour', async () => {
    const persons = Array.from({ length: 7 }, (_, i) => `00000000-0000-4000-8000-00000000000${i}`);
    await sendOk(persons[0], 'email', 'an@example.vn');
    // A second account's code to the same address within the minute: refused until the minute ends.
    expect(await service.send(persons[1]!, 'email', 'an@example.vn', 'vi')).toEqual({ ok: false, reason: 'rate_limited', retryAfterMs: MINUTE });
    for (const p of persons.slice(1, 5)) {
      clock += MINUTE;
      await sendOk(p, 'email', 'an@example.vn');
    }
    clock += MINUTE;
    // Another account, same address (in another case): refused for the hour.
    expect(await service.send(persons[5]!, 'email', 'AN@example.vn', 'vi')).toEqual({ ok: false, reason: 'rate_limited', retryAfterMs: 55 * MINUTE });
    // That account can still receive codes at its own address.
    expect((await service.send(persons[6]!, 'email', 'other@example.vn', 'vi')).ok).toBe(true);
    clock += 55 * MINUTE;
    expect((await service.send(persons[5]!, 'email', 'an@example.vn', 'vi')).ok).toBe(true);
  });

  it('a decoy neither checks nor counts the destination\'s limits; `quiet` answers as sent and sends nothing', async () => {
    // Five decoys naming a phone use up none of its codes.
    for (let i = 0; i < 5; i += 1) {
      clock += MINUTE;
      expect((await service.send(`decoy-${i}`, 'sms', PHONE, 'vi', { decoy: true })).ok).toBe(true);
    }
    expect(await readOutbox(dir)).toHaveLength(0);
    await sendOk(ALICE, 'sms', PHONE);
    // Within the minute, `quiet`: a record, no message, no 429.
    const quiet = await service.send(BOB, 'sms', PHONE, 'vi', { destinationLimit: 'quiet' });
    expect(quiet.ok).toBe(true);
    expect(await readOutbox(dir)).toHaveLength(1);
    // The person's own limits still refuse.
    expect((await service.send(ALICE, 'sms', PHONE, 'vi', { destinationLimit: 'quiet' })).ok).toBe(false);
  });

  it('keeps the destination out of counter keys (only its hash is stored)', async () => {
    const increments: string[] = [];
    const counters = { ...store.counters, increment: (...args: Parameters<Store['counters']['increment']>) => { increments.push(args[0]); return store.counters.increment(...args); } };
    service = createMessageCodeService({ store: store.oidc, counters, notifier: outbox, now });
    await sendOk();
    expect(increments).toHaveLength(4);
    for (const key of increments) expect(key).not.toContain('912345678');
  });
});

describe('mask helpers', () => {
  it('masks as the pages show them', () => {
    expect(maskPhone('+84912345678')).toBe('+84 *** *** 678');
    expect(maskEmail('an@example.vn')).toBe('a***@example.vn');
  });
});
