// What every store study builds on: the embedding of each stored image as the sum of its
// stored terms (attention heads of the kept layers, MLPs and ln_pre, and a rest term for the
// layers the store does not keep), with chosen terms mean-ablated; and the check that a
// classifier or text pool fits the store.

import { requireSameModel } from '../io/provenance.ts';
import type { StoreData, StoreManifest } from '../io/store.ts';
import { type AblationSpec, meanAblate } from './ablation.ts';
import { colMeans } from './linalg.ts';
import type { TextSet } from './text_sets.ts';
import { AnalysisError } from '../errors.ts';

/** Images (rows) in a loaded store. */
export function storeRows(store: StoreData): number {
  return store.attn.shape[0];
}

/** What the stored terms sum to per row: z/‖z‖ for normalised stores, else z. [n, d] */
export function storeTarget(store: StoreData): Float32Array {
  const n = storeRows(store);
  const d = store.manifest.dims.d;
  if (!store.manifest.normalised) return store.imageFeatures.data;
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const s = store.norm.data[i] > 0 ? 1 / store.norm.data[i] : 0;
    for (let j = 0; j < d; j++) out[i * d + j] = store.imageFeatures.data[i * d + j] * s;
  }
  return out;
}

const restCache = new WeakMap<StoreData, Float32Array>();

/** Σ over the MLP terms and the ln_pre term (all of `mlp`; notation.ts names its slots) per row, or their dataset mean when `mean`. [n, d] */
function mlpSum(store: StoreData, mean: boolean): Float32Array {
  const n = storeRows(store);
  const { d, L } = store.manifest.dims;
  const M = store.mlp.data;
  const out = new Float32Array(n * d);
  const acc = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    acc.fill(0);
    for (let t = 0; t <= L; t++) for (let j = 0; j < d; j++) acc[j] += M[(i * (L + 1) + t) * d + j];
    for (let j = 0; j < d; j++) out[i * d + j] = acc[j];
  }
  if (!mean) return out;
  const mu = colMeans(out, n, d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) out[i * d + j] = mu[j];
  return out;
}

/** Why a store cannot ablate CLS→CLS: its family has no class token, or it was made before cliplens kept the term. */
export function noClsToClsMessage(store: StoreData): string {
  if (store.manifest.family === 'siglip') return `store ${store.dir} is a SigLIP store: its pooling head reads the image through a probe, not a class token, so there is no CLS→CLS term`;
  return `store ${store.dir} has no CLS→CLS terms (cls_attn): it was made before cliplens kept them; decompose the dataset again into a new --store to ablate CLS→CLS`;
}

/** The stored attention terms with some mean-ablated (spec in kept-layer indices; CLS→CLS of the kept layers), summed. [n, d] */
function attnSum(store: StoreData, spec: AblationSpec, attn?: Float32Array): Float32Array {
  const [n, Lk, , d] = store.attn.shape;
  if (spec.clsToCls && !store.clsAttn) throw new AnalysisError(noClsToClsMessage(store));
  // meanAblate wants MLP terms for the same L; the MLPs are handled separately (mlpSum).
  const zeros = { shape: [n, Lk + 1, d], data: new Float32Array(n * (Lk + 1) * d) };
  const terms = { attn: attn ? { shape: store.attn.shape, data: attn } : store.attn, mlp: zeros, ...(store.clsAttn ? { attnCls: store.clsAttn } : {}) };
  return meanAblate(terms, { heads: spec.heads, layersUpTo: spec.layersUpTo, clsToCls: spec.clsToCls });
}

/**
 * target − Σ stored terms, [n, d]: the attention layers the store does not keep (zero up to
 * round-off when it keeps them all). Kept as its own term so every embedding stays exact.
 */
export function restTerm(store: StoreData): Float32Array {
  let r = restCache.get(store);
  if (!r) {
    const a = attnSum(store, {});
    const m = mlpSum(store, false);
    const t = storeTarget(store);
    r = new Float32Array(a.length);
    for (let i = 0; i < r.length; i++) r[i] = t[i] - a[i] - m[i];
    restCache.set(store, r);
  }
  return r;
}

/**
 * Embeddings [n, d] with the chosen terms mean-ablated (spec uses kept-layer indices; `mlps`
 * covers every MLP and ln_pre; `clsToCls` the CLS→CLS part of every kept layer's heads). `attn`
 * replaces the stored attn (e.g. heads replaced by reconstructions); `ablateRest` also
 * mean-ablates the layers the store does not keep.
 */
export function composeEmbeddings(store: StoreData, spec: AblationSpec, opts: { attn?: Float32Array; ablateRest?: boolean } = {}): Float32Array {
  const out = attnSum(store, spec, opts.attn);
  const mlp = mlpSum(store, !!spec.mlps);
  const rest = restTerm(store);
  const d = store.manifest.dims.d;
  const n = storeRows(store);
  const restMean = opts.ablateRest ? colMeans(rest, n, d) : undefined;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < d; j++) out[i * d + j] += mlp[i * d + j] + (restMean ? restMean[j] : rest[i * d + j]);
  return out;
}

export function hasMissingLayers(m: StoreManifest): boolean {
  return m.layers.length < m.dims.L;
}

// Labels ↔ classifier

export interface AlignedLabels {
  /** Classifier class index of every store row. */
  labels: Int32Array;
  classNames: string[];
  /** How store labels were matched: by class name, or by index (integer labels 0..C−1). */
  matchedBy: 'name' | 'index';
}

const norm = (s: string) => s.toLowerCase().replace(/[_\-]+/g, ' ').replace(/\s+/g, ' ').trim();

/** The store and a text set it is combined with must come from one model (src/io/provenance.ts). */
export function requireStoreModel(store: Pick<StoreData, 'dir' | 'manifest'>, set: TextSet, what: string): void {
  requireSameModel({ what: `store ${store.dir}`, model: store.manifest.model }, { what: set.path ? `${what} ${set.path}` : what, model: set.model });
}

/** Check a classifier fits the store (same model, same size) and map the store's labels onto its classes. */
export function alignLabels(store: Pick<StoreData, 'dir' | 'manifest' | 'labels'>, classifier: TextSet, what = 'classifier'): AlignedLabels {
  const m = store.manifest;
  requireStoreModel(store, classifier, what);
  const [C, dc] = classifier.embeddings.shape;
  if (dc !== m.dims.d)
    throw new AnalysisError(`${what} has embedding size ${dc}, the store's model '${m.model.name}' has ${m.dims.d}: make the classifier with the same model`);
  if (classifier.kind !== 'classifier') throw new AnalysisError(`${what} is a text pool, not a classifier: make one with 'cliplens texts --classes FILE'`);
  const storeLabels = m.dataset.labels;
  if (!storeLabels.length) throw new AnalysisError(`the store has no labels (decompose a folder with class subfolders, or a CSV with a label column)`);
  const unlabelled = Array.from(store.labels).filter((l) => l < 0).length;
  if (unlabelled) throw new AnalysisError(`${unlabelled} store rows have no label`);
  const byName = new Map<string, number>();
  classifier.names.forEach((nm, i) => {
    if (!byName.has(nm)) byName.set(nm, i);
    if (!byName.has(norm(nm))) byName.set(norm(nm), i);
  });
  const map = storeLabels.map((l) => byName.get(l) ?? byName.get(norm(l)) ?? -1);
  let matchedBy: AlignedLabels['matchedBy'] = 'name';
  if (map.some((c) => c < 0)) {
    // Integer labels (e.g. Waterbirds' y column) with no name match at all: class indices.
    const numeric = storeLabels.every((l) => /^\d+$/.test(l) && Number(l) < C);
    if (numeric && map.every((c) => c < 0)) {
      storeLabels.forEach((l, i) => (map[i] = Number(l)));
      matchedBy = 'index';
    } else {
      const missing = storeLabels.filter((_, i) => map[i] < 0);
      const shown = classifier.names.slice(0, 8).join(', ') + (C > 8 ? `, … (${C})` : '');
      throw new AnalysisError(`store labels not among the ${what}'s class names: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''} (classes: ${shown})`);
    }
  }
  return { labels: Int32Array.from(store.labels, (l) => map[l]), classNames: classifier.names, matchedBy };
}

/** Check a text pool fits the store (same model, same size). */
export function checkPool(store: StoreData, pool: TextSet, what = 'text pool'): void {
  requireStoreModel(store, pool, what);
  const dp = pool.embeddings.shape[1];
  if (dp !== store.manifest.dims.d)
    throw new AnalysisError(`${what} has embedding size ${dp}, the store's model '${store.manifest.model.name}' has ${store.manifest.dims.d}: embed the texts with the same model`);
}

// ---------------------------------------------------------------------------------------------
