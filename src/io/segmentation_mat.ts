// The ImageNet-segmentation benchmark file (gtsegs_ijcv.mat, Guillaumin et al.) that the paper's
// segmentation numbers use: MATLAB v7.3, i.e. HDF5 (after a 512-byte MATLAB header) in which
// /value/img[i,0] references image i stored as uint8 [3, W, H] (MATLAB is column-major, so the
// dims are reversed) and /value/gt[i,0] references a 1×1 cell whose entry references mask i as
// [W, H]. Read with h5wasm (libhdf5 compiled to WebAssembly), one image at a time.

import { readFileSync, rmSync } from 'node:fs';
import { Dataset as H5Dataset, File as H5File, Reference as H5Reference, ready as h5ready } from 'h5wasm/node';
import type { DecodedImage } from './image.ts';
import { DEFAULT_MAX_PIXELS } from './image.ts';
import { matKind, type BinaryMask } from './masks.ts';
import { MaskError } from '../errors.ts';
import { atomicWrite, pathProblem } from './files.ts';

export interface SegmentationMat {
  path: string;
  /** Number of (image, mask) pairs. */
  length: number;
  /** Image i as RGB [H, W, 3] (what the reference gets from transpose((2, 1, 0))). */
  image(i: number): DecodedImage;
  /** Mask i as [H, W], foreground = value > 0. */
  mask(i: number): BinaryMask;
  close(): void;
}

let ready: Promise<void> | undefined;

/** Load the wasm module once; make libhdf5 throw its messages instead of printing them. */
function h5(): Promise<void> {
  ready ??= h5ready.then((m) => void m.activate_throwing_error_handler());
  return ready;
}

/** libhdf5's error stack is many lines; its last "#00n: … in F(): reason" line says what went wrong. */
function h5Reason(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const calls = lines.filter((l) => /^#\d+:/.test(l));
  const last = calls.length ? calls[calls.length - 1] : lines[0] ?? 'unknown error';
  return last.replace(/^#\d+:\s*\S+ line \d+ in /, '').slice(0, 300);
}

function isReference(x: unknown): x is H5Reference {
  return x instanceof H5Reference;
}

export async function openSegmentationMat(path: string, opts: { maxPixels?: number } = {}): Promise<SegmentationMat> {
  const why = pathProblem(path);
  if (why) throw new MaskError(`${path} ${why}`);
  const kind = matKind(path);
  if (kind === 'v5') throw new MaskError(`${path} is a MATLAB v5 file; the ImageNet-segmentation file (gtsegs_ijcv.mat) is MATLAB v7.3 (HDF5), which is what cliplens reads`);
  if (kind !== 'v7.3') throw new MaskError(`${path} is not a MATLAB v7.3 (HDF5) file`);
  await h5();
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  let file: H5File;
  try {
    file = new H5File(path, 'r');
  } catch (e) {
    throw new MaskError(`${path}: cannot open as HDF5 (${h5Reason(e)})`);
  }
  const fail = (what: string): never => {
    throw new MaskError(`${path}: ${what}`);
  };
  try {
    const refList = (name: string): H5Reference[] => {
      let d: unknown;
      try {
        d = file.get(name);
      } catch (e) {
        fail(`cannot read ${name} (${h5Reason(e)})`);
      }
      if (!(d instanceof H5Dataset)) return fail(`no dataset ${name}; expected the ImageNet-segmentation layout (/value/img, /value/gt)`);
      const v = readValue(d, name);
      if (!Array.isArray(v) || !v.every(isReference)) return fail(`${name} does not hold object references`);
      return v as H5Reference[];
    };
    const readValue = (d: H5Dataset, what: string): unknown => {
      try {
        return d.value;
      } catch (e) {
        return fail(`cannot read ${what} (${h5Reason(e)})`);
      }
    };
    const deref = (r: H5Reference, what: string): H5Dataset => {
      let d: unknown;
      try {
        d = file.dereference(r);
      } catch (e) {
        fail(`${what}: broken reference (${h5Reason(e)})`);
      }
      if (!(d instanceof H5Dataset)) return fail(`${what}: reference does not point to a dataset`);
      return d;
    };
    /** Follow cell references (a 1×1 cell holds a reference) down to numeric data. */
    const numeric = (r: H5Reference, what: string, maxValues: number): { shape: number[]; data: ArrayLike<number> } => {
      let d = deref(r, what);
      for (let depth = 0; ; depth++) {
        const shape = d.shape ?? [];
        const n = shape.reduce((a, b) => a * b, 1);
        if (d.dtype === 'Reference') {
          if (depth >= 4) return fail(`${what}: references nested too deep`);
          if (n < 1) return fail(`${what}: empty cell`);
          const v = readValue(d, what);
          const first = Array.isArray(v) ? v[0] : undefined;
          if (!isReference(first)) return fail(`${what}: cell without a reference`);
          d = deref(first, what);
          continue;
        }
        if (n > maxValues) return fail(`${what} has shape [${shape.join(', ')}], over the limit of ${maxValues} values`);
        const v = readValue(d, what);
        if (!ArrayBuffer.isView(v) || v instanceof DataView || typeof (v as unknown as ArrayLike<unknown>)[0] === 'bigint') return fail(`${what} is not a numeric array (${d.dtype})`);
        return { shape, data: v as unknown as ArrayLike<number> };
      }
    };
    const imgs = refList('value/img');
    const gts = refList('value/gt');
    if (imgs.length !== gts.length) fail(`/value/img has ${imgs.length} entries but /value/gt has ${gts.length}`);
    const check = (i: number) => {
      if (!Number.isInteger(i) || i < 0 || i >= imgs.length) throw new RangeError(`index ${i} outside 0..${imgs.length - 1}`);
    };
    return {
      path,
      length: imgs.length,
      image(i) {
        check(i);
        const what = `image ${i}`;
        const { shape, data } = numeric(imgs[i], what, 3 * maxPixels);
        // [3, W, H] colour or [W, H] grey.
        if (!(shape.length === 3 && shape[0] === 3) && shape.length !== 2) fail(`${what} has shape [${shape.join(', ')}], expected [3, W, H] or [W, H]`);
        const [W, H] = shape.length === 3 ? [shape[1], shape[2]] : [shape[0], shape[1]];
        if (W < 1 || H < 1) fail(`${what} is empty`);
        if (!(data instanceof Uint8Array)) fail(`${what} is not uint8`);
        const planes = shape.length === 3 ? 3 : 1;
        const out = new Uint8Array(W * H * 3);
        for (let y = 0; y < H; y++)
          for (let x = 0; x < W; x++)
            for (let c = 0; c < 3; c++) out[(y * W + x) * 3 + c] = data[(planes === 3 ? c * W * H : 0) + x * H + y];
        return { width: W, height: H, channels: 3, mode: 'RGB', data: out, format: 'mat' };
      },
      mask(i) {
        check(i);
        const what = `mask ${i}`;
        const { shape, data } = numeric(gts[i], what, maxPixels);
        if (shape.length !== 2) fail(`${what} has shape [${shape.join(', ')}], expected [W, H]`);
        const [W, H] = shape;
        const out = new Uint8Array(W * H);
        for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) out[y * W + x] = data[x * H + y] > 0 ? 1 : 0;
        return { width: W, height: H, data: out };
      },
      close: () => file.close(),
    };
  } catch (e) {
    file.close();
    throw e;
  }
}

export interface MatScene {
  width: number;
  height: number;
  /** [H, W, 3] */
  rgb: Uint8Array;
  /** [H, W] 0/1 */
  mask: Uint8Array;
}

/**
 * Write (image, mask) pairs in gtsegs_ijcv.mat's layout (what openSegmentationMat reads): the
 * toy world's stand-in for ImageNet-segmentation, and test files. `grayIndex` stores that image
 * as one channel (the real file has such images).
 */
export async function writeSegmentationMat(path: string, scenes: MatScene[], opts: { grayIndex?: number } = {}): Promise<void> {
  await h5();
  const tmp = `${path}.h5-tmp`;
  const f = new H5File(tmp, 'w');
  const refs = f.create_group('#refs#');
  const img: H5Reference[] = [];
  const gt: H5Reference[] = [];
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
  try {
    atomicWrite(path, Buffer.concat([header, readFileSync(tmp)]), 'segmentation file');
  } finally {
    rmSync(tmp, { force: true });
  }
}
