/**
 * Development and test delivery: each message is appended as one JSON line to `<dir>/outbox.jsonl`
 * (directory 0700, file 0600: the codes in it are the developer's). The log gets one line saying a
 * message went to the outbox, with the channel and a masked destination, never the text.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { maskDestination } from './mask.js';
import type { Notifier, OutgoingMessage } from './types.js';

export const OUTBOX_FILE = 'outbox.jsonl';

export interface OutboxEntry extends OutgoingMessage {
  /** ISO 8601 time the message was written. */
  at: string;
}

export function createOutboxNotifier(deps: { dir: string; logger: Pick<Logger, 'info'>; now?: () => number }): Notifier {
  const now = deps.now ?? Date.now;
  const file = path.join(deps.dir, OUTBOX_FILE);
  let prepared: Promise<void> | undefined;

  async function prepare(): Promise<void> {
    await fs.mkdir(deps.dir, { recursive: true, mode: 0o700 });
    // mkdir's mode only applies to a directory it creates (and is filtered by the umask).
    await fs.chmod(deps.dir, 0o700);
  }

  return {
    async send(message) {
      prepared ??= prepare().catch((err: unknown) => {
        prepared = undefined;
        throw err;
      });
      await prepared;
      const entry: OutboxEntry = { at: new Date(now()).toISOString(), ...message };
      // One write per line on an O_APPEND descriptor: parallel sends do not interleave.
      const handle = await fs.open(file, 'a', 0o600);
      try {
        await handle.chmod(0o600);
        await handle.write(`${JSON.stringify(entry)}\n`);
      } finally {
        await handle.close();
      }
      deps.logger.info(
        { component: 'outbox', channel: message.channel, to: maskDestination(message.channel, message.to), outbox: file },
        `one-time code message (${message.channel}) written to the development outbox`,
      );
    },
  };
}

/** The outbox's messages, oldest first (empty when nothing was sent). For tests and developers. */
export async function readOutbox(dir: string): Promise<OutboxEntry[]> {
  let text: string;
  try {
    text = await fs.readFile(path.join(dir, OUTBOX_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return text.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as OutboxEntry);
}
