// The gradient-free baselines of the paper's segmentation table (§6.1): maps from the model's
// attention alone (last-layer raw attention, attention rollout; see attention_maps.ts), post-
// processed and scored exactly as the decomposition's maps are (segmentImages), over the same
// images and masks, in batches, resumable through a progress file.

import { ATTENTION_VARIANT } from '../graph/clip_graphs.ts';
import type { DecodedImage } from '../io/image.ts';
import type { BinaryMask } from '../io/masks.ts';
import { ProgressLog } from '../io/progress_log.ts';
import { modelProvenance } from '../io/provenance.ts';
import { preprocessDecodedBatch } from '../model/preprocess_model.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { f32, type F32 } from '../tensor.ts';
import { rawAttentionMap, rolloutMap } from './attention_maps.ts';
import { heatmapAndMask, segmentationScores, SegmentationMeter, type SegmentationResult, type SegmentationScores } from './segmentation.ts';
import { maskOnInput, type MaskGeometry, type SegItem } from './segmentation_study.ts';

export const ATTENTION_BASELINES = ['raw attention', 'attention rollout'] as const;
export type AttentionBaseline = (typeof ATTENTION_BASELINES)[number];

/** Each baseline's patch map [N−1] from one image's head-averaged attention [L, N, N]. */
export function attentionPatchMaps(attnMean: F32): Record<AttentionBaseline, Float32Array> {
  return { 'raw attention': rawAttentionMap(attnMean), 'attention rollout': rolloutMap(attnMean) };
}

interface ScoredImage {
  name: string;
  scores?: Record<AttentionBaseline, SegmentationScores>;
}

export interface AttentionBaselineRun {
  /** Per baseline, over the images with a mask. */
  metrics: Partial<Record<AttentionBaseline, SegmentationResult>>;
  scored: number;
  scoredEarlier: number;
}

export interface AttentionBaselineOptions {
  geometry: MaskGeometry;
  batchSize?: number;
  resume?: string;
  /** What the images are, in the progress key. */
  source: string;
  onProgress?: (done: number, total: number) => void;
  onWarning?: (message: string) => void;
}

/** The attention baselines on every item with a mask (unreadable images and mismatched masks are skipped with a warning). */
export async function attentionBaselines(model: ClipModel, items: SegItem[], opts: AttentionBaselineOptions): Promise<AttentionBaselineRun> {
  const bs = opts.batchSize ?? 8;
  const S = model.config.vision.imageSize;
  const { grid } = model.dims();
  const log = opts.resume ? ProgressLog.open<ScoredImage>(opts.resume, 'segment-attention', modelProvenance(model), { geometry: opts.geometry, source: opts.source }, (r) => r.name) : undefined;
  const done = log?.done ?? new Map<string, ScoredImage>();
  const todo = items.filter((it) => !done.has(it.name));
  opts.onProgress?.(items.length - todo.length, items.length);
  for (let b0 = 0; b0 < todo.length; b0 += bs) {
    const chunk = todo.slice(b0, b0 + bs);
    const loaded = await Promise.all(chunk.map((it) => it.load().catch((e: Error) => e.message.split('\n')[0])));
    const pre = preprocessDecodedBatch(model.config, loaded.map((l) => (typeof l === 'string' ? l : l.image)));
    const ok = chunk.flatMap((item, j) => (pre.errors[j] === undefined ? [{ item, ...(loaded[j] as { image: DecodedImage; mask?: BinaryMask }) }] : []));
    chunk.forEach((it, j) => {
      if (pre.errors[j] !== undefined) opts.onWarning?.(`skipped ${it.name}: ${pre.errors[j]}`);
    });
    if (ok.length) {
      const { attn_mean } = await model.runVision(pre.pixels, ['attn_mean'], bs, ATTENTION_VARIANT); // [B, L, N, N]
      const [, L, N] = attn_mean.shape;
      ok.forEach(({ item, image, mask }, q) => {
        let scores: ScoredImage['scores'];
        if (mask) {
          try {
            const gt = maskOnInput(mask, image, S, opts.geometry);
            const maps = attentionPatchMaps(f32([L, N, N], attn_mean.data.subarray(q * L * N * N, (q + 1) * L * N * N)));
            scores = Object.fromEntries(ATTENTION_BASELINES.map((m) => [m, segmentationScores(heatmapAndMask(maps[m], grid, S, S), gt)])) as Record<AttentionBaseline, SegmentationScores>;
          } catch (e) {
            opts.onWarning?.(`${item.name} not scored: ${(e as Error).message}`);
          }
        }
        const r: ScoredImage = { name: item.name, ...(scores ? { scores } : {}) };
        done.set(item.name, r);
        log?.append(r);
      });
    }
    opts.onProgress?.(items.length - todo.length + Math.min(todo.length, b0 + bs), items.length);
  }
  const scored = items.map((it) => done.get(it.name)).filter((r): r is ScoredImage => !!r?.scores);
  const metrics: AttentionBaselineRun['metrics'] = {};
  if (scored.length)
    for (const m of ATTENTION_BASELINES) {
      const meter = new SegmentationMeter();
      for (const r of scored) meter.add(r.scores![m]);
      metrics[m] = meter.result();
    }
  return { metrics, scored: scored.length, scoredEarlier: items.length - todo.length };
}
