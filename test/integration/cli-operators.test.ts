/**
 * Operators and two-person control from the command line (PRODUCT.md, "Operators' console";
 * admin/approvals.service.ts): a real child process (`node --import tsx src/cli/bin.ts …`) on a
 * store of its own, as cli.test.ts runs it. Before any operator exists the command line acts at
 * once (bootstrap, flagged in the audit log) and adds the first admin; afterwards raising a level,
 * unlocking a fraud lock, retiring a key, approving national_id and removing an operator are
 * proposals, decided by a different registered operator with the action's role within 24 hours,
 * or done at once by a registered admin's `--break-glass --reason`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createStore, type AuditEntry, type Store } from '../../src/store/index.js';
import { TEST_STORE_KIND } from '../helpers/harness.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'src', 'cli', 'bin.ts');
const PASSWORD = 'sông Hồng chảy qua bốn mùa lúa chín';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let dir: string;
let env: NodeJS.ProcessEnv;
let storeUrl: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], stdin?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', BIN, ...args], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => { stdout += c; });
    child.stderr.setEncoding('utf8').on('data', (c: string) => { stderr += c; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

/** stdout must be exactly one JSON object (one line). */
function json(run: Run): Record<string, unknown> {
  const lines = run.stdout.split('\n').filter((l) => l.trim() !== '');
  expect(lines).toHaveLength(1);
  const value = JSON.parse(lines[0]!) as unknown;
  expect(typeof value).toBe('object');
  expect(Array.isArray(value)).toBe(false);
  return value as Record<string, unknown>;
}

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
} as const;
const pid = (who: keyof typeof PEOPLE) => PEOPLE[who][0];
/** `--operator <their number>`: acting as that registered operator. */
const as = (who: keyof typeof PEOPLE) => ['--operator', pid(who)];
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
    const run = await cli(['accounts', 'add', '--pid', p, '--name', name, '--birthdate', birthdate, '--gender', gender, '--password-stdin', '--json'], `${PASSWORD}\n`);
    ids[who as keyof typeof PEOPLE] = ok(run).id as string;
  }
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

describe('operators', () => {
  it('a registered admin adds operators with a reason; a non-admin cannot; an unregistered number is refused', async () => {
    refused(await cli(['operators', 'add', '--pid', pid('desk1'), '--role', 'helpdesk', ...as('admin'), '--json']), /--reason is required/);
    for (const [who, role] of [['desk1', 'helpdesk'], ['desk2', 'helpdesk'], ['admin2', 'admin']] as const) {
      const out = ok(await cli(['operators', 'add', '--pid', pid(who), '--role', role, '--reason', 'joined the service desk', ...as('admin'), '--json']));
      expect(out).toEqual({ operator: expect.objectContaining({ id: ids[who], roles: [role], added_by: ids.admin }) });
    }
    const added = (await audit('OPERATOR_ADDED')).find((e) => e.details.target === ids.desk1)!;
    expect(added.details).toMatchObject({ operator: ids.admin, role: 'admin', via: 'cli', reason: 'joined the service desk' });
    expect(added.details).not.toHaveProperty('bootstrap');

    refused(await cli(['operators', 'add', '--pid', pid('citizen'), '--role', 'auditor', '--reason', 'joined the audit team', ...as('desk1'), '--json']), /operators\.act/);
    refused(await cli(['operators', 'add', '--pid', pid('citizen'), '--role', 'auditor', '--reason', 'joined the audit team', ...as('citizen'), '--json']), /not a registered operator/);
    refused(await cli(['operators', 'add', '--pid', pid('desk1'), '--role', 'keys', '--reason', 'second role for desk', ...as('admin'), '--json']), /already an operator/);

    const listed = ok(await cli(['operators', 'list', '--json'])) as { total: number; operators: Array<{ id: string; pid: string }> };
    expect(listed.total).toBe(4);
    expect(listed.operators.map((o) => o.id)).toEqual([ids.admin, ids.desk1, ids.desk2, ids.admin2]);
    expect(JSON.stringify(listed)).not.toMatch(/\d{12}/);
    const page = ok(await cli(['operators', 'list', '--limit', '2', '--offset', '2', '--json'])) as { operators: Array<{ id: string }> };
    expect(page.operators.map((o) => o.id)).toEqual([ids.desk2, ids.admin2]);
    refused(await cli(['operators', 'list', '--limit', '0', '--json']), /--limit/);
  });

  it('an admin changes another operator\'s roles, never their own', async () => {
    refused(await cli(['operators', 'roles', pid('admin'), '--role', 'admin', '--role', 'keys', '--reason', 'needs key access', ...as('admin'), '--json']), /own roles/);
    refused(await cli(['operators', 'roles', pid('desk2'), '--role', 'auditor', '--reason', 'moves to the audit team', ...as('desk1'), '--json']), /operators\.act/);
    refused(await cli(['operators', 'roles', pid('desk2'), '--role', 'auditor', '--reason', 'moves to the audit team', ...HOST, '--json']), /registered operator/);
    const changed = ok(await cli(['operators', 'roles', pid('desk2'), '--role', 'helpdesk', '--role', 'auditor', '--reason', 'also reviews the audit log', ...as('admin'), '--json']));
    expect(changed).toEqual({ operator: expect.objectContaining({ id: ids.desk2, roles: ['helpdesk', 'auditor'] }), from: ['helpdesk'] });
    const shown = (ok(await cli(['operators', 'list', '--json'])) as { operators: Array<{ id: string; roles: string[] }> }).operators;
    expect(shown.find((o) => o.id === ids.admin)!.roles).toEqual(['admin', 'helpdesk']);
    expect((await audit('OPERATOR_ROLES_CHANGED')).map((e) => e.details)).toEqual([expect.objectContaining({ operator: ids.admin, target: ids.desk2, from: ['helpdesk'], to: ['helpdesk', 'auditor'] })]);
  });
});

describe('two-person control', () => {
  let proposal: string;

  it('accounts set-level 2 is a proposal once operators exist; the level is unchanged; approvals list shows it', async () => {
    const run = await cli(['accounts', 'set-level', pid('citizen'), '2', '--reason', 'verified in person at the counter', ...LEVEL2, '--document-number', '079090000111', ...as('desk1'), '--json']);
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
    refused(await cli(['approvals', 'approve', proposal, '--reason', 'looks right to me', ...as('desk1'), '--json']), /different operator/);
    refused(await cli(['approvals', 'approve', proposal, '--reason', 'looks right to me', ...HOST, '--json']), /name yourself with --operator <your 12-digit number>/);
    refused(await cli(['approvals', 'approve', proposal, '--reason', 'looks right to me', ...as('admin2'), '--json']), /helpdesk role/);
    refused(await cli(['approvals', 'approve', proposal, ...as('desk2'), '--json']), /--reason/);
    refused(await cli(['approvals', 'approve', '00000000-0000-4000-8000-000000000000', '--reason', 'looks right to me', ...as('desk2'), '--json']), /no such proposal/);
    expect(await levelOf(pid('citizen'))).toBe(1);

    const approved = ok(await cli(['approvals', 'approve', proposal, '--reason', 'documents checked again', ...as('desk2'), '--json'])) as { approval: Record<string, unknown> };
    expect(approved.approval).toMatchObject({ id: proposal, state: 'approved', decided_by: ids.desk2, decided_role: 'helpdesk', decision_reason: 'documents checked again', outcome: 'done: identity level 2' });
    expect(await levelOf(pid('citizen'))).toBe(2);
    const changed = (await audit('ACCOUNT_LEVEL_CHANGED')).find((e) => e.details.person === ids.citizen)!;
    expect(changed.details).toMatchObject({ operator: ids.desk1, approved_by: ids.desk2, approval: proposal, to: 2 });
    expect((await audit('APPROVAL_APPROVED')).map((e) => e.details)).toEqual([expect.objectContaining({ approval: proposal, operator: ids.desk2, proposed_by: ids.desk1 })]);

    refused(await cli(['approvals', 'approve', proposal, '--reason', 'documents checked again', ...as('admin'), '--json']), /already approved/);
  });

  it('the host\'s operator may propose; the same proposal twice is refused; a rejection leaves the level alone', async () => {
    const args = ['accounts', 'set-level', pid('citizen3'), '2', '--reason', 'verified in person at the counter', ...LEVEL2, '--document-number', 'C07919000', ...HOST];
    const human = await cli(args);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/proposed: approval [0-9a-f-]{36} waits up to 24 hours/);
    refused(await cli([...args, '--json']), /already waiting for approval/);
    const [pending] = (ok(await cli(['approvals', 'list', '--state', 'pending', '--json'])) as { approvals: Array<{ id: string; proposed_by: string }> }).approvals;
    expect(pending!.proposed_by).toBe('cli:host.ops');
    const rejected = ok(await cli(['approvals', 'reject', pending!.id, '--reason', 'the document was expired', ...as('desk1'), '--json'])) as { approval: Record<string, unknown> };
    expect(rejected.approval).toMatchObject({ id: pending!.id, state: 'rejected', decided_by: ids.desk1 });
    expect(await levelOf(pid('citizen3'))).toBe(1);
    expect((await audit('APPROVAL_REJECTED')).map((e) => e.details)).toEqual([expect.objectContaining({ approval: pending!.id, operator: ids.desk1, reason: 'the document was expired' })]);
  });

  it('--break-glass --reason by a registered admin acts at once (BREAK_GLASS_USED); by anyone else, or without --reason, it is refused', async () => {
    const args = ['accounts', 'set-level', pid('citizen2'), '2', '--reason', 'incident: the counter is closed', ...LEVEL2, '--document-number', '079090000222', '--break-glass'];
    refused(await cli([...args, ...as('desk1'), '--json']), /--break-glass is for a registered admin/);
    refused(await cli([...args, ...HOST, '--json']), /--break-glass is for a registered operator/);
    refused(await cli(['keys', 'retire', 'some-kid', '--break-glass', ...as('admin'), '--json']), /--break-glass needs --reason/);
    expect(await levelOf(pid('citizen2'))).toBe(1);
    expect(await audit('BREAK_GLASS_USED')).toEqual([]);

    expect(ok(await cli([...args, ...as('admin'), '--json']))).toEqual({ id: ids.citizen2, level: 2 });
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
    refused(await cli(['approvals', 'approve', id, '--reason', 'sorry, I was away', ...as('desk2'), '--json']), /lapsed/);
    expect(await levelOf(pid('citizen3'))).toBe(1);
  });

  it('accounts lock --fraud, then accounts unlock is a proposal, carried out when a second operator approves', async () => {
    expect(ok(await cli(['accounts', 'lock', pid('citizen'), '--fraud', '--reason', 'suspected account takeover', ...as('desk1'), '--json'])))
      .toEqual({ id: ids.citizen, status: 'locked', lock_reason: 'fraud' });
    const shown = (ok(await cli(['accounts', 'show', pid('citizen'), '--json'])) as { account: { status: string; lock_reason: string } }).account;
    expect(shown).toMatchObject({ status: 'locked', lock_reason: 'fraud' });

    refused(await cli(['accounts', 'unlock', pid('citizen'), ...as('desk1'), '--json']), /--reason is required to unlock an account locked for fraud/);
    const out = ok(await cli(['accounts', 'unlock', pid('citizen'), '--reason', 'owner verified in person', ...as('desk1'), '--json']));
    expect(out).toEqual({ status: 'proposed', approval: expect.stringMatching(UUID) });
    expect((await withStore((s) => s.persons.findByPid(pid('citizen'))))!.status).toBe('locked');

    refused(await cli(['approvals', 'approve', out.approval as string, '--reason', 'I proposed it, I approve', ...as('desk1'), '--json']), /different operator/);
    const approved = ok(await cli(['approvals', 'approve', out.approval as string, '--reason', 'called the owner back', ...as('desk2'), '--json'])) as { approval: { outcome: string } };
    expect(approved.approval.outcome).toBe('done: unlocked');
    expect((await withStore((s) => s.persons.findByPid(pid('citizen'))))!.status).toBe('active');
  });

  it('a plain lock and unlock act at once, for the host\'s operator too; an operator needs the helpdesk role, and never acts on their own account', async () => {
    expect(ok(await cli(['accounts', 'lock', pid('citizen3'), '--reason', 'lost phone reported', ...HOST, '--json']))).toEqual({ id: ids.citizen3, status: 'locked' });
    expect(ok(await cli(['accounts', 'unlock', pid('citizen3'), '--reason', 'phone found again', ...HOST, '--json']))).toEqual({ id: ids.citizen3, status: 'active' });
    const locked = (await audit('ACCOUNT_LOCKED')).find((e) => e.details.person === ids.citizen3)!;
    expect(locked.details).toMatchObject({ operator: 'cli:host.ops', role: 'helpdesk', via: 'cli', reason: 'lost phone reported', lock_reason: 'operator' });
    expect(locked.details).not.toHaveProperty('bootstrap');

    refused(await cli(['accounts', 'lock', pid('citizen3'), '--reason', 'lost phone reported', ...as('admin2'), '--json']), /accounts\.act/);
    refused(await cli(['accounts', 'lock', pid('desk1'), '--reason', 'testing my own lock', ...as('desk1'), '--json']), /own account/);
    expect((await withStore((s) => s.persons.findByPid(pid('citizen3'))))!.status).toBe('active');
  });

  it('keys retire and portals approve --national-id are proposals once operators exist', async () => {
    const keys = (ok(await cli(['keys', 'list', '--json'])) as { keys: Array<{ kid: string; state: string }> }).keys;
    const next = keys.find((k) => k.state === 'next')!;
    refused(await cli(['keys', 'retire', next.kid, ...HOST, '--json']), /--reason is required/);
    expect(ok(await cli(['keys', 'retire', next.kid, '--reason', 'rotation no longer needed', ...HOST, '--json']))).toEqual({ status: 'proposed', approval: expect.stringMatching(UUID) });
    expect((ok(await cli(['keys', 'list', '--json'])) as { keys: Array<{ kid: string; state: string }> }).keys.find((k) => k.kid === next.kid)!.state).toBe('next');
    expect((await audit('KEY_RETIRED')).filter((e) => e.details.kid === next.kid)).toEqual([]);

    const portal = ok(await cli(['portals', 'add', '--name', 'Cổng BHXH', '--redirect-uri', 'https://bhxh.example.vn/cb', '--json'])) as { client_id: string };
    const out = ok(await cli(['portals', 'approve', portal.client_id, '--national-id', '--legal-basis', 'Luật Căn cước 2023, Điều 10', ...HOST, '--json']));
    expect(out).toEqual({ status: 'proposed', approval: expect.stringMatching(UUID) });
    expect((ok(await cli(['portals', 'show', portal.client_id, '--json'])) as { portal: { national_id: boolean } }).portal.national_id).toBe(false);
  });

  it('operators remove is a proposal; a second admin approves it; nobody removes themself', async () => {
    refused(await cli(['operators', 'remove', pid('desk2'), '--reason', 'left the service', ...HOST, '--json']), /registered operator/);
    refused(await cli(['operators', 'remove', pid('admin'), '--reason', 'stepping down now', ...as('admin'), '--json']), /themself/);
    const out = ok(await cli(['operators', 'remove', pid('desk2'), '--reason', 'left the service', ...as('admin'), '--json']));
    expect(out).toEqual({ status: 'proposed', approval: expect.stringMatching(UUID) });
    const still = (ok(await cli(['operators', 'list', '--json'])) as { operators: Array<{ id: string }> }).operators;
    expect(still.map((o) => o.id)).toContain(ids.desk2);

    refused(await cli(['approvals', 'approve', out.approval as string, '--reason', 'confirmed with HR', ...as('admin'), '--json']), /different operator/);
    const approved = ok(await cli(['approvals', 'approve', out.approval as string, '--reason', 'confirmed with HR', ...as('admin2'), '--json'])) as { approval: { outcome: string } };
    expect(approved.approval.outcome).toBe('done: removed');
    const after = (ok(await cli(['operators', 'list', '--json'])) as { operators: Array<{ id: string }> }).operators;
    expect(after.map((o) => o.id)).toEqual([ids.admin, ids.desk1, ids.admin2]);
    expect((await audit('OPERATOR_REMOVED')).map((e) => e.details)).toEqual([expect.objectContaining({ target: ids.desk2, operator: ids.admin, approved_by: ids.admin2, reason: 'left the service' })]);
  });

  it('audit verify passes on everything above', async () => {
    expect(ok(await cli(['audit', 'verify', '--json']))).toMatchObject({ ok: true });
  });
});
