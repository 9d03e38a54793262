import { Command } from 'commander';
import { resolve } from 'node:path';
import { writeReport } from '../report/writer.ts';
import { runDemo } from '../toyworld_study/demo.ts';
import { modelFromFlags, parseIntFlag, withModelOptions, type ModelFlags } from './common.ts';

interface DemoFlags extends ModelFlags {
  out: string;
  n?: string;
}

export function demoCommand(): Command {
  return withModelOptions(new Command('demo'))
    .description('the main job in one go, offline: decompose held-out toy-world scenes, say what each late head describes, draw where colour and shape are read; writes a report')
    .option('-o, --out <dir>', 'report folder', 'out/demo')
    .option('--n <scenes>', 'number of scenes', '300')
    .action(async (o: DemoFlags) => {
      const n = parseIntFlag(o.n, 'n', 20)!;
      const model = await modelFromFlags(o);
      const { report, summary } = await runDemo(model, { n, log: (msg) => process.stderr.write(`demo: ${msg}\n`) });
      const w = await writeReport(o.out, report);
      process.stdout.write(summary.join('\n') + '\n\n');
      process.stdout.write(`report: ${resolve(o.out, 'index.html')} (also report.md; ${w.files.length} files)\n`);
      await model.release();
    });
}
