#!/usr/bin/env node
import { buildProgram } from './program.js';

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) {
    process.stderr.write('password (input hidden, end with Enter): ');
    return readHiddenLine();
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads one line from a terminal without echoing it. */
function readHiddenLine(): Promise<string> {
  return new Promise((resolve) => {
    const stdin = process.stdin;
    let line = '';
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const onData = (ch: string) => {
      if (ch === '\r' || ch === '\n' || ch === '\u0004') {
        stdin.setRawMode(false);
        stdin.pause();
        stdin.off('data', onData);
        process.stderr.write('\n');
        resolve(line);
      } else if (ch === '\u0003') {
        process.exit(130);
      } else if (ch === '\u007f') {
        line = [...line].slice(0, -1).join('');
      } else {
        line += ch;
      }
    };
    stdin.on('data', onData);
  });
}

const { run } = buildProgram({
  env: process.env,
  cwd: process.cwd(),
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  readStdin,
});

run(process.argv.slice(2)).then((code) => {
  // `serve` never resolves; every other command exits with its code.
  process.exitCode = code;
});
