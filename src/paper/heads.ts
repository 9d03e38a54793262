// Heads chosen by text for the paper's sections: `debias --query`'s selection (substring of the
// heads' TextSpan texts, or closeness to the query in the model's text space), with a share of a
// head's texts that must match for substring queries.

import { selectHeads, type HeadMatch } from '../analyses/debias.ts';
import type { TextSpanHead } from '../analyses/textspan_study.ts';
import type { ClipModel } from '../runtime/clip.ts';
import type { HeadQuery } from './profile.ts';

export async function headsForQuery(heads: readonly TextSpanHead[], q: HeadQuery, model: ClipModel): Promise<HeadMatch[]> {
  if (q.match === 'substring') {
    const k = Math.max(...heads.map((h) => h.texts.length), 1);
    const need = Math.max(1, Math.ceil(q.minShare * k - 1e-9));
    return (await selectHeads(heads, q.query, 'substring')).heads.filter((h) => h.score >= need);
  }
  return (await selectHeads(heads, q.query, 'embedding', { model, top: q.top })).heads;
}

/** How a query chooses heads, in words (for the report). */
export function describeQuery(q: HeadQuery): string {
  return q.match === 'substring'
    ? `heads with ${q.minShare > 0 ? `at least ${Math.round(100 * q.minShare)}% of their TextSpan texts` : 'a TextSpan text'} containing ${q.query.split('|').map((t) => `'${t}'`).join(' or ')}`
    : `the ${q.top} head${q.top > 1 ? 's' : ''} whose TextSpan texts are closest to '${q.query}' (mean of the 3 best cosine similarities under the model's text encoder)`;
}
