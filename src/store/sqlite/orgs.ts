/**
 * Enterprises, representatives, delegations and org grants (`enterprises`, `org_representatives`,
 * `delegations`, `org_grants`).
 */
import type { Delegation, Enterprise, EnterpriseStatus, OrgGrant, OrgRepository } from '../types.js';
import type { SqliteContext } from './shared.js';

interface EnterpriseRow {
  code: string;
  name: string;
  status: EnterpriseStatus;
  parent_code: string | null;
  created_at: number;
  updated_at: number;
}

interface DelegationRow {
  enterprise_code: string;
  person_id: string;
  role: string;
  until: number | null;
  portals: string | null;
  granted_by: string;
  created_at: number;
  revoked_at: number | null;
}

interface OrgGrantRow {
  grant_id: string;
  enterprise_code: string;
  person_id: string;
  client_id: string;
  session_uid: string | null;
  created_at: number;
  expires_at: number;
}

function enterpriseRow(row: EnterpriseRow): Enterprise {
  return {
    code: row.code,
    name: row.name,
    status: row.status,
    parentCode: row.parent_code,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function delegationRow(row: DelegationRow): Delegation {
  return {
    enterpriseCode: row.enterprise_code,
    personId: row.person_id,
    role: row.role,
    until: row.until,
    portals: row.portals === null ? null : (JSON.parse(row.portals) as string[]),
    grantedBy: row.granted_by,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  };
}

function orgGrantRow(row: OrgGrantRow): OrgGrant {
  return {
    grantId: row.grant_id,
    enterpriseCode: row.enterprise_code,
    personId: row.person_id,
    clientId: row.client_id,
    sessionUid: row.session_uid,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}

export function createSqliteOrgs({ now, statement, call }: SqliteContext): OrgRepository {
  const enterpriseInsert = statement<
    [{ code: string; name: string; status: string; parentCode: string | null; now: number }],
    EnterpriseRow
  >(`
    INSERT INTO enterprises (code, name, status, parent_code, created_at, updated_at)
    VALUES (@code, @name, @status, @parentCode, @now, @now)
    RETURNING *
  `);
  const enterpriseFind = statement<[string], EnterpriseRow>('SELECT * FROM enterprises WHERE code = ?');
  const enterpriseList = statement<[number, number], EnterpriseRow>(
    'SELECT * FROM enterprises ORDER BY code LIMIT ? OFFSET ?',
  );
  const enterpriseBranches = statement<[string], EnterpriseRow>(
    'SELECT * FROM enterprises WHERE parent_code = ? ORDER BY code',
  );
  const enterpriseSetStatus = statement<[string, number, string]>(
    'UPDATE enterprises SET status = ?, updated_at = ? WHERE code = ?',
  );

  const representativeAdd = statement<[string, string, number]>(`
    INSERT INTO org_representatives (enterprise_code, person_id, created_at) VALUES (?, ?, ?)
    ON CONFLICT (enterprise_code, person_id) DO NOTHING
  `);
  const representativeRemove = statement<[string, string]>(
    'DELETE FROM org_representatives WHERE enterprise_code = ? AND person_id = ?',
  );
  const representativeList = statement<[string], { person_id: string }>(
    'SELECT person_id FROM org_representatives WHERE enterprise_code = ? ORDER BY created_at, person_id',
  );
  const representativeCodes = statement<[string], { enterprise_code: string }>(
    'SELECT enterprise_code FROM org_representatives WHERE person_id = ? ORDER BY enterprise_code',
  );

  // One statement: a replaced (or revoked) delegation is rewritten in place and comes back in force.
  const delegationPut = statement<
    [{ code: string; personId: string; role: string; until: number | null; portals: string | null; grantedBy: string; now: number }],
    DelegationRow
  >(`
    INSERT INTO delegations (enterprise_code, person_id, role, until, portals, granted_by, created_at, revoked_at)
    VALUES (@code, @personId, @role, @until, @portals, @grantedBy, @now, NULL)
    ON CONFLICT (enterprise_code, person_id) DO UPDATE SET
      role = excluded.role, until = excluded.until, portals = excluded.portals,
      granted_by = excluded.granted_by, created_at = excluded.created_at, revoked_at = NULL
    RETURNING *
  `);
  const delegationFind = statement<[string, string], DelegationRow>(
    'SELECT * FROM delegations WHERE enterprise_code = ? AND person_id = ?',
  );
  const delegationRevoke = statement<[number, string, string]>(
    'UPDATE delegations SET revoked_at = ? WHERE enterprise_code = ? AND person_id = ? AND revoked_at IS NULL',
  );
  const delegationList = statement<[string], DelegationRow>(
    'SELECT * FROM delegations WHERE enterprise_code = ? ORDER BY created_at, person_id',
  );
  const delegationListForPerson = statement<[string], DelegationRow>(
    'SELECT * FROM delegations WHERE person_id = ? ORDER BY enterprise_code',
  );

  const grantInsert = statement<
    [{ grantId: string; code: string; personId: string; clientId: string; sessionUid: string | null; now: number; expiresAt: number }]
  >(`
    INSERT INTO org_grants (grant_id, enterprise_code, person_id, client_id, session_uid, created_at, expires_at)
    VALUES (@grantId, @code, @personId, @clientId, @sessionUid, @now, @expiresAt)
    ON CONFLICT (grant_id) DO NOTHING
  `);
  const grantFind = statement<[string, number], OrgGrantRow>(
    'SELECT * FROM org_grants WHERE grant_id = ? AND expires_at > ?',
  );
  const grantList = statement<[{ code: string; personId: string | null; now: number }], OrgGrantRow>(`
    SELECT * FROM org_grants
    WHERE enterprise_code = @code AND (@personId IS NULL OR person_id = @personId) AND expires_at > @now
    ORDER BY created_at, grant_id
  `);
  const grantForget = statement<[string]>('DELETE FROM org_grants WHERE grant_id = ?');

  return {
    createEnterprise: (enterprise) =>
      call(
        () => {
          const row = enterpriseInsert().get({
            code: enterprise.code,
            name: enterprise.name,
            status: enterprise.status,
            parentCode: enterprise.parentCode,
            now: now(),
          });
          if (!row) throw new Error('INSERT … RETURNING returned no row');
          return enterpriseRow(row);
        },
        () => 'code',
      ),
    findEnterprise: (code) =>
      call(() => {
        const row = enterpriseFind().get(code);
        return row && enterpriseRow(row);
      }),
    listEnterprises: (options) =>
      call(() => enterpriseList().all(options.limit, options.offset).map(enterpriseRow)),
    listBranches: (parentCode) => call(() => enterpriseBranches().all(parentCode).map(enterpriseRow)),
    setEnterpriseStatus: (code, status) =>
      call(() => enterpriseSetStatus().run(status, now(), code).changes === 1),

    addRepresentative: (code, personId) =>
      call(() => representativeAdd().run(code, personId, now()).changes === 1),
    removeRepresentative: (code, personId) =>
      call(() => representativeRemove().run(code, personId).changes === 1),
    listRepresentatives: (code) => call(() => representativeList().all(code).map((r) => r.person_id)),
    representedBy: (personId) => call(() => representativeCodes().all(personId).map((r) => r.enterprise_code)),

    putDelegation: (delegation) =>
      call(() => {
        const row = delegationPut().get({
          code: delegation.enterpriseCode,
          personId: delegation.personId,
          role: delegation.role,
          until: delegation.until,
          portals: delegation.portals === null ? null : JSON.stringify(delegation.portals),
          grantedBy: delegation.grantedBy,
          now: now(),
        });
        if (!row) throw new Error('INSERT … RETURNING returned no row');
        return delegationRow(row);
      }),
    findDelegation: (code, personId) =>
      call(() => {
        const row = delegationFind().get(code, personId);
        return row && delegationRow(row);
      }),
    revokeDelegation: (code, personId, at) =>
      call(() => delegationRevoke().run(at, code, personId).changes === 1),
    listDelegations: (code) => call(() => delegationList().all(code).map(delegationRow)),
    delegationsOf: (personId) => call(() => delegationListForPerson().all(personId).map(delegationRow)),

    recordGrant: (grant) =>
      call(() => {
        grantInsert().run({
          grantId: grant.grantId,
          code: grant.enterpriseCode,
          personId: grant.personId,
          clientId: grant.clientId,
          sessionUid: grant.sessionUid,
          now: now(),
          expiresAt: grant.expiresAt,
        });
      }),
    findGrant: (grantId) =>
      call(() => {
        const row = grantFind().get(grantId, now());
        return row && orgGrantRow(row);
      }),
    grantsFor: (code, personId) =>
      call(() => grantList().all({ code, personId: personId ?? null, now: now() }).map(orgGrantRow)),
    forgetGrant: (grantId) =>
      call(() => {
        grantForget().run(grantId);
      }),
  };
}
