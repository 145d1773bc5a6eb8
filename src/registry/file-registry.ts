/**
 * The file registry (`DINHDANH_REGISTRY=file:<path>`): the development and test stand-in for the
 * national population database, refused in production (PRODUCT.md, "Population registry"). JSON
 * lines, one person a line:
 *
 *   {"pid":"001090123456","full_name":"Nguyễn Văn An","birthdate":"1990-05-17","gender":"male"}
 *
 * with an optional `"phone":"+84912345678"`. A missing file is an empty registry. The file is read
 * again whenever it changed (size, modification time, inode), so a record that `dinhdanh registry
 * add` appends while the server runs is seen by the next question.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { maskPid } from '../accounts/index.js';
import { parseStoredRecord, recordMatches, RegistryInputError, validateRegistryRecord, type RegistryRecordInput } from './record.js';
import type { PopulationRegistry, RegistryRecord } from './registry.types.js';

interface Snapshot {
  /** Identifies the file's version: device, inode, size, modification and change times. */
  key: string;
  byPid: ReadonlyMap<string, RegistryRecord>;
}

const EMPTY: ReadonlyMap<string, RegistryRecord> = new Map();

function versionKey(st: fs.Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

/**
 * Parses the file's text. Lines that are not records, and later lines repeating a number, are
 * skipped and reported by line number through `skipped` (never their content: it is personal data).
 */
export function parseRegistryText(
  text: string,
  skipped: (line: number, why: 'malformed' | 'duplicate') => void = () => {},
): Map<string, RegistryRecord> {
  const byPid = new Map<string, RegistryRecord>();
  const lines = text.split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      value = undefined;
    }
    const record = parseStoredRecord(value);
    if (!record) skipped(i + 1, 'malformed');
    else if (byPid.has(record.pid)) skipped(i + 1, 'duplicate');
    else byPid.set(record.pid, record);
  }
  return byPid;
}

/** The records of a file registry by number; a missing file has none. Skipped lines are not reported. */
export async function readRegistryRecords(file: string): Promise<Map<string, RegistryRecord>> {
  try {
    return parseRegistryText(await fs.promises.readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw err;
  }
}

export function createFileRegistry(deps: { path: string; logger: Logger }): PopulationRegistry {
  const file = deps.path;
  const log = deps.logger.child({ component: 'registry', registry: 'file' });
  let cached: Snapshot | undefined;
  // One parse per version of the file, however many questions arrive meanwhile: each skipped line
  // is then logged once.
  let parsing: { key: string; promise: Promise<ReadonlyMap<string, RegistryRecord>> } | undefined;

  async function records(): Promise<ReadonlyMap<string, RegistryRecord>> {
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        cached = undefined;
        return EMPTY;
      }
      throw err;
    }
    try {
      // The version and the text come from the same open file, so a replaced file is not mixed up
      // with the one that was stat'ed.
      const st = await handle.stat();
      if (!st.isFile()) throw new Error('the registry path is not a regular file');
      const key = versionKey(st);
      if (cached?.key === key) return cached.byPid;
      if (parsing?.key === key) return await parsing.promise;
      const promise = handle.readFile('utf8').then((text) => parseRegistryText(text, (line, why) => {
        log.warn({ file, line }, why === 'malformed'
          ? 'registry file: line skipped (not a record: pid, full_name, birthdate, gender, optional phone)'
          : 'registry file: line skipped (its pid is on an earlier line)');
      }));
      parsing = { key, promise };
      try {
        const byPid = await promise;
        cached = { key, byPid };
        return byPid;
      } finally {
        if (parsing?.promise === promise) parsing = undefined;
      }
    } finally {
      await handle.close();
    }
  }

  return {
    kind: 'file',
    async verify(q) {
      try {
        const record = (await records()).get(q.pid);
        return record !== undefined && recordMatches(record, q) ? 'match' : 'no_match';
      } catch (err) {
        log.error({ file, pid: maskPid(q.pid), code: (err as NodeJS.ErrnoException).code, error: (err as Error).message }, 'registry file could not be read: answering unavailable');
        return 'unavailable';
      }
    },
  };
}

/**
 * Appends one person to a file registry (`dinhdanh registry add`): the details are checked as
 * `dinhdanh accounts add` checks them, a number already in the file is refused, the folder is
 * created if needed, and the line goes out in one write on a file opened with O_APPEND, so a
 * server reading the file meanwhile sees the whole line or nothing of it. Returns the stored record.
 * Throws RegistryInputError for bad input.
 */
export async function appendRegistryRecord(file: string, input: RegistryRecordInput, options: { today?: () => string } = {}): Promise<RegistryRecord> {
  const record = validateRegistryRecord(input, options);
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  // The file holds personal data: readable by its owner only when this creates it.
  const handle = await fs.promises.open(file, fs.constants.O_RDWR | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o600);
  try {
    const text = await handle.readFile('utf8');
    if (parseRegistryText(text).has(record.pid)) {
      throw new RegistryInputError(`the registry already has a record for --pid ${maskPid(record.pid)}; it is not added twice`);
    }
    // A file edited by hand may lack its last newline: the new record must not join that line.
    const line = `${text.length > 0 && !text.endsWith('\n') ? '\n' : ''}${JSON.stringify(record)}\n`;
    const bytes = Buffer.from(line, 'utf8');
    const { bytesWritten } = await handle.write(bytes, 0, bytes.length);
    if (bytesWritten !== bytes.length) throw new Error(`registry file: only ${bytesWritten} of ${bytes.length} bytes were written`);
  } finally {
    await handle.close();
  }
  return record;
}
