// (d) Zero-shot segmentation of the main object (paper §6.1): the map of the scene's
// shape/colour caption, from the folded per-token maps summed over layers and heads, with the
// reference post-processing; against the true masks, next to baselines from the same run.

import { heatmapAndMask, segmentationScores, SegmentationMeter, type SegmentationResult } from '../analyses/segmentation.ts';
import type { Decomposer } from '../decompose/decomposer.ts';
import { tokenMaps } from '../decompose/patch_maps.ts';
import { f32 } from '../tensor.ts';
import type { SceneSet } from './data.ts';
import { embedTexts, shapeColorCaption, shapeColorCaptions } from './texts.ts';

export const SEG_METHODS = ['text map (class mean subtracted)', 'text map (raw)', 'last-layer CLS attention', 'uniform map'] as const;
export type SegMethod = (typeof SEG_METHODS)[number];

export interface SegExample {
  row: number;
  caption: string;
  /** Patch map [grid·grid] and predicted mask [S·S] per method. */
  maps: Record<SegMethod, Float32Array>;
  masks: Record<SegMethod, Uint8Array>;
}

export interface SegmentationStudy {
  images: number;
  grid: number;
  size: number;
  results: Record<SegMethod, SegmentationResult>;
  /** Per method, images whose clipped map was constant (predicted all background). */
  degenerate: Record<SegMethod, number>;
  examples: SegExample[];
}

/** Patch part of token maps: row t of tm [T, N] → [N−1]. */
function patches(tm: Float32Array, t: number, N: number): Float32Array {
  return tm.slice(t * N + 1, (t + 1) * N);
}

export async function segmentationStudy(dec: Decomposer, set: SceneSet, opts: { batch?: number; examples?: number } = {}): Promise<SegmentationStudy> {
  const model = dec.model;
  const { grid, tokens: N, L } = { ...model.dims() };
  const S = model.config.vision.imageSize;
  const captions = shapeColorCaptions();
  const T = captions.length;
  const textEmb = await embedTexts(model, captions);
  const n = set.scenes.length;
  const batch = opts.batch ?? 16;
  const nEx = Math.min(opts.examples ?? 6, n);
  const meters = Object.fromEntries(SEG_METHODS.map((m) => [m, new SegmentationMeter()])) as Record<SegMethod, SegmentationMeter>;
  const degenerate = Object.fromEntries(SEG_METHODS.map((m) => [m, 0])) as Record<SegMethod, number>;
  const examples: SegExample[] = [];
  const per = 3 * S * S;
  for (let b0 = 0; b0 < n; b0 += batch) {
    const b1 = Math.min(n, b0 + batch);
    const px = f32([b1 - b0, 3, S, S], set.pixels.data.slice(b0 * per, b1 * per));
    const { maps } = await dec.textMaps(px, textEmb, { batchSize: batch });
    const tm = tokenMaps(maps); // [B, T, N]
    const { cls_probs } = await model.runVision(px, ['cls_probs'], batch); // [B, L, H, N]
    const H = cls_probs.shape[2];
    for (let b = 0; b < b1 - b0; b++) {
      const row = b0 + b;
      const scene = set.scenes[row];
      const caption = shapeColorCaption(scene.labels);
      const t = captions.indexOf(caption);
      if (t < 0) throw new Error(`caption '${caption}' is not among the class captions`);
      const own = tm.data.subarray(b * T * N, (b + 1) * T * N);
      const raw = patches(own, t, N);
      // Maps are linear in the text direction, so (t_c − mean) maps = map_c − mean of maps.
      const sub = raw.slice();
      for (let tt = 0; tt < T; tt++) {
        const o = tt * N + 1;
        for (let i = 0; i < N - 1; i++) sub[i] -= own[o + i] / T;
      }
      const cls = new Float32Array(N - 1);
      for (let h = 0; h < H; h++) {
        const o = ((b * L + (L - 1)) * H + h) * N;
        for (let i = 1; i < N; i++) cls[i - 1] += cls_probs.data[o + i] / H;
      }
      const mapsBy: Record<SegMethod, Float32Array> = {
        'text map (class mean subtracted)': sub,
        'text map (raw)': raw,
        'last-layer CLS attention': cls,
        'uniform map': new Float32Array(N - 1),
      };
      const masks = {} as Record<SegMethod, Uint8Array>;
      for (const m of SEG_METHODS) {
        const hm = heatmapAndMask(mapsBy[m], grid, S, S);
        if (hm.degenerate) degenerate[m]++;
        meters[m].add(segmentationScores(hm, scene.mask));
        masks[m] = hm.mask;
      }
      if (row < nEx) examples.push({ row, caption, maps: mapsBy, masks });
    }
  }
  const results = Object.fromEntries(SEG_METHODS.map((m) => [m, meters[m].result()])) as Record<SegMethod, SegmentationResult>;
  return { images: n, grid, size: S, results, degenerate, examples };
}

/**
 * What the uniform map must score (it predicts background everywhere): pixel accuracy and
 * background IoU = share of background pixels, foreground IoU 0, AP 0.5 per image.
 */
export function uniformBaseline(masks: Uint8Array[]): SegmentationResult {
  let fg = 0;
  let total = 0;
  for (const m of masks) {
    for (const v of m) fg += v;
    total += m.length;
  }
  const bg = (total - fg) / total;
  return { pixelAccuracy: bg, iou: [bg, 0], mIoU: bg / 2, mAP: 0.5, images: masks.length };
}
