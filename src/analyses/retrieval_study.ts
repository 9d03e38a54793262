// The paper's §5.1 on a store: the nearest neighbours of an image using only chosen heads' terms
// (each alone, then together) next to the whole embedding, with precision@k against the store's
// labels and groups. The query is a stored image, or an image outside the store decomposed by
// the store's model (the reference's nns.ipynb, which ranks by the dot product of the terms).

import { decomposerFor } from '../decompose/decomposers.ts';
import type { Decomposition } from '../decompose/prs.ts';
import { modelProvenance, provenanceFields, requireSameModel } from '../io/provenance.ts';
import type { StoreData } from '../io/store.ts';
import { preprocessFiles } from '../model/preprocess_model.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { f32, type F32 } from '../tensor.ts';
import { headName, type HeadRef } from '../notation.ts';
import { mulberry32 } from '../rng.ts';
import { buildIvf, searchIvf } from './ann.ts';
import { toKept } from './heads.ts';
import { normalizeRows } from './linalg.ts';
import { headSum, nearestNeighbours, precisionAtK, type Neighbours } from './retrieval.ts';
import { storeRows, storeTarget } from './store_terms.ts';
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

/** How neighbours are ranked: cosine similarity, or the dot product of the terms (nns.ipynb). */
export type RetrievalScore = 'cosine' | 'dot';

export interface RetrievalStudyResult {
  model: string;
  modelFingerprint?: string;
  /** The query: a store row, or (no row) an image outside the store. */
  query: { row?: number; id: string; label?: string; group?: string };
  k: number;
  score: RetrievalScore;
  /** How neighbours were found. */
  search: string;
  views: RetrievalView[];
}

/** An image outside the store, decomposed by the store's model in the store's convention. */
export interface QueryImage {
  id: string;
  /** [1, L, H, d] every attention layer's per-head terms (absolute layers). */
  attn: F32;
  /** [d] what the store's terms sum to for it: z/‖z‖ for normalised stores, z otherwise. */
  target: Float32Array;
}

/** Decompose the image at `path` with `model`, which must be the store's (src/io/provenance.ts). */
export async function decomposeQueryImage(model: ClipModel, store: StoreData, path: string): Promise<QueryImage> {
  requireSameModel({ what: `store ${store.dir}`, model: store.manifest.model }, { what: '--model', model: modelProvenance(model) });
  const pre = await preprocessFiles(model.config, [path]);
  if (pre.errors[0] !== undefined) throw new AnalysisError(pre.errors[0]);
  return queryImage(path, await decomposerFor(model).decompose(pre.pixels, { normalise: store.manifest.normalised }));
}

/** The first image of a decomposition as a query (its terms in the decomposition's convention). */
export function queryImage(id: string, dec: Pick<Decomposition, 'attn' | 'imageFeatures' | 'norm' | 'normalised'>): QueryImage {
  const d = dec.imageFeatures.shape[1];
  const [, L, H] = dec.attn.shape;
  const s = dec.normalised ? 1 / dec.norm.data[0] : 1;
  return { id, attn: f32([1, L, H, d], dec.attn.data.slice(0, L * H * d)), target: Float32Array.from(dec.imageFeatures.data.subarray(0, d), (v) => v * s) };
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
  /** Default: cosine for a stored query, dot (as nns.ipynb) for an outside image. */
  score?: RetrievalScore;
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
function neighboursOfRows(base: Float32Array, n: number, d: number, rows: number[], k: number, score: RetrievalScore): Neighbours {
  const Q = new Float32Array(rows.length * d);
  rows.forEach((r, i) => Q.set(base.subarray(r * d, (r + 1) * d), i * d));
  const nb = nearestNeighbours({ shape: [rows.length, d], data: Q }, { shape: [n, d], data: base }, k + 1, { score });
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
 * Nearest neighbours of an image — a store row, or an outside image decomposed by the store's
 * model — using each chosen head's term, the chosen heads together (when several) and the whole
 * embedding. A stored query is not its own neighbour.
 */
export function retrievalStudy(store: StoreData, heads: HeadRef[], query: number | QueryImage, opts: RetrievalOptions = {}): RetrievalStudyResult {
  const m = store.manifest;
  const n = storeRows(store);
  const row = typeof query === 'number' ? query : undefined;
  if (n < (row === undefined ? 1 : 2)) throw new AnalysisError(`retrieval needs at least ${row === undefined ? 1 : 2} stored images`);
  const k = Math.min(opts.k ?? 10, row === undefined ? n : n - 1);
  if (!(k >= 1)) throw new AnalysisError(`k must be at least 1`);
  const score = opts.score ?? (row === undefined ? 'dot' : 'cosine');
  const threshold = opts.indexThreshold ?? 100_000;
  const nlist = Math.max(1, Math.round(Math.sqrt(n)));
  const ivf = n > threshold && score === 'cosine' ? { nlist, nprobe: Math.max(1, Math.ceil(nlist / 16)), seed: opts.seed ?? 0 } : undefined;
  // Query vectors of an outside image: its heads summed, or its whole embedding, in the store's convention.
  const outside = (hs?: HeadRef[]) => {
    const q = query as QueryImage;
    return hs ? headSum(q.attn, hs.map((h) => [h.layer, h.head] as [number, number])) : q.target;
  };
  const views: View[] = heads.map((h) => ({ name: `head ${headName(h)}`, heads: [h], emb: headSum(store.attn, toKept(m, [h])) }));
  if (heads.length > 1) views.push({ name: `heads ${heads.map(headName).join('+')}`, heads, emb: headSum(store.attn, toKept(m, heads)) });
  views.push({ name: 'whole embedding', emb: storeTarget(store) });
  for (const v of views) v.query = row === undefined ? outside(v.heads) : v.emb.slice(row * m.dims.d, (row + 1) * m.dims.d);
  const rng = mulberry32(opts.seed ?? 0);
  const pq = Math.min(opts.precisionQueries ?? 500, n);
  const sample = pq >= n ? Array.from({ length: n }, (_, i) => i) : randomRows(n, pq, rng);
  const how = score === 'dot' ? 'dot product of the terms' : 'cosine';
  return {
    ...provenanceFields(m.model),
    query: row === undefined ? { id: (query as QueryImage).id } : itemOf(store, row, 1),
    k,
    score,
    search: ivf ? `IVF index (k-means, ${ivf.nlist} lists, ${ivf.nprobe} probed; ${n} rows > ${threshold}), cosine` : `brute force (exact ${how})`,
    views: views.map((v) => retrievalView(store, v, row, k, score, n > 1 ? sample : [], ivf)),
  };
}

interface View {
  name: string;
  heads?: HeadRef[];
  /** [n, d] the store rows as this view sees them. */
  emb: Float32Array;
  /** [d] the query as this view sees it. */
  query?: Float32Array;
}

/** One view's neighbours of the query (by IVF index when given, else exact) and its precision@k over the sampled store rows. */
function retrievalView(store: StoreData, v: View, row: number | undefined, k: number, score: RetrievalScore, sample: number[], ivf?: { nlist: number; nprobe: number; seed: number }): RetrievalView {
  const m = store.manifest;
  const n = storeRows(store);
  const d = m.dims.d;
  const base = score === 'cosine' ? normalizeRows(v.emb, n, d) : v.emb;
  const q = score === 'cosine' ? normalizeRows(v.query!, 1, d) : v.query!;
  let idx: ArrayLike<number>, sc: ArrayLike<number>;
  if (ivf) {
    const index = buildIvf(base, n, d, { nlist: ivf.nlist, seed: ivf.seed });
    const r = searchIvf(index, q, k + 1, ivf.nprobe);
    const keep = r.indices.map((b, j) => [b, r.scores[j]] as const).filter(([b]) => b !== row).slice(0, k);
    idx = keep.map((x) => x[0]);
    sc = keep.map((x) => x[1]);
  } else if (row !== undefined) {
    const nb = neighboursOfRows(base, n, d, [row], k, score);
    idx = nb.indices;
    sc = nb.scores;
  } else {
    const nb = nearestNeighbours({ shape: [1, d], data: q }, { shape: [n, d], data: base }, k, { score });
    idx = nb.indices;
    sc = nb.scores;
  }
  const view: RetrievalView = { name: v.name, neighbours: Array.from(idx, (b, j) => itemOf(store, b, sc[j])) };
  if (v.heads) view.heads = v.heads;
  const hasLabels = store.labels.every((l) => l >= 0) && m.dataset.labels.length > 1;
  const hasGroups = store.groups.every((g) => g >= 0) && m.dataset.groups.length > 1;
  if ((hasLabels || hasGroups) && sample.length && k < n) {
    const nb = neighboursOfRows(base, n, d, sample, k, score);
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
