// Studies that need the model's per-token maps (paper §6): zero-shot segmentation from the cheap
// spatial path (Decomposer.textMaps: folded per-head maps along a direction, no [L, N, H, d]
// tensor) and the joint decomposition (the map restricted to the heads that matter most).

import type { ImageDecomposer } from '../decompose/decomposer.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { batchRows, f32, type F32 } from '../tensor.ts';
import { normalizeRows } from './linalg.ts';
import { heatmapAndMask, patchMapFromSpatial, segmentationScores, SegmentationMeter, type Heatmap, type SegmentationResult, type SegmentationScores } from './segmentation.ts';
import { predict } from './zeroshot.ts';

/** t_c, minus the mean class direction when `subtractMean` (the reference's class maps). [d] */
export function classDirection(classifier: F32, c: number, subtractMean = true): Float32Array {
  const [C, d] = classifier.shape;
  if (!Number.isInteger(c) || c < 0 || c >= C) throw new RangeError(`class ${c} out of range 0..${C - 1}`);
  const out = classifier.data.slice(c * d, (c + 1) * d);
  if (subtractMean) {
    const mean = new Float64Array(d);
    for (let k = 0; k < C; k++) for (let j = 0; j < d; j++) mean[j] += classifier.data[k * d + j];
    for (let j = 0; j < d; j++) out[j] -= mean[j] / C;
  }
  return out;
}

/** The model's zero-shot class for every image of pixels [B, 3, S, S]. */
export async function predictClasses(model: ClipModel, pixels: F32, classifier: F32): Promise<Int32Array> {
  const feats = await model.encodeImages(pixels);
  const [B, d] = feats.shape;
  return predict(f32([B, d], normalizeRows(feats.data, B, d)), classifier);
}

/**
 * Per-token, per-head scalar maps [L, N, H] of each image along its direction (one direction
 * for all images, or one per image).
 */
export async function spatialMaps(dec: ImageDecomposer, pixels: F32, directions: Float32Array[], batch = 8): Promise<F32[]> {
  const B = pixels.shape[0];
  const d = dec.model.config.embedDim;
  if (directions.length !== 1 && directions.length !== B) throw new RangeError(`${directions.length} directions for ${B} images`);
  for (const v of directions) if (v.length !== d) throw new RangeError(`direction has ${v.length} values, the model's embedding has ${d}`);
  const out: F32[] = [];
  for (let b0 = 0; b0 < B; b0 += batch) {
    const b1 = Math.min(B, b0 + batch);
    const dirs = directions.length === 1 ? directions : directions.slice(b0, b1);
    const T = dirs.length;
    const texts = f32([T, d]);
    dirs.forEach((v, t) => texts.data.set(v, t * d));
    const { maps } = await dec.textMaps(batchRows(pixels, b0, b1), texts);
    const [, L, N, H] = maps.shape;
    for (let b = 0; b < b1 - b0; b++) {
      const t = T === 1 ? 0 : b;
      const m = f32([L, N, H]);
      for (let l = 0; l < L; l++)
        for (let i = 0; i < N; i++)
          for (let h = 0; h < H; h++) m.data[(l * N + i) * H + h] = maps.data[((((b * L + l) * N + i) * H + h) * T) + t];
      out.push(m);
    }
  }
  return out;
}

export interface SegmentedImage {
  /** Σ over layers and heads, patches only, [grid·grid] row-major. */
  patchMap: Float32Array;
  heatmap: Heatmap;
  scores?: SegmentationScores;
}

/** Reference post-processing of one image's map (and scores against a mask of size×size). */
export function segmentSpatial(spatial: F32, grid: number, size: number, gt?: Uint8Array): SegmentedImage {
  const patchMap = patchMapFromSpatial(spatial);
  const heatmap = heatmapAndMask(patchMap, grid, size, size);
  return { patchMap, heatmap, ...(gt ? { scores: segmentationScores(heatmap, gt) } : {}) };
}

/** Pixel accuracy, mIoU and mAP over images with scores. */
export function segmentationSummary(images: readonly { scores?: SegmentationScores }[]): SegmentationResult {
  const meter = new SegmentationMeter();
  for (const im of images) if (im.scores) meter.add(im.scores);
  return meter.result();
}

export interface JointHead {
  layer: number;
  head: number;
  /** The head's direct contribution along the direction: Σ over all tokens. */
  total: number;
  /** Its patch map [grid·grid]. */
  map: Float32Array;
}

/** Heads ranked by their total contribution along the direction (largest first), with their maps. */
export function jointHeads(spatial: F32, top: number): { full: Float32Array; heads: JointHead[] } {
  const [L, N, H] = spatial.shape;
  const totals: JointHead[] = [];
  for (let l = 0; l < L; l++)
    for (let h = 0; h < H; h++) {
      let s = 0;
      for (let i = 0; i < N; i++) s += spatial.data[(l * N + i) * H + h];
      totals.push({ layer: l, head: h, total: s, map: new Float32Array(0) });
    }
  totals.sort((a, b) => b.total - a.total || a.layer - b.layer || a.head - b.head);
  const heads = totals.slice(0, Math.max(1, Math.min(top, totals.length)));
  for (const hd of heads) hd.map = patchMapFromSpatial(spatial, { layers: [hd.layer], heads: [hd.head] });
  return { full: patchMapFromSpatial(spatial), heads };
}
