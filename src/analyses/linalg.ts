// Small dense linear algebra for the analyses: blocked matmul in plain JS, Gram matrices,
// symmetric eigendecomposition (Householder tridiagonalisation + implicit QL) and the right
// singular vectors of a tall matrix. Storage is row-major; arithmetic is double precision
// (JS numbers), accumulators never round to float32.

import { ShapeError } from '../errors.ts';
import { matmulF64 } from '../graph/matmul.ts';

export type Vec = Float32Array | Float64Array;

/** Throw a one-line ShapeError unless `arr` holds `rows*cols` numbers. */
export function checkLen(what: string, arr: ArrayLike<number>, rows: number, cols: number): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0)
    throw new ShapeError(`${what}: bad dimensions ${rows}x${cols}`);
  if (arr.length !== rows * cols)
    throw new ShapeError(`${what}: has ${arr.length} elements, expected ${rows}x${cols} = ${rows * cols}`);
}

const BLOCK_B = 64; // rows of B kept hot in cache while all rows of A stream past

/**
 * out = A · Bᵀ, A [n, k], B [m, k] (both row-major, shared inner dim contiguous) → [n, m].
 * 4×4 register blocking; the kernel of every other product here.
 */
export function matmulABt(A: Vec, n: number, k: number, B: Vec, m: number, out?: Vec): Vec {
  checkLen('matmulABt A', A, n, k);
  checkLen('matmulABt B', B, m, k);
  const C = out ?? new Float64Array(n * m);
  checkLen('matmulABt out', C, n, m);
  for (let j0 = 0; j0 < m; j0 += BLOCK_B) {
    const j1 = Math.min(m, j0 + BLOCK_B);
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const a0 = i * k, a1 = a0 + k, a2 = a1 + k, a3 = a2 + k;
      let j = j0;
      for (; j + 4 <= j1; j += 4) {
        const b0 = j * k, b1 = b0 + k, b2 = b1 + k, b3 = b2 + k;
        let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
        let s20 = 0, s21 = 0, s22 = 0, s23 = 0, s30 = 0, s31 = 0, s32 = 0, s33 = 0;
        for (let p = 0; p < k; p++) {
          const x0 = A[a0 + p], x1 = A[a1 + p], x2 = A[a2 + p], x3 = A[a3 + p];
          const y0 = B[b0 + p], y1 = B[b1 + p], y2 = B[b2 + p], y3 = B[b3 + p];
          s00 += x0 * y0; s01 += x0 * y1; s02 += x0 * y2; s03 += x0 * y3;
          s10 += x1 * y0; s11 += x1 * y1; s12 += x1 * y2; s13 += x1 * y3;
          s20 += x2 * y0; s21 += x2 * y1; s22 += x2 * y2; s23 += x2 * y3;
          s30 += x3 * y0; s31 += x3 * y1; s32 += x3 * y2; s33 += x3 * y3;
        }
        let o = i * m + j;
        C[o] = s00; C[o + 1] = s01; C[o + 2] = s02; C[o + 3] = s03; o += m;
        C[o] = s10; C[o + 1] = s11; C[o + 2] = s12; C[o + 3] = s13; o += m;
        C[o] = s20; C[o + 1] = s21; C[o + 2] = s22; C[o + 3] = s23; o += m;
        C[o] = s30; C[o + 1] = s31; C[o + 2] = s32; C[o + 3] = s33;
      }
      for (; j < j1; j++) {
        const b = j * k;
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (let p = 0; p < k; p++) {
          const y = B[b + p];
          s0 += A[a0 + p] * y; s1 += A[a1 + p] * y; s2 += A[a2 + p] * y; s3 += A[a3 + p] * y;
        }
        C[i * m + j] = s0; C[(i + 1) * m + j] = s1; C[(i + 2) * m + j] = s2; C[(i + 3) * m + j] = s3;
      }
    }
    for (; i < n; i++) {
      const a = i * k;
      for (let j = j0; j < j1; j++) {
        const b = j * k;
        let s = 0;
        for (let p = 0; p < k; p++) s += A[a + p] * B[b + p];
        C[i * m + j] = s;
      }
    }
  }
  return C;
}

/** Transpose X [rows, cols] → [cols, rows] (Float64). */
export function transpose(X: Vec, rows: number, cols: number): Float64Array {
  checkLen('transpose', X, rows, cols);
  const T = new Float64Array(rows * cols);
  const BS = 32;
  for (let i0 = 0; i0 < rows; i0 += BS)
    for (let j0 = 0; j0 < cols; j0 += BS) {
      const i1 = Math.min(rows, i0 + BS), j1 = Math.min(cols, j0 + BS);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) T[j * rows + i] = X[i * cols + j];
    }
  return T;
}

/** out = A · B, A [n, k], B [k, m] → [n, m] (Float64). */
export function matmul(A: Vec, n: number, k: number, B: Vec, m: number): Float64Array {
  checkLen('matmul B', B, k, m);
  return matmulABt(A, n, k, transpose(B, k, m), m) as Float64Array;
}

/**
 * Gram matrix XᵀX of X [n, d] → [d, d] (Float64, symmetric). `colOffset` [d], if given, is
 * subtracted from every row first (pass the column means for the scatter matrix).
 */
export function gram(X: Vec, n: number, d: number, colOffset?: ArrayLike<number>): Float64Array {
  checkLen('gram', X, n, d);
  const Xt = transpose(X, n, d); // [d, n]: columns contiguous so Gram = Xt·Xtᵀ
  if (colOffset) {
    for (let j = 0; j < d; j++) {
      const o = colOffset[j], base = j * n;
      for (let i = 0; i < n; i++) Xt[base + i] -= o;
    }
  }
  const G = new Float64Array(d * d);
  // Only blocks on or above the diagonal; mirror afterwards.
  const BS = 32;
  for (let i0 = 0; i0 < d; i0 += BS) {
    const i1 = Math.min(d, i0 + BS);
    for (let j0 = i0; j0 < d; j0 += BS) {
      const j1 = Math.min(d, j0 + BS);
      const Ab = Xt.subarray(i0 * n, i1 * n);
      const Bb = Xt.subarray(j0 * n, j1 * n);
      const blk = matmulABt(Ab, i1 - i0, n, Bb, j1 - j0);
      for (let i = i0; i < i1; i++)
        for (let j = j0; j < j1; j++) G[i * d + j] = blk[(i - i0) * (j1 - j0) + (j - j0)];
    }
  }
  for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) G[i * d + j] = G[j * d + i];
  return G;
}

/** Column means of X [n, d] → [d] (Float64). */
export function colMeans(X: Vec, n: number, d: number): Float64Array {
  checkLen('colMeans', X, n, d);
  const mu = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const o = i * d;
    for (let j = 0; j < d; j++) mu[j] += X[o + j];
  }
  if (n > 0) for (let j = 0; j < d; j++) mu[j] /= n;
  return mu;
}

export function dot(a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number, len: number): number {
  let s = 0;
  for (let p = 0; p < len; p++) s += a[ao + p] * b[bo + p];
  return s;
}

/** Rows of X [n, d] scaled to unit L2 norm (zero rows stay zero) → new Float32Array. */
export function normalizeRows(X: Vec, n: number, d: number): Float32Array {
  checkLen('normalizeRows', X, n, d);
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const o = i * d;
    const nr = Math.sqrt(dot(X, o, X, o, d));
    const s = nr > 0 ? 1 / nr : 0;
    for (let j = 0; j < d; j++) out[o + j] = X[o + j] * s;
  }
  return out;
}

export interface SymEig {
  /** Eigenvalues, descending. */
  values: Float64Array; // [d]
  /** Eigenvectors as rows, in the order of `values`: vectors[j*d + i] = component i of vector j. */
  vectors: Float64Array; // [d, d]
}

/**
 * Eigendecomposition of a symmetric S [d, d] (Float64): Householder reduction to tridiagonal
 * form then implicit QL with Wilkinson-style shifts (the EISPACK tred2/tql2 pair).
 */
export function symEig(S: ArrayLike<number>, d: number): SymEig {
  checkLen('symEig', S, d, d);
  if (d === 0) return { values: new Float64Array(0), vectors: new Float64Array(0) };
  const V = Float64Array.from(S as ArrayLike<number>); // [d, d], becomes the orthogonal transform
  for (let i = 0; i < d; i++)
    for (let j = 0; j < i; j++) {
      const a = V[i * d + j], b = V[j * d + i];
      if (!Number.isFinite(a) || !Number.isFinite(b)) throw new RangeError('symEig: matrix has non-finite entries');
      const s = 0.5 * (a + b); // symmetrise round-off
      V[i * d + j] = s; V[j * d + i] = s;
    }
  const diag = new Float64Array(d);
  const off = new Float64Array(d);
  tred2(V, diag, off, d);
  const Vt = transpose(V, d, d); // rows = columns of V, so QL rotations touch contiguous rows
  tql2(Vt, diag, off, d);
  // Sort descending.
  const order = Array.from({ length: d }, (_, i) => i).sort((a, b) => diag[b] - diag[a]);
  const values = new Float64Array(d);
  const vectors = new Float64Array(d * d);
  order.forEach((src, dst) => {
    values[dst] = diag[src];
    vectors.set(Vt.subarray(src * d, src * d + d), dst * d);
  });
  return { values, vectors };
}

function tred2(V: Float64Array, dg: Float64Array, e: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) dg[j] = V[(n - 1) * n + j];
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(dg[k]);
    if (scale === 0) {
      e[i] = dg[i - 1];
      for (let j = 0; j < i; j++) {
        dg[j] = V[(i - 1) * n + j];
        V[i * n + j] = 0;
        V[j * n + i] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        dg[k] /= scale;
        h += dg[k] * dg[k];
      }
      let f = dg[i - 1];
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      dg[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = dg[j];
        V[j * n + i] = f;
        g = e[j] + V[j * n + j] * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += V[k * n + j] * dg[k];
          e[k] += V[k * n + j] * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] /= h;
        f += e[j] * dg[j];
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] -= hh * dg[j];
      for (let j = 0; j < i; j++) {
        f = dg[j];
        g = e[j];
        for (let k = j; k <= i - 1; k++) V[k * n + j] -= f * e[k] + g * dg[k];
        dg[j] = V[(i - 1) * n + j];
        V[i * n + j] = 0;
      }
    }
    dg[i] = h;
  }
  // Accumulate the transformations.
  for (let i = 0; i < n - 1; i++) {
    V[(n - 1) * n + i] = V[i * n + i];
    V[i * n + i] = 1;
    const h = dg[i + 1];
    if (h !== 0) {
      for (let k = 0; k <= i; k++) dg[k] = V[k * n + i + 1] / h;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        for (let k = 0; k <= i; k++) g += V[k * n + i + 1] * V[k * n + j];
        for (let k = 0; k <= i; k++) V[k * n + j] -= g * dg[k];
      }
    }
    for (let k = 0; k <= i; k++) V[k * n + i + 1] = 0;
  }
  for (let j = 0; j < n; j++) {
    dg[j] = V[(n - 1) * n + j];
    V[(n - 1) * n + j] = 0;
  }
  V[(n - 1) * n + n - 1] = 1;
  e[0] = 0;
}

/**
 * Implicit QL on the tridiagonal (dg, e); Vt holds the transform with eigenvectors as rows.
 * With Vt null, eigenvalues only (EISPACK tql1): O(n²) instead of O(n³).
 */
function tql2(Vt: Float64Array | null, dg: Float64Array, e: Float64Array, n: number): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i];
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(dg[l]) + Math.abs(e[l]));
    let m = l;
    while (m < n) {
      if (Math.abs(e[m]) <= eps * tst1) break;
      m++;
    }
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > 100) throw new RangeError('symEig: QL iteration did not converge');
        let g = dg[l];
        let p = (dg[l + 1] - g) / (2 * e[l]);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        dg[l] = e[l] / (p + r);
        dg[l + 1] = e[l] * (p + r);
        const dl1 = dg[l + 1];
        let h = g - dg[l];
        for (let i = l + 2; i < n; i++) dg[i] -= h;
        f += h;
        p = dg[m];
        let c = 1, c2 = 1, c3 = 1;
        const el1 = e[l + 1];
        let s = 0, s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i];
          h = c * p;
          r = Math.hypot(p, e[i]);
          e[i + 1] = s * r;
          s = e[i] / r;
          c = p / r;
          p = c * dg[i] - s * g;
          dg[i + 1] = h + s * (c * g + s * dg[i]);
          if (!Vt) continue;
          const ri = i * n, rj = (i + 1) * n;
          for (let k = 0; k < n; k++) {
            const hv = Vt[rj + k];
            const vi = Vt[ri + k];
            Vt[rj + k] = s * vi + c * hv;
            Vt[ri + k] = c * vi - s * hv;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]) / dl1;
        e[l] = s * p;
        dg[l] = c * p;
      } while (Math.abs(e[l]) > eps * tst1);
    }
    dg[l] += f;
    e[l] = 0;
  }
}

/** Columns per panel of the blocked tridiagonalisation. */
const PANEL = 32;

/**
 * The `k` largest eigenpairs of a symmetric S [d, d] (Float64), for when k ≪ d:
 * Householder reduction to a tridiagonal T = QᵀSQ, blocked as LAPACK's dsytrd/dlatrd do (per
 * panel of 32 columns, the symmetric matrix-vector products run here on the lower triangle and
 * the trailing rank-64 update runs as one float64 matrix product on ONNX Runtime); T's
 * eigenvalues by implicit QL without vectors; T's top-k eigenvectors by inverse iteration
 * (re-orthogonalised within clusters of close eigenvalues, as LAPACK's dstein does); Q applied
 * to those k vectors only. About d³/3 multiply-adds in JS against ~5·d³ for symEig, with the
 * same eigenvalues and eigenvectors to round-off.
 */
export async function symEigTop(S: ArrayLike<number>, d: number, k: number): Promise<SymEig> {
  checkLen('symEigTop', S, d, d);
  if (!Number.isInteger(k) || k < 0 || k > d) throw new RangeError(`symEigTop: k must be an integer in 0..${d}, got ${k}`);
  if (d <= 2) {
    const full = symEig(S, d);
    return { values: full.values.slice(0, k), vectors: full.vectors.slice(0, k * d) };
  }
  const A = Float64Array.from(S as ArrayLike<number>); // lower triangle used; rows contiguous
  for (let i = 0; i < d; i++)
    for (let j = 0; j < i; j++) {
      const a = A[i * d + j], b = A[j * d + i];
      if (!Number.isFinite(a) || !Number.isFinite(b)) throw new RangeError('symEigTop: matrix has non-finite entries');
      A[i * d + j] = 0.5 * (a + b);
    }
  const { diag, off, V, beta } = await tridiagonalise(A, d);
  // eigenvalues of T (tql2 without vectors works on copies)
  const ev = diag.slice();
  const eo = off.slice();
  tql2(null, ev, eo, d);
  const values = Float64Array.from(ev).sort().reverse().slice(0, k);
  let tnorm = 0;
  for (let i = 0; i < d; i++) tnorm = Math.max(tnorm, Math.abs(diag[i]) + Math.abs(off[i]) + (i + 1 < d ? Math.abs(off[i + 1]) : 0));
  const Z = tridiagonalEigenvectors(diag, off, d, values, tnorm);
  // back-transform: y = H_0 H_1 … H_{d-3} z, applied from the last reflector to the first
  for (let q = 0; q < k; q++) {
    const y = Z.subarray(q * d, q * d + d);
    for (let j = d - 3; j >= 0; j--) {
      const b = beta[j];
      if (b === 0) continue;
      const vo = j * d;
      let s = 0;
      for (let i = j + 1; i < d; i++) s += V[vo + i] * y[i];
      s *= b;
      for (let i = j + 1; i < d; i++) y[i] -= s * V[vo + i];
    }
  }
  return { values, vectors: Z };
}

/**
 * Blocked Householder tridiagonalisation of the symmetric A (lower triangle, overwritten):
 * A = Q T Qᵀ with Q = H_0 ⋯ H_{d−3}, H_j = I − beta_j v_j v_jᵀ (v_j in row j of V, entries j+1..).
 * T: diag, off[i] = T[i][i−1].
 */
async function tridiagonalise(A: Float64Array, d: number) {
  const diag = new Float64Array(d);
  const off = new Float64Array(d);
  const V = new Float64Array(d * d);
  const beta = new Float64Array(d);
  const W = new Float64Array(PANEL * d); // w of each panel column, as rows
  for (let j0 = 0; j0 < d - 2; j0 += PANEL) {
    const nb = Math.min(PANEL, d - 2 - j0);
    W.fill(0);
    reducePanel(A, d, j0, nb, diag, off, V, beta, W);
    // trailing block (rows and columns from t on): A −= V Wᵀ + W Vᵀ, one float64 product
    const t = j0 + nb;
    const mt = d - t;
    if (mt <= 0) continue;
    const L = new Float64Array(mt * 2 * nb); // [mt, 2nb] = [V | W] restricted to rows t..
    const R = new Float64Array(2 * nb * mt); // [2nb, mt] = [W ; V]ᵀ
    for (let q = 0; q < nb; q++) {
      const vq = V.subarray((j0 + q) * d + t, (j0 + q + 1) * d);
      const wq = W.subarray(q * d + t, (q + 1) * d);
      R.set(wq, q * mt);
      R.set(vq, (nb + q) * mt);
      for (let r = 0; r < mt; r++) {
        L[r * 2 * nb + q] = vq[r];
        L[r * 2 * nb + nb + q] = wq[r];
      }
    }
    const X = await matmulF64(L, R, mt, 2 * nb, mt);
    for (let r = 0; r < mt; r++) {
      const row = (t + r) * d + t;
      const xr = r * mt;
      for (let q = 0; q <= r; q++) A[row + q] -= X[xr + q];
    }
  }
  diag[d - 2] = A[(d - 2) * d + d - 2];
  diag[d - 1] = A[(d - 1) * d + d - 1];
  off[d - 1] = A[(d - 1) * d + d - 2];
  return { diag, off, V, beta };
}

/**
 * One panel of the blocked reduction (LAPACK dlatrd, lower): reflectors for columns j0..j0+nb−1
 * into V and beta, their w vectors into W's rows; A's trailing block is left for the caller's
 * rank-2nb update. A plain (not async) function, so that its loops are compiled tight.
 */
function reducePanel(A: Float64Array, d: number, j0: number, nb: number, diag: Float64Array, off: Float64Array, V: Float64Array, beta: Float64Array, W: Float64Array): void {
  const tv = new Float64Array(nb);
  const tw = new Float64Array(nb);
  for (let i = 0; i < nb; i++) {
    const c = j0 + i;
    // bring column c (rows c..) up to date with this panel's earlier columns
    for (let q = 0; q < i; q++) {
      const vq = V.subarray((j0 + q) * d, (j0 + q + 1) * d);
      const wq = W.subarray(q * d, (q + 1) * d);
      const vc = vq[c], wc = wq[c];
      for (let r = c; r < d; r++) A[r * d + c] -= vq[r] * wc + wq[r] * vc;
    }
    diag[c] = A[c * d + c];
    let alpha = 0;
    for (let r = c + 1; r < d; r++) alpha += A[r * d + c] * A[r * d + c];
    alpha = Math.sqrt(alpha);
    const x0 = A[(c + 1) * d + c];
    if (alpha === 0 || alpha === Math.abs(x0)) {
      off[c + 1] = x0; // already tridiagonal in this column: no reflection (v = w = 0)
      continue;
    }
    const sgn = x0 >= 0 ? 1 : -1;
    off[c + 1] = -sgn * alpha;
    const v = V.subarray(c * d, c * d + d);
    for (let r = c + 1; r < d; r++) v[r] = A[r * d + c];
    v[c + 1] = x0 + sgn * alpha;
    const b = 1 / (alpha * Math.abs(v[c + 1]));
    beta[c] = b;
    // w = A_trail·v with A_trail as of the panel's start (lower triangle, rows contiguous) …
    const w = W.subarray(i * d, (i + 1) * d);
    for (let r = c + 1; r < d; r++) {
      const row = r * d;
      const vr = v[r];
      let acc = 0;
      for (let q = c + 1; q < r; q++) {
        const a = A[row + q];
        acc += a * v[q];
        w[q] += a * vr;
      }
      w[r] += acc + A[row + r] * vr;
    }
    // … minus this panel's pending updates: w −= V (Wᵀv) + W (Vᵀv)
    for (let q = 0; q < i; q++) {
      const vq = V.subarray((j0 + q) * d, (j0 + q + 1) * d);
      const wq = W.subarray(q * d, (q + 1) * d);
      let sv = 0, sw = 0;
      for (let r = c + 1; r < d; r++) {
        sw += wq[r] * v[r];
        sv += vq[r] * v[r];
      }
      tw[q] = sw;
      tv[q] = sv;
    }
    for (let q = 0; q < i; q++) {
      const vq = V.subarray((j0 + q) * d, (j0 + q + 1) * d);
      const wq = W.subarray(q * d, (q + 1) * d);
      const a = tw[q], bb = tv[q];
      for (let r = c + 1; r < d; r++) w[r] -= vq[r] * a + wq[r] * bb;
    }
    let wv = 0;
    for (let r = c + 1; r < d; r++) {
      w[r] *= b;
      wv += w[r] * v[r];
    }
    const K = 0.5 * b * wv;
    for (let r = c + 1; r < d; r++) w[r] -= K * v[r];
  }
}

/**
 * Eigenvectors of the symmetric tridiagonal (diag, off[i] = T[i][i−1]) for the given eigenvalues
 * (descending), by inverse iteration with partial-pivoting LU; vectors of eigenvalues closer
 * than 1e-3·‖T‖ are orthogonalised against each other (LAPACK dstein's rule). Rows of [k, d].
 */
function tridiagonalEigenvectors(diag: Float64Array, off: Float64Array, d: number, values: Float64Array, tnorm: number): Float64Array {
  const k = values.length;
  const Z = new Float64Array(k * d);
  const dd = new Float64Array(d), du = new Float64Array(d), du2 = new Float64Array(d), dl = new Float64Array(d);
  const piv = new Uint8Array(d);
  const eps = 2 ** -52;
  const ortol = 1e-3 * tnorm;
  const tiny = eps * Math.max(tnorm, Number.MIN_VALUE);
  let clusterStart = 0;
  let seed = 1;
  for (let q = 0; q < k; q++) {
    let lambda = values[q];
    if (q > 0 && values[q - 1] - values[q] >= ortol) clusterStart = q;
    // equal eigenvalues: separate the shifts a little so the LU differs (dstein's pertol)
    if (q > clusterStart && values[q - 1] - lambda < 10 * eps * Math.abs(lambda)) lambda = values[q - 1] - 10 * eps * Math.abs(lambda);
    // LU of T − λI with partial pivoting (LAPACK dgttrf)
    for (let i = 0; i < d; i++) {
      dd[i] = diag[i] - lambda;
      du[i] = i + 1 < d ? off[i + 1] : 0;
      dl[i] = i + 1 < d ? off[i + 1] : 0;
      du2[i] = 0;
    }
    for (let i = 0; i < d - 1; i++) {
      if (Math.abs(dd[i]) >= Math.abs(dl[i])) {
        piv[i] = 0;
        if (dd[i] === 0) dd[i] = tiny;
        const f = dl[i] / dd[i];
        dl[i] = f;
        dd[i + 1] -= f * du[i];
      } else {
        piv[i] = 1;
        const f = dd[i] / dl[i];
        dd[i] = dl[i];
        dl[i] = f;
        const t = du[i];
        du[i] = dd[i + 1];
        dd[i + 1] = t - f * dd[i + 1];
        if (i < d - 2) {
          du2[i] = du[i + 1];
          du[i + 1] = -f * du[i + 1];
        }
      }
    }
    if (dd[d - 1] === 0) dd[d - 1] = tiny;
    const z = Z.subarray(q * d, q * d + d);
    for (let i = 0; i < d; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      z[i] = (seed / 4294967296) - 0.5;
    }
    for (let it = 0; it < 4; it++) {
      // solve (T − λI) x = z in place
      for (let i = 0; i < d - 1; i++) {
        if (piv[i] === 0) z[i + 1] -= dl[i] * z[i];
        else {
          const t = z[i];
          z[i] = z[i + 1];
          z[i + 1] = t - dl[i] * z[i];
        }
      }
      z[d - 1] /= dd[d - 1];
      z[d - 2] = (z[d - 2] - du[d - 2] * z[d - 1]) / dd[d - 2];
      for (let i = d - 3; i >= 0; i--) z[i] = (z[i] - du[i] * z[i + 1] - du2[i] * z[i + 2]) / dd[i];
      // orthogonalise against the cluster (twice is enough), then normalise
      for (let pass = 0; pass < 2; pass++)
        for (let o = clusterStart; o < q; o++) {
          const c = dot(z, 0, Z, o * d, d);
          for (let i = 0; i < d; i++) z[i] -= c * Z[o * d + i];
        }
      let nr = Math.sqrt(dot(z, 0, z, 0, d));
      if (!(nr > 0) || !Number.isFinite(nr)) {
        // degenerate start: restart from a unit vector
        z.fill(0);
        z[(q * 7919) % d] = 1;
        nr = 1;
      }
      for (let i = 0; i < d; i++) z[i] /= nr;
    }
  }
  return Z;
}

export interface RightSvd {
  /** Singular values, descending. */
  s: Float64Array; // [min(n, d)]
  /** Right singular vectors as rows (numpy's `vh`). */
  vt: Float64Array; // [min(n, d), d]
}

/**
 * Singular values and right singular vectors of X [n, d] from the eigendecomposition of XᵀX
 * (or of a Gram passed in). Fine for the leading subspace, which is all TextSpan needs.
 */
export function rightSvd(X: Vec | null, n: number, d: number, G?: Float64Array): RightSvd {
  const g = G ?? gram(X as Vec, n, d);
  const { values, vectors } = symEig(g, d);
  const r = Math.min(n, d);
  const s = new Float64Array(r);
  for (let i = 0; i < r; i++) s[i] = Math.sqrt(Math.max(values[i], 0));
  return { s, vt: vectors.slice(0, r * d) };
}

/** Indices of the k largest values (ties: lower index first), in descending order of value. */
export function topK(values: ArrayLike<number>, k: number, offset = 0, len = values.length - offset): number[] {
  const kk = Math.min(k, len);
  const idx: number[] = [];
  const val: number[] = [];
  for (let i = 0; i < len; i++) {
    const v = values[offset + i];
    if (idx.length === kk && !(v > val[kk - 1])) continue;
    let p = idx.length === kk ? kk - 1 : idx.length;
    while (p > 0 && v > val[p - 1]) {
      if (p < kk) {
        idx[p] = idx[p - 1];
        val[p] = val[p - 1];
      }
      p--;
    }
    idx[p] = i;
    val[p] = v;
  }
  return idx;
}

/** A row-major array with its shape; `F32` tensors from src/tensor.ts fit. */
export interface Mat {
  shape: readonly number[];
  data: Float32Array | Float64Array;
}

/** Check a Mat has `rank` dimensions (and any fixed sizes given) and return its shape. */
export function dims(what: string, x: Mat, names: string[], fixed: Record<string, number> = {}): number[] {
  if (!x || !x.shape || !x.data) throw new ShapeError(`${what}: expected {shape, data}, got ${typeof x}`);
  if (x.shape.length !== names.length)
    throw new ShapeError(`${what}: expected shape [${names.join(', ')}], got [${x.shape.join(', ')}]`);
  let size = 1;
  for (const v of x.shape) size *= v;
  if (x.data.length !== size)
    throw new ShapeError(`${what}: data has ${x.data.length} elements but shape [${x.shape.join(', ')}] needs ${size}`);
  names.forEach((nm, i) => {
    if (nm in fixed && fixed[nm] !== x.shape[i])
      throw new ShapeError(`${what}: dimension ${nm} is ${x.shape[i]}, expected ${fixed[nm]}`);
  });
  return [...x.shape];
}
