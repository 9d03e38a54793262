// The paper's §5.1 on a store: the nearest neighbours of a stored image using only chosen
// heads' terms (each alone, then together) next to the whole embedding, with precision@k
// against the store's labels and groups.

import type { StoreData } from '../io/store.ts';
import { headName, type HeadRef } from '../notation.ts';
import { mulberry32 } from '../rng.ts';
import { buildIvf, searchIvf } from './ann.ts';
import { toKept } from './heads.ts';
import { normalizeRows } from './linalg.ts';
import { headSum, nearestNeighbours, precisionAtK, type Neighbours } from './retrieval.ts';
import { storeRows } from './store_terms.ts';
import { AnalysisError } from '../errors.ts';

export interface RetrievedItem {
  row: number;
  id: string;
  label?: string;
  group?: string;
  score: number;
}

export interface RetrievalView {
  name: string;
  heads?: HeadRef[];
  neighbours: RetrievedItem[];
  /** Mean precision@k over sampled queries against store labels / groups, where the store has them. */
  precision?: { labels?: number; groups?: number; queries: number };
}

export interface RetrievalStudyResult {
  model: string;
  query: { row: number; id: string; label?: string; group?: string };
  k: number;
  /** How neighbours were found. */
  search: string;
  views: RetrievalView[];
}

/** A query given as a row number or an item id (path relative to the dataset root). */
export function resolveQuery(store: StoreData, q: string): number {
  const n = storeRows(store);
  if (/^\d+$/.test(q)) {
    const r = Number(q);
    if (r >= n) throw new AnalysisError(`query row ${r} out of range: the store has rows 0..${n - 1}`);
    return r;
  }
  const item = store.manifest.items.findIndex((it) => it.id === q);
  const row = item >= 0 ? store.index.indexOf(item) : -1;
  if (row < 0) throw new AnalysisError(`query '${q}' is neither a row number nor an image id in the store`);
  return row;
}

export interface RetrievalOptions {
  k?: number;
  /** Rows above which the single query uses an IVF index instead of brute force (default 100 000). */
  indexThreshold?: number;
  /** Queries sampled for precision@k (default 500). */
  precisionQueries?: number;
  seed?: number;
}

function itemOf(store: StoreData, row: number, score: number): RetrievedItem {
  const m = store.manifest;
  const it = m.items[store.index[row]];
  const out: RetrievedItem = { row, id: it.id, score };
  if (it.label !== undefined) out.label = it.label;
  if (it.group !== undefined) out.group = it.group;
  return out;
}

/** Neighbours of every row in `rows` within base, self excluded, k each. */
function neighboursOfRows(base: Float32Array, n: number, d: number, rows: number[], k: number): Neighbours {
  const Q = new Float32Array(rows.length * d);
  rows.forEach((r, i) => Q.set(base.subarray(r * d, (r + 1) * d), i * d));
  const nb = nearestNeighbours({ shape: [rows.length, d], data: Q }, { shape: [n, d], data: base }, k + 1);
  const indices = new Int32Array(rows.length * k);
  const scores = new Float32Array(rows.length * k);
  rows.forEach((r, i) => {
    let o = 0;
    for (let j = 0; j <= k && o < k; j++) {
      const b = nb.indices[i * (k + 1) + j];
      if (b === r) continue;
      indices[i * k + o] = b;
      scores[i * k + o] = nb.scores[i * (k + 1) + j];
      o++;
    }
  });
  return { indices, scores, k };
}

/**
 * Nearest neighbours of one stored image using each chosen head's term, the chosen heads
 * together (when several) and the whole embedding.
 */
export function retrievalStudy(store: StoreData, heads: HeadRef[], queryRow: number, opts: RetrievalOptions = {}): RetrievalStudyResult {
  const m = store.manifest;
  const n = storeRows(store);
  if (n < 2) throw new AnalysisError('retrieval needs at least 2 stored images');
  const k = Math.min(opts.k ?? 10, n - 1);
  if (!(k >= 1)) throw new AnalysisError(`k must be at least 1`);
  const threshold = opts.indexThreshold ?? 100_000;
  const nlist = Math.max(1, Math.round(Math.sqrt(n)));
  const ivf = n > threshold ? { nlist, nprobe: Math.max(1, Math.ceil(nlist / 16)), seed: opts.seed ?? 0 } : undefined;
  const views: { name: string; heads?: HeadRef[]; emb: Float32Array }[] = heads.map((h) => ({ name: `head ${headName(h)}`, heads: [h], emb: headSum(store.attn, toKept(m, [h])) }));
  if (heads.length > 1) views.push({ name: `heads ${heads.map(headName).join('+')}`, heads, emb: headSum(store.attn, toKept(m, heads)) });
  views.push({ name: 'whole embedding', emb: store.imageFeatures.data });
  const rng = mulberry32(opts.seed ?? 0);
  const pq = Math.min(opts.precisionQueries ?? 500, n);
  const sample = pq >= n ? Array.from({ length: n }, (_, i) => i) : randomRows(n, pq, rng);
  return {
    model: m.model.name,
    query: itemOf(store, queryRow, 1),
    k,
    search: ivf ? `IVF index (k-means, ${ivf.nlist} lists, ${ivf.nprobe} probed; ${n} rows > ${threshold})` : 'brute force (exact cosine)',
    views: views.map((v) => retrievalView(store, v, queryRow, k, sample, ivf)),
  };
}

/** One view's neighbours of the query (by IVF index when given, else exact) and its precision@k over the sampled queries. */
function retrievalView(
  store: StoreData,
  v: { name: string; heads?: HeadRef[]; emb: Float32Array },
  queryRow: number,
  k: number,
  sample: number[],
  ivf?: { nlist: number; nprobe: number; seed: number },
): RetrievalView {
  const m = store.manifest;
  const n = storeRows(store);
  const d = m.dims.d;
  const base = normalizeRows(v.emb, n, d);
  let idx: ArrayLike<number>, sc: ArrayLike<number>;
  if (ivf) {
    const index = buildIvf(base, n, d, { nlist: ivf.nlist, seed: ivf.seed });
    const r = searchIvf(index, base.subarray(queryRow * d, (queryRow + 1) * d), k + 1, ivf.nprobe);
    const keep = r.indices.map((b, j) => [b, r.scores[j]] as const).filter(([b]) => b !== queryRow).slice(0, k);
    idx = keep.map((x) => x[0]);
    sc = keep.map((x) => x[1]);
  } else {
    const nb = neighboursOfRows(base, n, d, [queryRow], k);
    idx = nb.indices;
    sc = nb.scores;
  }
  const view: RetrievalView = { name: v.name, neighbours: Array.from(idx, (b, j) => itemOf(store, b, sc[j])) };
  if (v.heads) view.heads = v.heads;
  const hasLabels = store.labels.every((l) => l >= 0) && m.dataset.labels.length > 1;
  const hasGroups = store.groups.every((g) => g >= 0) && m.dataset.groups.length > 1;
  if (hasLabels || hasGroups) {
    const nb = neighboursOfRows(base, n, d, sample, k);
    view.precision = { queries: sample.length };
    if (hasLabels) view.precision.labels = precisionAtK(nb, store.labels, k, sample.map((r) => store.labels[r]));
    if (hasGroups) view.precision.groups = precisionAtK(nb, store.groups, k, sample.map((r) => store.groups[r]));
  }
  return view;
}

function randomRows(n: number, count: number, rng: () => number): number[] {
  const picked = new Set<number>();
  while (picked.size < count) picked.add(Math.floor(rng() * n));
  return [...picked].sort((a, b) => a - b);
}
