/**
 * Enterprises, representatives, delegations and org grants (`enterprises`, `org_representatives`,
 * `delegations`, `org_grants`).
 */
import type { Filter } from 'mongodb';
import {
  StoreConflictError,
  type Delegation,
  type Enterprise,
  type EnterpriseStatus,
  type OrgGrant,
  type OrgRepository,
} from '../types.js';
import { str, num, pairId, limitOf, insert, isDuplicateKey, type MongoContext } from './shared.js';

interface EnterpriseDoc {
  _id: string;
  name: string;
  status: EnterpriseStatus;
  parentCode: string | null;
  createdAt: number;
  updatedAt: number;
}

interface RepresentativeDoc {
  /** JSON [enterpriseCode, personId]. */
  _id: string;
  enterpriseCode: string;
  personId: string;
  createdAt: number;
}

interface DelegationDoc {
  /** JSON [enterpriseCode, personId]. */
  _id: string;
  enterpriseCode: string;
  personId: string;
  role: string;
  until: number | null;
  portals: string[] | null;
  grantedBy: string;
  createdAt: number;
  revokedAt: number | null;
}

interface OrgGrantDoc {
  _id: string;
  enterpriseCode: string;
  personId: string;
  clientId: string;
  sessionUid: string | null;
  createdAt: number;
  expiresAt: number;
  expireAt: Date;
}

function enterpriseDoc(doc: EnterpriseDoc): Enterprise {
  return {
    code: doc._id,
    name: doc.name,
    status: doc.status,
    parentCode: doc.parentCode,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
  };
}

function delegationDoc(doc: DelegationDoc): Delegation {
  return {
    enterpriseCode: doc.enterpriseCode,
    personId: doc.personId,
    role: doc.role,
    until: doc.until,
    portals: doc.portals === null ? null : [...doc.portals],
    grantedBy: doc.grantedBy,
    createdAt: doc.createdAt,
    revokedAt: doc.revokedAt,
  };
}

function orgGrantDoc(doc: OrgGrantDoc): OrgGrant {
  return {
    grantId: doc._id,
    enterpriseCode: doc.enterpriseCode,
    personId: doc.personId,
    clientId: doc.clientId,
    sessionUid: doc.sessionUid,
    createdAt: doc.createdAt,
    expiresAt: doc.expiresAt,
  };
}

export function createMongoOrgs({ db, now, run, write }: MongoContext): OrgRepository {
  const col = {
    enterprises: db.collection<EnterpriseDoc>('enterprises'),
    representatives: db.collection<RepresentativeDoc>('org_representatives'),
    delegations: db.collection<DelegationDoc>('delegations'),
    grants: db.collection<OrgGrantDoc>('org_grants'),
  };

  return {
    createEnterprise: (enterprise) =>
      write('enterprises', async () => {
        const t = now();
        const doc: EnterpriseDoc = {
          _id: str(enterprise.code, 'code'),
          name: enterprise.name,
          status: enterprise.status,
          parentCode: enterprise.parentCode === null ? null : str(enterprise.parentCode, 'parentCode'),
          createdAt: t,
          updatedAt: t,
        };
        await insert(col.enterprises, doc, () => {
          throw new StoreConflictError('code');
        });
        return enterpriseDoc(doc);
      }),
    findEnterprise: (code) =>
      run(async () => {
        const doc = await col.enterprises.findOne({ _id: str(code, 'code') });
        return doc ? enterpriseDoc(doc) : undefined;
      }),
    listEnterprises: ({ limit, offset }) =>
      run(async () => {
        const n = limitOf(limit);
        if (n < 1) return [];
        const docs = await col.enterprises
          .find({})
          .sort({ _id: 1 })
          .skip(Math.max(0, Math.floor(num(offset, 'offset'))))
          .limit(n)
          .toArray();
        return docs.map(enterpriseDoc);
      }),
    listBranches: (parentCode) =>
      run(async () =>
        (await col.enterprises.find({ parentCode: str(parentCode, 'parentCode') }).sort({ _id: 1 }).toArray()).map(enterpriseDoc),
      ),
    setEnterpriseStatus: (code, status) =>
      write('enterprises', async () => {
        const result = await col.enterprises.updateOne({ _id: str(code, 'code') }, { $set: { status, updatedAt: now() } });
        return result.matchedCount === 1;
      }),

    addRepresentative: (code, personId) =>
      write('org_representatives', async () => {
        const c = str(code, 'code');
        const p = str(personId, 'personId');
        const doc: RepresentativeDoc = { _id: pairId(c, p), enterpriseCode: c, personId: p, createdAt: now() };
        return (await insert(col.representatives, doc, () => false)) ?? true;
      }),
    removeRepresentative: (code, personId) =>
      write('org_representatives', async () => {
        const result = await col.representatives.deleteOne({ _id: pairId(str(code, 'code'), str(personId, 'personId')) });
        return result.deletedCount === 1;
      }),
    listRepresentatives: (code) =>
      run(async () =>
        (await col.representatives.find({ enterpriseCode: str(code, 'code') }).sort({ createdAt: 1, personId: 1 }).toArray()).map(
          (d) => d.personId,
        ),
      ),
    representedBy: (personId) =>
      run(async () =>
        (await col.representatives.find({ personId: str(personId, 'personId') }).sort({ enterpriseCode: 1 }).toArray()).map(
          (d) => d.enterpriseCode,
        ),
      ),

    // One document per (enterprise, person) under a deterministic _id: put is a whole-document
    // upsert, so a replaced or revoked delegation is rewritten in place and comes back in force.
    putDelegation: (delegation) =>
      write('delegations', async () => {
        const c = str(delegation.enterpriseCode, 'enterpriseCode');
        const p = str(delegation.personId, 'personId');
        const doc: DelegationDoc = {
          _id: pairId(c, p),
          enterpriseCode: c,
          personId: p,
          role: delegation.role,
          until: delegation.until,
          portals: delegation.portals === null ? null : [...delegation.portals],
          grantedBy: delegation.grantedBy,
          createdAt: now(),
          revokedAt: null,
        };
        for (let attempt = 0; ; attempt += 1) {
          try {
            await col.delegations.replaceOne({ _id: doc._id }, doc, { upsert: true });
            return delegationDoc(doc);
          } catch (err) {
            if (attempt === 0 && isDuplicateKey(err)) continue;
            throw err;
          }
        }
      }),
    findDelegation: (code, personId) =>
      run(async () => {
        const doc = await col.delegations.findOne({ _id: pairId(str(code, 'code'), str(personId, 'personId')) });
        return doc ? delegationDoc(doc) : undefined;
      }),
    revokeDelegation: (code, personId, at) =>
      write('delegations', async () => {
        const result = await col.delegations.updateOne(
          { _id: pairId(str(code, 'code'), str(personId, 'personId')), revokedAt: null },
          { $set: { revokedAt: num(at, 'now') } },
        );
        return result.matchedCount === 1;
      }),
    listDelegations: (code) =>
      run(async () =>
        (await col.delegations.find({ enterpriseCode: str(code, 'code') }).sort({ createdAt: 1, personId: 1 }).toArray()).map(
          delegationDoc,
        ),
      ),
    delegationsOf: (personId) =>
      run(async () =>
        (await col.delegations.find({ personId: str(personId, 'personId') }).sort({ enterpriseCode: 1 }).toArray()).map(delegationDoc),
      ),

    recordGrant: (grant) =>
      write('org_grants', async () => {
        const expiresAt = num(grant.expiresAt, 'expiresAt');
        const doc: OrgGrantDoc = {
          _id: str(grant.grantId, 'grantId'),
          enterpriseCode: str(grant.enterpriseCode, 'enterpriseCode'),
          personId: str(grant.personId, 'personId'),
          clientId: str(grant.clientId, 'clientId'),
          sessionUid: grant.sessionUid,
          createdAt: now(),
          expiresAt,
          expireAt: new Date(expiresAt),
        };
        // Idempotent by grantId: the first record stays.
        await insert(col.grants, doc, () => undefined);
      }),
    findGrant: (grantId) =>
      run(async () => {
        const doc = await col.grants.findOne({ _id: str(grantId, 'grantId'), expiresAt: { $gt: now() } });
        return doc ? orgGrantDoc(doc) : undefined;
      }),
    grantsFor: (code, personId) =>
      run(async () => {
        const filter: Filter<OrgGrantDoc> = { enterpriseCode: str(code, 'code'), expiresAt: { $gt: now() } };
        if (personId !== undefined) filter.personId = str(personId, 'personId');
        return (await col.grants.find(filter).sort({ createdAt: 1, _id: 1 }).toArray()).map(orgGrantDoc);
      }),
    forgetGrant: (grantId) =>
      write('org_grants', async () => {
        await col.grants.deleteOne({ _id: str(grantId, 'grantId') });
      }),
  };
}
