import { Command } from 'commander';
import { parseHeadSpec } from '../analyses/heads.ts';
import { decomposeQueryImage, resolveQuery, retrievalStudy, type RetrievalScore } from '../analyses/retrieval_study.ts';
import { HEAD_SYNTAX } from '../notation.ts';
import { retrievalReport } from '../report/study_reports.ts';
import { modelFromFlags, parseIntFlag, withModelOptions, type ModelFlags } from './common.ts';
import { finish, openStore, VERIFY_HELP } from './study_common.ts';
import { ModelNotFoundError, UsageError } from '../errors.ts';

interface RetrieveFlags extends ModelFlags {
  store: string;
  verify?: boolean;
  query?: string;
  image?: string;
  heads: string;
  k: string;
  score?: string;
  indexThreshold: string;
  report?: string;
  json?: boolean;
}

export function retrieveCommand(): Command {
  return withModelOptions(new Command('retrieve'))
    .description("nearest neighbours of an image (stored, or any image file) using only chosen heads' terms, next to the whole embedding")
    .requiredOption('--store <dir>', 'decomposition store')
    .option('--verify', VERIFY_HELP)
    .option('--query <row|id>', 'a stored query image: row number or image id (path relative to the dataset root)')
    .option('--image <file>', "a query image from outside the store, decomposed with the store's model (--model; default: the model the store names)")
    .requiredOption('--heads <spec>', `heads (each alone, then together): ${HEAD_SYNTAX}`)
    .option('--k <n>', 'neighbours', '10')
    .option('--score <s>', 'cosine, or dot (the dot product of the terms, as the reference nns.ipynb); default: cosine with --query, dot with --image')
    .option('--index-threshold <rows>', 'above this many rows use an IVF (k-means) index instead of brute force (cosine only)', '100000')
    .option('--report <dir>', 'write a report with an image grid per head here')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (o: RetrieveFlags) => {
      if (!o.query === !o.image) throw new UsageError('give either --query (a stored image) or --image FILE');
      if (o.score !== undefined && o.score !== 'cosine' && o.score !== 'dot') throw new UsageError(`--score '${o.score}': use cosine or dot`);
      const store = openStore(o.store, o.verify);
      const heads = parseHeadSpec(o.heads, store.manifest);
      let query: Parameters<typeof retrievalStudy>[2];
      if (o.query) query = resolveQuery(store, o.query);
      else {
        const spec = o.model ?? store.manifest.model.name;
        const model = await modelFromFlags({ ...o, model: spec }).catch((e: Error) => {
          if (e instanceof ModelNotFoundError && !o.model) throw new UsageError(`--image needs the model that made the store ('${spec}'), which cliplens cannot find by that name: give --model`);
          throw e;
        });
        try {
          query = await decomposeQueryImage(model, store, o.image!);
        } finally {
          await model.release();
        }
      }
      const r = retrievalStudy(store, heads, query, { k: parseIntFlag(o.k, 'k'), score: o.score as RetrievalScore | undefined, indexThreshold: parseIntFlag(o.indexThreshold, 'index-threshold') });
      for (const v of r.views) process.stderr.write(`${v.name}: ${v.neighbours.slice(0, 5).map((n) => n.id).join(', ')}${v.neighbours.length > 5 ? ', …' : ''}\n`);
      await finish(o, r, () => retrievalReport(r, store.manifest, { model: r.model, store: o.store, query: o.query ?? o.image!, heads: o.heads, k: r.k, score: r.score }));
    });
}
