// The paper's §4.2 on a store: pick the heads whose TextSpan texts describe a spurious property
// (e.g. location), mean-ablate them, and compare accuracy per (label, group) cell and on the
// worst group before and after, next to ablating as many random heads; export the edited
// image representations.

import { writeSafetensors } from '../io/safetensors.ts';
import type { StoreData } from '../io/store.ts';
import type { HeadRef } from '../notation.ts';
import { mulberry32 } from '../rng.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { f32 } from '../tensor.ts';
import { keptIndex, randomHeads, toKept } from './heads.ts';
import { colMeans, dot, normalizeRows } from './linalg.ts';
import { alignLabels, composeEmbeddings, storeRows } from './store_terms.ts';
import type { TextSet } from './text_sets.ts';
import type { TextSpanHead } from './textspan_study.ts';
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
  images: number;
  heads: HeadRef[];
  before: DebiasSummary;
  after: DebiasSummary;
  random?: RandomHeadsBaseline;
  cells: DebiasCell[];
  notes: string[];
}

function summary(g: GroupAccuracy): DebiasSummary {
  return { overall: g.overall, mean: g.mean, worst: g.worst };
}

const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

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
  const n = storeRows(store);
  const d = m.dims.d;
  const hasGroups = m.dataset.groups.length > 0 && store.groups.every((g) => g >= 0);
  const groups = hasGroups ? store.groups : new Int32Array(n);
  const evalEmb = (e: Float32Array) => groupAccuracy(predict({ shape: [n, d], data: e }, classifier.embeddings), al.labels, groups);
  const before = evalEmb(composeEmbeddings(store, {}));
  const edited = composeEmbeddings(store, { heads: toKept(m, heads) });
  const after = evalEmb(edited);
  const others = m.layers.length * m.dims.H - heads.length;
  const wanted = opts.randomDraws ?? 10;
  const draws = others >= heads.length ? wanted : 0; // too few other heads to compare with
  const seed = opts.seed ?? 0;
  const rng = mulberry32(seed);
  const rand: GroupAccuracy[] = [];
  for (let i = 0; i < draws; i++) rand.push(evalEmb(composeEmbeddings(store, { heads: toKept(m, randomHeads(m.layers, m.dims.H, heads.length, heads, rng)) })));
  const result: DebiasStudyResult = {
    model: m.model.name,
    images: n,
    heads,
    before: summary(before),
    after: summary(after),
    cells: debiasCells(before, after, rand, (c) => al.classNames[c] ?? String(c), (g) => (hasGroups ? m.dataset.groups[g] : 'all')),
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
export function exportDebiased(path: string, store: StoreData, storeDir: string, heads: HeadRef[], edited: Float32Array, means: Float32Array): void {
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
        model: m.model.name,
        store: storeDir,
        heads: JSON.stringify(heads),
        normalised: String(m.normalised),
        note: 'image_features = sum of the store terms with the listed heads replaced by head_means (rows in store order; index = item index)',
      },
    },
  );
}
