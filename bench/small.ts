// The small pieces that tests used to time, each next to a baseline measured in the same run:
//   preprocess  PIL-exact preprocessing of a 640×480 JPEG vs sharp (libvips) resizing the same image
//   tokenize    BPE tokenisation of 3,500 captions vs lower-casing and splitting the same captions
//   toyworld    generating 1,000 toy-world scenes vs the embedded model encoding them
//   node --import tsx bench/small.ts preprocess|tokenize|toyworld ...

import sharp from 'sharp';
import { decodeImage } from '../src/io/image.ts';
import { preprocessDecoded } from '../src/model/preprocess.ts';
import { assetPath } from '../src/assets.ts';
import { ClipTokenizer } from '../src/model/tokenizer.ts';
import { loadClip } from '../src/runtime/load.ts';
import { generateScenes } from '../src/toyworld/index.ts';
import { scenePixels } from '../src/toyworld_study/data.ts';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function timeMs(f: () => unknown | Promise<unknown>, reps: number): Promise<number> {
  await f();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await f();
    times.push(performance.now() - t0);
  }
  return median(times);
}

async function preprocess(): Promise<void> {
  const w = 640, h = 480;
  const rgb = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 7 + ((i / 3 / w) | 0) * 3) % 256);
  const jpg = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).jpeg().toBuffer();
  const img = await decodeImage(jpg);
  const OPENAI = { imageSize: 224, mean: [0.48145466, 0.4578275, 0.40821073] as [number, number, number], std: [0.26862954, 0.26130258, 0.27577711] as [number, number, number] };
  const ours = await timeMs(() => preprocessDecoded(img, OPENAI), 15);
  const vips = await timeMs(() => sharp(jpg).resize(224, 224, { fit: 'cover', kernel: 'cubic' }).raw().toBuffer(), 15);
  console.log(`preprocess 640×480 JPEG → [3, 224, 224]: ${ours.toFixed(1)} ms (PIL-exact, median of 15); sharp decode+resize+crop of the same JPEG ${vips.toFixed(1)} ms (baseline)`);
}

function tokenize(): void {
  const words = ['a', 'photo', 'of', 'the', 'dog', 'cat', 'red', 'car', 'beach', 'sunset', 'city', 'street', 'people', 'walking', 'café', 'mountains', 'snowy', 'river', 'bird', 'flying'];
  let s = 1;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const texts = Array.from({ length: 3500 }, (_, i) => `${Array.from({ length: 8 + (i % 12) }, () => words[Math.floor(rnd() * words.length)]).join(' ')} #${i}.`);
  const t0 = performance.now();
  ClipTokenizer.fromMergesGz(assetPath('assets', 'bpe_simple_vocab_16e6.txt.gz')).tokenize(texts); // fresh instance: empty BPE cache
  const ms = performance.now() - t0;
  const t1 = performance.now();
  let n = 0;
  for (const t of texts) n += t.toLowerCase().split(/\s+/).length;
  const splitMs = performance.now() - t1;
  console.log(`tokenize 3,500 captions (cold BPE cache): ${ms.toFixed(0)} ms; lower-case + split of the same ${n} words ${splitMs.toFixed(1)} ms (baseline)`);
}

async function toyworld(): Promise<void> {
  const model = await loadClip('toyworld');
  const t0 = performance.now();
  const scenes = generateScenes(1000, 2, { size: model.config.vision.imageSize });
  const genMs = performance.now() - t0;
  const px = scenePixels(model, scenes);
  await model.warm(['vision']);
  const t1 = performance.now();
  await model.encodeImages(px, 64);
  const encMs = performance.now() - t1;
  console.log(`toy world: 1,000 scenes generated in ${genMs.toFixed(0)} ms (${(1e6 / genMs).toFixed(0)} scenes/s); the embedded model encodes them at ${(1e6 / encMs).toFixed(0)} images/s (baseline)`);
  await model.release();
}

for (const what of process.argv.slice(2)) {
  if (what === 'preprocess') await preprocess();
  else if (what === 'tokenize') tokenize();
  else if (what === 'toyworld') await toyworld();
  else throw new Error(`bench/small.ts: unknown part '${what}'`);
}
