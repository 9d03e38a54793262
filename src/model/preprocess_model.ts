// Images → pixel_values for a given model, keeping going past unreadable files.

import { decodeImage, type DecodedImage } from '../io/image.ts';
import { f32, type F32 } from '../tensor.ts';
import type { ClipConfig } from './config.ts';
import { preprocessDecoded, type PreprocessOptions } from './preprocess.ts';

export interface PreprocessedBatch {
  /** [b, 3, S, S] for the images that decoded, in input order */
  pixels: F32;
  /** [b, S, S, 3] the resized, cropped RGB bytes of the same images */
  u8: Uint8Array;
  /** One entry per input: undefined when it decoded, else the one-line reason. */
  errors: (string | undefined)[];
}

export async function preprocessFiles(cfg: ClipConfig, inputs: (string | Buffer)[]): Promise<PreprocessedBatch> {
  const decoded = await Promise.all(
    inputs.map(async (input) => {
      try {
        return await decodeImage(input);
      } catch (e) {
        return (e as Error).message.split('\n')[0];
      }
    }),
  );
  return preprocessDecodedBatch(cfg, decoded);
}

/** The same for images already decoded (or the reason they could not be). */
export function preprocessDecodedBatch(cfg: ClipConfig, images: (DecodedImage | string)[]): PreprocessedBatch {
  const S = cfg.vision.imageSize;
  const opts = preprocessOptions(cfg);
  const results = images.map((img) => {
    if (typeof img === 'string') return img;
    try {
      return preprocessDecoded(img, opts);
    } catch (e) {
      return (e as Error).message.split('\n')[0];
    }
  });
  const ok = results.filter((r): r is Exclude<typeof r, string> => typeof r !== 'string');
  const per = 3 * S * S;
  const pixels = f32([ok.length, 3, S, S]);
  const u8 = new Uint8Array(ok.length * per);
  ok.forEach((r, i) => {
    pixels.data.set(r.pixels, i * per);
    u8.set(r.u8, i * per);
  });
  return { pixels, u8, errors: results.map((r) => (typeof r === 'string' ? r : undefined)) };
}

/** The model's preprocessing settings as preprocessDecoded takes them. */
export function preprocessOptions(cfg: ClipConfig): PreprocessOptions {
  const p = cfg.preprocess;
  return { imageSize: cfg.vision.imageSize, mean: p.mean, std: p.std, resizeMode: p.resizeMode, interpolation: p.interpolation, pipeline: p.pipeline, rescaleFactor: p.rescaleFactor };
}
