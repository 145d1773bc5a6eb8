/**
 * The console's usage statistics (permission `usage.read`: auditors and portal integration, see
 * roles.ts): completed sign-ins per hour over the last 24 hours and per day over the last 90 days,
 * by the level of assurance reached, for all portals or one; and, on a portal's own page, its
 * funnel over the last 30 days (sign-in pages shown → signed in → consent → code redeemed).
 *
 * The figures are the usage statistics the store keeps for every instance (metrics/usage.report.ts
 * reads them, zero-filled, in Vietnam time); the pictures are SVG drawn on the server
 * (metrics/charts.ts), each with its table of the same numbers (WCAG 2.1 SC 1.1.1).
 *
 * `?portal=` must name a registered portal: anything else is refused with 400 and a fixed message,
 * and the value is never written back into the page (it is only ever compared with the registry's
 * client ids, and the select offers those).
 */
import type Router from '@koa/router';
import type { Context } from 'koa';
import type { SectionDeps } from '../admin.app.js';
import { can } from '../roles.js';
import { barsSummary, funnel, stackedBars } from '../../metrics/charts.js';
import { VIETNAM_OFFSET_MS, type UsageDay, type UsageHour } from '../../metrics/usage.types.js';
import { ACR_VALUES, LOA } from '../../provider/levels.js';
import { CLIENT_ID_RE, summarise } from '../../portals/index.js';
import type { Locale, MessageKey, Translate } from '../../http/i18n.js';

/** What the pages read of the usage reports (metrics/usage.report.ts's createUsageReports). */
export interface UsageReader {
  hourly(q: { portal?: string; hours?: number }): Promise<UsageHour[]>;
  daily(q: { portal?: string; days?: number }): Promise<Array<{ date: string; by_level: Record<string, number> }>>;
  days(q: { from: string; to: string; portal?: string }): Promise<UsageDay[]>;
}

export const HOURS = 24;
export const DAYS = 90;
export const FUNNEL_DAYS = 30;
/** The portals offered in the select (the registry is bounded: metrics label at most 500 portals). */
const MAX_LISTED = 1000;

/** The stacked series: the three levels (PRODUCT.md, "Levels"), then anything else as `other`. */
const LEVEL_LABELS: Record<string, MessageKey> = {
  [LOA.low]: 'admin.usage.level.low',
  [LOA.substantial]: 'admin.usage.level.substantial',
  [LOA.high]: 'admin.usage.level.high',
  other: 'admin.usage.level.other',
};
const SERIES_KEYS = [...ACR_VALUES, 'other'] as const;

function levelSeries(t: Translate) {
  return SERIES_KEYS.map((key) => ({ key, label: t(LEVEL_LABELS[key]!) }));
}

/** A report's counts by `acr`, folded onto the chart's series (an unknown `acr` counts as `other`). */
function byLevel(counts: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = Object.fromEntries(SERIES_KEYS.map((k) => [k, 0]));
  for (const [acr, n] of Object.entries(counts)) {
    if (typeof n !== 'number' || !Number.isFinite(n)) continue;
    const key = (ACR_VALUES as readonly string[]).includes(acr) ? acr : 'other';
    out[key]! += n;
  }
  return out;
}

/** `YYYY-MM-DD` of an instant in Vietnam (UTC+7 all year). */
export function vietnamDate(ms: number): string {
  return new Date(ms + VIETNAM_OFFSET_MS).toISOString().slice(0, 10);
}

/** `YYYY-MM-DD` moved by `days` (calendar arithmetic in UTC: no time zone can shift it). */
export function addDays(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

const pad = (n: number) => String(n).padStart(2, '0');

/** An hour's start (ISO 8601 with any offset) in Vietnam time: the axis tick and the table's label. */
function hourLabels(hour: string): { tick: string; label: string } {
  const ms = Date.parse(hour);
  if (!Number.isFinite(ms)) return { tick: hour, label: hour };
  const v = new Date(ms + VIETNAM_OFFSET_MS);
  const hh = `${pad(v.getUTCHours())}:00`;
  return { tick: hh, label: `${pad(v.getUTCDate())}/${pad(v.getUTCMonth() + 1)} ${hh}` };
}

/** A day (`YYYY-MM-DD`, already a Vietnam date): the axis tick and the table's label with its weekday. */
function dayLabels(date: string, locale: Locale): { tick: string; label: string } {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) return { tick: date, label: date };
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  const label = new Intl.DateTimeFormat(locale === 'vi' ? 'vi-VN' : 'en-GB', { weekday: 'short', day: '2-digit', month: '2-digit', year: 'numeric', timeZone: 'UTC' }).format(ms);
  return { tick: `${m[3]}/${m[2]}`, label };
}

function describe(t: Translate, scope: string, bars: ReadonlyArray<{ label: string; values: Record<string, number> }>): string {
  const { total, peak } = barsSummary(bars);
  const from = bars[0]?.label ?? '';
  const to = bars[bars.length - 1]?.label ?? '';
  return peak
    ? t('admin.usage.desc', { scope, total: String(total), from, to, peak: peak.label, peak_n: String(peak.total) })
    : t('admin.usage.desc_none', { scope, from, to });
}

/** The 24-hour chart (also the dashboard's). */
export function hourlyChart(rows: readonly UsageHour[], o: { t: Translate; locale: Locale; scope: string; id?: string }): string {
  const bars = rows.map((r) => ({ ...hourLabels(r.hour), values: byLevel(r.by_level) }));
  return stackedBars({
    id: o.id ?? 'usage-hourly', title: o.t('admin.usage.hourly_title'), desc: describe(o.t, o.scope, bars),
    axisLabel: o.t('admin.usage.axis_hour'), barHeader: o.t('admin.usage.col_hour'), totalHeader: o.t('admin.usage.col_total'),
    tableSummary: o.t('admin.usage.table'), emptyText: o.t('admin.usage.empty'), series: levelSeries(o.t), bars, tickEvery: 3, locale: o.locale,
  });
}

export function dailyChart(rows: ReadonlyArray<{ date: string; by_level: Record<string, number> }>, o: { t: Translate; locale: Locale; scope: string }): string {
  const bars = rows.map((r) => ({ ...dayLabels(r.date, o.locale), values: byLevel(r.by_level) }));
  return stackedBars({
    id: 'usage-daily', title: o.t('admin.usage.daily_title'), desc: describe(o.t, o.scope, bars),
    axisLabel: o.t('admin.usage.axis_day'), barHeader: o.t('admin.usage.col_day'), totalHeader: o.t('admin.usage.col_total'),
    // Every second week from today: the ticks fall on the same weekday.
    tableSummary: o.t('admin.usage.table'), emptyText: o.t('admin.usage.empty'), series: levelSeries(o.t), bars, tickEvery: 14, locale: o.locale,
  });
}

/** The last FUNNEL_DAYS Vietnam days up to today, inclusive. */
export function funnelPeriod(now: number): { from: string; to: string } {
  const to = vietnamDate(now);
  return { from: addDays(to, -(FUNNEL_DAYS - 1)), to };
}

/** A portal's funnel summed over its days. */
export function sumFunnel(days: readonly UsageDay[]): UsageDay['funnel'] {
  const sum = { shown: 0, signed_in: 0, consent: 0, code: 0 };
  for (const d of days) {
    for (const k of Object.keys(sum) as Array<keyof typeof sum>) {
      const n = d.funnel?.[k];
      if (typeof n === 'number' && Number.isFinite(n) && n > 0) sum[k] += n;
    }
  }
  return sum;
}

export function funnelChart(f: UsageDay['funnel'], o: { t: Translate; locale: Locale; portal: string; from: string; to: string }): string {
  const { t } = o;
  const from = dayLabels(o.from, o.locale).label;
  const to = dayLabels(o.to, o.locale).label;
  return funnel({
    id: 'usage-funnel', title: t('admin.usage.funnel_title'),
    desc: t('admin.usage.funnel_desc', { portal: o.portal, from, to, shown: String(f.shown), signed_in: String(f.signed_in), consent: String(f.consent), code: String(f.code) }),
    headers: { step: t('admin.usage.funnel.step'), count: t('admin.usage.funnel.count'), ofFirst: t('admin.usage.funnel.of_first'), ofPrevious: t('admin.usage.funnel.of_previous') },
    tableSummary: t('admin.usage.table'), emptyText: t('admin.usage.empty'), locale: o.locale,
    steps: [
      { key: 'shown', label: t('admin.usage.funnel.shown'), n: f.shown },
      { key: 'signed_in', label: t('admin.usage.funnel.signed_in'), n: f.signed_in },
      { key: 'consent', label: t('admin.usage.funnel.consent'), n: f.consent },
      { key: 'code', label: t('admin.usage.funnel.code'), n: f.code },
    ],
  });
}

export function registerUsageRoutes(router: Router, deps: SectionDeps): void {
  const { kit } = deps;

  /** The registered portals (not resource servers: nobody signs in at those), by name. */
  async function portalChoices(): Promise<Array<{ clientId: string; name: string }>> {
    const out: Array<{ clientId: string; name: string }> = [];
    let after: { createdAt: number; clientId: string } | undefined;
    while (out.length < MAX_LISTED) {
      const rows = await deps.store.portals.page({ after, limit: 200 });
      for (const p of rows) if (summarise(p).kind === 'portal') out.push({ clientId: p.clientId, name: p.name });
      if (rows.length < 200) break;
      const last = rows[rows.length - 1]!;
      after = { createdAt: last.createdAt, clientId: last.clientId };
    }
    return out.sort((a, b) => a.name.localeCompare(b.name, 'vi') || a.clientId.localeCompare(b.clientId));
  }

  router.get('/admin/usage', kit.need('usage.read'), async (ctx: Context) => {
    const raw = ctx.query.portal;
    const choices = await portalChoices();
    // Only a registered portal's client id is accepted; it is compared, never echoed.
    const wanted = raw === undefined || raw === '' ? undefined : typeof raw === 'string' && CLIENT_ID_RE.test(raw) ? raw : null;
    const chosen = wanted ? choices.find((c) => c.clientId === wanted) ?? (await registeredPortal(wanted)) : undefined;
    const bad = wanted === null || (wanted !== undefined && !chosen);
    const reader = deps.usageReports ?? null;
    const [hours, days] = !bad && reader
      ? await Promise.all([reader.hourly({ portal: chosen?.clientId, hours: HOURS }), reader.daily({ portal: chosen?.clientId, days: DAYS })])
      : [null, null];
    kit.page(ctx, 'admin/usage', (t, locale) => {
      const scope = chosen ? chosen.name : t('admin.usage.all_portals');
      return {
        title: t('admin.usage.title'),
        bad,
        off: !reader,
        choices: choices.map((c) => ({ ...c, selected: c.clientId === chosen?.clientId })),
        showing: chosen ? t('admin.usage.showing', { portal: `${chosen.name} (${chosen.clientId})` }) : t('admin.usage.showing', { portal: scope }),
        charts: hours && days ? { hourly: hourlyChart(hours, { t, locale, scope }), daily: dailyChart(days, { t, locale, scope }) } : null,
      };
    }, bad ? 400 : 200);
  });

  /** A registered portal beyond the select's list (the list is capped). */
  async function registeredPortal(clientId: string): Promise<{ clientId: string; name: string } | undefined> {
    const p = await deps.store.portals.find(clientId);
    return p && summarise(p).kind === 'portal' ? { clientId: p.clientId, name: p.name } : undefined;
  }
}

/** The last 24 hours of all portals for the dashboard, when the operator may see statistics and they are on (else null). */
export async function dashboardHours(deps: SectionDeps, ctx: Context): Promise<UsageHour[] | null> {
  if (!deps.usageReports || !can(deps.kit.actor(ctx).roles, 'usage.read')) return null;
  try {
    return await deps.usageReports.hourly({ hours: HOURS });
  } catch (err) {
    // The dashboard is what an operator on duty looks at when things go wrong: it shows without the picture.
    deps.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'usage chart unavailable');
    return null;
  }
}

/** The funnel for a portal's page, when the operator may see statistics and they are on (else null). */
export async function portalFunnel(deps: SectionDeps, ctx: Context, clientId: string): Promise<{ funnel: UsageDay['funnel']; from: string; to: string } | null> {
  if (!deps.usageReports || !can(deps.kit.actor(ctx).roles, 'usage.read')) return null;
  const period = funnelPeriod(deps.kit.now());
  try {
    const days = await deps.usageReports.days({ ...period, portal: clientId });
    return { funnel: sumFunnel(days), ...period };
  } catch (err) {
    // The portal's page is for acting on the portal: a statistics read that fails leaves the picture out.
    deps.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'usage funnel unavailable');
    return null;
  }
}
