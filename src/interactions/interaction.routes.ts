/** Route chains that read like the journey: show the step, post the step, or leave. */
import Router from '@koa/router';
import { noStore } from '../http/headers.js';
import { createInteractionController, type InteractionDeps } from './interaction.controller.js';

const UID = '/interaction/:uid';

export function interactionRoutes(deps: InteractionDeps): Router {
  const c = createInteractionController(deps);
  const router = new Router();
  router.get(UID, noStore, c.show);
  router.post(`${UID}/login`, noStore, c.login);
  router.post(`${UID}/consent`, noStore, c.consent);
  router.get(`${UID}/abort`, noStore, c.abort);
  return router;
}
