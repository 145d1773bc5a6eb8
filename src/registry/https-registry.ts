/**
 * The national population database's adapter (`DINHDANH_REGISTRY=https://…`). The contract, also in
 * the README ("Population registry contract"):
 *
 *   POST <DINHDANH_REGISTRY>
 *   Authorization: Bearer <DINHDANH_REGISTRY_TOKEN>
 *   Content-Type: application/json
 *   {"pid":"001090123456","full_name":"Nguyễn Văn An","birthdate":"1990-05-17","gender":"male","phone":"+84912345678"}
 *
 *   200 {"result":"match"} or {"result":"no_match"}
 *
 * `full_name` is sent NFC-normalised, trimmed, spaces collapsed, case kept; `phone` (E.164) only when
 * the applicant gave one. Anything else — another status (a redirect included: none is followed), a
 * body that is not that JSON, more than 16 kB, no answer within 5 s, a refused connection — is
 * "unavailable". Requests go out through the SSRF guard (src/outbound/), and a circuit breaker stops
 * asking for 30 s after 5 failures in a row.
 *
 * Logs name the adapter's origin only (its URL may carry a key), the masked number, and never a
 * name, a date of birth, a phone or the token.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import { maskPid, normaliseName } from '../accounts/index.js';
import type { GuardedFetch } from '../outbound/index.js';
import { createCircuitBreaker } from './circuit-breaker.js';
import { registryPhoneE164 } from './record.js';
import type { PopulationRegistry, RegistryAnswer, RegistryQuery } from './registry.types.js';

/** The whole exchange (resolve, connect, answer) may take this long. */
export const REGISTRY_TIMEOUT_MS = 5_000;
/** A larger answer is refused: the contract's answer is a few bytes. */
export const REGISTRY_MAX_RESPONSE_BYTES = 16 * 1024;
/** Consecutive failures that open the circuit breaker… */
export const REGISTRY_BREAKER_THRESHOLD = 5;
/** …and for how long it then answers "unavailable" without asking. */
export const REGISTRY_BREAKER_OPEN_MS = 30_000;

const answerSchema = z.object({ result: z.enum(['match', 'no_match']) });

type Outcome = { answer: 'match' | 'no_match' } | { failure: string; status?: number; error?: string };

export function createHttpsRegistry(deps: { url: string; token: string; fetch: GuardedFetch; logger: Logger; now?: () => number }): PopulationRegistry {
  const origin = new URL(deps.url).origin;
  const log = deps.logger.child({ component: 'registry', registry: origin });
  const breaker = createCircuitBreaker({
    threshold: REGISTRY_BREAKER_THRESHOLD,
    openMs: REGISTRY_BREAKER_OPEN_MS,
    now: deps.now ?? Date.now,
    onOpen: (failures) => log.error({ failures }, `population registry failing: answering unavailable without asking for ${REGISTRY_BREAKER_OPEN_MS / 1000} s`),
    onClose: () => log.info('population registry answers again'),
  });

  async function ask(q: RegistryQuery): Promise<Outcome> {
    const body: Record<string, string> = {
      pid: q.pid,
      full_name: normaliseName(q.fullName),
      birthdate: q.birthdate,
      gender: q.gender,
    };
    if (q.phone !== undefined) body.phone = registryPhoneE164(q.phone) ?? q.phone;
    let res: Response;
    try {
      res = await deps.fetch(deps.url, {
        method: 'POST',
        headers: { authorization: `Bearer ${deps.token}`, 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
        redirect: 'manual',
      });
    } catch (err) {
      // The guard's messages name the origin only (src/outbound/guarded-fetch.ts).
      const message = (err as Error).message;
      return { failure: /timed out/.test(message) ? 'timeout' : 'request_failed', error: message };
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      return { failure: 'request_failed', status: res.status, error: (err as Error).message };
    }
    if (res.status !== 200) return { failure: 'status', status: res.status };
    if (Buffer.byteLength(text, 'utf8') > REGISTRY_MAX_RESPONSE_BYTES) return { failure: 'too_large', status: res.status };
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return { failure: 'not_json', status: res.status };
    }
    const parsed = answerSchema.safeParse(json);
    if (!parsed.success) return { failure: 'unknown_answer', status: res.status };
    return { answer: parsed.data.result };
  }

  return {
    kind: 'https',
    async verify(q): Promise<RegistryAnswer> {
      if (!breaker.allow()) {
        log.debug({ pid: maskPid(q.pid) }, 'population registry not asked: circuit breaker open');
        return 'unavailable';
      }
      let outcome: Outcome;
      try {
        outcome = await ask(q);
      } catch (err) {
        outcome = { failure: 'request_failed', error: (err as Error).message };
      }
      if ('answer' in outcome) {
        breaker.success();
        return outcome.answer;
      }
      breaker.failure();
      log.warn({ pid: maskPid(q.pid), reason: outcome.failure, status: outcome.status, error: outcome.error }, 'population registry gave no usable answer: answering unavailable');
      return 'unavailable';
    },
  };
}
