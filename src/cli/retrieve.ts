import { Command } from 'commander';
import { parseHeadSpec } from '../analyses/heads.ts';
import { resolveQuery, retrievalStudy } from '../analyses/retrieval_study.ts';
import { HEAD_SYNTAX } from '../notation.ts';
import { retrievalReport } from '../report/study_reports.ts';
import { parseIntFlag } from './common.ts';
import { finish, openStore, VERIFY_HELP } from './study_common.ts';

interface RetrieveFlags {
  store: string;
  verify?: boolean;
  query: string;
  heads: string;
  k: string;
  indexThreshold: string;
  report?: string;
  json?: boolean;
}

export function retrieveCommand(): Command {
  return new Command('retrieve')
    .description("nearest neighbours of a stored image using only chosen heads' terms, next to the whole embedding")
    .requiredOption('--store <dir>', 'decomposition store')
    .option('--verify', VERIFY_HELP)
    .requiredOption('--query <row|id>', 'the query image: row number or image id (path relative to the dataset root)')
    .requiredOption('--heads <spec>', `heads (each alone, then together): ${HEAD_SYNTAX}`)
    .option('--k <n>', 'neighbours', '10')
    .option('--index-threshold <rows>', 'above this many rows use an IVF (k-means) index instead of brute force', '100000')
    .option('--report <dir>', 'write a report with an image grid per head here')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (o: RetrieveFlags) => {
      const store = openStore(o.store, o.verify);
      const heads = parseHeadSpec(o.heads, store.manifest);
      const row = resolveQuery(store, o.query);
      const r = retrievalStudy(store, heads, row, { k: parseIntFlag(o.k, 'k'), indexThreshold: parseIntFlag(o.indexThreshold, 'index-threshold') });
      for (const v of r.views) process.stderr.write(`${v.name}: ${v.neighbours.slice(0, 5).map((n) => n.id).join(', ')}${v.neighbours.length > 5 ? ', …' : ''}\n`);
      await finish(o, r, () => retrievalReport(r, store.manifest, { model: r.model, store: o.store, query: o.query, heads: o.heads, k: r.k }));
    });
}
