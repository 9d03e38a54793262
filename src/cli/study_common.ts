// What the analysis commands share: opening stores and text sets with one-line errors, writing
// the report and the --json result.

import { existsSync, statSync } from 'node:fs';
import { colormap, type RGBImage } from '../report/figures.ts';
import { writeReport, type Report } from '../report/writer.ts';
import { loadStore, type StoreData } from '../io/store.ts';
import { readTextSet, type TextSet } from '../analyses/text_sets.ts';
import { upsampleBilinear } from '../analyses/segmentation.ts';
import { UsageError } from '../errors.ts';

export function openStore(dir: string | undefined): StoreData {
  if (!dir) throw new UsageError('--store DIR is required');
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`store ${dir} does not exist (make one with 'cliplens decompose --dataset ... --store ${dir}')`);
  const s = loadStore(dir);
  if (s.attn.shape[0] === 0) throw new UsageError(`store ${dir} holds no decomposed images yet`);
  return s;
}

export function openTextSet(path: string, flag: string): TextSet {
  if (!existsSync(path)) throw new UsageError(`--${flag} ${path} does not exist`);
  return readTextSet(path);
}

export const toJson = (v: unknown) =>
  JSON.stringify(v, (_k, x) => (ArrayBuffer.isView(x) && !(x instanceof DataView) ? Array.from(x as unknown as ArrayLike<number>) : typeof x === 'number' && !Number.isFinite(x) ? null : x));

/** Write the report (when asked) and print the result as JSON (when asked). */
export async function finish(o: { report?: string; json?: boolean }, result: unknown, report: () => Promise<Report>): Promise<void> {
  if (o.report) {
    const w = await writeReport(o.report, await report());
    process.stderr.write(`wrote report ${o.report}/index.html (${w.files.length} files)\n`);
  }
  if (o.json) process.stdout.write(toJson(result) + '\n');
}

/** An RGB image [h, w, 3] with a map (any grid, upsampled bilinearly) blended over it in 'jet'; min–max of the map unless a range is given. */
export function blendMap(rgb: Uint8Array, width: number, height: number, map: ArrayLike<number>, mh: number, mw: number, opts: { alpha?: number; range?: [number, number]; caption?: string } = {}): RGBImage {
  const up = mh === height && mw === width ? Float32Array.from(map) : upsampleBilinear(map, mh, mw, height, width);
  let lo = opts.range?.[0] ?? Infinity, hi = opts.range?.[1] ?? -Infinity;
  if (!opts.range) for (const v of up) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  const span = hi > lo ? hi - lo : 1;
  const a = opts.alpha ?? 0.5;
  const out = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    const c = colormap('jet', (up[p] - lo) / span);
    for (let k = 0; k < 3; k++) out[p * 3 + k] = Math.round((1 - a) * rgb[p * 3 + k] + a * c[k]);
  }
  return { rgb: out, width, height, caption: opts.caption };
}

/** A binary mask as a black-and-white RGB image. */
export function maskImage(mask: ArrayLike<number>, width: number, height: number, caption?: string): RGBImage {
  const out = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) out.fill(mask[p] ? 255 : 0, p * 3, p * 3 + 3);
  return { rgb: out, width, height, caption };
}
