/**
 * The console's operators pages (role `admin`): who may sign in to the console and in which roles.
 * An admin adds an operator, changes another operator's roles (compare-and-set on the revision the
 * page showed, so two admins editing at once cannot overwrite each other unseen) and proposes a
 * removal, which a second admin approves (approvals.service.ts: two-person control, NIST SP 800-53
 * AC-5). Nobody changes their own roles (ASVS 5.0 8.2.2: no one raises themself): the page does not
 * offer it, and operators.service.ts refuses it whatever is posted. Every change needs a reason
 * and a second factor proven in the last five minutes (kit.fresh).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { SectionDeps } from '../admin.app.js';
import { PAGE_SIZE, pageNumber } from '../admin-http.js';
import { AdminError, ROLES, actAs, can } from '../roles.js';
import { formatDate } from '../../account/account-http.js';
import { maskPid } from '../../accounts/index.js';
import type { MessageKey } from '../../http/i18n.js';
import type { OperatorRole, PersonRepository } from '../../store/index.js';

/**
 * One checkbox per role (`role_<role>=on`): forms are parsed with each key once (http/body.ts), so
 * a repeated `role` field would be refused as malformed.
 */
export const ROLE_FIELDS = {
  role_helpdesk: z.literal('on').optional(),
  role_integration: z.literal('on').optional(),
  role_keys: z.literal('on').optional(),
  role_auditor: z.literal('on').optional(),
  role_admin: z.literal('on').optional(),
};
type RoleForm = { [K in keyof typeof ROLE_FIELDS]?: 'on' };
const rolesOf = (form: RoleForm): OperatorRole[] => ROLES.filter((r) => form[`role_${r}`] === 'on');

/**
 * A reason as posted: its length is checked by the service (checkText, 5–500, with a message the
 * page shows); the schema only bounds what is read (the form body is capped at 16 KB anyway).
 */
export const REASON = z.string().max(5000);

/** Person ids are UUIDs; anything else cannot name an operator. */
const PERSON_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** The fixed outcomes a redirect may name (never user input in a URL). */
const DONE: Record<string, MessageKey> = {
  added: 'admin.operators.done.added',
  roles: 'admin.operators.done.roles',
  removed: 'admin.operators.done.removed',
};

/** Who an actor id is, for a page: an operator's name and masked number, or the command line. */
export interface Who {
  id: string;
  name: string;
  pid: string | null;
  cli: boolean;
}

/** Resolves actor ids (person ids or `cli:<name>`) to names, one lookup per distinct id. */
export function whoResolver(persons: PersonRepository): (id: string) => Promise<Who> {
  const seen = new Map<string, Promise<Who>>();
  return (id) => {
    let found = seen.get(id);
    if (!found) {
      found = id.startsWith('cli:') || !PERSON_ID.test(id)
        ? Promise.resolve({ id, name: id, pid: null, cli: true })
        : persons.findById(id).then((p) => ({ id, name: p?.name ?? '—', pid: p ? maskPid(p.pid) : null, cli: false }));
      seen.set(id, found);
    }
    return found;
  };
}

function doneKey(value: unknown): MessageKey | undefined {
  return typeof value === 'string' && Object.hasOwn(DONE, value) ? DONE[value] : undefined;
}

function seeOther(ctx: Context, location: string): void {
  ctx.status = 303;
  ctx.redirect(location);
}

export function registerOperatorRoutes(router: Router, deps: SectionDeps): void {
  const { kit } = deps;

  async function renderList(ctx: Context, page: number, extra: Record<string, unknown> = {}, status = 200): Promise<void> {
    const actor = kit.actor(ctx);
    const { total, operators } = await deps.operators.list({ limit: PAGE_SIZE, offset: page * PAGE_SIZE });
    const who = whoResolver(deps.store.persons);
    const adders = await Promise.all(operators.map((o) => who(o.addedBy)));
    const done = doneKey(ctx.query.done);
    kit.page(ctx, 'admin/operators', (t, locale) => ({
      title: t('admin.operators.title'),
      total,
      rows: operators.map((o, i) => ({
        personId: o.personId, pid: o.pid, name: o.name, level: o.level, status: o.status, roles: o.roles,
        addedBy: adders[i]!, addedAt: formatDate(o.addedAt, locale), self: o.personId === actor.id,
      })),
      canAct: can(actor.roles, 'operators.act'),
      roles: ROLES,
      form: { pid: '', roles: [] as OperatorRole[] },
      pager: {
        prev: page > 0 ? `/admin/operators?page=${page - 1}` : null,
        next: (page + 1) * PAGE_SIZE < total ? `/admin/operators?page=${page + 1}` : null,
      },
      ...(done ? { done: t(done) } : {}),
      ...extra,
    }), status);
  }

  async function renderOne(ctx: Context, personId: string, extra: Record<string, unknown> = {}, status = 200): Promise<void> {
    const actor = kit.actor(ctx);
    const op = PERSON_ID.test(personId) ? await deps.operators.show(personId) : undefined;
    if (!op) {
      kit.page(ctx, 'admin/operators-missing', (t) => ({
        title: t('admin.operators.missing'),
        refusal: { code: 'not_found', status: 404, detail: 'no such operator' },
      }), 404);
      return;
    }
    const who = whoResolver(deps.store.persons);
    const addedBy = await who(op.addedBy);
    // A removal already waiting for its second admin: shown, and not offered twice.
    const pendingRemoval = await deps.store.approvals.findPending('remove-operator', op.personId, kit.now());
    const done = doneKey(ctx.query.done);
    kit.page(ctx, 'admin/operators-show', (t, locale) => ({
      title: t('admin.operators.show_title', { name: op.name }),
      op: { ...op, addedBy, addedAt: formatDate(op.addedAt, locale) },
      self: op.personId === actor.id,
      canAct: can(actor.roles, 'operators.act'),
      roles: ROLES,
      pendingRemoval: pendingRemoval ? pendingRemoval.id : null,
      ...(done ? { done: t(done) } : {}),
      ...extra,
    }), status);
  }

  const personIdOf = (ctx: Context): string => String(ctx.params.personId ?? '');
  const backToOne = (ctx: Context): string => (PERSON_ID.test(personIdOf(ctx)) ? `/admin/operators/${personIdOf(ctx)}` : '/admin/operators');

  router.get('/admin/operators', kit.need('operators.read'), async (ctx) => {
    await renderList(ctx, pageNumber(ctx.query.page));
  });

  router.post('/admin/operators', kit.need('operators.act'), kit.fresh(() => '/admin/operators'), async (ctx) => {
    const form = await kit.readPost(ctx, { pid: z.string().max(40), ...ROLE_FIELDS, reason: REASON });
    const roles = rolesOf(form);
    // People type numbers with spaces (as printed on the card); the service checks 12 digits.
    const pid = form.pid.replace(/\s+/g, '');
    try {
      const act = actAs(kit.actor(ctx), 'operators.act', form.reason);
      const added = await deps.operators.add(act, pid, roles);
      seeOther(ctx, `/admin/operators/${encodeURIComponent(added.personId)}?done=added`);
    } catch (err) {
      const refusal = kit.refusal(err);
      await renderList(ctx, 0, { refusal, form: { pid: form.pid.slice(0, 40), roles } }, refusal.status);
    }
  });

  router.get('/admin/operators/:personId', kit.need('operators.read'), async (ctx) => {
    await renderOne(ctx, personIdOf(ctx));
  });

  router.post('/admin/operators/:personId/roles', kit.need('operators.act'), kit.fresh(backToOne), async (ctx) => {
    const form = await kit.readPost(ctx, { rev: z.string().regex(/^\d{1,10}$/), ...ROLE_FIELDS, reason: REASON });
    const personId = personIdOf(ctx);
    const rev = Number(form.rev);
    try {
      actAs(kit.actor(ctx), 'operators.act', form.reason);
      if (!PERSON_ID.test(personId)) throw new AdminError('not_found', 'no such operator');
      // Granting or taking away admin is proposed for a second admin; other roles change at once.
      const r = await deps.actions.operatorsAdmin.setRoles(kit.actor(ctx), personId, rev, rolesOf(form), form.reason);
      if (r.status === 'proposed') seeOther(ctx, `/admin/approvals/${encodeURIComponent(r.approval)}?done=proposed`);
      else seeOther(ctx, `/admin/operators/${encodeURIComponent(personId)}?done=roles`);
    } catch (err) {
      const refusal = kit.refusal(err);
      // The revision moved on: someone else changed the roles since this page was shown. The page
      // now shows the current roles (and revision), so the admin checks them before sending again.
      const now = refusal.code === 'conflict' && PERSON_ID.test(personId) ? await deps.operators.show(personId) : undefined;
      await renderOne(ctx, personId, { refusal, stale: now !== undefined && now.rev !== rev }, refusal.status);
    }
  });

  router.post('/admin/operators/:personId/remove', kit.need('operators.act'), kit.fresh(backToOne), async (ctx) => {
    const form = await kit.readPost(ctx, { reason: REASON });
    const personId = personIdOf(ctx);
    try {
      if (!PERSON_ID.test(personId)) throw new AdminError('not_found', 'no such operator');
      const r = await deps.actions.operatorsAdmin.remove(kit.actor(ctx), personId, form.reason);
      // From the console a removal is always a proposal for a second admin; `done` only for the
      // command line's bootstrap actor, kept for completeness.
      if (r.status === 'proposed') seeOther(ctx, `/admin/approvals/${encodeURIComponent(r.approval)}?done=proposed`);
      else seeOther(ctx, '/admin/operators?done=removed');
    } catch (err) {
      const refusal = kit.refusal(err);
      await renderOne(ctx, personId, { refusal }, refusal.status);
    }
  });
}
