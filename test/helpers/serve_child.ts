// `cliplens serve` in a child process (the compiled CLI): for tests and benchmarks that measure or
// cap the server process itself.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './fixtures.ts';

export interface ServeChild {
  child: ChildProcess;
  port: number;
  pid: number;
}

/** Start `cliplens serve --port 0 …args` (this repository's, or `bin`), under `ulimit -v limitKB` when given; resolves once it listens. */
export async function serveChild(args: string[] = [], opts: { limitKB?: number; env?: Record<string, string>; bin?: string } = {}): Promise<ServeChild> {
  const node = [process.execPath, opts.bin ?? join(REPO, 'bin/cliplens.js'), 'serve', '--port', '0', ...args].map((a) => JSON.stringify(a)).join(' ');
  const child = spawn('sh', ['-c', opts.limitKB ? `ulimit -v ${opts.limitKB} && exec ${node}` : `exec ${node}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  let err = '';
  child.stderr!.on('data', (c) => (err += c));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c) => {
      out += c;
      const m = /listening on http:\/\/[^:]+:(\d+)\//.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`cliplens serve exited (${code}) before listening: ${err.trim()}`)));
  });
  return { child, port, pid: child.pid! };
}

/** A field of /proc/<pid>/status in kB (VmRSS, VmHWM, VmSize, VmPeak). */
export function procStatusKB(pid: number, field: 'VmRSS' | 'VmHWM' | 'VmSize' | 'VmPeak'): number {
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

export function stopChild(c: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve();
    c.once('exit', () => resolve());
    c.kill('SIGTERM');
  });
}
