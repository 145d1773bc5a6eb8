/** Route chains of the self-service journeys: show the step, post the step. */
import Router from '@koa/router';
import { noStore } from '../http/headers.js';
import type { SelfServiceController } from './selfservice.controller.js';

export function selfServiceRoutes(c: SelfServiceController): Router {
  const router = new Router();
  router.get('/register', noStore, c.showRegister);
  router.post('/register', noStore, c.submitDetails);
  router.post('/register/code', noStore, c.submitRegisterCode);
  router.post('/register/resend', noStore, c.resendRegisterCode);
  router.post('/register/password', noStore, c.submitRegisterPassword);
  router.post('/register/continue', noStore, c.continueRegistered);
  router.post('/register/restart', noStore, c.restart);
  router.get('/recover', noStore, c.showRecover);
  router.post('/recover', noStore, c.submitRecoverStart);
  router.post('/recover/code', noStore, c.submitRecoverCode);
  router.post('/recover/factor', noStore, c.submitFactor);
  router.post('/recover/passkey', noStore, c.submitPasskey);
  router.post('/recover/password', noStore, c.submitRecoverPassword);
  router.post('/recover/restart', noStore, c.restart);
  router.get('/recover/cancel/:token', noStore, c.showCancel);
  router.post('/recover/cancel', noStore, c.submitCancel);
  router.post('/recover/reset/open', noStore, c.claimReset);
  router.get('/recover/reset/:token', noStore, c.openReset);
  router.get('/recover/reset', noStore, c.showReset);
  router.post('/recover/reset', noStore, c.submitReset);
  return router;
}
