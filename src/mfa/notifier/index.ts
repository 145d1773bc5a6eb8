export * from './types.js';
export * from './mask.js';
export { createOutboxNotifier, readOutbox, OUTBOX_FILE, type OutboxEntry } from './outbox.notifier.js';
export { createSmsGatewayNotifier, type SmsGatewayOptions } from './sms-gateway.notifier.js';
export { createSmtpNotifier, smtpTransportOptions, type SmtpNotifierOptions } from './smtp.notifier.js';
export { createNotifier, routeNotifier, DELIVERY_TIMEOUT_MS, type CreateNotifierOverrides } from './create-notifier.js';
