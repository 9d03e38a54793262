// The report of the through-layers split: which encoder layers feed each SigLIP pooling head.

import type { LayerShares } from '../analyses/siglip.ts';
import type { ModelProvenance } from '../io/provenance.ts';
import { headName, pct as pctOf } from '../notation.ts';
import { barChart } from './figures.ts';
import type { Report } from './writer.ts';

/** A report: per pooling head, the share of its term each encoder layer carries, and its top encoder heads. */
export async function layerSharesReport(s: LayerShares, meta: Record<string, string | number | boolean>, model: ModelProvenance): Promise<Report> {
  const Hp = s.shares.length / s.columns.length;
  const L = s.columns.length - 2;
  const H = s.headShares.length / (Hp * L);
  const pct = (x: number) => pctOf(x, 1);
  const mean = s.columns.map((_, c) => Array.from({ length: Hp }, (_, h) => s.shares[h * s.columns.length + c]).reduce((a, b) => a + b, 0) / Hp);
  const top = Array.from({ length: Hp }, (_, hp) => {
    const all = Array.from({ length: L * H }, (_, i) => ({ l: Math.floor(i / H), h: i % H, v: s.headShares[hp * L * H + i] })).sort((a, b) => b.v - a.v);
    return all.slice(0, 3).map((x) => `${headName({ layer: x.l, head: x.h })} ${pct(x.v)}%`).join(', ');
  });
  return {
    title: 'Which encoder layers feed each SigLIP pooling head',
    summary:
      `Each pooling head's attention term is split exactly into the contributions of the patch embedding, every encoder layer ` +
      `(its heads, its out_proj bias and its MLP, at every token) and a constant, with the probe's attention weights and each ` +
      `token's post-LayerNorm σ fixed per image. A share is the projection of a part onto the term, as a fraction of the term's ` +
      `squared norm, averaged over the ${s.images} images; a row sums to 100%.`,
    meta,
    models: [model],
    sections: [
      {
        title: 'Share of each pooling head carried by each layer (%)',
        tables: [{ headers: ['pooling head', ...s.columns, 'top encoder heads'], rows: Array.from({ length: Hp }, (_, hp) => [`P.H${hp}`, ...s.columns.map((_, c) => pct(s.shares[hp * s.columns.length + c])), top[hp]]) }],
        figures: [{ name: 'layer_shares', caption: 'mean over pooling heads', png: await barChart({ title: 'Share of the pooling heads\' terms per layer (mean over heads)', labels: s.columns.map((c) => c.replace('layer ', 'L')), values: mean.map(pct), yLabel: '%' }) }],
      },
    ],
    data: { columns: s.columns, shares: s.shares, headShares: s.headShares },
  };
}
