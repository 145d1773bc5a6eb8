/**
 * Portals (relying parties) in `portals`; every change bumps `revision`.
 */
import type { Portal, PortalRepository } from '../types.js';
import type { SqliteContext } from './shared.js';

interface PortalRow {
  client_id: string;
  name: string;
  metadata: string;
  secret_ciphertext: string | null;
  /** Both NULL, or both set (a CHECK in migration 9); NULL on rows from before it. */
  previous_secret_ciphertext: string | null;
  previous_secret_expires_at: number | null;
  sector: string;
  national_id: number;
  national_id_basis: string | null;
  disabled: number;
  created_at: number;
  updated_at: number;
}

function portalRow(row: PortalRow): Portal {
  return {
    clientId: row.client_id,
    name: row.name,
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    secretCiphertext: row.secret_ciphertext,
    previousSecret:
      row.previous_secret_ciphertext === null || row.previous_secret_expires_at === null
        ? null
        : { ciphertext: row.previous_secret_ciphertext, expiresAt: row.previous_secret_expires_at },
    sector: row.sector,
    nationalId: row.national_id === 1,
    nationalIdBasis: row.national_id_basis,
    disabled: row.disabled === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** A page size as SQL takes it: a whole number, none below 0 (SQLite reads a negative LIMIT as "no limit"). */
const pageSize = (limit: number): number => (Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : 0);

export function createSqlitePortals({ now, statement, call }: SqliteContext): PortalRepository {
  const portalInsert = statement<[Record<string, unknown>], PortalRow>(`
    INSERT INTO portals (client_id, name, metadata, secret_ciphertext, sector, national_id, national_id_basis,
                         disabled, created_at, updated_at)
    VALUES (@clientId, @name, @metadata, @secretCiphertext, @sector, @nationalId, @nationalIdBasis,
            @disabled, @createdAt, @updatedAt)
    RETURNING *
  `);
  const portalFind = statement<[string], PortalRow>('SELECT * FROM portals WHERE client_id = ?');
  const portalList = statement<[], PortalRow>('SELECT * FROM portals ORDER BY created_at, client_id');
  // Row values compare lexicographically (https://www.sqlite.org/rowvalue.html), so the cursor and
  // the ORDER BY are the same order and the index (created_at, client_id) serves both.
  const portalPageAfter = statement<[number, string, number], PortalRow>(
    'SELECT * FROM portals WHERE (created_at, client_id) > (?, ?) ORDER BY created_at, client_id LIMIT ?',
  );
  const portalPageFirst = statement<[number], PortalRow>('SELECT * FROM portals ORDER BY created_at, client_id LIMIT ?');
  const portalCount = statement<[], { n: number }>('SELECT count(*) AS n FROM portals');
  const portalRevision = statement<[string], { revision: number }>('SELECT revision FROM portals WHERE client_id = ?');
  const portalSetDisabled = statement<[number, number, string]>(
    'UPDATE portals SET disabled = ?, updated_at = ?, revision = revision + 1 WHERE client_id = ?',
  );

  const portalUpdate = statement<[{ clientId: string; name: string; metadata: string; secretCiphertext: string | null; now: number }]>(
    'UPDATE portals SET name = @name, metadata = @metadata, secret_ciphertext = @secretCiphertext, updated_at = @now, revision = revision + 1 WHERE client_id = @clientId',
  );

  const portalSetNationalId = statement<[{ clientId: string; nationalId: number; basis: string | null; metadata: string; now: number }]>(
    'UPDATE portals SET national_id = @nationalId, national_id_basis = @basis, metadata = @metadata, updated_at = @now, revision = revision + 1 WHERE client_id = @clientId',
  );

  const portalRotateSecret = statement<[{ clientId: string; secret: string; previous: string | null; previousExpiresAt: number | null; now: number }]>(`
    UPDATE portals SET secret_ciphertext = @secret, previous_secret_ciphertext = @previous, previous_secret_expires_at = @previousExpiresAt,
                       updated_at = @now, revision = revision + 1
    WHERE client_id = @clientId
  `);

  const portalUpdateMetadata = statement<[string, number, string]>(
    'UPDATE portals SET metadata = ?, updated_at = ?, revision = revision + 1 WHERE client_id = ?',
  );

  return {
    create: (portal) =>
      call(
        () => {
          const t = now();
          const row = portalInsert().get({
            clientId: portal.clientId,
            name: portal.name,
            metadata: JSON.stringify(portal.metadata),
            secretCiphertext: portal.secretCiphertext,
            sector: portal.sector,
            nationalId: portal.nationalId ? 1 : 0,
            nationalIdBasis: portal.nationalIdBasis,
            disabled: portal.disabled ? 1 : 0,
            createdAt: t,
            updatedAt: t,
          });
          if (!row) throw new Error('INSERT … RETURNING returned no row');
          return portalRow(row);
        },
        () => 'clientId',
      ),
    find: (clientId) =>
      call(() => {
        const row = portalFind().get(clientId);
        return row && portalRow(row);
      }),
    list: () => call(() => portalList().all().map(portalRow)),
    page: ({ after, limit }) =>
      call(() => {
        const n = pageSize(limit);
        const rows = after ? portalPageAfter().all(after.createdAt, after.clientId, n) : portalPageFirst().all(n);
        return rows.map(portalRow);
      }),
    count: () => call(() => portalCount().get()?.n ?? 0),
    revision: (clientId) => call(() => portalRevision().get(clientId)?.revision),
    setDisabled: (clientId, disabled) =>
      call(() => portalSetDisabled().run(disabled ? 1 : 0, now(), clientId).changes === 1),
    setNationalId: (clientId, basis, metadata) =>
      call(() => portalSetNationalId().run({ clientId, nationalId: basis === null ? 0 : 1, basis, metadata: JSON.stringify(metadata), now: now() }).changes === 1),
    update: (clientId, changes) =>
      call(
        () =>
          portalUpdate().run({
            clientId,
            name: changes.name,
            metadata: JSON.stringify(changes.metadata),
            secretCiphertext: changes.secretCiphertext,
            now: now(),
          }).changes === 1,
      ),
    rotateSecret: (clientId, secretCiphertext, previous) =>
      call(() => {
        if (typeof secretCiphertext !== 'string') throw new TypeError('the new secret must be a string');
        if (previous !== null && (typeof previous.ciphertext !== 'string' || !Number.isFinite(previous.expiresAt))) {
          throw new TypeError('the previous secret needs a string ciphertext and a numeric expiresAt');
        }
        return portalRotateSecret().run({
          clientId,
          secret: secretCiphertext,
          previous: previous === null ? null : previous.ciphertext,
          previousExpiresAt: previous === null ? null : previous.expiresAt,
          now: now(),
        }).changes === 1;
      }),
    updateMetadata: (clientId, metadata) =>
      call(() => portalUpdateMetadata().run(JSON.stringify(metadata), now(), clientId).changes === 1),
  };
}
