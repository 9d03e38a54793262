// The robustness suite: hostile input of every kind cliplens reads — images, model files, texts and
// flags, stores (kill -9 and corruption included), the explorer (a 13000×13000 upload under a
// memory cap), the hub cache (a misbehaving loopback server). Each case ends in a clear one-line
// error or is handled correctly; the counts per group are printed at the end (see robustness/tally.ts).

import './helpers/env.ts';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import sharp from 'sharp';
import { hugeFlatPng } from './helpers/synthetic_png.ts';
import { explorerCases } from './robustness/explorer.ts';
import { hubCases } from './robustness/hub.ts';
import { imageCases } from './robustness/images.ts';
import { modelCases } from './robustness/models.ts';
import { storeCases } from './robustness/stores.ts';
import { table } from './robustness/tally.ts';
import { textsFlagsCases } from './robustness/texts_flags.ts';

const tmp = mkdtempSync(join(tmpdir(), 'cliplens-robust-'));
/** A labelled folder of 7 images, one of them unreadable (in a batch of 2 with a good one). */
const dataset = join(tmp, 'ds');
const image = join(dataset, 'a', 'img0.png');

before(async () => {
  for (const [k, cls] of ['a', 'b'].entries()) {
    mkdirSync(join(dataset, cls), { recursive: true });
    for (let i = 0; i < 3; i++) {
      const rgb = Buffer.alloc(48 * 40 * 3);
      for (let p = 0; p < 48 * 40; p++) {
        rgb[p * 3 + k] = 100 + ((p * (i + 2)) % 150);
        rgb[p * 3 + 2] = (p * 5 + 40 * i) % 256;
      }
      await sharp(rgb, { raw: { width: 48, height: 40, channels: 3 } }).png().toFile(join(dataset, cls, `img${i}.png`));
    }
  }
  writeFileSync(join(dataset, 'b', 'img1-broken.png'), 'not a png at all');
});

after(() => {
  console.log(table());
  rmSync(tmp, { recursive: true, force: true });
});

/** 13000×13000 single-colour PNGs (0.5 MB each), made once per colour. */
const bigs = new Map<string, Promise<Buffer>>();
const bigPng = (rgb: [number, number, number] = [200, 100, 50]) => {
  const key = rgb.join(',');
  if (!bigs.has(key)) bigs.set(key, hugeFlatPng(13000, 13000, rgb));
  return bigs.get(key)!;
};

imageCases(tmp, () => bigPng());
modelCases(tmp, image);
textsFlagsCases(tmp, image, dataset);
storeCases(tmp, dataset);
explorerCases(bigPng);
hubCases(tmp);
