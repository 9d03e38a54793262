// §6 zero-shot segmentation on ImageNet-segmentation (gtsegs_ijcv.mat) with the paper's protocol
// (compute_segmentations.py): `cliplens segment`'s run with each image's predicted ImageNet class
// and masks squashed to the input square (mask geometry 'reference'); next to it, on the same
// images with the same post-processing and metrics, the gradient-free attention baselines. Both
// keep per-image progress files, so a killed run continues where it stopped.

import { ATTENTION_BASELINES, attentionBaselines, attentionPatchMaps, type AttentionBaseline } from '../analyses/segmentation_baselines.ts';
import type { SegmentationResult } from '../analyses/segmentation.ts';
import { matItems, segmentImages, type SegmentRow } from '../analyses/segmentation_study.ts';
import { classDirection, predictClasses, segmentSpatial, spatialMaps } from '../analyses/spatial_studies.ts';
import type { TextSet } from '../analyses/text_sets.ts';
import { Decomposer } from '../decompose/decomposer.ts';
import type { SegmentationMat } from '../io/segmentation_mat.ts';
import { preprocessDecodedBatch } from '../model/preprocess_model.ts';
import { ATTENTION_VARIANT } from '../graph/clip_graphs.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { f32 } from '../tensor.ts';

export const SEG_METHODS = ['decomposition', ...ATTENTION_BASELINES] as const;
export type SegMethod = 'decomposition' | AttentionBaseline;

export interface SegmentationSection {
  images: number;
  /** Images with a score, per method (the same images unless one could not be scored). */
  scored: number;
  /** Per image: name and the class it was segmented as, its scores (decomposition). */
  rows: SegmentRow[];
  geometry: 'reference';
  grid: number;
  size: number;
  results: Partial<Record<SegMethod, SegmentationResult>>;
  /** Patch maps [grid²] of the first images, per method (figures). */
  examples: { i: number; predicted: string; maps: Record<SegMethod, number[]> }[];
}

export interface SegmentationOptions {
  limit?: number;
  batch?: number;
  examples?: number;
  /** Progress files (JSON lines) of the two runs. */
  resume: { decomposition: string; attention: string };
  /** Names the classifier in the progress key. */
  classifierSource: string;
  progress?: (done: number, total: number) => void;
  warn?: (message: string) => void;
}

export async function segmentationSection(model: ClipModel, mat: SegmentationMat, classifier: TextSet, opts: SegmentationOptions): Promise<SegmentationSection> {
  const n = Math.min(mat.length, opts.limit ?? mat.length);
  const bs = opts.batch ?? 8;
  const items = matItems(mat, n);
  const S = model.config.vision.imageSize;
  const { grid } = model.dims();
  const dec = await segmentImages(model, items, { predicted: true, classifier, source: opts.classifierSource }, {
    geometry: 'reference',
    batchSize: bs,
    resume: opts.resume.decomposition,
    source: mat.path,
    onProgress: (d, t) => opts.progress?.(d, 2 * t),
    onWarning: opts.warn,
  });
  const att = await attentionBaselines(model, items, { geometry: 'reference', batchSize: bs, resume: opts.resume.attention, source: mat.path, onProgress: (d, t) => opts.progress?.(t + d, 2 * t), onWarning: opts.warn });

  // The first images' maps for the figures (a few images, computed again here).
  const nEx = Math.min(opts.examples ?? 4, n);
  const examples: SegmentationSection['examples'] = [];
  if (nEx) {
    const pre = preprocessDecodedBatch(model.config, Array.from({ length: nEx }, (_, i) => mat.image(i)));
    const ok = Array.from({ length: nEx }, (_, i) => i).filter((i) => pre.errors[i] === undefined);
    const cls = classifier.embeddings;
    const pred = await predictClasses(model, pre.pixels, cls);
    const maps = await spatialMaps(new Decomposer(model), pre.pixels, Array.from(pred, (c) => classDirection(cls, c)), bs);
    const { attn_mean } = await model.runVision(pre.pixels, ['attn_mean'], bs, ATTENTION_VARIANT);
    const [, L, N] = attn_mean.shape;
    ok.forEach((i, q) => {
      const a = attentionPatchMaps(f32([L, N, N], attn_mean.data.subarray(q * L * N * N, (q + 1) * L * N * N)));
      examples.push({ i, predicted: classifier.names[pred[q]], maps: { decomposition: Array.from(segmentSpatial(maps[q], grid, S).patchMap), 'raw attention': Array.from(a['raw attention']), 'attention rollout': Array.from(a['attention rollout']) } });
    });
  }
  return {
    images: n,
    scored: dec.metrics?.images ?? 0,
    rows: dec.images,
    geometry: 'reference',
    grid,
    size: S,
    results: { ...(dec.metrics ? { decomposition: dec.metrics } : {}), ...att.metrics },
    examples,
  };
}
