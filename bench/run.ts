// npm run bench [-- suite ... [--flag value ...]]
//   suites: startup, encode (these two by default), decompose, dataset, textspan, preprocess, pil,
//           tokenize, toyworld, hostile, siglip, neurons, all. Flags after the suites go to the suites that take them (textspan:
//           --n --d --m --k --r --literal-k --seed; startup: --runs; hostile: --model --uploads --cli;
//           neurons: --images --ref-images --layer).
//   scale (only by name, not in all: the big models, ~1 h and ~30 GB of disk; see bench/scale.ts):
//           --models b16,l14,l14-336,h14,bigG --batch --images --keep --no-path --no-reference
// Every speed is printed next to a baseline measured in the same run.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { batchedMatmul } from '../src/graph/matmul.ts';
import { writeSafetensors } from '../src/io/safetensors.ts';
import type { F32 } from '../src/tensor.ts';
import { makeJpegs } from '../tools/make_jpegs.ts';
import { randomClipWeights, vitB16Config } from '../test/helpers/random_weights.ts';
import { randomSiglipWeights, siglipBase224Config } from '../test/helpers/siglip_random.ts';

const here = dirname(fileURLToPath(import.meta.url));
const SUITES = ['startup', 'encode', 'decompose', 'dataset', 'textspan', 'preprocess', 'pil', 'tokenize', 'toyworld', 'hostile', 'siglip', 'neurons'];
const BY_NAME_ONLY = ['scale'];
const args = process.argv.slice(2);
const named = args.filter((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
for (const a of named)
  if (a !== 'all' && !SUITES.includes(a) && !BY_NAME_ONLY.includes(a)) {
    console.error(`npm run bench: unknown suite '${a}' (suites: ${[...SUITES, ...BY_NAME_ONLY].join(', ')}, all)`);
    process.exit(2);
  }
const suites = new Set(named.includes('all') ? SUITES : named.length ? named : ['startup', 'encode']);
/** Everything but the suite names, for the sub-benchmarks (e.g. textspan's --literal-k 5). */
const flags = args.filter((a) => !named.includes(a));

/** Run a bench script in its own process with the flags; a failure fails the bench. */
function sub(script: string, extra: string[] = []): void {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(here, script), ...extra, ...flags], { stdio: 'inherit' });
  if (r.status !== 0) process.exitCode = r.status ?? 1;
}

if (suites.has('startup')) sub('startup.ts');
const small = ['preprocess', 'tokenize', 'toyworld'].filter((s) => suites.has(s));
if (small.length) spawnSync(process.execPath, ['--import', 'tsx', join(here, 'small.ts'), ...small], { stdio: 'inherit' });

/** GFLOP/s of onnxruntime MatMul at ViT-B/16 shapes: [8·197, 768] × [768, 3072]. */
async function matmulRate(): Promise<number> {
  const m = 8 * 197, k = 768, n = 3072;
  const a = new Float32Array(m * k).fill(0.01);
  const b = new Float32Array(k * n).fill(0.02);
  await batchedMatmul(a, b, 1, m, k, n);
  const reps = 10;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await batchedMatmul(a, b, 1, m, k, n);
  return (2 * m * k * n * reps) / ((performance.now() - t0) / 1000) / 1e9;
}

function checkpoint(family: 'clip' | 'siglip' = 'clip'): string {
  const dir = join(tmpdir(), 'cliplens-bench');
  const path = join(dir, family === 'clip' ? 'vit-b-16-random-vision.safetensors' : 'siglip-base-patch16-224-random-vision.safetensors');
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true });
    process.stderr.write(`writing a random ${family === 'clip' ? 'ViT-B-16' : 'siglip-base-patch16-224'} vision tower (once)…\n`);
    const w = family === 'clip' ? randomClipWeights(vitB16Config(), 1, ['vision']) : randomSiglipWeights(siglipBase224Config(), 1, ['vision']);
    const tensors: Record<string, F32> = {};
    for (const name of w.names()) tensors[name] = w.get(name);
    writeSafetensors(path, tensors);
  }
  return path;
}

interface WorkerResult {
  imagesPerSecond: number;
  peakRssMB: number;
  /** With vsPlain: median speed ratio to plain encoding, measured round by round in one process. */
  ofPlain?: number;
}

function worker(mode: string, ckpt: string, batch = 8, repeats = 3, vsPlain = false, family: 'clip' | 'siglip' = 'clip'): WorkerResult {
  const argv = ['--import', 'tsx', join(here, 'worker.ts'), family, mode, ckpt, String(batch), String(repeats), ...(vsPlain ? ['--vs-plain'] : [])];
  const out = execFileSync(process.execPath, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out.trim().split('\n').pop()!);
}

/** encodeImages on a random full-size ViT-B-16, and (decompose) the decomposition's costs as shares of it. */
async function encodeAndDecompose(decompose: boolean): Promise<void> {
  const rate = await matmulRate();
  // ViT-B/16 at 224 px: ≈ 17.6 G multiply-adds per image.
  const FLOP_PER_IMAGE = 2 * 17.58e9;
  // A probe, not a ceiling: the machine's speed drifts, and fused kernels can beat the probe's MatMul.
  console.log(`machine: onnxruntime MatMul probe ${rate.toFixed(0)} GFLOP/s ≈ ${((rate * 1e9) / FLOP_PER_IMAGE).toFixed(2)} ViT-B-16 images/s if every multiply-add ran at that rate`);
  const ckpt = checkpoint();
  const plain = worker('encode', ckpt);
  console.log(`encodeImages (random ViT-B-16, batch 8): ${plain.imagesPerSecond.toFixed(2)} images/s, ${((plain.imagesPerSecond / ((rate * 1e9) / FLOP_PER_IMAGE)) * 100).toFixed(0)}% of the probe's rate (target ≥ 4 images/s; reference PyTorch here: 2.8)`);
  if (!decompose) return;
  // Speed as a share of plain comes from rounds alternating with plain in one process; peak RSS
  // from a process that runs the mode alone.
  const row = (label: string, mode: string, target: string, repeats = 3) => {
    const alone = worker(mode, ckpt, 8, repeats);
    const vs = worker(mode, ckpt, 8, repeats + 2, true);
    console.log(`${label.padEnd(34)} ${vs.imagesPerSecond.toFixed(2).padStart(6)} images/s  ${(vs.ofPlain! * 100).toFixed(0).padStart(4)}% of plain  peak RSS ${alone.peakRssMB.toFixed(0)} MB   (${target})`);
  };
  console.log(`${'plain encodeImages'.padEnd(34)} ${plain.imagesPerSecond.toFixed(2).padStart(6)} images/s   100% of plain  peak RSS ${plain.peakRssMB.toFixed(0)} MB   (baseline)`);
  row('per-head decomposition', 'heads', 'target ≥ 90% of plain; reference 2.0 images/s');
  row('per-token maps, 10 texts', 'maps10', 'target ≥ 75% of plain, RSS < 2 GB; reference per-token 0.04 images/s, 14.7 GB');
  row('full spatial [B,L,N,H,d]', 'spatial', 'target ≥ 1 image/s', 1);
}

if (suites.has('encode') || suites.has('decompose')) await encodeAndDecompose(suites.has('decompose'));
if (suites.has('siglip')) {
  // A random full-size google/siglip-base-patch16-224 vision tower (no CLS token, pooling head).
  const ckpt = checkpoint('siglip');
  const plain = worker('encode', ckpt, 8, 3, false, 'siglip');
  console.log(`SigLIP base-patch16-224 (random), batch 8; shares of plain measured in rounds alternating with plain in one process`);
  console.log(`${'plain encodeImages'.padEnd(40)} ${plain.imagesPerSecond.toFixed(2).padStart(6)} images/s   100% of plain  peak RSS ${plain.peakRssMB.toFixed(0)} MB   (baseline, same run)`);
  const row = (label: string, mode: string, repeats = 3, batch = 8) => {
    const alone = worker(mode, ckpt, batch, repeats, false, 'siglip');
    const vs = worker(mode, ckpt, batch, repeats + 2, true, 'siglip');
    console.log(`${label.padEnd(40)} ${vs.imagesPerSecond.toFixed(2).padStart(6)} images/s  ${(vs.ofPlain! * 100).toFixed(0).padStart(4)}% of plain  peak RSS ${alone.peakRssMB.toFixed(0)} MB`);
  };
  row('decomposition (attn [B,H,d], mlp, bias)', 'heads');
  row('per-token terms [B,N,H,d]', 'spatial');
  row('per-token maps, 10 texts', 'maps10');
  row("through-layers [B,L,H,H',d] (batch 4)", 'through', 2, 4);
}

if (suites.has('dataset')) {
  // A folder of JPEGs (decoded and preprocessed on worker threads while the model runs) against
  // the same images pre-decoded.
  const ckpt = checkpoint();
  const jpegs = join(here, '../.cache/imagenet-like');
  if (!existsSync(jpegs)) await makeJpegs(jpegs, 1000);
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(here, 'dataset.ts'), ckpt, jpegs, '48', '16', '5'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const r = JSON.parse(out.trim().split('\n').pop()!);
  console.log(`decompose, random ViT-B-16, ${r.images} images, batch ${r.batch} (median of ${r.rounds} alternating rounds):`);
  console.log(`  --pixels (pre-decoded):       ${r.pixelsPerSecond.toFixed(2)} images/s`);
  console.log(`  --dataset (JPEG folder):      ${r.jpegsPerSecond.toFixed(2)} images/s = ${(r.ofPixels * 100).toFixed(1)}% of --pixels (target ≥ 95%; rounds ${r.ratios.map((x: number) => (x * 100).toFixed(0) + '%').join(' ')})`);
}
if (suites.has('pil')) sub('preprocess_pil.ts');
if (suites.has('textspan')) sub('textspan.ts');
if (suites.has('hostile')) sub('hostile.ts');
// Second-order effects of neurons, against the reference's own code when CLIPLENS_SECOND_ORDER_REF names a checkout.
if (suites.has('neurons')) sub('neurons.ts');
if (suites.has('scale')) sub('scale.ts');
