/**
 * The console's operators pages (to be written).
 */
import type Router from '@koa/router';
import type { SectionDeps } from '../admin.app.js';

export function registerOperatorRoutes(_router: Router, _deps: SectionDeps): void {
  // Filled in by the operators section.
}
