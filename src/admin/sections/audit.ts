/**
 * The console's audit pages (to be written).
 */
import type Router from '@koa/router';
import type { SectionDeps } from '../admin.app.js';

export function registerAuditRoutes(_router: Router, _deps: SectionDeps): void {
  // Filled in by the audit section.
}
