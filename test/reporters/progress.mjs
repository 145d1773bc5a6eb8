/**
 * A jest reporter that writes, when DINHDANH_TEST_PROGRESS names a file, one line per test file
 * started and finished and per test finished, with the time. Nothing otherwise.
 *
 * Why: a run stopped from outside (a CI time limit) prints nothing of the suite that was still
 * running, and jest's own output names a suite only when it ends. `.ci/run` and
 * scripts/test-mongodb.mjs print this file's last lines when a pass fails or is stopped, so the
 * test that hung is named.
 */
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';

export default class ProgressReporter {
  constructor(globalConfig) {
    this.file = process.env.DINHDANH_TEST_PROGRESS || null;
    this.root = globalConfig.rootDir;
  }

  write(line) {
    if (!this.file) return;
    try {
      fs.appendFileSync(this.file, `${new Date().toISOString()} ${line}\n`);
    } catch {
      // Progress is a diagnosis aid: it never fails a run.
    }
  }

  rel(test) {
    return path.relative(this.root, test.path);
  }

  onTestFileStart(test) {
    this.write(`start ${this.rel(test)}`);
  }

  onTestCaseResult(test, result) {
    this.write(`${result.status} ${this.rel(test)} › ${result.fullName} (${result.duration ?? '?'} ms)`);
  }

  onTestFileResult(test, result) {
    this.write(`end ${this.rel(test)} (${result.numFailingTests} failed)`);
  }
}
