/**
 * The console's accounts pages (to be written).
 */
import type Router from '@koa/router';
import type { SectionDeps } from '../admin.app.js';

export function registerAccountRoutes(_router: Router, _deps: SectionDeps): void {
  // Filled in by the accounts section.
}
