// Interrupting a CLI run the hard way, deterministically: the child is started with
// stop_after_shards.mjs preloaded, stops itself (SIGSTOP) right after its store's manifest records
// the given number of shards, and is then killed with SIGKILL at exactly that point.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';
import { REPO } from './fixtures.ts';

/** Resolves once the process is stopped (state T in /proc/<pid>/stat). */
async function untilStopped(pid: number): Promise<void> {
  const state = () => /^\d+ \(.*\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
  while (state() !== 'T') await new Promise((r) => setTimeout(r, 10));
}

/** Run `node args…`, stop it right after its store records `shards` shards, and kill -9 it there. */
export async function killAfterShards(args: string[], shards: number): Promise<void> {
  const stopper = pathToFileURL(join(REPO, 'test/helpers/stop_after_shards.mjs')).href;
  const child = spawn(process.execPath, ['--import', stopper, ...args], { stdio: 'ignore', env: { ...process.env, STOP_AFTER_SHARDS: String(shards) } });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await Promise.race([untilStopped(child.pid!), exited.then(() => assert.fail('the CLI finished before it could be stopped mid-run'))]);
  child.kill('SIGKILL');
  await exited;
}

/** Run `node args…` to the end; its exit code. */
export async function runToEnd(args: string[]): Promise<number | null> {
  const child = spawn(process.execPath, args, { stdio: 'ignore' });
  return new Promise((r) => child.once('exit', (code) => r(code)));
}
