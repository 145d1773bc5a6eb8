import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({}, '/srv/dd');
    expect(c).toMatchObject({
      env: 'development', port: 3000, issuer: 'http://localhost:3000', storeUrl: 'sqlite:data/dinhdanh.db',
      keysDir: '/srv/dd/keys', trustProxyHops: 0,
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('derives the issuer from PORT', () => {
    expect(loadConfig({ PORT: '8081' }).issuer).toBe('http://localhost:8081');
  });

  it.each([
    ['PORT', { PORT: 'abc' }, /PORT/],
    ['PORT range', { PORT: '70000' }, /PORT/],
    ['NODE_ENV', { NODE_ENV: 'staging' }, /NODE_ENV/],
    ['issuer not a URL', { DINHDANH_ISSUER: 'localhost' }, /absolute URL/],
    ['issuer with a path', { DINHDANH_ISSUER: 'https://id.example.gov.vn/oidc' }, /path/],
    ['issuer with a query', { DINHDANH_ISSUER: 'https://id.example.gov.vn/?a=1' }, /query/],
    ['proxy hops', { DINHDANH_TRUST_PROXY_HOPS: '-1' }, /DINHDANH_TRUST_PROXY_HOPS/],
  ])('refuses a bad %s with a message naming it', (_label, env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('refuses a non-https issuer in production, and says so', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', DINHDANH_ISSUER: 'http://id.example.gov.vn' })).toThrow(/non-https issuer/);
    expect(loadConfig({ NODE_ENV: 'production', DINHDANH_ISSUER: 'https://id.example.gov.vn', DINHDANH_TRUST_PROXY_HOPS: '1' }).issuer).toBe('https://id.example.gov.vn');
  });

  it('refuses production without a trusted TLS-terminating proxy', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', DINHDANH_ISSUER: 'https://id.example.gov.vn' })).toThrow(/DINHDANH_TRUST_PROXY_HOPS/);
  });

  describe('one-time code delivery', () => {
    const prod = { NODE_ENV: 'production', DINHDANH_ISSUER: 'https://id.example.gov.vn', DINHDANH_TRUST_PROXY_HOPS: '1' };
    const token = 'sk_live.S3cr3t-t0ken~value';

    it('has no gateway or relay by default, and the outbox under data/outbox', () => {
      const c = loadConfig({}, '/srv/dd');
      expect(c).toMatchObject({ smsGateway: null, smtp: null, outboxDir: '/srv/dd/data/outbox' });
      expect(loadConfig({ DINHDANH_OUTBOX_DIR: 'tmp/mail' }, '/srv/dd').outboxDir).toBe('/srv/dd/tmp/mail');
      expect(loadConfig({ DINHDANH_OUTBOX_DIR: '/var/outbox' }, '/srv/dd').outboxDir).toBe('/var/outbox');
    });

    it('reads the SMS gateway and the SMTP relay, frozen', () => {
      const c = loadConfig({
        ...prod,
        DINHDANH_SMS_GATEWAY_URL: 'https://sms.example.vn/v1/send',
        DINHDANH_SMS_GATEWAY_TOKEN: token,
        DINHDANH_SMTP_URL: 'smtps://mailer:p%40ss@smtp.example.vn',
        DINHDANH_MAIL_FROM: ' dinhdanh <no-reply@id.example.gov.vn> ',
      });
      expect(c.smsGateway).toEqual({ url: 'https://sms.example.vn/v1/send', token });
      expect(c.smtp).toEqual({ url: 'smtps://mailer:p%40ss@smtp.example.vn', from: 'dinhdanh <no-reply@id.example.gov.vn>' });
      expect(Object.isFrozen(c.smsGateway)).toBe(true);
      expect(Object.isFrozen(c.smtp)).toBe(true);
    });

    it('accepts a plain-http gateway and smtp:// outside production', () => {
      const c = loadConfig({ DINHDANH_SMS_GATEWAY_URL: 'http://127.0.0.1:9000/sms', DINHDANH_SMS_GATEWAY_TOKEN: 'dev', DINHDANH_SMTP_URL: 'smtp://localhost:1025', DINHDANH_MAIL_FROM: 'dev@localhost.test' });
      expect(c.smsGateway?.url).toBe('http://127.0.0.1:9000/sms');
      expect(c.smtp?.url).toBe('smtp://localhost:1025');
    });

    it.each([
      ['gateway URL not a URL', { DINHDANH_SMS_GATEWAY_URL: 'sms.example.vn?key=K3Y', DINHDANH_SMS_GATEWAY_TOKEN: token }, /DINHDANH_SMS_GATEWAY_URL must be an absolute/],
      ['gateway URL scheme', { DINHDANH_SMS_GATEWAY_URL: 'ftp://sms.example.vn', DINHDANH_SMS_GATEWAY_TOKEN: token }, /DINHDANH_SMS_GATEWAY_URL must be an http/],
      ['gateway URL credentials', { DINHDANH_SMS_GATEWAY_URL: 'https://u:pw@sms.example.vn', DINHDANH_SMS_GATEWAY_TOKEN: token }, /must not carry credentials/],
      ['gateway without token', { DINHDANH_SMS_GATEWAY_URL: 'https://sms.example.vn' }, /DINHDANH_SMS_GATEWAY_TOKEN is required/],
      ['token without gateway', { DINHDANH_SMS_GATEWAY_TOKEN: token }, /DINHDANH_SMS_GATEWAY_URL is not/],
      ['token with a space', { DINHDANH_SMS_GATEWAY_URL: 'https://sms.example.vn', DINHDANH_SMS_GATEWAY_TOKEN: `${token} x` }, /DINHDANH_SMS_GATEWAY_TOKEN must be a bearer token/],
      ['token with a newline', { DINHDANH_SMS_GATEWAY_URL: 'https://sms.example.vn', DINHDANH_SMS_GATEWAY_TOKEN: `${token}\r\nX-Evil: 1` }, /DINHDANH_SMS_GATEWAY_TOKEN must be a bearer token/],
      ['SMTP URL not a URL', { DINHDANH_SMTP_URL: 'mailer:hunter2@smtp', DINHDANH_MAIL_FROM: 'a@b.vn' }, /DINHDANH_SMTP_URL must/],
      ['SMTP URL scheme', { DINHDANH_SMTP_URL: 'https://u:hunter2@smtp.example.vn', DINHDANH_MAIL_FROM: 'a@b.vn' }, /DINHDANH_SMTP_URL must start with smtp/],
      ['SMTP without from', { DINHDANH_SMTP_URL: 'smtp://u:hunter2@smtp.example.vn' }, /DINHDANH_MAIL_FROM is required/],
      ['from without SMTP', { DINHDANH_MAIL_FROM: 'a@b.vn' }, /DINHDANH_SMTP_URL is not/],
      ['from not an address', { DINHDANH_SMTP_URL: 'smtp://smtp.example.vn', DINHDANH_MAIL_FROM: 'no-reply' }, /DINHDANH_MAIL_FROM must be an address/],
      ['from with a header', { DINHDANH_SMTP_URL: 'smtp://smtp.example.vn', DINHDANH_MAIL_FROM: 'a@b.vn\r\nBcc: x@y.vn' }, /DINHDANH_MAIL_FROM must be an address/],
    ])('refuses a bad %s with a message naming it, never the secret', (_label, env, message) => {
      let error: unknown;
      try {
        loadConfig(env);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      const text = (error as Error).message;
      expect(text).toMatch(message);
      for (const secret of [token, 'hunter2', 'K3Y', 'pw@']) expect(text).not.toContain(secret);
    });

    it('refuses a non-https SMS gateway in production', () => {
      expect(() => loadConfig({ ...prod, DINHDANH_SMS_GATEWAY_URL: 'http://sms.example.vn/send', DINHDANH_SMS_GATEWAY_TOKEN: token }))
        .toThrow(/non-https DINHDANH_SMS_GATEWAY_URL/);
    });

    it('starts in production without a gateway or relay (those channels are then not offered)', () => {
      expect(loadConfig(prod)).toMatchObject({ smsGateway: null, smtp: null });
    });
  });

  describe('outbound allow-list (DINHDANH_OUTBOUND_ALLOW_CIDRS)', () => {
    it('is empty by default and parses a list of networks', () => {
      expect(loadConfig({}).outboundAllowCidrs).toEqual([]);
      expect(loadConfig({ DINHDANH_OUTBOUND_ALLOW_CIDRS: '10.20.0.0/16, fd00:1::/48' }).outboundAllowCidrs).toEqual(['10.20.0.0/16', 'fd00:1::/48']);
    });

    it.each(['10.20.0.0', '10.20.0.0/33', 'intranet/8', '10.0.0.0/8;rm -rf'])('refuses %s, naming the variable', (value) => {
      expect(() => loadConfig({ DINHDANH_OUTBOUND_ALLOW_CIDRS: value })).toThrow(/DINHDANH_OUTBOUND_ALLOW_CIDRS/);
    });
  });
});

describe('demo portals (DINHDANH_DEMO, DINHDANH_DEMO_PORTS)', () => {
  const prod = { NODE_ENV: 'production', DINHDANH_ISSUER: 'https://id.example.gov.vn', DINHDANH_TRUST_PROXY_HOPS: '1' };

  it('is on in development, on PORT+1 and PORT+2, frozen', () => {
    const c = loadConfig({});
    expect(c.demo).toEqual({ ports: [3001, 3002] });
    expect(Object.isFrozen(c.demo)).toBe(true);
    expect(Object.isFrozen(c.demo!.ports)).toBe(true);
    expect(loadConfig({ NODE_ENV: 'development', PORT: '8080' }).demo).toEqual({ ports: [8081, 8082] });
  });

  it('is off by default in test and production, and can be turned off in development', () => {
    expect(loadConfig({ NODE_ENV: 'test' }).demo).toBeNull();
    expect(loadConfig(prod).demo).toBeNull();
    expect(loadConfig({ ...prod, DINHDANH_DEMO: 'off' }).demo).toBeNull();
    expect(loadConfig({ DINHDANH_DEMO: 'off' }).demo).toBeNull();
  });

  it('can be turned on in test, with chosen ports (0 picks free ones)', () => {
    expect(loadConfig({ NODE_ENV: 'test', DINHDANH_DEMO: 'on' }).demo).toEqual({ ports: [3001, 3002] });
    expect(loadConfig({ NODE_ENV: 'test', DINHDANH_DEMO: 'on', DINHDANH_DEMO_PORTS: '0,0' }).demo).toEqual({ ports: [0, 0] });
    expect(loadConfig({ DINHDANH_DEMO_PORTS: ' 4001 , 4002 ' }).demo).toEqual({ ports: [4001, 4002] });
    expect(loadConfig({ PORT: '0' }).demo).toEqual({ ports: [0, 0] });
  });

  it('refuses DINHDANH_DEMO=on in production, saying it is for development only', () => {
    expect(() => loadConfig({ ...prod, DINHDANH_DEMO: 'on' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...prod, DINHDANH_DEMO: 'on' })).toThrow(/DINHDANH_DEMO=on.*development only/);
  });

  it.each([
    ['switch', { DINHDANH_DEMO: 'yes' }, /DINHDANH_DEMO must be on or off/],
    ['switch case', { DINHDANH_DEMO: 'ON' }, /DINHDANH_DEMO must be on or off/],
    ['one port', { DINHDANH_DEMO_PORTS: '3001' }, /DINHDANH_DEMO_PORTS must be two ports/],
    ['three ports', { DINHDANH_DEMO_PORTS: '3001,3002,3003' }, /DINHDANH_DEMO_PORTS must be two ports/],
    ['not a number', { DINHDANH_DEMO_PORTS: '3001,abc' }, /DINHDANH_DEMO_PORTS must be a whole number/],
    ['out of range', { DINHDANH_DEMO_PORTS: '3001,70000' }, /DINHDANH_DEMO_PORTS must be between/],
    ['the same port twice', { DINHDANH_DEMO_PORTS: '3001,3001' }, /two different ports/],
    ['the server\'s port', { PORT: '3001', DINHDANH_DEMO_PORTS: '3001,3002' }, /must not include PORT/],
    ['no room above PORT', { PORT: '65534' }, /PORT\+1 and PORT\+2/],
  ])('refuses a bad %s with a message naming it', (_label, env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('needs no room above PORT when the demo is off', () => {
    expect(loadConfig({ PORT: '65535', DINHDANH_DEMO: 'off' }).demo).toBeNull();
  });
});
