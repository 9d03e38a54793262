import { Command } from 'commander';
import { modelProvenance, provenanceMetadata } from '../io/provenance.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import type { Tensor } from '../tensor.ts';
import { modelFromFlags, parseIntFlag, withModelOptions, type ModelFlags } from './common.ts';
import { collect, pixelsFromArgs, textsFromArgs, tokensFromFile } from './inputs.ts';
import { UsageError } from '../errors.ts';

export function encodeCommand(): Command {
  return withModelOptions(new Command('encode'))
    .description('image and/or text embeddings (unnormalised, as encode_image/encode_text) into a safetensors file')
    .argument('[images...]', 'image files')
    .option('--pixels <file>', 'safetensors file with pixel_values [B,3,S,S] (skips preprocessing)')
    .option('--text <text>', 'a text to embed (repeatable)', collect, [])
    .option('--texts-file <file>', 'a file with one text per line')
    .option('--tokens <file>', "pre-tokenised ids: safetensors with 'tokens' or 'input_ids' [T, S] (int32 or int64), instead of texts")
    .requiredOption('-o, --out <file>', 'output .safetensors')
    .option('--batch-size <n>', 'images per forward pass', '8')
    .action(async (images: string[], o: ModelFlags & { pixels?: string; text: string[]; textsFile?: string; tokens?: string; out: string; batchSize: string }) => {
      const batchSize = parseIntFlag(o.batchSize, 'batch-size');
      const texts = textsFromArgs(o.text, o.textsFile);
      if (o.tokens && texts.length) throw new UsageError('give either --tokens or texts (--text / --texts-file), not both');
      const ids = o.tokens ? tokensFromFile(o.tokens) : undefined;
      if (!images.length && !o.pixels && !texts.length && !ids) throw new UsageError('nothing to encode: give images, --pixels, --text or --tokens');
      const model = await modelFromFlags(o);
      const out: Record<string, Tensor> = {};
      if (images.length || o.pixels) {
        const { pixels } = await pixelsFromArgs(model, o.pixels, images);
        out.image_features = await model.encodeImages(pixels, batchSize);
      }
      if (ids) {
        out.text_features = await model.encodeTokens(ids.data, 64, ids.shape[1]);
        out.tokens = ids;
      } else if (texts.length) {
        const { features, tokens } = await model.encodeTexts(texts);
        out.text_features = features;
        out.tokens = { dtype: 'I32', shape: [texts.length, model.config.text.contextLength], data: tokens };
      }
      writeSafetensors(o.out, out, { metadata: provenanceMetadata(modelProvenance(model)) });
      const shapes = Object.entries(out).map(([k, t]) => `${k} [${t.shape}]`).join(', ');
      process.stderr.write(`wrote ${o.out}: ${shapes}\n`);
    });
}
