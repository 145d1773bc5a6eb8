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
