// open_clip's eval transform as the reference runs it (torchvision 0.14 on PIL 9.4):
// Resize(S, BICUBIC) of the shorter side -> CenterCrop(S) -> convert('RGB') -> ToTensor -> Normalize;
// with resize mode 'squash' (open_clip's SigLIP) Resize((S, S)) and no crop.
// transformers' slow image processors (pipeline 'hf', SigLIP's SiglipImageProcessor):
// convert('RGB') -> PIL resize((S, S), resample) -> float32(float64(u8) * rescale_factor) -> (x - mean) / std in float32.

import { convertToRGB, decodeImage, resizeImage, type DecodeOptions, type DecodedImage } from '../io/image.ts';
import { resizeCropGeometry } from '../io/resample.ts';
import type { Interpolation } from './config.ts';

export interface PreprocessOptions {
  imageSize: number;
  mean: [number, number, number];
  std: [number, number, number];
  /** Default 'shortest' (resize the shorter side, centre-crop). */
  resizeMode?: 'shortest' | 'squash';
  /** Default 'bicubic'. */
  interpolation?: Interpolation;
  /** Default 'open_clip'. */
  pipeline?: 'open_clip' | 'hf';
  /** pipeline 'hf': transformers' rescale_factor (default 1/255). */
  rescaleFactor?: number;
}

function checkOptions(opts: PreprocessOptions): void {
  if (!Number.isInteger(opts.imageSize) || opts.imageSize < 1) throw new RangeError(`preprocess: imageSize must be a positive integer, got ${opts.imageSize}`);
  if (opts.mean?.length !== 3 || opts.std?.length !== 3) throw new RangeError('preprocess: mean and std need 3 values each');
  if (opts.std.some((s) => !(s > 0))) throw new RangeError(`preprocess: std must be positive, got ${JSON.stringify(opts.std)}`);
}

/** HWC uint8 RGB → CHW float32 through a per-byte table: ((value(u) − mean) / std) in float32. */
function normalizeBy(value: (u: number) => number, u8: Uint8Array, size: number, mean: readonly number[], std: readonly number[], out: Float32Array, offset: number): Float32Array {
  const plane = size * size;
  const f = Math.fround;
  for (let c = 0; c < 3; c++) {
    const m = f(mean[c]);
    const s = f(std[c]);
    const lut = new Float32Array(256);
    for (let u = 0; u < 256; u++) lut[u] = f(f(value(u) - m) / s);
    const base = offset + c * plane;
    for (let i = 0; i < plane; i++) out[base + i] = lut[u8[i * 3 + c]];
  }
  return out;
}

/** Normalise HWC uint8 RGB into CHW float32 as torchvision does, every step in float32 (u / 255). */
export function normalizeU8(u8: Uint8Array, size: number, mean: readonly number[], std: readonly number[], out = new Float32Array(3 * size * size), offset = 0): Float32Array {
  return normalizeBy((u) => Math.fround(u / 255), u8, size, mean, std, out, offset);
}

/**
 * transformers' rescale then normalize: u·factor in float64 cast to float32
 * (image.astype(float64) * scale, then .astype(float32)), then (x − mean)/std with float32 mean and std.
 */
export function normalizeU8Hf(u8: Uint8Array, size: number, mean: readonly number[], std: readonly number[], rescaleFactor = 1 / 255, out = new Float32Array(3 * size * size), offset = 0): Float32Array {
  return normalizeBy((u) => Math.fround(u * rescaleFactor), u8, size, mean, std, out, offset);
}

/**
 * Resize (centre-crop) and normalise one decoded image; `u8` is the model's RGB [S,S,3]. An image
 * shrunk on load (img.source) gets the resize and crop of its file's size, so only the resampling
 * source differs from the exact pipeline, never the geometry.
 */
export function preprocessDecoded(img: DecodedImage, opts: PreprocessOptions): { u8: Uint8Array; pixels: Float32Array } {
  checkOptions(opts);
  const S = opts.imageSize;
  const filter = opts.interpolation ?? 'bicubic';
  if (opts.pipeline === 'hf') {
    // convert('RGB') before resizing (PIL's RGB rules: no premultiplied alpha, palette expanded first).
    const rgb: DecodedImage = { ...img, channels: 3, mode: 'RGB', data: convertToRGB(img), samples: undefined };
    const u8 = opts.resizeMode === 'squash' ? resizeImage(rgb, S, S, filter).data : squareCrop(rgb, S, filter).data;
    return { u8, pixels: normalizeU8Hf(u8, S, opts.mean, opts.std, opts.rescaleFactor) };
  }
  if (opts.resizeMode === 'squash') {
    const u8 = convertToRGB(resizeImage(img, S, S, filter));
    return { u8, pixels: normalizeU8(u8, S, opts.mean, opts.std) };
  }
  const u8 = convertToRGB(squareCrop(img, S, filter));
  return { u8, pixels: normalizeU8(u8, S, opts.mean, opts.std) };
}

/** Shorter side to S (torchvision's size rule), then the centre S×S crop. */
function squareCrop(img: DecodedImage, S: number, filter: Interpolation): DecodedImage {
  const g = resizeCropGeometry(img.source?.width ?? img.width, img.source?.height ?? img.height, S);
  // Resize + CenterCrop in one pass that computes only the kept pixels (same bytes).
  return resizeImage(img, g.resizedW, g.resizedH, filter, { left: g.left, top: g.top, width: S, height: S });
}

/** Decode and preprocess a batch; any unreadable image throws ImageDecodeError naming it. */
export async function preprocessImages(
  paths: (string | Buffer)[],
  opts: PreprocessOptions,
  decodeOpts?: DecodeOptions,
): Promise<{ pixelValues: Float32Array; u8: Uint8Array }> {
  checkOptions(opts);
  const S = opts.imageSize;
  const per = 3 * S * S;
  const pixelValues = new Float32Array(paths.length * per);
  const u8 = new Uint8Array(paths.length * per);
  for (let b = 0; b < paths.length; b++) {
    const p = paths[b];
    const img = await decodeImage(p, typeof p === 'string' ? p : `image ${b}`, decodeOpts);
    const r = preprocessDecoded(img, opts);
    u8.set(r.u8, b * per);
    pixelValues.set(r.pixels, b * per);
  }
  return { pixelValues, u8 };
}
