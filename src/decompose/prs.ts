// The projected residual stream (PRS): every direct contribution to the image embedding,
// pushed through LN_post (μ, σ fixed per image) and P, with the reference's conventions:
// 2L+1 slots (ln_pre, L attention layers, L MLPs) share μ and β equally; an attention slot is
// split over its N·H (token, head) terms (H terms when summed over tokens), and b_O likewise.
//   ĉ = (c·diag(γ)·P − s·μ·γP) / σ + s·βP,   Σ ĉ = z;   normalised: ĉ / ‖z‖.
// The derivation and the reference's conventions: docs/decomposition.md.

import { batchedMatmul } from '../graph/matmul.ts';
import { LN_PRE_SLOT, mlpSlot } from '../notation.ts';
import { assertFinite, f32, type F32 } from '../tensor.ts';
import { lnStats, type Readout } from './readout.ts';
import { ShapeError } from '../errors.ts';

/** The vision graph's taps for one batch (see graph/clip_graphs.ts). */
export interface VisionTaps {
  image_features: F32; // [B, d]
  ln_pre_cls: F32; // [B, D]
  resid_cls: F32; // [B, D]
  heads_cls: F32; // [B, L, D]
  mlp_cls: F32; // [B, L, D]
  cls_probs?: F32; // [B, L, H, N]
  values?: F32; // [B, L, H, N, d_h]
  cls_self?: F32; // [B, L, H, d_h]
}

export interface Decomposition {
  /** [B, L, H, d], or [B, L, N, H, d] when spatial */
  attn: F32;
  /** [B, L+1, d]: slot LN_PRE_SLOT (0) the ln_pre term, slot mlpSlot(l) = l+1 the MLP of layer l (notation.ts) */
  mlp: F32;
  /**
   * [B, L, H, d] the CLS→CLS part of each head's term: source token i = 0 with its share of b_O,
   * μ and β as one (token, head) term of the spatial decomposition (= attn[:, l, 0, h] there).
   * Present when the cls_self tap was run.
   */
  clsAttn?: F32;
  /** [B, d] z, unnormalised */
  imageFeatures: F32;
  /** [B] ‖z‖ */
  norm: F32;
  /** [B] LN_post mean and std of the final CLS residual (CLIP) */
  lnMean?: F32;
  lnStd?: F32;
  spatial: boolean;
  normalised: boolean;
}

export interface DecomposeOptions {
  spatial?: boolean;
  /** Divide every term by ‖z‖ as the reference does (default true). */
  normalise?: boolean;
}

/** ‖z_b‖ of every row of z [B, d]. */
export function norms(z: F32): Float64Array {
  const [B, d] = z.shape;
  const out = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += z.data[b * d + k] ** 2;
    out[b] = Math.sqrt(s);
  }
  return out;
}

export async function decomposeTaps(taps: VisionTaps, r: Readout, opts: DecomposeOptions = {}): Promise<Decomposition> {
  const { L, H, N, D, d, dh } = r;
  const B = taps.image_features.shape[0];
  const K = 2 * L + 1;
  const normalise = opts.normalise ?? true;
  const { mean, std } = lnStats(taps.resid_cls.data, D, r.eps);
  const zNorm = norms(taps.image_features);
  const scale = (b: number) => (normalise ? 1 / zNorm[b] : 1);

  // MLP slots (and ln_pre at index 0): share 1/K. One matmul [B·(L+1), D]·G[D, d].
  const mlp = f32([B, L + 1, d]);
  const slots = new Float32Array(B * (L + 1) * D);
  for (let b = 0; b < B; b++) {
    slots.set(taps.ln_pre_cls.data.subarray(b * D, (b + 1) * D), (b * (L + 1) + LN_PRE_SLOT) * D);
    slots.set(taps.mlp_cls.data.subarray(b * L * D, (b + 1) * L * D), (b * (L + 1) + mlpSlot(0)) * D);
  }
  const slotsG = await batchedMatmul(slots, r.G, 1, B * (L + 1), D, d);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j <= L; j++) {
      const o = (b * (L + 1) + j) * d;
      for (let k = 0; k < d; k++) {
        mlp.data[o + k] = (((slotsG[o + k] - (mean[b] / K) * r.gammaP[k]) / std[b] + r.betaP[k] / K) * scale(b));
      }
    }
  }

  // Per-head readout of [B, L, H, d_h] vectors (at the CLS query), batched over heads:
  // [L·H, B, dh]·F[L·H, dh, d] → ĉ [B, L, H, d] with b_O split over `tokens`·H and μ, β over K·tokens·H.
  const perHead = async (src: F32, tokens: number): Promise<F32> => {
    const out = f32([B, L, H, d]);
    const s = 1 / (K * tokens * H);
    const x = new Float32Array(L * H * B * dh);
    for (let b = 0; b < B; b++)
      for (let l = 0; l < L; l++)
        for (let h = 0; h < H; h++)
          x.set(src.data.subarray(((b * L + l) * H + h) * dh, ((b * L + l) * H + h + 1) * dh), ((l * H + h) * B + b) * dh);
    const c = await batchedMatmul(x, r.F, L * H, B, dh, d);
    for (let b = 0; b < B; b++) {
      for (let l = 0; l < L; l++) {
        for (let h = 0; h < H; h++) {
          const from = ((l * H + h) * B + b) * d;
          const o = ((b * L + l) * H + h) * d;
          for (let k = 0; k < d; k++) {
            const v = c[from + k] + r.biasOP[l * d + k] / (tokens * H) - s * mean[b] * r.gammaP[k];
            out.data[o + k] = (v / std[b] + s * r.betaP[k]) * scale(b);
          }
        }
      }
    }
    return out;
  };
  // CLS→CLS: a_{0,0}·v_0 is one (token, head) term of N·H.
  const clsAttn = taps.cls_self ? await perHead(taps.cls_self, N) : undefined;

  let attn: F32;
  if (!opts.spatial) {
    // Per head, summed over tokens: Σ_i a_i v_i is the CLS row of the head's output ([B, L, D] = [B, L, H, d_h]).
    attn = await perHead(taps.heads_cls, 1);
  } else {
    if (!taps.values || !taps.cls_probs) throw new ShapeError('spatial decomposition needs the values and cls_probs taps');
    attn = f32([B, L, N, H, d]);
    const s = 1 / (K * N * H);
    const av = new Float32Array(L * H * N * dh);
    for (let b = 0; b < B; b++) {
      weightedValues(taps, b, r, av);
      const c = await batchedMatmul(av, r.F, L * H, N, dh, d); // [L, H, N, d]
      // ĉ = c·mul + add[l], the constant terms folded per layer.
      const mul = scale(b) / std[b];
      const add = new Float32Array(d);
      for (let l = 0; l < L; l++) {
        for (let k = 0; k < d; k++) {
          add[k] = ((r.biasOP[l * d + k] / (N * H) - s * mean[b] * r.gammaP[k]) / std[b] + s * r.betaP[k]) * scale(b);
        }
        for (let h = 0; h < H; h++) {
          for (let i = 0; i < N; i++) {
            const src = ((l * H + h) * N + i) * d;
            const o = (((b * L + l) * N + i) * H + h) * d;
            for (let k = 0; k < d; k++) attn.data[o + k] = c[src + k] * mul + add[k];
          }
        }
      }
    }
  }
  assertFinite(attn, 'the decomposition (attention terms)', { row: 'image' });
  assertFinite(mlp, 'the decomposition (MLP terms)', { row: 'image' });
  return {
    attn,
    mlp,
    ...(clsAttn ? { clsAttn } : {}),
    imageFeatures: taps.image_features,
    norm: f32([B], Float32Array.from(zNorm)),
    lnMean: f32([B], Float32Array.from(mean)),
    lnStd: f32([B], Float32Array.from(std)),
    spatial: !!opts.spatial,
    normalised: normalise,
  };
}

/** a_{l,h,i} · v_{l,h,i} for one image, laid out [L, H, N, d_h]. */
export function weightedValues(taps: VisionTaps, b: number, r: Readout, out: Float32Array): void {
  const { L, H, N, dh } = r;
  const values = taps.values!.data;
  const probs = taps.cls_probs!.data;
  const per = L * H * N * dh;
  for (let lhn = 0; lhn < L * H * N; lhn++) {
    const a = probs[b * L * H * N + lhn];
    const src = b * per + lhn * dh;
    const dst = lhn * dh;
    for (let e = 0; e < dh; e++) out[dst + e] = a * values[src + e];
  }
}

/**
 * Per-token, per-head maps along text directions without materialising [L, N, H, d]:
 * m[b, l, i, h, t] = ĉ_{l,i,h} · t, with the text folded into the readout (U = F·Tᵀ, [L, H, d_h, T]).
 */
export interface TextMaps {
  /** [B, L, N, H, T] */
  maps: F32;
  imageFeatures: F32;
  norm: F32;
}

export async function foldTexts(r: Readout, texts: F32): Promise<{ U: Float32Array; T: number; gammaT: Float64Array; betaT: Float64Array; biasT: Float64Array }> {
  const [T, d] = texts.shape;
  if (d !== r.d) throw new ShapeError(`text embeddings have dimension ${d}, the model's embedding has ${r.d}`);
  const tT = new Float32Array(d * T);
  for (let t = 0; t < T; t++) for (let k = 0; k < d; k++) tT[k * T + t] = texts.data[t * d + k];
  const U = await batchedMatmul(r.F, tT, 1, r.L * r.H * r.dh, d, T); // [L, H, d_h, T]
  const dot = (v: Float64Array, off: number, t: number) => {
    let s = 0;
    for (let k = 0; k < d; k++) s += v[off + k] * texts.data[t * d + k];
    return s;
  };
  const gammaT = new Float64Array(T);
  const betaT = new Float64Array(T);
  const biasT = new Float64Array(r.L * T);
  for (let t = 0; t < T; t++) {
    gammaT[t] = dot(r.gammaP, 0, t);
    betaT[t] = dot(r.betaP, 0, t);
    for (let l = 0; l < r.L; l++) biasT[l * T + t] = dot(r.biasOP, l * d, t);
  }
  return { U, T, gammaT, betaT, biasT };
}

export async function textMapsFromTaps(taps: VisionTaps, r: Readout, folded: Awaited<ReturnType<typeof foldTexts>>, normalise = true): Promise<TextMaps> {
  const { L, H, N, D, dh } = r;
  const { U, T, gammaT, betaT, biasT } = folded;
  const B = taps.image_features.shape[0];
  const K = 2 * L + 1;
  const s = 1 / (K * N * H);
  const { mean, std } = lnStats(taps.resid_cls.data, D, r.eps);
  const zNorm = norms(taps.image_features);
  const maps = f32([B, L, N, H, T]);
  if (!taps.values || !taps.cls_probs) throw new ShapeError('text maps need the values and cls_probs taps');
  const per = L * H * N * dh;
  for (let b = 0; b < B; b++) {
    // (v·U) per token, then × a_{l,h,i}: the image's values are read in place, never copied weighted.
    const vu = await batchedMatmul(taps.values.data.subarray(b * per, (b + 1) * per), U, L * H, N, dh, T); // [L, H, N, T]
    const probs = taps.cls_probs.data.subarray(b * L * H * N, (b + 1) * L * H * N); // [L, H, N]
    const sc = normalise ? 1 / zNorm[b] : 1;
    const mul = sc / std[b];
    const add = new Float32Array(T);
    for (let l = 0; l < L; l++) {
      for (let t = 0; t < T; t++) add[t] = ((biasT[l * T + t] / (N * H) - s * mean[b] * gammaT[t]) / std[b] + s * betaT[t]) * sc;
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < N; i++) {
          const lhi = (l * H + h) * N + i;
          const src = lhi * T;
          const o = (((b * L + l) * N + i) * H + h) * T;
          const a = probs[lhi] * mul;
          for (let t = 0; t < T; t++) maps.data[o + t] = vu[src + t] * a + add[t];
        }
      }
    }
  }
  assertFinite(maps, 'the per-token text maps', { row: 'image' });
  return { maps, imageFeatures: taps.image_features, norm: f32([B], Float32Array.from(zNorm)) };
}
