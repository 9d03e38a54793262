// TextSpan (Gandelsman et al. 2024, §4.1; docs/decomposition.md): per attention head, greedily pick k texts whose
// directions explain the most variance of the head's terms, deflating after each pick.
//
// Follows the reference (`replace_with_iterative_removal` in clip_text_span):
//   1. SVD of C [n, d] (uncentred); project every text onto the span of the top-r right
//      singular vectors:  T ← T · V_rᵀ · V_r.
//   2. Centre C on its mean; the reconstruction starts at the mean.
//   3. k times: pick the text t maximising std over images of C·t (unbiased std, texts not
//      renormalised, first index on ties); reconstruction += (C·t/‖t‖²) tᵀ; C -= the same;
//      every text s ← s − (s·t/‖t‖²) t.
//
// `textspanLiteral` does exactly that, materialising C·Tᵀ [n, m] every step: the oracle.
// `textspan` makes the same choices without it: var(C_k·s) = sᵀΣs with Σ the covariance of
// the centred C (deflating C by a direction the texts are already orthogonal to changes nothing
// for them), and all projected texts live in the r-dimensional span, so the loop runs on
// r-vectors with Σ_r = V_r Σ V_rᵀ and updates each text's sᵀΣs incrementally: O(m·r) per step.
// Picks beyond the rank of the projected span (k > min(r, n, d)) choose among texts deflated to
// round-off level, in the reference as here; the two versions may differ there.

import { type Mat, colMeans, dims, dot, gram, matmul, matmulABt, rightSvd } from './linalg.ts';
import { ShapeError } from '../errors.ts';

export interface TextSpanOptions {
  /** Number of texts to pick. */
  k: number;
  /** Rank of the head's output span the texts are projected onto (reference: 80). */
  r?: number;
  /** Also return the reconstruction [n, d] (mean + picked components). */
  reconstruction?: boolean;
}

export interface TextSpanResult {
  /** Indices into the text set, in pick order. */
  indices: number[];
  /** Selection score at each pick: std over images of C·t (t projected and deflated, not renormalised). */
  scores: number[];
  /** Cumulative fraction of the head's total variance explained by the first j+1 texts. */
  varianceExplained: number[];
  /** Mean + Σ picked components, [n, d] row-major (only with `reconstruction: true`). */
  reconstruction?: Float32Array;
}

function checkInputs(C: Mat, T: Mat, opts: TextSpanOptions) {
  const [n, d] = dims('TextSpan head terms C', C, ['n', 'd']);
  const [m] = dims('TextSpan texts T', T, ['m', 'd'], { d });
  const k = opts.k;
  const r = opts.r ?? 80;
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`TextSpan: k must be a non-negative integer, got ${k}`);
  if (k > m) throw new RangeError(`TextSpan: k = ${k} is more than the ${m} texts available`);
  if (!Number.isInteger(r) || r < 1) throw new RangeError(`TextSpan: rank r must be a positive integer, got ${r}`);
  if (n < 2) throw new RangeError(`TextSpan: need at least 2 images to measure variance, got ${n}`);
  return { n, d, m, k, rank: Math.min(r, n, d) };
}

/** Texts projected onto the top-`rank` right singular vectors of the uncentred C: [m, d]. */
function projectTexts(T: Mat, m: number, d: number, vt: Float64Array, rank: number): Float64Array {
  const Vr = vt.subarray(0, rank * d); // [r, d]
  const coords = matmulABt(T.data, m, d, Vr, rank); // [m, r]
  return matmul(coords, m, rank, Vr, d); // [m, d]
}

/** The reference algorithm step by step (Float64); slow: O(n·m·d) per pick. Test oracle. */
export function textspanLiteral(C: Mat, T: Mat, opts: TextSpanOptions): TextSpanResult {
  const { n, d, m, k, rank } = checkInputs(C, T, opts);
  const svd = rightSvd(C.data, n, d);
  const Tp = projectTexts(T, m, d, svd.vt, rank); // [m, d]
  const mu = colMeans(C.data, n, d);
  const X = new Float64Array(n * d); // centred C, deflated in place
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) X[i * d + j] = C.data[i * d + j] - mu[j];
  const recon = opts.reconstruction ? new Float64Array(n * d) : undefined;
  if (recon) for (let i = 0; i < n; i++) recon.set(mu, i * d);
  const total = sumSq(X);
  const P = new Float64Array(n * m); // C·Tᵀ, rebuilt every step
  const colSum = new Float64Array(m);
  const colSq = new Float64Array(m);
  const proj = new Float64Array(n);
  const indices: number[] = [];
  const scores: number[] = [];
  const varianceExplained: number[] = [];
  for (let step = 0; step < k; step++) {
    matmulABt(X, n, d, Tp, m, P);
    // Unbiased std of every column (two-pass).
    colSum.fill(0);
    colSq.fill(0);
    for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) colSum[j] += P[i * m + j];
    for (let j = 0; j < m; j++) colSum[j] /= n;
    for (let i = 0; i < n; i++)
      for (let j = 0; j < m; j++) {
        const v = P[i * m + j] - colSum[j];
        colSq[j] += v * v;
      }
    let top = 0;
    let best = -Infinity;
    for (let j = 0; j < m; j++) {
      const sd = Math.sqrt(colSq[j] / (n - 1));
      if (sd > best) {
        best = sd;
        top = j;
      }
    }
    indices.push(top);
    scores.push(best);
    const t = Tp.slice(top * d, top * d + d);
    const tn = dot(t, 0, t, 0, d);
    if (tn > 0) {
      for (let i = 0; i < n; i++) proj[i] = dot(X, i * d, t, 0, d) / tn;
      for (let i = 0; i < n; i++)
        for (let j = 0; j < d; j++) {
          const c = proj[i] * t[j];
          if (recon) recon[i * d + j] += c;
          X[i * d + j] -= c;
        }
      for (let s = 0; s < m; s++) {
        const c = dot(Tp, s * d, t, 0, d) / tn;
        for (let j = 0; j < d; j++) Tp[s * d + j] -= c * t[j];
      }
    }
    varianceExplained.push(total > 0 ? (total - sumSq(X)) / total : 0);
  }
  return { indices, scores, varianceExplained, ...(recon ? { reconstruction: Float32Array.from(recon) } : {}) };
}

function sumSq(x: Float64Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

/** TextSpan with the same picks as `textspanLiteral`, via the d×d covariance: O(n·d² + m·d·r) + O(m·r) per pick. */
export function textspan(C: Mat, T: Mat, opts: TextSpanOptions): TextSpanResult {
  const { n, d, m, k, rank: r } = checkInputs(C, T, opts);
  const mu = colMeans(C.data, n, d);
  const S = gram(C.data, n, d, mu); // scatter of the centred C, [d, d]
  // Uncentred Gram for the reference's SVD: CᵀC = S + n·μμᵀ.
  const G = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) G[i * d + j] = S[i * d + j] + n * mu[i] * mu[j];
  const Vr = rightSvd(null, n, d, G).vt.subarray(0, r * d); // [r, d]
  const A = matmulABt(T.data, m, d, Vr, r) as Float64Array; // [m, r] text coordinates in the span
  // Σ_r = V_r Σ V_rᵀ, Σ = S/(n−1).
  const W = matmulABt(Vr, r, d, S, d); // [r, d] = V_r S (S symmetric)
  const M = matmulABt(W, r, d, Vr, r) as Float64Array; // [r, r]
  for (let i = 0; i < M.length; i++) M[i] /= n - 1;
  for (let i = 0; i < r; i++) for (let j = 0; j < i; j++) M[i * r + j] = M[j * r + i] = 0.5 * (M[i * r + j] + M[j * r + i]);
  // q_s = sᵀΣs for every text, from A·Σ_r.
  const AM = matmulABt(A, m, r, M, r); // [m, r]
  const q = new Float64Array(m);
  for (let s = 0; s < m; s++) q[s] = dot(AM, s * r, A, s * r, r);
  let total = 0;
  for (let j = 0; j < d; j++) total += S[j * d + j] / (n - 1);
  const indices: number[] = [];
  const scores: number[] = [];
  const varianceExplained: number[] = [];
  const picked: Float64Array[] = []; // unit directions, in span coordinates
  const t = new Float64Array(r);
  const Mt = new Float64Array(r);
  let explained = 0;
  for (let step = 0; step < k; step++) {
    let top = 0;
    let best = -Infinity;
    for (let s = 0; s < m; s++) {
      const sd = Math.sqrt(Math.max(q[s], 0));
      if (sd > best) {
        best = sd;
        top = s;
      }
    }
    indices.push(top);
    scores.push(best);
    t.set(A.subarray(top * r, top * r + r));
    const tn = dot(t, 0, t, 0, r);
    if (tn > 0) {
      for (let i = 0; i < r; i++) Mt[i] = dot(M, i * r, t, 0, r);
      const tMt = dot(t, 0, Mt, 0, r);
      explained += tMt / tn;
      picked.push(t.map((v) => v / Math.sqrt(tn)));
      // s ← s − c·t with c = s·t/‖t‖²:  sᵀΣs ← sᵀΣs − 2c·(s·Σt) + c²·tᵀΣt.
      for (let s = 0; s < m; s++) {
        const o = s * r;
        const c = dot(A, o, t, 0, r) / tn;
        if (c === 0) continue;
        q[s] += c * (c * tMt - 2 * dot(A, o, Mt, 0, r));
        for (let i = 0; i < r; i++) A[o + i] -= c * t[i];
      }
      q[top] = 0; // exactly deflated; keeps round-off from reviving it
    }
    varianceExplained.push(total > 0 ? explained / total : 0);
  }
  const out: TextSpanResult = { indices, scores, varianceExplained };
  if (opts.reconstruction) out.reconstruction = reconstruct(C.data, n, d, mu, picked, Vr, r);
  return out;
}

/** mean + (C − mean)·U·Uᵀ with U the picked unit directions (orthonormal), as [n, d]. */
function reconstruct(
  C: Float32Array | Float64Array,
  n: number,
  d: number,
  mu: Float64Array,
  picked: Float64Array[],
  Vr: Float64Array,
  r: number,
): Float32Array {
  const k = picked.length;
  const U = new Float64Array(k * d); // [k, d]
  picked.forEach((u, j) => {
    for (let i = 0; i < r; i++) {
      const c = u[i];
      for (let p = 0; p < d; p++) U[j * d + p] += c * Vr[i * d + p];
    }
  });
  const out = new Float32Array(n * d);
  const row = new Float64Array(d);
  const coef = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < d; p++) row[p] = C[i * d + p] - mu[p];
    for (let j = 0; j < k; j++) coef[j] = dot(row, 0, U, j * d, d);
    for (let p = 0; p < d; p++) {
      let v = mu[p];
      for (let j = 0; j < k; j++) v += coef[j] * U[j * d + p];
      out[i * d + p] = v;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Heads of a decomposition.

/** One head's terms attn[:, l, h, :] as [n, d]. attn is [n, L, H, d]. */
export function headTerms(attn: Mat, l: number, h: number): Float32Array {
  const [n, L, H, d] = dims('attention terms', attn, ['n', 'L', 'H', 'd']);
  checkHead(l, h, L, H);
  const out = new Float32Array(n * d);
  for (let b = 0; b < n; b++) {
    const o = ((b * L + l) * H + h) * d;
    for (let j = 0; j < d; j++) out[b * d + j] = attn.data[o + j];
  }
  return out;
}

function checkHead(l: number, h: number, L: number, H: number) {
  if (!Number.isInteger(l) || l < 0 || l >= L) throw new RangeError(`layer ${l} out of range 0..${L - 1}`);
  if (!Number.isInteger(h) || h < 0 || h >= H) throw new RangeError(`head ${h} out of range 0..${H - 1}`);
}

/**
 * attn with head (l, h) replaced by `reconstruction` [n, d] (e.g. its TextSpan reconstruction),
 * to measure accuracy vs k. Returns a copy unless `inPlace`.
 */
export function replaceWithReconstruction(
  attn: Mat,
  l: number,
  h: number,
  reconstruction: ArrayLike<number>,
  inPlace = false,
): Float32Array {
  const [n, L, H, d] = dims('attention terms', attn, ['n', 'L', 'H', 'd']);
  checkHead(l, h, L, H);
  if (reconstruction.length !== n * d)
    throw new ShapeError(`reconstruction has ${reconstruction.length} elements, expected [${n}, ${d}]`);
  const out = inPlace && attn.data instanceof Float32Array ? attn.data : Float32Array.from(attn.data);
  for (let b = 0; b < n; b++) {
    const o = ((b * L + l) * H + h) * d;
    for (let j = 0; j < d; j++) out[o + j] = reconstruction[b * d + j];
  }
  return out;
}

export interface HeadTextSpan extends TextSpanResult {
  layer: number;
  head: number;
}

/**
 * TextSpan on every head of the given layers (default: all). With `replace: true`, also
 * returns attn with each of those heads replaced by its reconstruction (the reference's
 * completeness experiment; mean-ablate the earlier layers separately).
 */
export function textspanHeads(
  attn: Mat,
  T: Mat,
  opts: TextSpanOptions & { layers?: number[]; replace?: boolean; onHead?: (r: HeadTextSpan) => void },
): { heads: HeadTextSpan[]; replaced?: Float32Array } {
  const [n, L, H, d] = dims('attention terms', attn, ['n', 'L', 'H', 'd']);
  const layers = opts.layers ?? Array.from({ length: L }, (_, i) => i);
  const replaced = opts.replace ? Float32Array.from(attn.data) : undefined;
  const heads: HeadTextSpan[] = [];
  for (const l of layers) {
    for (let h = 0; h < H; h++) {
      checkHead(l, h, L, H);
      const C = { shape: [n, d], data: headTerms(attn, l, h) };
      const res = textspan(C, T, { ...opts, reconstruction: opts.replace || opts.reconstruction });
      if (replaced && res.reconstruction) replaceWithReconstruction({ shape: [n, L, H, d], data: replaced }, l, h, res.reconstruction, true);
      if (!opts.reconstruction) delete res.reconstruction;
      const hr = { layer: l, head: h, ...res };
      opts.onHead?.(hr);
      heads.push(hr);
    }
  }
  return { heads, ...(replaced ? { replaced } : {}) };
}
