// The ablation study of compute_ablations.py (SPEC §4): what the neurons' second-order effects do
// to zero-shot accuracy. Per validation image, with the training set's μ_n, pc_n and τ_n:
//   r = 100·z/‖z‖;  r₀ = r − Σ_n E[n] + Σ_n μ_n (all neurons mean-ablated);  Δ_n = E[n] − μ_n;
//   significant s_n = ‖Δ_n‖ > τ_n;  r_sig = r₀ + Σ_{¬s} Δ_n;  r_insig = r₀ + Σ_s Δ_n;
//   r_pc = r₀ + Σ_n (Δ_n·pc_n) pc_n;  with a text reconstruction R_n: r_text = r₀ + Σ_n (Δ_n·R_n) R_n.
// What is ablated is the neurons' contribution to the final embedding, not their activations.

import { f32, type F32 } from '../tensor.ts';
import { COEFFICIENT } from './readout.ts';
import type { EffectsSource } from './store.ts';
import { ShapeError, UsageError } from '../errors.ts';

export const ABLATION_ROWS = [
  'Baseline (from representations)',
  'Without all the neurons',
  'Without significant neurons',
  'Without insignificant neurons',
  'With neurons reconstructed from PC',
] as const;
export const TEXT_ROW = 'Reconstructed neurons';

/** The training-set statistics of one block's neurons (a `neurons pca` file). */
export interface NeuronStats {
  /** [M, d] μ_n, [M, d] pc_n, [M, k] norms (column 0 = τ_n). */
  mean: F32;
  pc: F32;
  norms: F32;
}

export interface NeuronAblationResult {
  rows: string[];
  /** [rows, B, C] logits. */
  logits: F32;
  /** Top-1 accuracy in percent per row, as the reference prints it. */
  accuracy: number[];
  /** [B] how many neurons were significant in each image. */
  significant: Int32Array;
}

/** ‖Δ_n‖ > τ_n in float32, the precision of the stored thresholds (an image on τ_n is not significant). */
export function isSignificant(norm: number, tau: number): boolean {
  return Math.fround(norm) > tau;
}

/**
 * Run the study over validation effects `val` (with image_features) and labels; classifier [C, d]
 * rows; `reconstruction` [M, d] adds the --evaluate row of compute_sparse_decomposition.py.
 */
export async function neuronAblation(val: EffectsSource, stats: NeuronStats, classifier: F32, labels: ArrayLike<number>, reconstruction?: Float64Array): Promise<NeuronAblationResult> {
  const { B, M, d } = val;
  if (!val.imageFeatures) throw new UsageError('the validation effects carry no image_features (z): make them with cliplens neurons effects');
  const z = val.imageFeatures();
  const [C, dc] = classifier.shape;
  if (dc !== d) throw new ShapeError(`classifier has embedding size ${dc}, the effects ${d}`);
  if (stats.mean.shape[0] !== M || stats.mean.shape[1] !== d) throw new ShapeError(`the neuron statistics are for [${stats.mean.shape}], the effects hold ${M} neurons × ${d}`);
  if (labels.length !== B) throw new ShapeError(`${labels.length} labels for ${B} images`);
  const k = stats.norms.shape[1];
  const rows: string[] = [...ABLATION_ROWS, ...(reconstruction ? [TEXT_ROW] : [])];
  const R = rows.length;
  const logits = f32([R, B, C]);
  const significant = new Int32Array(B);
  const mu = stats.mean.data, pc = stats.pc.data;
  const sumMu = new Float64Array(d);
  for (let n = 0; n < M; n++) for (let c = 0; c < d; c++) sumMu[c] += mu[n * d + c];
  const emb = new Float64Array(R * d);
  const delta = new Float64Array(d);
  for (let b0 = 0; b0 < B; b0 += val.chunk) {
    const count = Math.min(val.chunk, B - b0);
    const E = await val.read(b0, count);
    for (let i = 0; i < count; i++) {
      const b = b0 + i;
      emb.fill(0);
      let zz = 0;
      for (let c = 0; c < d; c++) zz += z.data[b * d + c] ** 2;
      const s = COEFFICIENT / Math.sqrt(zz);
      for (let c = 0; c < d; c++) emb[c] = s * z.data[b * d + c];
      const r0 = emb.subarray(d, 2 * d);
      for (let c = 0; c < d; c++) r0[c] = emb[c] + sumMu[c];
      for (let n = 0; n < M; n++) {
        const eo = (i * M + n) * d;
        let nn = 0, onPc = 0, onText = 0;
        for (let c = 0; c < d; c++) {
          r0[c] -= E[eo + c];
          const x = E[eo + c] - mu[n * d + c];
          delta[c] = x;
          nn += x * x;
          onPc += x * pc[n * d + c];
          if (reconstruction) onText += x * reconstruction[n * d + c];
        }
        const sig = isSignificant(Math.sqrt(nn), stats.norms.data[n * k]);
        if (sig) significant[b]++;
        const keep = (sig ? 3 : 2) * d; // significant: kept in r_insig, else in r_sig
        for (let c = 0; c < d; c++) {
          emb[keep + c] += delta[c];
          emb[4 * d + c] += onPc * pc[n * d + c];
          if (reconstruction) emb[5 * d + c] += onText * reconstruction[n * d + c];
        }
      }
      for (let row = 2; row < R; row++) for (let c = 0; c < d; c++) emb[row * d + c] += r0[c];
      for (let row = 0; row < R; row++) {
        for (let cl = 0; cl < C; cl++) {
          let v = 0;
          for (let c = 0; c < d; c++) v += emb[row * d + c] * classifier.data[cl * d + c];
          logits.data[(row * B + b) * C + cl] = v;
        }
      }
    }
  }
  const accuracy = rows.map((_, row) => {
    let correct = 0;
    for (let b = 0; b < B; b++) {
      let best = 0;
      for (let cl = 1; cl < C; cl++) if (logits.data[(row * B + b) * C + cl] > logits.data[(row * B + b) * C + best]) best = cl;
      if (best === labels[b]) correct++;
    }
    return (correct / B) * 100;
  });
  return { rows, logits, accuracy, significant };
}
