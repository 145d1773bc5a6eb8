/**
 * The backend-neutral store interface. Everything dinhdanh persists goes through these
 * repositories; only `store/create-store.ts` and `main.ts` name a concrete backend.
 *
 * Rules every backend follows (and `test/contract/` checks):
 * - every method is async and takes only validated scalars or plain JSON-safe objects;
 * - expiry is checked on read (a row past `expiresAt` is never returned), purging is only clean-up;
 * - `consume`, counter increments and conditional updates are atomic single-record operations.
 */

/** A JSON object as oidc-provider hands it to its adapter. */
export type OidcPayload = Record<string, unknown>;

/** The oidc-provider adapter contract, keyed by model name (Session, AccessToken, Grant, ...). */
export interface OidcModelStore {
  upsert(model: string, id: string, payload: OidcPayload, expiresInSeconds: number | undefined): Promise<void>;
  find(model: string, id: string): Promise<OidcPayload | undefined>;
  findByUid(model: string, uid: string): Promise<OidcPayload | undefined>;
  findByUserCode(model: string, userCode: string): Promise<OidcPayload | undefined>;
  /**
   * Marks the record consumed (payload gains `consumed: <epoch seconds>`). Atomic: of any number of
   * concurrent calls for one id, exactly one returns true; the others (and later calls) return false.
   */
  consume(model: string, id: string): Promise<boolean>;
  destroy(model: string, id: string): Promise<void>;
  revokeByGrantId(model: string, grantId: string): Promise<void>;
  /**
   * Inserts the record unless a live one with this (model, id) exists (an expired one is replaced):
   * true when this call inserted it. Atomic: of any number of concurrent calls for one id, exactly
   * one returns true — replay detection across instances (a DPoP proof's or an assertion's `jti`).
   */
  insertIfAbsent(model: string, id: string, payload: OidcPayload, expiresInSeconds: number): Promise<boolean>;
  /** The live records of `model` whose payload's `accountId` is this one (a person's sessions), with their ids. */
  listByAccount(model: string, accountId: string): Promise<Array<{ id: string; payload: OidcPayload }>>;
  /**
   * Deletes every record of these models whose payload's `accountId` is this one — and, when
   * `clientId` is given, whose `clientId` is that one — in one operation; returns how many. Ending a
   * person's grants and tokens without a list that can expire, drop entries or lose one to a race.
   */
  destroyByAccount(models: readonly string[], accountId: string, clientId?: string): Promise<number>;
  /** Deletes every record of these models whose payload's `clientId` is this one; returns how many. */
  destroyByClient(models: readonly string[], clientId: string): Promise<number>;
}

export type Gender = 'male' | 'female';
export type PersonStatus = 'active' | 'locked';
/**
 * Why a locked account is locked: an operator (the CLI, later the console), the hard limit of
 * failed sign-ins, the person themself ("lock my account"), or an operator for fraud (suspected
 * takeover or misuse: unlocking it needs a second operator's approval). Only a self-lock can be
 * undone by the person, through recovery with the second factor; the others need an operator.
 */
export type LockReason = 'operator' | 'failures' | 'self' | 'fraud';

export type ContactKind = 'phone' | 'email';

/** A phone number or e-mail address of a person (account area: /account/profile). */
export interface Contact {
  /** Opaque id, stable while the contact exists (forms name contacts by it). */
  id: string;
  kind: ContactKind;
  /** E.164 for a phone, lower case for an e-mail address. */
  value: string;
  /** Proven by a one-time code sent to it (or at the counter). */
  verified: boolean;
  addedAt: number;
  verifiedAt: number | null;
}

/** Why operators should look at an account (shown by `accounts show`). */
export interface AttentionFlag {
  /** `not_me`: the person said a sign-in was not theirs. */
  reason: 'not_me';
  at: number;
}

export interface Address {
  formatted?: string;
  street_address?: string;
  locality?: string;
  region?: string;
  postal_code?: string;
  country?: string;
}

export interface Person {
  /** Opaque internal id (UUID); the OIDC `accountId`. Never the identification number. */
  id: string;
  /** 12-digit personal identification number. */
  pid: string;
  name: string;
  familyName: string;
  givenName: string;
  /** YYYY-MM-DD */
  birthdate: string;
  gender: Gender;
  email: string | null;
  emailVerified: boolean;
  phone: string | null;
  phoneVerified: boolean;
  address: Address | null;
  /** Identity level (Decree 59/2022): 1 or 2. */
  level: 1 | 2;
  /** argon2id PHC string. */
  passwordHash: string;
  status: PersonStatus;
  /** Why the account is locked; null while active (and for locks from before it was recorded: an operator's). */
  lockReason: LockReason | null;
  /**
   * Every phone and e-mail address on file, oldest first. `phone`/`phoneVerified` and
   * `email`/`emailVerified` above mirror the primary contact of each kind (store/contacts.ts:
   * the one verified first, else the one added first), written in the same update: they are what
   * portals receive and where sign-in codes and reset links go.
   */
  contacts: Contact[];
  /** Grows by one with every change of `contacts` (compare-and-set: PersonRepository.updateContacts). */
  contactsRev: number;
  /** The contact chosen for notices that are not about a change (a new browser signed in); null for every contact. */
  noticeContact: string | null;
  /** The password may not be used until it is replaced through recovery (after "this wasn't me"). */
  passwordResetRequired: boolean;
  attention: AttentionFlag | null;
  /**
   * Epoch ms, or null: sessions signed in and tokens issued before this instant are no longer
   * honoured (a lock, a reset of second factors, a lower identity level). Checked at every use, so
   * a session or grant a concurrent request wrote back after it was ended still counts for nothing.
   */
  accessRevokedBefore: number | null;
  createdAt: number;
  updatedAt: number;
}

/**
 * A person to create. Without `contacts`, the list is made from `phone` and `email` (with their
 * verified flags: store/contacts.ts, contactsFromFields); with it, `phone`/`email` are ignored and
 * mirrored from the list.
 */
export type NewPerson = Omit<Person, 'createdAt' | 'updatedAt' | 'accessRevokedBefore' | 'lockReason' | 'contacts' | 'contactsRev' | 'noticeContact' | 'passwordResetRequired' | 'attention'> & { contacts?: Contact[] };

export interface PersonRepository {
  /** Fails with StoreConflictError when `id` or `pid` already exists. */
  create(person: NewPerson): Promise<Person>;
  findById(id: string): Promise<Person | undefined>;
  findByPid(pid: string): Promise<Person | undefined>;
  list(options: { limit: number; offset: number }): Promise<Person[]>;
  count(): Promise<number>;
  /** Replaces the hash only if it still equals `expectedHash` (no lost update on concurrent rehash). */
  updatePasswordHash(id: string, expectedHash: string, newHash: string): Promise<boolean>;
  /**
   * Sets the status; `lockReason` is stored with `locked` (default `operator`) and cleared with
   * `active`. False when the person does not exist.
   */
  setStatus(id: string, status: PersonStatus, lockReason?: LockReason): Promise<boolean>;
  /**
   * Replaces the contact list (and the mirrored `phone`/`email` fields, and `noticeContact`) iff
   * `contactsRev` still equals `expectedRev`, raising it by one, in one atomic single-record update:
   * two concurrent changes cannot both pass a check made on the list they read ("never the last
   * verified contact"). False when the person does not exist or the list changed meanwhile.
   */
  updateContacts(id: string, expectedRev: number, contacts: Contact[], noticeContact: string | null): Promise<boolean>;
  setPasswordResetRequired(id: string, required: boolean): Promise<boolean>;
  setAttention(id: string, flag: AttentionFlag | null): Promise<boolean>;
  /** Sets the identity level; false when the person does not exist. */
  setLevel(id: string, level: 1 | 2): Promise<boolean>;
  /** Moves `accessRevokedBefore` forward to `before` (never back); false when the person does not exist. */
  revokeAccessBefore(id: string, before: number): Promise<boolean>;
}

export interface Portal {
  /** The OAuth client_id. */
  clientId: string;
  name: string;
  /**
   * The client metadata handed to oidc-provider (redirect_uris, grant_types, ...), secrets excluded:
   * the client secret is kept in `secretCiphertext`, encrypted at rest.
   */
  metadata: Record<string, unknown>;
  /** Encrypted client secret (see keys/secret-box), or null for portals without one. */
  secretCiphertext: string | null;
  /**
   * The secret replaced by the last rotation, still accepted until `expiresAt` (epoch ms): the grace
   * period in which the portal's instances move to the new one. Null when none (or never rotated).
   */
  previousSecret: { ciphertext: string; expiresAt: number } | null;
  /** Pairwise subject sector (a host name). */
  sector: string;
  /** Approved to receive `national_id`; `nationalIdBasis` records the legal basis. */
  nationalId: boolean;
  nationalIdBasis: string | null;
  disabled: boolean;
  createdAt: number;
  updatedAt: number;
}

export type NewPortal = Omit<Portal, 'createdAt' | 'updatedAt' | 'previousSecret'>;

export interface PortalRepository {
  /** Fails with StoreConflictError when the client id exists. */
  create(portal: NewPortal): Promise<Portal>;
  find(clientId: string): Promise<Portal | undefined>;
  list(): Promise<Portal[]>;
  setDisabled(clientId: string, disabled: boolean): Promise<boolean>;
  /**
   * A number that changes with every change of the portal (undefined when it does not exist): a
   * process keeps what it derived from a portal while this stays the same (portal.service.ts).
   */
  revision(clientId: string): Promise<number | undefined>;
  /** Replaces a portal's name, metadata and secret (re-registration); false when it does not exist. */
  update(clientId: string, changes: { name: string; metadata: Record<string, unknown>; secretCiphertext: string | null }): Promise<boolean>;
  /** Approves (a legal basis) or withdraws (null) the release of `national_id`; false when missing. */
  setNationalId(clientId: string, legalBasis: string | null, metadata: Record<string, unknown>): Promise<boolean>;
  /**
   * Replaces the secret and sets (or clears, with null) the previous one, bumping the revision;
   * false when the portal does not exist.
   */
  rotateSecret(clientId: string, secretCiphertext: string, previous: { ciphertext: string; expiresAt: number } | null): Promise<boolean>;
  /** Replaces the metadata only (an operator's edit of redirect URIs), bumping the revision; false when missing. */
  updateMetadata(clientId: string, metadata: Record<string, unknown>): Promise<boolean>;
  /** A page of portals (resource servers included) in creation order (createdAt, clientId), after the cursor. */
  page(options: { after?: { createdAt: number; clientId: string }; limit: number }): Promise<Portal[]>;
  count(): Promise<number>;
}

/** A remembered consent: which scopes and claims a person let a portal receive. */
export interface Consent {
  personId: string;
  clientId: string;
  scopes: string[];
  claims: string[];
  createdAt: number;
  updatedAt: number;
}

export interface ConsentRepository {
  /** Creates or replaces the consent for (personId, clientId). */
  put(consent: Omit<Consent, 'createdAt' | 'updatedAt'>): Promise<Consent>;
  find(personId: string, clientId: string): Promise<Consent | undefined>;
  listForPerson(personId: string): Promise<Consent[]>;
  remove(personId: string, clientId: string): Promise<boolean>;
}

export interface CounterState {
  count: number;
  /** Epoch milliseconds of the last increment. */
  updatedAt: number;
  /** Epoch milliseconds when the counter lapses (reads after it see no counter). */
  expiresAt: number;
}

/**
 * Atomic counters: login failures per account, attempts per IP, and later code attempts.
 * `increment` is a single atomic read-modify-write: N concurrent increments yield counts 1..N.
 */
export interface CounterRepository {
  /**
   * Adds one. If the counter is missing or lapsed it starts again at 1 with
   * `expiresAt = now + ttlMs`; otherwise the count grows and, when `slide` is true, `expiresAt`
   * moves to `now + ttlMs` (a window that lasts while failures keep coming).
   */
  increment(key: string, ttlMs: number, now: number, options?: { slide?: boolean }): Promise<CounterState>;
  get(key: string, now: number): Promise<CounterState | undefined>;
  /** Sets the counter to 1 with `expiresAt = now + ttlMs`, whatever it held: one write (a clock that starts again). */
  start(key: string, ttlMs: number, now: number): Promise<CounterState>;
  reset(key: string): Promise<void>;
  /**
   * Admits and counts one attempt under a delay policy, atomically: read, decide and increment are
   * one operation, so a burst of parallel attempts cannot all slip through on a stale count.
   * Admitted when the counter is missing or lapsed, when fewer than `freeAttempts` are counted, or
   * when `delayAfter(count)` has passed since the last counted attempt; the count then grows by one
   * (restarting at 1 when lapsed) and `expiresAt` slides to `now + ttlMs`. A refused attempt is not
   * counted. `delayAfter(n) = min(maxDelayMs, baseDelayMs * 2^min(n - freeAttempts, 20))`.
   */
  claimAttempt(key: string, now: number, policy: AttemptPolicy): Promise<{ admitted: boolean; count: number }>;
}

export interface AttemptPolicy {
  freeAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  ttlMs: number;
}

export type FactorType = 'totp' | 'passkey';

/** A second factor of a person (NIST SP 800-63B §5.1.4 OTP device, §5.1.8 cryptographic authenticator). */
export interface Factor {
  /** Opaque id (UUID). */
  id: string;
  personId: string;
  type: FactorType;
  /** A name the citizen recognises ("Điện thoại của tôi"). */
  label: string;
  /** Enrolment finished (TOTP: a first code was accepted). Unconfirmed factors never authenticate. */
  confirmed: boolean;
  /** TOTP: the base32 seed sealed with the secret box. */
  secretCiphertext: string | null;
  /** TOTP: the last accepted time step (replay guard); null until the first code. */
  lastStep: number | null;
  /** Passkey: credential id (base64url), unique across all persons. */
  credentialId: string | null;
  /** Passkey: COSE public key (base64url). */
  publicKey: string | null;
  /** Passkey: the authenticator's signature counter. */
  signCount: number | null;
  /** Passkey: transports reported at registration. */
  transports: string[] | null;
  createdAt: number;
  lastUsedAt: number | null;
}

export type NewFactor = Omit<Factor, 'createdAt' | 'lastUsedAt' | 'lastStep'>;

export interface FactorRepository {
  /** Fails with StoreConflictError (`id` or `credentialId`) on duplicates. */
  create(factor: NewFactor): Promise<Factor>;
  find(id: string): Promise<Factor | undefined>;
  /** A person's factors, oldest first. */
  listForPerson(personId: string): Promise<Factor[]>;
  findByCredentialId(credentialId: string): Promise<Factor | undefined>;
  /** Marks a factor confirmed; false when it does not exist or belongs to someone else. */
  confirm(personId: string, id: string, now: number): Promise<boolean>;
  /** Removes one of the person's factors; false when it does not exist or belongs to someone else. */
  remove(personId: string, id: string): Promise<boolean>;
  /** Removes every unconfirmed factor of the person created before `olderThan` (abandoned enrolments). */
  removeUnconfirmed(personId: string, olderThan: number): Promise<number>;
  /**
   * TOTP replay guard, atomic: records `step` as the last accepted step and sets lastUsedAt iff
   * the factor exists and `step` is greater than its lastStep (or lastStep is null). Of two
   * parallel calls with the same step, exactly one returns true.
   */
  acceptTotpStep(id: string, step: number, now: number): Promise<boolean>;
  /**
   * Passkey clone check, atomic: stores `signCount` and sets lastUsedAt iff it is greater than the
   * stored one, or both are 0 (authenticators that do not count). False otherwise.
   */
  updateSignCount(id: string, signCount: number, now: number): Promise<boolean>;
}

/** Single-use recovery codes, stored as hashes. */
export interface RecoveryCodeRepository {
  /** Replaces all of the person's codes with these hashes (all unused). */
  replace(personId: string, hashes: string[], now: number): Promise<void>;
  /** Marks the code used, atomically: of parallel calls with one hash exactly one returns true. */
  consume(personId: string, hash: string, now: number): Promise<boolean>;
  countUnused(personId: string): Promise<number>;
  /** When the current set was made (undefined when the person has none). */
  createdAt(personId: string): Promise<number | undefined>;
  removeAll(personId: string): Promise<void>;
}

export type EnterpriseStatus = 'active' | 'suspended' | 'dissolved';

/** An enterprise (PRODUCT.md: 10-digit code) or a dependent unit (branch: `NNNNNNNNNN-NNN`). */
export interface Enterprise {
  /** 10 digits, or the parent's 10 digits, a hyphen and 3 digits for a branch. */
  code: string;
  name: string;
  status: EnterpriseStatus;
  /** A branch's parent (its first 10 digits); null for an enterprise. */
  parentCode: string | null;
  createdAt: number;
  updatedAt: number;
}

/** A person allowed to act for an enterprise in a role, until a date, optionally at some portals only. */
export interface Delegation {
  enterpriseCode: string;
  personId: string;
  /** A short code such as `ke-toan`. */
  role: string;
  /** Epoch ms after which it no longer applies; null for no end. */
  until: number | null;
  /** Client ids of the portals where it applies; null for every portal. */
  portals: string[] | null;
  /** Who granted it: a person id, or `operator:<name>`. */
  grantedBy: string;
  createdAt: number;
  /** Epoch ms when revoked; null while in force. */
  revokedAt: number | null;
}

/**
 * An authorization made for an enterprise: the grant it produced, so that ending the person's
 * right to act for it (revocation, expiry, suspension) can find and end those tokens.
 */
export interface OrgGrant {
  grantId: string;
  enterpriseCode: string;
  personId: string;
  clientId: string;
  /** The SSO session it was made in (to tell the portal by back-channel logout). */
  sessionUid: string | null;
  createdAt: number;
  /** Epoch ms after which the record may be forgotten (the grant's own end). */
  expiresAt: number;
}

export interface OrgRepository {
  /** Fails with StoreConflictError(field "code") when the code exists. */
  createEnterprise(enterprise: Omit<Enterprise, 'createdAt' | 'updatedAt'>): Promise<Enterprise>;
  findEnterprise(code: string): Promise<Enterprise | undefined>;
  /** Ordered by code. */
  listEnterprises(options: { limit: number; offset: number }): Promise<Enterprise[]>;
  /** A parent's branches, ordered by code. */
  listBranches(parentCode: string): Promise<Enterprise[]>;
  setEnterpriseStatus(code: string, status: EnterpriseStatus): Promise<boolean>;

  /** Idempotent; false when the pair was already recorded. */
  addRepresentative(code: string, personId: string): Promise<boolean>;
  removeRepresentative(code: string, personId: string): Promise<boolean>;
  /** Person ids, oldest first. */
  listRepresentatives(code: string): Promise<string[]>;
  /** Enterprise codes the person represents, ordered by code. */
  representedBy(personId: string): Promise<string[]>;

  /** Creates or replaces the delegation of (enterpriseCode, personId); a revoked one comes back in force. */
  putDelegation(delegation: Omit<Delegation, 'createdAt' | 'revokedAt'>): Promise<Delegation>;
  findDelegation(code: string, personId: string): Promise<Delegation | undefined>;
  /** Marks it revoked (atomically, once): false when missing or already revoked. */
  revokeDelegation(code: string, personId: string, now: number): Promise<boolean>;
  /** An enterprise's delegations, revoked ones included, oldest first. */
  listDelegations(code: string): Promise<Delegation[]>;
  /** A person's delegations, revoked ones included, ordered by enterprise code. */
  delegationsOf(personId: string): Promise<Delegation[]>;

  /** Records an authorization made for an enterprise (idempotent by grantId). */
  recordGrant(grant: Omit<OrgGrant, 'createdAt'>): Promise<void>;
  findGrant(grantId: string): Promise<OrgGrant | undefined>;
  /** Unexpired grants of an enterprise, optionally of one person only. */
  grantsFor(code: string, personId?: string): Promise<OrgGrant[]>;
  forgetGrant(grantId: string): Promise<void>;
}

/**
 * A signing key in the store (issue 6). Its state follows from its times: `next` before
 * `activateAt` (published, not signing), then the newest activated key of its algorithm is
 * `active` (signing) and older ones `retiring` (published so their tokens still verify), until an
 * operator retires them (`retiredAt`: no longer published).
 */
export interface SigningKeyRecord {
  kid: string;
  /** `RS256` or `ES256`. */
  alg: string;
  /** The public JWK (kty, n/e or crv/x/y, kid, alg, use). */
  publicJwk: Record<string, unknown>;
  /** The private JWK, sealed under the key-encryption key (secret box format). */
  privateJwkSealed: string;
  /** `development` or `operator`. */
  origin: string;
  createdAt: number;
  activateAt: number;
  retiredAt: number | null;
}

export interface SigningKeyRepository {
  /** Fails with StoreConflictError(field "kid") on a duplicate kid. */
  add(key: SigningKeyRecord): Promise<void>;
  /** Every key, retired ones included, ordered by activateAt then kid. */
  list(): Promise<SigningKeyRecord[]>;
  /** Marks a key retired (once): false when missing or already retired. */
  retire(kid: string, now: number): Promise<boolean>;
  /**
   * A number that changes whenever the key set changes (add, retire), so instances can notice a
   * rotation cheaply. Monotonic within one store.
   */
  version(): Promise<number>;
}

/** One entry of the tamper-evident audit log (issue 6). */
export interface AuditEntry {
  /** 1, 2, 3, … without gaps. */
  seq: number;
  /** Epoch ms. */
  at: number;
  /** The event name (SECURITY_EVENTS key) and its number. */
  event: string;
  eventId: number;
  /** Pseudonymised details as JSON (never secrets). */
  details: Record<string, unknown>;
  /** Hash of the previous entry (64 hex zeros for the first). */
  prevHash: string;
  /** sha256 over the canonical form of (seq, at, event, eventId, details, prevHash), hex. */
  hash: string;
}

export interface AuditRepository {
  /**
   * Appends an entry after the current last one, atomically: `seq` is the last seq + 1 and
   * `prevHash` the last entry's hash, computed by `seal(prev)` inside the same atomic step, so two
   * concurrent appends never share a seq or a previous hash. Returns the stored entry.
   */
  append(entry: { at: number; event: string; eventId: number; details: Record<string, unknown> }, seal: (seq: number, prevHash: string) => string): Promise<AuditEntry>;
  /** Entries with seq > afterSeq, ascending, at most `limit`. */
  list(afterSeq: number, limit: number): Promise<AuditEntry[]>;
  /** Entries at or after `since` (epoch ms), ascending, at most `limit`, after seq `afterSeq`. */
  listSince(since: number, afterSeq: number, limit: number): Promise<AuditEntry[]>;
  /** The last entry, or undefined when the log is empty. */
  head(): Promise<AuditEntry | undefined>;
  /**
   * The operators' audit search, newest first (seq descending), strictly before `beforeSeq` when
   * given, at most `limit`. Every filter is optional and exact: `event` the event name; `person`,
   * `portal`, `operator` the values of those keys in the details; `from` ≤ at < `to`. Each filter
   * is served by an index, so a page never scans the whole log.
   */
  search(filter: AuditFilter & { beforeSeq?: number; limit: number }): Promise<AuditEntry[]>;
  /** How many entries match (the dashboard's sign-ins in the last 24 hours), counted through an index. */
  count(filter: AuditFilter): Promise<number>;
}

export interface AuditFilter {
  event?: string;
  person?: string;
  portal?: string;
  operator?: string;
  from?: number;
  to?: number;
}

/**
 * The operators' console's roles (PRODUCT.md, "Operators' console"): what each may see and do is
 * decided in admin/roles.ts, on the server, for every page and action.
 */
export type OperatorRole = 'helpdesk' | 'integration' | 'keys' | 'auditor' | 'admin';

/** A person who may sign in to the operators' console, with their roles. */
export interface Operator {
  /** The person's id (persons.id): operators sign in as themselves, at loa:high. */
  personId: string;
  roles: OperatorRole[];
  /** Who added them: an operator's person id, or `cli:<name>` for the command line. */
  addedBy: string;
  addedAt: number;
  updatedAt: number;
  /** Compare-and-set revision of the roles: every change raises it by one. */
  rev: number;
}

export interface OperatorRepository {
  /** Fails with StoreConflictError(field "personId") when the person is already an operator. */
  create(operator: { personId: string; roles: OperatorRole[]; addedBy: string; addedAt: number }): Promise<Operator>;
  find(personId: string): Promise<Operator | undefined>;
  /** In the order they were added (addedAt, personId), a page at a time. */
  list(options: { limit: number; offset: number }): Promise<Operator[]>;
  count(): Promise<number>;
  /** Replaces the roles if the revision is still `expectedRev` (then raised by one); false otherwise. */
  setRoles(personId: string, expectedRev: number, roles: OperatorRole[], now: number): Promise<boolean>;
  /** False when the person is not an operator. */
  remove(personId: string): Promise<boolean>;
}

/**
 * Where a proposal stands. A pending proposal whose `expiresAt` has passed is lapsed: the store
 * keeps it `pending` and readers show it as lapsed (admin/approvals.service.ts); `decide` refuses it.
 */
export type ApprovalStatus = 'pending' | 'approved' | 'rejected';

/** A dangerous action proposed by one operator, waiting for a second (two-person control). */
export interface Approval {
  /** Opaque id (UUID). */
  id: string;
  /** What is proposed (admin/approvals.service.ts: set-level-2, approve-national-id, retire-key, remove-operator, unlock-fraud). */
  action: string;
  /** What it acts on, as shown and searched: a person id, a client id, a key id. */
  subject: string;
  /** The action's checked parameters (JSON). */
  params: Record<string, unknown>;
  /** The proposer: an operator's person id, or `cli:<name>`; their role for this action; why; evidence. */
  proposedBy: string;
  proposedRole: string;
  reason: string;
  evidence: string | null;
  status: ApprovalStatus;
  createdAt: number;
  /** Epoch ms after which a pending proposal has lapsed (24 hours after it was made). */
  expiresAt: number;
  decidedBy: string | null;
  decidedRole: string | null;
  decidedAt: number | null;
  decisionReason: string | null;
  /** What carrying it out did ("done", or why it could not be done), set after an approval. */
  outcome: string | null;
}

export interface ApprovalRepository {
  /** Fails with StoreConflictError(field "id") on a duplicate id. */
  create(approval: Approval): Promise<void>;
  find(id: string): Promise<Approval | undefined>;
  /**
   * Newest first (createdAt, id descending), strictly after the cursor in that order, at most
   * `limit`; with `status`, only those (pending includes lapsed ones: the caller tells them apart).
   */
  list(options: { status?: ApprovalStatus; before?: { createdAt: number; id: string }; limit: number }): Promise<Approval[]>;
  /** A pending, unexpired proposal of this action on this subject (one at a time per subject). */
  findPending(action: string, subject: string, now: number): Promise<Approval | undefined>;
  /**
   * Atomically moves a proposal from pending to `status`, only if it is still pending and
   * `decision.at < expiresAt`: of two operators deciding at once, exactly one succeeds. False otherwise.
   */
  decide(id: string, decision: { status: 'approved' | 'rejected'; by: string; role: string; at: number; reason: string }): Promise<boolean>;
  /** Records what carrying out an approved proposal did. */
  setOutcome(id: string, outcome: string): Promise<void>;
}

/** Evidence behind an operator's action on an account (issue 6): why, on what proof, by whom. */
export interface AccountEvidence {
  id: string;
  personId: string;
  /** `set-level`, `reset-mfa`, `lock`, `unlock`. */
  action: string;
  reason: string;
  /** For `set-level 2`: documentType, documentNumber, place; free-form otherwise. */
  evidence: Record<string, unknown>;
  operator: string;
  createdAt: number;
}

export interface AccountEvidenceRepository {
  add(record: AccountEvidence): Promise<void>;
  /** A person's records, oldest first. */
  listForPerson(personId: string): Promise<AccountEvidence[]>;
}

/**
 * One line of a person's own history (/account/activity): a projection of the audit events that
 * concern the person, kept apart from the audit log so that reading it is an indexed query by
 * person and time, and purged after six months (the audit log keeps its own retention).
 */
export interface ActivityEntry {
  /** Opaque id (UUID). */
  id: string;
  personId: string;
  at: number;
  /** The security event it records (a SECURITY_EVENTS key). */
  event: string;
  /** What the person may see of it: portal, level, device, network, the operator's role, never a secret. */
  details: Record<string, string | number | boolean | null>;
  /** Epoch ms after which it is no longer returned (and purgeExpired removes it). */
  expiresAt: number;
}

export interface ActivityRepository {
  /** Fails with StoreConflictError(field "id") on a duplicate id. */
  add(entry: ActivityEntry): Promise<void>;
  /**
   * The person's live entries (not expired, `at >= since`), newest first (by `at`, then `id`
   * descending), strictly after the cursor `before` in that order when given, at most `limit`.
   * Served by an index on (personId, at, id).
   */
  list(personId: string, options: { since: number; before?: { at: number; id: string }; limit: number }): Promise<ActivityEntry[]>;
  /** One live entry of the person (undefined when missing, expired, or someone else's). */
  find(personId: string, id: string): Promise<ActivityEntry | undefined>;
}

/**
 * Every record, in a backend-neutral form, for `dinhdanh store copy` (issue 7). Each collection's
 * records are plain JSON objects with the fields below (camelCase; JSON columns as values;
 * booleans as booleans; missing optional values as null), the same from every backend, so that a
 * copy can be verified by count and checksum:
 *
 * - oidc: model, id, payload, uid, userCode, grantId, expiresAt, consumedAt
 * - persons: Person, with `contacts` null for a record that never stored its list (read as the
 *   list made from its phone and e-mail: store/contacts.ts); portals: Portal; consents: Consent; factors: Factor
 * - counters: key, count, updatedAt, expiresAt
 * - recoveryCodes: personId, codeHash, createdAt, usedAt
 * - jobs: Job and expiresAt
 * - enterprises: Enterprise; representatives: enterpriseCode, personId, createdAt
 * - delegations: Delegation; orgGrants: OrgGrant
 * - signingKeys: SigningKeyRecord; auditLog: AuditEntry; accountEvidence: AccountEvidence
 * - activity: ActivityEntry
 * - operators: Operator; approvals: Approval
 * - usageCounts: day, portal, key, n; usageTags: day, portal, tag
 * - ssfStreams: SsfStream (its sealed authorization header as it is; the queued events are not
 *   copied: a receiver's verification request, or the next change, fills its line again)
 */
export const COPY_COLLECTIONS = [
  'persons', 'portals', 'consents', 'counters', 'factors', 'recoveryCodes', 'oidc', 'jobs',
  'enterprises', 'representatives', 'delegations', 'orgGrants', 'signingKeys', 'auditLog', 'accountEvidence', 'activity',
  'operators', 'approvals', 'usageCounts', 'usageTags', 'ssfStreams',
] as const;
export type CopyCollection = (typeof COPY_COLLECTIONS)[number];

export interface StoreCopy {
  /** Every record of a collection (expired ones included), in a stable order. */
  exportAll(collection: CopyCollection): AsyncIterable<Record<string, unknown>>;
  /** Writes records as they are (replacing any with the same key). */
  importMany(collection: CopyCollection, records: readonly Record<string, unknown>[]): Promise<void>;
}

export interface BackupOptions {
  /** Replace an existing file at the target (never the store's own files). */
  force?: boolean;
}

/** What `Store.backup` wrote, after verifying it. */
export interface BackupReport {
  /** The backup file's absolute path. */
  to: string;
  bytes: number;
  /** The copy's integrity check: only a passing one is reported. */
  integrity: 'ok';
  /** The schema version of the copy, equal to the source's. */
  schemaVersion: number;
  /** Records in each collection of the copy. */
  collections: Record<CopyCollection, number>;
}

/** The backup target cannot be used (exists, is the store itself, has no folder): nothing was written. */
export class BackupTargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupTargetError';
  }
}

/** The copy was written but failed verification; it was removed. */
export class BackupVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupVerificationError';
  }
}

export type JobStatus = 'pending' | 'done' | 'failed';

/**
 * A unit of work that must survive a restart and run once across all instances: a back-channel
 * logout delivery, a session-expiry check. Workers claim due jobs with a lease; a claimed job that
 * is neither completed nor rescheduled before its lease ends (a crashed instance) is claimed again.
 */
export interface Job {
  /** Caller-chosen id: enqueueing the same id twice keeps the first (idempotent triggers). */
  id: string;
  kind: string;
  payload: Record<string, unknown>;
  status: JobStatus;
  /** Claims so far (each claim is one attempt). */
  attempts: number;
  /** Epoch ms when the job is next due. */
  dueAt: number;
  /** Epoch ms until which the last claim holds the job. */
  leaseUntil: number;
  /** The last attempt's outcome ("200", "timeout after 5000 ms", ...). */
  lastOutcome: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface JobRepository {
  /** Adds a pending job; false (and nothing changed) when a job with this id exists. */
  enqueue(job: { id: string; kind: string; payload: Record<string, unknown>; dueAt: number }, now: number): Promise<boolean>;
  /**
   * Atomically claims up to `limit` pending jobs of `kind` that are due (`dueAt <= now`) and not
   * held (`leaseUntil <= now`): each gets `leaseUntil = now + leaseMs` and one more attempt. Of any
   * number of concurrent claimers, each job goes to exactly one.
   */
  claimDue(kind: string, now: number, leaseMs: number, limit: number): Promise<Job[]>;
  /** Ends a job (done or failed) with its outcome; the record is kept for `keepMs` for inspection. */
  finish(id: string, status: 'done' | 'failed', outcome: string, now: number, keepMs: number): Promise<void>;
  /** Puts a claimed job back as pending, due at `dueAt`, recording the attempt's outcome. */
  retry(id: string, dueAt: number, outcome: string, now: number): Promise<void>;
  find(id: string): Promise<Job | undefined>;
  /** Jobs of a kind, newest first, optionally only one status. */
  list(kind: string, options: { status?: JobStatus; limit: number }): Promise<Job[]>;
  /**
   * The queue at a glance (the operators' dashboard): per kind and status, how many jobs, and for
   * pending ones the oldest `dueAt`. Counted in the store (grouped), never by loading the jobs.
   */
  stats(): Promise<Array<{ kind: string; status: JobStatus; count: number; oldestDueAt: number | null }>>;
  /**
   * The pending jobs per kind and the oldest one's due time, ordered by kind: what a metrics scrape
   * reads every few seconds, so it reads the pending jobs' index only, never the finished jobs kept
   * for a day (one per session expired).
   */
  pending(): Promise<Array<{ kind: string; count: number; oldestDueAt: number }>>;
}

/**
 * Usage statistics (metrics/usage.service.ts): counts per Vietnam calendar day (`YYYY-MM-DD`, UTC+7)
 * and portal (a registered client id; `other` for one not registered; `-` for no portal: a journey
 * begun at dinhdanh itself), under a closed set of keys (`signins`, `acr:<acr>`, `hour:<HH>:<acr>`,
 * `failure:<reason>` …, written only by the usage service). Shared by every instance; kept 25 months.
 */
export interface UsageCount {
  day: string;
  portal: string;
  key: string;
  n: number;
}

export interface UsageRepository {
  /**
   * Adds each `n` to its (day, portal, key) row, creating the row at 0 first. Each row's addition is
   * atomic (SQLite `ON CONFLICT DO UPDATE SET n = n + ?`, MongoDB `$inc` with upsert), so instances
   * flushing at once add up and nothing is lost. On failure: SQLite added nothing (one
   * transaction); when some rows were added and the store knows which were not, it rejects with an
   * error whose `failedRows` (UsageCount[]) lists those, every other row having been added, so a
   * retry of only those counts nothing twice (MongoDB: the unordered bulk write's per-row errors).
   * Any other rejection says nothing of what was added (a connection lost mid-write).
   */
  add(rows: readonly UsageCount[]): Promise<void>;
  /**
   * Remembers pseudonymous tags (an HMAC of a person under a key for that day, never the person)
   * for a day's distinct count. Idempotent: a tag already there for (day, portal) is not counted twice.
   */
  addDistinct(rows: ReadonlyArray<{ day: string; portal: string; tag: string }>): Promise<void>;
  /** How many distinct tags each (day, portal) with from <= day <= to holds (only days not yet compacted have any). */
  countDistinct(from: string, to: string, portal?: string): Promise<Array<{ day: string; portal: string; n: number }>>;
  /** Rows with from <= day <= to (and this portal when given), ordered by day, portal, key. */
  range(from: string, to: string, portal?: string): Promise<UsageCount[]>;
  /**
   * Per day and key, the sum over portals of `n` for rows with from <= day <= to whose key starts
   * with `keyPrefix` (ASCII letters, digits, `_`, `-`, `+`, `.`, `:`, 1 to 64), and of this portal
   * only when given; ordered by day, key. Rows of portal `*` (the all-portals distinct count of
   * usage.service.ts, no portal's figure) are never summed. Summed by the store, through an index
   * on (day, key): the console's all-portals charts read a few hundred sums, not every portal's
   * rows (reading those on SQLite blocks the process, better-sqlite3 being synchronous).
   */
  sums(q: { from: string; to: string; keyPrefix: string; portal?: string }): Promise<Array<{ day: string; key: string; n: number }>>;
  /**
   * Closes a finished day: sets (not adds) key `citizens` of each of its (day, portal) to its
   * distinct count and deletes the day's tags it counted (never a tag written meanwhile). Idempotent;
   * two instances compacting at once write the same counts. Tags that arrive after their day was
   * compacted (an instance that could not write for a day) are compacted again into the larger of
   * the stored count and theirs: a lower bound, as whether they were counted before is no longer
   * known.
   */
  compact(day: string): Promise<void>;
  /** Days with tags still to compact that are before `before` (oldest first). */
  uncompacted(before: string): Promise<string[]>;
  /** Deletes counts and tags of days before `before` (retention). Returns how many rows went. */
  purge(before: string): Promise<number>;
}

/**
 * A portal's security event stream (events/, OpenID Shared Signals Framework 1.0 §8.1.1): the
 * event types it asked for and how they reach it. At most one per portal (the receiver is the
 * portal itself; SSF §8.1.1.1 lets a transmitter refuse a second stream).
 */
export interface SsfStream {
  /** `stream_id`: random, URL-safe. */
  id: string;
  /** The receiving portal: every SET of the stream has it as `aud`. */
  clientId: string;
  /** `events_requested`: event type URIs (events/event-types.ts), as the portal asked. */
  eventsRequested: string[];
  /** RFC 8935 push (`urn:ietf:rfc:8935`) or RFC 8936 poll (`urn:ietf:rfc:8936`). */
  deliveryMethod: 'urn:ietf:rfc:8935' | 'urn:ietf:rfc:8936';
  /** Push: the portal's receiving URL. Poll: null (the transmitter's poll URL is fixed). */
  endpointUrl: string | null;
  /**
   * Push: the `Authorization` header value the portal asked the transmitter to send (SSF
   * §8.1.1 `delivery.authorization_header`), sealed by the caller (keys/secret-box.ts); null if none.
   */
  authorizationHeader: string | null;
  description: string | null;
  /** SSF §8.1.2: events are delivered (enabled), held for later (paused) or not made (disabled). */
  status: 'enabled' | 'paused' | 'disabled';
  statusReason: string | null;
  createdAt: number;
  updatedAt: number;
}

/** One Security Event Token queued for a stream (RFC 8417), kept until delivered, then a day. */
export interface SsfEvent {
  streamId: string;
  /** The SET's `jti`: unique per stream (RFC 8417 §2.2). */
  jti: string;
  /** Order within the stream, given by the store at `addEvents` (increasing; gaps allowed). */
  seq: number;
  /** The signed SET (compact JWS), as sent: the same bytes on every try. */
  set: string;
  /** The event type URIs it carries (for operators; the SET is the truth). */
  types: string[];
  createdAt: number;
  /** Undelivered events go at `createdAt` + 14 days; delivered ones a day after delivery. */
  expiresAt: number;
  /** Push attempts so far. */
  attempts: number;
  /** The last attempt's outcome, or how it was acknowledged ("HTTP 202", "acknowledged", "setErr invalid_key"). */
  lastOutcome: string | null;
  lastAttemptAt: number | null;
  /** When it was delivered (push 202) or acknowledged (poll); null while undelivered. */
  deliveredAt: number | null;
  /** True when push gave up on it (a final refusal or too many attempts): no longer in the line. */
  failed: boolean;
}

export interface SsfRepository {
  /** Adds a stream; false (nothing changed) when the portal already has one. */
  createStream(stream: SsfStream): Promise<boolean>;
  findStream(id: string): Promise<SsfStream | undefined>;
  findStreamByClient(clientId: string): Promise<SsfStream | undefined>;
  /** The streams of these portals (any status). */
  streamsFor(clientIds: readonly string[]): Promise<SsfStream[]>;
  /** Every stream, by client id. */
  listStreams(): Promise<SsfStream[]>;
  /** Replaces the given fields and `updatedAt`; the stream after, or undefined when there is none. */
  updateStream(id: string, changes: Partial<Omit<SsfStream, 'id' | 'clientId' | 'createdAt' | 'updatedAt'>>, now: number): Promise<SsfStream | undefined>;
  /** Deletes the stream and every event of it; false when there was none. */
  deleteStream(id: string): Promise<boolean>;
  /** Appends events (each with its stream), giving each a `seq` greater than any before in its stream, in the given order. */
  addEvents(events: ReadonlyArray<Omit<SsfEvent, 'seq' | 'attempts' | 'lastOutcome' | 'lastAttemptAt' | 'deliveredAt' | 'failed'>>): Promise<SsfEvent[]>;
  findEvent(streamId: string, jti: string): Promise<SsfEvent | undefined>;
  /** Undelivered, not failed, unexpired (`expiresAt > now`) events of a stream, by `seq`, at most `limit`. */
  undelivered(streamId: string, now: number, limit: number): Promise<SsfEvent[]>;
  /**
   * Marks these events of the stream delivered (if undelivered and not failed) with an outcome, and
   * sets their `expiresAt` to `now` + one day; returns the jtis it changed. Atomic per event: of two
   * concurrent calls for one jti, one gets it.
   */
  markDelivered(streamId: string, jtis: readonly string[], outcome: string, now: number): Promise<string[]>;
  /** Records one more push attempt and its outcome; `failed` ends its place in the line. */
  recordAttempt(streamId: string, jti: string, outcome: string, now: number, failed?: boolean): Promise<void>;
  /**
   * Per stream: undelivered (not failed, unexpired) count and the oldest one's `createdAt`, delivered
   * and failed counts still kept, and the newest attempt's outcome and time. Counted in the store.
   */
  deliveryStats(now: number): Promise<Array<{ streamId: string; undelivered: number; oldestUndeliveredAt: number | null; delivered: number; failed: number; lastOutcome: string | null; lastAttemptAt: number | null }>>;
  /** Deletes events whose `expiresAt <= now`; returns how many. */
  purge(now: number): Promise<number>;
}

export interface Store {
  readonly kind: string;
  readonly oidc: OidcModelStore;
  readonly persons: PersonRepository;
  readonly portals: PortalRepository;
  readonly consents: ConsentRepository;
  readonly counters: CounterRepository;
  readonly factors: FactorRepository;
  readonly recoveryCodes: RecoveryCodeRepository;
  readonly jobs: JobRepository;
  readonly orgs: OrgRepository;
  readonly signingKeys: SigningKeyRepository;
  readonly audit: AuditRepository;
  readonly accountEvidence: AccountEvidenceRepository;
  readonly activity: ActivityRepository;
  readonly operators: OperatorRepository;
  readonly approvals: ApprovalRepository;
  readonly usage: UsageRepository;
  readonly ssf: SsfRepository;
  readonly copy: StoreCopy;
  /**
   * Writes a consistent, verified copy of the whole store to one file (`dinhdanh store backup`).
   * Only a backend whose data is one file can do this itself; the others leave it undefined and
   * the operator uses the database's own tools (MongoDB: `mongodump --oplog`, snapshots).
   * Throws BackupTargetError (nothing written) or BackupVerificationError (the copy was removed).
   */
  backup?(to: string, options?: BackupOptions): Promise<BackupReport>;
  /** Applies pending schema migrations (idempotent). */
  migrate(): Promise<void>;
  /** Resolves when the store answers a trivial query; rejects otherwise. */
  ping(): Promise<void>;
  /** Deletes expired rows; returns how many. Clean-up only: reads already ignore expired rows. */
  purgeExpired(now: number): Promise<number>;
  close(): Promise<void>;
}

/** A unique constraint was violated (duplicate id, pid, client id). */
export class StoreConflictError extends Error {
  readonly code = 'store_conflict';
  constructor(readonly field: string) {
    super(`a record with this ${field} already exists`);
    this.name = 'StoreConflictError';
  }
}

/** The store could not be reached or failed; requests answer 503. */
export class StoreUnavailableError extends Error {
  readonly code = 'store_unavailable';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}
