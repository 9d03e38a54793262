// Everything after the attention weights is linear once LN_post's μ and σ are fixed, so the
// readout of a head — W_O^{l,h} · diag(γ) · P — folds into one d_h×d matrix ahead of time
// (docs/decomposition.md, "Folding the readout").

import { batchedMatmul } from '../graph/matmul.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { transposed } from '../graph/transformer.ts';

export interface Readout {
  L: number; H: number; N: number; D: number; d: number; dh: number;
  /** [L, H, d_h, d]: W_O^{l,h} · diag(γ) · P */
  F: Float32Array;
  /** [D, d]: diag(γ) · P, the readout of a residual-stream vector */
  G: Float32Array;
  /** [d]: γ · P, what a unit of LN mean contributes */
  gammaP: Float64Array;
  /** [d]: β · P */
  betaP: Float64Array;
  /** [L, d]: (b_O^l ⊙ γ) · P */
  biasOP: Float64Array;
  eps: number;
}

export async function foldReadout(model: ClipModel): Promise<Readout> {
  const { L, H, tokens: N, D, d, headWidth: dh } = model.dims();
  const gamma = model.weight('visual.ln_post.weight').data;
  const beta = model.weight('visual.ln_post.bias').data;
  const P = model.weight('visual.proj').data; // [D, d]
  const G = new Float32Array(D * d);
  const gammaP = new Float64Array(d);
  const betaP = new Float64Array(d);
  for (let j = 0; j < D; j++) {
    for (let k = 0; k < d; k++) {
      const p = P[j * d + k];
      G[j * d + k] = gamma[j] * p;
      gammaP[k] += gamma[j] * p;
      betaP[k] += beta[j] * p;
    }
  }
  // W_Oᵀ [D_in, D_out] per layer; its rows h·d_h..(h+1)·d_h are head h, so W_Oᵀ·G is [H, d_h, d].
  // One layer at a time, so folding a big model never holds every W_O at once.
  const F = new Float32Array(L * D * d);
  const biasOP = new Float64Array(L * d);
  for (let l = 0; l < L; l++) {
    const Wo = model.weight(`visual.transformer.resblocks.${l}.attn.out_proj.weight`).data;
    F.set(await batchedMatmul(transposed(Wo, D, D), G, 1, D, D, d), l * D * d);
    const bO = model.weight(`visual.transformer.resblocks.${l}.attn.out_proj.bias`).data;
    for (let j = 0; j < D; j++) for (let k = 0; k < d; k++) biasOP[l * d + k] += bO[j] * G[j * d + k];
  }
  return { L, H, N, D, d, dh, F, G, gammaP, betaP, biasOP, eps: model.config.vision.lnEps };
}

/** LN_post statistics of the final CLS residual, as the reference computes them: var = E[x²] − E[x]². */
export function lnStats(resid: Float32Array, D: number, eps: number): { mean: Float64Array; std: Float64Array } {
  const B = resid.length / D;
  const mean = new Float64Array(B);
  const std = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let s = 0;
    let s2 = 0;
    for (let j = 0; j < D; j++) {
      const x = resid[b * D + j];
      s += x;
      s2 += x * x;
    }
    const m = s / D;
    mean[b] = m;
    std[b] = Math.sqrt(s2 / D - m * m + eps);
  }
  return { mean, std };
}
