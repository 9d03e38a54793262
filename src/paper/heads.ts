// Heads chosen by text: from a TextSpan result, the heads whose texts mention a query (substring,
// with the share of a head's texts that must match) or are closest to it in the model's text
// space, through the selection functions `debias --query` uses.

import { normalizeRows } from '../analyses/linalg.ts';
import { selectHeadsBySimilarity, selectHeadsBySubstring, type HeadMatch, type TextSpanJson } from '../analyses/studies.ts';
import type { ClipModel } from '../model/clip.ts';
import type { HeadQuery } from './profile.ts';

export async function headsForQuery(ts: TextSpanJson, q: HeadQuery, model: ClipModel): Promise<HeadMatch[]> {
  if (q.match === 'substring') {
    const k = Math.max(...ts.heads.map((h) => h.texts.length), 1);
    const need = Math.max(1, Math.ceil(q.minShare * k - 1e-9));
    return selectHeadsBySubstring(ts, q.query).filter((h) => h.score >= need);
  }
  const texts = [...new Set([q.query, ...ts.heads.flatMap((h) => h.texts)])];
  const d = model.config.embedDim;
  const emb = normalizeRows((await model.encodeTexts(texts)).features.data, texts.length, d);
  const row = new Map(texts.map((t, i) => [t, emb.subarray(i * d, (i + 1) * d)]));
  return selectHeadsBySimilarity(ts, row.get(q.query)!, (t) => row.get(t)!, q.top);
}

/** How a query chooses heads, in words (for the report). */
export function describeQuery(q: HeadQuery): string {
  return q.match === 'substring'
    ? `heads with ${q.minShare > 0 ? `at least ${Math.round(100 * q.minShare)}% of their TextSpan texts` : 'a TextSpan text'} containing ${q.query.split('|').map((t) => `'${t}'`).join(' or ')}`
    : `the ${q.top} head${q.top > 1 ? 's' : ''} whose TextSpan texts are closest to '${q.query}' (mean of the 3 best cosine similarities under the model's text encoder)`;
}
