/**
 * The console's accounts pages, for the `helpdesk` role (accounts.read / accounts.act): find an
 * account by its personal identification number (an exact, indexed lookup — never a scan), see its
 * state, contacts, second factors, live sessions, the operators' recorded actions, the proposals
 * waiting on it and its history from the audit log; lock (also for suspected fraud), unlock, reset
 * the second factors, set the identity level and clear the attention flag.
 *
 * Every change goes through the operators' one door (admin/actions.ts: the role, "not on your own
 * account", two-person control for raising to level 2 and for lifting a fraud lock), which applies
 * the account-state table (accounts/account-state.ts). The role is checked on every route, GET and
 * POST, whatever the page offered (OWASP ASVS 5.0 8.2.1, 8.3.1); resetting second factors and
 * changing the level also need a second factor proven in the last five minutes (NIST SP 800-63B
 * §6.1.2.3 re-verification; ASVS 5.0 7.5.1 re-authentication before a sensitive change).
 *
 * The search form posts the number (it stays out of URLs and browser history: ARCHITECTURE.md rule
 * 9 keeps full numbers out of logs); a GET with `?q=` is answered the same way for bookmarks and
 * scripts. Operators see the operator's id and reason in the history; the citizen's own activity
 * page shows only the role (activity/activity.service.ts).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { SectionDeps } from '../admin.app.js';
import { formatDate } from '../../account/account-http.js';
import { AccountAdminError, AccountStateError, maskPid, stateOf } from '../../accounts/index.js';
import { describeDevice, describeNetwork } from '../../activity/devices.js';
import { createSessionDirectory } from '../../provider/account-session.js';
import { AppError } from '../../http/errors.js';
import type { Locale, MessageKey, Translate } from '../../http/i18n.js';
import type { AuditEntry, Person } from '../../store/index.js';
import type { Requested } from '../approvals.service.js';
import { AdminError, ROLES, can, type Actor } from '../roles.js';
import { PAGE_SIZE } from '../admin-http.js';

/** Person ids are UUIDs; anything else is not an account (and never reaches a query). */
const ID = /^[A-Za-z0-9-]{1,64}$/;
const PID = /^\d{12}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The outcomes a redirect may name (fixed codes: nothing typed by anyone goes into a URL). */
const DONE = ['locked', 'locked_fraud', 'unlocked', 'level', 'mfa_reset', 'attention_cleared'] as const;
type Done = (typeof DONE)[number];

/** How many recent history lines the account page shows (the history page pages through all). */
const RECENT_HISTORY = 10;
/** How many live sessions and recorded actions the page lists (the count covers all of them). */
const SHOWN_SESSIONS = 25;
const SHOWN_RECORDED = 25;
/** The pending proposals looked through for this account's (newest first; bounded). */
const PENDING_SCAN = 50;

/** Audit details worth a column on the history page: short codes and numbers, never an address or a secret. */
const DETAIL_KEYS = [
  'lock_reason', 'was', 'from', 'to', 'sessions_ended', 'factors_removed', 'document_type', 'document', 'place',
  'approval', 'approved_by', 'approver_role', 'break_glass', 'bootstrap', 'portal', 'acr', 'method', 'kind', 'channel', 'type', 'why',
] as const;

const KNOWN_ACTIONS = new Set(['lock', 'lock-for-fraud', 'unlock', 'set-level', 'reset-mfa', 'clear-attention', 'set-level-2', 'unlock-fraud']);

const reason = z.string().max(4000);
const FORMS = {
  search: { q: z.string().max(64) },
  reason: { reason },
  resetMfa: { reason, evidence: z.string().max(4000) },
  level: {
    level: z.enum(['1', '2']),
    reason,
    document_type: z.string().max(64).optional(),
    document_number: z.string().max(64).optional(),
    place: z.string().max(1000).optional(),
  },
};

export function registerAccountRoutes(router: Router, deps: SectionDeps): void {
  const { kit } = deps;
  const sessions = createSessionDirectory(deps.store, kit.now);
  const accountPath = (id: string) => `/admin/accounts/${encodeURIComponent(id)}`;
  const back = (ctx: Context) => (typeof ctx.params.id === 'string' && ID.test(ctx.params.id) ? accountPath(ctx.params.id) : '/admin/accounts');

  async function personOf(ctx: Context): Promise<Person> {
    const id = ctx.params.id;
    const p = typeof id === 'string' && ID.test(id) ? await deps.store.persons.findById(id) : undefined;
    if (!p) throw new AppError('account_not_found', 404, 'error.not_found');
    return p;
  }

  function searchPage(ctx: Context, alert?: 'bad_q' | 'not_found' | 'use_form', status = 200): void {
    kit.page(ctx, 'admin/accounts', (t) => ({ title: t('admin.accounts.title'), alert: alert ? t(`admin.accounts.${alert}`) : null }), status);
  }

  async function find(ctx: Context, raw: unknown): Promise<void> {
    const q = typeof raw === 'string' ? raw.replace(/[\s.]/g, '') : '';
    if (!PID.test(q)) return searchPage(ctx, 'bad_q', 400);
    const p = await deps.store.persons.findByPid(q);
    if (!p) return searchPage(ctx, 'not_found', 404);
    ctx.status = 303;
    ctx.redirect(accountPath(p.id));
  }

  // The number is searched only through the form's POST: in a URL it would stay in proxies' access
  // logs and the browser's history (ASVS 5.0 14.2.1: sensitive data not in URLs).
  router.get('/admin/accounts', kit.need('accounts.read'), async (ctx) => {
    if (ctx.query.q !== undefined) return searchPage(ctx, 'use_form', 400);
    searchPage(ctx);
  });
  router.post('/admin/accounts', kit.need('accounts.read'), async (ctx) => {
    const form = await kit.readPost(ctx, FORMS.search);
    await find(ctx, form.q);
  });

  /** The account page; after a refused action, with the refusal and its status. */
  async function accountPage(ctx: Context, p: Person, extra: { refusal?: ReturnType<typeof kit.refusal>; done?: (t: Translate) => string } = {}): Promise<void> {
    const actor = kit.actor(ctx);
    const [shown, live, pending, history] = await Promise.all([
      deps.accountAdmin.show(p.pid),
      sessions.list(p.id),
      deps.actions.approvals.list({ state: 'pending', limit: PENDING_SCAN }),
      deps.store.audit.search({ person: p.id, limit: RECENT_HISTORY + 1 }),
    ]);
    const state = stateOf(p);
    const own = p.id === actor.id;
    const act = !own && can(actor.roles, 'accounts.act');
    kit.page(ctx, 'admin/account', (t, locale) => ({
      title: t('admin.accounts.account_title', { pid: shown.pid }),
      base: accountPath(p.id),
      account: {
        pid: shown.pid,
        name: shown.name,
        level: t('admin.accounts.level_value', { level: String(shown.level) }),
        state,
        stateText: t(`admin.accounts.state.${state.replace(':', '_')}` as MessageKey),
        attention: p.attention ? t('admin.accounts.attention_not_me', { at: formatDate(p.attention.at, locale) }) : null,
        passwordResetRequired: shown.password_reset_required,
        accountReset: shown.account_reset ? t('admin.accounts.account_reset', {
          status: t(shown.account_reset.status === 'ready' ? 'admin.accounts.reset_ready' : 'admin.accounts.reset_pending'),
          requested: formatDate(Date.parse(shown.account_reset.requested_at), locale),
          ready: formatDate(Date.parse(shown.account_reset.ready_at), locale),
        }) : null,
        created: formatDate(p.createdAt, locale),
      },
      contacts: shown.contacts.map((c) => ({
        kind: t(c.kind === 'phone' ? 'admin.accounts.contact_phone' : 'admin.accounts.contact_email'),
        value: c.value,
        verified: t(c.verified ? 'admin.accounts.verified' : 'admin.accounts.unverified'),
      })),
      factors: shown.factors.map((f) => ({
        kind: f.type === 'totp' ? t('admin.accounts.factor_totp') : f.type === 'passkey' ? t('admin.accounts.factor_passkey') : f.type,
        label: f.label ?? '',
        added: formatDate(Date.parse(f.created_at), locale),
      })),
      recoveryLeft: t('admin.accounts.recovery_left', { n: String(shown.recovery_codes_left) }),
      sessions: {
        count: t('admin.accounts.sessions_count', { n: String(live.length) }),
        rows: live.slice(0, SHOWN_SESSIONS).map((s) => ({
          started: formatDate(s.startedAt, locale), lastUsed: formatDate(s.lastUsedAt, locale),
          device: describeDevice(s.userAgent), network: s.ip ? describeNetwork(s.ip) : '—', portals: String(s.portals.length),
        })),
        more: live.length > SHOWN_SESSIONS ? t('admin.accounts.sessions_more', { n: String(live.length - SHOWN_SESSIONS) }) : null,
      },
      recordedHint: t('admin.accounts.recorded_hint', { n: String(SHOWN_RECORDED) }),
      recorded: shown.actions.slice(-SHOWN_RECORDED).reverse().map((a) => ({
        action: actionName(t, a.action),
        operator: a.operator,
        reason: a.reason,
        evidence: describeEvidence(a.evidence),
        at: formatDate(Date.parse(a.at), locale),
      })),
      pending: pending.filter((a) => a.subject === p.id).map((a) => ({
        id: a.id,
        action: actionName(t, a.action),
        proposedBy: a.proposedBy,
        reason: a.reason,
        at: formatDate(a.createdAt, locale),
        expires: formatDate(a.expiresAt, locale),
      })),
      history: history.slice(0, RECENT_HISTORY).map((e) => historyRow(t, locale, e)),
      historyMore: history.length > RECENT_HISTORY,
      own,
      forms: act ? {
        lock: state !== 'locked:operator' && state !== 'locked:fraud',
        fraud: state !== 'locked:fraud',
        unlock: state !== 'active',
        unlockProposal: state === 'locked:fraud',
        raise: p.level === 1,
        lower: p.level === 2,
        attention: p.attention !== null,
      } : null,
      documentTypes: ['cccd', 'cccd-chip', 'can-cuoc', 'passport'].map((d) => ({ value: d, text: t(`admin.accounts.doc.${d}` as MessageKey) })),
      refusal: extra.refusal ?? null,
      done: extra.done ? extra.done(t) : null,
    }), extra.refusal?.status ?? 200);
  }

  router.get('/admin/accounts/:id', kit.need('accounts.read'), async (ctx) => {
    const p = await personOf(ctx);
    // Operators' reading of personal data is itself recorded (ASVS 5.0 16.2.1; Decree 13/2023/ND-CP
    // on personal data processing): who opened whose account, in which role.
    const viewer = kit.state(ctx);
    deps.audit.record('ACCOUNT_VIEWED', { operator: viewer.actor.id, role: kit.roleFor(ctx, 'accounts.read') ?? 'helpdesk', via: 'console', person: p.id });
    const done = typeof ctx.query.done === 'string' ? ctx.query.done : undefined;
    const approval = typeof ctx.query.approval === 'string' && UUID.test(ctx.query.approval) ? ctx.query.approval : undefined;
    await accountPage(ctx, p, {
      done: done === 'proposed' && approval ? (t) => t('admin.proposed', { id: approval })
        : done && (DONE as readonly string[]).includes(done) ? (t) => t(`admin.accounts.done.${done as Done}`) : undefined,
    });
  });

  router.get('/admin/accounts/:id/history', kit.need('accounts.read'), async (ctx) => {
    const p = await personOf(ctx);
    const raw = ctx.query.before;
    const before = typeof raw === 'string' && /^\d{1,15}$/.test(raw) ? Number(raw) : undefined;
    const rows = await deps.store.audit.search({ person: p.id, ...(before !== undefined ? { beforeSeq: before } : {}), limit: PAGE_SIZE + 1 });
    const page = rows.slice(0, PAGE_SIZE);
    const last = page[page.length - 1];
    const base = accountPath(p.id);
    kit.page(ctx, 'admin/accounts-history', (t, locale) => ({
      title: t('admin.accounts.history_title', { pid: maskPid(p.pid) }),
      base,
      rows: page.map((e) => historyRow(t, locale, e)),
      pager: {
        prev: before !== undefined ? `${base}/history` : null,
        next: rows.length > PAGE_SIZE && last ? `${base}/history?before=${last.seq}` : null,
      },
      prevText: t('admin.accounts.history_newest'),
    }));
  });

  /**
   * An action's route: the role (accounts.act), a fresh second factor for the dangerous ones, a
   * checked form, then the operators' door. Refusals (AdminError, or a change the state table does
   * not allow) show the account page again with the reason; success goes back to it (303).
   */
  function action<S extends z.ZodRawShape>(path: string, shape: S, dangerous: boolean, run: (actor: Actor, p: Person, form: z.infer<z.ZodObject<S>>) => Promise<Done | { approval: string }>): void {
    router.post(`/admin/accounts/:id/${path}`, kit.need('accounts.act'), ...(dangerous ? [kit.fresh(back)] : []), async (ctx) => {
      const form = await kit.readPost(ctx, shape);
      const p = await personOf(ctx);
      let result: Done | { approval: string };
      try {
        result = await run(kit.actor(ctx), p, form);
      } catch (err) {
        const refusal = kit.refusal(asAdminError(err));
        await accountPage(ctx, (await deps.store.persons.findById(p.id)) ?? p, { refusal });
        return;
      }
      ctx.status = 303;
      // A proposal's id is ours (a UUID), not anything typed.
      ctx.redirect(typeof result === 'string' ? `${accountPath(p.id)}?done=${result}` : `${accountPath(p.id)}?done=proposed&approval=${encodeURIComponent(result.approval)}`);
    });
  }

  /** What the door answered: carried out (a fixed code), or proposed to a second operator. */
  const outcome = (code: Done) => (r: Requested): Done | { approval: string } => (r.status === 'proposed' ? { approval: r.approval } : code);

  action('lock', FORMS.reason, false, async (actor, p, f) => outcome('locked')(await deps.actions.accounts.lock(actor, p.pid, f.reason)));
  action('lock-fraud', FORMS.reason, false, async (actor, p, f) => outcome('locked_fraud')(await deps.actions.accounts.lock(actor, p.pid, f.reason, { fraud: true })));
  action('unlock', FORMS.reason, false, async (actor, p, f) => outcome('unlocked')(await deps.actions.accounts.unlock(actor, p.pid, f.reason)));
  action('reset-mfa', FORMS.resetMfa, true, async (actor, p, f) => outcome('mfa_reset')(await deps.actions.accounts.resetMfa(actor, p.pid, f.reason, f.evidence)));
  action('level', FORMS.level, true, async (actor, p, f) => outcome('level')(await deps.actions.accounts.setLevel(actor, p.pid, f.level, f.reason, {
    ...(f.document_type !== undefined ? { documentType: f.document_type } : {}),
    ...(f.document_number !== undefined ? { documentNumber: f.document_number } : {}),
    ...(f.place !== undefined ? { place: f.place } : {}),
  })));
  action('clear-attention', FORMS.reason, false, async (actor, p, f) => outcome('attention_cleared')(await deps.actions.accounts.clearAttention(actor, p.pid, f.reason)));
}

/** A refusal from below the door (the state table, the account service) as the console shows one. */
function asAdminError(err: unknown): unknown {
  if (err instanceof AccountStateError) return new AdminError('conflict', err.message);
  if (err instanceof AccountAdminError) return new AdminError(/^this account is not/.test(err.message) ? 'conflict' : 'invalid', err.message);
  return err;
}

function actionName(t: Translate, action: string): string {
  return KNOWN_ACTIONS.has(action) ? t(`admin.accounts.act.${action}` as MessageKey) : action;
}

/** Recorded evidence as one line (its values are short: a document type, a masked number, a place, a note). */
function describeEvidence(evidence: Record<string, unknown>): string {
  return Object.entries(evidence)
    .filter(([, v]) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')
    .map(([k, v]) => `${k}: ${String(v)}`)
    .join(' · ');
}

/** One audit entry as a history line: what, when, and — for an operator's act — who, in which role, through which door, why. */
function historyRow(t: Translate, locale: Locale, e: AuditEntry) {
  const d = e.details;
  const s = (k: string): string | undefined => {
    const v = d[k];
    return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
  };
  const role = s('role');
  const via = s('via');
  return {
    seq: e.seq,
    event: e.event,
    at: formatDate(e.at, locale),
    iso: new Date(e.at).toISOString(),
    operator: s('operator') ?? '',
    role: role && (ROLES as readonly string[]).includes(role) ? t(`admin.role.${role}` as MessageKey) : role ?? '',
    via: via === 'console' ? t('admin.accounts.via_console') : via === 'cli' ? t('admin.accounts.via_cli') : via ?? '',
    reason: s('reason') ?? '',
    detail: DETAIL_KEYS.filter((k) => s(k) !== undefined).map((k) => `${k}: ${s(k)}`).join(' · '),
  };
}
