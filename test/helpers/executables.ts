/**
 * Finding a program a test runs when it is installed (nginx, FerretDB) and skips without.
 */
import fs from 'node:fs';

/** The first of `candidates` that is an executable file, if any. */
export function firstExecutable(candidates: ReadonlyArray<string | undefined>): string | undefined {
  return candidates.find((file): file is string => {
    if (!file) return false;
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return fs.statSync(file).isFile();
    } catch {
      return false;
    }
  });
}
