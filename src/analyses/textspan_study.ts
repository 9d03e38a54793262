// The paper's §4.1 on a store: TextSpan's texts for every head of the chosen layers, and (with a
// classifier) the accuracy kept when those heads are replaced by their reconstructions from
// their first m texts, by default with the reference's protocol (compute_complete_text_set.py:
// the other attention layers mean-ablated, the MLPs kept; analyses/ablation.ts); the heads.json
// file that records the texts and the model that made them.

import { readTextFile } from '../io/files.ts';
import { fromJson, provenanceFields, type ModelProvenance } from '../io/provenance.ts';
import type { StoreData } from '../io/store.ts';
import type { F32 } from '../tensor.ts';
import { COMPLETENESS_PROTOCOLS, type CompletenessProtocol } from './ablation.ts';
import { keptIndex } from './heads.ts';
import { dot } from './linalg.ts';
import { alignLabels, checkPool, composeEmbeddings, storeRows } from './store_terms.ts';
import type { TextSet } from './text_sets.ts';
import { type HeadSpan, headSpan, headTerms, pipelined, textspan } from './textspan.ts';
import { topkAccuracy } from './zeroshot.ts';
import { AnalysisError } from '../errors.ts';

export interface TextSpanHeadJson {
  layer: number;
  head: number;
  texts: string[];
  indices: number[];
  varianceExplained: number[];
}

/** The heads.json format the web explorer and `debias --query` read. */
export interface TextSpanJson {
  /** The model that made the store (name; see src/io/provenance.ts). */
  model: string;
  modelFingerprint?: string;
  store: string;
  rank: number;
  heads: TextSpanHeadJson[];
}

export interface TextSpanAccuracy {
  /** What is mean-ablated besides the replaced heads (COMPLETENESS_PROTOCOLS). */
  protocol: CompletenessProtocol;
  protocolText: string;
  /** Texts per head. */
  m: number[];
  /** Accuracy with the chosen layers' heads replaced by their m-text reconstructions, the rest as the protocol says. */
  replaced: number[];
  /** Chosen layers intact, the rest as the protocol says. */
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
  /** What else is mean-ablated for the accuracy curve (default 'reference'). */
  protocol?: CompletenessProtocol;
  storePath?: string;
  onHead?: (done: number, total: number) => void;
}

/** Picked texts as orthonormal directions (Gram–Schmidt in pick order = TextSpan's deflation), [K, d]. */
function pickedDirections(d: number, T: Float32Array, indices: number[], span: HeadSpan): { U: Float64Array; K: number; mu: Float64Array } {
  const { Vr, rank: r, mu } = span;
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
 * every head of those layers is replaced by its reconstruction from its first m texts, the
 * other terms mean-ablated or kept as `protocol` says (default: the reference's, where the
 * attention layers not chosen are mean-ablated and the MLP terms kept).
 */
export async function textspanStudy(store: StoreData, pool: TextSet, opts: TextSpanStudyOptions): Promise<TextSpanStudyResult> {
  const m = store.manifest;
  checkPool(store, pool);
  const { H, d } = m.dims;
  const n = storeRows(store);
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
  // two heads in flight: one's products on ONNX Runtime overlap the other's eigensolve
  const jobs = kept.flatMap((j, li) => Array.from({ length: H }, (_, h) => ({ li, j, h })));
  await pipelined(
    jobs,
    async ({ li, j, h }) => {
      const C = headTerms(store.attn, j, h);
      const span = await headSpan(C, n, d, rank);
      return { li, h, C, span, ts: await textspan({ shape: [n, d], data: C }, T, { k: K, r: rank }, span) };
    },
    ({ li, h, C, span, ts }) => {
      heads.push({
        layer: layers[li],
        head: h,
        texts: ts.indices.slice(0, opts.k).map((i) => pool.names[i]),
        indices: ts.indices.slice(0, opts.k),
        varianceExplained: ts.varianceExplained.slice(0, opts.k),
      });
      if (ms.length) addReconstructionDeltas(C, n, d, pickedDirections(d, T.data, ts.indices, span), ms, deltas);
      opts.onHead?.(heads.length, total);
    },
  );
  const out: TextSpanStudyResult = { ...provenanceFields(m.model), store: opts.storePath ?? m.dataset.root, rank, k: opts.k, layers, heads };
  if (al && opts.classifier) out.accuracy = reconstructionAccuracy(store, opts.classifier.embeddings, al.labels, kept, ms, deltas, opts.protocol ?? 'reference');
  return out;
}

/**
 * For each m: deltas[q] += (the head's reconstruction from its first ms[q] texts) − (its terms),
 * per image, [n, d]. The reconstruction is the mean plus the projection of the centred terms on
 * the first m picked directions.
 */
function addReconstructionDeltas(C: Float32Array, n: number, d: number, picked: { U: Float64Array; K: number; mu: Float64Array }, ms: number[], deltas: Float64Array[]): void {
  const { U, K, mu } = picked;
  const x = new Float64Array(d);
  const proj = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < d; p++) x[p] = C[i * d + p] - mu[p];
    proj.fill(0);
    let done = 0;
    ms.forEach((mm, q) => {
      for (; done < Math.min(mm, K); done++) {
        const c = dot(x, 0, U, done * d, d);
        for (let p = 0; p < d; p++) proj[p] += c * U[done * d + p];
      }
      const D = deltas[q];
      for (let p = 0; p < d; p++) D[i * d + p] += proj[p] - x[p];
    });
  }
}

/**
 * The completeness accuracies: the attention layers not chosen (kept or not by the store) mean-
 * ablated, the MLP terms kept ('reference') or mean-ablated ('ablate-mlps'), the chosen layers'
 * heads intact or replaced by their reconstructions.
 */
function reconstructionAccuracy(store: StoreData, cls: F32, labels: Int32Array, kept: number[], ms: number[], deltas: Float64Array[], protocol: CompletenessProtocol): TextSpanAccuracy {
  const m = store.manifest;
  const { H, d } = m.dims;
  const n = storeRows(store);
  const others = m.layers.flatMap((_, j) => (kept.includes(j) ? [] : Array.from({ length: H }, (_, h) => [j, h] as [number, number])));
  const base = composeEmbeddings(store, { mlps: protocol === 'ablate-mlps', heads: others }, { ablateRest: true });
  const acc = (e: Float32Array) => topkAccuracy({ shape: [n, d], data: e }, cls, labels);
  return {
    protocol,
    protocolText: COMPLETENESS_PROTOCOLS[protocol],
    m: ms,
    replaced: deltas.map((D) => acc(base.map((v, i) => v + D[i]))),
    chosenLayersOnly: acc(base),
    baseline: acc(composeEmbeddings(store, {})),
  };
}

/** One head of a TextSpan file as the explorer and `debias --query` read it. */
export interface TextSpanHead {
  layer: number;
  head: number;
  texts: string[];
  varianceExplained?: number[];
}

/** A TextSpan file as read: its heads and the model that made it (when it records one). */
export interface TextSpanFile {
  path: string;
  model?: ModelProvenance;
  heads: TextSpanHead[];
}

/**
 * Read a TextSpan file: `{ model?, modelFingerprint?, heads: [{ layer, head, texts, varianceExplained? }] }`
 * as `cliplens textspan --out` writes it, or heads naming their texts by `indices` into a
 * top-level `texts` (or `pool`) list. One-line errors name the file and the entry.
 */
export function readTextSpanFile(path: string): TextSpanFile {
  const text = readTextFile(path, 'TextSpan file');
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new AnalysisError(`TextSpan file ${path} is not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  const root = j as { heads?: unknown; texts?: unknown; pool?: unknown };
  if (!root || typeof root !== 'object' || !Array.isArray(root.heads)) throw new AnalysisError(`TextSpan file ${path} has no "heads" array (write one with 'cliplens textspan --out')`);
  const pool = Array.isArray(root.texts) ? root.texts : Array.isArray(root.pool) ? root.pool : undefined;
  const model = fromJson(root as { model?: unknown; modelFingerprint?: unknown });
  const heads = root.heads.map((h: unknown, i: number): TextSpanHead => {
    const e = h as { layer?: unknown; head?: unknown; texts?: unknown; indices?: unknown; varianceExplained?: unknown };
    const where = `TextSpan file ${path}: heads[${i}]`;
    if (!Number.isInteger(e?.layer) || !Number.isInteger(e?.head) || (e.layer as number) < 0 || (e.head as number) < 0) throw new AnalysisError(`${where} needs integer "layer" and "head"`);
    let texts: unknown = e.texts;
    if (texts === undefined && Array.isArray(e.indices) && pool) texts = e.indices.map((k) => pool[k as number]);
    if (!Array.isArray(texts) || texts.some((t) => typeof t !== 'string')) throw new AnalysisError(`${where} needs "texts": an array of strings`);
    const ve = Array.isArray(e.varianceExplained) && e.varianceExplained.every((x) => typeof x === 'number') ? (e.varianceExplained as number[]) : undefined;
    return { layer: e.layer as number, head: e.head as number, texts: texts as string[], ...(ve ? { varianceExplained: ve } : {}) };
  });
  return { path, ...(model ? { model } : {}), heads };
}
