/**
 * Chooses how each channel is delivered, once at start-up:
 * - a configured SMS gateway / SMTP relay is used for its channel in every environment;
 * - outside production an unconfigured channel goes to the file outbox (`DINHDANH_OUTBOX_DIR`),
 *   so development and tests need no gateway;
 * - in production an unconfigured channel is simply not offered: `channels()` leaves it out and the
 *   sign-in pages do not propose it. Nothing ever falls back to the outbox in production.
 */
import type { Logger } from 'pino';
import type { Config } from '../../config/config.js';
import { createOutboxNotifier } from './outbox.notifier.js';
import { createSmsGatewayNotifier } from './sms-gateway.notifier.js';
import { createSmtpNotifier } from './smtp.notifier.js';
import { NotifierError, type Channel, type ChannelNotifier, type Notifier } from './types.js';

/** How long a gateway or relay may take before the code counts as not sent. */
export const DELIVERY_TIMEOUT_MS = 10_000;

export interface CreateNotifierOverrides {
  /** Replaces the transport of a channel (tests, or a future gateway). */
  sms?: Notifier;
  email?: Notifier;
}

/** Routes each message to its channel's notifier; refuses channels that are not offered. */
export function routeNotifier(routes: Partial<Record<Channel, Notifier>>): ChannelNotifier {
  return {
    channels: () => new Set((Object.keys(routes) as Channel[]).filter((c) => routes[c] !== undefined)),
    async send(message) {
      const target = routes[message.channel];
      if (!target) throw new NotifierError('channel_unavailable', `one-time codes by ${message.channel} are not configured on this server`);
      await target.send(message);
    },
  };
}

export function createNotifier(
  config: Pick<Config, 'env' | 'smsGateway' | 'smtp' | 'outboxDir'>,
  logger: Logger,
  overrides: CreateNotifierOverrides = {},
): ChannelNotifier {
  const production = config.env === 'production';
  const routes: Partial<Record<Channel, Notifier>> = {};
  const via: string[] = [];
  let outbox: Notifier | undefined;
  const useOutbox = () => (outbox ??= createOutboxNotifier({ dir: config.outboxDir, logger }));

  if (overrides.sms) {
    routes.sms = overrides.sms;
  } else if (config.smsGateway) {
    routes.sms = createSmsGatewayNotifier({ url: config.smsGateway.url, token: config.smsGateway.token, timeoutMs: DELIVERY_TIMEOUT_MS });
    via.push(`sms via the gateway at ${new URL(config.smsGateway.url).origin}`);
  } else if (!production) {
    routes.sms = useOutbox();
    via.push(`sms to the outbox in ${config.outboxDir}`);
  }

  if (overrides.email) {
    routes.email = overrides.email;
  } else if (config.smtp) {
    const smtpUrl = new URL(config.smtp.url);
    // In production a code never crosses the network in clear: smtp:// must upgrade with STARTTLS.
    routes.email = createSmtpNotifier({ url: config.smtp.url, from: config.smtp.from, requireTLS: production, timeoutMs: DELIVERY_TIMEOUT_MS });
    via.push(`email via ${smtpUrl.protocol}//${smtpUrl.host}`);
  } else if (!production) {
    routes.email = useOutbox();
    via.push(`email to the outbox in ${config.outboxDir}`);
  }

  const notifier = routeNotifier(routes);
  const offered = [...notifier.channels()];
  logger.info(
    { component: 'notifier', channels: offered },
    offered.length ? `one-time codes by message: ${via.join('; ') || offered.join(', ')}` : 'one-time codes by message are not offered (no SMS gateway or SMTP relay configured)',
  );
  return notifier;
}
