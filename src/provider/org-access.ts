/**
 * Acting for an enterprise inside the OpenID Connect flow (issue 5):
 *
 * - a prompt `organization` after sign-in, when the portal asked for scope `organization` and the
 *   person has not chosen in this authorization (with `prompt=none`: interaction_required);
 * - every such authorization gets a grant of its own, recorded with the enterprise chosen, so the
 *   `org` claim of its tokens is exactly that choice — never one remembered from elsewhere;
 * - the `org` claim, and whether tokens of such a grant still work, follow the rule of the org
 *   service at every use (ID token, userinfo, refresh, introspection);
 * - jobs that end access: revoke the grant's tokens and tell the portal (back-channel logout).
 */
import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import type Provider from 'oidc-provider';
import type { AuditService } from '../audit/index.js';
import type { JobHandler } from '../jobs/index.js';
import { DELEGATION_EXPIRY_JOB, ORG_ACCESS_ENDED_JOB, type OrgAccess, type OrgService } from '../orgs/index.js';
import type { OrgRepository } from '../store/index.js';
import type { LogoutNotifier } from './backchannel-logout.js';

export const ORG_SCOPE = 'organization';

const hasOrgScope = (scope: unknown) => typeof scope === 'string' && scope.split(' ').includes(ORG_SCOPE);

/** The prompt, placed between `login` and `consent`. */
export function organizationPrompt() {
  const { Prompt, Check } = interactionPolicy;
  return new Prompt(
    { name: 'organization', requestable: false },
    new Check('org_not_chosen', 'the person must choose the enterprise to act for', 'interaction_required', async (ctx: KoaContextWithOIDC) => {
      if (!hasOrgScope(ctx.oidc.params?.scope)) return Check.NO_NEED_TO_PROMPT;
      const chosen = (ctx.oidc.result as { organization?: { code?: unknown } } | undefined)?.organization?.code;
      return typeof chosen === 'string' ? Check.NO_NEED_TO_PROMPT : Check.REQUEST_PROMPT;
    }),
  );
}

/** The `org` claim (PRODUCT.md, issue 5): `{ code, name, role, parent_code?, delegation_expires? }`. */
export function orgClaim(access: OrgAccess): Record<string, unknown> {
  return {
    code: access.code,
    name: access.name,
    role: access.role,
    ...(access.parentCode ? { parent_code: access.parentCode } : {}),
    ...(access.delegationExpires !== null ? { delegation_expires: Math.floor(access.delegationExpires / 1000) } : {}),
  };
}

export interface TokenLike {
  grantId?: string;
  scope?: string;
  accountId?: string;
  clientId?: string;
}

/**
 * The enterprise context of a token: `null` when it carries none (no `organization` scope),
 * `undefined` when it did and no longer holds (revoked, ended, suspended, another person), else
 * the access it still gives.
 */
export function createOrgContexts(deps: { orgs: OrgRepository; service: OrgService }) {
  return async function contextOf(token: TokenLike | undefined): Promise<OrgAccess | null | undefined> {
    if (!token || !hasOrgScope(token.scope)) return null;
    if (!token.grantId) return undefined;
    const grant = await deps.orgs.findGrant(token.grantId);
    if (!grant || (token.accountId && grant.personId !== token.accountId)) return undefined;
    return deps.service.accessFor(grant.personId, grant.enterpriseCode, grant.clientId);
  };
}
export type OrgContexts = ReturnType<typeof createOrgContexts>;

export function createOrgJobHandlers(deps: {
  provider: () => Provider;
  orgs: OrgRepository;
  service: OrgService;
  revokeGrant: (grantId: string) => Promise<void>;
  notifyPortals: LogoutNotifier;
  audit: AuditService;
}): JobHandler[] {
  const ended: JobHandler = {
    kind: ORG_ACCESS_ENDED_JOB,
    leaseMs: 60_000,
    keepMs: 7 * 24 * 3600_000,
    async run(job) {
      const { grantId, clientId, personId, sessionUid, reason } = job.payload;
      if (typeof grantId !== 'string' || typeof clientId !== 'string' || typeof personId !== 'string') return { status: 'failed', outcome: 'malformed job' };
      await deps.revokeGrant(grantId);
      let told = false;
      if (typeof sessionUid === 'string') {
        const session = await deps.provider().Session.findByUid(sessionUid);
        const authorization = session?.accountId === personId ? session.authorizations?.[clientId] : undefined;
        if (session && authorization?.grantId === grantId && typeof authorization.sid === 'string') {
          // The portal's session in this SSO session rested on that enterprise: it ends there.
          await deps.notifyPortals(personId, [{ clientId, sid: authorization.sid }], 'org_access_ended');
          delete session.authorizations![clientId];
          await session.save(session.exp ? Math.max(1, session.exp - Math.floor(Date.now() / 1000)) : 60);
          told = true;
        }
      }
      await deps.orgs.forgetGrant(grantId);
      deps.audit.record('ORG_ACCESS_ENDED', { person: personId, portal: clientId, reason: String(reason), portal_told: told });
      return { status: 'done', outcome: told ? 'revoked; portal told' : 'revoked' };
    },
  };
  const expiry: JobHandler = {
    kind: DELEGATION_EXPIRY_JOB,
    leaseMs: 60_000,
    keepMs: 7 * 24 * 3600_000,
    async run(job) {
      const { code, personId, until } = job.payload;
      if (typeof code !== 'string' || typeof personId !== 'string' || typeof until !== 'number') return { status: 'failed', outcome: 'malformed job' };
      const n = await deps.service.endExpired(code, personId, until);
      return { status: 'done', outcome: `${n} grant(s) ended` };
    },
  };
  return [ended, expiry];
}
