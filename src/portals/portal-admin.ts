/**
 * An operator disabling and enabling a portal. Disabling ends, in the store, every grant and token
 * issued to it (anyone's), so that enabling it again brings back none of them: the people using it
 * sign in to it again through their SSO sessions, and nothing a portal held before being disabled
 * works afterwards.
 */
import type { AuditService } from '../audit/index.js';
import type { PortalRepository } from '../store/index.js';
import type { Access } from '../provider/access.js';

export function createPortalAdmin(deps: { repo: PortalRepository; access: Pick<Access, 'endClient'>; audit: AuditService }) {
  return {
    /** False when there is no such portal. */
    async disable(clientId: string, operator: string): Promise<boolean> {
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
  };
}
export type PortalAdmin = ReturnType<typeof createPortalAdmin>;
