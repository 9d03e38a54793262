// Reading the inputs commands share: pixel files, images, text lists.

import { checkInputPath, readLines } from '../io/files.ts';
import { SafetensorsFile } from '../io/safetensors.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { preprocessFiles } from '../model/preprocess_model.ts';
import type { F32 } from '../tensor.ts';
import { UsageError } from '../errors.ts';

export const collect = (v: string, acc: string[]) => [...acc, v];

/** pixel_values [B, 3, S, S] from --pixels or from image files; any unreadable image is an error here. */
export async function pixelsFromArgs(model: ClipModel, pixelsFile: string | undefined, images: string[]): Promise<{ pixels: F32; u8?: Uint8Array }> {
  if (pixelsFile && images.length) throw new UsageError('give either --pixels or image files, not both');
  if (pixelsFile) {
    const f = SafetensorsFile.open(pixelsFile);
    try {
      if (!f.has('pixel_values')) throw new UsageError(`${pixelsFile} has no 'pixel_values' tensor (it has: ${f.names().join(', ') || 'nothing'})`);
      const pixels = f.readF32('pixel_values');
      model.checkPixels(pixels);
      return { pixels };
    } finally {
      f.close();
    }
  }
  if (!images.length) throw new UsageError('no images: give image files or --pixels FILE');
  for (const p of images) checkInputPath(p, 'image');
  const r = await preprocessFiles(model.config, images);
  const bad = r.errors.findIndex((e) => e !== undefined);
  if (bad >= 0) throw new UsageError(r.errors[bad]!);
  return { pixels: r.pixels, u8: r.u8 };
}

export function textsFromArgs(texts: string[], textsFile?: string): string[] {
  const out = [...texts];
  if (textsFile) {
    out.push(...readLines(textsFile, 'texts file'));
  }
  return out;
}
