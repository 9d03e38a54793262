import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { normalizeRows } from '../analyses/linalg.ts';
import { classDirection, predictClasses, segmentationSummary, segmentSpatial, spatialMaps, type SegmentedImage } from '../analyses/spatial_studies.ts';
import { Decomposer } from '../decompose/decomposer.ts';
import { loadDataset } from '../io/datasets.ts';
import { fitMask, maskFolder, matUnsupported, readMask, stemOf } from '../io/masks.ts';
import { preprocessFiles } from '../model/preprocess_model.ts';
import { encodePng, imageGrid, type RGBImage } from '../report/figures.ts';

import { modelFromFlags, parseIntFlag, progressBar, UsageError, withModelOptions, type ModelFlags } from './common.ts';
import { blendMap, finish, maskImage, openTextSet } from './study_common.ts';

interface SegmentFlags extends ModelFlags {
  text?: string;
  class?: string;
  classifier?: string;
  dataset?: string;
  masks?: string;
  report?: string;
  outDir?: string;
  json?: boolean;
  batchSize: string;
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
    .option('--report <dir>', 'write a report here')
    .option('--out-dir <dir>', 'save one overlay PNG per image here')
    .option('--json', 'print the metrics and per-image scores as JSON on stdout')
    .option('--batch-size <n>', 'images per forward pass', '8')
    .action(async (images: string[], o: SegmentFlags) => {
      if (!!o.text === !!(o.class || o.classifier)) throw new UsageError('give either --text or --classifier (with or without --class)');
      if (o.class && !o.classifier) throw new UsageError('--class needs --classifier');
      if (o.dataset && images.length) throw new UsageError('give either image files or --dataset, not both');
      if (!o.report && !o.outDir && !o.json) throw new UsageError('give --report DIR, --out-dir DIR and/or --json');
      let masks: Map<string, string> | undefined;
      if (o.masks) {
        if (!existsSync(o.masks)) throw new UsageError(`--masks ${o.masks} does not exist`);
        if (!statSync(o.masks).isDirectory()) throw matUnsupported(o.masks);
        masks = maskFolder(o.masks);
      }
      const paths = o.dataset ? loadDataset(o.dataset).items.map((i) => i.path) : images;
      if (!paths.length) throw new UsageError('no images: give image files or --dataset');
      for (const p of paths) if (!existsSync(p)) throw new UsageError(`image ${p} does not exist`);
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
      const bs = parseIntFlag(o.batchSize, 'batch-size')!;
      const rows: Row[] = [];
      const results: SegmentedImage[] = [];
      const panels: RGBImage[] = [];
      const bar = progressBar('segment', paths.length);
      let skipped = 0;
      for (let b0 = 0; b0 < paths.length; b0 += bs) {
        const chunk = paths.slice(b0, b0 + bs);
        const pre = await preprocessFiles(model.config, chunk);
        const ok = chunk.filter((_, j) => pre.errors[j] === undefined);
        chunk.forEach((p, j) => pre.errors[j] !== undefined && process.stderr.write(`warning: skipped ${p}: ${pre.errors[j]}\n`));
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
          const name = stemOf(ok[j]);
          let gt: Uint8Array | undefined;
          if (masks) {
            const mp = masks.get(name);
            if (mp) gt = fitMask(await readMask(mp), S).data;
            else {
              skipped++;
              process.stderr.write(`warning: no mask for ${ok[j]} (looked for '${name}.*' in ${o.masks})\n`);
            }
          }
          const seg = segmentSpatial(maps[j], grid, S, gt);
          results.push(seg);
          const row: Row = { name, target: names[j] };
          if (seg.scores) {
            const s = seg.scores;
            row.pixelAccuracy = s.correct / s.labeled;
            row.iouForeground = s.union[1] > 0 ? s.inter[1] / s.union[1] : 0;
            row.ap = s.ap;
          }
          rows.push(row);
          const u8 = pre.u8.subarray(j * S * S * 3, (j + 1) * S * S * 3);
          const overlay = blendMap(u8, S, S, seg.heatmap.heat, S, S, { range: [0, 1], caption: `${name}: ${names[j]}` });
          if (o.outDir) writeFileSync(join(o.outDir, `${name}.png`), await encodePng(overlay));
          if (o.report && panels.length < 36) {
            panels.push(overlay, maskImage(seg.heatmap.mask, S, S, 'predicted'));
            panels.push(gt ? maskImage(gt, S, S, 'ground truth') : { ...maskImage(new Uint8Array(S * S), S, S, 'no mask') });
          }
        }
        bar.update(Math.min(paths.length, b0 + bs));
      }
      bar.stop();
      if (!results.length) throw new UsageError('no image could be read');
      const scored = results.filter((r) => r.scores);
      const metrics = scored.length ? segmentationSummary(scored) : undefined;
      if (metrics)
        process.stderr.write(`pixel accuracy ${(100 * metrics.pixelAccuracy).toFixed(2)}, mIoU ${(100 * metrics.mIoU).toFixed(2)}, mAP ${(100 * metrics.mAP).toFixed(2)} over ${metrics.images} images\n`);
      if (o.outDir) process.stderr.write(`wrote ${results.length} overlays to ${o.outDir}\n`);
      const out = { model: model.name, target: o.text ? { text: o.text } : o.class ? { class: o.class } : { class: 'predicted' }, metrics, images: rows, skippedWithoutMask: skipped };
      await finish(o, out, async () => ({
        title: 'Zero-shot segmentation from the decomposition',
        summary: metrics
          ? `Pixel accuracy ${(100 * metrics.pixelAccuracy).toFixed(2)}%, mIoU ${(100 * metrics.mIoU).toFixed(2)}%, mAP ${(100 * metrics.mAP).toFixed(2)}% over ${metrics.images} images.`
          : `${results.length} images segmented (no masks given).`,
        meta: { model: model.name, target: o.text ?? o.class ?? 'predicted class', images: results.length, ...(o.masks ? { masks: o.masks } : {}) },
        sections: [
          {
            title: 'Method',
            text: [
              "Map over patches: the direct contribution of every patch along the direction, summed over layers and heads (the folded spatial path), minus the mean over classes when a classifier is used.",
              'Post-processing as the reference: bilinear upsampling to the input size, clip at 0, min–max normalisation, threshold at the mean. Masks are resized (nearest) and centre-cropped like the images.',
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
    });
}


