import { Command } from 'commander';
import { decomposeDataset } from '../decompose/dataset_job.ts';
import { Decomposer } from '../decompose/decomposer.ts';
import { loadDataset } from '../io/datasets.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import { modelFromFlags, parseIntFlag, parseLayers, progressBar, withModelOptions, type ModelFlags } from './common.ts';
import { collect, pixelsFromArgs } from './inputs.ts';
import { UsageError } from '../errors.ts';

interface DecomposeFlags extends ModelFlags {
  pixels?: string;
  spatial?: boolean;
  out?: string;
  dataset?: string;
  store?: string;
  batchSize: string;
  layers?: string;
  half?: boolean;
  normalise: boolean;
  pathCol?: string;
  labelCol?: string;
  groupCol?: string;
  filter: string[];
}

export function decomposeCommand(): Command {
  return withModelOptions(new Command('decompose'))
    .description('split image embeddings into per-layer, per-head (and per-token) direct contributions')
    .argument('[images...]', 'image files (single-batch mode)')
    .option('--pixels <file>', 'safetensors file with pixel_values [B,3,S,S]')
    .option('--spatial', 'keep the token axis: attn [B,L,N,H,d]')
    .option('-o, --out <file>', 'output .safetensors (single-batch mode)')
    .option('--dataset <dir|csv|list>', 'image folder (class subfolders = labels), list file, or CSV with a path column')
    .option('--store <dir>', 'store directory for --dataset (resumable)')
    .option('--batch-size <n>', 'images per batch', '16')
    .option('--layers <spec>', 'attention layers to keep in the store: 8-11, 0,3,5, last:4 (default all)')
    .option('--half', 'store float16')
    .option('--no-normalise', 'terms sum to z instead of z/‖z‖')
    .option('--path-col <name>', 'CSV column with image paths')
    .option('--label-col <name>', 'CSV column with labels')
    .option('--group-col <name>', 'CSV column with groups (e.g. place)')
    .option('--filter <col=value>', 'keep CSV rows where col equals value (repeatable)', collect, [])
    .action(async (images: string[], o: DecomposeFlags) => {
      const batchSize = parseIntFlag(o.batchSize, 'batch-size');
      if (o.dataset) {
        if (!o.store) throw new UsageError('--dataset needs --store DIR');
        if (images.length || o.pixels) throw new UsageError('give either --dataset or images/--pixels, not both');
        if (o.spatial) throw new UsageError('--spatial is for single batches; dataset stores keep per-head terms (use heatmap/segment for per-token maps)');
        const filter = o.filter.map((f) => {
          const i = f.indexOf('=');
          if (i <= 0) throw new UsageError(`--filter '${f}': use column=value`);
          return [f.slice(0, i), f.slice(i + 1)] as [string, string];
        });
        const ds = loadDataset(o.dataset, { path: o.pathCol, label: o.labelCol, group: o.groupCol, filter });
        const model = await modelFromFlags(o);
        const layers = parseLayers(o.layers, model.config.vision.layers);
        process.stderr.write(`${ds.items.length} images, ${ds.labels.length} labels, ${ds.groups.length} groups → ${o.store}\n`);
        const bar = progressBar('decompose', ds.items.length);
        const res = await decomposeDataset(model, ds, {
          storeDir: o.store,
          batchSize,
          layers,
          half: o.half,
          normalise: o.normalise,
          onProgress: (p) => bar.update(p.done, p.failed ? `(${p.failed} unreadable)` : ''),
        });
        bar.stop();
        for (const r of res.repaired) process.stderr.write(`warning: shard ${r.file} (batch ${r.batch}) ${r.problem}; recomputed it\n`);
        for (const f of res.failed) process.stderr.write(`warning: skipped ${f.id}: ${f.error}\n`);
        process.stderr.write(
          `store ${o.store}: ${res.processed} images processed now, ${res.skippedBatches} batches already done, ${res.failed.length} unreadable; ${res.complete ? 'complete' : 'incomplete'}\n`,
        );
        return;
      }
      if (!o.out) throw new UsageError('--out FILE is required (or use --dataset with --store)');
      const model = await modelFromFlags(o);
      const { pixels } = await pixelsFromArgs(model, o.pixels, images);
      if (o.spatial) {
        const { L, tokens, H, d } = model.dims();
        const gb = (pixels.shape[0] * L * tokens * H * d * 4) / 1024 ** 3;
        if (gb > 4) throw new UsageError(`--spatial for ${pixels.shape[0]} images would hold ${gb.toFixed(1)} GB; give fewer images, or use heatmap/segment for per-token maps along texts`);
      }
      const res = await new Decomposer(model).decompose(pixels, { spatial: o.spatial, normalise: o.normalise, batchSize });
      writeSafetensors(o.out, { attn: res.attn, mlp: res.mlp, image_features: res.imageFeatures, norm: res.norm }, {
        metadata: { model: model.name, normalised: String(res.normalised), attn_layout: o.spatial ? 'B,L,N,H,d' : 'B,L,H,d' },
      });
      process.stderr.write(`wrote ${o.out}: attn [${res.attn.shape}], mlp [${res.mlp.shape}]\n`);
    });
}
