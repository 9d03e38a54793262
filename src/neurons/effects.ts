// Second-order effects of every neuron of one MLP block, per image, in the reference's convention
// (compute_second_order_neuron_prs.py): E[b, n] = Σ_{j>l} Σ_h ĉ^{j,h}_n(b), [B, M, d] float32.
//
// They are computed and kept factored (readout.ts): per image and later head, one scalar per neuron
// (coef = s·u_n) and a neuron-independent offset κ^{j,h}. The forward pass gives the post-activations
// a [N, M], the CLS attention rows and ln_1 statistics; u for all neurons of all later heads is one
// [J·H, N]·[N, M] product per image. Rebuilding E[b] from the factors is one [J·H]·[J·H, d] product
// per neuron; the reference's [tokens × neurons × width] tensors are never formed.

import type { VisionOutput } from '../graph/clip_graphs.ts';
import { batchedMatmul } from '../graph/matmul.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { lnStats } from '../decompose/readout.ts';
import { f32, type F32 } from '../tensor.ts';
import { COEFFICIENT, foldNeuronReadout, type NeuronReadout } from './readout.ts';
import { ShapeError } from '../errors.ts';

/** The factored effects of a batch of images. */
export interface NeuronFactors {
  /** [B, J·H, M]: s·u_n per later head (s = 100/(‖z‖σ_post)). */
  coef: F32;
  /** [B, J·H, d]: κ^{j,h}, the part of each head's term that every neuron shares. */
  offset: F32;
  /** [B, d]: z (unnormalised) and [B]: ‖z‖. */
  imageFeatures: F32;
  norm: F32;
}

/** The vision graph variant with the neuron taps of these MLP blocks (built only when asked for). */
export const neuronVariant = (layers: number[]) => `neurons:${[...new Set(layers)].sort((a, b) => a - b).join(',')}`;

/** Everything the closed form needs from one forward pass (of the neuronVariant([layer]) graph). */
export function neuronTapNames(layer: number): VisionOutput[] {
  return ['image_features', 'resid_cls', 'cls_probs', 'ln1_mean', 'ln1_std', `mlp_post_${layer}`];
}

export type NeuronTaps = Record<VisionOutput, F32>;

/** The factors from a forward pass's taps (see neuronTapNames). */
export async function factorsFromTaps(taps: NeuronTaps, r: NeuronReadout): Promise<NeuronFactors> {
  const { layer, L, H, N, D, d, M, heads } = r;
  const JH = heads.length;
  const z = taps.image_features;
  const B = z.shape[0];
  const probs = taps.cls_probs.data; // [B, L, H, N]
  const mu = taps.ln1_mean.data; // [B, L, N]
  const sigma = taps.ln1_std.data; // [B, L, N]
  const act = taps[`mlp_post_${layer}`]; // [B, N, M]
  if (act.shape[1] !== N || act.shape[2] !== M) throw new ShapeError(`mlp_post_${layer} has shape [${act.shape}], expected [B, ${N}, ${M}]`);
  const { mean: muPost, std: sdPost } = lnStats(taps.resid_cls.data, D, r.eps);
  // w_{j,h}(t) = A^{j,h}(0, t) / σ_j(t): u = w · a, c₁ = Σ_t w, c₂ = Σ_t w μ_j.
  const w = new Float32Array(B * JH * N);
  const c1 = new Float64Array(B * JH);
  const c2 = new Float64Array(B * JH);
  for (let b = 0; b < B; b++) {
    heads.forEach(([j, h], k) => {
      const po = ((b * L + j) * H + h) * N;
      const so = (b * L + j) * N;
      let s1 = 0, s2 = 0;
      for (let t = 0; t < N; t++) {
        const v = probs[po + t] / sigma[so + t];
        w[(b * JH + k) * N + t] = v;
        s1 += v;
        s2 += v * mu[so + t];
      }
      c1[b * JH + k] = s1;
      c2[b * JH + k] = s2;
    });
  }
  const u = await batchedMatmul(w, act.data, B, JH, N, M); // [B, J·H, M]
  const norm = f32([B]);
  const offset = f32([B, JH, d]);
  for (let b = 0; b < B; b++) {
    let zz = 0;
    for (let c = 0; c < d; c++) zz += z.data[b * d + c] ** 2;
    const zn = Math.sqrt(zz);
    norm.data[b] = zn;
    const s = COEFFICIENT / (zn * sdPost[b]);
    for (let i = b * JH * M; i < (b + 1) * JH * M; i++) u[i] *= s;
    for (let k = 0; k < JH; k++) {
      const T = r.T[k];
      const x1 = c1[b * JH + k], x2 = c2[b * JH + k];
      const Ko = k * 3 * d;
      for (let c = 0; c < d; c++) {
        const inner = x1 * r.K[Ko + c] + x2 * r.K[Ko + d + c] + r.K[Ko + 2 * d + c] - (muPost[b] / T) * r.gammaP[c];
        offset.data[(b * JH + k) * d + c] = s * inner + (COEFFICIENT / zn) * (r.betaP[c] / T);
      }
    }
  }
  return { coef: f32([B, JH, M], u), offset, imageFeatures: z, norm };
}

/** The part of a NeuronReadout that rebuilding needs (what a neuron store keeps). */
export type Rebuilder = Pick<NeuronReadout, 'heads' | 'M' | 'd' | 'g'>;

/**
 * E[b, n] for the neurons n0 ≤ n < n1 of image b: Σ_k coef[b,k,n]·g[n,k] + Σ_k offset[b,k] → [n1−n0, d].
 * One image at a time, so a row's value never depends on how images were batched.
 */
export async function rebuildImage(r: Rebuilder, coef: Float32Array, offset: Float32Array, n0 = 0, n1 = r.M): Promise<Float32Array> {
  const JH = r.heads.length;
  const { d, M } = r;
  const nn = n1 - n0;
  const a = new Float32Array(nn * JH); // [nn, 1, J·H]
  for (let k = 0; k < JH; k++) for (let n = n0; n < n1; n++) a[(n - n0) * JH + k] = coef[k * M + n];
  const out = await batchedMatmul(a, r.g.subarray(n0 * JH * d, n1 * JH * d), nn, 1, JH, d);
  const off = new Float64Array(d);
  for (let k = 0; k < JH; k++) for (let c = 0; c < d; c++) off[c] += offset[k * d + c];
  for (let n = 0; n < nn; n++) for (let c = 0; c < d; c++) out[n * d + c] += off[c];
  return out;
}

/** E [B, n1−n0, d] of a batch of factors. */
export async function rebuildEffects(r: Rebuilder, f: Pick<NeuronFactors, 'coef' | 'offset'>, n0 = 0, n1 = r.M): Promise<F32> {
  const B = f.coef.shape[0];
  const JH = r.heads.length;
  const { d, M } = r;
  const out = f32([B, n1 - n0, d]);
  for (let b = 0; b < B; b++) {
    const e = await rebuildImage(r, f.coef.data.subarray(b * JH * M, (b + 1) * JH * M), f.offset.data.subarray(b * JH * d, (b + 1) * JH * d), n0, n1);
    out.data.set(e, b * (n1 - n0) * d);
  }
  return out;
}

/** ĉ^{j,h}_n(b) for one later head k = (j, h) of image b: the reference's un-summed term [M, d]. */
export function headTerm(r: Rebuilder, f: Pick<NeuronFactors, 'coef' | 'offset'>, b: number, k: number): Float64Array {
  const JH = r.heads.length;
  const { d, M } = r;
  const out = new Float64Array(M * d);
  for (let n = 0; n < M; n++) {
    const c = f.coef.data[(b * JH + k) * M + n];
    for (let e = 0; e < d; e++) out[n * d + e] = c * r.g[(n * JH + k) * d + e] + f.offset.data[(b * JH + k) * d + e];
  }
  return out;
}

/** Second-order effects of one MLP block's neurons, for batches of images (like Decomposer for heads). */
export class NeuronEffects {
  private readout?: Promise<NeuronReadout>;

  constructor(readonly model: ClipModel, readonly layer: number) {}

  getReadout(): Promise<NeuronReadout> {
    this.readout ??= foldNeuronReadout(this.model, this.layer);
    return this.readout;
  }

  /** Factors of pixel_values [B, 3, S, S]. */
  async factors(pixels: F32, batchSize = 8): Promise<NeuronFactors> {
    const r = await this.getReadout();
    const taps = (await this.model.runVision(pixels, neuronTapNames(this.layer), batchSize, neuronVariant([this.layer]))) as NeuronTaps;
    return factorsFromTaps(taps, r);
  }

  /** The full effects [B, M, d] as the reference saves them. */
  async effects(pixels: F32, batchSize = 8): Promise<F32> {
    return rebuildEffects(await this.getReadout(), await this.factors(pixels, batchSize));
  }
}
