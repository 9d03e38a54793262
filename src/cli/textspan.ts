import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { COMPLETENESS_PROTOCOLS, type CompletenessProtocol } from '../analyses/ablation.ts';
import { assetPath } from '../assets.ts';
import { textspanStudy, type TextSpanJson } from '../analyses/textspan_study.ts';
import { curveFromDraws, textspanBaselines, type PoolCurve } from '../analyses/text_baselines.ts';
import { embedPool, readLines } from '../analyses/text_sets.ts';
import { modelProvenance, requireSameModel } from '../io/provenance.ts';
import { textspanBaselinesSection, textspanReport } from '../report/study_reports.ts';
import { modelFromFlags, parseIntFlag, parseLayers, progressBar, withModelOptions, type ModelFlags } from './common.ts';
import { finish, openStore, openTextSet, toJson, VERIFY_HELP } from './study_common.ts';
import { UsageError } from '../errors.ts';
import { familyInfo } from '../model/family_info.ts';

interface TextSpanFlags extends ModelFlags {
  store: string;
  verify?: boolean;
  texts: string;
  layers?: string;
  k?: string;
  m?: string;
  rank?: string;
  classifier?: string;
  mGrid: string;
  protocol: CompletenessProtocol;
  out?: string;
  report?: string;
  json?: boolean;
  baselines?: boolean;
  draws: string;
  seed: string;
  commonWords?: string;
}

export function textspanCommand(): Command {
  return withModelOptions(new Command('textspan'), { short: false })
    .description("TextSpan: for each head of the chosen layers, the texts that span its output (and, with a classifier, how much accuracy they keep)")
    .requiredOption('--store <dir>', 'decomposition store')
    .option('--verify', VERIFY_HELP)
    .requiredOption('--texts <file>', "text pool from 'cliplens texts --file' (the candidates)")
    .option('--layers <spec>', 'attention layers (absolute indices): last:4 (default), 8-11, 10,11', 'last:4')
    .option('-k, --k <n>', 'texts per head', '10')
    .option('-m <n>', 'same as --k')
    .option('--rank <r>', 'rank of the head span the texts are projected onto (default: 80 for CLIP, d for SigLIP, as the reference scripts)')
    .option('--classifier <file>', 'zero-shot classifier: also measure accuracy with the heads replaced by their reconstructions')
    .option('--m-grid <list>', 'texts per head for the accuracy curve', '10,20,30,40,50,60')
    .option('--protocol <p>', `what the accuracy curve mean-ablates: reference = ${COMPLETENESS_PROTOCOLS.reference}; ablate-mlps = ${COMPLETENESS_PROTOCOLS['ablate-mlps']}`, 'reference')
    .option('-o, --out <file>', 'heads.json for the web explorer and debias --textspan')
    .option('--report <dir>', 'write a report here')
    .option('--json', 'print the result as JSON on stdout')
    .option('--baselines', "also the accuracy curves of the paper's baselines (needs --classifier): the common-words pool, random texts from the pool's vocabulary, random unit directions (the texts are embedded by --model, default the store's model)")
    .option('--draws <n>', 'draws of each random baseline (mean and spread are reported)', '3')
    .option('--seed <n>', 'seed of the random baselines', '0')
    .option('--common-words <file>', "common-words pool, one a line (default: the bundled 3498 most common English words)")
    .action(async (o: TextSpanFlags) => {
      if (!Object.hasOwn(COMPLETENESS_PROTOCOLS, o.protocol)) throw new UsageError(`--protocol '${o.protocol}': use reference or ablate-mlps`);
      const store = openStore(o.store, o.verify);
      const pool = openTextSet(o.texts, 'texts');
      const m = store.manifest;
      // 'last:N' means the last N layers the store keeps (all of them when it keeps fewer, e.g. SigLIP's one pooling head).
      const last = /^last:(\d+)$/.exec(o.layers ?? '');
      const layers = last && Number(last[1]) >= 1 ? m.layers.slice(-Number(last[1])) : (parseLayers(o.layers, m.dims.L) ?? [...m.layers]);
      const k = parseIntFlag(o.m ?? o.k, o.m ? 'm' : 'k')!;
      const rank = parseIntFlag(o.rank, 'rank') ?? familyInfo(m.family).textspanRank(m.dims.d);
      const ms = o.mGrid.split(',').map((s) => parseIntFlag(s.trim(), 'm-grid')!);
      const cls = o.classifier ? openTextSet(o.classifier, 'classifier') : undefined;
      if (!o.out && !o.report && !o.json) throw new UsageError('give --out FILE, --report DIR and/or --json');
      const bar = progressBar('heads', layers.length * m.dims.H, 'head');
      const r = await textspanStudy(store, pool, { layers, k, rank, classifier: cls, ms, protocol: o.protocol, storePath: o.store, onHead: (d) => bar.update(d) });
      bar.stop();
      let baselines: PoolCurve[] | undefined;
      if (o.baselines) {
        if (!cls || !r.accuracy) throw new UsageError('--baselines needs --classifier (the baselines are accuracy curves)');
        const model = await modelFromFlags({ ...o, model: o.model ?? m.model.name });
        requireSameModel({ what: `store ${o.store}`, model: m.model }, { what: `--model ${model.name}`, model: modelProvenance(model) });
        const commonWords = readLines(o.commonWords ?? assetPath('assets', 'google_3498_english.txt'));
        const draws = parseIntFlag(o.draws, 'draws')!;
        process.stderr.write(`baselines: common words, ${draws} draws of random texts and of random directions (${pool.names.length} candidates each)\n`);
        const curves = await textspanBaselines(store, pool, cls, { layers, rank, ms, draws, seed: parseIntFlag(o.seed, 'seed', 0), protocol: o.protocol, embed: (t) => embedPool(model, t), commonWords, includePool: false }, (c) => process.stderr.write(`  ${c.name}: ${c.mean.map((v) => (100 * v).toFixed(1)).join(', ')} %\n`));
        await model.release();
        // The pool's own curve is the run above's.
        baselines = [curveFromDraws(o.texts, 'pool', pool.names.length, r.accuracy.m, [r.accuracy.replaced]), ...curves];
      }
      if (o.out) {
        const j: TextSpanJson = { model: r.model, ...(r.modelFingerprint ? { modelFingerprint: r.modelFingerprint } : {}), store: r.store, rank: r.rank, heads: r.heads };
        writeFileSync(o.out, toJson(j) + '\n');
        process.stderr.write(`wrote ${o.out}: ${r.heads.length} heads × ${k} texts\n`);
      }
      const meta = { model: r.model, store: o.store, texts: o.texts, k, rank, layers: layers.join(','), ...(r.accuracy ? { protocol: r.accuracy.protocol } : {}) };
      await finish(o, baselines ? { ...r, baselines } : r, async () => {
        const rep = await textspanReport(r, meta);
        if (baselines) rep.sections.splice(1, 0, await textspanBaselinesSection(r, baselines, o.texts));
        return rep;
      });
    });
}
