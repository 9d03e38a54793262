import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { normalizeRows } from '../analyses/linalg.ts';
import { jointHeads, spatialMaps } from '../analyses/spatial_studies.ts';
import { decomposerFor } from '../decompose/decomposers.ts';
import { modelProvenance, provenanceFields } from '../io/provenance.ts';
import { headName } from '../notation.ts';
import { blendMap, imageGrid } from '../report/figures.ts';
import { modelFromFlags, parseIntFlag, withModelOptions, type ModelFlags } from './common.ts';
import { pixelsFromArgs } from './inputs.ts';
import { toJson } from './study_common.ts';
import { UsageError } from '../errors.ts';

interface JointFlags extends ModelFlags {
  text?: string;
  top: string;
  out?: string;
  json?: boolean;
}

export function jointCommand(): Command {
  return withModelOptions(new Command('joint'))
    .description("joint decomposition: for a text, the map restricted to each of the heads that contribute most along it, as a grid of overlays")
    .argument('<image>', 'image file')
    .requiredOption('--text <text>', 'the text')
    .option('--top <n>', 'heads to show (ranked by their total contribution along the text)', '8')
    .option('-o, --out <png>', 'output grid PNG')
    .option('--json', 'print the ranking and maps as JSON on stdout')
    .action(async (image: string, o: JointFlags) => {
      if (!o.out && !o.json) throw new UsageError('give --out FILE.png and/or --json');
      const top = parseIntFlag(o.top, 'top')!;
      const model = await modelFromFlags(o);
      const { grid, d } = model.dims();
      const S = model.config.vision.imageSize;
      const { pixels, u8 } = await pixelsFromArgs(model, undefined, [image]);
      const t = normalizeRows((await model.encodeTexts([o.text!])).features.data, 1, d);
      const [spatial] = await spatialMaps(decomposerFor(model), pixels, [t]);
      const j = jointHeads(spatial, top);
      if (o.json) process.stdout.write(toJson({ ...provenanceFields(modelProvenance(model)), text: o.text, grid, full: j.full, heads: j.heads }) + '\n');
      if (o.out) {
        const image = { rgb: u8!, width: S, height: S };
        const panels = [blendMap(image, j.full, grid, grid, { caption: 'all heads' })];
        for (const h of j.heads) panels.push(blendMap(image, h.map, grid, grid, { caption: `${headName(h)}  ${h.total.toExponential(2)}` }));
        writeFileSync(o.out, await imageGrid(panels, Math.min(panels.length, 5), { title: `'${o.text}': top ${j.heads.length} heads` }));
        process.stderr.write(`wrote ${o.out}: ${j.heads.map(headName).join(', ')}\n`);
      }
    });
}
