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
});
