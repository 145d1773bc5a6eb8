/**
 * The passkey service against real WebAuthn responses (test/helpers/soft-authenticator.ts signs
 * with node:crypto; @simplewebauthn/server is not mocked) and a real store (SQLite in memory, so the
 * atomic sign-counter update is the one production uses).
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { createStore, type Store } from '../store/index.js';
import { SoftAuthenticator, AuthenticatorError } from '../../test/helpers/soft-authenticator.js';
import { createPasskeyService, passkeyAmr, userHandleOf, type PasskeyService } from './passkey.service.js';
import { CODE_ATTEMPTS } from './totp.service.js';

const ORIGIN = 'https://id.example.gov.vn';
const RP_ID = 'id.example.gov.vn';

let now = 1_750_000_000_000;
let store: Store;
let service: PasskeyService;

const alice = { id: '6f1c2a1e-0000-4000-8000-000000000001', pid: '001090000001', name: 'Nguyễn Văn An' };
const binh = { id: '6f1c2a1e-0000-4000-8000-000000000002', pid: '001090000002', name: 'Trần Thị Bình' };

beforeEach(async () => {
  store = await createStore('sqlite::memory:', { now: () => now });
  service = createPasskeyService({ factors: store.factors, counters: store.counters, rpId: RP_ID, rpName: 'dinhdanh', origin: ORIGIN, now: () => now });
});
afterEach(async () => { await store.close(); });

async function passkeysOf(personId: string) {
  return (await store.factors.listForPerson(personId)).filter((f) => f.type === 'passkey');
}

/** Registers a passkey for `person` on `authenticator`; returns the stored factor. */
async function register(person: typeof alice, authenticator: SoftAuthenticator) {
  const { options, challenge } = await service.registrationOptions(person, await passkeysOf(person.id));
  const result = await service.finishRegistration(person.id, JSON.stringify(authenticator.create(options, ORIGIN)), challenge, 'Khóa của tôi');
  if (!result.ok) throw new Error(`registration refused: ${result.reason}`);
  return result.factor;
}

async function assertion(person: typeof alice, authenticator: SoftAuthenticator, call: Parameters<SoftAuthenticator['get']>[2] = {}) {
  const { options, challenge } = await service.authenticationOptions(await passkeysOf(person.id));
  return { response: authenticator.get(options, ORIGIN, call), challenge, options };
}

describe('registration', () => {
  it('offers creation options as the product wants them and keeps the challenge for the caller', async () => {
    const existing = await register(alice, new SoftAuthenticator());
    const { options, challenge } = await service.registrationOptions(alice, await passkeysOf(alice.id));
    expect(options.challenge).toBe(challenge);
    expect(challenge).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    expect(options.rp).toEqual({ id: RP_ID, name: 'dinhdanh' });
    expect(options.user.id).toBe(userHandleOf(alice.id));
    expect(options.user.name).not.toContain(alice.pid);
    expect(options.attestation).toBe('none');
    expect(options.authenticatorSelection).toMatchObject({ residentKey: 'preferred', userVerification: 'preferred' });
    expect(options.pubKeyCredParams.map((p) => p.alg)).toEqual([-7, -257]);
    expect(options.excludeCredentials?.map((c) => c.id)).toEqual([existing.credentialId]);
    // A new challenge every time.
    expect((await service.registrationOptions(alice, [])).challenge).not.toBe(challenge);
  });

  it('stores a confirmed passkey: credential id, COSE public key, counter and transports', async () => {
    const key = new SoftAuthenticator();
    const { options, challenge } = await service.registrationOptions(alice, []);
    const response = key.create(options, ORIGIN);
    const result = await service.finishRegistration(alice.id, JSON.stringify(response), challenge, 'Khóa USB');
    expect(result).toMatchObject({ ok: true, amr: 'hwk', userVerified: true });
    const [stored] = await passkeysOf(alice.id);
    expect(stored).toMatchObject({
      personId: alice.id, type: 'passkey', label: 'Khóa USB', confirmed: true,
      credentialId: response.id, signCount: 0, transports: ['usb'], secretCiphertext: null,
    });
    expect(stored!.publicKey).toMatch(/^[A-Za-z0-9_-]+$/);
    // The COSE key starts with a CBOR map of 5 entries (kty, alg, crv, x, y).
    expect(Buffer.from(stored!.publicKey!, 'base64url')[0]).toBe(0xa5);
  });

  it('says swk for a synced (multi-device, backed-up) passkey', async () => {
    const { options, challenge } = await service.registrationOptions(alice, []);
    const result = await service.finishRegistration(alice.id, new SoftAuthenticator({ backedUp: true }).create(options, ORIGIN), challenge, 'Điện thoại');
    expect(result).toMatchObject({ ok: true, amr: 'swk' });
    expect(passkeyAmr('singleDevice')).toBe('hwk');
    expect(passkeyAmr('multiDevice')).toBe('swk');
  });

  it('an authenticator that already holds one of the person\'s passkeys is excluded by the options', async () => {
    const key = new SoftAuthenticator();
    await register(alice, key);
    const { options } = await service.registrationOptions(alice, await passkeysOf(alice.id));
    expect(() => key.create(options, ORIGIN)).toThrow(AuthenticatorError);
  });

  it.each([
    ['another origin', { origin: 'https://id.example.gov.vn.evil.example' }],
    ['another RP ID', { rpId: 'evil.example' }],
    ['another challenge', { challenge: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
    ['an assertion type', { type: 'webauthn.get' }],
  ])('refuses a response made for %s', async (_name, twist: { origin?: string; rpId?: string; challenge?: string; type?: string }) => {
    const { options, challenge } = await service.registrationOptions(alice, []);
    const response = new SoftAuthenticator().create(options, twist.origin ?? ORIGIN, twist);
    await expect(service.finishRegistration(alice.id, JSON.stringify(response), challenge, 'x')).resolves.toEqual({ ok: false, reason: 'invalid' });
    expect(await passkeysOf(alice.id)).toHaveLength(0);
  });

  it('refuses a response whose reported id is not the attested credential', async () => {
    const { options, challenge } = await service.registrationOptions(alice, []);
    const response = new SoftAuthenticator().create(options, ORIGIN);
    const other = Buffer.alloc(32, 7).toString('base64url');
    const result = await service.finishRegistration(alice.id, { ...response, id: other, rawId: other }, challenge, 'x');
    expect(result).toEqual({ ok: false, reason: 'invalid' });
  });

  it('a credential registered twice is refused the second time', async () => {
    const { options, challenge } = await service.registrationOptions(alice, []);
    const response = JSON.stringify(new SoftAuthenticator().create(options, ORIGIN));
    expect((await service.finishRegistration(alice.id, response, challenge, 'x')).ok).toBe(true);
    expect(await service.finishRegistration(binh.id, response, challenge, 'x')).toEqual({ ok: false, reason: 'duplicate' });
  });

  it.each(malformed())('answers %s with a result, never an exception', async (_name, input) => {
    const { challenge } = await service.registrationOptions(alice, []);
    await expect(service.finishRegistration(alice.id, input, challenge, 'x')).resolves.toEqual({ ok: false, reason: 'malformed' });
  });
});

describe('authentication', () => {
  it('allows the person\'s passkeys, with userVerification preferred', async () => {
    const factor = await register(alice, new SoftAuthenticator());
    const { options, challenge } = await service.authenticationOptions(await passkeysOf(alice.id));
    expect(options.challenge).toBe(challenge);
    expect(options.rpId).toBe(RP_ID);
    expect(options.userVerification).toBe('preferred');
    expect(options.allowCredentials).toEqual([{ id: factor.credentialId, type: 'public-key', transports: ['usb'] }]);
  });

  it('accepts an assertion by the person\'s passkey and stores the new counter', async () => {
    const key = new SoftAuthenticator();
    const factor = await register(alice, key);
    now += 1000;
    const { response, challenge } = await assertion(alice, key);
    const result = await service.finishAuthentication(alice.id, JSON.stringify(response), challenge);
    expect(result).toMatchObject({ ok: true, amr: 'hwk', userVerified: true, backedUp: false });
    if (!result.ok) throw new Error('unreachable');
    expect(result.factor.id).toBe(factor.id);
    expect(await store.factors.find(factor.id)).toMatchObject({ signCount: 1, lastUsedAt: now });
  });

  it('reports a synced passkey as swk and an unverified user as such', async () => {
    const key = new SoftAuthenticator({ backedUp: true, userVerification: false });
    await register(alice, key);
    const { response, challenge } = await assertion(alice, key);
    expect(await service.finishAuthentication(alice.id, response, challenge)).toMatchObject({ ok: true, amr: 'swk', userVerified: false, backedUp: true });
  });

  it.each([
    ['another origin', { origin: 'https://evil.example' }],
    ['another RP ID', { rpId: 'evil.example' }],
    ['another challenge', { challenge: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
    ['a registration type', { type: 'webauthn.create' }],
  ])('refuses an assertion made for %s', async (_name, twist: { origin?: string; rpId?: string; challenge?: string; type?: string }) => {
    const key = new SoftAuthenticator();
    const factor = await register(alice, key);
    const { options, challenge } = await service.authenticationOptions(await passkeysOf(alice.id));
    const response = key.get(options, twist.origin ?? ORIGIN, twist);
    expect(await service.finishAuthentication(alice.id, response, challenge)).toEqual({ ok: false, reason: 'invalid' });
    expect((await store.factors.find(factor.id))!.signCount).toBe(0);
  });

  it('refuses a signature by another key for the same credential id', async () => {
    const key = new SoftAuthenticator();
    const factor = await register(alice, key);
    const impostor = new SoftAuthenticator();
    const { options } = await service.registrationOptions(alice, []);
    impostor.create(options, ORIGIN);
    const { options: request, challenge } = await service.authenticationOptions(await passkeysOf(alice.id));
    const forged = impostor.get(request, ORIGIN, { credentialId: impostor.credentialIds[0]! });
    const result = await service.finishAuthentication(alice.id, { ...forged, id: factor.credentialId, rawId: factor.credentialId }, challenge);
    expect(result).toEqual({ ok: false, reason: 'invalid' });
  });

  it('refuses another person\'s passkey, and a user handle naming someone else', async () => {
    const binhKey = new SoftAuthenticator();
    await register(binh, binhKey);
    const aliceKey = new SoftAuthenticator();
    await register(alice, aliceKey);
    // Binh's authenticator answers Alice's sign-in (a real one would not: Alice's allow list).
    const { options, challenge } = await service.authenticationOptions(await passkeysOf(alice.id));
    const stolen = binhKey.get(options, ORIGIN, { credentialId: binhKey.credentialIds[0]! });
    expect(await service.finishAuthentication(alice.id, stolen, challenge)).toEqual({ ok: false, reason: 'wrong_person' });

    const mine = aliceKey.get(options, ORIGIN);
    const relabelled = { ...mine, response: { ...mine.response, userHandle: userHandleOf(binh.id) } };
    expect(await service.finishAuthentication(alice.id, relabelled, challenge)).toEqual({ ok: false, reason: 'wrong_person' });
  });

  it('refuses an unknown credential', async () => {
    await register(alice, new SoftAuthenticator());
    const stranger = new SoftAuthenticator();
    const { options: creation } = await service.registrationOptions(alice, []);
    stranger.create(creation, ORIGIN);
    const { options, challenge } = await service.authenticationOptions(await passkeysOf(alice.id));
    const response = stranger.get(options, ORIGIN, { credentialId: stranger.credentialIds[0]! });
    expect(await service.finishAuthentication(alice.id, response, challenge)).toEqual({ ok: false, reason: 'unknown_credential' });
  });

  it('refuses a replayed assertion: its counter does not grow', async () => {
    const key = new SoftAuthenticator();
    await register(alice, key);
    const { response, challenge } = await assertion(alice, key);
    expect((await service.finishAuthentication(alice.id, response, challenge)).ok).toBe(true);
    expect(await service.finishAuthentication(alice.id, response, challenge)).toEqual({ ok: false, reason: 'cloned' });
  });

  it('refuses a cloned authenticator whose counter falls behind, and one that goes back to 0', async () => {
    const key = new SoftAuthenticator();
    const factor = await register(alice, key);
    const copy = key.clone();
    for (let i = 0; i < 3; i += 1) {
      const { response, challenge } = await assertion(alice, key);
      expect((await service.finishAuthentication(alice.id, response, challenge)).ok).toBe(true);
    }
    const { response, challenge } = await assertion(alice, copy); // counter 1 < 3
    expect(await service.finishAuthentication(alice.id, response, challenge)).toEqual({ ok: false, reason: 'cloned' });
    const zero = await assertion(alice, key, { counter: 0 });
    expect(await service.finishAuthentication(alice.id, zero.response, zero.challenge)).toEqual({ ok: false, reason: 'cloned' });
    expect((await store.factors.find(factor.id))!.signCount).toBe(3);
  });

  it('of two parallel uses of one counter value, exactly one passes', async () => {
    const key = new SoftAuthenticator();
    await register(alice, key);
    const copy = key.clone();
    const a = await assertion(alice, key);
    const b = await assertion(alice, copy);
    const results = await Promise.all([
      service.finishAuthentication(alice.id, a.response, a.challenge),
      service.finishAuthentication(alice.id, b.response, b.challenge),
    ]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok && r.reason === 'cloned')).toHaveLength(1);
  });

  it('allows authenticators whose counter stays 0', async () => {
    const key = new SoftAuthenticator({ counts: false });
    await register(alice, key);
    for (let i = 0; i < 3; i += 1) {
      const { response, challenge } = await assertion(alice, key);
      expect(await service.finishAuthentication(alice.id, response, challenge)).toMatchObject({ ok: true });
    }
  });

  it.each(malformed())('answers %s with a result, never an exception', async (_name, input) => {
    await register(alice, new SoftAuthenticator());
    const { challenge } = await service.authenticationOptions(await passkeysOf(alice.id));
    await expect(service.finishAuthentication(alice.id, input, challenge)).resolves.toEqual({ ok: false, reason: 'malformed' });
  });

  it('answers garbage that passes the schema with a result too', async () => {
    const key = new SoftAuthenticator();
    await register(alice, key);
    const { response, challenge } = await assertion(alice, key);
    const cases = [
      { ...response, response: { ...response.response, clientDataJSON: Buffer.from('not json').toString('base64url') } },
      { ...response, response: { ...response.response, authenticatorData: 'AAAA' } },
      { ...response, response: { ...response.response, signature: 'AAAA' } },
      { ...response, rawId: 'AAAA' },
    ];
    for (const c of cases) {
      await expect(service.finishAuthentication(alice.id, c, challenge)).resolves.toEqual({ ok: false, reason: 'invalid' });
    }
  });

  it('locks passkey sign-in after 10 failures for 10 minutes; a success before that resets the count', async () => {
    const key = new SoftAuthenticator();
    await register(alice, key);
    for (let i = 0; i < 9; i += 1) expect((await service.finishAuthentication(alice.id, 'nope', 'x')).ok).toBe(false);
    const good = await assertion(alice, key);
    expect((await service.finishAuthentication(alice.id, good.response, good.challenge)).ok).toBe(true);
    expect(await store.counters.get(`mfa-fail:${alice.id}`, now)).toBeUndefined();

    for (let i = 0; i < CODE_ATTEMPTS.freeAttempts; i += 1) expect((await service.finishAuthentication(alice.id, 'nope', 'x')).ok).toBe(false);
    const blocked = await assertion(alice, key);
    expect(await service.finishAuthentication(alice.id, blocked.response, blocked.challenge)).toEqual({ ok: false, reason: 'locked' });
    now += CODE_ATTEMPTS.baseDelayMs;
    const later = await assertion(alice, key);
    expect((await service.finishAuthentication(alice.id, later.response, later.challenge)).ok).toBe(true);
  });
});

/** Inputs a browser (or someone posting by hand) could send instead of a credential. */
function malformed(): Array<[string, unknown]> {
  const big = 'A'.repeat(40_000);
  return [
    ['an empty string', ''],
    ['text that is not JSON', 'not json {'],
    ['JSON null', 'null'],
    ['a JSON number', '42'],
    ['a JSON array', '[]'],
    ['an empty object', '{}'],
    ['undefined', undefined],
    ['a number', 7],
    ['a credential of the wrong type', { id: 'AAAA', rawId: 'AAAA', type: 'password', response: {} }],
    ['ids that are not base64url', { id: 'a+b/c=', rawId: 'a+b/c=', type: 'public-key', response: { clientDataJSON: 'AA', attestationObject: 'AA', authenticatorData: 'AA', signature: 'AA' } }],
    ['a response of the wrong shape', { id: 'AAAA', rawId: 'AAAA', type: 'public-key', response: 'yes' }],
    ['fields of the wrong types', { id: 1, rawId: ['AAAA'], type: 'public-key', response: { clientDataJSON: {}, attestationObject: 2, authenticatorData: null, signature: true } }],
    ['a very long string', big],
    ['a prototype-polluting object', JSON.parse('{"__proto__":{"admin":true},"id":"AAAA"}')],
  ];
}
