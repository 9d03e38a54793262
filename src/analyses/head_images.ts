// The images a head writes most along one of its TextSpan texts (paper §4.1's "top images per
// head"): stored rows ranked by the head's term projected on the text direction.

import type { StoreData } from '../io/store.ts';
import { keptIndex } from './heads.ts';
import { AnalysisError } from '../errors.ts';

export interface HeadImage {
  row: number;
  id: string;
  /** The head's term · direction. */
  score: number;
}

/** The `count` stored rows with the largest (or, with `lowest`, smallest) head term · direction. */
export function topImagesForHead(store: StoreData, layer: number, head: number, direction: ArrayLike<number>, count: number, lowest = false): HeadImage[] {
  const m = store.manifest;
  const [n, Lk, H, d] = store.attn.shape;
  if (direction.length !== d) throw new AnalysisError(`direction has ${direction.length} values, the store's model has d = ${d}`);
  if (!Number.isInteger(head) || head < 0 || head >= H) throw new AnalysisError(`head ${head} out of range 0..${H - 1}`);
  const j = keptIndex(m, layer);
  const scores = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const o = ((i * Lk + j) * H + head) * d;
    let s = 0;
    for (let k = 0; k < d; k++) s += store.attn.data[o + k] * direction[k];
    scores[i] = s;
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (lowest ? scores[a] - scores[b] : scores[b] - scores[a]) || a - b);
  return order.slice(0, Math.min(count, n)).map((row) => ({ row, id: m.items[store.index[row]].id, score: scores[row] }));
}
