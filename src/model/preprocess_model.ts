// Images → pixel_values for a given model, keeping going past unreadable files.

import { decodeImage, type DecodedImage } from '../io/image.ts';
import { SafetensorsWriter } from '../io/safetensors.ts';
import { ImageDecodeError } from '../errors.ts';
import { f32, type F32 } from '../tensor.ts';
import type { ClipConfig } from './config.ts';
import { preprocessDecoded, type PreprocessOptions } from './preprocess.ts';
import type { PreprocessAnswer, PreprocessTask } from './preprocess_worker.ts';
import { siblingModule, WorkerPool } from '../worker_pool.ts';

export interface PreprocessedBatch {
  /** [b, 3, S, S] for the images that decoded, in input order */
  pixels: F32;
  /** [b, S, S, 3] the resized, cropped RGB bytes of the same images */
  u8: Uint8Array;
  /** One entry per input: undefined when it decoded, else the one-line reason. */
  errors: (string | undefined)[];
}

/** Below this many images a call decodes on the calling thread (a worker's start costs more). */
const POOL_MIN_IMAGES = 4;

let sharedPool: WorkerPool<PreprocessTask, PreprocessAnswer> | undefined;

/** The process's preprocessing workers, started on first use; idle ones do not hold the process open. */
function preprocessPool(): WorkerPool<PreprocessTask, PreprocessAnswer> {
  sharedPool ??= new WorkerPool(siblingModule(import.meta.url, 'preprocess_worker'));
  return sharedPool;
}

/**
 * Decode and preprocess images for `cfg`'s vision tower. Batches of a few images or more are
 * spread over a pool of worker threads (decoding, PIL-exact resizing and normalising leave the
 * calling thread free for the forward pass); results are identical either way.
 */
export async function preprocessFiles(cfg: ClipConfig, inputs: (string | Buffer)[], opts: { workers?: boolean } = {}): Promise<PreprocessedBatch> {
  const useWorkers = opts.workers ?? inputs.length >= POOL_MIN_IMAGES;
  if (!useWorkers) {
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
  const popts = preprocessOptions(cfg);
  const pool = preprocessPool();
  const results = await Promise.all(inputs.map((input) => pool.run({ input, opts: popts }).catch((e: Error) => ({ error: e.message.split('\n')[0] }))));
  return assemble(cfg, results.map((r) => ('error' in r ? r.error : r)));
}

/** The model's preprocessing settings as preprocessDecoded takes them. */
export function preprocessOptions(cfg: ClipConfig): PreprocessOptions {
  const p = cfg.preprocess;
  return { imageSize: cfg.vision.imageSize, mean: p.mean, std: p.std, resizeMode: p.resizeMode, interpolation: p.interpolation, pipeline: p.pipeline, rescaleFactor: p.rescaleFactor };
}

/** Stack the images that made it into one batch, and the reasons of those that did not. */
function assemble(cfg: ClipConfig, results: ({ pixels: Float32Array; u8: Uint8Array } | string)[]): PreprocessedBatch {
  const S = cfg.vision.imageSize;
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

/** The same for images already decoded (or the reason they could not be). */
export function preprocessDecodedBatch(cfg: ClipConfig, images: (DecodedImage | string)[]): PreprocessedBatch {
  const opts = preprocessOptions(cfg);
  return assemble(
    cfg,
    images.map((img) => {
      if (typeof img === 'string') return img;
      try {
        return preprocessDecoded(img, opts);
      } catch (e) {
        return (e as Error).message.split('\n')[0];
      }
    }),
  );
}

export interface PreprocessToFileOptions {
  /** Images per batch: at most two batches are in memory at once. */
  batchSize?: number;
  /** Recorded in the file's metadata (the model's provenance). */
  metadata?: Record<string, string>;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Preprocess many images into one safetensors file (pixel_values [B,3,S,S] float32 and
 * pixels_u8 [B,S,S,3]) with bounded memory: batches go through the worker pool one ahead of
 * the batch being written, and each is written in place as it comes. Any unreadable image
 * stops the job (the partial file is removed) with its one-line reason.
 */
export async function preprocessToFile(cfg: ClipConfig, inputs: string[], out: string, opts: PreprocessToFileOptions = {}): Promise<void> {
  const S = cfg.vision.imageSize;
  const B = inputs.length;
  const batchSize = opts.batchSize ?? 64;
  const p = cfg.preprocess;
  const writer = new SafetensorsWriter(
    out,
    { pixel_values: { dtype: 'F32', shape: [B, 3, S, S] }, pixels_u8: { dtype: 'U8', shape: [B, S, S, 3] } },
    { ...opts.metadata, image_size: String(S), mean: JSON.stringify(p.mean), std: JSON.stringify(p.std), transform: p.resizeMode === 'squash' ? `resize to ${S}×${S} (PIL ${p.interpolation}), normalise` : `resize shortest side (PIL ${p.interpolation}), centre crop, normalise` },
  );
  try {
    const batch = (start: number) => preprocessFiles(cfg, inputs.slice(start, start + batchSize), { workers: true });
    let next = B > 0 ? batch(0) : undefined;
    for (let start = 0; start < B; start += batchSize) {
      const r = await next!;
      next = start + batchSize < B ? batch(start + batchSize) : undefined;
      const bad = r.errors.findIndex((e) => e !== undefined);
      if (bad >= 0) {
        await next?.catch(() => undefined);
        throw new ImageDecodeError(inputs[start + bad], r.errors[bad]!.replace(`${inputs[start + bad]}: `, ''));
      }
      writer.write('pixel_values', start, r.pixels.data);
      writer.write('pixels_u8', start, r.u8);
      opts.onProgress?.(Math.min(B, start + batchSize), B);
    }
    writer.finish();
  } catch (e) {
    writer.abort();
    throw e;
  }
}
