// Second-order effects of all 3072 neurons of MLP block 9 of a randomly initialised ViT-B/32,
// cliplens against the reference's own computation (second_order_lens: SecondOrderPrsNeurons,
// apply_attention_head_and_project_layer_neurons, loop of compute_second_order_neuron_prs.py),
// same weights, same pixels, same machine, in one run. Each side runs in its own process so that
// peak RSS belongs to it alone.
//
//   node --import tsx bench/neurons.ts [--images 8] [--ref-images 2] [--layer 9]
//   CLIPLENS_SECOND_ORDER_REF=/path/to/second_order_lens checkout → also runs the reference
//   (tools/second_order_reference.py; needs Debian's python3-torch, -numpy, -torchvision).

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveThreads } from '../src/graph/session.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.ts';
import { ClipModel } from '../src/runtime/clip.ts';
import { parseOpenClipConfig } from '../src/model/config.ts';
import { normalRng } from '../src/rng.ts';
import { randomClipWeights } from '../test/helpers/random_weights.ts';
import { OpenClipSafetensors } from '../src/model/weights.ts';
import { NeuronEffects } from '../src/neurons/effects.ts';
import { f32, type F32 } from '../src/tensor.ts';

const here = dirname(fileURLToPath(import.meta.url));
const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? def : Number(process.argv[i + 1]);
};
const IMAGES = arg('images', 8);
const REF_IMAGES = arg('ref-images', 2);
const LAYER = arg('layer', 9);

/** open_clip's ViT-B-32.json (GELU: the reference's force_quick_gelu reaches only OpenAI checkpoints). */
const VIT_B_32 = {
  embed_dim: 512,
  vision_cfg: { image_size: 224, layers: 12, width: 768, patch_size: 32 },
  text_cfg: { context_length: 77, vocab_size: 49408, width: 512, heads: 8, layers: 12 },
};

const dir = join(tmpdir(), 'cliplens-bench');
const ckpt = join(dir, 'vit-b-32-random-vision.safetensors');
const pixelsFile = join(dir, `vit-b-32-pixels-${IMAGES}.safetensors`);

function prepare(): void {
  mkdirSync(dir, { recursive: true });
  const cfg = parseOpenClipConfig(VIT_B_32);
  if (!existsSync(ckpt)) {
    process.stderr.write('writing a random ViT-B-32 vision tower (once)…\n');
    const w = randomClipWeights(cfg, 1, ['vision']);
    const tensors: Record<string, F32> = {};
    for (const name of w.names()) tensors[name] = w.get(name);
    writeSafetensors(ckpt, tensors);
  }
  if (!existsSync(pixelsFile)) {
    const rng = normalRng(7);
    const px = f32([IMAGES, 3, 224, 224]);
    for (let i = 0; i < px.data.length; i++) px.data[i] = rng();
    writeSafetensors(pixelsFile, { pixel_values: px });
  }
}

/** Child process: cliplens on `images` images → one JSON line. */
async function cliplensWorker(): Promise<void> {
  const model = new ClipModel({ name: 'ViT-B-32 (random)', config: parseOpenClipConfig(VIT_B_32), weights: OpenClipSafetensors.open(ckpt) });
  const px = readSafetensors(pixelsFile).get('pixel_values')!;
  const pixels = f32(px.shape, px.data as Float32Array);
  const ne = new NeuronEffects(model, LAYER);
  let t0 = performance.now();
  await ne.getReadout();
  const foldSeconds = (performance.now() - t0) / 1000;
  await ne.effects(f32([1, 3, 224, 224], pixels.data.slice(0, 3 * 224 * 224)), 1); // warm-up: graph build, pre-packing
  t0 = performance.now();
  const E = await ne.effects(pixels, 8);
  const seconds = (performance.now() - t0) / 1000;
  const out = join(dir, 'cliplens-effects.safetensors');
  const keep = Math.min(REF_IMAGES, IMAGES);
  writeSafetensors(out, { second_order: f32([keep, E.shape[1], E.shape[2]], E.data.slice(0, keep * E.shape[1] * E.shape[2])) });
  console.log(JSON.stringify({ images: IMAGES, secondsPerImage: seconds / IMAGES, foldSeconds, peakRssMB: process.resourceUsage().maxRSS / 1024, effects: out }));
}

function maxAbsDiff(a: Float32Array, b: Float32Array, n: number): number {
  let m = 0;
  for (let i = 0; i < n; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function main(): Promise<void> {
  if (process.argv.includes('--worker')) return cliplensWorker();
  prepare();
  const run = (cmd: string, args: string[]) => JSON.parse(execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 }).trim().split('\n').pop()!);
  const ours = run(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--worker', '--images', String(IMAGES), '--ref-images', String(REF_IMAGES), '--layer', String(LAYER)]);
  console.log(`cliplens: second-order effects of all neurons of block ${LAYER}, random ViT-B/32, ${ours.images} images: ${ours.secondsPerImage.toFixed(3)} s/image (${(1 / ours.secondsPerImage).toFixed(2)} images/s), peak RSS ${ours.peakRssMB.toFixed(0)} MB; readout folded once in ${ours.foldSeconds.toFixed(2)} s`);
  const ref = process.env.CLIPLENS_SECOND_ORDER_REF;
  if (!ref) {
    console.log('reference: not run (set CLIPLENS_SECOND_ORDER_REF to a checkout of github.com/yossigandelsman/second_order_lens; needs python3-torch, python3-numpy, python3-torchvision)');
    return;
  }
  const refOut = join(dir, 'reference-effects.safetensors');
  const python = process.env.CLIPLENS_PYTHON ?? '/usr/bin/python3';
  // Same thread count as ONNX Runtime uses (PyTorch's default may be fewer).
  const threads = String(resolveThreads());
  const theirs = run(python, [join(here, '..', 'tools', 'second_order_reference.py'), '--repo', ref, '--checkpoint', ckpt, '--pixels', pixelsFile, '--images', String(REF_IMAGES), '--layer', String(LAYER), '--threads', threads, '--out', refOut]);
  const a = readSafetensors(ours.effects).get('second_order')!.data as Float32Array;
  const b = readSafetensors(refOut).get('second_order')!.data as Float32Array;
  const n = theirs.images * 3072 * 512;
  let scale = 0;
  for (let i = 0; i < n; i++) scale = Math.max(scale, Math.abs(b[i]));
  console.log(`reference (second_order_lens, PyTorch ${theirs.torch}, ${theirs.threads} threads), ${theirs.images} images: ${theirs.secondsPerImage.toFixed(2)} s/image, peak RSS ${theirs.peakRssMB.toFixed(0)} MB`);
  console.log(`speed-up ${(theirs.secondsPerImage / ours.secondsPerImage).toFixed(0)}× (goal ≥ 50×); max |cliplens − reference| on the shared images ${maxAbsDiff(a, b, n).toExponential(2)} (largest |effect| ${scale.toExponential(2)})`);
}

await main();
