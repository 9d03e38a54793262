// The image-independent half of the second-order effects of the neurons of MLP block l
// (Gandelsman, Efros, Steinhardt, ICLR 2025; SPEC §2.3 of test/fixtures/second_order).
//
// Neuron n writes a_n(t)·w_n (+ its 1/M share of the c_proj bias) at every token t. A later block
// j > l reads it through ln_1 (linearised with the frozen per-token μ_j(t), σ_j(t)), the value and
// output projections of head h and the CLS query's attention, then LN_post (frozen at the final
// CLS) and the projection P. Because Σ_t A(0,t) = 1 the result is affine in one scalar per neuron,
//   ĉ^{j,h}_n = s · u_n · g^{j,h}_n + κ^{j,h},  u_n = Σ_t A^{j,h}(0,t) a_n(t) / σ_j(t),  s = 100/(‖z‖ σ_post),
// with g^{j,h}_n = (γ_post ⊙ W_O^{j,h} W_V^{j,h} (γ¹_j ⊙ w_n)) · P independent of the image, and a
// neuron-independent κ^{j,h} = s·(c₁K₁ + c₂K₂ + K₃ − μ_post/T_j · γP) + 100/‖z‖ · βP/T_j whose
// vectors K₁..K₃ are folded here too (c₁ = Σ_t A/σ, c₂ = Σ_t Aμ/σ per image). Shares of the constants
// as the reference: S_j = (1+2j)·M over the components entering block j and the neurons,
// T_j = S_j·(1+2L)·H for LN_post.

import { foldReadout } from '../decompose/readout.ts';
import { batchedMatmul } from '../graph/matmul.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { AnalysisError } from '../errors.ts';

/** The reference's `coefficient`: effects are 100 · (…) / ‖z‖ (prs_second_order_neurons_hook.py:19). */
export const COEFFICIENT = 100;

export interface NeuronReadout {
  /** MLP block l (0-based, as the reference's --mlp_layer). */
  layer: number;
  /** The later heads (j, h), j > l, in the reference's loop order (j, then h). */
  heads: [number, number][];
  L: number; H: number; N: number; D: number; d: number;
  /** Neurons: the MLP width. */
  M: number;
  /** [M, J·H, d]: g^{j,h}_n per neuron, then per later head. */
  g: Float32Array;
  /** [J·H, 3, d]: K₁, K₂, K₃ of each later head. */
  K: Float64Array;
  /** [J·H]: T_j, the LN_post share of head (j, h). */
  T: Float64Array;
  /** [d]: γ_post · P and β_post · P. */
  gammaP: Float64Array;
  betaP: Float64Array;
  /** LayerNorm epsilon of the vision tower. */
  eps: number;
}

/** Blocks whose neurons have a second-order effect: every block with a later attention layer. */
export function checkNeuronLayer(model: ClipModel, layer: number): void {
  if (model.family.id !== 'clip') throw new AnalysisError(`second-order effects of neurons are defined for CLIP vision transformers (a CLS token read by later attention); model ${model.name} is ${model.family.label}`);
  const L = model.config.vision.layers;
  if (!Number.isInteger(layer) || layer < 0 || layer > L - 2) {
    throw new AnalysisError(`MLP block ${layer} has no second-order effect to compute: model ${model.name} has blocks 0..${L - 1}, and only blocks 0..${L - 2} are read by a later attention layer`);
  }
}

export async function foldNeuronReadout(model: ClipModel, layer: number): Promise<NeuronReadout> {
  checkNeuronLayer(model, layer);
  const { L, H, tokens: N, D, d, headWidth: dh, hidden: M } = model.dims();
  const r = await foldReadout(model); // F [L, H, d_h, d] = W_O^{l,h}·diag(γ_post)·P
  const blk = (j: number, name: string) => model.weight(`visual.transformer.resblocks.${j}.${name}`).data;
  const Wc = blk(layer, 'mlp.c_proj.weight'); // [D, M]: column n is w_n
  const bOut = blk(layer, 'mlp.c_proj.bias'); // [D]
  const J = L - 1 - layer;
  const heads: [number, number][] = [];
  for (let j = layer + 1; j < L; j++) for (let h = 0; h < H; h++) heads.push([j, h]);
  const JH = heads.length;
  const g = new Float32Array(M * JH * d);
  const K = new Float64Array(JH * 3 * d);
  const T = new Float64Array(JH);
  for (let jj = 0; jj < J; jj++) {
    const j = layer + 1 + jj;
    const gamma1 = blk(j, 'ln_1.weight');
    const beta1 = blk(j, 'ln_1.bias');
    const inW = blk(j, 'attn.in_proj_weight'); // [3D, D]; rows 2D.. are W_V
    const inB = blk(j, 'attn.in_proj_bias');
    // A_j = W_V diag(γ¹_j) W_c  [D, M]: every neuron's value vector in every head of block j.
    const WvG = new Float32Array(D * D);
    for (let o = 0; o < D; o++) for (let i = 0; i < D; i++) WvG[o * D + i] = inW[(2 * D + o) * D + i] * gamma1[i];
    const A = await batchedMatmul(WvG, Wc, 1, D, D, M);
    // Per head: A_j[h]ᵀ [M, d_h] · F[j, h] [d_h, d] → [H, M, d].
    const At = new Float32Array(H * M * dh);
    for (let h = 0; h < H; h++) for (let e = 0; e < dh; e++) {
      const src = (h * dh + e) * M;
      for (let n = 0; n < M; n++) At[(h * M + n) * dh + e] = A[src + n];
    }
    const Fj = r.F.subarray(j * H * dh * d, (j + 1) * H * dh * d);
    const gj = await batchedMatmul(At, Fj, H, M, dh, d);
    const S = (1 + 2 * j) * M;
    for (let h = 0; h < H; h++) {
      const k = jj * H + h;
      for (let n = 0; n < M; n++) g.set(gj.subarray((h * M + n) * d, (h * M + n + 1) * d), (n * JH + k) * d);
      // K₁ = W_V(γ¹⊙b_out)ᵀF / M, K₂ = −(W_V γ¹)ᵀF / S_j, K₃ = (W_V β¹ + b_V)ᵀF / S_j + (b_O⊙γ)P / (S_j H).
      const v1 = new Float64Array(dh), v2 = new Float64Array(dh), v3 = new Float64Array(dh);
      for (let e = 0; e < dh; e++) {
        const row = (2 * D + h * dh + e) * D;
        let s1 = 0, s2 = 0, s3 = 0;
        for (let i = 0; i < D; i++) {
          const w = inW[row + i];
          s1 += w * gamma1[i] * bOut[i];
          s2 += w * gamma1[i];
          s3 += w * beta1[i];
        }
        v1[e] = s1 / M;
        v2[e] = -s2 / S;
        v3[e] = (s3 + inB[2 * D + h * dh + e]) / S;
      }
      const F = (e: number, c: number) => r.F[((j * H + h) * dh + e) * d + c];
      for (let c = 0; c < d; c++) {
        let k1 = 0, k2 = 0, k3 = 0;
        for (let e = 0; e < dh; e++) {
          const f = F(e, c);
          k1 += v1[e] * f;
          k2 += v2[e] * f;
          k3 += v3[e] * f;
        }
        K[(k * 3 + 0) * d + c] = k1;
        K[(k * 3 + 1) * d + c] = k2;
        K[(k * 3 + 2) * d + c] = k3 + r.biasOP[j * d + c] / (S * H);
      }
      T[k] = S * (1 + 2 * L) * H;
    }
  }
  return { layer, heads, L, H, N, D, d, M, g, K, T, gammaP: r.gammaP, betaP: r.betaP, eps: r.eps };
}
