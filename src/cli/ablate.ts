import { Command } from 'commander';
import { ablationStudy } from '../analyses/ablation_study.ts';
import { parseHeadSpec } from '../analyses/heads.ts';
import { HEAD_SYNTAX, pct } from '../notation.ts';
import { ablationReport } from '../report/study_reports.ts';
import { finish, openStore, openTextSet, VERIFY_HELP } from './study_common.ts';
import { storeHeadOrthogonality } from '../analyses/siglip.ts';

interface AblateFlags {
  store: string;
  verify?: boolean;
  classifier: string;
  heads?: string;
  report?: string;
  json?: boolean;
}

export function ablateCommand(): Command {
  return new Command('ablate')
    .description('zero-shot accuracy with MLPs, attention layers (cumulatively from the first) or chosen heads mean-ablated')
    .requiredOption('--store <dir>', 'decomposition store (cliplens decompose --dataset ... --store DIR)')
    .option('--verify', VERIFY_HELP)
    .requiredOption('--classifier <file>', "zero-shot classifier from 'cliplens texts --classes'; class names must match the store's labels")
    .option('--heads <spec>', `also ablate these heads together: ${HEAD_SYNTAX}`)
    .option('--report <dir>', 'write report.json, report.md, index.html and figures here')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (o: AblateFlags) => {
      const store = openStore(o.store, o.verify);
      const cls = openTextSet(o.classifier, 'classifier');
      const heads = o.heads ? parseHeadSpec(o.heads, store.manifest) : undefined;
      // compute_siglip.py reports how orthogonal the (centred) head terms are; cheap for any store.
      const r = { ...ablationStudy(store, cls, { heads }), headOrthogonality: storeHeadOrthogonality(store) };
      process.stderr.write(`baseline ${pct(r.baseline)}%, MLPs and ln_pre ablated ${pct(r.mlps)}%${r.heads ? `, heads ablated ${pct(r.heads.accuracy)}%` : ''}\n`);
      await finish(o, r, () => ablationReport(r, { model: r.model, store: o.store, classifier: o.classifier, images: r.images }));
    });
}
