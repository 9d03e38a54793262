import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { loadDataset } from '../io/datasets.ts';
import { modelProvenance, provenanceMetadata } from '../io/provenance.ts';
import { preprocessToFile } from '../model/preprocess_model.ts';
import { modelFromFlags, parseIntFlag, progressBar, withModelOptions, type ModelFlags } from './common.ts';
import { UsageError } from '../errors.ts';

interface PreprocessFlags extends ModelFlags {
  out: string;
  dataset?: string;
  batchSize: string;
}

export function preprocessCommand(): Command {
  return withModelOptions(new Command('preprocess'))
    .description("decode, resize (PIL-exact bicubic), centre-crop and normalise images with the model's settings (reads only the model's config and the few tensors its fingerprint hashes)")
    .argument('[images...]', 'image files')
    .option('--dataset <dir|csv|list>', 'all images of a folder, list file or CSV (as decompose --dataset)')
    .option('--batch-size <n>', 'images per batch; memory holds two batches', '64')
    .requiredOption('-o, --out <file>', 'output .safetensors with pixel_values [B,3,S,S] and pixels_u8 [B,S,S,3]')
    .action(async (images: string[], o: PreprocessFlags) => {
      if (o.dataset && images.length) throw new UsageError('give either --dataset or image files, not both');
      const paths = o.dataset ? loadDataset(o.dataset).items.map((i) => i.path) : images;
      if (!paths.length) throw new UsageError('no images: give image files or --dataset DIR');
      for (const p of paths) if (!existsSync(p)) throw new UsageError(`image ${p} does not exist`);
      const batchSize = parseIntFlag(o.batchSize, 'batch-size');
      // The model's graphs are never built here: its config, and the few tensors its fingerprint hashes.
      const model = await modelFromFlags(o);
      const config = model.config;
      const metadata = provenanceMetadata(modelProvenance(model));
      await model.release();
      const bar = paths.length > batchSize! ? progressBar('preprocess', paths.length) : undefined;
      await preprocessToFile(config, paths, o.out, { batchSize, metadata, onProgress: (d) => bar?.update(d) });
      bar?.stop();
      const S = config.vision.imageSize;
      process.stderr.write(`wrote ${o.out}: pixel_values [${paths.length},3,${S},${S}]\n`);
    });
}
