/**
 * The console's signing-key pages, for the `keys` role (keys.read / keys.act): the keys in the
 * store with their states and dates (keys/signing-keys.ts: `next` keys are published before they
 * sign, the newest activated key of each algorithm is `active`, older ones `retiring` until
 * retired), a rotation, and the proposal to retire a key.
 *
 * - Rotating adds the next RS256 and ES256 keys, published at once and signing after the chosen
 *   delay — by default an hour, longer than portals' JWKS caches (our JWKS says max-age=600), so
 *   every portal holds a key before it meets a token signed with it (OpenID Connect Core §10.1.1:
 *   rotation by publishing the new key ahead of its use). This instance reloads its keys at once;
 *   the others within KEY_RELOAD_MS.
 * - Retiring stops publishing a key: tokens it signed stop verifying, so it is a two-person action
 *   (admin/actions.ts → approvals.service.ts), never the active key.
 *
 * Both are dangerous (a wrong rotation or retirement breaks every portal's sign-in): they need a
 * second factor proven in the last five minutes (kit.fresh; ASVS 5.0 7.5.1) and a reason, and are
 * refused to anyone without keys.act whatever the page offered (ASVS 5.0 8.2.1).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { SectionDeps } from '../admin.app.js';
import { AdminError, actAs, actDetails, can, type Act } from '../roles.js';
import { KeyRingError, parseDuration } from '../../keys/signing-keys.js';
import { formatDate } from '../../account/account-http.js';
import type { MessageKey, Translate } from '../../http/i18n.js';
import type { Requested } from '../approvals.service.js';

/** A key id: a JWK thumbprint in base64url (RFC 7638), as admin/actions.ts checks it. */
const KID = /^[A-Za-z0-9_-]{1,128}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The delays offered before new keys sign (parseDuration's syntax); `1h` is the default, as for `dinhdanh keys rotate` (DEFAULT_ACTIVATE_AFTER_MS). */
export const ACTIVATE_CHOICES = ['0', '15m', '1h', '1d'] as const;
const DEFAULT_CHOICE = '1h';

/** The outcomes a redirect may name (fixed codes: nothing typed goes into a URL). */
const DONE = { rotated: 'admin.keys.done.rotated', retired: 'admin.keys.done.retired' } as const satisfies Record<string, MessageKey>;
type DoneCode = keyof typeof DONE;

/** Retired keys listed (newest retirements first); the older ones are only counted. */
const SHOWN_RETIRED = 10;
/** How many pending proposals are looked through for retirements (they lapse after a day: few). */
const PENDING_SCAN = 50;

const reason = z.string().max(4000);
const FORMS = {
  rotate: { activate_after: z.string().max(20), reason },
  retire: { reason },
};

export function registerKeyRoutes(router: Router, deps: SectionDeps): void {
  const { kit } = deps;
  const back = () => '/admin/keys';

  type Extra = { refusal?: ReturnType<typeof kit.refusal>; done?: (t: Translate) => string };

  async function keysPage(ctx: Context, extra: Extra = {}): Promise<void> {
    const [keys, pending] = await Promise.all([
      deps.signingKeys.describe(),
      deps.actions.approvals.list({ state: 'pending', limit: PENDING_SCAN }),
    ]);
    const proposals = new Map(pending.filter((a) => a.action === 'retire-key').map((a) => [a.subject, a.id]));
    const act = can(kit.actor(ctx).roles, 'keys.act');
    const now = kit.now();
    const order = { active: 0, next: 1, retiring: 2, retired: 3 } as const;
    keys.sort((a, b) => order[a.state] - order[b.state] || (b.retired_at ?? '').localeCompare(a.retired_at ?? '') || b.activate_at.localeCompare(a.activate_at) || a.alg.localeCompare(b.alg));
    // Every rotation leaves two retired keys behind in the end: the most recently retired are enough here.
    const retired = keys.filter((k) => k.state === 'retired').length;
    const shown = keys.slice(0, keys.length - Math.max(0, retired - SHOWN_RETIRED));
    kit.page(ctx, 'admin/keys', (t, locale) => {
      const when = (iso: string | null) => (iso === null ? null : { iso, text: formatDate(Date.parse(iso), locale) });
      return {
        title: t('admin.keys.title'),
        keys: shown.map((k, i) => ({
          n: i,
          kid: k.kid,
          alg: k.alg,
          state: k.state,
          stateText: t(`admin.key_state.${k.state}`),
          origin: k.origin === 'development' ? t('admin.keys.origin_development') : k.origin === 'operator' ? t('admin.keys.origin_operator') : k.origin,
          created: when(k.created_at),
          activates: when(k.activate_at),
          retireAfter: when(k.retire_after),
          retired: when(k.retired_at),
          // Retiring before retire-after cuts off tokens it signed that are still live.
          early: k.state === 'retiring' && k.retire_after !== null && Date.parse(k.retire_after) > now,
          proposal: proposals.get(k.kid) ?? null,
          retirable: act && (k.state === 'next' || k.state === 'retiring') && !proposals.has(k.kid),
        })),
        olderRetired: retired > SHOWN_RETIRED ? t('admin.keys.older_retired', { n: String(retired - SHOWN_RETIRED) }) : null,
        act,
        choices: ACTIVATE_CHOICES.map((c) => ({ value: c, text: t(`admin.keys.after.${c}` as MessageKey), selected: c === DEFAULT_CHOICE })),
        refusal: extra.refusal ?? null,
        done: extra.done ? extra.done(t) : null,
      };
    }, extra.refusal?.status ?? 200);
  }

  router.get('/admin/keys', kit.need('keys.read'), async (ctx) => {
    const done = typeof ctx.query.done === 'string' ? ctx.query.done : undefined;
    const approval = typeof ctx.query.approval === 'string' && UUID.test(ctx.query.approval) ? ctx.query.approval : undefined;
    await keysPage(ctx, {
      done: done === 'proposed' && approval ? (t) => t('admin.proposed', { id: approval })
        : done !== undefined && Object.prototype.hasOwnProperty.call(DONE, done) ? (t) => t(DONE[done as DoneCode]) : undefined,
    });
  });

  router.post('/admin/keys/rotate', kit.need('keys.act'), kit.fresh(back), async (ctx) => {
    const form = await kit.readPost(ctx, FORMS.rotate);
    let act: Act;
    let delay: number;
    try {
      act = actAs(kit.actor(ctx), 'keys.act', form.reason);
      delay = activationDelay(form.activate_after);
    } catch (err) {
      await keysPage(ctx, { refusal: kit.refusal(err) });
      return;
    }
    const added = await deps.signingKeys.rotate(delay, deps.config.env === 'production' ? 'operator' : 'development');
    deps.audit.record('KEYS_ROTATED', {
      ...actDetails(act), kids: added.map((k) => k.kid), algs: added.map((k) => k.alg), activate_at: new Date(added[0]!.activateAt).toISOString(), activate_after_ms: delay,
    });
    await reload();
    ctx.status = 303;
    ctx.redirect('/admin/keys?done=rotated');
  });

  router.post('/admin/keys/:kid/retire', kit.need('keys.act'), kit.fresh(back), async (ctx) => {
    const form = await kit.readPost(ctx, FORMS.retire);
    const kid = ctx.params.kid;
    let result: Requested;
    try {
      if (typeof kid !== 'string' || !KID.test(kid)) throw new AdminError('not_found', 'no signing key with this id');
      result = await deps.actions.keys.retire(kit.actor(ctx), kid, form.reason);
    } catch (err) {
      await keysPage(ctx, { refusal: kit.refusal(err) });
      return;
    }
    ctx.status = 303;
    if (result.status === 'proposed') {
      // A proposal's id is ours (a UUID), not anything typed.
      ctx.redirect(`/admin/keys?done=proposed&approval=${encodeURIComponent(result.approval)}`);
      return;
    }
    await reload();
    ctx.redirect('/admin/keys?done=retired');
  });

  /** This instance picks up the change now; a failure here leaves it to the periodic reload. */
  async function reload(): Promise<void> {
    try {
      await deps.reloadKeys();
    } catch (err) {
      deps.logger.error({ err }, 'signing keys changed but not reloaded at once: the periodic reload will pick them up');
    }
  }
}

/** The delay before new keys sign: one of parseDuration's durations (at most 30 days). */
function activationDelay(value: string): number {
  try {
    return parseDuration(value);
  } catch (err) {
    if (err instanceof KeyRingError) throw new AdminError('invalid', 'the activation delay must be a duration such as 0, 15m, 1h or 1d (at most 30 days)');
    throw err;
  }
}
