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
});
