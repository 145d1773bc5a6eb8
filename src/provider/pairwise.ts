/**
 * Pairwise subject identifiers (OIDC Core §8.1): one `sub` per person per sector, an HMAC under a
 * salt that never rotates, so portals in different sectors cannot correlate people.
 */
import crypto from 'node:crypto';

export function pairwiseSubject(salt: string, sector: string, accountId: string): string {
  return crypto.createHmac('sha256', salt).update(`${sector}\u0000${accountId}`).digest('base64url');
}
