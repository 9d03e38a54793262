// Benchmark worker: a folder of JPEGs decomposed into a store (decompose --dataset) against the
// same images pre-decoded (decompose --pixels), on a random ViT-B-16, rounds alternating in one
// process so that the machine's drift is not mistaken for a cost. Prints one JSON line.
//   node --import tsx bench/dataset.ts <vision checkpoint> <jpeg dir> [images] [batch] [rounds]

import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { decomposeDataset } from '../src/decompose/dataset_job.ts';
import { Decomposer } from '../src/decompose/decomposer.ts';
import { loadDataset } from '../src/io/datasets.ts';
import { SafetensorsFile, writeSafetensors } from '../src/io/safetensors.ts';
import { ClipModel } from '../src/runtime/clip.ts';
import { preprocessFiles } from '../src/model/preprocess_model.ts';
import { vitB16Config } from '../test/helpers/random_weights.ts';
import { OpenClipSafetensors } from '../src/model/weights.ts';

const [ckpt, jpegDir, nArg, batchArg, roundsArg] = process.argv.slice(2);
const N = Number(nArg ?? 48);
const batchSize = Number(batchArg ?? 16);
const rounds = Number(roundsArg ?? 3);
const work = mkdtempSync(join(tmpdir(), 'cliplens-dataset-bench-'));
const model = new ClipModel({ name: 'ViT-B-16 (random)', config: vitB16Config(), weights: OpenClipSafetensors.open(ckpt) });

const paths = readdirSync(jpegDir).filter((f) => f.endsWith('.jpg')).sort().slice(0, N).map((f) => resolve(jpegDir, f));
const list = join(work, 'images.txt');
writeFileSync(list, paths.join('\n'));
const ds = loadDataset(list);
const pixelsFile = join(work, 'pixels.safetensors');
writeSafetensors(pixelsFile, { pixel_values: (await preprocessFiles(model.config, paths)).pixels });

/** decompose --pixels FILE -o OUT: read the pixels, decompose in batches, write the terms. */
async function fromPixels(): Promise<void> {
  const f = SafetensorsFile.open(pixelsFile);
  const pixels = f.readF32('pixel_values');
  f.close();
  const res = await new Decomposer(model).decompose(pixels, { batchSize });
  writeSafetensors(join(work, 'out.safetensors'), { attn: res.attn, mlp: res.mlp, image_features: res.imageFeatures, norm: res.norm });
}

/** decompose --dataset LIST --store DIR, into a fresh store each time. */
let storeCount = 0;
async function fromJpegs(): Promise<void> {
  const storeDir = join(work, `store-${storeCount++}`);
  const r = await decomposeDataset(model, ds, { storeDir, batchSize });
  if (r.failed.length || r.processed !== N) throw new Error(`dataset job processed ${r.processed} of ${N} images (${r.failed[0]?.error ?? ''})`);
  rmSync(storeDir, { recursive: true, force: true });
}

const timed = async (f: () => Promise<void>) => {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

try {
  await fromPixels(); // warm-up: graph build, pre-packing, worker start
  await fromJpegs();
  const pixelRates: number[] = [];
  const jpegRates: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const tp = await timed(fromPixels);
    const tj = await timed(fromJpegs);
    pixelRates.push(N / tp);
    jpegRates.push(N / tj);
    ratios.push(tp / tj);
  }
  console.log(JSON.stringify({ images: N, batch: batchSize, rounds, pixelsPerSecond: median(pixelRates), jpegsPerSecond: median(jpegRates), ofPixels: median(ratios), ratios }));
} finally {
  rmSync(work, { recursive: true, force: true });
}
