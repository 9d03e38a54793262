// Heads of a decomposition store: the store keeps the attention terms of some layers only
// (`manifest.layers`, absolute indices), so a head named by its model layer is looked up by its
// position among the kept layers. Also the random heads the studies compare chosen heads with.

import type { StoreManifest } from '../io/store.ts';
import { HEAD_SYNTAX, headName, parseHeadList, type HeadRef } from '../notation.ts';
import { AnalysisError } from '../errors.ts';
import { familyInfo } from '../model/family_info.ts';

/** The kept layers as written in messages: "8-11" when contiguous, else "0,3,5". */
export function keptRange(m: StoreManifest): string {
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

/** A head list (`L10.H3,11:0`, `L11.H*`; see notation.ts) checked against the store: absolute layers it keeps, heads it has. */
export function parseHeadSpec(spec: string, m: StoreManifest): HeadRef[] {
  const { H } = m.dims;
  // A family may name its blocks too (SigLIP: `pool:3` or `P.H3` for pooling head 3, stored as block 0).
  const aliases = Object.entries(familyInfo(m.family).blockAliases);
  const named = spec
    .split(',')
    .map((part) => {
      const t = part.trim();
      for (const [name, layer] of aliases) {
        const a = new RegExp(`^${name}(?::|\\.H)`, 'i').exec(t);
        if (a) return a[0].endsWith(':') ? `${layer}:${t.slice(a[0].length)}` : `L${layer}.H${t.slice(a[0].length)}`;
      }
      return t;
    })
    .join(',');
  const parsed = parseHeadList(named);
  if (parsed.bad !== undefined) throw new AnalysisError(`head '${parsed.bad}': write heads as ${HEAD_SYNTAX}`);
  const out: HeadRef[] = [];
  for (const p of parsed.heads) {
    const part = p.head === '*' ? `L${p.layer}.H*` : headName(p as HeadRef);
    if (!m.layers.includes(p.layer))
      throw new AnalysisError(`head ${part}: layer ${p.layer} is not in the store (it keeps attention layers ${keptRange(m)}; heads 0..${H - 1})`);
    const heads = p.head === '*' ? Array.from({ length: H }, (_, h) => h) : [p.head];
    for (const head of heads) {
      if (head >= H) throw new AnalysisError(`head ${part}: head ${head} out of range (the model has heads 0..${H - 1})`);
      if (!out.some((o) => o.layer === p.layer && o.head === head)) out.push({ layer: p.layer, head });
    }
  }
  if (!out.length) throw new AnalysisError(`no heads in '${spec}'`);
  return out;
}

/** Heads as [keptIndex, head] pairs for the analyses, which index the stored attn tensor. */
export function toKept(m: StoreManifest, heads: HeadRef[]): [number, number][] {
  return heads.map((h) => [keptIndex(m, h.layer), h.head]);
}

/**
 * Up to `count` distinct heads drawn at random (Fisher–Yates over the heads of `layers` in
 * layer-then-head order) from those not in `exclude`. Callers check there are enough.
 */
export function randomHeads(layers: readonly number[], H: number, count: number, exclude: readonly HeadRef[], rng: () => number): HeadRef[] {
  const all = layers.flatMap((layer) => Array.from({ length: H }, (_, head) => ({ layer, head })));
  const pool = all.filter((h) => !exclude.some((e) => e.layer === h.layer && e.head === h.head));
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, count);
}
