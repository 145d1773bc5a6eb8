/**
 * Where one-time codes go out: an SMS gateway, an SMTP relay, or (in development and tests) a file
 * outbox. Notifiers carry the message text, which holds a code: they never log it and never put it,
 * or any credential, into an error message.
 */

export type Channel = 'sms' | 'email';

export const CHANNELS: readonly Channel[] = ['sms', 'email'];

export interface OutgoingMessage {
  channel: Channel;
  /** E.164 phone number (sms) or e-mail address (email). */
  to: string;
  /** E-mail subject; ignored for SMS. Never carries the code. */
  subject?: string;
  text: string;
}

export interface Notifier {
  send(message: OutgoingMessage): Promise<void>;
}

/** The notifier the application uses: it knows which channels it can deliver to. */
export interface ChannelNotifier extends Notifier {
  /** The channels this deployment offers (production without an SMS gateway offers no `sms`). */
  channels(): Set<Channel>;
}

export type NotifierErrorCode =
  | 'channel_unavailable'
  | 'gateway_status'
  | 'gateway_timeout'
  | 'gateway_unreachable'
  | 'smtp_failed';

/**
 * A message could not be delivered. `code` is stable; the message names what failed and never
 * carries the message text, the destination's code, a token or a password. No `cause` is attached:
 * a library's own error could repeat a request with its headers.
 */
export class NotifierError extends Error {
  readonly code: NotifierErrorCode;
  /** The gateway's HTTP status (gateway_status) or the SMTP reply code (smtp_failed), when known. */
  readonly status: number | undefined;

  constructor(code: NotifierErrorCode, message: string, status?: number) {
    super(message);
    this.name = 'NotifierError';
    this.code = code;
    this.status = status;
  }
}
