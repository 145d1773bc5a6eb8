/**
 * The console's keys pages (to be written).
 */
import type Router from '@koa/router';
import type { SectionDeps } from '../admin.app.js';

export function registerKeyRoutes(_router: Router, _deps: SectionDeps): void {
  // Filled in by the keys section.
}
