// The CLIP vision and text towers as ONNX graphs (open_clip layout).
//
// Vision outputs (B images, L layers, H heads, N tokens, D width, d embed dim, d_h head width):
//   image_features [B, d]        z = LN_post(x_L[0]) · P
//   ln_pre_cls     [B, D]        x_0[0]
//   resid_cls      [B, D]        x_L[0] (LN_post's μ, σ are taken from it)
//   heads_cls      [B, L, D]     per layer, Σ_i a_i v_i at the CLS query, heads concatenated (before W_O)
//   mlp_cls        [B, L, D]     per layer, the MLP output at CLS
//   cls_probs      [B, L, H, N]  per layer, the CLS query's attention weights
//   values         [B, L, H, N, d_h]  per layer, every token's per-head value (for per-token terms)
//   cls_self       [B, L, H, d_h]     per layer, a_{0,0}·v_0: the CLS token's attention to itself (CLS→CLS)
// and, in the 'neurons:<l,…>' variant only (second-order effects of neurons; kept out of the plain
// graph so that plain encoding never pays for them):
//   ln1_mean, ln1_std [B, L, N]  per layer, ln_1's statistics of every token (E[x], √(E[x²]−E[x]²+ε))
//   mlp_post_<l>   [B, N, hidden]   post-activation of every neuron of MLP l at every token
// and, in the 'attention' variant only (the segmentation table's attention baselines):
//   attn_mean      [B, L, N, N]  per layer, every query's attention weights averaged over heads
//                                (the full maps raw attention and attention rollout need)
// All come from one forward pass. ONNX Runtime runs every node whatever a run fetches, so the plain
// graph holds only taps that are slices/copies of the forward pass (measured at no cost; README
// "Compute"); costly outputs live in variants built on demand.

import type { ClipConfig } from '../model/config.ts';
import { visionDims } from '../model/config.ts';
import type { WeightSource } from '../model/weights.ts';
import { tensorLoader } from '../model/weights.ts';
import { GraphBuilder, type GraphOptions } from './builder.ts';
import { clsRow, layerNorm, residualBlock, type BlockTaps } from './transformer.ts';

export const VISION_TAPS = ['ln_pre_cls', 'resid_cls', 'heads_cls', 'mlp_cls', 'cls_probs', 'values', 'cls_self'] as const;
export type VisionOutput = 'image_features' | (typeof VISION_TAPS)[number] | 'ln1_mean' | 'ln1_std' | `mlp_post_${number}` | 'attn_mean';

/** The vision graph variant with the head-averaged attention maps (attn_mean). */
export const ATTENTION_VARIANT = 'attention';

function stackLayers(g: GraphBuilder, values: string[], axis = 1): string {
  return g.op('Concat', values.map((v) => g.op('Unsqueeze', [v, g.constI64([axis])])), { axis });
}

export interface ClipVisionVariant {
  /** Also output ln_1's statistics of every block and the post-activations of these MLPs. */
  neuronLayers?: number[];
  /** Also output every layer's head-averaged attention maps (attn_mean). */
  attentionMaps?: boolean;
  /** Inputs that overwrite MLP l's post-activations, a' = a ⊙ keep + value (keep [hidden], value [N, hidden]): the reference's SwitchLogger for indirect effects. */
  setNeurons?: number;
}

/** A variant name ('neurons:3,4') → its options; undefined → the plain graph. */
export function clipVisionVariant(variant?: string): ClipVisionVariant {
  if (!variant) return {};
  if (variant === ATTENTION_VARIANT) return { attentionMaps: true };
  const m = /^neurons:(\d+(?:,\d+)*)$/.exec(variant);
  if (!m) throw new Error(`unknown CLIP vision graph variant '${variant}'`);
  return { neuronLayers: m[1].split(',').map(Number) };
}

/**
 * Float32 bytes that one image adds to ONNX Runtime's memory at the peak of a forward pass of this
 * graph (an estimate from its shapes, used to size forward passes on the CPU): every layer's values,
 * kept for the stacked `values` output and then stacked (2·L·N·D); one layer's attention scores and
 * weights (2·H·N²), its MLP activations (2·N·hidden) and a few residual-sized tensors (8·N·D); and
 * the variant's own outputs (attn_mean stacked like values; the neurons' post-activations and ln_1
 * statistics).
 */
export function visionActivationBytes(cfg: ClipConfig, variant: ClipVisionVariant = {}): number {
  const v = cfg.vision;
  const { tokens: N, hidden } = visionDims(v);
  const { layers: L, width: D, heads: H } = v;
  let floats = 2 * L * N * D + 2 * H * N * N + 2 * N * hidden + 8 * N * D;
  if (variant.attentionMaps) floats += 2 * L * N * N;
  if (variant.neuronLayers) floats += variant.neuronLayers.length * N * hidden + 4 * L * N;
  return 4 * floats;
}

export function buildVisionGraph(cfg: ClipConfig, w: WeightSource, opts: ClipVisionVariant & GraphOptions = {}): GraphBuilder {
  const v = cfg.vision;
  const { grid, tokens: N, headWidth: dh, hidden } = visionDims(v);
  const D = v.width;
  const p = v.patchSize;
  const g = new GraphBuilder('clip_vision', opts);
  const pixels = g.input('pixel_values', 'float', ['B', 3, v.imageSize, v.imageSize]);

  // Patch embedding: conv_p without bias → [B, D, g, g] → [B, g², D].
  const convW = tensorLoader(w, 'visual.conv1.weight', [D, 3, p, p]);
  const conv = g.op('Conv', [pixels, g.weight('visual.conv1.weight', convW, [D, 3, p, p])], { kernel_shape: [p, p], strides: [p, p] });
  const patches = g.op('Transpose', [g.op('Reshape', [conv, g.constI64([0, D, grid * grid])])], { perm: [0, 2, 1] });

  // [cls ; patches] + pos, with the class embedding broadcast over the batch.
  const cls = tensorLoader(w, 'visual.class_embedding', [D]);
  const batch = g.op('Gather', [g.op('Shape', [pixels]), g.constI64([0])], { axis: 0 });
  const clsShape = g.op('Concat', [batch, g.constI64([1, D])], { axis: 0 });
  const clsTok = g.op('Expand', [g.weight('visual.class_embedding', cls, [1, 1, D]), clsShape]);
  const pos = tensorLoader(w, 'visual.positional_embedding', [N, D]);
  const x0pre = g.op('Add', [g.op('Concat', [clsTok, patches], { axis: 1 }), g.weight('visual.positional_embedding', pos, [N, D])]);
  let x = layerNorm(g, x0pre, w, 'visual.ln_pre', D, v.lnEps);
  const lnPreCls = clsRow(g, x);

  const taps: BlockTaps[] = [];
  const ln1Mean: string[] = [];
  const ln1Std: string[] = [];
  for (let l = 0; l < v.layers; l++) {
    if (opts.neuronLayers) {
      // ln_1's per-token statistics as the reference hooks them: var = E[x²] − E[x]².
      const mean = g.op('ReduceMean', [x], { axes: [-1], keepdims: 0 }); // [B, N]
      const var_ = g.op('Sub', [g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: [-1], keepdims: 0 }), g.op('Mul', [mean, mean])]);
      ln1Mean.push(mean);
      ln1Std.push(g.op('Sqrt', [g.op('Add', [var_, g.constF([v.lnEps], [])])]));
    }
    const editMlpPost =
      opts.setNeurons === l
        ? (a: string) => g.op('Add', [g.op('Mul', [a, g.input('neuron_keep', 'float', [hidden])]), g.input('neuron_value', 'float', [N, hidden])])
        : undefined;
    const r = residualBlock(g, x, w, `visual.transformer.resblocks.${l}`, { width: D, heads: v.heads, hidden, tokens: N, eps: v.lnEps }, cfg.activation, { taps: true, attentionMean: opts.attentionMaps, editMlpPost });
    // The next block starts after this one's taps, so that they read its tensors while they are alive.
    const t = r.taps;
    const tapValues = [t.clsProbs!, t.headsCls!, t.mlpCls!, t.clsSelf!, ...(t.probsMean ? [t.probsMean] : []), ...(opts.neuronLayers ? [ln1Mean[l], ln1Std[l]] : [])];
    x = g.after(r.out, tapValues);
    taps.push(t);
  }
  const residCls = clsRow(g, x);
  const post = layerNorm(g, residCls, w, 'visual.ln_post', D, v.lnEps);
  const z = g.op('MatMul', [post, g.weight('visual.proj', tensorLoader(w, 'visual.proj', [D, cfg.embedDim]), [D, cfg.embedDim])]);

  const L = v.layers;
  const H = v.heads;
  g.output(z, 'image_features', 'float', ['B', cfg.embedDim]);
  g.output(lnPreCls, 'ln_pre_cls', 'float', ['B', D]);
  g.output(residCls, 'resid_cls', 'float', ['B', D]);
  g.output(stackLayers(g, taps.map((t) => t.headsCls!)), 'heads_cls', 'float', ['B', L, D]);
  g.output(stackLayers(g, taps.map((t) => t.mlpCls!)), 'mlp_cls', 'float', ['B', L, D]);
  g.output(stackLayers(g, taps.map((t) => t.clsProbs!)), 'cls_probs', 'float', ['B', L, H, N]);
  g.output(stackLayers(g, taps.map((t) => t.values!)), 'values', 'float', ['B', L, H, N, dh]);
  g.output(stackLayers(g, taps.map((t) => t.clsSelf!)), 'cls_self', 'float', ['B', L, H, dh]);
  if (opts.attentionMaps) g.output(stackLayers(g, taps.map((t) => t.probsMean!)), 'attn_mean', 'float', ['B', L, N, N]);
  if (opts.neuronLayers) {
    g.output(stackLayers(g, ln1Mean), 'ln1_mean', 'float', ['B', L, N]);
    g.output(stackLayers(g, ln1Std), 'ln1_std', 'float', ['B', L, N]);
    for (const l of opts.neuronLayers) {
      if (!(l >= 0 && l < L)) throw new Error(`neuron taps of MLP ${l}: the model has blocks 0..${L - 1}`);
      g.output(taps[l].mlpPost!, `mlp_post_${l}`, 'float', ['B', N, hidden]);
    }
  }
  return g;
}

/**
 * Text tower: tokens [T, ctx] int32 and a one-hot of the pooled (argmax id = EOT) position
 * eot [T, ctx] float → text_features [T, d].
 */
export function buildTextGraph(cfg: ClipConfig, w: WeightSource, opts: GraphOptions = {}): GraphBuilder {
  const t = cfg.text;
  const D = t.width;
  const ctx = t.contextLength;
  const g = new GraphBuilder('clip_text', opts);
  const tokens = g.input('tokens', 'int32', ['T', ctx]);
  const eot = g.input('eot_onehot', 'float', ['T', ctx]);

  const emb = tensorLoader(w, 'token_embedding.weight', [t.vocabSize, D]);
  const pos = tensorLoader(w, 'positional_embedding', [ctx, D]);
  let x = g.op('Add', [g.op('Gather', [g.weight('token_embedding.weight', emb, [t.vocabSize, D]), tokens], { axis: 0 }), g.weight('positional_embedding', pos, [ctx, D])]);

  const mask = new Float32Array(ctx * ctx);
  for (let i = 0; i < ctx; i++) for (let j = i + 1; j < ctx; j++) mask[i * ctx + j] = -Infinity;
  const causal = g.weight('causal_mask', mask, [ctx, ctx]);
  const hidden = Math.round(D * t.mlpRatio);
  for (let l = 0; l < t.layers; l++) {
    x = residualBlock(g, x, w, `transformer.resblocks.${l}`, { width: D, heads: t.heads, hidden, tokens: ctx, eps: t.lnEps }, cfg.activation, { causalMask: causal }).out;
  }
  // Pool at EOT before ln_final: LayerNorm is per token, so the order does not matter and this is cheaper.
  const pooled = g.op('Reshape', [g.op('MatMul', [g.op('Unsqueeze', [eot, g.constI64([1])]), x]), g.constI64([-1, D])]); // [T, D]
  const lnf = layerNorm(g, pooled, w, 'ln_final', D, t.lnEps);
  const proj = tensorLoader(w, 'text_projection', [D, cfg.embedDim]);
  g.output(g.op('MatMul', [lnf, g.weight('text_projection', proj, [D, cfg.embedDim])]), 'text_features', 'float', ['T', cfg.embedDim]);
  return g;
}
