import { Command } from 'commander';
import { embedClassifier, embedPool, readLines, readListOrBundled, writeTextSet } from '../analyses/text_sets.ts';
import { modelFromFlags, progressBar, withModelOptions, type ModelFlags } from './common.ts';
import { collect } from './inputs.ts';
import { UsageError } from '../errors.ts';

export function textsCommand(): Command {
  return withModelOptions(new Command('texts'))
    .description('embed a text pool (normalised; TextSpan candidates) or build a zero-shot classifier from class names × templates')
    .option('--file <file>', 'texts, one per line')
    .option('--text <text>', 'a text (repeatable)', collect, [])
    .option('--classes <file>', "class names, one per line: build a zero-shot classifier instead of a pool; 'imagenet' = the 1000 ImageNet classes (bundled)")
    .option('--templates <file>', "prompt templates with {} for the class name (default: 'a photo of a {}.'); 'openai' = OpenAI's 80 ImageNet templates (bundled)")
    .requiredOption('-o, --out <file>', 'output .safetensors (text_features [m,d], names in its metadata)')
    .action(async (o: ModelFlags & { file?: string; text: string[]; classes?: string; templates?: string; out: string }) => {
      if (o.classes && (o.file || o.text.length)) throw new UsageError('give either --classes (classifier) or --file/--text (pool)');
      const model = await modelFromFlags(o);
      if (o.classes) {
        const classes = readListOrBundled(o.classes, 'classes');
        const templates = o.templates ? readListOrBundled(o.templates, 'templates') : ['a photo of a {}.'];
        const bar = progressBar('prompts', classes.length * templates.length, 'text');
        const set = await embedClassifier(model, classes, templates, (d) => bar.update(d));
        bar.stop();
        writeTextSet(o.out, set);
        process.stderr.write(`wrote ${o.out}: classifier for ${classes.length} classes × ${templates.length} templates\n`);
        return;
      }
      const texts = [...o.text, ...(o.file ? readLines(o.file) : [])];
      if (!texts.length) throw new UsageError('no texts: give --file, --text or --classes');
      const bar = progressBar('texts', texts.length, 'text');
      const set = await embedPool(model, texts, (d) => bar.update(d));
      bar.stop();
      writeTextSet(o.out, set);
      process.stderr.write(`wrote ${o.out}: ${texts.length} normalised text embeddings\n`);
    });
}
