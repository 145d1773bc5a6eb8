/**
 * Security Event Tokens (RFC 8417) as the Shared Signals Framework 1.0 profiles them (§4.1): signed
 * like ID tokens, explicitly typed `secevent+jwt` (§4.1.1), one event per token (§4.2.1), the
 * subject in `sub_id` (RFC 9493) and never a `sub` claim (§4.1.2), no `exp` (§4.1.6), `aud` the
 * receiving portal, and `txn` shared by the tokens of one cause (§4.1.8).
 */
import crypto from 'node:crypto';
import { AsyncLocalStorage } from 'node:async_hooks';
import { SignJWT, importJWK, type JWK } from 'jose';

/** RFC 9493 §3.2.5 `iss_sub`, SSF §3.2 complex subjects, and the `opaque` / `email` / `phone_number` formats. */
export type SubjectId =
  | { format: 'iss_sub'; iss: string; sub: string }
  | { format: 'opaque'; id: string }
  | { format: 'email'; email: string }
  | { format: 'phone_number'; phone_number: string }
  | { format: 'complex'; user?: SubjectId; session?: SubjectId; tenant?: SubjectId; email?: SubjectId; phone?: SubjectId };

export interface SetInput {
  issuer: string;
  audience: string;
  /** The private signing JWK (with `alg` and `kid`): the active key of the ID tokens' algorithm. */
  key: JWK;
  subject: SubjectId;
  eventType: string;
  event: Record<string, unknown>;
  txn: string;
  /** Epoch ms. */
  issuedAt: number;
}

export const randomId = () => crypto.randomBytes(16).toString('base64url');

export async function mintSet(input: SetInput): Promise<{ jti: string; set: string }> {
  const jti = randomId();
  const key = await importJWK(input.key, String(input.key.alg));
  const set = await new SignJWT({ txn: input.txn, sub_id: input.subject, events: { [input.eventType]: input.event } })
    .setProtectedHeader({ alg: String(input.key.alg), typ: 'secevent+jwt', kid: String(input.key.kid) })
    .setIssuer(input.issuer)
    .setAudience(input.audience)
    .setIssuedAt(Math.floor(input.issuedAt / 1000))
    .setJti(jti)
    .sign(key);
  return { jti, set };
}

/**
 * The cause being handled (a request, a command, a job): every SET made while it runs carries its
 * `txn` (SSF §4.1.8), so a portal can tell that an account-disabled and the session-revoked events
 * that followed came from one operator's lock.
 */
const causes = new AsyncLocalStorage<string>();

export function withCause<T>(fn: () => T, txn: string = randomId()): T {
  return causes.run(txn, fn);
}

export function currentCause(): string | undefined {
  return causes.getStore();
}
