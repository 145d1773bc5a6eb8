/**
 * `dinhdanh operators`: who may use the operators' console, and in which roles (PRODUCT.md,
 * "Operators' console"; admin/operators.service.ts). The first operator is added from the command
 * line while none exists (bootstrap, flagged in the audit log); afterwards only a registered admin,
 * named with `--operator <their 12-digit number>`, adds operators or changes roles — never their
 * own — and removing one waits for a second admin (two-person control, approvals.service.ts).
 */
import { Option, type Command } from 'commander';
import { AdminError, actAs, checkRoles, checkText, type Act, type OperatorView } from '../admin/index.js';
import { maskPid } from '../accounts/index.js';
import { UsageError, breakGlass, collect, needRegistered, proposalOf, type CliContext, type CliServices } from './shared.js';

const OPERATOR_LIST_MAX = 200;

/** Why the bootstrap actor adds the first operator, when no --reason is given. */
const BOOTSTRAP_REASON = 'bootstrap: first operators';

export function operatorJson(v: OperatorView): Record<string, unknown> {
  return {
    id: v.personId, pid: v.pid, name: v.name, level: v.level, status: v.status, roles: v.roles,
    added_by: v.addedBy, added_at: new Date(v.addedAt).toISOString(), rev: v.rev,
  };
}

const operatorLine = (v: OperatorView) => `${v.personId}  ${v.pid}  ${v.roles.join(',').padEnd(20)}  level ${v.level}  ${v.status}  ${v.name}`;

/** The person behind a 12-digit number (AdminError otherwise: exit 2). */
async function personId(s: CliServices, pid: string): Promise<string> {
  if (!/^\d{12}$/.test(pid)) throw new AdminError('invalid', '<pid> must be exactly 12 digits');
  const p = await s.store.persons.findByPid(pid);
  if (!p) throw new AdminError('not_found', `no account with identification number ${maskPid(pid)}`);
  return p.id;
}

export function registerOperatorCommands(program: Command, cli: CliContext): void {
  const { config, operatorFor, print, printProposal, withServices } = cli;
  const operators = program.command('operators').description('operators of the console and their roles (helpdesk, integration, keys, auditor, admin)');
  const roleOption = () => new Option('--role <role>', 'helpdesk, integration, keys, auditor or admin (repeatable)').argParser(collect).default([]);

  operators.command('add')
    .description('make a person (an account at level 2 with a second factor, to sign in to the console) an operator; the first one while none exists, then a registered admin')
    .requiredOption('--pid <12 digits>', 'the person\'s identification number')
    .addOption(roleOption())
    .option('--reason <text>', 'why (recorded in the audit log); required except for the first operator')
    .option('--json', 'print JSON')
    .action(async (opts: { pid: string; role: string[]; reason?: string; json?: boolean }) => {
      const name = operatorFor(config());
      await withServices(async (s) => {
        const actor = await s.operators.cliActor(name);
        let act: Act;
        if (actor.bootstrap) {
          // Nobody could add the next operators, nor approve anything, without an admin among the first.
          if (!checkRoles(opts.role).includes('admin')) throw new UsageError('the first operator must hold the admin role (--role admin): only an admin adds the next ones');
          act = { actor, role: 'admin', reason: checkText('reason', opts.reason ?? BOOTSTRAP_REASON, 5, 500) };
        } else {
          needRegistered(actor, 'adding an operator once one exists');
          if (opts.reason === undefined) throw new UsageError('--reason is required: why this person becomes an operator (recorded in the audit log)');
          act = actAs(actor, 'operators.act', opts.reason);
        }
        const added = await s.operators.add(act, opts.pid, opts.role);
        print({ json: !!opts.json }, { operator: operatorJson(added), ...(actor.bootstrap ? { bootstrap: true } : {}) }, () =>
          `${added.pid} is now an operator: ${added.roles.join(', ')}${actor.bootstrap ? ' (bootstrap: the first operator, recorded as such)' : ''}${added.level < 2 ? '\nnote: the console needs identity level 2 and a second factor to sign in' : ''}`);
      });
    });

  operators.command('list')
    .description('list operators (identification numbers masked), in the order they were added')
    .option('--limit <n>', `at most n operators (1–${OPERATOR_LIST_MAX})`, '100')
    .option('--offset <n>', 'skip the first n operators', '0')
    .option('--json', 'print JSON')
    .action(async (opts: { limit: string; offset: string; json?: boolean }) => {
      if (!/^\d+$/.test(opts.limit) || Number(opts.limit) < 1 || Number(opts.limit) > OPERATOR_LIST_MAX) {
        throw new UsageError(`--limit must be a whole number from 1 to ${OPERATOR_LIST_MAX}`);
      }
      if (!/^\d{1,9}$/.test(opts.offset)) throw new UsageError('--offset must be a whole number');
      await withServices(async (s) => {
        const { total, operators: list } = await s.operators.list({ limit: Number(opts.limit), offset: Number(opts.offset) });
        print({ json: !!opts.json }, { total, operators: list.map(operatorJson) }, () =>
          list.length ? list.map(operatorLine).join('\n') : 'no operators (the first is added with: dinhdanh operators add --pid <pid> --role admin)');
      });
    });

  operators.command('roles')
    .description('replace another operator\'s roles (a registered admin; never one\'s own)')
    .argument('<pid>', 'the operator\'s identification number (12 digits)')
    .addOption(roleOption())
    .requiredOption('--reason <text>', 'why (recorded in the audit log)')
    .option('--break-glass', 'granting or taking away admin, by a registered admin alone and at once (recorded as such): how a new installation\'s first admin makes the second')
    .option('--json', 'print JSON')
    .action(async (pid: string, opts: { role: string[]; reason: string; breakGlass?: boolean; json?: boolean }) => {
      const name = operatorFor(config());
      await withServices(async (s) => {
        const actor = await s.operators.cliActor(name);
        const alone = breakGlass(actor, opts);
        needRegistered(actor, 'changing roles');
        const act = actAs(actor, 'operators.act', opts.reason);
        const id = await personId(s, pid);
        const before = await s.operators.find(id);
        if (!before) throw new AdminError('not_found', `${maskPid(pid)} is not an operator (dinhdanh operators add)`);
        // The revision just read: the change is refused if another admin changed them in between.
        // Granting or taking away admin is proposed for a second admin (dinhdanh approvals).
        const r = await s.adminActions.operatorsAdmin.setRoles(actor, id, before.rev, opts.role, act.reason, { breakGlass: alone });
        const approval = proposalOf(r);
        if (approval) {
          printProposal({ json: !!opts.json }, approval);
          return;
        }
        const after = (await s.operators.show(id))!;
        print({ json: !!opts.json }, { operator: operatorJson(after), from: before.roles }, () => `${after.pid}: ${before.roles.join(', ')} → ${after.roles.join(', ')}`);
      });
    });

  operators.command('remove')
    .description('remove an operator: proposed, and done when a second admin approves (dinhdanh approvals); --break-glass: at once')
    .argument('<pid>', 'the operator\'s identification number (12 digits)')
    .requiredOption('--reason <text>', 'why (recorded in the audit log; the approver reads it)')
    .option('--break-glass', 'a registered admin, alone and at once (recorded as such)')
    .option('--json', 'print JSON')
    .action(async (pid: string, opts: { reason: string; breakGlass?: boolean; json?: boolean }) => {
      const name = operatorFor(config());
      await withServices(async (s) => {
        const actor = await s.operators.cliActor(name);
        const alone = breakGlass(actor, opts);
        needRegistered(actor, 'removing an operator');
        const id = await personId(s, pid);
        const r = await s.adminActions.operatorsAdmin.remove(actor, id, opts.reason, { breakGlass: alone });
        const approval = proposalOf(r);
        if (approval) printProposal({ json: !!opts.json }, approval);
        else print({ json: !!opts.json }, { id, removed: true }, () => `${maskPid(pid)} is no longer an operator`);
      });
    });
}
