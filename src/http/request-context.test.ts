import { describe, expect, it } from '@jest/globals';
import { LOGGED_PATH_MAX, loggedPath } from './request-context.js';

describe('loggedPath (the access line)', () => {
  it('keeps ordinary paths as they are and cuts a long one', () => {
    expect(loggedPath('/token/introspection')).toBe('/token/introspection');
    const exact = `/${'a'.repeat(LOGGED_PATH_MAX - 1)}`;
    expect(loggedPath(exact)).toBe(exact);
    const long = `/${'b'.repeat(10_000)}`;
    expect(loggedPath(long)).toBe(`${long.slice(0, LOGGED_PATH_MAX)}…`);
    expect(loggedPath(long).length).toBe(LOGGED_PATH_MAX + 1);
  });

  it('logs the route, never the token, of an account reset\'s links', () => {
    const token = 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v';
    expect(loggedPath(`/recover/cancel/${token}`)).toBe('/recover/cancel/:token');
    expect(loggedPath(`/recover/reset/${token}`)).toBe('/recover/reset/:token');
    expect(loggedPath('/recover/reset')).toBe('/recover/reset');
    expect(loggedPath('/recover/reset/open')).toBe('/recover/reset/open');
  });
});
