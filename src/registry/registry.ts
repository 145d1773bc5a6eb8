/**
 * Picks the registry the configuration names: a file (development and tests) or the national
 * population database's adapter over https.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { createGuardedFetch, type GuardedFetch, type OutboundCallHook } from '../outbound/index.js';
import { createFileRegistry } from './file-registry.js';
import { createHttpsRegistry, REGISTRY_MAX_RESPONSE_BYTES, REGISTRY_TIMEOUT_MS } from './https-registry.js';
import type { PopulationRegistry } from './registry.types.js';

export function createRegistry(
  config: Pick<Config, 'env' | 'registry' | 'outboundAllowCidrs'>,
  deps: { logger: Logger; fetch?: GuardedFetch; now?: () => number; observe?: OutboundCallHook },
): PopulationRegistry {
  const { registry } = config;
  if (registry.path !== null) return createFileRegistry({ path: registry.path, logger: deps.logger });
  // loadConfig requires the token with an http(s) registry; a hand-built config without one is a bug.
  if (registry.token === null) throw new Error('the https population registry needs its bearer token (DINHDANH_REGISTRY_TOKEN)');
  // The adapter is an operator's URL, but it goes through the same guard as portals' URLs: loopback
  // and private networks only outside production or where DINHDANH_OUTBOUND_ALLOW_CIDRS allows them,
  // no redirect followed, one timeout over the whole exchange, a capped body.
  const fetch = deps.fetch ?? createGuardedFetch({
    allowPrivate: config.env !== 'production',
    allowCidrs: config.outboundAllowCidrs,
    timeoutMs: REGISTRY_TIMEOUT_MS,
    maxResponseBytes: REGISTRY_MAX_RESPONSE_BYTES,
  }, { observe: deps.observe });
  return createHttpsRegistry({ url: registry.url, token: registry.token, fetch, logger: deps.logger, now: deps.now });
}
