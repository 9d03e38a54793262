// `cliplens paper`: the paper's experiments on one model as a resumable plan. Which steps exist
// depends on the data given (a section whose data is missing is skipped, and the report says
// so); each step calls the analysis the single-purpose commands call (ablationStudy,
// textspanStudy, the TextSpan baselines, debiasStudy, retrievalStudy, the segmentation and
// joint maps), and keeps its stores and text sets in the work folder for reuse.
//
// Work folder layout (<out>/work):
//   work.json, steps/<step>.json         the plan's records (src/paper/plan.ts)
//   data/                                the toy world's stand-in datasets (toy-world models only)
//   texts/*.safetensors                  text pools and classifiers (`cliplens texts` format)
//   stores/<name>-<key>/                 decomposition stores (`cliplens decompose` format)
//   heads.json, waterbirds_heads.json    TextSpan results (`cliplens textspan --out` format)
//   segmentation*.progress.jsonl         per-image segmentation scores, decomposition and attention baselines (resumable)

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { extname, join, relative, resolve } from 'node:path';
import { topImagesForHead } from '../analyses/head_images.ts';
import { normalizeRows } from '../analyses/linalg.ts';
import { jointHeads, spatialMaps } from '../analyses/spatial_studies.ts';
import type { AblationStudyResult } from '../analyses/ablation_study.ts';
import { retrievalStudy } from '../analyses/retrieval_study.ts';
import type { TextSpanJson, TextSpanStudyResult } from '../analyses/textspan_study.ts';
import { baselineSpecs, type PoolCurve } from '../analyses/text_baselines.ts';
import { embedPool, readTextSet, writeTextSet, type TextSet } from '../analyses/text_sets.ts';
import { decomposeDataset } from '../decompose/dataset_job.ts';
import { Decomposer } from '../decompose/decomposer.ts';
import { IMAGE_EXTENSIONS, loadDataset, type CsvColumns, type Dataset } from '../io/datasets.ts';
import { atomicWrite, pathProblem } from '../io/files.ts';
import { openSegmentationMat } from '../io/segmentation_mat.ts';
import { modelFingerprint } from '../io/provenance.ts';
import { loadStore, type StoreData } from '../io/store.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { preprocessFiles } from '../model/preprocess_model.ts';
import { builtinModels } from '../model/resolve.ts';
import { writeToyStandIns } from '../toyworld_study/paper_data.ts';
import { UsageError } from '../errors.ts';
import { calibrate, storeBytes, textSetBytes, textspanFlops, type Calibration } from './estimate.ts';
import { describeQuery, headsForQuery } from './heads.ts';
import { referenceWaterbirdsHeads } from './numbers.ts';
import { Plan, type ModelId, type PlanEvent, type Step } from './plan.ts';
import { SECTIONS, type FileResult, type JointResult, type PaperContext, type PaperData, type RetrievalResult, type SkippedSection, type StandInResult, type StoreResult, type TextSpanStepResult, type WaterbirdsResult } from './types.ts';
import { paperReport, type StepTiming } from './report.ts';
import { writeReport, type WrittenReport } from '../report/writer.ts';
import { paperProfile, type PaperProfile } from './profile.ts';
import { ablationTable, baselineCurve, debiasRun, textspanRun } from './protocols.ts';
import { segmentationSection, type SegmentationSection } from './segmentation.ts';

/** The format of the plan's step results; bump it when a step computes or records its result differently. */
export const PAPER_RESULTS_VERSION = '1';

export interface PaperOptions {
  /** Report folder; the work folder is <out>/work. */
  out: string;
  data: PaperData;
  /** At most this many images of each dataset (default: all). */
  limit?: number;
  batchSize?: number;
  /** Draws of each random baseline (default 3) and their seed. */
  draws?: number;
  seed?: number;
  /** ImageNet class names / templates files (default: bundled). */
  classes?: string;
  templates?: string;
  /** Toy-world models: generate stand-ins for the data not given (default true). */
  standIns?: boolean;
  /** Loads another model by spec (the toy world's spurious-cue model). */
  loadModel(spec: string): Promise<ClipModel>;
}

export interface PaperPlan {
  plan: Plan;
  context: PaperContext;
  /** Releases the second model, if one was loaded. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------

const sha = (v: unknown) => createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 12);

/** A dataset's identity for cache keys: its items and their sizes. */
function datasetKey(ds: Dataset): string {
  return sha(ds.items.map((it) => [it.id, it.label ?? '', it.group ?? '', existsSync(it.path) ? statSync(it.path).size : -1]));
}

function fileKey(path: string): string {
  const s = statSync(path);
  return sha([resolve(path), s.size, s.mtimeMs]);
}

function listImages(dir: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--images ${dir} is not a folder`);
  const files = readdirSync(dir)
    .filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase()))
    .sort()
    .map((f) => join(dir, f));
  if (!files.length) throw new UsageError(`--images ${dir} holds no images`);
  return files;
}

const WATERBIRDS_COLUMNS: CsvColumns = { path: 'img_filename', label: 'y', group: 'place', filter: [['split', '2']] };

function waterbirdsCsv(dir: string): string {
  const csv = statSync(dir).isDirectory() ? join(dir, 'metadata.csv') : dir;
  if (!existsSync(csv)) throw new UsageError(`--waterbirds ${dir}: no metadata.csv (the Waterbirds layout: metadata.csv with img_filename, y, split, place)`);
  return csv;
}

/** At most `limit` items, evenly spaced through the list (label-sorted lists keep every label's share). */
function limited(ds: Dataset, limit?: number): Dataset {
  const N = ds.items.length;
  if (limit === undefined || N <= limit) return ds;
  return { ...ds, items: Array.from({ length: limit }, (_, j) => ds.items[Math.floor((j * N) / limit)]) };
}

/** ImageNet class folders named by WordNet id (n01440764, …): class index = position among the 1000 sorted ids. */
function wnidNames(labels: string[], classes: number): string[] | undefined {
  if (labels.length === classes && labels.every((l) => /^n\d{8}$/.test(l))) return [...labels].sort();
  return undefined;
}

function modelId(model: ClipModel): ModelId {
  return { name: model.name, fingerprint: modelFingerprint(model) };
}

export async function planPaper(model: ClipModel, opts: PaperOptions): Promise<PaperPlan> {
  if (model.family.id !== 'clip')
    throw new UsageError(`cliplens paper runs the experiments of the CLIP paper; ${model.name} is a ${model.family.id} model (use the single-purpose commands on it)`);
  const out = resolve(opts.out);
  const work = join(out, 'work');
  for (const dir of [out, work]) {
    const why = existsSync(dir) ? pathProblem(dir, 'directory') : undefined;
    if (why) throw new UsageError(`--out: ${dir} ${why}`);
  }
  const profile = paperProfile(model, { classes: opts.classes, templates: opts.templates });
  const main = modelId(model);
  const draws = opts.draws ?? 3;
  const seed = opts.seed ?? 0;
  const bs = opts.batchSize ?? 16;
  const limit = opts.limit;
  const toy = profile.kind === 'toyworld';
  const { L, H, d, grid } = model.dims();
  const S = model.config.vision.imageSize;

  // §5's model: the toy world's correlated model when the main one is not it.
  let spurious = model;
  let secondModel: ClipModel | undefined;
  if (toy && profile.spuriousModel && model.name !== profile.spuriousModel && builtinModels().includes(profile.spuriousModel)) {
    secondModel = await opts.loadModel(profile.spuriousModel);
    spurious = secondModel;
  }
  const spuriousId = modelId(spurious);

  // Data: the user's, or (toy world) the stand-ins the first step writes.
  const standIn = toy && opts.standIns !== false ? { imagenet: 'data/imagenet', waterbirds: 'data/waterbirds', imagenetSeg: 'data/imagenet_seg/gtsegs_ijcv.mat', images: 'data/images' } : undefined;
  const data: PaperContext['data'] = {};
  for (const k of ['imagenet', 'waterbirds', 'imagenetSeg', 'images'] as const) {
    const given = opts.data[k];
    if (given) {
      if (!existsSync(given)) throw new UsageError(`--${k === 'imagenetSeg' ? 'imagenet-seg' : k} ${given} does not exist`);
      data[k] = { path: resolve(given), standIn: false };
    } else if (standIn) data[k] = { path: join(work, standIn[k]), standIn: true };
  }
  const usesStandIns = Object.values(data).some((x) => x?.standIn);
  const skipped: SkippedSection[] = [];
  if (!data.imagenet) {
    skipped.push({ section: 'ablation', reason: 'no --imagenet DIR (ImageNet validation images in class folders)' });
    skipped.push({ section: 'textspan', reason: 'no --imagenet DIR (TextSpan runs on the ImageNet decomposition)' });
    skipped.push({ section: 'retrieval', reason: 'no --imagenet DIR (retrieval searches the ImageNet decomposition)' });
  }
  if (!data.waterbirds) skipped.push({ section: 'waterbirds', reason: 'no --waterbirds DIR (the Waterbirds folder with metadata.csv)' });
  if (!data.imagenetSeg) skipped.push({ section: 'segmentation', reason: 'no --imagenet-seg FILE (gtsegs_ijcv.mat)' });
  if (!data.images) skipped.push({ section: 'joint', reason: 'no --images DIR (pictures with two objects, e.g. a cat and a dog)' });

  // Sizes for the estimates (stand-ins: their known counts).
  const STANDIN = { imagenet: 400, waterbirdsPerGroup: 50, segmentation: 100, pairs: 3 };
  const count = (n: number) => (limit === undefined ? n : Math.min(n, limit));
  const imagenetItems = (dir: string) => {
    const ds = loadDataset(dir);
    if (!ds.labels.length) throw new UsageError(`--imagenet ${dir} has no class folders (ImageNet validation images go in one folder per class)`);
    return ds.items.length;
  };
  const sizes = {
    imagenet: data.imagenet ? count(data.imagenet.standIn ? STANDIN.imagenet : imagenetItems(data.imagenet.path)) : 0,
    waterbirds: data.waterbirds ? count(data.waterbirds.standIn ? 4 * STANDIN.waterbirdsPerGroup : loadDataset(waterbirdsCsv(data.waterbirds.path), WATERBIRDS_COLUMNS).items.length) : 0,
    seg: 0,
    images: data.images ? (data.images.standIn ? STANDIN.pairs : listImages(data.images.path).length) : 0,
  };
  if (data.imagenetSeg) {
    if (data.imagenetSeg.standIn) sizes.seg = count(STANDIN.segmentation);
    else {
      const mat = await openSegmentationMat(data.imagenetSeg.path);
      sizes.seg = count(mat.length);
      mat.close();
    }
  }

  // Calibrated below, only when some step is still to run (estimates are read lazily).
  let cal: Calibration = { heads: 0, spatial: 0, forward: 0, text: 0, flops: 1e9 };
  let spCal = cal;
  const js = (flops: number) => flops / cal.flops;
  const K = Math.max(profile.textspan.k, ...profile.textspan.ms);
  const nPool = profile.descriptions.texts.length;
  const Lk = Math.min(profile.textspan.layers, L);
  const textspanSeconds = (n: number, m: number) => js(Lk * H * textspanFlops(n, d, m, Math.min(profile.textspan.rank, n, d), K) + 2 * n * d * L * H * profile.textspan.ms.length);

  const steps: Step[] = [];
  const path = (rel: string) => join(work, rel);
  const dataPath = (k: keyof PaperData) => data[k]!.path;
  const dataDeps = (k: keyof PaperData) => (data[k]?.standIn ? ['data'] : []);
  const dataParams = (k: keyof PaperData, key: () => string) => (data[k]!.standIn ? { standIn: STANDIN } : { source: key() });
  const calOf = (m: ClipModel) => (m === model ? cal : spCal);
  const fileName = (id: string) => id.replace(/[^a-z0-9]+/gi, '_');
  const store = (inp: Record<string, unknown>, id: string) => loadStore(path((inp[id] as StoreResult).dir));
  const textSet = (inp: Record<string, unknown>, id: string) => readTextSet(path((inp[id] as FileResult).file));

  if (usesStandIns) {
    steps.push({
      id: 'data',
      title: 'toy-world stand-ins for ImageNet, Waterbirds, ImageNet-segmentation and the joint pictures',
      section: 'data',
      params: { size: S, ...STANDIN },
      estimate: () => ({ seconds: 0.004 * (STANDIN.imagenet + 6 * STANDIN.waterbirdsPerGroup + STANDIN.segmentation + 40 * STANDIN.pairs), bytes: 2500 * (STANDIN.imagenet + 6 * STANDIN.waterbirdsPerGroup + STANDIN.segmentation) }),
      files: (r) => (r as StandInResult).files.map((f) => join('data', f)),
      run: async (ctx) => {
        ctx.progress(0, 1);
        const w = await writeToyStandIns(path('data'), { size: S, ...STANDIN });
        return { files: w.files, imagenet: relative(work, w.imagenet), waterbirds: relative(work, w.waterbirds), imagenetSeg: relative(work, w.imagenetSeg), images: relative(work, w.images) } satisfies StandInResult;
      },
    });
  }

  // Text sets and stores shared by the sections, in the formats `cliplens texts` and `decompose` write.
  const textStep = (id: string, section: string, title: string, m: ClipModel, texts: string[]): Step<FileResult> => ({
    id,
    title,
    section,
    params: { texts: sha(texts) },
    model: modelId(m),
    estimate: () => ({ seconds: texts.length * calOf(m).text, bytes: textSetBytes(texts.length, d) }),
    files: (r) => [r.file],
    run: async (ctx) => {
      const file = `texts/${fileName(id)}.safetensors`;
      mkdirSync(path('texts'), { recursive: true });
      writeTextSet(path(file), await embedPool(m, texts, (done) => ctx.progress(done, texts.length)));
      return { file };
    },
  });
  const classifierStep = (id: string, section: string, title: string, m: ClipModel, params: unknown, prompts: number, make: () => Promise<TextSet>): Step<FileResult> => ({
    id,
    title,
    section,
    params,
    model: modelId(m),
    estimate: () => ({ seconds: prompts * calOf(m).text, bytes: textSetBytes(prompts / 10, d) }),
    files: (r) => [r.file],
    run: async () => {
      const file = `texts/${fileName(id)}.safetensors`;
      mkdirSync(path('texts'), { recursive: true });
      writeTextSet(path(file), await make());
      return { file };
    },
  });
  const storeStep = (id: string, title: string, m: ClipModel, dataset: () => Dataset, params: unknown, deps: string[], n: number): Step<StoreResult> => ({
    id,
    title,
    section: 'data',
    deps,
    params,
    model: modelId(m),
    estimate: () => ({ seconds: n * calOf(m).heads * 1.3, bytes: storeBytes(n, { L, H, d }, L) }),
    files: (r) => [join(r.dir, 'manifest.json')],
    run: async (ctx) => {
      const dir = `stores/${fileName(id.replace(/^store:/, ''))}-${sha([params, modelId(m).fingerprint])}`;
      const res = await decomposeDataset(m, dataset(), { storeDir: path(dir), batchSize: bs, onProgress: (q) => ctx.progress(q.done, q.total, q.failed ? `${q.failed} unreadable` : undefined) });
      if (!res.complete) throw new UsageError(`store ${path(dir)} is incomplete`);
      const manifest = loadStore(path(dir)).manifest;
      return { dir, images: manifest.shards.reduce((a, sh) => a + sh.indices.length, 0), failed: manifest.failed.map((f) => ({ id: f.id, error: f.error })) };
    },
  });

  // ImageNet's classifier (ablation, TextSpan accuracy, segmentation). Class folders named by
  // WordNet id (all 1000) are matched to classes by their sorted order.
  if (data.imagenet || data.imagenetSeg) {
    const classNames = profile.imagenetClassNames();
    const storeLabelNames = (): string[] => (data.imagenet && !data.imagenet.standIn ? (wnidNames(loadDataset(data.imagenet.path).labels, classNames.length) ?? classNames) : classNames);
    steps.push(
      classifierStep('classifier:imagenet', 'data', `ImageNet zero-shot classifier (${classNames.length} classes)`, model, { classes: sha(classNames), templates: sha(profile.templates()), labels: sha(storeLabelNames()), kind: profile.kind }, classNames.length * (toy ? 16 : 80), async () => ({
        ...(await profile.imagenetClassifier(model, classNames)),
        names: storeLabelNames(),
      })),
    );
  }

  const imagenetDataset = () => limited(loadDataset(dataPath('imagenet')), limit);
  if (data.imagenet) {
    const n = sizes.imagenet;
    steps.push(textStep('texts:descriptions', SECTIONS.textspan, `TextSpan pool (${nPool} texts)`, model, profile.descriptions.texts));
    steps.push(storeStep('store:imagenet', `decompose ImageNet (${n} images)`, model, imagenetDataset, { ...dataParams('imagenet', () => datasetKey(imagenetDataset())), limit, bs }, dataDeps('imagenet'), n));
    steps.push({
      id: 'ablation',
      title: 'mean-ablation: MLPs, attention layers, CLS→CLS',
      section: SECTIONS.ablation,
      deps: ['store:imagenet', 'classifier:imagenet'],
      params: {},
      estimate: () => ({ seconds: js(n * L * H * d * (2 * L + 4)), bytes: 4000 }),
      run: async (_ctx, inp): Promise<AblationStudyResult> => ablationTable(store(inp, 'store:imagenet'), textSet(inp, 'classifier:imagenet')),
    });
    steps.push({
      id: 'textspan',
      title: `TextSpan, last ${Lk} layers: ${profile.textspan.k} texts per head, top images, accuracy vs texts per head`,
      section: SECTIONS.textspan,
      deps: ['store:imagenet', 'classifier:imagenet', 'texts:descriptions'],
      params: profile.textspan,
      estimate: () => ({ seconds: textspanSeconds(n, nPool), bytes: Lk * H * profile.textspan.k * 80 + 20000 }),
      files: (r) => [(r as TextSpanStepResult).heads],
      run: async (ctx, inp): Promise<TextSpanStepResult> => {
        const st = store(inp, 'store:imagenet');
        const { result, topImages } = await runTextSpan(st, textSet(inp, 'texts:descriptions'), textSet(inp, 'classifier:imagenet'), profile, (done, total) => ctx.progress(done, total));
        writeHeadsJson(path('heads.json'), result, path((inp['store:imagenet'] as StoreResult).dir));
        return { result, heads: 'heads.json', pool: { name: profile.descriptions.name, size: nPool, source: profile.descriptions.source }, topImages };
      },
    });
    for (const spec of baselineSpecs(nPool, { draws, seed, texts: true, commonWords: true }).filter((x) => x.kind !== 'pool')) {
      const draws_ = Math.max(1, spec.seeds.length);
      steps.push({
        id: `baseline:${spec.kind.replace(/ /g, '-')}`,
        title: `TextSpan baseline: ${spec.name}${spec.seeds.length ? ` (${spec.seeds.length} draws)` : ''}`,
        section: SECTIONS.textspan,
        deps: ['store:imagenet', 'classifier:imagenet', 'texts:descriptions'],
        params: { spec, ms: profile.textspan.ms, rank: profile.textspan.rank, layers: Lk, words: spec.kind === 'common words' ? sha(profile.commonWords.texts) : undefined },
        estimate: () => ({ seconds: (spec.kind === 'random directions' ? 0 : spec.size * cal.text * draws_) + draws_ * textspanSeconds(n, spec.size), bytes: 2000 }),
        run: async (ctx, inp): Promise<PoolCurve> => {
          const st = store(inp, 'store:imagenet');
          ctx.progress(0, 1);
          return baselineCurve(st, textSet(inp, 'texts:descriptions'), textSet(inp, 'classifier:imagenet'), spec, {
            layers: st.manifest.layers.slice(-Lk),
            rank: profile.textspan.rank,
            ms: profile.textspan.ms,
            embed: (texts) => embedPool(model, texts),
            commonWords: profile.commonWords.texts,
          });
        },
      });
    }
    steps.push({
      id: 'retrieval',
      title: `property retrieval: ${profile.properties.map((x) => x.name).join(', ')}`,
      section: SECTIONS.retrieval,
      deps: ['store:imagenet', 'textspan'],
      params: { properties: profile.properties, queries: 'middle row', k: 8 },
      estimate: () => ({ seconds: profile.properties.length * (js(4 * Math.min(500, n) * n * d) + (toy ? 0 : Lk * H * profile.textspan.k * cal.text)), bytes: 20000 }),
      run: async (ctx, inp): Promise<RetrievalResult> => {
        const st = store(inp, 'store:imagenet');
        const ts = (inp.textspan as TextSpanStepResult).result;
        const query = Math.floor(st.attn.shape[0] / 2);
        const properties: RetrievalResult['properties'] = [];
        for (const [i, prop] of profile.properties.entries()) {
          const [head] = await headsForQuery(ts.heads, prop.query, model);
          properties.push({ name: prop.name, query: describeQuery(prop.query), head, views: head ? [retrievalStudy(st, [{ layer: head.layer, head: head.head }], query, { k: 8 })] : [] });
          ctx.progress(i + 1, profile.properties.length);
        }
        return { properties, store: (inp['store:imagenet'] as StoreResult).dir };
      },
    });
  }

  // §5 Waterbirds: TextSpan of the ImageNet run (real models) or, for a second model or without
  // ImageNet, of the Waterbirds images themselves.
  const wbDataset = () => limited(loadDataset(waterbirdsCsv(dataPath('waterbirds')), WATERBIRDS_COLUMNS), limit);
  const ownTextSpan = spurious !== model || !data.imagenet;
  if (data.waterbirds) {
    const nW = sizes.waterbirds;
    const wbClasses = profile.waterbirdsClasses;
    steps.push(classifierStep('classifier:waterbirds', SECTIONS.waterbirds, `Waterbirds classifier (${wbClasses.join(' / ')}), ${spurious.name}`, spurious, { classes: wbClasses, templates: sha(profile.templates()), kind: profile.kind }, wbClasses.length * (toy ? 16 : 80), () => profile.waterbirdsClassifier(spurious)));
    steps.push(storeStep('store:waterbirds', `decompose the Waterbirds test split (${nW} images) with ${spurious.name}`, spurious, wbDataset, { ...dataParams('waterbirds', () => datasetKey(wbDataset())), limit, bs }, dataDeps('waterbirds'), nW));
    if (ownTextSpan) steps.push(textStep('texts:waterbirds-descriptions', SECTIONS.waterbirds, `TextSpan pool embedded by ${spurious.name}`, spurious, profile.descriptions.texts));
    steps.push({
      id: 'waterbirds',
      title: `Waterbirds worst group before/after mean-ablating the location heads chosen by text (${spurious.name})`,
      section: SECTIONS.waterbirds,
      deps: ['store:waterbirds', 'classifier:waterbirds', ...(ownTextSpan ? ['texts:waterbirds-descriptions'] : ['textspan'])],
      params: { location: profile.location, draws, seed, textspan: profile.textspan },
      model: spuriousId,
      estimate: () => ({ seconds: (ownTextSpan ? textspanSeconds(nW, nPool) : 0) + js(nW * L * H * d * 2 * (draws + 3)), bytes: 20000 }),
      run: async (ctx, inp): Promise<WaterbirdsResult> => {
        const st = store(inp, 'store:waterbirds');
        const cls = textSet(inp, 'classifier:waterbirds');
        const notes: string[] = [];
        let ts: TextSpanJson;
        let textspanSource: string;
        if (ownTextSpan) {
          const r = (await runTextSpan(st, textSet(inp, 'texts:waterbirds-descriptions'), undefined, profile)).result;
          writeHeadsJson(path('waterbirds_heads.json'), r, path((inp['store:waterbirds'] as StoreResult).dir));
          ts = r;
          textspanSource = `TextSpan of ${spurious.name} on the Waterbirds test images (work/waterbirds_heads.json)`;
          if (spurious !== model) notes.push(`${model.name} was not trained with a spurious cue; this section runs on ${spurious.name}, trained where shape predicts background (the toy world's Waterbirds).`);
        } else {
          ts = (inp.textspan as TextSpanStepResult).result;
          textspanSource = 'TextSpan on ImageNet (§4, work/heads.json)';
        }
        ctx.progress(1, 3);
        const selection = await headsForQuery(ts.heads, profile.location, spurious);
        const out: WaterbirdsResult = { query: describeQuery(profile.location), selection, textspanSource, notes };
        const heads = selection.map((h) => ({ layer: h.layer, head: h.head }));
        if (heads.length) out.result = debiasRun(st, cls, heads, { draws, seed });
        else notes.push('No head was chosen by the query, so nothing was ablated.');
        ctx.progress(2, 3);
        const ref = referenceWaterbirdsHeads(spurious.name);
        if (ref && ref.every((h) => st.manifest.layers.includes(h.layer) && h.head < H))
          out.reference = { heads: ref, result: debiasRun(st, cls, ref, { draws, seed }), source: 'the heads compute_use_specific_heads.py (clip_text_span) ablates for this model' };
        return out;
      },
    });
  }

  // §6 segmentation.
  if (data.imagenetSeg) {
    steps.push({
      id: 'segmentation',
      title: `ImageNet-segmentation (${sizes.seg} images): decomposition vs raw attention and rollout`,
      section: SECTIONS.segmentation,
      deps: ['classifier:imagenet', ...dataDeps('imagenetSeg')],
      params: { ...dataParams('imagenetSeg', () => fileKey(dataPath('imagenetSeg'))), limit },
      estimate: () => ({ seconds: sizes.seg * (cal.heads + cal.spatial / 2 + cal.forward) * 1.2, bytes: sizes.seg * 400 }),
      run: async (ctx, inp): Promise<SegmentationSection> => {
        const mat = await openSegmentationMat(dataPath('imagenetSeg'));
        try {
          // The per-image progress of the predicted-class maps belongs to one classifier: named by its embeddings' hash.
          const cls = textSet(inp, 'classifier:imagenet');
          const tag = createHash('sha256').update(cls.embeddings.data).digest('hex').slice(0, 12);
          return await segmentationSection(model, mat, cls, {
            limit,
            batch: Math.min(bs, 8),
            resume: { decomposition: path(`segmentation-${tag}.progress.jsonl`), attention: path('segmentation_attention.progress.jsonl') },
            classifierSource: `classifier:imagenet@${tag}`,
            progress: (done, total) => ctx.progress(done, total),
            warn: ctx.log,
          });
        } finally {
          mat.close();
        }
      },
    });
  }

  // §6 joint decomposition on the user's pictures.
  if (data.images) {
    steps.push({
      id: 'joint',
      title: `joint head × patch maps of '${profile.jointTexts[0]}' / '${profile.jointTexts[1]}' on ${sizes.images} pictures`,
      section: SECTIONS.joint,
      deps: dataDeps('images'),
      params: { texts: profile.jointTexts, source: data.images.standIn ? 'stand-in' : sha(listImages(data.images.path).map((f) => [f, statSync(f).size])) },
      estimate: () => ({ seconds: sizes.images * cal.spatial * 2, bytes: sizes.images * grid * grid * 4 * 20 }),
      run: async (ctx): Promise<JointResult> => jointSection(model, listImages(dataPath('images')), profile.jointTexts, (f) => (data.images!.standIn ? relative(work, f) : f), (i, of) => ctx.progress(i, of)),
    });
  }

  const plan = new Plan(work, main, steps, PAPER_RESULTS_VERSION);
  if (plan.pending().length) {
    cal = await calibrate(model);
    spCal = spurious === model ? cal : await calibrate(spurious);
  }
  const context: PaperContext = { model: main, spuriousModel: spuriousId, profile, work, out, data, skipped, settings: { limit, draws, seed, batchSize: bs } };
  return { plan, context, close: async () => void (await secondModel?.release()) };
}

function writeHeadsJson(file: string, r: TextSpanStudyResult, storeDir: string): void {
  const j: TextSpanJson = { model: r.model, store: storeDir, rank: r.rank, heads: r.heads };
  atomicWrite(file, `${JSON.stringify(j, null, 1)}\n`, 'TextSpan heads file');
}

/** TextSpan with the profile's settings on the store's last layers, and each head's top images along its first text. */
async function runTextSpan(store: StoreData, pool: TextSet, classifier: TextSet | undefined, p: PaperProfile, onHead?: (done: number, total: number) => void): Promise<{ result: TextSpanStudyResult; topImages: TextSpanStepResult['topImages'] }> {
  const layers = store.manifest.layers.slice(-p.textspan.layers);
  const result = await textspanRun(store, pool, classifier, { layers, k: p.textspan.k, rank: p.textspan.rank, ms: p.textspan.ms, onHead });
  const d = pool.embeddings.shape[1];
  const topImages = result.heads.map((h) => ({
    layer: h.layer,
    head: h.head,
    text: h.texts[0],
    images: topImagesForHead(store, h.layer, h.head, pool.embeddings.data.subarray(h.indices[0] * d, (h.indices[0] + 1) * d), 4),
  }));
  return { result, topImages };
}

/**
 * §6 joint decomposition (demo.ipynb): per picture and text, the map along the text minus the
 * mean of the two texts, over all heads and restricted to each of the 6 heads contributing most.
 */
async function jointSection(model: ClipModel, files: string[], texts: [string, string], name: (f: string) => string, progress: (i: number, of: number) => void): Promise<JointResult> {
  const d = model.config.embedDim;
  const { grid } = model.dims();
  const t = normalizeRows((await model.encodeTexts(texts)).features.data, 2, d);
  const dirs = [0, 1].map((a) => Float32Array.from({ length: d }, (_, k) => t[a * d + k] - (t[k] + t[d + k]) / 2));
  const dec = new Decomposer(model);
  const images: JointResult['images'] = [];
  for (const [i, file] of files.entries()) {
    const pre = await preprocessFiles(model.config, [file]);
    if (pre.errors[0] !== undefined) throw new UsageError(`--images: ${file}: ${pre.errors[0]}`);
    const maps: JointResult['images'][number]['maps'] = [];
    for (const [a, dir] of dirs.entries()) {
      const [spatial] = await spatialMaps(dec, pre.pixels, [dir]);
      const j = jointHeads(spatial, 6);
      maps.push({ text: texts[a], full: Array.from(j.full), heads: j.heads.map((h) => ({ ...h, map: Array.from(h.map) })) });
    }
    images.push({ file: name(file), maps });
    progress(i + 1, files.length);
  }
  return { grid, texts, images };
}

export interface PaperRunResult {
  results: Record<string, unknown>;
  timings: StepTiming[];
  report: WrittenReport;
  seconds: number;
}

/** Runs the plan (reusing what earlier runs recorded) and writes the report into the out folder. */
export async function runPaper(pp: PaperPlan, model: ClipModel, onEvent: (e: PlanEvent) => void = () => {}): Promise<PaperRunResult> {
  const t0 = performance.now();
  const timings: StepTiming[] = [];
  const results = await pp.plan.run((e) => {
    if (e.type === 'done') timings.push({ step: e.step, seconds: e.seconds, cached: e.cached });
    onEvent(e);
  });
  const report = await writeReport(pp.context.out, await paperReport(pp.context, results, timings, model.config));
  return { results, timings, report, seconds: (performance.now() - t0) / 1000 };
}
