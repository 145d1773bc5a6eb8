/**
 * `dinhdanh stats`: the usage statistics every instance writes to the store (metrics/usage.service.ts),
 * read through metrics/usage.report.ts. Read-only, like `audit export` and the other list commands:
 * whoever may run the command line against the store may read them (the console gives them to the
 * `auditor` and `integration` roles). Nothing is flushed from here: a running server writes what it
 * counted within 5 seconds.
 *
 * `stats usage` is for the operators (exact figures); `stats export` is the daily per-portal export
 * for the e-government monitoring system (EMC), of finished days only, with small counts withheld
 * (usage.report.ts).
 */
import { Option, type Command } from 'commander';
import { LOA } from '../provider/levels.js';
import {
  EMC_FIELDS, FIRST_PARTY_CLIENTS, SUPPRESS_BELOW, UsageQueryError, checkEmcPeriod, checkPeriod, checkPortal, createUsageReports, type EmcRow,
} from '../metrics/usage.report.js';
import type { UsageDay } from '../metrics/usage.types.js';
import { UsageError, checkInput, type CliContext, type CliServices } from './shared.js';

type Format = 'table' | 'json' | 'csv';

/** `--json` is `--format json` (the convention of every command); asking for two formats is an error. */
function formatOf(opts: { json?: boolean; format?: 'json' | 'csv' }): Format {
  if (opts.json && opts.format === 'csv') throw new UsageError('--json and --format csv ask for two formats: give one');
  return opts.json ? 'json' : opts.format ?? 'table';
}

/**
 * One CSV field (RFC 4180 §2: quoted when it holds a comma, a quote or a line break, quotes
 * doubled). Free text (a portal's name) that a spreadsheet would read as a formula is prefixed
 * with `'` (OWASP, CSV Injection).
 */
function csvField(value: unknown, freeText = false): string {
  let s = value === null || value === undefined ? '' : String(value);
  if (freeText && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const csv = (header: readonly string[], rows: ReadonlyArray<readonly string[]>): string =>
  [header.join(','), ...rows.map((r) => r.join(','))].join('\r\n');

/** A plain table: columns padded, numbers to the right. */
function table(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number | null>>): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === null ? '—' : String(c))))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  const numeric = header.map((_, i) => rows.every((r) => typeof r[i] === 'number' || r[i] === null));
  return cells.map((r) => r.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

const LEVEL_COLUMNS = [['low', LOA.low], ['substantial', LOA.substantial], ['high', LOA.high]] as const;
const total = (r: Record<string, number>) => Object.values(r).reduce((s, n) => s + n, 0);
const otherLevels = (byLevel: Record<string, number>) => total(byLevel) - LEVEL_COLUMNS.reduce((s, [, acr]) => s + (byLevel[acr] ?? 0), 0);

/** The CSV columns of `stats usage`: one line per day and portal (`*`: all portals together). */
export const USAGE_CSV_FIELDS = [
  'date', 'portal', 'signins', 'citizens', 'level_low', 'level_substantial', 'level_high', 'level_other', 'failures',
  'consents_given', 'consents_withdrawn', 'registrations', 'recoveries', 'funnel_shown', 'funnel_signed_in', 'funnel_consent', 'funnel_code',
] as const;

function usageCsvRow(d: UsageDay): string[] {
  return [
    d.date, d.portal, d.signins, d.citizens, ...LEVEL_COLUMNS.map(([, acr]) => d.by_level[acr] ?? 0), otherLevels(d.by_level), total(d.failures),
    d.consents.given, d.consents.withdrawn, d.registrations.completed ?? 0, d.recoveries.completed ?? 0,
    d.funnel.shown, d.funnel.signed_in, d.funnel.consent, d.funnel.code,
  ].map((v) => csvField(v));
}

type AllPortalsDay = { date: string; signins: number; by_level: Record<string, number>; citizens: number };

/** An all-portals day as a CSV line: its sign-ins, levels and distinct citizens; the rest is per portal. */
function allPortalsCsvRow(d: AllPortalsDay): string[] {
  return [d.date, '*', d.signins, d.citizens, ...LEVEL_COLUMNS.map(([, acr]) => d.by_level[acr] ?? 0), otherLevels(d.by_level), '', '', '', '', '', '', '', '', '']
    .map((v) => csvField(v));
}

const reportsOf = (s: CliServices) =>
  createUsageReports({ repo: s.store.usage, portalName: async (id) => (await s.store.portals.find(id))?.name });

export function registerStatsCommands(program: Command, cli: CliContext): void {
  const { io, withServices } = cli;
  const stats = program.command('stats').description('usage statistics: sign-ins per day and portal (Vietnam time), kept 25 months');
  const formatOption = () => new Option('--format <format>', 'json or csv (default: a table)').choices(['json', 'csv']);

  stats.command('usage')
    .description('per day and portal: sign-ins by level and method, distinct citizens, failures, consents, registrations, recoveries')
    .requiredOption('--from <YYYY-MM-DD>', 'first day (Vietnam time)')
    .requiredOption('--to <YYYY-MM-DD>', 'last day, included (at most 25 months after --from)')
    .option('--portal <client_id>', 'only this portal (`-`: journeys begun at dinhdanh itself; `other`: unregistered clients)')
    .addOption(formatOption())
    .option('--json', 'print JSON (same as --format json)')
    .action(async (opts: { from: string; to: string; portal?: string; format?: 'json' | 'csv'; json?: boolean }) => {
      const format = formatOf(opts);
      const period = checkInput(() => checkPeriod(opts), UsageQueryError);
      const portal = checkInput(() => checkPortal(opts.portal), UsageQueryError);
      const { days, all } = await withServices(async (s) => {
        const reports = reportsOf(s);
        return {
          days: await reports.days({ ...period, portal }),
          // All portals together (a person at two portals is one citizen): only for the whole picture.
          all: portal === undefined ? await reports.allPortals(period) : null,
        };
      }, UsageQueryError);
      if (format === 'json') {
        io.stdout(`${JSON.stringify({ from: period.from, to: period.to, ...(portal !== undefined ? { portal } : {}), days, ...(all ? { all_portals: all } : {}) })}\n`);
        return;
      }
      if (format === 'csv') {
        const rows = [...days.map(usageCsvRow), ...(all ?? []).map(allPortalsCsvRow)];
        io.stdout(`${csv(USAGE_CSV_FIELDS, rows)}\r\n`);
        return;
      }
      const header = ['date', 'portal', 'signins', 'citizens', 'low', 'substantial', 'high', 'failures', 'consents', 'registrations', 'recoveries'];
      const lines: string[] = [`usage ${period.from} … ${period.to} (Vietnam time)${portal !== undefined ? `, portal ${portal}` : ''}`];
      lines.push(days.length
        ? table(header, days.map((d) => [
          d.date, d.portal, d.signins, d.citizens, ...LEVEL_COLUMNS.map(([, acr]) => d.by_level[acr] ?? 0), total(d.failures), d.consents.given,
          d.registrations.completed ?? 0, d.recoveries.completed ?? 0,
        ]))
        : 'nothing counted in this period');
      // dinhdanh's own clients look like portals in the table: said once, under it.
      const own = [...new Set(days.map((d) => d.portal).filter((p) => FIRST_PARTY_CLIENTS.has(p)))];
      if (own.length > 0) lines.push(`${own.join(', ')}: dinhdanh's own clients (the operators' console, the account area), not portals; not in stats export`);
      if (all) {
        lines.push('', 'all portals (citizens counted once across portals)');
        lines.push(table(['date', 'signins', 'citizens', 'low', 'substantial', 'high'], all.map((d) => [
          d.date, d.signins, d.citizens, ...LEVEL_COLUMNS.map(([, acr]) => d.by_level[acr] ?? 0),
        ])));
      }
      io.stdout(`${lines.join('\n')}\n`);
    });

  stats.command('export')
    .description(`the daily per-portal export for the e-government monitoring system (EMC): finished days only, counts from 1 to ${SUPPRESS_BELOW - 1} withheld`)
    .requiredOption('--from <YYYY-MM-DD>', 'first day (Vietnam time)')
    .requiredOption('--to <YYYY-MM-DD>', 'last day, included: the day before yesterday (Vietnam time) at the latest, at most 25 months after --from')
    .addOption(formatOption())
    .option('--json', 'print JSON (same as --format json)')
    .action(async (opts: { from: string; to: string; format?: 'json' | 'csv'; json?: boolean }) => {
      const format = formatOf(opts);
      const period = checkInput(() => checkEmcPeriod(opts), UsageQueryError);
      const rows = await withServices((s) => reportsOf(s).emc(period), UsageQueryError);
      if (format === 'json') {
        io.stdout(`${JSON.stringify({ from: period.from, to: period.to, suppress_below: SUPPRESS_BELOW, rows })}\n`);
        return;
      }
      if (format === 'csv') {
        const line = (r: EmcRow) => EMC_FIELDS.map((f) => (f === 'suppressed' ? csvField(r.suppressed.join(' ')) : csvField(r[f], f === 'portal_name')));
        io.stdout(`${csv(EMC_FIELDS, rows.map(line))}\r\n`);
        return;
      }
      const header = ['date', 'portal', 'signins', 'low', 'substantial', 'high', 'citizens', 'failures', 'success', 'registrations', 'recoveries'];
      io.stdout(`${[
        `EMC export ${period.from} … ${period.to} (Vietnam time); — : withheld (a count from 1 to ${SUPPRESS_BELOW - 1}, or one that would reveal it)`,
        rows.length
          ? table(header, rows.map((r) => [
            r.date, r.portal_id, r.signins, r.signins_low, r.signins_substantial, r.signins_high, r.citizens, r.failures,
            r.success_rate === null ? null : `${(r.success_rate * 100).toFixed(1)}%`, r.registrations, r.recoveries,
          ]))
          : 'nothing counted in this period',
      ].join('\n')}\n`);
    });
}
