/**
 * What the running system tells its observers (Prometheus metrics, usage statistics): the audit
 * service's events, plus the few facts that are not security events (a sign-in page shown, tokens
 * issued at /token, an OAuth error answered). Observers are told synchronously and must never throw
 * into the caller or wait on I/O: they count in memory and write later, off the request's path.
 */
import type { AuditDetails } from '../audit/audit.service.js';
import type { SecurityEventName } from '../audit/events.js';

export interface Telemetry {
  /** Every security event, as the audit service records it. */
  audit(event: SecurityEventName, details: AuditDetails, at: number): void;
  /** The sign-in page (the login prompt) was shown for a portal: the first step of its funnel. */
  signInPageShown(clientId: string | undefined): void;
  /** oidc-provider issued tokens at the token endpoint (its `grant.success`). */
  grantSucceeded(grantType: string, clientId: string | undefined): void;
  /** An OAuth error answered at a protocol endpoint (`error` is from RFC 6749 / OIDC's closed list, or `other`). */
  oauthError(endpoint: string, error: string): void;
}

const NOTHING: Telemetry = {
  audit() {},
  signInPageShown() {},
  grantSucceeded() {},
  oauthError() {},
};

/** Tells every observer given; one that throws is skipped (and reported once through `onError`). */
export function fanOut(observers: ReadonlyArray<Partial<Telemetry>>, onError: (err: unknown) => void = () => {}): Telemetry {
  const present = observers.filter(Boolean);
  if (present.length === 0) return NOTHING;
  const call = <K extends keyof Telemetry>(name: K) => (...args: Parameters<Telemetry[K]>) => {
    for (const o of present) {
      const f = o[name] as ((...a: Parameters<Telemetry[K]>) => void) | undefined;
      if (!f) continue;
      try {
        f.apply(o, args);
      } catch (err) {
        onError(err);
      }
    }
  };
  return { audit: call('audit'), signInPageShown: call('signInPageShown'), grantSucceeded: call('grantSucceeded'), oauthError: call('oauthError') };
}

export const noTelemetry = NOTHING;
