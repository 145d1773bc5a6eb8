/**
 * Diagnostic variants of the benchmark's dinhdanh, to split its cost into layers when a goal is
 * missed (`bench/run.ts --serve split`, `--oidc-store memory`). They change nothing in src/: they
 * only serve or wire the same objects differently inside the benchmark child. Figures taken with a
 * variant are never written to bench/results/.
 *
 * - `split`: protocol endpoints go straight to oidc-provider's own Koa app (our provider
 *   configuration, adapter and store), skipping dinhdanh's outer app (request log, security
 *   headers, routers, error pages); interaction and account pages still go through the app, so a
 *   sign-in works. The difference to `app` is the outer app's cost per request.
 * - `memory` oidc store: oidc-provider's records (tokens, codes, sessions, grants) in a Map instead of
 *   SQLite. The difference to `sqlite` is the durable store's cost.
 */
import type http from 'node:http';
import type { System } from '../../src/compose.js';
import type { OidcModelStore } from '../../src/store/index.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

export function splitHandler(sys: System): Handler {
  const app = sys.app.callback();
  let current: ReturnType<System['provider']> | undefined;
  let direct: Handler | undefined;
  return (req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith('/interaction/') || url.startsWith('/account') || url.startsWith('/session/end/confirm') || url.startsWith('/static/')) {
      void app(req, res);
      return;
    }
    const provider = sys.provider();
    if (provider !== current) {
      current = provider;
      direct = provider.callback() as unknown as Handler;
    }
    direct!(req, res);
  };
}

/** Replaces the methods of the store's oidc-provider record store (shared by every holder of it) with a Map. */
export function useMemoryOidcStore(store: { oidc: OidcModelStore }): void {
  interface Entry { payload: Record<string, unknown>; exp: number | undefined; consumed?: number }
  const rows = new Map<string, Entry>();
  // Secondary indexes, as the SQLite table has (model+uid, model+userCode, model+grantId).
  const byUid = new Map<string, string>();
  const byUserCode = new Map<string, string>();
  const byGrant = new Map<string, Set<string>>();
  const key = (model: string, id: string) => `${model}\u0000${id}`;
  const live = (e: Entry | undefined) => (e && (e.exp === undefined || e.exp > Date.now()) ? e : undefined);
  const out = (e: Entry | undefined) => (e ? { ...e.payload, ...(e.consumed !== undefined ? { consumed: e.consumed } : {}) } as Awaited<ReturnType<OidcModelStore['find']>> : undefined);
  const remove = (k: string) => {
    const e = rows.get(k);
    if (!e) return;
    rows.delete(k);
    const model = k.slice(0, k.indexOf('\u0000'));
    if (typeof e.payload.uid === 'string') byUid.delete(key(model, e.payload.uid));
    if (typeof e.payload.userCode === 'string') byUserCode.delete(key(model, e.payload.userCode));
    if (typeof e.payload.grantId === 'string') byGrant.get(key(model, e.payload.grantId))?.delete(k);
  };
  const memory: OidcModelStore = {
    async upsert(model, id, payload, expiresIn) {
      const { consumed, ...rest } = payload as Record<string, unknown>;
      const k = key(model, id);
      remove(k);
      const entry: Entry = {
        payload: JSON.parse(JSON.stringify(rest)) as Record<string, unknown>,
        exp: expiresIn === undefined ? undefined : Date.now() + expiresIn * 1000,
        ...(typeof consumed === 'number' ? { consumed } : {}),
      };
      rows.set(k, entry);
      if (typeof rest.uid === 'string') byUid.set(key(model, rest.uid), k);
      if (typeof rest.userCode === 'string') byUserCode.set(key(model, rest.userCode), k);
      if (typeof rest.grantId === 'string') {
        const g = key(model, rest.grantId);
        if (!byGrant.has(g)) byGrant.set(g, new Set());
        byGrant.get(g)!.add(k);
      }
    },
    async find(model, id) {
      return out(live(rows.get(key(model, id))));
    },
    async findByUid(model, uid) {
      const k = byUid.get(key(model, uid));
      return out(k === undefined ? undefined : live(rows.get(k)));
    },
    async findByUserCode(model, userCode) {
      const k = byUserCode.get(key(model, userCode));
      return out(k === undefined ? undefined : live(rows.get(k)));
    },
    async consume(model, id) {
      const e = live(rows.get(key(model, id)));
      if (!e || e.consumed !== undefined) return false;
      e.consumed = Math.floor(Date.now() / 1000);
      return true;
    },
    async destroy(model, id) {
      remove(key(model, id));
    },
    async revokeByGrantId(model, grantId) {
      for (const k of [...(byGrant.get(key(model, grantId)) ?? [])]) remove(k);
      byGrant.delete(key(model, grantId));
    },
    async insertIfAbsent(model, id, payload, expiresIn) {
      if (live(rows.get(key(model, id)))) return false;
      await memory.upsert(model, id, payload, expiresIn);
      return true;
    },
    // Scans: the benchmarks' scenarios do not end people's access.
    async listByAccount(model, accountId) {
      return [...rows].filter(([k, e]) => k.startsWith(`${model}\u0000`) && e.payload.accountId === accountId && live(e))
        .map(([k, e]) => ({ id: k.slice(k.indexOf('\u0000') + 1), payload: out(e)! }));
    },
    async destroyByAccount(models, accountId, clientId) {
      const hit = [...rows].filter(([k, e]) => models.some((m) => k.startsWith(`${m}\u0000`)) && e.payload.accountId === accountId && (clientId === undefined || e.payload.clientId === clientId));
      for (const [k] of hit) remove(k);
      return hit.length;
    },
    async destroyByClient(models, clientId) {
      const hit = [...rows].filter(([k, e]) => models.some((m) => k.startsWith(`${m}\u0000`)) && e.payload.clientId === clientId);
      for (const [k] of hit) remove(k);
      return hit.length;
    },
  };
  Object.assign(store.oidc, memory);
}
