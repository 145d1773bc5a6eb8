import { describe, expect, it } from '@jest/globals';
import { escapeHtml, html } from './html.js';

describe('demo html template', () => {
  it('escapes every interpolated value', () => {
    const name = '<script>alert("x")</script> & \'y\'';
    expect(html`<p title="${name}">${name}</p>`.value).toBe(`<p title="${escapeHtml(name)}">${escapeHtml(name)}</p>`);
    expect(html`${name}`.value).not.toContain('<script>');
  });

  it('keeps nested fragments and arrays as built, drops empty values', () => {
    const items = ['a<b', 'c'].map((x) => html`<li>${x}</li>`);
    expect(html`<ul>${items}</ul>${null}${undefined}${false}`.value).toBe('<ul><li>a&lt;b</li><li>c</li></ul>');
    expect(html`${0}`.value).toBe('0');
  });
});
