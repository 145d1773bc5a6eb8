/**
 * `dinhdanh audit`: checking and exporting the tamper-evident audit log.
 */
import type { Command } from 'commander';
import { verifyAuditLog } from '../audit/index.js';
import { UsageError, VerifyFailed, type CliContext } from './shared.js';

export function registerAuditCommands(program: Command, cli: CliContext): void {
  const { io, print, withServices } = cli;
  const audit = program.command('audit').description('the tamper-evident audit log');
  audit.command('verify')
    .description('check the whole hash chain; names the first broken entry and exits 1 if any')
    .option('--head <seq:hash>', 'a head logged earlier ("audit log head" lines): it must still be in the chain, unchanged')
    .option('--json', 'print JSON')
    .action(async (opts: { head?: string; json?: boolean }) => {
      let expect: { seq: number; hash: string } | undefined;
      if (opts.head !== undefined) {
        const m = /^(\d{1,12}):([0-9a-f]{64})$/.exec(opts.head);
        if (!m) throw new UsageError('--head must be <seq>:<64 hex characters>, as in the "audit log head" log lines');
        expect = { seq: Number(m[1]), hash: m[2]! };
      }
      const result = await withServices((s) => verifyAuditLog(s.store.audit, expect));
      if (!result.ok) {
        if (opts.json) io.stdout(`${JSON.stringify({ ok: false, broken_at: result.seq, problem: result.problem, verified_before: result.entries })}\n`);
        io.stderr(`dinhdanh: the audit log is broken at entry ${result.seq}: ${result.problem}\n`);
        throw new VerifyFailed();
      }
      print({ json: !!opts.json }, { ok: true, entries: result.entries, head: result.head }, () =>
        `audit log intact: ${result.entries} entries${result.head ? `, head ${result.head.seq}:${result.head.hash}` : ''}`);
    });
  audit.command('export')
    .description('write the audit log as JSON lines (one entry per line, for a SIEM)')
    .option('--since <date>', 'only entries at or after this date (YYYY-MM-DD or an ISO time)')
    .action(async (opts: { since?: string }) => {
      let since = 0;
      if (opts.since !== undefined) {
        since = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2}))?$/.test(opts.since) ? Date.parse(opts.since) : NaN;
        if (Number.isNaN(since)) throw new UsageError('--since must be a date (YYYY-MM-DD) or an ISO time');
      }
      await withServices(async (s) => {
        let after = 0;
        for (;;) {
          const page = await s.store.audit.listSince(since, after, 1000);
          if (page.length === 0) break;
          io.stdout(page.map((e) => JSON.stringify({
            seq: e.seq, at: new Date(e.at).toISOString(), event: e.event, event_id: e.eventId, details: e.details, prev_hash: e.prevHash, hash: e.hash,
          })).join('\n') + '\n');
          after = page[page.length - 1]!.seq;
        }
      });
    });
}
