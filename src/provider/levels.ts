/**
 * Authentication levels (PRODUCT.md, Levels). Higher levels satisfy requests for lower ones; the ID
 * token always carries the level the session truly has.
 */
export const LOA = Object.freeze({
  low: 'urn:dinhdanh:loa:low',
  substantial: 'urn:dinhdanh:loa:substantial',
  high: 'urn:dinhdanh:loa:high',
});

export const ACR_VALUES = [LOA.low, LOA.substantial, LOA.high] as const;
export type Acr = (typeof ACR_VALUES)[number];

const RANK: Record<string, number> = { [LOA.low]: 1, [LOA.substantial]: 2, [LOA.high]: 3 };

export function acrRank(acr: unknown): number {
  return typeof acr === 'string' ? (RANK[acr] ?? 0) : 0;
}

/**
 * The lowest level a request accepts, from `acr_values` (space-separated, voluntary per OIDC Core
 * §3.1.2.1 but enforced here: a portal that names levels gets one of them or better). Unknown values
 * are ignored; a request naming none of ours requires nothing. Returns 0 when nothing is required.
 */
export function requiredRank(acrValues: unknown): number {
  if (typeof acrValues !== 'string' || acrValues.length === 0) return 0;
  const ranks = acrValues.split(' ').map(acrRank).filter((r) => r > 0);
  return ranks.length ? Math.min(...ranks) : 0;
}

/**
 * The lowest level an essential `acr` request in the `claims` parameter accepts
 * (`{"id_token":{"acr":{"essential":true,"values":[…]}}}`, OIDC Core §5.5.1.1), or 0.
 */
export function essentialAcrRank(acrRequest: unknown): number {
  if (!acrRequest || typeof acrRequest !== 'object') return 0;
  const r = acrRequest as { essential?: unknown; value?: unknown; values?: unknown };
  if (r.essential !== true) return 0;
  const values = Array.isArray(r.values) ? r.values : [r.value];
  const ranks = values.map(acrRank).filter((x) => x > 0);
  return ranks.length ? Math.min(...ranks) : 0;
}

/** The level a request needs: the stricter of `acr_values` and an essential `acr` claim request. */
export function requestedRank(acrValues: unknown, acrClaimRequest: unknown): number {
  return Math.max(requiredRank(acrValues), essentialAcrRank(acrClaimRequest));
}

/** The essential-acr member of a raw `claims` parameter (a JSON string), if any. */
export function acrClaimFromParam(claims: unknown): unknown {
  if (typeof claims !== 'string') return undefined;
  try {
    return (JSON.parse(claims) as { id_token?: { acr?: unknown } } | null)?.id_token?.acr;
  } catch {
    return undefined;
  }
}

/** `high` needs a second factor in the last 15 minutes (PRODUCT.md). */
export const HIGH_FRESHNESS_MS = 15 * 60_000;
export const RANKS = Object.freeze({ low: 1, substantial: 2, high: 3 });
