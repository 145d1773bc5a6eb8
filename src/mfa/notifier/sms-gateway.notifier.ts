/**
 * SMS through an HTTP gateway: `POST <url>` with JSON `{ "to": "+84…", "text": "…" }` and
 * `Authorization: Bearer <token>` (RFC 6750 §2.1); any 2xx is success. Each request has a timeout,
 * so a hung gateway cannot hold a sign-in page. Errors name the failure (status, timeout,
 * unreachable) and never carry the token, the destination or the text.
 */
import { NotifierError, type Notifier } from './types.js';

export interface SmsGatewayOptions {
  url: string;
  token: string;
  timeoutMs: number;
  /** Injectable for tests; the global fetch (undici) by default. */
  fetch?: typeof globalThis.fetch;
}

export function createSmsGatewayNotifier(options: SmsGatewayOptions): Notifier {
  const doFetch = options.fetch ?? globalThis.fetch;
  if (!Number.isInteger(options.timeoutMs) || options.timeoutMs <= 0) throw new TypeError('SMS gateway timeoutMs must be a positive whole number of milliseconds');
  if (!options.token) throw new TypeError('SMS gateway token is missing');
  const url = new URL(options.url);

  return {
    async send(message) {
      if (message.channel !== 'sms') throw new NotifierError('channel_unavailable', `the SMS gateway cannot deliver ${message.channel} messages`);
      let response: Response;
      try {
        response = await doFetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json',
            authorization: `Bearer ${options.token}`,
          },
          body: JSON.stringify({ to: message.to, text: message.text }),
          // A redirect could carry the bearer token and the code to another host: refuse it.
          redirect: 'error',
          signal: AbortSignal.timeout(options.timeoutMs),
        });
      } catch (err) {
        const name = (err as { name?: unknown }).name;
        if (name === 'TimeoutError' || name === 'AbortError') {
          throw new NotifierError('gateway_timeout', `the SMS gateway did not answer within ${options.timeoutMs} ms`);
        }
        throw new NotifierError('gateway_unreachable', `the SMS gateway at ${url.origin} could not be reached`);
      }
      // The body is not read into any message (a gateway may echo the request); just release it.
      await response.body?.cancel().catch(() => undefined);
      if (!response.ok) {
        throw new NotifierError('gateway_status', `the SMS gateway answered HTTP ${response.status}`, response.status);
      }
    },
  };
}
