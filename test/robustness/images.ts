// Hostile images: corrupt, truncated, empty, fake, decompression bombs, link loops, and huge
// images under the explorer's pixel budget (shrunk on load, same geometry as the exact pipeline).

import assert from 'node:assert/strict';
import { readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'node:test';
import { deflateSync } from 'node:zlib';
import { budgetSize, decodeImage } from '../../src/io/image.ts';
import { preprocessDecoded } from '../../src/model/preprocess.ts';
import { uploadBudget } from '../../src/server/decode_pool.ts';
import { maxAbsDiff } from '../../src/tensor.ts';
import { referencePath, TINY_A } from '../helpers/fixtures.ts';
import { chunk, makePng, pattern, syntheticPngs } from '../helpers/synthetic_png.ts';
import { cliOneLine, hostile, oneLine } from './tally.ts';

const G = 'images';
const PP = { imageSize: 224, mean: [0.48145466, 0.4578275, 0.40821073] as [number, number, number], std: [0.26862954, 0.26130258, 0.27577711] as [number, number, number] };

/** A smooth w×h RGB image (a photo's spectrum more than a test pattern's). */
function smoothPng(w: number, h: number): Buffer {
  const px = new Int32Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      px[o] = Math.round((255 * x) / w);
      px[o + 1] = Math.round((255 * y) / h);
      px[o + 2] = Math.round(127.5 + 120 * Math.sin((x + 2 * y) / 90));
    }
  }
  return makePng(w, h, 8, 2, 3, px);
}

export function imageCases(tmp: string, bigPng: () => Promise<Buffer>): void {
  describe('images', () => {
    const ok = makePng(45, 31, 8, 2, 3, pattern(45, 31, 3, 1));

    hostile(G, 'garbage after a PNG signature', () => oneLine(decodeImage(Buffer.concat([ok.subarray(0, 8), Buffer.from('garbage garbage garbage')]), 'g.png'), /^g\.png: /));
    hostile(G, 'a PNG cut in half', () => oneLine(decodeImage(ok.subarray(0, ok.length >> 1), 'half.png'), /^half\.png: truncated/));
    hostile(G, 'an empty file', () => oneLine(decodeImage(Buffer.alloc(0), 'empty.png'), /empty file/));
    hostile(G, 'a text file named .png', () => oneLine(decodeImage(Buffer.from('hello, I am not an image\n'), 'fake.png'), /not an image in a supported format/));

    hostile(G, 'a 20000×20000 header over 60 bytes of data (decompression bomb)', () => {
      const ihdr = Buffer.alloc(13);
      ihdr.writeUInt32BE(20000, 0);
      ihdr.writeUInt32BE(20000, 4);
      ihdr[8] = 8;
      ihdr[9] = 2;
      const bomb = Buffer.concat([ok.subarray(0, 8), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(40))), chunk('IEND', new Uint8Array(0))]);
      return oneLine(decodeImage(bomb, 'bomb.png'), /20000x20000 image exceeds the limit of \d+ pixels/);
    });

    hostile(G, 'a symbolic link loop given as an image (CLI)', () => {
      const loop = join(tmp, 'loop.png');
      symlinkSync('loop.png', loop);
      return cliOneLine(['encode', '--model', TINY_A(), loop, '--out', join(tmp, 'never.safetensors')], /image .*loop\.png is a symbolic link loop/);
    });

    hostile(G, 'a 13000×13000 PNG under the explorer budget is shrunk on load and keeps its geometry', async () => {
      const budget = uploadBudget(PP.imageSize);
      const img = await decodeImage(await bigPng(), 'big.png', { budget });
      assert.deepEqual(img.source, { width: 13000, height: 13000 });
      assert.deepEqual({ width: img.width, height: img.height }, budgetSize(13000, 13000, budget));
      assert.ok(img.width * img.height <= budget.pixels && img.width >= PP.imageSize);
      const { u8 } = preprocessDecoded(img, PP);
      // A flat image stays flat: every pixel the model sees is the file's colour.
      for (let i = 0; i < u8.length; i += 3) assert.deepEqual([u8[i], u8[i + 1], u8[i + 2]], [200, 100, 50]);
      return 'handled';
    });

    hostile(G, 'images within the budget decode byte for byte as without it', async () => {
      const inputs: [string, Buffer][] = [...Object.entries(syntheticPngs()), ['rocket.jpg', readFileSync(referencePath('images/rocket.jpg'))], ['cell.png', readFileSync(referencePath('images/cell.png'))]];
      for (const [name, buf] of inputs) {
        const exact = await decodeImage(buf, name);
        const budgeted = await decodeImage(buf, name, { budget: { pixels: exact.width * exact.height, minSide: 8 } });
        assert.deepEqual(budgeted, exact, name);
      }
      return 'handled';
    });

    hostile(G, 'an image over the budget gets the exact pipeline resize and crop, from a shrunk source', async () => {
      const png = smoothPng(1500, 1000);
      const opts = { ...PP, imageSize: 64 };
      const exact = preprocessDecoded(await decodeImage(png, 'p.png'), opts);
      const img = await decodeImage(png, 'p.png', { budget: { pixels: 200_000, minSide: 64 } });
      assert.ok(img.width * img.height <= 200_000 && img.source?.width === 1500);
      const shrunk = preprocessDecoded(img, opts);
      const diff = maxAbsDiff(exact.u8, shrunk.u8);
      assert.ok(diff <= 3, `the shrunk pipeline differs by ${diff} levels`);
      return 'handled';
    });

    hostile(G, 'an image too elongated for the budget', () =>
      oneLine(decodeImage(makePng(5000, 60, 8, 0, 1, new Int32Array(5000 * 60)), 'strip.png', { budget: { pixels: 100_000, minSide: 50 } }), /5000x60 is too elongated to decode within 100000 pixels/),
    );
  });
}
