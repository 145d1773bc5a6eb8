/**
 * The console's approvals pages (every operator reads them): the two-person control's proposals
 * (NIST SP 800-53 AC-5; SP 800-63A §5.3 for identity-proofing decisions) by state — pending,
 * approved, rejected, lapsed (24 hours without a decision) — newest first with a cursor, and one
 * proposal with everything the second operator needs to judge it: what, on whom, who proposed it
 * in which role, why and on what evidence. Approving or rejecting needs a reason and a fresh second
 * factor; the approve and reject buttons are shown only to an operator who may decide (holds the
 * action's role, did not propose it), and approvals.service.ts refuses anyone else whatever is
 * posted.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import type { SectionDeps } from '../admin.app.js';
import { PAGE_SIZE } from '../admin-http.js';
import type { ApprovalState, ApprovalView } from '../approvals.service.js';
import { AdminError, type Actor } from '../roles.js';
import { formatDate } from '../../account/account-http.js';
import type { Locale, MessageKey, Translate } from '../../http/i18n.js';
import { REASON, whoResolver, type Who } from './operators.js';

/** The tabs: each state, and all of them. */
const TABS = ['pending', 'approved', 'rejected', 'lapsed', 'all'] as const;
type Tab = (typeof TABS)[number];

/** Actions whose subject is a person id (the others name a portal's client id or a key id). */
const PERSON_SUBJECTS = new Set(['set-level-2', 'unlock-fraud', 'remove-operator']);

const ID = /^[0-9a-f-]{36}$/;
/** The cursor: the last row's creation time and id (`<ms>_<uuid>`), as the store pages by them. */
const CURSOR = /^(\d{1,16})_([0-9a-f-]{36})$/;

const DONE: Record<string, MessageKey> = {
  proposed: 'admin.proposed',
  approved: 'admin.approvals.done.approved',
  rejected: 'admin.approvals.done.rejected',
};

/** Why the current operator may not decide a proposal (undefined: they may). */
function whyNot(a: ApprovalView, actor: Actor): 'state' | 'own' | 'role' | undefined {
  if (a.state !== 'pending') return 'state';
  if (a.proposedBy === actor.id) return 'own';
  if (!actor.roles.some((r) => r === a.proposedRole)) return 'role';
  return undefined;
}

/** The parameters a second operator judges by, labelled; identification numbers stay masked. */
function paramRows(a: ApprovalView, t: Translate): Array<{ label: string; value: string }> {
  const p = a.params ?? {};
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const rows: Array<{ label: string; value: string }> = [];
  if (str(p.documentType)) rows.push({ label: t('admin.approvals.param.document_type'), value: str(p.documentType) });
  // The document's number identifies the person as much as their pid: only its end is shown.
  if (str(p.documentNumber)) rows.push({ label: t('admin.approvals.param.document_number'), value: `${'*'.repeat(Math.max(0, str(p.documentNumber).length - 4))}${str(p.documentNumber).slice(-4)}` });
  if (str(p.place)) rows.push({ label: t('admin.approvals.param.place'), value: str(p.place) });
  if (str(p.legalBasis)) rows.push({ label: t('admin.approvals.param.legal_basis'), value: str(p.legalBasis) });
  return rows;
}

export function registerApprovalRoutes(router: Router, deps: SectionDeps): void {
  const { kit } = deps;
  const approvals = deps.actions.approvals;

  /** What a page shows of proposals: names of the people involved looked up once each. */
  async function present(list: ApprovalView[], actor: Actor) {
    const who = whoResolver(deps.store.persons);
    const people = await Promise.all(list.map(async (a) => ({
      proposer: await who(a.proposedBy),
      decider: a.decidedBy ? await who(a.decidedBy) : null,
      subject: PERSON_SUBJECTS.has(a.action) ? await who(a.subject) : null,
    })));
    return (t: Translate, locale: Locale) => list.map((a, i) => {
      const { proposer, decider, subject } = people[i]!;
      return {
        id: a.id,
        action: a.action,
        subject: subject ? { ...subject, link: a.action === 'remove-operator' ? `/admin/operators/${a.subject}` : null } : { id: a.subject, name: a.subject, pid: null, cli: false, link: null },
        proposer,
        role: a.proposedRole,
        reason: a.reason,
        evidence: a.evidence,
        params: paramRows(a, t),
        state: a.state,
        created: formatDate(a.createdAt, locale),
        expires: formatDate(a.expiresAt, locale),
        decision: a.decidedAt !== null ? {
          by: decider as Who, role: a.decidedRole, at: formatDate(a.decidedAt, locale), reason: a.decisionReason, outcome: a.outcome,
        } : null,
        whyNot: whyNot(a, actor),
      };
    });
  }

  router.get('/admin/approvals', kit.need('approvals.read'), async (ctx) => {
    const tabIn = ctx.query.state === undefined ? 'pending' : ctx.query.state;
    const cursorIn = ctx.query.before;
    const m = typeof cursorIn === 'string' ? CURSOR.exec(cursorIn) : null;
    const tab = (TABS as readonly unknown[]).includes(tabIn) ? (tabIn as Tab) : undefined;
    if (!tab || (cursorIn !== undefined && !m)) {
      kit.page(ctx, 'admin/approvals', (t) => ({
        title: t('admin.approvals.title'), tabs: tabsFor('pending', t), tab: 'pending', rows: [], pager: {}, first: null,
        refusal: { code: 'invalid', status: 400, detail: 'unknown state or cursor' },
      }), 400);
      return;
    }
    const before = m ? { createdAt: Number(m[1]), id: m[2]! } : undefined;
    // One more than a page tells whether there is a next one.
    const found = await approvals.list({ ...(tab !== 'all' ? { state: tab as ApprovalState } : {}), ...(before ? { before } : {}), limit: PAGE_SIZE + 1 });
    const shown = found.slice(0, PAGE_SIZE);
    const last = shown[shown.length - 1];
    const rows = await present(shown, kit.actor(ctx));
    const done = typeof ctx.query.done === 'string' && Object.hasOwn(DONE, ctx.query.done) ? DONE[ctx.query.done] : undefined;
    kit.page(ctx, 'admin/approvals', (t, locale) => ({
      title: t('admin.approvals.title'),
      tab,
      tabs: tabsFor(tab, t),
      rows: rows(t, locale),
      // The store pages forwards from a cursor only: "newest" goes back to the first page.
      first: before ? `/admin/approvals?state=${tab}` : null,
      pager: { prev: null, next: found.length > PAGE_SIZE && last ? `/admin/approvals?state=${tab}&before=${last.createdAt}_${last.id}` : null },
      ...(done ? { done: t(done) } : {}),
    }));
  });

  function tabsFor(current: Tab, t: Translate) {
    return TABS.map((s) => ({ href: `/admin/approvals?state=${s}`, text: t(`admin.approvals.tab.${s}`), current: s === current }));
  }

  async function renderOne(ctx: Context, id: string, extra: Record<string, unknown> = {}, status = 200): Promise<void> {
    const a = await approvals.find(id);
    if (!a) {
      kit.page(ctx, 'admin/approvals-missing', (t) => ({
        title: t('admin.approvals.missing'),
        refusal: { code: 'not_found', status: 404, detail: 'no such proposal' },
      }), 404);
      return;
    }
    const rows = await present([a], kit.actor(ctx));
    const done = typeof ctx.query.done === 'string' && Object.hasOwn(DONE, ctx.query.done) ? DONE[ctx.query.done] : undefined;
    kit.page(ctx, 'admin/approvals-show', (t, locale) => ({
      title: t('admin.approvals.show_title'),
      a: rows(t, locale)[0],
      ...(done ? { done: done === 'admin.proposed' ? t(done, { id: a.id }) : t(done) } : {}),
      ...extra,
    }), status);
  }

  const idOf = (ctx: Context): string => String(ctx.params.id ?? '');
  const back = (ctx: Context): string => (ID.test(idOf(ctx)) ? `/admin/approvals/${idOf(ctx)}` : '/admin/approvals');

  router.get('/admin/approvals/:id', kit.need('approvals.read'), async (ctx) => {
    await renderOne(ctx, idOf(ctx));
  });

  // Deciding needs no permission of its own beyond reading: it needs the proposed action's role,
  // which approvals.service.ts checks (with "not the proposer", the state and the 24 hours).
  for (const decision of ['approve', 'reject'] as const) {
    router.post(`/admin/approvals/:id/${decision}`, kit.need('approvals.read'), kit.fresh(back), async (ctx) => {
      const form = await kit.readPost(ctx, { reason: REASON });
      const id = idOf(ctx);
      try {
        if (!ID.test(id)) throw new AdminError('not_found', 'no such proposal');
        const decided = await approvals[decision](kit.actor(ctx), id, form.reason);
        ctx.status = 303;
        ctx.redirect(`/admin/approvals/${decided.id}?done=${decision === 'approve' ? 'approved' : 'rejected'}`);
      } catch (err) {
        const refusal = kit.refusal(err);
        await renderOne(ctx, id, { refusal }, refusal.status);
      }
    });
  }
}
