import { Command } from 'commander';
import { resolve } from 'node:path';
import { writeReport } from '../report/writer.ts';
import { runDemo } from '../toyworld_study/demo.ts';
import { writeExplorerData } from '../toyworld_study/explorer_data.ts';
import { modelFromFlags, parseIntFlag, withModelOptions, type ModelFlags } from './common.ts';

interface DemoFlags extends ModelFlags {
  out: string;
  n?: string;
  explorer: boolean;
}

export function demoCommand(): Command {
  return withModelOptions(new Command('demo'))
    .description('the main job in one go, offline: decompose held-out toy-world scenes, say what each late head describes, draw where colour and shape are read; writes a report')
    .option('-o, --out <dir>', 'report folder', 'out/demo')
    .option('--n <scenes>', 'number of scenes', '300')
    .option('--no-explorer', 'skip the explorer workspace (scene PNGs, a decomposition store and heads.json in the report folder)')
    .action(async (o: DemoFlags) => {
      const n = parseIntFlag(o.n, 'n', 20)!;
      const model = await modelFromFlags(o);
      const log = (msg: string) => process.stderr.write(`demo: ${msg}\n`);
      const { report, summary, scenes, result } = await runDemo(model, { n, log });
      const w = await writeReport(o.out, report);
      process.stdout.write(summary.join('\n') + '\n\n');
      process.stdout.write(`report: ${resolve(o.out, 'index.html')} (also report.md; ${w.files.length} files)\n`);
      if (o.explorer) {
        log('writing the explorer workspace (scenes, store, heads.json)');
        const x = await writeExplorerData(model, scenes, result.heads, o.out);
        process.stdout.write(`explore the same scenes in the browser: ${x.serve}\n`);
      }
      await model.release();
    });
}
