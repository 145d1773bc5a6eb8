/**
 * Operators and two-person control from the command line (PRODUCT.md, "Operators' console";
 * admin/approvals.service.ts): a real child process (`node --import tsx src/cli/bin.ts …`) on a
 * store of its own, as cli.test.ts runs it. Before any operator exists the command line acts at
 * once (bootstrap, flagged in the audit log) and adds the first admin; afterwards raising a level,
 * unlocking a fraud lock, retiring a key, approving national_id and removing an operator are
 * proposals, decided by a different registered operator with the action's role within 24 hours,
 * or done at once by a registered admin's `--break-glass --reason`. A registered operator named with
 * `--operator <12 digits>` proves it with a current code of their authenticator app on standard
 * input (`--code-stdin`); the host's operator `cli:<name>` no longer proposes them.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { oneJson, runCli, type Run } from '../helpers/cli-process.js';
import { createStore, type AuditEntry, type Store } from '../../src/store/index.js';
import { readSecrets } from '../../src/keys/key-files.js';
import { createSecretBox } from '../../src/keys/secret-box.js';
import { TEST_STORE_KIND } from '../helpers/harness.js';
import { totpCode } from '../helpers/pages.js';

const PASSWORD = 'sông Hồng chảy qua bốn mùa lúa chín';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let dir: string;
let env: NodeJS.ProcessEnv;
let storeUrl: string;


const cli = (args: string[], stdin?: string): Promise<Run> => runCli(env, args, stdin);

const json = oneJson;

/** A successful run's one JSON object (its stderr shown when it failed). */
function ok(run: Run): Record<string, unknown> {
  expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: '' });
  return json(run);
}

/** A refused run: exit 2, the message on stderr and as {"error"} on stdout. */
function refused(run: Run, message: RegExp): void {
  expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(message) });
  expect(json(run)).toEqual({ error: expect.stringMatching(message) });
}

async function withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await createStore(storeUrl);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

const audit = (event: string): Promise<AuditEntry[]> => withStore(async (store) => (await store.audit.list(0, 100_000)).filter((e) => e.event === event));
const levelOf = (pid: string) => withStore(async (store) => (await store.persons.findByPid(pid))!.level);

// Operators-to-be (Hanoi, born 1985) and citizens (Ho Chi Minh City, born 1990).
const PEOPLE = {
  admin: ['001085000001', 'Nguyễn Văn Quản', '1985-03-01', 'male'],
  admin2: ['001085000002', 'Phạm Văn Trị', '1985-04-01', 'male'],
  desk1: ['001185000003', 'Trần Thị Quầy', '1985-05-01', 'female'],
  desk2: ['001185000004', 'Lê Thị Tiếp', '1985-06-01', 'female'],
  citizen: ['079090000111', 'Võ Văn Dân', '1990-01-02', 'male'],
  citizen2: ['079090000222', 'Đỗ Văn Công', '1990-02-03', 'male'],
  citizen3: ['079190000333', 'Hồ Thị Hạnh', '1990-03-04', 'female'],
  citizen4: ['079190000444', 'Mai Thị Lan', '1990-04-05', 'female'],
  // Made operators directly in the store: one still at level 1, one with a passkey only.
  clerk: ['001185000005', 'Đinh Thị Sổ', '1985-07-01', 'female'],
  keyonly: ['001185000006', 'Lý Thị Khóa', '1985-08-01', 'female'],
} as const;
type Who = keyof typeof PEOPLE;
/** The operators-to-be, registered at level 2 during bootstrap (operators act at level 2). */
const LEVEL_2: readonly Who[] = ['admin', 'admin2', 'desk1', 'desk2', 'keyonly'];
const pid = (who: keyof typeof PEOPLE) => PEOPLE[who][0];
/** `--operator <their number>` alone: naming a registered operator without proving it. */
const as = (who: keyof typeof PEOPLE) => ['--operator', pid(who)];

/**
 * Authenticator apps of the operators. A code is accepted once per 30-second step and app (NIST SP
 * 800-63B §5.1.4.2), and the test runs several commands a step as one operator: each operator has
 * a few apps, and every code is of an app not yet used in that step (else the test waits for the
 * next step, which the apps make rare).
 */
const APPS_EACH = 6;
const apps = {} as Record<Who, Array<{ secret: string; lastStep: number }>>;
async function code(who: Who): Promise<string> {
  for (;;) {
    const t = Date.now();
    const step = Math.floor(t / 30_000);
    const app = apps[who]!.find((a) => a.lastStep < step);
    if (app) {
      app.lastStep = step;
      return totpCode(app.secret, t);
    }
    await new Promise((r) => setTimeout(r, (step + 1) * 30_000 - t + 50));
  }
}
/** Runs a command as the registered operator `who`, proven with a fresh code on standard input. */
async function proven(who: Who, args: string[]): Promise<Run> {
  return cli([...args, '--operator', pid(who), '--code-stdin'], `${await code(who)}\n`);
}
/** A code that is not the current one of any of `who`'s apps. */
async function wrongCode(who: Who): Promise<string> {
  const now = Date.now();
  const valid = new Set(await Promise.all(apps[who]!.flatMap((a) => [-60_000, -30_000, 0, 30_000, 60_000].map((d) => totpCode(a.secret, now + d)))));
  for (let n = 0; ; n++) {
    const c = String(n).padStart(6, '0');
    if (!valid.has(c)) return c;
  }
}
/** The host's operator, `cli:host.ops`. */
const HOST = ['--operator', 'host.ops'];
const LEVEL2 = ['--document-type', 'cccd-chip', '--place', 'UBND phường Bến Nghé'];
const ids = {} as Record<keyof typeof PEOPLE, string>;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dinhdanh-cli-ops-'));
  if (TEST_STORE_KIND === 'sqlite') {
    storeUrl = `sqlite:${path.join(dir, 'data', 'x.db')}`;
  } else {
    const url = new URL(process.env.MONGODB_URI!);
    url.pathname = `/dd_cliops_${Date.now().toString(36)}`;
    storeUrl = url.href;
  }
  env = { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'development', DINHDANH_STORE: storeUrl, DINHDANH_KEYS_DIR: path.join(dir, 'keys') };
  for (const [who, [p, name, birthdate, gender]] of Object.entries(PEOPLE)) {
    const level = LEVEL_2.includes(who as Who) ? ['--level', '2'] : [];
    const run = await cli(['accounts', 'add', '--pid', p, '--name', name, '--birthdate', birthdate, '--gender', gender, ...level, '--password-stdin', '--json'], `${PASSWORD}\n`);
    ids[who as keyof typeof PEOPLE] = ok(run).id as string;
  }
  // Their authenticator apps, sealed with the keys folder's data key as the enrolment seals them.
  const box = createSecretBox(readSecrets(path.join(dir, 'keys'))!.dataKeys);
  await withStore(async (store) => {
    for (const who of ['admin', 'admin2', 'desk1', 'desk2', 'clerk'] as const) {
      apps[who] = [];
      for (let i = 0; i < APPS_EACH; i++) {
        const secret = crypto.randomBytes(20).toString('hex').toUpperCase().replace(/[^A-Z2-7]/g, 'Q').slice(0, 32);
        const id = crypto.randomUUID();
        await store.factors.create({
          id, personId: ids[who], type: 'totp', label: `Điện thoại công vụ ${i + 1}`, confirmed: true,
          secretCiphertext: box.seal(secret, `totp:${id}`), credentialId: null, publicKey: null, signCount: null, transports: null,
        });
        apps[who].push({ secret, lastStep: 0 });
      }
    }
    await store.factors.create({
      id: crypto.randomUUID(), personId: ids.keyonly, type: 'passkey', label: 'Khóa bảo mật', confirmed: true,
      secretCiphertext: null, credentialId: crypto.randomBytes(16).toString('base64url'), publicKey: crypto.randomBytes(32).toString('base64url'), signCount: 0, transports: ['usb'],
    });
  });
}, 120_000);
afterAll(() => { fs.rmSync(dir, { recursive: true, force: true }); });

describe('before any operator exists: the bootstrap actor', () => {
  it('retires a key at once, recording KEY_RETIRED once, flagged bootstrap', async () => {
    const rotated = ok(await cli(['keys', 'rotate', '--activate-after', '2h', '--reason', 'scheduled rotation', ...HOST, '--json'])) as { keys: Array<{ kid: string; alg: string }> };
    const kid = rotated.keys.find((k) => k.alg === 'RS256')!.kid;
    expect(ok(await cli(['keys', 'retire', kid, '--reason', 'rotated by mistake', ...HOST, '--json']))).toEqual({ kid, alg: 'RS256', retired: true });
    const entries = (await audit('KEY_RETIRED')).filter((e) => e.details.kid === kid);
    expect(entries).toHaveLength(1);
    expect(entries[0]!.details).toMatchObject({ operator: 'cli:host.ops', via: 'cli', role: 'keys', reason: 'rotated by mistake', bootstrap: true, was: 'next' });
  });

  it('portals add --national-id approves it at once while no operator exists', async () => {
    const reg = ok(await cli(['portals', 'add', '--name', 'Cổng BHYT', '--redirect-uri', 'https://bhyt.example.vn/cb', '--national-id', '--legal-basis', 'Luật Căn cước 2023, Điều 10', ...HOST, '--json'])) as { client_id: string };
    expect((ok(await cli(['portals', 'show', reg.client_id, '--json'])) as { portal: { national_id: boolean } }).portal.national_id).toBe(true);
  });

  it('the first operator must hold admin; operators add then works, flagged bootstrap with the default reason; the host actor adds no second', async () => {
    expect(ok(await cli(['operators', 'list', '--json']))).toEqual({ total: 0, operators: [] });
    refused(await cli(['operators', 'add', '--pid', pid('desk1'), '--role', 'helpdesk', ...HOST, '--json']), /first operator must hold the admin role/);
    refused(await cli(['operators', 'add', '--pid', pid('admin'), '--role', 'root', ...HOST, '--json']), /unknown role "root"/);

    const added = ok(await cli(['operators', 'add', '--pid', pid('admin'), '--role', 'admin', '--role', 'helpdesk', ...HOST, '--json']));
    expect(added).toEqual({ bootstrap: true, operator: expect.objectContaining({ id: ids.admin, pid: '*********001', roles: ['admin', 'helpdesk'], added_by: 'cli:host.ops' }) });
    const [entry] = await audit('OPERATOR_ADDED');
    expect(entry!.details).toMatchObject({ operator: 'cli:host.ops', role: 'admin', via: 'cli', reason: 'bootstrap: first operators', bootstrap: true, target: ids.admin, roles: ['admin', 'helpdesk'] });

    // An operator exists: the host's operator is no longer bootstrap, and never an admin.
    refused(await cli(['operators', 'add', '--pid', pid('desk1'), '--role', 'helpdesk', '--reason', 'new counter staff', ...HOST, '--json']), /registered operator.*--operator <your 12-digit number>/);
    expect((ok(await cli(['operators', 'list', '--json'])) as { total: number }).total).toBe(1);
  });
});

describe('bootstrap: level 2 and national_id at once, refused once operators exist', () => {
  it('accounts add --level 2 and portals add --national-id worked before any operator; afterwards they are refused, nothing created', async () => {
    expect(await levelOf(pid('admin'))).toBe(2);
    const before = await withStore((store) => store.persons.count());
    refused(await cli(['accounts', 'add', '--pid', '079090000555', '--name', 'Trương Văn Năm', '--birthdate', '1990-05-06', '--gender', 'male', '--level', '2', '--password-stdin', ...HOST, '--json'], `${PASSWORD}\n`),
      /create the account at level 1, then raise it with `accounts set-level/);
    expect(await withStore((store) => store.persons.count())).toBe(before);
    expect(ok(await cli(['accounts', 'add', '--pid', '079090000555', '--name', 'Trương Văn Năm', '--birthdate', '1990-05-06', '--gender', 'male', '--password-stdin', '--json'], `${PASSWORD}\n`)))
      .toEqual({ id: expect.any(String) });
    expect(await levelOf('079090000555')).toBe(1);

    const portals = (ok(await cli(['portals', 'list', '--json'])) as { portals: unknown[] }).portals.length;
    refused(await cli(['portals', 'add', '--name', 'Cổng thuế', '--redirect-uri', 'https://thue.example.vn/cb', '--national-id', '--legal-basis', 'Luật Căn cước 2023, Điều 10', ...HOST, '--json']),
      /register the portal without it, then `portals approve <client_id> --national-id/);
    expect((ok(await cli(['portals', 'list', '--json'])) as { portals: unknown[] }).portals).toHaveLength(portals);
  });
});

describe('operators', () => {
  it('a registered admin adds operators with a reason; a non-admin cannot; an unregistered number is refused', async () => {
    refused(await proven('admin', ['operators', 'add', '--pid', pid('desk1'), '--role', 'helpdesk', '--json']), /--reason is required/);
    for (const who of ['desk1', 'desk2'] as const) {
      const out = ok(await proven('admin', ['operators', 'add', '--pid', pid(who), '--role', 'helpdesk', '--reason', 'joined the service desk', '--json']));
      expect(out).toEqual({ operator: expect.objectContaining({ id: ids[who], roles: ['helpdesk'], added_by: ids.admin }) });
    }
    // The second admin (who also proposes key and portal actions below) is written to the store:
    // whether granting admin is itself two-person is not this file's subject.
    await withStore((store) => store.operators.create({ personId: ids.admin2, roles: ['admin', 'keys', 'integration'], addedBy: ids.admin, addedAt: Date.now() }));
    const added = (await audit('OPERATOR_ADDED')).find((e) => e.details.target === ids.desk1)!;
    expect(added.details).toMatchObject({ operator: ids.admin, role: 'admin', via: 'cli', reason: 'joined the service desk' });
    expect(added.details).not.toHaveProperty('bootstrap');

    refused(await proven('desk1', ['operators', 'add', '--pid', pid('citizen'), '--role', 'auditor', '--reason', 'joined the audit team', '--json']), /operators\.act/);
    refused(await cli(['operators', 'add', '--pid', pid('citizen'), '--role', 'auditor', '--reason', 'joined the audit team', ...as('citizen'), '--json']), /not a registered operator/);
    refused(await proven('admin', ['operators', 'add', '--pid', pid('desk1'), '--role', 'keys', '--reason', 'second role for desk', '--json']), /already an operator/);

    const listed = ok(await cli(['operators', 'list', '--json'])) as { total: number; operators: Array<{ id: string; pid: string }> };
    expect(listed.total).toBe(4);
    expect(listed.operators.map((o) => o.id)).toEqual([ids.admin, ids.desk1, ids.desk2, ids.admin2]);
    expect(JSON.stringify(listed)).not.toMatch(/\d{12}/);
    const page = ok(await cli(['operators', 'list', '--limit', '2', '--offset', '2', '--json'])) as { operators: Array<{ id: string }> };
    expect(page.operators.map((o) => o.id)).toEqual([ids.desk2, ids.admin2]);
    refused(await cli(['operators', 'list', '--limit', '0', '--json']), /--limit/);
  });

  it('an admin changes another operator\'s roles, never their own', async () => {
    refused(await proven('admin', ['operators', 'roles', pid('admin'), '--role', 'admin', '--role', 'keys', '--reason', 'needs key access', '--json']), /own roles/);
    refused(await proven('desk1', ['operators', 'roles', pid('desk2'), '--role', 'auditor', '--reason', 'moves to the audit team', '--json']), /operators\.act/);
    refused(await cli(['operators', 'roles', pid('desk2'), '--role', 'auditor', '--reason', 'moves to the audit team', ...HOST, '--json']), /registered operator/);
    const changed = ok(await proven('admin', ['operators', 'roles', pid('desk2'), '--role', 'helpdesk', '--role', 'auditor', '--reason', 'also reviews the audit log', '--json']));
    expect(changed).toEqual({ operator: expect.objectContaining({ id: ids.desk2, roles: ['helpdesk', 'auditor'] }), from: ['helpdesk'] });
    const shown = (ok(await cli(['operators', 'list', '--json'])) as { operators: Array<{ id: string; roles: string[] }> }).operators;
    expect(shown.find((o) => o.id === ids.admin)!.roles).toEqual(['admin', 'helpdesk']);
    expect((await audit('OPERATOR_ROLES_CHANGED')).map((e) => e.details)).toEqual([expect.objectContaining({ operator: ids.admin, target: ids.desk2, from: ['helpdesk'], to: ['helpdesk', 'auditor'] })]);
  });
});

describe('two-person control', () => {
  let proposal: string;

  it('accounts set-level 2 is a proposal once operators exist; the level is unchanged; approvals list shows it', async () => {
    const run = await proven('desk1', ['accounts', 'set-level', pid('citizen'), '2', '--reason', 'verified in person at the counter', ...LEVEL2, '--document-number', '079090000111', '--json']);
    const out = ok(run);
    expect(out).toEqual({ status: 'proposed', approval: expect.stringMatching(UUID) });
    expect(Object.keys(out)).toEqual(['status', 'approval']);
    proposal = out.approval as string;
    expect(await levelOf(pid('citizen'))).toBe(1);

    const listed = ok(await cli(['approvals', 'list', '--json'])) as { approvals: Array<Record<string, unknown>>; next: string | null };
    expect(listed.approvals).toEqual([expect.objectContaining({
      id: proposal, action: 'set-level-2', subject: ids.citizen, state: 'pending', proposed_by: ids.desk1, proposed_role: 'helpdesk',
      reason: 'verified in person at the counter', params: expect.objectContaining({ documentType: 'cccd-chip', documentNumber: '********0111' }),
    })]);
    expect(listed.next).toBeNull();
    expect(JSON.stringify(listed)).not.toContain('079090000111');
    expect((ok(await cli(['approvals', 'list', '--state', 'approved', '--json'])) as { approvals: unknown[] }).approvals).toEqual([]);
    refused(await cli(['approvals', 'list', '--state', 'waiting', '--json']), /--state/);
    expect((await audit('APPROVAL_PROPOSED')).map((e) => e.details)).toEqual([expect.objectContaining({ approval: proposal, operator: ids.desk1, role: 'helpdesk', action: 'set-level-2' })]);
  });

  it('its proposer, the host\'s operator and an operator without the role cannot approve it; a second helpdesk operator does', async () => {
    refused(await proven('desk1', ['approvals', 'approve', proposal, '--reason', 'looks right to me', '--json']), /different operator/);
    refused(await cli(['approvals', 'approve', proposal, '--reason', 'looks right to me', ...HOST, '--json']), /name yourself with --operator <your 12-digit number> and prove it with --code-stdin/);
    refused(await proven('admin2', ['approvals', 'approve', proposal, '--reason', 'looks right to me', '--json']), /helpdesk role/);
    refused(await proven('desk2', ['approvals', 'approve', proposal, '--json']), /--reason/);
    refused(await proven('desk2', ['approvals', 'approve', '00000000-0000-4000-8000-000000000000', '--reason', 'looks right to me', '--json']), /no such proposal/);
    expect(await levelOf(pid('citizen'))).toBe(1);

    const approved = ok(await proven('desk2', ['approvals', 'approve', proposal, '--reason', 'documents checked again', '--json'])) as { approval: Record<string, unknown> };
    expect(approved.approval).toMatchObject({ id: proposal, state: 'approved', decided_by: ids.desk2, decided_role: 'helpdesk', decision_reason: 'documents checked again', outcome: 'done: identity level 2' });
    expect(await levelOf(pid('citizen'))).toBe(2);
    const changed = (await audit('ACCOUNT_LEVEL_CHANGED')).find((e) => e.details.person === ids.citizen)!;
    expect(changed.details).toMatchObject({ operator: ids.desk1, approved_by: ids.desk2, approval: proposal, to: 2 });
    expect((await audit('APPROVAL_APPROVED')).map((e) => e.details)).toEqual([expect.objectContaining({ approval: proposal, operator: ids.desk2, proposed_by: ids.desk1 })]);

    refused(await proven('admin', ['approvals', 'approve', proposal, '--reason', 'documents checked again', '--json']), /already approved/);
  });

  it('the host\'s operator no longer proposes; the same proposal twice is refused; a rejection leaves the level alone', async () => {
    const args = ['accounts', 'set-level', pid('citizen3'), '2', '--reason', 'verified in person at the counter', ...LEVEL2, '--document-number', 'C07919000'];
    refused(await cli([...args, ...HOST, '--json']), /two-person action once operators exist.*name yourself with --operator <your 12-digit number> and prove it with --code-stdin/);
    expect((ok(await cli(['approvals', 'list', '--state', 'pending', '--json'])) as { approvals: unknown[] }).approvals).toEqual([]);
    const human = await proven('desk2', args);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/proposed: approval [0-9a-f-]{36} waits up to 24 hours/);
    refused(await proven('desk2', [...args, '--json']), /already waiting for approval/);
    const [pending] = (ok(await cli(['approvals', 'list', '--state', 'pending', '--json'])) as { approvals: Array<{ id: string; proposed_by: string }> }).approvals;
    expect(pending!.proposed_by).toBe(ids.desk2);
    const rejected = ok(await proven('desk1', ['approvals', 'reject', pending!.id, '--reason', 'the document was expired', '--json'])) as { approval: Record<string, unknown> };
    expect(rejected.approval).toMatchObject({ id: pending!.id, state: 'rejected', decided_by: ids.desk1 });
    expect(await levelOf(pid('citizen3'))).toBe(1);
    expect((await audit('APPROVAL_REJECTED')).map((e) => e.details)).toEqual([expect.objectContaining({ approval: pending!.id, operator: ids.desk1, reason: 'the document was expired' })]);
  });

  it('--break-glass --reason by a registered admin acts at once (BREAK_GLASS_USED); by anyone else, or without --reason, it is refused', async () => {
    const args = ['accounts', 'set-level', pid('citizen2'), '2', '--reason', 'incident: the counter is closed', ...LEVEL2, '--document-number', '079090000222', '--break-glass'];
    refused(await proven('desk1', [...args, '--json']), /--break-glass is for a registered admin/);
    refused(await cli([...args, ...HOST, '--json']), /--break-glass is for a registered operator/);
    // Naming the admin is not being them: without their app's code nothing happens.
    refused(await cli([...args, ...as('admin'), '--json']), /must prove it is you: pass --code-stdin/);
    refused(await cli([...args, ...as('admin'), '--code-stdin', '--json'], `${await wrongCode('admin')}\n`), /the code is wrong or expired; nothing was done/);
    refused(await proven('admin', ['keys', 'retire', 'some-kid', '--break-glass', '--json']), /--break-glass needs --reason/);
    expect(await levelOf(pid('citizen2'))).toBe(1);
    expect(await audit('BREAK_GLASS_USED')).toEqual([]);

    expect(ok(await proven('admin', [...args, '--json']))).toEqual({ id: ids.citizen2, level: 2 });
    expect(await levelOf(pid('citizen2'))).toBe(2);
    const [used] = await audit('BREAK_GLASS_USED');
    expect(used!.details).toMatchObject({ break_glass: true, operator: ids.admin, role: 'admin', via: 'cli', reason: 'incident: the counter is closed', action: 'set-level-2', subject: ids.citizen2 });
    const changed = (await audit('ACCOUNT_LEVEL_CHANGED')).find((e) => e.details.person === ids.citizen2)!;
    expect(changed.details).toMatchObject({ operator: ids.admin, break_glass: true, to: 2 });
    expect(changed.details).not.toHaveProperty('approved_by');
    const listed = (ok(await cli(['approvals', 'list', '--json'])) as { approvals: Array<{ subject: string }> }).approvals;
    expect(listed.map((a) => a.subject)).not.toContain(ids.citizen2);
  });

  it('a proposal older than 24 hours has lapsed: listed as such, and approving it is refused', async () => {
    const id = '6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f';
    const t = Date.now() - 25 * 3600_000;
    await withStore((store) => store.approvals.create({
      id, action: 'set-level-2', subject: ids.citizen3, params: { personId: ids.citizen3, documentType: 'cccd', documentNumber: 'C07919000', place: 'UBND phường Bến Nghé' },
      proposedBy: ids.desk1, proposedRole: 'helpdesk', reason: 'verified in person yesterday', evidence: null, status: 'pending',
      createdAt: t, expiresAt: t + 24 * 3600_000, decidedBy: null, decidedRole: null, decidedAt: null, decisionReason: null, outcome: null,
    }));
    const lapsed = (ok(await cli(['approvals', 'list', '--state', 'lapsed', '--json'])) as { approvals: Array<{ id: string; state: string }> }).approvals;
    expect(lapsed).toEqual([expect.objectContaining({ id, state: 'lapsed' })]);
    const pending = (ok(await cli(['approvals', 'list', '--state', 'pending', '--json'])) as { approvals: Array<{ id: string }> }).approvals;
    expect(pending.map((a) => a.id)).not.toContain(id);
    refused(await proven('desk2', ['approvals', 'approve', id, '--reason', 'sorry, I was away', '--json']), /lapsed/);
    expect(await levelOf(pid('citizen3'))).toBe(1);
  });

  it('accounts lock --fraud, then accounts unlock is a proposal, carried out when a second operator approves', async () => {
    expect(ok(await proven('desk1', ['accounts', 'lock', pid('citizen'), '--fraud', '--reason', 'suspected account takeover', '--json'])))
      .toEqual({ id: ids.citizen, status: 'locked', lock_reason: 'fraud' });
    const shown = (ok(await cli(['accounts', 'show', pid('citizen'), '--json'])) as { account: { status: string; lock_reason: string } }).account;
    expect(shown).toMatchObject({ status: 'locked', lock_reason: 'fraud' });

    refused(await proven('desk1', ['accounts', 'unlock', pid('citizen'), '--json']), /--reason is required to unlock an account locked for fraud/);
    refused(await cli(['accounts', 'unlock', pid('citizen'), '--reason', 'owner verified in person', ...HOST, '--json']), /two-person action once operators exist/);
    const out = ok(await proven('desk1', ['accounts', 'unlock', pid('citizen'), '--reason', 'owner verified in person', '--json']));
    expect(out).toEqual({ status: 'proposed', approval: expect.stringMatching(UUID) });
    expect((await withStore((s) => s.persons.findByPid(pid('citizen'))))!.status).toBe('locked');

    refused(await proven('desk1', ['approvals', 'approve', out.approval as string, '--reason', 'I proposed it, I approve', '--json']), /different operator/);
    const approved = ok(await proven('desk2', ['approvals', 'approve', out.approval as string, '--reason', 'called the owner back', '--json'])) as { approval: { outcome: string } };
    expect(approved.approval.outcome).toBe('done: unlocked');
    expect((await withStore((s) => s.persons.findByPid(pid('citizen'))))!.status).toBe('active');
  });

  it('a plain lock and unlock act at once, for the host\'s operator too; an operator needs the helpdesk role, and never acts on their own account', async () => {
    expect(ok(await cli(['accounts', 'lock', pid('citizen3'), '--reason', 'lost phone reported', ...HOST, '--json']))).toEqual({ id: ids.citizen3, status: 'locked' });
    expect(ok(await cli(['accounts', 'unlock', pid('citizen3'), '--reason', 'phone found again', ...HOST, '--json']))).toEqual({ id: ids.citizen3, status: 'active' });
    const locked = (await audit('ACCOUNT_LOCKED')).find((e) => e.details.person === ids.citizen3)!;
    expect(locked.details).toMatchObject({ operator: 'cli:host.ops', role: 'helpdesk', via: 'cli', reason: 'lost phone reported', lock_reason: 'operator' });
    expect(locked.details).not.toHaveProperty('bootstrap');

    refused(await proven('admin2', ['accounts', 'lock', pid('citizen3'), '--reason', 'lost phone reported', '--json']), /accounts\.act/);
    refused(await proven('desk1', ['accounts', 'lock', pid('desk1'), '--reason', 'testing my own lock', '--json']), /own account/);
    expect((await withStore((s) => s.persons.findByPid(pid('citizen3'))))!.status).toBe('active');
  });

  it('keys retire and portals approve --national-id are proposals once operators exist', async () => {
    const keys = (ok(await cli(['keys', 'list', '--json'])) as { keys: Array<{ kid: string; state: string }> }).keys;
    const next = keys.find((k) => k.state === 'next')!;
    refused(await cli(['keys', 'retire', next.kid, '--reason', 'rotation no longer needed', ...HOST, '--json']), /retiring a key is a two-person action once operators exist/);
    refused(await proven('admin2', ['keys', 'retire', next.kid, '--json']), /--reason is required/);
    expect(ok(await proven('admin2', ['keys', 'retire', next.kid, '--reason', 'rotation no longer needed', '--json']))).toEqual({ status: 'proposed', approval: expect.stringMatching(UUID) });
    expect((ok(await cli(['keys', 'list', '--json'])) as { keys: Array<{ kid: string; state: string }> }).keys.find((k) => k.kid === next.kid)!.state).toBe('next');
    expect((await audit('KEY_RETIRED')).filter((e) => e.details.kid === next.kid)).toEqual([]);

    const portal = ok(await cli(['portals', 'add', '--name', 'Cổng BHXH', '--redirect-uri', 'https://bhxh.example.vn/cb', '--json'])) as { client_id: string };
    refused(await cli(['portals', 'approve', portal.client_id, '--national-id', '--legal-basis', 'Luật Căn cước 2023, Điều 10', ...HOST, '--json']), /approving national_id is a two-person action/);
    const out = ok(await proven('admin2', ['portals', 'approve', portal.client_id, '--national-id', '--legal-basis', 'Luật Căn cước 2023, Điều 10', '--json']));
    expect(out).toEqual({ status: 'proposed', approval: expect.stringMatching(UUID) });
    expect((ok(await cli(['portals', 'show', portal.client_id, '--json'])) as { portal: { national_id: boolean } }).portal.national_id).toBe(false);
  });

  it('operators remove is a proposal; a second admin approves it; nobody removes themself', async () => {
    refused(await cli(['operators', 'remove', pid('desk2'), '--reason', 'left the service', ...HOST, '--json']), /registered operator/);
    refused(await proven('admin', ['operators', 'remove', pid('admin'), '--reason', 'stepping down now', '--json']), /themself/);
    const out = ok(await proven('admin', ['operators', 'remove', pid('desk2'), '--reason', 'left the service', '--json']));
    expect(out).toEqual({ status: 'proposed', approval: expect.stringMatching(UUID) });
    const still = (ok(await cli(['operators', 'list', '--json'])) as { operators: Array<{ id: string }> }).operators;
    expect(still.map((o) => o.id)).toContain(ids.desk2);

    refused(await proven('admin', ['approvals', 'approve', out.approval as string, '--reason', 'confirmed with HR', '--json']), /different operator/);
    const approved = ok(await proven('admin2', ['approvals', 'approve', out.approval as string, '--reason', 'confirmed with HR', '--json'])) as { approval: { outcome: string } };
    expect(approved.approval.outcome).toBe('done: removed');
    const after = (ok(await cli(['operators', 'list', '--json'])) as { operators: Array<{ id: string }> }).operators;
    expect(after.map((o) => o.id)).toEqual([ids.admin, ids.desk1, ids.admin2]);
    expect((await audit('OPERATOR_REMOVED')).map((e) => e.details)).toEqual([expect.objectContaining({ target: ids.desk2, operator: ids.admin, approved_by: ids.admin2, reason: 'left the service' })]);
  });

  it('audit verify passes on everything above', async () => {
    expect(ok(await cli(['audit', 'verify', '--json']))).toMatchObject({ ok: true });
  });
});

describe('a registered operator proves it is them (--code-stdin)', () => {
  const setLevel = (who: Who) => ['accounts', 'set-level', pid(who), '2', '--reason', 'verified in person at the counter', ...LEVEL2, '--document-number', '079190000444', '--json'];
  const proposals = async () => (await audit('APPROVAL_PROPOSED')).length;

  it('naming an operator without a code, or with an empty one, is refused and nothing is proposed', async () => {
    const before = await proposals();
    refused(await cli([...setLevel('citizen4'), ...as('desk1')]), /--operator \*+003 must prove it is you: pass --code-stdin/);
    refused(await cli([...setLevel('citizen4'), ...as('desk1'), '--code-stdin'], '\n'), /no code on standard input/);
    expect(await proposals()).toBe(before);
    expect((ok(await cli(['approvals', 'list', '--state', 'pending', '--json'])) as { approvals: Array<{ subject: string }> }).approvals.map((a) => a.subject)).not.toContain(ids.citizen4);
  });

  it('a wrong code and a replayed code are refused, and change nothing', async () => {
    const before = await proposals();
    refused(await cli([...setLevel('citizen4'), ...as('desk1'), '--code-stdin'], `${await wrongCode('desk1')}\n`), /the code is wrong or expired; nothing was done/);
    expect(await proposals()).toBe(before);

    const used = await code('desk1');
    expect(ok(await cli([...setLevel('citizen4'), ...as('desk1'), '--code-stdin'], `${used}\n`))).toEqual({ status: 'proposed', approval: expect.stringMatching(UUID) });
    refused(await cli(['accounts', 'lock', pid('citizen4'), '--reason', 'suspected account takeover', ...as('desk1'), '--code-stdin', '--json'], `${used}\n`), /this code was already used.*nothing was done/);
    expect((await withStore((store) => store.persons.findByPid(pid('citizen4'))))!.status).toBe('active');
    expect(await levelOf(pid('citizen4'))).toBe(1);
  });

  it('an operator whose account is locked, or at level 1, does not act even with a good code', async () => {
    await withStore((store) => store.persons.setStatus(ids.desk1, 'locked', 'operator'));
    try {
      refused(await proven('desk1', ['accounts', 'lock', pid('citizen4'), '--reason', 'suspected account takeover', '--json']), /this operator's account is locked/);
    } finally {
      await withStore((store) => store.persons.setStatus(ids.desk1, 'active'));
    }
    await withStore((store) => store.operators.create({ personId: ids.clerk, roles: ['helpdesk'], addedBy: ids.admin, addedAt: Date.now() }));
    refused(await proven('clerk', ['accounts', 'lock', pid('citizen4'), '--reason', 'suspected account takeover', '--json']), /not at identity level 2/);
    expect((await withStore((store) => store.persons.findByPid(pid('citizen4'))))!.status).toBe('active');
  });

  it('an operator with passkeys only is sent to the console', async () => {
    await withStore((store) => store.operators.create({ personId: ids.keyonly, roles: ['helpdesk'], addedBy: ids.admin, addedAt: Date.now() }));
    refused(await cli(['accounts', 'lock', pid('citizen4'), '--reason', 'suspected account takeover', ...as('keyonly'), '--code-stdin', '--json'], '123456\n'), /only passkeys.*use the operators' console/);
    expect((await withStore((store) => store.persons.findByPid(pid('citizen4'))))!.status).toBe('active');
  });

  it('audit verify still passes', async () => {
    expect(ok(await cli(['audit', 'verify', '--json']))).toMatchObject({ ok: true });
  });
});
