/**
 * The console's portals pages (to be written).
 */
import type Router from '@koa/router';
import type { SectionDeps } from '../admin.app.js';

export function registerPortalRoutes(_router: Router, _deps: SectionDeps): void {
  // Filled in by the portals section.
}
