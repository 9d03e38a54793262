// A small world for the explorer tests: a labelled CSV dataset of generated PNGs, its store made
// with the tiny_a fixture model, a TextSpan JSON, and files outside the dataset root that must
// never be served.

import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { decomposeDataset } from '../../src/decompose/dataset_job.ts';
import { loadDataset } from '../../src/io/datasets.ts';
import type { ClipModel } from '../../src/runtime/clip.ts';
import { loadClip } from '../../src/runtime/load.ts';
import { TINY_A } from './fixtures.ts';

export const SECRET = 'SECRET-DO-NOT-SERVE-7f3a';

type RGB = [number, number, number];

/** A coloured disc or square on a plain or striped background, w×h. */
export async function scenePng(w: number, h: number, fg: RGB, bg: RGB, opts: { square?: boolean; striped?: boolean; cx?: number; cy?: number; r?: number } = {}): Promise<Buffer> {
  const px = Buffer.alloc(w * h * 3);
  const cx = opts.cx ?? w / 2;
  const cy = opts.cy ?? h / 2;
  const r = opts.r ?? Math.min(w, h) / 4;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const inside = opts.square ? Math.abs(x - cx) < r && Math.abs(y - cy) < r : (x - cx) ** 2 + (y - cy) ** 2 < r * r;
      const stripe = opts.striped && Math.floor((x + y) / 8) % 2 === 0;
      const c = inside ? fg : stripe ? ([255 - bg[0], 255 - bg[1], 255 - bg[2]] as RGB) : bg;
      px.set(c, (y * w + x) * 3);
    }
  }
  return sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}

export interface ServeFixture {
  model: ClipModel;
  tmp: string;
  datasetRoot: string;
  storeDir: string;
  textspanFile: string;
  /** Absolute path of a PNG outside the dataset root, and a symlink to it inside. */
  outsideFile: string;
  /** PNG uploads for the tests. */
  uploads: Buffer[];
  n: number;
}

const COLORS: Record<string, RGB> = { red: [220, 30, 40], blue: [30, 60, 220] };

export async function makeServeFixture(tmp: string): Promise<ServeFixture> {
  const model = await loadClip(TINY_A(), { threads: 1 });
  const root = join(tmp, 'ds');
  mkdirSync(join(root, 'images'), { recursive: true });
  const rows = ['path,label,group'];
  let k = 0;
  for (const label of ['red', 'blue']) {
    for (const group of ['plain', 'striped']) {
      for (let v = 0; v < 3; v++) {
        const png = await scenePng(96 + 8 * v, 80 + 4 * k, COLORS[label], [200, 200, 190], { square: v === 1, striped: group === 'striped', cx: 30 + 15 * v, cy: 40, r: 14 + 3 * v });
        const rel = `images/${label}_${group}_${v}.png`;
        writeFileSync(join(root, rel), png);
        rows.push(`${rel},${label},${group}`);
        k++;
      }
    }
  }
  writeFileSync(join(root, 'metadata.csv'), rows.join('\n') + '\n');
  // Outside the root: a file with a PNG signature (so only the path check can stop it) and a link to it.
  const outsideFile = join(tmp, 'outside.png');
  writeFileSync(outsideFile, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from(SECRET)]));
  writeFileSync(join(tmp, 'secret.txt'), SECRET);
  symlinkSync(outsideFile, join(root, 'images', 'link.png'));
  const ds = loadDataset(join(root, 'metadata.csv'));
  const storeDir = join(tmp, 'store');
  await decomposeDataset(model, ds, { storeDir, batchSize: 6 });
  const textspanFile = join(tmp, 'textspan.json');
  const { L, H } = model.dims();
  const pools = [
    ['a red object', 'a crimson colour', 'a warm colour', 'a bright red patch'],
    ['on the left', 'at the top', 'a location in the corner', 'centred'],
    ['a round shape', 'a square shape', 'a circle', 'corners'],
    ['striped background', 'a plain wall', 'a texture', 'a pattern'],
  ];
  const heads = [];
  for (const l of [L - 2, L - 1]) for (let h = 0; h < H; h++) heads.push({ layer: l, head: h, texts: pools[(l + h) % pools.length], varianceExplained: [0.21, 0.35, 0.44, 0.5] });
  writeFileSync(textspanFile, JSON.stringify({ model: model.name, heads }));
  const uploads = [
    await scenePng(160, 120, COLORS.red, [235, 235, 230], { cx: 50, cy: 60, r: 30 }),
    await scenePng(120, 150, COLORS.blue, [40, 40, 40], { square: true, striped: true, cx: 80, cy: 90, r: 25 }),
    await scenePng(64, 64, [30, 160, 60], [250, 250, 250], { r: 20 }),
  ];
  return { model, tmp, datasetRoot: root, storeDir, textspanFile, outsideFile, uploads, n: ds.items.length };
}
