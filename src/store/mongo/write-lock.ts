/**
 * An in-process FIFO lock per key, used only on servers whose single-document updates are not
 * atomic (FerretDB 1.x: an update reads the matching documents, applies the change in the proxy and
 * writes each document back by `_id`, with nothing in between holding them — so two conditional
 * updates of one document can both "match", and `$inc` can lose increments; see FerretDB issue
 * #3040). On such a server the store runs every write of a collection under this lock, which makes
 * the conditional updates atomic *within one process*; several instances writing one FerretDB 1.x
 * database are not safe. MongoDB needs none of this and the store does not take the lock there.
 *
 * Module-level, so that several store objects in one process (tests, CLI helpers) share it.
 */
const tails = new Map<string, Promise<void>>();

export async function withWriteLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const previous = tails.get(key) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((resolve) => {
    release = resolve;
  });
  const tail = previous.then(() => mine);
  tails.set(key, tail);
  await previous;
  try {
    return await fn();
  } finally {
    release();
    if (tails.get(key) === tail) tails.delete(key);
  }
}
