// Property-based retrieval (paper §5.1): nearest neighbours by cosine similarity using one head's
// term (or the sum over a set of heads) instead of the whole embedding.

import { type Mat, dims, matmulABt, normalizeRows } from './linalg.ts';
import { ShapeError } from '../errors.ts';

/** Σ over the chosen heads of attn[:, l, h, :] → [n, d]. attn is [n, L, H, d]. */
export function headSum(attn: Mat, heads: ReadonlyArray<readonly [number, number]>): Float32Array {
  const [n, L, H, d] = dims('attention terms', attn, ['n', 'L', 'H', 'd']);
  if (heads.length === 0) throw new RangeError('headSum: no heads given');
  for (const [l, h] of heads)
    if (!Number.isInteger(l) || l < 0 || l >= L || !Number.isInteger(h) || h < 0 || h >= H)
      throw new RangeError(`head [${l}, ${h}] out of range: layers 0..${L - 1}, heads 0..${H - 1}`);
  const out = new Float32Array(n * d);
  const acc = new Float64Array(d);
  for (let b = 0; b < n; b++) {
    acc.fill(0);
    for (const [l, h] of heads) {
      const o = ((b * L + l) * H + h) * d;
      for (let j = 0; j < d; j++) acc[j] += attn.data[o + j];
    }
    for (let j = 0; j < d; j++) out[b * d + j] = acc[j];
  }
  return out;
}

export interface Neighbours {
  /** Base indices of the k nearest, best first. */
  indices: Int32Array; // [q, k]
  /** Their similarities (cosine, or dot product). */
  scores: Float32Array; // [q, k]
  k: number;
}

export interface NeighbourOptions {
  /** Queries are the base itself (row i of query = row i of base): skip each one's own row. */
  excludeSelf?: boolean;
  /** Similarity: cosine (default) or the plain dot product (the reference's nns.ipynb). */
  score?: 'cosine' | 'dot';
}

const QB = 64; // query rows per block
const NB = 512; // base rows per block

/**
 * k nearest base rows of every query row by cosine similarity, or dot product with
 * `score: 'dot'` (brute force, blocked). query [q, d], base [n, d]; ties resolved by lower base index.
 */
export function nearestNeighbours(query: Mat, base: Mat, k: number, opts: NeighbourOptions = {}): Neighbours {
  const [q, d] = dims('query', query, ['q', 'd']);
  const [n] = dims('base', base, ['n', 'd'], { d });
  const avail = opts.excludeSelf ? n - 1 : n;
  if (opts.excludeSelf && q !== n) throw new ShapeError(`excludeSelf needs query and base to be the same rows, got ${q} and ${n}`);
  if (!Number.isInteger(k) || k < 1 || k > avail) throw new RangeError(`k must be in 1..${avail}, got ${k}`);
  const dot = opts.score === 'dot';
  const Q = dot ? query.data : normalizeRows(query.data, q, d);
  const B = dot ? base.data : query.data === base.data ? Q : normalizeRows(base.data, n, d);
  const indices = new Int32Array(q * k).fill(-1);
  const scores = new Float32Array(q * k).fill(-Infinity);
  const best = new Float64Array(q * k).fill(-Infinity); // full-precision scores for ordering
  const sims = new Float64Array(QB * NB);
  for (let q0 = 0; q0 < q; q0 += QB) {
    const qn = Math.min(QB, q - q0);
    const Qb = Q.subarray(q0 * d, (q0 + qn) * d);
    for (let n0 = 0; n0 < n; n0 += NB) {
      const nn = Math.min(NB, n - n0);
      matmulABt(Qb, qn, d, B.subarray(n0 * d, (n0 + nn) * d), nn, sims.subarray(0, qn * nn));
      for (let a = 0; a < qn; a++) {
        const qi = q0 + a;
        const o = qi * k;
        for (let c = 0; c < nn; c++) {
          const bi = n0 + c;
          if (opts.excludeSelf && bi === qi) continue;
          const v = sims[a * nn + c];
          if (!(v > best[o + k - 1])) continue;
          let p = k - 1;
          while (p > 0 && v > best[o + p - 1]) {
            best[o + p] = best[o + p - 1];
            indices[o + p] = indices[o + p - 1];
            p--;
          }
          best[o + p] = v;
          indices[o + p] = bi;
        }
      }
    }
  }
  for (let i = 0; i < best.length; i++) scores[i] = best[i];
  return { indices, scores, k };
}

/**
 * Mean over queries of the fraction of the first k neighbours whose label equals the query's.
 * `labels` are base labels; query labels default to the same array (queries = base).
 */
export function precisionAtK(
  neighbours: Neighbours,
  labels: ArrayLike<number>,
  k: number,
  queryLabels: ArrayLike<number> = labels,
): number {
  const K = neighbours.k;
  const q = neighbours.indices.length / K;
  if (!Number.isInteger(k) || k < 1 || k > K) throw new RangeError(`precision@k: k must be in 1..${K}, got ${k}`);
  if (queryLabels.length !== q) throw new ShapeError(`precision@k: ${queryLabels.length} query labels for ${q} queries`);
  if (q === 0) throw new RangeError('precision@k: no queries');
  let sum = 0;
  for (let i = 0; i < q; i++) {
    let hit = 0;
    for (let j = 0; j < k; j++) {
      const b = neighbours.indices[i * K + j];
      if (b < 0 || b >= labels.length) throw new RangeError(`precision@k: neighbour index ${b} has no label (${labels.length} labels)`);
      if (labels[b] === queryLabels[i]) hit++;
    }
    sum += hit / k;
  }
  return sum / q;
}
