// npm run bench [-- suite ...]   suites: encode (default), decompose, textspan, all
// Every speed is printed next to a baseline measured in the same run.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { batchedMatmul } from '../src/graph/matmul.ts';
import { writeSafetensors } from '../src/io/safetensors.ts';
import { randomClipWeights, vitB16Config } from '../src/model/random.ts';
import type { F32 } from '../src/tensor.ts';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const suites = new Set(args.length ? (args.includes('all') ? ['encode', 'decompose', 'textspan'] : args) : ['encode']);

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

function checkpoint(): string {
  const dir = join(tmpdir(), 'cliplens-bench');
  const path = join(dir, 'vit-b-16-random-vision.safetensors');
  if (!existsSync(path)) {
    mkdirSync(dir, { recursive: true });
    process.stderr.write('writing a random ViT-B-16 vision tower (once)…\n');
    const w = randomClipWeights(vitB16Config(), 1, ['vision']);
    const tensors: Record<string, F32> = {};
    for (const name of w.names()) tensors[name] = w.get(name);
    writeSafetensors(path, tensors);
  }
  return path;
}

function worker(mode: string, ckpt: string, batch = 8, repeats = 3): { imagesPerSecond: number; peakRssMB: number } {
  const out = execFileSync(process.execPath, ['--import', 'tsx', join(here, 'vitb16.ts'), mode, ckpt, String(batch), String(repeats)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out.trim().split('\n').pop()!);
}

const rate = await matmulRate();
// ViT-B/16 at 224 px: ≈ 17.6 G multiply-adds per image.
const FLOP_PER_IMAGE = 2 * 17.58e9;
console.log(`machine: onnxruntime MatMul ${rate.toFixed(0)} GFLOP/s → arithmetic limit ≈ ${(rate * 1e9 / FLOP_PER_IMAGE).toFixed(2)} ViT-B-16 images/s`);

if (suites.has('encode') || suites.has('decompose')) {
  const ckpt = checkpoint();
  const plain = worker('encode', ckpt);
  console.log(`encodeImages (random ViT-B-16, batch 8): ${plain.imagesPerSecond.toFixed(2)} images/s, ${(plain.imagesPerSecond / (rate * 1e9 / FLOP_PER_IMAGE) * 100).toFixed(0)}% of the arithmetic limit (target ≥ 4 images/s; reference PyTorch here: 2.8)`);
  if (suites.has('decompose')) {
    const row = (label: string, r: { imagesPerSecond: number; peakRssMB: number }, target: string) =>
      console.log(`${label.padEnd(34)} ${r.imagesPerSecond.toFixed(2).padStart(6)} images/s  ${(r.imagesPerSecond / plain.imagesPerSecond * 100).toFixed(0).padStart(4)}% of plain  peak RSS ${r.peakRssMB.toFixed(0)} MB   (${target})`);
    row('plain encodeImages', plain, 'baseline');
    row('per-head decomposition', worker('heads', ckpt), 'target ≥ 90% of plain; reference 2.0 images/s');
    row('per-token maps, 10 texts', worker('maps10', ckpt), 'target ≥ 75% of plain, RSS < 2 GB; reference per-token 0.04 images/s, 14.7 GB');
    row('full spatial [B,L,N,H,d]', worker('spatial', ckpt, 8, 1), 'target ≥ 1 image/s');
  }
}

if (suites.has('textspan')) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'textspan.ts'), ...args.filter((a) => a.startsWith('--'))], { stdio: 'inherit' });
  if (r.status !== 0) process.exitCode = r.status ?? 1;
}
