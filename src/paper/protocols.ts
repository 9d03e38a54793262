// The one place where the paper plan calls the analyses whose protocol the reference fixes
// (what is mean-ablated, kept, summed): each section's computation goes through one function
// here with the analyses' defaults — the reference's protocols (compute_ablations.py,
// compute_complete_text_set.py, compute_use_specific_heads.py) — so the plan's numbers are the
// single-purpose commands' (`ablate`, `textspan`, `debias`), which the protocol fixtures test.

import { ablationStudy, type AblationStudyResult } from '../analyses/ablation_study.ts';
import { debiasStudy, type DebiasStudyResult } from '../analyses/debias.ts';
import type { StoreData } from '../io/store.ts';
import type { HeadRef } from '../notation.ts';
import { poolCurve, type BaselineOptions, type CurveOptions, type PoolCurve, type PoolSpec } from '../analyses/text_baselines.ts';
import type { TextSet } from '../analyses/text_sets.ts';
import { textspanStudy, type TextSpanStudyResult } from '../analyses/textspan_study.ts';

/** §3: accuracy with MLPs, attention layers (cumulatively) and, where the store keeps it, the CLS→CLS term mean-ablated. */
export function ablationTable(store: StoreData, classifier: TextSet): AblationStudyResult {
  return ablationStudy(store, classifier);
}

/** §4: TextSpan on `layers` with the accuracy curve over `ms` texts per head (the completeness protocol of `cliplens textspan`). */
export function textspanRun(store: StoreData, pool: TextSet, classifier: TextSet | undefined, o: { layers: number[]; k: number; rank: number; ms: number[]; onHead?: (done: number, total: number) => void }): Promise<TextSpanStudyResult> {
  return textspanStudy(store, pool, { layers: o.layers, k: o.k, rank: o.rank, classifier, ms: o.ms, onHead: o.onHead });
}

/** §4: one baseline pool's curve, through the same TextSpan protocol. */
export function baselineCurve(store: StoreData, pool: TextSet, classifier: TextSet, spec: PoolSpec, o: CurveOptions & Pick<BaselineOptions, 'embed' | 'commonWords'>): Promise<PoolCurve> {
  return poolCurve(store, pool, classifier, spec, o);
}

/** §5: per-group and worst-group accuracy before and after mean-ablating `heads` (the protocol of `cliplens debias`), next to random heads. */
export function debiasRun(store: StoreData, classifier: TextSet, heads: HeadRef[], o: { draws: number; seed: number }): DebiasStudyResult {
  return debiasStudy(store, classifier, heads, { randomDraws: o.draws, seed: o.seed }).result;
}
