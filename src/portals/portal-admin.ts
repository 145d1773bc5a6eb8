/**
 * An operator's actions on a registered portal, from either door (the console and the CLI).
 *
 * Disabling ends, in the store, every grant and token issued to it (anyone's), so that enabling it
 * again brings back none of them: the people using it sign in to it again through their SSO
 * sessions, and nothing a portal held before being disabled works afterwards.
 *
 * Rotating a client secret gives the portal a new one, shown once, and keeps the one it replaces
 * working for a grace period, so that a portal running on several machines can move to the new
 * secret one machine at a time without failing a sign-in: oidc-provider compares one secret per
 * client, and portal.service.ts clientMetadata lets a request presenting the previous secret,
 * within its grace period, authenticate as before. A grace of 0 ends the old secret at once (it
 * leaked).
 */
import crypto from 'node:crypto';
import type { AuditService } from '../audit/index.js';
import type { PortalRepository } from '../store/index.js';
import type { Access } from '../provider/access.js';
import type { SecretBox } from '../keys/secret-box.js';
import { newClientSecret, portalSecretAad } from './portal.service.js';
import { PortalValidationError } from './portal.validation.js';

/** The default grace period of a rotated secret: a day for every instance of the portal to move. */
export const DEFAULT_SECRET_GRACE_MS = 24 * 3_600_000;
/** The longest grace period: two secrets in force for longer would be two credentials, not a rotation. */
export const MAX_SECRET_GRACE_MS = 30 * 86_400_000;

/** Who rotates a secret, through which door, and why (recorded with PORTAL_SECRET_ROTATED). */
export interface PortalAct {
  /** A person id, or `cli:<name>` for the command line's host operator. */
  operator: string;
  /** The role acted in (`integration`), when the door checked one. */
  role?: string;
  reason: string;
  via: 'cli' | 'console';
}

export interface RotatedSecret {
  client_id: string;
  /** The new secret: shown once, never stored in the clear, logged or audited. */
  client_secret: string;
  /** Until when the replaced secret is still accepted (ISO 8601), or null when it ended at once. */
  previous_valid_until: string | null;
  /**
   * An earlier rotation's previous secret was still in its grace period: it stopped working now
   * (only one previous secret is kept).
   */
  earlier_previous_ended: boolean;
}

export function createPortalAdmin(deps: {
  repo: PortalRepository;
  access: Pick<Access, 'endClient'>;
  audit: AuditService;
  secretBox: SecretBox;
  now?: () => number;
  random?: (n: number) => Buffer;
  /**
   * dinhdanh's own clients in the registry (the operators' console), whose secrets are derived
   * from the cookie keys and re-registered at start: rotating them here would be undone, or lock
   * the operators out.
   */
  firstParty?: readonly string[];
}) {
  const now = deps.now ?? Date.now;
  const random = deps.random ?? crypto.randomBytes;
  return {
    /** False when there is no such portal. */
    async disable(clientId: string, operator: string): Promise<boolean> {
      // Disabling the console's own client would lock every operator out of the console.
      if (deps.firstParty?.includes(clientId)) throw new PortalValidationError(`${clientId} is dinhdanh's own client (the operators' console): it is not disabled`);
      if (!(await deps.repo.setDisabled(clientId, true))) return false;
      const records = await deps.access.endClient(clientId);
      deps.audit.record('PORTAL_DISABLED', { portal: clientId, operator, records_ended: records });
      return true;
    },
    async enable(clientId: string, operator: string): Promise<boolean> {
      if (!(await deps.repo.setDisabled(clientId, false))) return false;
      deps.audit.record('PORTAL_ENABLED', { portal: clientId, operator });
      return true;
    },

    /**
     * A new client secret for a portal or resource server that authenticates with one; the secret
     * it replaces is accepted for `graceMs` more (0 to MAX_SECRET_GRACE_MS; 0: refused at once).
     * The store's revision changes, so every instance uses the new secret at its next request.
     * Refusals (PortalValidationError): no such client, one without a secret (private_key_jwt), a
     * first-party client, a grace out of range, a missing reason.
     */
    async rotateSecret(clientId: string, graceMs: number, act: PortalAct): Promise<RotatedSecret> {
      if (!Number.isSafeInteger(graceMs) || graceMs < 0 || graceMs > MAX_SECRET_GRACE_MS) {
        throw new PortalValidationError('the grace period must be from 0 to 30 days');
      }
      const reason = typeof act.reason === 'string' ? act.reason.normalize('NFC').trim() : '';
      if (reason.length < 5 || reason.length > 500 || /\p{Cc}/u.test(reason)) {
        throw new PortalValidationError('a reason is required: 5–500 characters saying why (it is recorded in the audit log)');
      }
      if (deps.firstParty?.includes(clientId)) {
        throw new PortalValidationError(`${clientId} is dinhdanh's own client: its secret is derived from the cookie keys (rotate those with dinhdanh keys generate --force), not rotated here`);
      }
      const portal = await deps.repo.find(clientId);
      if (!portal) throw new PortalValidationError(`no portal with client_id ${clientId}`);
      if (portal.secretCiphertext === null) {
        throw new PortalValidationError(`${clientId} has no client secret to rotate: it authenticates with its own keys (private_key_jwt); it rotates those itself, at its jwks_uri or by registering its new public keys`);
      }
      const t = now();
      const secret = newClientSecret(random);
      // The replaced ciphertext is kept as it is: sealed under the same associated data (the
      // portal's), it opens only as this portal's secret, like the current one.
      const previous = graceMs > 0 ? { ciphertext: portal.secretCiphertext, expiresAt: t + graceMs } : null;
      const earlierPreviousEnded = !!portal.previousSecret && portal.previousSecret.expiresAt > t;
      if (!(await deps.repo.rotateSecret(clientId, deps.secretBox.seal(secret, portalSecretAad(clientId)), previous))) {
        throw new PortalValidationError(`no portal with client_id ${clientId}`);
      }
      deps.audit.record('PORTAL_SECRET_ROTATED', {
        portal: clientId,
        grace_seconds: Math.floor(graceMs / 1000),
        operator: act.operator,
        role: act.role ?? null,
        reason,
        via: act.via,
        ...(earlierPreviousEnded ? { earlier_previous_ended: true } : {}),
      });
      return {
        client_id: clientId,
        client_secret: secret,
        previous_valid_until: previous ? new Date(previous.expiresAt).toISOString() : null,
        earlier_previous_ended: earlierPreviousEnded,
      };
    },
  };
}
export type PortalAdmin = ReturnType<typeof createPortalAdmin>;
