/**
 * E-mail through an SMTP relay with nodemailer. `smtps://` is TLS from the first byte (port 465 by
 * default); `smtp://` uses STARTTLS when offered, and insists on it when `requireTLS` is set (the
 * production default: the message carries a code). Credentials, if any, come from the URL's user
 * information and never appear in an error.
 */
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { NotifierError, type Notifier } from './types.js';

export interface SmtpNotifierOptions {
  /** `smtp://[user:pass@]host[:port]` or `smtps://…`. */
  url: string;
  /** The From header, e.g. `dinhdanh <no-reply@id.example.gov.vn>`. */
  from: string;
  /** Refuse to send unless STARTTLS succeeds (smtp:// only). */
  requireTLS?: boolean;
  /** Never attempt STARTTLS (tests against a plain local server). */
  ignoreTLS?: boolean;
  /** Connection, greeting and socket timeouts in milliseconds (10 s by default). */
  timeoutMs?: number;
}

/** Turns an smtp(s) URL into nodemailer options (parsed here so no URL ever reaches an error message). */
export function smtpTransportOptions(options: SmtpNotifierOptions): SMTPTransport.Options {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new TypeError('the SMTP URL is not an absolute smtp:// or smtps:// URL');
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw new TypeError('the SMTP URL must start with smtp:// or smtps://');
  const secure = url.protocol === 'smtps:';
  const timeout = options.timeoutMs ?? 10_000;
  const transport: SMTPTransport.Options = {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port ? Number(url.port) : secure ? 465 : 587,
    secure,
    requireTLS: !secure && options.requireTLS === true,
    ignoreTLS: !secure && options.ignoreTLS === true,
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
    // nodemailer's own logger would print the SMTP dialogue, message included.
    logger: false,
    debug: false,
  };
  if (url.username) transport.auth = { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) };
  return transport;
}

export function createSmtpNotifier(options: SmtpNotifierOptions): Notifier {
  const transporter = nodemailer.createTransport(smtpTransportOptions(options));
  return {
    async send(message) {
      if (message.channel !== 'email') throw new NotifierError('channel_unavailable', `the SMTP relay cannot deliver ${message.channel} messages`);
      try {
        await transporter.sendMail({
          from: options.from,
          to: message.to,
          subject: message.subject ?? 'dinhdanh',
          text: message.text,
        });
      } catch (err) {
        // nodemailer's errors carry a code (ECONNECTION, EAUTH, EENVELOPE, ETIMEDOUT, …) and the
        // server's reply code; its message may quote the server's answer, so it is not repeated.
        const e = err as { code?: unknown; responseCode?: unknown };
        const code = typeof e.code === 'string' && /^[A-Z_]{1,32}$/.test(e.code) ? e.code : 'error';
        const status = typeof e.responseCode === 'number' ? e.responseCode : undefined;
        throw new NotifierError('smtp_failed', `e-mail delivery through the SMTP relay failed (${code}${status ? `, reply ${status}` : ''})`, status);
      }
    },
  };
}
