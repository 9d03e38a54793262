// SigLIP's decomposition as the reference (compute_siglip.py's PRSHook on the hooked
// transformers model) records it, and the finer split through the encoder that the reference
// stops short of (docs/siglip.md has the maths).
//
//   z = Σ_{h'} attn_{h'} + b_O + MLP(LN(a))        a = Σ_{h'} attn_{h'} + b_O
//   attn_{h'} = Σ_m p_{h',m} (x̂_m W_v + b_v)_{h'} W_O^{h'}     (per pooling head h' and token m, no bias)
//
// In the common layout (decomposer.ts) the pooling head is the one attention block (L = 1) and
// `mlp` holds [b_O, MLP] so that Σ attn + Σ mlp = z; terms stay unnormalised unless asked.

import { batchedMatmul } from '../graph/matmul.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { visionDims } from '../model/config.ts';
import { f32, type F32, type Tensor } from '../tensor.ts';
import { textMapsByPass, type DecompositionLayout, type ImageDecomposer } from './decomposer.ts';
import { norms as rowNorms, type DecomposeOptions, type Decomposition, type TextMaps } from './prs.ts';

const norms = (z: F32) => Float32Array.from(rowNorms(z));

interface SiglipTaps {
  image_features: F32; // [B, d]
  pool_attn?: F32; // [B, H', d]
  pool_attn_spatial?: F32; // [B, N, H', d]
  pool_mlp: F32; // [B, d]
}

/** The layer-resolved split of the pooling head's attention terms (decompose --through-layers). */
export interface ThroughLayers {
  /** [B, L, H, H', d]: encoder layer l, head h, summed over tokens, as read by pooling head h' (with --spatial [B, L, H, N, H', d]). */
  heads: F32;
  /** [B, L, H', d]: encoder layer l's out_proj bias, at every token. */
  bias: F32;
  /** [B, L, H', d]: encoder layer l's MLP. */
  mlp: F32;
  /** [B, H', d]: the patch + position embedding. */
  embed: F32;
  /** [H', d]: (β W_v + b_v) W_O^{h'}, the same for every image (post-LN's β and the value bias). */
  constant: F32;
  /** [B, H', d]: the pooling head's attention terms they sum to (the reference's attention records). */
  attn: F32;
  spatial: boolean;
}

export class SiglipDecomposer implements ImageDecomposer {
  constructor(readonly model: ClipModel) {}

  layout(): DecompositionLayout {
    const v = this.model.config.vision;
    const { grid, tokens } = visionDims(v);
    return { L: 1, H: v.heads, N: tokens, d: this.model.config.embedDim, grid, clsToken: false, blockNames: ['pooling head'], termNames: ['out_proj bias', 'pooling MLP'], chartLabels: ['bias', 'pool'] };
  }

  private bias(): Float32Array {
    return this.model.weight('vision_model.head.attention.out_proj.bias').data;
  }

  async taps(pixels: F32, spatial: boolean, batchSize = 8): Promise<SiglipTaps> {
    // Spatial taps carry the per-head terms too, so one upload serves both views (the explorer).
    return this.model.runVision(pixels, ['image_features', 'pool_attn', 'pool_mlp', ...(spatial ? ['pool_attn_spatial' as const] : [])], batchSize);
  }

  async fromTaps(tapsArg: unknown, opts: DecomposeOptions = {}): Promise<Decomposition> {
    const taps = tapsArg as SiglipTaps;
    const z = taps.image_features;
    const [B, d] = z.shape;
    const normalise = opts.normalise ?? this.model.family.normalisedTerms;
    const norm = norms(z);
    const sc = (b: number) => (normalise ? 1 / norm[b] : 1);
    const spatial = !!opts.spatial;
    const src = spatial ? taps.pool_attn_spatial : taps.pool_attn;
    if (!src) throw new Error(`SigLIP decomposition needs the ${spatial ? 'pool_attn_spatial' : 'pool_attn'} tap`);
    const per = src.data.length / B;
    const attn = f32([B, 1, ...src.shape.slice(1)]);
    const mlp = f32([B, 2, d]);
    const bO = this.bias();
    for (let b = 0; b < B; b++) {
      const s = sc(b);
      for (let i = 0; i < per; i++) attn.data[b * per + i] = src.data[b * per + i] * s;
      for (let k = 0; k < d; k++) {
        mlp.data[(b * 2) * d + k] = bO[k] * s;
        mlp.data[(b * 2 + 1) * d + k] = taps.pool_mlp.data[b * d + k] * s;
      }
    }
    return { attn, mlp, imageFeatures: z, norm: f32([B], norm), spatial, normalised: normalise };
  }

  async decompose(pixels: F32, opts: DecomposeOptions & { batchSize?: number } = {}): Promise<Decomposition> {
    return this.fromTaps(await this.taps(pixels, !!opts.spatial, opts.batchSize), opts);
  }

  /** maps[b, 0, m, h', t] = attn_{h',m} · t, as demo_siglip.ipynb scores the per-token records (÷‖z‖ with normalise). */
  async textMapsFromTaps(tapsArg: unknown, texts: F32, normalise = this.model.family.normalisedTerms): Promise<TextMaps> {
    const taps = tapsArg as SiglipTaps;
    const sp = taps.pool_attn_spatial;
    if (!sp) throw new Error('SigLIP text maps need the pool_attn_spatial tap');
    const [B, N, H, d] = sp.shape;
    const [T, dt] = texts.shape;
    if (dt !== d) throw new Error(`text embeddings have dimension ${dt}, the model's embedding has ${d}`);
    const norm = norms(taps.image_features);
    // One product [B·N·H', d] · textsᵀ [d, T] on ONNX Runtime, then ÷‖z_b‖ per image.
    const tT = new Float32Array(d * T);
    for (let t = 0; t < T; t++) for (let k = 0; k < d; k++) tT[k * T + t] = texts.data[t * d + k];
    const maps = f32([B, 1, N, H, T], await batchedMatmul(sp.data, tT, 1, B * N * H, d, T));
    if (normalise) {
      const per = N * H * T;
      for (let b = 0; b < B; b++) {
        const s = 1 / norm[b];
        for (let i = b * per; i < (b + 1) * per; i++) maps.data[i] *= s;
      }
    }
    return { maps, imageFeatures: taps.image_features, norm: f32([B], norm) };
  }

  async textMaps(pixels: F32, texts: F32, opts: { normalise?: boolean; batchSize?: number } = {}): Promise<TextMaps> {
    return textMapsByPass(this.model, pixels, opts.batchSize, async (px, step) => this.textMapsFromTaps(await this.taps(px, true, step), texts, opts.normalise));
  }

  /** compute_siglip.py's records (unnormalised): attn [B, H, d] (spatial [B, N, H, d]), mlp [B, d], bias [d], image_features [B, d]. */
  referenceTensors(res: Decomposition): Record<string, Tensor> {
    if (res.normalised) throw new Error('the reference records SigLIP terms unnormalised');
    const [B, , ...rest] = res.attn.shape;
    const d = res.imageFeatures.shape[1];
    const mlp = f32([B, d]);
    for (let b = 0; b < B; b++) mlp.data.set(res.mlp.data.subarray((b * 2 + 1) * d, (b * 2 + 2) * d), b * d);
    return { attn: f32([B, ...rest], res.attn.data), mlp, bias: f32([d], this.bias().slice()), image_features: res.imageFeatures };
  }

  referenceLayout(spatial: boolean): string {
    return spatial ? 'B,N,H,d' : 'B,H,d';
  }

  /** (β W_v + b_v) W_O^{h'} per pooling head [H', d], in float64: what every image's attention term holds regardless of its tokens. */
  throughConstant(): F32 {
    const v = this.model.config.vision;
    const D = v.width;
    const H = v.heads;
    const dh = D / H;
    const beta = this.model.weight('vision_model.post_layernorm.bias').data;
    const inW = this.model.weight('vision_model.head.attention.in_proj_weight').data;
    const inB = this.model.weight('vision_model.head.attention.in_proj_bias').data;
    const Wo = this.model.weight('vision_model.head.attention.out_proj.weight').data; // [d_out, D_in]
    const val = new Float64Array(D); // β W_vᵀ + b_v
    for (let o = 0; o < D; o++) {
      let s = inB[2 * D + o];
      for (let i = 0; i < D; i++) s += beta[i] * inW[(2 * D + o) * D + i];
      val[o] = s;
    }
    const out = f32([H, D]);
    for (let h = 0; h < H; h++) {
      for (let k = 0; k < D; k++) {
        let s = 0;
        for (let e = 0; e < dh; e++) s += val[h * dh + e] * Wo[k * D + h * dh + e];
        out.data[h * D + k] = s;
      }
    }
    return out;
  }

  /**
   * The pooling head's attention terms split through the encoder: per encoder layer and head (and
   * token with `spatial`), per layer's out_proj bias and MLP, the embedding and the constant.
   * Σ heads + Σ bias + Σ mlp + embed + constant = attn (tested).
   */
  async throughLayers(pixels: F32, opts: { spatial?: boolean; batchSize?: number } = {}): Promise<ThroughLayers> {
    const v = this.model.config.vision;
    const { L, heads: H } = { L: v.layers, heads: v.heads };
    const N = visionDims(v).tokens;
    const d = this.model.config.embedDim;
    const K = 1 + L * (H + 2);
    const out = opts.spatial ? 'through_spatial' : 'through';
    const r = await this.model.runVision(pixels, [out, 'pool_attn'], opts.batchSize ?? (opts.spatial ? 1 : 4), out);
    const t = r[out]; // [B, H', K, d] or [B, N, H', K, d]
    const B = t.shape[0];
    const M = opts.spatial ? N : 1; // tokens kept
    const heads = f32(opts.spatial ? [B, L, H, N, H, d] : [B, L, H, H, d]);
    const bias = f32([B, L, H, d]);
    const mlp = f32([B, L, H, d]);
    const embed = f32([B, H, d]);
    for (let b = 0; b < B; b++) {
      for (let m = 0; m < M; m++) {
        for (let hp = 0; hp < H; hp++) {
          const src = (k: number) => (((b * M + m) * H + hp) * K + k) * d;
          const add = (dst: F32, o: number, k: number) => {
            const s = src(k);
            for (let j = 0; j < d; j++) dst.data[o + j] += t.data[s + j];
          };
          add(embed, (b * H + hp) * d, 0);
          for (let l = 0; l < L; l++) {
            const base = 1 + l * (H + 2);
            for (let h = 0; h < H; h++) {
              const o = opts.spatial ? ((((b * L + l) * H + h) * N + m) * H + hp) * d : (((b * L + l) * H + h) * H + hp) * d;
              add(heads, o, base + h);
            }
            add(bias, ((b * L + l) * H + hp) * d, base + H);
            add(mlp, ((b * L + l) * H + hp) * d, base + H + 1);
          }
        }
      }
    }
    return { heads, bias, mlp, embed, constant: this.throughConstant(), attn: r.pool_attn, spatial: !!opts.spatial };
  }
}
