// Zero-shot segmentation from the spatial decomposition (paper §6.1) and its evaluation, as
// the reference compute_segmentations.py + utils/segmentation_utils.py (the ImageNet-segmentation
// protocol of Chefer et al.): upsample the patch map bilinearly, clip at 0, min–max normalise,
// threshold at the mean; pixel accuracy, IoU of background and foreground summed over the
// dataset, and AP per image over both channels ([1−map, bg] and [map, fg]) averaged.

import { upsampleBilinear } from '../io/resample.ts';
import { type Mat, checkLen, dims } from './linalg.ts';
import { ShapeError } from '../errors.ts';

/**
 * Patch map for a class, as the reference: patch terms [P, d] (Σ over layers and heads of the
 * spatial terms, CLS row dropped) · classifier [C, d]ᵀ, the chosen class's column minus the
 * mean over classes → [P].
 */
export function classPatchMap(patchTerms: Mat, classifier: Mat, cls: number, subtractClassMean = true): Float32Array {
  const [P, d] = dims('patch terms', patchTerms, ['P', 'd']);
  const [C] = dims('classifier', classifier, ['C', 'd'], { d });
  if (!Number.isInteger(cls) || cls < 0 || cls >= C) throw new RangeError(`class ${cls} out of range 0..${C - 1}`);
  // (x·t_c − mean_c' x·t_c') = x·(t_c − mean_c' t_c')
  const dir = new Float64Array(d);
  for (let j = 0; j < d; j++) dir[j] = classifier.data[cls * d + j];
  if (subtractClassMean) {
    const mean = new Float64Array(d);
    for (let c = 0; c < C; c++) for (let j = 0; j < d; j++) mean[j] += classifier.data[c * d + j];
    for (let j = 0; j < d; j++) dir[j] -= mean[j] / C;
  }
  const out = new Float32Array(P);
  for (let p = 0; p < P; p++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += patchTerms.data[p * d + j] * dir[j];
    out[p] = s;
  }
  return out;
}

/**
 * Patch map [N−1] from one image's per-token scalar map [L, N, H] (term · text direction for
 * each layer, token, head): Σ over the chosen layers and heads (default all), CLS token dropped.
 * Restricting layers/heads gives the joint decomposition maps of one head or layer.
 */
export function patchMapFromSpatial(spatial: Mat, opts: { layers?: number[]; heads?: number[] } = {}): Float32Array {
  const [L, N, H] = dims('spatial map', spatial, ['L', 'N', 'H']);
  const layers = opts.layers ?? Array.from({ length: L }, (_, i) => i);
  const heads = opts.heads ?? Array.from({ length: H }, (_, i) => i);
  for (const l of layers) if (!Number.isInteger(l) || l < 0 || l >= L) throw new RangeError(`layer ${l} out of range 0..${L - 1}`);
  for (const h of heads) if (!Number.isInteger(h) || h < 0 || h >= H) throw new RangeError(`head ${h} out of range 0..${H - 1}`);
  // Tokens are a square grid of patches, after a CLS token when the model has one (CLIP; SigLIP has none).
  const cls = Number.isInteger(Math.sqrt(N)) && N > 1 ? 0 : 1;
  const out = new Float32Array(N - cls);
  for (let i = cls; i < N; i++) {
    let s = 0;
    for (const l of layers) for (const h of heads) s += spatial.data[(l * N + i) * H + h];
    out[i - cls] = s;
  }
  return out;
}

export interface Heatmap {
  /** Clipped at 0 and min–max normalised to 0..1, [size, size] (all 0 when degenerate). */
  heat: Float32Array;
  /** heat > mean(heat): 1 = foreground. */
  mask: Uint8Array;
  /** The map was constant after clipping (the reference's min–max gives NaN there). */
  degenerate: boolean;
  width: number;
  height: number;
}

/** Patch map [grid·grid] (row-major) → heatmap and binary mask at outH×outW (reference post-processing). */
export function heatmapAndMask(patchMap: ArrayLike<number>, grid: number, outH: number, outW: number = outH): Heatmap {
  checkLen('patch map', patchMap, grid, grid);
  const up = upsampleBilinear(patchMap, grid, grid, outH, outW);
  let mx = -Infinity;
  let mn = Infinity;
  for (let i = 0; i < up.length; i++) {
    const v = up[i] > 0 ? up[i] : 0;
    up[i] = v;
    if (v > mx) mx = v;
    if (v < mn) mn = v;
  }
  const mask = new Uint8Array(up.length);
  if (!(mx > mn)) return { heat: new Float32Array(up.length), mask, degenerate: true, width: outW, height: outH };
  let mean = 0;
  for (let i = 0; i < up.length; i++) {
    up[i] = (up[i] - mn) / (mx - mn);
    mean += up[i];
  }
  mean /= up.length;
  for (let i = 0; i < up.length; i++) mask[i] = up[i] > mean ? 1 : 0;
  return { heat: up, mask, degenerate: false, width: outW, height: outH };
}

/**
 * Average precision of scores vs binary targets, as sklearn.metrics.average_precision_score:
 * Σ_n (R_n − R_{n−1}) P_n over the distinct score thresholds, highest first (no interpolation).
 * No positives → 0 (the reference's nan_to_num).
 */
export function averagePrecision(scores: ArrayLike<number>, targets: ArrayLike<number>): number {
  const n = scores.length;
  if (targets.length !== n) throw new ShapeError(`averagePrecision: ${n} scores vs ${targets.length} targets`);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const s = Float64Array.from(scores as ArrayLike<number>);
  order.sort((a, b) => s[b] - s[a]);
  let P = 0;
  for (let i = 0; i < n; i++) if (targets[i]) P++;
  if (P === 0) return 0;
  let tp = 0;
  let ap = 0;
  let prevRecall = 0;
  for (let i = 0; i < n; i++) {
    if (targets[order[i]]) tp++;
    // A threshold ends where the next score differs.
    if (i + 1 < n && s[order[i + 1]] === s[order[i]]) continue;
    const recall = tp / P;
    ap += (recall - prevRecall) * (tp / (i + 1));
    prevRecall = recall;
  }
  return ap;
}

export interface SegmentationScores {
  /** Pixels where prediction = ground truth, and pixels labelled. */
  correct: number;
  labeled: number;
  /** Intersection and union per class [background, foreground]. */
  inter: [number, number];
  union: [number, number];
  /** AP of this image over both channels. */
  ap: number;
}

/** Scores of one image: heatmap and its mask vs ground-truth mask gt (1 = foreground), all [S·S]. */
export function segmentationScores(hm: Heatmap, gt: ArrayLike<number>): SegmentationScores {
  const N = hm.mask.length;
  if (gt.length !== N) throw new ShapeError(`ground-truth mask has ${gt.length} pixels, heatmap ${N}`);
  let correct = 0;
  const inter: [number, number] = [0, 0];
  const predCount: [number, number] = [0, 0];
  const gtCount: [number, number] = [0, 0];
  for (let i = 0; i < N; i++) {
    const p = hm.mask[i];
    const g = gt[i] ? 1 : 0;
    if (gt[i] !== 0 && gt[i] !== 1) throw new RangeError(`ground-truth mask value ${gt[i]} at pixel ${i} is not 0 or 1`);
    predCount[p]++;
    gtCount[g]++;
    if (p === g) {
      correct++;
      inter[g]++;
    }
  }
  // AP over the concatenation [1−heat | heat] vs [gt==0 | gt==1]; degenerate maps score 0 everywhere.
  const sc = new Float32Array(2 * N);
  const tg = new Uint8Array(2 * N);
  for (let i = 0; i < N; i++) {
    sc[i] = hm.degenerate ? 0 : 1 - hm.heat[i];
    sc[N + i] = hm.degenerate ? 0 : hm.heat[i];
    tg[i] = gt[i] ? 0 : 1;
    tg[N + i] = gt[i] ? 1 : 0;
  }
  return {
    correct,
    labeled: N,
    inter,
    union: [predCount[0] + gtCount[0] - inter[0], predCount[1] + gtCount[1] - inter[1]],
    ap: averagePrecision(sc, tg),
  };
}

export interface SegmentationResult {
  pixelAccuracy: number;
  /** IoU per class [background, foreground]. */
  iou: [number, number];
  mIoU: number;
  mAP: number;
  images: number;
}

/** Accumulates per-image scores the way the reference does (sums for acc/IoU, mean of APs). */
export class SegmentationMeter {
  private correct = 0;
  private labeled = 0;
  private inter: [number, number] = [0, 0];
  private union: [number, number] = [0, 0];
  private aps: number[] = [];

  add(s: SegmentationScores): void {
    this.correct += s.correct;
    this.labeled += s.labeled;
    for (const c of [0, 1]) {
      this.inter[c] += s.inter[c];
      this.union[c] += s.union[c];
    }
    this.aps.push(Number.isNaN(s.ap) ? 0 : s.ap);
  }

  result(): SegmentationResult {
    if (this.aps.length === 0) throw new RangeError('SegmentationMeter: no images added');
    const eps = 2 ** -52; // np.spacing(1)
    const iou: [number, number] = [this.inter[0] / (eps + this.union[0]), this.inter[1] / (eps + this.union[1])];
    return {
      pixelAccuracy: this.correct / (eps + this.labeled),
      iou,
      mIoU: (iou[0] + iou[1]) / 2,
      mAP: this.aps.reduce((a, b) => a + b, 0) / this.aps.length,
      images: this.aps.length,
    };
  }
}
