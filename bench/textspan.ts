// TextSpan: the reference algorithm (replace_with_iterative_removal, materialising C·Tᵀ [n, m]
// every pick) against the covariance version, on the same random data, in one run.
//
//   node --import tsx bench/textspan.ts [--n 10000 --d 768 --m 3498 --k 20 --r 80]
//                                      [--literal-k K] [--heads H] [--seed 1]
//
// Rows printed:
//  - fast: `textspan` (float64; n·d² and the text products on ONNX Runtime, d³ in JS).
//  - reference port: the reference's loop step for step with its float32 products on ONNX Runtime
//    (what torch does on a CPU), all k picks, timed: the baseline.
//  - literal (float64 JS oracle of the tests): its first K picks (`--literal-k`, default 1; each
//    pick costs n·m·d multiply-adds in plain JS), to check the picks.
//  - with CLIP_TEXT_SPAN=/path/to/clip_text_span: the reference's own Python function on the same
//    data (tools/textspan_reference.py; needs python3 with numpy and torch).
//  - `--heads H`: H heads, pipelined as textspanHeads runs them (--d 1024 --heads 64: ViT-H's last 4 layers).
//  - `--baseline 0`: skip the reference port and the Python reference.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pipelined, textspan, textspanLiteral } from '../src/analyses/textspan.ts';
import { rightSvd } from '../src/analyses/linalg.ts';
import { batchedMatmul } from '../src/graph/matmul.ts';
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
const literalK = Math.min(k, arg('literal-k', 1));
const nHeads = arg('heads', 0);
const baseline = arg('baseline', 1) !== 0;

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

const seconds = (t0: number) => (performance.now() - t0) / 1000;
const same = (a: number[], b: number[]) => a.every((v, i) => v === b[i]);

/**
 * replace_with_iterative_removal as the reference runs it on a CPU: SVD span, then per pick the
 * float32 product C·Tᵀ [n, m], the unbiased std of each column, argmax, deflation of C and T.
 */
async function referencePort(): Promise<number[]> {
  const vt = rightSvd(C.data, n, d).vt; // the reference's np.linalg.svd
  const rank = Math.min(r, n, d);
  const Tp = new Float32Array(m * d);
  const coord = new Float64Array(rank);
  for (let s = 0; s < m; s++) {
    for (let i = 0; i < rank; i++) {
      let c = 0;
      for (let j = 0; j < d; j++) c += Tdata[s * d + j] * vt[i * d + j];
      coord[i] = c;
    }
    for (let i = 0; i < rank; i++) for (let j = 0; j < d; j++) Tp[s * d + j] += coord[i] * vt[i * d + j];
  }
  const X = new Float32Array(n * d);
  const mu = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mu[j] += C.data[i * d + j] / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) X[i * d + j] = C.data[i * d + j] - mu[j];
  const TpT = new Float32Array(d * m);
  const picks: number[] = [];
  const mean = new Float64Array(m);
  const sq = new Float64Array(m);
  const proj = new Float32Array(n);
  for (let step = 0; step < k; step++) {
    for (let s = 0; s < m; s++) for (let j = 0; j < d; j++) TpT[j * m + s] = Tp[s * d + j];
    const P = await batchedMatmul(X, TpT, 1, n, d, m); // [n, m]
    mean.fill(0);
    sq.fill(0);
    for (let i = 0; i < n; i++) for (let s = 0; s < m; s++) mean[s] += P[i * m + s];
    for (let s = 0; s < m; s++) mean[s] /= n;
    for (let i = 0; i < n; i++)
      for (let s = 0; s < m; s++) {
        const v = P[i * m + s] - mean[s];
        sq[s] += v * v;
      }
    let top = 0;
    for (let s = 1; s < m; s++) if (sq[s] > sq[top]) top = s;
    picks.push(top);
    const t = Tp.slice(top * d, top * d + d);
    let tn = 0;
    for (let j = 0; j < d; j++) tn += t[j] * t[j];
    for (let i = 0; i < n; i++) {
      let c = 0;
      for (let j = 0; j < d; j++) c += X[i * d + j] * t[j];
      proj[i] = c / tn;
    }
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) X[i * d + j] -= proj[i] * t[j];
    for (let s = 0; s < m; s++) {
      let c = 0;
      for (let j = 0; j < d; j++) c += Tp[s * d + j] * t[j];
      c /= tn;
      for (let j = 0; j < d; j++) Tp[s * d + j] -= c * t[j];
    }
  }
  return picks;
}

/** The reference's own function via tools/textspan_reference.py, when CLIP_TEXT_SPAN is set. */
function pythonReference(): { seconds: number; picks: number[] } | string {
  const checkout = process.env.CLIP_TEXT_SPAN;
  if (!checkout) return 'set CLIP_TEXT_SPAN=/path/to/clip_text_span to time the reference itself';
  const dir = mkdtempSync(join(tmpdir(), 'cliplens-textspan-'));
  try {
    writeFileSync(join(dir, 'C.f32'), C.data);
    writeFileSync(join(dir, 'T.f32'), T.data);
    const here = dirname(fileURLToPath(import.meta.url));
    const py = spawnSync(process.env.PYTHON ?? 'python3', [join(here, '../tools/textspan_reference.py'), checkout, dir, String(n), String(d), String(m), String(k), String(r)], { encoding: 'utf8' });
    if (py.status !== 0) return `reference run failed: ${(py.stderr || py.stdout).trim().split('\n').pop()}`;
    const out = JSON.parse(readFileSync(join(dir, 'out.json'), 'utf8'));
    return { seconds: out.seconds, picks: out.picks };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`TextSpan bench: n=${n} d=${d} m=${m} k=${k} r=${r}`);
await textspan({ shape: [8, d], data: C.data.subarray(0, 8 * d) }, T, { k: 1, r: 4 }); // sessions built once
let t0 = performance.now();
const fast = await textspan(C, T, { k, r });
const fastS = seconds(t0);
console.log(`fast:            ${fastS.toFixed(2)} s`);
let port: number[] | undefined;
if (baseline) {
  t0 = performance.now();
  port = await referencePort();
  const portS = seconds(t0);
  console.log(`reference port:  ${portS.toFixed(2)} s  (float32 products on ONNX Runtime, all ${k} picks)  → fast is ${(portS / fastS).toFixed(1)}x faster`);
  console.log(`  picks identical to fast: ${same(port, fast.indices) ? 'yes' : 'NO'}`);
  const py = pythonReference();
  if (typeof py === 'string') console.log(`reference (Python): ${py}`);
  else {
    console.log(`reference (Python replace_with_iterative_removal): ${py.seconds.toFixed(2)} s → fast is ${(py.seconds / fastS).toFixed(1)}x faster`);
    console.log(`  picks identical to fast: ${same(py.picks, fast.indices) ? 'yes' : 'NO'}`);
  }
}
if (literalK > 0) {
  t0 = performance.now();
  const lit = textspanLiteral(C, T, { k: literalK, r });
  console.log(`literal float64 oracle, first ${literalK} picks: ${seconds(t0).toFixed(1)} s; identical to fast: ${same(lit.indices, fast.indices) ? 'yes' : 'NO'}`);
  if (!same(lit.indices, fast.indices)) process.exitCode = 1;
}
console.log(`fast picks: ${fast.indices.join(' ')}`);
if (port && !same(port, fast.indices)) console.log(`port picks: ${port.join(' ')}`);

if (nHeads > 0) {
  // H heads of the same size, two in flight as `textspanHeads` and `cliplens textspan` run them;
  // head h's terms are the base terms with rows rotated and columns rescaled (a different
  // covariance per head, made in ~20 ms inside the timing, instead of holding H·n·d floats).
  const headTerms = (h: number): Float32Array => {
    const out = new Float32Array(n * d);
    const shift = (h * 37) % n;
    const scale = Float32Array.from({ length: d }, (_, j) => 1 + ((j * (h + 1)) % 7) / 7);
    for (let i = 0; i < n; i++) {
      const src = ((i + shift) % n) * d;
      for (let j = 0; j < d; j++) out[i * d + j] = C.data[src + j] * scale[j];
    }
    return out;
  };
  t0 = performance.now();
  const c0 = process.cpuUsage();
  await pipelined(Array.from({ length: nHeads }, (_, h) => h), (h) => textspan({ shape: [n, d], data: headTerms(h) }, T, { k, r }));
  const s = seconds(t0);
  const cu = process.cpuUsage(c0);
  console.log(`${nHeads} heads: ${s.toFixed(1)} s (${(s / nHeads).toFixed(2)} s per head; ${((cu.user + cu.system) / 1e6).toFixed(1)} s of CPU)`);
}
