/**
 * The backend-neutral store contract: what EVERY Store backend must do. A backend's test file calls
 * `storeContract(name, makeStore)`.
 *
 * `makeStore` returns a migrated store whose clock is the given `now` (epoch ms); the store uses it
 * for oidc expiry and for record timestamps (createdAt / updatedAt). The store need not be empty:
 * every test works in its own random namespace and checks relative facts (count deltas, order of
 * its own rows), so a backend that can only share one database (e.g. a CI MongoDB) can run it too.
 */
import { createHash, randomInt, randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { contactsFromFields } from '../../src/store/contacts.js';
import {
  StoreConflictError,
  StoreUnavailableError,
  type AccountEvidence,
  type ActivityEntry,
  type Approval,
  type ApprovalStatus,
  type Contact,
  type AuditEntry,
  type Delegation,
  type Enterprise,
  type Factor,
  type LockReason,
  type NewFactor,
  type NewPerson,
  type NewPortal,
  type Operator,
  type SsfStream,
  type OperatorRole,
  type OrgGrant,
  type Person,
  type Portal,
  type SigningKeyRecord,
  type Store,
  type CopyCollection,
  COPY_COLLECTIONS,
} from '../../src/store/types.js';
import { createStore } from '../../src/store/create-store.js';

export type MakeStore = (opts: { now: () => number }) => Promise<Store>;

const T0 = Date.UTC(2030, 0, 1, 0, 0, 0);
const SECOND = 1000;

/** Injection-shaped strings that must be treated as plain data. */
const HOSTILE = ["' OR 1=1 --", '{"$ne":null}', '%', '_', '"; DROP TABLE persons; --', '\\', '*'];

function ns(): string {
  return randomUUID().slice(0, 8);
}

function randomPid(): string {
  return String(randomInt(0, 1e12)).padStart(12, '0');
}

/** A random 10-digit enterprise code. */
function randomCode(): string {
  return String(randomInt(0, 1e10)).padStart(10, '0');
}

/** `n` distinct random enterprise codes, ascending. */
function randomCodes(n: number): string[] {
  const codes = new Set<string>();
  while (codes.size < n) codes.add(randomCode());
  return [...codes].sort(compareStrings);
}

function newEnterprise(overrides: Partial<Omit<Enterprise, 'createdAt' | 'updatedAt'>> = {}): Omit<Enterprise, 'createdAt' | 'updatedAt'> {
  return { code: randomCode(), name: 'Công ty TNHH Một thành viên Ánh Dương', status: 'active', parentCode: null, ...overrides };
}

function newDelegation(
  enterpriseCode: string,
  personId: string,
  overrides: Partial<Omit<Delegation, 'createdAt' | 'revokedAt'>> = {},
): Omit<Delegation, 'createdAt' | 'revokedAt'> {
  return { enterpriseCode, personId, role: 'ke-toan', until: null, portals: null, grantedBy: randomUUID(), ...overrides };
}

function newOrgGrant(
  enterpriseCode: string,
  personId: string,
  expiresAt: number,
  overrides: Partial<Omit<OrgGrant, 'createdAt'>> = {},
): Omit<OrgGrant, 'createdAt'> {
  return {
    grantId: `grant-${randomUUID()}`,
    enterpriseCode,
    personId,
    clientId: `portal-${randomUUID()}`,
    sessionUid: `sess-${randomUUID()}`,
    expiresAt,
    ...overrides,
  };
}

function newPerson(overrides: Partial<NewPerson> = {}): NewPerson {
  return {
    id: randomUUID(),
    pid: randomPid(),
    name: 'Nguyễn Văn An',
    familyName: 'Nguyễn',
    givenName: 'Văn An',
    birthdate: '1990-01-02',
    gender: 'male',
    email: null,
    emailVerified: false,
    phone: null,
    phoneVerified: false,
    address: null,
    level: 2,
    passwordHash: '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA',
    status: 'active',
    ...overrides,
  };
}

function newPortal(overrides: Partial<NewPortal> = {}): NewPortal {
  return {
    clientId: `portal-${randomUUID()}`,
    name: 'Cổng dịch vụ công',
    metadata: {
      redirect_uris: ['https://dichvucong.example.vn/cb'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    secretCiphertext: 'v1.nonce.ciphertext',
    sector: 'dichvucong.example.vn',
    nationalId: false,
    nationalIdBasis: null,
    disabled: false,
    ...overrides,
  };
}

function newTotp(personId: string, overrides: Partial<NewFactor> = {}): NewFactor {
  return {
    id: randomUUID(),
    personId,
    type: 'totp',
    label: 'Điện thoại của tôi',
    confirmed: false,
    secretCiphertext: 'v1.nonce.sealed-base32-seed',
    credentialId: null,
    publicKey: null,
    signCount: null,
    transports: null,
    ...overrides,
  };
}

function newPasskey(personId: string, overrides: Partial<NewFactor> = {}): NewFactor {
  return {
    id: randomUUID(),
    personId,
    type: 'passkey',
    label: 'Khoá bảo mật',
    confirmed: true,
    secretCiphertext: null,
    credentialId: `cred-${randomUUID()}`,
    publicKey: 'pQECAyYgASFYIPublicKeyBase64url',
    signCount: 0,
    transports: ['internal', 'hybrid'],
    ...overrides,
  };
}

function newSigningKey(kid: string, overrides: Partial<SigningKeyRecord> = {}): SigningKeyRecord {
  return {
    kid,
    alg: 'ES256',
    publicJwk: { kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0', kid, alg: 'ES256', use: 'sig' },
    privateJwkSealed: `v1.nonce.sealed-private-jwk-${kid}`,
    origin: 'operator',
    createdAt: T0,
    activateAt: T0,
    retiredAt: null,
    ...overrides,
  };
}

function newEvidence(personId: string, overrides: Partial<AccountEvidence> = {}): AccountEvidence {
  return {
    id: randomUUID(),
    personId,
    action: 'set-level',
    reason: 'Đối chiếu trực tiếp tại bộ phận một cửa',
    evidence: { documentType: 'cccd', documentNumber: '001090000001', place: 'Công an phường Tràng Tiền' },
    operator: 'operator:quản-trị',
    createdAt: T0,
    ...overrides,
  };
}

/** What `persons.create(input)` returns at `at` for an input without a contact list. */
function createdPerson(input: NewPerson, at: number): Person {
  return {
    ...input,
    lockReason: input.status === 'locked' ? 'operator' : null,
    contacts: contactsFromFields(input, at),
    contactsRev: 0,
    noticeContact: null,
    passwordResetRequired: false,
    attention: null,
    accessRevokedBefore: null,
    createdAt: at,
    updatedAt: at,
  };
}

function newContact(kind: Contact['kind'], overrides: Partial<Contact> = {}): Contact {
  const id = randomUUID();
  return {
    id,
    kind,
    value: kind === 'phone' ? `+849${String(randomInt(0, 1e8)).padStart(8, '0')}` : `${id.slice(0, 8)}@example.vn`,
    verified: false,
    addedAt: T0,
    verifiedAt: null,
    ...overrides,
  };
}

const DAY = 24 * 3600 * SECOND;

function newActivity(personId: string, overrides: Partial<ActivityEntry> = {}): ActivityEntry {
  return {
    id: randomUUID(),
    personId,
    at: T0,
    event: 'SIGN_IN_COMPLETED',
    details: { portal: 'Cổng dịch vụ công', acr: 'substantial', device: 'Firefox · Linux', network: 'Viettel · Hà Nội', new_browser: false, count: 1, by: null },
    expiresAt: T0 + 183 * DAY,
    ...overrides,
  };
}

function newSsfStream(clientId: string, overrides: Partial<SsfStream> = {}): SsfStream {
  return {
    id: randomUUID(), clientId, eventsRequested: ['https://schemas.openid.net/secevent/risc/event-type/account-disabled'], deliveryMethod: 'urn:ietf:rfc:8936',
    endpointUrl: null, authorizationHeader: null, description: null, status: 'enabled', statusReason: null, createdAt: 1_700_000_000_000, updatedAt: 1_700_000_000_000,
    ...overrides,
  };
}

function newApproval(overrides: Partial<Approval> = {}): Approval {
  return {
    id: randomUUID(),
    action: 'set-level-2',
    subject: randomUUID(),
    params: { personId: randomUUID(), documentType: 'cccd' },
    proposedBy: randomUUID(),
    proposedRole: 'helpdesk',
    reason: 'Công dân đến bộ phận một cửa, đối chiếu CCCD gắn chip',
    evidence: null,
    status: 'pending',
    createdAt: T0,
    expiresAt: T0 + DAY,
    decidedBy: null,
    decidedRole: null,
    decidedAt: null,
    decisionReason: null,
    outcome: null,
    ...overrides,
  };
}

type AuditInput = Pick<AuditEntry, 'at' | 'event' | 'eventId' | 'details'>;

/** JSON with object keys sorted: the same value always gives the same text. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => compareStrings(a, b));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** What a real seal computes: sha256 over the canonical form of the entry and its place in the chain. */
function auditHash(seq: number, prevHash: string, entry: AuditInput): string {
  const { at, event, eventId, details } = entry;
  return createHash('sha256').update(canonical({ seq, at, event, eventId, details, prevHash })).digest('hex');
}

/** A seal for `entry` that records every call it gets. */
function recordingSeal(entry: AuditInput): { seal: (seq: number, prevHash: string) => string; calls: unknown[][] } {
  const calls: unknown[][] = [];
  return {
    calls,
    seal: (...args: [number, string]) => {
      calls.push(args);
      return auditHash(args[0], args[1], entry);
    },
  };
}

function auditInput(overrides: Partial<AuditInput> = {}): AuditInput {
  return {
    at: T0,
    event: 'LOGIN_SUCCEEDED',
    eventId: 1001,
    details: { person: `pseudo-${randomUUID()}`, portal: 'portal-dichvucong', amr: ['pwd', 'otp'] },
    ...overrides,
  };
}

const ZERO_HASH = '0'.repeat(64);

/** Binary (code unit) order; tests that rely on it use ASCII ids, where all backends agree. */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function utf8(s: string): string {
  return Buffer.from(s, 'utf8').toString('hex');
}

export function storeContract(name: string, makeStore: MakeStore): void {
  describe(`store contract: ${name}`, () => {
    let store: Store;
    let clock: number;
    const tick = (ms: number): void => {
      clock += ms;
    };

    beforeEach(async () => {
      clock = T0;
      store = await makeStore({ now: () => clock });
    });

    afterEach(async () => {
      await store.close();
    });

    describe('oidc models', () => {
      it('round-trips a payload through upsert and find', async () => {
        const id = `id-${ns()}`;
        const payload = {
          accountId: randomUUID(),
          kind: 'AccessToken',
          scope: 'openid profile',
          claims: { id_token: { name: null } },
          nested: { list: [1, 'two', true, null, { three: 3 }] },
          text: 'Nguyễn Văn Á ✓',
          iat: 1_893_456_000,
        };
        await store.oidc.upsert('AccessToken', id, payload, 3600);
        const found = await store.oidc.find('AccessToken', id);
        expect(found).toEqual(payload);
        expect(found).not.toHaveProperty('consumed');
      });

      it('returns undefined for a missing id', async () => {
        await expect(store.oidc.find('AccessToken', `missing-${ns()}`)).resolves.toBeUndefined();
      });

      it('checks expiry on read: a record is gone once now reaches upsert time + expiresIn', async () => {
        const id = `id-${ns()}`;
        const uid = `uid-${ns()}`;
        const userCode = `CODE-${ns()}`;
        await store.oidc.upsert('DeviceCode', id, { uid, userCode }, 60);
        tick(60 * SECOND - 1);
        await expect(store.oidc.find('DeviceCode', id)).resolves.toEqual({ uid, userCode });
        await expect(store.oidc.findByUid('DeviceCode', uid)).resolves.toBeDefined();
        await expect(store.oidc.findByUserCode('DeviceCode', userCode)).resolves.toBeDefined();
        tick(1);
        await expect(store.oidc.find('DeviceCode', id)).resolves.toBeUndefined();
        await expect(store.oidc.findByUid('DeviceCode', uid)).resolves.toBeUndefined();
        await expect(store.oidc.findByUserCode('DeviceCode', userCode)).resolves.toBeUndefined();
        await expect(store.oidc.consume('DeviceCode', id)).resolves.toBe(false);
      });

      it('keeps a record without expiresIn indefinitely', async () => {
        const id = `id-${ns()}`;
        await store.oidc.upsert('Grant', id, { a: 1 }, undefined);
        tick(10 * 365 * 24 * 3600 * SECOND);
        await expect(store.oidc.find('Grant', id)).resolves.toEqual({ a: 1 });
      });

      it('finds by uid within the model only', async () => {
        const uid = `uid-${ns()}`;
        const id = `id-${ns()}`;
        await store.oidc.upsert('Session', id, { uid, accountId: 'a' }, 600);
        await store.oidc.upsert('Interaction', `other-${ns()}`, { uid: `uid-${ns()}` }, 600);
        await expect(store.oidc.findByUid('Session', uid)).resolves.toEqual({ uid, accountId: 'a' });
        await expect(store.oidc.findByUid('Interaction', uid)).resolves.toBeUndefined();
        await expect(store.oidc.findByUid('Session', `uid-${ns()}`)).resolves.toBeUndefined();
      });

      it('finds by user code within the model only', async () => {
        const userCode = `ABCD-${ns()}`;
        await store.oidc.upsert('DeviceCode', `id-${ns()}`, { userCode, params: { client_id: 'c' } }, 600);
        await expect(store.oidc.findByUserCode('DeviceCode', userCode)).resolves.toEqual({
          userCode,
          params: { client_id: 'c' },
        });
        await expect(store.oidc.findByUserCode('Session', userCode)).resolves.toBeUndefined();
        await expect(store.oidc.findByUserCode('DeviceCode', `ABCD-${ns()}`)).resolves.toBeUndefined();
      });

      it('upsert replaces the whole record: payload, lookup keys and expiry', async () => {
        const id = `id-${ns()}`;
        const oldUid = `uid-${ns()}`;
        const newUid = `uid-${ns()}`;
        await store.oidc.upsert('Session', id, { uid: oldUid, old: true }, 10);
        await store.oidc.upsert('Session', id, { uid: newUid, fresh: 'yes' }, 3600);
        await expect(store.oidc.find('Session', id)).resolves.toEqual({ uid: newUid, fresh: 'yes' });
        await expect(store.oidc.findByUid('Session', oldUid)).resolves.toBeUndefined();
        await expect(store.oidc.findByUid('Session', newUid)).resolves.toEqual({ uid: newUid, fresh: 'yes' });
        tick(11 * SECOND);
        await expect(store.oidc.find('Session', id)).resolves.toEqual({ uid: newUid, fresh: 'yes' });
      });

      it('destroy removes one record of one model and tolerates a missing id', async () => {
        const id = `id-${ns()}`;
        await store.oidc.upsert('Session', id, { s: 1 }, 600);
        await store.oidc.upsert('Interaction', id, { i: 1 }, 600);
        await store.oidc.destroy('Session', id);
        await expect(store.oidc.find('Session', id)).resolves.toBeUndefined();
        await expect(store.oidc.find('Interaction', id)).resolves.toEqual({ i: 1 });
        await expect(store.oidc.destroy('Session', id)).resolves.toBeUndefined();
      });

      it("revokeByGrantId removes only that grant's records of that model", async () => {
        const g1 = `grant-${ns()}`;
        const g2 = `grant-${ns()}`;
        const [a1, a2, a3, r1] = [`a-${ns()}`, `a-${ns()}`, `a-${ns()}`, `r-${ns()}`];
        await store.oidc.upsert('AccessToken', a1, { grantId: g1 }, 600);
        await store.oidc.upsert('AccessToken', a2, { grantId: g1 }, 600);
        await store.oidc.upsert('AccessToken', a3, { grantId: g2 }, 600);
        await store.oidc.upsert('RefreshToken', r1, { grantId: g1 }, 600);
        await store.oidc.revokeByGrantId('AccessToken', g1);
        await expect(store.oidc.find('AccessToken', a1)).resolves.toBeUndefined();
        await expect(store.oidc.find('AccessToken', a2)).resolves.toBeUndefined();
        await expect(store.oidc.find('AccessToken', a3)).resolves.toEqual({ grantId: g2 });
        await expect(store.oidc.find('RefreshToken', r1)).resolves.toEqual({ grantId: g1 });
        await expect(store.oidc.revokeByGrantId('AccessToken', `grant-${ns()}`)).resolves.toBeUndefined();
      });

      it('consume marks the record once with `consumed` in epoch seconds', async () => {
        const id = `code-${ns()}`;
        await store.oidc.upsert('AuthorizationCode', id, { grantId: 'g' }, 60);
        tick(1500);
        await expect(store.oidc.consume('AuthorizationCode', id)).resolves.toBe(true);
        const consumedAt = Math.floor(clock / 1000);
        await expect(store.oidc.find('AuthorizationCode', id)).resolves.toEqual({ grantId: 'g', consumed: consumedAt });
        tick(5 * SECOND);
        await expect(store.oidc.consume('AuthorizationCode', id)).resolves.toBe(false);
        const again = await store.oidc.find('AuthorizationCode', id);
        expect(again?.consumed).toBe(consumedAt);
        expect(typeof again?.consumed).toBe('number');
      });

      it('consume of a missing id returns false', async () => {
        await expect(store.oidc.consume('AuthorizationCode', `missing-${ns()}`)).resolves.toBe(false);
      });

      it('of 20 parallel consume calls for one id exactly one returns true', async () => {
        const id = `code-${ns()}`;
        await store.oidc.upsert('AuthorizationCode', id, { grantId: 'g' }, 60);
        const results = await Promise.all(Array.from({ length: 20 }, () => store.oidc.consume('AuthorizationCode', id)));
        expect(results.filter((r) => r)).toHaveLength(1);
        expect(results.filter((r) => !r)).toHaveLength(19);
      });

      it('a payload saved with `consumed` stays consumed', async () => {
        const id = `rt-${ns()}`;
        const consumed = Math.floor(T0 / 1000) - 10;
        await store.oidc.upsert('RefreshToken', id, { grantId: 'g', consumed }, 600);
        await expect(store.oidc.find('RefreshToken', id)).resolves.toEqual({ grantId: 'g', consumed });
        await expect(store.oidc.consume('RefreshToken', id)).resolves.toBe(false);
      });

      it('isolates models: the same id in two models is two records', async () => {
        const id = `shared-${ns()}`;
        await store.oidc.upsert('Session', id, { which: 'session' }, 600);
        await store.oidc.upsert('Grant', id, { which: 'grant' }, 600);
        await expect(store.oidc.find('Session', id)).resolves.toEqual({ which: 'session' });
        await expect(store.oidc.find('Grant', id)).resolves.toEqual({ which: 'grant' });
        await expect(store.oidc.consume('Session', id)).resolves.toBe(true);
        await expect(store.oidc.find('Grant', id)).resolves.toEqual({ which: 'grant' });
        await expect(store.oidc.consume('Grant', id)).resolves.toBe(true);
      });

      it('insertIfAbsent: of 20 parallel inserts of one id exactly one wins; a live record stays, an expired one is replaced', async () => {
        const id = `jti-${ns()}`;
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.oidc.insertIfAbsent('ReplayDetection', id, { iss: `c${i}` }, 60)));
        expect(results.filter((r) => r)).toHaveLength(1);
        const winner = results.indexOf(true);
        await expect(store.oidc.find('ReplayDetection', id)).resolves.toEqual({ iss: `c${winner}` });
        tick(30 * SECOND);
        await expect(store.oidc.insertIfAbsent('ReplayDetection', id, { iss: 'later' }, 60)).resolves.toBe(false);
        await expect(store.oidc.find('ReplayDetection', id)).resolves.toEqual({ iss: `c${winner}` });
        tick(31 * SECOND);
        await expect(store.oidc.insertIfAbsent('ReplayDetection', id, { iss: 'after expiry' }, 60)).resolves.toBe(true);
        await expect(store.oidc.find('ReplayDetection', id)).resolves.toEqual({ iss: 'after expiry' });
        // Another model's record with the same id is another record.
        await expect(store.oidc.insertIfAbsent('Other', id, { x: 1 }, 60)).resolves.toBe(true);
      });

      it('lists a person\'s live records of one model, and ends a person\'s (or a portal\'s) records in one call', async () => {
        const person = randomUUID();
        const other = randomUUID();
        const [a, b] = [`client-a-${ns()}`, `client-b-${ns()}`];
        await store.oidc.upsert('Session', `s1-${ns()}`, { uid: `u1-${ns()}`, accountId: person }, 600);
        await store.oidc.upsert('Session', `s2-${ns()}`, { uid: `u2-${ns()}`, accountId: person }, 10);
        await store.oidc.upsert('Session', `s3-${ns()}`, { uid: `u3-${ns()}`, accountId: other }, 600);
        const grantA = `g-a-${ns()}`;
        const grantB = `g-b-${ns()}`;
        await store.oidc.upsert('Grant', grantA, { accountId: person, clientId: a }, 600);
        await store.oidc.upsert('Grant', grantB, { accountId: person, clientId: b }, undefined);
        await store.oidc.upsert('RefreshToken', `rt-a-${ns()}`, { accountId: person, clientId: a, grantId: grantA }, 600);
        await store.oidc.upsert('RefreshToken', `rt-b-${ns()}`, { accountId: person, clientId: b, grantId: grantB }, 600);
        await store.oidc.upsert('AccessToken', `at-o-${ns()}`, { accountId: other, clientId: a }, 600);
        // A payload whose accountId is not a string is nobody's.
        await store.oidc.upsert('Grant', `g-x-${ns()}`, { accountId: { $ne: null }, clientId: a }, 600);

        tick(11 * SECOND);
        const sessions = await store.oidc.listByAccount('Session', person);
        expect(sessions.map((s) => s.payload.accountId)).toEqual([person]);
        expect(typeof sessions[0]!.id).toBe('string');
        await expect(store.oidc.find('Session', sessions[0]!.id)).resolves.toEqual(sessions[0]!.payload);
        await expect(store.oidc.listByAccount('Grant', person)).resolves.toHaveLength(2);

        // The person at one portal: its grant and tokens only.
        await expect(store.oidc.destroyByAccount(['Grant', 'RefreshToken', 'AccessToken'], person, a)).resolves.toBe(2);
        await expect(store.oidc.find('Grant', grantA)).resolves.toBeUndefined();
        await expect(store.oidc.find('Grant', grantB)).resolves.toBeDefined();
        // The person everywhere, of the models named (sessions are not among them).
        await expect(store.oidc.destroyByAccount(['Grant', 'RefreshToken'], person)).resolves.toBe(2);
        await expect(store.oidc.listByAccount('Grant', person)).resolves.toEqual([]);
        await expect(store.oidc.listByAccount('Session', person)).resolves.toHaveLength(1);
        await expect(store.oidc.listByAccount('AccessToken', other)).resolves.toHaveLength(1);
        await expect(store.oidc.destroyByAccount([], person)).resolves.toBe(0);
        // A portal's records, whoever they belong to.
        await expect(store.oidc.destroyByClient(['AccessToken', 'Grant'], a)).resolves.toBe(2);
        await expect(store.oidc.listByAccount('AccessToken', other)).resolves.toEqual([]);
      });
    });

    describe('persons', () => {
      it('revokeAccessBefore only ever moves the instant forward', async () => {
        const person = await store.persons.create(newPerson());
        expect(person.accessRevokedBefore).toBeNull();
        tick(SECOND);
        await expect(store.persons.revokeAccessBefore(person.id, clock)).resolves.toBe(true);
        await expect(store.persons.findById(person.id)).resolves.toEqual({ ...person, accessRevokedBefore: clock, updatedAt: clock });
        await expect(store.persons.revokeAccessBefore(person.id, clock - 5000)).resolves.toBe(true);
        await expect(store.persons.findById(person.id)).resolves.toMatchObject({ accessRevokedBefore: clock });
        await expect(store.persons.revokeAccessBefore(person.id, clock + 5000)).resolves.toBe(true);
        await expect(store.persons.findByPid(person.pid)).resolves.toMatchObject({ accessRevokedBefore: clock + 5000 });
        await expect(store.persons.revokeAccessBefore(randomUUID(), clock)).resolves.toBe(false);
      });

      it('creates a person stamped with the store clock and finds it by id and pid', async () => {
        const input = newPerson({
          email: 'an@example.vn',
          emailVerified: true,
          phone: '+84901234567',
          phoneVerified: true,
          level: 1,
          gender: 'female',
          address: { formatted: '1 Tràng Tiền, Hoàn Kiếm, Hà Nội', locality: 'Hà Nội', country: 'VN' },
        });
        const created = await store.persons.create(input);
        expect(created).toEqual(createdPerson(input, clock));
        await expect(store.persons.findById(input.id)).resolves.toEqual(created);
        await expect(store.persons.findByPid(input.pid)).resolves.toEqual(created);
        await expect(store.persons.findById(randomUUID())).resolves.toBeUndefined();
        await expect(store.persons.findByPid(randomPid())).resolves.toBeUndefined();
      });

      it('rejects a duplicate pid with StoreConflictError(field "pid")', async () => {
        const first = await store.persons.create(newPerson());
        const before = await store.persons.count();
        const dup = newPerson({ pid: first.pid, name: 'Someone Else' });
        const attempt = store.persons.create(dup);
        await expect(attempt).rejects.toBeInstanceOf(StoreConflictError);
        await expect(attempt).rejects.toMatchObject({ field: 'pid', code: 'store_conflict' });
        await expect(store.persons.findByPid(first.pid)).resolves.toEqual(first);
        await expect(store.persons.findById(dup.id)).resolves.toBeUndefined();
        await expect(store.persons.count()).resolves.toBe(before);
      });

      it('rejects a duplicate id with StoreConflictError(field "id")', async () => {
        const first = await store.persons.create(newPerson());
        const attempt = store.persons.create(newPerson({ id: first.id }));
        await expect(attempt).rejects.toBeInstanceOf(StoreConflictError);
        await expect(attempt).rejects.toMatchObject({ field: 'id' });
        await expect(store.persons.findById(first.id)).resolves.toEqual(first);
      });

      it('counts persons', async () => {
        const before = await store.persons.count();
        for (let i = 0; i < 3; i++) await store.persons.create(newPerson());
        await expect(store.persons.count()).resolves.toBe(before + 3);
      });

      it('lists with limit and offset, ordered by createdAt then id', async () => {
        const p = `p-${ns()}-`;
        // Created out of id order; two share a createdAt so the id tiebreak shows.
        const c = await store.persons.create(newPerson({ id: `${p}c` }));
        const a = await store.persons.create(newPerson({ id: `${p}a` }));
        tick(1);
        const b = await store.persons.create(newPerson({ id: `${p}b` }));
        tick(1);
        const d = await store.persons.create(newPerson({ id: `${p}0` }));

        const total = await store.persons.count();
        const all = await store.persons.list({ limit: total + 10, offset: 0 });
        expect(all).toHaveLength(total);
        const sorted = [...all].sort((x, y) => x.createdAt - y.createdAt || compareStrings(x.id, y.id));
        expect(all.map((x) => x.id)).toEqual(sorted.map((x) => x.id));

        const ours = all.filter((x) => x.id.startsWith(p));
        expect(ours).toEqual([a, c, b, d]);

        const start = all.findIndex((x) => x.id === a.id);
        for (const [offset, limit] of [
          [start, 2],
          [start + 1, 2],
          [start + 2, 1],
          [0, 1],
          [total, 5],
        ] as const) {
          await expect(store.persons.list({ limit, offset })).resolves.toEqual(all.slice(offset, offset + limit));
        }
      });

      it('updatePasswordHash is compare-and-set', async () => {
        const person = await store.persons.create(newPerson({ passwordHash: 'hash-1' }));
        tick(SECOND);
        await expect(store.persons.updatePasswordHash(person.id, 'not-the-hash', 'hash-x')).resolves.toBe(false);
        await expect(store.persons.findById(person.id)).resolves.toEqual(person);

        await expect(store.persons.updatePasswordHash(person.id, 'hash-1', 'hash-2')).resolves.toBe(true);
        await expect(store.persons.findById(person.id)).resolves.toEqual({
          ...person,
          passwordHash: 'hash-2',
          updatedAt: clock,
        });
        // A second writer still holding the old hash loses.
        await expect(store.persons.updatePasswordHash(person.id, 'hash-1', 'hash-3')).resolves.toBe(false);
        await expect(store.persons.findById(person.id)).resolves.toMatchObject({ passwordHash: 'hash-2' });
        await expect(store.persons.updatePasswordHash(randomUUID(), 'hash-1', 'hash-2')).resolves.toBe(false);
      });

      it('of concurrent rehashes from the same expected hash exactly one wins', async () => {
        const person = await store.persons.create(newPerson({ passwordHash: 'old' }));
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => store.persons.updatePasswordHash(person.id, 'old', `new-${i}`)),
        );
        expect(results.filter((r) => r)).toHaveLength(1);
        const winner = results.indexOf(true);
        await expect(store.persons.findById(person.id)).resolves.toMatchObject({ passwordHash: `new-${winner}` });
      });

      it('setStatus changes the status', async () => {
        const person = await store.persons.create(newPerson());
        tick(SECOND);
        await expect(store.persons.setStatus(person.id, 'locked')).resolves.toBe(true);
        await expect(store.persons.findById(person.id)).resolves.toEqual({
          ...person,
          status: 'locked',
          lockReason: 'operator',
          updatedAt: clock,
        });
        await expect(store.persons.setStatus(person.id, 'active')).resolves.toBe(true);
        await expect(store.persons.findById(person.id)).resolves.toMatchObject({ status: 'active', lockReason: null });
        await expect(store.persons.setStatus(randomUUID(), 'locked')).resolves.toBe(false);
      });

      it('setLevel changes the level, moves updatedAt and reports whether the person exists', async () => {
        const person = await store.persons.create(newPerson({ level: 1 }));
        const bystander = await store.persons.create(newPerson({ level: 1 }));
        tick(SECOND);
        await expect(store.persons.setLevel(person.id, 2)).resolves.toBe(true);
        await expect(store.persons.findById(person.id)).resolves.toEqual({ ...person, level: 2, updatedAt: clock });
        tick(SECOND);
        await expect(store.persons.setLevel(person.id, 1)).resolves.toBe(true);
        await expect(store.persons.findById(person.id)).resolves.toEqual({ ...person, level: 1, updatedAt: clock });
        // Setting the level it already has is not a failure: the person exists.
        tick(SECOND);
        await expect(store.persons.setLevel(person.id, 1)).resolves.toBe(true);
        await expect(store.persons.findByPid(person.pid)).resolves.toEqual({ ...person, level: 1, updatedAt: clock });
        await expect(store.persons.findById(bystander.id)).resolves.toEqual(bystander);
        await expect(store.persons.setLevel(randomUUID(), 2)).resolves.toBe(false);
        await expect(store.persons.setLevel(`${person.id}%`, 2)).resolves.toBe(false);
        await expect(store.persons.findById(person.id)).resolves.toMatchObject({ level: 1 });
      });

      it('round-trips Unicode names byte-exact, without normalising them', async () => {
        const nfc = 'Nguyễn Văn Á';
        const nfd = nfc.normalize('NFD');
        expect(nfd).not.toBe(nfc);
        const astral = 'Trần Thị 𠀧 😀';
        const one = await store.persons.create(
          newPerson({
            name: nfc,
            familyName: 'Nguyễn',
            givenName: astral,
            address: { formatted: 'Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh', region: 'Hồ Chí Minh' },
          }),
        );
        const two = await store.persons.create(newPerson({ name: nfd, familyName: nfd, givenName: nfd }));
        const foundOne = await store.persons.findById(one.id);
        const foundTwo = await store.persons.findByPid(two.pid);
        expect(utf8(foundOne?.name ?? '')).toBe(utf8(nfc));
        expect(utf8(foundOne?.givenName ?? '')).toBe(utf8(astral));
        expect(utf8(foundOne?.address?.formatted ?? '')).toBe(utf8('Phường Bến Nghé, Quận 1, TP. Hồ Chí Minh'));
        expect(utf8(foundTwo?.name ?? '')).toBe(utf8(nfd));
        expect(foundTwo?.name).not.toBe(nfc);
      });
    });

    describe('persons: contact lists, lock reasons and flags', () => {
      it('create without a list stores the list of the phone and email fields; the fields are kept', async () => {
        const input = newPerson({ phone: '+84901234567', phoneVerified: true, email: 'an@example.vn', emailVerified: false });
        const created = await store.persons.create(input);
        expect(created.contacts).toEqual([
          { id: 'phone-0', kind: 'phone', value: '+84901234567', verified: true, addedAt: clock, verifiedAt: clock },
          { id: 'email-0', kind: 'email', value: 'an@example.vn', verified: false, addedAt: clock, verifiedAt: null },
        ]);
        expect(created).toMatchObject({ phone: '+84901234567', phoneVerified: true, email: 'an@example.vn', emailVerified: false, contactsRev: 0 });
        // Stored, not derived at each read: it keeps its times when the clock moves on.
        tick(DAY);
        await expect(store.persons.findById(created.id)).resolves.toEqual(created);
        // A person without phone or email has an empty list.
        await expect(store.persons.create(newPerson())).resolves.toMatchObject({ contacts: [], phone: null, email: null });
      });

      it('create with a list stores it and mirrors its primaries, ignoring the given phone and email', async () => {
        const oldVerified = newContact('phone', { addedAt: T0 - 2 * DAY, verified: true, verifiedAt: T0 - 2 * DAY });
        const newerUnverified = newContact('phone', { addedAt: T0 - DAY });
        const mail = newContact('email', { addedAt: T0 - DAY });
        const input = newPerson({ phone: '+84000000000', phoneVerified: false, email: 'ignored@example.vn', emailVerified: true, contacts: [oldVerified, newerUnverified, mail] });
        const created = await store.persons.create(input);
        expect(created).toMatchObject({
          contacts: [oldVerified, newerUnverified, mail],
          phone: oldVerified.value, phoneVerified: true, email: mail.value, emailVerified: false,
          contactsRev: 0, noticeContact: null, lockReason: null, passwordResetRequired: false, attention: null,
        });
        await expect(store.persons.findByPid(input.pid)).resolves.toEqual(created);
        // An empty list is stored as such: no contacts, whatever the fields said.
        const none = await store.persons.create(newPerson({ phone: '+84901234567', phoneVerified: true, contacts: [] }));
        expect(none).toMatchObject({ contacts: [], phone: null, phoneVerified: false });
        await expect(store.persons.findById(none.id)).resolves.toEqual(none);
      });

      it('a person created locked was locked by an operator', async () => {
        await expect(store.persons.create(newPerson({ status: 'locked' }))).resolves.toMatchObject({ status: 'locked', lockReason: 'operator' });
      });

      it('updateContacts is compare-and-set on the revision and writes list, mirror, notice contact and updatedAt', async () => {
        const person = await store.persons.create(newPerson({ phone: '+84901111111', phoneVerified: true }));
        const [first] = person.contacts;
        tick(SECOND);
        const added = newContact('email', { addedAt: clock, verified: true, verifiedAt: clock });
        // A stale revision changes nothing.
        await expect(store.persons.updateContacts(person.id, 1, [first!, added], added.id)).resolves.toBe(false);
        await expect(store.persons.findById(person.id)).resolves.toEqual(person);

        await expect(store.persons.updateContacts(person.id, 0, [first!, added], added.id)).resolves.toBe(true);
        const after = await store.persons.findById(person.id);
        expect(after).toEqual({
          ...person, contacts: [first, added], contactsRev: 1, noticeContact: added.id,
          email: added.value, emailVerified: true, updatedAt: clock,
        });
        // The revision it was read at is gone now.
        tick(SECOND);
        await expect(store.persons.updateContacts(person.id, 0, [], null)).resolves.toBe(false);
        await expect(store.persons.findById(person.id)).resolves.toEqual(after);
        await expect(store.persons.updateContacts(person.id, 1, [added], null)).resolves.toBe(true);
        await expect(store.persons.findById(person.id)).resolves.toMatchObject({
          contacts: [added], contactsRev: 2, noticeContact: null, phone: null, phoneVerified: false, email: added.value, updatedAt: clock,
        });
        await expect(store.persons.updateContacts(randomUUID(), 0, [], null)).resolves.toBe(false);
      });

      it('of 10 concurrent updateContacts from the same revision exactly one lands', async () => {
        const person = await store.persons.create(newPerson({ phone: '+84901111111', phoneVerified: true }));
        const lists = Array.from({ length: 10 }, () => [...person.contacts, newContact('phone', { addedAt: clock })]);
        const results = await Promise.all(lists.map((list) => store.persons.updateContacts(person.id, person.contactsRev, list, null)));
        expect(results.filter((r) => r)).toHaveLength(1);
        const winner = lists[results.indexOf(true)];
        await expect(store.persons.findById(person.id)).resolves.toMatchObject({ contacts: winner, contactsRev: 1 });
      });

      it('the mirror follows the list: the contact of a kind verified first, an unverified one only when none is verified', async () => {
        const phone1 = newContact('phone', { verified: true, verifiedAt: T0 });
        const person = await store.persons.create(newPerson({ contacts: [phone1] }));
        tick(SECOND);
        // An unverified new number does not displace the verified one.
        const phone2 = newContact('phone', { addedAt: clock });
        await store.persons.updateContacts(person.id, 0, [phone1, phone2], null);
        await expect(store.persons.findById(person.id)).resolves.toMatchObject({ phone: phone1.value, phoneVerified: true });
        // Proven later, it does not displace the one verified first either…
        tick(SECOND);
        const proven = { ...phone2, verified: true, verifiedAt: clock };
        await store.persons.updateContacts(person.id, 1, [phone1, proven], null);
        await expect(store.persons.findById(person.id)).resolves.toMatchObject({ phone: phone1.value, phoneVerified: true });
        // …until that one is removed: then it is the one portals see.
        await store.persons.updateContacts(person.id, 2, [proven], null);
        await expect(store.persons.findById(person.id)).resolves.toMatchObject({ phone: proven.value, phoneVerified: true });
        // Without any verified phone, the unverified one added first, marked unverified.
        const phone3 = newContact('phone', { addedAt: clock - 10 * SECOND });
        const phone4 = newContact('phone', { addedAt: clock - 5 * SECOND });
        await store.persons.updateContacts(person.id, 3, [phone4, phone3], null);
        await expect(store.persons.findById(person.id)).resolves.toMatchObject({ phone: phone3.value, phoneVerified: false });
        // No phone at all: no phone. The empty list stays empty (it is not made again from the fields).
        await store.persons.updateContacts(person.id, 4, [], null);
        await expect(store.persons.findById(person.id)).resolves.toMatchObject({
          contacts: [], contactsRev: 5, phone: null, phoneVerified: false, email: null, emailVerified: false,
        });
      });

      it('other updates leave the list and its revision alone', async () => {
        const person = await store.persons.create(newPerson({ contacts: [newContact('email', { verified: true, verifiedAt: T0 })] }));
        await store.persons.updateContacts(person.id, 0, [...person.contacts, newContact('phone')], person.contacts[0]!.id);
        const before = await store.persons.findById(person.id);
        await store.persons.setLevel(person.id, 1);
        await store.persons.setStatus(person.id, 'locked');
        await store.persons.updatePasswordHash(person.id, person.passwordHash, 'other');
        await store.persons.revokeAccessBefore(person.id, clock);
        await expect(store.persons.findById(person.id)).resolves.toMatchObject({
          contacts: before!.contacts, contactsRev: 1, noticeContact: person.contacts[0]!.id, phone: before!.phone, email: before!.email,
        });
      });

      it('setStatus stores why an account is locked (operator by default) and clears it on unlock', async () => {
        const person = await store.persons.create(newPerson());
        for (const reason of ['self', 'failures', 'operator'] as const) {
          tick(SECOND);
          await expect(store.persons.setStatus(person.id, 'locked', reason)).resolves.toBe(true);
          await expect(store.persons.findById(person.id)).resolves.toEqual({ ...person, status: 'locked', lockReason: reason, updatedAt: clock });
        }
        await store.persons.setStatus(person.id, 'locked', 'self');
        await store.persons.setStatus(person.id, 'locked');
        await expect(store.persons.findById(person.id)).resolves.toMatchObject({ lockReason: 'operator' });
        await store.persons.setStatus(person.id, 'locked', 'self');
        await expect(store.persons.setStatus(person.id, 'active', 'self')).resolves.toBe(true);
        await expect(store.persons.findById(person.id)).resolves.toMatchObject({ status: 'active', lockReason: null });
        await expect(store.persons.setStatus(randomUUID(), 'locked', 'self')).resolves.toBe(false);
      });

      it('a fraud lock round-trips, is replaced by another lock reason, and cleared on unlock; an unknown reason is refused', async () => {
        const person = await store.persons.create(newPerson());
        tick(SECOND);
        await expect(store.persons.setStatus(person.id, 'locked', 'fraud')).resolves.toBe(true);
        await expect(store.persons.findById(person.id)).resolves.toEqual({ ...person, status: 'locked', lockReason: 'fraud', updatedAt: clock });
        await expect(store.persons.findByPid(person.pid)).resolves.toMatchObject({ lockReason: 'fraud' });
        await expect(store.persons.setStatus(person.id, 'locked', 'suspicious' as LockReason)).rejects.toBeInstanceOf(TypeError);
        await expect(store.persons.findById(person.id)).resolves.toMatchObject({ status: 'locked', lockReason: 'fraud' });
        await store.persons.setStatus(person.id, 'locked', 'operator');
        await expect(store.persons.findById(person.id)).resolves.toMatchObject({ lockReason: 'operator' });
        await store.persons.setStatus(person.id, 'locked', 'fraud');
        await expect(store.persons.setStatus(person.id, 'active')).resolves.toBe(true);
        await expect(store.persons.findById(person.id)).resolves.toMatchObject({ status: 'active', lockReason: null });
      });

      it('setPasswordResetRequired and setAttention set and clear their flag, move updatedAt, and report missing persons', async () => {
        const person = await store.persons.create(newPerson());
        tick(SECOND);
        await expect(store.persons.setPasswordResetRequired(person.id, true)).resolves.toBe(true);
        await expect(store.persons.findById(person.id)).resolves.toEqual({ ...person, passwordResetRequired: true, updatedAt: clock });
        tick(SECOND);
        const flag = { reason: 'not_me' as const, at: clock - 500 };
        await expect(store.persons.setAttention(person.id, flag)).resolves.toBe(true);
        await expect(store.persons.findById(person.id)).resolves.toEqual({ ...person, passwordResetRequired: true, attention: flag, updatedAt: clock });
        tick(SECOND);
        await expect(store.persons.setPasswordResetRequired(person.id, false)).resolves.toBe(true);
        await expect(store.persons.setAttention(person.id, null)).resolves.toBe(true);
        await expect(store.persons.findByPid(person.pid)).resolves.toEqual({ ...person, updatedAt: clock });
        await expect(store.persons.setPasswordResetRequired(randomUUID(), true)).resolves.toBe(false);
        await expect(store.persons.setAttention(randomUUID(), flag)).resolves.toBe(false);
        await expect(store.persons.setAttention(`${person.id}%`, flag)).resolves.toBe(false);
      });

      it('reads a record from before contact lists (none stored) as the list of its fields, revision 0, until its first change', async () => {
        // The neutral form of such a record (store copy): no list, no revision, no flags.
        const id = randomUUID();
        const legacy = {
          id, pid: randomPid(), name: 'Lê Văn Cũ', familyName: 'Lê', givenName: 'Văn Cũ', birthdate: '1970-05-06', gender: 'male',
          email: 'cu@example.vn', emailVerified: false, phone: '+84907777777', phoneVerified: true, address: null, level: 1,
          passwordHash: 'h', status: 'locked', accessRevokedBefore: null, createdAt: T0 - DAY, updatedAt: T0 - DAY,
        };
        await store.copy.importMany('persons', [legacy]);
        const read = await store.persons.findById(id);
        expect(read).toEqual({
          ...legacy,
          // A lock from before reasons were recorded: null (an operator's).
          lockReason: null,
          contacts: contactsFromFields({ phone: legacy.phone, phoneVerified: true, email: legacy.email, emailVerified: false }, legacy.createdAt),
          contactsRev: 0, noticeContact: null, passwordResetRequired: false, attention: null,
        });
        // Its first change is made from that list at revision 0.
        const [phone] = read!.contacts;
        await expect(store.persons.updateContacts(id, 1, [phone!], null)).resolves.toBe(false);
        await expect(store.persons.updateContacts(id, 0, [phone!], null)).resolves.toBe(true);
        await expect(store.persons.findById(id)).resolves.toMatchObject({ contacts: [phone], contactsRev: 1, email: null, phone: legacy.phone });
        await expect(store.persons.updateContacts(id, 0, [], null)).resolves.toBe(false);
      });
    });

    describe('portals', () => {
      it('creates, finds and lists a portal; metadata round-trips as JSON', async () => {
        const input = newPortal({
          metadata: {
            redirect_uris: ['https://a.example.vn/cb', 'https://a.example.vn/cb2'],
            post_logout_redirect_uris: [],
            default_max_age: 3600,
            require_auth_time: true,
            logo_uri: null,
            client_name: 'Cổng thông tin điện tử',
            'x-nested': { deep: { list: [1, { two: 2 }] } },
          },
          nationalId: true,
          nationalIdBasis: 'Nghị định 59/2022/NĐ-CP, Điều 13',
          secretCiphertext: null,
        });
        const created = await store.portals.create(input);
        expect(created).toEqual({ ...input, previousSecret: null, createdAt: clock, updatedAt: clock });
        await expect(store.portals.find(input.clientId)).resolves.toEqual(created);
        await expect(store.portals.find(`portal-${randomUUID()}`)).resolves.toBeUndefined();

        tick(1);
        const other = await store.portals.create(newPortal());
        const listed = await store.portals.list();
        expect(listed).toEqual(expect.arrayContaining([created, other]));
        expect(new Set(listed.map((x) => x.clientId)).size).toBe(listed.length);
      });

      it('rejects a duplicate clientId with StoreConflictError(field "clientId")', async () => {
        const first = await store.portals.create(newPortal());
        const attempt = store.portals.create(newPortal({ clientId: first.clientId, name: 'Impostor' }));
        await expect(attempt).rejects.toBeInstanceOf(StoreConflictError);
        await expect(attempt).rejects.toMatchObject({ field: 'clientId', code: 'store_conflict' });
        await expect(store.portals.find(first.clientId)).resolves.toEqual(first);
      });

      it('setDisabled toggles the flag and reports whether the portal exists', async () => {
        const portal = await store.portals.create(newPortal());
        tick(SECOND);
        await expect(store.portals.setDisabled(portal.clientId, true)).resolves.toBe(true);
        await expect(store.portals.find(portal.clientId)).resolves.toEqual({
          ...portal,
          disabled: true,
          updatedAt: clock,
        });
        await expect(store.portals.setDisabled(portal.clientId, false)).resolves.toBe(true);
        await expect(store.portals.find(portal.clientId)).resolves.toMatchObject({ disabled: false });
        await expect(store.portals.setDisabled(`portal-${randomUUID()}`, true)).resolves.toBe(false);
      });

      it('update replaces name, metadata and secret, and reports whether the portal exists', async () => {
        const portal = await store.portals.create(newPortal());
        tick(SECOND);
        const metadata = { redirect_uris: ['https://b.example.vn/cb'], nested: { x: [1, 2] } };
        await expect(store.portals.update(portal.clientId, { name: 'Cổng mới', metadata, secretCiphertext: 'v1.k.new' })).resolves.toBe(true);
        await expect(store.portals.find(portal.clientId)).resolves.toEqual({
          ...portal,
          name: 'Cổng mới',
          metadata,
          secretCiphertext: 'v1.k.new',
          updatedAt: clock,
        });
        await expect(store.portals.update(portal.clientId, { name: 'Cổng mới', metadata, secretCiphertext: null })).resolves.toBe(true);
        await expect(store.portals.find(portal.clientId)).resolves.toMatchObject({ secretCiphertext: null });
        await expect(store.portals.update(`portal-${randomUUID()}`, { name: 'x', metadata: {}, secretCiphertext: null })).resolves.toBe(false);
      });

      it('revision changes with every change of a portal, even within one millisecond, and is undefined for unknown ones', async () => {
        const portal = await store.portals.create(newPortal({ nationalId: false, nationalIdBasis: null }));
        const seen = [await store.portals.revision(portal.clientId)];
        expect(typeof seen[0]).toBe('number');
        await expect(store.portals.revision(portal.clientId)).resolves.toBe(seen[0]);
        // The clock does not move: a timestamp could not tell these changes apart.
        await store.portals.setDisabled(portal.clientId, true);
        seen.push(await store.portals.revision(portal.clientId));
        await store.portals.setDisabled(portal.clientId, false);
        seen.push(await store.portals.revision(portal.clientId));
        await store.portals.update(portal.clientId, { name: portal.name, metadata: portal.metadata, secretCiphertext: 'v1.k.rotated' });
        seen.push(await store.portals.revision(portal.clientId));
        await store.portals.setNationalId(portal.clientId, 'Nghị định 59/2022/NĐ-CP', portal.metadata);
        seen.push(await store.portals.revision(portal.clientId));
        expect(new Set(seen).size).toBe(seen.length);
        await expect(store.portals.revision(`portal-${randomUUID()}`)).resolves.toBeUndefined();
        // A failed change (no such portal) changes nothing.
        await store.portals.setDisabled(`portal-${randomUUID()}`, true);
        await expect(store.portals.revision(portal.clientId)).resolves.toBe(seen.at(-1));
      });
    });

    describe('portals: secret rotation, metadata edits, paging', () => {
      it('a new portal has no previous secret; rotateSecret replaces the secret, sets or clears the previous one, and reports missing portals', async () => {
        const portal = await store.portals.create(newPortal({ secretCiphertext: 'v1.k.first' }));
        expect(portal.previousSecret).toBeNull();
        await expect(store.portals.find(portal.clientId)).resolves.toEqual(portal);
        tick(SECOND);
        const previous = { ciphertext: 'v1.k.first', expiresAt: clock + DAY };
        await expect(store.portals.rotateSecret(portal.clientId, 'v1.k.second', previous)).resolves.toBe(true);
        const rotated = await store.portals.find(portal.clientId);
        expect(rotated).toEqual({ ...portal, secretCiphertext: 'v1.k.second', previousSecret: previous, updatedAt: clock });
        await expect(store.portals.list()).resolves.toEqual(expect.arrayContaining([rotated]));
        // Other changes keep the previous secret.
        tick(SECOND);
        await store.portals.setDisabled(portal.clientId, true);
        await store.portals.setNationalId(portal.clientId, 'Nghị định 59/2022/NĐ-CP', portal.metadata);
        await expect(store.portals.find(portal.clientId)).resolves.toMatchObject({ secretCiphertext: 'v1.k.second', previousSecret: previous });
        // A rotation without a grace period clears it.
        tick(SECOND);
        await expect(store.portals.rotateSecret(portal.clientId, 'v1.k.third', null)).resolves.toBe(true);
        await expect(store.portals.find(portal.clientId)).resolves.toMatchObject({ secretCiphertext: 'v1.k.third', previousSecret: null, updatedAt: clock });
        await expect(store.portals.rotateSecret(`portal-${randomUUID()}`, 'v1.k.x', previous)).resolves.toBe(false);
      });

      it('updateMetadata replaces the metadata only, and reports missing portals', async () => {
        const portal = await store.portals.create(newPortal());
        await store.portals.rotateSecret(portal.clientId, 'v1.k.new', { ciphertext: portal.secretCiphertext!, expiresAt: clock + DAY });
        const before = await store.portals.find(portal.clientId);
        tick(SECOND);
        const metadata = { ...portal.metadata, redirect_uris: ['https://moi.example.vn/cb', 'https://moi.example.vn/cb2'], $where: 'x', 'a.b': { $ne: null } };
        await expect(store.portals.updateMetadata(portal.clientId, metadata)).resolves.toBe(true);
        await expect(store.portals.find(portal.clientId)).resolves.toEqual({ ...before, metadata, updatedAt: clock });
        await expect(store.portals.updateMetadata(`portal-${randomUUID()}`, metadata)).resolves.toBe(false);
      });

      it('rotateSecret and updateMetadata change the revision, even within one millisecond', async () => {
        const portal = await store.portals.create(newPortal());
        const seen = [await store.portals.revision(portal.clientId)];
        await store.portals.rotateSecret(portal.clientId, 'v1.k.2', { ciphertext: 'v1.k.1', expiresAt: clock + DAY });
        seen.push(await store.portals.revision(portal.clientId));
        await store.portals.rotateSecret(portal.clientId, 'v1.k.3', null);
        seen.push(await store.portals.revision(portal.clientId));
        await store.portals.updateMetadata(portal.clientId, { redirect_uris: ['https://x.example.vn/cb'] });
        seen.push(await store.portals.revision(portal.clientId));
        await store.portals.updateMetadata(portal.clientId, { redirect_uris: ['https://x.example.vn/cb'] });
        seen.push(await store.portals.revision(portal.clientId));
        expect(seen.every((r) => typeof r === 'number')).toBe(true);
        expect(new Set(seen).size).toBe(seen.length);
        // Failed changes (no such portal) change nothing.
        await store.portals.rotateSecret(`portal-${randomUUID()}`, 'v1.k.x', null);
        await store.portals.updateMetadata(`portal-${randomUUID()}`, {});
        await expect(store.portals.revision(portal.clientId)).resolves.toBe(seen.at(-1));
      });

      it('page walks portals in creation order (createdAt, then clientId) after a cursor, a page at a time', async () => {
        // A time of their own, far from other tests' portals, so the walk starts at ours.
        clock = T0 + 1000 * DAY + randomInt(0, 1e9) * SECOND;
        const start = clock;
        const p = `portal-${ns()}`;
        // Three created in one millisecond (ordered by client id, not by creation), then two later.
        const made = [
          await store.portals.create(newPortal({ clientId: `${p}-c` })),
          await store.portals.create(newPortal({ clientId: `${p}-a` })),
          await store.portals.create(newPortal({ clientId: `${p}-b` })),
        ];
        tick(SECOND);
        made.push(await store.portals.create(newPortal({ clientId: `${p}-0` })));
        tick(SECOND);
        made.push(await store.portals.create(newPortal({ clientId: `${p}-9` })));
        const expected = [`${p}-a`, `${p}-b`, `${p}-c`, `${p}-0`, `${p}-9`];

        const walked: Portal[] = [];
        let after: { createdAt: number; clientId: string } | undefined = { createdAt: start - 1, clientId: '' };
        while (after && walked.filter((x) => x.clientId.startsWith(p)).length < made.length) {
          const page = await store.portals.page({ after, limit: 2 });
          expect(page.length).toBeLessThanOrEqual(2);
          walked.push(...page);
          const last = page.at(-1);
          after = last && { createdAt: last.createdAt, clientId: last.clientId };
        }
        expect(walked.filter((x) => x.clientId.startsWith(p)).map((x) => x.clientId)).toEqual(expected);
        // Strictly increasing in (createdAt, clientId): no portal twice, none skipped between ours.
        for (let i = 1; i < walked.length; i++) {
          const [a, b] = [walked[i - 1]!, walked[i]!];
          expect(a.createdAt < b.createdAt || (a.createdAt === b.createdAt && a.clientId < b.clientId)).toBe(true);
        }
        for (const portal of made) expect(walked).toContainEqual(portal);
        // A cursor inside a millisecond: only the later ones of that millisecond, then the next.
        const inside = await store.portals.page({ after: { createdAt: start, clientId: `${p}-a` }, limit: 3 });
        expect(inside.map((x) => x.clientId)).toEqual([`${p}-b`, `${p}-c`, `${p}-0`]);
        await expect(store.portals.page({ after: { createdAt: start, clientId: `${p}-a` }, limit: 0 })).resolves.toEqual([]);
        // Without a cursor: the first portals of all, in the same order.
        const first = await store.portals.page({ limit: 3 });
        const all = await store.portals.list();
        expect(first).toEqual(all.slice(0, 3));
      });

      it('count counts every portal', async () => {
        const before = await store.portals.count();
        await store.portals.create(newPortal());
        await store.portals.create(newPortal({ disabled: true }));
        await expect(store.portals.count()).resolves.toBe(before + 2);
      });

      it('injection-shaped client ids and cursors are data', async () => {
        const portal = await store.portals.create(newPortal());
        for (const s of HOSTILE) {
          await expect(store.portals.rotateSecret(s, 'v1.k.x', null)).resolves.toBe(false);
          await expect(store.portals.updateMetadata(s, {})).resolves.toBe(false);
          const page = await store.portals.page({ after: { createdAt: clock, clientId: s }, limit: 1000 });
          expect(page.every((x) => x.createdAt > clock || (x.createdAt === clock && x.clientId > s))).toBe(true);
        }
        const hostile = await store.portals.create(newPortal({ clientId: `${HOSTILE[0]}-${ns()}` }));
        await expect(store.portals.rotateSecret(hostile.clientId, HOSTILE[1]!, { ciphertext: HOSTILE[4]!, expiresAt: clock })).resolves.toBe(true);
        await expect(store.portals.find(hostile.clientId)).resolves.toMatchObject({ secretCiphertext: HOSTILE[1], previousSecret: { ciphertext: HOSTILE[4], expiresAt: clock } });
        await expect(store.portals.find(portal.clientId)).resolves.toEqual(portal);
      });
    });

    describe('portals: national_id approval', () => {
      it('setNationalId records the legal basis with the metadata, withdraws it with null, and reports missing portals', async () => {
        const portal = await store.portals.create(newPortal({ nationalId: false, nationalIdBasis: null }));
        tick(SECOND);
        const metadata = { ...portal.metadata, scope: 'openid national_id' };
        await expect(store.portals.setNationalId(portal.clientId, 'Nghị định 59/2022/NĐ-CP', metadata)).resolves.toBe(true);
        await expect(store.portals.find(portal.clientId)).resolves.toEqual({
          ...portal, nationalId: true, nationalIdBasis: 'Nghị định 59/2022/NĐ-CP', metadata, updatedAt: clock,
        });
        await expect(store.portals.setNationalId(portal.clientId, null, portal.metadata)).resolves.toBe(true);
        await expect(store.portals.find(portal.clientId)).resolves.toMatchObject({ nationalId: false, nationalIdBasis: null, metadata: portal.metadata });
        await expect(store.portals.setNationalId(`portal-${randomUUID()}`, 'x', {})).resolves.toBe(false);
      });
    });

    describe('security event streams (ssf)', () => {
      it('one stream per portal; read by id, by portal, for portals; update; delete takes its events', async () => {
        const a = newSsfStream(`${ns()}-a`);
        expect(await store.ssf.createStream(a)).toBe(true);
        expect(await store.ssf.createStream({ ...newSsfStream(a.clientId) })).toBe(false);
        expect(await store.ssf.findStream(a.id)).toEqual(a);
        expect(await store.ssf.findStreamByClient(a.clientId)).toEqual(a);
        expect((await store.ssf.streamsFor([a.clientId, 'nobody'])).map((s) => s.id)).toEqual([a.id]);
        expect(await store.ssf.streamsFor([])).toEqual([]);
        const after = await store.ssf.updateStream(a.id, { status: 'paused', statusReason: 'bảo trì', eventsRequested: ['x', 'y'] }, clock + 5);
        expect(after).toEqual({ ...a, status: 'paused', statusReason: 'bảo trì', eventsRequested: ['x', 'y'], updatedAt: clock + 5 });
        expect(await store.ssf.updateStream('nope', { status: 'paused' }, clock)).toBeUndefined();
        await store.ssf.addEvents([{ streamId: a.id, jti: 'j1', set: 'e.y.s', types: ['x'], createdAt: clock, expiresAt: clock + DAY }]);
        expect(await store.ssf.deleteStream(a.id)).toBe(true);
        expect(await store.ssf.deleteStream(a.id)).toBe(false);
        expect(await store.ssf.findStream(a.id)).toBeUndefined();
        expect(await store.ssf.findEvent(a.id, 'j1')).toBeUndefined();
      });

      it('events keep their order; the line skips delivered, failed and expired ones; a delivery is taken once; stats and purge', async () => {
        const s = newSsfStream(`${ns()}-b`);
        await store.ssf.createStream(s);
        const ev = (jti: string, expiresAt = clock + DAY) => ({ streamId: s.id, jti, set: `h.${jti}.s`, types: ['t'], createdAt: clock, expiresAt });
        const first = await store.ssf.addEvents([ev('a'), ev('b')]);
        const [third] = await store.ssf.addEvents([ev('c')]);
        await store.ssf.addEvents([ev('old', clock - 1)]);
        expect(first[0]!.seq).toBeLessThan(first[1]!.seq);
        expect(first[1]!.seq).toBeLessThan(third!.seq);
        expect((await store.ssf.undelivered(s.id, clock, 10)).map((e) => e.jti)).toEqual(['a', 'b', 'c']);
        expect((await store.ssf.undelivered(s.id, clock, 1)).map((e) => e.jti)).toEqual(['a']);
        const [one, two] = await Promise.all([store.ssf.markDelivered(s.id, ['a'], 'HTTP 202', clock), store.ssf.markDelivered(s.id, ['a', 'zz'], 'HTTP 202', clock)]);
        expect([...one, ...two]).toEqual(['a']);
        await store.ssf.recordAttempt(s.id, 'b', 'HTTP 503', clock + 1);
        await store.ssf.recordAttempt(s.id, 'b', 'HTTP 400 invalid_key', clock + 2, true);
        const b = (await store.ssf.findEvent(s.id, 'b'))!;
        expect(b).toMatchObject({ attempts: 2, lastOutcome: 'HTTP 400 invalid_key', lastAttemptAt: clock + 2, failed: true, deliveredAt: null });
        expect(await store.ssf.markDelivered(s.id, ['b'], 'late', clock)).toEqual([]);
        expect((await store.ssf.undelivered(s.id, clock, 10)).map((e) => e.jti)).toEqual(['c']);
        expect((await store.ssf.findEvent(s.id, 'a'))!).toMatchObject({ deliveredAt: clock, expiresAt: clock + DAY, lastOutcome: 'HTTP 202' });
        const stats = (await store.ssf.deliveryStats(clock)).find((x) => x.streamId === s.id);
        expect(stats).toEqual({ streamId: s.id, undelivered: 1, oldestUndeliveredAt: clock, delivered: 1, failed: 1, lastOutcome: 'HTTP 400 invalid_key', lastAttemptAt: clock + 2 });
        expect(await store.ssf.purge(clock)).toBeGreaterThanOrEqual(1);
        expect(await store.ssf.findEvent(s.id, 'old')).toBeUndefined();
        expect(await store.ssf.findEvent(s.id, 'c')).toBeDefined();
      });

      it('a jti queued twice in a stream refuses the whole batch; another stream may use it', async () => {
        const s = newSsfStream(`${ns()}-c`);
        const other = newSsfStream(`${ns()}-c2`);
        await store.ssf.createStream(s);
        await store.ssf.createStream(other);
        const ev = (streamId: string, jti: string) => ({ streamId, jti, set: `h.${jti}.s`, types: ['t'], createdAt: clock, expiresAt: clock + DAY });
        await store.ssf.addEvents([ev(s.id, 'a')]);
        await expect(store.ssf.addEvents([ev(s.id, 'new'), ev(s.id, 'a')])).rejects.toBeInstanceOf(StoreConflictError);
        await expect(store.ssf.addEvents([ev(s.id, 'twice'), ev(s.id, 'twice')])).rejects.toBeInstanceOf(StoreConflictError);
        expect(await store.ssf.findEvent(s.id, 'new')).toBeUndefined();
        expect(await store.ssf.findEvent(s.id, 'twice')).toBeUndefined();
        expect((await store.ssf.undelivered(s.id, clock, 10)).map((e) => e.jti)).toEqual(['a']);
        expect((await store.ssf.addEvents([ev(other.id, 'a')])).map((e) => e.jti)).toEqual(['a']);
        expect(await store.ssf.addEvents([])).toEqual([]);
      });

      it('concurrent additions get distinct seqs, each batch in its order; concurrent deliveries take each event once', async () => {
        const s = newSsfStream(`${ns()}-d`);
        await store.ssf.createStream(s);
        const ev = (jti: string) => ({ streamId: s.id, jti, set: `h.${jti}.s`, types: ['t'], createdAt: clock, expiresAt: clock + DAY });
        const batches = await Promise.all(Array.from({ length: 5 }, (_, b) => store.ssf.addEvents([ev(`${b}-0`), ev(`${b}-1`), ev(`${b}-2`)])));
        for (const batch of batches) expect(batch[0]!.seq < batch[1]!.seq && batch[1]!.seq < batch[2]!.seq).toBe(true);
        const seqs = batches.flat().map((e) => e.seq);
        expect(new Set(seqs).size).toBe(15);
        const line = await store.ssf.undelivered(s.id, clock, 100);
        expect(line.map((e) => e.seq)).toEqual([...seqs].sort((x, y) => x - y));
        const jtis = line.map((e) => e.jti);
        const taken = await Promise.all(Array.from({ length: 6 }, () => store.ssf.markDelivered(s.id, jtis, 'acknowledged', clock)));
        expect(taken.flat().sort()).toEqual([...jtis].sort());
        expect(await store.ssf.undelivered(s.id, clock, 100)).toEqual([]);
      });

      it('the line asks for nothing with a limit below one; another stream\'s events are not in it', async () => {
        const s = newSsfStream(`${ns()}-e`);
        const other = newSsfStream(`${ns()}-e2`);
        await store.ssf.createStream(s);
        await store.ssf.createStream(other);
        await store.ssf.addEvents([{ streamId: other.id, jti: 'x', set: 'h.x.s', types: ['t'], createdAt: clock, expiresAt: clock + DAY }]);
        await store.ssf.addEvents([{ streamId: s.id, jti: 'y', set: 'h.y.s', types: ['t'], createdAt: clock, expiresAt: clock + DAY }]);
        expect(await store.ssf.undelivered(s.id, clock, 0)).toEqual([]);
        expect(await store.ssf.undelivered(s.id, clock, -1)).toEqual([]);
        expect((await store.ssf.undelivered(s.id, clock, 5)).map((e) => e.jti)).toEqual(['y']);
        // Another stream's jti is not this stream's to mark.
        expect(await store.ssf.markDelivered(s.id, ['x'], 'acknowledged', clock)).toEqual([]);
        expect((await store.ssf.findEvent(other.id, 'x'))!.deliveredAt).toBeNull();
        // Deleting one stream leaves the other's events.
        expect(await store.ssf.deleteStream(s.id)).toBe(true);
        expect(await store.ssf.findEvent(other.id, 'x')).toBeDefined();
      });

      it('stats: only kept events count; the newest outcome is a delivery after retries; the stream itself is unchanged', async () => {
        const s = newSsfStream(`${ns()}-f`, { deliveryMethod: 'urn:ietf:rfc:8935', endpointUrl: 'https://p.example/ssf' });
        const lapsed = newSsfStream(`${ns()}-g`);
        await store.ssf.createStream(s);
        await store.ssf.createStream(lapsed);
        const ev = (streamId: string, jti: string, createdAt: number, expiresAt = clock + 14 * DAY) => ({ streamId, jti, set: `h.${jti}.s`, types: ['t'], createdAt, expiresAt });
        await store.ssf.addEvents([ev(s.id, 'p', clock), ev(s.id, 'q', clock + 1), ev(s.id, 'r', clock + 2), ev(s.id, 'gone', clock - DAY, clock)]);
        await store.ssf.addEvents([ev(lapsed.id, 'old', clock - DAY, clock)]);
        await store.ssf.recordAttempt(s.id, 'p', 'HTTP 503', clock + 10);
        await store.ssf.recordAttempt(s.id, 'q', 'HTTP 500', clock + 20);
        await store.ssf.markDelivered(s.id, ['p'], 'HTTP 202', clock + 30);
        // An outcome reported late (an older time) does not replace the newer one.
        await store.ssf.recordAttempt(s.id, 'q', 'HTTP 502', clock + 15);
        const stats = await store.ssf.deliveryStats(clock);
        expect(stats.find((x) => x.streamId === s.id)).toEqual({
          streamId: s.id, undelivered: 2, oldestUndeliveredAt: clock + 1, delivered: 1, failed: 0, lastOutcome: 'HTTP 202', lastAttemptAt: clock + 30,
        });
        expect(stats.find((x) => x.streamId === lapsed.id)).toBeUndefined();
        expect(await store.ssf.findStream(s.id)).toEqual(s);
        expect(await store.ssf.streamsFor([s.clientId])).toEqual([s]);
        expect(await store.ssf.findEvent(s.id, 'q')).toMatchObject({ attempts: 2, lastOutcome: 'HTTP 502', lastAttemptAt: clock + 15 });
        // A day on, the delivered one is no longer kept; fourteen days on, nothing is.
        expect((await store.ssf.deliveryStats(clock + 30 + DAY)).find((x) => x.streamId === s.id)).toMatchObject({ undelivered: 2, delivered: 0 });
        expect((await store.ssf.deliveryStats(clock + 14 * DAY)).find((x) => x.streamId === s.id)).toBeUndefined();
      });

      it('purgeExpired takes expired events; updates change only what they name', async () => {
        const s = newSsfStream(`${ns()}-h`, { deliveryMethod: 'urn:ietf:rfc:8935', endpointUrl: 'https://p.example/ssf', authorizationHeader: 'v1.sealed', description: 'd' });
        await store.ssf.createStream(s);
        await store.ssf.addEvents([
          { streamId: s.id, jti: 'soon', set: 'h.soon.s', types: ['t'], createdAt: clock, expiresAt: clock + 10 * SECOND },
          { streamId: s.id, jti: 'later', set: 'h.later.s', types: ['t'], createdAt: clock, expiresAt: clock + DAY },
        ]);
        tick(10 * SECOND);
        expect(await store.purgeExpired(clock)).toBeGreaterThanOrEqual(1);
        expect(await store.ssf.findEvent(s.id, 'soon')).toBeUndefined();
        expect(await store.ssf.findEvent(s.id, 'later')).toBeDefined();
        const after = await store.ssf.updateStream(s.id, { authorizationHeader: null, deliveryMethod: 'urn:ietf:rfc:8936', endpointUrl: null }, clock);
        expect(after).toEqual({ ...s, authorizationHeader: null, deliveryMethod: 'urn:ietf:rfc:8936', endpointUrl: null, updatedAt: clock });
        // Fields that are not the stream's to change are ignored, not written.
        const sneaky = { clientId: 'someone-else', createdAt: 1 } as unknown as Parameters<Store['ssf']['updateStream']>[1];
        expect(await store.ssf.updateStream(s.id, sneaky, clock + 1)).toEqual({ ...after, updatedAt: clock + 1 });
      });
    });

    describe('copy (dinhdanh store copy)', () => {
      it('exports every collection as neutral records that import unchanged into an empty SQLite store', async () => {
        const p = ns();
        const person = await store.persons.create(newPerson({ address: { locality: 'Huế' }, email: `${p}@x.vn`, emailVerified: true }));
        const created = await store.portals.create(newPortal());
        await store.portals.rotateSecret(created.clientId, 'v1.k.rotated', { ciphertext: created.secretCiphertext!, expiresAt: clock + DAY });
        const portal = (await store.portals.find(created.clientId))!;
        await store.consents.put({ personId: person.id, clientId: portal.clientId, scopes: ['openid', 'profile'], claims: [] });
        await store.counters.increment(`${p}:c`, 60_000, clock);
        await store.factors.create(newPasskey(person.id));
        await store.recoveryCodes.replace(person.id, [`${p}-h1`, `${p}-h2`], clock);
        await store.recoveryCodes.consume(person.id, `${p}-h1`, clock);
        await store.oidc.upsert('Session', `${p}-s`, { uid: `${p}-u`, accountId: person.id, nested: { a: [1] } }, 600);
        await store.oidc.upsert('Grant', `${p}-g`, { accountId: person.id, clientId: portal.clientId }, undefined);
        await store.persons.revokeAccessBefore(person.id, clock);
        await store.oidc.upsert('AuthorizationCode', `${p}-c`, { grantId: `${p}-g` }, 60);
        await store.oidc.consume('AuthorizationCode', `${p}-c`);
        await store.jobs.enqueue({ id: `${p}-j`, kind: 'k', payload: { x: 'ý' }, dueAt: clock }, clock);
        const enterprise = await store.orgs.createEnterprise(newEnterprise());
        await store.orgs.addRepresentative(enterprise.code, person.id);
        await store.orgs.putDelegation(newDelegation(enterprise.code, `${p}-d`));
        await store.orgs.recordGrant(newOrgGrant(enterprise.code, person.id, clock + 60_000));
        await store.signingKeys.add(newSigningKey(`${p}-kid`));
        await store.audit.append({ at: clock, event: 'E', eventId: 1, details: { person: person.id } }, (seq, prev) => `${seq}-${prev}`.padEnd(64, '0').slice(0, 64));
        await store.accountEvidence.add(newEvidence(person.id));
        // The person's newer fields: a changed list, a notice contact, a self-lock and both flags.
        const phone = newContact('phone', { verified: true, verifiedAt: clock });
        await store.persons.updateContacts(person.id, 0, [...person.contacts, phone], phone.id);
        await store.persons.setStatus(person.id, 'locked', 'self');
        await store.persons.setPasswordResetRequired(person.id, true);
        await store.persons.setAttention(person.id, { reason: 'not_me', at: clock });
        await store.activity.add(newActivity(person.id, { details: { portal: 'dvc', $where: 'x', 'a.b': null } }));
        const changed = await store.persons.findById(person.id);
        const fraud = await store.persons.create(newPerson());
        await store.persons.setStatus(fraud.id, 'locked', 'fraud');
        await store.operators.create({ personId: person.id, roles: ['helpdesk', 'admin'], addedBy: 'cli:root', addedAt: clock });
        await store.operators.setRoles(person.id, 0, ['auditor', 'keys'], clock + 1);
        const approval = newApproval({ subject: fraud.id, action: 'unlock-fraud', params: { personId: fraud.id, $where: 'x', 'a.b': [1] }, evidence: 'Biên bản' });
        await store.approvals.create(approval);
        await store.approvals.decide(approval.id, { status: 'approved', by: randomUUID(), role: 'helpdesk', at: clock, reason: 'Đã xác minh' });
        await store.approvals.setOutcome(approval.id, 'done');
        await store.approvals.create(newApproval());
        await store.usage.add([{ day: '2030-01-01', portal: `${p}-u`, key: 'signins', n: 3 }, { day: '2030-01-01', portal: `${p}-u`, key: 'acr:other', n: 3 }]);
        await store.usage.addDistinct([{ day: '2030-01-01', portal: `${p}-u`, tag: 'a' }, { day: '2030-01-01', portal: `${p}-u`, tag: 'b' }]);
        await store.ssf.createStream(newSsfStream(portal.clientId, { deliveryMethod: 'urn:ietf:rfc:8935', endpointUrl: 'https://p.example/events', authorizationHeader: 'v1.k.sealed', description: 'mô tả' }));

        const target = await createStore('sqlite::memory:', { now: () => clock });
        try {
          // Every collection, the usage statistics' too.
          expect(COPY_COLLECTIONS).toEqual(expect.arrayContaining(['usageCounts', 'usageTags']));
          for (const collection of COPY_COLLECTIONS) {
            const records: Record<string, unknown>[] = [];
            for await (const r of store.copy.exportAll(collection)) records.push(r);
            expect({ collection, some: records.length > 0 }).toEqual({ collection, some: true });
            await target.copy.importMany(collection, records);
            const back: Record<string, unknown>[] = [];
            for await (const r of target.copy.exportAll(collection)) back.push(r);
            const canon = (list: Record<string, unknown>[]) => list.map((r) => JSON.stringify(Object.fromEntries(Object.entries(r).sort()))).sort();
            expect(canon(back)).toEqual(canon(records));
          }
          // The imported store works through its repositories.
          await expect(target.persons.findByPid(person.pid)).resolves.toEqual(changed);
          expect(changed).toMatchObject({ accessRevokedBefore: clock, contactsRev: 1, lockReason: 'self', passwordResetRequired: true, phone: phone.value });
          await expect(target.activity.list(person.id, { since: 0, limit: 10 })).resolves.toEqual(await store.activity.list(person.id, { since: 0, limit: 10 }));
          // The lookup columns came along: the person's grants are found by account and by portal.
          await expect(target.oidc.listByAccount('Grant', person.id)).resolves.toHaveLength(1);
          await expect(target.oidc.destroyByClient(['Grant'], portal.clientId)).resolves.toBe(1);
          await expect(target.recoveryCodes.countUnused(person.id)).resolves.toBe(1);
          await expect(target.oidc.find('AuthorizationCode', `${p}-c`)).resolves.toMatchObject({ grantId: `${p}-g`, consumed: expect.any(Number) });
          await expect(target.orgs.listRepresentatives(enterprise.code)).resolves.toEqual([person.id]);
          // The previous secret of a rotation came along, and one never rotated reads as none.
          await expect(target.portals.find(portal.clientId)).resolves.toEqual(portal);
          // Operators (roles and revision), approvals (decision and outcome) and a fraud lock too.
          await expect(target.operators.find(person.id)).resolves.toEqual(await store.operators.find(person.id));
          await expect(target.operators.find(person.id)).resolves.toMatchObject({ roles: ['auditor', 'keys'], rev: 1, updatedAt: clock + 1 });
          await expect(target.operators.setRoles(person.id, 1, ['admin'], clock)).resolves.toBe(true);
          await expect(target.approvals.find(approval.id)).resolves.toEqual(await store.approvals.find(approval.id));
          await expect(target.approvals.find(approval.id)).resolves.toMatchObject({ status: 'approved', outcome: 'done', params: approval.params });
          await expect(target.persons.findById(fraud.id)).resolves.toMatchObject({ status: 'locked', lockReason: 'fraud' });
          expect(portal.previousSecret).toEqual({ ciphertext: created.secretCiphertext, expiresAt: clock + DAY });
          // Usage counts and the tags of a day not yet compacted came along, and compact there.
          await expect(target.usage.range('2030-01-01', '2030-01-01', `${p}-u`)).resolves.toEqual(await store.usage.range('2030-01-01', '2030-01-01', `${p}-u`));
          await expect(target.usage.countDistinct('2030-01-01', '2030-01-01', `${p}-u`)).resolves.toEqual([{ day: '2030-01-01', portal: `${p}-u`, n: 2 }]);
          await target.usage.compact('2030-01-01');
          await expect(target.usage.range('2030-01-01', '2030-01-01', `${p}-u`)).resolves.toContainEqual({ day: '2030-01-01', portal: `${p}-u`, key: 'citizens', n: 2 });
        } finally {
          await target.close();
        }
      });
    });

    describe('copy: SQLite → this store → SQLite', () => {
      it('keeps contact lists (and a list never stored), revisions, lock reasons, flags and activity', async () => {
        const source = await createStore('sqlite::memory:', { now: () => clock });
        const back = await createStore('sqlite::memory:', { now: () => clock });
        try {
          const mail = newContact('email', { verified: true, verifiedAt: T0 });
          const full = await source.persons.create(newPerson({ contacts: [mail] }));
          const phone = newContact('phone', { addedAt: T0 + SECOND });
          await source.persons.updateContacts(full.id, 0, [mail, phone], mail.id);
          await source.persons.updateContacts(full.id, 1, [mail, { ...phone, verified: true, verifiedAt: T0 + 2 * SECOND }], mail.id);
          await source.persons.setStatus(full.id, 'locked', 'failures');
          await source.persons.setPasswordResetRequired(full.id, true);
          await source.persons.setAttention(full.id, { reason: 'not_me', at: T0 + 3 * SECOND });
          const empty = await source.persons.create(newPerson({ contacts: [] }));
          await source.copy.importMany('persons', [{
            id: randomUUID(), pid: randomPid(), name: 'Lê Văn Cũ', familyName: 'Lê', givenName: 'Văn Cũ', birthdate: '1970-05-06', gender: 'male',
            email: null, emailVerified: false, phone: '+84907777777', phoneVerified: true, address: null, level: 1, passwordHash: 'h',
            status: 'active', accessRevokedBefore: null, createdAt: T0 - DAY, updatedAt: T0 - DAY,
          }]);
          for (let i = 0; i < 3; i++) await source.activity.add(newActivity(full.id, { at: T0 + i, details: { count: i, 'a.b': '$x' } }));
          await source.activity.add(newActivity(empty.id, { expiresAt: T0 - 1 }));

          const copied: Partial<Record<CopyCollection, Record<string, unknown>[]>> = {};
          for (const collection of ['persons', 'activity'] as const) {
            const records: Record<string, unknown>[] = [];
            for await (const r of source.copy.exportAll(collection)) records.push(r);
            copied[collection] = records;
            await store.copy.importMany(collection, records);
          }
          const persons = copied.persons!;
          const ids = new Set(persons.map((r) => r.id));
          expect(persons.filter((r) => r.contacts === null)).toHaveLength(1);
          // Read through this store, every person is what the source reads.
          for (const id of ids) await expect(store.persons.findById(String(id))).resolves.toEqual(await source.persons.findById(String(id)));
          await expect(store.activity.list(full.id, { since: 0, limit: 10 })).resolves.toEqual(await source.activity.list(full.id, { since: 0, limit: 10 }));
          // Exported again (expired activity included), the records are the same, and back in SQLite too.
          const activityIds = new Set(copied.activity!.map((r) => r.id));
          const canon = (list: Record<string, unknown>[]) => list.map((r) => canonical(r)).sort();
          for (const [collection, mine] of [['persons', ids], ['activity', activityIds]] as const) {
            const records: Record<string, unknown>[] = [];
            for await (const r of store.copy.exportAll(collection)) if (mine.has(r.id as string)) records.push(r);
            expect(canon(records)).toEqual(canon(copied[collection]!));
            await back.copy.importMany(collection, records);
            const again: Record<string, unknown>[] = [];
            for await (const r of back.copy.exportAll(collection)) again.push(r);
            expect(canon(again)).toEqual(canon(copied[collection]!));
          }
          for (const id of ids) await expect(back.persons.findById(String(id))).resolves.toEqual(await source.persons.findById(String(id)));
          await expect(back.persons.findById(full.id)).resolves.toMatchObject({
            contactsRev: 2, noticeContact: mail.id, lockReason: 'failures', passwordResetRequired: true, attention: { reason: 'not_me', at: T0 + 3 * SECOND },
            phone: phone.value, phoneVerified: true,
          });
          await expect(back.persons.findById(empty.id)).resolves.toMatchObject({ contacts: [] });
        } finally {
          await source.close();
          await back.close();
        }
      });
    });

    describe('copy: operators, approvals and fraud locks, SQLite → this store → SQLite', () => {
      it('keeps them exactly, and they work through the repositories on each side', async () => {
        const source = await createStore('sqlite::memory:', { now: () => clock });
        const back = await createStore('sqlite::memory:', { now: () => clock });
        try {
          const person = await source.persons.create(newPerson());
          await source.persons.setStatus(person.id, 'locked', 'fraud');
          const p = ns();
          await source.operators.create({ personId: `${p}-1`, roles: ['admin'], addedBy: 'cli:root', addedAt: T0 });
          await source.operators.create({ personId: `${p}-2`, roles: [], addedBy: `${p}-1`, addedAt: T0 + 1 });
          await source.operators.setRoles(`${p}-2`, 0, ['helpdesk', 'integration'], T0 + 2);
          const pending = newApproval({ id: `${p}-a`, subject: person.id, action: 'unlock-fraud', params: { personId: person.id, 'a.b': { $ne: null } } });
          const decided = newApproval({ id: `${p}-b`, evidence: HOSTILE[1]! });
          await source.approvals.create(pending);
          await source.approvals.create(decided);
          await source.approvals.decide(decided.id, { status: 'rejected', by: `${p}-1`, role: 'admin', at: T0 + 5, reason: 'Thiếu hồ sơ' });

          const mine = (collection: CopyCollection, r: Record<string, unknown>): boolean =>
            collection === 'persons' ? r.id === person.id : String(collection === 'operators' ? r.personId : r.id).startsWith(p);
          const canon = (list: Record<string, unknown>[]) => list.map((r) => canonical(r)).sort();
          for (const collection of ['persons', 'operators', 'approvals'] as const) {
            const records: Record<string, unknown>[] = [];
            for await (const r of source.copy.exportAll(collection)) records.push(r);
            await store.copy.importMany(collection, records);
            const mirrored: Record<string, unknown>[] = [];
            for await (const r of store.copy.exportAll(collection)) if (mine(collection, r)) mirrored.push(r);
            expect(canon(mirrored)).toEqual(canon(records));
            await back.copy.importMany(collection, mirrored);
            const again: Record<string, unknown>[] = [];
            for await (const r of back.copy.exportAll(collection)) again.push(r);
            expect(canon(again)).toEqual(canon(records));
          }
          for (const target of [store, back]) {
            await expect(target.persons.findById(person.id)).resolves.toEqual(await source.persons.findById(person.id));
            await expect(target.operators.find(`${p}-2`)).resolves.toEqual(await source.operators.find(`${p}-2`));
            await expect(target.approvals.find(pending.id)).resolves.toEqual(pending);
            await expect(target.approvals.find(decided.id)).resolves.toEqual(await source.approvals.find(decided.id));
            await expect(target.approvals.findPending('unlock-fraud', person.id, T0)).resolves.toEqual(pending);
          }
          // Imported, the compare-and-sets go on from the copied state.
          await expect(store.operators.setRoles(`${p}-2`, 0, ['admin'], clock)).resolves.toBe(false);
          await expect(store.operators.setRoles(`${p}-2`, 1, ['admin'], clock)).resolves.toBe(true);
          await expect(store.approvals.decide(decided.id, { status: 'approved', by: 'x', role: 'admin', at: T0 + 6, reason: 'x' })).resolves.toBe(false);
          await expect(store.approvals.decide(pending.id, { status: 'approved', by: 'x', role: 'helpdesk', at: T0 + 6, reason: 'Đồng ý' })).resolves.toBe(true);
        } finally {
          await source.close();
          await back.close();
        }
      });

      it('refuses records whose roles, status or lock reason are not among the known ones, importing nothing', async () => {
        const p = ns();
        const operator = { personId: `${p}-x`, roles: ['admin', 'root'], addedBy: 'cli:root', addedAt: T0, updatedAt: T0, rev: 0 };
        await expect(store.copy.importMany('operators', [{ ...operator, personId: `${p}-ok`, roles: ['keys'] }, operator])).rejects.toBeInstanceOf(TypeError);
        await expect(store.operators.find(`${p}-ok`)).resolves.toBeUndefined();
        await expect(store.copy.importMany('approvals', [{ ...newApproval({ id: `${p}-a` }), status: 'maybe' }])).rejects.toBeInstanceOf(TypeError);
        await expect(store.approvals.find(`${p}-a`)).resolves.toBeUndefined();
        const legacy = {
          id: `${p}-person`, pid: randomPid(), name: 'Lê Văn Cũ', familyName: 'Lê', givenName: 'Văn Cũ', birthdate: '1970-05-06', gender: 'male',
          email: null, emailVerified: false, phone: null, phoneVerified: false, address: null, level: 1, passwordHash: 'h',
          status: 'locked', lockReason: 'suspicious', accessRevokedBefore: null, createdAt: T0, updatedAt: T0,
        };
        await expect(store.copy.importMany('persons', [legacy])).rejects.toBeInstanceOf(TypeError);
        await expect(store.persons.findById(`${p}-person`)).resolves.toBeUndefined();
      });
    });

    describe('jobs', () => {
      const LEASE = 30 * SECOND;
      const KEEP = 24 * 3600 * SECOND;

      it('enqueue is idempotent by id; find returns the job as pending with no attempts', async () => {
        const id = `${ns()}-job`;
        await expect(store.jobs.enqueue({ id, kind: 'k', payload: { a: 'ă', n: [1, { b: true }] }, dueAt: clock }, clock)).resolves.toBe(true);
        await expect(store.jobs.enqueue({ id, kind: 'k', payload: { other: 1 }, dueAt: clock + 5 }, clock)).resolves.toBe(false);
        await expect(store.jobs.find(id)).resolves.toEqual({
          id,
          kind: 'k',
          payload: { a: 'ă', n: [1, { b: true }] },
          status: 'pending',
          attempts: 0,
          dueAt: clock,
          leaseUntil: 0,
          lastOutcome: null,
          createdAt: clock,
          updatedAt: clock,
        });
        await expect(store.jobs.find(`${id}-missing`)).resolves.toBeUndefined();
      });

      it('claimDue takes due, unheld jobs of one kind, oldest due first, and leases them', async () => {
        const kind = `k-${ns()}`;
        await store.jobs.enqueue({ id: `${kind}-b`, kind, payload: {}, dueAt: clock - 2 }, clock);
        await store.jobs.enqueue({ id: `${kind}-a`, kind, payload: {}, dueAt: clock - 1 }, clock);
        await store.jobs.enqueue({ id: `${kind}-later`, kind, payload: {}, dueAt: clock + 10 * SECOND }, clock);
        await store.jobs.enqueue({ id: `${kind}-other`, kind: `${kind}-other`, payload: {}, dueAt: clock }, clock);

        const claimed = await store.jobs.claimDue(kind, clock, LEASE, 10);
        expect(claimed.map((j) => j.id)).toEqual([`${kind}-b`, `${kind}-a`]);
        expect(claimed.every((j) => j.attempts === 1 && j.leaseUntil === clock + LEASE)).toBe(true);
        // Held: not claimable again until the lease ends (a crashed worker's jobs come back).
        await expect(store.jobs.claimDue(kind, clock + 1, LEASE, 10)).resolves.toEqual([]);
        tick(10 * SECOND);
        expect((await store.jobs.claimDue(kind, clock, LEASE, 10)).map((j) => j.id)).toEqual([`${kind}-later`]);
        tick(LEASE);
        const again = await store.jobs.claimDue(kind, clock, LEASE, 1);
        expect(again).toHaveLength(1);
        expect(again[0]).toMatchObject({ id: `${kind}-b`, attempts: 2 });
      });

      it('parallel claimers never take the same job', async () => {
        const kind = `k-${ns()}`;
        for (let i = 0; i < 30; i++) await store.jobs.enqueue({ id: `${kind}-${String(i).padStart(2, '0')}`, kind, payload: { i }, dueAt: clock }, clock);
        const batches = await Promise.all(Array.from({ length: 10 }, () => store.jobs.claimDue(kind, clock, LEASE, 4)));
        const ids = batches.flat().map((j) => j.id);
        expect(new Set(ids).size).toBe(ids.length);
        expect(ids.length).toBeLessThanOrEqual(30);
        const rest = await store.jobs.claimDue(kind, clock, LEASE, 100);
        expect(ids.length + rest.length).toBe(30);
      });

      it('retry puts a job back with its outcome; finish ends it and keeps it for a while', async () => {
        const kind = `k-${ns()}`;
        const id = `${kind}-1`;
        await store.jobs.enqueue({ id, kind, payload: {}, dueAt: clock }, clock);
        await store.jobs.claimDue(kind, clock, LEASE, 1);
        tick(SECOND);
        await store.jobs.retry(id, clock + 60 * SECOND, 'timeout after 5000 ms', clock);
        await expect(store.jobs.find(id)).resolves.toMatchObject({ status: 'pending', dueAt: clock + 60 * SECOND, leaseUntil: 0, attempts: 1, lastOutcome: 'timeout after 5000 ms', updatedAt: clock });
        await expect(store.jobs.claimDue(kind, clock, LEASE, 1)).resolves.toEqual([]);
        tick(60 * SECOND);
        expect(await store.jobs.claimDue(kind, clock, LEASE, 1)).toHaveLength(1);
        await store.jobs.finish(id, 'done', '200', clock, KEEP);
        await expect(store.jobs.find(id)).resolves.toMatchObject({ status: 'done', lastOutcome: '200', attempts: 2 });
        // Finished jobs are never claimed again, and a late retry cannot revive them.
        await store.jobs.retry(id, clock, 'late', clock);
        await expect(store.jobs.find(id)).resolves.toMatchObject({ status: 'done', lastOutcome: '200' });
        tick(LEASE * 10);
        await expect(store.jobs.claimDue(kind, clock, LEASE, 10)).resolves.toEqual([]);
        // Kept for inspection, then gone (expiry checked on read; purge only cleans up).
        tick(KEEP);
        await expect(store.jobs.find(id)).resolves.toBeUndefined();
        await expect(store.jobs.enqueue({ id: `${kind}-2`, kind, payload: {}, dueAt: clock }, clock)).resolves.toBe(true);
        await store.jobs.finish(`${kind}-2`, 'failed', 'gave up after 10 attempts', clock, KEEP);
        await expect(store.jobs.find(`${kind}-2`)).resolves.toMatchObject({ status: 'failed', lastOutcome: 'gave up after 10 attempts' });
      });

      it('list shows a kind newest first, optionally by status', async () => {
        const kind = `k-${ns()}`;
        for (const n of [1, 2, 3]) {
          await store.jobs.enqueue({ id: `${kind}-${n}`, kind, payload: { n }, dueAt: clock }, clock);
          tick(1);
        }
        await store.jobs.finish(`${kind}-2`, 'done', '204', clock, KEEP);
        expect((await store.jobs.list(kind, { limit: 10 })).map((j) => j.id)).toEqual([`${kind}-3`, `${kind}-2`, `${kind}-1`]);
        expect((await store.jobs.list(kind, { status: 'done', limit: 10 })).map((j) => j.id)).toEqual([`${kind}-2`]);
        expect((await store.jobs.list(kind, { status: 'pending', limit: 1 })).map((j) => j.id)).toEqual([`${kind}-3`]);
        await expect(store.jobs.list(`${kind}%`, { limit: 10 })).resolves.toEqual([]);
      });

      it('ids and kinds shaped like injection are matched literally', async () => {
        const p = ns();
        for (const h of HOSTILE) await store.jobs.enqueue({ id: `${p}${h}`, kind: `${p}${h}`, payload: { h }, dueAt: clock }, clock);
        await expect(store.jobs.claimDue(`${p}%`, clock, LEASE, 100)).resolves.toHaveLength(1);
        await expect(store.jobs.find(`${p}_`)).resolves.toMatchObject({ payload: { h: '_' }, attempts: 0 });
        await expect(store.jobs.find(`${p}*`)).resolves.toMatchObject({ payload: { h: '*' } });
      });
    });

    describe('consents', () => {
      it('put creates a consent stamped with the store clock', async () => {
        const personId = randomUUID();
        const clientId = `portal-${ns()}`;
        const created = await store.consents.put({ personId, clientId, scopes: ['openid', 'profile'], claims: ['name'] });
        expect(created).toEqual({
          personId,
          clientId,
          scopes: ['openid', 'profile'],
          claims: ['name'],
          createdAt: clock,
          updatedAt: clock,
        });
        await expect(store.consents.find(personId, clientId)).resolves.toEqual(created);
        await expect(store.consents.find(personId, `portal-${ns()}`)).resolves.toBeUndefined();
        await expect(store.consents.find(randomUUID(), clientId)).resolves.toBeUndefined();
      });

      it('put replaces: scopes and claims replaced, createdAt kept, updatedAt moves', async () => {
        const personId = randomUUID();
        const clientId = `portal-${ns()}`;
        const first = await store.consents.put({ personId, clientId, scopes: ['openid', 'profile'], claims: ['name'] });
        tick(5 * SECOND);
        const second = await store.consents.put({ personId, clientId, scopes: ['openid'], claims: [] });
        expect(second).toEqual({
          personId,
          clientId,
          scopes: ['openid'],
          claims: [],
          createdAt: first.createdAt,
          updatedAt: clock,
        });
        expect(second.updatedAt).toBeGreaterThan(first.updatedAt);
        await expect(store.consents.find(personId, clientId)).resolves.toEqual(second);
        await expect(store.consents.listForPerson(personId)).resolves.toHaveLength(1);
      });

      it("listForPerson returns that person's consents only", async () => {
        const p1 = randomUUID();
        const p2 = randomUUID();
        const a = await store.consents.put({ personId: p1, clientId: `a-${ns()}`, scopes: ['openid'], claims: [] });
        tick(1);
        const b = await store.consents.put({ personId: p1, clientId: `b-${ns()}`, scopes: ['openid', 'email'], claims: ['email'] });
        await store.consents.put({ personId: p2, clientId: a.clientId, scopes: ['openid'], claims: [] });
        const listed = await store.consents.listForPerson(p1);
        expect([...listed].sort((x, y) => compareStrings(x.clientId, y.clientId))).toEqual([a, b]);
        await expect(store.consents.listForPerson(randomUUID())).resolves.toEqual([]);
      });

      it('remove deletes one consent and reports whether it existed', async () => {
        const personId = randomUUID();
        const keep = await store.consents.put({ personId, clientId: `keep-${ns()}`, scopes: ['openid'], claims: [] });
        const gone = await store.consents.put({ personId, clientId: `gone-${ns()}`, scopes: ['openid'], claims: [] });
        await expect(store.consents.remove(personId, gone.clientId)).resolves.toBe(true);
        await expect(store.consents.find(personId, gone.clientId)).resolves.toBeUndefined();
        await expect(store.consents.remove(personId, gone.clientId)).resolves.toBe(false);
        await expect(store.consents.listForPerson(personId)).resolves.toEqual([keep]);
      });
    });

    describe('counters', () => {
      it('start sets 1 with expiresAt = now + ttl over any state: missing, counting, lapsed', async () => {
        const key = `session-seen:${ns()}`;
        await expect(store.counters.start(key, 60 * SECOND, clock)).resolves.toEqual({ count: 1, updatedAt: clock, expiresAt: clock + 60 * SECOND });
        await store.counters.increment(key, 60 * SECOND, clock);
        await store.counters.increment(key, 60 * SECOND, clock);
        tick(SECOND);
        // A shorter window than the one it had: start replaces it, it does not keep the later one.
        const state = await store.counters.start(key, 10 * SECOND, clock);
        expect(state).toEqual({ count: 1, updatedAt: clock, expiresAt: clock + 10 * SECOND });
        await expect(store.counters.get(key, clock)).resolves.toEqual(state);
        tick(20 * SECOND);
        await expect(store.counters.get(key, clock)).resolves.toBeUndefined();
        await expect(store.counters.start(key, 60 * SECOND, clock)).resolves.toEqual({ count: 1, updatedAt: clock, expiresAt: clock + 60 * SECOND });
        await expect(store.counters.get(key, clock)).resolves.toMatchObject({ count: 1 });
        // Many at once on a new key: every one succeeds and one row remains.
        const fresh = `session-auth:${ns()}`;
        await Promise.all(Array.from({ length: 8 }, () => store.counters.start(fresh, 60 * SECOND, clock)));
        await expect(store.counters.get(fresh, clock)).resolves.toEqual({ count: 1, updatedAt: clock, expiresAt: clock + 60 * SECOND });
      });

      it('increment starts at 1 with expiresAt = now + ttl', async () => {
        const key = `login:${ns()}`;
        await expect(store.counters.get(key, clock)).resolves.toBeUndefined();
        const state = await store.counters.increment(key, 60 * SECOND, clock);
        expect(state).toEqual({ count: 1, updatedAt: clock, expiresAt: clock + 60 * SECOND });
        await expect(store.counters.get(key, clock)).resolves.toEqual(state);
      });

      it('grows without moving expiresAt unless asked to slide', async () => {
        const key = `login:${ns()}`;
        const start = clock;
        await store.counters.increment(key, 60 * SECOND, clock);
        tick(SECOND);
        await expect(store.counters.increment(key, 60 * SECOND, clock)).resolves.toEqual({
          count: 2,
          updatedAt: clock,
          expiresAt: start + 60 * SECOND,
        });
        tick(SECOND);
        await expect(store.counters.increment(key, 60 * SECOND, clock, { slide: false })).resolves.toEqual({
          count: 3,
          updatedAt: clock,
          expiresAt: start + 60 * SECOND,
        });
        await expect(store.counters.get(key, clock)).resolves.toMatchObject({ count: 3 });
      });

      it('lapses at expiresAt: get sees nothing and the next increment starts again at 1', async () => {
        const key = `ip:${ns()}`;
        const { expiresAt } = await store.counters.increment(key, 10 * SECOND, clock);
        await store.counters.increment(key, 10 * SECOND, clock);
        await expect(store.counters.get(key, expiresAt - 1)).resolves.toMatchObject({ count: 2 });
        await expect(store.counters.get(key, expiresAt)).resolves.toBeUndefined();
        await expect(store.counters.increment(key, 10 * SECOND, expiresAt + 5)).resolves.toEqual({
          count: 1,
          updatedAt: expiresAt + 5,
          expiresAt: expiresAt + 5 + 10 * SECOND,
        });
      });

      it('slide moves expiresAt to now + ttl', async () => {
        const key = `login:${ns()}`;
        const t0 = clock;
        await store.counters.increment(key, 10 * SECOND, t0, { slide: true });
        await expect(store.counters.increment(key, 10 * SECOND, t0 + 5 * SECOND, { slide: true })).resolves.toEqual({
          count: 2,
          updatedAt: t0 + 5 * SECOND,
          expiresAt: t0 + 15 * SECOND,
        });
        // Past the original window, still alive because it slid.
        await expect(store.counters.get(key, t0 + 12 * SECOND)).resolves.toMatchObject({ count: 2 });
        await expect(store.counters.get(key, t0 + 15 * SECOND)).resolves.toBeUndefined();
      });

      it('reset removes the counter; resetting a missing key is harmless', async () => {
        const key = `login:${ns()}`;
        const other = `login:${ns()}`;
        await store.counters.increment(key, 60 * SECOND, clock);
        await store.counters.increment(key, 60 * SECOND, clock);
        await store.counters.increment(other, 60 * SECOND, clock);
        await store.counters.reset(key);
        await expect(store.counters.get(key, clock)).resolves.toBeUndefined();
        await expect(store.counters.get(other, clock)).resolves.toMatchObject({ count: 1 });
        await expect(store.counters.increment(key, 60 * SECOND, clock)).resolves.toMatchObject({ count: 1 });
        await expect(store.counters.reset(`login:${ns()}`)).resolves.toBeUndefined();
      });

      it('50 parallel increments yield counts exactly 1..50', async () => {
        const key = `ip:${ns()}`;
        const states = await Promise.all(
          Array.from({ length: 50 }, () => store.counters.increment(key, 60 * SECOND, clock)),
        );
        expect(states.map((s) => s.count).sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
        await expect(store.counters.get(key, clock)).resolves.toMatchObject({ count: 50 });
      });

      const POLICY = { freeAttempts: 5, baseDelayMs: 60 * SECOND, maxDelayMs: 3600 * SECOND, ttlMs: 7 * 24 * 3600 * SECOND };

      it('claimAttempt admits the free attempts, then only after each doubling delay, and never counts a refusal', async () => {
        const key = `login-fail:${ns()}`;
        const t0 = clock;
        for (let i = 1; i <= 5; i += 1) {
          await expect(store.counters.claimAttempt(key, t0, POLICY)).resolves.toEqual({ admitted: true, count: i });
        }
        // 5 counted: the next waits 1 min after the last one.
        await expect(store.counters.claimAttempt(key, t0 + 59 * SECOND, POLICY)).resolves.toEqual({ admitted: false, count: 5 });
        await expect(store.counters.claimAttempt(key, t0 + 60 * SECOND, POLICY)).resolves.toEqual({ admitted: true, count: 6 });
        // 6 counted: 2 min after the 6th.
        await expect(store.counters.claimAttempt(key, t0 + 179 * SECOND, POLICY)).resolves.toEqual({ admitted: false, count: 6 });
        await expect(store.counters.claimAttempt(key, t0 + 180 * SECOND, POLICY)).resolves.toEqual({ admitted: true, count: 7 });
        await expect(store.counters.get(key, t0 + 180 * SECOND)).resolves.toMatchObject({ count: 7, updatedAt: t0 + 180 * SECOND });
      });

      it('claimAttempt caps the delay, restarts a lapsed counter, and starts again after reset', async () => {
        const key = `login-fail:${ns()}`;
        const t0 = clock;
        for (let i = 0; i < 30; i += 1) await store.counters.increment(key, POLICY.ttlMs, t0, { slide: true });
        await expect(store.counters.claimAttempt(key, t0 + 3599 * SECOND, POLICY)).resolves.toMatchObject({ admitted: false });
        await expect(store.counters.claimAttempt(key, t0 + 3600 * SECOND, POLICY)).resolves.toEqual({ admitted: true, count: 31 });
        await expect(store.counters.claimAttempt(key, t0 + 3600 * SECOND + POLICY.ttlMs, POLICY)).resolves.toEqual({ admitted: true, count: 1 });
        await store.counters.reset(key);
        await expect(store.counters.claimAttempt(key, t0, POLICY)).resolves.toEqual({ admitted: true, count: 1 });
      });

      it('claimAttempt is atomic: of 20 parallel attempts on a fresh key exactly the 5 free ones are admitted', async () => {
        const key = `login-fail:${ns()}`;
        const results = await Promise.all(Array.from({ length: 20 }, () => store.counters.claimAttempt(key, clock, POLICY)));
        expect(results.filter((r) => r.admitted)).toHaveLength(5);
        expect(results.filter((r) => r.admitted).map((r) => r.count).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
        await expect(store.counters.get(key, clock)).resolves.toMatchObject({ count: 5 });
      });
    });

    describe('factors', () => {
      it('creates a TOTP factor stamped with the store clock and finds it by id', async () => {
        const input = newTotp(randomUUID());
        const created = await store.factors.create(input);
        expect(created).toEqual({ ...input, lastStep: null, createdAt: clock, lastUsedAt: null });
        await expect(store.factors.find(input.id)).resolves.toEqual(created);
        await expect(store.factors.find(randomUUID())).resolves.toBeUndefined();
      });

      it('creates a passkey and finds it by credential id; transports round-trip as JSON', async () => {
        const personId = randomUUID();
        const input = newPasskey(personId, { transports: ['usb', 'nfc', 'ble', 'internal', 'hybrid', 'smart-card'] });
        const created = await store.factors.create(input);
        expect(created).toEqual({ ...input, lastStep: null, createdAt: clock, lastUsedAt: null });
        await expect(store.factors.findByCredentialId(`${input.credentialId}`)).resolves.toEqual(created);
        await expect(store.factors.find(input.id)).resolves.toEqual(created);
        await expect(store.factors.findByCredentialId(`cred-${ns()}`)).resolves.toBeUndefined();

        // An empty list stays a list, distinct from null.
        const empty = await store.factors.create(newPasskey(personId, { transports: [] }));
        await expect(store.factors.find(empty.id)).resolves.toMatchObject({ transports: [] });
        const none = await store.factors.create(newPasskey(personId, { transports: null }));
        await expect(store.factors.find(none.id)).resolves.toMatchObject({ transports: null });
      });

      it("listForPerson returns that person's factors only, oldest first", async () => {
        const p = `f-${ns()}-`;
        const personId = randomUUID();
        const other = randomUUID();
        // Created out of id order, so only createdAt can explain the order.
        const c = await store.factors.create(newTotp(personId, { id: `${p}c` }));
        tick(1);
        const a = await store.factors.create(newPasskey(personId, { id: `${p}a` }));
        tick(SECOND);
        const b = await store.factors.create(newTotp(personId, { id: `${p}b` }));
        const theirs = await store.factors.create(newTotp(other, { id: `${p}0` }));
        await expect(store.factors.listForPerson(personId)).resolves.toEqual([c, a, b]);
        await expect(store.factors.listForPerson(other)).resolves.toEqual([theirs]);
        await expect(store.factors.listForPerson(randomUUID())).resolves.toEqual([]);
      });

      it('allows many factors without a credential id', async () => {
        const personId = randomUUID();
        for (let i = 0; i < 3; i += 1) await store.factors.create(newTotp(personId));
        await expect(store.factors.listForPerson(personId)).resolves.toHaveLength(3);
      });

      it('rejects a duplicate id with StoreConflictError(field "id")', async () => {
        const personId = randomUUID();
        const first = await store.factors.create(newTotp(personId));
        const attempt = store.factors.create(newTotp(randomUUID(), { id: first.id, label: 'Impostor' }));
        await expect(attempt).rejects.toBeInstanceOf(StoreConflictError);
        await expect(attempt).rejects.toMatchObject({ field: 'id', code: 'store_conflict' });
        await expect(store.factors.find(first.id)).resolves.toEqual(first);
        await expect(store.factors.listForPerson(personId)).resolves.toEqual([first]);
      });

      it('rejects a duplicate credential id, across persons, with StoreConflictError(field "credentialId")', async () => {
        const first = await store.factors.create(newPasskey(randomUUID()));
        const other = randomUUID();
        const dup = newPasskey(other, { credentialId: first.credentialId, publicKey: 'attacker-key' });
        const attempt = store.factors.create(dup);
        await expect(attempt).rejects.toBeInstanceOf(StoreConflictError);
        await expect(attempt).rejects.toMatchObject({ field: 'credentialId', code: 'store_conflict' });
        await expect(store.factors.findByCredentialId(`${first.credentialId}`)).resolves.toEqual(first);
        await expect(store.factors.find(dup.id)).resolves.toBeUndefined();
        await expect(store.factors.listForPerson(other)).resolves.toEqual([]);
      });

      it("confirm marks the person's own factor confirmed and refuses anyone else's", async () => {
        const personId = randomUUID();
        const factor = await store.factors.create(newTotp(personId));
        tick(SECOND);
        await expect(store.factors.confirm(randomUUID(), factor.id, clock)).resolves.toBe(false);
        await expect(store.factors.find(factor.id)).resolves.toEqual(factor);

        await expect(store.factors.confirm(personId, factor.id, clock)).resolves.toBe(true);
        await expect(store.factors.find(factor.id)).resolves.toEqual({ ...factor, confirmed: true, lastUsedAt: clock });
        await expect(store.factors.confirm(personId, randomUUID(), clock)).resolves.toBe(false);
      });

      it("remove deletes the person's own factor and refuses anyone else's", async () => {
        const personId = randomUUID();
        const keep = await store.factors.create(newTotp(personId, { confirmed: true }));
        const gone = await store.factors.create(newPasskey(personId));
        await expect(store.factors.remove(randomUUID(), gone.id)).resolves.toBe(false);
        await expect(store.factors.find(gone.id)).resolves.toEqual(gone);

        await expect(store.factors.remove(personId, gone.id)).resolves.toBe(true);
        await expect(store.factors.find(gone.id)).resolves.toBeUndefined();
        await expect(store.factors.findByCredentialId(`${gone.credentialId}`)).resolves.toBeUndefined();
        await expect(store.factors.remove(personId, gone.id)).resolves.toBe(false);
        await expect(store.factors.listForPerson(personId)).resolves.toEqual([keep]);
        // The credential id is free again once its factor is gone.
        await expect(store.factors.create(newPasskey(personId, { credentialId: gone.credentialId }))).resolves.toMatchObject({
          credentialId: gone.credentialId,
        });
      });

      it("removeUnconfirmed removes only the person's unconfirmed factors created before the cut-off", async () => {
        const personId = randomUUID();
        const other = randomUUID();
        const t0 = clock;
        const old = await store.factors.create(newTotp(personId));
        const confirmed = await store.factors.create(newTotp(personId, { confirmed: true }));
        const theirs = await store.factors.create(newTotp(other));
        tick(10 * SECOND);
        const recent = await store.factors.create(newPasskey(personId, { confirmed: false }));

        await expect(store.factors.removeUnconfirmed(personId, t0 + 10 * SECOND)).resolves.toBe(1);
        await expect(store.factors.find(old.id)).resolves.toBeUndefined();
        await expect(store.factors.listForPerson(personId)).resolves.toEqual([confirmed, recent]);
        await expect(store.factors.listForPerson(other)).resolves.toEqual([theirs]);

        await expect(store.factors.removeUnconfirmed(personId, t0 + 10 * SECOND + 1)).resolves.toBe(1);
        await expect(store.factors.listForPerson(personId)).resolves.toEqual([confirmed]);
        await expect(store.factors.removeUnconfirmed(personId, t0 + 3600 * SECOND)).resolves.toBe(0);
        await expect(store.factors.removeUnconfirmed(randomUUID(), t0 + 3600 * SECOND)).resolves.toBe(0);
        await expect(store.factors.listForPerson(other)).resolves.toEqual([theirs]);
      });

      it('acceptTotpStep accepts only a step above the last accepted one', async () => {
        const factor = await store.factors.create(newTotp(randomUUID(), { confirmed: true }));
        const step = Math.floor(clock / 30_000);
        tick(SECOND);
        const first = clock;
        await expect(store.factors.acceptTotpStep(factor.id, step, first)).resolves.toBe(true);
        await expect(store.factors.find(factor.id)).resolves.toEqual({ ...factor, lastStep: step, lastUsedAt: first });

        tick(SECOND);
        await expect(store.factors.acceptTotpStep(factor.id, step, clock)).resolves.toBe(false);
        await expect(store.factors.acceptTotpStep(factor.id, step - 1, clock)).resolves.toBe(false);
        await expect(store.factors.find(factor.id)).resolves.toMatchObject({ lastStep: step, lastUsedAt: first });

        tick(30 * SECOND);
        await expect(store.factors.acceptTotpStep(factor.id, step + 1, clock)).resolves.toBe(true);
        await expect(store.factors.find(factor.id)).resolves.toMatchObject({ lastStep: step + 1, lastUsedAt: clock });
        await expect(store.factors.acceptTotpStep(factor.id, step + 1, clock)).resolves.toBe(false);
        await expect(store.factors.acceptTotpStep(randomUUID(), step + 5, clock)).resolves.toBe(false);
      });

      it('of 20 parallel acceptTotpStep calls with one step exactly one returns true', async () => {
        const factor = await store.factors.create(newTotp(randomUUID(), { confirmed: true }));
        const step = Math.floor(clock / 30_000);
        const results = await Promise.all(
          Array.from({ length: 20 }, () => store.factors.acceptTotpStep(factor.id, step, clock)),
        );
        expect(results.filter((r) => r)).toHaveLength(1);
        expect(results.filter((r) => !r)).toHaveLength(19);
        await expect(store.factors.find(factor.id)).resolves.toMatchObject({ lastStep: step, lastUsedAt: clock });
      });

      it('updateSignCount stores only a greater counter, or 0 over 0', async () => {
        const counting = await store.factors.create(newPasskey(randomUUID(), { signCount: 5 }));
        tick(SECOND);
        const first = clock;
        await expect(store.factors.updateSignCount(counting.id, 6, first)).resolves.toBe(true);
        await expect(store.factors.find(counting.id)).resolves.toEqual({ ...counting, signCount: 6, lastUsedAt: first });
        tick(SECOND);
        // Equal, lower and a reset to 0 all look like a cloned authenticator.
        for (const n of [6, 5, 0]) await expect(store.factors.updateSignCount(counting.id, n, clock)).resolves.toBe(false);
        await expect(store.factors.find(counting.id)).resolves.toMatchObject({ signCount: 6, lastUsedAt: first });
        await expect(store.factors.updateSignCount(counting.id, 2 ** 32 - 1, clock)).resolves.toBe(true);
        await expect(store.factors.find(counting.id)).resolves.toMatchObject({ signCount: 2 ** 32 - 1, lastUsedAt: clock });

        const silent = await store.factors.create(newPasskey(randomUUID(), { signCount: 0 }));
        tick(SECOND);
        await expect(store.factors.updateSignCount(silent.id, 0, clock)).resolves.toBe(true);
        await expect(store.factors.find(silent.id)).resolves.toMatchObject({ signCount: 0, lastUsedAt: clock });
        await expect(store.factors.updateSignCount(silent.id, 0, clock)).resolves.toBe(true);
        await expect(store.factors.updateSignCount(silent.id, 1, clock)).resolves.toBe(true);
        await expect(store.factors.updateSignCount(silent.id, 0, clock)).resolves.toBe(false);
        await expect(store.factors.find(silent.id)).resolves.toMatchObject({ signCount: 1 });

        await expect(store.factors.updateSignCount(randomUUID(), 7, clock)).resolves.toBe(false);
      });

      it('of 20 parallel updateSignCount calls with one counter exactly one returns true', async () => {
        const factor = await store.factors.create(newPasskey(randomUUID(), { signCount: 10 }));
        const results = await Promise.all(
          Array.from({ length: 20 }, () => store.factors.updateSignCount(factor.id, 11, clock)),
        );
        expect(results.filter((r) => r)).toHaveLength(1);
        await expect(store.factors.find(factor.id)).resolves.toMatchObject({ signCount: 11 });
      });

      it('round-trips Unicode labels byte-exact, without normalising them', async () => {
        const personId = randomUUID();
        const nfc = 'Điện thoại của tôi';
        const nfd = nfc.normalize('NFD');
        expect(nfd).not.toBe(nfc);
        const astral = 'Khoá 🔑 𠀧';
        const one = await store.factors.create(newTotp(personId, { label: nfc }));
        const two = await store.factors.create(newPasskey(personId, { label: nfd }));
        const three = await store.factors.create(newPasskey(personId, { label: astral }));
        expect(utf8((await store.factors.find(one.id))?.label ?? '')).toBe(utf8(nfc));
        expect(utf8((await store.factors.findByCredentialId(`${two.credentialId}`))?.label ?? '')).toBe(utf8(nfd));
        expect(utf8((await store.factors.find(three.id))?.label ?? '')).toBe(utf8(astral));
      });
    });

    describe('recovery codes', () => {
      const hashes = (n: number): string[] => Array.from({ length: n }, () => `h-${randomUUID()}`);

      it('replace stores an unused set; countUnused and createdAt report it', async () => {
        const personId = randomUUID();
        await expect(store.recoveryCodes.countUnused(personId)).resolves.toBe(0);
        await expect(store.recoveryCodes.createdAt(personId)).resolves.toBeUndefined();
        await store.recoveryCodes.replace(personId, hashes(10), clock);
        await expect(store.recoveryCodes.countUnused(personId)).resolves.toBe(10);
        await expect(store.recoveryCodes.createdAt(personId)).resolves.toBe(clock);
        await expect(store.recoveryCodes.countUnused(randomUUID())).resolves.toBe(0);
      });

      it('consume uses a code once', async () => {
        const personId = randomUUID();
        const set = hashes(5);
        await store.recoveryCodes.replace(personId, set, clock);
        tick(SECOND);
        await expect(store.recoveryCodes.consume(personId, `${set[2]}`, clock)).resolves.toBe(true);
        await expect(store.recoveryCodes.countUnused(personId)).resolves.toBe(4);
        await expect(store.recoveryCodes.consume(personId, `${set[2]}`, clock)).resolves.toBe(false);
        await expect(store.recoveryCodes.consume(personId, `h-${randomUUID()}`, clock)).resolves.toBe(false);
        await expect(store.recoveryCodes.countUnused(personId)).resolves.toBe(4);
        // The set keeps its creation time while codes are used.
        await expect(store.recoveryCodes.createdAt(personId)).resolves.toBe(clock - SECOND);
      });

      it("consume refuses another person's code", async () => {
        const alice = randomUUID();
        const bob = randomUUID();
        const set = hashes(3);
        await store.recoveryCodes.replace(alice, set, clock);
        await store.recoveryCodes.replace(bob, [`${set[0]}`, ...hashes(2)], clock);
        await expect(store.recoveryCodes.consume(randomUUID(), `${set[1]}`, clock)).resolves.toBe(false);
        await expect(store.recoveryCodes.consume(bob, `${set[1]}`, clock)).resolves.toBe(false);
        await expect(store.recoveryCodes.countUnused(alice)).resolves.toBe(3);
        // One hash held by two persons is two codes.
        await expect(store.recoveryCodes.consume(alice, `${set[0]}`, clock)).resolves.toBe(true);
        await expect(store.recoveryCodes.countUnused(bob)).resolves.toBe(3);
        await expect(store.recoveryCodes.consume(bob, `${set[0]}`, clock)).resolves.toBe(true);
        await expect(store.recoveryCodes.countUnused(alice)).resolves.toBe(2);
        await expect(store.recoveryCodes.countUnused(bob)).resolves.toBe(2);
      });

      it('of 20 parallel consume calls for one code exactly one returns true', async () => {
        const personId = randomUUID();
        const set = hashes(4);
        await store.recoveryCodes.replace(personId, set, clock);
        const results = await Promise.all(
          Array.from({ length: 20 }, () => store.recoveryCodes.consume(personId, `${set[0]}`, clock)),
        );
        expect(results.filter((r) => r)).toHaveLength(1);
        expect(results.filter((r) => !r)).toHaveLength(19);
        await expect(store.recoveryCodes.countUnused(personId)).resolves.toBe(3);
      });

      it('replace drops the old set, used codes included, and stamps the new one', async () => {
        const personId = randomUUID();
        const other = randomUUID();
        const old = hashes(4);
        await store.recoveryCodes.replace(personId, old, clock);
        await store.recoveryCodes.replace(other, hashes(2), clock);
        await store.recoveryCodes.consume(personId, `${old[0]}`, clock);
        await store.recoveryCodes.consume(personId, `${old[1]}`, clock);
        await expect(store.recoveryCodes.countUnused(personId)).resolves.toBe(2);

        tick(60 * SECOND);
        // A hash that was used in the old set is a fresh, unused code in the new one.
        const fresh = [`${old[0]}`, ...hashes(5)];
        await store.recoveryCodes.replace(personId, fresh, clock);
        await expect(store.recoveryCodes.countUnused(personId)).resolves.toBe(6);
        await expect(store.recoveryCodes.createdAt(personId)).resolves.toBe(clock);
        await expect(store.recoveryCodes.consume(personId, `${old[2]}`, clock)).resolves.toBe(false);
        await expect(store.recoveryCodes.consume(personId, `${old[0]}`, clock)).resolves.toBe(true);
        await expect(store.recoveryCodes.countUnused(personId)).resolves.toBe(5);
        await expect(store.recoveryCodes.countUnused(other)).resolves.toBe(2);

        await store.recoveryCodes.replace(personId, [], clock);
        await expect(store.recoveryCodes.countUnused(personId)).resolves.toBe(0);
        await expect(store.recoveryCodes.createdAt(personId)).resolves.toBeUndefined();
      });

      it("removeAll deletes the person's codes only and tolerates a person without any", async () => {
        const personId = randomUUID();
        const other = randomUUID();
        const set = hashes(3);
        await store.recoveryCodes.replace(personId, set, clock);
        await store.recoveryCodes.replace(other, hashes(3), clock);
        await store.recoveryCodes.removeAll(personId);
        await expect(store.recoveryCodes.countUnused(personId)).resolves.toBe(0);
        await expect(store.recoveryCodes.createdAt(personId)).resolves.toBeUndefined();
        await expect(store.recoveryCodes.consume(personId, `${set[0]}`, clock)).resolves.toBe(false);
        await expect(store.recoveryCodes.countUnused(other)).resolves.toBe(3);
        await expect(store.recoveryCodes.removeAll(randomUUID())).resolves.toBeUndefined();
      });
    });

    describe('orgs', () => {
      // Every org grant made here expires well before T0 + 1 year, so the maintenance test's
      // opening purge clears whatever these tests leave behind in a shared store.
      const HOUR = 3600 * SECOND;

      it('creates an enterprise and a branch stamped with the store clock and finds them', async () => {
        const input = newEnterprise({ name: 'Công ty Cổ phần Đầu tư 𠀧 Việt' });
        const created = await store.orgs.createEnterprise(input);
        expect(created).toEqual({ ...input, createdAt: clock, updatedAt: clock });
        tick(SECOND);
        const branchInput = newEnterprise({ code: `${input.code}-001`, name: 'Chi nhánh Hà Nội', parentCode: input.code });
        const branch = await store.orgs.createEnterprise(branchInput);
        expect(branch).toEqual({ ...branchInput, createdAt: clock, updatedAt: clock });
        await expect(store.orgs.findEnterprise(input.code)).resolves.toEqual(created);
        await expect(store.orgs.findEnterprise(branch.code)).resolves.toEqual(branch);
        expect(utf8((await store.orgs.findEnterprise(input.code))?.name ?? '')).toBe(utf8(input.name));
        await expect(store.orgs.findEnterprise(`${input.code}-002`)).resolves.toBeUndefined();
        await expect(store.orgs.findEnterprise(randomCode())).resolves.toBeUndefined();
      });

      it('rejects a duplicate code with StoreConflictError(field "code")', async () => {
        const first = await store.orgs.createEnterprise(newEnterprise());
        const attempt = store.orgs.createEnterprise(newEnterprise({ code: first.code, name: 'Impostor', status: 'dissolved' }));
        await expect(attempt).rejects.toBeInstanceOf(StoreConflictError);
        await expect(attempt).rejects.toMatchObject({ field: 'code', code: 'store_conflict' });
        await expect(store.orgs.findEnterprise(first.code)).resolves.toEqual(first);
      });

      it('lists enterprises ordered by code, with limit and offset', async () => {
        const [c0, c1, c2] = randomCodes(3) as [string, string, string];
        // Created out of code order, so only the code can explain the order.
        const e2 = await store.orgs.createEnterprise(newEnterprise({ code: c2 }));
        tick(1);
        const e0 = await store.orgs.createEnterprise(newEnterprise({ code: c0 }));
        const e1 = await store.orgs.createEnterprise(newEnterprise({ code: c1 }));
        tick(1);
        const b0 = await store.orgs.createEnterprise(newEnterprise({ code: `${c0}-001`, parentCode: c0 }));
        const mine = new Set([c0, c1, c2, b0.code]);

        const all = await store.orgs.listEnterprises({ limit: 1_000_000, offset: 0 });
        const total = all.length;
        expect(all.map((x) => x.code)).toEqual(all.map((x) => x.code).sort(compareStrings));
        expect(new Set(all.map((x) => x.code)).size).toBe(total);
        expect(all.filter((x) => mine.has(x.code))).toEqual([e0, b0, e1, e2]);

        const start = all.findIndex((x) => x.code === c0);
        for (const [offset, limit] of [
          [start, 2],
          [start + 1, 2],
          [start + 2, 1],
          [0, 1],
          [total, 5],
        ] as const) {
          await expect(store.orgs.listEnterprises({ limit, offset })).resolves.toEqual(all.slice(offset, offset + limit));
        }
      });

      it("listBranches returns a parent's branches ordered by code", async () => {
        const [parent, other] = randomCodes(2) as [string, string];
        await store.orgs.createEnterprise(newEnterprise({ code: parent }));
        await store.orgs.createEnterprise(newEnterprise({ code: other }));
        const b2 = await store.orgs.createEnterprise(newEnterprise({ code: `${parent}-002`, parentCode: parent }));
        tick(1);
        const b1 = await store.orgs.createEnterprise(newEnterprise({ code: `${parent}-001`, parentCode: parent, status: 'suspended' }));
        const theirs = await store.orgs.createEnterprise(newEnterprise({ code: `${other}-001`, parentCode: other }));
        await expect(store.orgs.listBranches(parent)).resolves.toEqual([b1, b2]);
        await expect(store.orgs.listBranches(other)).resolves.toEqual([theirs]);
        await expect(store.orgs.listBranches(b1.code)).resolves.toEqual([]);
        await expect(store.orgs.listBranches(randomCode())).resolves.toEqual([]);
      });

      it('setEnterpriseStatus changes the status and reports whether the enterprise exists', async () => {
        const enterprise = await store.orgs.createEnterprise(newEnterprise());
        const bystander = await store.orgs.createEnterprise(newEnterprise({ code: `${enterprise.code}-001`, parentCode: enterprise.code }));
        tick(SECOND);
        await expect(store.orgs.setEnterpriseStatus(enterprise.code, 'suspended')).resolves.toBe(true);
        await expect(store.orgs.findEnterprise(enterprise.code)).resolves.toEqual({
          ...enterprise,
          status: 'suspended',
          updatedAt: clock,
        });
        tick(SECOND);
        await expect(store.orgs.setEnterpriseStatus(enterprise.code, 'dissolved')).resolves.toBe(true);
        await expect(store.orgs.findEnterprise(enterprise.code)).resolves.toEqual({
          ...enterprise,
          status: 'dissolved',
          updatedAt: clock,
        });
        await expect(store.orgs.findEnterprise(bystander.code)).resolves.toEqual(bystander);
        await expect(store.orgs.setEnterpriseStatus(randomCode(), 'active')).resolves.toBe(false);
      });

      it('records representatives idempotently, lists them oldest first and removes them', async () => {
        const [code, second] = randomCodes(2) as [string, string];
        const p = `p-${ns()}-`;
        await expect(store.orgs.listRepresentatives(code)).resolves.toEqual([]);
        await expect(store.orgs.addRepresentative(code, `${p}b`)).resolves.toBe(true);
        tick(1);
        await expect(store.orgs.addRepresentative(code, `${p}a`)).resolves.toBe(true);
        tick(1);
        await expect(store.orgs.addRepresentative(code, `${p}b`)).resolves.toBe(false);
        await expect(store.orgs.listRepresentatives(code)).resolves.toEqual([`${p}b`, `${p}a`]);

        // representedBy is ordered by code, not by when the pair was recorded.
        await expect(store.orgs.addRepresentative(second, `${p}b`)).resolves.toBe(true);
        await expect(store.orgs.representedBy(`${p}b`)).resolves.toEqual([code, second]);
        await expect(store.orgs.representedBy(`${p}a`)).resolves.toEqual([code]);
        await expect(store.orgs.representedBy(`${p}c`)).resolves.toEqual([]);

        await expect(store.orgs.removeRepresentative(code, `${p}b`)).resolves.toBe(true);
        await expect(store.orgs.removeRepresentative(code, `${p}b`)).resolves.toBe(false);
        await expect(store.orgs.removeRepresentative(randomCode(), `${p}a`)).resolves.toBe(false);
        await expect(store.orgs.listRepresentatives(code)).resolves.toEqual([`${p}a`]);
        await expect(store.orgs.representedBy(`${p}b`)).resolves.toEqual([second]);
        // Removed, then added again: a fresh pair, now the newest.
        tick(1);
        await expect(store.orgs.addRepresentative(code, `${p}b`)).resolves.toBe(true);
        await expect(store.orgs.listRepresentatives(code)).resolves.toEqual([`${p}a`, `${p}b`]);
      });

      it('putDelegation creates a delegation stamped with the store clock; until and portals round-trip', async () => {
        const code = randomCode();
        const open = newDelegation(code, randomUUID());
        const created = await store.orgs.putDelegation(open);
        expect(created).toEqual({ ...open, createdAt: clock, revokedAt: null });
        await expect(store.orgs.findDelegation(code, open.personId)).resolves.toEqual(created);

        tick(SECOND);
        const bounded = newDelegation(code, randomUUID(), {
          role: 'nhan-su',
          until: clock + 30 * 24 * HOUR,
          portals: ['portal-thue', 'portal-bhxh'],
          grantedBy: 'operator:quản-trị',
        });
        const second = await store.orgs.putDelegation(bounded);
        expect(second).toEqual({ ...bounded, createdAt: clock, revokedAt: null });
        await expect(store.orgs.findDelegation(code, bounded.personId)).resolves.toEqual(second);
        const none = newDelegation(code, randomUUID(), { portals: [] });
        await expect(store.orgs.putDelegation(none)).resolves.toMatchObject({ portals: [] });

        await expect(store.orgs.findDelegation(code, randomUUID())).resolves.toBeUndefined();
        await expect(store.orgs.findDelegation(randomCode(), open.personId)).resolves.toBeUndefined();
      });

      it('putDelegation replaces the delegation in place and brings a revoked one back in force', async () => {
        const code = randomCode();
        const personId = randomUUID();
        await store.orgs.putDelegation(newDelegation(code, personId, { until: clock + HOUR, portals: ['portal-a'] }));
        tick(SECOND);
        await expect(store.orgs.revokeDelegation(code, personId, clock)).resolves.toBe(true);
        await expect(store.orgs.findDelegation(code, personId)).resolves.toMatchObject({ revokedAt: clock });

        tick(SECOND);
        const again = newDelegation(code, personId, { role: 'giam-doc', until: null, portals: null, grantedBy: 'operator:an' });
        const replaced = await store.orgs.putDelegation(again);
        expect(replaced).toEqual({ ...again, createdAt: clock, revokedAt: null });
        await expect(store.orgs.findDelegation(code, personId)).resolves.toEqual(replaced);
        await expect(store.orgs.listDelegations(code)).resolves.toEqual([replaced]);
        await expect(store.orgs.delegationsOf(personId)).resolves.toEqual([replaced]);

        // Replacing one in force keeps a single row too.
        tick(SECOND);
        const third = await store.orgs.putDelegation(newDelegation(code, personId, { portals: ['portal-b'] }));
        await expect(store.orgs.listDelegations(code)).resolves.toEqual([third]);
        expect(third).toMatchObject({ portals: ['portal-b'], until: null, createdAt: clock, revokedAt: null });
      });

      it('revokeDelegation revokes once, then returns false', async () => {
        const code = randomCode();
        const personId = randomUUID();
        const bystander = await store.orgs.putDelegation(newDelegation(code, randomUUID()));
        const delegation = await store.orgs.putDelegation(newDelegation(code, personId));
        tick(SECOND);
        const revokedAt = clock;
        await expect(store.orgs.revokeDelegation(code, personId, revokedAt)).resolves.toBe(true);
        await expect(store.orgs.findDelegation(code, personId)).resolves.toEqual({ ...delegation, revokedAt });
        tick(SECOND);
        await expect(store.orgs.revokeDelegation(code, personId, clock)).resolves.toBe(false);
        await expect(store.orgs.findDelegation(code, personId)).resolves.toMatchObject({ revokedAt });
        await expect(store.orgs.findDelegation(code, bystander.personId)).resolves.toEqual(bystander);
        await expect(store.orgs.revokeDelegation(code, randomUUID(), clock)).resolves.toBe(false);
        await expect(store.orgs.revokeDelegation(randomCode(), personId, clock)).resolves.toBe(false);
      });

      it('of 20 parallel revokeDelegation calls exactly one returns true', async () => {
        const code = randomCode();
        const personId = randomUUID();
        await store.orgs.putDelegation(newDelegation(code, personId));
        const results = await Promise.all(Array.from({ length: 20 }, () => store.orgs.revokeDelegation(code, personId, clock)));
        expect(results.filter((r) => r)).toHaveLength(1);
        expect(results.filter((r) => !r)).toHaveLength(19);
        await expect(store.orgs.findDelegation(code, personId)).resolves.toMatchObject({ revokedAt: clock });
      });

      it('listDelegations is oldest first and delegationsOf is by code, revoked ones included', async () => {
        const [c0, c1, c2] = randomCodes(3) as [string, string, string];
        const p = `p-${ns()}-`;
        // Created out of person-id order, so only createdAt can explain the enterprise's order.
        const dc = await store.orgs.putDelegation(newDelegation(c0, `${p}c`));
        tick(1);
        const da = await store.orgs.putDelegation(newDelegation(c0, `${p}a`, { role: 'thu-quy' }));
        tick(1);
        const db = await store.orgs.putDelegation(newDelegation(c0, `${p}b`));
        tick(1);
        await store.orgs.revokeDelegation(c0, `${p}a`, clock);
        const revokedA = { ...da, revokedAt: clock };
        await expect(store.orgs.listDelegations(c0)).resolves.toEqual([dc, revokedA, db]);

        // Created out of code order for one person.
        const a2 = await store.orgs.putDelegation(newDelegation(c2, `${p}a`));
        tick(1);
        const a1 = await store.orgs.putDelegation(newDelegation(c1, `${p}a`));
        await expect(store.orgs.delegationsOf(`${p}a`)).resolves.toEqual([revokedA, a1, a2]);
        await expect(store.orgs.delegationsOf(`${p}c`)).resolves.toEqual([dc]);
        await expect(store.orgs.listDelegations(c1)).resolves.toEqual([a1]);
        await expect(store.orgs.listDelegations(randomCode())).resolves.toEqual([]);
        await expect(store.orgs.delegationsOf(`${p}z`)).resolves.toEqual([]);
      });

      it('recordGrant is idempotent by grantId; findGrant and grantsFor return unexpired grants', async () => {
        const [code, other] = randomCodes(2) as [string, string];
        const alice = randomUUID();
        const bob = randomUUID();
        const g1 = newOrgGrant(code, alice, clock + HOUR, { grantId: `${ns()}-1` });
        await store.orgs.recordGrant(g1);
        const recorded: OrgGrant = { ...g1, createdAt: clock };
        await expect(store.orgs.findGrant(g1.grantId)).resolves.toEqual(recorded);
        tick(SECOND);
        // The same grant id again keeps the first record.
        await store.orgs.recordGrant({ ...g1, personId: bob, enterpriseCode: other, expiresAt: clock + 2 * HOUR });
        await expect(store.orgs.findGrant(g1.grantId)).resolves.toEqual(recorded);

        const g2 = newOrgGrant(code, bob, clock + HOUR, { sessionUid: null });
        const g3 = newOrgGrant(code, alice, clock + 2 * HOUR);
        const g4 = newOrgGrant(other, alice, clock + HOUR);
        for (const g of [g2, g3, g4]) await store.orgs.recordGrant(g);
        const at = clock;
        const byId = (x: OrgGrant, y: OrgGrant): number => compareStrings(x.grantId, y.grantId);

        const forCode = await store.orgs.grantsFor(code);
        expect([...forCode].sort(byId)).toEqual(
          [recorded, { ...g2, createdAt: at }, { ...g3, createdAt: at }].sort(byId),
        );
        const forAlice = await store.orgs.grantsFor(code, alice);
        expect([...forAlice].sort(byId)).toEqual([recorded, { ...g3, createdAt: at }].sort(byId));
        await expect(store.orgs.grantsFor(code, bob)).resolves.toEqual([{ ...g2, createdAt: at }]);
        await expect(store.orgs.grantsFor(other)).resolves.toEqual([{ ...g4, createdAt: at }]);
        await expect(store.orgs.grantsFor(other, bob)).resolves.toEqual([]);
        await expect(store.orgs.grantsFor(randomCode())).resolves.toEqual([]);
        await expect(store.orgs.findGrant(`grant-${randomUUID()}`)).resolves.toBeUndefined();
      });

      it('checks grant expiry on read: a grant is gone once now reaches expiresAt', async () => {
        const code = randomCode();
        const personId = randomUUID();
        const short = newOrgGrant(code, personId, clock + 60 * SECOND);
        const long = newOrgGrant(code, personId, clock + HOUR);
        await store.orgs.recordGrant(short);
        await store.orgs.recordGrant(long);
        tick(60 * SECOND - 1);
        await expect(store.orgs.findGrant(short.grantId)).resolves.toBeDefined();
        await expect(store.orgs.grantsFor(code)).resolves.toHaveLength(2);
        tick(1);
        await expect(store.orgs.findGrant(short.grantId)).resolves.toBeUndefined();
        await expect(store.orgs.grantsFor(code)).resolves.toEqual([{ ...long, createdAt: T0 }]);
        await expect(store.orgs.grantsFor(code, personId)).resolves.toEqual([{ ...long, createdAt: T0 }]);
        tick(HOUR);
        await expect(store.orgs.findGrant(long.grantId)).resolves.toBeUndefined();
        await expect(store.orgs.grantsFor(code)).resolves.toEqual([]);
      });

      it('forgetGrant removes one grant and tolerates a missing id', async () => {
        const code = randomCode();
        const personId = randomUUID();
        const gone = newOrgGrant(code, personId, clock + HOUR);
        const kept = newOrgGrant(code, personId, clock + HOUR);
        await store.orgs.recordGrant(gone);
        await store.orgs.recordGrant(kept);
        await store.orgs.forgetGrant(gone.grantId);
        await expect(store.orgs.findGrant(gone.grantId)).resolves.toBeUndefined();
        await expect(store.orgs.grantsFor(code)).resolves.toEqual([{ ...kept, createdAt: clock }]);
        await expect(store.orgs.forgetGrant(gone.grantId)).resolves.toBeUndefined();
        await expect(store.orgs.forgetGrant(`grant-${randomUUID()}`)).resolves.toBeUndefined();
      });

      it('purgeExpired removes expired org grants and counts them', async () => {
        // Clear anything another test left behind in a shared store, so the count below is ours.
        await store.purgeExpired(clock + 365 * 24 * HOUR);
        const code = randomCode();
        const personId = randomUUID();
        const short1 = newOrgGrant(code, personId, clock + 10 * SECOND);
        const short2 = newOrgGrant(code, randomUUID(), clock + 10 * SECOND);
        const long = newOrgGrant(code, personId, clock + 1000 * SECOND);
        for (const g of [short1, short2, long]) await store.orgs.recordGrant(g);

        tick(10 * SECOND);
        await expect(store.purgeExpired(clock)).resolves.toBe(2);
        await expect(store.purgeExpired(clock)).resolves.toBe(0);
        await expect(store.orgs.findGrant(long.grantId)).resolves.toEqual({ ...long, createdAt: T0 });
        await expect(store.orgs.grantsFor(code)).resolves.toEqual([{ ...long, createdAt: T0 }]);
        // Purged means gone: the id can be recorded afresh.
        await store.orgs.recordGrant({ ...short1, expiresAt: clock + HOUR });
        await expect(store.orgs.findGrant(short1.grantId)).resolves.toEqual({ ...short1, expiresAt: clock + HOUR, createdAt: clock });
        await store.orgs.forgetGrant(short1.grantId);
        await store.orgs.forgetGrant(long.grantId);
      });

      it('enterprise codes, person ids and grant ids match literally', async () => {
        const code = randomCode();
        const p = ns();
        const plain = await store.orgs.createEnterprise(newEnterprise({ code }));
        for (const s of HOSTILE) await store.orgs.createEnterprise(newEnterprise({ code: `${code}${s}`, parentCode: `${code}${s}` }));
        for (const s of HOSTILE) {
          await expect(store.orgs.findEnterprise(`${code}${s}`)).resolves.toMatchObject({ code: `${code}${s}` });
          await expect(store.orgs.listBranches(`${code}${s}`)).resolves.toHaveLength(1);
          await expect(store.orgs.findEnterprise(s)).resolves.toBeUndefined();
          await expect(store.orgs.listBranches(s)).resolves.toEqual([]);
          await expect(store.orgs.listRepresentatives(s)).resolves.toEqual([]);
          await expect(store.orgs.representedBy(s)).resolves.toEqual([]);
          await expect(store.orgs.findDelegation(s, s)).resolves.toBeUndefined();
          await expect(store.orgs.listDelegations(s)).resolves.toEqual([]);
          await expect(store.orgs.delegationsOf(s)).resolves.toEqual([]);
          await expect(store.orgs.revokeDelegation(s, s, clock)).resolves.toBe(false);
          await expect(store.orgs.findGrant(s)).resolves.toBeUndefined();
          await expect(store.orgs.grantsFor(s)).resolves.toEqual([]);
        }
        await expect(store.orgs.findEnterprise('%')).resolves.toBeUndefined();
        await expect(store.orgs.findEnterprise(`${code.slice(0, 9)}_`)).resolves.toBeUndefined();
        await expect(store.orgs.setEnterpriseStatus(`${code}%`, 'suspended')).resolves.toBe(true);
        await expect(store.orgs.findEnterprise(code)).resolves.toEqual(plain);
        await expect(store.orgs.findEnterprise(`${code}_`)).resolves.toMatchObject({ status: 'active' });

        const hostile = `${p}' OR 1=1 --`;
        await store.orgs.addRepresentative(code, hostile);
        await store.orgs.addRepresentative(code, `${p}%`);
        await store.orgs.addRepresentative(code, `${p}-plain`);
        await expect(store.orgs.representedBy('%')).resolves.toEqual([]);
        await expect(store.orgs.representedBy(`${p}_`)).resolves.toEqual([]);
        await expect(store.orgs.representedBy(`${p}%`)).resolves.toEqual([code]);
        await expect(store.orgs.removeRepresentative(code, `${p}_`)).resolves.toBe(false);
        await expect(store.orgs.removeRepresentative('%', `${p}%`)).resolves.toBe(false);
        await expect(store.orgs.listRepresentatives(code)).resolves.toHaveLength(3);
        await expect(store.orgs.removeRepresentative(code, `${p}%`)).resolves.toBe(true);
        await expect(store.orgs.listRepresentatives(code)).resolves.toEqual([hostile, `${p}-plain`]);

        await store.orgs.putDelegation(newDelegation(code, `${p}%`, { portals: ['%', "' OR 1=1 --"] }));
        await store.orgs.putDelegation(newDelegation(code, `${p}-plain`));
        await expect(store.orgs.revokeDelegation(code, `${p}_`, clock)).resolves.toBe(false);
        await expect(store.orgs.revokeDelegation(`${code.slice(0, 9)}%`, `${p}%`, clock)).resolves.toBe(false);
        await expect(store.orgs.findDelegation(code, '%')).resolves.toBeUndefined();
        await expect(store.orgs.delegationsOf(`${p}_`)).resolves.toEqual([]);
        await expect(store.orgs.findDelegation(code, `${p}%`)).resolves.toMatchObject({ portals: ['%', "' OR 1=1 --"], revokedAt: null });
        await expect(store.orgs.revokeDelegation(code, `${p}%`, clock)).resolves.toBe(true);
        await expect(store.orgs.findDelegation(code, `${p}-plain`)).resolves.toMatchObject({ revokedAt: null });

        await store.orgs.recordGrant(newOrgGrant(code, `${p}%`, clock + HOUR, { grantId: `${p}%` }));
        await store.orgs.recordGrant(newOrgGrant(code, `${p}-plain`, clock + HOUR, { grantId: `${p}-plain` }));
        await expect(store.orgs.findGrant(`${p}_`)).resolves.toBeUndefined();
        await expect(store.orgs.grantsFor(code, '%')).resolves.toEqual([]);
        await expect(store.orgs.grantsFor(code, `${p}_`)).resolves.toEqual([]);
        await expect(store.orgs.grantsFor(`${code.slice(0, 9)}_`)).resolves.toEqual([]);
        await store.orgs.forgetGrant(`${p}_`);
        await store.orgs.forgetGrant('%');
        await expect(store.orgs.grantsFor(code)).resolves.toHaveLength(2);
        await expect(store.orgs.grantsFor(code, `${p}%`)).resolves.toMatchObject([{ grantId: `${p}%` }]);
      });
    });

    describe('signing keys', () => {
      // The key set is global: tests look at their own kids (and at relative facts about the rest).
      const ours = (keys: SigningKeyRecord[], p: string): SigningKeyRecord[] => keys.filter((k) => k.kid.startsWith(p));

      it('adds keys and lists them all ordered by activateAt then kid; every field round-trips', async () => {
        const p = `kid-${ns()}-`;
        const HOUR = 3600 * SECOND;
        // Added out of order; two share an activateAt so the kid tiebreak shows.
        const late = newSigningKey(`${p}a`, { activateAt: T0 + 2 * HOUR, alg: 'RS256', origin: 'development', publicJwk: {
          kty: 'RSA', n: 'sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw',
          e: 'AQAB', kid: `${p}a`, alg: 'RS256', use: 'sig', nested: { list: [1, 'hai', true, null] },
        } });
        const second = newSigningKey(`${p}c`, { activateAt: T0 + HOUR, createdAt: T0 - HOUR });
        const first = newSigningKey(`${p}d`, { activateAt: T0 });
        const tie = newSigningKey(`${p}b`, { activateAt: T0 + HOUR, retiredAt: T0 + 3 * HOUR });
        for (const key of [late, second, first, tie]) await expect(store.signingKeys.add(key)).resolves.toBeUndefined();

        const all = await store.signingKeys.list();
        const sorted = [...all].sort((x, y) => x.activateAt - y.activateAt || compareStrings(x.kid, y.kid));
        expect(all.map((k) => k.kid)).toEqual(sorted.map((k) => k.kid));
        expect(ours(all, p)).toEqual([first, tie, second, late]);
        // Reads hand out copies: changing one does not change the store.
        const [copy] = ours(all, p);
        if (copy) copy.publicJwk.kty = 'oct';
        await expect(store.signingKeys.list().then((keys) => ours(keys, p))).resolves.toEqual([first, tie, second, late]);
      });

      it('rejects a duplicate kid with StoreConflictError(field "kid"), keeping the first', async () => {
        const kid = `kid-${ns()}`;
        const original = newSigningKey(kid);
        await store.signingKeys.add(original);
        const attempt = store.signingKeys.add(newSigningKey(kid, { alg: 'RS256', activateAt: T0 + SECOND, privateJwkSealed: 'impostor' }));
        await expect(attempt).rejects.toBeInstanceOf(StoreConflictError);
        await expect(attempt).rejects.toMatchObject({ field: 'kid', code: 'store_conflict' });
        await expect(store.signingKeys.list().then((keys) => ours(keys, kid))).resolves.toEqual([original]);
      });

      it('retire marks a key retired once, then returns false; other keys are untouched', async () => {
        const p = `kid-${ns()}-`;
        const key = newSigningKey(`${p}a`);
        const bystander = newSigningKey(`${p}b`);
        await store.signingKeys.add(key);
        await store.signingKeys.add(bystander);
        tick(SECOND);
        const retiredAt = clock;
        await expect(store.signingKeys.retire(key.kid, retiredAt)).resolves.toBe(true);
        await expect(store.signingKeys.list().then((keys) => ours(keys, p))).resolves.toEqual([{ ...key, retiredAt }, bystander]);
        tick(SECOND);
        await expect(store.signingKeys.retire(key.kid, clock)).resolves.toBe(false);
        await expect(store.signingKeys.retire(`${p}zz`, clock)).resolves.toBe(false);
        await expect(store.signingKeys.retire(`${p}%`, clock)).resolves.toBe(false);
        await expect(store.signingKeys.list().then((keys) => ours(keys, p))).resolves.toEqual([{ ...key, retiredAt }, bystander]);
        // A key added already retired stays so.
        const old = newSigningKey(`${p}c`, { retiredAt: T0 });
        await store.signingKeys.add(old);
        await expect(store.signingKeys.retire(old.kid, clock)).resolves.toBe(false);
      });

      it('of 20 parallel retire calls exactly one returns true', async () => {
        const key = newSigningKey(`kid-${ns()}`);
        await store.signingKeys.add(key);
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.signingKeys.retire(key.kid, clock + i)));
        expect(results.filter((r) => r)).toHaveLength(1);
        const winner = results.indexOf(true);
        await expect(store.signingKeys.list().then((keys) => ours(keys, key.kid))).resolves.toEqual([{ ...key, retiredAt: clock + winner }]);
      });

      it('version grows on add and on retire, and not on reads or a failed retire or add', async () => {
        const p = `kid-${ns()}-`;
        const v0 = await store.signingKeys.version();
        expect(Number.isSafeInteger(v0)).toBe(true);
        await store.signingKeys.list();
        await expect(store.signingKeys.version()).resolves.toBe(v0);

        await store.signingKeys.add(newSigningKey(`${p}a`));
        const v1 = await store.signingKeys.version();
        expect(v1).toBeGreaterThan(v0);
        await store.signingKeys.list();
        await expect(store.signingKeys.version()).resolves.toBe(v1);

        await store.signingKeys.add(newSigningKey(`${p}b`));
        const v2 = await store.signingKeys.version();
        expect(v2).toBeGreaterThan(v1);

        await expect(store.signingKeys.retire(`${p}a`, clock)).resolves.toBe(true);
        const v3 = await store.signingKeys.version();
        expect(v3).toBeGreaterThan(v2);

        await expect(store.signingKeys.retire(`${p}a`, clock)).resolves.toBe(false);
        await expect(store.signingKeys.retire(`${p}missing`, clock)).resolves.toBe(false);
        await expect(store.signingKeys.add(newSigningKey(`${p}b`))).rejects.toBeInstanceOf(StoreConflictError);
        await store.signingKeys.list();
        await expect(store.signingKeys.version()).resolves.toBe(v3);
      });
    });

    describe('audit log', () => {
      // The log is one global chain, which a shared store may already hold entries of: every test
      // checks its entries relative to the head it saw before appending.
      const startOf = (head: AuditEntry | undefined): { seq: number; hash: string } =>
        head ? { seq: head.seq, hash: head.hash } : { seq: 0, hash: ZERO_HASH };

      /** Checks that `entries` follow each other, and `before`, in one unbroken chain. */
      function expectChain(entries: AuditEntry[], before: AuditEntry | undefined, inputs?: AuditInput[]): void {
        let prev = startOf(before);
        entries.forEach((entry, i) => {
          expect(entry.seq).toBe(prev.seq + 1);
          expect(entry.prevHash).toBe(prev.hash);
          expect(entry.hash).toBe(auditHash(entry.seq, entry.prevHash, inputs?.[i] ?? entry));
          expect(entry.hash).toMatch(/^[0-9a-f]{64}$/);
          prev = entry;
        });
      }

      it('appends entries with consecutive seqs, each chained to the previous hash', async () => {
        const before = await store.audit.head();
        if (before === undefined) {
          await expect(store.audit.list(0, 10)).resolves.toEqual([]);
        }
        const inputs = [
          auditInput({ at: clock }),
          auditInput({ at: clock + SECOND, event: 'LOGIN_FAILED', eventId: 1002, details: { reason: 'bad_password', count: 3 } }),
          auditInput({ at: clock + 2 * SECOND, event: 'LEVEL_SET', eventId: 3001, details: {} }),
        ];
        const appended: AuditEntry[] = [];
        for (const input of inputs) {
          const { seal, calls } = recordingSeal(input);
          const entry = await store.audit.append(input, seal);
          // seal gets exactly (seq, prevHash), and what it returns is the stored hash.
          expect(calls.length).toBeGreaterThanOrEqual(1);
          for (const call of calls) expect(call).toHaveLength(2);
          expect(calls[calls.length - 1]).toEqual([entry.seq, entry.prevHash]);
          expect(entry).toEqual({ ...input, seq: entry.seq, prevHash: entry.prevHash, hash: auditHash(entry.seq, entry.prevHash, input) });
          appended.push(entry);
        }
        expectChain(appended, before, inputs);
        const [first] = appended;
        if (before === undefined) {
          expect(first).toMatchObject({ seq: 1, prevHash: ZERO_HASH });
        } else {
          expect(first?.seq).toBe(before.seq + 1);
          expect(first?.prevHash).toBe(before.hash);
          expect(first?.prevHash).not.toBe(ZERO_HASH);
        }
        await expect(store.audit.head()).resolves.toEqual(appended[2]);
        await expect(store.audit.list(startOf(before).seq, 100)).resolves.toEqual(appended);
      });

      it('20 parallel appends get 20 distinct consecutive seqs in one unbroken chain', async () => {
        const before = await store.audit.head();
        const inputs = Array.from({ length: 20 }, (_, i) => auditInput({ at: clock + i, details: { n: i } }));
        const results = await Promise.all(inputs.map((input) => store.audit.append(input, recordingSeal(input).seal)));
        const start = startOf(before).seq;
        expect(results.map((e) => e.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => start + 1 + i));
        expect(new Set(results.map((e) => e.prevHash)).size).toBe(20);

        const listed = await store.audit.list(start, 100);
        expect(listed).toHaveLength(20);
        expectChain(listed, before);
        // Each call got back the entry that was stored for its input.
        for (const [i, entry] of results.entries()) {
          expect(entry).toMatchObject(inputs[i] ?? {});
          expect(listed.find((e) => e.seq === entry.seq)).toEqual(entry);
        }
        await expect(store.audit.head()).resolves.toEqual(listed[19]);
      });

      it('list returns entries after a seq, ascending, at most limit', async () => {
        const before = await store.audit.head();
        const start = startOf(before).seq;
        const appended: AuditEntry[] = [];
        for (let i = 0; i < 4; i++) {
          const input = auditInput({ at: clock + i * SECOND, details: { i } });
          appended.push(await store.audit.append(input, recordingSeal(input).seal));
        }
        const [e1, e2, e3, e4] = appended as [AuditEntry, AuditEntry, AuditEntry, AuditEntry];
        await expect(store.audit.list(start, 100)).resolves.toEqual([e1, e2, e3, e4]);
        await expect(store.audit.list(start, 2)).resolves.toEqual([e1, e2]);
        await expect(store.audit.list(e1.seq, 2)).resolves.toEqual([e2, e3]);
        await expect(store.audit.list(e3.seq, 100)).resolves.toEqual([e4]);
        await expect(store.audit.list(e4.seq, 100)).resolves.toEqual([]);
        await expect(store.audit.list(start, 0)).resolves.toEqual([]);
        if (start > 0) {
          // Older entries come before ours, in seq order.
          const older = await store.audit.list(Math.max(0, start - 3), 100);
          expect(older.map((e) => e.seq)).toEqual(older.map((e) => e.seq).sort((a, b) => a - b));
          expect(older.slice(-4)).toEqual([e1, e2, e3, e4]);
        }
      });

      it('listSince returns entries at or after a time and after a seq, ascending by seq', async () => {
        const before = await store.audit.head();
        const start = startOf(before).seq;
        // Times out of seq order: only seq can explain the order of the result.
        const ats = [clock + 20 * SECOND, clock, clock + 10 * SECOND, clock + 30 * SECOND];
        const appended: AuditEntry[] = [];
        for (const at of ats) {
          const input = auditInput({ at });
          appended.push(await store.audit.append(input, recordingSeal(input).seal));
        }
        const [e1, e2, e3, e4] = appended as [AuditEntry, AuditEntry, AuditEntry, AuditEntry];
        await expect(store.audit.listSince(clock, start, 100)).resolves.toEqual([e1, e2, e3, e4]);
        await expect(store.audit.listSince(clock + 10 * SECOND, start, 100)).resolves.toEqual([e1, e3, e4]);
        await expect(store.audit.listSince(clock + 10 * SECOND + 1, start, 100)).resolves.toEqual([e1, e4]);
        await expect(store.audit.listSince(clock + 10 * SECOND, start, 2)).resolves.toEqual([e1, e3]);
        await expect(store.audit.listSince(clock + 10 * SECOND, e1.seq, 100)).resolves.toEqual([e3, e4]);
        await expect(store.audit.listSince(clock + 30 * SECOND, start, 100)).resolves.toEqual([e4]);
        await expect(store.audit.listSince(clock + 30 * SECOND + 1, start, 100)).resolves.toEqual([]);
        await expect(store.audit.listSince(clock, e4.seq, 100)).resolves.toEqual([]);
      });

      it('round-trips Unicode and nested details byte-exact', async () => {
        const nfc = 'Nguyễn Văn Á';
        const nfd = nfc.normalize('NFD');
        const details = {
          person: nfc,
          decomposed: nfd,
          astral: 'Trần Thị 𠀧 😀',
          nested: { list: [1, 'hai', true, null, { ba: 3.5, sâu: { hơn: ['nữa'] } }], empty: {}, none: [] },
          'khóa có dấu': 'giá trị',
        };
        const input = auditInput({ event: 'ACCOUNT_UPDATED', details });
        const entry = await store.audit.append(input, recordingSeal(input).seal);
        expect(entry.details).toEqual(details);
        const [listed] = await store.audit.list(entry.seq - 1, 1);
        expect(listed).toEqual(entry);
        expect(utf8(String(listed?.details.person))).toBe(utf8(nfc));
        expect(utf8(String(listed?.details.decomposed))).toBe(utf8(nfd));
        expect(utf8(JSON.stringify(listed?.details))).toBe(utf8(JSON.stringify(details)));
        expect(listed?.hash).toBe(auditHash(entry.seq, entry.prevHash, input));
      });

      it('injection-shaped events and details are stored literally', async () => {
        const before = await store.audit.head();
        const appended: AuditEntry[] = [];
        for (const s of HOSTILE) {
          const input = auditInput({ event: s, details: { [s]: s, list: [s], nested: { $where: s } } });
          appended.push(await store.audit.append(input, recordingSeal(input).seal));
        }
        const listed = await store.audit.list(startOf(before).seq, 100);
        expect(listed).toEqual(appended);
        expectChain(listed, before);
        expect(listed.map((e) => e.event)).toEqual(HOSTILE);
        for (const [i, s] of HOSTILE.entries()) {
          expect(listed[i]?.details).toEqual({ [s]: s, list: [s], nested: { $where: s } });
        }
      });
    });

    describe('jobs: stats', () => {
      const KEEP = 3600 * SECOND;
      const mine = async (kinds: string[]) => (await store.jobs.stats()).filter((r) => kinds.includes(r.kind));

      it('counts per kind and status, with the oldest due time of the pending ones, ordered by kind then status', async () => {
        const k = `k-${ns()}`;
        const [a, b] = [`${k}-a`, `${k}-b`];
        await expect(mine([a, b])).resolves.toEqual([]);
        for (const [i, due] of [clock + 5 * SECOND, clock - 3 * SECOND, clock + 60 * SECOND, clock - 10 * SECOND, clock].entries()) {
          await store.jobs.enqueue({ id: `${a}-${i}`, kind: a, payload: {}, dueAt: due }, clock);
        }
        await store.jobs.enqueue({ id: `${b}-0`, kind: b, payload: {}, dueAt: clock + 7 }, clock);
        // The two oldest are claimed (still pending while leased): one finishes, one fails.
        const claimed = await store.jobs.claimDue(a, clock, 30 * SECOND, 3);
        expect(claimed.map((j) => j.id)).toEqual([`${a}-3`, `${a}-1`, `${a}-4`]);
        await store.jobs.finish(`${a}-3`, 'done', '200', clock, KEEP);
        await store.jobs.finish(`${a}-1`, 'failed', 'gave up', clock, KEEP);
        await expect(mine([a, b])).resolves.toEqual([
          { kind: a, status: 'done', count: 1, oldestDueAt: null },
          { kind: a, status: 'failed', count: 1, oldestDueAt: null },
          { kind: a, status: 'pending', count: 3, oldestDueAt: clock },
          { kind: b, status: 'pending', count: 1, oldestDueAt: clock + 7 },
        ]);
        // Finished jobs count while they are kept, and no longer once their time is up.
        tick(KEEP);
        await expect(mine([a, b])).resolves.toEqual([
          { kind: a, status: 'pending', count: 3, oldestDueAt: clock - KEEP },
          { kind: b, status: 'pending', count: 1, oldestDueAt: clock - KEEP + 7 },
        ]);
        // Every row of the whole queue has the documented shape and order.
        const all = await store.jobs.stats();
        for (const row of all) {
          expect(['pending', 'done', 'failed']).toContain(row.status);
          expect(Number.isInteger(row.count) && row.count > 0).toBe(true);
          expect(row.status === 'pending' ? typeof row.oldestDueAt === 'number' : row.oldestDueAt === null).toBe(true);
        }
        const keys = all.map((r) => [r.kind, r.status] as const);
        expect(keys).toEqual([...keys].sort(([k1, s1], [k2, s2]) => compareStrings(k1, k2) || compareStrings(s1, s2)));
      });

      it('pending(): the pending jobs per kind with the oldest due time, finished ones left out, ordered by kind', async () => {
        const k = `p-${ns()}`;
        const [a, b, c] = [`${k}-a`, `${k}-b`, `${k}-c`];
        const minePending = async () => (await store.jobs.pending()).filter((r) => [a, b, c].includes(r.kind));
        await expect(minePending()).resolves.toEqual([]);
        for (const [i, due] of [clock + 5 * SECOND, clock - 3 * SECOND, clock + 60 * SECOND].entries()) {
          await store.jobs.enqueue({ id: `${a}-${i}`, kind: a, payload: {}, dueAt: due }, clock);
        }
        await store.jobs.enqueue({ id: `${b}-0`, kind: b, payload: {}, dueAt: clock + 7 }, clock);
        await store.jobs.enqueue({ id: `${c}-0`, kind: c, payload: {}, dueAt: clock }, clock);
        // c's only job finishes: c is no longer pending at all; a's oldest is claimed and fails.
        await store.jobs.claimDue(c, clock, 30 * SECOND, 1);
        await store.jobs.finish(`${c}-0`, 'done', '200', clock, KEEP);
        await store.jobs.claimDue(a, clock, 30 * SECOND, 1);
        await store.jobs.finish(`${a}-1`, 'failed', 'gave up', clock, KEEP);
        await expect(minePending()).resolves.toEqual([
          { kind: a, count: 2, oldestDueAt: clock + 5 * SECOND },
          { kind: b, count: 1, oldestDueAt: clock + 7 },
        ]);
        const all = await store.jobs.pending();
        const kinds = all.map((r) => r.kind);
        expect(kinds).toEqual([...kinds].sort(compareStrings));
        expect(all.every((r) => Number.isInteger(r.count) && r.count > 0 && typeof r.oldestDueAt === 'number')).toBe(true);
      });

      it('injection-shaped kinds are counted as themselves', async () => {
        const p = ns();
        for (const h of HOSTILE) await store.jobs.enqueue({ id: `${p}${h}`, kind: `${p}${h}`, payload: {}, dueAt: clock }, clock);
        const kinds = HOSTILE.map((h) => `${p}${h}`);
        const rows = await mine(kinds);
        expect(rows.map((r) => r.kind).sort(compareStrings)).toEqual([...kinds].sort(compareStrings));
        expect(rows.every((r) => r.count === 1 && r.status === 'pending' && r.oldestDueAt === clock)).toBe(true);
      });
    });

    describe('operators', () => {
      it('creates an operator at revision 0, finds it, and refuses a second one for the same person', async () => {
        const personId = randomUUID();
        const created = await store.operators.create({ personId, roles: ['helpdesk', 'auditor'], addedBy: 'cli:root', addedAt: clock });
        expect(created).toEqual({ personId, roles: ['helpdesk', 'auditor'], addedBy: 'cli:root', addedAt: clock, updatedAt: clock, rev: 0 });
        await expect(store.operators.find(personId)).resolves.toEqual(created);
        await expect(store.operators.find(randomUUID())).resolves.toBeUndefined();
        const again = store.operators.create({ personId, roles: ['admin'], addedBy: 'cli:intruder', addedAt: clock + 1 });
        await expect(again).rejects.toBeInstanceOf(StoreConflictError);
        await expect(again).rejects.toMatchObject({ field: 'personId', code: 'store_conflict' });
        await expect(store.operators.find(personId)).resolves.toEqual(created);
      });

      it('refuses roles that are not roles, storing nothing', async () => {
        const personId = randomUUID();
        await expect(store.operators.create({ personId, roles: ['admin', 'root' as OperatorRole], addedBy: 'cli:x', addedAt: clock })).rejects.toBeInstanceOf(TypeError);
        await expect(store.operators.create({ personId, roles: [{ $ne: null } as unknown as OperatorRole], addedBy: 'cli:x', addedAt: clock })).rejects.toBeInstanceOf(TypeError);
        await expect(store.operators.find(personId)).resolves.toBeUndefined();
        await store.operators.create({ personId, roles: ['keys'], addedBy: 'cli:x', addedAt: clock });
        await expect(store.operators.setRoles(personId, 0, ['superuser' as OperatorRole], clock)).rejects.toBeInstanceOf(TypeError);
        await expect(store.operators.find(personId)).resolves.toMatchObject({ roles: ['keys'], rev: 0 });
      });

      it('setRoles is compare-and-set on the revision: a stale one changes nothing', async () => {
        const personId = randomUUID();
        const op = await store.operators.create({ personId, roles: ['helpdesk'], addedBy: 'cli:root', addedAt: clock });
        tick(SECOND);
        await expect(store.operators.setRoles(personId, 1, ['admin'], clock)).resolves.toBe(false);
        await expect(store.operators.find(personId)).resolves.toEqual(op);
        await expect(store.operators.setRoles(personId, 0, ['helpdesk', 'integration'], clock)).resolves.toBe(true);
        await expect(store.operators.find(personId)).resolves.toEqual({ ...op, roles: ['helpdesk', 'integration'], rev: 1, updatedAt: clock });
        // The revision it was read at is gone now.
        tick(SECOND);
        await expect(store.operators.setRoles(personId, 0, ['admin'], clock)).resolves.toBe(false);
        await expect(store.operators.setRoles(personId, 1, [], clock)).resolves.toBe(true);
        await expect(store.operators.find(personId)).resolves.toEqual({ ...op, roles: [], rev: 2, updatedAt: clock });
        await expect(store.operators.setRoles(randomUUID(), 0, ['admin'], clock)).resolves.toBe(false);
      });

      it('of 10 concurrent setRoles from the same revision exactly one lands', async () => {
        const personId = randomUUID();
        await store.operators.create({ personId, roles: ['helpdesk'], addedBy: 'cli:root', addedAt: clock });
        const sets: OperatorRole[][] = [['admin'], ['keys'], ['auditor', 'keys'], ['integration'], ['helpdesk', 'auditor']];
        const choices = Array.from({ length: 10 }, (_, i) => sets[i % sets.length]!);
        const results = await Promise.all(choices.map((roles) => store.operators.setRoles(personId, 0, roles, clock)));
        expect(results.filter((r) => r)).toHaveLength(1);
        await expect(store.operators.find(personId)).resolves.toMatchObject({ roles: choices[results.indexOf(true)], rev: 1 });
      });

      it('lists in the order added (addedAt, then person id), a page at a time, and counts', async () => {
        const before = await store.operators.count();
        // A time of their own, far from other tests' operators.
        const base = T0 + 2000 * DAY + randomInt(0, 1e9) * SECOND;
        const p = `op-${ns()}`;
        const made = [
          await store.operators.create({ personId: `${p}-c`, roles: ['admin'], addedBy: 'cli:root', addedAt: base }),
          await store.operators.create({ personId: `${p}-a`, roles: ['keys'], addedBy: 'cli:root', addedAt: base }),
          await store.operators.create({ personId: `${p}-0`, roles: ['auditor'], addedBy: 'cli:root', addedAt: base + 1 }),
          await store.operators.create({ personId: `${p}-b`, roles: ['helpdesk'], addedBy: 'cli:root', addedAt: base - 1 }),
        ];
        await expect(store.operators.count()).resolves.toBe(before + 4);
        const walked: Operator[] = [];
        for (let offset = 0; ; offset += 3) {
          const page = await store.operators.list({ limit: 3, offset });
          expect(page.length).toBeLessThanOrEqual(3);
          walked.push(...page);
          if (page.length < 3) break;
        }
        expect(walked.filter((o) => o.personId.startsWith(p)).map((o) => o.personId)).toEqual([`${p}-b`, `${p}-a`, `${p}-c`, `${p}-0`]);
        for (const o of made) expect(walked).toContainEqual(o);
        for (let i = 1; i < walked.length; i++) {
          const [x, y] = [walked[i - 1]!, walked[i]!];
          expect(x.addedAt < y.addedAt || (x.addedAt === y.addedAt && x.personId < y.personId)).toBe(true);
        }
        await expect(store.operators.list({ limit: 0, offset: 0 })).resolves.toEqual([]);
      });

      it('remove reports whether the person was an operator', async () => {
        const personId = randomUUID();
        await store.operators.create({ personId, roles: ['admin'], addedBy: 'cli:root', addedAt: clock });
        const before = await store.operators.count();
        await expect(store.operators.remove(personId)).resolves.toBe(true);
        await expect(store.operators.find(personId)).resolves.toBeUndefined();
        await expect(store.operators.count()).resolves.toBe(before - 1);
        await expect(store.operators.remove(personId)).resolves.toBe(false);
        await expect(store.operators.setRoles(personId, 0, ['admin'], clock)).resolves.toBe(false);
        // Added again, it starts afresh.
        await expect(store.operators.create({ personId, roles: ['keys'], addedBy: 'cli:root', addedAt: clock })).resolves.toMatchObject({ roles: ['keys'], rev: 0 });
      });

      it('injection-shaped person ids and authors are data', async () => {
        const p = ns();
        const plain = await store.operators.create({ personId: `${p}-plain`, roles: ['admin'], addedBy: 'cli:root', addedAt: clock });
        for (const s of HOSTILE) {
          await store.operators.create({ personId: `${p}${s}`, roles: ['helpdesk'], addedBy: s, addedAt: clock });
          await expect(store.operators.find(`${p}${s}`)).resolves.toMatchObject({ personId: `${p}${s}`, addedBy: s });
          await expect(store.operators.find(s)).resolves.toBeUndefined();
        }
        await expect(store.operators.setRoles(`${p}%`, 0, ['admin'], clock)).resolves.toBe(true);
        await expect(store.operators.setRoles(`${p}_`, 1, ['admin'], clock)).resolves.toBe(false);
        await expect(store.operators.remove(`${p}*`)).resolves.toBe(true);
        await expect(store.operators.find(plain.personId)).resolves.toEqual(plain);
        await expect(store.operators.find(`${p}%`)).resolves.toMatchObject({ roles: ['admin'], rev: 1 });
      });
    });

    describe('approvals', () => {
      it('creates a proposal and finds it as it was given; params round-trip; a duplicate id conflicts', async () => {
        const approval = newApproval({
          params: { personId: randomUUID(), level: 2, $where: 'x', 'a.b': { $ne: null }, nested: [1, 'hai', { ba: true }] },
          evidence: 'CCCD 001090000001, đối chiếu trực tiếp',
        });
        await expect(store.approvals.create(approval)).resolves.toBeUndefined();
        await expect(store.approvals.find(approval.id)).resolves.toEqual(approval);
        await expect(store.approvals.find(randomUUID())).resolves.toBeUndefined();
        const again = store.approvals.create({ ...approval, action: 'retire-key' });
        await expect(again).rejects.toBeInstanceOf(StoreConflictError);
        await expect(again).rejects.toMatchObject({ field: 'id' });
        await expect(store.approvals.find(approval.id)).resolves.toEqual(approval);
      });

      it('decide moves a pending proposal to approved or rejected once, recording who, in which role, when and why', async () => {
        const a = newApproval();
        const r = newApproval();
        await store.approvals.create(a);
        await store.approvals.create(r);
        tick(SECOND);
        const decision = { by: randomUUID(), role: 'admin', at: clock, reason: 'Đã kiểm tra hồ sơ' };
        await expect(store.approvals.decide(a.id, { status: 'approved', ...decision })).resolves.toBe(true);
        const decided = { status: 'approved', decidedBy: decision.by, decidedRole: 'admin', decidedAt: clock, decisionReason: 'Đã kiểm tra hồ sơ' };
        await expect(store.approvals.find(a.id)).resolves.toEqual({ ...a, ...decided });
        // Decided once: neither a second approval nor a rejection changes it.
        await expect(store.approvals.decide(a.id, { status: 'rejected', ...decision, by: randomUUID() })).resolves.toBe(false);
        await expect(store.approvals.decide(a.id, { status: 'approved', ...decision })).resolves.toBe(false);
        await expect(store.approvals.find(a.id)).resolves.toEqual({ ...a, ...decided });
        await expect(store.approvals.decide(r.id, { status: 'rejected', ...decision })).resolves.toBe(true);
        await expect(store.approvals.find(r.id)).resolves.toMatchObject({ status: 'rejected', decidedBy: decision.by, outcome: null });
        await expect(store.approvals.decide(r.id, { status: 'approved', ...decision })).resolves.toBe(false);
        await expect(store.approvals.decide(randomUUID(), { status: 'approved', ...decision })).resolves.toBe(false);
      });

      it('a lapsed proposal (decided at or after expiresAt) is refused and stays pending', async () => {
        const a = newApproval();
        await store.approvals.create(a);
        const decision = { status: 'approved' as const, by: randomUUID(), role: 'admin', reason: 'Muộn' };
        await expect(store.approvals.decide(a.id, { ...decision, at: a.expiresAt })).resolves.toBe(false);
        await expect(store.approvals.decide(a.id, { ...decision, at: a.expiresAt + DAY })).resolves.toBe(false);
        await expect(store.approvals.find(a.id)).resolves.toEqual(a);
        // A millisecond before, it is still in time.
        await expect(store.approvals.decide(a.id, { ...decision, at: a.expiresAt - 1 })).resolves.toBe(true);
        await expect(store.approvals.find(a.id)).resolves.toMatchObject({ status: 'approved', decidedAt: a.expiresAt - 1 });
      });

      it('of two (and of ten) operators deciding at once, exactly one succeeds, and the record is the winner\'s', async () => {
        const a = newApproval();
        await store.approvals.create(a);
        const two = [
          { status: 'approved' as const, by: 'op-1', role: 'admin', at: clock, reason: 'Đồng ý' },
          { status: 'rejected' as const, by: 'op-2', role: 'admin', at: clock, reason: 'Không đồng ý' },
        ];
        const results = await Promise.all(two.map((d) => store.approvals.decide(a.id, d)));
        expect(results.filter((x) => x)).toHaveLength(1);
        const winner = two[results.indexOf(true)]!;
        await expect(store.approvals.find(a.id)).resolves.toMatchObject({ status: winner.status, decidedBy: winner.by, decisionReason: winner.reason });

        const b = newApproval();
        await store.approvals.create(b);
        const ten = Array.from({ length: 10 }, (_, i) => ({ status: i % 2 ? 'approved' as const : 'rejected' as const, by: `op-${i}`, role: 'keys', at: clock + i, reason: `lý do ${i}` }));
        const many = await Promise.all(ten.map((d) => store.approvals.decide(b.id, d)));
        expect(many.filter((x) => x)).toHaveLength(1);
        const first = ten[many.indexOf(true)]!;
        await expect(store.approvals.find(b.id)).resolves.toMatchObject({ status: first.status, decidedBy: first.by, decidedAt: first.at });
      });

      it('setOutcome records what an approved proposal did, and only on an approved one', async () => {
        const a = newApproval();
        const pending = newApproval();
        const rejected = newApproval();
        for (const x of [a, pending, rejected]) await store.approvals.create(x);
        await store.approvals.decide(a.id, { status: 'approved', by: 'op-1', role: 'admin', at: clock, reason: 'Đồng ý' });
        await store.approvals.decide(rejected.id, { status: 'rejected', by: 'op-1', role: 'admin', at: clock, reason: 'Không' });
        await store.approvals.setOutcome(a.id, 'done');
        await expect(store.approvals.find(a.id)).resolves.toMatchObject({ status: 'approved', outcome: 'done' });
        await store.approvals.setOutcome(a.id, 'not done: the account changed meanwhile');
        await expect(store.approvals.find(a.id)).resolves.toMatchObject({ outcome: 'not done: the account changed meanwhile' });
        await store.approvals.setOutcome(pending.id, 'done');
        await store.approvals.setOutcome(rejected.id, 'done');
        await store.approvals.setOutcome(randomUUID(), 'done');
        await expect(store.approvals.find(pending.id)).resolves.toEqual(pending);
        await expect(store.approvals.find(rejected.id)).resolves.toMatchObject({ status: 'rejected', outcome: null });
      });

      it('findPending finds the live pending proposal of an action on a subject, and nothing else', async () => {
        const subject = randomUUID();
        const a = newApproval({ action: 'set-level-2', subject });
        await store.approvals.create(a);
        await expect(store.approvals.findPending('set-level-2', subject, clock)).resolves.toEqual(a);
        await expect(store.approvals.findPending('unlock-fraud', subject, clock)).resolves.toBeUndefined();
        await expect(store.approvals.findPending('set-level-2', randomUUID(), clock)).resolves.toBeUndefined();
        // Lapsed: not pending any more for this purpose (a new proposal may be made).
        await expect(store.approvals.findPending('set-level-2', subject, a.expiresAt)).resolves.toBeUndefined();
        await expect(store.approvals.findPending('set-level-2', subject, a.expiresAt - 1)).resolves.toEqual(a);
        // Decided: no longer pending.
        await store.approvals.decide(a.id, { status: 'rejected', by: 'op-1', role: 'admin', at: clock, reason: 'Không' });
        await expect(store.approvals.findPending('set-level-2', subject, clock)).resolves.toBeUndefined();
        const b = newApproval({ action: 'set-level-2', subject, createdAt: clock + 1, expiresAt: clock + 1 + DAY });
        await store.approvals.create(b);
        await expect(store.approvals.findPending('set-level-2', subject, clock + 2)).resolves.toEqual(b);
      });

      it('lists newest first (createdAt, then id), strictly after a cursor, optionally one status (lapsed ones are pending)', async () => {
        // A time of their own, far from other tests' proposals.
        const base = T0 + 3000 * DAY + randomInt(0, 1e9) * SECOND;
        const p = `ap-${ns()}`;
        const at = (createdAt: number, id: string, overrides: Partial<Approval> = {}) =>
          newApproval({ id: `${p}-${id}`, createdAt, expiresAt: createdAt + DAY, ...overrides });
        const made = [at(base, 'b'), at(base, 'a'), at(base, 'c'), at(base + 1, '0'), at(base - 1, 'z'), at(base - 2 * DAY, 'lapsed')];
        for (const x of made) await store.approvals.create(x);
        await store.approvals.decide(`${p}-c`, { status: 'approved', by: 'op', role: 'admin', at: base + 5, reason: 'Đồng ý' });
        await store.approvals.decide(`${p}-0`, { status: 'rejected', by: 'op', role: 'admin', at: base + 5, reason: 'Không' });
        const order = ['0', 'c', 'b', 'a', 'z', 'lapsed'].map((id) => `${p}-${id}`);

        const walk = async (status?: ApprovalStatus): Promise<Approval[]> => {
          const seen: Approval[] = [];
          let before: { createdAt: number; id: string } | undefined = { createdAt: base + 2, id: '' };
          while (before && seen.filter((x) => x.id.startsWith(p)).length < order.length) {
            const page: Approval[] = await store.approvals.list({ ...(status ? { status } : {}), before, limit: 2 });
            expect(page.length).toBeLessThanOrEqual(2);
            seen.push(...page);
            const last = page.at(-1);
            before = last && { createdAt: last.createdAt, id: last.id };
          }
          for (let i = 1; i < seen.length; i++) {
            const [x, y] = [seen[i - 1]!, seen[i]!];
            expect(x.createdAt > y.createdAt || (x.createdAt === y.createdAt && x.id > y.id)).toBe(true);
          }
          return seen.filter((x) => x.id.startsWith(p));
        };
        expect((await walk()).map((x) => x.id)).toEqual(order);
        expect((await walk('pending')).map((x) => x.id)).toEqual([`${p}-b`, `${p}-a`, `${p}-z`, `${p}-lapsed`]);
        expect((await walk('approved')).map((x) => x.id)).toEqual([`${p}-c`]);
        expect((await walk('rejected')).map((x) => x.id)).toEqual([`${p}-0`]);
        // Inside one millisecond, the cursor's id decides.
        const inside = await store.approvals.list({ before: { createdAt: base, id: `${p}-b` }, limit: 2 });
        expect(inside.map((x) => x.id)).toEqual([`${p}-a`, `${p}-z`]);
        await expect(store.approvals.list({ before: { createdAt: base, id: `${p}-b` }, limit: 0 })).resolves.toEqual([]);
        // Without a cursor: the newest of all, in the same order.
        const newest = await store.approvals.list({ limit: 3 });
        expect(newest.length).toBeGreaterThan(0);
        for (let i = 1; i < newest.length; i++) {
          const [x, y] = [newest[i - 1]!, newest[i]!];
          expect(x.createdAt > y.createdAt || (x.createdAt === y.createdAt && x.id > y.id)).toBe(true);
        }
      });

      it('injection-shaped ids, actions, subjects and reasons are data', async () => {
        const p = ns();
        for (const s of HOSTILE) {
          const a = newApproval({ id: `${p}${s}`, action: `${p}${s}`, subject: `${p}${s}`, reason: s, evidence: s });
          await store.approvals.create(a);
          await expect(store.approvals.find(`${p}${s}`)).resolves.toEqual(a);
          await expect(store.approvals.findPending(`${p}${s}`, `${p}${s}`, clock)).resolves.toEqual(a);
        }
        await expect(store.approvals.find(`${p}`)).resolves.toBeUndefined();
        await expect(store.approvals.findPending(`${p}%`, `${p}_`, clock)).resolves.toBeUndefined();
        await expect(store.approvals.decide(`${p}_`, { status: 'approved', by: HOSTILE[0]!, role: HOSTILE[1]!, at: clock, reason: HOSTILE[4]! })).resolves.toBe(true);
        await expect(store.approvals.find(`${p}_`)).resolves.toMatchObject({ status: 'approved', decidedBy: HOSTILE[0], decidedRole: HOSTILE[1], decisionReason: HOSTILE[4] });
        await expect(store.approvals.find(`${p}%`)).resolves.toMatchObject({ status: 'pending' });
      });
    });

    describe('audit search', () => {
      const seal = (seq: number, prev: string): string => createHash('sha256').update(`${seq}:${prev}`).digest('hex');
      const append = (input: Partial<AuditInput>) => store.audit.append(auditInput(input), seal);

      it('finds entries by event, person, portal and operator exactly, newest first, and counts them', async () => {
        const p = ns();
        const [person, other, portal, operator, event] = [`person-${p}`, `person-${p}-2`, `portal-${p}`, `op-${p}`, `EVENT_${p}`];
        const e1 = await append({ event, details: { person, portal } });
        const e2 = await append({ event: `${event}_OTHER`, details: { person, operator } });
        const e3 = await append({ event, details: { person: other, portal, operator } });
        const e4 = await append({ event, details: { person } });
        await expect(store.audit.search({ person, limit: 10 })).resolves.toEqual([e4, e2, e1]);
        await expect(store.audit.search({ portal, limit: 10 })).resolves.toEqual([e3, e1]);
        await expect(store.audit.search({ operator, limit: 10 })).resolves.toEqual([e3, e2]);
        await expect(store.audit.search({ event, limit: 10 })).resolves.toEqual([e4, e3, e1]);
        await expect(store.audit.search({ event, person, limit: 10 })).resolves.toEqual([e4, e1]);
        await expect(store.audit.search({ event, person, portal, limit: 10 })).resolves.toEqual([e1]);
        await expect(store.audit.search({ person, operator, limit: 10 })).resolves.toEqual([e2]);
        await expect(store.audit.search({ event, person: `${person}-none`, limit: 10 })).resolves.toEqual([]);
        // Exact: no prefix or case match.
        await expect(store.audit.search({ person: person.slice(0, -1), limit: 10 })).resolves.toEqual([]);
        await expect(store.audit.search({ event: event.toLowerCase(), limit: 10 })).resolves.toEqual([]);
        await expect(store.audit.count({ person })).resolves.toBe(3);
        await expect(store.audit.count({ event })).resolves.toBe(3);
        await expect(store.audit.count({ event, portal })).resolves.toBe(2);
        await expect(store.audit.count({ operator, person: other })).resolves.toBe(1);
        await expect(store.audit.count({ person: `${person}-none` })).resolves.toBe(0);
        // Without a filter, the newest of the whole log.
        const head = await store.audit.head();
        await expect(store.audit.search({ limit: 1 })).resolves.toEqual([head]);
        expect(await store.audit.count({})).toBeGreaterThanOrEqual(4);
      });

      it('pages strictly before a seq, at most limit', async () => {
        const event = `PAGED_${ns()}`;
        const entries: AuditEntry[] = [];
        for (let i = 0; i < 5; i++) entries.push(await append({ event, details: { i } }));
        const [e1, e2, e3, e4, e5] = entries as [AuditEntry, AuditEntry, AuditEntry, AuditEntry, AuditEntry];
        await expect(store.audit.search({ event, limit: 2 })).resolves.toEqual([e5, e4]);
        await expect(store.audit.search({ event, beforeSeq: e4.seq, limit: 2 })).resolves.toEqual([e3, e2]);
        await expect(store.audit.search({ event, beforeSeq: e2.seq, limit: 2 })).resolves.toEqual([e1]);
        await expect(store.audit.search({ event, beforeSeq: e1.seq, limit: 2 })).resolves.toEqual([]);
        await expect(store.audit.search({ event, beforeSeq: e5.seq + 1000, limit: 10 })).resolves.toEqual([e5, e4, e3, e2, e1]);
        await expect(store.audit.search({ event, limit: 0 })).resolves.toEqual([]);
        // count ignores the cursor and the limit.
        await expect(store.audit.count({ event })).resolves.toBe(5);
      });

      it('filters by time: from ≤ at < to', async () => {
        const event = `TIMED_${ns()}`;
        const ats = [clock + 20 * SECOND, clock, clock + 10 * SECOND, clock + 30 * SECOND];
        const [e1, e2, e3, e4] = await (async () => {
          const out: AuditEntry[] = [];
          for (const at of ats) out.push(await append({ event, at }));
          return out as [AuditEntry, AuditEntry, AuditEntry, AuditEntry];
        })();
        await expect(store.audit.search({ event, from: clock + 10 * SECOND, limit: 10 })).resolves.toEqual([e4, e3, e1]);
        await expect(store.audit.search({ event, to: clock + 20 * SECOND, limit: 10 })).resolves.toEqual([e3, e2]);
        await expect(store.audit.search({ event, from: clock + 10 * SECOND, to: clock + 30 * SECOND, limit: 10 })).resolves.toEqual([e3, e1]);
        await expect(store.audit.search({ event, from: clock + 10 * SECOND + 1, to: clock + 20 * SECOND, limit: 10 })).resolves.toEqual([]);
        await expect(store.audit.count({ event, from: clock, to: clock + 30 * SECOND })).resolves.toBe(3);
        await expect(store.audit.count({ event, from: clock + 30 * SECOND })).resolves.toBe(1);
        // Time alone, on the whole log: every entry returned is inside the window.
        const window = await store.audit.search({ from: clock + 10 * SECOND, to: clock + 20 * SECOND, limit: 50 });
        expect(window).toEqual(expect.arrayContaining([e3]));
        expect(window.every((e) => e.at >= clock + 10 * SECOND && e.at < clock + 20 * SECOND)).toBe(true);
        expect(window.map((e) => e.seq)).toEqual(window.map((e) => e.seq).sort((a, b) => b - a));
      });

      it('matches string details only: a number, list, object or null of that name is not matched', async () => {
        const p = ns();
        const value = `v-${p}`;
        const text = await append({ details: { person: value, portal: value, operator: value } });
        await append({ details: { person: [value], portal: { value }, operator: null } });
        await append({ details: { person: JSON.stringify([value]), nested: { person: value } } });
        const numeric = `${randomInt(1e9, 2e9)}`;
        const n = await append({ details: { person: Number(numeric), portal: true, operator: numeric } });
        for (const key of ['person', 'portal', 'operator'] as const) {
          await expect(store.audit.search({ [key]: value, limit: 10 })).resolves.toEqual([text]);
          await expect(store.audit.count({ [key]: value })).resolves.toBe(1);
        }
        await expect(store.audit.search({ person: numeric, limit: 10 })).resolves.toEqual([]);
        await expect(store.audit.search({ portal: 'true', limit: 10 })).resolves.toEqual([]);
        await expect(store.audit.search({ operator: numeric, limit: 10 })).resolves.toEqual([n]);
        await expect(store.audit.search({ person: JSON.stringify([value]), limit: 10 })).resolves.toHaveLength(1);
      });

      it('injection-shaped filter values are data', async () => {
        const p = ns();
        const made: AuditEntry[] = [];
        for (const s of HOSTILE) made.push(await append({ event: `${p}${s}`, details: { person: `${p}${s}`, portal: s, operator: `${p}${s}` } }));
        const plain = await append({ event: `${p}-plain`, details: { person: `${p}-plain`, operator: `${p}-plain` } });
        for (const [i, s] of HOSTILE.entries()) {
          await expect(store.audit.search({ person: `${p}${s}`, limit: 10 })).resolves.toEqual([made[i]]);
          await expect(store.audit.search({ event: `${p}${s}`, operator: `${p}${s}`, limit: 10 })).resolves.toEqual([made[i]]);
          await expect(store.audit.count({ event: `${p}${s}` })).resolves.toBe(1);
        }
        await expect(store.audit.search({ person: `${p}-plain`, limit: 10 })).resolves.toEqual([plain]);
        await expect(store.audit.search({ person: `${p}%`, event: `${p}-plain`, limit: 10 })).resolves.toEqual([]);
      });
    });

    describe('account evidence', () => {
      it("adds records and lists a person's records oldest first; evidence round-trips", async () => {
        const personId = randomUUID();
        const p = `ev-${ns()}-`;
        // Added out of time order; two share a createdAt.
        const third = newEvidence(personId, { id: `${p}c`, createdAt: T0 + 2 * SECOND, action: 'lock', reason: 'Yêu cầu của công dân', evidence: {} });
        const first = newEvidence(personId, { id: `${p}a`, createdAt: T0 });
        const second = newEvidence(personId, {
          id: `${p}b`,
          createdAt: T0 + SECOND,
          action: 'reset-mfa',
          evidence: { ticket: 'HT-2030-0001', nested: { list: [1, 'hai', null, { ba: true }] }, astral: '𠀧 😀' },
          operator: 'operator:an',
        });
        for (const record of [third, first, second]) await expect(store.accountEvidence.add(record)).resolves.toBeUndefined();
        await expect(store.accountEvidence.listForPerson(personId)).resolves.toEqual([first, second, third]);
        const [, found] = await store.accountEvidence.listForPerson(personId);
        expect(utf8(String(found?.evidence.astral))).toBe(utf8('𠀧 😀'));
        expect(utf8(found?.operator ?? '')).toBe(utf8('operator:an'));
      });

      it('isolates persons: each sees only its own records, and ids match literally', async () => {
        const p = ns();
        const alice = `${p}%`;
        const bob = `${p}_`;
        const carol = `${p}' OR 1=1 --`;
        const a1 = newEvidence(alice);
        tick(SECOND);
        const b1 = newEvidence(bob, { createdAt: clock, action: 'unlock' });
        const a2 = newEvidence(alice, { createdAt: clock, action: 'set-level', evidence: { documentType: 'cccd', documentNumber: '079090000002', place: '%' } });
        for (const record of [a1, b1, a2]) await store.accountEvidence.add(record);
        await expect(store.accountEvidence.listForPerson(alice)).resolves.toEqual([a1, a2]);
        await expect(store.accountEvidence.listForPerson(bob)).resolves.toEqual([b1]);
        await expect(store.accountEvidence.listForPerson(carol)).resolves.toEqual([]);
        await expect(store.accountEvidence.listForPerson(p)).resolves.toEqual([]);
        await expect(store.accountEvidence.listForPerson('%')).resolves.toEqual([]);
        await expect(store.accountEvidence.listForPerson(randomUUID())).resolves.toEqual([]);
      });
    });

    describe('activity', () => {
      it('adds entries and lists a person\'s newest first, by time then id; every field round-trips', async () => {
        const personId = randomUUID();
        const p = `act-${ns()}-`;
        // Added out of order; two share a time so the id tiebreak shows.
        const b = newActivity(personId, { id: `${p}b`, at: T0 + SECOND });
        const a = newActivity(personId, { id: `${p}a`, at: T0 + SECOND, event: 'CONTACT_ADDED', details: { kind: 'phone', masked: '*******567' } });
        const c = newActivity(personId, { id: `${p}c`, at: T0 });
        const d = newActivity(personId, { id: `${p}d`, at: T0 + 2 * SECOND, details: { device: 'Điện thoại 𠀧 😀', current: true, count: 3.5 } });
        for (const e of [b, a, c, d]) await expect(store.activity.add(e)).resolves.toBeUndefined();
        await store.activity.add(newActivity(randomUUID()));
        await expect(store.activity.list(personId, { since: 0, limit: 10 })).resolves.toEqual([d, b, a, c]);
        await expect(store.activity.list(personId, { since: 0, limit: 2 })).resolves.toEqual([d, b]);
        await expect(store.activity.list(personId, { since: 0, limit: 0 })).resolves.toEqual([]);
        const [found] = await store.activity.list(personId, { since: 0, limit: 1 });
        expect(utf8(String(found?.details.device))).toBe(utf8('Điện thoại 𠀧 😀'));
        await expect(store.activity.list(randomUUID(), { since: 0, limit: 10 })).resolves.toEqual([]);
      });

      it('pages strictly after a cursor (time, id) in that order, ties included', async () => {
        const personId = randomUUID();
        const p = `act-${ns()}-`;
        const entries: ActivityEntry[] = [];
        // Seven entries over three instants, ids chosen so that id order and insertion order differ.
        for (const [i, [at, id]] of ([[0, 'e'], [1, 'a'], [1, 'c'], [1, 'b'], [2, 'g'], [2, 'f'], [0, 'd']] as const).entries()) {
          entries.push(newActivity(personId, { id: `${p}${id}`, at: T0 + at * SECOND, details: { count: i } }));
        }
        for (const e of entries) await store.activity.add(e);
        const expected = [...entries].sort((x, y) => y.at - x.at || compareStrings(y.id, x.id));
        const pages: ActivityEntry[][] = [];
        let before: { at: number; id: string } | undefined;
        for (;;) {
          const page = await store.activity.list(personId, { since: 0, before, limit: 2 });
          if (page.length === 0) break;
          pages.push(page);
          const last = page[page.length - 1]!;
          before = { at: last.at, id: last.id };
        }
        expect(pages.map((page) => page.length)).toEqual([2, 2, 2, 1]);
        expect(pages.flat()).toEqual(expected);
        // A cursor between rows: strictly after it.
        await expect(store.activity.list(personId, { since: 0, before: { at: T0 + SECOND, id: `${p}b` }, limit: 10 })).resolves.toEqual(
          expected.filter((e) => e.at < T0 + SECOND || (e.at === T0 + SECOND && compareStrings(e.id, `${p}b`) < 0)),
        );
        await expect(store.activity.list(personId, { since: 0, before: { at: T0, id: `${p}0` }, limit: 10 })).resolves.toEqual([]);
      });

      it('since is inclusive: only entries at or after it', async () => {
        const personId = randomUUID();
        const old = newActivity(personId, { at: T0 - DAY });
        const edge = newActivity(personId, { at: T0 });
        const recent = newActivity(personId, { at: T0 + SECOND });
        for (const e of [old, edge, recent]) await store.activity.add(e);
        await expect(store.activity.list(personId, { since: T0, limit: 10 })).resolves.toEqual([recent, edge]);
        await expect(store.activity.list(personId, { since: T0 + 1, limit: 10 })).resolves.toEqual([recent]);
        await expect(store.activity.list(personId, { since: T0 + 2 * SECOND, limit: 10 })).resolves.toEqual([]);
      });

      it('checks expiry on read: an entry is gone from list and find once now reaches expiresAt', async () => {
        const personId = randomUUID();
        const short = newActivity(personId, { at: T0, expiresAt: T0 + 10 * SECOND });
        const long = newActivity(personId, { at: T0 - SECOND, expiresAt: T0 + DAY });
        for (const e of [short, long]) await store.activity.add(e);
        tick(10 * SECOND - 1);
        await expect(store.activity.list(personId, { since: 0, limit: 10 })).resolves.toEqual([short, long]);
        await expect(store.activity.find(personId, short.id)).resolves.toEqual(short);
        tick(1);
        await expect(store.activity.list(personId, { since: 0, limit: 10 })).resolves.toEqual([long]);
        await expect(store.activity.find(personId, short.id)).resolves.toBeUndefined();
        await expect(store.activity.find(personId, long.id)).resolves.toEqual(long);
      });

      it("find returns the person's own live entry only: someone else's is undefined", async () => {
        const alice = randomUUID();
        const bob = randomUUID();
        const entry = newActivity(alice);
        await store.activity.add(entry);
        await expect(store.activity.find(alice, entry.id)).resolves.toEqual(entry);
        await expect(store.activity.find(bob, entry.id)).resolves.toBeUndefined();
        await expect(store.activity.find(alice, randomUUID())).resolves.toBeUndefined();
        await expect(store.activity.find(alice, `${entry.id.slice(0, 8)}%`)).resolves.toBeUndefined();
      });

      it('rejects a duplicate id with StoreConflictError(field "id"), keeping the first', async () => {
        const personId = randomUUID();
        const first = newActivity(personId);
        await store.activity.add(first);
        const attempt = store.activity.add({ ...first, personId: randomUUID(), event: 'OTHER' });
        await expect(attempt).rejects.toBeInstanceOf(StoreConflictError);
        await expect(attempt).rejects.toMatchObject({ field: 'id' });
        await expect(store.activity.find(personId, first.id)).resolves.toEqual(first);
      });

      it('purgeExpired removes expired entries and counts them', async () => {
        // Clear anything another test left behind in a shared store, so the count below is ours.
        await store.purgeExpired(clock + 365 * DAY);
        const personId = randomUUID();
        const short1 = newActivity(personId, { expiresAt: clock + 10 * SECOND });
        const short2 = newActivity(randomUUID(), { expiresAt: clock + 10 * SECOND });
        const long = newActivity(personId, { expiresAt: clock + 1000 * SECOND });
        for (const e of [short1, short2, long]) await store.activity.add(e);
        tick(10 * SECOND);
        await expect(store.purgeExpired(clock)).resolves.toBe(2);
        await expect(store.purgeExpired(clock)).resolves.toBe(0);
        await expect(store.activity.list(personId, { since: 0, limit: 10 })).resolves.toEqual([long]);
        // Purged means gone: the id can be added afresh.
        await expect(store.activity.add({ ...short1, expiresAt: clock + DAY })).resolves.toBeUndefined();
        await expect(store.activity.find(personId, short1.id)).resolves.toEqual({ ...short1, expiresAt: clock + DAY });
      });

      it('injection-shaped ids, person ids, events and details are data', async () => {
        const p = ns();
        const added: ActivityEntry[] = [];
        for (const [i, s] of HOSTILE.entries()) {
          const entry = newActivity(`${p}${s}`, {
            id: `${p}${s}`, at: T0 + i, event: s,
            details: { [s]: s, $where: 'sleep(1000)', 'a.b': s, '$set': null, n: i },
          });
          await store.activity.add(entry);
          added.push(entry);
        }
        for (const entry of added) {
          await expect(store.activity.list(entry.personId, { since: 0, limit: 10 })).resolves.toEqual([entry]);
          await expect(store.activity.find(entry.personId, entry.id)).resolves.toEqual(entry);
        }
        for (const s of HOSTILE) {
          await expect(store.activity.list(s, { since: 0, limit: 10 })).resolves.toEqual([]);
          await expect(store.activity.find(`${p}%`, s)).resolves.toBeUndefined();
        }
        await expect(store.activity.list(`${p}%`, { since: 0, before: { at: T0 + 100, id: "' OR 1=1 --" }, limit: 10 })).resolves.toEqual([added[2]]);
        await expect(store.activity.list(p, { since: 0, limit: 10 })).resolves.toEqual([]);
      });
    });

    describe('usage statistics', () => {
      /** A random year of its own, so a shared database's other rows never fall in this test's days. */
      const year = (): string => String(randomInt(1100, 1900));

      it('adds to rows atomically, creating them at 0, and reads them back ordered by day, portal and key', async () => {
        const p = ns();
        const [a, b] = [`${p}-a`, `${p}-b`];
        await store.usage.add([
          { day: '2030-01-02', portal: b, key: 'signins', n: 2 },
          { day: '2030-01-01', portal: a, key: 'signins', n: 1 },
          { day: '2030-01-01', portal: a, key: 'acr:urn:dinhdanh:loa:low', n: 1 },
          // Twice in one call, and a zero: 3 + 4 and nothing.
          { day: '2030-01-01', portal: b, key: 'failure:wrong_password', n: 3 },
          { day: '2030-01-01', portal: b, key: 'failure:wrong_password', n: 4 },
          { day: '2030-01-01', portal: b, key: 'funnel:shown', n: 0 },
        ]);
        // Many flushes at once (instances, or one retrying) add up: nothing is lost.
        await Promise.all(Array.from({ length: 25 }, (_, i) => store.usage.add([
          { day: '2030-01-01', portal: a, key: 'signins', n: 1 },
          { day: '2030-01-03', portal: a, key: `hour:${String(i % 3).padStart(2, '0')}:other`, n: 2 },
        ])));
        const mine = (rows: Array<{ portal: string }>) => rows.filter((r) => r.portal.startsWith(p));
        await expect(store.usage.range('2030-01-01', '2030-01-03').then(mine)).resolves.toEqual([
          { day: '2030-01-01', portal: a, key: 'acr:urn:dinhdanh:loa:low', n: 1 },
          { day: '2030-01-01', portal: a, key: 'signins', n: 26 },
          { day: '2030-01-01', portal: b, key: 'failure:wrong_password', n: 7 },
          { day: '2030-01-02', portal: b, key: 'signins', n: 2 },
          { day: '2030-01-03', portal: a, key: 'hour:00:other', n: 18 },
          { day: '2030-01-03', portal: a, key: 'hour:01:other', n: 16 },
          { day: '2030-01-03', portal: a, key: 'hour:02:other', n: 16 },
        ]);
        // Both ends are included; a portal narrows to its own rows.
        await expect(store.usage.range('2030-01-02', '2030-01-02', b)).resolves.toEqual([{ day: '2030-01-02', portal: b, key: 'signins', n: 2 }]);
        await expect(store.usage.range('2030-01-02', '2030-01-03', a)).resolves.toEqual([
          { day: '2030-01-03', portal: a, key: 'hour:00:other', n: 18 },
          { day: '2030-01-03', portal: a, key: 'hour:01:other', n: 16 },
          { day: '2030-01-03', portal: a, key: 'hour:02:other', n: 16 },
        ]);
        await expect(store.usage.range('2030-01-04', '2030-12-31', a)).resolves.toEqual([]);
        await expect(store.usage.add([])).resolves.toBeUndefined();
      });

      it('sums a key prefix over portals per day and key, in the store; `*` never summed; a portal narrows it', async () => {
        const y = year();
        const p = ns();
        const [a, b] = [`${p}-a`, `${p}-b`];
        // Keys of this test only (k<p>:…), so a shared database's other rows never add in.
        const k = `k${p}`;
        const [d1, d2, d3] = [`${y}-02-28`, `${y}-03-01`, `${y}-03-02`];
        await store.usage.add([
          { day: d1, portal: a, key: `${k}:low`, n: 2 },
          { day: d1, portal: b, key: `${k}:low`, n: 3 },
          { day: d1, portal: b, key: `${k}:high`, n: 1 },
          { day: d2, portal: a, key: `${k}:high`, n: 4 },
          { day: d3, portal: a, key: `${k}:low`, n: 5 },
          // The all-portals distinct count is no portal's; the neighbours of the prefix are other keys.
          { day: d1, portal: '*', key: `${k}:low`, n: 100 },
          { day: d1, portal: a, key: k, n: 7 },
          { day: d1, portal: a, key: `${k};`, n: 7 },
          { day: d1, portal: a, key: `${k}9`, n: 7 },
        ]);
        await store.usage.add([{ day: d1, portal: a, key: `${k}:low`, n: 1 }]);
        // Across a month's end (every day of the period, none skipped), ordered by day then key.
        await expect(store.usage.sums({ from: d1, to: d3, keyPrefix: `${k}:` })).resolves.toEqual([
          { day: d1, key: `${k}:high`, n: 1 },
          { day: d1, key: `${k}:low`, n: 6 },
          { day: d2, key: `${k}:high`, n: 4 },
          { day: d3, key: `${k}:low`, n: 5 },
        ]);
        await expect(store.usage.sums({ from: d2, to: d2, keyPrefix: `${k}:` })).resolves.toEqual([{ day: d2, key: `${k}:high`, n: 4 }]);
        await expect(store.usage.sums({ from: d1, to: d3, keyPrefix: `${k}:`, portal: b })).resolves.toEqual([
          { day: d1, key: `${k}:high`, n: 1 },
          { day: d1, key: `${k}:low`, n: 3 },
        ]);
        await expect(store.usage.sums({ from: d1, to: d1, keyPrefix: k, portal: a })).resolves.toEqual([
          { day: d1, key: k, n: 7 }, { day: d1, key: `${k}9`, n: 7 }, { day: d1, key: `${k}:low`, n: 3 }, { day: d1, key: `${k};`, n: 7 },
        ]);
        await expect(store.usage.sums({ from: d1, to: d1, keyPrefix: `${k}:`, portal: '*' })).resolves.toEqual([]);
        await expect(store.usage.sums({ from: `${y}-04-01`, to: `${y}-04-30`, keyPrefix: `${k}:` })).resolves.toEqual([]);
        // A prefix is a prefix, never a pattern; malformed arguments reject, reading nothing.
        await expect(store.usage.sums({ from: d1, to: d3, keyPrefix: `${k}%` })).rejects.toBeInstanceOf(TypeError);
        for (const bad of [
          { from: d1, to: d3, keyPrefix: '' }, { from: d1, to: d3, keyPrefix: '{"$ne":null}' },
          { from: d1, to: d3, keyPrefix: { $gt: '' } }, { from: `${y}-02-30`, to: d3, keyPrefix: 'acr:' }, { from: 'yesterday', to: d3, keyPrefix: 'acr:' },
          { from: d1, to: d3, keyPrefix: 'acr:', portal: { $ne: null } },
        ]) await expect(store.usage.sums(bad as unknown as { from: string; to: string; keyPrefix: string })).rejects.toBeInstanceOf(TypeError);
      });

      it('counts a tag once per day and portal, however often it is flushed', async () => {
        const p = ns();
        const [a, b] = [`${p}-a`, `${p}-b`];
        const tags = (day: string, portal: string, list: string[]) => list.map((tag) => ({ day, portal, tag }));
        await store.usage.addDistinct([...tags('2030-02-01', a, ['t1', 't2', 't1']), ...tags('2030-02-01', '*', ['t1', 't2'])]);
        await store.usage.addDistinct([...tags('2030-02-01', a, ['t2', 't3']), ...tags('2030-02-01', b, ['t1']), ...tags('2030-02-02', a, ['t1'])]);
        await Promise.all(Array.from({ length: 10 }, () => store.usage.addDistinct(tags('2030-02-02', a, ['t1', 't4']))));
        const mine = (rows: Array<{ portal: string }>) => rows.filter((r) => r.portal.startsWith(p));
        await expect(store.usage.countDistinct('2030-02-01', '2030-02-02').then(mine)).resolves.toEqual([
          { day: '2030-02-01', portal: a, n: 3 },
          { day: '2030-02-01', portal: b, n: 1 },
          { day: '2030-02-02', portal: a, n: 2 },
        ]);
        await expect(store.usage.countDistinct('2030-02-02', '2030-02-02', a)).resolves.toEqual([{ day: '2030-02-02', portal: a, n: 2 }]);
        await expect(store.usage.countDistinct('2030-02-03', '2030-02-28', a)).resolves.toEqual([]);
        // The same tag under another portal, or on another day, is another row.
        await expect(store.usage.countDistinct('2030-02-01', '2030-02-01', b)).resolves.toEqual([{ day: '2030-02-01', portal: b, n: 1 }]);
      });

      it('compacts a finished day: citizens set to the distinct count (not added), its tags gone; idempotent, also when run twice at once', async () => {
        const y = year();
        const p = ns();
        const [a, b] = [`${p}-a`, `${p}-b`];
        const [d1, d2, d3] = [`${y}-03-01`, `${y}-03-02`, `${y}-03-03`];
        await store.usage.add([{ day: d1, portal: a, key: 'signins', n: 5 }]);
        await store.usage.addDistinct([
          { day: d1, portal: a, tag: 'x' }, { day: d1, portal: a, tag: 'y' }, { day: d1, portal: b, tag: 'x' },
          { day: d2, portal: a, tag: 'z' }, { day: d3, portal: a, tag: 'z' },
        ]);
        const ofYear = (days: string[]) => days.filter((d) => d.startsWith(`${y}-`));
        await expect(store.usage.uncompacted(d3).then(ofYear)).resolves.toEqual([d1, d2]);
        await expect(store.usage.uncompacted(d1).then(ofYear)).resolves.toEqual([]);

        await Promise.all([store.usage.compact(d1), store.usage.compact(d1)]);
        await store.usage.compact(d1);
        await expect(store.usage.range(d1, d1, a)).resolves.toEqual([
          { day: d1, portal: a, key: 'citizens', n: 2 },
          { day: d1, portal: a, key: 'signins', n: 5 },
        ]);
        await expect(store.usage.range(d1, d1, b)).resolves.toEqual([{ day: d1, portal: b, key: 'citizens', n: 1 }]);
        // Nothing links the day to a person any more.
        await expect(store.usage.countDistinct(d1, d1, a)).resolves.toEqual([]);
        await expect(store.usage.countDistinct(d1, d1, b)).resolves.toEqual([]);
        await expect(store.usage.uncompacted(d3).then(ofYear)).resolves.toEqual([d2]);
        // The other days are untouched.
        await expect(store.usage.countDistinct(d2, d3, a)).resolves.toEqual([{ day: d2, portal: a, n: 1 }, { day: d3, portal: a, n: 1 }]);
        // A day with no tags left (or none ever) is compacted to nothing new.
        await store.usage.compact(`${y}-03-09`);
        await expect(store.usage.range(`${y}-03-09`, `${y}-03-09`)).resolves.toEqual([]);
      });

      it('compacts tags that arrive after their day was compacted into the larger count (a lower bound), never lowering it', async () => {
        const y = year();
        const p = ns();
        const d = `${y}-06-01`;
        await store.usage.addDistinct(['x', 'y', 'z'].map((tag) => ({ day: d, portal: p, tag })));
        await store.usage.compact(d);
        // An instance that could not write for a day flushes late: one person seen before, one not.
        await store.usage.addDistinct([{ day: d, portal: p, tag: 'x' }, { day: d, portal: p, tag: 'w' }]);
        await expect(store.usage.uncompacted(`${y}-06-02`).then((days) => days.filter((x) => x === d))).resolves.toEqual([d]);
        await store.usage.compact(d);
        await expect(store.usage.range(d, d, p)).resolves.toEqual([{ day: d, portal: p, key: 'citizens', n: 3 }]);
        await expect(store.usage.countDistinct(d, d, p)).resolves.toEqual([]);
        // More late people than were counted: the figure rises to theirs.
        await store.usage.addDistinct(['a', 'b', 'c', 'e'].map((tag) => ({ day: d, portal: p, tag })));
        await store.usage.compact(d);
        await expect(store.usage.range(d, d, p)).resolves.toEqual([{ day: d, portal: p, key: 'citizens', n: 4 }]);
        await expect(store.usage.countDistinct(d, d, p)).resolves.toEqual([]);
      });

      it('purges counts and tags of days before the given one, returning how many rows went', async () => {
        const y = year();
        const p = ns();
        // Clear what older runs left before this year, so the count below is ours.
        await store.usage.purge(`${y}-01-01`);
        await store.usage.add([
          { day: `${y}-04-01`, portal: p, key: 'signins', n: 1 },
          { day: `${y}-04-01`, portal: p, key: 'acr:other', n: 1 },
          { day: `${y}-04-02`, portal: p, key: 'signins', n: 1 },
        ]);
        await store.usage.addDistinct([{ day: `${y}-04-01`, portal: p, tag: 't' }, { day: `${y}-04-02`, portal: p, tag: 't' }]);
        await expect(store.usage.purge(`${y}-04-02`)).resolves.toBe(3);
        await expect(store.usage.purge(`${y}-04-02`)).resolves.toBe(0);
        await expect(store.usage.range(`${y}-01-01`, `${y}-12-31`, p)).resolves.toEqual([{ day: `${y}-04-02`, portal: p, key: 'signins', n: 1 }]);
        await expect(store.usage.countDistinct(`${y}-01-01`, `${y}-12-31`, p)).resolves.toEqual([{ day: `${y}-04-02`, portal: p, n: 1 }]);
        await store.usage.purge(`${y}-12-31`);
      });

      it('is not touched by purgeExpired (its retention is the usage service\'s)', async () => {
        const p = ns();
        await store.usage.add([{ day: '2030-01-01', portal: p, key: 'signins', n: 1 }]);
        await store.usage.addDistinct([{ day: '2030-01-01', portal: p, tag: 't' }]);
        await store.purgeExpired(Date.UTC(2100, 0, 1));
        await expect(store.usage.range('2030-01-01', '2030-01-01', p)).resolves.toEqual([{ day: '2030-01-01', portal: p, key: 'signins', n: 1 }]);
        await expect(store.usage.countDistinct('2030-01-01', '2030-01-01', p)).resolves.toEqual([{ day: '2030-01-01', portal: p, n: 1 }]);
      });

      it('treats injection-shaped portals, keys and tags as data, and refuses malformed rows, writing nothing', async () => {
        const p = ns();
        for (const s of HOSTILE) {
          await store.usage.add([{ day: '2030-05-01', portal: `${p}${s}`, key: `k${s}`, n: 1 }]);
          await store.usage.addDistinct([{ day: '2030-05-01', portal: `${p}${s}`, tag: s }]);
        }
        for (const s of HOSTILE) {
          await expect(store.usage.range('2030-05-01', '2030-05-01', `${p}${s}`)).resolves.toEqual([{ day: '2030-05-01', portal: `${p}${s}`, key: `k${s}`, n: 1 }]);
          await expect(store.usage.countDistinct('2030-05-01', '2030-05-01', `${p}${s}`)).resolves.toEqual([{ day: '2030-05-01', portal: `${p}${s}`, n: 1 }]);
        }
        await expect(store.usage.range('2030-05-01', '2030-05-01', `${p}%`)).resolves.toHaveLength(1);
        await expect(store.usage.range('2030-05-01', '2030-05-01', `${p}.*`)).resolves.toEqual([]);
        await expect(store.usage.range('2030-05-01', '2030-05-01', '{"$ne":null}')).resolves.toEqual([]);

        const good = { day: '2030-05-02', portal: p, key: 'signins', n: 1 };
        for (const bad of [
          { ...good, day: '2030-5-2' }, { ...good, day: "2030-05-02' OR 1=1 --" }, { ...good, day: { $gt: '' } }, { ...good, portal: { $ne: null } },
          { ...good, key: '' }, { ...good, n: -1 }, { ...good, n: 1.5 }, { ...good, n: '1' }, { ...good, portal: 'x'.repeat(300) },
        ]) {
          await expect(store.usage.add([good, bad as unknown as typeof good])).rejects.toBeInstanceOf(TypeError);
        }
        await expect(store.usage.addDistinct([{ day: '2030-05-02', portal: p, tag: 't' }, { day: '2030-05-02', portal: p, tag: { $ne: null } as unknown as string }])).rejects.toBeInstanceOf(TypeError);
        await expect(store.usage.range('2030-05-02', '2030-05-02', p)).resolves.toEqual([]);
        await expect(store.usage.countDistinct('2030-05-02', '2030-05-02', p)).resolves.toEqual([]);
        for (const call of [
          () => store.usage.range('2030-05-01', { $gt: '' } as unknown as string),
          () => store.usage.range('yesterday', '2030-05-01'),
          () => store.usage.countDistinct('2030-05-01', '2030-05-01', { $ne: null } as unknown as string),
          () => store.usage.compact('2030-05-01T00:00'),
          () => store.usage.uncompacted(''),
          () => store.usage.purge({ $gt: '' } as unknown as string),
        ]) await expect(call()).rejects.toBeInstanceOf(TypeError);
      });
    });

    describe('maintenance', () => {
      it('purgeExpired removes expired oidc rows and lapsed counters and returns how many', async () => {
        // Clear anything another test left behind in a shared store, so the count below is ours.
        await store.purgeExpired(clock + 365 * 24 * 3600 * SECOND);
        const p = ns();
        await store.oidc.upsert('AccessToken', `${p}-short1`, { n: 1 }, 10);
        await store.oidc.upsert('AccessToken', `${p}-short2`, { n: 2 }, 10);
        await store.oidc.upsert('AccessToken', `${p}-long`, { n: 3 }, 1000);
        await store.oidc.upsert('Grant', `${p}-forever`, { n: 4 }, undefined);
        await store.oidc.upsert('AuthorizationCode', `${p}-used`, { n: 5 }, 1000);
        await store.oidc.consume('AuthorizationCode', `${p}-used`);
        await store.counters.increment(`${p}:short`, 10 * SECOND, clock);
        await store.counters.increment(`${p}:long`, 1000 * SECOND, clock);

        tick(10 * SECOND);
        await expect(store.purgeExpired(clock)).resolves.toBe(3);
        await expect(store.purgeExpired(clock)).resolves.toBe(0);

        await expect(store.oidc.find('AccessToken', `${p}-long`)).resolves.toEqual({ n: 3 });
        await expect(store.oidc.find('Grant', `${p}-forever`)).resolves.toEqual({ n: 4 });
        await expect(store.oidc.find('AuthorizationCode', `${p}-used`)).resolves.toMatchObject({ n: 5 });
        await expect(store.counters.get(`${p}:long`, clock)).resolves.toMatchObject({ count: 1 });
        // Nothing purged was resurrected: a fresh increment of the purged key starts at 1.
        await expect(store.counters.increment(`${p}:short`, 10 * SECOND, clock)).resolves.toMatchObject({ count: 1 });
      });

      it('ping resolves', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
      });

      it('migrate is idempotent and keeps data', async () => {
        const person = await store.persons.create(newPerson());
        await store.migrate();
        await store.migrate();
        await expect(store.persons.findById(person.id)).resolves.toEqual(person);
        await expect(store.ping()).resolves.toBeUndefined();
      });

      it('after close, calls reject with StoreUnavailableError; close is idempotent', async () => {
        await store.close();
        await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(store.persons.findById(randomUUID())).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(store.close()).resolves.toBeUndefined();
      });
    });

    describe('injection-shaped input is data, not syntax', () => {
      it('oidc ids, uids, user codes and grant ids match literally', async () => {
        // A model of its own, so the bare hostile strings cannot collide with other tests' rows.
        const model = `Model${ns()}`;
        await store.oidc.upsert(model, 'plain', { uid: 'plain-uid', userCode: 'PLAIN', grantId: 'plain-grant' }, 600);
        for (const s of HOSTILE) {
          await store.oidc.upsert(model, s, { id: s, uid: `u${s}`, userCode: `c${s}`, grantId: `g${s}` }, 600);
        }
        for (const s of HOSTILE) {
          await expect(store.oidc.find(model, s)).resolves.toEqual({ id: s, uid: `u${s}`, userCode: `c${s}`, grantId: `g${s}` });
          await expect(store.oidc.findByUid(model, `u${s}`)).resolves.toMatchObject({ id: s });
          await expect(store.oidc.findByUserCode(model, `c${s}`)).resolves.toMatchObject({ id: s });
        }
        for (const s of ['pl%', 'pl_in', "x' OR '1'='1", '{"$gt":""}', 'plain ', 'PLAIN']) {
          await expect(store.oidc.find(model, s)).resolves.toBeUndefined();
        }
        await expect(store.oidc.findByUid(model, 'plain%')).resolves.toBeUndefined();
        await expect(store.oidc.findByUserCode(model, 'PL_IN')).resolves.toBeUndefined();

        await store.oidc.destroy(model, '%');
        await store.oidc.revokeByGrantId(model, 'g_');
        await expect(store.oidc.consume(model, '*')).resolves.toBe(true);
        await expect(store.oidc.find(model, '%')).resolves.toBeUndefined();
        await expect(store.oidc.find(model, '_')).resolves.toBeUndefined();
        await expect(store.oidc.find(model, 'plain')).resolves.toMatchObject({ uid: 'plain-uid' });
        for (const s of HOSTILE.filter((x) => x !== '%' && x !== '_')) {
          const found = await store.oidc.find(model, s);
          expect(found).toMatchObject({ id: s });
          expect(found?.consumed !== undefined).toBe(s === '*');
        }
      });

      it('person ids and pids match literally', async () => {
        const p = ns();
        const plain = await store.persons.create(newPerson({ id: `${p}-plain`, pid: `${p}-plain` }));
        const created: Person[] = [];
        for (const s of HOSTILE) created.push(await store.persons.create(newPerson({ id: `${p}${s}`, pid: `${p}${s}` })));
        for (const person of created) {
          await expect(store.persons.findById(person.id)).resolves.toEqual(person);
          await expect(store.persons.findByPid(person.pid)).resolves.toEqual(person);
        }
        for (const s of HOSTILE) {
          await expect(store.persons.findById(s)).resolves.toBeUndefined();
          await expect(store.persons.findByPid(s)).resolves.toBeUndefined();
        }
        await expect(store.persons.findByPid(`${p}-pl%`)).resolves.toBeUndefined();
        await expect(store.persons.findById(`${p}-pl_in`)).resolves.toBeUndefined();

        await expect(store.persons.setStatus(`${p}%`, 'locked')).resolves.toBe(true);
        await expect(store.persons.updatePasswordHash(`${p}_`, plain.passwordHash, 'changed')).resolves.toBe(true);
        await expect(store.persons.findById(plain.id)).resolves.toEqual(plain);
        const locked = (await Promise.all(created.map((x) => store.persons.findById(x.id)))).filter(
          (x) => x?.status === 'locked',
        );
        expect(locked.map((x) => x?.id)).toEqual([`${p}%`]);
        await expect(store.persons.updatePasswordHash(plain.id, "' OR 1=1 --", 'pwned')).resolves.toBe(false);
        await expect(store.persons.updatePasswordHash(plain.id, '%', 'pwned')).resolves.toBe(false);
        await expect(store.persons.findById(plain.id)).resolves.toEqual(plain);
      });

      it('portal client ids and consent keys match literally', async () => {
        const p = ns();
        const plain = await store.portals.create(newPortal({ clientId: `${p}-plain` }));
        for (const s of HOSTILE) await store.portals.create(newPortal({ clientId: `${p}${s}` }));
        for (const s of HOSTILE) {
          await expect(store.portals.find(`${p}${s}`)).resolves.toMatchObject({ clientId: `${p}${s}` });
          await expect(store.portals.find(s)).resolves.toBeUndefined();
        }
        await expect(store.portals.setDisabled(`${p}%`, true)).resolves.toBe(true);
        await expect(store.portals.find(plain.clientId)).resolves.toEqual(plain);

        const personId = `${p}' OR 1=1 --`;
        await store.consents.put({ personId, clientId: `${p}%`, scopes: ['openid'], claims: [] });
        await store.consents.put({ personId: `${p}-plain`, clientId: `${p}-plain`, scopes: ['openid'], claims: [] });
        await expect(store.consents.listForPerson(personId)).resolves.toHaveLength(1);
        await expect(store.consents.find(personId, `${p}-plain`)).resolves.toBeUndefined();
        await expect(store.consents.remove(`${p}%`, `${p}%`)).resolves.toBe(false);
        await expect(store.consents.remove(personId, `${p}_`)).resolves.toBe(false);
        await expect(store.consents.find(`${p}-plain`, `${p}-plain`)).resolves.toBeDefined();
        await expect(store.consents.remove(personId, `${p}%`)).resolves.toBe(true);
      });

      it('counter keys match literally', async () => {
        // Bare hostile keys may linger from another test run in a shared store: start clean.
        for (const s of HOSTILE) await store.counters.reset(s);
        const plain = `plain:${ns()}`;
        await store.counters.increment(plain, 60 * SECOND, clock);
        for (const s of HOSTILE) {
          await expect(store.counters.increment(s, 60 * SECOND, clock)).resolves.toMatchObject({ count: 1 });
        }
        await store.counters.reset('%');
        await store.counters.reset('_');
        await expect(store.counters.get(plain, clock)).resolves.toMatchObject({ count: 1 });
        for (const s of HOSTILE) {
          const state = await store.counters.get(s, clock);
          if (s === '%' || s === '_') expect(state).toBeUndefined();
          else expect(state).toMatchObject({ count: 1 });
        }
        for (const s of HOSTILE) await store.counters.reset(s);
      });

      it('factor ids, person ids and credential ids match literally', async () => {
        const p = ns();
        const personId = `${p}' OR 1=1 --`;
        const plain = await store.factors.create(newPasskey(personId, { id: `${p}-plain`, credentialId: `${p}-plain`, confirmed: false }));
        const created: Factor[] = [];
        for (const s of HOSTILE) {
          created.push(await store.factors.create(newPasskey(personId, { id: `${p}${s}`, credentialId: `${p}${s}`, confirmed: false, signCount: 0 })));
        }
        for (const factor of created) {
          await expect(store.factors.find(factor.id)).resolves.toEqual(factor);
          await expect(store.factors.findByCredentialId(`${factor.credentialId}`)).resolves.toEqual(factor);
        }
        for (const s of HOSTILE) {
          await expect(store.factors.find(s)).resolves.toBeUndefined();
          await expect(store.factors.findByCredentialId(s)).resolves.toBeUndefined();
          await expect(store.factors.listForPerson(s)).resolves.toEqual([]);
          await expect(store.factors.confirm(s, plain.id, clock)).resolves.toBe(false);
          await expect(store.factors.remove(s, plain.id)).resolves.toBe(false);
          await expect(store.factors.removeUnconfirmed(s, clock + SECOND)).resolves.toBe(0);
          await expect(store.factors.acceptTotpStep(s, 1, clock)).resolves.toBe(false);
          await expect(store.factors.updateSignCount(s, 1, clock)).resolves.toBe(false);
        }
        await expect(store.factors.findByCredentialId(`${p}-pl%`)).resolves.toBeUndefined();
        await expect(store.factors.find(`${p}-pl_in`)).resolves.toBeUndefined();
        await expect(store.factors.listForPerson(`${p}%`)).resolves.toEqual([]);

        await expect(store.factors.confirm(personId, `${p}%`, clock)).resolves.toBe(true);
        await expect(store.factors.updateSignCount(`${p}_`, 0, clock)).resolves.toBe(true);
        await expect(store.factors.remove(personId, `${p}*`)).resolves.toBe(true);
        await expect(store.factors.find(plain.id)).resolves.toEqual(plain);
        const listed = await store.factors.listForPerson(personId);
        expect(listed.map((x) => x.id).sort()).toEqual(
          [plain.id, ...HOSTILE.filter((s) => s !== '*').map((s) => `${p}${s}`)].sort(),
        );
        expect(listed.filter((x) => x.confirmed).map((x) => x.id)).toEqual([`${p}%`]);
        expect(listed.filter((x) => x.lastUsedAt !== null).map((x) => x.id).sort()).toEqual([`${p}%`, `${p}_`].sort());
        await expect(store.factors.find(`${p}*`)).resolves.toBeUndefined();
      });

      it('recovery code hashes and person ids match literally', async () => {
        const p = ns();
        const personId = `${p}%`;
        const plainPerson = `${p}-plain`;
        await store.recoveryCodes.replace(personId, HOSTILE, clock);
        await store.recoveryCodes.replace(plainPerson, ['plain', 'PLAIN'], clock);
        await expect(store.recoveryCodes.countUnused(personId)).resolves.toBe(HOSTILE.length);
        for (const s of HOSTILE) await expect(store.recoveryCodes.countUnused(s)).resolves.toBe(0);
        await expect(store.recoveryCodes.consume(plainPerson, '%', clock)).resolves.toBe(false);
        await expect(store.recoveryCodes.consume(plainPerson, "' OR 1=1 --", clock)).resolves.toBe(false);
        await expect(store.recoveryCodes.consume(`${p}_`, '%', clock)).resolves.toBe(false);
        await expect(store.recoveryCodes.consume(personId, 'pl%', clock)).resolves.toBe(false);
        await expect(store.recoveryCodes.countUnused(plainPerson)).resolves.toBe(2);

        await expect(store.recoveryCodes.consume(personId, '%', clock)).resolves.toBe(true);
        await expect(store.recoveryCodes.consume(personId, "' OR 1=1 --", clock)).resolves.toBe(true);
        await expect(store.recoveryCodes.consume(personId, '%', clock)).resolves.toBe(false);
        await expect(store.recoveryCodes.countUnused(personId)).resolves.toBe(HOSTILE.length - 2);
        await store.recoveryCodes.removeAll(`${p}_`);
        await store.recoveryCodes.removeAll('%');
        await expect(store.recoveryCodes.countUnused(personId)).resolves.toBe(HOSTILE.length - 2);
        await expect(store.recoveryCodes.countUnused(plainPerson)).resolves.toBe(2);
        await store.recoveryCodes.removeAll(personId);
        await expect(store.recoveryCodes.countUnused(plainPerson)).resolves.toBe(2);
      });
    });
  });
}
