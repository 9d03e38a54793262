// Each neuron's first PC as a sparse combination of texts (SPEC §5): the reference's dictionary
// (compute_sparse_decomposition.py:95-100) and scikit-learn's SparseCoder(transform_algorithm='omp')
// (decompose.py:95-101 → sklearn.linear_model._omp._gram_omp), in float64 with float32's ε as the
// stopping threshold as scikit-learn uses for float32 inputs.

import { ShapeError, UsageError } from '../errors.ts';

/** float32 machine epsilon: sklearn's `np.finfo(Gram.dtype).eps` for the reference's float32 arrays. */
export const OMP_EPS = 2 ** -23;

/**
 * D = 100 · (F − mean_rows F) / ‖F − mean_rows F‖ with the norm taken over texts per embedding
 * dimension (axis 0), so the atoms (rows) are not unit vectors. F [T, d] → D [T, d], computed in
 * float32 in numpy's order (sequential sums down each column), which reproduces the reference's
 * array bit for bit. A global scale of F cancels, so normalised (cliplens texts) and ×100
 * (reference) features give the same atoms.
 */
export function textDictionary(F: ArrayLike<number>, T: number, d: number, coefficient = 100): Float64Array {
  if (F.length !== T * d) throw new ShapeError(`text features have ${F.length} values, expected ${T}×${d}`);
  if (T < 2) throw new UsageError(`a text dictionary needs at least 2 texts, got ${T}`);
  const fr = Math.fround;
  const mean = new Float32Array(d);
  for (let t = 0; t < T; t++) for (let c = 0; c < d; c++) mean[c] = fr(mean[c] + F[t * d + c]);
  for (let c = 0; c < d; c++) mean[c] = fr(mean[c] / T);
  const X = new Float32Array(T * d);
  const norm = new Float32Array(d);
  for (let t = 0; t < T; t++) {
    for (let c = 0; c < d; c++) {
      const x = fr(F[t * d + c] - mean[c]);
      X[t * d + c] = x;
      norm[c] = fr(norm[c] + fr(x * x));
    }
  }
  for (let c = 0; c < d; c++) {
    norm[c] = fr(Math.sqrt(norm[c]));
    if (!(norm[c] > 0)) throw new UsageError(`text features are constant along embedding dimension ${c}: the dictionary's column norm is 0`);
  }
  const D = new Float64Array(T * d);
  for (let t = 0; t < T; t++) for (let c = 0; c < d; c++) D[t * d + c] = fr(fr(coefficient * X[t * d + c]) / norm[c]);
  return D;
}

export interface OmpCode {
  /** Selected atoms in the order OMP picked them. */
  atoms: number[];
  /** Their least-squares coefficients. */
  coefs: number[];
}

/**
 * Orthogonal matching pursuit of x on the rows of D [T, d], as sklearn's _gram_omp with
 * n_nonzero_coefs = k and tol = None: pick argmax |α| (α = D(x − D_Sᵀγ)), stop on a repeated atom,
 * α² < ε, or a dependent atom (Cholesky pivot ≤ ε); γ = least squares on the picked atoms.
 * `gramColumn(i)` gives column i of D Dᵀ (callers cache them across neurons).
 */
export function omp(c: Float64Array, gramColumn: (i: number) => Float64Array, k: number, eps = OMP_EPS): OmpCode {
  const T = c.length;
  const atoms: number[] = [];
  const cols: Float64Array[] = [];
  const L = new Float64Array(k * k); // lower-triangular Cholesky factor of G_SS
  let gamma = new Float64Array(0);
  let alpha = c;
  while (atoms.length < k) {
    let lam = 0;
    let best = -1;
    for (let i = 0; i < T; i++) {
      const a = Math.abs(alpha[i]);
      if (a > best) {
        best = a;
        lam = i;
      }
    }
    if (atoms.includes(lam) || alpha[lam] ** 2 < eps) break;
    const n = atoms.length;
    const col = gramColumn(lam);
    if (n > 0) {
      // L[n, :n] = L⁻¹ G_{S, λ}; pivot G_λλ − ‖L[n, :n]‖².
      let v = 0;
      for (let i = 0; i < n; i++) {
        let s = col[atoms[i]];
        for (let j = 0; j < i; j++) s -= L[i * k + j] * L[n * k + j];
        s /= L[i * k + i];
        L[n * k + i] = s;
        v += s * s;
      }
      const pivot = col[lam] - v;
      if (pivot <= eps) break;
      L[n * k + n] = Math.sqrt(pivot);
    } else {
      L[0] = Math.sqrt(col[lam]);
    }
    atoms.push(lam);
    cols.push(col);
    // γ = (L Lᵀ)⁻¹ c_S.
    const m = atoms.length;
    const y = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      let s = c[atoms[i]];
      for (let j = 0; j < i; j++) s -= L[i * k + j] * y[j];
      y[i] = s / L[i * k + i];
    }
    gamma = new Float64Array(m);
    for (let i = m - 1; i >= 0; i--) {
      let s = y[i];
      for (let j = i + 1; j < m; j++) s -= L[j * k + i] * gamma[j];
      gamma[i] = s / L[i * k + i];
    }
    alpha = Float64Array.from(c);
    for (let j = 0; j < m; j++) {
      const g = gamma[j], cj = cols[j];
      for (let i = 0; i < T; i++) alpha[i] -= cj[i] * g;
    }
  }
  return { atoms, coefs: Array.from(gamma) };
}

/** One neuron's description: [text index, coefficient, text], largest |coefficient| first. */
export type Description = [number, number, string][];

export interface DescribeResult {
  /** Per neuron, `components` entries in the reference JSON's order. */
  descriptions: Description[];
  /** [M, d] code_n · D, what --evaluate puts in place of the PC (not unit norm). */
  reconstruction: Float64Array;
  /** Per neuron: how many atoms OMP chose (== components unless it stopped early). */
  nonzero: Int32Array;
  /** Per neuron: cosine between the PC and its reconstruction. */
  cosine: Float64Array;
}

/**
 * Sparse text decomposition of pcs [M, d] over text features [T, d] with `components` atoms per
 * neuron (compute_sparse_decomposition.py:122-151). Entries beyond the atoms OMP chose (it stopped
 * early) are listed with coefficient 0, as the reference's argsort lists them.
 */
export function describeNeurons(pcs: ArrayLike<number>, M: number, features: ArrayLike<number>, T: number, d: number, texts: string[], components: number, onProgress?: (done: number) => void): DescribeResult {
  if (!Number.isInteger(components) || components < 1) throw new UsageError(`--components must be a positive integer, got ${components}`);
  if (components > T) throw new UsageError(`--components ${components} is more than the ${T} texts (OMP cannot pick more atoms than there are texts)`);
  if (texts.length !== T) throw new ShapeError(`${texts.length} texts for ${T} text features`);
  const D = textDictionary(features, T, d);
  const cache = new Map<number, Float64Array>();
  const gramColumn = (i: number) => {
    let col = cache.get(i);
    if (!col) {
      col = new Float64Array(T);
      for (let t = 0; t < T; t++) {
        let s = 0;
        for (let e = 0; e < d; e++) s += D[t * d + e] * D[i * d + e];
        col[t] = s;
      }
      cache.set(i, col);
    }
    return col;
  };
  const descriptions: Description[] = [];
  const reconstruction = new Float64Array(M * d);
  const nonzero = new Int32Array(M);
  const cosine = new Float64Array(M);
  const c = new Float64Array(T);
  for (let n = 0; n < M; n++) {
    for (let t = 0; t < T; t++) {
      let s = 0;
      for (let e = 0; e < d; e++) s += D[t * d + e] * pcs[n * d + e];
      c[t] = s;
    }
    const code = omp(c, gramColumn, components);
    nonzero[n] = code.atoms.length;
    const order = code.atoms.map((a, i) => [a, code.coefs[i]] as [number, number]).sort((x, y) => Math.abs(y[1]) - Math.abs(x[1]));
    // Zeros after the chosen atoms, highest index first (what a stable ascending argsort reversed lists).
    for (let t = T - 1; order.length < components; t--) if (!code.atoms.includes(t)) order.push([t, 0]);
    descriptions.push(order.map(([t, v]) => [t, Math.fround(v), texts[t]]));
    for (let e = 0; e < d; e++) {
      let s = 0;
      code.atoms.forEach((a, i) => (s += code.coefs[i] * D[a * d + e]));
      reconstruction[n * d + e] = s;
    }
    cosine[n] = pcCosine(pcs, reconstruction, n, d);
    if (n % 64 === 63 || n === M - 1) onProgress?.(n + 1);
  }
  return { descriptions, reconstruction, nonzero, cosine };
}

/** Cosine between row n of the PCs and of their reconstructions (the reconstruction check). */
export function pcCosine(pcs: ArrayLike<number>, recon: ArrayLike<number>, n: number, d: number): number {
  let pr = 0, rr = 0, pp = 0;
  for (let e = 0; e < d; e++) {
    pr += recon[n * d + e] * pcs[n * d + e];
    rr += recon[n * d + e] ** 2;
    pp += pcs[n * d + e] ** 2;
  }
  return rr > 0 && pp > 0 ? pr / Math.sqrt(rr * pp) : 0;
}

/** The reference JSON: { "n": [[index, coefficient, text], …] } (as json.dump writes it). */
export function descriptionsJson(descriptions: Description[]): string {
  const parts = descriptions.map((d, n) => `${JSON.stringify(String(n))}: [${d.map(([i, c, t]) => `[${i}, ${pyFloat(c)}, ${pyString(t)}]`).join(', ')}]`);
  return `{${parts.join(', ')}}`;
}

/** json.dumps of a string (ensure_ascii: non-ASCII as \uXXXX). */
function pyString(s: string): string {
  return JSON.stringify(s).replace(/[\u0080-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Python's repr of a float (shortest round-trip, as JSON.stringify, but with '.0' and 'e-05' forms). */
function pyFloat(x: number): string {
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : x < 0 ? '-Infinity' : 'NaN';
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return `${x}.0`;
  const s = String(x);
  const m = /^(-?[\d.]+)e([+-])(\d+)$/.exec(s);
  if (m) return `${m[1]}e${m[2]}${m[3].padStart(2, '0')}`;
  const a = Math.abs(x);
  if (a < 1e-4) {
    // JS writes 0.00001234 as 0.00001234 until 1e-7; Python switches to exponent form below 1e-4.
    const [mant, exp] = x.toExponential().split('e');
    return `${mant}e-${exp.slice(1).padStart(2, '0')}`;
  }
  return s;
}

/** Read a reference/cliplens description JSON back: { "n": [[index, coefficient, text], …] }. */
export function parseDescriptions(json: unknown, what: string): Map<number, Description> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new UsageError(`${what} is not a JSON object of neurons`);
  const out = new Map<number, Description>();
  for (const [k, v] of Object.entries(json as Record<string, unknown>)) {
    if (!/^\d+$/.test(k) || !Array.isArray(v)) throw new UsageError(`${what}: entry '${k}' is not "neuron": [[index, coefficient, text], …]`);
    out.set(Number(k), v.map((e, i) => {
      if (!Array.isArray(e) || e.length !== 3 || !Number.isInteger(e[0]) || typeof e[1] !== 'number' || typeof e[2] !== 'string') throw new UsageError(`${what}: neuron ${k} entry ${i} is not [index, coefficient, text]`);
      return [e[0], e[1], e[2]] as [number, number, string];
    }));
  }
  return out;
}
