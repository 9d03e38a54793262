import { Command } from 'commander';
import { DEBIAS_PROTOCOLS, type DebiasProtocol } from '../analyses/ablation.ts';
import { debiasStudy, exportDebiased, headsForQuery, type HeadMatching, type HeadSelection } from '../analyses/debias.ts';
import { parseHeadSpec } from '../analyses/heads.ts';
import { readTextSpanFile } from '../analyses/textspan_study.ts';
import { HEAD_SYNTAX, headName, pct, type HeadRef } from '../notation.ts';
import { debiasReport } from '../report/study_reports.ts';
import { modelFromFlags, parseIntFlag, withModelOptions, type ModelFlags } from './common.ts';
import { finish, openStore, openTextSet, VERIFY_HELP } from './study_common.ts';
import { UsageError } from '../errors.ts';
import { checkInputPath } from '../io/files.ts';

interface DebiasFlags extends ModelFlags {
  store: string;
  verify?: boolean;
  classifier: string;
  heads?: string;
  query?: string;
  textspan?: string;
  match: string;
  protocol?: DebiasProtocol;
  top: string;
  randomBaseline: string;
  seed: string;
  report?: string;
  export?: string;
  json?: boolean;
}

export function debiasCommand(): Command {
  return withModelOptions(new Command('debias'))
    .description('mean-ablate heads (e.g. the ones whose TextSpan texts describe a spurious property) and report accuracy per (label, group), worst group, vs random heads')
    .requiredOption('--store <dir>', 'decomposition store with labels (and groups, e.g. Waterbirds place)')
    .option('--verify', VERIFY_HELP)
    .requiredOption('--classifier <file>', 'zero-shot classifier whose class names match the store labels')
    .option('--heads <spec>', `heads to mean-ablate: ${HEAD_SYNTAX}`)
    .option('--query <text>', "pick heads whose TextSpan texts match this (e.g. 'location' or 'forest|water|beach'); needs --textspan")
    .option('--textspan <heads.json>', "TextSpan output of 'cliplens textspan --out'")
    .option('--match <how>', "substring: heads with a text containing a query term ('|' or ',' separate terms); embedding: the --top heads whose texts are closest to the query under the model's text encoder (needs --model, the store's)", 'substring')
    .option('--protocol <p>', `what is mean-ablated besides the heads: reference = ${DEBIAS_PROTOCOLS.reference}; heads-only = ${DEBIAS_PROTOCOLS['heads-only']} (default: reference; heads-only for SigLIP stores)`)
    .option('--top <n>', 'heads to pick with --match embedding', '3')
    .option('--random-baseline <n>', 'random draws of as many heads to compare with (0 = none)', '10')
    .option('--seed <n>', 'seed for the random heads', '0')
    .option('--report <dir>', 'write a report here')
    .option('--export <file>', 'write the edited image representations (+ the mean vectors used) as safetensors')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (o: DebiasFlags) => {
      if (o.protocol !== undefined && !Object.hasOwn(DEBIAS_PROTOCOLS, o.protocol)) throw new UsageError(`--protocol '${o.protocol}': use reference or heads-only`);
      if (o.match !== 'substring' && o.match !== 'embedding') throw new UsageError(`--match '${o.match}': use substring or embedding`);
      const store = openStore(o.store, o.verify);
      const cls = openTextSet(o.classifier, 'classifier');
      if (!o.heads === !o.query) throw new UsageError('give either --heads or --query (with --textspan)');
      let heads: HeadRef[];
      let selection: HeadSelection | undefined;
      if (o.heads) heads = parseHeadSpec(o.heads, store.manifest);
      else {
        if (!o.textspan) throw new UsageError('--query needs --textspan heads.json');
        checkInputPath(o.textspan, '--textspan');
        // The same heads with or without --model: only --match embedding reads the model.
        if (o.match === 'embedding' && !o.model) throw new UsageError("--match embedding ranks heads with the model's text encoder: give --model (the model that made the store)");
        const model = o.match === 'embedding' ? await modelFromFlags(o) : undefined;
        ({ heads, selection } = await headsForQuery(store, readTextSpanFile(o.textspan), o.query!, o.match as HeadMatching, { model, top: parseIntFlag(o.top, 'top') }));
      }
      const { result, edited, means } = debiasStudy(store, cls, heads, { protocol: o.protocol, randomDraws: parseIntFlag(o.randomBaseline, 'random-baseline', 0), seed: parseIntFlag(o.seed, 'seed', 0) });
      const out = { ...result, ...(selection ? { selection } : {}) };
      process.stderr.write(`heads ${heads.map(headName).join(', ')} (${result.protocol} protocol): worst group ${pct(result.before.worst)}% → ${pct(result.after.worst)}%${result.random ? ` (random heads: ${pct(result.random.meanWorst)}%)` : ''}\n`);
      if (o.export) {
        exportDebiased(o.export, store, o.store, heads, edited, means, result.protocol);
        process.stderr.write(`wrote ${o.export}: edited image_features [${store.attn.shape[0]}, ${store.manifest.dims.d}]\n`);
      }
      await finish(o, out, () => debiasReport(result, { model: result.model, store: o.store, classifier: o.classifier, heads: heads.map(headName).join(','), protocol: result.protocol }, selection));
    });
}
