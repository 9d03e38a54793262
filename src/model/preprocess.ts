// open_clip's eval transform as the reference runs it (torchvision 0.14 on PIL 9.4):
// Resize(S, BICUBIC) of the shorter side -> CenterCrop(S) -> convert('RGB') -> ToTensor -> Normalize.

import { convertToRGB, cropImage, decodeImage, resizeImage, type DecodeOptions, type DecodedImage } from '../io/image.ts';
import { resizeCropGeometry } from '../io/resample.ts';

export interface PreprocessOptions {
  imageSize: number;
  mean: [number, number, number];
  std: [number, number, number];
}

function checkOptions(opts: PreprocessOptions): void {
  if (!Number.isInteger(opts.imageSize) || opts.imageSize < 1) throw new RangeError(`preprocess: imageSize must be a positive integer, got ${opts.imageSize}`);
  if (opts.mean?.length !== 3 || opts.std?.length !== 3) throw new RangeError('preprocess: mean and std need 3 values each');
  if (opts.std.some((s) => !(s > 0))) throw new RangeError(`preprocess: std must be positive, got ${JSON.stringify(opts.std)}`);
}

/** Normalise HWC uint8 RGB into CHW float32 as torchvision does, every step in float32. */
export function normalizeU8(u8: Uint8Array, size: number, mean: readonly number[], std: readonly number[], out = new Float32Array(3 * size * size), offset = 0): Float32Array {
  const plane = size * size;
  const f = Math.fround;
  for (let c = 0; c < 3; c++) {
    const m = f(mean[c]);
    const s = f(std[c]);
    // value for each byte, computed once: ((u / 255) - mean) / std in float32
    const lut = new Float32Array(256);
    for (let u = 0; u < 256; u++) lut[u] = f(f(f(u / 255) - m) / s);
    const base = offset + c * plane;
    for (let i = 0; i < plane; i++) out[base + i] = lut[u8[i * 3 + c]];
  }
  return out;
}

/**
 * Resize, centre-crop and normalise one decoded image; `u8` is the cropped RGB [S,S,3]. An image
 * shrunk on load (img.source) gets the resize and crop of its file's size, so only the resampling
 * source differs from the exact pipeline, never the geometry.
 */
export function preprocessDecoded(img: DecodedImage, opts: PreprocessOptions): { u8: Uint8Array; pixels: Float32Array } {
  checkOptions(opts);
  const S = opts.imageSize;
  const g = resizeCropGeometry(img.source?.width ?? img.width, img.source?.height ?? img.height, S);
  const resized = resizeImage(img, g.resizedW, g.resizedH, 'bicubic');
  const cropped = cropImage(resized, g.left, g.top, S, S);
  const u8 = convertToRGB(cropped);
  return { u8, pixels: normalizeU8(u8, S, opts.mean, opts.std) };
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
