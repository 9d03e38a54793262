// TextSpan: literal reference algorithm (materialises C·Tᵀ [n, m] every pick) vs the fast
// covariance version, on random data, in one run.
//
//   node --import tsx bench/textspan.ts [--n 10000 --d 768 --m 3498 --k 20 --r 80]
//                                      [--literal-k K] [--seed 1]
//
// The literal version costs n·m·d multiply-adds per pick (≈27 G at the paper's sizes, ≈15 s in
// plain JS), so by default it runs all k picks only when that fits in about a minute; otherwise
// it runs the first few picks, checks them against the fast version and extrapolates its time
// linearly in k (its setup is timed separately; every pick costs the same). `--literal-k K`
// forces K literal picks (K = k for the full comparison).

import { textspan, textspanLiteral } from '../src/analyses/textspan.ts';
import { normalRng } from '../src/rng.ts';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) {
    console.error(`bench/textspan: --${name} needs a non-negative number, got ${process.argv[i + 1]}`);
    process.exit(2);
  }
  return v;
}

const n = arg('n', 10000);
const d = arg('d', 768);
const m = arg('m', 3498);
const k = arg('k', 20);
const r = arg('r', 80);
const seed = arg('seed', 1);

const normal = normalRng(seed);
const gaussian = (len: number): Float32Array => Float32Array.from({ length: len }, normal);

const C = { shape: [n, d], data: gaussian(n * d) }; // [n, d] head terms
const Tdata = gaussian(m * d); // [m, d] texts, unit norm like CLIP text embeddings
for (let s = 0; s < m; s++) {
  let nr = 0;
  for (let j = 0; j < d; j++) nr += Tdata[s * d + j] ** 2;
  nr = Math.sqrt(nr);
  for (let j = 0; j < d; j++) Tdata[s * d + j] /= nr;
}
const T = { shape: [m, d], data: Tdata };

const perPickMac = n * m * d;
const literalK = Math.min(k, arg('literal-k', perPickMac * k <= 60e9 ? k : Math.min(k, 3)));

console.log(`TextSpan bench: n=${n} d=${d} m=${m} k=${k} r=${r} (literal picks run: ${literalK})`);

let t0 = performance.now();
const fast = textspan(C, T, { k, r });
const fastMs = performance.now() - t0;
console.log(`fast:    ${(fastMs / 1000).toFixed(2)} s`);

// Literal setup alone (k = 0) then with literalK picks; per-pick time is the difference.
t0 = performance.now();
textspanLiteral(C, T, { k: 0, r });
const litSetupMs = performance.now() - t0;
t0 = performance.now();
const lit = textspanLiteral(C, T, { k: literalK, r });
const litRunMs = performance.now() - t0;
const perPickMs = literalK > 0 ? Math.max(0, litRunMs - litSetupMs) / literalK : 0;
const litMs = literalK === k ? litRunMs : litSetupMs + perPickMs * k;
const extrapolated = literalK !== k;
console.log(
  `literal: ${(litMs / 1000).toFixed(2)} s${extrapolated ? ` (extrapolated: setup ${(litSetupMs / 1000).toFixed(2)} s + ${k} × ${(perPickMs / 1000).toFixed(2)} s per pick, measured on ${literalK} picks)` : ''}`,
);
const same = lit.indices.every((v, i) => v === fast.indices[i]);
console.log(`speed-up: ${(litMs / fastMs).toFixed(1)}x${extrapolated ? ' (literal time extrapolated)' : ''}`);
console.log(`choices identical: ${same ? 'yes' : 'NO'} (first ${literalK} of ${k} compared)`);
console.log(`fast picks:    ${fast.indices.join(' ')}`);
console.log(`literal picks: ${lit.indices.join(' ')}`);
if (!same) process.exitCode = 1;
