// Write a folder of ImageNet-like JPEGs for the preprocessing and dataset benchmarks.
//   node --import tsx tools/make_jpegs.ts [--out .cache/imagenet-like] [--n 1000] [--seed 1]
// Sizes follow ImageNet validation's mix (mostly 500×375 and 500×333, portraits, some larger);
// content is cut from the repository's test photos (random crop, flip, tint, blur or sharpen) so
// that the files have a photo's entropy plus grain (~60–200 KB at quality 85–95, 4:2:0), which decode time
// depends on. Deterministic for a seed. Existing files are kept (delete the folder to redo).

import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { mulberry32 } from '../src/rng.ts';

const args = process.argv.slice(2);
const flag = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};

/** [width, height, weight] */
const SIZES: [number, number, number][] = [
  [500, 375, 40], [500, 333, 20], [375, 500, 10], [333, 500, 6], [500, 500, 5], [500, 400, 4],
  [640, 480, 4], [500, 281, 3], [400, 300, 3], [800, 600, 2], [1024, 768, 2], [300, 225, 1],
];
const SOURCES = ['rocket.jpg', 'catdog.png', 'coins.png', 'cell.png'];

export async function makeJpegs(out: string, n: number, seed = 1): Promise<string> {
  mkdirSync(out, { recursive: true });
  const rand = mulberry32(seed);
  const srcDir = resolve(import.meta.dirname, '../test/fixtures/reference/images');
  const sources = await Promise.all(
    SOURCES.map(async (f) => {
      const { data, info } = await sharp(join(srcDir, f)).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
      return { data, width: info.width, height: info.height, channels: info.channels };
    }),
  );
  const totalWeight = SIZES.reduce((a, s) => a + s[2], 0);
  for (let i = 0; i < n; i++) {
    // draw everything first so the sequence does not depend on which files already exist
    let pick = rand() * totalWeight;
    const [W, H] = SIZES.find((s) => (pick -= s[2]) < 0) ?? SIZES[0];
    const src = sources[Math.floor(rand() * sources.length)];
    const cw = Math.max(32, Math.floor(src.width * (0.35 + 0.65 * rand())));
    const ch = Math.max(32, Math.floor(src.height * (0.35 + 0.65 * rand())));
    const left = Math.floor(rand() * (src.width - cw + 1));
    const top = Math.floor(rand() * (src.height - ch + 1));
    const flip = rand() < 0.5;
    const hue = Math.floor(rand() * 360);
    const brightness = 0.7 + 0.6 * rand();
    const saturation = 0.5 + rand();
    const style = rand();
    const amount = rand();
    const quality = 85 + Math.floor(rand() * 11);
    const grain = 6 + 18 * rand(); // film grain / texture: photos are not smooth
    const noiseSeed = Math.floor(rand() * 2 ** 32);
    const file = join(out, `${String(i).padStart(5, '0')}.jpg`);
    if (existsSync(file)) continue;
    let img = sharp(src.data, { raw: { width: src.width, height: src.height, channels: src.channels as 3 } })
      .extract({ left, top, width: cw, height: ch })
      .resize(W, H, { fit: 'fill', kernel: 'lanczos3' })
      .modulate({ hue, brightness, saturation });
    if (flip) img = img.flop();
    if (style < 0.25) img = img.blur(0.6 + amount * 1.5);
    else if (style < 0.6) img = img.sharpen({ sigma: 1 + amount });
    const { data } = await img.raw().toBuffer({ resolveWithObject: true });
    const noise = mulberry32(noiseSeed);
    for (let p = 0; p < data.length; p++) {
      const v = data[p] + grain * (noise() + noise() + noise() - 1.5);
      data[p] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
    }
    await sharp(data, { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality, chromaSubsampling: '4:2:0' }).toFile(file);
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = resolve(flag('out', '.cache/imagenet-like'));
  const n = Number(flag('n', '1000'));
  await makeJpegs(out, n, Number(flag('seed', '1')));
  process.stderr.write(`${n} JPEGs in ${out}\n`);
}
