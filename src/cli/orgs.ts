/**
 * `dinhdanh orgs`: enterprises, their legal representatives and delegated staff.
 */
import type { Command } from 'commander';
import { maskPid } from '../accounts/index.js';
import { OrgInputError } from '../orgs/index.js';
import { UsageError, collect, type CliContext, type CliServices } from './shared.js';

export function registerOrgCommands(program: Command, cli: CliContext): void {
  const { config, operatorFor, print, withServices } = cli;
  const orgs = program.command('orgs').description('enterprises, their legal representatives and delegated staff');
  /** Runs an org action; bad input (OrgInputError) exits 2 with its message. */
  const orgAction = <T>(fn: (s: CliServices) => Promise<T>): Promise<T> => withServices(fn, OrgInputError);
  const asOperator = () => ({ operator: operatorFor(config()) });
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  orgs.command('add')
    .description('register an enterprise (or a branch, NNNNNNNNNN-NNN) and its legal representatives')
    .requiredOption('--code <code>', 'enterprise code: 10 digits, or 10 digits-3 digits for a branch')
    .requiredOption('--name <text>', 'registered name')
    .option('--representative <pid>', 'a legal representative\'s identification number (repeatable; required for an enterprise)', collect, [])
    .option('--json', 'print JSON')
    .action(async (opts: { code: string; name: string; representative: string[]; json?: boolean }) => {
      const e = await orgAction((s) => s.orgs.register({ code: opts.code, name: opts.name, representatives: opts.representative }, asOperator()));
      print({ json: !!opts.json }, { code: e.code, name: e.name, status: e.status, parent_code: e.parentCode }, () => `registered ${e.code} "${e.name}"`);
    });
  orgs.command('list')
    .description('list enterprises')
    .option('--limit <n>', 'at most n (1–1000)', '100')
    .option('--offset <n>', 'skip the first n', '0')
    .option('--json', 'print JSON')
    .action(async (opts: { limit: string; offset: string; json?: boolean }) => {
      if (!/^\d+$/.test(opts.limit) || Number(opts.limit) < 1 || Number(opts.limit) > 1000) throw new UsageError('--limit must be a whole number from 1 to 1000');
      if (!/^\d+$/.test(opts.offset)) throw new UsageError('--offset must be a whole number');
      const list = await orgAction((s) => s.orgs.list({ limit: Number(opts.limit), offset: Number(opts.offset) }));
      const rows = list.map((e) => ({ code: e.code, name: e.name, status: e.status, parent_code: e.parentCode }));
      print({ json: !!opts.json }, { enterprises: rows }, () => (rows.length ? rows.map((r) => `${r.code}  ${r.status}  ${r.name}`).join('\n') : 'no enterprises'));
    });
  orgs.command('show')
    .description('an enterprise, its branches, legal representatives and delegations (identification numbers masked)')
    .argument('<code>', 'enterprise code')
    .option('--json', 'print JSON')
    .action(async (code: string, opts: { json?: boolean }) => {
      const shown = await orgAction((s) => s.orgs.show(code));
      const out = {
        code: shown.enterprise.code, name: shown.enterprise.name, status: shown.enterprise.status, parent_code: shown.enterprise.parentCode,
        branches: shown.branches.map((b) => ({ code: b.code, name: b.name, status: b.status })),
        representatives: shown.representatives.map((r) => ({ pid: maskPid(r.pid), name: r.name })),
        delegations: shown.delegations.map((d) => ({
          pid: d.pid ? maskPid(d.pid) : null, name: d.name, role: d.role, until: iso(d.until), portals: d.portals, granted_by: d.grantedBy,
          since: iso(d.createdAt), revoked_at: iso(d.revokedAt),
        })),
      };
      print({ json: !!opts.json }, { enterprise: out }, () => [
        `${out.code}  ${out.status}  ${out.name}${out.parent_code ? `  (branch of ${out.parent_code})` : ''}`,
        ...out.branches.map((b) => `  branch ${b.code}  ${b.status}  ${b.name}`),
        ...out.representatives.map((r) => `  legal representative ${r.pid}  ${r.name}`),
        ...out.delegations.map((d) => `  ${d.revoked_at ? '[revoked] ' : ''}${d.role}  ${d.pid}  ${d.name ?? ''}${d.until ? `  until ${d.until}` : ''}${d.portals ? `  at ${d.portals.join(',')}` : ''}`),
      ].join('\n'));
    });
  for (const [name, status, what] of [['suspend', 'suspended', 'suspend an enterprise: nobody acts for it (or its branches); tokens issued for it stop working'],
    ['reactivate', 'active', 'reactivate a suspended enterprise'], ['dissolve', 'dissolved', 'mark an enterprise dissolved (final)']] as const) {
    orgs.command(name)
      .description(what)
      .argument('<code>', 'enterprise code')
      .option('--reason <text>', 'why (recorded in the audit log)')
      .option('--json', 'print JSON')
      .action(async (code: string, opts: { reason?: string; json?: boolean }) => {
        const e = await orgAction((s) => s.orgs.setStatus(code, status, asOperator(), opts.reason?.slice(0, 500)));
        print({ json: !!opts.json }, { code: e.code, status: e.status }, () => `${e.code} is now ${e.status}`);
      });
  }
  orgs.command('delegate')
    .description('let a person act for an enterprise in a role (replaces an earlier delegation of that person)')
    .requiredOption('--code <code>', 'enterprise code')
    .requiredOption('--pid <pid>', 'the person\'s identification number')
    .requiredOption('--role <role>', 'a short role code such as ke-toan')
    .option('--until <date>', 'last day it holds (YYYY-MM-DD, Vietnam time)')
    .option('--portal <client_id>', 'only at this portal (repeatable; default every portal)', collect, [])
    .option('--json', 'print JSON')
    .action(async (opts: { code: string; pid: string; role: string; until?: string; portal: string[]; json?: boolean }) => {
      const d = await orgAction((s) => s.orgs.delegate({ code: opts.code, pid: opts.pid, role: opts.role, until: opts.until, portals: opts.portal }, asOperator()));
      print({ json: !!opts.json }, { code: d.enterpriseCode, pid: maskPid(opts.pid), role: d.role, until: iso(d.until), portals: d.portals }, () =>
        `${maskPid(opts.pid)} may act for ${d.enterpriseCode} as ${d.role}${d.until ? ` until ${iso(d.until)}` : ''}`);
    });
  orgs.command('revoke')
    .description('end a person\'s delegation: tokens issued under it stop working, portals are told')
    .requiredOption('--code <code>', 'enterprise code')
    .requiredOption('--pid <pid>', 'the person\'s identification number')
    .option('--json', 'print JSON')
    .action(async (opts: { code: string; pid: string; json?: boolean }) => {
      const revoked = await orgAction((s) => s.orgs.revoke(opts.code, opts.pid, asOperator()));
      if (!revoked) throw new UsageError(`no delegation in force for ${maskPid(opts.pid)} at ${opts.code}`);
      print({ json: !!opts.json }, { code: opts.code, pid: maskPid(opts.pid), revoked: true }, () => `revoked ${maskPid(opts.pid)} at ${opts.code}`);
    });
}
