// The paper's store-based studies (§3.2 ablations, §4.1 TextSpan, §4.2 spurious cues, §5.1
// retrieval) as plain functions of a loaded store: the CLI, the web explorer and the toy-world
// study call these and only format the results.

import type { StoreData, StoreManifest } from '../io/store.ts';
import { type AblationSpec, meanAblate } from './ablation.ts';
import { colMeans, dot, gram, normalizeRows, rightSvd } from './linalg.ts';
import { nearestNeighbours, precisionAtK, headSum, type Neighbours } from './retrieval.ts';
import { buildIvf, searchIvf } from './ann.ts';
import { headTerms, textspan } from './textspan.ts';
import type { TextSet } from './text_sets.ts';
import { type GroupAccuracy, groupAccuracy, predict, topkAccuracy } from './zeroshot.ts';
import { mulberry32 } from '../rng.ts';
import { AnalysisError } from '../errors.ts';

/** A head by absolute model layer index (not the index into the store's kept layers). */
export interface HeadRef {
  layer: number;
  head: number;
}

export const headName = (h: HeadRef) => `${h.layer}:${h.head}`;

// ---------------------------------------------------------------------------------------------
// Store helpers

function keptRange(m: StoreManifest): string {
  const ls = m.layers;
  const contiguous = ls.every((l, i) => i === 0 || l === ls[i - 1] + 1);
  return contiguous && ls.length > 1 ? `${ls[0]}-${ls[ls.length - 1]}` : ls.join(',');
}

/** Index of an absolute layer in the store's attn tensor. */
export function keptIndex(m: StoreManifest, layer: number): number {
  const i = m.layers.indexOf(layer);
  if (i < 0) throw new AnalysisError(`layer ${layer} is not in the store (it keeps attention layers ${keptRange(m)} of ${m.dims.L})`);
  return i;
}

/** "10:3,11:0" (layer:head, absolute layers; "11:*" = every head of layer 11) → heads. */
export function parseHeadSpec(spec: string, m: StoreManifest): HeadRef[] {
  const out: HeadRef[] = [];
  const { H } = m.dims;
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const mm = /^(\d+)[:.](\d+|\*)$/.exec(part);
    if (!mm) throw new AnalysisError(`head '${part}': use layer:head, e.g. 10:3,11:0`);
    const layer = Number(mm[1]);
    if (!m.layers.includes(layer))
      throw new AnalysisError(`head '${part}': layer ${layer} is not in the store (it keeps attention layers ${keptRange(m)}; heads 0..${H - 1})`);
    const heads = mm[2] === '*' ? Array.from({ length: H }, (_, h) => h) : [Number(mm[2])];
    for (const head of heads) {
      if (head >= H) throw new AnalysisError(`head '${part}': head ${head} out of range (the model has heads 0..${H - 1})`);
      if (!out.some((o) => o.layer === layer && o.head === head)) out.push({ layer, head });
    }
  }
  if (!out.length) throw new AnalysisError(`no heads in '${spec}'`);
  return out;
}

/** Heads as [keptIndex, head] pairs for the analyses, which index the stored attn tensor. */
export function toKept(m: StoreManifest, heads: HeadRef[]): [number, number][] {
  return heads.map((h) => [keptIndex(m, h.layer), h.head]);
}

function storeN(store: StoreData): number {
  return store.attn.shape[0];
}

/** What the stored terms sum to per row: z/‖z‖ for normalised stores, else z. [n, d] */
export function storeTarget(store: StoreData): Float32Array {
  const n = storeN(store);
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

/** Σ over the MLP terms (and ln_pre) per row, or their dataset mean when `mean`. [n, d] */
function mlpSum(store: StoreData, mean: boolean): Float32Array {
  const n = storeN(store);
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

/** The stored attention terms with some mean-ablated (spec in kept-layer indices), summed. [n, d] */
function attnSum(store: StoreData, spec: AblationSpec, attn?: Float32Array): Float32Array {
  const [n, Lk, , d] = store.attn.shape;
  // meanAblate wants MLP terms for the same L; the MLPs are handled separately (mlpSum).
  const zeros = { shape: [n, Lk + 1, d], data: new Float32Array(n * (Lk + 1) * d) };
  return meanAblate({ attn: attn ? { shape: store.attn.shape, data: attn } : store.attn, mlp: zeros }, { heads: spec.heads, layersUpTo: spec.layersUpTo });
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
 * covers every MLP and ln_pre). `attn` replaces the stored attn (e.g. heads replaced by
 * reconstructions); `ablateRest` also mean-ablates the layers the store does not keep.
 */
export function composeEmbeddings(store: StoreData, spec: AblationSpec, opts: { attn?: Float32Array; ablateRest?: boolean } = {}): Float32Array {
  if (spec.clsToCls) throw new AnalysisError('CLS→CLS terms are not in the store');
  const out = attnSum(store, spec, opts.attn);
  const mlp = mlpSum(store, !!spec.mlps);
  const rest = restTerm(store);
  const d = store.manifest.dims.d;
  const n = storeN(store);
  const restMean = opts.ablateRest ? colMeans(rest, n, d) : undefined;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < d; j++) out[i * d + j] += mlp[i * d + j] + (restMean ? restMean[j] : rest[i * d + j]);
  return out;
}

function hasMissingLayers(m: StoreManifest): boolean {
  return m.layers.length < m.dims.L;
}

// ---------------------------------------------------------------------------------------------
// Labels ↔ classifier

export interface AlignedLabels {
  /** Classifier class index of every store row. */
  labels: Int32Array;
  classNames: string[];
  /** How store labels were matched: by class name, or by index (integer labels 0..C−1). */
  matchedBy: 'name' | 'index';
}

const norm = (s: string) => s.toLowerCase().replace(/[_\-]+/g, ' ').replace(/\s+/g, ' ').trim();

/** Check a classifier fits the store and map the store's labels onto its classes. */
export function alignLabels(store: StoreData, classifier: TextSet, what = 'classifier'): AlignedLabels {
  const m = store.manifest;
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

/** Check a text pool fits the store. */
export function checkPool(store: StoreData, pool: TextSet, what = 'text pool'): void {
  const dp = pool.embeddings.shape[1];
  if (dp !== store.manifest.dims.d)
    throw new AnalysisError(`${what} has embedding size ${dp}, the store's model '${store.manifest.model.name}' has ${store.manifest.dims.d}: embed the texts with the same model`);
}

// ---------------------------------------------------------------------------------------------
// Ablation (§3.2)

export interface AblationStudyResult {
  model: string;
  images: number;
  classes: number;
  labelsMatchedBy: 'name' | 'index';
  baseline: number;
  /** All MLPs (and the ln_pre term) mean-ablated. */
  mlps: number;
  /** Attention layers mean-ablated cumulatively from the first kept one: [layer, accuracy]. */
  cumulative: { upTo: number; accuracy: number }[];
  /** One attention layer mean-ablated at a time. */
  single: { layer: number; accuracy: number }[];
  heads?: { heads: HeadRef[]; accuracy: number };
  notes: string[];
}

export function ablationStudy(store: StoreData, classifier: TextSet, opts: { heads?: HeadRef[] } = {}): AblationStudyResult {
  const m = store.manifest;
  const al = alignLabels(store, classifier);
  const cls = classifier.embeddings;
  const acc = (spec: AblationSpec) => topkAccuracy({ shape: [storeN(store), m.dims.d], data: composeEmbeddings(store, spec) }, cls, al.labels);
  const H = m.dims.H;
  const layerHeads = (j: number) => Array.from({ length: H }, (_, h) => [j, h] as [number, number]);
  const res: AblationStudyResult = {
    model: m.model.name,
    images: storeN(store),
    classes: cls.shape[0],
    labelsMatchedBy: al.matchedBy,
    baseline: acc({}),
    mlps: acc({ mlps: true }),
    cumulative: m.layers.map((l, j) => ({ upTo: l, accuracy: acc({ layersUpTo: j }) })),
    single: m.layers.map((l, j) => ({ layer: l, accuracy: acc({ heads: layerHeads(j) }) })),
    notes: [
      'CLS→CLS attention terms are not in the store (it keeps per-head terms summed over source tokens), so their ablation is not reported.',
      'Mean-ablation replaces a term by its mean over the stored images.',
    ],
  };
  if (opts.heads?.length) res.heads = { heads: opts.heads, accuracy: acc({ heads: toKept(m, opts.heads) }) };
  if (hasMissingLayers(m))
    res.notes.push(`The store keeps attention layers ${keptRange(m)} only; the other layers' terms are never ablated here.`);
  if (al.matchedBy === 'index') res.notes.push('Store labels are integers and were matched to classifier classes by index.');
  return res;
}

// ---------------------------------------------------------------------------------------------
// TextSpan (§4.1)

export interface TextSpanHeadJson {
  layer: number;
  head: number;
  texts: string[];
  indices: number[];
  varianceExplained: number[];
}

/** The heads.json format the web explorer reads. */
export interface TextSpanJson {
  model: string;
  store: string;
  rank: number;
  heads: TextSpanHeadJson[];
}

export interface TextSpanAccuracy {
  /** Texts per head. */
  m: number[];
  /** Accuracy with the chosen layers' heads replaced by their m-text reconstructions, everything else mean-ablated. */
  replaced: number[];
  /** Chosen layers intact, everything else mean-ablated. */
  chosenLayersOnly: number;
  /** Nothing ablated. */
  baseline: number;
}

export interface TextSpanStudyResult extends TextSpanJson {
  k: number;
  layers: number[];
  accuracy?: TextSpanAccuracy;
}

export interface TextSpanStudyOptions {
  /** Absolute layers (default: the last 4 kept). */
  layers?: number[];
  k: number;
  rank?: number;
  classifier?: TextSet;
  /** Texts per head for the accuracy curve (default 10, 20, …, 60). */
  ms?: number[];
  storePath?: string;
  onHead?: (done: number, total: number) => void;
}

/** Picked texts as orthonormal directions (Gram–Schmidt in pick order = TextSpan's deflation), [K, d]. */
function pickedDirections(C: Float32Array, n: number, d: number, T: Float32Array, indices: number[], rank: number): { U: Float64Array; K: number; mu: Float64Array } {
  const mu = colMeans(C, n, d);
  const S = gram(C, n, d, mu);
  const G = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) G[i * d + j] = S[i * d + j] + n * mu[i] * mu[j];
  const r = Math.min(rank, n, d);
  const Vr = rightSvd(null, n, d, G).vt.subarray(0, r * d);
  const U = new Float64Array(indices.length * d);
  let K = 0;
  const a = new Float64Array(r);
  const u = new Float64Array(d);
  for (const t of indices) {
    for (let i = 0; i < r; i++) a[i] = dot(T, t * d, Vr, i * d, d);
    u.fill(0);
    for (let i = 0; i < r; i++) for (let p = 0; p < d; p++) u[p] += a[i] * Vr[i * d + p];
    const n0 = Math.sqrt(dot(u, 0, u, 0, d));
    for (let j = 0; j < K; j++) {
      const c = dot(u, 0, U, j * d, d);
      for (let p = 0; p < d; p++) u[p] -= c * U[j * d + p];
    }
    const nr = Math.sqrt(dot(u, 0, u, 0, d));
    if (!(nr > 1e-6 * n0)) break; // beyond the span: nothing more to reconstruct
    for (let p = 0; p < d; p++) U[K * d + p] = u[p] / nr;
    K++;
  }
  return { U, K, mu };
}

/**
 * Per head of the chosen layers, TextSpan's k texts; with a classifier, zero-shot accuracy when
 * every head of those layers is replaced by its reconstruction from its first m texts and all
 * other terms are mean-ablated (the paper's Fig. 3 protocol).
 */
export function textspanStudy(store: StoreData, pool: TextSet, opts: TextSpanStudyOptions): TextSpanStudyResult {
  const m = store.manifest;
  checkPool(store, pool);
  const { H, d } = m.dims;
  const n = storeN(store);
  const layers = opts.layers ?? m.layers.slice(-4);
  const kept = layers.map((l) => keptIndex(m, l));
  const rank = opts.rank ?? 80;
  const mPool = pool.embeddings.shape[0];
  if (!Number.isInteger(opts.k) || opts.k < 1) throw new AnalysisError(`k must be a positive integer, got ${opts.k}`);
  if (opts.k > mPool) throw new AnalysisError(`k = ${opts.k} is more than the ${mPool} texts in the pool`);
  const al = opts.classifier ? alignLabels(store, opts.classifier) : undefined;
  const ms = al ? (opts.ms ?? [10, 20, 30, 40, 50, 60]).filter((x) => x <= mPool).sort((a, b) => a - b) : [];
  const K = Math.max(opts.k, ...ms);
  const T = pool.embeddings;
  const heads: TextSpanHeadJson[] = [];
  const deltas = ms.map(() => new Float64Array(n * d)); // Σ_h (reconstruction_m − C_h)
  const total = kept.length * H;
  kept.forEach((j, li) => {
    for (let h = 0; h < H; h++) {
      const C = headTerms(store.attn, j, h);
      const ts = textspan({ shape: [n, d], data: C }, T, { k: K, r: rank });
      heads.push({
        layer: layers[li],
        head: h,
        texts: ts.indices.slice(0, opts.k).map((i) => pool.names[i]),
        indices: ts.indices.slice(0, opts.k),
        varianceExplained: ts.varianceExplained.slice(0, opts.k),
      });
      if (ms.length) {
        const { U, K: KU, mu } = pickedDirections(C, n, d, T.data, ts.indices, rank);
        const x = new Float64Array(d);
        const proj = new Float64Array(d);
        for (let i = 0; i < n; i++) {
          for (let p = 0; p < d; p++) x[p] = C[i * d + p] - mu[p];
          proj.fill(0);
          let done = 0;
          ms.forEach((mm, q) => {
            for (; done < Math.min(mm, KU); done++) {
              const c = dot(x, 0, U, done * d, d);
              for (let p = 0; p < d; p++) proj[p] += c * U[done * d + p];
            }
            const D = deltas[q];
            for (let p = 0; p < d; p++) D[i * d + p] += proj[p] - x[p];
          });
        }
      }
      opts.onHead?.(heads.length, total);
    }
  });
  const out: TextSpanStudyResult = { model: m.model.name, store: opts.storePath ?? m.dataset.root, rank, k: opts.k, layers, heads };
  if (al && opts.classifier) {
    const cls = opts.classifier.embeddings;
    const others = m.layers.flatMap((_, j) => (kept.includes(j) ? [] : Array.from({ length: H }, (_, h) => [j, h] as [number, number])));
    const base = composeEmbeddings(store, { mlps: true, heads: others }, { ablateRest: true });
    const acc = (e: Float32Array) => topkAccuracy({ shape: [n, d], data: e }, cls, al.labels);
    out.accuracy = {
      m: ms,
      replaced: deltas.map((D) => acc(base.map((v, i) => v + D[i]))),
      chosenLayersOnly: acc(base),
      baseline: acc(composeEmbeddings(store, {})),
    };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Spurious cues (§4.2)

export interface HeadMatch {
  layer: number;
  head: number;
  score: number;
  matched: string[];
}

/** Read and check a heads.json (from `cliplens textspan --out`). */
export function parseTextSpanJson(json: unknown, what = 'TextSpan file'): TextSpanJson {
  const j = json as TextSpanJson;
  if (!j || !Array.isArray(j.heads) || j.heads.some((h) => !Number.isInteger(h.layer) || !Number.isInteger(h.head) || !Array.isArray(h.texts)))
    throw new AnalysisError(`${what} is not a TextSpan heads file (expected {heads: [{layer, head, texts}]}, as 'cliplens textspan --out' writes)`);
  return j;
}

/**
 * Heads whose TextSpan texts mention the query: a head matches when at least one of its texts
 * contains one of the query's terms (case-insensitive substring; terms separated by '|' or ',').
 * Score = number of matching texts.
 */
export function selectHeadsBySubstring(ts: TextSpanJson, query: string): HeadMatch[] {
  const terms = query.split(/[|,]/).map((t) => t.trim().toLowerCase()).filter(Boolean);
  if (!terms.length) throw new AnalysisError('empty --query');
  return ts.heads
    .map((h) => {
      const matched = h.texts.filter((t) => terms.some((q) => t.toLowerCase().includes(q)));
      return { layer: h.layer, head: h.head, score: matched.length, matched };
    })
    .filter((h) => h.score > 0)
    .sort((a, b) => b.score - a.score || a.layer - b.layer || a.head - b.head);
}

/**
 * Heads ranked by how close their texts are to the query in the model's text space: score =
 * mean of the 3 highest cosine similarities between the query and the head's texts; top `top`.
 * `embed` gives normalised text embeddings.
 */
export function selectHeadsBySimilarity(ts: TextSpanJson, query: Float32Array, embed: (text: string) => Float32Array, top: number): HeadMatch[] {
  return ts.heads
    .map((h) => {
      const sims = h.texts.map((t) => ({ t, s: dot(embed(t), 0, query, 0, query.length) })).sort((a, b) => b.s - a.s);
      const best = sims.slice(0, 3);
      return { layer: h.layer, head: h.head, score: best.reduce((a, b) => a + b.s, 0) / Math.max(1, best.length), matched: best.map((b) => b.t) };
    })
    .sort((a, b) => b.score - a.score || a.layer - b.layer || a.head - b.head)
    .slice(0, top);
}

export interface DebiasCell {
  label: string;
  group: string;
  count: number;
  before: number;
  after: number;
  /** Mean over the random draws. */
  random?: number;
}

export interface DebiasSummary {
  overall: number;
  mean: number;
  worst: number;
}

export interface DebiasStudyResult {
  model: string;
  images: number;
  heads: HeadRef[];
  before: DebiasSummary;
  after: DebiasSummary;
  random?: { draws: number; seed: number; worst: number[]; mean: number[]; overall: number[]; meanWorst: number; meanMean: number; meanOverall: number };
  cells: DebiasCell[];
  notes: string[];
}

function summary(g: GroupAccuracy): DebiasSummary {
  return { overall: g.overall, mean: g.mean, worst: g.worst };
}

/** `count` distinct random heads of the kept layers, none of `exclude`. */
export function randomHeads(m: StoreManifest, count: number, exclude: HeadRef[], rng: () => number): HeadRef[] {
  const all = m.layers.flatMap((layer) => Array.from({ length: m.dims.H }, (_, head) => ({ layer, head })));
  const pool = all.filter((h) => !exclude.some((e) => e.layer === h.layer && e.head === h.head));
  if (pool.length < count) throw new AnalysisError(`only ${pool.length} other heads to draw ${count} random heads from`);
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, count);
}

/**
 * Mean-ablate the chosen heads and report accuracy per (label, group) cell, their mean and the
 * worst cell, before and after, next to ablating as many random heads. Also returns the edited
 * embeddings [n, d] (terms' scale) and the mean vectors [heads, d] used.
 */
export function debiasStudy(
  store: StoreData,
  classifier: TextSet,
  heads: HeadRef[],
  opts: { randomDraws?: number; seed?: number } = {},
): { result: DebiasStudyResult; edited: Float32Array; means: Float32Array } {
  const m = store.manifest;
  if (!heads.length) throw new AnalysisError('no heads to ablate');
  const al = alignLabels(store, classifier);
  const n = storeN(store);
  const d = m.dims.d;
  const cls = classifier.embeddings;
  const hasGroups = m.dataset.groups.length > 0 && store.groups.every((g) => g >= 0);
  const groups = hasGroups ? store.groups : new Int32Array(n);
  const evalEmb = (e: Float32Array) => groupAccuracy(predict({ shape: [n, d], data: e }, cls), al.labels, groups);
  const before = evalEmb(composeEmbeddings(store, {}));
  const edited = composeEmbeddings(store, { heads: toKept(m, heads) });
  const after = evalEmb(edited);
  const means = new Float32Array(heads.length * d);
  heads.forEach((h, k) => {
    const mu = colMeans(headTerms(store.attn, keptIndex(m, h.layer), h.head), n, d);
    for (let j = 0; j < d; j++) means[k * d + j] = mu[j];
  });
  const others = m.layers.length * m.dims.H - heads.length;
  const wanted = opts.randomDraws ?? 10;
  const draws = others >= heads.length ? wanted : 0; // too few other heads to compare with
  const seed = opts.seed ?? 0;
  const rng = mulberry32(seed);
  const rand: GroupAccuracy[] = [];
  for (let i = 0; i < draws; i++) rand.push(evalEmb(composeEmbeddings(store, { heads: toKept(m, randomHeads(m, heads.length, heads, rng)) })));
  const classLabel = (c: number) => al.classNames[c] ?? String(c);
  const groupName = (g: number) => (hasGroups ? m.dataset.groups[g] : 'all');
  const key = (c: { label: number; group: number }) => `${c.label}|${c.group}`;
  const afterBy = new Map(after.cells.map((c) => [key(c), c.accuracy]));
  const cells: DebiasCell[] = before.cells.map((c) => {
    const cell: DebiasCell = { label: classLabel(c.label), group: groupName(c.group), count: c.count, before: c.accuracy, after: afterBy.get(key(c)) ?? NaN };
    if (rand.length) cell.random = rand.reduce((a, r) => a + (r.cells.find((x) => key(x) === key(c))?.accuracy ?? 0), 0) / rand.length;
    return cell;
  });
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const result: DebiasStudyResult = {
    model: m.model.name,
    images: n,
    heads,
    before: summary(before),
    after: summary(after),
    cells,
    notes: [
      'Accuracy per (label, group) cell; "mean" is the unweighted mean over cells, "worst" the lowest cell.',
      hasGroups ? `Groups from the store: ${m.dataset.groups.join(', ')}.` : 'The store has no groups: every label is one cell.',
    ],
  };
  if (wanted > 0 && draws === 0) result.notes.push(`No random baseline: only ${others} other heads for ${heads.length} random ones.`);
  if (rand.length)
    result.random = {
      draws,
      seed,
      worst: rand.map((r) => r.worst),
      mean: rand.map((r) => r.mean),
      overall: rand.map((r) => r.overall),
      meanWorst: avg(rand.map((r) => r.worst)),
      meanMean: avg(rand.map((r) => r.mean)),
      meanOverall: avg(rand.map((r) => r.overall)),
    };
  return { result, edited, means };
}

// ---------------------------------------------------------------------------------------------
// Property-based retrieval (§5.1)

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
  const n = storeN(store);
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
  const n = storeN(store);
  const d = m.dims.d;
  if (n < 2) throw new AnalysisError('retrieval needs at least 2 stored images');
  const k = Math.min(opts.k ?? 10, n - 1);
  if (!(k >= 1)) throw new AnalysisError(`k must be at least 1`);
  const threshold = opts.indexThreshold ?? 100_000;
  const useIndex = n > threshold;
  const nlist = Math.max(1, Math.round(Math.sqrt(n)));
  const nprobe = Math.max(1, Math.ceil(nlist / 16));
  const views: { name: string; heads?: HeadRef[]; emb: Float32Array }[] = heads.map((h) => ({ name: `head ${headName(h)}`, heads: [h], emb: headSum(store.attn, toKept(m, [h])) }));
  if (heads.length > 1) views.push({ name: `heads ${heads.map(headName).join('+')}`, heads, emb: headSum(store.attn, toKept(m, heads)) });
  views.push({ name: 'whole embedding', emb: store.imageFeatures.data });
  const rng = mulberry32(opts.seed ?? 0);
  const pq = Math.min(opts.precisionQueries ?? 500, n);
  const sample = pq >= n ? Array.from({ length: n }, (_, i) => i) : randomRows(n, pq, rng);
  const hasLabels = store.labels.every((l) => l >= 0) && m.dataset.labels.length > 1;
  const hasGroups = store.groups.every((g) => g >= 0) && m.dataset.groups.length > 1;
  const out: RetrievalView[] = views.map((v) => {
    const base = normalizeRows(v.emb, n, d);
    let idx: ArrayLike<number>, sc: ArrayLike<number>;
    const q = base.subarray(queryRow * d, (queryRow + 1) * d);
    if (useIndex) {
      const ivf = buildIvf(base, n, d, { nlist, seed: opts.seed ?? 0 });
      const r = searchIvf(ivf, q, k + 1, nprobe);
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
    if (hasLabels || hasGroups) {
      const nb = neighboursOfRows(base, n, d, sample, k);
      view.precision = { queries: sample.length };
      if (hasLabels) view.precision.labels = precisionAtK(nb, store.labels, k, sample.map((r) => store.labels[r]));
      if (hasGroups) view.precision.groups = precisionAtK(nb, store.groups, k, sample.map((r) => store.groups[r]));
    }
    return view;
  });
  return {
    model: m.model.name,
    query: itemOf(store, queryRow, 1),
    k,
    search: useIndex ? `IVF index (k-means, ${nlist} lists, ${nprobe} probed; ${n} rows > ${threshold})` : 'brute force (exact cosine)',
    views: out,
  };
}

function randomRows(n: number, count: number, rng: () => number): number[] {
  const picked = new Set<number>();
  while (picked.size < count) picked.add(Math.floor(rng() * n));
  return [...picked].sort((a, b) => a - b);
}

