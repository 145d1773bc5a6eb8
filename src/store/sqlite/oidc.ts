/**
 * The oidc-provider adapter models (Session, AccessToken, Grant, ...) in `oidc_models`: one row per
 * (model, id); `consume` is one conditional UPDATE.
 */
import type { OidcModelStore, OidcPayload } from '../types.js';
import type { SqliteContext } from './shared.js';

interface OidcRow {
  payload: string;
  consumed_at: number | null;
}

function oidcRow(row: OidcRow | undefined): OidcPayload | undefined {
  if (!row) return undefined;
  const payload = JSON.parse(row.payload) as OidcPayload;
  // oidc-provider checks `payload.consumed` (epoch seconds) to detect code/token replay.
  if (row.consumed_at !== null) payload.consumed = Math.floor(row.consumed_at / 1000);
  return payload;
}

function optionalString(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

export function createSqliteOidc({ now, statement, call }: SqliteContext): OidcModelStore {
  const oidcUpsert = statement<[Record<string, unknown>]>(`
    INSERT INTO oidc_models (model, id, payload, uid, user_code, grant_id, expires_at, consumed_at)
    VALUES (@model, @id, @payload, @uid, @userCode, @grantId, @expiresAt, @consumedAt)
    ON CONFLICT (model, id) DO UPDATE SET
      payload = excluded.payload, uid = excluded.uid, user_code = excluded.user_code,
      grant_id = excluded.grant_id, expires_at = excluded.expires_at, consumed_at = excluded.consumed_at
  `);
  const live = '(expires_at IS NULL OR expires_at > ?)';
  const oidcFind = statement<[string, string, number], OidcRow>(
    `SELECT payload, consumed_at FROM oidc_models WHERE model = ? AND id = ? AND ${live}`,
  );
  const oidcFindByUid = statement<[string, string, number], OidcRow>(
    `SELECT payload, consumed_at FROM oidc_models WHERE model = ? AND uid = ? AND ${live} LIMIT 1`,
  );
  const oidcFindByUserCode = statement<[string, string, number], OidcRow>(
    `SELECT payload, consumed_at FROM oidc_models WHERE model = ? AND user_code = ? AND ${live} LIMIT 1`,
  );
  const oidcConsume = statement<[number, string, string, number]>(
    `UPDATE oidc_models SET consumed_at = ? WHERE model = ? AND id = ? AND consumed_at IS NULL AND ${live}`,
  );
  const oidcDestroy = statement<[string, string]>('DELETE FROM oidc_models WHERE model = ? AND id = ?');
  const oidcRevoke = statement<[string, string]>('DELETE FROM oidc_models WHERE model = ? AND grant_id = ?');

  return {
    upsert: (model, id, payload, expiresInSeconds) =>
      call(() => {
        const { consumed, ...rest } = payload;
        oidcUpsert().run({
          model,
          id,
          payload: JSON.stringify(rest),
          uid: optionalString(payload.uid),
          userCode: optionalString(payload.userCode),
          grantId: optionalString(payload.grantId),
          expiresAt: expiresInSeconds === undefined ? null : now() + Math.round(expiresInSeconds * 1000),
          // A payload re-saved after consumption keeps its consumed mark.
          consumedAt: typeof consumed === 'number' ? Math.round(consumed * 1000) : null,
        });
      }),
    find: (model, id) => call(() => oidcRow(oidcFind().get(model, id, now()))),
    findByUid: (model, uid) => call(() => oidcRow(oidcFindByUid().get(model, uid, now()))),
    findByUserCode: (model, userCode) => call(() => oidcRow(oidcFindByUserCode().get(model, userCode, now()))),
    consume: (model, id) =>
      call(() => {
        const t = now();
        return oidcConsume().run(t, model, id, t).changes === 1;
      }),
    destroy: (model, id) =>
      call(() => {
        oidcDestroy().run(model, id);
      }),
    revokeByGrantId: (model, grantId) =>
      call(() => {
        oidcRevoke().run(model, grantId);
      }),
  };
}
