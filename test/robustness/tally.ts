// The robustness suite's bookkeeping. Every hostile case is a node:test test that ends in one of
// two outcomes: 'clear error' (refused with one line naming the problem, exit code ≠ 0 for the CLI)
// or 'handled' (the input was dealt with, and the result checked). Counts per group are printed as
// a table when the suite ends: tried / clear error / handled (tried − the two = failed cases).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { CliplensError } from '../../src/errors.ts';
import { REPO } from '../helpers/fixtures.ts';

export type Outcome = 'clear error' | 'handled';

const counts = new Map<string, { tried: number; clear: number; handled: number }>();

/** Register one hostile case of `group`. */
export function hostile(group: string, name: string, fn: () => Outcome | string | Promise<Outcome | string>, opts: { timeout?: number } = {}): void {
  if (!counts.has(group)) counts.set(group, { tried: 0, clear: 0, handled: 0 });
  const row = counts.get(group)!;
  test(name, { timeout: opts.timeout ?? 120_000 }, async () => {
    row.tried++;
    const outcome = await fn();
    assert.ok(outcome === 'clear error' || outcome === 'handled', `a case must end 'clear error' or 'handled', not ${outcome}`);
    if (outcome === 'clear error') row.clear++;
    else row.handled++;
  });
}

export function table(): string {
  const head = ['group', 'tried', 'clear error', 'handled'];
  const rows = [...counts].map(([g, c]) => [g, String(c.tried), String(c.clear), String(c.handled)]);
  const total = [...counts.values()].reduce((a, c) => ({ tried: a.tried + c.tried, clear: a.clear + c.clear, handled: a.handled + c.handled }), { tried: 0, clear: 0, handled: 0 });
  rows.push(['all', String(total.tried), String(total.clear), String(total.handled)]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return ['robustness suite: hostile cases per group', fmt(head), ...rows.map(fmt)].join('\n');
}

/** `p` (or `f()`) fails with a CliplensError whose message is one line matching `re`. */
export async function oneLine(p: Promise<unknown> | (() => unknown), re: RegExp): Promise<'clear error'> {
  let err: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'expected an error');
  assert.ok(err instanceof CliplensError, `not a CliplensError: ${(err as Error)?.stack ?? err}`);
  assert.ok(!err.message.includes('\n'), `multi-line message: ${err.message}`);
  assert.match(err.message, re);
  return 'clear error';
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function cli(args: string[], env: Record<string, string> = {}): CliResult {
  const r = spawnSync(process.execPath, [join(REPO, 'bin/cliplens.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, CLIPLENS_THREADS: '1', CLIPLENS_OFFLINE: '1', ...env },
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The CLI exits non-zero with exactly one stderr line, `cliplens: error: …` matching `re`. */
export function cliOneLine(args: string[], re: RegExp, env: Record<string, string> = {}): 'clear error' {
  const r = cli(args, env);
  assert.notEqual(r.code, 0, `exit 0 for ${args.join(' ')}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0], /^cliplens: error: /);
  assert.match(lines[0], re);
  return 'clear error';
}
