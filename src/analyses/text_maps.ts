// Where in an image each text is read (the paper's Fig. 1 heatmaps): every token's direct
// contribution along each text direction, summed over all (or chosen) layers and heads. The
// CLI's heatmap, the explorer and the library's textMaps all come through here.

import type { ImageDecomposer } from '../decompose/decomposer.ts';
import { tokenMaps, type MapSelection } from '../decompose/patch_maps.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { f32, type F32 } from '../tensor.ts';
import { normalizeRows } from './linalg.ts';

/** Unit-length text embeddings [T, d] (the directions the maps are read along). */
export async function unitTextEmbeddings(model: ClipModel, texts: string[]): Promise<F32> {
  const d = model.config.embedDim;
  const { features } = await model.encodeTexts(texts);
  return f32([texts.length, d], normalizeRows(features.data, texts.length, d));
}

/**
 * Maps [B, T, N] (CLS token first when the model has one, then the patches row by row) of each
 * text's direct contribution per token, Σ over the selected layers and heads, for images given as
 * pixel_values [B, 3, S, S] or as the vision taps of an earlier forward pass (`taps`). Terms are
 * scaled as the family's reference does (CLIP: ÷‖z‖; SigLIP: unnormalised) unless `normalise` says.
 */
export async function textTokenMaps(dec: ImageDecomposer, images: F32 | { taps: unknown }, texts: F32, sel: MapSelection = {}, normalise?: boolean): Promise<F32> {
  const taps = 'taps' in images ? images.taps : await dec.taps(images, true);
  const { maps } = await dec.textMapsFromTaps(taps, texts, normalise);
  return tokenMaps(maps, sel);
}
