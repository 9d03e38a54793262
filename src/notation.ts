// How cliplens names things in everything it prints or writes: attention heads (`L10.H3`),
// the slots of the decomposition's non-attention terms, and percentages. Plain TypeScript with
// no imports, so the browser explorer uses it too.

/** An attention head by its absolute layer index in the model (not an index into a store's kept layers). */
export interface HeadRef {
  layer: number;
  head: number;
}

/** A head as written in output: `L10.H3`. */
export const headName = (h: HeadRef): string => `L${h.layer}.H${h.head}`;

/** One entry of a head list as parsed, before it is checked against a model: `head` '*' = every head of the layer. */
export interface HeadPattern {
  layer: number;
  head: number | '*';
}

export const HEAD_SYNTAX = 'L10.H3 or 10:3 (lists: L10.H3,11:0; a whole layer: L11.H* or 11:*)';

/**
 * A comma-separated list of heads in either notation: `L10.H3` (case-insensitive) or `10:3`;
 * `*` for the head takes every head of the layer. The first entry in neither notation comes
 * back as `bad`, so each caller can word its own one-line error.
 */
export function parseHeadList(spec: string): { heads: HeadPattern[]; bad?: string } {
  const heads: HeadPattern[] = [];
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(?:L(\d+)\.H(\d+|\*)|(\d+)[:.](\d+|\*))$/i.exec(part);
    if (!m) return { heads, bad: part };
    const layer = Number(m[1] ?? m[3]);
    const head = m[2] ?? m[4];
    heads.push({ layer, head: head === '*' ? '*' : Number(head) });
  }
  return { heads };
}

/**
 * The decomposition's non-attention terms, `mlp` [B, L+1, d]: slot 0 holds the ln_pre term (the
 * embedding of the CLS token after ln_pre, i.e. what enters the first layer), slot l+1 the MLP
 * of layer l. Stores, decompositions and the ablations all use this layout.
 */
export const LN_PRE_SLOT = 0;

/** The slot of layer `layer`'s MLP in the `mlp` terms. */
export const mlpSlot = (layer: number): number => layer + 1;

/** A fraction as a percentage rounded to `digits` decimals (a number, for tables, charts and messages). */
export function pct(x: number, digits: 1 | 2 = 2): number {
  return Number((100 * x).toFixed(digits));
}
