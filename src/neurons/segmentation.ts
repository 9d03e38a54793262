// Zero-shot segmentation with neurons (compute_segmentation.py, SPEC §6): the neurons whose first
// PCs align most with a class's text direction (|pc_n · W_c|, over the PCs of several MLP blocks)
// give a map per image — the mean of their post-activations a_n(t) over the patch tokens, the
// per-token factor of their second-order effect — upsampled bilinearly ×patch, min–max normalised,
// foreground where > 0.5. Evaluated with the first paper's metrics (src/analyses/segmentation.ts);
// the pixel-level precision–recall curve as sklearn.metrics.precision_recall_curve (1.2.1).

import { SegmentationMeter, segmentationScores, type Heatmap, type SegmentationResult } from '../analyses/segmentation.ts';
import { loadSegBatch, type MaskGeometry, type SegItem, type SegmentedInput, type SegmentRow } from '../analyses/segmentation_study.ts';
import { upsampleBilinear } from '../io/resample.ts';
import type { ClipModel } from '../runtime/clip.ts';
import type { F32 } from '../tensor.ts';
import { neuronVariant } from './effects.ts';
import { ShapeError, UsageError } from '../errors.ts';

/** A neuron of some block: [neuron, block]. */
export type NeuronRef = [number, number];

/**
 * Per class c the `top` neurons with the largest |pc · W_c| over the PCs of `layers` (each pcs[i]
 * [M, d]), in the reference's order: ascending |score| (np.argsort), so the best comes last.
 * classifier [C, d] rows.
 */
export function selectNeuronsPerClass(pcs: F32[], layers: number[], classifier: F32, top: number): NeuronRef[][] {
  if (pcs.length !== layers.length || !pcs.length) throw new UsageError('give one PC file per MLP block');
  const [M, d] = pcs[0].shape;
  for (const p of pcs) if (p.shape[0] !== M || p.shape[1] !== d) throw new ShapeError(`PC arrays of different shapes: [${pcs[0].shape}] and [${p.shape}]`);
  const [C, dc] = classifier.shape;
  if (dc !== d) throw new ShapeError(`classifier has embedding size ${dc}, the PCs ${d}`);
  const total = M * pcs.length;
  if (!Number.isInteger(top) || top < 1 || top > total) throw new UsageError(`--top-neurons must be in 1..${total}, got ${top}`);
  const out: NeuronRef[][] = [];
  const score = new Float64Array(total);
  for (let c = 0; c < C; c++) {
    pcs.forEach((p, li) => {
      for (let n = 0; n < M; n++) {
        let s = 0;
        for (let e = 0; e < d; e++) s += p.data[n * d + e] * classifier.data[c * d + e];
        score[li * M + n] = Math.abs(s);
      }
    });
    const order = Array.from({ length: total }, (_, i) => i).sort((a, b) => score[a] - score[b] || a - b);
    out.push(order.slice(total - top).map((i) => [i % M, layers[Math.floor(i / M)]]));
  }
  return out;
}

/**
 * The map of neurons on one image: mean over `neurons` of a_n(t) at every patch token (CLS dropped),
 * row-major [grid·grid]. acts[layer] = post-activations [N, M] of that block for this image.
 */
export function neuronPatchMap(acts: Map<number, Float32Array>, M: number, N: number, neurons: NeuronRef[]): Float32Array {
  if (!neurons.length) throw new UsageError('no neurons to map');
  const out = new Float64Array(N - 1);
  for (const [n, l] of neurons) {
    const a = acts.get(l);
    if (!a) throw new UsageError(`no activations of MLP block ${l}`);
    if (!(n >= 0 && n < M)) throw new UsageError(`neuron ${n} is outside 0..${M - 1}`);
    for (let t = 1; t < N; t++) out[t - 1] += a[t * M + n];
  }
  return Float32Array.from(out, (v) => v / neurons.length);
}

/** The reference's post-processing: bilinear ×(size/grid), min–max to 0..1, foreground where > 0.5. */
export function neuronHeatmap(patchMap: ArrayLike<number>, grid: number, size: number): Heatmap {
  const up = upsampleBilinear(patchMap, grid, grid, size, size);
  let lo = Infinity, hi = -Infinity;
  for (const v of up) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const mask = new Uint8Array(up.length);
  // A constant map is NaN after the reference's min–max: no foreground, scores 0.
  if (!(hi > lo)) return { heat: new Float32Array(up.length), mask, degenerate: true, width: size, height: size };
  const span = Math.fround(hi - lo);
  for (let i = 0; i < up.length; i++) {
    up[i] = Math.fround(up[i] - lo) / span;
    mask[i] = up[i] > 0.5 ? 1 : 0;
  }
  return { heat: up, mask, degenerate: false, width: size, height: size };
}

export interface NeuronMapsResult {
  /** [B] argmax of z · W_c (the class whose neurons are used). */
  chosenClass: Int32Array;
  /** [B, C] the logits it came from. */
  classLogits: Float32Array;
  /** [B, grid·grid] the maps before upsampling. */
  maps: Float32Array;
  grid: number;
}

/**
 * Maps of a batch of images with each image's predicted class's neurons (compute_segmentation.py
 * eval_batch): one forward pass gives z and the post-activations of every block in `layers`.
 */
export async function neuronClassMaps(model: ClipModel, pixels: F32, perClass: NeuronRef[][], classifier: F32, batchSize = 8): Promise<NeuronMapsResult> {
  const layers = [...new Set(perClass.flat().map(([, l]) => l))].sort((a, b) => a - b);
  const { tokens: N, hidden: M, grid } = model.dims();
  const outs = await model.runVision(pixels, ['image_features', ...layers.map((l) => `mlp_post_${l}` as const)], batchSize, neuronVariant(layers));
  const z = outs.image_features;
  const [B, d] = z.shape;
  const [C, dc] = classifier.shape;
  if (dc !== d) throw new ShapeError(`classifier has embedding size ${dc}, the model ${d}`);
  if (perClass.length !== C) throw new ShapeError(`${perClass.length} neuron selections for ${C} classes`);
  const chosenClass = new Int32Array(B);
  const classLogits = new Float32Array(B * C);
  const maps = new Float32Array(B * (N - 1));
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let e = 0; e < d; e++) s += z.data[b * d + e] * classifier.data[c * d + e];
      classLogits[b * C + c] = s;
      if (s > classLogits[b * C + chosenClass[b]]) chosenClass[b] = c;
    }
    const acts = new Map(layers.map((l) => [l, outs[`mlp_post_${l}`].data.subarray(b * N * M, (b + 1) * N * M)]));
    maps.set(neuronPatchMap(acts, M, N, perClass[chosenClass[b]]), b * (N - 1));
  }
  return { chosenClass, classLogits, maps, grid };
}

export interface PrCurve {
  precision: Float64Array;
  recall: Float64Array;
  thresholds: Float32Array;
}

/**
 * sklearn.metrics.precision_recall_curve (1.2.1) of scores vs binary targets: one point per distinct
 * score, highest threshold last, then the final (precision 1, recall 0).
 */
export function precisionRecallCurve(scores: Float32Array, targets: Uint8Array): PrCurve {
  const n = scores.length;
  if (targets.length !== n) throw new ShapeError(`${n} scores vs ${targets.length} targets`);
  if (!n) throw new UsageError('precision–recall curve of no pixels');
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => scores[b] - scores[a]);
  const tps: number[] = [];
  const fps: number[] = [];
  const thr: number[] = [];
  let tp = 0;
  for (let i = 0; i < n; i++) {
    if (targets[order[i]]) tp++;
    if (i + 1 < n && scores[order[i + 1]] === scores[order[i]]) continue;
    tps.push(tp);
    fps.push(i + 1 - tp);
    thr.push(scores[order[i]]);
  }
  const m = tps.length;
  const P = tps[m - 1];
  const precision = new Float64Array(m + 1);
  const recall = new Float64Array(m + 1);
  const thresholds = new Float32Array(m);
  for (let i = 0; i < m; i++) {
    const j = m - 1 - i;
    const ps = tps[j] + fps[j];
    precision[i] = ps ? tps[j] / ps : 0;
    recall[i] = P ? tps[j] / P : 1;
    thresholds[i] = thr[j];
  }
  precision[m] = 1;
  recall[m] = 0;
  return { precision, recall, thresholds };
}

/** −Σ diff(recall)·precision[:-1]: sklearn's average precision of a precision_recall_curve. */
export function curveAveragePrecision(c: PrCurve): number {
  let s = 0;
  for (let i = 0; i + 1 < c.recall.length; i++) s -= (c.recall[i + 1] - c.recall[i]) * c.precision[i];
  return s;
}

export interface NeuronSegmentationOptions {
  geometry: MaskGeometry;
  batchSize?: number;
  /** Keep every scored pixel for the precision–recall curve (memory: 5 bytes per pixel). */
  prCurve?: boolean;
  onImage?: (image: SegmentedInput) => void | Promise<void>;
  onProgress?: (done: number, total: number) => void;
  onWarning?: (message: string) => void;
}

export interface NeuronSegmentationRun {
  images: SegmentRow[];
  /** Over the images with a mask. */
  metrics?: SegmentationResult;
  /** Over every pixel of the images with a mask. */
  prCurve?: PrCurve & { pooledAp: number };
}

/**
 * compute_segmentation.py over images with their masks: per image the predicted class's neurons
 * (perClass, from selectNeuronsPerClass), their mean activation map, the reference's
 * post-processing, scores against the mask. Unreadable images are skipped with a warning.
 */
export async function segmentWithNeurons(model: ClipModel, items: SegItem[], perClass: NeuronRef[][], classifier: F32, classNames: string[], opts: NeuronSegmentationOptions): Promise<NeuronSegmentationRun> {
  const bs = opts.batchSize ?? 8;
  const S = model.config.vision.imageSize;
  const meter = new SegmentationMeter();
  const images: SegmentRow[] = [];
  const scores: Float32Array[] = [];
  const targets: Uint8Array[] = [];
  opts.onProgress?.(0, items.length);
  for (let b0 = 0; b0 < items.length; b0 += bs) {
    const { pre, ok } = await loadSegBatch(model, items.slice(b0, b0 + bs), opts.geometry, opts.onWarning);
    if (ok.length) {
      const r = await neuronClassMaps(model, pre.pixels, perClass, classifier, bs);
      const g2 = r.grid * r.grid;
      for (let j = 0; j < ok.length; j++) {
        const { item, gt } = ok[j];
        const hm = neuronHeatmap(r.maps.subarray(j * g2, (j + 1) * g2), r.grid, S);
        const row: SegmentRow = { name: item.name, target: classNames[r.chosenClass[j]] };
        if (gt) {
          const s = segmentationScores(hm, gt);
          meter.add(s);
          Object.assign(row, { pixelAccuracy: s.correct / s.labeled, iouForeground: s.union[1] > 0 ? s.inter[1] / s.union[1] : 0, ap: s.ap });
          if (opts.prCurve) {
            scores.push(hm.heat);
            targets.push(gt);
          }
        }
        images.push(row);
        await opts.onImage?.({ name: item.name, target: row.target, rgb: pre.u8.subarray(j * S * S * 3, (j + 1) * S * S * 3), heat: hm.heat, mask: hm.mask, gt });
      }
    }
    opts.onProgress?.(Math.min(items.length, b0 + bs), items.length);
  }
  const scored = images.some((r) => r.ap !== undefined);
  let prCurve: NeuronSegmentationRun['prCurve'];
  if (scores.length) {
    const n = scores.reduce((a, x) => a + x.length, 0);
    const sc = new Float32Array(n), tg = new Uint8Array(n);
    let off = 0;
    scores.forEach((x, i) => {
      sc.set(x, off);
      tg.set(targets[i], off);
      off += x.length;
    });
    const c = precisionRecallCurve(sc, tg);
    prCurve = { ...c, pooledAp: curveAveragePrecision(c) };
  }
  return { images, metrics: scored ? meter.result() : undefined, prCurve };
}
