// CLI start-up: wall time and peak RSS of `cliplens --version` and `cliplens --help` (the compiled
// CLI in dist/, as an installed package runs it), median of several launches, next to a bare
// `node -e ''` launched the same way in the same run.
//   node --import tsx bench/startup.ts [--runs 9]

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'cliplens.js');
const preload = pathToFileURL(join(root, 'bench', 'max_rss.mjs')).href;
const runsArg = process.argv.indexOf('--runs');
const runs = runsArg >= 0 ? Number(process.argv[runsArg + 1]) : 9;
if (!(Number.isInteger(runs) && runs > 0)) throw new Error(`--runs must be a positive integer, got ${process.argv[runsArg + 1]}`);
if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run npm run build first');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** Median wall time (ms) of plain launches, and median peak RSS (MB) of launches with the RSS probe preloaded. */
function measure(args: string[]): { ms: number; rssMB: number } {
  const times: number[] = [];
  const rss: number[] = [];
  spawnSync(process.execPath, args); // warm the file cache
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
    times.push(performance.now() - t0);
    if (r.status !== 0) throw new Error(`node ${args.join(' ')} failed: ${r.stderr}`);
    const p = spawnSync(process.execPath, ['--import', preload, ...args], { encoding: 'utf8' });
    rss.push(Number(/cliplens-bench-maxrss (\d+)/.exec(p.stderr)?.[1]) / 1024);
  }
  return { ms: median(times), rssMB: median(rss) };
}

const row = (label: string, m: { ms: number; rssMB: number }, note = '') =>
  console.log(`${label.padEnd(20)} ${m.ms.toFixed(0).padStart(5)} ms  peak RSS ${m.rssMB.toFixed(0).padStart(4)} MB${note}`);

console.log(`CLI start-up (median of ${runs} launches each; wall time from spawn to exit)`);
row("node -e ''", measure(['-e', '']), '   (baseline: Node alone)');
row('cliplens --version', measure([bin, '--version']), '   (target < 500 ms, < 100 MB)');
row('cliplens --help', measure([bin, '--help']));
