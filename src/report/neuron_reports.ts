// Reports of the neuron studies for src/report/writer.ts: one card per neuron (its texts with
// signed coefficients, its top images, the distribution of its centred norms), the ablation
// table, concept lists.

import type { SegmentationResult } from '../analyses/segmentation.ts';
import type { SegmentRow } from '../analyses/segmentation_study.ts';
import type { ModelProvenance } from '../io/provenance.ts';
import type { StoreManifest } from '../io/store.ts';
import { pct } from '../notation.ts';
import type { NeuronAblationResult } from '../neurons/ablation.ts';
import type { ImageConcepts, NeuronCard } from '../neurons/concepts.ts';
import { barChart, imageGrid, type RGBImage } from './figures.ts';
import { thumbnail } from './study_reports.ts';
import type { Report, ReportSection } from './writer.ts';

/** Histogram of values in `bins` equal bins → labels and counts. */
export function histogram(values: ArrayLike<number>, bins: number): { labels: string[]; counts: number[]; lo: number; hi: number } {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    lo = Math.min(lo, values[i]);
    hi = Math.max(hi, values[i]);
  }
  if (!(hi > lo)) hi = lo + 1e-12;
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < values.length; i++) counts[Math.min(bins - 1, Math.floor(((values[i] - lo) / (hi - lo)) * bins))]++;
  const labels = counts.map((_, i) => (lo + ((i + 0.5) * (hi - lo)) / bins).toPrecision(2));
  return { labels, counts, lo, hi };
}

export async function neuronCardsReport(cards: NeuronCard[], m: StoreManifest, meta: Record<string, string | number | boolean>): Promise<Report> {
  const sections: ReportSection[] = [];
  for (const c of cards) {
    const texts = c.description ? [...c.description].sort((a, b) => b[1] - a[1]) : [];
    const imgs: RGBImage[] = [];
    for (const row of c.top) imgs.push({ ...(await thumbnail(m, m.items[row]?.id ?? '')), caption: c.norms[row].toFixed(3) });
    const h = histogram(c.norms, 20);
    const above = Array.from(c.norms).filter((v) => Math.fround(v) > c.tau).length;
    sections.push({
      title: `Neuron ${c.neuron}`,
      text: [
        `${above} of ${c.norms.length} images have a centred norm above the significance threshold τ = ${c.tau.toPrecision(4)}.`,
        ...(c.reconstructionCosine !== undefined ? [`Its first PC and the text reconstruction have cosine ${c.reconstructionCosine.toFixed(3)}.`] : []),
      ],
      tables: texts.length ? [{ caption: 'texts of the sparse decomposition, by signed coefficient', headers: ['text', 'coefficient', 'text index'], rows: texts.map(([i, v, t]) => [t, Number(v.toPrecision(4)), i]) }] : [],
      figures: [
        ...(imgs.length ? [{ name: `neuron_${c.neuron}_top`, png: await imageGrid(imgs, Math.min(5, imgs.length), { cellWidth: 112, cellHeight: 112, title: `neuron ${c.neuron}: top images` }), caption: 'images with the largest centred second-order effect, largest first (caption: norm)' }] : []),
        { name: `neuron_${c.neuron}_norms`, png: await barChart({ title: `neuron ${c.neuron}: centred norms (τ = ${c.tau.toPrecision(3)})`, labels: h.labels, values: h.counts, yLabel: 'images' }), caption: 'distribution of the centred norm ‖E(b, n) − μ_n‖ over the store images' },
      ],
      data: { neuron: c.neuron, tau: c.tau, significantImages: above, top: c.top, description: c.description, reconstructionCosine: c.reconstructionCosine },
    });
  }
  return {
    title: `Neurons of MLP block ${meta.layer ?? ''}: texts, top images, norms`,
    models: [m.model],
    summary: `${cards.length} neurons; second-order effects of ${cards[0]?.norms.length ?? 0} images.`,
    meta,
    sections,
  };
}

export async function neuronAblationReport(r: NeuronAblationResult, models: ModelProvenance[], meta: Record<string, string | number | boolean>): Promise<Report> {
  const bars = await barChart({ title: 'Zero-shot accuracy with neurons ablated', labels: r.rows.map((x) => x.replace('With neurons reconstructed from', 'PC:').replace('Without', 'w/o')), values: r.accuracy, yLabel: 'accuracy (%)', yMin: 0, yMax: 100, valueLabels: true });
  const meanSig = r.significant.reduce((a, b) => a + b, 0) / Math.max(1, r.significant.length);
  return {
    title: 'Ablating the second-order effects of neurons',
    models,
    summary: r.rows.map((row, i) => `${row}: ${r.accuracy[i].toFixed(2)}%`).join('; '),
    meta,
    sections: [
      {
        title: 'Accuracy',
        text: [
          'Each neuron’s second-order contribution to the image embedding is replaced by its training mean (all neurons), kept only for the significant or insignificant ones (centred norm above τ_n), or projected on its first PC (or its text reconstruction). Activations are not changed.',
          `On average ${meanSig.toFixed(1)} neurons per image are significant.`,
        ],
        tables: [{ headers: ['setting', 'top-1 accuracy (%)'], rows: r.rows.map((row, i) => [row, Number(r.accuracy[i].toFixed(4))]) }],
        figures: [{ name: 'ablation', png: bars, caption: 'top-1 zero-shot accuracy per setting' }],
      },
    ],
    data: { rows: r.rows, accuracy: r.accuracy, significant: r.significant },
  };
}

export function neuronSegmentationReport(
  out: { metrics?: SegmentationResult; pooledAp?: number; images: SegmentRow[] },
  overlays: Buffer | undefined,
  models: ModelProvenance[],
  meta: Record<string, string | number | boolean>,
): Report {
  const m = out.metrics;
  return {
    title: 'Zero-shot segmentation with neurons',
    models,
    summary: m ? `Pixel accuracy ${pct(m.pixelAccuracy)}%, mIoU ${m.mIoU.toFixed(4)}, mAP ${m.mAP.toFixed(4)} over ${m.images} images.` : `${out.images.length} images segmented (no masks).`,
    meta,
    sections: [
      { title: 'Method', text: ['Per image: the class the model predicts; the neurons whose first PCs have the largest |pc · class direction|; the mean of their activations at each patch, upsampled bilinearly, min–max normalised, foreground above 0.5 (as compute_segmentation.py).'] },
      ...(m ? [{ title: 'Metrics', tables: [{ headers: ['pixel accuracy', 'IoU background', 'IoU foreground', 'mIoU', 'mAP', ...(out.pooledAp !== undefined ? ['pooled AP'] : []), 'images'], rows: [[m.pixelAccuracy, m.iou[0], m.iou[1], m.mIoU, m.mAP, ...(out.pooledAp !== undefined ? [out.pooledAp] : []), m.images]] }] }] : []),
      { title: 'Images', tables: [{ headers: ['image', 'class', 'pixel accuracy', 'IoU fg', 'AP'], rows: out.images.map((r) => [r.name, r.target, r.pixelAccuracy ?? '', r.iouForeground ?? '', r.ap ?? '']) }], figures: overlays ? [{ name: 'overlays', png: overlays, caption: 'maps over the images' }] : [] },
    ],
    data: out,
  };
}

export function conceptsReport(images: { id: string; concepts: ImageConcepts }[], models: ModelProvenance[], meta: Record<string, string | number | boolean>): Report {
  return {
    title: 'Concepts in images, read through their significant neurons',
    models,
    summary: `${images.length} images.`,
    meta,
    sections: images.map(({ id, concepts }) => ({
      title: id,
      text: [`${concepts.significant.length} significant neurons.`],
      tables: [{ headers: ['concept', 'score'], rows: concepts.concepts.map((c) => [c.text, c.printed]) }],
    })),
    data: images,
  };
}
