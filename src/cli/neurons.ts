// `cliplens neurons …`: second-order effects of MLP neurons (Gandelsman et al., ICLR 2025) —
// effects, PCs, text descriptions, ablation, segmentation, concepts, per-neuron reports.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { fileItems, MASK_GEOMETRIES, type MaskGeometry } from '../analyses/segmentation_study.ts';
import { alignLabels } from '../analyses/store_terms.ts';
import { loadDataset } from '../io/datasets.ts';
import { maskFolder } from '../io/masks.ts';
import { modelProvenance, type ModelProvenance } from '../io/provenance.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { blendMap, encodePng, imageGrid, type RGBImage } from '../report/figures.ts';
import { writeReport } from '../report/writer.ts';
import { pct } from '../notation.ts';
import { neuronAblation } from '../neurons/ablation.ts';
import { imagesConcepts, neuronCards } from '../neurons/concepts.ts';
import { describeNeurons } from '../neurons/describe.ts';
import { NeuronEffects } from '../neurons/effects.ts';
import { readDescriptionsFile, readPcaFile, readTextFeatures, reconstructionFromDescriptions, requireStats, writeDescriptionsFile, writePcaFile } from '../neurons/files.ts';
import { neuronEffectsDataset } from '../neurons/job.ts';
import { neuronPca } from '../neurons/pca.ts';
import { checkNeuronLayer } from '../neurons/readout.ts';
import { conceptsReport, neuronAblationReport, neuronCardsReport, neuronSegmentationReport } from '../report/neuron_reports.ts';
import { segmentWithNeurons, selectNeuronsPerClass } from '../neurons/segmentation.ts';
import { checkSameModel, effectsOfPixels, exportEffects, NeuronStore, openEffectsFile, type EffectsSource, type Provenance } from '../neurons/store.ts';
import { modelFromFlags, parseIntFlag, progressBar, withModelOptions, type ModelFlags } from './common.ts';
import { collect, pixelsFromArgs } from './inputs.ts';
import { finish, openTextSet, toJson } from './study_common.ts';
import { UsageError } from '../errors.ts';

/** "0,5,10-12" → indices in 0..n−1 (neurons, rows). */
export function parseIndexList(spec: string, n: number, flag: string): number[] {
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
    if (!m) throw new UsageError(`--${flag} '${spec}': use e.g. 0,5,10-12`);
    const a = Number(m[1]), b = m[2] !== undefined ? Number(m[2]) : a;
    if (b < a || b >= n) throw new UsageError(`--${flag} '${spec}': valid values are 0..${n - 1}`);
    for (let n = a; n <= b; n++) out.push(n);
  }
  return [...new Set(out)];
}

function layerFlag(v: string | undefined, model: ClipModel): number {
  const layer = parseIntFlag(v, 'layer', 0);
  if (layer === undefined) throw new UsageError('--layer L is required: the MLP block whose neurons to measure (0-based)');
  checkNeuronLayer(model, layer);
  return layer;
}

/** Effects from --store DIR (factored) or --effects FILE (a [B, M, d] second_order tensor). */
function openEffects(o: { store?: string; effects?: string }, what = 'effects'): EffectsSource {
  if (!!o.store === !!o.effects) throw new UsageError(`give the ${what} as either --store DIR or --effects FILE`);
  return o.store ? NeuronStore.open(o.store, { requireComplete: true }) : openEffectsFile(o.effects!);
}

const withProv = (p: Provenance, what: string) => ({ ...p, what });

interface EffectsFlags extends ModelFlags {
  layer?: string;
  pixels?: string;
  out?: string;
  dataset?: string;
  store?: string;
  batchSize: string;
}

function effectsCommand(): Command {
  return withModelOptions(new Command('effects'))
    .description("second-order effects of every neuron of MLP block --layer: `second_order` [images, neurons, d] as the reference saves it, or a resumable store of a dataset")
    .argument('[images...]', 'image files')
    .option('--layer <l>', 'MLP block (0-based, as the reference’s --mlp_layer)')
    .option('--pixels <file>', 'safetensors file with pixel_values [B,3,S,S]')
    .option('-o, --out <file>', 'output .safetensors: second_order [B, M, d] float32 and image_features [B, d]')
    .option('--dataset <dir|csv|list>', 'all images of a dataset into --store (factored: one scalar per neuron and later head per image)')
    .option('--store <dir>', 'neuron store for --dataset (resumable after any interruption)')
    .option('--batch-size <n>', 'images per batch', '16')
    .action(async (images: string[], o: EffectsFlags) => {
      const batchSize = parseIntFlag(o.batchSize, 'batch-size')!;
      if (o.dataset) {
        if (!o.store) throw new UsageError('--dataset needs --store DIR');
        if (images.length || o.pixels || o.out) throw new UsageError('give either --dataset with --store, or images/--pixels with --out');
        const ds = loadDataset(o.dataset);
        const model = await modelFromFlags(o);
        const layer = layerFlag(o.layer, model);
        process.stderr.write(`${ds.items.length} images → neuron store ${o.store} (MLP block ${layer})\n`);
        const bar = progressBar('neurons', ds.items.length);
        const res = await neuronEffectsDataset(model, ds, { storeDir: o.store, layer, batchSize, onProgress: (p) => bar.update(p.done, p.failed ? `(${p.failed} unreadable)` : '') });
        bar.stop();
        for (const f of res.failed) process.stderr.write(`warning: skipped ${f.id}: ${f.error}\n`);
        process.stderr.write(`store ${o.store}: ${res.processed} images processed now, ${res.skippedBatches} batches already done, ${res.failed.length} unreadable; ${res.complete ? 'complete' : 'incomplete'}\n`);
        return;
      }
      if (!o.out) throw new UsageError('--out FILE is required (or --dataset with --store)');
      const model = await modelFromFlags(o);
      const layer = layerFlag(o.layer, model);
      const { pixels } = await pixelsFromArgs(model, o.pixels, images);
      const { hidden: M } = model.dims();
      const gb = (pixels.shape[0] * M * model.config.embedDim * 4) / 1024 ** 3;
      if (gb > 4) throw new UsageError(`the full effects of ${pixels.shape[0]} images would hold ${gb.toFixed(1)} GB; use --dataset with --store (factored) and 'cliplens neurons export' to write them image by image`);
      const src = await effectsOfPixels(new NeuronEffects(model, layer), pixels, batchSize);
      await exportEffects(src, o.out, { imageFeatures: src.imageFeatures!() });
      process.stderr.write(`wrote ${o.out}: second_order [${src.B}, ${src.M}, ${src.d}] of MLP block ${layer}\n`);
    });
}

function exportCommand(): Command {
  return new Command('export')
    .description('write the full effects [images, neurons, d] of a neuron store to one safetensors file, image by image (for Python)')
    .requiredOption('--store <dir>', 'neuron store (cliplens neurons effects --dataset … --store DIR)')
    .requiredOption('-o, --out <file>', 'output .safetensors: second_order [B, M, d], image_features [B, d]')
    .action(async (o: { store: string; out: string }) => {
      const s = NeuronStore.open(o.store, { requireComplete: true });
      process.stderr.write(`writing ${(s.B * s.M * s.d * 4 / 1024 ** 3).toFixed(2)} GB of effects …\n`);
      await exportEffects(s, o.out, { imageFeatures: s.imageFeatures(), metadata: { rows: 'store rows in item order; items in the store manifest' } });
      process.stderr.write(`wrote ${o.out}: second_order [${s.B}, ${s.M}, ${s.d}]\n`);
    });
}

function pcaCommand(): Command {
  return new Command('pca')
    .description("first principal component of each neuron's effects over its top-k images (compute_pcas.py), streaming")
    .option('--effects <file>', 'second_order [B, M, d] (cliplens neurons effects --out, or the reference’s array)')
    .option('--store <dir>', 'a neuron store instead of --effects')
    .option('--top-k <k>', 'images per neuron (the reference’s --top_k_pca)', '100')
    .requiredOption('-o, --out <file>', 'output .safetensors: pc [M, d], norms [M, min(k, B)], mean [M, d], top_images')
    .action(async (o: { effects?: string; store?: string; topK: string; out: string }) => {
      const src = openEffects(o);
      const k = parseIntFlag(o.topK, 'top-k')!;
      // Three passes over the images: means, norms, then the top-k rows of blocks of neurons.
      const bar = progressBar('pca', 3 * src.B);
      const offset: Record<string, number> = { means: 0, norms: src.B, components: 2 * src.B };
      const p = await neuronPca(src, k, { onProgress: (stage, done, total) => bar.update(Math.round(offset[stage] + (done / total) * src.B)) });
      bar.stop();
      src.close?.();
      writePcaFile(o.out, p);
      const undecided = p.signDecided.length - p.signDecided.reduce((a, b) => a + b, 0);
      process.stderr.write(`wrote ${o.out}: pc [${p.pc.shape}], norms [${p.norms.shape}] from ${p.images} images\n`);
      if (undecided) process.stderr.write(`note: for ${undecided} neurons the reference's sign rule (more than ${Math.floor(k / 2)} of the top-${k} rows positive) does not decide; there the reference keeps LAPACK's arbitrary sign, so compare those PCs up to sign\n`);
    });
}

interface DescribeFlags {
  pcs: string;
  texts: string;
  lines?: string;
  components: string;
  json?: boolean;
  out?: string;
}

function describeCommand(): Command {
  return new Command('describe')
    .description("each neuron's first PC as a sparse combination of texts: the reference's dictionary and scikit-learn's OMP (compute_sparse_decomposition.py)")
    .requiredOption('--pcs <file>', 'PCs from cliplens neurons pca (pc [M, d])')
    .requiredOption('--texts <file>', "text_features [T, d]: from 'cliplens texts --file', or the reference's array")
    .option('--lines <file>', 'the texts, one a line, when --texts does not name them (the reference’s text file)')
    .option('--components <n>', 'texts per neuron (OMP atoms)', '32')
    .option('--json', 'print { "neuron": [[text index, coefficient, text], …] } on stdout, as the reference’s JSON')
    .option('-o, --out <file>', 'write that JSON to a file')
    .action(async (o: DescribeFlags) => {
      if (!o.json && !o.out) throw new UsageError('give --json and/or --out FILE');
      const pcs = readPcaFile(o.pcs);
      const tf = readTextFeatures(o.texts, o.lines);
      checkSameModel(withProv(pcs.provenance, `--pcs ${o.pcs}`), withProv(tf.provenance, `--texts ${o.texts}`), { layer: false });
      const [M, d] = pcs.pc.shape;
      const [T, dt] = tf.features.shape;
      if (dt !== d) throw new UsageError(`--texts ${o.texts} has embedding size ${dt}, the PCs ${d}: embed the texts with the same model`);
      if (!tf.texts) process.stderr.write(`warning: --texts ${o.texts} does not name its texts; they are listed by row (text 0, text 1, …); give --lines FILE to print them\n`);
      const comps = parseIntFlag(o.components, 'components')!;
      const bar = progressBar('describe', M, 'neuron');
      const r = describeNeurons(pcs.pc.data, M, tf.features.data, T, d, tf.texts ?? Array.from({ length: T }, (_, i) => `text ${i}`), comps, (n) => bar.update(n));
      bar.stop();
      const early = r.nonzero.filter((x) => x < comps).length;
      if (early) process.stderr.write(`note: OMP stopped early for ${early} neurons (residual orthogonal to the remaining texts); their lists end with coefficient-0 texts, as the reference's\n`);
      const meanCos = r.cosine.reduce((a, b) => a + b, 0) / M;
      process.stderr.write(`reconstruction check: mean cosine between a PC and its ${comps}-text reconstruction ${meanCos.toFixed(4)} (min ${Math.min(...r.cosine).toFixed(4)})\n`);
      if (o.out) writeDescriptionsFile(o.out, r.descriptions);
      if (o.json) process.stdout.write(toJson(Object.fromEntries(r.descriptions.map((dsc, n) => [String(n), dsc]))) + '\n');
    });
}

interface AblateFlags {
  pcs: string;
  store: string;
  classifier: string;
  descriptions?: string;
  texts?: string;
  report?: string;
  json?: boolean;
}

function ablateCommand(): Command {
  return new Command('ablate')
    .description('zero-shot accuracy with the neurons’ second-order effects mean-ablated, kept only where significant or insignificant, or replaced by their first PC (compute_ablations.py)')
    .requiredOption('--pcs <file>', 'training statistics from cliplens neurons pca (mean, pc, norms)')
    .requiredOption('--store <dir>', 'neuron store of the labelled validation images')
    .requiredOption('--classifier <file>', "zero-shot classifier from 'cliplens texts --classes'")
    .option('--descriptions <file>', 'also replace each neuron by its text reconstruction (needs --texts): the reference’s --evaluate')
    .option('--texts <file>', 'the text features the descriptions index')
    .option('--report <dir>', 'write a report here')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (o: AblateFlags) => {
      const pcs = readPcaFile(o.pcs);
      requireStats(pcs, o.pcs);
      const val = NeuronStore.open(o.store, { requireComplete: true });
      checkSameModel(withProv(pcs.provenance, `--pcs ${o.pcs}`), withProv(val.provenance, `--store ${o.store}`));
      const cls = openTextSet(o.classifier, 'classifier');
      const al = alignLabels({ dir: val.dir, manifest: val.manifest, labels: val.labels() }, cls);
      if (o.descriptions && !o.texts) throw new UsageError('--descriptions needs --texts (the text features they index)');
      const recon = o.descriptions ? reconstructionFromDescriptions(readDescriptionsFile(o.descriptions), val.M, readTextFeatures(o.texts!).features) : undefined;
      const r = await neuronAblation(val, pcs, cls.embeddings, al.labels, recon);
      r.rows.forEach((row, i) => process.stderr.write(`${row}: ${r.accuracy[i]}\n`));
      const out = { model: val.manifest.model.name, modelFingerprint: val.manifest.model.fingerprint, layer: val.layer, images: val.B, rows: r.rows, accuracy: r.accuracy, meanSignificant: r.significant.reduce((a, b) => a + b, 0) / val.B };
      await finish(o, out, () => neuronAblationReport(r, [val.manifest.model], { 'MLP block': val.layer, images: val.B, classifier: o.classifier, pcs: o.pcs }));
    });
}

interface SegmentFlags extends ModelFlags {
  pcs: string[];
  classifier: string;
  dataset?: string;
  masks?: string;
  maskGeometry: string;
  topNeurons: string;
  prCurve?: string;
  report?: string;
  outDir?: string;
  json?: boolean;
  batchSize: string;
}

function segmentCommand(): Command {
  return withModelOptions(new Command('segment'))
    .description("zero-shot segmentation with neurons: per image, the mean activation of the neurons whose PCs best match its predicted class (compute_segmentation.py), evaluated against masks")
    .argument('[images...]', 'image files')
    .requiredOption('--pcs <file>', 'PCs of one MLP block (repeat for several blocks, e.g. 8, 9, 10)', collect, [])
    .requiredOption('--classifier <file>', "zero-shot classifier from 'cliplens texts --classes'")
    .option('--dataset <dir|csv|list>', 'images to segment instead of image arguments')
    .option('--masks <dir>', 'ground-truth masks with the images’ file stems (foreground = non-black)')
    .option('--mask-geometry <how>', "aligned: masks resized and centre-cropped like the images; reference: squashed to the input square as the authors' script does", 'aligned')
    .option('--top-neurons <n>', 'neurons per class (the reference’s --top_neurons)', '200')
    .option('--pr-curve <file>', 'write the pixel-level precision-recall curve (JSON)')
    .option('--report <dir>', 'write a report here')
    .option('--out-dir <dir>', 'save one overlay PNG per image here')
    .option('--json', 'print metrics and per-image scores as JSON on stdout')
    .option('--batch-size <n>', 'images per forward pass', '8')
    .action(async (images: string[], o: SegmentFlags) => {
      if (!o.report && !o.outDir && !o.json) throw new UsageError('give --report DIR, --out-dir DIR and/or --json');
      if (!(MASK_GEOMETRIES as readonly string[]).includes(o.maskGeometry)) throw new UsageError(`--mask-geometry must be one of ${MASK_GEOMETRIES.join(', ')}, got '${o.maskGeometry}'`);
      const paths = o.dataset ? loadDataset(o.dataset).items.map((i) => i.path) : images;
      if (!paths.length) throw new UsageError('no images: give image files or --dataset');
      for (const p of paths) if (!existsSync(p)) throw new UsageError(`image ${p} does not exist`);
      const files = o.pcs.map((p) => ({ path: p, pca: readPcaFile(p) }));
      const layers = files.map((f) => f.pca.provenance.layer);
      if (layers.some((l) => l === undefined)) throw new UsageError('every --pcs file must record its MLP block (make them with cliplens neurons pca)');
      const model = await modelFromFlags(o);
      const here = { model: modelProvenance(model), what: `--model ${model.name}` };
      for (const f of files) checkSameModel(withProv(f.pca.provenance, `--pcs ${f.path}`), here, { layer: false });
      const cls = openTextSet(o.classifier, 'classifier');
      const perClass = selectNeuronsPerClass(files.map((f) => f.pca.pc), layers as number[], cls.embeddings, parseIntFlag(o.topNeurons, 'top-neurons')!);
      const items = fileItems(paths, o.masks ? maskFolder(o.masks) : undefined, (path) => process.stderr.write(`warning: no mask for ${path} in ${o.masks}\n`));
      const S = model.config.vision.imageSize;
      const panels: RGBImage[] = [];
      if (o.outDir) mkdirSync(o.outDir, { recursive: true });
      const bar = progressBar('segment', paths.length);
      const run = await segmentWithNeurons(model, items, perClass, cls.embeddings, cls.names, {
        geometry: o.maskGeometry as MaskGeometry,
        batchSize: parseIntFlag(o.batchSize, 'batch-size')!,
        prCurve: !!o.prCurve,
        onProgress: (done) => bar.update(done),
        onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
        onImage: async (im) => {
          const overlay = blendMap({ rgb: im.rgb, width: S, height: S }, im.heat, S, S, { range: [0, 1], caption: `${im.name}: ${im.target}` });
          if (o.outDir) writeFileSync(join(o.outDir, `${im.name}.png`), await encodePng(overlay));
          if (o.report && panels.length < 24) panels.push(overlay);
        },
      });
      bar.stop();
      const m = run.metrics;
      if (m) process.stderr.write(`pixel accuracy ${pct(m.pixelAccuracy)}%, mIoU ${m.mIoU.toFixed(4)}, mAP ${m.mAP.toFixed(4)} over ${m.images} images\n`);
      if (o.prCurve && run.prCurve) writeFileSync(o.prCurve, toJson(run.prCurve));
      const out = { model: model.name, layers, topNeurons: perClass[0].length, metrics: m, pooledAp: run.prCurve?.pooledAp, images: run.images };
      await finish(o, out, async () => neuronSegmentationReport(out, panels.length ? await imageGrid(panels, 4) : undefined, [here.model], { 'MLP blocks': layers.join(', '), 'neurons per class': perClass[0].length, classifier: o.classifier, 'mask geometry': o.maskGeometry }));
    });
}

interface ConceptsFlags extends ModelFlags {
  pcs: string;
  descriptions: string;
  store?: string;
  effects?: string;
  rows?: string;
  top: string;
  report?: string;
  json?: boolean;
}

function conceptsCommand(): Command {
  return withModelOptions(new Command('concepts'))
    .description('the concepts in an image: texts of its significant neurons, weighted by coefficient × centred norm (concept_discovery.ipynb)')
    .argument('[images...]', 'image files (effects computed now with --model)')
    .requiredOption('--pcs <file>', 'training statistics of the block (cliplens neurons pca)')
    .requiredOption('--descriptions <file>', 'neuron descriptions (cliplens neurons describe --out, or the reference’s JSON)')
    .option('--store <dir>', 'read images from a neuron store instead')
    .option('--effects <file>', 'read images from an effects file instead')
    .option('--rows <spec>', 'store/effects rows (default all), e.g. 0,3,10-12')
    .option('--top <n>', 'concepts per image', '10')
    .option('--report <dir>', 'write a report here')
    .option('--json', 'print the concepts as JSON on stdout')
    .action(async (images: string[], o: ConceptsFlags) => {
      const pcs = readPcaFile(o.pcs);
      requireStats(pcs, o.pcs);
      const desc = readDescriptionsFile(o.descriptions);
      let src: EffectsSource;
      let ids: string[];
      if (images.length) {
        if (o.store || o.effects) throw new UsageError('give image files, --store or --effects, not several');
        const model = await modelFromFlags(o);
        if (pcs.provenance.layer === undefined) throw new UsageError(`--pcs ${o.pcs} does not record its MLP block`);
        checkSameModel(withProv(pcs.provenance, `--pcs ${o.pcs}`), { model: modelProvenance(model), what: `--model ${model.name}` }, { layer: false });
        const { pixels } = await pixelsFromArgs(model, undefined, images);
        src = await effectsOfPixels(new NeuronEffects(model, pcs.provenance.layer), pixels);
        ids = images;
      } else {
        src = openEffects(o);
        checkSameModel(withProv(pcs.provenance, `--pcs ${o.pcs}`), withProv(src.provenance, o.store ? `--store ${o.store}` : `--effects ${o.effects}`));
        ids = Array.from({ length: src.B }, (_, b) => (src instanceof NeuronStore ? src.itemId(b) : `row ${b}`));
      }
      if (src.M !== pcs.pc.shape[0]) throw new UsageError(`the effects hold ${src.M} neurons, --pcs ${o.pcs} ${pcs.pc.shape[0]}`);
      const rows = o.rows ? parseIndexList(o.rows, src.B, 'rows') : Array.from({ length: src.B }, (_, b) => b);
      const res = await imagesConcepts(src, pcs, desc, rows, parseIntFlag(o.top, 'top')!);
      const out = rows.map((b, i) => ({ id: ids[b], concepts: res[i] }));
      if (!o.json && !o.report) for (const r of out) process.stdout.write(`${r.id}: ${r.concepts.concepts.map((c) => `${c.text} (${c.score.toPrecision(3)})`).join(', ')}\n`);
      const models: ModelProvenance[] = src.provenance.model ? [src.provenance.model] : pcs.provenance.model ? [pcs.provenance.model] : [{ name: 'unrecorded' }];
      await finish(o, out, async () => conceptsReport(out, models, { pcs: o.pcs, descriptions: o.descriptions }));
    });
}

interface ReportFlags {
  store: string;
  pcs: string;
  descriptions?: string;
  texts?: string;
  neurons: string;
  top: string;
  out: string;
}

function reportCommand(): Command {
  return new Command('report')
    .description('a report per neuron: its texts with signed coefficients, its top images, the distribution of its centred norms')
    .requiredOption('--store <dir>', 'neuron store whose images to show')
    .requiredOption('--pcs <file>', 'statistics of the block (cliplens neurons pca over this or a training store)')
    .option('--descriptions <file>', 'neuron descriptions (cliplens neurons describe --out)')
    .option('--texts <file>', 'the text features the descriptions index: adds how well the texts reconstruct each PC')
    .requiredOption('--neurons <spec>', 'neurons to report, e.g. 0,5,10-12')
    .option('--top <n>', 'top images per neuron', '25')
    .requiredOption('-o, --out <dir>', 'report directory')
    .action(async (o: ReportFlags) => {
      const s = NeuronStore.open(o.store, { requireComplete: true });
      const pcs = readPcaFile(o.pcs);
      requireStats(pcs, o.pcs);
      checkSameModel(withProv(pcs.provenance, `--pcs ${o.pcs}`), withProv(s.provenance, `--store ${o.store}`));
      const neurons = parseIndexList(o.neurons, s.M, 'neurons');
      if (o.texts && !o.descriptions) throw new UsageError('--texts needs --descriptions');
      const desc = o.descriptions ? readDescriptionsFile(o.descriptions) : undefined;
      const cards = await neuronCards(s, pcs, neurons, { descriptions: desc, textFeatures: o.texts ? readTextFeatures(o.texts).features : undefined, top: parseIntFlag(o.top, 'top')! });
      const w = await writeReport(o.out, await neuronCardsReport(cards, s.manifest, { layer: s.layer, store: o.store, images: s.B }));
      process.stderr.write(`wrote report ${o.out}/index.html (${w.files.length} files)\n`);
    });
}

export function neuronsCommand(): Command {
  return new Command('neurons')
    .description('second-order effects of MLP neurons: effects, first PCs, text descriptions, ablation, segmentation, concepts, reports')
    .addCommand(effectsCommand())
    .addCommand(exportCommand())
    .addCommand(pcaCommand())
    .addCommand(describeCommand())
    .addCommand(ablateCommand())
    .addCommand(segmentCommand())
    .addCommand(conceptsCommand())
    .addCommand(reportCommand());
}
