/**
 * The dashboard: what an operator on duty looks at first — the store and the background jobs
 * (the back-channel logout queue above all: portals not told of a lock keep serving its sessions),
 * the signing keys and their states, sign-ins in the last 24 hours, and proposals waiting for a
 * second operator. Every figure is one indexed query or a grouped count; nothing is loaded whole.
 */
import type Router from '@koa/router';
import type { SectionDeps } from '../admin.app.js';
import { formatDate } from '../../account/account-http.js';
import { BACKCHANNEL_LOGOUT_JOB } from '../../provider/backchannel-logout.js';
import { dashboardHours, hourlyChart } from './usage.js';

export function registerDashboardRoutes(router: Router, deps: SectionDeps): void {
  const { kit } = deps;
  router.get('/admin', kit.need('dashboard'), async (ctx) => {
    const t0 = kit.now();
    let storeOk = true;
    try {
      await deps.store.ping();
    } catch {
      storeOk = false;
    }
    const [jobs, keys, signIns, pending, hours] = await Promise.all([
      deps.store.jobs.stats(),
      deps.signingKeys.describe(),
      deps.store.audit.count({ event: 'SIGN_IN_COMPLETED', from: t0 - 24 * 3600_000 }),
      deps.actions.approvals.list({ state: 'pending', limit: 50 }),
      // The 24-hour picture of /admin/usage, for those who may read statistics.
      dashboardHours(deps, ctx),
    ]);
    const backchannel = jobs.filter((j) => j.kind === BACKCHANNEL_LOGOUT_JOB);
    const queued = backchannel.filter((j) => j.status === 'pending').reduce((n, j) => n + j.count, 0);
    const failed = backchannel.filter((j) => j.status === 'failed').reduce((n, j) => n + j.count, 0);
    const oldest = backchannel.filter((j) => j.status === 'pending' && j.oldestDueAt !== null).map((j) => j.oldestDueAt!).sort((a, b) => a - b)[0];
    kit.page(ctx, 'admin/dashboard', (t, locale) => ({
      title: t('admin.dashboard.title'),
      storeOk,
      storeKind: deps.store.kind,
      signIns,
      queued,
      failed,
      oldestDue: oldest !== undefined ? formatDate(oldest, locale) : null,
      overdue: oldest !== undefined && oldest < t0 - 5 * 60_000,
      jobs: jobs.map((j) => ({ ...j, oldestDueAt: j.oldestDueAt !== null ? formatDate(j.oldestDueAt, locale) : '—' })),
      keys: keys.filter((k) => k.state !== 'retired'),
      pending: pending.length,
      usageChart: hours ? hourlyChart(hours, { t, locale, scope: t('admin.usage.all_portals'), id: 'dashboard-hourly' }) : null,
    }));
  });
}
