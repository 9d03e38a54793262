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

import { type Mat, colMeans, dims, dot, matmul, matmulABt, rightSvd, symEigTop, transpose } from './linalg.ts';
import { centredGram, matmulF64 } from '../graph/matmul.ts';
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

/** Float64 view of a Mat's data (copied only when it is float32). */
const f64 = (x: Float32Array | Float64Array): Float64Array => (x instanceof Float64Array ? x : Float64Array.from(x));

export interface HeadSpan {
  /** Column means of C [d]. */
  mu: Float64Array;
  /** Scatter of the centred C, (C − μ)ᵀ(C − μ) [d, d]. */
  S: Float64Array;
  /** Top-`rank` right singular vectors of the uncentred C, as rows [rank, d]. */
  Vr: Float64Array;
  rank: number;
}

/**
 * The head's statistics TextSpan needs, in float64: mean, scatter, and the reference's SVD
 * span (the uncentred C's top right singular vectors = eigenvectors of CᵀC = S + n·μμᵀ).
 * The n·d² product runs on ONNX Runtime; only the top `rank` eigenvectors are computed.
 */
export async function headSpan(C: Float32Array | Float64Array, n: number, d: number, rank: number): Promise<HeadSpan> {
  const { mu, S } = await centredGram(C, n, d);
  const G = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) G[i * d + j] = S[i * d + j] + n * mu[i] * mu[j];
  const r = Math.min(rank, n, d);
  return { mu, S, Vr: (await symEigTop(G, d, r)).vectors, rank: r };
}

/**
 * TextSpan with the same picks as `textspanLiteral`, via the d×d covariance:
 * O(n·d² + d³ + m·d·r) once (the large products on ONNX Runtime, float64), then O(m·r) per pick.
 * `span`: the head's `headSpan`, when the caller has it already.
 */
export async function textspan(C: Mat, T: Mat, opts: TextSpanOptions, span?: HeadSpan): Promise<TextSpanResult> {
  const { n, d, m, k, rank } = checkInputs(C, T, opts);
  if (span && (span.rank !== rank || span.Vr.length !== rank * d)) throw new RangeError(`TextSpan: the given head span has rank ${span.rank}, expected ${rank}`);
  const { mu, S, Vr, rank: r } = span ?? (await headSpan(C.data, n, d, rank));
  const VrT = transpose(Vr, r, d); // [d, r]
  const A = await matmulF64(f64(T.data), VrT, m, d, r); // [m, r] text coordinates in the span
  // Σ_r = V_r Σ V_rᵀ, Σ = S/(n−1).
  const M = await matmulF64(await matmulF64(Vr, S, r, d, d), VrT, r, d, r); // [r, r]
  for (let i = 0; i < M.length; i++) M[i] /= n - 1;
  for (let i = 0; i < r; i++) for (let j = 0; j < i; j++) M[i * r + j] = M[j * r + i] = 0.5 * (M[i * r + j] + M[j * r + i]);
  // q_s = sᵀΣs for every text, from A·Σ_r.
  const AM = await matmulF64(A, M, m, r, r); // [m, r] (M symmetric)
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
  if (opts.reconstruction) out.reconstruction = await reconstruct(C.data, n, d, mu, picked, Vr, r);
  return out;
}

/** mean + (C − mean)·U·Uᵀ with U the picked unit directions (orthonormal), as [n, d]. */
async function reconstruct(
  C: Float32Array | Float64Array,
  n: number,
  d: number,
  mu: Float64Array,
  picked: Float64Array[],
  Vr: Float64Array,
  r: number,
): Promise<Float32Array> {
  const k = picked.length;
  const out = new Float32Array(n * d);
  const Xc = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let p = 0; p < d; p++) Xc[i * d + p] = C[i * d + p] - mu[p];
  if (k > 0) {
    const P = new Float64Array(k * r);
    picked.forEach((u, j) => P.set(u, j * r));
    const U = await matmulF64(P, Vr, k, r, d); // [k, d]
    const coef = await matmulF64(Xc, transpose(U, k, d), n, d, k); // [n, k]
    Xc.set(await matmulF64(coef, U, n, k, d)); // the projection onto the picked directions
  } else Xc.fill(0);
  for (let i = 0; i < n; i++) for (let p = 0; p < d; p++) out[i * d + p] = mu[p] + Xc[i * d + p];
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
export async function textspanHeads(
  attn: Mat,
  T: Mat,
  opts: TextSpanOptions & { layers?: number[]; replace?: boolean; onHead?: (r: HeadTextSpan) => void },
): Promise<{ heads: HeadTextSpan[]; replaced?: Float32Array }> {
  const [n, L, H, d] = dims('attention terms', attn, ['n', 'L', 'H', 'd']);
  const layers = opts.layers ?? Array.from({ length: L }, (_, i) => i);
  for (const l of layers) checkHead(l, 0, L, H);
  const replaced = opts.replace ? Float32Array.from(attn.data) : undefined;
  const jobs = layers.flatMap((l) => Array.from({ length: H }, (_, h) => [l, h] as const));
  const heads = await pipelined(jobs, async ([l, h]) => {
    const res = await textspan({ shape: [n, d], data: headTerms(attn, l, h) }, T, { ...opts, reconstruction: opts.replace || opts.reconstruction });
    return { layer: l, head: h, ...res };
  }, (hr) => {
    if (replaced && hr.reconstruction) replaceWithReconstruction({ shape: [n, L, H, d], data: replaced }, hr.layer, hr.head, hr.reconstruction, true);
    if (!opts.reconstruction) delete hr.reconstruction;
    opts.onHead?.(hr);
  });
  return { heads, ...(replaced ? { replaced } : {}) };
}

/**
 * `run` over the jobs with the next one started before the current one is handled, results in
 * order: one head's products on ONNX Runtime overlap another's eigendecomposition in JS.
 */
export async function pipelined<J, R>(jobs: readonly J[], run: (job: J) => Promise<R>, handle?: (r: R, i: number) => void): Promise<R[]> {
  const out: R[] = [];
  let next = jobs.length ? run(jobs[0]) : undefined;
  try {
    for (let i = 0; i < jobs.length; i++) {
      const r = await next!;
      next = i + 1 < jobs.length ? run(jobs[i + 1]) : undefined;
      handle?.(r, i);
      out.push(r);
    }
  } catch (e) {
    await next?.catch(() => undefined);
    throw e;
  }
  return out;
}
