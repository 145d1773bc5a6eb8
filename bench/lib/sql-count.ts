/**
 * Diagnostics (`bench/run.ts --count-sql`): counts the SQLite statements dinhdanh executes, by SQL
 * text, by wrapping better-sqlite3's Statement methods in the benchmark child. src/ is untouched;
 * the counts come back with each CPU reading, so the parent reports statements per operation over
 * the measured windows.
 */
import Database from 'better-sqlite3';

const counts = new Map<string, number>();

function label(sql: string): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  return flat.length > 110 ? `${flat.slice(0, 107)}…` : flat;
}

export function countSql(): void {
  const probe = new Database(':memory:');
  const proto = Object.getPrototypeOf(probe.prepare('SELECT 1')) as Record<string, unknown>;
  probe.close();
  for (const method of ['run', 'get', 'all', 'iterate'] as const) {
    const original = proto[method] as (...a: unknown[]) => unknown;
    proto[method] = function counted(this: { source: string }, ...a: unknown[]) {
      const key = `${method.padEnd(4)} ${label(this.source)}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      return original.apply(this, a);
    };
  }
}

export function sqlCounts(): Record<string, number> | undefined {
  return counts.size ? Object.fromEntries(counts) : undefined;
}
