import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { textTokenMaps, unitTextEmbeddings } from '../analyses/text_maps.ts';
import { decomposerFor } from '../decompose/decomposers.ts';
import { patchGrid } from '../decompose/patch_maps.ts';
import { modelProvenance, provenanceFields } from '../io/provenance.ts';
import { heatmapOverlay, sideBySide } from '../report/figures.ts';
import { modelFromFlags, parseIntFlag, withModelOptions, type ModelFlags } from './common.ts';
import { collect, pixelsFromArgs } from './inputs.ts';
import { UsageError } from '../errors.ts';

interface HeatmapFlags extends ModelFlags {
  text: string[];
  out?: string;
  json?: boolean;
  layer?: string;
  head?: string;
}

export function heatmapCommand(): Command {
  return withModelOptions(new Command('heatmap'))
    .description("where in the image each text is read: the text's direct contribution per patch, summed over layers and heads")
    .argument('<image>', 'image file')
    .option('--text <text>', 'a text (repeatable); with two texts a third panel shows their difference', collect, [])
    .option('-o, --out <png>', 'output PNG with one panel per text')
    .option('--json', 'print the raw [N] map per text (CLS first, when the model has one) as JSON on stdout')
    .option('--layer <l>', 'only this attention layer (SigLIP: 0, the pooling head)')
    .option('--head <h>', 'only this head (SigLIP: pooling head)')
    .action(async (image: string, o: HeatmapFlags) => {
      if (!o.text.length) throw new UsageError('give at least one --text');
      if (!o.out && !o.json) throw new UsageError('give --out FILE.png and/or --json');
      const model = await modelFromFlags(o);
      const dec = decomposerFor(model);
      const { L, H, grid } = dec.layout();
      const layer = parseIntFlag(o.layer, 'layer', 0);
      const head = parseIntFlag(o.head, 'head', 0);
      if (layer !== undefined && layer >= L) throw new UsageError(`--layer ${layer}: the model has layers 0..${L - 1}`);
      if (head !== undefined && head >= H) throw new UsageError(`--head ${head}: the model has heads 0..${H - 1}`);
      const { pixels, u8 } = await pixelsFromArgs(model, undefined, [image]);
      const texts = o.text;
      const per = await textTokenMaps(dec, pixels, await unitTextEmbeddings(model, texts), { layers: layer !== undefined ? [layer] : undefined, heads: head !== undefined ? [head] : undefined });
      const N = per.shape[2];
      const rows = texts.map((_, t) => per.data.slice(t * N, (t + 1) * N));
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ ...provenanceFields(modelProvenance(model)), grid, tokens: N, layer: layer ?? 'all', head: head ?? 'all', maps: texts.map((text, t) => ({ text, map: Array.from(rows[t]) })) })}\n`);
      }
      if (o.out) {
        const S = model.config.vision.imageSize;
        const img = { rgb: u8!, width: S, height: S };
        const panels = await Promise.all(texts.map((text, t) => heatmapOverlay(img, patchGrid(rows[t], grid), { title: text, colorbar: true })));
        if (texts.length === 2) {
          const diff = rows[0].map((v, i) => v - rows[1][i]);
          panels.push(await heatmapOverlay(img, patchGrid(diff, grid), { title: `${texts[0]} − ${texts[1]}`, colorbar: true }));
        }
        writeFileSync(o.out, await sideBySide(panels));
        process.stderr.write(`wrote ${o.out} (${panels.length} panel${panels.length > 1 ? 's' : ''})\n`);
      }
    });
}
