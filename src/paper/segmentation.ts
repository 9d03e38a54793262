// §6 zero-shot segmentation on ImageNet-segmentation (gtsegs_ijcv.mat) with the paper's protocol
// (compute_segmentations.py): each image's predicted ImageNet class, its direction minus the
// mean over classes, the per-patch decomposition along it; masks squashed to the input square
// (mask geometry 'reference'). Next to it, on the same images and with the same post-processing
// and metrics, the gradient-free baselines: last-layer raw attention and attention rollout.
// Scores are appended per image to a resume file, so a killed run continues where it stopped.

import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { rawAttentionMap, rolloutMap } from '../analyses/attention_maps.ts';
import { heatmapAndMask, segmentationScores, SegmentationMeter, type SegmentationResult, type SegmentationScores } from '../analyses/segmentation.ts';
import { classDirection, predictClasses, segmentSpatial, spatialMaps } from '../analyses/spatial_studies.ts';
import type { TextSet } from '../analyses/text_sets.ts';
import { Decomposer } from '../decompose/decomposer.ts';
import { resizeNearest } from '../io/resample.ts';
import type { SegmentationMat } from '../io/segmentation_mat.ts';
import type { ClipModel } from '../model/clip.ts';
import { preprocessDecodedBatch } from '../model/preprocess_model.ts';
import { f32 } from '../tensor.ts';
import { ProvenanceError } from '../errors.ts';
import type { ModelId } from './plan.ts';

export const SEG_METHODS = ['decomposition', 'raw attention', 'attention rollout'] as const;
export type SegMethod = (typeof SEG_METHODS)[number];

interface ImageLine {
  i: number;
  predicted: string;
  /** undefined: the image or its mask could not be used. */
  scores?: Record<SegMethod, SegmentationScores>;
  skipped?: string;
  /** Patch maps of the first images (figures). */
  maps?: Record<SegMethod, number[]>;
}

export interface SegmentationSection {
  images: number;
  scored: number;
  skipped: { i: number; reason: string }[];
  geometry: 'reference';
  grid: number;
  size: number;
  results: Partial<Record<SegMethod, SegmentationResult>>;
  examples: { i: number; predicted: string; maps: Record<SegMethod, number[]> }[];
}

export interface SegmentationOptions {
  limit?: number;
  batch?: number;
  /** Images whose maps are kept for figures. */
  examples?: number;
  /** Per-image progress file (JSON lines; first line the run's key). */
  resume: string;
  progress?: (done: number, total: number) => void;
}

function readResume(path: string, key: Record<string, unknown>, model: ModelId): Map<number, ImageLine> {
  const done = new Map<number, ImageLine>();
  if (!existsSync(path)) {
    writeFileSync(path, `${JSON.stringify(key)}\n`);
    return done;
  }
  const lines = readFileSync(path, 'utf8').split('\n');
  let head: Record<string, unknown> & { model?: ModelId } = {};
  try {
    head = JSON.parse(lines[0]);
  } catch {
    /* not ours: start again below */
  }
  if (head.model && (head.model as ModelId).fingerprint !== model.fingerprint)
    throw new ProvenanceError(`segmentation progress ${path} was made by model '${head.model.name}' (fingerprint ${head.model.fingerprint}), not '${model.name}' (fingerprint ${model.fingerprint})`);
  if (JSON.stringify(head) !== JSON.stringify(key)) {
    writeFileSync(path, `${JSON.stringify(key)}\n`);
    return done;
  }
  let intact = lines.length;
  for (let k = 1; k < lines.length; k++) {
    if (!lines[k]) continue;
    try {
      const l = JSON.parse(lines[k]) as ImageLine;
      done.set(l.i, l);
    } catch {
      intact = k;
      break;
    }
  }
  if (intact < lines.length) writeFileSync(path, `${lines.slice(0, intact).join('\n')}\n`);
  return done;
}

export async function segmentationSection(model: ClipModel, modelId: ModelId, mat: SegmentationMat, classifier: TextSet, opts: SegmentationOptions): Promise<SegmentationSection> {
  const n = Math.min(mat.length, opts.limit ?? mat.length);
  const bs = opts.batch ?? 8;
  const nEx = opts.examples ?? 4;
  const S = model.config.vision.imageSize;
  const { grid } = model.dims();
  const cls = classifier.embeddings;
  const key = { cliplens: 'paper-segmentation', model: modelId, source: mat.path, images: n, classes: classifier.names.length, geometry: 'reference' };
  const done = readResume(opts.resume, key, modelId);
  const dec = new Decomposer(model);
  const todo = Array.from({ length: n }, (_, i) => i).filter((i) => !done.has(i));
  opts.progress?.(n - todo.length, n);
  for (let b0 = 0; b0 < todo.length; b0 += bs) {
    const idx = todo.slice(b0, b0 + bs);
    const loaded = idx.map((i) => {
      try {
        return { image: mat.image(i), mask: mat.mask(i) };
      } catch (e) {
        return (e as Error).message.split('\n')[0];
      }
    });
    const pre = preprocessDecodedBatch(model.config, loaded.map((l) => (typeof l === 'string' ? l : l.image)));
    const ok = idx.map((_, j) => j).filter((j) => pre.errors[j] === undefined);
    const lines: ImageLine[] = [];
    idx.forEach((i, j) => {
      if (pre.errors[j] !== undefined) lines.push({ i, predicted: '', skipped: pre.errors[j] });
    });
    if (ok.length) {
      const pred = await predictClasses(model, pre.pixels, cls);
      const maps = await spatialMaps(dec, pre.pixels, Array.from(pred, (c) => classDirection(cls, c)), bs);
      const { attn_mean } = await model.runVision(pre.pixels, ['attn_mean'], bs);
      const [, L, N] = attn_mean.shape;
      ok.forEach((j, q) => {
        const i = idx[j];
        const { image, mask } = loaded[j] as { image: { width: number; height: number }; mask: { width: number; height: number; data: Uint8Array } };
        const predicted = classifier.names[pred[q]];
        if (mask.width !== image.width || mask.height !== image.height) {
          lines.push({ i, predicted, skipped: `mask is ${mask.width}×${mask.height} but the image is ${image.width}×${image.height}` });
          return;
        }
        // Reference geometry: the mask squashed to S×S (nearest) while the image is resized and centre-cropped.
        const gt = resizeNearest(mask.data, mask.width, mask.height, 1, S, S);
        const attn = f32([L, N, N], attn_mean.data.subarray(q * L * N * N, (q + 1) * L * N * N));
        const patch: Record<SegMethod, Float32Array> = {
          decomposition: segmentSpatial(maps[q], grid, S).patchMap,
          'raw attention': rawAttentionMap(attn),
          'attention rollout': rolloutMap(attn),
        };
        const scores = Object.fromEntries(SEG_METHODS.map((m) => [m, segmentationScores(heatmapAndMask(patch[m], grid, S, S), gt)])) as Record<SegMethod, SegmentationScores>;
        lines.push({ i, predicted, scores, ...(i < nEx ? { maps: Object.fromEntries(SEG_METHODS.map((m) => [m, Array.from(patch[m])])) as Record<SegMethod, number[]> } : {}) });
      });
    }
    lines.sort((a, b) => a.i - b.i);
    for (const l of lines) {
      appendFileSync(opts.resume, `${JSON.stringify(l)}\n`);
      done.set(l.i, l);
    }
    opts.progress?.(n - todo.length + Math.min(todo.length, b0 + bs), n);
  }
  const all = Array.from({ length: n }, (_, i) => done.get(i)!).filter(Boolean);
  const results: Partial<Record<SegMethod, SegmentationResult>> = {};
  const scored = all.filter((l) => l.scores);
  if (scored.length)
    for (const m of SEG_METHODS) {
      const meter = new SegmentationMeter();
      for (const l of scored) meter.add(l.scores![m]);
      results[m] = meter.result();
    }
  return {
    images: n,
    scored: scored.length,
    skipped: all.filter((l) => l.skipped).map((l) => ({ i: l.i, reason: l.skipped! })),
    geometry: 'reference',
    grid,
    size: S,
    results,
    examples: all.filter((l) => l.maps).map((l) => ({ i: l.i, predicted: l.predicted, maps: l.maps! })),
  };
}
