// The residual attention block shared by both towers, written as ONNX ops:
//   x' = x + MSA(LN1(x));  x_out = x' + MLP(LN2(x'))
// Optionally it exposes what the decomposition needs at the CLS row (token 0).

import type { Activation } from '../model/config.ts';
import type { WeightSource } from '../model/weights.ts';
import { expectTensor, tensorLoader } from '../model/weights.ts';
import type { GraphBuilder } from './builder.ts';

export interface BlockDims {
  width: number; // D
  heads: number; // H
  hidden: number; // MLP width r·D
  tokens: number; // N (static)
  eps: number;
}

export interface BlockTaps {
  /** [B, H, N]: softmax attention of the CLS query on every token. */
  clsProbs?: string;
  /** [B, H, N, d_h]: per-head values LN1(x)·W_V + b_V of every token. */
  values?: string;
  /** [B, N, N]: every query's attention weights, averaged over heads (attention rollout, raw attention). */
  probsMean?: string;
  /** [B, D]: attention output at CLS with heads concatenated, before W_O (Σ_i a_i v_i per head). */
  headsCls?: string;
  /** [B, D]: MLP output at CLS (c_proj incl. bias). */
  mlpCls?: string;
  /** [B, H, d_h]: a_{0,0} · v_0 per head, the CLS query's attention to itself times its value (CLS→CLS). */
  clsSelf?: string;
  /** [B, N, hidden]: post-activation of every MLP neuron at every token (second-order effects). */
  mlpPost?: string;
}

/** Transpose a [rows, cols] checkpoint matrix into [cols, rows] so x·Wᵀ becomes one MatMul. */
export function transposed(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    const src = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[src + c];
  }
  return out;
}

export function layerNorm(g: GraphBuilder, x: string, w: WeightSource, prefix: string, width: number, eps: number): string {
  const gamma = g.weight(`${prefix}.weight`, tensorLoader(w, `${prefix}.weight`, [width]), [width]);
  const beta = g.weight(`${prefix}.bias`, tensorLoader(w, `${prefix}.bias`, [width]), [width]);
  return g.op('LayerNormalization', [x, gamma, beta], { axis: -1, epsilon: eps });
}

/** y = x·Wᵀ + b for a checkpoint Linear with weight [out, in]. */
export function linear(g: GraphBuilder, x: string, w: WeightSource, prefix: string, inF: number, outF: number, bias = true): string {
  const Wt = tensorLoader(w, `${prefix}.weight`, [outF, inF], (W) => transposed(W, outF, inF));
  const y = g.op('MatMul', [x, g.weight(`${prefix}.weight_t`, Wt, [inF, outF])]);
  if (!bias) return y;
  return g.op('Add', [y, g.weight(`${prefix}.bias`, tensorLoader(w, `${prefix}.bias`, [outF]), [outF])]);
}

export function activation(g: GraphBuilder, x: string, act: Activation): string {
  if (act === 'quick_gelu') {
    return g.op('Mul', [x, g.op('Sigmoid', [g.op('Mul', [x, g.constF([1.702], [])])])]);
  }
  if (act === 'gelu_tanh') {
    // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), torch's gelu(approximate='tanh').
    const x3 = g.op('Mul', [g.op('Mul', [x, x]), x]);
    const inner = g.op('Mul', [g.op('Add', [x, g.op('Mul', [x3, g.constF([0.044715], [])])]), g.constF([Math.sqrt(2 / Math.PI)], [])]);
    return g.op('Mul', [g.op('Mul', [x, g.op('Add', [g.op('Tanh', [inner]), g.constF([1], [])])]), g.constF([0.5], [])]);
  }
  // Exact erf GELU in the pattern ONNX Runtime fuses into one Gelu kernel.
  const erf = g.op('Erf', [g.op('Div', [x, g.constF([Math.SQRT2], [])])]);
  return g.op('Mul', [g.op('Mul', [x, g.op('Add', [erf, g.constF([1], [])])]), g.constF([0.5], [])]);
}

/** Token 0 of a [B, N, ...] value → [B, ...]. */
export function clsRow(g: GraphBuilder, x: string, axis = 1): string {
  return g.op('Gather', [x, g.constI64([0], [])], { axis });
}

/** Where a block's weights live: LayerNorm and Linear prefixes, and the packed q;k;v projection. */
export interface BlockNames {
  ln1: string;
  ln2: string;
  /** [3D, D] weight and [3D] bias, rows q then k then v. */
  qkv: (w: WeightSource, D: number) => { weight: Float32Array; bias: Float32Array };
  outProj: string;
  fc1: string;
  fc2: string;
}

/** open_clip's resblock names under `prefix`. */
export function openClipBlockNames(prefix: string): BlockNames {
  return {
    ln1: `${prefix}.ln_1`,
    ln2: `${prefix}.ln_2`,
    qkv: (w, D) => ({ weight: expectTensor(w, `${prefix}.attn.in_proj_weight`, [3 * D, D]).data, bias: expectTensor(w, `${prefix}.attn.in_proj_bias`, [3 * D]).data }),
    outProj: `${prefix}.attn.out_proj`,
    fc1: `${prefix}.mlp.c_fc`,
    fc2: `${prefix}.mlp.c_proj`,
  };
}

export function residualBlock(
  g: GraphBuilder,
  x: string, // [B, N, D]
  w: WeightSource,
  prefix: string,
  dims: BlockDims,
  act: Activation,
  opts: { causalMask?: string; taps?: boolean; attentionMean?: boolean; names?: BlockNames; editMlpPost?: (hidden: string) => string } = {},
): { out: string; taps: BlockTaps; /** [B, N, D] per-head attention outputs before W_O, heads concatenated */ heads: string; /** [B, N, D] */ mlpOut: string } {
  const { width: D, heads: H, hidden, eps } = dims;
  const dh = D / H;
  const taps: BlockTaps = {};
  const names = opts.names ?? openClipBlockNames(prefix);

  const h1 = layerNorm(g, x, w, names.ln1, D, eps);
  // q;k;v packed by the layout's rule, read when the graph is written: the weight's loader keeps the
  // bias of the same read for the bias's loader, which runs right after it.
  let packedBias: Float32Array | undefined;
  const qkvWeight = () => {
    const p = names.qkv(w, D);
    packedBias = p.bias;
    return transposed(p.weight, 3 * D, D);
  };
  const qkvBias = () => {
    const b = packedBias ?? names.qkv(w, D).bias;
    packedBias = undefined;
    return b;
  };
  const qkv = g.op('Add', [
    g.op('MatMul', [h1, g.weight(`${prefix}.attn.in_proj_weight_t`, qkvWeight, [D, 3 * D])]),
    g.weight(`${prefix}.attn.in_proj_bias`, qkvBias, [3 * D]),
  ]);
  // 0 copies the input's dimension, so the token count may vary between runs.
  const qkv5 = g.op('Reshape', [qkv, g.constI64([0, 0, 3, H, dh])]); // [B, N, 3, H, dh]
  const pick = (i: number) => g.op('Gather', [qkv5, g.constI64([i], [])], { axis: 2 }); // [B, N, H, dh]
  const q = g.op('Transpose', [pick(0)], { perm: [0, 2, 1, 3] }); // [B, H, N, dh]
  const kT = g.op('Transpose', [pick(1)], { perm: [0, 2, 3, 1] }); // [B, H, dh, N]
  const v = g.op('Transpose', [pick(2)], { perm: [0, 2, 1, 3] }); // [B, H, N, dh]
  // The reference scales q by 1/√d_h before q·kᵀ.
  const qs = g.op('Mul', [q, g.constF([1 / Math.sqrt(dh)], [])]);
  let scores = g.op('MatMul', [qs, kT]); // [B, H, N, N]
  if (opts.causalMask) scores = g.op('Add', [scores, opts.causalMask]);
  const probs = g.op('Softmax', [scores], { axis: -1 });
  const ctx = g.op('MatMul', [probs, v]); // [B, H, N, dh]
  const merged = g.op('Reshape', [g.op('Transpose', [ctx], { perm: [0, 2, 1, 3] }), g.constI64([0, 0, D])]); // [B, N, D]
  const attnOut = linear(g, merged, w, names.outProj, D, D);
  const x1 = g.op('Add', [x, attnOut]);

  const h2 = layerNorm(g, x1, w, names.ln2, D, eps);
  const post = activation(g, linear(g, h2, w, names.fc1, D, hidden), act);
  const mlpHidden = opts.editMlpPost ? opts.editMlpPost(post) : post;
  const mlpOut = linear(g, mlpHidden, w, names.fc2, hidden, D);
  const out = g.op('Add', [x1, mlpOut]);

  if (opts.taps) {
    taps.clsProbs = g.op('Gather', [probs, g.constI64([0], [])], { axis: 2 }); // [B, H, N]
    taps.values = v;
    if (opts.attentionMean) taps.probsMean = g.op('ReduceMean', [probs], { axes: [1], keepdims: 0 }); // [B, N, N] (opset 17: axes is an attribute)
    taps.headsCls = clsRow(g, merged); // [B, D]
    taps.mlpCls = clsRow(g, mlpOut); // [B, D]
    const selfWeight = g.op('Gather', [taps.clsProbs, g.constI64([0], [])], { axis: 2 }); // [B, H]
    const clsValue = g.op('Gather', [v, g.constI64([0], [])], { axis: 2 }); // [B, H, dh]
    taps.clsSelf = g.op('Mul', [g.op('Unsqueeze', [selfWeight, g.constI64([2])]), clsValue]); // [B, H, dh]
    taps.mlpPost = mlpHidden; // [B, N, hidden]
  }
  return { out, taps, heads: merged, mlpOut };
}
