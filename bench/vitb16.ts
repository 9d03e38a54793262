// Benchmark worker: one measurement on a randomly initialised full-size ViT-B-16, in its own
// process so that peak RSS belongs to that measurement alone. Prints one JSON line.
//   node --import tsx bench/vitb16.ts <mode> <checkpoint> [batch] [repeats] [--vs-plain]
// modes: encode | heads | maps10 | spatial
// --vs-plain alternates plain encoding and the mode, round by round, and reports the median of the
// per-round speed ratios: machine speed drifts by ±10% between runs, which separate processes
// would mistake for the mode's cost.

import { Decomposer } from '../src/decompose/decomposer.ts';
import { ClipModel } from '../src/runtime/clip.ts';
import { normalRng } from '../src/rng.ts';
import { vitB16Config } from '../test/helpers/random_weights.ts';
import { OpenClipSafetensors } from '../src/model/weights.ts';
import { f32 } from '../src/tensor.ts';

const [mode, ckpt, batchArg, repArg, vsArg] = process.argv.slice(2);
const B = Number(batchArg ?? 8);
const repeats = Number(repArg ?? 3);
const cfg = vitB16Config();
const model = new ClipModel({ name: 'ViT-B-16 (random)', config: cfg, weights: OpenClipSafetensors.open(ckpt) });
const dec = new Decomposer(model);
const rng = normalRng(5);
const px = f32([B, 3, 224, 224]);
for (let i = 0; i < px.data.length; i++) px.data[i] = rng();
const texts = f32([10, cfg.embedDim]);
for (let i = 0; i < texts.data.length; i++) texts.data[i] = rng() / Math.sqrt(cfg.embedDim);

const run = async () => {
  switch (mode) {
    case 'encode': return void (await model.encodeImages(px, B));
    case 'heads': return void (await dec.decompose(px, { batchSize: B }));
    case 'maps10': return void (await dec.textMaps(px, texts, { batchSize: B }));
    case 'spatial': return void (await dec.decompose(px, { spatial: true, batchSize: B }));
    default: throw new Error(`unknown mode ${mode}`);
  }
};
const timed = async (f: () => Promise<void>) => {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const plain = async () => void (await model.encodeImages(px, B));

await run(); // warm-up: graph build, pre-packing, readout folding
if (vsArg === '--vs-plain') {
  await plain();
  const ratios: number[] = [];
  const rates: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const tp = await timed(plain);
    const tm = await timed(run);
    ratios.push(tp / tm);
    rates.push(B / tm);
  }
  console.log(JSON.stringify({ mode, batch: B, imagesPerSecond: median(rates), ofPlain: median(ratios), peakRssMB: process.resourceUsage().maxRSS / 1024 }));
} else {
  let seconds = 0;
  for (let i = 0; i < repeats; i++) seconds += await timed(run);
  seconds /= repeats;
  console.log(JSON.stringify({ mode, batch: B, imagesPerSecond: B / seconds, peakRssMB: process.resourceUsage().maxRSS / 1024 }));
}
