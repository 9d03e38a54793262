// The paper report: every section's numbers, next to the paper's published ones for the same
// model where the paper has them (assets/paper/paper_numbers.json), the experiments skipped for
// lack of data, and how long each step took. The per-command reports (ablate, textspan, debias,
// retrieve) supply their own sections, so a number reads the same here as from its command.

import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { ablationReport, debiasReport, textspanBaselinesSection, textspanReport, thumbnail } from '../report/study_reports.ts';
import type { AblationStudyResult } from '../analyses/ablation_study.ts';
import type { DebiasStudyResult } from '../analyses/debias.ts';
import type { RetrievalStudyResult } from '../analyses/retrieval_study.ts';
import { headName, pct as percent } from '../notation.ts';
import type { PoolCurve } from '../analyses/text_baselines.ts';
import { readManifest, type StoreManifest } from '../io/store.ts';
import { openSegmentationMat } from '../io/segmentation_mat.ts';
import { maskOnInput } from '../analyses/segmentation_study.ts';
import { heatmapAndMask } from '../analyses/segmentation.ts';
import type { ClipConfig } from '../model/config.ts';
import { preprocessDecodedBatch, preprocessFiles } from '../model/preprocess_model.ts';
import { blendMap, imageGrid, maskImage, type RGBImage } from '../report/figures.ts';
import type { Report, ReportSection } from '../report/writer.ts';
import { paperModelOf, paperNumbers, publishedValue } from './numbers.ts';
import { SECTIONS, type JointResult, type PaperContext, type RetrievalResult, type StoreResult, type TextSpanStepResult, type WaterbirdsResult } from './types.ts';
import type { PlannedStep } from './plan.ts';
import { SEG_METHODS, type SegmentationSection } from './segmentation.ts';

/** A fraction as a percentage cell ('' when there is none). */
const pct = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '' : percent(x));
/** Thumbnails are drawn at least this large, so 64-px toy scenes stay readable. */
const CELL = 128;

/** The paper's value as a table cell: the number, or '—' when the paper has none for this model. */
function paper(model: string, experiment: string, method: string, metric: string): string | number {
  const v = publishedValue(model, experiment, method, metric);
  return v ? v.value : '—';
}

function prefixed(section: string, sections: ReportSection[]): ReportSection[] {
  return sections.map((s) => ({ ...s, title: `${section} — ${s.title}` }));
}

export interface StepTiming {
  step: PlannedStep;
  seconds: number;
  cached: boolean;
}

async function ablationSections(c: PaperContext, r: AblationStudyResult): Promise<ReportSection[]> {
  const m = c.model.name;
  const rec = r as AblationStudyResult & { clsToCls?: number; mlpsAndClsToCls?: number };
  const rows: (string | number)[][] = [
    ['nothing (baseline)', pct(r.baseline), paper(m, 'ablation', 'baseline', 'accuracy')],
    ['all MLPs', pct(r.mlps), paper(m, 'ablation', 'mlps', 'accuracy')],
    ['CLS→CLS attention', rec.clsToCls !== undefined ? pct(rec.clsToCls) : 'not in the store', paper(m, 'ablation', 'clsToCls', 'accuracy')],
    ['MLPs and CLS→CLS', rec.mlpsAndClsToCls !== undefined ? pct(rec.mlpsAndClsToCls) : 'not in the store', paper(m, 'ablation', 'mlpsAndClsToCls', 'accuracy')],
    ...r.cumulative.map((x) => [`attention layers 0..${x.upTo}`, pct(x.accuracy), paper(m, 'ablation', `layersUpTo${x.upTo}`, 'accuracy')]),
  ];
  const own = await ablationReport(r, {});
  return [
    { title: `${SECTIONS.ablation}`, text: [`Top-1 zero-shot accuracy on ${r.images} images (${r.classes} classes) with terms replaced by their mean over the images.`, ...r.notes], tables: [{ caption: 'accuracy (%) next to the paper', headers: ['mean-ablated', 'accuracy (%)', 'paper (%)'], rows }] },
    // The command's own sections, less its accuracy table (the one above, with the paper's column).
    ...prefixed(SECTIONS.ablation, own.sections.map((x, i) => (i === 0 ? { title: x.title, figures: x.figures } : x))),
  ];
}

async function textspanSections(ts: TextSpanStepResult, curves: PoolCurve[], store: StoreManifest): Promise<ReportSection[]> {
  const r = ts.result;
  const out: ReportSection[] = [];
  const a = r.accuracy;
  // The command's own sections without its accuracy curve: the curve is in the baselines section.
  const own = await textspanReport({ ...r, accuracy: undefined }, {});
  if (a) {
    // The main pool's curve is the TextSpan run's own; the baselines are their steps'.
    const main: PoolCurve = { name: ts.pool.name, kind: 'pool', size: ts.pool.size, m: a.m, draws: [a.replaced], seeds: [], mean: a.replaced, std: a.m.map(() => 0) };
    const sec = await textspanBaselinesSection(r, [main, ...curves], ts.pool.source);
    out.push({ ...sec, title: `${SECTIONS.textspan} — ${sec.title}` });
  }
  // Top images per head along its first text.
  const figs = [];
  const layers = [...new Set(ts.topImages.map((t) => t.layer))];
  for (const l of layers) {
    const imgs: RGBImage[] = [];
    const heads = ts.topImages.filter((x) => x.layer === l);
    for (const t of heads) for (const im of t.images) imgs.push(await thumbnail(store, im.id, CELL));
    const cols = Math.max(...heads.map((t) => t.images.length));
    if (imgs.length) figs.push({ name: `top_images_L${l}`, png: await imageGrid(imgs, cols, { cellWidth: CELL, cellHeight: CELL, rowTitles: heads.map((t) => `${headName(t)}: ${t.text}`), title: `Layer ${l}: top images per head` }), caption: `layer ${l}: per head, the images whose term has the largest component along the head's first TextSpan text (named above the row)` });
  }
  out.push({ title: `${SECTIONS.textspan} — top images per head`, figures: figs });
  out.push(...prefixed(SECTIONS.textspan, own.sections));
  return out;
}

async function waterbirdsSections(c: PaperContext, w: WaterbirdsResult): Promise<ReportSection[]> {
  const m = c.spuriousModel.name;
  const out: ReportSection[] = [];
  const row = (name: string, r: DebiasStudyResult['before'], method: string) => [name, pct(r.worst), pct(r.mean), pct(r.overall), paper(m, 'waterbirds', method, 'worst')];
  const rows: (string | number)[][] = [];
  if (w.result) {
    rows.push(row('before', w.result.before, 'before'));
    if (w.result.protocolOnly) rows.push(row("the protocol's own ablation, no heads", w.result.protocolOnly, 'protocol only'));
    rows.push(row(`after: ${w.result.heads.map(headName).join(', ')} mean-ablated (chosen by text)`, w.result.after, 'after (text)'));
    if (w.result.random) rows.push([`${w.result.heads.length} random head${w.result.heads.length > 1 ? 's' : ''} (mean of ${w.result.random.draws} draws)`, pct(w.result.random.meanWorst), pct(w.result.random.meanMean), pct(w.result.random.meanOverall), '—']);
  }
  if (w.reference) rows.push(row(`after: the reference's ${w.reference.heads.length} heads`, w.reference.result.after, 'after'));
  out.push({
    title: SECTIONS.waterbirds,
    text: [
      ...w.notes,
      `Heads chosen: ${w.query}, from ${w.textspanSource}.`,
      w.result ? `Protocol: ${w.result.protocolText}.` : '',
      w.reference ? `The reference row ablates ${w.reference.source}: ${w.reference.heads.map(headName).join(', ')}.` : '',
      `Accuracy of the zero-shot classifier per (label, place) group of the test split (labels: ${c.profile.waterbirdsClasses.map((n, i) => `${i} = ${n}`).join(', ')}; places: ${c.profile.waterbirdsPlaces.map((n, i) => `${i} = ${n}`).join(', ')}); the paper's numbers are worst-group accuracies before and after mean-ablating the authors' hand-picked location heads.`,
    ].filter(Boolean),
    tables: [
      { caption: 'accuracy (%) next to the paper', headers: ['embeddings', 'worst group (%)', 'mean over groups (%)', 'overall (%)', 'paper, worst group (%)'], rows },
      { caption: 'heads chosen by text', headers: ['head', 'score', 'texts that matched'], rows: w.selection.map((h) => [headName(h), Number(h.score.toFixed(4)), h.matched.slice(0, 4).join('; ')]) },
    ],
  });
  if (w.result) out.push(...prefixed(SECTIONS.waterbirds, (await debiasReport(w.result, {})).sections.filter((s) => s.title !== 'Summary')));
  return out;
}

async function retrievalSections(c: PaperContext, r: RetrievalResult): Promise<ReportSection[]> {
  const manifest = readManifest(join(c.work, r.store));
  const figs = [];
  const prec = (v: RetrievalStudyResult['views'][number] | undefined) => (v?.precision?.labels !== undefined ? pct(v.precision.labels) : '');
  for (const p of r.properties) {
    if (!p.head) continue;
    const v = p.views[0];
    const q = await thumbnail(manifest, v.query.id, CELL);
    const imgs: RGBImage[] = [];
    for (const view of v.views) {
      imgs.push({ ...q, caption: 'query' });
      for (const nb of view.neighbours) imgs.push({ ...(await thumbnail(manifest, nb.id, CELL)), caption: nb.score.toFixed(3) });
    }
    figs.push({
      name: `retrieval_${p.name}`,
      png: await imageGrid(imgs, 1 + v.k, { cellWidth: CELL, cellHeight: CELL, rowTitles: v.views.map((view) => `${view.name === 'whole embedding' ? 'whole embedding' : `${p.name} head ${headName(p.head!)}`}: the query, then its ${v.k} nearest neighbours (cosine)`), title: `${p.name}: ${headName(p.head)} (${p.head.matched.slice(0, 2).join('; ')})` }),
      caption: `${p.name}: nearest neighbours of ${v.query.id} using only head ${headName(p.head)}'s term, then using the whole embedding`,
    });
  }
  return [
    {
      title: SECTIONS.retrieval,
      text: [
        "For each property, the head whose TextSpan texts match it best; nearest neighbours of a stored image using only that head's term, next to the whole embedding.",
        `Precision@k: the share of neighbours with the query's class label, over ${r.properties.find((p) => p.views[0]?.views[0]?.precision)?.views[0].views[0].precision?.queries ?? 0} sampled queries.`,
      ],
      tables: [
        {
          headers: ['property', 'head', 'chosen as', 'its matching texts', 'precision@k by class: head (%)', 'whole embedding (%)'],
          rows: r.properties.map((p) => [p.name, p.head ? headName(p.head) : 'none', p.query, p.head ? p.head.matched.slice(0, 3).join('; ') : '', prec(p.views[0]?.views[0]), prec(p.views[0]?.views.at(-1))]),
        },
      ],
      figures: figs,
    },
  ];
}

async function segmentationSections(c: PaperContext, s: SegmentationSection, cfg: ClipConfig): Promise<ReportSection[]> {
  const m = c.model.name;
  const names: Record<string, string> = { decomposition: 'decomposition', 'raw attention': 'raw attention', 'attention rollout': 'rollout' };
  const rows: (string | number)[][] = [];
  for (const meth of SEG_METHODS) {
    const r = s.results[meth];
    rows.push([meth === 'decomposition' ? 'decomposition (ours, the paper’s method)' : `${meth} (baseline)`, pct(r?.pixelAccuracy), pct(r?.mIoU), pct(r?.mAP), paper(m, 'segmentation', names[meth], 'pixelAccuracy'), paper(m, 'segmentation', names[meth], 'mIoU'), paper(m, 'segmentation', names[meth], 'mAP')]);
  }
  const chefer = ['pixelAccuracy', 'mIoU', 'mAP'].map((k) => paper(m, 'segmentation', 'Chefer et al. (best baseline)', k));
  if (chefer.some((v) => v !== '—')) rows.push(['Chefer et al. (gradient-based; not run here)', '', '', '', ...chefer]);
  const figs = [];
  if (s.examples.length) {
    const mat = c.data.imagenetSeg ? await openSegmentationMat(c.data.imagenetSeg.path) : undefined;
    const panels: RGBImage[] = [];
    try {
      for (const ex of s.examples) {
        const img = mat!.image(ex.i);
        const mask = mat!.mask(ex.i);
        const input: RGBImage = { rgb: preprocessDecodedBatch(cfg, [img]).u8, width: s.size, height: s.size };
        panels.push({ ...input, caption: `#${ex.i}: ${ex.predicted}` });
        panels.push(maskImage(maskOnInput(mask, img, s.size, s.geometry), s.size, s.size, 'ground truth'));
        // The map as it is thresholded: upsampled, clipped at 0, min–max normalised.
        for (const meth of SEG_METHODS) panels.push(blendMap(input, heatmapAndMask(ex.maps[meth], s.grid, s.size, s.size).heat, s.size, s.size, { range: [0, 1], caption: meth }));
      }
    } finally {
      mat?.close();
    }
    figs.push({ name: 'segmentation_examples', png: await imageGrid(panels, 5, { cellWidth: Math.max(CELL, s.size), cellHeight: Math.max(CELL, s.size), title: 'image, ground truth, decomposition, raw attention, rollout' }), caption: 'per image: the input, its mask, and each method’s map' });
  }
  return [
    {
      title: SECTIONS.segmentation,
      text: [
        `${s.scored} of ${s.images} images scored. Each image's predicted class direction minus the mean over classes (the paper's protocol); masks squashed to the input square as the reference does; maps upsampled bilinearly, clipped at 0, min–max normalised, thresholded at the mean.`,
        'Baselines on the same images with the same post-processing and metrics: the last layer’s raw CLS attention (mean over heads) and attention rollout.',
      ],
      tables: [{ caption: 'ImageNet-segmentation (%) next to the paper', headers: ['method', 'pixel accuracy', 'mIoU', 'mAP', 'paper pixel acc.', 'paper mIoU', 'paper mAP'], rows }],
      figures: figs,
    },
  ];
}

async function jointSections(c: PaperContext, j: JointResult, cfg: ClipConfig): Promise<ReportSection[]> {
  const S = cfg.vision.imageSize;
  const figs = [];
  for (const [k, im] of j.images.entries()) {
    const file = isAbsolute(im.file) ? im.file : join(c.work, im.file);
    if (!existsSync(file)) continue;
    const pre = await preprocessFiles(cfg, [file]);
    const panels: RGBImage[] = [];
    for (const mp of im.maps) {
      const input: RGBImage = { rgb: pre.u8, width: S, height: S };
      panels.push(blendMap(input, mp.full, j.grid, j.grid, { caption: 'all heads' }));
      for (const h of mp.heads) panels.push(blendMap(input, h.map, j.grid, j.grid, { caption: `${headName(h)} ${h.total.toExponential(1)}` }));
    }
    const cols = 1 + (im.maps[0]?.heads.length ?? 0);
    const cell = Math.max(CELL, Math.min(S, 160));
    figs.push({
      name: `joint_${k}`,
      png: await imageGrid(panels, cols, { cellWidth: cell, cellHeight: cell, rowTitles: im.maps.map((mp) => `'${mp.text}' minus the mean of the two texts: all heads, then the top heads`), title: im.file.split('/').pop() }),
      caption: 'per text (rows): the map over all heads, then restricted to each of the heads contributing most along it (their total contribution printed)',
    });
  }
  return [
    {
      title: SECTIONS.joint,
      text: `For each picture and text, the per-patch map along the text minus the mean of the two texts (demo.ipynb), over all layers and heads, and restricted to each of the ${j.images[0]?.maps[0]?.heads.length ?? 0} heads contributing most along it.`,
      tables: j.images.flatMap((im) => im.maps.map((mp) => ({ caption: `${im.file.split('/').pop()}: ${mp.text}`, headers: ['head', 'total contribution'], rows: mp.heads.map((h) => [headName(h), Number(h.total.toExponential(3))]) }))),
      figures: figs,
    },
  ];
}

export async function paperReport(c: PaperContext, results: Record<string, unknown>, timings: StepTiming[], cfg: ClipConfig): Promise<Report> {
  const sections: ReportSection[] = [];
  const pm = paperModelOf(c.model.name);
  const numbers = paperNumbers();
  if (results.ablation) sections.push(...(await ablationSections(c, results.ablation as AblationStudyResult)));
  if (results.textspan) {
    const curves = Object.entries(results).filter(([k]) => k.startsWith('baseline:')).map(([, v]) => v as PoolCurve);
    const store = readManifest(join(c.work, (results['store:imagenet'] as StoreResult).dir));
    sections.push(...(await textspanSections(results.textspan as TextSpanStepResult, curves, store)));
  }
  if (results.waterbirds) sections.push(...(await waterbirdsSections(c, results.waterbirds as WaterbirdsResult)));
  if (results.retrieval) sections.push(...(await retrievalSections(c, results.retrieval as RetrievalResult)));
  if (results.segmentation) sections.push(...(await segmentationSections(c, results.segmentation as SegmentationSection, cfg)));
  if (results.joint) sections.push(...(await jointSections(c, results.joint as JointResult, cfg)));
  sections.push({
    title: 'Skipped experiments',
    text: c.skipped.length ? c.skipped.map((s) => `${SECTIONS[s.section]}: skipped, ${s.reason}.`) : 'None: every experiment had its data.',
    data: c.skipped,
  });
  sections.push({
    title: "The paper's numbers",
    text: [
      pm ? `${c.model.name} is the paper's ${pm.arch} (${pm.pretrained}); the 'paper' columns show its published numbers where the paper reports them, '—' where it does not.` : `${c.model.name} is not one of the paper's models, so the 'paper' columns are empty ('—').`,
      `Source: ${numbers.paper} ${numbers.provenance}`,
    ],
    tables: [{ headers: ['model', 'experiment', 'method', 'metric', 'value (%)', 'where', 'via'], rows: numbers.numbers.map((n) => [n.model, n.experiment, n.method, n.metric, n.value, n.table ?? n.where, n.via]) }],
  });
  sections.push({
    title: 'Steps',
    text: 'Each step of the plan, with the seconds it took in this run (0 when its earlier result was reused).',
    tables: [{ headers: ['step', 'section', 'seconds', 'estimated seconds', 'from an earlier run'], rows: timings.map((t) => [t.step.title, t.step.section, Number(t.seconds.toFixed(2)), Number(t.step.estimate.seconds.toFixed(1)), t.cached ? 'yes' : 'no']) }],
  });
  const names = { imagenet: 'ImageNet', waterbirds: 'Waterbirds', imagenetSeg: 'ImageNet-segmentation', images: 'joint pictures' } as const;
  const dataMeta = Object.fromEntries(
    (Object.keys(names) as (keyof typeof names)[]).map((k) => {
      const v = c.data[k];
      return [names[k], v ? (v.standIn ? `toy-world stand-in (work/${v.path.slice(c.work.length + 1)})` : v.path) : 'not given'];
    }),
  );
  return {
    title: `The paper's experiments on ${c.model.name}`,
    summary: `Gandelsman, Efros & Steinhardt, "Interpreting CLIP's Image Representation via Text-Based Decomposition" (ICLR 2024), reproduced with cliplens on ${c.model.name}. ${c.skipped.length ? `${c.skipped.length} experiment(s) skipped for lack of data (see the end).` : 'Every experiment ran.'}`,
    meta: {
      model: c.model.name,
      'model fingerprint': c.model.fingerprint,
      ...(c.spuriousModel.fingerprint !== c.model.fingerprint ? { '§5 Waterbirds model': `${c.spuriousModel.name} (${c.spuriousModel.fingerprint})` } : {}),
      ...dataMeta,
      ...(c.settings.limit !== undefined ? { 'images per dataset (at most)': c.settings.limit } : {}),
      'random draws': c.settings.draws,
      seed: c.settings.seed,
    },
    models: c.spuriousModel.fingerprint !== c.model.fingerprint ? [c.model, c.spuriousModel] : [c.model],
    sections,
    data: { model: c.model, spuriousModel: c.spuriousModel, skipped: c.skipped, settings: c.settings, results },
  };
}
