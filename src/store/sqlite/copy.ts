/**
 * `store copy` for SQLite: every table as backend-neutral records (types.ts, StoreCopy) and back.
 * Column names map to camelCase; JSON columns are parsed; 0/1 columns become booleans.
 */
import type Database from 'better-sqlite3';
import type { CopyCollection, StoreCopy } from '../types.js';
import { LOCK_REASONS, checkApprovalStatus, checkRoles, isLockReason } from '../values.js';

interface TableSpec {
  table: string;
  /** Columns that order the export (the primary key). */
  order: string;
  json?: readonly string[];
  bool?: readonly string[];
  /** Column name overrides (neutral field → column) where the rule snake_case ↔ camelCase does not hold. */
  rename?: Readonly<Record<string, string>>;
  /** Values for columns added after records may have been exported (absent in older records). */
  defaults?: Readonly<Record<string, unknown>>;
  /** Values for such columns computed from the rest of the record. */
  derive?: (record: Record<string, unknown>) => Record<string, unknown>;
  /** Turns the exported row (camelCase columns) into the neutral record, where they differ. */
  exported?: (row: Record<string, unknown>) => Record<string, unknown>;
  /** Turns a neutral record into camelCase columns, where they differ (checked: it reaches a STRICT table). */
  imported?: (record: Record<string, unknown>) => Record<string, unknown>;
}

/** The payload's string field, for lookup columns copied from it. */
const fromPayload = (record: Record<string, unknown>, field: string): string | null => {
  const payload = record.payload as Record<string, unknown> | null | undefined;
  const v = payload && typeof payload === 'object' ? payload[field] : undefined;
  return typeof v === 'string' ? v : null;
};

/**
 * Portals: the neutral record (types.ts: Portal) holds the previous secret as one value, null or
 * { ciphertext, expiresAt }; the table keeps it in two columns.
 */
function portalExported(row: Record<string, unknown>): Record<string, unknown> {
  const { previousSecretCiphertext: ciphertext, previousSecretExpiresAt: expiresAt, ...rest } = row;
  return { ...rest, previousSecret: ciphertext === null || ciphertext === undefined ? null : { ciphertext, expiresAt } };
}

function portalImported(record: Record<string, unknown>): Record<string, unknown> {
  const { previousSecret = null, ...rest } = record;
  if (previousSecret === null) return { ...rest, previousSecretCiphertext: null, previousSecretExpiresAt: null };
  const { ciphertext, expiresAt } = (typeof previousSecret === 'object' ? previousSecret : {}) as Record<string, unknown>;
  if (typeof ciphertext !== 'string' || typeof expiresAt !== 'number' || !Number.isFinite(expiresAt)) {
    throw new TypeError('store copy: previousSecret must be null or { ciphertext: string, expiresAt: number }');
  }
  return { ...rest, previousSecretCiphertext: ciphertext, previousSecretExpiresAt: expiresAt };
}

/** A usage record's fields, checked: they reach a STRICT table keyed by them. */
function usageImported(fields: readonly string[]) {
  return (r: Record<string, unknown>): Record<string, unknown> => {
    for (const f of fields) {
      const v = r[f];
      const ok = f === 'n' ? typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 : typeof v === 'string' && (f !== 'day' || /^\d{4}-\d{2}-\d{2}$/.test(v));
      if (!ok) throw new TypeError(`store copy: ${f} of a usage record is ${f === 'n' ? 'not a whole number' : f === 'day' ? 'not a date YYYY-MM-DD' : 'not a string'}`);
    }
    return r;
  };
}

/** A stream's closed fields, checked: they decide where and how SETs go. */
function ssfStreamImported(r: Record<string, unknown>): Record<string, unknown> {
  if (r.deliveryMethod !== 'urn:ietf:rfc:8935' && r.deliveryMethod !== 'urn:ietf:rfc:8936') throw new TypeError('store copy: deliveryMethod of a stream must be urn:ietf:rfc:8935 or urn:ietf:rfc:8936');
  if (r.status !== 'enabled' && r.status !== 'paused' && r.status !== 'disabled') throw new TypeError('store copy: status of a stream must be enabled, paused or disabled');
  if (!Array.isArray(r.eventsRequested) || !r.eventsRequested.every((e) => typeof e === 'string')) throw new TypeError('store copy: eventsRequested of a stream must be a list of strings');
  return r;
}

const SPECS: Record<CopyCollection, TableSpec> = {
  // contacts stays null for a row that never stored its list (read as the list of its fields), so
  // a copy keeps that row exactly as it was.
  persons: {
    table: 'persons', order: 'id', json: ['address', 'contacts', 'attention'],
    bool: ['email_verified', 'phone_verified', 'password_reset_required'], defaults: { contacts_rev: 0 },
    imported: (r) => {
      const reason = r.lockReason ?? null;
      if (reason !== null && !isLockReason(reason)) throw new TypeError(`store copy: lockReason must be one of ${LOCK_REASONS.join(', ')}, or null`);
      return r;
    },
  },
  portals: {
    table: 'portals', order: 'client_id', json: ['metadata'], bool: ['national_id', 'disabled'], defaults: { revision: 0 },
    exported: portalExported, imported: portalImported,
  },
  consents: { table: 'consents', order: 'person_id, client_id', json: ['scopes', 'claims'] },
  counters: { table: 'counters', order: 'key' },
  factors: { table: 'factors', order: 'id', json: ['transports'], bool: ['confirmed'] },
  recoveryCodes: { table: 'recovery_codes', order: 'person_id, code_hash' },
  oidc: {
    table: 'oidc_models', order: 'model, id', json: ['payload'],
    derive: (r) => ({ account_id: fromPayload(r, 'accountId'), client_id: fromPayload(r, 'clientId') }),
  },
  jobs: { table: 'jobs', order: 'id', json: ['payload'] },
  enterprises: { table: 'enterprises', order: 'code' },
  representatives: { table: 'org_representatives', order: 'enterprise_code, person_id' },
  delegations: { table: 'delegations', order: 'enterprise_code, person_id', json: ['portals'] },
  orgGrants: { table: 'org_grants', order: 'grant_id' },
  signingKeys: { table: 'signing_keys', order: 'kid', json: ['public_jwk'] },
  auditLog: { table: 'audit_log', order: 'seq', json: ['details'] },
  accountEvidence: { table: 'account_evidence', order: 'id', json: ['evidence'] },
  activity: { table: 'activity', order: 'id', json: ['details'] },
  operators: { table: 'operators', order: 'person_id', json: ['roles'], imported: (r) => ({ ...r, roles: checkRoles(r.roles) }) },
  approvals: { table: 'approvals', order: 'id', json: ['params'], imported: (r) => ({ ...r, status: checkApprovalStatus(r.status) }) },
  usageCounts: { table: 'usage_counts', order: 'day, portal, key', imported: usageImported(['day', 'portal', 'key', 'n']) },
  usageTags: { table: 'usage_tags', order: 'day, portal, tag', imported: usageImported(['day', 'portal', 'tag']) },
  ssfStreams: { table: 'ssf_streams', order: 'client_id', json: ['events_requested'], imported: ssfStreamImported },
};

/** The table behind a collection (`store backup` counts its rows). */
export const sqliteTable = (collection: CopyCollection): string => SPECS[collection].table;

const camel = (s: string) => s.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());


export function createSqliteCopy(db: () => Database.Database, call: <T>(fn: () => T) => Promise<T>): StoreCopy {
  return {
    async *exportAll(collection) {
      const spec = SPECS[collection];
      const rows = await call(() => db().prepare(`SELECT * FROM ${spec.table} ORDER BY ${spec.order}`).all() as Record<string, unknown>[]);
      for (const row of rows) {
        const out: Record<string, unknown> = {};
        for (const [col, value] of Object.entries(row)) {
          let v = value;
          if (spec.json?.includes(col) && typeof v === 'string') v = JSON.parse(v);
          if (spec.bool?.includes(col)) v = v === 1;
          out[camel(col)] = v;
        }
        yield spec.exported ? spec.exported(out) : out;
      }
    },

    async importMany(collection, records) {
      if (records.length === 0) return;
      const spec = SPECS[collection];
      await call(() => {
        const columns = (db().prepare(`PRAGMA table_info(${spec.table})`).all() as Array<{ name: string }>).map((c) => c.name);
        const insert = db().prepare(`INSERT OR REPLACE INTO ${spec.table} (${columns.join(', ')}) VALUES (${columns.map((c) => `@${c}`).join(', ')})`);
        const run = db().transaction(() => {
          for (const given of records) {
            const record = spec.imported ? spec.imported(given) : given;
            const row: Record<string, unknown> = {};
            const derived = spec.derive?.(record) ?? {};
            for (const col of columns) {
              let v = record[camel(col)] ?? record[col] ?? spec.defaults?.[col] ?? derived[col] ?? null;
              if (spec.json?.includes(col) && v !== null) v = JSON.stringify(v);
              if (spec.bool?.includes(col)) v = v ? 1 : 0;
              row[col] = v;
            }
            insert.run(row);
          }
          if (collection === 'signingKeys') {
            // Readers notice a changed key set by its version.
            db().prepare('UPDATE signing_keys_version SET version = version + 1 WHERE id = 1').run();
          }
        });
        run.immediate();
      });
    },
  };
}


