/**
 * Enterprises, their legal representatives and the staff they delegate (issue 5), and the one rule
 * deciding whether a person may act for an enterprise at a portal now:
 *
 * - the enterprise is active, and for a branch its parent too;
 * - the person is a legal representative of it (or of the parent of a branch) — role
 *   `legal_representative` — or holds a delegation for it that is not revoked, has not ended, and
 *   is either valid at every portal or lists this one.
 *
 * The rule is applied at every use of an enterprise context (choice, ID token, userinfo, refresh,
 * introspection), so a revocation, an expiry or a suspension takes effect at once; the clean-up of
 * the tokens and the back-channel logout follow as durable jobs (see provider/org-access.ts).
 */
import type { AuditService } from '../audit/index.js';
import type { CounterRepository, Delegation, Enterprise, JobRepository, OrgGrant, OrgRepository, PersonRepository } from '../store/index.js';
import { normaliseName } from '../accounts/names.js';
import { StoreConflictError } from '../store/index.js';
import { LEGAL_REPRESENTATIVE, OrgInputError, checkCode, checkName, checkRole, checkUntil, parentOf } from './org.validation.js';

/** Ending a person's right to act for an enterprise: its grants are revoked and portals told. */
export const ORG_ACCESS_ENDED_JOB = 'org-access-ended';
/** A delegation's end date: its grants are ended when it passes (tokens already fail the rule). */
export const DELEGATION_EXPIRY_JOB = 'delegation-expiry';

/** What a portal learns as the `org` claim, and what the choice page lists. */
export interface OrgAccess {
  code: string;
  name: string;
  role: string;
  parentCode: string | null;
  /** Epoch ms when the delegation ends (null: no end, or a legal representative). */
  delegationExpires: number | null;
}

/**
 * Who changes an enterprise's standing: the person (a representative delegating), or an operator,
 * whose audit details (admin/roles.ts actDetails: operator, role, door, reason) go with the event.
 */
export type Actor = { personId: string } | { operator: string; audit?: Record<string, string | boolean> };
const actorLabel = (actor: Actor) => ('personId' in actor ? actor.personId : `operator:${actor.operator}`);
/** `by`, and for an operator their id, role, door and reason (searchable by operator in the audit log). */
const actorDetails = (actor: Actor) => ({ by: actorLabel(actor), ...('operator' in actor ? { operator: actor.operator, ...actor.audit } : {}) });

export interface DelegateInput {
  code: string;
  pid: string;
  /** The delegate's full name as on their identity card: required when a citizen delegates. */
  fullName?: string;
  role: string;
  until?: string;
  portals?: string[];
}

export const DELEGATIONS_PER_HOUR = 10;

/** A full name as people type it: NFC, case-folded (Vietnamese rules), spaces collapsed; diacritics kept. */
function comparableName(name: string): string {
  return normaliseName(name).toLocaleLowerCase('vi');
}

export function createOrgService(deps: {
  orgs: OrgRepository;
  persons: PersonRepository;
  jobs: JobRepository;
  audit: AuditService;
  now?: () => number;
  /** Runs enqueued jobs soon (the server); the CLI leaves them to the server's polling. */
  kick?: () => void;
  /** Counts a citizen's delegation attempts (the account area); without it they are not limited. */
  counters?: CounterRepository;
  /** Tells a person that they may now act for an enterprise (their contacts on file). */
  tellDelegate?: (personId: string, what: { enterprise: string; code: string; role: string }) => Promise<void>;
}) {
  const now = deps.now ?? Date.now;
  const { orgs } = deps;

  /**
   * The person a legal representative names in the account area: the number and the full name must
   * both match, and an unknown number or a wrong name get one and the same answer — a citizen is not
   * a directory of who has an account (OWASP ASVS 5.0 6.3.8). Names compare after NFC and case and
   * space normalisation, never after removing diacritics ("Hoà" is not "Hoa").
   */
  async function personByPidAndName(pid: unknown, fullName: unknown) {
    const noMatch = new OrgInputError('no account matches this identification number and full name', 'no_account');
    if (typeof pid !== 'string' || !/^\d{12}$/.test(pid)) throw new OrgInputError('the personal identification number must have 12 digits', 'pid');
    const person = await deps.persons.findByPid(pid);
    const typed = typeof fullName === 'string' ? comparableName(fullName) : '';
    if (!person || typed.length === 0 || comparableName(person.name) !== typed) throw noMatch;
    return person;
  }

  /** At most DELEGATIONS_PER_HOUR attempts an hour per representative: looking people up one by one is cut short. */
  async function countAttempt(personId: string): Promise<void> {
    if (!deps.counters) return;
    const state = await deps.counters.increment(`delegate-attempts:${personId}`, 60 * 60_000, now());
    if (state.count > DELEGATIONS_PER_HOUR) throw new OrgInputError('too many delegation attempts; try again in an hour', 'rate_limited');
  }

  async function personByPid(label: string, pid: unknown) {
    if (typeof pid !== 'string' || !/^\d{12}$/.test(pid)) throw new OrgInputError(`${label} must be a personal identification number of 12 digits`, 'pid');
    const person = await deps.persons.findByPid(pid);
    if (!person) throw new OrgInputError(`${label}: no account with this identification number`, 'no_account');
    return person;
  }

  /** The enterprise and, for a branch, its parent — both active — or undefined. */
  async function activeChain(code: string): Promise<{ enterprise: Enterprise; parent: Enterprise | null } | undefined> {
    const enterprise = await orgs.findEnterprise(code);
    if (!enterprise || enterprise.status !== 'active') return undefined;
    if (!enterprise.parentCode) return { enterprise, parent: null };
    const parent = await orgs.findEnterprise(enterprise.parentCode);
    if (!parent || parent.status !== 'active') return undefined;
    return { enterprise, parent };
  }

  async function isRepresentative(personId: string, enterprise: Enterprise): Promise<boolean> {
    const reps = await orgs.listRepresentatives(enterprise.code);
    if (reps.includes(personId)) return true;
    return enterprise.parentCode ? (await orgs.listRepresentatives(enterprise.parentCode)).includes(personId) : false;
  }

  function delegationHolds(d: Delegation | undefined, clientId: string | null, at: number): d is Delegation {
    if (!d || d.revokedAt !== null) return false;
    if (d.until !== null && d.until <= at) return false;
    return d.portals === null || (clientId !== null && d.portals.includes(clientId));
  }

  /** May `personId` act for `code` at portal `clientId` now? (The rule in the header.) */
  async function accessFor(personId: string, code: string, clientId: string | null, at = now()): Promise<OrgAccess | undefined> {
    const chain = await activeChain(code);
    if (!chain) return undefined;
    const { enterprise } = chain;
    const base = { code, name: enterprise.name, parentCode: enterprise.parentCode };
    if (await isRepresentative(personId, enterprise)) return { ...base, role: LEGAL_REPRESENTATIVE, delegationExpires: null };
    const delegation = await orgs.findDelegation(code, personId);
    if (!delegationHolds(delegation, clientId, at)) return undefined;
    return { ...base, role: delegation.role, delegationExpires: delegation.until };
  }

  /** The enterprises a person may act for at a portal now, by code. */
  async function choicesFor(personId: string, clientId: string, at = now()): Promise<OrgAccess[]> {
    const codes = new Set<string>();
    for (const code of await orgs.representedBy(personId)) {
      codes.add(code);
      if (!parentOf(code)) for (const branch of await orgs.listBranches(code)) codes.add(branch.code);
    }
    for (const d of await orgs.delegationsOf(personId)) codes.add(d.enterpriseCode);
    const found: OrgAccess[] = [];
    for (const code of [...codes].sort()) {
      const access = await accessFor(personId, code, clientId, at);
      if (access) found.push(access);
    }
    return found;
  }

  /** Legal representatives of an enterprise (or of a branch's parent) manage its delegations. */
  async function canManage(personId: string, code: string): Promise<boolean> {
    const enterprise = await orgs.findEnterprise(code);
    return !!enterprise && enterprise.status !== 'dissolved' && (await isRepresentative(personId, enterprise));
  }

  /** Tokens issued for these grants stop working and their portals are told (durable jobs). */
  async function endAccess(grants: OrgGrant[], reason: string): Promise<number> {
    const t = now();
    for (const g of grants) {
      await deps.jobs.enqueue({
        id: `org-end:${g.grantId}`,
        kind: ORG_ACCESS_ENDED_JOB,
        payload: { grantId: g.grantId, clientId: g.clientId, personId: g.personId, sessionUid: g.sessionUid, reason },
        dueAt: t,
      }, t);
    }
    if (grants.length) deps.kick?.();
    return grants.length;
  }

  async function revokePerson(code: string, personId: string, actor: Actor): Promise<boolean> {
    if ('personId' in actor && !(await canManage(actor.personId, code))) throw new OrgInputError('only a legal representative of this enterprise may revoke', 'forbidden');
    const revoked = await orgs.revokeDelegation(code, personId, now());
    if (!revoked) return false;
    deps.audit.record('DELEGATION_REVOKED', { org: code, person: personId, ...actorDetails(actor) });
    await endAccess(await orgs.grantsFor(code, personId), 'delegation_revoked');
    return true;
  }

  /** What a person's account page shows: enterprises they manage (with delegations), and their own delegations. */
  async function overview(personId: string) {
    const managed: Array<{ enterprise: Enterprise; delegations: Array<Delegation & { name: string | null; pidTail: string | null }> }> = [];
    const codes = new Set<string>();
    for (const code of await orgs.representedBy(personId)) {
      codes.add(code);
      if (!parentOf(code)) for (const b of await orgs.listBranches(code)) codes.add(b.code);
    }
    for (const code of [...codes].sort()) {
      const enterprise = await orgs.findEnterprise(code);
      if (!enterprise || enterprise.status === 'dissolved') continue;
      const delegations = [];
      for (const d of await orgs.listDelegations(code)) {
        if (d.revokedAt !== null) continue;
        const p = await deps.persons.findById(d.personId);
        delegations.push({ ...d, name: p?.name ?? null, pidTail: p ? p.pid.slice(-3) : null });
      }
      managed.push({ enterprise, delegations });
    }
    const at = now();
    const mine = [];
    for (const d of await orgs.delegationsOf(personId)) {
      if (d.revokedAt !== null || (d.until !== null && d.until <= at)) continue;
      const enterprise = await orgs.findEnterprise(d.enterpriseCode);
      if (enterprise) mine.push({ ...d, enterpriseName: enterprise.name, status: enterprise.status });
    }
    return { managed, mine };
  }

  return {
    accessFor,
    choicesFor,
    overview,
    canManage,

    async register(input: { code: unknown; name: unknown; representatives: unknown[] }, actor: Actor): Promise<Enterprise> {
      const code = checkCode('--code', input.code);
      const name = checkName('--name', input.name);
      const parentCode = parentOf(code);
      if (parentCode) {
        const parent = await orgs.findEnterprise(parentCode);
        if (!parent) throw new OrgInputError(`--code ${code} is a branch of ${parentCode}, which is not registered: register the enterprise first`);
      } else if (input.representatives.length === 0) {
        throw new OrgInputError('--representative <pid> is required: an enterprise has a legal representative');
      }
      const people = [];
      for (const pid of input.representatives) people.push(await personByPid('--representative', pid));
      let enterprise: Enterprise;
      try {
        enterprise = await orgs.createEnterprise({ code, name, status: 'active', parentCode });
      } catch (err) {
        if (err instanceof StoreConflictError) throw new OrgInputError(`--code ${code} is already registered`);
        throw err;
      }
      for (const p of people) await orgs.addRepresentative(code, p.id);
      deps.audit.record('ORG_REGISTERED', { org: code, parent: parentCode, representatives: people.map((p) => p.id), ...actorDetails(actor) });
      return enterprise;
    },

    async setStatus(rawCode: unknown, status: 'active' | 'suspended' | 'dissolved', actor: Actor, reason?: string): Promise<Enterprise> {
      const code = checkCode('<code>', rawCode);
      const enterprise = await orgs.findEnterprise(code);
      if (!enterprise) throw new OrgInputError(`no enterprise with code ${code}`);
      await orgs.setEnterpriseStatus(code, status);
      deps.audit.record(status === 'active' ? 'ORG_REACTIVATED' : 'ORG_SUSPENDED', { org: code, status, reason: reason ?? null, ...actorDetails(actor) });
      if (status !== 'active') {
        // Its branches go with it: they act only through an active parent.
        const affected = [code, ...(parentOf(code) ? [] : (await orgs.listBranches(code)).map((b) => b.code))];
        for (const c of affected) await endAccess(await orgs.grantsFor(c), `org_${status}`);
      }
      return (await orgs.findEnterprise(code))!;
    },

    async delegate(input: DelegateInput, actor: Actor): Promise<Delegation> {
      const code = checkCode('--code', input.code);
      const role = checkRole('--role', input.role);
      const until = input.until === undefined || input.until === '' ? null : checkUntil('--until', input.until, now());
      const portals = input.portals && input.portals.length ? [...new Set(input.portals)] : null;
      for (const p of portals ?? []) if (!/^[A-Za-z0-9_-]{1,64}$/.test(p)) throw new OrgInputError(`--portal ${JSON.stringify(p)} is not a client id`);
      const enterprise = await orgs.findEnterprise(code);
      if (!enterprise) throw new OrgInputError(`no enterprise with code ${code}`);
      if (enterprise.status === 'dissolved') throw new OrgInputError(`${code} is dissolved`);
      if ('personId' in actor && !(await canManage(actor.personId, code))) throw new OrgInputError('only a legal representative of this enterprise may delegate', 'forbidden');
      if ('personId' in actor) await countAttempt(actor.personId);
      const person = 'personId' in actor ? await personByPidAndName(input.pid, input.fullName) : await personByPid('--pid', input.pid);
      if (await isRepresentative(person.id, enterprise)) throw new OrgInputError('this person is a legal representative of the enterprise already', 'already_representative');
      const before = await orgs.findDelegation(code, person.id);
      const delegation = await orgs.putDelegation({ enterpriseCode: code, personId: person.id, role, until, portals, grantedBy: actorLabel(actor) });
      // `role` here is the delegation's; an operator's own role goes as `operator_role`.
      const by = actorDetails(actor) as Record<string, string | boolean>;
      deps.audit.record('DELEGATION_GRANTED', {
        ...by, ...(typeof by.role === 'string' ? { operator_role: by.role } : {}),
        org: code, person: person.id, role, until: until === null ? null : new Date(until).toISOString(), portals: portals ?? null,
      });
      // A narrower delegation (another role, fewer portals, an earlier end) must not leave tokens
      // carrying the old one: they are ended, and the next sign-in picks the new terms.
      if (before && before.revokedAt === null) await endAccess(await orgs.grantsFor(code, person.id), 'delegation_changed');
      // The delegate hears of it on their own contacts: acting for an enterprise is not something
      // to learn about from someone else, and a mistaken delegation is noticed.
      await deps.tellDelegate?.(person.id, { enterprise: enterprise.name, code, role });
      if (until !== null) {
        await deps.jobs.enqueue({
          id: `delegation-expiry:${code}:${person.id}:${until}`, kind: DELEGATION_EXPIRY_JOB, payload: { code, personId: person.id, until }, dueAt: until,
        }, now());
      }
      return delegation;
    },

    async revoke(rawCode: unknown, pid: unknown, actor: Actor): Promise<boolean> {
      const code = checkCode('--code', rawCode);
      const person = await personByPid('--pid', pid);
      return revokePerson(code, person.id, actor);
    },

    /** Revokes by person id (the account page, which never shows full identification numbers). */
    async revokePerson(rawCode: unknown, personId: string, actor: Actor): Promise<boolean> {
      return revokePerson(checkCode('code', rawCode), personId, actor);
    },

    /** A delegation's end date has come: if it still ends then, its grants are ended (the sweep). */
    async endExpired(code: string, personId: string, until: number): Promise<number> {
      const d = await orgs.findDelegation(code, personId);
      if (!d || d.revokedAt !== null || d.until !== until || until > now()) return 0;
      deps.audit.record('DELEGATION_EXPIRED', { org: code, person: personId });
      return endAccess(await orgs.grantsFor(code, personId), 'delegation_expired');
    },

    async show(rawCode: unknown) {
      const code = checkCode('<code>', rawCode);
      const enterprise = await orgs.findEnterprise(code);
      if (!enterprise) throw new OrgInputError(`no enterprise with code ${code}`);
      const representatives = await Promise.all((await orgs.listRepresentatives(code)).map((id) => deps.persons.findById(id)));
      const delegations = await orgs.listDelegations(code);
      const people = new Map((await Promise.all(delegations.map((d) => deps.persons.findById(d.personId)))).filter((p) => !!p).map((p) => [p!.id, p!]));
      return {
        enterprise,
        branches: parentOf(code) ? [] : await orgs.listBranches(code),
        representatives: representatives.filter((p) => !!p).map((p) => ({ id: p!.id, pid: p!.pid, name: p!.name })),
        delegations: delegations.map((d) => ({ ...d, pid: people.get(d.personId)?.pid ?? null, name: people.get(d.personId)?.name ?? null })),
      };
    },

    list: (options: { limit: number; offset: number }) => orgs.listEnterprises(options),
  };
}
export type OrgService = ReturnType<typeof createOrgService>;
