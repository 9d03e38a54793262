// (e) Spurious-cue removal (paper §4.2) on the toy world: a model trained with shape correlated
// with background is tested on scenes balanced over (shape, background); mean-ablating the heads
// TextSpan labels as background heads should raise the worst group's shape accuracy, and
// ablating as many random heads should not.

import { DEBIAS_KEPT_LAYERS, DEBIAS_PROTOCOLS, debiasSpec, meanAblate, type DebiasProtocol, type DecompositionTerms } from '../analyses/ablation.ts';
import { randomHeads } from '../analyses/heads.ts';
import { groupAccuracy, predict, type GroupAccuracy } from '../analyses/zeroshot.ts';
import type { F32 } from '../tensor.ts';
import { ATTRIBUTES, mulberry32 } from '../toyworld/index.ts';
import { zeroShot } from './ablation.ts';
import type { HeadLabel } from './heads.ts';

export interface GroupSummary {
  overall: number;
  mean: number;
  worst: number;
  worstGroup: string;
}

export interface SpuriousCell {
  shape: string;
  background: string;
  count: number;
  before: number;
  after: number;
  /** Mean over the random draws. */
  random: number;
}

export interface SpuriousStudy {
  model: string;
  /** The model the heads were chosen on is the main model standing in for the correlated one. */
  standIn: boolean;
  images: number;
  heads: { layer: number; head: number; purity: number; backgroundShare: number }[];
  /** How the heads were chosen. */
  selection: string;
  /** What is mean-ablated besides the heads (analyses/ablation.ts DEBIAS_PROTOCOLS). */
  protocol: DebiasProtocol;
  protocolText: string;
  before: GroupSummary;
  after: GroupSummary;
  /** The protocol's own ablation with no heads (reference protocol only): what the protocol costs by itself. */
  protocolOnly?: GroupSummary;
  /** The heads alone mean-ablated (reference protocol only, for comparison). */
  headsOnly?: GroupSummary;
  random: { draws: number; overall: number; mean: number; worst: number; worstPerDraw: number[] };
  /** Background zero-shot accuracy: does the ablation remove the background information? */
  backgroundAccuracy: { before: number; after: number; random: number };
  cells: SpuriousCell[];
  /** Heads ranked by the share of background texts in their TextSpan texts; the top k ablated, next to k random heads. */
  sweep: SweepPoint[];
  /** Every head of the correlated model: its label and background share (TextSpan on the test scenes). */
  allHeads: { layer: number; head: number; family: string; purity: number; backgroundShare: number; texts: string[] }[];
}

export interface SweepPoint {
  k: number;
  /** The k-th head added. */
  added: { layer: number; head: number; backgroundShare: number };
  worst: number;
  mean: number;
  randomWorst: number;
  randomMean: number;
}

function summarise(g: GroupAccuracy, groupName: (c: { label: number; group: number }) => string): GroupSummary {
  return { overall: g.overall, mean: g.mean, worst: g.worst, worstGroup: groupName(g.worstCell) };
}

/**
 * Background heads: specialised heads labelled background; if there are none, the heads with
 * the largest background share (at least one text), so the experiment still runs (and says so).
 */
export function backgroundHeads(heads: HeadLabel[], maxFallback = 2): { heads: HeadLabel[]; selection: string } {
  const spec = heads.filter((h) => h.specialised && h.family === 'background');
  if (spec.length) return { heads: spec, selection: `the ${spec.length} head(s) TextSpan labels background (purity ≥ threshold)` };
  const ranked = heads.filter((h) => h.shares.background > 0).sort((a, b) => b.shares.background - a.shares.background || a.layer - b.layer || a.head - b.head);
  const top = ranked.slice(0, maxFallback);
  return {
    heads: top,
    selection: top.length
      ? `no head is a specialised background head; fallback: the ${top.length} head(s) with the largest share of background texts`
      : 'no head has any background text among its TextSpan texts',
  };
}

export function spuriousStudy(
  terms: DecompositionTerms,
  shapeClassifier: F32,
  backgroundClassifier: F32,
  labels: Record<string, Int32Array>,
  chosen: { heads: HeadLabel[]; selection: string },
  opts: { model: string; standIn: boolean; draws?: number; seed?: number; allHeads?: HeadLabel[]; maxSweep?: number; protocol?: DebiasProtocol },
): SpuriousStudy {
  const [n, L, H, d] = terms.attn.shape;
  const shape = labels.shape;
  const bg = labels.background;
  const eval_ = (e: Float32Array) => groupAccuracy(predict({ shape: [n, d], data: e }, shapeClassifier), shape, bg);
  const groupName = (c: { label: number; group: number }) => `${ATTRIBUTES.shape[c.label]} / ${ATTRIBUTES.background[c.group]}`;
  const protocol = opts.protocol ?? 'reference';
  const ablate = (heads: [number, number][]) => meanAblate(terms, debiasSpec(protocol, L, heads));
  const spec = chosen.heads.map((h) => [h.layer, h.head] as [number, number]);
  const base = meanAblate(terms, {});
  const edited = spec.length ? ablate(spec) : base;
  const before = eval_(base);
  const after = eval_(edited);
  // Random heads come from the layers the protocol keeps: heads it ablates anyway would change nothing.
  const firstKept = protocol === 'reference' ? Math.max(0, L - DEBIAS_KEPT_LAYERS) : 0;
  const draws = spec.length ? (opts.draws ?? 10) : 0;
  const rng = mulberry32(opts.seed ?? 17);
  const layers = Array.from({ length: L - firstKept }, (_, i) => firstKept + i);
  /** k heads drawn at random from the kept layers' heads not in `exclude`, as [layer, head] pairs. */
  const drawHeads = (exclude: [number, number][], k: number): [number, number][] =>
    randomHeads(layers, H, k, exclude.map(([layer, head]) => ({ layer, head })), rng).map((h) => [h.layer, h.head]);
  const rand: GroupAccuracy[] = [];
  const randBg: number[] = [];
  for (let i = 0; i < draws && layers.length * H - spec.length >= spec.length; i++) {
    const e = ablate(drawHeads(spec, spec.length));
    rand.push(eval_(e));
    randBg.push(zeroShot(e, d, backgroundClassifier, bg));
  }
  const all = opts.allHeads ?? [];
  const ranked = all.filter((h) => h.shares.background > 0).sort((a, b) => b.shares.background - a.shares.background || b.purity - a.purity || a.layer - b.layer || a.head - b.head);
  const sweep: SweepPoint[] = [];
  const sweepDraws = Math.max(draws, 1);
  for (let k = 1; k <= Math.min(ranked.length, opts.maxSweep ?? 8, (L - firstKept) * H - 1); k++) {
    const top = ranked.slice(0, k).map((h) => [h.layer, h.head] as [number, number]);
    const g = eval_(ablate(top));
    const rs: GroupAccuracy[] = [];
    for (let i = 0; i < sweepDraws; i++) rs.push(eval_(ablate(drawHeads(top, k))));
    const a = ranked[k - 1];
    sweep.push({
      k,
      added: { layer: a.layer, head: a.head, backgroundShare: a.shares.background },
      worst: g.worst,
      mean: g.mean,
      randomWorst: rs.reduce((x, r) => x + r.worst, 0) / rs.length,
      randomMean: rs.reduce((x, r) => x + r.mean, 0) / rs.length,
    });
  }
  const avg = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  const key = (c: { label: number; group: number }) => `${c.label}|${c.group}`;
  const afterBy = new Map(after.cells.map((c) => [key(c), c.accuracy]));
  const cells = before.cells.map((c) => ({
    shape: ATTRIBUTES.shape[c.label],
    background: ATTRIBUTES.background[c.group],
    count: c.count,
    before: c.accuracy,
    after: afterBy.get(key(c)) ?? NaN,
    random: avg(rand.map((r) => r.cells.find((x) => key(x) === key(c))?.accuracy ?? 0)),
  }));
  return {
    model: opts.model,
    standIn: opts.standIn,
    images: n,
    heads: chosen.heads.map((h) => ({ layer: h.layer, head: h.head, purity: h.purity, backgroundShare: h.shares.background })),
    selection: chosen.selection,
    protocol,
    protocolText: DEBIAS_PROTOCOLS[protocol],
    before: summarise(before, groupName),
    after: summarise(after, groupName),
    ...(protocol === 'reference'
      ? { protocolOnly: summarise(eval_(ablate([])), groupName), headsOnly: summarise(spec.length ? eval_(meanAblate(terms, { heads: spec })) : before, groupName) }
      : {}),
    random: { draws: rand.length, overall: avg(rand.map((r) => r.overall)), mean: avg(rand.map((r) => r.mean)), worst: avg(rand.map((r) => r.worst)), worstPerDraw: rand.map((r) => r.worst) },
    backgroundAccuracy: { before: zeroShot(base, d, backgroundClassifier, bg), after: zeroShot(edited, d, backgroundClassifier, bg), random: avg(randBg) },
    cells,
    sweep,
    allHeads: all.map((h) => ({ layer: h.layer, head: h.head, family: h.family, purity: h.purity, backgroundShare: h.shares.background, texts: h.texts })),
  };
}
