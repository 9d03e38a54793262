// Mean-ablation (paper §3.2): replace chosen terms of the decomposition by their mean over the
// dataset, re-sum, and measure zero-shot accuracy. As the reference compute_ablations.py /
// compute_use_specific_heads.py.

import { type Mat, dims } from './linalg.ts';
import { topkAccuracy } from './zeroshot.ts';
import { ShapeError } from '../errors.ts';

export interface DecompositionTerms {
  /** Per-head direct effects. */
  attn: Mat; // [n, L, H, d]
  /** The ln_pre term (slot LN_PRE_SLOT = 0) then one term per MLP (slot mlpSlot(l) = l+1); see notation.ts. */
  mlp: Mat; // [n, L+1, d]
  /** The CLS→CLS part (source token i = 0) of the attention terms, per head or summed over heads. */
  attnCls?: Mat; // [n, L, H, d] or [n, L, d]
}

export interface AblationSpec {
  /** Mean-ablate every MLP term and the ln_pre term. */
  mlps?: boolean;
  /** Mean-ablate the CLS→CLS attention part of every layer (needs `attnCls`). */
  clsToCls?: boolean;
  /** Mean-ablate all heads of attention layers 0..layersUpTo (inclusive). */
  layersUpTo?: number;
  /** Mean-ablate these heads, as [layer, head]. */
  heads?: ReadonlyArray<readonly [number, number]>;
}

function shapes(terms: DecompositionTerms) {
  const [n, L, H, d] = dims('attention terms', terms.attn, ['n', 'L', 'H', 'd']);
  dims('MLP terms', terms.mlp, ['n', 'L+1', 'd'], { n, 'L+1': L + 1, d });
  return { n, L, H, d };
}

/** Σ of all terms per image: the (normalised) image embedding [n, d]. */
export function sumTerms(terms: DecompositionTerms): Float32Array {
  return meanAblate(terms, {});
}

/**
 * Embeddings [n, d] with the chosen terms replaced by their dataset mean. Specs combine; a head
 * that is ablated whole is not CLS-ablated again.
 */
export function meanAblate(terms: DecompositionTerms, spec: AblationSpec): Float32Array {
  const { n, L, H, d } = shapes(terms);
  const A = terms.attn.data;
  const Mlp = terms.mlp.data;
  // Which heads are replaced whole.
  const whole = new Uint8Array(L * H);
  if (spec.layersUpTo !== undefined) {
    const j = spec.layersUpTo;
    if (!Number.isInteger(j) || j < -1 || j >= L) throw new RangeError(`layersUpTo must be in -1..${L - 1}, got ${j}`);
    for (let l = 0; l <= j; l++) for (let h = 0; h < H; h++) whole[l * H + h] = 1;
  }
  for (const hd of spec.heads ?? []) {
    const [l, h] = hd;
    if (!Number.isInteger(l) || l < 0 || l >= L || !Number.isInteger(h) || h < 0 || h >= H)
      throw new RangeError(`head [${l}, ${h}] out of range: layers 0..${L - 1}, heads 0..${H - 1}`);
    whole[l * H + h] = 1;
  }
  // CLS→CLS part, per head (clsPerHead) or per layer.
  let cls: Float32Array | Float64Array | undefined;
  let clsPerHead = true;
  if (spec.clsToCls) {
    if (!terms.attnCls) throw new ShapeError('clsToCls ablation needs the CLS→CLS attention terms (attnCls)');
    const s = terms.attnCls.shape;
    if (s.length === 3) {
      dims('CLS→CLS terms', terms.attnCls, ['n', 'L', 'd'], { n, L, d });
      clsPerHead = false;
      for (let l = 0; l < L; l++) {
        let k = 0;
        for (let h = 0; h < H; h++) k += whole[l * H + h];
        if (k > 0 && k < H)
          throw new ShapeError(`clsToCls with some heads of layer ${l} ablated needs per-head CLS terms [n, L, H, d]`);
      }
    } else dims('CLS→CLS terms', terms.attnCls, ['n', 'L', 'H', 'd'], { n, L, H, d });
    cls = terms.attnCls.data;
  }
  const clsSlots = clsPerHead ? L * H : L;
  const clsActive = (slot: number) => (clsPerHead ? !whole[slot] : !whole[slot * H]);

  // Dataset means of everything that gets replaced.
  const meanAttn = new Float64Array(L * H * d);
  const meanMlp = new Float64Array((L + 1) * d);
  const meanCls = new Float64Array(clsSlots * d);
  for (let b = 0; b < n; b++) {
    for (let s = 0; s < L * H; s++) {
      if (!whole[s]) continue;
      const o = (b * L * H + s) * d;
      for (let j = 0; j < d; j++) meanAttn[s * d + j] += A[o + j];
    }
    if (spec.mlps) {
      const o = b * (L + 1) * d;
      for (let j = 0; j < (L + 1) * d; j++) meanMlp[j] += Mlp[o + j];
    }
    if (cls)
      for (let s = 0; s < clsSlots; s++) {
        if (!clsActive(s)) continue;
        const o = (b * clsSlots + s) * d;
        for (let j = 0; j < d; j++) meanCls[s * d + j] += cls[o + j];
      }
  }
  if (n > 0) {
    for (let j = 0; j < meanAttn.length; j++) meanAttn[j] /= n;
    for (let j = 0; j < meanMlp.length; j++) meanMlp[j] /= n;
    for (let j = 0; j < meanCls.length; j++) meanCls[j] /= n;
  }
  // Constant part shared by every image.
  const base = new Float64Array(d);
  for (let s = 0; s < L * H; s++) if (whole[s]) for (let j = 0; j < d; j++) base[j] += meanAttn[s * d + j];
  if (spec.mlps) for (let t = 0; t <= L; t++) for (let j = 0; j < d; j++) base[j] += meanMlp[t * d + j];
  if (cls) for (let s = 0; s < clsSlots; s++) if (clsActive(s)) for (let j = 0; j < d; j++) base[j] += meanCls[s * d + j];

  const out = new Float32Array(n * d);
  const acc = new Float64Array(d);
  for (let b = 0; b < n; b++) {
    acc.set(base);
    for (let s = 0; s < L * H; s++) {
      if (whole[s]) continue;
      const o = (b * L * H + s) * d;
      for (let j = 0; j < d; j++) acc[j] += A[o + j];
    }
    if (!spec.mlps) {
      const o = b * (L + 1) * d;
      for (let t = 0; t <= L; t++) for (let j = 0; j < d; j++) acc[j] += Mlp[o + t * d + j];
    }
    if (cls)
      for (let s = 0; s < clsSlots; s++) {
        if (!clsActive(s)) continue;
        const o = (b * clsSlots + s) * d;
        for (let j = 0; j < d; j++) acc[j] -= cls[o + j];
      }
    for (let j = 0; j < d; j++) out[b * d + j] = acc[j];
  }
  return out;
}

/**
 * Top-k zero-shot accuracy (0..1) of embeddings [n, d] (e.g. from meanAblate) under a
 * classifier [C, d].
 */
export function accuracy(embeddings: Mat | Float32Array, classifier: Mat, labels: ArrayLike<number>, k = 1): number {
  const d = classifier.shape[1];
  const emb = embeddings instanceof Float32Array ? { shape: [embeddings.length / d, d], data: embeddings } : embeddings;
  if (embeddings instanceof Float32Array && embeddings.length % d !== 0)
    throw new ShapeError(`embeddings have ${embeddings.length} elements, not a multiple of d = ${d}`);
  return topkAccuracy(emb, classifier, labels, k);
}

export interface AblationSummary {
  baseline: number;
  mlps: number;
  clsToCls?: number;
  mlpsAndClsToCls?: number;
  /** Accuracy after mean-ablating attention layers 0..j, for j = 0..L-1. */
  layersUpTo: number[];
}

/** The reference compute_ablations.py table in one call (accuracies 0..1). */
export function ablationSummary(terms: DecompositionTerms, classifier: Mat, labels: ArrayLike<number>): AblationSummary {
  const { L } = shapes(terms);
  const acc = (spec: AblationSpec) => accuracy(meanAblate(terms, spec), classifier, labels);
  const out: AblationSummary = { baseline: acc({}), mlps: acc({ mlps: true }), layersUpTo: [] };
  if (terms.attnCls) {
    out.clsToCls = acc({ clsToCls: true });
    out.mlpsAndClsToCls = acc({ mlps: true, clsToCls: true });
  }
  for (let j = 0; j < L; j++) out.layersUpTo.push(acc({ layersUpTo: j }));
  return out;
}

// ---------------------------------------------------------------------------------------------
// The protocols of the paper's experiments: what is mean-ablated besides the terms studied.

/**
 * Spurious-cue removal (§4.2).
 * - 'reference' (compute_use_specific_heads.py): the chosen heads, every attention layer but the
 *   last 4, and every MLP (with the ln_pre term) are mean-ablated; what is left per image is the
 *   last 4 layers' other heads.
 * - 'heads-only': only the chosen heads are mean-ablated.
 */
export type DebiasProtocol = 'reference' | 'heads-only';
export const DEBIAS_PROTOCOLS: Record<DebiasProtocol, string> = {
  reference: "the reference's protocol (compute_use_specific_heads.py): the chosen heads, every attention layer but the last 4 and every MLP mean-ablated",
  'heads-only': 'only the chosen heads mean-ablated; every other term kept',
};

/** Layers (absolute) the reference's debias protocol keeps: the last 4 of L. */
export const DEBIAS_KEPT_LAYERS = 4;

/** The ablation a debias protocol applies with `heads` (absolute [layer, head]) on a model of L layers. */
export function debiasSpec(protocol: DebiasProtocol, L: number, heads: ReadonlyArray<readonly [number, number]>): AblationSpec {
  if (protocol === 'heads-only') return { heads };
  return { heads, mlps: true, ...(L > DEBIAS_KEPT_LAYERS ? { layersUpTo: L - DEBIAS_KEPT_LAYERS - 1 } : {}) };
}

/**
 * TextSpan completeness (§4.1, accuracy with the chosen layers' heads replaced by their
 * reconstructions from m texts).
 * - 'reference' (compute_complete_text_set.py): the attention layers not chosen are mean-ablated,
 *   the MLP terms (and ln_pre) are kept, per image.
 * - 'ablate-mlps': the MLP terms are mean-ablated too (cliplens before it followed the reference).
 */
export type CompletenessProtocol = 'reference' | 'ablate-mlps';
export const COMPLETENESS_PROTOCOLS: Record<CompletenessProtocol, string> = {
  reference: "the reference's protocol (compute_complete_text_set.py): the chosen layers' heads replaced by their reconstructions, the other attention layers mean-ablated, the MLP terms kept",
  'ablate-mlps': "the chosen layers' heads replaced by their reconstructions, the other attention layers and every MLP mean-ablated",
};
