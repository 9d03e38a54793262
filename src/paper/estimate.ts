// Time and disk estimates for the paper plan, from a short calibration run of the model on this
// machine (a few images decomposed, a few texts embedded) and the sizes of the data.

import { Decomposer } from '../decompose/decomposer.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { normalRng } from '../rng.ts';
import { f32 } from '../tensor.ts';

export interface Calibration {
  /** Seconds per image: per-head decomposition, per-token maps along 2 directions, plain forward. */
  heads: number;
  spatial: number;
  forward: number;
  /** Seconds per text embedded. */
  text: number;
  /** Float operations per second of the JS analyses (TextSpan, ablation). */
  flops: number;
}

const timed = async (f: () => Promise<unknown>) => {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
};

/** Measures the model on 2 random images and 8 texts (after a warm-up of each). */
export async function calibrate(model: ClipModel): Promise<Calibration> {
  const S = model.config.vision.imageSize;
  const d = model.config.embedDim;
  const B = 2;
  const g = normalRng(1);
  const px = f32([B, 3, S, S]);
  for (let i = 0; i < px.data.length; i++) px.data[i] = g();
  const dirs = f32([2, d]);
  for (let i = 0; i < dirs.data.length; i++) dirs.data[i] = g() / Math.sqrt(d);
  const dec = new Decomposer(model);
  await dec.decompose(px, { batchSize: B });
  const heads = (await timed(() => dec.decompose(px, { batchSize: B }))) / B;
  await dec.textMaps(px, dirs, { batchSize: B });
  const spatial = (await timed(() => dec.textMaps(px, dirs, { batchSize: B }))) / B;
  // The attention maps' graph variant runs about as fast as the plain tower.
  const forward = (await timed(() => model.encodeImages(px, B))) / B;
  const texts = Array.from({ length: 8 }, (_, i) => `a photo of thing number ${i}`);
  await model.encodeTexts(texts.slice(0, 1));
  const text = (await timed(() => model.encodeTexts(texts))) / texts.length;
  // JS loops of the analyses: a d×d Gram-like pass.
  const n = 256;
  const a = new Float64Array(n * d);
  for (let i = 0; i < a.length; i++) a[i] = g();
  const t0 = performance.now();
  let s = 0;
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) for (let k = 0; k < n; k++) s += a[k * d + i] * a[k * d + j];
  const flops = (2 * n * d * d) / Math.max((performance.now() - t0) / 1000, 1e-4) + (s === Infinity ? 1 : 0);
  return { heads, spatial, forward, text, flops };
}

/** Bytes of a float32 store of n images keeping Lk of L layers. */
export function storeBytes(n: number, dims: { L: number; H: number; d: number }, Lk: number): number {
  const { L, H, d } = dims;
  return n * 4 * (Lk * H * d + (L + 1) * d + d + 2) + n * 120;
}

export function textSetBytes(m: number, d: number, avgChars = 30): number {
  return m * (4 * d + avgChars);
}

/** TextSpan on one head: Gram of n×d terms, projecting m texts onto r dims, K picks. */
export function textspanFlops(n: number, d: number, m: number, r: number, K: number): number {
  return 2 * n * d * d + 4 * d * d * d + 2 * m * d * r + 4 * K * m * r + 2 * n * d * K;
}
