import { Command } from 'commander';
import { decomposeDataset } from '../decompose/dataset_job.ts';
import { decomposerFor } from '../decompose/decomposers.ts';
import { SiglipDecomposer } from '../decompose/siglip.ts';
import { layerShares } from '../analyses/siglip.ts';
import { layerSharesReport } from '../report/siglip_report.ts';
import { writeReport } from '../report/writer.ts';
import { loadDataset } from '../io/datasets.ts';
import { modelProvenance, provenanceMetadata } from '../io/provenance.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import { modelFromFlags, parseIntFlag, parseLayers, progressBar, withModelOptions, type ModelFlags } from './common.ts';
import { collect, pixelsFromArgs } from './inputs.ts';
import type { ShardSpec } from '../io/store.ts';
import { UsageError } from '../errors.ts';

/** "K/N" → shard K (from 0) of N. */
export function parseShard(spec: string | undefined): ShardSpec | undefined {
  if (spec === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(spec.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index >= count) throw new UsageError(`--shard '${spec}': use K/N with 0 ≤ K < N, e.g. 0/4 … 3/4 (shards count from 0, as Slurm array and Kubernetes job indices do)`);
  return { index, count };
}

interface DecomposeFlags extends ModelFlags {
  pixels?: string;
  spatial?: boolean;
  out?: string;
  dataset?: string;
  store?: string;
  batchSize: string;
  layers?: string;
  shard?: string;
  half?: boolean;
  normalise?: boolean;
  throughLayers?: boolean;
  report?: string;
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
    .option('--spatial', 'keep the token axis: attn [B,L,N,H,d] (SigLIP: [B,N,H,d])')
    .option('--through-layers', 'SigLIP: also split the pooling heads\' attention terms through the encoder (per layer, head, pooling head; per token with --spatial)')
    .option('--report <dir>', 'with --through-layers: a report of which encoder layers feed each pooling head')
    .option('-o, --out <file>', 'output .safetensors (single-batch mode)')
    .option('--dataset <dir|csv|list>', 'image folder (class subfolders = labels), list file, or CSV with a path column')
    .option('--store <dir>', 'store directory for --dataset (resumable)')
    .option('--batch-size <n>', 'images per batch', '16')
    .option('--layers <spec>', 'attention layers to keep in the store: 8-11, 0,3,5, last:4 (default all)')
    .option('--shard <K/N>', 'with --dataset: decompose only shard K (0..N-1) of N, a contiguous slice of the batches, into its own store (join them with cliplens store merge)')
    .option('--half', 'store float16')
    .option('--normalise', 'terms sum to z/‖z‖ (the CLIP reference; the default for CLIP)')
    .option('--no-normalise', 'terms sum to z (the SigLIP reference; the default for SigLIP)')
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
        const shard = parseShard(o.shard);
        const filter = o.filter.map((f) => {
          const i = f.indexOf('=');
          if (i <= 0) throw new UsageError(`--filter '${f}': use column=value`);
          return [f.slice(0, i), f.slice(i + 1)] as [string, string];
        });
        const ds = loadDataset(o.dataset, { path: o.pathCol, label: o.labelCol, group: o.groupCol, filter });
        if (o.throughLayers) throw new UsageError('--through-layers is for single batches (--pixels or images), not --dataset');
        const model = await modelFromFlags(o);
        const layers = parseLayers(o.layers, decomposerFor(model).layout().L);
        process.stderr.write(`${ds.items.length} images, ${ds.labels.length} labels, ${ds.groups.length} groups${shard ? `, shard ${shard.index}/${shard.count}` : ''} → ${o.store}\n`);
        let bar: ReturnType<typeof progressBar> | undefined;
        const res = await decomposeDataset(model, ds, {
          storeDir: o.store,
          batchSize,
          layers,
          half: o.half,
          normalise: o.normalise,
          shard,
          onProgress: (p) => {
            bar ??= progressBar('decompose', p.total);
            bar.update(p.done, p.failed ? `(${p.failed} unreadable)` : '');
          },
        });
        bar?.stop();
        for (const r of res.repaired) process.stderr.write(`warning: shard ${r.file} (batch ${r.batch}) ${r.problem}; recomputed it\n`);
        for (const f of res.failed) process.stderr.write(`warning: skipped ${f.id}: ${f.error}\n`);
        process.stderr.write(
          `store ${o.store}: ${res.processed} images processed now, ${res.skippedBatches} batches already done, ${res.failed.length} unreadable; ${res.complete ? 'complete' : 'incomplete'}\n`,
        );
        return;
      }
      if (o.shard) throw new UsageError('--shard needs --dataset and --store');
      if (!o.out) throw new UsageError('--out FILE is required (or use --dataset with --store)');
      if (o.report && !o.throughLayers) throw new UsageError('--report is for --through-layers');
      if (o.report && o.spatial) throw new UsageError('--report takes the token-summed split: drop --spatial');
      const model = await modelFromFlags(o);
      const dec = decomposerFor(model);
      if (o.normalise && !model.family.normalisedTerms) throw new UsageError(`--normalise: ${model.family.label} terms are written unnormalised, as its reference records them`);
      const { pixels } = await pixelsFromArgs(model, o.pixels, images);
      const B = pixels.shape[0];
      const { L, N, H, d } = dec.layout();
      const guard = (what: string, floats: number) => {
        const gb = (floats * 4) / 1024 ** 3;
        if (gb > 4) throw new UsageError(`${what} for ${B} images would hold ${gb.toFixed(1)} GB; give fewer images, or use heatmap/segment for per-token maps along texts`);
      };
      if (o.spatial) guard('--spatial', B * L * N * H * d);
      const res = await dec.decompose(pixels, { spatial: o.spatial, normalise: o.normalise ?? model.family.normalisedTerms, batchSize });
      const tensors = dec.referenceTensors(res);
      const meta: Record<string, string> = { ...provenanceMetadata(modelProvenance(model)), family: model.family.id, normalised: String(res.normalised), attn_layout: dec.referenceLayout(!!o.spatial), ...(res.clsAttn ? { cls_attn_layout: 'B,L,H,d' } : {}) };
      if (o.throughLayers) {
        if (!(dec instanceof SiglipDecomposer)) throw new UsageError(`--through-layers splits a SigLIP pooling head's terms; ${model.name} is a ${model.family.label} model`);
        const v = model.config.vision;
        if (o.spatial) guard('--through-layers --spatial', B * v.layers * v.heads * N * H * d);
        const t = await dec.throughLayers(pixels, { spatial: o.spatial, batchSize });
        Object.assign(tensors, { through_heads: t.heads, through_bias: t.bias, through_mlp: t.mlp, through_embed: t.embed, through_constant: t.constant });
        meta.through_layout = o.spatial ? 'through_heads B,L,H,N,P,d (P = pooling head)' : 'through_heads B,L,H,P,d (P = pooling head)';
        if (o.report) {
          const w = await writeReport(o.report, await layerSharesReport(layerShares(t), { model: model.name, images: B }, modelProvenance(model)));
          process.stderr.write(`wrote report ${o.report}/index.html (${w.files.length} files)\n`);
        }
      }
      writeSafetensors(o.out, tensors, { metadata: meta });
      process.stderr.write(`wrote ${o.out}: ${Object.entries(tensors).map(([k, t]) => `${k} [${t.shape}]`).join(', ')}\n`);
    });
}
