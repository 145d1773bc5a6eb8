/**
 * Where a registration or recovery is, between its pages. The state lives in the store (so every
 * instance sees it), for 30 minutes, keyed by a hash of a random value that only this browser holds
 * in a cookie: the browser is bound to its flow, and nothing personal — no identification number,
 * no phone, no step — goes into a URL (URLs end up in histories, proxies and logs).
 *
 * The cookie is HttpOnly, SameSite=Lax and, on https, `__Host-` prefixed (Secure, Path=/, no
 * Domain: a sibling portal on the parent domain cannot plant one, RFC 6265bis §4.1.3.2); it has no
 * expiry (it ends with the browser, the record after 30 minutes without a step). Its value
 * is 256 random bits; the store key is its SHA-256, so a copy of the store does not give the cookies.
 * A GET only sets the cookie; the first POST writes the record (no store write per page view).
 */
import crypto from 'node:crypto';
import type { Context } from 'koa';
import type { Gender, OidcModelStore } from '../store/index.js';

export const FLOW_TTL_SECONDS = 30 * 60;
const MODEL = 'SelfServiceFlow';
const HANDOFF_MODEL = 'SelfServiceHandoff';
/** After a registration, how long the browser has to be signed in by it. */
export const HANDOFF_TTL_SECONDS = 10 * 60;

/** The sign-in a flow was started from (a portal's sign-in page), when it was. */
export interface FlowOrigin {
  uid: string;
  clientId: string;
  portalName: string;
  /** The authentication level the portal asked for (provider/levels.ts RANKS). */
  requiredRank: number;
}

export interface RegistrationDetails {
  pid: string;
  fullName: string;
  birthdate: string;
  gender: Gender;
  /** E.164 */
  phone: string;
  email: string | null;
}

/** A one-time code sent in a flow: the message-code record's id and the key its limits count under. */
export interface FlowCode {
  id: string;
  key: string;
  channel: 'sms' | 'email';
  sentTo: string;
}

export interface RegisterFlow {
  kind: 'register';
  step: 'details' | 'code' | 'password' | 'existing' | 'offer';
  origin?: FlowOrigin;
  details?: RegistrationDetails;
  code?: FlowCode;
  /** The account's id, chosen when the phone is proven (step `password`); the account created (step `offer`). */
  personId?: string;
  /** When the step became `offer`: a repeated password post is answered (one argon2 check) only shortly after. */
  finishedAt?: number;
}

export interface RecoverFlow {
  kind: 'recover';
  step: 'start' | 'code' | 'factor' | 'password' | 'reset_requested' | 'done';
  origin?: FlowOrigin;
  /** Whether the number and contact matched an active account (never shown: both answers look alike). */
  matched?: boolean;
  personId?: string;
  code?: FlowCode;
  /** The second factor proven (step `password`), when the account has one. */
  factor?: 'totp' | 'recovery' | 'passkey';
  /**
   * Which password the code was proven against (steps `factor`, `password`), then the one the flow
   * set (step `done`), as recovery.service.ts passwordTag: a password step posted twice (a double
   * click) gets the same answer.
   */
  passwordTag?: string;
  /** The key (limits.ts keyOf) of the contact the code went to: still a verified contact at the password step. */
  contactKey?: string;
  /** When the step became `done`: a repeated post is answered (one argon2 check) only shortly after. */
  finishedAt?: number;
  passkeyChallenge?: { value: string; issuedAt: number };
}

/** Completing an account reset from the link sent after the waiting period. */
export interface ResetFlow {
  kind: 'reset';
  step: 'password' | 'done';
  personId: string;
  resetId: string;
  /** When the step became `done`: a repeated post is answered (one argon2 check) only shortly after. */
  finishedAt?: number;
  /** The password the reset set (step `done`; recovery.service.ts passwordTag): the step posted twice gets the same answer. */
  passwordTag?: string;
}

export type Flow = RegisterFlow | RecoverFlow | ResetFlow;

export interface Handoff {
  personId: string;
  /** The citizen chose to add a second factor now. */
  enrol: boolean;
  /** The interaction it was started from; absent: the account area's sign-in. */
  originUid?: string;
}

export interface Flows {
  /** This browser's flow id, setting a new cookie when it has none (GET pages: no store write). */
  ensureId(ctx: Context): string;
  /** This browser's flow id, if it has the cookie. */
  idOf(ctx: Context): string | undefined;
  get(ctx: Context): Promise<{ id: string; flow: Flow } | undefined>;
  put(ctx: Context, flow: Flow): Promise<string>;
  clear(ctx: Context): Promise<void>;
  /** Leaves a registration's sign-in for the interaction (or account sign-in) to take, once. */
  offerHandoff(ctx: Context, handoff: Handoff): Promise<void>;
  /** Takes this browser's handoff if it is for `uid` (or, without origin, for the account area): single use. */
  takeHandoff(ctx: Context, accept: (h: Handoff) => boolean): Promise<Handoff | undefined>;
}

const hash = (token: string) => crypto.createHash('sha256').update(`selfservice\u0000${token}`).digest('base64url');

export function createFlows(deps: { store: OidcModelStore; https: boolean }): Flows {
  const cookieName = deps.https ? '__Host-dd_selfservice' : 'dd_selfservice';
  const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;

  function tokenOf(ctx: Context): string | undefined {
    const value = ctx.cookies.get(cookieName);
    return value && TOKEN_RE.test(value) ? value : undefined;
  }

  function setCookie(ctx: Context, token: string) {
    // A browser-session cookie, like the SSO session's (remember: false): a flow at its password
    // step, or a registration's sign-in, must not outlive the browser on a shared computer.
    ctx.cookies.set(cookieName, token, { httpOnly: true, sameSite: 'lax', path: '/', secure: deps.https, overwrite: true });
  }

  function ensureId(ctx: Context): string {
    let token = tokenOf(ctx);
    if (!token) {
      token = crypto.randomBytes(32).toString('base64url');
      setCookie(ctx, token);
    }
    return hash(token);
  }

  return {
    ensureId,
    idOf(ctx) {
      const token = tokenOf(ctx);
      return token ? hash(token) : undefined;
    },
    async get(ctx) {
      const token = tokenOf(ctx);
      if (!token) return undefined;
      const id = hash(token);
      const flow = (await deps.store.find(MODEL, id)) as Flow | undefined;
      return flow && typeof flow.kind === 'string' ? { id, flow } : undefined;
    },
    async put(ctx, flow) {
      const id = ensureId(ctx);
      await deps.store.upsert(MODEL, id, flow as unknown as Record<string, unknown>, FLOW_TTL_SECONDS);
      return id;
    },
    async clear(ctx) {
      const token = tokenOf(ctx);
      if (token) await deps.store.destroy(MODEL, hash(token));
    },
    async offerHandoff(ctx, handoff) {
      const id = ensureId(ctx);
      await deps.store.upsert(HANDOFF_MODEL, id, { ...handoff }, HANDOFF_TTL_SECONDS);
    },
    async takeHandoff(ctx, accept) {
      const token = tokenOf(ctx);
      if (!token) return undefined;
      const id = hash(token);
      const found = (await deps.store.find(HANDOFF_MODEL, id)) as (Handoff & { consumed?: unknown }) | undefined;
      if (!found || found.consumed !== undefined || typeof found.personId !== 'string' || !accept(found)) return undefined;
      // Atomic: two tabs racing for one registration's sign-in get it once.
      if (!(await deps.store.consume(HANDOFF_MODEL, id))) return undefined;
      await deps.store.destroy(MODEL, id);
      return { personId: found.personId, enrol: found.enrol === true, ...(found.originUid ? { originUid: found.originUid } : {}) };
    },
  };
}
