// Writes a file in the layout of ImageNet-segmentation's gtsegs_ijcv.mat (MATLAB v7.3: a
// 512-byte MATLAB header, then HDF5 with /value/img and /value/gt as [N, 1] object references;
// arrays stored with MATLAB's reversed dims) from RGB [H, W, 3] images and [H, W] masks.

import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { File, ready, type Reference } from 'h5wasm/node';

export interface MatScene {
  width: number;
  height: number;
  /** [H, W, 3] */
  rgb: Uint8Array;
  /** [H, W] 0/1 */
  mask: Uint8Array;
}

export async function writeSegmentationMat(path: string, scenes: MatScene[], opts: { grayIndex?: number } = {}): Promise<void> {
  await ready;
  const tmp = `${path}.h5-tmp`;
  const f = new File(tmp, 'w');
  const refs = f.create_group('#refs#');
  const img: Reference[] = [];
  const gt: Reference[] = [];
  scenes.forEach((s, i) => {
    const { width: W, height: H } = s;
    const gray = opts.grayIndex === i;
    // MATLAB column-major img(H, W, 3) appears in HDF5 as [3, W, H].
    const data = new Uint8Array((gray ? 1 : 3) * W * H);
    for (let c = 0; c < (gray ? 1 : 3); c++) for (let x = 0; x < W; x++) for (let y = 0; y < H; y++) data[c * W * H + x * H + y] = s.rgb[(y * W + x) * 3 + c];
    img.push(refs.create_dataset({ name: `img${i}`, data, shape: gray ? [W, H] : [3, W, H], dtype: '<B' }).create_reference());
    const m = new Uint8Array(W * H);
    for (let x = 0; x < W; x++) for (let y = 0; y < H; y++) m[x * H + y] = s.mask[y * W + x];
    const mask = refs.create_dataset({ name: `gt${i}`, data: m, shape: [W, H], dtype: '<B' });
    // gt{i} is a cell holding the mask.
    gt.push(refs.create_dataset({ name: `gtcell${i}`, data: [mask.create_reference()], shape: [1, 1] }).create_reference());
  });
  const value = f.create_group('value');
  value.create_dataset({ name: 'img', data: img, shape: [scenes.length, 1] });
  value.create_dataset({ name: 'gt', data: gt, shape: [scenes.length, 1] });
  f.close();
  const header = Buffer.alloc(512);
  header.write('MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Fri Nov 27 00:00:00 2026 HDF5 schema 1.00 .', 'latin1');
  header.writeUInt16LE(0x0200, 124);
  header.write('IM', 126, 'latin1');
  writeFileSync(path, Buffer.concat([header, readFileSync(tmp)]));
  rmSync(tmp, { force: true });
}
