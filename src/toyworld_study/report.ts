// The study's report: one section per experiment, each with tables and figures, and a plain
// statement of what the numbers do and do not show on this toy model.

import { exactnessStatement } from '../decompose/invariant.ts';
import { barChart, imageGrid, lineChart, type RGBImage } from '../report/figures.ts';
import { headName } from '../notation.ts';
import type { Report, ReportFigure, ReportSection } from '../report/writer.ts';
import { ATTRIBUTES, FAMILIES } from '../toyworld/index.ts';
import { COLOR_KEY, familyColor, maskScene, overlay, pct1, sceneImage } from './figures.ts';
import { headsByFamily, type HeadLabel } from './heads.ts';
import { SEG_METHODS } from './segmentation.ts';
import type { GroupSummary } from './spurious.ts';
import type { ToyworldScenes, ToyworldStudy } from './study.ts';

const fmt = (x: number) => (Number.isFinite(x) ? pct1(x) : 'n/a');

/** Interleaved bars (series × categories) as one bar chart, coloured per series. */
async function groupedBars(title: string, categories: string[], series: { name: string; values: number[]; color: string }[], yLabel: string, yMax = 100): Promise<Buffer> {
  const labels: string[] = [];
  const values: number[] = [];
  const colors: string[] = [];
  categories.forEach((c, i) =>
    series.forEach((s) => {
      labels.push(`${c}: ${s.name}`);
      values.push(s.values[i]);
      colors.push(s.color);
    }),
  );
  return barChart({ title, labels, values, color: colors, yLabel, yMin: 0, yMax, width: Math.max(640, 26 * labels.length + 120), height: 440 });
}

function ablationSection(s: ToyworldStudy): Promise<ReportSection> {
  return (async () => {
    const L = s.dims.L;
    const rows = s.ablation.map((a) => [a.family, a.classes, fmt(1 / a.classes), fmt(a.baseline), fmt(a.mlps), ...a.upTo.map(fmt)]);
    const lines = await lineChart({
      title: 'Accuracy vs attention layers mean-ablated',
      x: Array.from({ length: L + 1 }, (_, i) => i),
      series: s.ablation.map((a) => ({ name: a.family, values: [pct1(a.baseline), ...a.upTo.map(pct1)], color: familyColor(a.family) })),
      xLabel: 'attention layers mean-ablated (0 = none; j = layers 0..j−1)',
      yLabel: 'accuracy (%)',
      yMin: 0,
      yMax: 100,
    });
    const bars = await groupedBars(
      'Mean-ablating all MLPs vs the full model',
      s.ablation.map((a) => a.family),
      [
        { name: 'full', values: s.ablation.map((a) => pct1(a.baseline)), color: '#1f77b4' },
        { name: 'no MLPs', values: s.ablation.map((a) => pct1(a.mlps)), color: '#ff7f0e' },
        { name: 'chance', values: s.ablation.map((a) => pct1(1 / a.classes)), color: '#bbbbbb' },
      ],
      'accuracy (%)',
    );
    // Only families the model has learned (10 points above chance) can show where they are read.
    const learned = s.ablation.filter((a) => a.baseline >= 1 / a.classes + 0.1);
    const keepLate = learned.filter((a) => a.baseline - (a.upTo[L - 3] ?? a.baseline) < 0.05).map((a) => a.family);
    const lost = learned.filter((a) => !keepLate.includes(a.family)).map((a) => a.family);
    const text = [
      `Each term of the decomposition is replaced by its mean over the ${s.settings.n} scenes and the terms are summed again (paper §3.2). ` +
        `Accuracies are top-1 zero-shot accuracies (%) with each family's classifier (the trainer's prompts).`,
      !learned.length
        ? 'The model is within 10 points of chance on every family, so the ablations cannot show where anything is read.'
        : (keepLate.length
            ? `Ablating attention layers 0..${L - 3} (all but the last two) keeps accuracy within 5 points for: ${keepLate.join(', ')} — their direct effect sits in the last layers, as in the paper. `
            : '') +
          (lost.length ? `It costs more than 5 points for: ${lost.join(', ')} — for these the earlier layers' direct effect matters too.` : '') +
          (learned.length < s.ablation.length ? ` (Families near chance, left out: ${s.ablation.filter((a) => !learned.includes(a)).map((a) => a.family).join(', ')}.)` : ''),
      `All MLPs mean-ablated: ${s.ablation.map((a) => `${a.family} ${fmt(a.baseline)} → ${fmt(a.mlps)}`).join('; ')}.`,
    ];
    return {
      title: '(a) Mean-ablation by layer',
      text,
      tables: [{ caption: 'accuracy (%) per family: chance, full model, all MLPs mean-ablated, attention layers 0..l mean-ablated', headers: ['family', 'classes', 'chance', 'full', 'MLPs ablated', ...Array.from({ length: L }, (_, l) => `attn ≤${l}`)], rows }],
      figures: [
        { name: 'a_layers', png: lines, caption: 'accuracy per family vs attention layers mean-ablated cumulatively' },
        { name: 'a_mlps', png: bars, caption: 'accuracy with all MLPs mean-ablated' },
      ],
      data: s.ablation,
    };
  })();
}

function headsSection(s: ToyworldStudy): Promise<ReportSection> {
  return (async () => {
    const m = s.settings.m;
    const by = headsByFamily(s.heads);
    const purity = await barChart({
      title: `Purity per head (share of its top ${m} texts from one family)`,
      labels: s.heads.map(headName),
      values: s.heads.map((h) => pct1(h.purity)),
      color: s.heads.map((h) => familyColor(h.family)),
      yLabel: 'purity (%)',
      yMin: 0,
      yMax: 100,
      width: Math.max(640, 28 * s.heads.length + 120),
    });
    const cols = [...FAMILIES, 'other'];
    const table = s.heads.map((h) => [headName(h), ...cols.map((f) => Math.round(h.shares[f] * m)), h.family, fmt(h.purity), h.specialised ? 'yes' : 'no']);
    const texts = s.heads.map((h) => [headName(h), h.family, fmt(h.purity), fmt(h.varianceExplained[h.varianceExplained.length - 1] ?? 0), h.texts.join(' | ')]);
    const counts = FAMILIES.map((f) => `${f} ${by[f].length}`).join(', ');
    const none = FAMILIES.filter((f) => by[f].length === 0);
    const nSpec = s.heads.filter((h) => h.specialised).length;
    const text = [
      `TextSpan (paper §4.1) on every head of all ${s.dims.L} layers, pool of ${s.pool.texts.length} texts: three phrasings of every attribute value in the training grammar ` +
        `plus ${s.pool.family.filter((f) => f === 'other').length} distractors that name no attribute. Each head gets its top ${m} texts; its label is the family most of them name, ` +
        `its purity that family's share. A head counts as a family's head when purity ≥ ${fmt(s.settings.minPurity)}%.`,
      `${nSpec} of ${s.heads.length} heads are specialised (${counts}).` + (none.length ? ` No head specialises in: ${none.join(', ')}.` : ''),
      nSpec < s.heads.length / 3
        ? 'Most heads mix families: on this small model TextSpan does not find the clean per-property heads of the paper for most heads.'
        : 'A good share of heads is dominated by one family, the toy-world counterpart of the paper\'s property-specific heads.',
    ];
    return {
      title: '(b) TextSpan: which heads describe which attribute',
      text,
      tables: [
        { caption: `head × family: how many of the head's top ${m} texts name each family; label, purity (%)`, headers: ['head', ...cols, 'label', 'purity', 'specialised'], rows: table },
        { caption: 'TextSpan texts per head in pick order, with the variance they explain (%)', headers: ['head', 'label', 'purity', 'var. expl.', 'texts'], rows: texts },
      ],
      figures: [{ name: 'b_purity', png: purity, caption: `purity per head; colour = the family it mostly describes: ${COLOR_KEY}` }],
      data: s.heads,
    };
  })();
}

async function retrievalGrid(s: ToyworldStudy, sc: ToyworldScenes, h: HeadLabel, family: string): Promise<ReportFigure> {
  const r = s.retrieval;
  const hr = r.heads.find((x) => x.layer === h.layer && x.head === h.head)!;
  const q = 0;
  const val = (row: number) => sc.main.scenes[row].labels[family];
  const cells: RGBImage[] = [];
  const qv = val(r.queries[q]);
  const row = (idx: Int32Array) => {
    cells.push(sceneImage(sc.main.scenes[r.queries[q]], 2, `query: ${qv}`));
    for (let j = 0; j < r.keep; j++) {
      const b = idx[q * r.keep + j];
      cells.push(sceneImage(sc.main.scenes[b], 2, `${val(b) === qv ? '✓' : '✗'} ${val(b)}`));
    }
  };
  row(hr.examples);
  row(r.wholeExamples);
  const png = await imageGrid(cells, r.keep + 1, { title: `${family}: nearest neighbours by head ${headName(h)} (top) vs the whole embedding (bottom)`, cellWidth: 128, cellHeight: 128 });
  return { name: `c_retrieval_${family}`, png, caption: `retrieval by ${headName(h)} (${h.specialised ? 'labelled' : 'not specialised; mostly'} ${h.family}, purity ${fmt(h.purity)}%) vs whole embedding; captions give each neighbour's ${family}` };
}

function retrievalSection(s: ToyworldStudy, sc: ToyworldScenes): Promise<ReportSection> {
  return (async () => {
    const r = s.retrieval;
    const by = headsByFamily(s.heads);
    const P = (h: { layer: number; head: number }, f: string) => r.heads.find((x) => x.layer === h.layer && x.head === h.head)!.precision[f];
    const labelled = FAMILIES.flatMap((f) => by[f].map((h) => [headName(h), f, fmt(h.purity), fmt(P(h, f)), fmt(r.whole[f]), fmt(r.chance[f])]));
    const matrix = [
      ...s.heads.map((h) => [headName(h), h.family, ...FAMILIES.map((f) => fmt(P(h, f)))]),
      ['whole embedding', '', ...FAMILIES.map((f) => fmt(r.whole[f]))],
      ['chance', '', ...FAMILIES.map((f) => fmt(r.chance[f]))],
    ];
    // Per family: its best labelled head, else the best head of any label.
    const best = FAMILIES.map((f) => {
      const pool = by[f].length ? by[f] : s.heads;
      return pool.reduce((a, b) => (P(b, f) > P(a, f) ? b : a));
    });
    const bars = await groupedBars(
      `precision@${r.k}: best head vs whole embedding`,
      FAMILIES,
      [
        { name: 'head', values: FAMILIES.map((f, i) => pct1(P(best[i], f))), color: '#2ca02c' },
        { name: 'whole', values: FAMILIES.map((f) => pct1(r.whole[f])), color: '#1f77b4' },
        { name: 'chance', values: FAMILIES.map((f) => pct1(r.chance[f])), color: '#bbbbbb' },
      ],
      `precision@${r.k} (%)`,
    );
    const figures: ReportFigure[] = [{ name: 'c_precision', png: bars, caption: `per family: the labelled head with the highest precision@${r.k} (any head when none is labelled), the whole embedding, chance` }];
    const shown = FAMILIES.filter((f) => by[f].length).slice(0, 4);
    for (const f of shown) figures.push(await retrievalGrid(s, sc, by[f][0], f));
    // No labelled head: still show what the best heads for colour and shape retrieve.
    if (!shown.length) for (const f of ['color', 'shape']) figures.push(await retrievalGrid(s, sc, best[FAMILIES.indexOf(f)], f));
    const text = [
      `Nearest neighbours by cosine similarity of one head's term (paper §5.1) among the ${s.settings.n} scenes, self excluded; precision@${r.k} = share of the ${r.k} neighbours with the query's value of the family, averaged over all queries. Chance = expected precision of random neighbours.`,
      retrievalClaim(s),
    ];
    return {
      title: '(c) Property retrieval by head',
      text,
      tables: [
        { caption: `labelled heads: precision@${r.k} (%) for their family, next to the whole embedding and chance`, headers: ['head', 'family', 'purity', 'head P@k', 'whole P@k', 'chance'], rows: labelled.length ? labelled : [['—', '—', '—', '—', '—', '—']] },
        { caption: `precision@${r.k} (%) of every head for every family`, headers: ['head', 'label', ...FAMILIES], rows: matrix },
      ],
      figures,
      data: { k: r.k, whole: r.whole, chance: r.chance, heads: r.heads.map((h) => ({ layer: h.layer, head: h.head, precision: h.precision })) },
    };
  })();
}

function segmentationSection(s: ToyworldStudy, sc: ToyworldScenes): Promise<ReportSection> {
  return (async () => {
    const g = s.segmentation;
    const rows = SEG_METHODS.map((m) => [m, fmt(g.results[m].pixelAccuracy), fmt(g.results[m].mIoU), fmt(g.results[m].iou[1]), fmt(g.results[m].mAP), g.degenerate[m]]);
    const bars = await groupedBars(
      'Zero-shot segmentation of the main object',
      ['acc', 'mIoU', 'mAP'],
      SEG_METHODS.map((m, i) => ({ name: ['text−mean', 'text raw', 'CLS attn', 'uniform'][i], values: [pct1(g.results[m].pixelAccuracy), pct1(g.results[m].mIoU), pct1(g.results[m].mAP)], color: ['#2ca02c', '#98df8a', '#1f77b4', '#bbbbbb'][i] })),
      '%',
    );
    const cells: RGBImage[] = [];
    for (const ex of g.examples) {
      const scene = sc.seg.scenes[ex.row];
      const t = 'text map (class mean subtracted)';
      const c = 'last-layer CLS attention';
      cells.push(sceneImage(scene, 2, ex.caption.replace('a photo of ', '')));
      cells.push(maskScene(scene.mask, g.size, 2, 'true mask'));
      cells.push(overlay(scene, ex.maps[t], g.grid, { caption: 'text map' }));
      cells.push(maskScene(ex.masks[t], g.size, 2, 'text mask'));
      cells.push(overlay(scene, ex.maps[c], g.grid, { caption: 'CLS attention' }));
      cells.push(maskScene(ex.masks[c], g.size, 2, 'CLS mask'));
    }
    const grid = await imageGrid(cells, 6, { title: 'scene, true mask, caption map and its mask, CLS attention and its mask', cellWidth: 128, cellHeight: 128 });
    const tm = g.results['text map (class mean subtracted)'];
    const cls = g.results['last-layer CLS attention'];
    const uni = g.results['uniform map'];
    const text = [
      `Text = the scene's shape/colour caption ("a photo of a red circle"); map = its direct contribution per patch, summed over all layers and heads (Decomposer.textMaps), minus the mean map of all ${2 * ATTRIBUTES.shape.length * ATTRIBUTES.color.length} shape/colour captions as the reference does ("raw": without that subtraction); ` +
        'reference post-processing (bilinear upsampling, clip at 0, min–max, threshold at the mean). Baselines from the same scenes: the last layer\'s CLS attention averaged over heads, and a uniform map (which predicts background everywhere).',
      `The objects cover ${fmt(1 - uni.pixelAccuracy)}% of the pixels of these ${g.images} scenes, so pixel accuracy and mIoU are dominated by the background: the uniform map, which finds nothing, already scores pixel accuracy ${fmt(uni.pixelAccuracy)}% and mIoU ${fmt(uni.mIoU)}%. ` +
        `The telling numbers are the object IoU and mAP: caption map ${fmt(tm.iou[1])}% / ${fmt(tm.mAP)}%, CLS attention ${fmt(cls.iou[1])}% / ${fmt(cls.mAP)}%, uniform 0% / 50%. ` +
        (tm.iou[1] > cls.iou[1] && tm.mAP > cls.mAP
          ? 'The caption maps beat the CLS attention on both.'
          : tm.iou[1] > cls.iou[1]
            ? 'The caption maps have the higher object IoU but not the higher mAP: they find the object, but rank its pixels less cleanly than the CLS attention.'
            : tm.mAP > cls.mAP
              ? 'The caption maps rank pixels better (mAP) but their thresholded masks overlap the object less than the CLS attention\'s.'
              : 'The caption maps do not beat the CLS attention here.'),
      ...(g.degenerate['text map (class mean subtracted)'] > 0
        ? [`${g.degenerate['text map (class mean subtracted)']} of ${g.images} caption maps were ≤ 0 on every patch (the reference clips at 0), so they predict no object at all.`]
        : []),
    ];
    return {
      title: '(d) Zero-shot segmentation from text maps',
      text,
      tables: [{ caption: 'segmentation scores (%) against the true masks; last column: scenes whose map was constant after clipping', headers: ['method', 'pixel acc', 'mIoU', 'IoU (object)', 'mAP', 'degenerate'], rows }],
      figures: [
        { name: 'd_scores', png: bars, caption: 'pixel accuracy, mIoU and mAP per method' },
        { name: 'd_overlays', png: grid, caption: 'example scenes with their maps and masks' },
      ],
      data: { images: g.images, results: g.results, degenerate: g.degenerate },
    };
  })();
}

function spuriousSection(s: ToyworldStudy, sc: ToyworldScenes): Promise<ReportSection> {
  return (async () => {
    const e = s.spurious;
    const r = e.random;
    const rows = [
      ['shape accuracy, all scenes', fmt(e.before.overall), fmt(e.after.overall), fmt(r.overall)],
      ['shape accuracy, mean over groups', fmt(e.before.mean), fmt(e.after.mean), fmt(r.mean)],
      ['shape accuracy, worst group', fmt(e.before.worst), fmt(e.after.worst), fmt(r.worst)],
      ['background accuracy', fmt(e.backgroundAccuracy.before), fmt(e.backgroundAccuracy.after), fmt(e.backgroundAccuracy.random)],
    ];
    const bars = await groupedBars(
      'Shape accuracy on balanced scenes',
      ['all', 'mean', 'worst', 'bg acc'],
      [
        { name: 'before', values: [e.before.overall, e.before.mean, e.before.worst, e.backgroundAccuracy.before].map(pct1), color: '#7f7f7f' },
        { name: 'ablated', values: [e.after.overall, e.after.mean, e.after.worst, e.backgroundAccuracy.after].map(pct1), color: '#2ca02c' },
        { name: 'random', values: [r.overall, r.mean, r.worst, e.backgroundAccuracy.random].map(pct1), color: '#1f77b4' },
      ],
      'accuracy (%)',
    );
    const examples: RGBImage[] = [];
    for (const shape of ATTRIBUTES.shape)
      for (const bg of ATTRIBUTES.background) {
        const scene = sc.balanced.scenes.find((x) => x.labels.shape === shape && x.labels.background === bg);
        if (scene) examples.push(sceneImage(scene, 2, `${shape} / ${bg}`));
      }
    const grid = await imageGrid(examples, ATTRIBUTES.background.length, { title: 'one balanced test scene per (shape, background) group', cellWidth: 150, cellHeight: 128 });
    const gain = e.after.worst - e.before.worst;
    const rgain = r.worst - e.before.worst;
    const sw = e.sweep;
    const sweepFig = sw.length
      ? await lineChart({
          title: 'Worst-group shape accuracy vs heads ablated',
          x: sw.map((p) => p.k),
          series: [
            { name: 'top-k background heads', values: sw.map((p) => pct1(p.worst)), color: '#2ca02c' },
            { name: 'k random heads', values: sw.map((p) => pct1(p.randomWorst)), color: '#1f77b4' },
          ],
          xLabel: 'heads mean-ablated (k)',
          yLabel: 'worst-group accuracy (%)',
          yMin: 0,
        })
      : undefined;
    const best = sw.reduce<(typeof sw)[number] | undefined>((b, p) => (!b || p.worst > b.worst ? p : b), undefined);
    const text = [
      e.standIn
        ? `Model: ${e.model}, standing in for the model trained on correlated data (not available in this run): the code path is exercised, but the numbers say nothing about removing a learned spurious cue.`
        : `Model: ${e.model}, trained on scenes where shape predicts background. Test scenes: ${e.images}, balanced over the ${ATTRIBUTES.shape.length}×${ATTRIBUTES.background.length} (shape, background) groups.`,
      `Heads ablated: ${e.heads.length ? e.heads.map((h) => `${headName(h)} (background share ${fmt(h.backgroundShare)}%)`).join(', ') : 'none'} — ${e.selection}. Mean-ablation follows ${e.protocolText}. Random baseline: as many random other heads of the layers the protocol keeps, ${r.draws} draws, mean.`,
      e.heads.length
        ? `Worst-group shape accuracy ${fmt(e.before.worst)}% → ${fmt(e.after.worst)}% (${gain >= 0 ? '+' : ''}${fmt(gain)} points) with the background heads ablated, vs ${fmt(r.worst)}% (${rgain >= 0 ? '+' : ''}${fmt(rgain)}) with random heads. ` +
          `Background zero-shot accuracy ${fmt(e.backgroundAccuracy.before)}% → ${fmt(e.backgroundAccuracy.after)}% (random: ${fmt(e.backgroundAccuracy.random)}%).`
        : 'Nothing was ablated.',
      ...(best
        ? [
            `Sweep: heads ranked by the share of background texts among their TextSpan texts, the top k mean-ablated for k = 1..${sw.length}, each next to k random other heads (${Math.max(r.draws, 1)} draws). ` +
              `The best k is ${best.k} (worst group ${fmt(best.worst)}%, mean over groups ${fmt(best.mean)}%; random heads ${fmt(best.randomWorst)}% / ${fmt(best.randomMean)}%).`,
          ]
        : []),
    ];
    return {
      title: '(e) Removing a spurious cue',
      text,
      tables: [
        { caption: 'accuracy (%) before, after mean-ablating the background heads, and after ablating as many random heads (mean over draws)', headers: ['measure', 'before', 'bg heads ablated', 'random heads'], rows },
        { caption: 'shape accuracy (%) per (shape, background) group', headers: ['shape', 'background', 'scenes', 'before', 'after', 'random'], rows: e.cells.map((c) => [c.shape, c.background, c.count, fmt(c.before), fmt(c.after), fmt(c.random)]) },
        ...(e.protocolOnly && e.headsOnly
          ? [{ caption: 'shape accuracy (%) of the parts of the protocol: its own ablation with no heads, and the heads alone with every other term kept', headers: ['ablated', 'all', 'mean over groups', 'worst group'], rows: [['nothing', e.before], ['the protocol, no heads', e.protocolOnly], ['the heads alone', e.headsOnly], ['the protocol and the heads', e.after]].map(([name, g]) => [name as string, fmt((g as GroupSummary).overall), fmt((g as GroupSummary).mean), fmt((g as GroupSummary).worst)]) }]
          : []),
        ...(sw.length
          ? [{ caption: 'sweep: shape accuracy (%) with the top-k background heads mean-ablated, next to k random heads (mean over draws)', headers: ['k', 'head added', 'its background share (%)', 'worst group', 'mean over groups', 'random: worst', 'random: mean'], rows: sw.map((p) => [p.k, headName(p.added), fmt(p.added.backgroundShare), fmt(p.worst), fmt(p.mean), fmt(p.randomWorst), fmt(p.randomMean)]) }]
          : []),
        ...(e.standIn
          ? []
          : [{ caption: `TextSpan on ${e.model} (test scenes): every head's label, purity and background share (%), and its texts`, headers: ['head', 'label', 'purity', 'background share', 'texts'], rows: e.allHeads.map((h) => [headName(h), h.family, fmt(h.purity), fmt(h.backgroundShare), h.texts.join(' | ')]) }]),
      ],
      figures: [
        ...(sweepFig ? [{ name: 'e_sweep', png: sweepFig, caption: 'worst-group shape accuracy with the top-k background heads ablated vs k random heads' }] : []),
        { name: 'e_groups', png: bars, caption: 'shape accuracy before/after and random baseline; last group: background accuracy' },
        { name: 'e_scenes', png: grid, caption: 'the balanced test set' },
      ],
      data: e,
    };
  })();
}


/** Labelled heads against the whole embedding, each in its own family: who retrieves it better, who worse. */
function retrievalVerdicts(s: ToyworldStudy) {
  const r = s.retrieval;
  const by = headsByFamily(s.heads);
  return FAMILIES.flatMap((f) =>
    by[f].map((h) => {
      const p = r.heads.find((x) => x.layer === h.layer && x.head === h.head)!.precision[f];
      return { head: h, family: f, head_p: p, whole: r.whole[f], better: p > r.whole[f] };
    }),
  );
}

const verdict = (v: ReturnType<typeof retrievalVerdicts>[number]) => `${headName(v.head)} ${v.family} ${fmt(v.head_p)}% vs ${fmt(v.whole)}%`;

function retrievalClaim(s: ToyworldStudy): string {
  const v = retrievalVerdicts(s);
  if (!v.length) return 'No head is labelled with a family, so there is no property head to compare; the matrix still shows which heads group scenes by which property.';
  const better = v.filter((x) => x.better), worse = v.filter((x) => !x.better);
  return (
    `${better.length} of ${v.length} labelled heads retrieve their own family better than the whole embedding (precision@${s.retrieval.k}, head vs whole)` +
    (better.length ? `: ${better.map(verdict).join('; ')}` : '') +
    (worse.length ? `. ${worse.length} do not: ${worse.map(verdict).join('; ')}.` : '.')
  );
}

/** One line per part, every claim computed from the study's numbers (the page's summary; no hand-written claims). */
export function findings(s: ToyworldStudy): string[] {
  const L = s.dims.L;
  const out: string[] = [];
  // (a)
  const learned = s.ablation.filter((a) => a.baseline >= 1 / a.classes + 0.1);
  const lateCost = learned.map((a) => ({ f: a.family, from: a.baseline, to: a.upTo[L - 3] ?? a.baseline })).sort((x, y) => x.from - x.to - (y.from - y.to));
  const cheap = lateCost.filter((c) => c.from - c.to <= 0.05);
  const dear = lateCost.filter((c) => c.from - c.to > 0.05);
  const mlp = [...s.ablation].sort((x, y) => y.baseline - y.mlps - (x.baseline - x.mlps));
  out.push(
    `(a) Mean-ablation: ablating attention layers 0–${L - 3} costs at most ${fmt(Math.max(0, ...cheap.map((c) => c.from - c.to)))} points for ${cheap.map((c) => c.f).join(', ') || 'no family'}` +
      (dear.length ? `; more for ${dear.map((c) => `${c.f} (${fmt(c.from)}% → ${fmt(c.to)}%)`).join(', ')}` : '') +
      `. Mean-ablating all MLPs costs most for ${mlp.slice(0, 2).map((a) => `${a.family} (${fmt(a.baseline - a.mlps)} points)`).join(' and ')}.`,
  );
  // (b)
  const by = headsByFamily(s.heads);
  const spec = s.heads.filter((h) => h.specialised);
  const withHeads = FAMILIES.filter((f) => by[f].length);
  const without = FAMILIES.filter((f) => !by[f].length);
  out.push(
    `(b) TextSpan: ${spec.length} of ${s.heads.length} heads have purity ≥ ${fmt(s.settings.minPurity)}%` +
      (withHeads.length ? `: ${withHeads.map((f) => `${f} (${by[f].map(headName).join(', ')})`).join(', ')}` : '') +
      (without.length ? `. No head specialises in ${without.join(', ')}.` : '.'),
  );
  // (c)
  out.push(`(c) Property retrieval: ${retrievalClaim(s)}`);
  // (d)
  const g = s.segmentation.results;
  const tm = g['text map (class mean subtracted)'], cls = g['last-layer CLS attention'], uni = g['uniform map'];
  out.push(
    `(d) Segmentation: objects cover ${fmt(1 - uni.pixelAccuracy)}% of the pixels, so a uniform map already scores ${fmt(uni.pixelAccuracy)}% pixel accuracy. ` +
      `Object IoU / mAP: caption map ${fmt(tm.iou[1])}% / ${fmt(tm.mAP)}%, last-layer CLS attention ${fmt(cls.iou[1])}% / ${fmt(cls.mAP)}%, uniform ${fmt(uni.iou[1])}% / ${fmt(uni.mAP)}%.`,
  );
  // (e)
  const e = s.spurious;
  const best = e.sweep.reduce<(typeof e.sweep)[number] | undefined>((b, p) => (!b || p.worst > b.worst ? p : b), undefined);
  out.push(
    `(e) Spurious cue (${e.standIn ? `${e.model} standing in for the correlated model: no learned cue to remove` : e.model}): worst-group shape accuracy ${fmt(e.before.worst)}% → ${fmt(e.after.worst)}% ` +
      `and mean over groups ${fmt(e.before.mean)}% → ${fmt(e.after.mean)}% with ${e.heads.map(headName).join(', ') || 'no heads'} mean-ablated under ${e.protocolText}; ${fmt(e.random.worst)}% / ${fmt(e.random.mean)}% with as many random heads of the kept layers.` +
      (e.protocolOnly && e.headsOnly ? ` The protocol alone (no heads) gives ${fmt(e.protocolOnly.worst)}% / ${fmt(e.protocolOnly.mean)}%; the heads alone ${fmt(e.headsOnly.worst)}% / ${fmt(e.headsOnly.mean)}%.` : '') +
      (best ? ` Best of the sweep: top ${best.k} background heads, ${fmt(best.worst)}% worst / ${fmt(best.mean)}% mean (random: ${fmt(best.randomWorst)}% / ${fmt(best.randomMean)}%); k is picked on the test scenes, so this is optimistic.` : ''),
  );
  return out;
}

export async function studyReport(s: ToyworldStudy, sc: ToyworldScenes): Promise<Report> {
  const zs = FAMILIES.map((f) => [f, ATTRIBUTES[f].length, fmt(1 / ATTRIBUTES[f].length), fmt(s.zeroShot[f])]);
  const overview: ReportSection = {
    title: 'Model and scenes',
    text: [
      `${s.settings.model}: ViT with ${s.dims.L} layers × ${s.dims.H} heads, embedding ${s.dims.d}, ${s.dims.imageSize}px images in a ${s.dims.grid}×${s.dims.grid} patch grid. ` +
        `${s.settings.n} held-out toy-world scenes (seed ${s.settings.seed}), drawn with every attribute independent.`,
      exactnessStatement(s.decompositionError, s.settings.n),
      ...s.notes,
    ],
    tables: [{ caption: 'zero-shot accuracy (%) of the full model per attribute family', headers: ['family', 'classes', 'chance', 'accuracy'], rows: zs }],
  };
  const summary: ReportSection = { title: 'What the numbers show', text: findings(s) };
  const sections = [overview, summary, await ablationSection(s), await headsSection(s), await retrievalSection(s, sc), await segmentationSection(s, sc), await spuriousSection(s, sc)];
  const { pool: _pool, ...data } = s;
  return {
    title: 'cliplens on the toy world: decomposition studies on a CLIP with known ground truth',
    summary: `Every experiment of "Interpreting CLIP's Image Representation via Text-Based Decomposition" on cliplens' own toy CLIP (${s.settings.model})${s.settings.quick ? ' — reduced (--quick) run' : ''}.`,
    meta: { model: s.settings.model, 'correlated model': s.settings.correlatedModel, scenes: s.settings.n, 'segmented scenes': s.settings.segImages, 'balanced scenes per group': s.settings.perGroup, 'random draws': s.settings.draws, 'texts per head (m)': s.settings.m, 'purity threshold': s.settings.minPurity, k: s.settings.k, quick: s.settings.quick },
    sections,
    models: s.models,
    data: { ...data, segmentation: { images: s.segmentation.images, results: s.segmentation.results, degenerate: s.segmentation.degenerate }, retrieval: sections[4].data },
  };
}

