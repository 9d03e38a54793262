import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { fileItems, matItems, MASK_GEOMETRIES, segmentImages, type MaskGeometry, type SegItem, type SegmentTarget } from '../analyses/segmentation_study.ts';
import { loadDataset } from '../io/datasets.ts';
import { maskFolder, matUnsupported } from '../io/masks.ts';
import { openSegmentationMat, type SegmentationMat } from '../io/segmentation_mat.ts';
import { pct } from '../notation.ts';
import { blendMap, encodePng, maskImage, type RGBImage } from '../report/figures.ts';
import { segmentationReport } from '../report/study_reports.ts';
import { modelFromFlags, parseIntFlag, progressBar, withModelOptions, type ModelFlags } from './common.ts';
import { finish, openTextSet } from './study_common.ts';
import { UsageError } from '../errors.ts';
import { checkInputPath } from '../io/files.ts';

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
      if (!(MASK_GEOMETRIES as readonly string[]).includes(o.maskGeometry)) throw new UsageError(`--mask-geometry must be one of ${MASK_GEOMETRIES.join(', ')}, got '${o.maskGeometry}'`);
      const geometry = o.maskGeometry as MaskGeometry;
      const limit = o.limit === undefined ? undefined : parseIntFlag(o.limit, 'limit', 1)!;
      const bs = parseIntFlag(o.batchSize, 'batch-size')!;
      let masks: Map<string, string> | undefined;
      if (o.masks) {
        checkInputPath(o.masks, '--masks', 'any');
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
        for (const p of paths) checkInputPath(p, 'image');
        items = fileItems(paths, masks, (path, name) => {
          skipped++;
          process.stderr.write(`warning: no mask for ${path} (looked for '${name}.*' in ${o.masks})\n`);
        });
      }
      try {
        await segmentAndReport(items, o, geometry, bs, () => skipped, o.mat ?? o.dataset ?? `${images.length} image files`);
      } finally {
        mat?.close();
      }
    });
}

/** Run the segmentation, write overlays as they come, then print metrics and the JSON / report. */
async function segmentAndReport(items: SegItem[], o: SegmentFlags, geometry: MaskGeometry, bs: number, skippedWithoutMask: () => number, source: string): Promise<void> {
  const cls = o.classifier ? openTextSet(o.classifier, 'classifier') : undefined;
  const target: SegmentTarget = o.text ? { text: o.text } : o.class ? { class: o.class, classifier: cls!, source: o.classifier! } : { predicted: true, classifier: cls!, source: o.classifier! };
  const model = await modelFromFlags(o);
  const S = model.config.vision.imageSize;
  if (o.outDir) mkdirSync(o.outDir, { recursive: true });
  const panels: RGBImage[] = [];
  let bar: ReturnType<typeof progressBar> | undefined;
  const run = await segmentImages(model, items, target, {
    geometry,
    batchSize: bs,
    resume: o.resume,
    source,
    onResume: (scored, total) => process.stderr.write(`resuming: ${scored} of ${total} images already scored in ${o.resume}\n`),
    onProgress: (done, total) => (bar ??= progressBar('segment', total)).update(done),
    onWarning: (w) => process.stderr.write(`warning: ${w}\n`),
    onImage: async (im) => {
      const overlay = blendMap({ rgb: im.rgb, width: S, height: S }, im.heat, S, S, { range: [0, 1], caption: `${im.name}: ${im.target}` });
      if (o.outDir) writeFileSync(join(o.outDir, `${im.name}.png`), await encodePng(overlay));
      if (o.report && panels.length < 36) panels.push(overlay, maskImage(im.mask, S, S, 'predicted'), maskImage(im.gt ?? new Uint8Array(S * S), S, S, im.gt ? 'ground truth' : 'no mask'));
    },
  });
  bar?.stop();
  if (!run.images.length) throw new UsageError('no image could be read');
  const m = run.metrics;
  if (m) process.stderr.write(`pixel accuracy ${pct(m.pixelAccuracy)}, mIoU ${pct(m.mIoU)}, mAP ${pct(m.mAP)} over ${m.images} images\n`);
  if (o.outDir) process.stderr.write(`wrote ${run.segmentedNow} overlays to ${o.outDir}\n`);
  const out = { model: run.model, ...(run.modelFingerprint ? { modelFingerprint: run.modelFingerprint } : {}), target: o.text ? { text: o.text } : o.class ? { class: o.class } : { class: 'predicted' }, metrics: m, images: run.images, skippedWithoutMask: skippedWithoutMask(), ...(o.mat || o.masks ? { maskGeometry: geometry } : {}) };
  const meta = {
    model: model.name,
    target: o.text ?? o.class ?? 'predicted class',
    images: run.images.length,
    ...(o.masks ? { masks: o.masks } : {}),
    ...(o.mat ? { 'images and masks': o.mat } : {}),
    ...(o.masks || o.mat ? { 'mask geometry': geometry } : {}),
    ...(run.scoredEarlier ? { 'scored by earlier runs (--resume; no overlays)': run.scoredEarlier } : {}),
  };
  await finish(o, out, () => segmentationReport(run, geometry, meta, panels, out));
}
