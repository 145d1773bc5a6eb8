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

export function createSqliteOidc({ db, now, statement, call }: SqliteContext): OidcModelStore {
  const live = '(expires_at IS NULL OR expires_at > ?)';
  const oidcUpsert = statement<[Record<string, unknown>]>(`
    INSERT INTO oidc_models (model, id, payload, uid, user_code, grant_id, account_id, client_id, expires_at, consumed_at)
    VALUES (@model, @id, @payload, @uid, @userCode, @grantId, @accountId, @clientId, @expiresAt, @consumedAt)
    ON CONFLICT (model, id) DO UPDATE SET
      payload = excluded.payload, uid = excluded.uid, user_code = excluded.user_code,
      grant_id = excluded.grant_id, account_id = excluded.account_id, client_id = excluded.client_id,
      expires_at = excluded.expires_at, consumed_at = excluded.consumed_at
  `);
  // One statement: inserted, or an expired record replaced; a live one is left alone (no change).
  const oidcInsertIfAbsent = statement<[Record<string, unknown>]>(`
    INSERT INTO oidc_models (model, id, payload, uid, user_code, grant_id, account_id, client_id, expires_at, consumed_at)
    VALUES (@model, @id, @payload, @uid, @userCode, @grantId, @accountId, @clientId, @expiresAt, NULL)
    ON CONFLICT (model, id) DO UPDATE SET
      payload = excluded.payload, uid = excluded.uid, user_code = excluded.user_code,
      grant_id = excluded.grant_id, account_id = excluded.account_id, client_id = excluded.client_id,
      expires_at = excluded.expires_at, consumed_at = NULL
    WHERE oidc_models.expires_at IS NOT NULL AND oidc_models.expires_at <= @now
  `);
  const oidcListByAccount = statement<[string, string, number], OidcRow & { id: string }>(
    `SELECT id, payload, consumed_at FROM oidc_models WHERE account_id = ? AND model = ? AND ${live} ORDER BY id`,
  );
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

  /** The columns of a record: lookup keys copied from the payload. */
  const row = (model: string, id: string, payload: OidcPayload, expiresInSeconds: number | undefined) => {
    const { consumed, ...rest } = payload;
    return {
      model,
      id,
      payload: JSON.stringify(rest),
      uid: optionalString(payload.uid),
      userCode: optionalString(payload.userCode),
      grantId: optionalString(payload.grantId),
      accountId: optionalString(payload.accountId),
      clientId: optionalString(payload.clientId),
      expiresAt: expiresInSeconds === undefined ? null : now() + Math.round(expiresInSeconds * 1000),
      // A payload re-saved after consumption keeps its consumed mark.
      consumedAt: typeof consumed === 'number' ? Math.round(consumed * 1000) : null,
    };
  };
  const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');
  const destroyWhere = (column: 'account_id' | 'client_id', models: readonly string[], value: string, clientId?: string) =>
    call(() => {
      if (models.length === 0) return 0;
      const extra = clientId === undefined ? '' : ' AND client_id = ?';
      const sql = `DELETE FROM oidc_models WHERE ${column} = ? AND model IN (${placeholders(models.length)})${extra}`;
      return db.prepare(sql).run(value, ...models, ...(clientId === undefined ? [] : [clientId])).changes;
    });

  return {
    upsert: (model, id, payload, expiresInSeconds) =>
      call(() => {
        oidcUpsert().run(row(model, id, payload, expiresInSeconds));
      }),
    insertIfAbsent: (model, id, payload, expiresInSeconds) =>
      call(() => {
        const t = now();
        const { consumedAt: _never, ...fields } = row(model, id, payload, expiresInSeconds);
        return oidcInsertIfAbsent().run({ ...fields, now: t }).changes === 1;
      }),
    listByAccount: (model, accountId) =>
      call(() => oidcListByAccount().all(accountId, model, now()).map((r) => ({ id: r.id, payload: oidcRow(r)! }))),
    destroyByAccount: (models, accountId, clientId) => destroyWhere('account_id', models, accountId, clientId),
    destroyByClient: (models, clientId) => destroyWhere('client_id', models, clientId),
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
