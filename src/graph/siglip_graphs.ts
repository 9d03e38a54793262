// SigLIP's towers as ONNX graphs (transformers' SiglipModel, tensors under its names; see
// src/model/siglip_weights.ts for open_clip's timm layout).
//
// Vision (B images, N = (S/p)² patch tokens — no CLS —, L encoder layers of H heads, width D = d,
// H' pooling heads of width d_h):
//   x_0 = conv_p(image) + b + pos;  x_l = encoder layer l;  x̂ = post_layernorm(x_L)     [B, N, D]
//   pooling head (MAP): probs = softmax((probe W_q + b_q)(x̂ W_k + b_k)ᵀ/√d_h) per head   [B, H', N]
//     attn_{h'} = Σ_m probs_{h',m} (x̂_m W_v + b_v)_{h'} W_O^{h'}  (no bias)              [B, H', d]
//     a = Σ_{h'} attn_{h'} + b_O;  z = a + MLP(LN(a))                                    [B, d]
// Outputs (ONNX Runtime runs every node whatever a run fetches; the through-layers split is a
// separate graph built only when asked for):
//   image_features [B, d]  pool_probs [B, H', N]  pool_attn [B, H', d]  pool_attn_spatial [B, N, H', d]
//   pool_mlp [B, d] (fc2 bias inside)  last_hidden_state [B, N, D]  hidden_states [B, L+1, N, D]
//   with { through: 'sum' } (resp. 'spatial'), in their own graphs:
//   through [B, H', K, d]: the pooling heads' attention terms split over the residual stream's
//     components (docs/siglip.md): K = 1 + L·(H+2), k = 0 the embedding, then per layer l its H heads,
//     its out_proj bias and its MLP (k = 1 + l·(H+2) + {0..H-1, H, H+1}); the per-head constant
//     (β W_v + b_v) W_O is not in the graph (throughConstant() in src/decompose/siglip.ts).
//   through_spatial [B, N, H', K, d]: the same per token (large; only for small inputs).
//
// Text: tokens [T, S] (any S up to the position count) → encoder without any mask →
//   final_layer_norm → the LAST position → head (Linear with bias) → text_features [T, d].

import type { ClipConfig } from '../model/config.ts';
import { visionDims } from '../model/config.ts';
import type { WeightSource } from '../model/weights.ts';
import { expectTensor } from '../model/weights.ts';
import { GraphBuilder } from './builder.ts';
import { activation, layerNorm, linear, residualBlock, transposed, type BlockNames } from './transformer.ts';

export const SIGLIP_VISION_OUTPUTS = ['image_features', 'pool_probs', 'pool_attn', 'pool_attn_spatial', 'pool_mlp', 'last_hidden_state', 'hidden_states', 'through', 'through_spatial'] as const;
export type SiglipVisionOutput = (typeof SIGLIP_VISION_OUTPUTS)[number];

/** transformers' encoder layer names under `prefix`. */
export function siglipLayerNames(prefix: string): BlockNames {
  return {
    ln1: `${prefix}.layer_norm1`,
    ln2: `${prefix}.layer_norm2`,
    qkv: (w, D) => {
      const parts = ['q_proj', 'k_proj', 'v_proj'].map((p) => ({
        weight: expectTensor(w, `${prefix}.self_attn.${p}.weight`, [D, D]).data,
        bias: expectTensor(w, `${prefix}.self_attn.${p}.bias`, [D]).data,
      }));
      const weight = new Float32Array(3 * D * D);
      const bias = new Float32Array(3 * D);
      parts.forEach((p, i) => {
        weight.set(p.weight, i * D * D);
        bias.set(p.bias, i * D);
      });
      return { weight, bias };
    },
    outProj: `${prefix}.self_attn.out_proj`,
    fc1: `${prefix}.mlp.fc1`,
    fc2: `${prefix}.mlp.fc2`,
  };
}

function stack(g: GraphBuilder, values: string[], axis: number): string {
  return g.op('Concat', values.map((v) => g.op('Unsqueeze', [v, g.constI64([axis])])), { axis });
}

/**
 * Float32 bytes that one image adds to ONNX Runtime's memory at the peak of a forward pass (an
 * estimate from the graph's shapes, used to size forward passes on the CPU): the stacked
 * hidden_states (each layer's kept, then stacked: 2·(L+1)·N·D), the per-token pooling terms
 * (2·N·H'·D), one layer's attention (2·H·N²) and MLP (2·N·hidden), a few residual-sized tensors
 * (8·N·D), and the through-layers components [N, K, D] (twice per head and token for 'spatial').
 */
export function siglipVisionActivationBytes(cfg: ClipConfig, through?: 'sum' | 'spatial'): number {
  const v = cfg.vision;
  const { tokens: N, hidden } = visionDims(v);
  const { layers: L, width: D, heads: H } = v;
  const K = 1 + L * (H + 2);
  let floats = 2 * (L + 1) * N * D + 2 * N * H * D + 2 * H * N * N + 2 * N * hidden + 8 * N * D;
  if (through === 'sum') floats += 2 * N * K * D;
  if (through === 'spatial') floats += N * K * D + 2 * N * H * K * D;
  return 4 * floats;
}

/**
 * `through`: also the through-layers output ('sum': token-summed, 'spatial': per token). Separate
 * graphs, because ONNX Runtime runs every node of a graph whatever outputs a run fetches.
 */
export function buildSiglipVisionGraph(cfg: ClipConfig, w: WeightSource, opts: { through?: 'sum' | 'spatial' } = {}): GraphBuilder {
  const v = cfg.vision;
  const { grid, tokens: N, headWidth: dh, hidden } = visionDims(v);
  const D = v.width;
  const H = v.heads;
  const L = v.layers;
  const p = v.patchSize;
  const g = new GraphBuilder('siglip_vision');
  const pixels = g.input('pixel_values', 'float', ['B', 3, v.imageSize, v.imageSize]);

  // Patch embedding (Conv2d with bias), flattened row-major, + position embedding.
  const convW = expectTensor(w, 'vision_model.embeddings.patch_embedding.weight', [D, 3, p, p]);
  const convB = expectTensor(w, 'vision_model.embeddings.patch_embedding.bias', [D]);
  const conv = g.op('Conv', [pixels, g.weight('patch.weight', convW.data, convW.shape), g.weight('patch.bias', convB.data, [D])], { kernel_shape: [p, p], strides: [p, p] });
  const patches = g.op('Transpose', [g.op('Reshape', [conv, g.constI64([0, D, grid * grid])])], { perm: [0, 2, 1] });
  const pos = expectTensor(w, 'vision_model.embeddings.position_embedding.weight', [N, D]);
  const x0 = g.op('Add', [patches, g.weight('pos', pos.data, [N, D])]); // [B, N, D]

  let x = x0;
  const hiddenStates = [x0];
  const layerHeads: string[] = [];
  const layerMlp: string[] = [];
  for (let l = 0; l < L; l++) {
    const prefix = `vision_model.encoder.layers.${l}`;
    const r = residualBlock(g, x, w, prefix, { width: D, heads: H, hidden, tokens: N, eps: v.lnEps }, cfg.activation, { names: siglipLayerNames(prefix) });
    x = r.out;
    hiddenStates.push(x);
    layerHeads.push(r.heads);
    layerMlp.push(r.mlpOut);
  }
  const post = layerNorm(g, x, w, 'vision_model.post_layernorm', D, v.lnEps); // x̂ [B, N, D]

  // Pooling head: one learned query (the probe) attends over the N tokens.
  const inW = expectTensor(w, 'vision_model.head.attention.in_proj_weight', [3 * D, D]);
  const inB = expectTensor(w, 'vision_model.head.attention.in_proj_bias', [3 * D]);
  const probe = expectTensor(w, 'vision_model.head.probe', [1, 1, D]);
  // q = probe W_qᵀ + b_q is a constant [H, 1, d_h], folded here in float32 as torch's F.linear would compute it.
  const q = new Float32Array(D);
  for (let o = 0; o < D; o++) {
    let s = 0;
    for (let i = 0; i < D; i++) s += probe.data[i] * inW.data[o * D + i];
    q[o] = Math.fround(s + inB.data[o]);
  }
  const qScaled = g.op('Mul', [g.weight('pool.q', q, [H, 1, dh]), g.constF([1 / Math.sqrt(dh)], [])]);
  const kvW = transposed(inW.data.subarray(D * D), 2 * D, D); // [D, 2D]
  const kv = g.op('Add', [g.op('MatMul', [post, g.weight('pool.kv_t', kvW, [D, 2 * D])]), g.weight('pool.kv_bias', inB.data.slice(D), [2 * D])]);
  const kv5 = g.op('Reshape', [kv, g.constI64([0, 0, 2, H, dh])]); // [B, N, 2, H, dh]
  const k = g.op('Transpose', [g.op('Gather', [kv5, g.constI64([0], [])], { axis: 2 })], { perm: [0, 2, 3, 1] }); // [B, H, dh, N]
  const vals = g.op('Transpose', [g.op('Gather', [kv5, g.constI64([1], [])], { axis: 2 })], { perm: [0, 2, 1, 3] }); // [B, H, N, dh]
  const probs4 = g.op('Softmax', [g.op('MatMul', [qScaled, k])], { axis: -1 }); // [B, H, 1, N]
  const probs = g.op('Squeeze', [probs4, g.constI64([2])]); // [B, H, N]

  // W_O per pooling head: out_proj.weightᵀ rows h·d_h..(h+1)·d_h, as [H, d_h, d].
  const WoT = transposed(expectTensor(w, 'vision_model.head.attention.out_proj.weight', [D, D]).data, D, D);
  const Wo = g.weight('pool.out_proj_t', WoT, [H, dh, D]);
  const ctx = g.op('MatMul', [probs4, vals]); // [B, H, 1, d_h]
  const attn = g.op('Squeeze', [g.op('MatMul', [ctx, Wo]), g.constI64([2])]); // [B, H, d]
  // Per token: probs_{h,m} v_{m,h} W_O^h → [B, H, N, d] → [B, N, H, d].
  const weighted = g.op('Mul', [vals, g.op('Unsqueeze', [probs, g.constI64([3])])]); // [B, H, N, dh]
  const attnSpatial = g.op('Transpose', [g.op('MatMul', [weighted, Wo])], { perm: [0, 2, 1, 3] });
  const bO = expectTensor(w, 'vision_model.head.attention.out_proj.bias', [D]);
  const a = g.op('Add', [g.op('ReduceSum', [attn, g.constI64([1])], { keepdims: 0 }), g.weight('pool.out_proj_bias', bO.data, [D])]); // [B, d]
  const ha = layerNorm(g, a, w, 'vision_model.head.layernorm', D, v.lnEps);
  const mlp = linear(g, activation(g, linear(g, ha, w, 'vision_model.head.mlp.fc1', D, hidden), cfg.activation), w, 'vision_model.head.mlp.fc2', hidden, D);
  const z = g.op('Add', [a, mlp]);

  g.output(z, 'image_features', 'float', ['B', D]);
  g.output(probs, 'pool_probs', 'float', ['B', H, N]);
  g.output(attn, 'pool_attn', 'float', ['B', H, D]);
  g.output(attnSpatial, 'pool_attn_spatial', 'float', ['B', N, H, D]);
  g.output(mlp, 'pool_mlp', 'float', ['B', D]);
  g.output(post, 'last_hidden_state', 'float', ['B', N, D]);
  g.output(stack(g, hiddenStates, 1), 'hidden_states', 'float', ['B', L + 1, N, D]);
  if (!opts.through) return g;

  // Through the encoder: with the probe's weights p and every token's post-LN σ_m fixed, the
  // pooling head reads Σ_m (p_{h',m}/σ_m)·C(r_m)·diag(γ)·W_v^{h'}·W_O^{h'} (C = centring, linear)
  // off the residual stream r_m = embedding + Σ_l (Σ_h head_{l,h} + b_O^l + MLP_l): one product per
  // component with M̃_{h'} = C·diag(γ)·W_v^{h'}·W_O^{h'} [H', D, d] (constant: folded at load).
  const K = 1 + L * (H + 2);
  const xc = g.op('Sub', [x, g.op('ReduceMean', [x], { axes: [-1], keepdims: 1 })]);
  const sigma = g.op('Sqrt', [g.op('Add', [g.op('ReduceMean', [g.op('Mul', [xc, xc])], { axes: [-1], keepdims: 1 }), g.constF([v.lnEps], [])])]); // [B, N, 1]
  const wts = g.op('Div', [probs, g.op('Transpose', [sigma], { perm: [0, 2, 1] })]); // [B, H', N]
  const gamma = expectTensor(w, 'vision_model.post_layernorm.weight', [D]).data;
  const WvT = transposed(inW.data.subarray(2 * D * D), D, D); // [D_in, D_out]
  const gWv = new Float32Array(H * D * dh); // [H', D, d_h]: diag(γ)·W_vᵀ columns of head h'
  for (let h = 0; h < H; h++) for (let i = 0; i < D; i++) for (let e = 0; e < dh; e++) gWv[(h * D + i) * dh + e] = gamma[i] * WvT[i * D + h * dh + e];
  const M = g.op('MatMul', [g.weight('through.gWv', gWv, [H, D, dh]), Wo]); // [H', D, d]
  const Mt = g.op('Sub', [M, g.op('ReduceMean', [M], { axes: [1], keepdims: 1 })]); // centred rows
  // Components at every token, [B, N, K, D]: embedding, then per layer its heads' outputs, b_O, MLP.
  const comps: string[] = [g.op('Unsqueeze', [x0, g.constI64([2])])];
  const tokenShape = g.op('Concat', [g.op('Slice', [g.op('Shape', [x0]), g.constI64([0]), g.constI64([2])]), g.constI64([1, D])], { axis: 0 }); // [B, N, 1, D]
  for (let l = 0; l < L; l++) {
    const prefix = `vision_model.encoder.layers.${l}`;
    const WoL = transposed(expectTensor(w, `${prefix}.self_attn.out_proj.weight`, [D, D]).data, D, D);
    const perHead = g.op('MatMul', [g.op('Reshape', [layerHeads[l], g.constI64([0, 0, H, 1, dh])]), g.weight(`through.${l}.out_proj_t`, WoL, [H, dh, D])]); // [B, N, H, 1, D]
    const bOl = expectTensor(w, `${prefix}.self_attn.out_proj.bias`, [D]).data;
    const biasTok = g.op('Expand', [g.weight(`through.${l}.bias`, bOl, [1, 1, 1, D]), tokenShape]); // b_O^l at every token [B, N, 1, D]
    comps.push(g.op('Reshape', [perHead, g.constI64([0, 0, H, D])]), biasTok, g.op('Unsqueeze', [layerMlp[l], g.constI64([2])]));
  }
  const C = g.op('Concat', comps, { axis: 2 }); // [B, N, K, D]
  // Summed over tokens: U[b, h', k] = Σ_m wts[b, h', m] C[b, m, k] → [B, H', K, D] → ·M̃_{h'} → [B, H', K, d].
  if (opts.through === 'sum') {
    const U = g.op('Reshape', [g.op('MatMul', [wts, g.op('Reshape', [C, g.constI64([0, 0, K * D])])]), g.constI64([0, H, K, D])]);
    g.output(g.op('MatMul', [U, Mt]), 'through', 'float', ['B', H, K, D]);
    return g;
  }
  // Per token: wts[b, h', m] · C[b, m, k] · M̃_{h'} → [B, N, H', K, d].
  const CM = g.op('MatMul', [g.op('Unsqueeze', [C, g.constI64([2])]), Mt]); // [B, N, H', K, d]
  const wTok = g.op('Unsqueeze', [g.op('Transpose', [wts], { perm: [0, 2, 1] }), g.constI64([3, 4])]); // [B, N, H', 1, 1]
  g.output(g.op('Mul', [CM, wTok]), 'through_spatial', 'float', ['B', N, H, K, D]);
  return g;
}

/** Text tower: tokens [T, S] int32 → text_features [T, d] (and text_last_hidden_state [T, S, D]). */
export function buildSiglipTextGraph(cfg: ClipConfig, w: WeightSource): GraphBuilder {
  const t = cfg.text;
  const D = t.width;
  const P = t.positions ?? t.contextLength;
  const g = new GraphBuilder('siglip_text');
  const tokens = g.input('tokens', 'int32', ['T', 'S']);
  const emb = expectTensor(w, 'text_model.embeddings.token_embedding.weight', [t.vocabSize, D]);
  const pos = expectTensor(w, 'text_model.embeddings.position_embedding.weight', [P, D]);
  const S = g.op('Gather', [g.op('Shape', [tokens]), g.constI64([1])], { axis: 0 }); // [1]
  const posS = g.op('Slice', [g.weight('text.pos', pos.data, [P, D]), g.constI64([0]), S, g.constI64([0])]);
  let x = g.op('Add', [g.op('Gather', [g.weight('text.token_embedding', emb.data, emb.shape), tokens], { axis: 0 }), posS]);
  const hidden = Math.round(D * t.mlpRatio);
  const act = t.activation ?? cfg.activation;
  for (let l = 0; l < t.layers; l++) {
    const prefix = `text_model.encoder.layers.${l}`;
    x = residualBlock(g, x, w, prefix, { width: D, heads: t.heads, hidden, tokens: P, eps: t.lnEps }, act, { names: siglipLayerNames(prefix) }).out;
  }
  const last = layerNorm(g, x, w, 'text_model.final_layer_norm', D, t.lnEps);
  // transformers assumes "sticky" EOS: the pooled token is the last position, whatever it holds.
  const pooled = g.op('Gather', [last, g.constI64([-1], [])], { axis: 1 }); // [T, D]
  g.output(linear(g, pooled, w, 'text_model.head', D, cfg.embedDim), 'text_features', 'float', ['T', cfg.embedDim]);
  g.output(last, 'text_last_hidden_state', 'float', ['T', 'S', D]);
  return g;
}
