import { appendFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { normalizeRows } from '../analyses/linalg.ts';
import type { SegmentationScores } from '../analyses/segmentation.ts';
import { classDirection, predictClasses, segmentationSummary, segmentSpatial, spatialMaps } from '../analyses/spatial_studies.ts';
import { Decomposer } from '../decompose/decomposer.ts';
import { loadDataset } from '../io/datasets.ts';
import { decodeImage, type DecodedImage } from '../io/image.ts';
import { fitMask, maskFolder, matUnsupported, readMask, stemOf, type BinaryMask } from '../io/masks.ts';
import { resizeNearest } from '../io/resample.ts';
import { openSegmentationMat, type SegmentationMat } from '../io/segmentation_mat.ts';
import { preprocessDecodedBatch } from '../model/preprocess_model.ts';
import { encodePng, imageGrid, type RGBImage } from '../report/figures.ts';

import { modelFromFlags, parseIntFlag, progressBar, withModelOptions, type ModelFlags } from './common.ts';
import { blendMap, finish, maskImage, openTextSet } from './study_common.ts';
import { UsageError } from '../errors.ts';

interface SegmentFlags extends ModelFlags {
  text?: string;
  class?: string;
  classifier?: string;
  dataset?: string;
  masks?: string;
  mat?: string;
  limit?: string;
  maskGeometry: string;
  resume?: string;
  report?: string;
  outDir?: string;
  json?: boolean;
  batchSize: string;
}

/** One image to segment and, when there is one, its ground-truth mask at the image's own size. */
interface SegItem {
  name: string;
  /** Throws (one line) when the image cannot be read; mask undefined when there is none. */
  load(): Promise<{ image: DecodedImage; mask?: BinaryMask }>;
}

function fileItems(paths: string[], masks: Map<string, string> | undefined, masksDir: string | undefined, onMissing: () => void): SegItem[] {
  return paths.map((path) => {
    const name = stemOf(path);
    return {
      name,
      load: async () => {
        const image = await decodeImage(path);
        const mp = masks?.get(name);
        if (masks && !mp) {
          onMissing();
          process.stderr.write(`warning: no mask for ${path} (looked for '${name}.*' in ${masksDir})\n`);
        }
        return { image, mask: mp ? await readMask(mp) : undefined };
      },
    };
  });
}

function matItems(mat: SegmentationMat, n: number): SegItem[] {
  const stem = stemOf(mat.path);
  return Array.from({ length: n }, (_, i) => ({ name: `${stem}_${i}`, load: async () => ({ image: mat.image(i), mask: mat.mask(i) }) }));
}

const GEOMETRIES = ['aligned', 'reference'] as const;
type MaskGeometry = (typeof GEOMETRIES)[number];

/**
 * The mask on the model's S×S input. aligned: resized and centre-cropped exactly as the image,
 * so mask pixels lie under image pixels. reference: squashed to S×S (nearest), as the
 * reference's ImageNet-segmentation script does while it crops the image; the two differ
 * for non-square images.
 */
function maskOnInput(mask: BinaryMask, image: DecodedImage, S: number, geometry: MaskGeometry): Uint8Array {
  if (mask.width !== image.width || mask.height !== image.height)
    throw new Error(`mask is ${mask.width}×${mask.height} but the image is ${image.width}×${image.height}`);
  return geometry === 'aligned' ? fitMask(mask, S).data : resizeNearest(mask.data, mask.width, mask.height, 1, S, S);
}

interface Row {
  name: string;
  target: string;
  pixelAccuracy?: number;
  iouForeground?: number;
  ap?: number;
}

export function segmentCommand(): Command {
  return withModelOptions(new Command('segment'))
    .description('zero-shot segmentation from the per-patch decomposition along a text or class direction, evaluated against masks')
    .argument('[images...]', 'image files')
    .option('--text <text>', 'segment what this text describes')
    .option('--class <name>', 'segment this class of --classifier (direction minus the mean over classes)')
    .option('--classifier <file>', "zero-shot classifier; without --class each image's predicted class is used")
    .option('--dataset <dir|csv|list>', 'images to segment (instead of image arguments)')
    .option('--masks <dir>', 'folder of ground-truth masks with the same file stems as the images (foreground = non-black)')
    .option('--mat <file>', "ImageNet-segmentation's gtsegs_ijcv.mat (MATLAB v7.3): images and masks both come from it")
    .option('--limit <n>', 'segment only the first n images')
    .option('--mask-geometry <how>', "aligned: masks resized and centre-cropped like the images; reference: masks squashed to the input square as the paper's script does (use it to compare with the paper's numbers)", 'aligned')
    .option('--resume <file>', 'record every scored image in this JSON-lines file; run again with the same file to continue after an interruption')
    .option('--report <dir>', 'write a report here')
    .option('--out-dir <dir>', 'save one overlay PNG per image here')
    .option('--json', 'print the metrics and per-image scores as JSON on stdout')
    .option('--batch-size <n>', 'images per forward pass', '8')
    .action(async (images: string[], o: SegmentFlags) => {
      if (!!o.text === !!(o.class || o.classifier)) throw new UsageError('give either --text or --classifier (with or without --class)');
      if (o.class && !o.classifier) throw new UsageError('--class needs --classifier');
      if ([images.length > 0, !!o.dataset, !!o.mat].filter(Boolean).length > 1) throw new UsageError('give one of: image files, --dataset, --mat');
      if (o.mat && o.masks) throw new UsageError('--mat holds its own masks; do not give --masks with it');
      if (!o.report && !o.outDir && !o.json) throw new UsageError('give --report DIR, --out-dir DIR and/or --json');
      if (!(GEOMETRIES as readonly string[]).includes(o.maskGeometry)) throw new UsageError(`--mask-geometry must be one of ${GEOMETRIES.join(', ')}, got '${o.maskGeometry}'`);
      const geometry = o.maskGeometry as MaskGeometry;
      const limit = o.limit === undefined ? undefined : parseIntFlag(o.limit, 'limit', 1)!;
      const bs = parseIntFlag(o.batchSize, 'batch-size')!;
      let masks: Map<string, string> | undefined;
      if (o.masks) {
        if (!existsSync(o.masks)) throw new UsageError(`--masks ${o.masks} does not exist`);
        if (!statSync(o.masks).isDirectory()) throw matUnsupported(o.masks);
        masks = maskFolder(o.masks);
      }
      let skipped = 0;
      let mat: SegmentationMat | undefined;
      let items: SegItem[];
      if (o.mat) {
        mat = await openSegmentationMat(o.mat);
        items = matItems(mat, Math.min(mat.length, limit ?? mat.length));
      } else {
        const paths = (o.dataset ? loadDataset(o.dataset).items.map((i) => i.path) : images).slice(0, limit);
        if (!paths.length) throw new UsageError('no images: give image files, --dataset or --mat');
        for (const p of paths) if (!existsSync(p)) throw new UsageError(`image ${p} does not exist`);
        items = fileItems(paths, masks, o.masks, () => skipped++);
      }
      try {
        await segmentItems(items, o, geometry, bs, () => skipped, o.mat ?? o.dataset ?? `${images.length} image files`);
      } finally {
        mat?.close();
      }
    });
}

/** What a resume file must agree on with the run that continues it. */
interface RunKey {
  cliplens: 'segment';
  model: string;
  target: string;
  geometry: MaskGeometry;
  source: string;
}

interface Done {
  row: Row;
  scores?: SegmentationScores;
}

/**
 * Images already scored by an earlier run with the same key. A line cut by a kill is ignored;
 * a file from another run is refused rather than mixed in.
 */
function readResume(path: string, key: RunKey): Map<string, Done> {
  const done = new Map<string, Done>();
  if (!existsSync(path)) {
    writeFileSync(path, `${JSON.stringify(key)}\n`);
    return done;
  }
  const lines = readFileSync(path, 'utf8').split('\n');
  let head: Partial<RunKey> = {};
  try {
    head = JSON.parse(lines[0]) as Partial<RunKey>;
  } catch {
    /* reported below */
  }
  if (head.cliplens !== 'segment') throw new UsageError(`--resume ${path} is not a cliplens segment progress file`);
  for (const k of ['model', 'target', 'geometry', 'source'] as const)
    if (head[k] !== key[k]) throw new UsageError(`--resume ${path} belongs to another run (${k} '${head[k]}', now '${key[k]}'); give a new file or delete it`);
  let intact = lines.length;
  for (let i = 1; i < lines.length; i++) {
    if (!lines[i]) continue;
    try {
      const d = JSON.parse(lines[i]) as Done;
      done.set(d.row.name, d);
    } catch {
      intact = i;
      break;
    }
  }
  // Drop a torn last line so appends start on a fresh line.
  if (intact < lines.length) writeFileSync(path, `${lines.slice(0, intact).join('\n')}\n`);
  return done;
}

async function segmentItems(items: SegItem[], o: SegmentFlags, geometry: MaskGeometry, bs: number, skippedWithoutMask: () => number, source: string): Promise<void> {
  const cls = o.classifier ? openTextSet(o.classifier, 'classifier') : undefined;
  const model = await modelFromFlags(o);
  const d = model.config.embedDim;
  const { grid } = model.dims();
  const S = model.config.vision.imageSize;
  let fixed: Float32Array | undefined;
  let fixedName = '';
  if (o.text) {
    fixed = normalizeRows((await model.encodeTexts([o.text])).features.data, 1, d);
    fixedName = o.text;
  } else if (cls && o.class) {
    if (cls.embeddings.shape[1] !== d) throw new UsageError(`--classifier has embedding size ${cls.embeddings.shape[1]}, the model has ${d}`);
    const c = cls.names.indexOf(o.class);
    if (c < 0) throw new UsageError(`class '${o.class}' is not in the classifier (${cls.names.slice(0, 8).join(', ')}${cls.names.length > 8 ? ', …' : ''})`);
    fixed = classDirection(cls.embeddings, c);
    fixedName = o.class;
  } else if (cls && cls.embeddings.shape[1] !== d) throw new UsageError(`--classifier has embedding size ${cls.embeddings.shape[1]}, the model has ${d}`);
  if (o.outDir) mkdirSync(o.outDir, { recursive: true });
  const dec = new Decomposer(model);
  const key: RunKey = { cliplens: 'segment', model: model.name, target: o.text ? `text:${o.text}` : o.class ? `class:${o.class} of ${o.classifier}` : `predicted class of ${o.classifier}`, geometry, source };
  const done = o.resume ? readResume(o.resume, key) : new Map<string, Done>();
  const todo = items.filter((it) => !done.has(it.name));
  if (done.size) process.stderr.write(`resuming: ${items.length - todo.length} of ${items.length} images already scored in ${o.resume}\n`);
  // Only scores are kept per image (not maps), so thousands of images fit in memory.
  const fresh = new Map<string, Done>();
  const panels: RGBImage[] = [];
  const bar = progressBar('segment', items.length);
  bar.update(items.length - todo.length);
  for (let b0 = 0; b0 < todo.length; b0 += bs) {
    const chunk = todo.slice(b0, b0 + bs);
    const loaded = await Promise.all(chunk.map((it) => it.load().catch((e: Error) => e.message.split('\n')[0])));
    const pre = preprocessDecodedBatch(model.config, loaded.map((l) => (typeof l === 'string' ? l : l.image)));
    const okIdx = chunk.map((_, j) => j).filter((j) => pre.errors[j] === undefined);
    chunk.forEach((it, j) => {
      if (pre.errors[j] !== undefined) process.stderr.write(`warning: skipped ${it.name}: ${pre.errors[j]}\n`);
    });
    const ok = okIdx.map((j) => ({ item: chunk[j], ...(loaded[j] as { image: DecodedImage; mask?: BinaryMask }) }));
    if (!ok.length) continue;
    let dirs: Float32Array[];
    let names: string[];
    if (fixed) {
      dirs = [fixed];
      names = ok.map(() => fixedName);
    } else {
      const pred = await predictClasses(model, pre.pixels, cls!.embeddings);
      dirs = Array.from(pred, (c) => classDirection(cls!.embeddings, c));
      names = Array.from(pred, (c) => cls!.names[c]);
    }
    const maps = await spatialMaps(dec, pre.pixels, dirs, bs);
    for (let j = 0; j < ok.length; j++) {
      const { name } = ok[j].item;
      let gt: Uint8Array | undefined;
      const mask = ok[j].mask;
      if (mask) {
        try {
          gt = maskOnInput(mask, ok[j].image, S, geometry);
        } catch (e) {
          process.stderr.write(`warning: ${name} not scored: ${(e as Error).message}\n`);
        }
      }
      const seg = segmentSpatial(maps[j], grid, S, gt);
      const row: Row = { name, target: names[j] };
      if (seg.scores) {
        const s = seg.scores;
        row.pixelAccuracy = s.correct / s.labeled;
        row.iouForeground = s.union[1] > 0 ? s.inter[1] / s.union[1] : 0;
        row.ap = s.ap;
      }
      fresh.set(name, { row, scores: seg.scores });
      if (o.resume) appendFileSync(o.resume, `${JSON.stringify({ row, scores: seg.scores })}\n`);
      const u8 = pre.u8.subarray(j * S * S * 3, (j + 1) * S * S * 3);
      const overlay = blendMap(u8, S, S, seg.heatmap.heat, S, S, { range: [0, 1], caption: `${name}: ${names[j]}` });
      if (o.outDir) writeFileSync(join(o.outDir, `${name}.png`), await encodePng(overlay));
      if (o.report && panels.length < 36) {
        panels.push(overlay, maskImage(seg.heatmap.mask, S, S, 'predicted'));
        panels.push(gt ? maskImage(gt, S, S, 'ground truth') : { ...maskImage(new Uint8Array(S * S), S, S, 'no mask') });
      }
    }
    bar.update(items.length - todo.length + Math.min(todo.length, b0 + bs));
  }
  bar.stop();
  const all = items.map((it) => done.get(it.name) ?? fresh.get(it.name)).filter((x): x is Done => x !== undefined);
  if (!all.length) throw new UsageError('no image could be read');
  const rows = all.map((x) => x.row);
  const results = all.map((x) => ({ scores: x.scores }));
  const scored = results.filter((r) => r.scores);
  const metrics = scored.length ? segmentationSummary(scored) : undefined;
  if (metrics)
    process.stderr.write(`pixel accuracy ${(100 * metrics.pixelAccuracy).toFixed(2)}, mIoU ${(100 * metrics.mIoU).toFixed(2)}, mAP ${(100 * metrics.mAP).toFixed(2)} over ${metrics.images} images\n`);
  if (o.outDir) process.stderr.write(`wrote ${fresh.size} overlays to ${o.outDir}\n`);
  const out = { model: model.name, target: o.text ? { text: o.text } : o.class ? { class: o.class } : { class: 'predicted' }, metrics, images: rows, skippedWithoutMask: skippedWithoutMask(), ...(o.mat ? { maskGeometry: geometry } : o.masks ? { maskGeometry: geometry } : {}) };
  await finish(o, out, async () => ({
    title: 'Zero-shot segmentation from the decomposition',
    summary: metrics
      ? `Pixel accuracy ${(100 * metrics.pixelAccuracy).toFixed(2)}%, mIoU ${(100 * metrics.mIoU).toFixed(2)}%, mAP ${(100 * metrics.mAP).toFixed(2)}% over ${metrics.images} images.`
      : `${results.length} images segmented (no masks given).`,
    meta: { model: model.name, target: o.text ?? o.class ?? 'predicted class', images: results.length, ...(o.masks ? { masks: o.masks } : {}), ...(o.mat ? { 'images and masks': o.mat } : {}), ...(o.masks || o.mat ? { 'mask geometry': geometry } : {}), ...(done.size ? { 'scored by earlier runs (--resume; no overlays)': done.size } : {}) },
    sections: [
      {
        title: 'Method',
        text: [
          "Map over patches: the direct contribution of every patch along the direction, summed over layers and heads (the folded spatial path), minus the mean over classes when a classifier is used.",
          'Post-processing as the reference: bilinear upsampling to the input size, clip at 0, min–max normalisation, threshold at the mean.',
          geometry === 'aligned'
            ? 'Masks are resized (nearest) and centre-cropped like the images (--mask-geometry aligned).'
            : "Masks are squashed to the input square (nearest) while the images are resized and centre-cropped, as the paper's script does (--mask-geometry reference); for non-square images mask and image pixels do not line up.",
        ],
      },
      ...(metrics
        ? [{ title: 'Metrics', tables: [{ headers: ['pixel accuracy (%)', 'IoU background (%)', 'IoU foreground (%)', 'mIoU (%)', 'mAP (%)', 'images'], rows: [[100 * metrics.pixelAccuracy, 100 * metrics.iou[0], 100 * metrics.iou[1], 100 * metrics.mIoU, 100 * metrics.mAP, metrics.images]] }] }]
        : []),
      {
        title: 'Images',
        tables: [{ headers: ['image', 'segmented', 'pixel acc (%)', 'IoU fg (%)', 'AP (%)'], rows: rows.map((r) => [r.name, r.target, ...[r.pixelAccuracy, r.iouForeground, r.ap].map((v) => (v === undefined ? '' : Number((100 * v).toFixed(2))))]) }],
        figures: panels.length ? [{ name: 'overlays', png: await imageGrid(panels, 3, { title: 'map, predicted mask, ground truth' }), caption: 'per image: the heatmap over the image, the thresholded mask, the ground-truth mask' }] : [],
      },
    ],
    data: out,
  }));
}
