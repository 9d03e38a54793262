// Which attribute each head describes (paper §4.1 on the toy world): TextSpan per head over the
// attribute pool; a head's purity is the largest share of its top m texts naming one family.

import { textspan } from '../analyses/textspan.ts';
import { headTerms } from '../analyses/textspan.ts';
import type { F32 } from '../tensor.ts';
import { FAMILIES } from '../toyworld/index.ts';
import { OTHER, type AttributePool } from './texts.ts';

export interface HeadLabel {
  layer: number;
  head: number;
  /** TextSpan's texts in pick order, and the family each names. */
  texts: string[];
  families: string[];
  /** Cumulative fraction of the head's variance explained by the first j+1 texts. */
  varianceExplained: number[];
  /** Share of the top m texts per family (OTHER included). */
  shares: Record<string, number>;
  /** Family with the largest share (ties: the one picked first); 'none' when all are distractors. */
  family: string;
  /** Its share, 0..1. */
  purity: number;
  /** purity ≥ the threshold used. */
  specialised: boolean;
}

export interface HeadLabelOptions {
  /** Layers to run (default: all). */
  layers?: number[];
  /** Texts per head the purity is measured on (default 5). */
  m?: number;
  /** Purity a head needs to count as a family's head (default 0.6). */
  minPurity?: number;
  onHead?: (done: number, total: number) => void;
}

export function labelHead(texts: string[], families: string[], varianceExplained: number[], layer: number, head: number, minPurity: number): HeadLabel {
  const m = families.length;
  const shares: Record<string, number> = {};
  for (const f of [...FAMILIES, OTHER]) shares[f] = 0;
  for (const f of families) shares[f] += 1 / m;
  let family = 'none';
  let purity = 0;
  // Ties go to the family whose first text was picked earliest.
  for (const f of families) {
    if (f === OTHER) continue;
    if (shares[f] > purity + 1e-9) {
      family = f;
      purity = shares[f];
    }
  }
  return { layer, head, texts, families, varianceExplained, shares, family, purity, specialised: purity >= minPurity - 1e-9 };
}

/** TextSpan (m texts, rank ≤ d) on every head of the layers; attn [n, L, H, d], pool [T, d]. */
export async function labelHeads(attn: F32, poolEmb: F32, pool: AttributePool, opts: HeadLabelOptions = {}): Promise<HeadLabel[]> {
  const [n, L, H, d] = attn.shape;
  const m = opts.m ?? 5;
  const minPurity = opts.minPurity ?? 0.6;
  const layers = opts.layers ?? Array.from({ length: L }, (_, l) => l);
  const out: HeadLabel[] = [];
  for (const l of layers)
    for (let h = 0; h < H; h++) {
      const C = { shape: [n, d], data: headTerms(attn, l, h) };
      const r = await textspan(C, poolEmb, { k: m, r: Math.min(80, d) });
      out.push(labelHead(r.indices.map((i) => pool.texts[i]), r.indices.map((i) => pool.family[i]), r.varianceExplained, l, h, minPurity));
      opts.onHead?.(out.length, layers.length * H);
    }
  return out;
}

/** Heads labelled with each family (specialised ones only), best purity first. */
export function headsByFamily(heads: HeadLabel[]): Record<string, HeadLabel[]> {
  const out: Record<string, HeadLabel[]> = {};
  for (const f of FAMILIES) out[f] = heads.filter((h) => h.specialised && h.family === f).sort((a, b) => b.purity - a.purity || a.layer - b.layer || a.head - b.head);
  return out;
}

