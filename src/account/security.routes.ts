import Router from '@koa/router';
import { noStore } from '../http/headers.js';
import { createSecurityController, type SecurityDeps } from './security.controller.js';
import { createPortalsController, type PortalsDeps } from './portals.controller.js';
import { createSessionsController, type SessionsDeps } from './sessions.controller.js';
import { createOrganizationsController } from './organizations.controller.js';
import type { OrgService } from '../orgs/index.js';

export function securityRoutes(deps: SecurityDeps & Omit<PortalsDeps, keyof SecurityDeps> & Omit<SessionsDeps, keyof SecurityDeps | keyof PortalsDeps> & { orgs: OrgService }): Router {
  const c = createSecurityController(deps);
  const p = createPortalsController(deps);
  const s = createSessionsController(deps);
  const o = createOrganizationsController({ ...deps, requireSession: c.requireSession, forChange: c.forChange });
  const router = new Router();
  router.get('/account/organizations', noStore, o.show);
  router.post('/account/organizations/delegate', noStore, o.delegate);
  router.post('/account/organizations/revoke', noStore, o.revoke);
  router.get('/account/sessions', noStore, s.show);
  router.post('/account/sessions/end', noStore, s.end);
  router.post('/account/sessions/end-others', noStore, s.endOthers);
  router.get('/account/portals', noStore, p.show);
  router.post('/account/portals/revoke', noStore, p.revoke);
  router.get('/account', noStore, (ctx) => {
    ctx.status = 303;
    ctx.redirect('/account/security');
  });
  router.get('/account/security', noStore, c.show);
  router.get('/account/callback', noStore, c.callback);
  router.get('/account/signin', noStore, c.signIn);
  router.post('/account/security/totp', noStore, c.startTotp);
  router.post('/account/security/totp/confirm', noStore, c.confirmTotp);
  router.post('/account/security/factors/remove', noStore, c.removeFactor);
  router.post('/account/security/recovery-codes', noStore, c.regenerateCodes);
  router.post('/account/security/passkey', noStore, c.startPasskey);
  router.post('/account/security/passkey/finish', noStore, c.finishPasskey);
  return router;
}
