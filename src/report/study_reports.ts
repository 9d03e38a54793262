// Reports (tables, charts, image grids) of the paper's studies, for writeReport.

import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import sharp from 'sharp';
import type { AblationStudyResult } from '../analyses/ablation_study.ts';
import type { DebiasStudyResult, HeadSelection } from '../analyses/debias.ts';
import type { RetrievalStudyResult } from '../analyses/retrieval_study.ts';
import type { MaskGeometry, SegmentationRun } from '../analyses/segmentation_study.ts';
import type { TextSpanStudyResult } from '../analyses/textspan_study.ts';
import { fromJson } from '../io/provenance.ts';
import type { StoreManifest } from '../io/store.ts';
import { headName, pct } from '../notation.ts';
import { barChart, groupedBarChart, lineChart, imageGrid, type RGBImage } from './figures.ts';
import type { Report, ReportSection } from './writer.ts';
import type { PoolCurve } from '../analyses/text_baselines.ts';

/** The model a study result names (its model and modelFingerprint fields). */
const provenanceOf = (r: { model: string; modelFingerprint?: string }) => [fromJson(r)!];

export function ablationReport(r: AblationStudyResult, meta: Record<string, string | number | boolean>): Promise<Report> {
  return (async () => {
    const rows: (string | number)[][] = [
      ['nothing (baseline)', pct(r.baseline)],
      ['all MLPs and the ln_pre term', pct(r.mlps)],
      ...(r.clsToCls !== undefined ? [['CLS→CLS attention', pct(r.clsToCls)], ['MLPs, ln_pre and CLS→CLS', pct(r.mlpsAndClsToCls!)]] : []),
      ...(r.heads ? [[`heads ${r.heads.heads.map(headName).join(', ')}`, pct(r.heads.accuracy)]] : []),
      ...r.cumulative.map((c) => [`attention layers up to ${c.upTo}`, pct(c.accuracy)]),
    ];
    const bars = await barChart({
      title: 'Zero-shot accuracy after mean-ablation',
      labels: rows.map((x) => String(x[0]).replace('attention layers up to', 'attn ≤')),
      values: rows.map((x) => Number(x[1])),
      yLabel: 'accuracy (%)',
      yMin: 0,
      yMax: 100,
      valueLabels: true,
    });
    const lines = await lineChart({
      title: 'Which attention layers matter',
      x: r.cumulative.map((c) => c.upTo),
      series: [
        { name: 'layers 0..l ablated', values: r.cumulative.map((c) => pct(c.accuracy)) },
        { name: 'layer l alone ablated', values: r.single.map((c) => pct(c.accuracy)) },
        { name: 'baseline', values: r.cumulative.map(() => pct(r.baseline)) },
      ],
      xLabel: 'attention layer l',
      yLabel: 'accuracy (%)',
      yMin: 0,
      yMax: 100,
    });
    return {
      title: 'Mean-ablation: which parts of the model carry the direct effect',
      summary: `Baseline ${pct(r.baseline)}% on ${r.images} images (${r.classes} classes); MLPs and ln_pre mean-ablated ${pct(r.mlps)}%${r.clsToCls !== undefined ? `; CLS→CLS mean-ablated ${pct(r.clsToCls)}%` : ''}; all attention layers mean-ablated ${pct(r.cumulative.at(-1)?.accuracy ?? NaN)}%.`,
      meta,
      models: provenanceOf(r),
      sections: [
        { title: 'Accuracy', text: r.notes, tables: [{ caption: 'top-1 zero-shot accuracy (%) with the terms mean-ablated', headers: ['mean-ablated', 'accuracy (%)'], rows }], figures: [{ name: 'ablation_bars', png: bars, caption: 'accuracy per ablation' }] },
        {
          title: 'Attention layers',
          tables: [{ headers: ['layer', 'layers ≤ l ablated (%)', 'layer l alone ablated (%)'], rows: r.cumulative.map((c, i) => [c.upTo, pct(c.accuracy), pct(r.single[i].accuracy)]) }],
          figures: [{ name: 'layers', png: lines, caption: 'accuracy as attention layers are mean-ablated cumulatively from the first, and one at a time' }],
        },
      ],
      data: r,
    };
  })();
}

export async function textspanReport(r: TextSpanStudyResult, meta: Record<string, string | number | boolean>): Promise<Report> {
  const sections: ReportSection[] = [];
  const layers = [...new Set(r.heads.map((h) => h.layer))];
  for (const l of layers) {
    const hs = r.heads.filter((h) => h.layer === l);
    const show = Math.min(r.k, 10);
    sections.push({
      title: `Layer ${l}`,
      text: `The first ${show} of ${r.k} texts per head, in TextSpan order, with the cumulative fraction of the head's variance explained.`,
      tables: hs.map((h) => ({
        caption: `head ${headName(h)} (${pct(h.varianceExplained[h.varianceExplained.length - 1] ?? 0)}% of variance with ${h.texts.length} texts)`,
        headers: ['#', 'text', 'variance explained (%)'],
        rows: h.texts.slice(0, show).map((t, i) => [i + 1, t, pct(h.varianceExplained[i])]),
      })),
    });
  }
  const ve = await barChart({
    title: `Variance explained by ${r.k} texts per head`,
    labels: r.heads.map(headName),
    values: r.heads.map((h) => pct(h.varianceExplained[h.varianceExplained.length - 1] ?? 0)),
    yLabel: 'variance explained (%)',
    yMin: 0,
    yMax: 100,
  });
  sections.unshift({ title: 'Variance explained', figures: [{ name: 'variance_explained', png: ve, caption: 'fraction of each head’s variance spanned by its texts' }] });
  if (r.accuracy) {
    const a = r.accuracy;
    const fig = await lineChart({
      title: 'Accuracy with heads replaced by their TextSpan reconstruction',
      x: a.m,
      series: [
        { name: 'reconstructed', values: a.replaced.map((x) => pct(x)) },
        { name: `layers ${r.layers.join(', ')} intact, the rest as the protocol says`, values: a.m.map(() => pct(a.chosenLayersOnly)) },
        { name: 'full model', values: a.m.map(() => pct(a.baseline)) },
      ],
      xLabel: 'texts per head (m)',
      yLabel: 'accuracy (%)',
      yMin: 0,
      yMax: 100,
    });
    sections.splice(1, 0, {
      title: 'How much of the heads the texts explain',
      text: `Every head of layers ${r.layers.join(', ')} is replaced by its reconstruction from its first m texts; protocol '${a.protocol}': ${a.protocolText}.`,
      tables: [{ headers: ['m', 'accuracy (%)'], rows: a.m.map((m, i) => [m, pct(a.replaced[i])]) }],
      figures: [{ name: 'accuracy_vs_m', png: fig, caption: 'zero-shot accuracy vs texts per head' }],
    });
  }
  return {
    title: 'TextSpan: a text basis for each attention head',
    summary: `${r.heads.length} heads of layers ${r.layers.join(', ')}, ${r.k} texts each, rank ${r.rank}.${r.accuracy ? ` Accuracy with the heads replaced (protocol '${r.accuracy.protocol}'): ${r.accuracy.m.map((m, i) => `m = ${m}: ${pct(r.accuracy!.replaced[i])}%`).join(', ')}.` : ''}`,
    meta,
    models: provenanceOf(r),
    sections,
    data: r,
  };
}

/** How the heads were chosen for a query, as a report section. */
function selectionSection(s: HeadSelection, count: number): ReportSection {
  return {
    title: 'Heads chosen',
    text:
      s.match === 'substring'
        ? `Heads with a TextSpan text containing '${s.query}' (case-insensitive substring).`
        : `The ${count} heads whose TextSpan texts are closest to '${s.query}' (mean of the 3 best cosine similarities under the model's text encoder).`,
    tables: [{ headers: ['head', 'score', 'texts that matched'], rows: s.heads.map((h) => [headName(h), Number(h.score.toFixed(4)), h.matched.slice(0, 4).join('; ')]) }],
  };
}

/**
 * TextSpan's accuracy curve next to its baselines (paper Fig. 3): one line per pool (random
 * pools: mean over draws), and a table with mean ± sample standard deviation.
 */
export async function textspanBaselinesSection(r: TextSpanStudyResult, curves: PoolCurve[], poolSource: string): Promise<ReportSection> {
  const a = r.accuracy!;
  const at = (cv: PoolCurve, mm: number) => cv.m.indexOf(mm);
  const series = curves.map((cv) => ({ name: cv.draws.length > 1 ? `${cv.name} (mean of ${cv.draws.length})` : cv.name, values: a.m.map((mm) => (at(cv, mm) >= 0 ? pct(cv.mean[at(cv, mm)]) : NaN)) }));
  series.push({ name: 'layers intact', values: a.m.map(() => pct(a.chosenLayersOnly)) });
  const fig = await lineChart({ title: 'Accuracy kept by m texts per head, per pool', x: a.m, series, xLabel: 'texts per head (m)', yLabel: 'accuracy (%)', yMin: 0, yMax: 100, width: 720 });
  const cell = (cv: PoolCurve, mm: number) => {
    const i = at(cv, mm);
    if (i < 0) return '';
    return cv.draws.length > 1 ? `${pct(cv.mean[i])} ± ${pct(cv.std[i])}` : pct(cv.mean[i]);
  };
  return {
    title: 'Accuracy vs texts per head, against baselines',
    text: [
      `Pool: ${poolSource}. Baselines as in the paper's Fig. 3: the most common English words, random texts made of the pool's own words (each the length of a random pool text) and random unit directions; the random pools are seeded (seeds in the JSON).`,
      `Protocol: ${a.protocolText}. Full model ${pct(a.baseline)}%; layers ${r.layers.join(', ')} intact, the rest as the protocol says: ${pct(a.chosenLayersOnly)}%.`,
    ],
    tables: [
      {
        caption: `accuracy (%) with every head of layers ${r.layers.join(', ')} replaced by its reconstruction from m texts of each pool (random pools: mean ± sample standard deviation over the draws)`,
        headers: ['m', ...curves.map((cv) => `${cv.name} (${cv.size})`)],
        rows: a.m.map((mm) => [mm, ...curves.map((cv) => cell(cv, mm))]),
      },
    ],
    figures: [{ name: 'textspan_baselines', png: fig, caption: 'accuracy vs texts per head for each pool' }],
    data: { curves },
  };
}

export async function debiasReport(r: DebiasStudyResult, meta: Record<string, string | number | boolean>, selection?: HeadSelection): Promise<Report> {
  const fig = await groupedBarChart({
    title: 'Accuracy per (label, group): before, after, random heads',
    groups: r.cells.map((c) => `${c.label} / ${c.group}`),
    series: [
      { name: 'before', values: r.cells.map((c) => pct(c.before)), color: '#7f7f7f' },
      { name: `after (${r.heads.map(headName).join(', ')}, ${r.protocol} protocol)`, values: r.cells.map((c) => pct(c.after)), color: '#2ca02c' },
      ...(r.random ? [{ name: `${r.heads.length} random heads (mean of ${r.random.draws})`, values: r.cells.map((c) => pct(c.random ?? NaN)), color: '#ff7f0e' }] : []),
    ],
    xLabel: 'accuracy (%)',
    xMin: 0,
    xMax: 100,
  });
  const sumRows: (string | number)[][] = [
    ['before', pct(r.before.overall), pct(r.before.mean), pct(r.before.worst)],
    ...(r.protocolOnly ? [['the protocol alone (no heads)', pct(r.protocolOnly.overall), pct(r.protocolOnly.mean), pct(r.protocolOnly.worst)]] : []),
    [`after (heads ${r.heads.map(headName).join(', ')})`, pct(r.after.overall), pct(r.after.mean), pct(r.after.worst)],
  ];
  if (r.random) sumRows.push([`${r.heads.length} random heads (mean of ${r.random.draws})`, pct(r.random.meanOverall), pct(r.random.meanMean), pct(r.random.meanWorst)]);
  const sections: ReportSection[] = [
    {
      title: 'Summary',
      text: [`Protocol '${r.protocol}': ${r.protocolText}.`, ...r.notes],
      tables: [{ headers: ['embeddings', 'overall (%)', 'mean over groups (%)', 'worst group (%)'], rows: sumRows }],
    },
    {
      title: 'Per (label, group)',
      tables: [{ headers: ['label', 'group', 'images', 'before (%)', 'after (%)', ...(r.random ? ['random heads (%)'] : [])], rows: r.cells.map((c) => [c.label, c.group, c.count, pct(c.before), pct(c.after), ...(c.random !== undefined ? [pct(c.random)] : [])]) }],
      figures: [{ name: 'groups', png: fig, caption: `grey: before, green: chosen heads mean-ablated (${r.protocol} protocol), orange: as many random heads mean-ablated` }],
    },
  ];
  if (selection) sections.unshift(selectionSection(selection, r.heads.length));
  return {
    title: 'Reducing spurious cues by mean-ablating heads',
    summary: `Worst-group accuracy ${pct(r.before.worst)}% → ${pct(r.after.worst)}% after mean-ablating ${r.heads.length} head(s) with the ${r.protocol} protocol${r.random ? `; ${pct(r.random.meanWorst)}% with as many random heads` : ''}.`,
    meta,
    models: provenanceOf(r),
    sections,
    data: r,
  };
}

/** An image of the dataset as an RGB thumbnail (grey with a note when it cannot be read). */
export async function thumbnail(m: StoreManifest, id: string, size = 112): Promise<RGBImage> {
  const path = isAbsolute(id) ? id : join(m.dataset.root, id);
  if (existsSync(path)) {
    try {
      const { data, info } = await sharp(path).resize(size, size, { fit: 'cover' }).toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
      if (info.channels === 3) return { rgb: new Uint8Array(data), width: info.width, height: info.height };
    } catch {
      // fall through to the placeholder
    }
  }
  return { rgb: new Uint8Array(size * size * 3).fill(200), width: size, height: size };
}

export async function retrievalReport(r: RetrievalStudyResult, m: StoreManifest, meta: Record<string, string | number | boolean>): Promise<Report> {
  const q = await thumbnail(m, r.query.row === undefined ? resolve(r.query.id) : r.query.id);
  const sections: ReportSection[] = [];
  const fmt = (s: number) => s.toFixed(3);
  for (const v of r.views) {
    const imgs: RGBImage[] = [{ ...q, caption: 'query' }];
    for (const nb of v.neighbours) imgs.push({ ...(await thumbnail(m, nb.id)), caption: `${fmt(nb.score)}${nb.label !== undefined ? ' ' + nb.label : ''}` });
    const grid = await imageGrid(imgs, Math.min(imgs.length, 6), { title: `${v.name}: nearest ${r.k}` });
    const prec = v.precision ? [v.precision.labels !== undefined ? `precision@${r.k} by label ${pct(v.precision.labels)}%` : '', v.precision.groups !== undefined ? `precision@${r.k} by group ${pct(v.precision.groups)}%` : ''].filter(Boolean).join('; ') + ` (over ${v.precision.queries} queries)` : '';
    sections.push({
      title: v.name,
      text: prec ? [prec] : undefined,
      tables: [{ headers: ['rank', 'image', 'label', 'group', r.score === 'dot' ? 'dot product' : 'cosine'], rows: v.neighbours.map((nb, i) => [i + 1, nb.id, nb.label ?? '', nb.group ?? '', Number(nb.score.toFixed(4))]) }],
      figures: [{ name: `grid_${v.name}`, png: grid, caption: `query first, then its nearest neighbours using ${v.name}` }],
    });
  }
  return {
    title: 'Property-based retrieval with single heads',
    summary: `Query ${r.query.id}${r.query.row !== undefined ? ` (row ${r.query.row})` : ' (an image outside the store, decomposed by its model)'}; neighbours by ${r.search}.`,
    meta: { ...meta, search: r.search },
    models: provenanceOf(r),
    sections,
    data: r,
  };
}

/** The segmentation run: method, metrics, per-image scores and (when given) overlay panels in threes: map, predicted mask, ground truth. */
export async function segmentationReport(r: SegmentationRun, geometry: MaskGeometry, meta: Record<string, string | number | boolean>, panels: RGBImage[], data: unknown = r): Promise<Report> {
  const m = r.metrics;
  return {
    title: 'Zero-shot segmentation from the decomposition',
    summary: m ? `Pixel accuracy ${pct(m.pixelAccuracy)}%, mIoU ${pct(m.mIoU)}%, mAP ${pct(m.mAP)}% over ${m.images} images.` : `${r.images.length} images segmented (no masks given).`,
    meta,
    sections: [
      {
        title: 'Method',
        text: [
          'Map over patches: the direct contribution of every patch along the direction, summed over layers and heads (the folded spatial path), minus the mean over classes when a classifier is used.',
          'Post-processing as the reference: bilinear upsampling to the input size, clip at 0, min–max normalisation, threshold at the mean.',
          geometry === 'aligned'
            ? 'Masks are resized (nearest) and centre-cropped like the images (--mask-geometry aligned).'
            : "Masks are squashed to the input square (nearest) while the images are resized and centre-cropped, as the paper's script does (--mask-geometry reference); for non-square images mask and image pixels do not line up.",
        ],
      },
      ...(m ? [{ title: 'Metrics', tables: [{ headers: ['pixel accuracy (%)', 'IoU background (%)', 'IoU foreground (%)', 'mIoU (%)', 'mAP (%)', 'images'], rows: [[100 * m.pixelAccuracy, 100 * m.iou[0], 100 * m.iou[1], 100 * m.mIoU, 100 * m.mAP, m.images]] }] }] : []),
      {
        title: 'Images',
        tables: [{ headers: ['image', 'segmented', 'pixel acc (%)', 'IoU fg (%)', 'AP (%)'], rows: r.images.map((x) => [x.name, x.target, ...[x.pixelAccuracy, x.iouForeground, x.ap].map((v) => (v === undefined ? '' : pct(v)))]) }],
        figures: panels.length ? [{ name: 'overlays', png: await imageGrid(panels, 3, { title: 'map, predicted mask, ground truth' }), caption: 'per image: the heatmap over the image, the thresholded mask, the ground-truth mask' }] : [],
      },
    ],
    models: provenanceOf(r),
    data,
  };
}
