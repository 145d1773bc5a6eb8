/**
 * The one wrapper around oidc-provider's interaction API. Controllers call these; nothing else in
 * interactions/ touches the provider, and nothing reads the library's private fields.
 */
import type { Context } from 'koa';
import Provider, { errors, type InteractionResults } from 'oidc-provider';
import { AppError } from '../http/errors.js';

export interface InteractionView {
  uid: string;
  prompt: { name: string; reasons: string[]; details: Record<string, unknown> };
  params: Record<string, unknown>;
  clientId: string;
  /** Signed-in person in the current SSO session, if any. */
  sessionAccountId: string | undefined;
  /** The stable uid of that session. */
  sessionUid: string | undefined;
  grantId: string | undefined;
  /** The level the session has now (from a previous sign-in), if any. */
  lastSubmission: Record<string, unknown> | undefined;
}

export interface ClientView {
  clientId: string;
  name: string;
  scopeAllowed: Set<string>;
}

export interface Interactions {
  /** Loads the interaction bound to this browser (its cookie), and checks the uid in the URL matches. */
  load(ctx: Context, uid: string): Promise<InteractionView>;
  client(clientId: string): Promise<ClientView>;
  /** Finishes the interaction and redirects the browser back to the authorization endpoint. */
  finish(ctx: Context, result: InteractionResults): Promise<void>;
  /** Saves a grant covering the given scopes and claims; returns its id. */
  saveGrant(input: { accountId: string; clientId: string; grantId?: string; scopes: string[]; claims: string[]; resources?: Record<string, string[]> }): Promise<string>;
}

export function createInteractions(ref: () => Provider): Interactions {
  return {
    async load(ctx, uid) {
      let details: Awaited<ReturnType<Provider['interactionDetails']>>;
      try {
        details = await ref().interactionDetails(ctx.req, ctx.res);
      } catch (err) {
        if (err instanceof errors.SessionNotFound || (err as { name?: string }).name === 'SessionNotFound') {
          throw new AppError('interaction_expired', 400, 'error.session_expired', { cause: err });
        }
        throw err;
      }
      if (details.uid !== uid) throw new AppError('interaction_mismatch', 400, 'error.session_expired');
      return {
        uid: details.uid,
        prompt: details.prompt as InteractionView['prompt'],
        params: details.params as Record<string, unknown>,
        clientId: String(details.params.client_id),
        sessionAccountId: details.session?.accountId,
        sessionUid: details.session?.uid,
        grantId: details.grantId,
        lastSubmission: details.lastSubmission as Record<string, unknown> | undefined,
      };
    },

    async client(clientId) {
      const client = await ref().Client.find(clientId);
      if (!client) throw new AppError('unknown_portal', 400, 'error.session_expired');
      return {
        clientId: client.clientId,
        name: client.clientName ?? client.clientId,
        scopeAllowed: new Set(String(client.scope ?? '').split(' ').filter(Boolean)),
      };
    },

    async finish(ctx, result) {
      // A consent or enterprise choice keeps the login submitted earlier in the same interaction
      // (else a `prompt=login` request would ask for the login again, forever).
      const url = await ref().interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: 'consent' in result || 'organization' in result });
      ctx.status = 303;
      ctx.redirect(url);
    },

    async saveGrant({ accountId, clientId, grantId, scopes, claims, resources = {} }) {
      const provider = ref();
      const existing = grantId ? await provider.Grant.find(grantId) : undefined;
      const grant = existing ?? new provider.Grant({ accountId, clientId });
      if (scopes.length) grant.addOIDCScope(scopes.join(' '));
      if (claims.length) grant.addOIDCClaims(claims);
      for (const [resource, list] of Object.entries(resources)) if (list.length) grant.addResourceScope(resource, list.join(' '));
      return grant.save();
    },
  };
}
