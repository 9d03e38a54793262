// A small inverted-file (IVF) index for cosine nearest neighbours on large stores: k-means
// centroids over unit rows, each row listed under its nearest centroid, a query scans the
// rows of its `nprobe` nearest lists. Approximate; brute force is exact and fine below ~100k rows.

import { dot, matmulABt } from './linalg.ts';
import { mulberry32 } from '../rng.ts';

export interface IvfIndex {
  d: number;
  nlist: number;
  centroids: Float32Array; // [nlist, d], unit rows
  lists: Int32Array[]; // row indices per centroid
  base: Float32Array; // [n, d] unit rows
}


function assign(base: Float32Array, n: number, d: number, C: Float32Array, nlist: number): Int32Array {
  const out = new Int32Array(n);
  const B = 1024;
  const sims = new Float32Array(B * nlist);
  for (let r0 = 0; r0 < n; r0 += B) {
    const rn = Math.min(B, n - r0);
    matmulABt(base.subarray(r0 * d, (r0 + rn) * d), rn, d, C, nlist, sims.subarray(0, rn * nlist));
    for (let i = 0; i < rn; i++) {
      let best = 0;
      for (let c = 1; c < nlist; c++) if (sims[i * nlist + c] > sims[i * nlist + best]) best = c;
      out[r0 + i] = best;
    }
  }
  return out;
}

/** Spherical k-means on (a sample of) the unit rows base [n, d], then every row assigned. */
export function buildIvf(base: Float32Array, n: number, d: number, opts: { nlist: number; iters?: number; seed?: number; sample?: number }): IvfIndex {
  const nlist = Math.max(1, Math.min(opts.nlist, n));
  const rng = mulberry32(opts.seed ?? 0);
  const sampleN = Math.min(n, opts.sample ?? Math.max(nlist * 64, 10_000));
  const rows = sampleN === n ? Array.from({ length: n }, (_, i) => i) : Array.from({ length: sampleN }, () => Math.floor(rng() * n));
  const S = new Float32Array(sampleN * d);
  rows.forEach((r, i) => S.set(base.subarray(r * d, (r + 1) * d), i * d));
  const C = new Float32Array(nlist * d);
  for (let c = 0; c < nlist; c++) {
    const r = Math.floor(rng() * sampleN);
    C.set(S.subarray(r * d, (r + 1) * d), c * d);
  }
  for (let it = 0; it < (opts.iters ?? 10); it++) {
    const a = assign(S, sampleN, d, C, nlist);
    const acc = new Float64Array(nlist * d);
    const cnt = new Int32Array(nlist);
    for (let i = 0; i < sampleN; i++) {
      cnt[a[i]]++;
      for (let j = 0; j < d; j++) acc[a[i] * d + j] += S[i * d + j];
    }
    for (let c = 0; c < nlist; c++) {
      if (cnt[c] === 0) {
        const r = Math.floor(rng() * sampleN); // re-seed an empty list
        C.set(S.subarray(r * d, (r + 1) * d), c * d);
        continue;
      }
      const nr = Math.sqrt(dot(acc, c * d, acc, c * d, d)) || 1;
      for (let j = 0; j < d; j++) C[c * d + j] = acc[c * d + j] / nr;
    }
  }
  const a = assign(base, n, d, C, nlist);
  const counts = new Int32Array(nlist);
  for (let i = 0; i < n; i++) counts[a[i]]++;
  const lists = Array.from(counts, (c) => new Int32Array(c));
  const fill = new Int32Array(nlist);
  for (let i = 0; i < n; i++) lists[a[i]][fill[a[i]]++] = i;
  return { d, nlist, centroids: C, lists, base };
}

/** k best rows for a unit query q [d] among the `nprobe` nearest lists, best first. */
export function searchIvf(ix: IvfIndex, q: ArrayLike<number>, k: number, nprobe: number): { indices: number[]; scores: number[] } {
  const d = ix.d;
  const cs = Array.from({ length: ix.nlist }, (_, c) => ({ c, s: dot(ix.centroids, c * d, q, 0, d) })).sort((a, b) => b.s - a.s);
  const best: { i: number; s: number }[] = [];
  for (const { c } of cs.slice(0, Math.max(1, nprobe))) {
    for (const i of ix.lists[c]) {
      const s = dot(ix.base, i * d, q, 0, d);
      if (best.length === k && s <= best[k - 1].s) continue;
      let p = best.length < k ? best.length : k - 1;
      if (best.length < k) best.push({ i, s });
      while (p > 0 && s > best[p - 1].s) {
        best[p] = best[p - 1];
        p--;
      }
      best[p] = { i, s };
    }
  }
  return { indices: best.map((b) => b.i), scores: best.map((b) => b.s) };
}
