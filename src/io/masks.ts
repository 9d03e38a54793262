// Ground-truth masks for segmentation: a folder of mask images matched to dataset images by file
// stem, binarised and brought to the model's input geometry (shorter side resized, centre crop)
// exactly as the images are, so mask pixel (y, x) lies under image pixel (y, x).

import { existsSync, openSync, readSync, closeSync, readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { IMAGE_EXTENSIONS } from './datasets.ts';
import { decodeImage } from './image.ts';
import { resizeCropGeometry } from './resample.ts';
import { MaskError } from '../errors.ts';
import { pathProblem } from './files.ts';

/** 1 = foreground, row-major [height, width]. */
export interface BinaryMask {
  width: number;
  height: number;
  data: Uint8Array;
}

/**
 * Decode a mask image. Foreground = any colour channel above 0 when the mask only holds 0/1
 * values, else above 127 (so both 0/1 label PNGs and 0/255 black-and-white masks work; alpha is
 * ignored).
 */
export async function readMask(path: string): Promise<BinaryMask> {
  const why = pathProblem(path);
  if (why) throw new MaskError(`mask ${path} ${why}`);
  let img;
  try {
    img = await decodeImage(path);
  } catch (e) {
    throw new MaskError(`mask ${path}: ${(e as Error).message.split('\n')[0]}`);
  }
  const { width, height, channels, data } = img;
  const colour = img.mode === 'LA' || channels === 1 ? 1 : 3;
  let max = 0;
  for (let p = 0; p < width * height; p++) for (let c = 0; c < colour; c++) max = Math.max(max, data[p * channels + c]);
  const thr = max <= 1 ? 0 : 127;
  const out = new Uint8Array(width * height);
  for (let p = 0; p < width * height; p++) {
    let fg = 0;
    for (let c = 0; c < colour; c++) if (data[p * channels + c] > thr) fg = 1;
    out[p] = fg;
  }
  return { width, height, data: out };
}

/** Mask files of a folder by file stem ("img_001.png" → "img_001"). */
export function maskFolder(dir: string): Map<string, string> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new MaskError(`masks folder ${dir} does not exist`);
  const out = new Map<string, string>();
  for (const f of readdirSync(dir).sort()) {
    if (f.startsWith('.') || !IMAGE_EXTENSIONS.has(extname(f).toLowerCase())) continue;
    const stem = basename(f, extname(f));
    if (out.has(stem)) throw new MaskError(`masks folder ${dir} has two masks for '${stem}'`);
    out.set(stem, join(dir, f));
  }
  if (!out.size) throw new MaskError(`masks folder ${dir} has no mask images`);
  return out;
}

/** File stem of a path or dataset id. */
export function stemOf(path: string): string {
  return basename(path, extname(path));
}

/**
 * The mask under the model's preprocessing: shorter side to `size` (nearest neighbour, so it
 * stays binary), centre crop size×size — the geometry of resizeCropGeometry.
 */
export function fitMask(mask: BinaryMask, size: number): BinaryMask {
  const g = resizeCropGeometry(mask.width, mask.height, size);
  const out = new Uint8Array(size * size);
  const sx = mask.width / g.resizedW, sy = mask.height / g.resizedH;
  for (let y = 0; y < size; y++) {
    const yy = Math.min(mask.height - 1, Math.floor((y + g.top + 0.5) * sy));
    for (let x = 0; x < size; x++) {
      const xx = Math.min(mask.width - 1, Math.floor((x + g.left + 0.5) * sx));
      out[y * size + x] = mask.data[yy * mask.width + xx];
    }
  }
  return { width: size, height: size, data: out };
}

/** What kind of .mat file this is (v7.3 files are HDF5 after a 512-byte header). */
export function matKind(path: string): 'v5' | 'v7.3' | 'unknown' {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(128);
    readSync(fd, head, 0, 128, 0);
    const text = head.toString('latin1', 0, 116);
    if (/MATLAB 7\.3 MAT-file/.test(text)) return 'v7.3';
    if (/^MATLAB 5\.0 MAT-file/.test(text)) return 'v5';
    const sig = Buffer.alloc(8);
    readSync(fd, sig, 0, 8, 512);
    if (sig.equals(Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'v7.3';
    return 'unknown';
  } finally {
    closeSync(fd);
  }
}

/** A clear one-line error for masks given as a file rather than a folder. */
export function matUnsupported(path: string): MaskError {
  if (!existsSync(path)) return new MaskError(`masks file ${path} does not exist`);
  const kind = matKind(path);
  if (kind === 'v7.3') return new MaskError(`${path} is a MATLAB v7.3 (HDF5) file, not a masks folder; if it is ImageNet-segmentation's gtsegs_ijcv.mat, pass it as --mat ${path} (it holds the images and the masks)`);
  if (kind === 'v5') return new MaskError(`${path} is a MATLAB v5 file, which cliplens cannot read; give a folder of PNG masks with the same file stems as the images`);
  return new MaskError(`${path} is not a masks folder; give a folder of PNG masks with the same file stems as the images`);
}
