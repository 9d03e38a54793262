// Reading an image through its neurons (concept_discovery.ipynb and visualize_neurons.ipynb,
// SPEC §7-8): the neurons significant in an image (‖E[i,n] − μ_n‖ > τ_n) vote for the texts of
// their sparse descriptions, weighted by coefficient × centred norm; the texts with the largest
// totals are the concepts present in the image. The notebook as published fails before this (an
// undefined args.layer, and sorted() over rows of effects instead of norms); this is the intended
// computation.

import { isSignificant, type NeuronStats } from './ablation.ts';
import { pcCosine, type Description } from './describe.ts';
import { reconstructionFromDescriptions } from './files.ts';
import type { F32 } from '../tensor.ts';
import { centredNorms } from './pca.ts';
import type { EffectsSource } from './store.ts';

export interface Concept {
  text: string;
  score: number;
  /** As the notebook prints it: int(score·100)/100. */
  printed: number;
}

export interface ImageConcepts {
  /** Significant neurons, ascending. */
  significant: number[];
  /** The `top` texts with the largest scores, largest first. */
  concepts: Concept[];
}

/**
 * Concepts of one image from its centred norms [M] (‖E[i,n] − μ_n‖), the thresholds τ [M] and the
 * neurons' descriptions. Scores are keyed by text (equal strings merge); ties keep first-seen order
 * before the notebook's reversal, as Python's stable sort.
 */
export function discoverConcepts(norms: ArrayLike<number>, tau: ArrayLike<number>, descriptions: Map<number, Description> | Description[], top = 10): ImageConcepts {
  const get = (n: number) => (Array.isArray(descriptions) ? descriptions[n] : descriptions.get(n));
  const significant: number[] = [];
  const scores = new Map<string, number>();
  for (let n = 0; n < norms.length; n++) {
    if (!isSignificant(norms[n], tau[n])) continue;
    significant.push(n);
    const w = Math.fround(norms[n]);
    for (const [, coef, text] of get(n) ?? []) scores.set(text, (scores.get(text) ?? 0) + coef * w);
  }
  const sorted = [...scores.entries()].map(([text, score], i) => ({ text, score, i })).sort((a, b) => a.score - b.score || a.i - b.i);
  const concepts = sorted
    .slice(-top)
    .reverse()
    .map(({ text, score }) => ({ text: pyStrip(text), score, printed: Math.trunc(score * 100) / 100 }));
  return { significant, concepts };
}

/** Python's str.strip() for the whitespace a text line can carry. */
function pyStrip(s: string): string {
  return s.replace(/^[\s\u001c-\u001f\u0085]+|[\s\u001c-\u001f\u0085]+$/g, '');
}

/** The k images with the largest centred norm, largest first (ties: the later image first). */
export function topImages(norms: ArrayLike<number>, k: number): number[] {
  const order = Array.from({ length: norms.length }, (_, i) => i).sort((a, b) => norms[a] - norms[b] || a - b);
  return order.slice(Math.max(0, order.length - k)).reverse();
}

/** Centred norms ‖E[b,n] − μ_n‖ of every image of `src` for the given neurons → [neurons.length][B]. */
export async function neuronNorms(src: EffectsSource, mean: ArrayLike<number>, neurons: number[]): Promise<Float64Array[]> {
  const { B, d } = src;
  const out = neurons.map(() => new Float64Array(B));
  for (let b0 = 0; b0 < B; b0 += src.chunk) {
    const count = Math.min(src.chunk, B - b0);
    for (const [i, n] of neurons.entries()) {
      const r = centredNorms(await src.read(b0, count, n, n + 1), count, n, 1, d, mean);
      out[i].set(r, b0);
    }
  }
  return out;
}

/** What a neuron's report card shows (report/neuron_reports.ts draws it). */
export interface NeuronCard {
  neuron: number;
  /** Sparse text description (reference order: largest |coefficient| first). */
  description?: Description;
  /** Cosine between the PC and its text reconstruction. */
  reconstructionCosine?: number;
  /** Centred norm of every image (source row order). */
  norms: Float64Array;
  /** τ_n: the top-k-th largest norm of the training images. */
  tau: number;
  /** Rows of the largest norms, largest first. */
  top: number[];
}

/** Cards of `neurons` over the images of `src`, with the statistics of a PCA file (and optionally their texts). */
export async function neuronCards(src: EffectsSource, stats: NeuronStats, neurons: number[], opts: { descriptions?: Map<number, Description>; textFeatures?: F32; top: number }): Promise<NeuronCard[]> {
  const norms = await neuronNorms(src, stats.mean.data, neurons);
  const k = stats.norms.shape[1];
  const recon = opts.descriptions && opts.textFeatures ? reconstructionFromDescriptions(opts.descriptions, src.M, opts.textFeatures) : undefined;
  return neurons.map((n, i) => ({
    neuron: n,
    description: opts.descriptions?.get(n),
    norms: norms[i],
    tau: stats.norms.data[n * k],
    top: topImages(norms[i], opts.top),
    reconstructionCosine: recon ? pcCosine(stats.pc.data, recon, n, src.d) : undefined,
  }));
}

/** Concepts of the rows of `src` (all, or the given ones). */
export async function imagesConcepts(src: EffectsSource, stats: NeuronStats, descriptions: Map<number, Description>, rows: number[], top = 10): Promise<ImageConcepts[]> {
  const { M, d } = src;
  const k = stats.norms.shape[1];
  const tau = Float32Array.from({ length: M }, (_, n) => stats.norms.data[n * k]);
  const out: ImageConcepts[] = [];
  for (const b of rows) {
    const norms = centredNorms(await src.read(b, 1), 1, 0, M, d, stats.mean.data);
    out.push(discoverConcepts(norms, tau, descriptions, top));
  }
  return out;
}
