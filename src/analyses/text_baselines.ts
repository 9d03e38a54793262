// Baselines for TextSpan's text pool (paper §4.1, Fig. 3): how much zero-shot accuracy the
// heads keep when each is replaced by its reconstruction from m texts of another pool: the most
// common English words, random texts built from the pool's own vocabulary, and random unit
// directions. The random pools are seeded; each is drawn several times and reported as the mean
// and the spread (sample standard deviation) over the draws. Every curve is textspanStudy's
// accuracy curve on that pool, so the protocol (what is ablated, summed) is TextSpan's own.

import type { StoreData } from '../io/store.ts';
import { f32, type F32 } from '../tensor.ts';
import { mulberry32, normalRng } from '../rng.ts';
import type { CompletenessProtocol } from './ablation.ts';
import { textspanStudy } from './textspan_study.ts';
import type { TextSet } from './text_sets.ts';
import { AnalysisError } from '../errors.ts';

/** `count` directions drawn from N(0, I_d) and normalised to unit length, [count, d]. */
export function randomDirections(count: number, d: number, seed: number): F32 {
  if (!Number.isSafeInteger(count) || count < 1) throw new AnalysisError(`random directions: count must be a positive integer, got ${count}`);
  if (!Number.isSafeInteger(d) || d < 1) throw new AnalysisError(`random directions: dimension must be a positive integer, got ${d}`);
  const rand = normalRng(seed);
  const out = new Float32Array(count * d);
  const row = new Float64Array(d);
  for (let i = 0; i < count; i++) {
    let nr = 0;
    for (let j = 0; j < d; j++) {
      row[j] = rand();
      nr += row[j] * row[j];
    }
    nr = Math.sqrt(nr);
    for (let j = 0; j < d; j++) out[i * d + j] = row[j] / nr;
  }
  return f32([count, d], out);
}

/** The words of a text: lower-case runs of letters, digits and apostrophes. */
export function words(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];
}

/** Distinct words of the pool in order of first appearance. */
export function poolVocabulary(texts: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const t of texts) for (const w of words(t)) seen.add(w);
  return [...seen];
}

/**
 * `count` texts made of the pool's words: each takes the word count of a pool text picked at
 * random and fills it with words drawn uniformly from the pool's vocabulary (mulberry32(seed)).
 * Texts keep the pool's length distribution but lose its meaning.
 */
export function randomTexts(pool: readonly string[], count: number, seed: number): string[] {
  const vocab = poolVocabulary(pool);
  const lengths = pool.map((t) => words(t).length).filter((n) => n > 0);
  if (!vocab.length || !lengths.length) throw new AnalysisError('random texts: the pool has no words');
  if (!Number.isSafeInteger(count) || count < 1) throw new AnalysisError(`random texts: count must be a positive integer, got ${count}`);
  const rng = mulberry32(seed);
  const pick = (n: number) => Math.floor(rng() * n);
  return Array.from({ length: count }, () => Array.from({ length: lengths[pick(lengths.length)] }, () => vocab[pick(vocab.length)]).join(' '));
}

/** Seed of draw i of a random pool (so draws are independent of how many are asked for). */
export function drawSeed(seed: number, draw: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) + Math.imul(draw + 1, 0x85ebca77)) >>> 0;
}

/** Mean and sample standard deviation (n−1; 0 for one value) per column of draws [draw][m]. */
export function meanAndSpread(draws: readonly (readonly number[])[]): { mean: number[]; std: number[] } {
  if (!draws.length) return { mean: [], std: [] };
  const M = draws[0].length;
  const mean = Array.from({ length: M }, (_, j) => draws.reduce((a, r) => a + r[j], 0) / draws.length);
  const std = mean.map((mu, j) => (draws.length > 1 ? Math.sqrt(draws.reduce((a, r) => a + (r[j] - mu) ** 2, 0) / (draws.length - 1)) : 0));
  return { mean, std };
}

export type PoolKind = 'pool' | 'common words' | 'random texts' | 'random directions';

/** Accuracy vs texts per head for one pool (one row per draw; one row for a fixed pool). */
export interface PoolCurve {
  name: string;
  kind: PoolKind;
  /** Candidates per draw. */
  size: number;
  m: number[];
  /** [draw][m] accuracy (0..1). */
  draws: number[][];
  /** Seeds of the draws (random pools only). */
  seeds: number[];
  mean: number[];
  std: number[];
}

export interface CurveOptions {
  /** Absolute layers whose heads are replaced (default: the last 4 kept). */
  layers?: number[];
  rank?: number;
  /** What else is mean-ablated (textspanStudy's protocol; default its own). */
  protocol?: CompletenessProtocol;
  /** Texts per head (default 10, 20, …, 60). */
  ms: number[];
}

/** TextSpan's accuracy curve on one candidate set: accuracy with every chosen head replaced by its m-text reconstruction. */
export async function accuracyCurve(store: StoreData, pool: TextSet, classifier: TextSet, opts: CurveOptions): Promise<{ m: number[]; accuracy: number[] }> {
  const r = await textspanStudy(store, pool, { layers: opts.layers, rank: opts.rank, k: 1, classifier, ms: opts.ms, protocol: opts.protocol });
  if (!r.accuracy) throw new AnalysisError('TextSpan accuracy needs a classifier');
  return { m: r.accuracy.m, accuracy: r.accuracy.replaced };
}

export function curveFromDraws(name: string, kind: PoolKind, size: number, m: number[], draws: number[][], seeds: number[] = []): PoolCurve {
  return { name, kind, size, m, draws, seeds, ...meanAndSpread(draws) };
}

export interface BaselineOptions extends CurveOptions {
  /** Draws of each random pool (default 3). */
  draws?: number;
  seed?: number;
  /** Candidates per baseline pool (default: the size of the main pool). */
  size?: number;
  /** Embeds texts with the store's model (normalised rows); without it only random directions run. */
  embed?: (texts: string[]) => Promise<TextSet>;
  /** The common-words pool (e.g. the bundled 3498 most common English words); its first `size` words are used. */
  commonWords?: string[];
  /** Also the main pool's own curve, first (default true; false when the caller has it from its TextSpan run). */
  includePool?: boolean;
}

/** One curve to compute: the main pool, a fixed pool, or a random pool with its draws' seeds. */
export interface PoolSpec {
  name: string;
  kind: PoolKind;
  size: number;
  seeds: number[];
}

export const POOL_NAMES: Record<PoolKind, string> = {
  pool: 'image descriptions',
  'common words': 'common words',
  'random texts': 'random texts from the pool vocabulary',
  'random directions': 'random unit directions',
};

/** The curves textspanBaselines computes, in order: main pool, common words, random texts (these need texts embedded), random directions. */
export function baselineSpecs(poolSize: number, opts: Pick<BaselineOptions, 'draws' | 'seed' | 'size'> & { texts: boolean; commonWords: boolean }): PoolSpec[] {
  const draws = opts.draws ?? 3;
  if (!Number.isSafeInteger(draws) || draws < 1) throw new AnalysisError(`draws must be a positive integer, got ${draws}`);
  const size = opts.size ?? poolSize;
  const seeds = Array.from({ length: draws }, (_, i) => drawSeed(opts.seed ?? 0, i));
  const specs: PoolSpec[] = [{ name: POOL_NAMES.pool, kind: 'pool', size: poolSize, seeds: [] }];
  if (opts.texts && opts.commonWords) specs.push({ name: POOL_NAMES['common words'], kind: 'common words', size, seeds: [] });
  if (opts.texts) specs.push({ name: POOL_NAMES['random texts'], kind: 'random texts', size, seeds });
  specs.push({ name: POOL_NAMES['random directions'], kind: 'random directions', size, seeds });
  return specs;
}

/** The candidate set of one draw of a spec: the pool itself, the first `size` common words, seeded random texts or random directions. */
export async function specPool(spec: PoolSpec, draw: number, pool: TextSet, d: number, opts: Pick<BaselineOptions, 'embed' | 'commonWords'>): Promise<TextSet> {
  const embed = (texts: string[]) => {
    if (!opts.embed) throw new AnalysisError(`the ${spec.name} baseline needs the model to embed its texts`);
    return opts.embed(texts);
  };
  switch (spec.kind) {
    case 'pool':
      return pool;
    case 'common words':
      if (!opts.commonWords?.length) throw new AnalysisError('the common-words baseline needs a list of words');
      return embed(opts.commonWords.slice(0, spec.size));
    case 'random texts':
      return embed(randomTexts(pool.names, spec.size, spec.seeds[draw]));
    case 'random directions':
      return { kind: 'pool', names: Array.from({ length: spec.size }, (_, i) => `random direction ${i}`), embeddings: randomDirections(spec.size, d, spec.seeds[draw]), model: pool.model };
  }
}

/** One spec's curve: the accuracy curve of each draw's candidate set, with mean and spread. */
export async function poolCurve(store: StoreData, pool: TextSet, classifier: TextSet, spec: PoolSpec, opts: CurveOptions & Pick<BaselineOptions, 'embed' | 'commonWords'>): Promise<PoolCurve> {
  const rows: number[][] = [];
  let m: number[] = [];
  let size = spec.size;
  for (let i = 0; i < Math.max(1, spec.seeds.length); i++) {
    const cands = await specPool(spec, i, pool, store.manifest.dims.d, opts);
    const c = await accuracyCurve(store, cands, classifier, opts);
    rows.push(c.accuracy);
    m = c.m;
    size = cands.names.length;
  }
  return curveFromDraws(spec.name, spec.kind, size, m, rows, spec.seeds);
}

/**
 * The main pool's curve and its baselines: common words (when given), random texts from the
 * pool's vocabulary and random unit directions (seeded draws, mean ± spread). Needs a
 * classifier whose classes match the store's labels.
 */
export async function textspanBaselines(store: StoreData, pool: TextSet, classifier: TextSet, opts: BaselineOptions, onCurve?: (c: PoolCurve) => void): Promise<PoolCurve[]> {
  const specs = baselineSpecs(pool.names.length, { ...opts, texts: !!opts.embed, commonWords: !!opts.commonWords?.length }).filter((s) => opts.includePool !== false || s.kind !== 'pool');
  const out: PoolCurve[] = [];
  for (const spec of specs) {
    out.push(await poolCurve(store, pool, classifier, spec, opts));
    onCurve?.(out[out.length - 1]);
  }
  return out;
}
