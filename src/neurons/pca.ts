// First principal component of each neuron's second-order effects, as compute_pcas.py (SPEC §3):
//   μ_n = mean_b E[b,n];  r_b = ‖E[b,n] − μ_n‖;  I = the k images of largest r (all if B < k);
//   X = (E[I,n] − μ_n) (not re-centred);  v = first right singular vector of X;
//   pc_n = v if #{i ∈ I : X_i·v > 0} > k // 2 else −v   (k the argument, not |I|).
// `norms` = the top-k r ascending; column 0 is the significance threshold τ_n.
//
// Streaming over an EffectsSource in three passes (means, norms with a running top-k per neuron,
// the top-k rows of blocks of neurons), so memory is bounded by M·k·d, never by the dataset.
// The sign rule decides only when one of ±v has more than k // 2 positive rows; otherwise the
// reference returns −vh[0] with whatever sign LAPACK chose, which no other SVD reproduces:
// such neurons are counted in `undecided`.

import { symEig } from '../analyses/linalg.ts';
import { f32, i32, type F32, type Tensor } from '../tensor.ts';
import type { EffectsSource, Provenance } from './store.ts';
import { UsageError } from '../errors.ts';

export interface NeuronPca {
  /** [M, d] unit first PC per neuron, sign by the reference's rule. */
  pc: F32;
  /** [M, min(k, B)] the top-k centred norms, ascending (column 0 = τ_n). */
  norms: F32;
  /** [M, d] μ_n. */
  mean: F32;
  /** [M, min(k, B)] the images of those norms, largest first (visualize_neurons.ipynb's top images). */
  topImages: Tensor<Int32Array>;
  /** [M] 1 where the sign rule decided the PC's sign, 0 where the reference's sign is LAPACK's. */
  signDecided: Uint8Array;
  topK: number;
  images: number;
  provenance: Provenance;
}

export interface PcaOptions {
  /** Bytes the gathered top-k rows may take at once (default 256 MB); more neurons → more passes. */
  memoryBudget?: number;
  onProgress?: (stage: string, done: number, total: number) => void;
}

/** ‖E[b,n] − μ_n‖ for a block of rows [count, nn, d] against μ [M, d] (rows of neurons n0..). */
export function centredNorms(E: Float32Array, count: number, n0: number, nn: number, d: number, mean: ArrayLike<number>): Float64Array {
  const out = new Float64Array(count * nn);
  for (let b = 0; b < count; b++) {
    for (let n = 0; n < nn; n++) {
      const eo = (b * nn + n) * d;
      const mo = (n0 + n) * d;
      let s = 0;
      for (let c = 0; c < d; c++) {
        const x = E[eo + c] - mean[mo + c];
        s += x * x;
      }
      out[b * nn + n] = Math.sqrt(s);
    }
  }
  return out;
}

/**
 * μ [M, d] over every image of the source, summed in float64 and rounded to float32 (the precision
 * the reference keeps and the PCA file stores), so norms recomputed later from the stored mean are
 * the same numbers as the thresholds.
 */
export async function effectMeans(src: EffectsSource, onProgress?: PcaOptions['onProgress']): Promise<Float64Array> {
  const { B, M, d } = src;
  const sum = new Float64Array(M * d);
  for (let b0 = 0; b0 < B; b0 += src.chunk) {
    const count = Math.min(src.chunk, B - b0);
    const E = await src.read(b0, count);
    for (let b = 0; b < count; b++) {
      const o = b * M * d;
      for (let i = 0; i < M * d; i++) sum[i] += E[o + i];
    }
    onProgress?.('means', b0 + count, B);
  }
  for (let i = 0; i < M * d; i++) sum[i] = Math.fround(sum[i] / B);
  return sum;
}

/** Unit first right singular vector of X [n, d] (float64), through the smaller Gram matrix. */
export function firstRightSingular(X: Float64Array, n: number, d: number): Float64Array {
  const v = new Float64Array(d);
  if (n <= d) {
    const G = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        let s = 0;
        for (let c = 0; c < d; c++) s += X[i * d + c] * X[j * d + c];
        G[i * n + j] = s;
        G[j * n + i] = s;
      }
    }
    const u = symEig(G, n).vectors.subarray(0, n);
    for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) v[c] += u[i] * X[i * d + c];
  } else {
    const G = new Float64Array(d * d);
    for (let i = 0; i < n; i++) {
      for (let a = 0; a < d; a++) {
        const xa = X[i * d + a];
        for (let b = 0; b <= a; b++) G[a * d + b] += xa * X[i * d + b];
      }
    }
    for (let a = 0; a < d; a++) for (let b = 0; b < a; b++) G[b * d + a] = G[a * d + b];
    v.set(symEig(G, d).vectors.subarray(0, d));
  }
  let s = 0;
  for (let c = 0; c < d; c++) s += v[c] * v[c];
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
  for (let c = 0; c < d; c++) v[c] *= inv;
  return v;
}

export async function neuronPca(src: EffectsSource, topK: number, opts: PcaOptions = {}): Promise<NeuronPca> {
  if (!Number.isInteger(topK) || topK < 1) throw new UsageError(`--top-k must be a positive integer, got ${topK}`);
  const { B, M, d } = src;
  if (B < 1) throw new UsageError('no images: the effects hold 0 rows');
  const kk = Math.min(topK, B);
  const mean = await effectMeans(src, opts.onProgress);

  // Pass 2: per neuron the kk largest (r, b), ordered as numpy's stable ascending argsort would
  // (equal norms: the later image ranks higher), kept ascending.
  const topR = new Float64Array(M * kk).fill(-Infinity);
  const topB = new Int32Array(M * kk).fill(-1);
  for (let b0 = 0; b0 < B; b0 += src.chunk) {
    const count = Math.min(src.chunk, B - b0);
    const r = centredNorms(await src.read(b0, count), count, 0, M, d, mean);
    for (let b = 0; b < count; b++) {
      for (let n = 0; n < M; n++) {
        const v = r[b * M + n];
        const o = n * kk;
        if (v < topR[o]) continue; // b is later than every kept image: a tie ranks above
        let p = 0;
        while (p + 1 < kk && topR[o + p + 1] <= v) {
          topR[o + p] = topR[o + p + 1];
          topB[o + p] = topB[o + p + 1];
          p++;
        }
        topR[o + p] = v;
        topB[o + p] = b0 + b;
      }
    }
    opts.onProgress?.('norms', b0 + count, B);
  }

  // Pass 3: gather the kk rows of blocks of neurons, then one SVD per neuron.
  const pc = f32([M, d]);
  const signDecided = new Uint8Array(M);
  const budget = opts.memoryBudget ?? 256 << 20;
  const block = Math.max(1, Math.min(M, Math.floor(budget / (kk * d * 8))));
  const half = Math.floor(topK / 2);
  for (let n0 = 0; n0 < M; n0 += block) {
    const n1 = Math.min(M, n0 + block);
    const X = new Float64Array((n1 - n0) * kk * d);
    const byImage = new Map<number, number[]>(); // image → slots (n−n0)·kk + position
    for (let n = n0; n < n1; n++) {
      for (let p = 0; p < kk; p++) {
        const b = topB[n * kk + p];
        let list = byImage.get(b);
        if (!list) byImage.set(b, (list = []));
        list.push((n - n0) * kk + p);
      }
    }
    for (const b of [...byImage.keys()].sort((x, y) => x - y)) {
      const E = await src.read(b, 1, n0, n1);
      for (const slot of byImage.get(b)!) {
        const n = Math.floor(slot / kk);
        for (let c = 0; c < d; c++) X[slot * d + c] = E[n * d + c] - mean[(n0 + n) * d + c];
      }
    }
    for (let n = n0; n < n1; n++) {
      const Xn = X.subarray((n - n0) * kk * d, (n - n0 + 1) * kk * d);
      const v = firstRightSingular(Xn, kk, d);
      let pos = 0, neg = 0;
      for (let i = 0; i < kk; i++) {
        let s = 0;
        for (let c = 0; c < d; c++) s += Xn[i * d + c] * v[c];
        if (s > 0) pos++;
        else if (s < 0) neg++;
      }
      const sign = pos > half ? 1 : -1;
      signDecided[n] = pos > half || neg > half ? 1 : 0;
      for (let c = 0; c < d; c++) pc.data[n * d + c] = sign * v[c];
    }
    opts.onProgress?.('components', n1, M);
  }
  const topImages = i32([M, kk]);
  for (let n = 0; n < M; n++) for (let p = 0; p < kk; p++) topImages.data[n * kk + p] = topB[n * kk + kk - 1 - p];
  return {
    pc,
    norms: f32([M, kk], Float32Array.from(topR)),
    mean: f32([M, d], Float32Array.from(mean)),
    topImages,
    signDecided,
    topK,
    images: B,
    provenance: src.provenance,
  };
}
