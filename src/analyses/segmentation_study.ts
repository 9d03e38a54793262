// The paper's §6.1 over a set of images: zero-shot segmentation along a text, a class, or each
// image's predicted class, scored against ground-truth masks (pixel accuracy, mIoU, mAP), in
// batches, keeping only per-image scores so benchmark-sized runs fit in memory, and resumable
// through a progress file.

import { decodeImage, type DecodedImage } from '../io/image.ts';
import { fitMask, readMask, stemOf, type BinaryMask } from '../io/masks.ts';
import { ProgressLog } from '../io/progress_log.ts';
import { modelProvenance, provenanceFields, requireSameModel } from '../io/provenance.ts';
import { resizeNearest } from '../io/resample.ts';
import type { SegmentationMat } from '../io/segmentation_mat.ts';
import { preprocessDecodedBatch, type PreprocessedBatch } from '../model/preprocess_model.ts';
import type { ClipModel } from '../runtime/clip.ts';
import type { ImageDecomposer } from '../decompose/decomposer.ts';
import { decomposerFor } from '../decompose/decomposers.ts';
import { normalizeRows } from './linalg.ts';
import type { SegmentationResult, SegmentationScores } from './segmentation.ts';
import { classDirection, predictClasses, segmentationSummary, segmentSpatial, spatialMaps } from './spatial_studies.ts';
import type { TextSet } from './text_sets.ts';
import { AnalysisError } from '../errors.ts';

/** One image to segment and, when there is one, its ground-truth mask at the image's own size. */
export interface SegItem {
  name: string;
  /** Throws (one line) when the image cannot be read; mask undefined when there is none. */
  load(): Promise<{ image: DecodedImage; mask?: BinaryMask }>;
}

/** Image files, with masks by file stem from `masks` when given (`onMissingMask` hears of images without one). */
export function fileItems(paths: string[], masks?: Map<string, string>, onMissingMask?: (path: string, name: string) => void): SegItem[] {
  return paths.map((path) => {
    const name = stemOf(path);
    return {
      name,
      load: async () => {
        const image = await decodeImage(path);
        const mp = masks?.get(name);
        if (masks && !mp) onMissingMask?.(path, name);
        return { image, mask: mp ? await readMask(mp) : undefined };
      },
    };
  });
}

/** The first n images of ImageNet-segmentation's gtsegs_ijcv.mat with their masks. */
export function matItems(mat: SegmentationMat, n: number): SegItem[] {
  const stem = stemOf(mat.path);
  return Array.from({ length: n }, (_, i) => ({ name: `${stem}_${i}`, load: async () => ({ image: mat.image(i), mask: mat.mask(i) }) }));
}

export const MASK_GEOMETRIES = ['aligned', 'reference'] as const;
export type MaskGeometry = (typeof MASK_GEOMETRIES)[number];

/**
 * The mask on the model's S×S input. aligned: resized and centre-cropped exactly as the image,
 * so mask pixels lie under image pixels. reference: squashed to S×S (nearest), as the
 * reference's ImageNet-segmentation script does while it crops the image; the two differ
 * for non-square images.
 */
export function maskOnInput(mask: BinaryMask, image: DecodedImage, S: number, geometry: MaskGeometry): Uint8Array {
  if (mask.width !== image.width || mask.height !== image.height)
    throw new AnalysisError(`mask is ${mask.width}×${mask.height} but the image is ${image.width}×${image.height}`);
  return geometry === 'aligned' ? fitMask(mask, S).data : resizeNearest(mask.data, mask.width, mask.height, 1, S, S);
}

/** What to segment: a text, one class of a classifier, or each image's predicted class. `source` names the classifier (its file) in the progress key. */
export type SegmentTarget = { text: string } | { class: string; classifier: TextSet; source: string } | { predicted: true; classifier: TextSet; source: string };

export interface SegmentRow {
  name: string;
  /** The text or class segmented. */
  target: string;
  pixelAccuracy?: number;
  iouForeground?: number;
  ap?: number;
}

/** What a progress file records per image. */
interface ScoredImage {
  row: SegmentRow;
  scores?: SegmentationScores;
}

/** One freshly segmented image, for overlays: the model's input (RGB [S, S, 3]), the heatmap and masks [S·S]. */
export interface SegmentedInput {
  name: string;
  target: string;
  rgb: Uint8Array;
  heat: Float32Array;
  mask: Uint8Array;
  gt?: Uint8Array;
}

export interface SegmentationOptions {
  geometry: MaskGeometry;
  batchSize?: number;
  /** Record every scored image in this progress file; continue from it when it exists. */
  resume?: string;
  /** What the images are (a file, a folder), in the progress key: a continuing run must name the same. */
  source: string;
  onImage?: (image: SegmentedInput) => void | Promise<void>;
  /** Called once when the progress file already holds scored images. */
  onResume?: (scored: number, total: number) => void;
  onProgress?: (done: number, total: number) => void;
  onWarning?: (message: string) => void;
}

export interface SegmentationRun {
  model: string;
  modelFingerprint?: string;
  /** Every readable image, in input order (earlier runs' included). */
  images: SegmentRow[];
  /** Over the images with a mask. */
  metrics?: SegmentationResult;
  /** Images scored by earlier runs (read from the progress file). */
  scoredEarlier: number;
  /** Images segmented by this run. */
  segmentedNow: number;
}

const targetKey = (t: SegmentTarget) => ('text' in t ? `text:${t.text}` : 'class' in t ? `class:${t.class} of ${t.source}` : `predicted class of ${t.source}`);

/** The target's direction [d] when it is the same for every image (text, class), else undefined. */
async function fixedDirection(model: ClipModel, target: SegmentTarget): Promise<Float32Array | undefined> {
  const d = model.config.embedDim;
  if ('text' in target) return normalizeRows((await model.encodeTexts([target.text])).features.data, 1, d);
  const cls = target.classifier;
  requireSameModel({ what: '--model', model: modelProvenance(model) }, { what: `classifier ${cls.path ?? target.source}`, model: cls.model });
  if (cls.embeddings.shape[1] !== d) throw new AnalysisError(`the classifier has embedding size ${cls.embeddings.shape[1]}, the model has ${d}`);
  if (!('class' in target)) return undefined;
  const c = cls.names.indexOf(target.class);
  if (c < 0) throw new AnalysisError(`class '${target.class}' is not in the classifier (${cls.names.slice(0, 8).join(', ')}${cls.names.length > 8 ? ', …' : ''})`);
  return classDirection(cls.embeddings, c);
}

/**
 * Segment every image along the target with the reference's post-processing (spatial maps
 * summed over layers and heads, bilinear upsampling, clip at 0, min–max, threshold at the mean)
 * and score it against its mask. Unreadable images are skipped with a warning.
 */
export async function segmentImages(model: ClipModel, items: SegItem[], target: SegmentTarget, opts: SegmentationOptions): Promise<SegmentationRun> {
  const bs = opts.batchSize ?? 8;
  const fixed = await fixedDirection(model, target);
  const log = opts.resume
    ? ProgressLog.open<ScoredImage>(opts.resume, 'segment', modelProvenance(model), { target: targetKey(target), geometry: opts.geometry, source: opts.source }, (r) => r.row.name)
    : undefined;
  const done = log?.done ?? new Map<string, ScoredImage>();
  const todo = items.filter((it) => !done.has(it.name));
  if (done.size) opts.onResume?.(items.length - todo.length, items.length);
  const fresh = new Map<string, ScoredImage>();
  const dec = decomposerFor(model);
  opts.onProgress?.(items.length - todo.length, items.length);
  for (let b0 = 0; b0 < todo.length; b0 += bs) {
    for (const s of await segmentBatch(dec, todo.slice(b0, b0 + bs), target, fixed, opts)) {
      fresh.set(s.row.name, s);
      log?.append(s);
    }
    opts.onProgress?.(items.length - todo.length + Math.min(todo.length, b0 + bs), items.length);
  }
  const all = items.map((it) => done.get(it.name) ?? fresh.get(it.name)).filter((x): x is ScoredImage => x !== undefined);
  const scored = all.filter((x) => x.scores);
  return { ...provenanceFields(modelProvenance(model)), images: all.map((x) => x.row), metrics: scored.length ? segmentationSummary(scored) : undefined, scoredEarlier: done.size, segmentedNow: fresh.size };
}

/** A batch of items loaded and preprocessed: pixels of the readable ones, each with its mask on the input (when it has one that fits). */
export interface LoadedSegBatch {
  pre: PreprocessedBatch;
  /** The readable items, in order; `pre.pixels` row j is ok[j]. */
  ok: { item: SegItem; gt?: Uint8Array }[];
}

/** Load and preprocess a batch of items; unreadable images and masks that do not fit are reported and left out (the mask) or skipped (the image). */
export async function loadSegBatch(model: ClipModel, chunk: SegItem[], geometry: MaskGeometry, onWarning?: (message: string) => void): Promise<LoadedSegBatch> {
  const S = model.config.vision.imageSize;
  const loaded = await Promise.all(chunk.map((it) => it.load().catch((e: Error) => e.message.split('\n')[0])));
  const pre = preprocessDecodedBatch(model.config, loaded.map((l) => (typeof l === 'string' ? l : l.image)));
  const ok: LoadedSegBatch['ok'] = [];
  chunk.forEach((item, j) => {
    if (pre.errors[j] !== undefined) return onWarning?.(`skipped ${item.name}: ${pre.errors[j]}`);
    const { image, mask } = loaded[j] as { image: DecodedImage; mask?: BinaryMask };
    let gt: Uint8Array | undefined;
    if (mask) {
      try {
        gt = maskOnInput(mask, image, S, geometry);
      } catch (e) {
        onWarning?.(`${item.name} not scored: ${(e as Error).message}`);
      }
    }
    ok.push({ item, gt });
  });
  return { pre, ok };
}

/** One batch: load, preprocess, find each image's direction, map, post-process and score. */
async function segmentBatch(dec: ImageDecomposer, chunk: SegItem[], target: SegmentTarget, fixed: Float32Array | undefined, opts: SegmentationOptions): Promise<ScoredImage[]> {
  const model = dec.model;
  const { grid } = model.dims();
  const S = model.config.vision.imageSize;
  const { pre, ok } = await loadSegBatch(model, chunk, opts.geometry, opts.onWarning);
  if (!ok.length) return [];
  let dirs: Float32Array[];
  let names: string[];
  if (fixed) {
    dirs = [fixed];
    names = ok.map(() => ('text' in target ? target.text : (target as { class: string }).class));
  } else {
    const cls = (target as { classifier: TextSet }).classifier;
    const pred = await predictClasses(model, pre.pixels, cls.embeddings);
    dirs = Array.from(pred, (c) => classDirection(cls.embeddings, c));
    names = Array.from(pred, (c) => cls.names[c]);
  }
  const maps = await spatialMaps(dec, pre.pixels, dirs, opts.batchSize ?? 8);
  const out: ScoredImage[] = [];
  for (let j = 0; j < ok.length; j++) {
    const { item, gt } = ok[j];
    const seg = segmentSpatial(maps[j], grid, S, gt);
    const row: SegmentRow = { name: item.name, target: names[j] };
    if (seg.scores) {
      const s = seg.scores;
      row.pixelAccuracy = s.correct / s.labeled;
      row.iouForeground = s.union[1] > 0 ? s.inter[1] / s.union[1] : 0;
      row.ap = s.ap;
    }
    out.push({ row, scores: seg.scores });
    await opts.onImage?.({ name: item.name, target: names[j], rgb: pre.u8.subarray(j * S * S * 3, (j + 1) * S * S * 3), heat: seg.heatmap.heat, mask: seg.heatmap.mask, gt });
  }
  return out;
}
