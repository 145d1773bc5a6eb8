/**
 * Everything dinhdanh holds about a person, as one JSON document they can download and take
 * elsewhere (Personal Data Protection Law 2025 and Decree 356/2025/ND-CP: the data subject's rights
 * to access and to receive their data; GDPR Art. 20 is the model for "structured, commonly used and
 * machine-readable").
 *
 * Built field by field from an allow-list, never by dumping records: no password hash, no factor
 * secret, passkey credential or public key, no recovery-code hash, no token, no operator's name or
 * free-text note. `test/integration/account-data.test.ts` checks every field.
 */
import type { ActivityService } from '../activity/activity.service.js';
import type { ConsentRepository, FactorRepository, OrgRepository, PersonRepository, PortalRepository, RecoveryCodeRepository } from '../store/index.js';
import type { SessionDirectory } from '../provider/account-session.js';
import { describeDevice, describeNetwork } from '../activity/devices.js';

export const EXPORT_FORMAT = 'dinhdanh-personal-data/1';

const iso = (ms: number | null | undefined) => (typeof ms === 'number' ? new Date(ms).toISOString() : null);

export function createDataExport(deps: {
  persons: PersonRepository;
  factors: FactorRepository;
  recoveryCodes: RecoveryCodeRepository;
  consents: ConsentRepository;
  portals: PortalRepository;
  orgs: OrgRepository;
  sessions: SessionDirectory;
  activity: ActivityService;
  now?: () => number;
}) {
  const now = deps.now ?? Date.now;
  return {
    async build(personId: string): Promise<Record<string, unknown> | undefined> {
      const p = await deps.persons.findById(personId);
      if (!p) return undefined;
      await deps.activity.settled();
      const [factors, codesLeft, codesMade, consents, sessions, represented, delegations, activity] = await Promise.all([
        deps.factors.listForPerson(p.id),
        deps.recoveryCodes.countUnused(p.id),
        deps.recoveryCodes.createdAt(p.id),
        deps.consents.listForPerson(p.id),
        deps.sessions.list(p.id),
        deps.orgs.representedBy(p.id),
        deps.orgs.delegationsOf(p.id),
        deps.activity.all(p.id),
      ]);
      const portalName = async (clientId: string) => (await deps.portals.find(clientId))?.name ?? clientId;
      const enterpriseName = async (code: string) => (await deps.orgs.findEnterprise(code))?.name ?? null;
      return {
        format: EXPORT_FORMAT,
        generated_at: iso(now()),
        details: {
          identification_number: p.pid,
          name: p.name,
          family_name: p.familyName,
          given_name: p.givenName,
          birthdate: p.birthdate,
          gender: p.gender,
          address: p.address,
          identity_level: p.level,
          status: p.status,
          locked_by: p.status === 'locked' ? (p.lockReason ?? 'operator') : null,
          password_reset_required: p.passwordResetRequired,
          created_at: iso(p.createdAt),
          updated_at: iso(p.updatedAt),
        },
        contacts: p.contacts.map((c) => ({
          kind: c.kind, value: c.value, verified: c.verified, added_at: iso(c.addedAt), verified_at: iso(c.verifiedAt), for_notices: p.noticeContact === c.id,
        })),
        second_factors: factors.filter((f) => f.confirmed).map((f) => ({
          kind: f.type, name: f.label, added_at: iso(f.createdAt), last_used_at: iso(f.lastUsedAt),
        })),
        recovery_codes: { unused: codesLeft, made_at: iso(codesMade ?? null) },
        consents: await Promise.all(consents.map(async (c) => ({
          portal: c.clientId, portal_name: await portalName(c.clientId), scopes: c.scopes, claims: c.claims, given_at: iso(c.createdAt), updated_at: iso(c.updatedAt),
        }))),
        sessions: await Promise.all(sessions.map(async (s) => ({
          device: describeDevice(s.userAgent), network: describeNetwork(s.ip), started_at: iso(s.startedAt), last_used_at: iso(s.lastUsedAt),
          portals: await Promise.all(s.portals.map(portalName)),
        }))),
        enterprises: await Promise.all(represented.map(async (code) => ({ code, name: await enterpriseName(code), role: 'legal_representative' }))),
        delegations: await Promise.all(delegations.map(async (d) => ({
          enterprise: d.enterpriseCode,
          enterprise_name: await enterpriseName(d.enterpriseCode),
          role: d.role,
          until: iso(d.until),
          portals: d.portals,
          // Who granted it, as a kind: a representative's or an operator's name is theirs, not the person's.
          granted_by: d.grantedBy.startsWith('operator:') ? 'operator' : 'legal_representative',
          granted_at: iso(d.createdAt),
          revoked_at: iso(d.revokedAt),
        }))),
        activity: activity.map((e) => ({ at: iso(e.at), event: e.event, ...e.details })),
      };
    },
  };
}
export type DataExport = ReturnType<typeof createDataExport>;
