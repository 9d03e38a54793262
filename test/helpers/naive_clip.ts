// A literal float64 CLIP forward pass (no ONNX), written straight from docs/decomposition.md.
// It is the oracle for layouts the fixtures do not cover (QuickGELU, other sizes, mlp_ratio, heads).

import type { ClipConfig } from '../../src/model/config.ts';
import { visionDims } from '../../src/model/config.ts';
import type { WeightSource } from '../../src/model/weights.ts';

type M = Float64Array[]; // rows

const W = (w: WeightSource, n: string) => Float64Array.from(w.get(n).data);

function layerNorm(x: M, g: Float64Array, b: Float64Array, eps: number): M {
  return x.map((r) => {
    const D = r.length;
    const mu = r.reduce((a, v) => a + v, 0) / D;
    const varr = r.reduce((a, v) => a + (v - mu) ** 2, 0) / D;
    return r.map((v, j) => ((v - mu) / Math.sqrt(varr + eps)) * g[j] + b[j]);
  });
}

/** x [n, in] · Wᵀ + b with W [out, in]. */
function linear(x: M, Wt: Float64Array, b: Float64Array | null, out: number): M {
  return x.map((r) => {
    const y = new Float64Array(out);
    for (let o = 0; o < out; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < r.length; i++) s += r[i] * Wt[o * r.length + i];
      y[o] = s;
    }
    return y;
  });
}

function erf(x: number): number {
  // Abramowitz-Stegun 7.1.26 is too coarse; use a series / continued fraction good to ~1e-15.
  const t = Math.abs(x);
  if (t < 2.5) {
    let sum = t, term = t;
    for (let n = 1; n < 100; n++) {
      term *= (-t * t) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction for large |x|
  let f = 0;
  for (let n = 60; n >= 1; n--) f = (n / 2) / (t + f);
  const erfc = Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f);
  return Math.sign(x) * (1 - erfc);
}

function act(v: number, kind: ClipConfig['activation']): number {
  return kind === 'quick_gelu' ? v / (1 + Math.exp(-1.702 * v)) : 0.5 * v * (1 + erf(v / Math.SQRT2));
}

function block(x: M, w: WeightSource, p: string, H: number, act_: ClipConfig['activation'], eps: number, causal: boolean) {
  const N = x.length, D = x[0].length, dh = D / H;
  const h1 = layerNorm(x, W(w, `${p}.ln_1.weight`), W(w, `${p}.ln_1.bias`), eps);
  const qkv = linear(h1, W(w, `${p}.attn.in_proj_weight`), W(w, `${p}.attn.in_proj_bias`), 3 * D);
  const merged: M = Array.from({ length: N }, () => new Float64Array(D));
  const clsProbs: number[][] = [];
  const meanProbs: number[][] = Array.from({ length: N }, () => new Array<number>(N).fill(0));
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < N; i++) {
      const sc = new Float64Array(N);
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let e = 0; e < dh; e++) s += (qkv[i][h * dh + e] / Math.sqrt(dh)) * qkv[j][D + h * dh + e];
        sc[j] = causal && j > i ? -Infinity : s;
      }
      const mx = Math.max(...sc);
      const ex = sc.map((v) => Math.exp(v - mx));
      const Z = ex.reduce((a, v) => a + v, 0);
      const pr = ex.map((v) => v / Z);
      if (i === 0) clsProbs.push([...pr]);
      for (let j = 0; j < N; j++) meanProbs[i][j] += pr[j] / H;
      for (let j = 0; j < N; j++) for (let e = 0; e < dh; e++) merged[i][h * dh + e] += pr[j] * qkv[j][2 * D + h * dh + e];
    }
  }
  const ao = linear(merged, W(w, `${p}.attn.out_proj.weight`), W(w, `${p}.attn.out_proj.bias`), D);
  const x1 = x.map((r, i) => r.map((v, j) => v + ao[i][j]));
  const h2 = layerNorm(x1, W(w, `${p}.ln_2.weight`), W(w, `${p}.ln_2.bias`), eps);
  const hid = W(w, `${p}.mlp.c_fc.bias`).length;
  const f = linear(h2, W(w, `${p}.mlp.c_fc.weight`), W(w, `${p}.mlp.c_fc.bias`), hid).map((r) => r.map((v) => act(v, act_)));
  const mo = linear(f, W(w, `${p}.mlp.c_proj.weight`), W(w, `${p}.mlp.c_proj.bias`), D);
  return { out: x1.map((r, i) => r.map((v, j) => v + mo[i][j])), clsProbs, meanProbs };
}

/** z for one image pixels [3, S, S]. */
export function naiveImageFeatures(cfg: ClipConfig, w: WeightSource, px: Float32Array): { z: Float64Array; clsProbs: number[][][]; meanProbs: number[][][] } {
  const v = cfg.vision;
  const { grid } = visionDims(v);
  const D = v.width, p = v.patchSize, S = v.imageSize;
  const conv = W(w, 'visual.conv1.weight');
  const cls = W(w, 'visual.class_embedding');
  const pos = W(w, 'visual.positional_embedding');
  const x: M = [Float64Array.from(cls, (c, j) => c + pos[j])];
  for (let gy = 0; gy < grid; gy++) for (let gx = 0; gx < grid; gx++) {
    const t = new Float64Array(D);
    for (let o = 0; o < D; o++) {
      let s = 0;
      for (let c = 0; c < 3; c++) for (let ky = 0; ky < p; ky++) for (let kx = 0; kx < p; kx++) {
        s += conv[((o * 3 + c) * p + ky) * p + kx] * px[(c * S + gy * p + ky) * S + gx * p + kx];
      }
      t[o] = s + pos[(1 + gy * grid + gx) * D + o];
    }
    x.push(t);
  }
  let h = layerNorm(x, W(w, 'visual.ln_pre.weight'), W(w, 'visual.ln_pre.bias'), v.lnEps);
  const clsProbs: number[][][] = [];
  const meanProbs: number[][][] = [];
  for (let l = 0; l < v.layers; l++) {
    const r = block(h, w, `visual.transformer.resblocks.${l}`, v.heads, cfg.activation, v.lnEps, false);
    h = r.out;
    clsProbs.push(r.clsProbs);
    meanProbs.push(r.meanProbs);
  }
  const post = layerNorm([h[0]], W(w, 'visual.ln_post.weight'), W(w, 'visual.ln_post.bias'), v.lnEps)[0];
  const P = W(w, 'visual.proj');
  const z = new Float64Array(cfg.embedDim);
  for (let k = 0; k < cfg.embedDim; k++) for (let j = 0; j < D; j++) z[k] += post[j] * P[j * cfg.embedDim + k];
  return { z, clsProbs, meanProbs };
}

/** Text features for one row of token ids. */
export function naiveTextFeatures(cfg: ClipConfig, w: WeightSource, tokens: ArrayLike<number>): Float64Array {
  const t = cfg.text;
  const emb = w.get('token_embedding.weight').data;
  const pos = W(w, 'positional_embedding');
  const D = t.width;
  let x: M = Array.from({ length: t.contextLength }, (_, i) => Float64Array.from({ length: D }, (_, j) => emb[tokens[i] * D + j] + pos[i * D + j]));
  for (let l = 0; l < t.layers; l++) x = block(x, w, `transformer.resblocks.${l}`, t.heads, cfg.activation, t.lnEps, true).out;
  let eot = 0;
  for (let i = 1; i < t.contextLength; i++) if (tokens[i] > tokens[eot]) eot = i;
  const f = layerNorm([x[eot]], W(w, 'ln_final.weight'), W(w, 'ln_final.bias'), t.lnEps)[0];
  const P = W(w, 'text_projection');
  const out = new Float64Array(cfg.embedDim);
  for (let k = 0; k < cfg.embedDim; k++) for (let j = 0; j < D; j++) out[k] += f[j] * P[j * cfg.embedDim + k];
  return out;
}
