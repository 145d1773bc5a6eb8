/** Route chains that read like the journey: show the step, post the step, or leave. */
import Router from '@koa/router';
import { noStore } from '../http/headers.js';
import { createInteractionController, type InteractionDeps } from './interaction.controller.js';
import { createSecondFactorController, type SecondFactorDeps } from './second-factor.controller.js';
import { createJourneys } from './journey.js';

const UID = '/interaction/:uid';

export type InteractionRouteDeps = Omit<InteractionDeps, 'journeys' | 'secondFactor'> & Omit<SecondFactorDeps, 'journeys'> & {
  store: { oidc: Parameters<typeof createJourneys>[0] };
  interactionTtlSeconds: number;
};

export function interactionRoutes(deps: InteractionRouteDeps): Router {
  const journeys = createJourneys(deps.store.oidc, deps.interactionTtlSeconds);
  const secondFactor = createSecondFactorController({ ...deps, journeys });
  const c = createInteractionController({ ...deps, journeys, secondFactor });
  const router = new Router();
  router.get(UID, noStore, c.show);
  router.post(`${UID}/login`, noStore, c.login);
  router.post(`${UID}/consent`, noStore, c.consent);
  router.post(`${UID}/org`, noStore, c.chooseOrg);
  router.post(`${UID}/second-factor`, noStore, secondFactor.submitCode);
  router.post(`${UID}/enrol`, noStore, secondFactor.submitEnrol);
  router.post(`${UID}/passkey`, noStore, secondFactor.submitPasskey);
  router.post(`${UID}/passkey-register`, noStore, secondFactor.submitPasskeyRegister);
  router.post(`${UID}/continue`, noStore, secondFactor.submitContinue);
  router.post(`${UID}/send-code`, noStore, secondFactor.sendCode);
  router.post(`${UID}/message-code`, noStore, secondFactor.submitMessageCode);
  router.get(`${UID}/abort`, noStore, c.abort);
  router.get(`${UID}/register`, noStore, c.selfService);
  router.get(`${UID}/recover`, noStore, c.selfService);
  return router;
}
