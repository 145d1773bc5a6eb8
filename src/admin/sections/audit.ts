/**
 * The console's audit pages, for the `auditor` role (audit.read / audit.export): search the
 * hash-chained audit log, verify the chain, export entries. The auditor changes nothing: the only
 * POSTs are the verification (a read that walks the chain) and the export (a read that is itself
 * recorded), and every route checks its permission whatever the page offered (OWASP ASVS 5.0
 * 8.2.1, 8.3.1).
 *
 * - GET /admin/audit: a filter form (GET: bookmarkable, no state changed, so no CSRF token) by
 *   event, person, portal, operator and a time window in Vietnam time; results newest first, paged
 *   by a seq cursor (`before`), each a store query bounded by PAGE_SIZE (store/types.ts
 *   AuditRepository.search: every filter served by an index). Every filter value is checked here;
 *   the store only ever receives an event name from the closed list, ids matching their patterns
 *   and finite numbers (ARCHITECTURE.md rule 6). A 12-digit identification number given for a
 *   person or an operator is looked up and the page answers with a redirect to the same search by
 *   the account's id, so full numbers stay out of URLs, browser history and the page
 *   (ARCHITECTURE.md rule 9).
 * - POST /admin/audit/verify: verifyAuditLog over the whole chain (audit/audit.service.ts), with an
 *   optional head `seq:hash` recorded earlier, which must still be in the chain unchanged.
 * - POST /admin/audit/export: the same filters and a reason; a JSON Lines download of at most
 *   MAX_EXPORT entries, each exactly as stored ({seq, at, event, event_id, details, prev_hash,
 *   hash}, as `dinhdanh audit export` writes them) so that every entry can be checked again with
 *   entryHash, and a contiguous export also link by link. The export itself is recorded
 *   (AUDIT_EXPORTED: operator, role, reason, filter, entries, truncated) — an audit log's readers are
 *   themselves accountable (ASVS 5.0 16.2.1; Decree 13/2023/ND-CP on processing personal data).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { SectionDeps } from '../admin.app.js';
import { PAGE_SIZE } from '../admin-http.js';
import { actAs, actDetails, can, type Act } from '../roles.js';
import { SECURITY_EVENTS, verifyAuditLog, type SecurityEventName, type VerifyResult } from '../../audit/index.js';
import { maskPid } from '../../accounts/index.js';
import { CLIENT_ID_RE } from '../../portals/index.js';
import type { Locale, MessageKey } from '../../http/i18n.js';
import type { AuditEntry, AuditFilter } from '../../store/index.js';

/** At most this many entries in one export (newest first within the filter); narrow the window for more. */
export const MAX_EXPORT = 10_000;
/** Entries read from the store per query while exporting. */
const EXPORT_BATCH = 1000;

/** Asia/Ho_Chi_Minh is UTC+07:00 all year (no daylight saving since 1975): operators type Vietnam time. */
const VIETNAM_OFFSET_MS = 7 * 3600_000;

const EVENT_NAMES = Object.keys(SECURITY_EVENTS) as SecurityEventName[];
const isEvent = (v: string): v is SecurityEventName => Object.prototype.hasOwnProperty.call(SECURITY_EVENTS, v);

const PID = /^\d{12}$/;
/** A person id: accounts are created with a random UUID (accounts/account.service.ts). */
const PERSON_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/**
 * An operator as the audit log names them: a person id, `cli:<name>`, or a bare name (the command
 * line's key rotations and older account changes record the name alone) — config.ts parseOperator's
 * names.
 */
const OPERATOR = /^(?:cli:)?[A-Za-z0-9._@-]{2,64}$/;
const SEQ = /^\d{1,15}$/;
/** A date, or a datetime-local value (minutes, optional seconds). */
const WHEN = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?)?$/;
const HEAD = /^(\d{1,12}):([0-9a-f]{64})$/;

export const FILTER_FIELDS = ['event', 'person', 'portal', 'operator', 'from', 'to'] as const;
type FilterField = (typeof FILTER_FIELDS)[number];
type FilterValues = Partial<Record<FilterField, string>>;

/** What can be wrong with a filter; each is a message `admin.audit.bad.<problem>`. */
type Problem = FilterField | 'range' | 'before' | 'form' | 'person_unknown' | 'operator_unknown';

/** Longest value echoed back into the form (anything longer is wrong anyway). */
const ECHO_MAX = 100;
const filterField = z.string().max(ECHO_MAX).optional();
const FORMS = {
  verify: { head: z.string().max(200).optional() },
  export: {
    event: filterField, person: filterField, portal: filterField, operator: filterField, from: filterField, to: filterField,
    reason: z.string().max(4000),
  },
};

interface ParsedFilter {
  /** Only validated scalars: what the store receives. */
  filter: AuditFilter;
  /** The values to put in URLs and hidden fields (ids instead of identification numbers). */
  canonical: FilterValues;
  /** What was typed, to fill the form again (escaped by the template). */
  typed: FilterValues;
  problems: Problem[];
  /** A 12-digit number was replaced by the account's id. */
  resolved: boolean;
  /** The account a person filter names, masked, to show above the results. */
  personShown: string | null;
}

/** `YYYY-MM-DD[THH:MM[:SS]]` in Vietnam time → epoch ms; a date alone as an end means the whole of that day. */
export function vietnamTime(value: string, end: boolean): number | undefined {
  const m = WHEN.exec(value);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4] ?? '0', m[5] ?? '0', m[6] ?? '0'].map(Number) as [number, number, number, number, number, number];
  if (y < 2000 || y > 2100 || h > 23 || mi > 59 || s > 59) return undefined;
  const utc = Date.UTC(y, mo - 1, d, h, mi, s);
  const check = new Date(utc);
  // 2025-02-30 is not a date (Date.UTC would quietly roll it over to March).
  if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) return undefined;
  return utc - VIETNAM_OFFSET_MS + (end && m[4] === undefined ? 86_400_000 : 0);
}

/** Epoch ms as a datetime-local value in Vietnam time (what the form's inputs show). */
function localInput(ms: number): string {
  const iso = new Date(ms + VIETNAM_OFFSET_MS).toISOString();
  return iso.endsWith(':00.000Z') ? iso.slice(0, 16) : iso.slice(0, 19);
}

/** An entry's time as operators read it: Vietnam time, to the second. */
function formatTime(ms: number, locale: Locale): string {
  return new Intl.DateTimeFormat(locale === 'vi' ? 'vi-VN' : 'en-GB', {
    year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZone: 'Asia/Ho_Chi_Minh',
  }).format(ms);
}

/** One value of an entry's details, short and on one line. */
function shortValue(v: unknown): string {
  let s: string;
  if (typeof v === 'string') s = v;
  else if (Array.isArray(v)) s = v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(',');
  else if (v !== null && typeof v === 'object') s = JSON.stringify(v);
  else s = String(v);
  s = s.replace(/\p{Cc}+/gu, ' ');
  return s.length > 120 ? `${s.slice(0, 119)}…` : s;
}

/** An entry's details as `key=value` pairs (escaped by the template; cut when long). */
export function describeDetails(details: Record<string, unknown>): string {
  const text = Object.entries(details).map(([k, v]) => `${k}=${shortValue(v)}`).join(' · ');
  return text.length > 600 ? `${text.slice(0, 599)}…` : text;
}

/** The filter as one line for the audit record of an export: `event=… person=… from=<ISO>`. */
function filterLine(f: AuditFilter): string {
  const parts: string[] = [];
  for (const k of ['event', 'person', 'portal', 'operator'] as const) if (f[k] !== undefined) parts.push(`${k}=${f[k]}`);
  if (f.from !== undefined) parts.push(`from=${new Date(f.from).toISOString()}`);
  if (f.to !== undefined) parts.push(`to=${new Date(f.to).toISOString()}`);
  return parts.length ? parts.join(' ') : '*';
}

/** An entry as a JSON line, as `dinhdanh audit export` writes it (re-verifiable: `at` is exact to the millisecond). */
export function exportLine(e: AuditEntry): string {
  return JSON.stringify({ seq: e.seq, at: new Date(e.at).toISOString(), event: e.event, event_id: e.eventId, details: e.details, prev_hash: e.prevHash, hash: e.hash });
}

export function registerAuditRoutes(router: Router, deps: SectionDeps): void {
  const { kit } = deps;

  /**
   * Checks every filter value; looks up identification numbers. Empty values are "no filter" (a
   * GET form sends every field).
   */
  async function parseFilter(raw: Record<string, unknown>): Promise<ParsedFilter> {
    const out: ParsedFilter = { filter: {}, canonical: {}, typed: {}, problems: [], resolved: false, personShown: null };
    const value = (k: FilterField): string | undefined => {
      const v = raw[k];
      if (v === undefined) return undefined;
      if (typeof v !== 'string' || v.length > ECHO_MAX) {
        out.problems.push(k);
        return undefined;
      }
      out.typed[k] = v;
      const trimmed = v.trim();
      return trimmed === '' ? undefined : trimmed;
    };

    const event = value('event');
    if (event !== undefined) {
      if (isEvent(event)) out.filter.event = out.canonical.event = event;
      else out.problems.push('event');
    }

    const person = value('person');
    if (person !== undefined) {
      const digits = person.replace(/[\s.]/g, '');
      if (PID.test(digits)) {
        const p = await deps.store.persons.findByPid(digits);
        if (p) {
          out.filter.person = out.canonical.person = out.typed.person = p.id;
          out.resolved = true;
          out.personShown = maskPid(p.pid);
        } else {
          out.problems.push('person_unknown');
          // Not written back into the page: a full number stays off it (ARCHITECTURE.md rule 9).
          delete out.typed.person;
        }
      } else if (PERSON_ID.test(person)) {
        out.filter.person = out.canonical.person = person;
        const p = await deps.store.persons.findById(person);
        out.personShown = p ? maskPid(p.pid) : null;
      } else out.problems.push('person');
    }

    const portal = value('portal');
    if (portal !== undefined) {
      if (CLIENT_ID_RE.test(portal)) out.filter.portal = out.canonical.portal = portal;
      else out.problems.push('portal');
    }

    const operator = value('operator');
    if (operator !== undefined) {
      const digits = operator.replace(/[\s.]/g, '');
      if (PID.test(digits)) {
        const p = await deps.store.persons.findByPid(digits);
        if (p) {
          out.filter.operator = out.canonical.operator = out.typed.operator = p.id;
          out.resolved = true;
        } else {
          out.problems.push('operator_unknown');
          delete out.typed.operator;
        }
      } else if (OPERATOR.test(operator)) out.filter.operator = out.canonical.operator = operator;
      else out.problems.push('operator');
    }

    for (const k of ['from', 'to'] as const) {
      const v = value(k);
      if (v === undefined) continue;
      const ms = vietnamTime(v, k === 'to');
      if (ms === undefined) out.problems.push(k);
      else {
        out.filter[k] = ms;
        out.canonical[k] = v;
      }
    }
    if (out.filter.from !== undefined && out.filter.to !== undefined && out.filter.from >= out.filter.to) out.problems.push('range');
    return out;
  }

  const query = (values: FilterValues, before?: number): string => {
    const q = new URLSearchParams();
    for (const k of FILTER_FIELDS) if (values[k] !== undefined) q.set(k, values[k]!);
    if (before !== undefined) q.set('before', String(before));
    const s = q.toString();
    return s ? `?${s}` : '';
  };

  /** The form's fields as the page shows them: typed values, the time window in Vietnam time. */
  function formValues(p: ParsedFilter): FilterValues {
    return {
      ...p.typed,
      ...(p.filter.from !== undefined ? { from: localInput(p.filter.from) } : {}),
      ...(p.filter.to !== undefined ? { to: localInput(p.filter.to) } : {}),
    };
  }

  type Extra = { refusal?: ReturnType<typeof kit.refusal>; status?: number };

  /** The search page: the form, and — when the filter is sound — a page of results and the export form. */
  async function searchPage(ctx: Context, p: ParsedFilter, before: number | undefined, extra: Extra = {}): Promise<void> {
    const ok = p.problems.length === 0;
    const rows = ok ? await deps.store.audit.search({ ...p.filter, ...(before !== undefined ? { beforeSeq: before } : {}), limit: PAGE_SIZE + 1 }) : [];
    const page = rows.slice(0, PAGE_SIZE);
    const last = page[page.length - 1];
    const canExport = can(kit.actor(ctx).roles, 'audit.export');
    const filtered = Object.keys(p.filter).length > 0;
    // The total without a filter is the head's seq (seqs have no gaps); a filtered count goes
    // through the filter's index.
    const matching = ok && canExport ? (filtered ? await deps.store.audit.count(p.filter) : (await deps.store.audit.head())?.seq ?? 0) : null;
    const onlyUnknown = p.problems.length > 0 && p.problems.every((x) => x === 'person_unknown' || x === 'operator_unknown');
    const status = extra.status ?? extra.refusal?.status ?? (ok ? 200 : onlyUnknown ? 404 : 400);
    kit.page(ctx, 'admin/audit', (t, locale) => ({
      title: t('admin.audit.title'),
      events: EVENT_NAMES.map((name) => ({ name, id: SECURITY_EVENTS[name] })),
      values: formValues(p),
      invalid: Object.fromEntries(p.problems.map((x) => [x === 'person_unknown' ? 'person' : x === 'operator_unknown' ? 'operator' : x === 'range' ? 'to' : x, true])),
      problems: [...new Set(p.problems)].map((x) => t(`admin.audit.bad.${x}` as MessageKey)),
      personShown: p.personShown,
      hidden: FILTER_FIELDS.filter((k) => p.canonical[k] !== undefined).map((k) => ({ name: k, value: p.canonical[k]! })),
      results: ok,
      rows: page.map((e) => ({
        seq: e.seq, iso: new Date(e.at).toISOString(), at: formatTime(e.at, locale), event: e.event, eventId: e.eventId, details: describeDetails(e.details),
      })),
      newest: before !== undefined ? `/admin/audit${query(p.canonical)}` : null,
      next: rows.length > PAGE_SIZE && last ? `/admin/audit${query(p.canonical, last.seq)}` : null,
      canExport,
      matching: matching === null ? null : t(filtered ? 'admin.audit.export_matching' : 'admin.audit.export_all', { n: String(matching), max: String(MAX_EXPORT) }),
      tooMany: matching !== null && matching > MAX_EXPORT ? t('admin.audit.export_too_many', { max: String(MAX_EXPORT) }) : null,
      refusal: extra.refusal ?? null,
    }), status);
  }

  router.get('/admin/audit', kit.need('audit.read'), async (ctx) => {
    const raw = ctx.query;
    const allowed = new Set<string>([...FILTER_FIELDS, 'before', 'lang']);
    const unknown = Object.keys(raw).some((k) => !allowed.has(k));
    const p = await parseFilter(raw);
    if (unknown) p.problems.push('form');
    let before: number | undefined;
    if (raw.before !== undefined) {
      if (typeof raw.before === 'string' && SEQ.test(raw.before) && Number(raw.before) > 0) before = Number(raw.before);
      else p.problems.push('before');
    }
    if (p.problems.length === 0 && p.resolved) {
      // The same search by the account's id: the number leaves the address bar.
      ctx.status = 303;
      ctx.redirect(`/admin/audit${query(p.canonical, before)}`);
      return;
    }
    await searchPage(ctx, p, before);
  });

  router.post('/admin/audit/verify', kit.need('audit.read'), async (ctx) => {
    const form = await kit.readPost(ctx, FORMS.verify);
    const head = form.head?.trim() ?? '';
    const m = head === '' ? null : HEAD.exec(head);
    if (head !== '' && !m) {
      verifyPage(ctx, { badHead: true, head: head.slice(0, ECHO_MAX) }, 400);
      return;
    }
    const result = await verifyAuditLog(deps.store.audit, m ? { seq: Number(m[1]), hash: m[2]! } : undefined);
    verifyPage(ctx, { result, head });
  });

  function verifyPage(ctx: Context, data: { result?: VerifyResult; badHead?: boolean; head: string }, status = 200): void {
    kit.page(ctx, 'admin/audit-verify', (t) => {
      const r = data.result;
      return {
        title: t('admin.audit.verify_title'),
        head: data.head,
        badHead: data.badHead ? t('admin.audit.bad.head') : null,
        result: r === undefined ? null : r.ok
          ? {
            ok: true,
            summary: t('admin.audit.verify_ok', { n: String(r.entries) }),
            head: r.head ? `${r.head.seq}:${r.head.hash}` : null,
            expected: r.expectedHeadFound === true ? t('admin.audit.verify_expected_found') : null,
          }
          : {
            ok: false,
            summary: t('admin.audit.verify_broken', { seq: String(r.seq), n: String(r.entries) }),
            problem: r.problem,
            seq: r.seq,
          },
      };
    }, status);
  }

  router.post('/admin/audit/export', kit.need('audit.export'), async (ctx) => {
    const form = await kit.readPost(ctx, FORMS.export);
    const { reason, ...fields } = form;
    const p = await parseFilter(fields);
    if (p.problems.length) {
      await searchPage(ctx, p, undefined);
      return;
    }
    let act: Act;
    try {
      act = actAs(kit.actor(ctx), 'audit.export', reason);
    } catch (err) {
      await searchPage(ctx, p, undefined, { refusal: kit.refusal(err) });
      return;
    }
    // Newest first through the filter's index, a batch at a time, at most MAX_EXPORT (plus one to
    // know whether there were more); written oldest first, as a log is read.
    const entries: AuditEntry[] = [];
    let beforeSeq: number | undefined;
    for (;;) {
      const limit = Math.min(EXPORT_BATCH, MAX_EXPORT + 1 - entries.length);
      const batch = await deps.store.audit.search({ ...p.filter, ...(beforeSeq !== undefined ? { beforeSeq } : {}), limit });
      entries.push(...batch);
      if (batch.length < limit || entries.length > MAX_EXPORT) break;
      beforeSeq = batch[batch.length - 1]!.seq;
    }
    const truncated = entries.length > MAX_EXPORT;
    const shown = entries.slice(0, MAX_EXPORT).reverse();
    deps.audit.record('AUDIT_EXPORTED', {
      ...actDetails(act),
      filter: filterLine(p.filter),
      // The person whose entries were read: the export shows in that person's audit history.
      ...(p.filter.person !== undefined ? { person: p.filter.person } : {}),
      entries: shown.length,
      truncated,
      ...(shown.length ? { first_seq: shown[0]!.seq, last_seq: shown[shown.length - 1]!.seq } : {}),
    });
    const stamp = new Date(kit.now()).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    ctx.status = 200;
    ctx.type = 'application/x-ndjson; charset=utf-8';
    ctx.set('Content-Disposition', `attachment; filename="dinhdanh-audit-${stamp}${truncated ? '-truncated' : ''}.jsonl"`);
    ctx.set('Cache-Control', 'no-store');
    // Said in the headers too (the body holds entries only, every line one of them).
    ctx.set('X-Dinhdanh-Export-Entries', String(shown.length));
    ctx.set('X-Dinhdanh-Export-Truncated', truncated ? 'true' : 'false');
    ctx.body = shown.map(exportLine).join('\n') + (shown.length ? '\n' : '');
  });
}
