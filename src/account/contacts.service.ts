/**
 * A person's phones and e-mail addresses (/account/profile): add one (it counts only once a code
 * sent to it is answered), prove one already on file, remove one, choose the one for notices.
 *
 * - Every change is told to every contact on file before it (a thief who swaps the contacts is
 *   heard on the owner's), and audited with the contact masked.
 * - Never the last verified contact: recovery needs one (NIST SP 800-63B §6.1.2.3). The check and
 *   the write are one compare-and-set on the person's contact list (PersonRepository.updateContacts),
 *   so two removals in parallel cannot both pass it.
 * - A phone must be a Vietnamese mobile number (codes by SMS cost money: no premium or foreign numbers).
 * - Portals see the new primary phone or address at userinfo (store/contacts.ts).
 */
import crypto from 'node:crypto';
import type { AuditService } from '../audit/index.js';
import type { Contact, ContactKind, OidcModelStore, Person, PersonRepository } from '../store/index.js';
import type { FactorNotices, MessageCodeService } from '../mfa/index.js';
import { maskEmail, maskPhone } from '../mfa/index.js';
import type { Locale } from '../http/i18n.js';
import { toE164, toEmail, VN_MOBILE } from '../selfservice/selfservice.validation.js';

/** At most this many contacts of each kind. */
export const MAX_CONTACTS_PER_KIND = 3;
const PENDING_MODEL = 'ContactPending';
/** A pending proof lives as long as its code. */
const PENDING_TTL_SECONDS = 10 * 60;

export const maskContact = (c: Pick<Contact, 'kind' | 'value'>) => (c.kind === 'phone' ? maskPhone(c.value) : maskEmail(c.value));

/** A code sent to a contact, waiting for its answer; kept per account session. */
interface Pending {
  accountId: string;
  kind: ContactKind;
  value: string;
  codeId: string;
  /** Set when proving a contact already on file. */
  contactId: string | null;
}

export type ContactError =
  | 'format' | 'not_mobile' | 'exists' | 'too_many' | 'unknown' | 'already_verified' | 'last_verified'
  | 'not_verified' | 'rate_limited' | 'unavailable' | 'changed';

export type StartResult = { ok: true; sentTo: string } | { ok: false; reason: ContactError; retryAfterMs?: number };
export type CodeResult = { ok: true; contact: Contact } | { ok: false; reason: 'invalid' | 'expired' | 'locked' | 'used' | 'changed' | 'none' };

export function createContactsService(deps: {
  persons: PersonRepository;
  oidc: OidcModelStore;
  messageCodes: MessageCodeService;
  notices: FactorNotices;
  audit: AuditService;
  now?: () => number;
  /**
   * Told when the verified e-mail or phone number portals receive (the `email` / `phone_number`
   * claims: provider/claims.ts) changed or went: RISC identifier-changed (events/emitter.ts).
   */
  identifierChanged?: (personId: string, kind: 'email' | 'phone', old: string, next: string | null) => void;
}) {
  const now = deps.now ?? Date.now;
  const codeKey = (personId: string) => `contact:${personId}`;

  /**
   * Applies `change` to the person's current list and writes it if nothing changed meanwhile
   * (one retry on a concurrent change, re-checking on the list it then reads).
   */
  async function update(personId: string, change: (p: Person) => { contacts: Contact[]; noticeContact: string | null } | ContactError): Promise<{ ok: true; before: Person } | { ok: false; reason: ContactError }> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const p = await deps.persons.findById(personId);
      if (!p || p.status !== 'active') return { ok: false, reason: 'unavailable' };
      const next = change(p);
      if (typeof next === 'string') return { ok: false, reason: next };
      if (await deps.persons.updateContacts(p.id, p.contactsRev, next.contacts, next.noticeContact)) {
        if (deps.identifierChanged) await toldOfIdentifiers(p);
        return { ok: true, before: p };
      }
    }
    return { ok: false, reason: 'changed' };
  }

  /** The verified e-mail and phone number the claims carried before a change, against after it. */
  async function toldOfIdentifiers(before: Person): Promise<void> {
    const after = await deps.persons.findById(before.id);
    if (!after) return;
    if (before.email && before.emailVerified && (after.email !== before.email || !after.emailVerified)) {
      deps.identifierChanged!(before.id, 'email', before.email, after.emailVerified ? after.email : null);
    }
    if (before.phone && before.phoneVerified && (after.phone !== before.phone || !after.phoneVerified)) {
      deps.identifierChanged!(before.id, 'phone', before.phone, after.phoneVerified ? after.phone : null);
    }
  }

  async function sendCode(p: Person, pending: Omit<Pending, 'codeId'>, sessionUid: string, locale: Locale): Promise<StartResult> {
    const channel = pending.kind === 'phone' ? 'sms' : 'email';
    if (!deps.messageCodes.channels().has(channel)) return { ok: false, reason: 'unavailable' };
    const sent = await deps.messageCodes.send(codeKey(p.id), channel, pending.value, locale);
    if (!sent.ok) return sent.reason === 'rate_limited' ? { ok: false, reason: 'rate_limited', retryAfterMs: sent.retryAfterMs } : { ok: false, reason: 'unavailable' };
    await deps.oidc.upsert(PENDING_MODEL, sessionUid, { ...pending, codeId: sent.id } satisfies Pending as unknown as Record<string, unknown>, PENDING_TTL_SECONDS);
    return { ok: true, sentTo: sent.sentTo };
  }

  return {
    /** Sends a code to a new phone or address; it is added once the code is answered (`confirm`). */
    async startAdd(personId: string, sessionUid: string, kind: ContactKind, input: string, locale: Locale): Promise<StartResult> {
      const p = await deps.persons.findById(personId);
      if (!p || p.status !== 'active') return { ok: false, reason: 'unavailable' };
      const value = kind === 'phone' ? toE164(input) : toEmail(input);
      if (!value) return { ok: false, reason: 'format' };
      if (kind === 'phone' && !VN_MOBILE.test(value)) return { ok: false, reason: 'not_mobile' };
      if (p.contacts.some((c) => c.kind === kind && c.value.toLowerCase() === value.toLowerCase())) return { ok: false, reason: 'exists' };
      if (p.contacts.filter((c) => c.kind === kind).length >= MAX_CONTACTS_PER_KIND) return { ok: false, reason: 'too_many' };
      return sendCode(p, { accountId: p.id, kind, value, contactId: null }, sessionUid, locale);
    },

    /** Sends a code to a contact on file that is not verified yet (an address typed at registration). */
    async startVerify(personId: string, sessionUid: string, contactId: string, locale: Locale): Promise<StartResult> {
      const p = await deps.persons.findById(personId);
      if (!p || p.status !== 'active') return { ok: false, reason: 'unavailable' };
      const c = p.contacts.find((x) => x.id === contactId);
      if (!c) return { ok: false, reason: 'unknown' };
      if (c.verified) return { ok: false, reason: 'already_verified' };
      return sendCode(p, { accountId: p.id, kind: c.kind, value: c.value, contactId: c.id }, sessionUid, locale);
    },

    /** The code waiting in this session, masked (for the code page), or undefined. */
    async pending(personId: string, sessionUid: string): Promise<{ kind: ContactKind; masked: string } | undefined> {
      const rec = (await deps.oidc.find(PENDING_MODEL, sessionUid)) as Partial<Pending> | undefined;
      if (!rec || rec.accountId !== personId || (rec.kind !== 'phone' && rec.kind !== 'email') || typeof rec.value !== 'string') return undefined;
      return { kind: rec.kind, masked: maskContact({ kind: rec.kind, value: rec.value }) };
    },

    /** The answer to the code: the contact is added (or marked verified) and every earlier contact told. */
    async confirm(personId: string, sessionUid: string, code: string, locale: Locale): Promise<CodeResult> {
      const rec = (await deps.oidc.find(PENDING_MODEL, sessionUid)) as Pending | undefined;
      if (!rec || rec.accountId !== personId || typeof rec.codeId !== 'string') return { ok: false, reason: 'none' };
      const verdict = await deps.messageCodes.verify(codeKey(personId), rec.codeId, code.trim());
      if (!verdict.ok) {
        if (verdict.reason !== 'invalid') await deps.oidc.destroy(PENDING_MODEL, sessionUid);
        return verdict;
      }
      await deps.oidc.destroy(PENDING_MODEL, sessionUid);
      const t = now();
      let added: Contact | undefined;
      const result = await update(personId, (p) => {
        if (rec.contactId) {
          const c = p.contacts.find((x) => x.id === rec.contactId && x.value === rec.value);
          if (!c) return 'unknown';
          added = { ...c, verified: true, verifiedAt: t };
          return { contacts: p.contacts.map((x) => (x.id === c.id ? added! : x)), noticeContact: p.noticeContact };
        }
        if (p.contacts.some((c) => c.kind === rec.kind && c.value.toLowerCase() === rec.value.toLowerCase())) return 'exists';
        if (p.contacts.filter((c) => c.kind === rec.kind).length >= MAX_CONTACTS_PER_KIND) return 'too_many';
        added = { id: crypto.randomUUID(), kind: rec.kind, value: rec.value, verified: true, addedAt: t, verifiedAt: t };
        return { contacts: [...p.contacts, added], noticeContact: p.noticeContact };
      });
      if (!result.ok || !added) return { ok: false, reason: 'changed' };
      const masked = maskContact(added);
      deps.audit.record(rec.contactId ? 'CONTACT_VERIFIED' : 'CONTACT_ADDED', { person: personId, kind: added.kind, masked });
      await deps.notices.contactChanged(personId, result.before.contacts, { what: rec.contactId ? 'verified' : 'added', masked }, locale);
      return { ok: true, contact: added };
    },

    /** Removes a contact, never the last verified one. */
    async remove(personId: string, contactId: string, locale: Locale): Promise<{ ok: true; contact: Contact } | { ok: false; reason: ContactError }> {
      let removed: Contact | undefined;
      const result = await update(personId, (p) => {
        removed = p.contacts.find((c) => c.id === contactId);
        if (!removed) return 'unknown';
        const rest = p.contacts.filter((c) => c.id !== contactId);
        if (removed.verified && !rest.some((c) => c.verified)) return 'last_verified';
        return { contacts: rest, noticeContact: p.noticeContact === contactId ? null : p.noticeContact };
      });
      if (!result.ok || !removed) return { ok: false, reason: result.ok ? 'unknown' : result.reason };
      const masked = maskContact(removed);
      deps.audit.record('CONTACT_REMOVED', { person: personId, kind: removed.kind, masked });
      await deps.notices.contactChanged(personId, result.before.contacts, { what: 'removed', masked }, locale);
      return { ok: true, contact: removed };
    },

    /** Chooses the verified contact that gets notices not about a change (`all`: every contact). */
    async chooseNotice(personId: string, choice: string, locale: Locale): Promise<{ ok: true } | { ok: false; reason: ContactError }> {
      let chosen: Contact | undefined;
      const result = await update(personId, (p) => {
        if (choice === 'all') return { contacts: p.contacts, noticeContact: null };
        chosen = p.contacts.find((c) => c.id === choice);
        if (!chosen) return 'unknown';
        if (!chosen.verified) return 'not_verified';
        return { contacts: p.contacts, noticeContact: chosen.id };
      });
      if (!result.ok) return result;
      const masked = chosen ? maskContact(chosen) : 'all';
      deps.audit.record('NOTICE_CONTACT_CHOSEN', { person: personId, ...(chosen ? { kind: chosen.kind } : {}), masked });
      await deps.notices.contactChanged(personId, result.before.contacts, { what: 'notice', masked: chosen ? masked : (locale === 'vi' ? 'mọi liên hệ' : 'every contact') }, locale);
      return { ok: true };
    },
  };
}
export type ContactsService = ReturnType<typeof createContactsService>;
