/**
 * The `portal` value of metrics and usage rows: a registered client id, never what a request
 * claimed. A metric's label set must stay bounded (Prometheus: "do not use labels to store
 * dimensions with high cardinality"), and a client id sent to /auth by anyone would otherwise make
 * one series per forged value. So an id is itself only once the store has it registered; anything
 * else is `other`, and past MAX_PORTALS distinct registered ids the rest are `other` too.
 */
import type { PortalRepository } from '../store/index.js';
import { NO_PORTAL, OTHER_PORTAL } from './usage.types.js';

export const MAX_PORTALS = 500;
/** How often the registered ids are read again (a new portal is itself within this time). */
export const PORTALS_REFRESH_MS = 60_000;

export interface PortalLabels {
  /** `-` for none, the id when registered, else `other`. */
  label(clientId: string | null | undefined): string;
  /** Reads the registered ids now (also done every PORTALS_REFRESH_MS, at most once at a time). */
  refresh(): Promise<void>;
}

export function createPortalLabels(deps: {
  portals: Pick<PortalRepository, 'page'>;
  /** dinhdanh's own clients that are not in the portal registry (the account area's): always themselves. */
  firstParty?: readonly string[];
  now?: () => number;
  refreshMs?: number;
}): PortalLabels {
  const firstParty = new Set(deps.firstParty ?? []);
  const now = deps.now ?? Date.now;
  const refreshMs = deps.refreshMs ?? PORTALS_REFRESH_MS;
  let known = new Set<string>();
  let readAt = -Infinity;
  let reading: Promise<void> | null = null;

  async function read(): Promise<void> {
    const next = new Set<string>();
    let after: { createdAt: number; clientId: string } | undefined;
    // Creation order: the first MAX_PORTALS registered keep their label as more are added.
    while (next.size < MAX_PORTALS) {
      const page = await deps.portals.page({ after, limit: 200 });
      for (const p of page) if (next.size < MAX_PORTALS) next.add(p.clientId);
      if (page.length < 200) break;
      const last = page[page.length - 1]!;
      after = { createdAt: last.createdAt, clientId: last.clientId };
    }
    known = next;
    readAt = now();
  }

  function refresh(): Promise<void> {
    reading ??= read().finally(() => {
      reading = null;
    });
    return reading;
  }

  return {
    label(clientId) {
      if (clientId === null || clientId === undefined || clientId === '') return NO_PORTAL;
      // Stale is fine for a label; the read happens beside the request, never in its way.
      if (now() - readAt > refreshMs) void refresh().catch(() => undefined);
      return known.has(clientId) || firstParty.has(clientId) ? clientId : OTHER_PORTAL;
    },
    refresh,
  };
}
