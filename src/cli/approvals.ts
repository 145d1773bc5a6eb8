/**
 * `dinhdanh approvals`: two-person control from the command line (admin/approvals.service.ts).
 * Raising an identity to level 2, approving `national_id` for a portal, retiring a signing key,
 * removing an operator and unlocking a fraud lock are proposed by one operator and carried out when
 * a different operator with the action's role approves within 24 hours. Proposing (once operators
 * exist) and deciding need a registered operator (`--operator <their 12-digit number>`) who proves
 * it with a current code of their authenticator app (`--code-stdin`, shared.ts proveOperator): the
 * host's `cli:<name>` cannot answer for it.
 */
import { Option, type Command } from 'commander';
import type { ApprovalState, ApprovalView } from '../admin/index.js';
import { UsageError, needRegistered, type CliContext } from './shared.js';

const APPROVAL_LIST_MAX = 100;
const STATES: readonly ApprovalState[] = ['pending', 'approved', 'rejected', 'lapsed'];

/** The last 4 characters of a document number (as `accounts show` masks it). */
const maskDocument = (n: string) => `${'*'.repeat(Math.max(0, n.length - 4))}${n.slice(-4)}`;
const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

export function approvalJson(a: ApprovalView): Record<string, unknown> {
  const params = typeof a.params.documentNumber === 'string' ? { ...a.params, documentNumber: maskDocument(a.params.documentNumber) } : a.params;
  return {
    id: a.id, action: a.action, subject: a.subject, state: a.state, params,
    proposed_by: a.proposedBy, proposed_role: a.proposedRole, reason: a.reason, evidence: a.evidence,
    created_at: iso(a.createdAt), expires_at: iso(a.expiresAt),
    decided_by: a.decidedBy, decided_role: a.decidedRole, decided_at: iso(a.decidedAt), decision_reason: a.decisionReason, outcome: a.outcome,
  };
}

const approvalLine = (a: ApprovalView) =>
  `${a.id}  ${a.state.padEnd(8)}  ${a.action.padEnd(19)}  ${a.subject}  by ${a.proposedBy} (${a.proposedRole}): ${a.reason}${a.outcome ? `  → ${a.outcome}` : ''}`;

export function registerApprovalCommands(program: Command, cli: CliContext): void {
  const { config, operatorFor, print, withServices } = cli;
  const approvals = program.command('approvals').description('two-person control: proposals waiting for a second operator');

  approvals.command('list')
    .description('proposals, newest first (a pending one lapses after 24 hours)')
    .addOption(new Option('--state <state>', 'only pending, approved, rejected or lapsed ones').choices(STATES))
    .option('--limit <n>', `at most n proposals (1–${APPROVAL_LIST_MAX})`, '20')
    .option('--before <id>', 'the next page: proposals older than this one (the "next" of the previous page)')
    .option('--json', 'print JSON')
    .action(async (opts: { state?: ApprovalState; limit: string; before?: string; json?: boolean }) => {
      if (!/^\d+$/.test(opts.limit) || Number(opts.limit) < 1 || Number(opts.limit) > APPROVAL_LIST_MAX) {
        throw new UsageError(`--limit must be a whole number from 1 to ${APPROVAL_LIST_MAX}`);
      }
      const limit = Number(opts.limit);
      await withServices(async (s) => {
        let before: { createdAt: number; id: string } | undefined;
        if (opts.before !== undefined) {
          const from = await s.adminActions.approvals.find(opts.before);
          if (!from) throw new UsageError('--before must be the id of a proposal (the "next" of the previous page)');
          before = { createdAt: from.createdAt, id: from.id };
        }
        const list = await s.adminActions.approvals.list({ state: opts.state, before, limit });
        const next = list.length === limit ? list[list.length - 1]!.id : null;
        print({ json: !!opts.json }, { approvals: list.map(approvalJson), next }, () =>
          [...(list.length ? list.map(approvalLine) : ['no proposals']), ...(next ? [`(more: --before ${next})`] : [])].join('\n'));
      });
    });

  for (const [name, description] of [
    ['approve', 'approve a proposal and carry it out (a different operator than its proposer, with the action\'s role, within 24 hours)'],
    ['reject', 'reject a proposal: it is not carried out'],
  ] as const) {
    approvals.command(name)
      .description(description)
      .argument('<id>', 'the proposal\'s id (dinhdanh approvals list)')
      .requiredOption('--reason <text>', 'why (recorded in the audit log)')
      .option('--json', 'print JSON')
      .action(async (id: string, opts: { reason: string; json?: boolean }) => {
        const operator = operatorFor(config());
        await withServices(async (s) => {
          const actor = await s.operators.cliActor(operator);
          needRegistered(actor, 'deciding a proposal');
          const decided = name === 'approve'
            ? await s.adminActions.approvals.approve(actor, id, opts.reason)
            : await s.adminActions.approvals.reject(actor, id, opts.reason);
          print({ json: !!opts.json }, { approval: approvalJson(decided) }, () =>
            `${decided.state} ${decided.id} (${decided.action})${decided.outcome ? `: ${decided.outcome}` : ''}`);
        });
      });
  }
}
