// (a) Mean-ablation by layer (paper §3.2) per attribute family: zero-shot accuracy when the
// attention layers are mean-ablated cumulatively from the first, and when all MLPs are.

import { meanAblate, type DecompositionTerms } from '../analyses/ablation.ts';
import { topkAccuracy } from '../analyses/zeroshot.ts';
import type { F32 } from '../tensor.ts';
import { FAMILIES } from '../toyworld/index.ts';

export interface FamilyAblation {
  family: string;
  classes: number;
  baseline: number;
  /** All MLPs and the ln_pre term mean-ablated. */
  mlps: number;
  /** upTo[l]: attention layers 0..l mean-ablated. */
  upTo: number[];
}

export function zeroShot(emb: Float32Array, d: number, classifier: F32, labels: Int32Array): number {
  return topkAccuracy({ shape: [emb.length / d, d], data: emb }, classifier, labels);
}

export function layerAblation(terms: DecompositionTerms, classifiers: Record<string, F32>, labels: Record<string, Int32Array>): FamilyAblation[] {
  const [, L, , d] = terms.attn.shape;
  const specs = { baseline: meanAblate(terms, {}), mlps: meanAblate(terms, { mlps: true }), upTo: Array.from({ length: L }, (_, l) => meanAblate(terms, { layersUpTo: l })) };
  return FAMILIES.map((family) => {
    const acc = (e: Float32Array) => zeroShot(e, d, classifiers[family], labels[family]);
    return { family, classes: classifiers[family].shape[0], baseline: acc(specs.baseline), mlps: acc(specs.mlps), upTo: specs.upTo.map(acc) };
  });
}
