/**
 * The console's portals and resource servers (role `integration`): the registry, paged; one
 * portal's registration, approvals and recent audit entries; and the integration operator's
 * changes — registering a portal, editing its redirect, post-logout and back-channel logout URIs,
 * disabling and enabling it, rotating its secret, and approving `national_id` (two-person) or
 * `offline_access` with a legal basis.
 *
 * Every change goes through the same validation as `dinhdanh portals add` (portal.validation.ts:
 * redirect URIs byte for byte, https outside loopback development, no fragment or credentials —
 * RFC 9700 §4.1.3), is recorded in the audit chain with the operator, the role they acted in, the
 * door (`via: console`) and their reason, and is refused to a role without `portals.act`, whatever
 * the page offered (OWASP ASVS 5.0 8.2.1). A new client secret appears once, in the response page
 * (no-store), never in a URL or a log (RFC 6749 §10.1: the client's credentials stay confidential).
 *
 * The console's own client (`dinhdanh-console`) is listed as first-party and offers no action:
 * the server registers it itself, and disabling it or changing its URIs would lock every operator
 * out of the console.
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { SectionDeps } from '../admin.app.js';
import { PAGE_SIZE } from '../admin-http.js';
import { CONSOLE_CLIENT_ID } from '../console-client.js';
import { AdminError, actAs, actDetails, can, type Act } from '../roles.js';
import { formatDate } from '../../account/account-http.js';
import {
  CLIENT_ID_RE, PortalValidationError, summarise, validatePortalInput, type PortalInput, type PortalSummary,
} from '../../portals/index.js';
import type { Locale, MessageKey, Translate } from '../../http/i18n.js';
import type { AuditEntry, Portal } from '../../store/index.js';
import { funnelChart, portalFunnel } from './usage.js';

/** At most this many URIs of one kind per portal (a portal has a handful; a form is 16 kB at most). */
const MAX_URIS = 20;
const LONG_TEXT = 4000;
const SHORT_TEXT = 2000;

/**
 * Grace periods offered when rotating a secret: the old secret keeps working this long, so the
 * portal's instances can move to the new one without an outage. 24 hours by default; 0 when the
 * old secret leaked (it must stop at once).
 */
export const GRACE_PERIODS = { '0': 0, '1h': 3600_000, '24h': 24 * 3600_000, '7d': 7 * 24 * 3600_000 } as const;
export type GraceChoice = keyof typeof GRACE_PERIODS;
export const DEFAULT_GRACE: GraceChoice = '24h';

/** The outcomes a redirect after a change may name (never user input in a URL). */
const DONE = {
  updated: 'admin.portals.done.updated',
  disabled: 'admin.portals.done.disabled',
  enabled: 'admin.portals.done.enabled',
  national_id: 'admin.portals.done.national_id',
  offline_access: 'admin.portals.done.offline_access',
  proposed: 'admin.portals.done.proposed',
} as const satisfies Record<string, MessageKey>;
type DoneCode = keyof typeof DONE;

const REGISTER_FORM = {
  name: z.string().max(SHORT_TEXT),
  redirect_uris: z.string().max(LONG_TEXT),
  post_logout_redirect_uris: z.string().max(LONG_TEXT).optional(),
  backchannel_logout_uri: z.string().max(SHORT_TEXT).optional(),
  grant_refresh_token: z.literal('on').optional(),
  grant_client_credentials: z.literal('on').optional(),
  sector: z.string().max(SHORT_TEXT).optional(),
  reason: z.string().max(SHORT_TEXT),
};
const URIS_FORM = {
  redirect_uris: z.string().max(LONG_TEXT),
  post_logout_redirect_uris: z.string().max(LONG_TEXT).optional(),
  backchannel_logout_uri: z.string().max(SHORT_TEXT).optional(),
  reason: z.string().max(SHORT_TEXT),
};
const REASON_FORM = { reason: z.string().max(SHORT_TEXT) };
const APPROVE_FORM = { legal_basis: z.string().max(SHORT_TEXT), reason: z.string().max(SHORT_TEXT) };
const ROTATE_FORM = { grace: z.enum(Object.keys(GRACE_PERIODS) as [GraceChoice, ...GraceChoice[]]), reason: z.string().max(SHORT_TEXT) };

/** What a refused form gave, to fill the form in again (escaped by the templates). */
type FormValues = Record<string, string | boolean>;

/** One URI per line; blank lines and surrounding spaces ignored (a URI holds no whitespace). */
function lines(value: string | undefined, what: string): string[] {
  const list = (value ?? '').split(/\r\n|\r|\n/).map((l) => l.trim()).filter(Boolean);
  if (list.length > MAX_URIS) throw new AdminError('invalid', `at most ${MAX_URIS} ${what}`);
  return list;
}
const optional = (value: string | undefined) => (value?.trim() ? value.trim() : undefined);

/** A portal validation failure is the operator's input being refused: AdminError('invalid'). */
function asAdminError(err: unknown): unknown {
  return err instanceof PortalValidationError ? new AdminError('invalid', err.message) : err;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** The audit details shown on a portal's page: who acted, how and why; never a person's identifiers. */
const SHOWN_DETAILS = ['operator', 'role', 'via', 'reason', 'change', 'changed', 'scope', 'legal_basis', 'approved_by', 'approval', 'grace_seconds', 'records_ended'] as const;

export function registerPortalRoutes(router: Router, deps: SectionDeps): void {
  const { kit } = deps;
  const production = () => deps.config.env === 'production';
  const backTo = (ctx: Context) => {
    const id = ctx.params.clientId;
    return typeof id === 'string' && CLIENT_ID_RE.test(id) ? `/admin/portals/${id}` : '/admin/portals';
  };

  async function findPortal(clientId: unknown): Promise<Portal> {
    const portal = typeof clientId === 'string' && CLIENT_ID_RE.test(clientId) ? await deps.store.portals.find(clientId) : undefined;
    if (!portal) throw new AdminError('not_found', 'no portal or resource server with this client id');
    return portal;
  }

  /** A portal an operator may change: not the console's own client. */
  async function changeable(clientId: unknown, what: 'portal' | 'any' = 'any'): Promise<{ portal: Portal; summary: PortalSummary }> {
    const portal = await findPortal(clientId);
    if (portal.clientId === CONSOLE_CLIENT_ID) throw new AdminError('forbidden', 'the console\'s own client is first-party: the server registers and keeps it');
    const summary = summarise(portal);
    if (what === 'portal' && summary.kind !== 'portal') throw new AdminError('invalid', 'a resource server has no redirect URIs or approvals: this applies to portals only');
    return { portal, summary };
  }

  /** The portal's registration as validation input again, so an edit is checked exactly as a registration. */
  function inputOf(portal: Portal, summary: PortalSummary, edits: Partial<Pick<PortalInput, 'redirectUris' | 'postLogoutRedirectUris'>> & { backchannelLogoutUri?: string | null }) {
    const backchannel = edits.backchannelLogoutUri !== undefined ? edits.backchannelLogoutUri : summary.backchannel_logout_uri;
    return validatePortalInput({
      name: summary.name,
      redirectUris: edits.redirectUris ?? summary.redirect_uris,
      postLogoutRedirectUris: edits.postLogoutRedirectUris ?? summary.post_logout_redirect_uris,
      ...(backchannel ? { backchannelLogoutUri: backchannel } : {}),
      grantTypes: summary.grant_types,
      // The sector stays: the pairwise subjects portals know people by must not change (OIDC Core §8.1).
      sector: summary.sector,
      nationalId: summary.national_id,
      ...(portal.nationalIdBasis ? { legalBasis: portal.nationalIdBasis } : {}),
      authMethod: summary.auth_method,
      ...(summary.jwks_uri ? { jwksUri: summary.jwks_uri } : {}),
      ...(portal.metadata.jwks !== undefined ? { jwks: portal.metadata.jwks } : {}),
      fapi: summary.fapi,
      offlineAccess: summary.offline_access,
      signingAlg: summary.id_token_alg,
    }, { production: production() });
  }

  function auditRow(e: AuditEntry, locale: Locale) {
    const d = e.details as Record<string, unknown>;
    const shown = SHOWN_DETAILS.filter((k) => d[k] !== undefined && d[k] !== null)
      .map((k) => ({ key: k, value: Array.isArray(d[k]) ? (d[k] as unknown[]).map(String).join(', ') : String(d[k]) }));
    return { at: formatDate(e.at, locale), event: e.event, details: shown };
  }

  /** One portal's page: its registration, approvals, actions (for portals.act) and recent audit entries. */
  async function showPortal(ctx: Context, clientId: unknown, extra: { refusal?: ReturnType<typeof kit.refusal>; done?: (t: Translate) => string; values?: FormValues; secret?: { clientSecret: string; grace: (t: Translate, locale: Locale) => string } } = {}, status = 200): Promise<void> {
    let portal: Portal | undefined;
    try {
      portal = await findPortal(clientId);
    } catch (err) {
      const refusal = kit.refusal(err);
      kit.page(ctx, 'admin/portals-detail', (t) => ({ title: t('admin.portals.not_found_title'), portal: null, refusal }), refusal.status);
      return;
    }
    const summary = summarise(portal);
    const firstParty = portal.clientId === CONSOLE_CLIENT_ID;
    const mayAct = can(kit.actor(ctx).roles, 'portals.act') && !firstParty;
    // The operator's own change is shown in the list below at once (the audit log appends behind).
    await deps.audit.flush();
    const [entries, pending, usage, stream] = await Promise.all([
      deps.store.audit.search({ portal: portal.clientId, limit: PAGE_SIZE }),
      deps.actions.approvals.list({ state: 'pending', limit: 50 }),
      // Its own funnel (usage.ts), for operators who may read statistics; nobody signs in at a resource server.
      summary.kind === 'portal' ? portalFunnel(deps, ctx, portal.clientId) : null,
      securityEventStream(portal.clientId),
    ]);
    const proposal = pending.find((a) => a.action === 'approve-national-id' && a.subject === portal.clientId);
    kit.page(ctx, 'admin/portals-detail', (t, locale) => ({
      title: t('admin.portals.detail_title', { name: summary.name }),
      portal: {
        ...summary,
        kindText: t(firstParty ? 'admin.portals.kind.first_party' : summary.kind === 'portal' ? 'admin.portals.kind.portal' : 'admin.portals.kind.resource_server'),
        created: formatDate(portal.createdAt, locale),
        nationalIdBasis: portal.nationalIdBasis,
        previousSecretUntil: portal.previousSecret && portal.previousSecret.expiresAt > kit.now() ? formatDate(portal.previousSecret.expiresAt, locale) : null,
        hasSecret: portal.secretCiphertext !== null,
      },
      firstParty,
      mayAct,
      isPortal: summary.kind === 'portal',
      proposal: proposal ? { id: proposal.id, expires: formatDate(proposal.expiresAt, locale) } : null,
      audit: entries.map((e) => auditRow(e, locale)),
      stream: stream && {
        method: stream.method, endpoint: stream.endpoint, status: stream.status, events: stream.events, undelivered: stream.undelivered,
        oldest: stream.oldest === null ? null : formatDate(stream.oldest, locale), delivered: stream.delivered, failed: stream.failed,
        lastOutcome: stream.lastOutcome, lastAt: stream.lastAt === null ? null : formatDate(stream.lastAt, locale),
      },
      funnel: usage ? funnelChart(usage.funnel, { t, locale, portal: summary.name, from: usage.from, to: usage.to }) : null,
      graces: Object.keys(GRACE_PERIODS).map((g) => ({ value: g, text: t(`admin.portals.grace.${g as GraceChoice}`), selected: g === (extra.values?.grace ?? DEFAULT_GRACE) })),
      values: {
        redirect_uris: summary.redirect_uris.join('\n'),
        post_logout_redirect_uris: summary.post_logout_redirect_uris.join('\n'),
        backchannel_logout_uri: summary.backchannel_logout_uri ?? '',
        ...extra.values,
      },
      refusal: extra.refusal,
      done: extra.done?.(t),
      secret: extra.secret ? { clientSecret: extra.secret.clientSecret, grace: extra.secret.grace(t, locale) } : null,
    }), status);
  }

  /**
   * The portal's security event stream (events/, SSF 1.0) and how its deliveries fare: the push
   * endpoint's origin only (its path or query may carry a token), never its authorization header.
   */
  async function securityEventStream(clientId: string) {
    const stream = await deps.store.ssf.findStreamByClient(clientId);
    if (!stream) return null;
    const stats = (await deps.store.ssf.deliveryStats(kit.now())).find((x) => x.streamId === stream.id);
    let endpoint: string | null = null;
    try {
      endpoint = stream.endpointUrl ? new URL(stream.endpointUrl).origin : null;
    } catch {
      endpoint = null;
    }
    return {
      method: stream.deliveryMethod.endsWith('8935') ? 'push' : 'poll', endpoint, status: stream.status,
      events: stream.eventsRequested.map((e) => e.split(/[/:]/).pop() ?? e),
      undelivered: stats?.undelivered ?? 0, oldest: stats?.oldestUndeliveredAt ?? null, delivered: stats?.delivered ?? 0,
      failed: stats?.failed ?? 0, lastOutcome: stats?.lastOutcome ?? null, lastAt: stats?.lastAttemptAt ?? null,
    };
  }

  /** Runs a change; an AdminError (or a refused portal input) re-renders the portal's page with it. */
  async function change(ctx: Context, values: FormValues, action: () => Promise<DoneCode | { approval: string }>): Promise<void> {
    let outcome: DoneCode | { approval: string };
    try {
      outcome = await action();
    } catch (err) {
      const refusal = kit.refusal(asAdminError(err));
      await showPortal(ctx, ctx.params.clientId, { refusal, values }, refusal.status);
      return;
    }
    ctx.status = 303;
    ctx.redirect(typeof outcome === 'string'
      ? `${backTo(ctx)}?done=${outcome}`
      : `${backTo(ctx)}?done=proposed&approval=${encodeURIComponent(outcome.approval)}`);
  }

  // ---- The list -------------------------------------------------------------------------------

  router.get('/admin/portals', kit.need('portals.read'), async (ctx) => {
    // The cursor is the last row's (createdAt, clientId): a page never loads the whole registry.
    const m = typeof ctx.query.after === 'string' ? /^(\d{1,15})\.([A-Za-z0-9_-]{1,64})$/.exec(ctx.query.after) : null;
    const after = m ? { createdAt: Number(m[1]), clientId: m[2]! } : undefined;
    const [rows, total] = await Promise.all([
      deps.store.portals.page({ after, limit: PAGE_SIZE + 1 }),
      deps.store.portals.count(),
    ]);
    const page = rows.slice(0, PAGE_SIZE);
    const last = page[page.length - 1];
    kit.page(ctx, 'admin/portals', (t, locale) => ({
      title: t('admin.portals.title'),
      total,
      mayAct: can(kit.actor(ctx).roles, 'portals.act'),
      first: after ? '/admin/portals' : null,
      pager: { prev: null, next: rows.length > PAGE_SIZE && last ? `/admin/portals?after=${last.createdAt}.${last.clientId}` : null },
      rows: page.map((p) => {
        const s = summarise(p);
        const firstParty = p.clientId === CONSOLE_CLIENT_ID;
        return {
          clientId: p.clientId,
          name: s.name,
          firstParty,
          kind: t(firstParty ? 'admin.portals.kind.first_party' : s.kind === 'portal' ? 'admin.portals.kind.portal' : 'admin.portals.kind.resource_server'),
          state: t(p.disabled ? 'admin.portals.state.disabled' : 'admin.portals.state.enabled'),
          disabled: p.disabled,
          nationalId: t(p.nationalId ? 'admin.portals.yes' : 'admin.portals.no'),
          offlineAccess: t(s.offline_access ? 'admin.portals.yes' : 'admin.portals.no'),
          created: formatDate(p.createdAt, locale),
        };
      }),
    }));
  });

  // ---- Registering ----------------------------------------------------------------------------

  const registerForm = (ctx: Context, values: FormValues, refusal?: ReturnType<typeof kit.refusal>) =>
    kit.page(ctx, 'admin/portals-new', (t) => ({ title: t('admin.portals.new_title'), values, refusal }), refusal?.status ?? 200);

  // Registered before /admin/portals/:clientId, which would otherwise take "new" for a client id.
  router.get('/admin/portals/new', kit.need('portals.act'), (ctx) => {
    registerForm(ctx, {});
  });

  router.post('/admin/portals', kit.need('portals.act'), async (ctx) => {
    const form = await kit.readPost(ctx, REGISTER_FORM);
    const values: FormValues = {
      name: form.name, redirect_uris: form.redirect_uris, post_logout_redirect_uris: form.post_logout_redirect_uris ?? '',
      backchannel_logout_uri: form.backchannel_logout_uri ?? '', sector: form.sector ?? '',
      grant_refresh_token: form.grant_refresh_token === 'on', grant_client_credentials: form.grant_client_credentials === 'on',
    };
    let act: Act;
    let input: PortalInput;
    try {
      act = actAs(kit.actor(ctx), 'portals.act', form.reason);
      input = validatePortalInput({
        name: form.name,
        redirectUris: lines(form.redirect_uris, 'redirect URIs'),
        postLogoutRedirectUris: lines(form.post_logout_redirect_uris, 'post-logout redirect URIs'),
        backchannelLogoutUri: optional(form.backchannel_logout_uri),
        grantTypes: ['authorization_code', ...(form.grant_refresh_token ? ['refresh_token'] : []), ...(form.grant_client_credentials ? ['client_credentials'] : [])],
        sector: optional(form.sector),
      }, { production: production() });
    } catch (err) {
      registerForm(ctx, values, kit.refusal(asAdminError(err)));
      return;
    }
    const reg = await deps.portals.register(input);
    deps.audit.record('PORTAL_REGISTERED', {
      ...actDetails(act), portal: reg.client_id, name: input.name, redirect_uris: input.redirectUris, grant_types: input.grantTypes, sector: input.sector,
      national_id: input.nationalId, offline_access: input.offlineAccess, fapi: input.fapi, auth_method: input.authMethod,
    });
    // The secret exists in the clear only in this response: shown once, not stored by the browser
    // (kit.page sends no-store), never put in a URL or a log.
    kit.page(ctx, 'admin/portals-secret', (t) => ({
      title: t('admin.portals.registered_title'),
      intro: t('admin.portals.registered_intro', { name: input.name }),
      clientId: reg.client_id,
      clientSecret: reg.client_secret,
      grace: null,
    }), 201);
  });

  // ---- One portal -----------------------------------------------------------------------------

  router.get('/admin/portals/:clientId', kit.need('portals.read'), async (ctx) => {
    const code = typeof ctx.query.done === 'string' && Object.hasOwn(DONE, ctx.query.done) ? (ctx.query.done as DoneCode) : undefined;
    const approval = typeof ctx.query.approval === 'string' && /^[0-9a-f-]{36}$/.test(ctx.query.approval) ? ctx.query.approval : '';
    await showPortal(ctx, ctx.params.clientId, code ? { done: (t) => t(DONE[code], { id: approval }) } : {});
  });

  router.post('/admin/portals/:clientId/uris', kit.need('portals.act'), kit.fresh(backTo), async (ctx) => {
    const form = await kit.readPost(ctx, URIS_FORM);
    const values: FormValues = { open: 'uris', redirect_uris: form.redirect_uris, post_logout_redirect_uris: form.post_logout_redirect_uris ?? '', backchannel_logout_uri: form.backchannel_logout_uri ?? '' };
    await change(ctx, values, async () => {
      const act = actAs(kit.actor(ctx), 'portals.act', form.reason);
      const revision = await deps.store.portals.revision(String(ctx.params.clientId));
      const { portal, summary } = await changeable(ctx.params.clientId, 'portal');
      const input = inputOf(portal, summary, {
        redirectUris: lines(form.redirect_uris, 'redirect URIs'),
        postLogoutRedirectUris: lines(form.post_logout_redirect_uris, 'post-logout redirect URIs'),
        backchannelLogoutUri: optional(form.backchannel_logout_uri) ?? null,
      });
      const changed: string[] = [];
      if (!sameList(input.redirectUris, summary.redirect_uris)) changed.push('redirect_uris');
      if (!sameList(input.postLogoutRedirectUris, summary.post_logout_redirect_uris)) changed.push('post_logout_redirect_uris');
      if (input.backchannelLogoutUri !== summary.backchannel_logout_uri) changed.push('backchannel_logout_uri');
      if (changed.length === 0) throw new AdminError('invalid', 'nothing to change: the URIs are the ones registered');
      // Every other metadata key (scopes, approvals, keys, FAPI) is kept as it is.
      const { backchannel_logout_uri: _uri, backchannel_logout_session_required: _required, ...rest } = portal.metadata;
      const metadata: Record<string, unknown> = {
        ...rest,
        redirect_uris: input.redirectUris,
        post_logout_redirect_uris: input.postLogoutRedirectUris,
        ...(input.backchannelLogoutUri ? { backchannel_logout_uri: input.backchannelLogoutUri, backchannel_logout_session_required: true } : {}),
      };
      // A change that landed since this portal was read (an approval adding a scope) is not overwritten.
      if ((await deps.store.portals.revision(portal.clientId)) !== revision) throw new AdminError('conflict', 'the portal changed meanwhile: look at it again and repeat the edit');
      // A portal approved for national_id: where it sends people is checked by a second operator.
      if (summary.national_id) {
        const r = await deps.actions.portals.proposeNationalIdPortalEdit(kit.actor(ctx), portal.clientId, metadata, changed, revision, form.reason);
        if (r.status === 'proposed') return { approval: r.approval };
      }
      if (!(await deps.store.portals.updateMetadata(portal.clientId, metadata))) throw new AdminError('not_found', 'no portal with this client id');
      deps.audit.record('PORTAL_UPDATED', {
        ...actDetails(act), portal: portal.clientId, changed,
        ...(changed.includes('redirect_uris') ? { redirect_uris: input.redirectUris, previous_redirect_uris: summary.redirect_uris } : {}),
        ...(changed.includes('post_logout_redirect_uris') ? { post_logout_redirect_uris: input.postLogoutRedirectUris, previous_post_logout_redirect_uris: summary.post_logout_redirect_uris } : {}),
        ...(changed.includes('backchannel_logout_uri') ? { backchannel_logout_uri: input.backchannelLogoutUri, previous_backchannel_logout_uri: summary.backchannel_logout_uri } : {}),
      });
      return 'updated';
    });
  });

  for (const disable of [true, false]) {
    router.post(`/admin/portals/:clientId/${disable ? 'disable' : 'enable'}`, kit.need('portals.act'), async (ctx) => {
      const form = await kit.readPost(ctx, REASON_FORM);
      await change(ctx, { open: 'state' }, async () => {
        const act = actAs(kit.actor(ctx), 'portals.act', form.reason);
        const { portal } = await changeable(ctx.params.clientId);
        if (portal.disabled === disable) throw new AdminError('conflict', disable ? 'this client is already disabled' : 'this client is not disabled');
        // Disabling ends every grant and token issued to it (portal-admin.ts); PORTAL_DISABLED /
        // PORTAL_ENABLED name the operator only, so the role, door and reason follow as PORTAL_UPDATED.
        const ok = disable ? await deps.portalAdmin.disable(portal.clientId, act.actor.id) : await deps.portalAdmin.enable(portal.clientId, act.actor.id);
        if (!ok) throw new AdminError('not_found', 'no portal with this client id');
        deps.audit.record('PORTAL_UPDATED', { ...actDetails(act), portal: portal.clientId, change: disable ? 'disabled' : 'enabled' });
        return disable ? 'disabled' : 'enabled';
      });
    });
  }

  router.post('/admin/portals/:clientId/rotate-secret', kit.need('portals.act'), kit.fresh(backTo), async (ctx) => {
    const form = await kit.readPost(ctx, ROTATE_FORM);
    let rotated: Awaited<ReturnType<typeof deps.portalAdmin.rotateSecret>>;
    try {
      const act = actAs(kit.actor(ctx), 'portals.act', form.reason);
      const { portal } = await changeable(ctx.params.clientId);
      if (portal.secretCiphertext === null) throw new AdminError('invalid', 'this client has no secret to rotate: it authenticates with its own keys (private_key_jwt)');
      // portal-admin.ts records PORTAL_SECRET_ROTATED with the operator, role, door, reason and grace.
      rotated = await deps.portalAdmin.rotateSecret(portal.clientId, GRACE_PERIODS[form.grace], { operator: act.actor.id, role: act.role, reason: act.reason, via: act.actor.via });
    } catch (err) {
      const refusal = kit.refusal(asAdminError(err));
      await showPortal(ctx, ctx.params.clientId, { refusal, values: { open: 'rotate', grace: form.grace } }, refusal.status);
      return;
    }
    // The new secret is in this response only (no-store), never in a URL: no redirect after this POST.
    const until = rotated.previous_valid_until ? Date.parse(rotated.previous_valid_until) : null;
    await showPortal(ctx, rotated.client_id, {
      secret: {
        clientSecret: rotated.client_secret,
        grace: (t, locale) => [
          until !== null ? t('admin.portals.rotated_grace', { at: formatDate(until, locale) }) : t('admin.portals.rotated_now'),
          ...(rotated.earlier_previous_ended ? [t('admin.portals.rotated_earlier_ended')] : []),
        ].join(' '),
      },
    });
  });

  router.post('/admin/portals/:clientId/approve-national-id', kit.need('portals.act'), kit.fresh(backTo), async (ctx) => {
    const form = await kit.readPost(ctx, APPROVE_FORM);
    await change(ctx, { open: 'nid', national_id_basis: form.legal_basis }, async () => {
      const { portal } = await changeable(ctx.params.clientId, 'portal');
      if (portal.nationalId) throw new AdminError('conflict', 'this portal is already approved for national_id');
      // Two-person control (approvals.service.ts): a proposal a second integration operator decides.
      const r = await deps.actions.portals.approveNationalId(kit.actor(ctx), portal.clientId, form.legal_basis, form.reason);
      return r.status === 'proposed' ? { approval: r.approval } : 'national_id';
    });
  });

  router.post('/admin/portals/:clientId/approve-offline-access', kit.need('portals.act'), kit.fresh(backTo), async (ctx) => {
    const form = await kit.readPost(ctx, APPROVE_FORM);
    await change(ctx, { open: 'offline', offline_basis: form.legal_basis }, async () => {
      const act = actAs(kit.actor(ctx), 'portals.act', form.reason);
      const { portal, summary } = await changeable(ctx.params.clientId, 'portal');
      if (summary.offline_access) throw new AdminError('conflict', 'this portal is already approved for offline_access');
      // Checks the legal basis (5–500 characters) and the refresh_token grant, then records both.
      const approved = await deps.portals.approve(portal.clientId, 'offline_access', form.legal_basis);
      deps.audit.record('PORTAL_APPROVED', {
        ...actDetails(act), portal: portal.clientId, scope: 'offline_access', legal_basis: summarise(approved).offline_access_basis ?? form.legal_basis.trim(),
      });
      return 'offline_access';
    });
  });
}
