/**
 * Log lines: JSON in production and whenever stdout is not a terminal; pino-pretty's readable lines
 * only for development at a terminal, through the same destination.
 */
import { describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { logOutput, prettyFormatter, readableWhenTerminal } from './log-output.js';

/** A destination that keeps what it is given, with the members a stdout log has besides `write`. */
function collector() {
  const lines: string[] = [];
  let flushed = 0;
  return { lines, flushes: () => flushed, destination: { write: (line: string) => { lines.push(line); }, flush: () => { flushed++; } } };
}

describe('the log output', () => {
  it('is pretty only in development or test, and only with a terminal on stdout', () => {
    expect(logOutput('development', true)).toBe('pretty');
    expect(logOutput('test', true)).toBe('pretty');
    expect(logOutput('production', true)).toBe('json');
    expect(logOutput('development', false)).toBe('json');
    expect(logOutput('development', undefined)).toBe('json');
    expect(logOutput('production', undefined)).toBe('json');
  });

  it('is the destination itself for JSON: one parseable object a line', () => {
    const { lines, destination } = collector();
    expect(readableWhenTerminal('production', true, destination)).toBe(destination);
    expect(readableWhenTerminal('development', undefined, destination)).toBe(destination);
    pino({ base: { service: 'dinhdanh' } }, readableWhenTerminal('development', false, destination)).info({ req_id: 'r-1' }, 'request');
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 30, service: 'dinhdanh', req_id: 'r-1', msg: 'request' });
  });

  it('is one readable line an entry at a terminal in development, through the same destination', () => {
    const { lines, destination, flushes } = collector();
    const readable = readableWhenTerminal('development', true, destination);
    expect(readable).not.toBe(destination);
    const logger = pino({ base: { service: 'dinhdanh' }, redact: { paths: ['password'], censor: '[redacted]' } }, readable);
    logger.warn({ req_id: 'r-2', password: 'hunter2' }, 'sign-in failed');
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    // No JSON, colours on, the level's name, the message and the request id on one line; redaction still applies.
    expect(() => JSON.parse(line)).toThrow();
    expect(line).toContain('\u001b[');
    // eslint-disable-next-line no-control-regex
    const plain = line.replace(/\u001b\[[0-9;]*m/g, '');
    expect(plain).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: sign-in failed \{.*"req_id":"r-2".*\}\n$/);
    expect(plain).toContain('[redacted]');
    expect(plain).not.toContain('hunter2');
    expect(plain).not.toMatch(/service|hostname|pid/);
    // The destination's other members (flush, close) are the stdout log's own.
    (readable as unknown as { flush(): void }).flush();
    expect(flushes()).toBe(1);
  });

  it('formats with pino-pretty without colours when asked', () => {
    const format = prettyFormatter({ colorize: false });
    expect(format(`${JSON.stringify({ level: 50, time: 0, msg: 'store down', service: 'dinhdanh' })}\n`)).toMatch(/ ERROR: store down\n$/);
  });
});
