/**
 * The console's approvals pages (to be written).
 */
import type Router from '@koa/router';
import type { SectionDeps } from '../admin.app.js';

export function registerApprovalRoutes(_router: Router, _deps: SectionDeps): void {
  // Filled in by the approvals section.
}
