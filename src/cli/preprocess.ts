import { Command } from 'commander';
import { modelProvenance, provenanceMetadata } from '../io/provenance.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import { modelFromFlags, withModelOptions, type ModelFlags } from './common.ts';
import { pixelsFromArgs } from './inputs.ts';

export function preprocessCommand(): Command {
  return withModelOptions(new Command('preprocess'))
    .description("decode, resize (PIL-exact bicubic), centre-crop and normalise images with the model's settings")
    .argument('<images...>', 'image files')
    .requiredOption('-o, --out <file>', 'output .safetensors with pixel_values [B,3,S,S] and pixels_u8 [B,S,S,3]')
    .action(async (images: string[], o: ModelFlags & { out: string }) => {
      const model = await modelFromFlags(o);
      const { pixels, u8 } = await pixelsFromArgs(model, undefined, images);
      const S = model.config.vision.imageSize;
      writeSafetensors(o.out, { pixel_values: pixels, pixels_u8: { dtype: 'U8', shape: [images.length, S, S, 3], data: u8! } }, { metadata: provenanceMetadata(modelProvenance(model)) });
      process.stderr.write(`wrote ${o.out}: pixel_values [${pixels.shape}]\n`);
    });
}
