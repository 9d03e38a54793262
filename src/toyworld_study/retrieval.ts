// (c) Property retrieval (paper §5.1): nearest neighbours by one head's term; precision@k of
// neighbours that share the query's value of a family, per head and per family, next to the
// whole embedding's and to chance.

import { headSum, nearestNeighbours, precisionAtK } from '../analyses/retrieval.ts';
import type { F32 } from '../tensor.ts';
import { FAMILIES } from '../toyworld/index.ts';

export interface HeadRetrieval {
  layer: number;
  head: number;
  /** precision@k per family. */
  precision: Record<string, number>;
  /** The first `keep` neighbours of the first `queries` rows (for figures). */
  examples: Int32Array;
}

export interface RetrievalResult {
  k: number;
  heads: HeadRetrieval[];
  whole: Record<string, number>;
  /** Expected precision of random neighbours: Σ_v p_v² over the set (self excluded ≈). */
  chance: Record<string, number>;
  wholeExamples: Int32Array;
  /** Rows used as example queries and neighbours kept per query. */
  queries: number[];
  keep: number;
}

function precisions(emb: Float32Array, n: number, d: number, k: number, labels: Record<string, Int32Array>) {
  const nb = nearestNeighbours({ shape: [n, d], data: emb }, { shape: [n, d], data: emb }, k, { excludeSelf: true });
  const precision: Record<string, number> = {};
  for (const f of FAMILIES) precision[f] = precisionAtK(nb, labels[f], k);
  return { precision, nb };
}

export function chanceLevel(labels: Int32Array): number {
  const n = labels.length;
  const counts = new Map<number, number>();
  for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
  // A random other row shares the value with probability (c−1)/(n−1), averaged over rows.
  let s = 0;
  for (const c of counts.values()) s += (c * (c - 1)) / (n - 1);
  return s / n;
}

export function propertyRetrieval(
  attn: F32,
  imageFeatures: F32,
  labels: Record<string, Int32Array>,
  heads: { layer: number; head: number }[],
  opts: { k?: number; queries?: number[]; keep?: number } = {},
): RetrievalResult {
  const [n, , , d] = attn.shape;
  const k = Math.min(opts.k ?? 10, n - 1);
  const queries = (opts.queries ?? [0, 1, 2]).filter((q) => q < n);
  const keep = Math.min(opts.keep ?? 6, k);
  const examples = (nb: { indices: Int32Array; k: number }) => {
    const out = new Int32Array(queries.length * keep);
    queries.forEach((q, i) => {
      for (let j = 0; j < keep; j++) out[i * keep + j] = nb.indices[q * nb.k + j];
    });
    return out;
  };
  const out: HeadRetrieval[] = heads.map((h) => {
    const { precision, nb } = precisions(headSum(attn, [[h.layer, h.head]]), n, d, k, labels);
    return { layer: h.layer, head: h.head, precision, examples: examples(nb) };
  });
  const w = precisions(imageFeatures.data, n, d, k, labels);
  const chance: Record<string, number> = {};
  for (const f of FAMILIES) chance[f] = chanceLevel(labels[f]);
  return { k, heads: out, whole: w.precision, chance, wholeExamples: examples(w.nb), queries, keep };
}
