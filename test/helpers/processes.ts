/**
 * dinhdanh as separate processes, as operators run it: servers (`src/main.ts`) and the CLI
 * (`src/cli/bin.ts`). tsx is loaded by absolute URL, so they may run in a scratch folder without
 * node_modules. A group keeps every child it started, for the suite's afterAll to stop.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = path.resolve(import.meta.dirname, '../..');
const TSX = pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface ProcessOptions {
  cwd: string;
  env: Record<string, string>;
}

export class ProcessGroup {
  private readonly children: ChildProcess[] = [];

  /** `dinhdanh <args>`; resolves with its exit code and output, whatever the code. */
  cli(args: string[], options: ProcessOptions): Promise<CliRun> {
    return new Promise((resolve) => {
      const child = execFile(process.execPath, ['--import', TSX, path.join(ROOT, 'src/cli/bin.ts'), ...args], { ...options, encoding: 'utf8' },
        (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }));
      this.children.push(child);
    });
  }

  /** A server on `options.env`; resolves once `<base>/healthz/ready` answers 200. */
  async server(base: string, options: ProcessOptions): Promise<ChildProcess> {
    const child = spawn(process.execPath, ['--import', TSX, path.join(ROOT, 'src/main.ts')], { ...options, stdio: ['ignore', 'ignore', 'pipe'] });
    this.children.push(child);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    for (let i = 0; i < 300; i++) {
      if (child.exitCode !== null) throw new Error(`the server exited: ${stderr}`);
      try {
        if ((await fetch(`${base}/healthz/ready`)).status === 200) return child;
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the server did not become ready: ${stderr}`);
  }

  /** Ends `child` with SIGTERM (a server shuts down cleanly) and waits for it. */
  static async stop(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }

  /** Every child this group started. */
  async stopAll(): Promise<void> {
    await Promise.all(this.children.map((c) => ProcessGroup.stop(c)));
  }
}
