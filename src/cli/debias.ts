import { existsSync, readFileSync } from 'node:fs';
import { Command } from 'commander';
import { normalizeRows } from '../analyses/linalg.ts';
import { debiasStudy, headName, parseHeadSpec, parseTextSpanJson, selectHeadsBySimilarity, selectHeadsBySubstring, type HeadMatch, type HeadRef } from '../analyses/studies.ts';
import { debiasReport } from '../analyses/study_reports.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import type { ReportSection } from '../report/writer.ts';
import { f32 } from '../tensor.ts';
import { modelFromFlags, parseIntFlag, withModelOptions, type ModelFlags } from './common.ts';
import { finish, openStore, openTextSet } from './study_common.ts';
import { UsageError } from '../errors.ts';

interface DebiasFlags extends ModelFlags {
  store: string;
  classifier: string;
  heads?: string;
  query?: string;
  textspan?: string;
  match?: string;
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
    .requiredOption('--classifier <file>', 'zero-shot classifier whose class names match the store labels')
    .option('--heads <spec>', 'heads to mean-ablate, e.g. 10:3,11:0')
    .option('--query <text>', "pick heads whose TextSpan texts match this (e.g. 'location' or 'forest|water|beach'); needs --textspan")
    .option('--textspan <heads.json>', "TextSpan output of 'cliplens textspan --out'")
    .option('--match <how>', "substring: heads with a text containing a query term ('|' or ',' separate terms); embedding: the --top heads whose texts are closest to the query under the model's text encoder (needs --model). Default: embedding when --model is given, else substring")
    .option('--top <n>', 'heads to pick with --match embedding', '3')
    .option('--random-baseline <n>', 'random draws of as many heads to compare with (0 = none)', '10')
    .option('--seed <n>', 'seed for the random heads', '0')
    .option('--report <dir>', 'write a report here')
    .option('--export <file>', 'write the edited image representations (+ the mean vectors used) as safetensors')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (o: DebiasFlags) => {
      const store = openStore(o.store);
      const cls = openTextSet(o.classifier, 'classifier');
      const m = store.manifest;
      if (!o.heads === !o.query) throw new UsageError('give either --heads or --query (with --textspan)');
      let heads: HeadRef[];
      let selection: ReportSection | undefined;
      let matches: HeadMatch[] | undefined;
      let how = '';
      if (o.heads) heads = parseHeadSpec(o.heads, m);
      else {
        if (!o.textspan) throw new UsageError('--query needs --textspan heads.json');
        if (!existsSync(o.textspan)) throw new UsageError(`--textspan ${o.textspan} does not exist`);
        let raw: unknown;
        try {
          raw = JSON.parse(readFileSync(o.textspan, 'utf8'));
        } catch (e) {
          throw new UsageError(`--textspan ${o.textspan}: not JSON (${(e as Error).message})`);
        }
        const ts = parseTextSpanJson(raw, o.textspan);
        how = o.match ?? (o.model ? 'embedding' : 'substring');
        if (how === 'substring') matches = selectHeadsBySubstring(ts, o.query!);
        else if (how === 'embedding') {
          if (!o.model) throw new UsageError('--match embedding needs --model (the model that made the store)');
          const model = await modelFromFlags(o);
          const texts = [...new Set([o.query!, ...ts.heads.flatMap((h) => h.texts)])];
          const d = model.config.embedDim;
          const emb = normalizeRows((await model.encodeTexts(texts)).features.data, texts.length, d);
          const row = new Map(texts.map((t, i) => [t, emb.subarray(i * d, (i + 1) * d)]));
          matches = selectHeadsBySimilarity(ts, row.get(o.query!)!, (t) => row.get(t)!, parseIntFlag(o.top, 'top')!);
        } else throw new UsageError(`--match '${how}': use substring or embedding`);
        if (!matches.length) throw new UsageError(`no head's TextSpan texts contain '${o.query}' (try --match embedding with --model, or list --heads)`);
        heads = matches.map((h) => ({ layer: h.layer, head: h.head }));
        heads.forEach((h) => parseHeadSpec(headName(h), m)); // each must be in the store
        selection = {
          title: 'Heads chosen',
          text: how === 'substring' ? `Heads with a TextSpan text containing '${o.query}' (case-insensitive substring).` : `The ${heads.length} heads whose TextSpan texts are closest to '${o.query}' (mean of the 3 best cosine similarities under the model's text encoder).`,
          tables: [{ headers: ['head', 'score', 'texts that matched'], rows: matches.map((h) => [headName(h), Number(h.score.toFixed(4)), h.matched.slice(0, 4).join('; ')]) }],
        };
      }
      const { result, edited, means } = debiasStudy(store, cls, heads, { randomDraws: parseIntFlag(o.randomBaseline, 'random-baseline', 0), seed: parseIntFlag(o.seed, 'seed', 0) });
      const out = { ...result, ...(matches ? { selection: { query: o.query, match: how, heads: matches } } : {}) };
      process.stderr.write(
        `heads ${heads.map(headName).join(', ')}: worst group ${(100 * result.before.worst).toFixed(2)}% → ${(100 * result.after.worst).toFixed(2)}%${result.random ? ` (random heads: ${(100 * result.random.meanWorst).toFixed(2)}%)` : ''}\n`,
      );
      if (o.export) {
        const n = store.attn.shape[0];
        const d = m.dims.d;
        writeSafetensors(
          o.export,
          {
            image_features: f32([n, d], edited),
            head_means: f32([heads.length, d], means),
            index: { dtype: 'I32', shape: [n], data: store.index },
          },
          {
            metadata: {
              model: m.model.name,
              store: o.store,
              heads: JSON.stringify(heads),
              normalised: String(m.normalised),
              note: 'image_features = sum of the store terms with the listed heads replaced by head_means (rows in store order; index = item index)',
            },
          },
        );
        process.stderr.write(`wrote ${o.export}: edited image_features [${n}, ${d}]\n`);
      }
      await finish(o, out, () => debiasReport(result, { model: result.model, store: o.store, classifier: o.classifier, heads: heads.map(headName).join(',') }, selection));
    });
}
