// Reading the inputs commands share: pixel files, images, text lists.

import { checkInputPath, readLines } from '../io/files.ts';
import { fromMetadata, modelProvenance, requireSameModel } from '../io/provenance.ts';
import { SafetensorsFile } from '../io/safetensors.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { preprocessFiles } from '../model/preprocess_model.ts';
import type { F32, Tensor } from '../tensor.ts';
import { UsageError } from '../errors.ts';

export const collect = (v: string, acc: string[]) => [...acc, v];

/** pixel_values [B, 3, S, S] from --pixels or from image files; any unreadable image is an error here. */
export async function pixelsFromArgs(model: ClipModel, pixelsFile: string | undefined, images: string[]): Promise<{ pixels: F32; u8?: Uint8Array }> {
  if (pixelsFile && images.length) throw new UsageError('give either --pixels or image files, not both');
  if (pixelsFile) {
    const f = SafetensorsFile.open(pixelsFile);
    try {
      if (!f.has('pixel_values')) throw new UsageError(`${pixelsFile} has no 'pixel_values' tensor (it has: ${f.names().join(', ') || 'nothing'})`);
      requireSameModel({ what: '--model', model: modelProvenance(model) }, { what: `--pixels ${pixelsFile}`, model: fromMetadata(f.metadata) });
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

/** Token ids [T, S] as int32 from a safetensors file's 'tokens' or 'input_ids' tensor (int32 or int64). */
export function tokensFromFile(path: string): Tensor<Int32Array> {
  checkInputPath(path, '--tokens');
  const f = SafetensorsFile.open(path);
  try {
    const name = ['tokens', 'input_ids'].find((n) => f.has(n));
    if (!name) throw new UsageError(`${path} has no 'tokens' or 'input_ids' tensor (it has: ${f.names().join(', ') || 'nothing'})`);
    const t = f.read(name);
    if (t.shape.length !== 2 || t.shape[0] < 1 || t.shape[1] < 1) throw new UsageError(`${path}: '${name}' must be [T, S] token ids, got shape [${t.shape}]`);
    let data: Int32Array;
    if (t.dtype === 'I32') data = t.data as Int32Array;
    else if (t.dtype === 'I64') {
      const src = t.data as BigInt64Array;
      data = new Int32Array(src.length);
      for (let i = 0; i < src.length; i++) {
        if (src[i] < -2147483648n || src[i] > 2147483647n) throw new UsageError(`${path}: token id ${src[i]} in '${name}' does not fit in int32`);
        data[i] = Number(src[i]);
      }
    } else throw new UsageError(`${path}: '${name}' has dtype ${t.dtype}; token ids must be int32 or int64`);
    return { dtype: 'I32', shape: t.shape, data };
  } finally {
    f.close();
  }
}
