/**
 * The console's enterprises and delegations, for the `helpdesk` role (orgs.read / orgs.act): the
 * registered enterprises, paged by code; finding one by its code (PRODUCT.md: 10 digits, or the
 * parent's 10 digits, a hyphen and 3 digits for a branch — an exact lookup, never a scan); one
 * enterprise's page (status, branches, legal representatives and delegations with masked numbers,
 * and when each delegation began, ends or was revoked); and the counter's changes — suspending and
 * reactivating an enterprise, revoking a delegation, and granting one.
 *
 * Every change goes through the OrgService (orgs/), the same code as `dinhdanh orgs`, with the
 * operator as `{ operator: <their person id> }` (recorded as `by: operator:<id>`): the service
 * applies the one rule of who may act for an enterprise, ends the tokens issued under a suspended
 * enterprise or a revoked delegation and tells their portals (durable jobs). The role is checked
 * on every route, GET and POST, whatever the page offered (OWASP ASVS 5.0 8.2.1, 8.3.1); granting
 * a delegation — letting someone act for an enterprise at every portal — also needs a second
 * factor proven in the last five minutes (ASVS 5.0 7.5.1 re-authentication before a sensitive
 * change). An operator never acts on an enterprise they represent or hold a delegation for, nor
 * delegates to themselves: the console's version of "not on one's own account" (separation of
 * duties, NIST SP 800-53 AC-5).
 *
 * Every action asks for a reason (`name="reason"`, 5–500 characters). The service's audit entries
 * carry it for suspensions and reactivations (ORG_SUSPENDED / ORG_REACTIVATED `reason`); its
 * DELEGATION_REVOKED and DELEGATION_GRANTED entries have no place for it yet, and the page says so
 * rather than pretend otherwise.
 *
 * The audit details of the org events name the enterprise under `org`, which the operators' audit
 * search cannot filter by; the enterprise's history shown here is what the store keeps: the
 * status with when it last changed, and each delegation with who granted it, since when, until when
 * and when it was revoked.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { SectionDeps } from '../admin.app.js';
import { PAGE_SIZE, pageNumber } from '../admin-http.js';
import { AdminError, actAs, actDetails, can, type Act, type Actor } from '../roles.js';
import { formatDate } from '../../account/account-http.js';
import { maskPid } from '../../accounts/index.js';
import { ENTERPRISE_CODE_RE, parentOf } from '../../orgs/index.js';
import type { Locale, MessageKey, Translate } from '../../http/i18n.js';
import type { Delegation, Enterprise, EnterpriseStatus } from '../../store/index.js';

/** Person ids are UUIDs; anything else is not a person (and never reaches a query). */
const PERSON_ID = /^[A-Za-z0-9-]{1,64}$/;
/** Branches listed on an enterprise's page (the count says how many more there are). */
const SHOWN_BRANCHES = 100;

/** The outcomes a redirect may name (fixed codes: nothing typed by anyone goes into a URL). */
const DONE = {
  suspended: 'admin.orgs.done.suspended',
  reactivated: 'admin.orgs.done.reactivated',
  revoked: 'admin.orgs.done.revoked',
  delegated: 'admin.orgs.done.delegated',
} as const satisfies Record<string, MessageKey>;
type Done = keyof typeof DONE;

const STATUS_TEXT = {
  active: 'admin.orgs.status.active',
  suspended: 'admin.orgs.status.suspended',
  dissolved: 'admin.orgs.status.dissolved',
} as const satisfies Record<EnterpriseStatus, MessageKey>;

// Every field a bounded string: a[$ne]=x, repeated or unknown fields are refused by the kit's
// strict form (400) before anything is looked up.
const reason = z.string().max(4000);
const FORMS = {
  search: { q: z.string().max(64) },
  reason: { reason },
  revoke: { person: z.string().max(64), reason },
  delegate: { pid: z.string().max(64), role: z.string().max(64), until: z.string().max(32).optional(), reason },
};

type Refusal = { code: string; status: number; detail: string };
type DelegationState = 'in_force' | 'ended' | 'revoked';

function delegationState(d: Delegation, at: number): DelegationState {
  if (d.revokedAt !== null) return 'revoked';
  return d.until !== null && d.until <= at ? 'ended' : 'in_force';
}

/**
 * A delegation's end as the operator gave it: `--until` / the form's date is the last day it holds,
 * ending at the next midnight in Vietnam (org.validation.ts checkUntil), so such an end is shown as
 * that day; any other end as the moment.
 */
function untilText(t: Translate, locale: Locale, until: number): string {
  const vietnam = until + 7 * 3600_000;
  return vietnam % 86_400_000 === 0 ? t('admin.orgs.through_day', { day: formatDate(until - 1, locale, false) }) : formatDate(until, locale);
}

/** An enterprise code as typed: spaces dropped; exactly PRODUCT.md's shapes, else undefined. */
function codeOf(raw: unknown): string | undefined {
  const q = typeof raw === 'string' ? raw.replace(/\s/g, '') : '';
  return ENTERPRISE_CODE_RE.test(q) ? q : undefined;
}

export function registerOrgRoutes(router: Router, deps: SectionDeps): void {
  const { kit } = deps;
  const orgsRepo = deps.store.orgs;
  const orgPath = (code: string) => `/admin/orgs/${encodeURIComponent(code)}`;
  const back = (ctx: Context) => {
    const code = codeOf(ctx.params.code);
    return code ? orgPath(code) : '/admin/orgs';
  };

  // ---- The list and the search -----------------------------------------------------------------

  async function listPage(ctx: Context, alert?: 'bad_code' | 'not_found', status = 200): Promise<void> {
    const page = pageNumber(ctx.query.page);
    const rows = await orgsRepo.listEnterprises({ limit: PAGE_SIZE + 1, offset: page * PAGE_SIZE });
    const shown = rows.slice(0, PAGE_SIZE);
    kit.page(ctx, 'admin/orgs', (t, locale) => ({
      title: t('admin.orgs.title'),
      alert: alert ? t(`admin.orgs.${alert}`) : null,
      rows: shown.map((e) => ({
        code: e.code,
        href: orgPath(e.code),
        name: e.name,
        status: e.status,
        statusText: t(STATUS_TEXT[e.status]),
        parent: e.parentCode,
        created: formatDate(e.createdAt, locale),
      })),
      first: page > 1 ? '/admin/orgs' : null,
      pager: {
        prev: page > 1 ? `/admin/orgs?page=${page - 1}` : page === 1 ? '/admin/orgs' : null,
        next: rows.length > PAGE_SIZE ? `/admin/orgs?page=${page + 1}` : null,
      },
    }), status);
  }

  async function find(ctx: Context, raw: unknown): Promise<void> {
    const code = codeOf(raw);
    if (!code) return listPage(ctx, 'bad_code', 400);
    const e = await orgsRepo.findEnterprise(code);
    if (!e) return listPage(ctx, 'not_found', 404);
    ctx.status = 303;
    ctx.redirect(orgPath(e.code));
  }

  router.get('/admin/orgs', kit.need('orgs.read'), async (ctx) => {
    if (ctx.query.q === undefined) return listPage(ctx);
    await find(ctx, ctx.query.q);
  });
  router.post('/admin/orgs', kit.need('orgs.read'), async (ctx) => {
    const form = await kit.readPost(ctx, FORMS.search);
    await find(ctx, form.q);
  });

  // ---- One enterprise --------------------------------------------------------------------------

  /**
   * Whether the operator has a stake in the enterprise: a legal representative of it or of its
   * parent, or holding a delegation for it or for its parent that has not been revoked. They may
   * read its page, not change it.
   */
  async function ownInterest(actor: Actor, e: Enterprise): Promise<boolean> {
    const codes = [e.code, ...(e.parentCode ? [e.parentCode] : [])];
    for (const c of codes) {
      const [reps, d] = await Promise.all([orgsRepo.listRepresentatives(c), orgsRepo.findDelegation(c, actor.id)]);
      if (reps.includes(actor.id) || (d && d.revokedAt === null)) return true;
    }
    return false;
  }

  /** The enterprise of the route, or the list page with the alert (400 malformed, 404 unknown). */
  async function enterpriseOf(ctx: Context): Promise<Enterprise | undefined> {
    const code = typeof ctx.params.code === 'string' && ENTERPRISE_CODE_RE.test(ctx.params.code) ? ctx.params.code : undefined;
    if (!code) {
      await listPage(ctx, 'bad_code', 400);
      return undefined;
    }
    const e = await orgsRepo.findEnterprise(code);
    if (!e) {
      await listPage(ctx, 'not_found', 404);
      return undefined;
    }
    return e;
  }

  /** An enterprise's page; after a refused action, with the refusal and its status. */
  async function orgPage(ctx: Context, e: Enterprise, extra: { refusal?: Refusal; done?: Done } = {}): Promise<void> {
    const actor = kit.actor(ctx);
    const at = kit.now();
    const isBranch = parentOf(e.code) !== null;
    const [repIds, allDelegations, branches, parent, interest] = await Promise.all([
      orgsRepo.listRepresentatives(e.code),
      // The repository lists an enterprise's delegations whole (no paging there); only the page's
      // people are looked up.
      orgsRepo.listDelegations(e.code),
      isBranch ? Promise.resolve([]) : orgsRepo.listBranches(e.code),
      e.parentCode ? orgsRepo.findEnterprise(e.parentCode) : Promise.resolve(undefined),
      ownInterest(actor, e),
    ]);
    const order: Record<DelegationState, number> = { in_force: 0, ended: 1, revoked: 2 };
    const sorted = allDelegations
      .map((d) => ({ d, state: delegationState(d, at) }))
      .sort((a, b) => order[a.state] - order[b.state] || a.d.createdAt - b.d.createdAt);
    const inForce = sorted.filter((x) => x.state === 'in_force').length;
    const pages = Math.max(1, Math.ceil(sorted.length / PAGE_SIZE));
    const page = Math.min(pageNumber(ctx.query.page), pages - 1);
    const slice = sorted.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
    const people = new Map((await Promise.all([...new Set([...repIds, ...slice.map((x) => x.d.personId)])].map((id) => deps.store.persons.findById(id))))
      .filter((p) => !!p).map((p) => [p!.id, p!]));
    const mayAct = can(actor.roles, 'orgs.act') && !interest;
    const base = orgPath(e.code);
    const status = extra.refusal?.status ?? 200;
    kit.page(ctx, 'admin/orgs-detail', (t: Translate, locale: Locale) => {
      const who = (id: string) => {
        const p = people.get(id);
        return { pid: p ? maskPid(p.pid) : '—', name: p?.name ?? t('admin.orgs.unknown_person') };
      };
      const grantedBy = (by: string) => {
        if (by.startsWith('operator:')) return t('admin.orgs.by_operator', { id: by.slice('operator:'.length) });
        const p = people.get(by);
        return p && repIds.includes(by) ? t('admin.orgs.by_representative', { name: p.name }) : by;
      };
      return {
        title: t('admin.orgs.detail_title', { code: e.code }),
        base,
        org: {
          code: e.code,
          name: e.name,
          status: e.status,
          statusText: t(STATUS_TEXT[e.status]),
          kind: isBranch ? t('admin.orgs.kind_branch') : t('admin.orgs.kind_enterprise'),
          parent: e.parentCode ? {
            code: e.parentCode, href: orgPath(e.parentCode),
            statusText: parent ? t(STATUS_TEXT[parent.status]) : t('admin.orgs.parent_missing'),
            inactive: !parent || parent.status !== 'active',
          } : null,
          created: formatDate(e.createdAt, locale),
          updated: formatDate(e.updatedAt, locale),
        },
        branches: branches.slice(0, SHOWN_BRANCHES).map((b) => ({ code: b.code, href: orgPath(b.code), name: b.name, status: b.status, statusText: t(STATUS_TEXT[b.status]) })),
        branchesMore: branches.length > SHOWN_BRANCHES ? t('admin.orgs.branches_more', { n: String(branches.length - SHOWN_BRANCHES) }) : null,
        representatives: repIds.map((id) => who(id)),
        delegationCount: t('admin.orgs.delegation_count', { in_force: String(inForce), other: String(sorted.length - inForce) }),
        delegations: slice.map(({ d, state }) => ({
          person: d.personId,
          ...who(d.personId),
          role: d.role,
          portals: d.portals === null ? t('admin.orgs.every_portal') : d.portals.join(', '),
          until: d.until === null ? t('admin.orgs.no_end') : untilText(t, locale, d.until),
          since: formatDate(d.createdAt, locale),
          grantedBy: grantedBy(d.grantedBy),
          state,
          stateText: state === 'revoked' ? t('admin.orgs.state.revoked', { at: formatDate(d.revokedAt!, locale) }) : t(`admin.orgs.state.${state}`),
        })),
        revocable: slice.filter((x) => x.state === 'in_force').map(({ d }) => ({ person: d.personId, text: `${who(d.personId).pid} · ${who(d.personId).name} · ${d.role}` })),
        pager: {
          prev: page > 0 ? (page === 1 ? base : `${base}?page=${page - 1}`) : null,
          next: page + 1 < pages ? `${base}?page=${page + 1}` : null,
        },
        interest,
        forms: mayAct ? {
          suspend: e.status === 'active',
          reactivate: e.status === 'suspended',
          revoke: slice.some((x) => x.state === 'in_force'),
          delegate: e.status !== 'dissolved',
        } : null,
        refusal: extra.refusal ?? null,
        done: extra.done ? t(DONE[extra.done]) : null,
      };
    }, status);
  }

  router.get('/admin/orgs/:code', kit.need('orgs.read'), async (ctx) => {
    const e = await enterpriseOf(ctx);
    if (!e) return;
    const done = typeof ctx.query.done === 'string' && Object.hasOwn(DONE, ctx.query.done) ? (ctx.query.done as Done) : undefined;
    await orgPage(ctx, e, { done });
  });

  // ---- Changes ---------------------------------------------------------------------------------

  /**
   * An action's route: the role (orgs.act), a fresh second factor for granting, a checked form,
   * the enterprise, the reason and the operator's stake, then the OrgService. Refusals (AdminError,
   * or input the service refused) show the enterprise's page again with the reason and its status;
   * success goes back to it (303) with a fixed outcome code.
   */
  function action<S extends z.ZodRawShape>(path: string, shape: S, dangerous: boolean, run: (act: Act, e: Enterprise, form: z.infer<z.ZodObject<S>>) => Promise<Done>): void {
    router.post(`/admin/orgs/:code/${path}`, kit.need('orgs.act'), ...(dangerous ? [kit.fresh(back)] : []), async (ctx) => {
      const form = await kit.readPost(ctx, shape);
      const e = await enterpriseOf(ctx);
      if (!e) return;
      let done: Done;
      try {
        const act = actAs(kit.actor(ctx), 'orgs.act', (form as { reason: string }).reason);
        if (await ownInterest(act.actor, e)) {
          throw new AdminError('forbidden', 'you represent this enterprise or hold a delegation for it: another operator acts on it');
        }
        done = await run(act, e, form);
      } catch (err) {
        const refusal = kit.refusal(err);
        await orgPage(ctx, (await orgsRepo.findEnterprise(e.code)) ?? e, { refusal });
        return;
      }
      ctx.status = 303;
      ctx.redirect(`${orgPath(e.code)}?done=${done}`);
    });
  }

  /** The OrgService's actor for an operator: their person id, role, door and reason in the audit details. */
  const asOperator = (act: Act) => ({ operator: act.actor.id, audit: actDetails(act) });

  action('suspend', FORMS.reason, false, async (act, e) => {
    if (e.status !== 'active') throw new AdminError('conflict', `the enterprise is ${e.status}: only an active enterprise can be suspended`);
    await deps.orgs.setStatus(e.code, 'suspended', asOperator(act), act.reason);
    return 'suspended';
  });

  action('reactivate', FORMS.reason, false, async (act, e) => {
    // A dissolved enterprise stays dissolved: only a suspension is lifted here.
    if (e.status !== 'suspended') throw new AdminError('conflict', `the enterprise is ${e.status}: only a suspended enterprise can be reactivated`);
    await deps.orgs.setStatus(e.code, 'active', asOperator(act), act.reason);
    return 'reactivated';
  });

  action('revoke', FORMS.revoke, false, async (act, e, form) => {
    if (!PERSON_ID.test(form.person)) throw new AdminError('invalid', 'choose a delegation to revoke');
    const d = await orgsRepo.findDelegation(e.code, form.person);
    if (!d) throw new AdminError('not_found', 'this person holds no delegation for this enterprise');
    if (d.revokedAt !== null) throw new AdminError('conflict', 'this delegation was revoked already');
    if (!(await deps.orgs.revokePerson(e.code, d.personId, asOperator(act)))) throw new AdminError('conflict', 'this delegation was revoked already');
    return 'revoked';
  });

  action('delegate', FORMS.delegate, true, async (act, e, form) => {
    const pid = form.pid.replace(/[\s.]/g, '');
    // Delegating to oneself is refused whatever the enterprise (a stake in it, made by oneself).
    if (/^\d{12}$/.test(pid) && (await deps.store.persons.findByPid(pid))?.id === act.actor.id) {
      throw new AdminError('forbidden', 'an operator does not delegate to themselves: another operator does it');
    }
    await deps.orgs.delegate({ code: e.code, pid, role: form.role.trim(), until: form.until?.trim() }, asOperator(act));
    return 'delegated';
  });
}
