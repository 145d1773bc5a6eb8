/**
 * Login, consent and abort pages for oidc-provider interactions. Controllers are thin: check the
 * request, call a service, render or redirect.
 *
 * Journey guard: each POST is accepted only while the interaction is at the matching prompt, with
 * this browser's interaction cookie, a CSRF token bound to the interaction, and a same-origin
 * request (SECURITY.md #30).
 */
import type { Context } from 'koa';
import { z } from 'zod';
import type { AuthenticationService } from '../accounts/index.js';
import type { AuditService } from '../audit/index.js';
import type { ConsentRepository, FactorRepository, OrgGrant, PersonRepository } from '../store/index.js';
import type { OrgAccess } from '../orgs/index.js';
import { ENTERPRISE_CODE_RE, LEGAL_REPRESENTATIVE } from '../orgs/index.js';
import { AppError } from '../http/errors.js';
import { parseForm, readForm } from '../http/body.js';
import { assertCsrf, assertSameOrigin, type Csrf } from '../http/csrf.js';
import type { Translate } from '../http/i18n.js';
import { localeFor, rememberLocale } from '../http/locale.js';
import type { Renderer } from '../http/render.js';
import { LOA } from '../provider/levels.js';
import { requestedRankOf } from './requested-level.js';
import { SCOPE_CLAIMS } from '../portals/index.js';
import type { InteractionView, Interactions } from './oidc-interactions.js';
import type { Journeys } from './journey.js';
import { hasSecondFactor, nextStep, type createSecondFactorController } from './second-factor.controller.js';
import type { FlowOrigin, Handoff } from '../selfservice/index.js';
import { ACCOUNT_CLIENT_ID } from '../provider/account-session.js';
import type { Telemetry } from '../metrics/telemetry.js';

/** Login-prompt reasons that mean "this session needs a higher level", not "sign in again". */
const STEP_UP_REASONS = new Set(['acr_values_unmet']);

export interface InteractionDeps {
  interactions: Interactions;
  /** Remembers which grants a consent produced, so withdrawing it can revoke them. */
  journeys: Journeys;
  secondFactor: ReturnType<typeof createSecondFactorController>;
  factors: FactorRepository;
  persons: PersonRepository;
  auth: AuthenticationService;
  consents: ConsentRepository;
  audit: AuditService;
  renderer: Renderer;
  csrf: Csrf;
  issuerOrigin: string;
  /** The name of a registered resource server (API), for the consent page. */
  resourceName(uri: string): Promise<string | undefined>;
  /** Who may act for which enterprise (issue 5), and the record of authorizations made for one. */
  orgs: {
    choicesFor(personId: string, clientId: string): Promise<OrgAccess[]>;
    accessFor(personId: string, code: string, clientId: string): Promise<OrgAccess | undefined>;
  };
  orgGrants: { recordGrant(grant: Omit<OrgGrant, 'createdAt'>): Promise<void> };
  /** Told when a sign-in page is shown for a portal (usage statistics: the funnel's first step). */
  telemetry?: Pick<Telemetry, 'signInPageShown'>;
  /** How long a grant lives, in seconds (its org record lives as long). */
  grantTtlSeconds: number;
  /** Registration and recovery started from this sign-in, and the sign-in a registration hands back. */
  selfService?: {
    begin(ctx: Context, kind: 'register' | 'recover', origin: FlowOrigin): Promise<void>;
    takeHandoff(ctx: Context, accept: (h: Handoff) => boolean): Promise<Handoff | undefined>;
  };
  now?: () => number;
}

const loginForm = {
  _csrf: z.string().max(128),
  identifier: z.string().max(64),
  password: z.string().max(1024),
};
const consentForm = {
  _csrf: z.string().max(128),
  decision: z.enum(['allow', 'deny']),
};
const orgForm = {
  _csrf: z.string().max(128),
  org: z.string().max(32).optional(),
};

const ABORT_REASONS = new Set(['cancel', 'unmet', 'no_org']);

/**
 * Interactions whose sign-in page was already counted as shown here, so that a reload or a return
 * from the registration page counts once. Bounded: the oldest are forgotten first, long after their
 * interaction (one hour) ended at any plausible rate. Per instance: a reload served by another
 * instance is counted again, which only a shared store could avoid, at a write per page view.
 */
const SHOWN_MEMORY = 10_000;

/** The enterprise chosen earlier in this authorization (the `organization` prompt's result). */
function chosenOrg(view: InteractionView): string | undefined {
  const code = (view.lastSubmission as { organization?: { code?: unknown } } | undefined)?.organization?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Scopes and claims a consent prompt asks for (oidc-provider's consent prompt details), and the
 * scopes asked at resource servers (APIs named with `resource`, RFC 8707).
 */
function missingFrom(view: InteractionView): { scopes: string[]; claims: string[]; resources: Record<string, string[]> } {
  const d = view.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
  return { scopes: d.missingOIDCScope ?? [], claims: d.missingOIDCClaims ?? [], resources: d.missingResourceScopes ?? {} };
}

/** How a remembered consent records an API's scope: resource indicators never carry a fragment. */
const resourceScopeKey = (resource: string, scope: string) => `${resource}#${scope}`;
const resourceScopeKeys = (resources: Record<string, string[]>) =>
  Object.entries(resources).flatMap(([resource, list]) => list.map((scope) => resourceScopeKey(resource, scope)));

/**
 * What the portal will receive, in plain words: one line per scope, and for claims asked for
 * individually (the `claims` parameter) the line of the scope they belong to.
 */
function dataDescriptions(scopes: string[], claims: string[], t: Translate): string[] {
  const known = ['openid', 'profile', 'email', 'phone', 'address', 'organization', 'national_id', 'offline_access'] as const;
  const wanted = new Set(scopes);
  for (const claim of claims) {
    const scope = Object.entries(SCOPE_CLAIMS).find(([, list]) => list.includes(claim))?.[0];
    if (scope) wanted.add(scope);
  }
  return known.filter((s) => wanted.has(s)).map((s) => t(`scope.${s}`));
}

export function createInteractionController(deps: InteractionDeps) {
  const { interactions, renderer, csrf } = deps;
  const action = (uid: string, step: string) => `/interaction/${uid}/${step}`;
  const shown = new Set<string>();

  /** The first time this interaction's sign-in page is shown (a GET, not a form shown again after a mistake). */
  function countShown(view: InteractionView): void {
    if (!deps.telemetry || shown.has(view.uid)) return;
    shown.add(view.uid);
    if (shown.size > SHOWN_MEMORY) shown.delete(shown.values().next().value!);
    deps.telemetry.signInPageShown(view.clientId);
  }

  function renderLogin(ctx: Context, view: InteractionView, portalName: string, opts: { error?: string; identifier?: string; status?: number } = {}) {
    ctx.set('Cache-Control', 'no-store');
    renderer.render(ctx, 'interactions/login', localeFor(ctx, view.params.ui_locales), (t) => ({
      title: t('login.title'),
      portalName,
      action: action(view.uid, 'login'),
      abortHref: `/interaction/${view.uid}/abort?reason=cancel`,
      csrf: csrf.token(view.uid),
      registerHref: deps.selfService ? action(view.uid, 'register') : null,
      recoverHref: deps.selfService ? action(view.uid, 'recover') : null,
      identifier: opts.identifier ?? '',
      error: opts.error ? t(opts.error as Parameters<Translate>[0]) : null,
    }), opts.status ?? 200);
  }

  async function renderConsent(ctx: Context, view: InteractionView, portalName: string) {
    const { scopes, claims, resources } = missingFrom(view);
    const apis = await Promise.all(Object.entries(resources).map(async ([uri, list]) => ({
      name: (await deps.resourceName(uri)) ?? new URL(uri).host,
      scopes: list.join(', '),
    })));
    ctx.set('Cache-Control', 'no-store');
    renderer.render(ctx, 'interactions/consent', localeFor(ctx, view.params.ui_locales), (t) => ({
      title: t('consent.title'),
      portalName,
      action: action(view.uid, 'consent'),
      csrf: csrf.token(view.uid),
      items: [...dataDescriptions(scopes, claims, t), ...apis.map((api) => t('scope.resource', api))],
    }));
  }

  function renderUnmet(ctx: Context, view: InteractionView, portalName: string) {
    ctx.set('Cache-Control', 'no-store');
    renderer.render(ctx, 'message', localeFor(ctx, view.params.ui_locales), (t) => ({
      title: t('unmet.title'),
      alert: t('unmet.body', { portal: portalName }),
      paragraphs: [t('unmet.how')],
      link: { href: `/interaction/${view.uid}/abort?reason=unmet`, text: t('login.cancel', { portal: portalName }) },
    }));
  }

  async function renderOrganization(ctx: Context, view: InteractionView, portalName: string, opts: { error?: boolean } = {}) {
    const locale = localeFor(ctx, view.params.ui_locales);
    const choices = await deps.orgs.choicesFor(view.sessionAccountId!, view.clientId);
    if (!choices.length) deps.audit.record('ORG_NONE_AVAILABLE', { person: view.sessionAccountId!, portal: view.clientId });
    const hint = typeof view.params.org_hint === 'string' ? view.params.org_hint : undefined;
    const dateOf = (ms: number) => new Intl.DateTimeFormat(locale === 'vi' ? 'vi-VN' : 'en-GB', { timeZone: 'Asia/Ho_Chi_Minh', dateStyle: 'medium' }).format(ms - 1);
    ctx.set('Cache-Control', 'no-store');
    renderer.render(ctx, 'interactions/organization', locale, (t) => ({
      title: t('org.title'),
      portalName,
      action: action(view.uid, 'org'),
      abortHref: `/interaction/${view.uid}/abort?reason=cancel`,
      noneHref: `/interaction/${view.uid}/abort?reason=no_org`,
      csrf: csrf.token(view.uid),
      error: opts.error ? t('org.choose_one') : null,
      choices: choices.map((c) => ({
        code: c.code,
        name: c.name,
        checked: c.code === hint || choices.length === 1,
        detail: [
          c.role === LEGAL_REPRESENTATIVE ? t('org.role_legal') : t('org.role_delegated', { role: c.role }),
          ...(c.parentCode ? [t('org.branch_of', { parent: c.parentCode })] : []),
          ...(c.delegationExpires !== null ? [t('org.until', { date: dateOf(c.delegationExpires) })] : []),
        ].join(' · '),
      })),
    }), opts.error ? 400 : 200);
  }

  /**
   * The grant of an authorization made for an enterprise is recorded with it, after checking once
   * more that the person may act for it (a delegation can end between the two pages). False when
   * the access no longer holds.
   */
  async function recordOrgGrant(view: InteractionView, accountId: string, grantId: string): Promise<boolean> {
    const code = chosenOrg(view);
    if (!code) return true;
    if (!(await deps.orgs.accessFor(accountId, code, view.clientId))) return false;
    await deps.orgGrants.recordGrant({
      grantId, enterpriseCode: code, personId: accountId, clientId: view.clientId, sessionUid: view.sessionUid ?? null,
      expiresAt: (deps.now ?? Date.now)() + deps.grantTtlSeconds * 1000,
    });
    return true;
  }

  /**
   * A remembered consent that covers everything the prompt asks: saved as this session's grant
   * without asking again (PRODUCT.md: consent remembered per portal).
   */
  async function tryRememberedConsent(ctx: Context, view: InteractionView): Promise<boolean> {
    const accountId = view.sessionAccountId;
    // `prompt=consent` asks for the page even when consent was given before (OIDC Core §3.1.2.1).
    if (!accountId || view.prompt.reasons.includes('consent_prompt')) return false;
    const consent = await deps.consents.find(accountId, view.clientId);
    if (!consent) return false;
    const { scopes, claims, resources } = missingFrom(view);
    const covered = [...scopes, ...resourceScopeKeys(resources)].every((s) => consent.scopes.includes(s)) && claims.every((c) => consent.claims.includes(c));
    if (!covered) return false;
    const grantId = await interactions.saveGrant({ accountId, clientId: view.clientId, grantId: view.grantId, scopes, claims, resources });
    if (!(await recordOrgGrant(view, accountId, grantId))) return false;
    deps.audit.record('CONSENT_REUSED', { person: accountId, portal: view.clientId });
    await interactions.finish(ctx, { consent: { grantId } });
    return true;
  }

  /**
   * A registration just finished in this browser, started from this sign-in (or, started on its own,
   * for the account area's sign-in): the new account signs in with the password it just set, once.
   * Then the same rules as any sign-in: a second factor enrolled when the portal asks for more than
   * `low` (or when the citizen chose to add one now), and `high` unmet at identity level 1.
   */
  async function signInRegistered(ctx: Context, view: InteractionView, portalName: string): Promise<boolean> {
    // A browser signed in as someone else (a shared computer at a one-stop-shop office) signs in
    // as the new account all the same: oidc-provider ends the other person's session first, as it
    // does for any sign-in of a different person (the sign-out confirmation it posts).
    if (!deps.selfService) return false;
    const handoff = await deps.selfService.takeHandoff(ctx, (h) => (h.originUid ? h.originUid === view.uid : view.clientId === ACCOUNT_CLIENT_ID));
    if (!handoff) return false;
    const person = await deps.persons.findById(handoff.personId);
    if (!person || person.status !== 'active') return false;
    const step = nextStep(requestedRankOf(view), person, await hasSecondFactor(deps.factors, person.id));
    if (step === 'unmet') {
      deps.audit.record('UNMET_AUTHENTICATION_REQUIREMENTS', { person: person.id, portal: view.clientId });
      renderUnmet(ctx, view, portalName);
      return true;
    }
    deps.audit.record('LOGIN_SUCCEEDED', { person: person.id, portal: view.clientId, method: 'registration' });
    if (step === 'second_factor') await deps.secondFactor.begin(ctx, view, portalName, person.id, 'second_factor', true);
    else if (step === 'enrol' || handoff.enrol) await deps.secondFactor.begin(ctx, view, portalName, person.id, 'enrol', true);
    else await interactions.finish(ctx, { login: { accountId: person.id, acr: LOA.low, amr: ['pwd'], remember: false } });
    return true;
  }

  return {
    /** Registration or recovery from this sign-in page (GET /interaction/:uid/register | recover). */
    async selfService(ctx: Context) {
      const uid = String(ctx.params.uid);
      const kind = ctx.path.endsWith('/recover') ? 'recover' : 'register';
      const view = await interactions.load(ctx, uid);
      if (!deps.selfService || view.prompt.name !== 'login') throw new AppError('wrong_step', 400, 'error.session_expired');
      const client = await interactions.client(view.clientId);
      await deps.selfService.begin(ctx, kind, { uid: view.uid, clientId: view.clientId, portalName: client.name, requiredRank: requestedRankOf(view) });
    },

    async show(ctx: Context) {
      const uid = String(ctx.params.uid);
      const view = await interactions.load(ctx, uid);
      rememberLocale(ctx);
      const client = await interactions.client(view.clientId);
      switch (view.prompt.name) {
        case 'login': {
          const journey = await deps.journeys.get(view.uid);
          if (journey) return deps.secondFactor.show(ctx, view, client.name, journey);
          if (await signInRegistered(ctx, view, client.name)) return;
          // Step-up: a live session asked for a higher level gets the second step, not the password.
          const reasons = view.prompt.reasons;
          if (view.sessionAccountId && reasons.length > 0 && reasons.every((r) => STEP_UP_REASONS.has(r))) {
            const person = await deps.persons.findById(view.sessionAccountId);
            if (person && person.status === 'active') {
              const step = nextStep(requestedRankOf(view), person, await hasSecondFactor(deps.factors, person.id));
              if (step === 'unmet') return renderUnmet(ctx, view, client.name);
              // Binding a first factor needs the password now, not a session someone may have
              // walked away from: only an existing factor steps up without it.
              if (step === 'second_factor') return deps.secondFactor.begin(ctx, view, client.name, person.id, step, false);
            }
          }
          countShown(view);
          return renderLogin(ctx, view, client.name);
        }
        case 'organization':
          return renderOrganization(ctx, view, client.name);
        case 'consent':
          if (await tryRememberedConsent(ctx, view)) return;
          return renderConsent(ctx, view, client.name);
        default:
          throw new AppError('unknown_prompt', 400, 'error.session_expired');
      }
    },

    async login(ctx: Context) {
      assertSameOrigin(ctx, deps.issuerOrigin);
      const uid = String(ctx.params.uid);
      // The CSRF token is checked before the schema: a forged post is a 403 whatever its shape.
      const raw = await readForm(ctx);
      const view = await interactions.load(ctx, uid);
      assertCsrf(csrf, view.uid, raw._csrf);
      const form = parseForm(raw, loginForm);
      if (view.prompt.name !== 'login') throw new AppError('wrong_step', 400, 'error.session_expired');
      const client = await interactions.client(view.clientId);

      const identifier = form.identifier.trim();
      if (!/^[0-9]{12}$/.test(identifier)) {
        return renderLogin(ctx, view, client.name, { error: 'login.identifier_format', identifier: identifier.slice(0, 12), status: 400 });
      }
      if (form.password.length === 0) {
        return renderLogin(ctx, view, client.name, { error: 'login.password_required', identifier, status: 400 });
      }

      const result = await deps.auth.authenticate({ identifier, password: form.password, ip: ctx.ip, portal: view.clientId });
      if (!result.ok) {
        if (result.reason === 'reset_required') return renderLogin(ctx, view, client.name, { error: 'login.reset_required', identifier, status: 200 });
        return result.reason === 'ip_limited'
          ? renderLogin(ctx, view, client.name, { error: 'login.ip_limited', identifier, status: 429 })
          // 200, like any re-shown form: a 401 would need a WWW-Authenticate challenge (RFC 9110
          // §15.5.2) that a form cannot honour. Unknown, wrong and locked all land here.
          : renderLogin(ctx, view, client.name, { error: 'login.failed', identifier, status: 200 });
      }

      // A password gives `low`; a person with a second factor always uses it; a request for more
      // than the person can reach never yields a token carrying less (PRODUCT.md, Levels).
      const step = nextStep(requestedRankOf(view), result.person, await hasSecondFactor(deps.factors, result.person.id));
      if (step === 'unmet') {
        deps.audit.record('UNMET_AUTHENTICATION_REQUIREMENTS', { person: result.person.id, portal: view.clientId });
        return renderUnmet(ctx, view, client.name);
      }
      if (step !== 'finish') return deps.secondFactor.begin(ctx, view, client.name, result.person.id, step, true);

      await interactions.finish(ctx, {
        login: { accountId: result.person.id, acr: LOA.low, amr: ['pwd'], remember: false },
      });
    },

    async consent(ctx: Context) {
      assertSameOrigin(ctx, deps.issuerOrigin);
      const uid = String(ctx.params.uid);
      const raw = await readForm(ctx);
      const view = await interactions.load(ctx, uid);
      assertCsrf(csrf, view.uid, raw._csrf);
      const form = parseForm(raw, consentForm);
      if (view.prompt.name !== 'consent' || !view.sessionAccountId) throw new AppError('wrong_step', 400, 'error.session_expired');
      const accountId = view.sessionAccountId;

      if (form.decision === 'deny') {
        deps.audit.record('CONSENT_DENIED', { person: accountId, portal: view.clientId });
        return interactions.finish(ctx, { error: 'access_denied', error_description: 'the person declined to share the requested information' });
      }

      const { scopes, claims, resources } = missingFrom(view);
      const grantId = await interactions.saveGrant({ accountId, clientId: view.clientId, grantId: view.grantId, scopes, claims, resources });
      if (!(await recordOrgGrant(view, accountId, grantId))) {
        return interactions.finish(ctx, { error: 'access_denied', error_description: 'the person may no longer act for the chosen enterprise' });
      }
      const previous = await deps.consents.find(accountId, view.clientId);
      await deps.consents.put({
        personId: accountId,
        clientId: view.clientId,
        scopes: [...new Set([...(previous?.scopes ?? []), ...scopes, ...resourceScopeKeys(resources)])],
        claims: [...new Set([...(previous?.claims ?? []), ...claims])],
      });
      deps.audit.record('CONSENT_GRANTED', { person: accountId, portal: view.clientId, scopes });
      await interactions.finish(ctx, { consent: { grantId } });
    },

    async chooseOrg(ctx: Context) {
      assertSameOrigin(ctx, deps.issuerOrigin);
      const uid = String(ctx.params.uid);
      const raw = await readForm(ctx);
      const view = await interactions.load(ctx, uid);
      assertCsrf(csrf, view.uid, raw._csrf);
      const form = parseForm(raw, orgForm);
      if (view.prompt.name !== 'organization' || !view.sessionAccountId) throw new AppError('wrong_step', 400, 'error.session_expired');
      const client = await interactions.client(view.clientId);
      // The choice is checked against the rule, not against the list shown: an edited form naming
      // an enterprise the person does not represent is refused like an empty one.
      const code = form.org && ENTERPRISE_CODE_RE.test(form.org) ? form.org : undefined;
      const access = code ? await deps.orgs.accessFor(view.sessionAccountId, code, view.clientId) : undefined;
      if (!access) {
        if (code) deps.audit.record('ORG_CHOSEN', { person: view.sessionAccountId, portal: view.clientId, org: code, refused: true });
        return renderOrganization(ctx, view, client.name, { error: true });
      }
      deps.audit.record('ORG_CHOSEN', { person: view.sessionAccountId, portal: view.clientId, org: access.code, role: access.role });
      await interactions.finish(ctx, { organization: { code: access.code } });
    },

    async abort(ctx: Context) {
      const uid = String(ctx.params.uid);
      const reason = typeof ctx.query.reason === 'string' && ABORT_REASONS.has(ctx.query.reason) ? ctx.query.reason : 'cancel';
      await interactions.load(ctx, uid);
      if (reason === 'no_org') {
        return interactions.finish(ctx, { error: 'access_denied', error_description: 'the person cannot act for any enterprise at this portal' });
      }
      if (reason === 'unmet') {
        return interactions.finish(ctx, {
          error: 'unmet_authentication_requirements',
          error_description: 'the requested authentication level cannot be met for this person',
        });
      }
      await interactions.finish(ctx, { error: 'access_denied', error_description: 'the person cancelled the sign-in' });
    },
  };
}
