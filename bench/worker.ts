// Benchmark worker: one measurement on a randomly initialised full-size model (ViT-B-16, or
// siglip-base-patch16-224), in its own process so that peak RSS belongs to that measurement alone.
// Prints one JSON line.
//   node --import tsx bench/worker.ts <clip|siglip> <mode> <checkpoint> [batch] [repeats] [--vs-plain]
// modes: encode | heads | maps10 | spatial | through (SigLIP's through-layers split)

import { decomposerFor } from '../src/decompose/decomposers.ts';
import { SiglipDecomposer } from '../src/decompose/siglip.ts';
import { ClipModel } from '../src/runtime/clip.ts';
import { normalRng } from '../src/rng.ts';
import { vitB16Config } from '../test/helpers/random_weights.ts';
import { siglipBase224Config } from '../test/helpers/siglip_random.ts';
import { OpenClipSafetensors } from '../src/model/weights.ts';
import { f32 } from '../src/tensor.ts';
import { measure } from './harness.ts';

const [family, mode, ckpt, batchArg, repArg, vsArg] = process.argv.slice(2);
const B = Number(batchArg ?? 8);
const repeats = Number(repArg ?? 3);
const cfg = family === 'siglip' ? siglipBase224Config() : vitB16Config();
const model = new ClipModel({ name: `${family === 'siglip' ? 'siglip-base-patch16-224' : 'ViT-B-16'} (random)`, config: cfg, weights: OpenClipSafetensors.open(ckpt) });
const dec = decomposerFor(model);
const rng = normalRng(5);
const S = cfg.vision.imageSize;
const px = f32([B, 3, S, S]);
for (let i = 0; i < px.data.length; i++) px.data[i] = rng();
const texts = f32([10, cfg.embedDim]);
for (let i = 0; i < texts.data.length; i++) texts.data[i] = rng() / Math.sqrt(cfg.embedDim);

const run = async () => {
  switch (mode) {
    case 'encode': return void (await model.encodeImages(px, B));
    case 'heads': return void (await dec.decompose(px, { batchSize: B }));
    case 'maps10': return void (await dec.textMaps(px, texts, { batchSize: B }));
    case 'spatial': return void (await dec.decompose(px, { spatial: true, batchSize: B }));
    case 'through':
      if (!(dec instanceof SiglipDecomposer)) throw new Error('mode through needs a SigLIP model');
      return void (await dec.throughLayers(px, { batchSize: B }));
    default: throw new Error(`unknown mode ${mode}`);
  }
};

await measure(mode, B, repeats, vsArg === '--vs-plain', run, async () => void (await model.encodeImages(px, B)));
