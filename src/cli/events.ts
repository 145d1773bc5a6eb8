/**
 * `dinhdanh events`: the portals' security event streams (events/, OpenID Shared Signals 1.0) and
 * how their deliveries fare, for operators. Read-only. What a stream holds is shown without what
 * could be a secret: the push endpoint's origin only (its path or query may carry a token), never
 * the authorization header, never a SET.
 */
import type { Command } from 'commander';
import { checkInput, UsageError, type CliContext } from './shared.js';

class EventsInputError extends Error {}

const origin = (url: string | null) => {
  if (!url) return null;
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
};
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const shortType = (t: string) => t.split(/[/:]/).pop() ?? t;

export function registerEventsCommands(program: Command, cli: CliContext): void {
  const { withServices, print } = cli;
  const events = program.command('events').description('security events for portals (Shared Signals): streams and deliveries');

  events.command('streams')
    .description('every portal\'s stream: method, endpoint origin, status, events asked for, undelivered, delivered, failed, last outcome')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const rows = await withServices(async (s) => {
        const t = Date.now();
        const stats = new Map((await s.store.ssf.deliveryStats(t)).map((x) => [x.streamId, x]));
        return (await s.store.ssf.listStreams()).map((st) => {
          const x = stats.get(st.id);
          return {
            portal: st.clientId, stream: st.id, method: st.deliveryMethod.endsWith('8935') ? 'push' : 'poll', endpoint: origin(st.endpointUrl),
            status: st.status, events_requested: st.eventsRequested.map(shortType), undelivered: x?.undelivered ?? 0,
            oldest_undelivered_age_s: x?.oldestUndeliveredAt ? Math.round((t - x.oldestUndeliveredAt) / 1000) : null,
            delivered: x?.delivered ?? 0, failed: x?.failed ?? 0, last_outcome: x?.lastOutcome ?? null, last_at: iso(x?.lastAttemptAt ?? null),
          };
        });
      });
      print({ json: !!opts.json }, { streams: rows }, () => (rows.length === 0 ? 'no portal has a security event stream' : rows.map((r) =>
        `${r.portal}  ${r.method}${r.endpoint ? ` ${r.endpoint}` : ''}  ${r.status}  ${r.events_requested.length} event type(s)\n`
        + `  undelivered ${r.undelivered}${r.oldest_undelivered_age_s !== null ? ` (oldest ${r.oldest_undelivered_age_s} s)` : ''}, delivered ${r.delivered}, failed ${r.failed}`
        + `${r.last_outcome ? `, last: ${r.last_outcome} at ${r.last_at}` : ''}`).join('\n')));
    });

  events.command('deliveries')
    .description('one portal\'s queued and recent security events: jti, type, made, attempts, last outcome')
    .requiredOption('--portal <client_id>', 'the portal')
    .option('--limit <n>', 'at most this many undelivered events (1–1000, default 50)', '50')
    .option('--json', 'print JSON')
    .action(async (opts: { portal: string; limit: string; json?: boolean }) => {
      const limit = checkInput(() => {
        if (!/^\d{1,4}$/.test(opts.limit) || Number(opts.limit) < 1 || Number(opts.limit) > 1000) throw new EventsInputError('--limit must be a whole number from 1 to 1000');
        if (!/^[\x21-\x7e]{1,200}$/.test(opts.portal)) throw new EventsInputError('--portal must be a client id');
        return Number(opts.limit);
      }, EventsInputError);
      const out = await withServices(async (s) => {
        const stream = await s.store.ssf.findStreamByClient(opts.portal);
        if (!stream) throw new UsageError(`portal ${opts.portal} has no security event stream`);
        const waiting = await s.store.ssf.undelivered(stream.id, Date.now(), limit);
        return {
          portal: stream.clientId, stream: stream.id, status: stream.status,
          undelivered: waiting.map((e) => ({ jti: e.jti, types: e.types.map(shortType), created: iso(e.createdAt), attempts: e.attempts, last_outcome: e.lastOutcome, last_at: iso(e.lastAttemptAt) })),
        };
      });
      print({ json: !!opts.json }, out, () => `${out.portal} (${out.status}): ${out.undelivered.length} undelivered\n${out.undelivered.map((e) =>
        `  ${e.created}  ${e.types.join(',')}  ${e.jti}  attempts ${e.attempts}${e.last_outcome ? `, last: ${e.last_outcome}` : ''}`).join('\n')}`);
    });
}
