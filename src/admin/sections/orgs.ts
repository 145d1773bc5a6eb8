/**
 * The console's orgs pages (to be written).
 */
import type Router from '@koa/router';
import type { SectionDeps } from '../admin.app.js';

export function registerOrgRoutes(_router: Router, _deps: SectionDeps): void {
  // Filled in by the orgs section.
}
