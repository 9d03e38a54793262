// The decomposition's invariant, measured: the terms sum to the embedding (z/‖z‖ when normalised,
// z otherwise). Reports state it from the measured error and this tolerance, never by assumption.

import type { Decomposition } from './prs.ts';

/**
 * Largest |Σ terms − target| accepted as "sums to the embedding": the bound the parity tests hold
 * cliplens to against the reference (float32 terms of unit-norm embeddings).
 */
export const DECOMPOSITION_TOLERANCE = 1e-5;

/** max over images and coordinates of |Σ attn + Σ mlp − target|. */
export function decompositionError(dec: Pick<Decomposition, 'attn' | 'mlp' | 'imageFeatures' | 'norm' | 'normalised'>): number {
  const n = dec.attn.shape[0];
  const d = dec.attn.shape[dec.attn.shape.length - 1];
  const perA = dec.attn.data.length / n / d;
  const perM = dec.mlp.data.length / n / d;
  const sum = new Float64Array(d);
  let err = 0;
  for (let i = 0; i < n; i++) {
    sum.fill(0);
    for (let t = 0; t < perA; t++) for (let j = 0; j < d; j++) sum[j] += dec.attn.data[(i * perA + t) * d + j];
    for (let t = 0; t < perM; t++) for (let j = 0; j < d; j++) sum[j] += dec.mlp.data[(i * perM + t) * d + j];
    const s = dec.normalised ? 1 / dec.norm.data[i] : 1;
    for (let j = 0; j < d; j++) err = Math.max(err, Math.abs(sum[j] - dec.imageFeatures.data[i * d + j] * s));
  }
  return err;
}

/** What a report may say about the invariant, given the measured error over `images` images. */
export function exactnessStatement(err: number, images: number, tolerance = DECOMPOSITION_TOLERANCE): string {
  const measured = `max |Σ terms − z/‖z‖| = ${err.toExponential(2)} over ${images} images`;
  return err <= tolerance
    ? `The terms sum to the embedding within float32 round-off: ${measured} (tolerance ${tolerance.toExponential(0)}).`
    : `The terms do NOT sum to the embedding: ${measured}, above the tolerance ${tolerance.toExponential(0)}; the numbers below are suspect.`;
}
