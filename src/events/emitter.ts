/**
 * Account changes become Security Event Tokens for the portals that must hear of them (SSF 1.0
 * with CAEP 1.0 and RISC 1.0). The causes are the audit events (ARCHITECTURE.md rule 9: security
 * events come from one closed list, written only through the audit service) and the ends of
 * sessions (the same moments back-channel logout covers: provider/backchannel-logout.ts). The
 * table `AUDIT_EVENTS` below says which audit event makes which SETs; nothing else makes any.
 *
 * Who hears: the portals the person has used (their consents) that have a stream asking for that
 * event type, not disabled — or, for an event about one portal (a consent withdrawn, a session's
 * part at a portal), that portal only. Each portal sees the person only by its pairwise `sub`
 * (`iss_sub`, RFC 9493 §3.2.5) — never the identification number.
 *
 * SETs are made off the caller's path, in order, one cause at a time per process; `settled()`
 * resolves when every one asked for so far is in the store (the command line waits for it before
 * it closes the store).
 */
import type { JWK } from 'jose';
import type { Logger } from 'pino';
import type { AuditDetails } from '../audit/audit.service.js';
import type { SecurityEventName } from '../audit/events.js';
import type { PortalService } from '../portals/index.js';
import type { LogoutReason, PortalSessionRef } from '../provider/backchannel-logout.js';
import { pairwiseSubject } from '../provider/pairwise.js';
import type { SsfStream, Store } from '../store/index.js';
import { EVENT, UNDELIVERED_KEEP_MS, type EventType } from './event-types.js';
import { currentCause, mintSet, randomId, type SubjectId } from './set.js';

/** CAEP 1.0 §2 `initiating_entity`. */
type Initiator = 'admin' | 'user' | 'policy' | 'system';

/** One SET to make: its type, its event members, and (when not every portal the person used) its portals. */
export interface Emission {
  type: EventType;
  event: Record<string, unknown>;
  /** Only these portals (still only those whose stream asked for the type). */
  portals?: readonly string[];
  /** Members of a complex subject (SSF §3.2) besides `user` (the pairwise subject). */
  subject?: { session?: SubjectId; tenant?: SubjectId; email?: SubjectId; phone?: SubjectId };
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** CAEP 1.0 §3.2 `credential_type` of our factor types (a passkey is a platform or synced FIDO2 credential). */
function credentialType(factorType: unknown): string {
  return factorType === 'passkey' ? 'fido2-platform' : 'app';
}

const changed = (credential_type: string, change_type: 'create' | 'update' | 'delete' | 'revoke', initiating_entity: Initiator): Emission => ({
  type: EVENT.credentialChange, event: { credential_type, change_type, initiating_entity },
});

/** CAEP 1.0 §3.3 with our identity levels (Decree 59/2022/ND-CP Art. 12: level 1, level 2) as a namespace. */
export const LEVEL_NAMESPACE = 'urn:dinhdanh:identity-level';
function levelChange(from: unknown, to: unknown, initiating_entity: Initiator): Emission[] {
  if ((from !== 1 && from !== 2) || (to !== 1 && to !== 2) || from === to) return [];
  return [{
    type: EVENT.assuranceLevelChange,
    event: { namespace: LEVEL_NAMESPACE, previous_level: String(from), current_level: String(to), change_direction: to > from ? 'increase' : 'decrease', initiating_entity },
  }];
}

/**
 * RISC 1.0 §2.2 account-disabled: `reason` is RISC's own (`hijacking` when the account is held to
 * be taken over); `reason_class` is ours (SSF §4.2.3 allows more members): which lock it is, which
 * says who may lift it — an operator's, a fraud lock (two operators), the owner's own, or failed
 * sign-ins (NIST SP 800-63B §5.2.2).
 */
function disabled(reasonClass: 'operator' | 'fraud' | 'self' | 'failures', initiating_entity: Initiator): Emission {
  return { type: EVENT.accountDisabled, event: { ...(reasonClass === 'fraud' || reasonClass === 'self' ? { reason: 'hijacking' } : {}), reason_class: reasonClass, initiating_entity } };
}

const delegationEnded = (org: unknown, reason: 'revoked' | 'expired' | 'enterprise_suspended', initiating_entity: Initiator): Emission[] => {
  const code = str(org);
  return code ? [{ type: EVENT.delegationEnded, event: { reason, initiating_entity }, subject: { tenant: { format: 'opaque', id: code } } }] : [];
};

/**
 * Which audit events make which SETs: the one table (the state-change test checks it row by row).
 * Details are the audit record's (pseudonymised: a person id, never a number or a secret).
 */
export const AUDIT_EVENTS: Partial<Record<SecurityEventName, (d: AuditDetails) => Emission[]>> = {
  // RISC account-disabled / account-enabled.
  ACCOUNT_LOCKED: (d) => [disabled(d.lock_reason === 'fraud' ? 'fraud' : 'operator', 'admin')],
  ACCOUNT_LOCKED_BY_FAILURES: () => [disabled('failures', 'policy')],
  ACCOUNT_SELF_LOCKED: () => [disabled('self', 'user')],
  ACCOUNT_UNLOCKED: (d) => (typeof d.was === 'string' && d.was.startsWith('locked') ? [{ type: EVENT.accountEnabled, event: { initiating_entity: 'admin' } }] : []),
  // Recovery with the second factor unlocks an account its owner locked (the same record follows PASSWORD_RESET).
  ACCOUNT_SELF_UNLOCKED: () => [{ type: EVENT.accountEnabled, event: { initiating_entity: 'user' } }],
  // CAEP credential-change: the password and the second factors.
  PASSWORD_CHANGED: () => [changed('password', 'update', 'user')],
  PASSWORD_RESET: () => [changed('password', 'update', 'user')],
  // "This wasn't me": the password stops working until it is replaced through recovery.
  NOT_ME_REPORTED: () => [changed('password', 'revoke', 'user')],
  FACTOR_ENROLLED: (d) => [changed(credentialType(d.type), 'create', 'user')],
  FACTOR_REMOVED: (d) => (d.confirmed === false ? [] : [changed(credentialType(d.type), 'delete', 'user')]),
  ACCOUNT_MFA_RESET: (d) => strings(d.types).map((t) => changed(credentialType(t), 'delete', 'admin')),
  // Every factor lost: after the wait, a new password, no factors, level 1 (selfservice/).
  ACCOUNT_RESET_COMPLETED: (d) => [
    changed('password', 'update', 'user'),
    ...strings(d.types).map((t) => changed(credentialType(t), 'delete', 'user')),
    ...levelChange(d.level_before, 1, 'user'),
  ],
  // CAEP assurance-level-change: an operator raised or lowered the identity level.
  ACCOUNT_LEVEL_CHANGED: (d) => levelChange(d.from, d.to, 'admin'),
  // RISC recovery-activated: a recovery proven by a contact, or an account reset asked for.
  RECOVERY_CODE_VERIFIED: () => [{ type: EVENT.recoveryActivated, event: {} }],
  ACCOUNT_RESET_REQUESTED: () => [{ type: EVENT.recoveryActivated, event: {} }],
  // RISC recovery-information-changed: the contacts recovery uses, and the recovery codes.
  CONTACT_ADDED: () => [{ type: EVENT.recoveryInformationChanged, event: {} }],
  CONTACT_VERIFIED: () => [{ type: EVENT.recoveryInformationChanged, event: {} }],
  CONTACT_REMOVED: () => [{ type: EVENT.recoveryInformationChanged, event: {} }],
  RECOVERY_CODES_GENERATED: () => [{ type: EVENT.recoveryInformationChanged, event: {} }],
  // CAEP session-revoked for a withdrawn consent: every token of the person at that portal went
  // (the sessions it was part of are told one by one, below, as back-channel logout tells them).
  CONSENT_REVOKED: (d) => (str(d.portal) ? [{ type: EVENT.sessionRevoked, event: { initiating_entity: 'user', reason_admin: { en: 'consent withdrawn' } }, portals: [str(d.portal)!] }] : []),
  // Ours: a delegation to act for an enterprise ended.
  DELEGATION_REVOKED: (d) => delegationEnded(d.org, 'revoked', 'admin'),
  DELEGATION_EXPIRED: (d) => delegationEnded(d.org, 'expired', 'system'),
};

/** CAEP session-revoked `initiating_entity` by why the session ended (backchannel-logout.ts LogoutReason). */
const SESSION_INITIATOR: Record<LogoutReason, Initiator> = {
  logout: 'user', expired: 'policy', ended_elsewhere: 'user', account_locked: 'admin', account_unavailable: 'admin',
  org_access_ended: 'admin', consent_withdrawn: 'user', mfa_reset: 'admin', level_lowered: 'admin', factor_removed: 'user',
  password_reset: 'user', account_reset: 'user', password_changed: 'user', not_me: 'user', self_locked: 'user',
};

export interface SecurityEventsDeps {
  issuer: string;
  store: Pick<Store, 'ssf' | 'consents' | 'orgs'>;
  portals: PortalService;
  /** The active private signing JWK of an algorithm (the ID tokens' keys). */
  signingKey: (alg: string) => Promise<JWK | undefined>;
  pairwiseSalt: string;
  /** Told of each SET queued (delivery.ts queues push jobs). */
  queued: (stream: SsfStream, jti: string, seq: number) => Promise<void>;
  logger: Logger;
  now?: () => number;
}

export function createSecurityEvents(deps: SecurityEventsDeps) {
  const now = deps.now ?? Date.now;
  const log = deps.logger.child({ component: 'security-events' });
  let tail: Promise<unknown> = Promise.resolve();

  /** The streams that take `type` among these portals, with each portal's record. */
  async function receivers(type: string, clientIds: readonly string[]) {
    if (clientIds.length === 0) return [];
    const streams = (await deps.store.ssf.streamsFor([...new Set(clientIds)]))
      .filter((s) => s.status !== 'disabled' && s.eventsRequested.includes(type));
    const out = [];
    for (const stream of streams) {
      const portal = await deps.portals.find(stream.clientId);
      if (portal && !portal.disabled) out.push({ stream, portal });
    }
    return out;
  }

  /** Makes and queues the SETs of one cause for one person. */
  async function emit(personId: string, emissions: readonly Emission[], txn: string, at: number): Promise<void> {
    let used: string[] | undefined;
    for (const e of emissions) {
      const clientIds = e.portals ?? (used ??= (await deps.store.consents.listForPerson(personId)).map((c) => c.clientId));
      for (const { stream, portal } of await receivers(e.type, clientIds)) {
        const user: SubjectId = { format: 'iss_sub', iss: deps.issuer, sub: pairwiseSubject(deps.pairwiseSalt, portal.sector, personId) };
        const subject: SubjectId = e.subject ? { format: 'complex', user, ...e.subject } : user;
        await queueSet(stream, portal, subject, e.type, { event_timestamp: Math.floor(at / 1000), ...e.event }, txn);
      }
    }
  }

  /** Signs one SET for a stream (with the algorithm of the portal's ID tokens) and queues it. */
  async function queueSet(stream: SsfStream, portal: { metadata: Record<string, unknown> }, subject: SubjectId, type: string, event: Record<string, unknown>, txn: string): Promise<void> {
    const alg = typeof portal.metadata.id_token_signed_response_alg === 'string' ? portal.metadata.id_token_signed_response_alg : 'RS256';
    const key = (await deps.signingKey(alg)) ?? (await deps.signingKey('RS256'));
    if (!key) throw new Error(`no signing key for ${alg}`);
    const t = now();
    const { jti, set } = await mintSet({ issuer: deps.issuer, audience: stream.clientId, key, subject, eventType: type, event, txn, issuedAt: t });
    const [queued] = await deps.store.ssf.addEvents([{ streamId: stream.id, jti, set, types: [type], createdAt: t, expiresAt: t + UNDELIVERED_KEEP_MS }]);
    await deps.queued(stream, jti, queued!.seq);
  }

  /** Runs `work` after what was asked before it, never failing the caller (errors are logged). */
  function enqueue(what: string, work: () => Promise<void>): void {
    tail = tail.then(work).catch((err: unknown) => log.error({ err, what }, 'security events not made'));
  }

  /**
   * An enterprise suspended: every person delegated to act for it, or representing it, hears at the
   * portals they used that their delegation ended.
   */
  function enterpriseSuspended(code: string): void {
    const txn = currentCause() ?? randomId();
    const at = now();
    enqueue('enterprise-suspended', async () => {
      const people = new Set([
        ...(await deps.store.orgs.listDelegations(code)).filter((d) => d.revokedAt === null).map((d) => d.personId),
        ...(await deps.store.orgs.listRepresentatives(code)),
      ]);
      for (const person of people) await emit(person, delegationEnded(code, 'enterprise_suspended', 'admin'), txn, at);
    });
  }

  return {
    /** The audit service's observer (services.ts): the table above decides. */
    observe(event: SecurityEventName, details: AuditDetails, at: number): void {
      if (event === 'ORG_SUSPENDED' && str(details.org)) {
        enterpriseSuspended(str(details.org)!);
        return;
      }
      const rule = AUDIT_EVENTS[event];
      const person = str(details.person);
      if (!rule || !person) return;
      const emissions = rule(details);
      if (emissions.length === 0) return;
      const txn = currentCause() ?? randomId();
      enqueue(event, () => emit(person, emissions, txn, at));
    },

    /**
     * Sessions ended (the logout notifier, for every portal in them, whether or not it registered for
     * back-channel logout): CAEP session-revoked to each, with the session as its `sid` (SSF §3.2
     * complex subject). A withdrawn consent is told once, by CONSENT_REVOKED above.
     */
    sessionsEnded(accountId: string, refs: readonly PortalSessionRef[], reason: LogoutReason): void {
      if (reason === 'consent_withdrawn' || refs.length === 0) return;
      const txn = currentCause() ?? randomId();
      const at = now();
      enqueue('session-revoked', async () => {
        for (const ref of refs) {
          await emit(accountId, [{
            type: EVENT.sessionRevoked,
            event: { initiating_entity: SESSION_INITIATOR[reason] ?? 'system', reason_admin: { en: reason.replace(/_/g, ' ') } },
            portals: [ref.clientId],
            subject: { session: { format: 'opaque', id: ref.sid } },
          }], txn, at);
        }
      });
    },

    enterpriseSuspended,

    /**
     * RISC identifier-changed: the verified e-mail or phone number a portal received changed (or
     * went: no `new-value`). Only to portals whose consent includes that claim's scope — they had
     * the old value already. RISC 1.0 §2.6 wants the subject to be the old identifier: here it is
     * a complex subject with the portal's pairwise `user` beside it (SSF §3.2).
     */
    identifierChanged(personId: string, kind: 'email' | 'phone', old: string, next: string | null): void {
      const txn = currentCause() ?? randomId();
      const at = now();
      const scope = kind === 'email' ? 'email' : 'phone';
      enqueue('identifier-changed', async () => {
        const portals = (await deps.store.consents.listForPerson(personId)).filter((c) => c.scopes.includes(scope)).map((c) => c.clientId);
        if (portals.length === 0) return;
        await emit(personId, [{
          type: EVENT.identifierChanged,
          event: next === null ? {} : { 'new-value': next },
          portals,
          subject: kind === 'email' ? { email: { format: 'email', email: old } as SubjectId } : { phone: { format: 'phone_number', phone_number: old } as SubjectId },
        }], txn, at);
      });
    },

    /**
     * A transmitter's own event about the stream (SSF §8.1.4 verification, §8.1.5 stream-updated):
     * its subject is the stream (SSF §8.1.4.1: `opaque`, the stream id), whatever it requested.
     */
    async streamEvent(stream: SsfStream, type: string, event: Record<string, unknown>): Promise<void> {
      const portal = await deps.portals.find(stream.clientId);
      if (!portal) return;
      await queueSet(stream, portal, { format: 'opaque', id: stream.id }, type, event, currentCause() ?? randomId());
    },

    /** Resolves when every SET asked for so far is in the store (or given up, logged). */
    settled: (): Promise<void> => tail.then(() => undefined),
  };
}
export type SecurityEvents = ReturnType<typeof createSecurityEvents>;
