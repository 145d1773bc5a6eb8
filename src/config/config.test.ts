import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from './config.js';

/** What production needs at least: an https issuer, a trusted proxy, and the registry's adapter. */
const PROD = {
  NODE_ENV: 'production', DINHDANH_ISSUER: 'https://id.example.gov.vn', DINHDANH_TRUST_PROXY_HOPS: '1',
  DINHDANH_REGISTRY: 'https://registry.example.gov.vn/v1/verify', DINHDANH_REGISTRY_TOKEN: 'reg.T0ken-value~',
};

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
    expect(loadConfig(PROD).issuer).toBe('https://id.example.gov.vn');
  });

  it('refuses production without a trusted TLS-terminating proxy', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', DINHDANH_ISSUER: 'https://id.example.gov.vn' })).toThrow(/DINHDANH_TRUST_PROXY_HOPS/);
  });

  describe('one-time code delivery', () => {
    const prod = PROD;
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
  const prod = PROD;

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
    expect(loadConfig({ PORT: '65535', DINHDANH_DEMO: 'off', DINHDANH_ADMIN_PORT: '8443' }).demo).toBeNull();
  });
});

describe('the operators\' console listener (DINHDANH_ADMIN_HOST, DINHDANH_ADMIN_PORT, DINHDANH_ADMIN_URL)', () => {
  it('is 127.0.0.1 on PORT+100 by default (a free port when PORT is 0), with no URL of its own', () => {
    expect(loadConfig({}).admin).toEqual({ host: '127.0.0.1', port: 3100, url: null });
    expect(loadConfig({ PORT: '8080' }).admin.port).toBe(8180);
    expect(loadConfig({ PORT: '0' }).admin.port).toBe(0);
    expect(Object.isFrozen(loadConfig({}).admin)).toBe(true);
  });

  it('refuses a port beyond the range, the public listener\'s own port, and a malformed host', () => {
    expect(() => loadConfig({ PORT: '65535', DINHDANH_DEMO: 'off' })).toThrow(/DINHDANH_ADMIN_PORT/);
    expect(() => loadConfig({ PORT: '4000', DINHDANH_ADMIN_PORT: '4000' })).toThrow(/must differ from PORT/);
    expect(() => loadConfig({ DINHDANH_ADMIN_PORT: '70000' })).toThrow(/DINHDANH_ADMIN_PORT/);
    expect(() => loadConfig({ DINHDANH_ADMIN_HOST: 'evil host/' })).toThrow(/DINHDANH_ADMIN_HOST/);
  });

  it('takes an http(s) origin as its URL, nothing with a path, query or credentials', () => {
    expect(loadConfig({ DINHDANH_ADMIN_URL: 'https://vanhanh.dinhdanh.gov.vn' }).admin.url).toBe('https://vanhanh.dinhdanh.gov.vn');
    for (const bad of ['vanhanh', 'ftp://x.example', 'https://x.example/admin', 'https://u:p@x.example', 'https://x.example/?a=1']) {
      expect(() => loadConfig({ DINHDANH_ADMIN_URL: bad })).toThrow(/DINHDANH_ADMIN_URL/);
    }
  });

  it('in production, refuses a console reachable off the machine without TLS', () => {
    const prod = { NODE_ENV: 'production', DINHDANH_ISSUER: 'https://id.example.vn', DINHDANH_TRUST_PROXY_HOPS: '1', DINHDANH_REGISTRY: 'https://registry.example.vn', DINHDANH_REGISTRY_TOKEN: 'tok', DINHDANH_SMS_GATEWAY_URL: 'https://sms.example.vn', DINHDANH_SMS_GATEWAY_TOKEN: 'tok' };
    expect(() => loadConfig({ ...prod, DINHDANH_ADMIN_HOST: '0.0.0.0' })).toThrow(/operators' console/);
    expect(() => loadConfig({ ...prod, DINHDANH_ADMIN_HOST: '0.0.0.0', DINHDANH_ADMIN_URL: 'http://vanhanh.example.vn' })).toThrow(/operators' console/);
    expect(loadConfig({ ...prod, DINHDANH_ADMIN_HOST: '0.0.0.0', DINHDANH_ADMIN_URL: 'https://vanhanh.example.vn', DINHDANH_METRICS_TOKEN: TOKEN }).admin.url).toBe('https://vanhanh.example.vn');
    expect(loadConfig(prod).admin.host).toBe('127.0.0.1');
  });
});

const TOKEN = 'kL3v9Qx0T7mZ2pR8sW4yB6nD1fH5jC0a';

describe('metrics (DINHDANH_METRICS, DINHDANH_METRICS_TOKEN)', () => {
  it('is on without a token by default, and can be turned off', () => {
    expect(loadConfig({}).metrics).toEqual({ enabled: true, token: null });
    expect(loadConfig({ DINHDANH_METRICS: 'off' }).metrics.enabled).toBe(false);
    expect(() => loadConfig({ DINHDANH_METRICS: 'yes' })).toThrow(/DINHDANH_METRICS must be on or off/);
  });

  it('takes a bearer token of 32 to 256 b64token characters, nothing else', () => {
    expect(loadConfig({ DINHDANH_METRICS_TOKEN: TOKEN }).metrics.token).toBe(TOKEN);
    for (const bad of ['short', 'x'.repeat(257), `${TOKEN} spaced`, `${TOKEN}"`, `${TOKEN}\n`]) {
      expect(() => loadConfig({ DINHDANH_METRICS_TOKEN: bad })).toThrow(/DINHDANH_METRICS_TOKEN/);
    }
  });

  it('in production, needs the token once /metrics can be reached from beyond the machine', () => {
    const offMachine = [{ DINHDANH_ADMIN_HOST: '10.0.1.5', DINHDANH_ADMIN_URL: 'https://vanhanh.example.vn' }, { DINHDANH_ADMIN_URL: 'https://vanhanh.example.vn' }];
    for (const listener of offMachine) {
      expect(() => loadConfig({ ...PROD, ...listener })).toThrow(/DINHDANH_METRICS_TOKEN/);
      expect(loadConfig({ ...PROD, ...listener, DINHDANH_METRICS_TOKEN: TOKEN }).metrics.token).toBe(TOKEN);
      expect(loadConfig({ ...PROD, ...listener, DINHDANH_METRICS: 'off' }).metrics.enabled).toBe(false);
    }
    // On the loopback interface (scraped by an agent on the machine) no token is asked.
    expect(loadConfig(PROD).metrics.token).toBeNull();
    // Outside production the console's URL alone asks nothing.
    expect(loadConfig({ DINHDANH_ADMIN_URL: 'https://vanhanh.example.vn' }).metrics.token).toBeNull();
  });
});

describe('population registry (DINHDANH_REGISTRY, DINHDANH_REGISTRY_TOKEN)', () => {
  const token = 'reg.T0ken-value~';

  it('is the file data/registry.jsonl under the working folder by default, frozen', () => {
    const c = loadConfig({}, '/srv/dd');
    expect(c.registry).toEqual({ url: 'file:/srv/dd/data/registry.jsonl', path: '/srv/dd/data/registry.jsonl', token: null });
    expect(Object.isFrozen(c.registry)).toBe(true);
    expect(loadConfig({ NODE_ENV: 'test' }, '/tmp/t1').registry.path).toBe('/tmp/t1/data/registry.jsonl');
  });

  it('takes file: with a relative or an absolute path, and a file:/// URL', () => {
    expect(loadConfig({ DINHDANH_REGISTRY: 'file:people/reg.jsonl' }, '/srv/dd').registry.path).toBe('/srv/dd/people/reg.jsonl');
    expect(loadConfig({ DINHDANH_REGISTRY: 'file:/var/lib/dd/reg.jsonl' }, '/srv/dd').registry.path).toBe('/var/lib/dd/reg.jsonl');
    expect(loadConfig({ DINHDANH_REGISTRY: 'file:///var/lib/dd/s%C3%B3.jsonl' }, '/srv/dd').registry.path).toBe('/var/lib/dd/só.jsonl');
  });

  it('takes an https adapter with its token, and http outside production (local test registries)', () => {
    expect(loadConfig({ ...PROD }).registry).toEqual({ url: 'https://registry.example.gov.vn/v1/verify', path: null, token });
    expect(loadConfig({ NODE_ENV: 'test', DINHDANH_REGISTRY: 'http://127.0.0.1:8123/verify', DINHDANH_REGISTRY_TOKEN: token }).registry)
      .toEqual({ url: 'http://127.0.0.1:8123/verify', path: null, token });
  });

  it('refuses a file registry in production, the default included, saying what to set', () => {
    const { DINHDANH_REGISTRY: _url, DINHDANH_REGISTRY_TOKEN: _token, ...withoutRegistry } = PROD;
    expect(() => loadConfig(withoutRegistry)).toThrow(ConfigError);
    expect(() => loadConfig(withoutRegistry)).toThrow(/refusing to start in production with a file registry.*DINHDANH_REGISTRY.*https/);
    expect(() => loadConfig({ ...withoutRegistry, DINHDANH_REGISTRY: 'file:/var/lib/dd/reg.jsonl' })).toThrow(/production with a file registry/);
  });

  it('refuses a non-https adapter in production', () => {
    expect(() => loadConfig({ ...PROD, DINHDANH_REGISTRY: 'http://registry.example.gov.vn/v1/verify' })).toThrow(/production with a non-https DINHDANH_REGISTRY/);
  });

  it.each([
    ['scheme', { DINHDANH_REGISTRY: 'ftp://registry.example.gov.vn/x', DINHDANH_REGISTRY_TOKEN: token }, /DINHDANH_REGISTRY must be file:<path> or the https URL/],
    ['URL', { DINHDANH_REGISTRY: 'registry.example.gov.vn', DINHDANH_REGISTRY_TOKEN: token }, /DINHDANH_REGISTRY must be file:<path> or the https URL/],
    ['empty file path', { DINHDANH_REGISTRY: 'file:' }, /needs a path/],
    ['remote file URL', { DINHDANH_REGISTRY: 'file://fileserver/share/reg.jsonl' }, /local file:\/\/\//],
    ['URL with credentials', { DINHDANH_REGISTRY: 'https://u:p@registry.example.gov.vn/', DINHDANH_REGISTRY_TOKEN: token }, /must not carry credentials/],
    ['missing token', { DINHDANH_REGISTRY: 'https://registry.example.gov.vn/' }, /DINHDANH_REGISTRY_TOKEN is required/],
    ['token with a space', { DINHDANH_REGISTRY: 'https://registry.example.gov.vn/', DINHDANH_REGISTRY_TOKEN: 'two words' }, /must be a bearer token/],
    ['token with a file registry', { DINHDANH_REGISTRY_TOKEN: token }, /DINHDANH_REGISTRY_TOKEN is set but DINHDANH_REGISTRY is a file/],
  ])('refuses a bad %s with a message naming it', (_label, env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('never repeats the URL or the token in its messages', () => {
    const messages: string[] = [];
    for (const env of [
      { DINHDANH_REGISTRY: 'https://registry.example.gov.vn/v1?key=QKEY' },
      { DINHDANH_REGISTRY: 'https://registry.example.gov.vn/v1?key=QKEY', DINHDANH_REGISTRY_TOKEN: 'bad T0KEN' },
      { ...PROD, DINHDANH_REGISTRY: 'http://registry.example.gov.vn/v1?key=QKEY' },
      { DINHDANH_REGISTRY: 'ftp://registry.example.gov.vn/v1?key=QKEY', DINHDANH_REGISTRY_TOKEN: token },
    ]) {
      try {
        loadConfig(env);
      } catch (err) {
        messages.push((err as Error).message);
      }
    }
    expect(messages).toHaveLength(4);
    for (const secret of ['QKEY', 'T0KEN', token]) expect(messages.join('\n')).not.toContain(secret);
  });
});

describe('account reset wait (DINHDANH_ACCOUNT_RESET_WAIT)', () => {
  it('is 24 hours by default', () => {
    expect(loadConfig({}).accountResetWaitMs).toBe(24 * 3_600_000);
  });

  it.each([
    ['0', 0],
    ['45', 45_000],
    ['90s', 90_000],
    ['15m', 900_000],
    ['1h', 3_600_000],
    ['2d', 2 * 86_400_000],
    ['30d', 30 * 86_400_000],
  ])('reads %s', (value, ms) => {
    expect(loadConfig({ DINHDANH_ACCOUNT_RESET_WAIT: value }).accountResetWaitMs).toBe(ms);
  });

  it('keeps at least an hour in production (the owner\'s time to cancel a reset)', () => {
    expect(() => loadConfig({ ...PROD, DINHDANH_ACCOUNT_RESET_WAIT: '15m' })).toThrow(/at least 1h in production/);
    expect(loadConfig({ ...PROD, DINHDANH_ACCOUNT_RESET_WAIT: '1h' }).accountResetWaitMs).toBe(3_600_000);
  });

  it.each(['1 day', '1w', '-1h', '1.5h', 'h', '31d', '1000000s'])('refuses %s, naming the variable and the syntax', (value) => {
    expect(() => loadConfig({ DINHDANH_ACCOUNT_RESET_WAIT: value })).toThrow(ConfigError);
    expect(() => loadConfig({ DINHDANH_ACCOUNT_RESET_WAIT: value })).toThrow(/DINHDANH_ACCOUNT_RESET_WAIT must be (a duration such as 0, 90s, 15m, 1h or 2d|at most 30 days)/);
  });
});
