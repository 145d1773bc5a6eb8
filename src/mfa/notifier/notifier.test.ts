import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import {
  NotifierError, OUTBOX_FILE, createNotifier, createOutboxNotifier, createSmsGatewayNotifier, createSmtpNotifier,
  maskEmail, maskPhone, readOutbox, smtpTransportOptions,
} from './index.js';

/** A real pino logger whose lines are kept for assertions. */
function captureLogger() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

const CODE_TEXT = 'Mã xác thực dinhdanh của bạn là 482913. Mã có hiệu lực 5 phút. Không chia sẻ mã này cho ai.';

describe('mask helpers', () => {
  it.each([
    ['+84912345678', '+84 *** *** 678'],
    ['+12025550123', '+1 *** *** 123'],
    ['+4915112345678', '+49 *** *** 678'],
    ['+855123456789', '+855 *** *** 789'],
    ['0912345678', '*** *** 678'],
    ['12', '***'],
  ])('maskPhone(%s) → %s', (input, masked) => {
    expect(maskPhone(input)).toBe(masked);
  });

  it.each([
    ['an@example.vn', 'a***@example.vn'],
    ['nguyen.van.an@mail.gov.vn', 'n***@mail.gov.vn'],
    ['a@example.vn', '***@example.vn'],
    ['not-an-address', '***'],
  ])('maskEmail(%s) → %s', (input, masked) => {
    expect(maskEmail(input)).toBe(masked);
  });
});

describe('outbox notifier', () => {
  let dir: string;
  beforeEach(async () => {
    dir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'dd-outbox-')), 'nested', 'outbox');
  });

  it('appends one JSON line per message (dir 0700, file 0600) and logs without the code', async () => {
    const { logger, lines } = captureLogger();
    const outbox = createOutboxNotifier({ dir, logger, now: () => Date.UTC(2030, 0, 1) });
    expect(await readOutbox(dir)).toEqual([]);

    await outbox.send({ channel: 'sms', to: '+84912345678', text: CODE_TEXT });
    await outbox.send({ channel: 'email', to: 'an@example.vn', subject: 'Mã xác thực dinhdanh', text: CODE_TEXT });

    expect(await readOutbox(dir)).toEqual([
      { at: '2030-01-01T00:00:00.000Z', channel: 'sms', to: '+84912345678', text: CODE_TEXT },
      { at: '2030-01-01T00:00:00.000Z', channel: 'email', to: 'an@example.vn', subject: 'Mã xác thực dinhdanh', text: CODE_TEXT },
    ]);
    expect((await fs.stat(dir)).mode & 0o777).toBe(0o700);
    expect((await fs.stat(path.join(dir, OUTBOX_FILE))).mode & 0o777).toBe(0o600);

    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[0]!)).toMatchObject({ channel: 'sms', to: '+84 *** *** 678' });
    expect(JSON.parse(lines[1]!)).toMatchObject({ channel: 'email', to: 'a***@example.vn' });
    for (const line of lines) {
      expect(line).toContain('outbox');
      expect(line).not.toContain('482913');
      expect(line).not.toContain('912345678');
      expect(line).not.toContain('an@example.vn');
    }
  });

  it('keeps every line of parallel sends whole', async () => {
    const { logger } = captureLogger();
    const outbox = createOutboxNotifier({ dir, logger });
    await Promise.all(Array.from({ length: 20 }, (_, i) => outbox.send({ channel: 'sms', to: '+84912345678', text: `message ${i}` })));
    const entries = await readOutbox(dir);
    expect(entries.map((e) => e.text).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `message ${i}`).sort());
  });
});

describe('SMS gateway notifier (real local HTTP server)', () => {
  const TOKEN = 'gw-token.Secret~123';
  const received: { method?: string; url?: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  let server: http.Server;
  let base: string;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        if (req.url === '/hang') return; // never answers
        if (req.url === '/fail') {
          res.writeHead(500, { 'content-type': 'application/json' });
          // A careless gateway echoing the request: none of it may reach our error.
          res.end(JSON.stringify({ error: 'boom', echo: req.headers.authorization, body: Buffer.concat(chunks).toString('utf8') }));
          return;
        }
        if (req.url === '/redirect') {
          res.writeHead(307, { location: '/send' });
          res.end();
          return;
        }
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end('{"status":"queued"}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  beforeEach(() => {
    received.length = 0;
  });

  it('POSTs { to, text } as JSON with the bearer token', async () => {
    const sms = createSmsGatewayNotifier({ url: `${base}/send`, token: TOKEN, timeoutMs: 5000 });
    await sms.send({ channel: 'sms', to: '+84912345678', text: CODE_TEXT });
    expect(received).toHaveLength(1);
    const r = received[0]!;
    expect(r.method).toBe('POST');
    expect(r.url).toBe('/send');
    expect(r.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(r.headers['content-type']).toBe('application/json');
    expect(JSON.parse(r.body)).toEqual({ to: '+84912345678', text: CODE_TEXT });
  });

  async function failure(promise: Promise<unknown>): Promise<NotifierError> {
    const err = await promise.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(NotifierError);
    const e = err as NotifierError;
    for (const secret of [TOKEN, '482913', CODE_TEXT, '+84912345678']) {
      expect(e.message).not.toContain(secret);
      expect(JSON.stringify(e)).not.toContain(secret);
    }
    expect(e.cause).toBeUndefined();
    return e;
  }

  it('fails on a 500 without the token or the text in the error', async () => {
    const sms = createSmsGatewayNotifier({ url: `${base}/fail`, token: TOKEN, timeoutMs: 5000 });
    const e = await failure(sms.send({ channel: 'sms', to: '+84912345678', text: CODE_TEXT }));
    expect(e.code).toBe('gateway_status');
    expect(e.status).toBe(500);
    expect(e.message).toMatch(/HTTP 500/);
  });

  it('gives up on a gateway that never answers (AbortSignal.timeout)', async () => {
    const sms = createSmsGatewayNotifier({ url: `${base}/hang`, token: TOKEN, timeoutMs: 50 });
    const e = await failure(sms.send({ channel: 'sms', to: '+84912345678', text: CODE_TEXT }));
    expect(e.code).toBe('gateway_timeout');
    expect(e.message).toMatch(/did not answer within 50 ms/);
  });

  it('does not follow a redirect (it would carry the token elsewhere)', async () => {
    const sms = createSmsGatewayNotifier({ url: `${base}/redirect`, token: TOKEN, timeoutMs: 5000 });
    const e = await failure(sms.send({ channel: 'sms', to: '+84912345678', text: CODE_TEXT }));
    expect(e.code).toBe('gateway_unreachable');
    expect(received.map((r) => r.url)).toEqual(['/redirect']);
  });

  it('reports an unreachable gateway', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const sms = createSmsGatewayNotifier({ url: `http://127.0.0.1:${port}/send`, token: TOKEN, timeoutMs: 5000 });
    expect((await failure(sms.send({ channel: 'sms', to: '+84912345678', text: CODE_TEXT }))).code).toBe('gateway_unreachable');
  });

  it('refuses e-mail messages', async () => {
    const sms = createSmsGatewayNotifier({ url: `${base}/send`, token: TOKEN, timeoutMs: 5000 });
    expect((await failure(sms.send({ channel: 'email', to: 'an@example.vn', text: CODE_TEXT }))).code).toBe('channel_unavailable');
    expect(received).toHaveLength(0);
  });
});

/**
 * The SMTP notifier is tested against a tiny fake SMTP server on node:net (EHLO, MAIL, RCPT, DATA,
 * RSET, QUIT): nodemailer speaks real SMTP to it over a socket, with STARTTLS never offered.
 */
interface Mail { from: string; rcpt: string[]; data: string }
function fakeSmtpServer() {
  const mails: Mail[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.setEncoding('utf8');
    let buffer = '';
    let inData = false;
    let mail: Mail = { from: '', rcpt: [], data: '' };
    socket.write('220 fake.smtp.test ESMTP\r\n');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end === -1) return;
          mail.data = buffer.slice(0, end).replace(/^\.\./gm, '.');
          buffer = buffer.slice(end + 5);
          inData = false;
          mails.push(mail);
          mail = { from: '', rcpt: [], data: '' };
          socket.write('250 2.0.0 queued\r\n');
          continue;
        }
        const nl = buffer.indexOf('\r\n');
        if (nl === -1) return;
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 2);
        const verb = line.split(' ')[0]!.toUpperCase();
        if (verb === 'EHLO' || verb === 'HELO') socket.write('250-fake.smtp.test\r\n250 8BITMIME\r\n');
        else if (verb === 'MAIL') { mail.from = line; socket.write('250 2.1.0 ok\r\n'); }
        else if (verb === 'RCPT' && line.includes('nobody')) socket.write(`550 5.1.1 ${line.slice(8)} no such user\r\n`);
        else if (verb === 'RCPT') { mail.rcpt.push(line); socket.write('250 2.1.5 ok\r\n'); }
        else if (verb === 'DATA') { inData = true; socket.write('354 go ahead\r\n'); }
        else if (verb === 'RSET' || verb === 'NOOP') socket.write('250 ok\r\n');
        else if (verb === 'QUIT') { socket.end('221 bye\r\n'); return; }
        else socket.write('502 5.5.2 not implemented\r\n');
      }
    });
  });
  return {
    mails,
    async start(): Promise<number> {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return (server.address() as net.AddressInfo).port;
    },
    async stop(): Promise<void> {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The text part of a MIME message, decoded (quoted-printable or base64, whichever nodemailer chose). */
function bodyText(data: string): string {
  const split = data.indexOf('\r\n\r\n');
  const headers = data.slice(0, split);
  const body = data.slice(split + 4);
  const cte = /^content-transfer-encoding:\s*(\S+)/im.exec(headers)?.[1]?.toLowerCase();
  if (cte === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (cte === 'quoted-printable') {
    const bytes = body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8').replace(/\r\n$/, '');
  }
  return body.replace(/\r\n$/, '');
}

describe('SMTP notifier (nodemailer against a fake SMTP server on node:net)', () => {
  const smtp = fakeSmtpServer();
  let port: number;
  beforeAll(async () => {
    port = await smtp.start();
  });
  afterAll(() => smtp.stop());

  it('delivers the message with From, To and Subject', async () => {
    const mailer = createSmtpNotifier({ url: `smtp://127.0.0.1:${port}`, from: 'dinhdanh <no-reply@id.example.gov.vn>', ignoreTLS: true });
    await mailer.send({ channel: 'email', to: 'an@example.vn', subject: 'Your dinhdanh verification code', text: CODE_TEXT });
    expect(smtp.mails).toHaveLength(1);
    const mail = smtp.mails[0]!;
    expect(mail.from).toMatch(/^MAIL FROM:<no-reply@id\.example\.gov\.vn>/);
    expect(mail.rcpt).toEqual(['RCPT TO:<an@example.vn>']);
    expect(mail.data).toMatch(/^Subject: Your dinhdanh verification code$/m);
    expect(mail.data).toMatch(/^To: an@example\.vn$/m);
    expect(bodyText(mail.data)).toBe(CODE_TEXT);
  });

  it('fails with a stable code and nothing secret when the relay is down', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const free = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const mailer = createSmtpNotifier({ url: `smtp://mailer:hunter2@127.0.0.1:${free}`, from: 'no-reply@id.example.gov.vn', ignoreTLS: true });
    const err = await mailer.send({ channel: 'email', to: 'an@example.vn', text: CODE_TEXT }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(NotifierError);
    expect((err as NotifierError).code).toBe('smtp_failed');
    expect((err as Error).message).toMatch(/\(E[A-Z]+\)/);
    for (const secret of ['hunter2', '482913', 'an@example.vn']) expect((err as Error).message).not.toContain(secret);
  });

  it('reports a refused recipient by reply code, without quoting the server', async () => {
    const mailer = createSmtpNotifier({ url: `smtp://127.0.0.1:${port}`, from: 'no-reply@id.example.gov.vn', ignoreTLS: true });
    const err = await mailer.send({ channel: 'email', to: 'nobody@example.vn', text: CODE_TEXT }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(NotifierError);
    expect(err).toMatchObject({ code: 'smtp_failed', status: 550 });
    expect((err as Error).message).toMatch(/EENVELOPE, reply 550/);
    for (const secret of ['nobody', '482913']) expect((err as Error).message).not.toContain(secret);
  });

  it('maps smtp(s) URLs to nodemailer options', () => {
    expect(smtpTransportOptions({ url: 'smtps://mail%40er:p%40ss@smtp.example.vn', from: 'a@b.vn' })).toMatchObject({
      host: 'smtp.example.vn', port: 465, secure: true, requireTLS: false, auth: { user: 'mail@er', pass: 'p@ss' },
    });
    expect(smtpTransportOptions({ url: 'smtp://smtp.example.vn:2525', from: 'a@b.vn', requireTLS: true })).toMatchObject({
      host: 'smtp.example.vn', port: 2525, secure: false, requireTLS: true,
    });
    expect(() => smtpTransportOptions({ url: 'https://u:hunter2@smtp.example.vn', from: 'a@b.vn' })).toThrow(/smtp:\/\/ or smtps:\/\//);
    expect(() => smtpTransportOptions({ url: 'u:hunter2@smtp', from: 'a@b.vn' })).not.toThrow(/hunter2/);
  });
});

describe('createNotifier', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'dd-notifier-'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('outside production sends both channels to the outbox', async () => {
    const { logger, lines } = captureLogger();
    const notifier = createNotifier({ env: 'development', smsGateway: null, smtp: null, outboxDir: dir }, logger);
    expect(notifier.channels()).toEqual(new Set(['sms', 'email']));
    await notifier.send({ channel: 'sms', to: '+84912345678', text: CODE_TEXT });
    await notifier.send({ channel: 'email', to: 'an@example.vn', subject: 's', text: CODE_TEXT });
    expect((await readOutbox(dir)).map((m) => m.channel)).toEqual(['sms', 'email']);
    expect(lines.join('\n')).not.toContain('482913');
  });

  it('in production offers only configured channels, never the outbox', async () => {
    const { logger, lines } = captureLogger();
    const none = createNotifier({ env: 'production', smsGateway: null, smtp: null, outboxDir: dir }, logger);
    expect(none.channels()).toEqual(new Set());
    const err = await none.send({ channel: 'sms', to: '+84912345678', text: CODE_TEXT }).then(() => undefined, (e: unknown) => e);
    expect((err as NotifierError).code).toBe('channel_unavailable');
    expect(await readOutbox(dir)).toEqual([]);

    const token = 'prod-token-never-logged';
    const smsOnly = createNotifier({ env: 'production', smsGateway: { url: 'https://sms.example.vn/send?key=QKEY', token }, smtp: null, outboxDir: dir }, logger);
    expect(smsOnly.channels()).toEqual(new Set(['sms']));
    const mailOnly = createNotifier({ env: 'production', smsGateway: null, smtp: { url: 'smtps://u:hunter2@smtp.example.vn', from: 'a@b.vn' }, outboxDir: dir }, logger);
    expect(mailOnly.channels()).toEqual(new Set(['email']));
    const log = lines.join('\n');
    expect(log).toMatch(/not offered/);
    expect(log).toContain('https://sms.example.vn');
    for (const secret of [token, 'QKEY', 'hunter2']) expect(log).not.toContain(secret);
  });

  it('uses a configured gateway outside production too', async () => {
    const bodies: string[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => { body += c.toString('utf8'); });
      req.on('end', () => { bodies.push(body); res.writeHead(200).end(); });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { logger } = captureLogger();
      const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/sms`;
      const notifier = createNotifier({ env: 'development', smsGateway: { url, token: 't' }, smtp: null, outboxDir: dir }, logger);
      await notifier.send({ channel: 'sms', to: '+84912345678', text: CODE_TEXT });
      await notifier.send({ channel: 'email', to: 'an@example.vn', text: CODE_TEXT });
      expect(bodies.map((b) => JSON.parse(b) as unknown)).toEqual([{ to: '+84912345678', text: CODE_TEXT }]);
      expect((await readOutbox(dir)).map((m) => m.channel)).toEqual(['email']);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
