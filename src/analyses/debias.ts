// The paper's §4.2 on a store: pick the heads whose TextSpan texts describe a spurious property
// (e.g. location), mean-ablate them — by default with the reference's protocol
// (compute_use_specific_heads.py: also every attention layer but the last 4 and every MLP;
// analyses/ablation.ts) — and compare accuracy per (label, group) cell and on the worst group
// before and after, next to ablating as many random heads; export the edited representations.

import { modelProvenance, provenanceFields, provenanceMetadata, requireSameModel } from '../io/provenance.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import type { StoreData } from '../io/store.ts';
import { headName, type HeadRef } from '../notation.ts';
import { mulberry32 } from '../rng.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { f32 } from '../tensor.ts';
import { DEBIAS_KEPT_LAYERS, DEBIAS_PROTOCOLS, type AblationSpec, type DebiasProtocol } from './ablation.ts';
import { keptIndex, keptRange, parseHeadSpec, randomHeads, toKept } from './heads.ts';
import { colMeans, dot, normalizeRows } from './linalg.ts';
import { alignLabels, composeEmbeddings, storeRows } from './store_terms.ts';
import type { TextSet } from './text_sets.ts';
import type { TextSpanFile, TextSpanHead } from './textspan_study.ts';
import { headTerms } from './textspan.ts';
import { type GroupAccuracy, groupAccuracy, predict } from './zeroshot.ts';
import { AnalysisError } from '../errors.ts';

// ---------------------------------------------------------------------------------------------
// Choosing heads from their TextSpan texts

export interface HeadMatch {
  layer: number;
  head: number;
  score: number;
  matched: string[];
}

/** How heads were chosen for a query, as the report and the JSON result record it. */
export interface HeadSelection {
  query: string;
  match: HeadMatching;
  heads: HeadMatch[];
}

export type HeadMatching = 'substring' | 'embedding';

/**
 * Heads whose TextSpan texts mention the query: a head matches when at least one of its texts
 * contains one of the query's terms (case-insensitive substring; terms separated by '|' or ',').
 * Score = number of matching texts.
 */
export function selectHeadsBySubstring(ts: { heads: readonly TextSpanHead[] }, query: string): HeadMatch[] {
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
export function selectHeadsBySimilarity(ts: { heads: readonly TextSpanHead[] }, query: Float32Array, embed: (text: string) => Float32Array, top: number): HeadMatch[] {
  return ts.heads
    .map((h) => {
      const sims = h.texts.map((t) => ({ t, s: dot(embed(t), 0, query, 0, query.length) })).sort((a, b) => b.s - a.s);
      const best = sims.slice(0, 3);
      return { layer: h.layer, head: h.head, score: best.reduce((a, b) => a + b.s, 0) / Math.max(1, best.length), matched: best.map((b) => b.t) };
    })
    .sort((a, b) => b.score - a.score || a.layer - b.layer || a.head - b.head)
    .slice(0, top);
}

/**
 * Heads for a query by `match`: substring search in their texts, or the `top` heads whose texts
 * are closest to the query under `model`'s text encoder (every text embedded once).
 */
export async function selectHeads(heads: readonly TextSpanHead[], query: string, match: HeadMatching, opts: { model?: ClipModel; top?: number } = {}): Promise<HeadSelection> {
  if (match === 'substring') return { query, match, heads: selectHeadsBySubstring({ heads }, query) };
  if (!opts.model) throw new AnalysisError('matching heads by embedding needs the model that made the store');
  const texts = [...new Set([query, ...heads.flatMap((h) => h.texts)])];
  const d = opts.model.config.embedDim;
  const emb = normalizeRows((await opts.model.encodeTexts(texts)).features.data, texts.length, d);
  const row = new Map(texts.map((t, i) => [t, emb.subarray(i * d, (i + 1) * d)]));
  return { query, match, heads: selectHeadsBySimilarity({ heads }, row.get(query)!, (t) => row.get(t)!, opts.top ?? 3) };
}

/**
 * The heads of `store` a query picks in a TextSpan file: the file and the model (for `embedding`)
 * must be the store's (src/io/provenance.ts), the picks the same whichever model is loaded
 * (`substring` needs none), each in the store. An empty pick is an error naming the query.
 */
export async function headsForQuery(
  store: StoreData,
  textspan: TextSpanFile,
  query: string,
  match: HeadMatching,
  opts: { model?: ClipModel; top?: number } = {},
): Promise<{ heads: HeadRef[]; selection: HeadSelection }> {
  const storeSide = { what: `store ${store.dir}`, model: store.manifest.model };
  requireSameModel(storeSide, { what: `TextSpan file ${textspan.path}`, model: textspan.model });
  if (match === 'embedding' && opts.model) requireSameModel(storeSide, { what: '--model', model: modelProvenance(opts.model) });
  const selection = await selectHeads(textspan.heads, query, match, opts);
  if (!selection.heads.length) throw new AnalysisError(`no head's TextSpan texts in ${textspan.path} contain '${query}' (try --match embedding with --model, or list --heads)`);
  const heads = selection.heads.map((h) => ({ layer: h.layer, head: h.head }));
  parseHeadSpec(heads.map(headName).join(','), store.manifest); // each must be in the store
  return { heads, selection };
}

// ---------------------------------------------------------------------------------------------
// Mean-ablating them

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

export interface RandomHeadsBaseline {
  draws: number;
  seed: number;
  worst: number[];
  mean: number[];
  overall: number[];
  meanWorst: number;
  meanMean: number;
  meanOverall: number;
}

export interface DebiasStudyResult {
  model: string;
  modelFingerprint?: string;
  images: number;
  heads: HeadRef[];
  /** What is mean-ablated besides the heads (DEBIAS_PROTOCOLS). */
  protocol: DebiasProtocol;
  protocolText: string;
  before: DebiasSummary;
  after: DebiasSummary;
  /** The protocol's own ablation with no heads ('reference' only): what the protocol costs by itself. */
  protocolOnly?: DebiasSummary;
  random?: RandomHeadsBaseline;
  cells: DebiasCell[];
  notes: string[];
}

function summary(g: GroupAccuracy): DebiasSummary {
  return { overall: g.overall, mean: g.mean, worst: g.worst };
}

const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * A debias protocol on a store with `heads` (absolute layers): the ablation in kept-layer indices,
 * whether the layers the store does not keep are mean-ablated too, and the layers random heads
 * are drawn from (those the protocol keeps: heads it ablates anyway would change nothing).
 */
export function debiasAblation(store: StoreData, protocol: DebiasProtocol, heads: HeadRef[]): { spec: AblationSpec; ablateRest: boolean; randomLayers: number[] } {
  const m = store.manifest;
  if (protocol === 'heads-only') return { spec: { heads: toKept(m, heads) }, ablateRest: false, randomLayers: m.layers };
  const firstKept = Math.max(0, m.dims.L - DEBIAS_KEPT_LAYERS);
  const missing = Array.from({ length: m.dims.L }, (_, l) => l).filter((l) => !m.layers.includes(l));
  if (missing.some((l) => l >= firstKept))
    throw new AnalysisError(
      `the reference debias protocol keeps attention layers ${firstKept}-${m.dims.L - 1}, but store ${store.dir} keeps only layers ${keptRange(m)}; decompose the dataset with those layers, or use --protocol heads-only`,
    );
  const early = m.layers.flatMap((l, j) => (l < firstKept ? Array.from({ length: m.dims.H }, (_, h) => [j, h] as [number, number]) : []));
  return { spec: { heads: [...early, ...toKept(m, heads)], mlps: true }, ablateRest: missing.length > 0, randomLayers: m.layers.filter((l) => l >= firstKept) };
}

export interface DebiasOptions {
  /** What else is mean-ablated (default 'reference'; 'heads-only' for SigLIP stores, which the reference's protocol does not cover). */
  protocol?: DebiasProtocol;
  /** Draws of as many random heads (default 10; 0 = none). */
  randomDraws?: number;
  seed?: number;
}

/**
 * Mean-ablate the chosen heads (with what the protocol ablates besides) and report accuracy per
 * (label, group) cell, their mean and the worst cell, before and after, next to ablating as many
 * random heads. Also returns the edited embeddings [n, d] (terms' scale) and the chosen heads'
 * mean vectors [heads, d].
 */
export function debiasStudy(store: StoreData, classifier: TextSet, heads: HeadRef[], opts: DebiasOptions = {}): { result: DebiasStudyResult; edited: Float32Array; means: Float32Array } {
  const m = store.manifest;
  if (!heads.length) throw new AnalysisError('no heads to ablate');
  const al = alignLabels(store, classifier);
  const n = storeRows(store);
  const d = m.dims.d;
  const hasGroups = m.dataset.groups.length > 0 && store.groups.every((g) => g >= 0);
  const groups = hasGroups ? store.groups : new Int32Array(n);
  const evalEmb = (e: Float32Array) => groupAccuracy(predict({ shape: [n, d], data: e }, classifier.embeddings), al.labels, groups);
  const protocol = opts.protocol ?? (m.family === 'siglip' ? 'heads-only' : 'reference');
  const ablated = (hs: HeadRef[]) => {
    const a = debiasAblation(store, protocol, hs);
    return composeEmbeddings(store, a.spec, { ablateRest: a.ablateRest });
  };
  const { randomLayers } = debiasAblation(store, protocol, heads);
  const before = evalEmb(composeEmbeddings(store, {}));
  const edited = ablated(heads);
  const after = evalEmb(edited);
  const inRandomLayers = heads.filter((h) => randomLayers.includes(h.layer)).length;
  const others = randomLayers.length * m.dims.H - inRandomLayers;
  const wanted = opts.randomDraws ?? 10;
  const draws = others >= heads.length ? wanted : 0; // too few other heads to compare with
  const seed = opts.seed ?? 0;
  const rng = mulberry32(seed);
  const rand: GroupAccuracy[] = [];
  for (let i = 0; i < draws; i++) rand.push(evalEmb(ablated(randomHeads(randomLayers, m.dims.H, heads.length, heads, rng))));
  const result: DebiasStudyResult = {
    ...provenanceFields(m.model),
    images: n,
    heads,
    protocol,
    protocolText: DEBIAS_PROTOCOLS[protocol],
    before: summary(before),
    after: summary(after),
    ...(protocol === 'reference' ? { protocolOnly: summary(evalEmb(ablated([]))) } : {}),
    cells: debiasCells(before, after, rand, (c) => al.classNames[c] ?? String(c), (g) => (hasGroups ? m.dataset.groups[g] : 'all')),
    notes: [
      'Accuracy per (label, group) cell; "mean" is the unweighted mean over cells, "worst" the lowest cell.',
      hasGroups ? `Groups from the store: ${m.dataset.groups.join(', ')}.` : 'The store has no groups: every label is one cell.',
    ],
  };
  if (wanted > 0 && draws === 0) result.notes.push(`No random baseline: only ${others} other heads for ${heads.length} random ones.`);
  if (protocol === 'reference') result.notes.push(`Random heads are drawn from layers ${randomLayers.join(', ')}, the ones the protocol keeps.`);
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
  return { result, edited, means: headMeans(store, heads) };
}

/** Each chosen head's mean term over the store, [heads, d]: what mean-ablation puts in its place. */
function headMeans(store: StoreData, heads: HeadRef[]): Float32Array {
  const m = store.manifest;
  const n = storeRows(store);
  const d = m.dims.d;
  const means = new Float32Array(heads.length * d);
  heads.forEach((h, k) => means.set(colMeans(headTerms(store.attn, keptIndex(m, h.layer), h.head), n, d), k * d));
  return means;
}

/** Per (label, group) cell: accuracy before, after and (mean over draws) with random heads. */
function debiasCells(before: GroupAccuracy, after: GroupAccuracy, rand: GroupAccuracy[], label: (c: number) => string, group: (g: number) => string): DebiasCell[] {
  const key = (c: { label: number; group: number }) => `${c.label}|${c.group}`;
  const afterBy = new Map(after.cells.map((c) => [key(c), c.accuracy]));
  return before.cells.map((c) => {
    const cell: DebiasCell = { label: label(c.label), group: group(c.group), count: c.count, before: c.accuracy, after: afterBy.get(key(c)) ?? NaN };
    if (rand.length) cell.random = rand.reduce((a, r) => a + (r.cells.find((x) => key(x) === key(c))?.accuracy ?? 0), 0) / rand.length;
    return cell;
  });
}

/**
 * Write the edited image representations (rows in store order) and the head means used, as
 * safetensors: image_features [n, d], head_means [heads, d], index [n] (item index per row).
 */
export function exportDebiased(path: string, store: StoreData, storeDir: string, heads: HeadRef[], edited: Float32Array, means: Float32Array, protocol: DebiasProtocol): void {
  const m = store.manifest;
  const n = storeRows(store);
  const d = m.dims.d;
  writeSafetensors(
    path,
    {
      image_features: f32([n, d], edited),
      head_means: f32([heads.length, d], means),
      index: { dtype: 'I32', shape: [n], data: store.index },
    },
    {
      metadata: {
        ...provenanceMetadata(m.model),
        store: storeDir,
        heads: JSON.stringify(heads),
        protocol,
        normalised: String(m.normalised),
        note: `image_features = sum of the store terms with the listed heads replaced by head_means and, per the protocol, ${DEBIAS_PROTOCOLS[protocol]} (rows in store order; index = item index)`,
      },
    },
  );
}
