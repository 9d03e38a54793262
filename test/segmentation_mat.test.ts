// gtsegs_ijcv.mat (ImageNet-segmentation, MATLAB v7.3 / HDF5 with object references): images and
// masks come back in [H, W] order; broken or foreign files give one-line errors naming the problem.

import './helpers/env.ts';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { File, ready } from 'h5wasm/node';
import { openSegmentationMat } from '../src/io/segmentation_mat.ts';
import { writeSegmentationMat, type MatScene } from './helpers/segmentation_mat.ts';

const tmp = mkdtempSync(join(tmpdir(), 'cliplens-mat-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const p = (f: string) => join(tmp, f);

/** W ≠ H and every pixel distinct, so any transposition or plane mix-up shows. */
function scene(W: number, H: number, seed: number): MatScene {
  const rgb = new Uint8Array(W * H * 3);
  const mask = new Uint8Array(W * H);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      rgb.set([(x * 13 + seed) & 255, (y * 29 + seed) & 255, (x * 7 + y * 3 + seed) & 255], (y * W + x) * 3);
      mask[y * W + x] = x > y + seed ? 1 : 0;
    }
  return { width: W, height: H, rgb, mask };
}

const scenes = [scene(7, 5, 0), scene(4, 9, 1), scene(6, 6, 2)];

before(async () => {
  await writeSegmentationMat(p('gt.mat'), scenes, { grayIndex: 2 });
});

describe('reading gtsegs_ijcv.mat', () => {
  test('images and masks in row-major [H, W] order, grey images as RGB', async () => {
    const mat = await openSegmentationMat(p('gt.mat'));
    try {
      assert.equal(mat.length, 3);
      for (const [i, s] of scenes.entries()) {
        const img = mat.image(i);
        assert.deepEqual([img.width, img.height, img.channels, img.mode], [s.width, s.height, 3, 'RGB']);
        if (i === 2) {
          // Stored as one plane: the red plane, repeated.
          for (let k = 0; k < s.width * s.height; k++) assert.deepEqual([...img.data.subarray(k * 3, k * 3 + 3)], [s.rgb[k * 3], s.rgb[k * 3], s.rgb[k * 3]]);
        } else assert.deepEqual(img.data, s.rgb);
        const m = mat.mask(i);
        assert.deepEqual([m.width, m.height], [s.width, s.height]);
        assert.deepEqual(m.data, s.mask);
      }
      assert.throws(() => mat.image(3), /index 3 outside 0\.\.2/);
    } finally {
      mat.close();
    }
  });

  test('broken and foreign files are refused with one line naming the problem', async () => {
    const raw = readFileSync(p('gt.mat'));
    writeFileSync(p('trunc.mat'), raw.subarray(0, 1500));
    writeFileSync(p('v5.mat'), Buffer.from('MATLAB 5.0 MAT-file, Platform: GLNXA64'.padEnd(128, ' ')));
    writeFileSync(p('text.mat'), 'hello');
    writeFileSync(p('hdr-only.mat'), Buffer.concat([Buffer.from('MATLAB 7.3 MAT-file, Platform: GLNXA64'.padEnd(128, ' ')), Buffer.alloc(600)]));
    await ready;
    const other = new File(p('other.h5'), 'w');
    other.create_dataset({ name: 'x', data: new Float32Array([1, 2]) });
    const v = other.create_group('value');
    v.create_dataset({ name: 'img', data: new Uint8Array([1, 2]) });
    other.close();
    writeFileSync(p('other.mat'), Buffer.concat([Buffer.from('MATLAB 7.3 MAT-file'.padEnd(512, ' ')), readFileSync(p('other.h5'))]));
    const bad: [string, RegExp][] = [
      ['missing.mat', /missing\.mat does not exist/],
      ['trunc.mat', /trunc\.mat: cannot open as HDF5 \(.*truncated file/],
      ['v5.mat', /MATLAB v5 file; .*cliplens reads/],
      ['text.mat', /not a MATLAB v7\.3 \(HDF5\) file/],
      ['hdr-only.mat', /hdr-only\.mat: cannot open as HDF5/],
      ['other.mat', /value\/img does not hold object references/],
    ];
    for (const [f, re] of bad) {
      const err = await openSegmentationMat(p(f)).then(
        (m) => (m.close(), undefined),
        (e: Error) => e,
      );
      assert.ok(err, `${f} opened`);
      assert.match(err.message, re, f);
      assert.ok(!err.message.includes('\n'), `${f}: multi-line message: ${err.message}`);
    }
  });

  test('an image over the pixel limit is refused before it is read', async () => {
    const mat = await openSegmentationMat(p('gt.mat'), { maxPixels: 20 });
    try {
      assert.throws(() => mat.image(0), /image 0 has shape \[3, 7, 5\], over the limit of 60 values/);
      assert.throws(() => mat.mask(0), /mask 0 has shape \[7, 5\], over the limit of 20 values/);
    } finally {
      mat.close();
    }
  });
});
