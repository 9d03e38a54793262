// The paper's §3.2 on a store, as the reference's compute_ablations.py computes it: zero-shot
// accuracy with the MLPs (and the ln_pre term), the CLS→CLS attention, both, the attention layers
// cumulatively from the first mean-ablated; also each layer alone and chosen heads.

import { provenanceFields } from '../io/provenance.ts';
import type { StoreData } from '../io/store.ts';
import type { HeadRef } from '../notation.ts';
import type { AblationSpec } from './ablation.ts';
import { keptRange, toKept } from './heads.ts';
import { alignLabels, composeEmbeddings, hasMissingLayers, noClsToClsMessage, storeRows } from './store_terms.ts';
import type { TextSet } from './text_sets.ts';
import { topkAccuracy } from './zeroshot.ts';

export interface AblationStudyResult {
  model: string;
  modelFingerprint?: string;
  images: number;
  classes: number;
  labelsMatchedBy: 'name' | 'index';
  baseline: number;
  /** All MLPs and the ln_pre term mean-ablated. */
  mlps: number;
  /** The CLS→CLS part of every kept attention layer mean-ablated (absent for stores without cls_attn). */
  clsToCls?: number;
  /** Both (the reference's "+ MLPs + CLS ablation"). */
  mlpsAndClsToCls?: number;
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
  const acc = (spec: AblationSpec) => topkAccuracy({ shape: [storeRows(store), m.dims.d], data: composeEmbeddings(store, spec) }, cls, al.labels);
  const H = m.dims.H;
  const layerHeads = (j: number) => Array.from({ length: H }, (_, h) => [j, h] as [number, number]);
  const res: AblationStudyResult = {
    ...provenanceFields(m.model),
    images: storeRows(store),
    classes: cls.shape[0],
    labelsMatchedBy: al.matchedBy,
    baseline: acc({}),
    mlps: acc({ mlps: true }),
    cumulative: m.layers.map((l, j) => ({ upTo: l, accuracy: acc({ layersUpTo: j }) })),
    single: m.layers.map((l, j) => ({ layer: l, accuracy: acc({ heads: layerHeads(j) }) })),
    notes: ['Mean-ablation replaces a term by its mean over the stored images.'],
  };
  if (store.clsAttn) {
    res.clsToCls = acc({ clsToCls: true });
    res.mlpsAndClsToCls = acc({ mlps: true, clsToCls: true });
  } else res.notes.push(`No CLS→CLS ablation: ${noClsToClsMessage(store)}.`);
  if (opts.heads?.length) res.heads = { heads: opts.heads, accuracy: acc({ heads: toKept(m, opts.heads) }) };
  if (hasMissingLayers(m))
    res.notes.push(`The store keeps attention layers ${keptRange(m)} only; the other layers' terms are never ablated here.`);
  if (al.matchedBy === 'index') res.notes.push('Store labels are integers and were matched to classifier classes by index.');
  return res;
}
