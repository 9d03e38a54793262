// Where in an image each text is read (the paper's Fig. 1 heatmaps): every token's direct
// contribution along each text direction, summed over all (or chosen) layers and heads. The
// CLI's heatmap, the explorer and the library's textMaps all come through here.

import type { Decomposer } from '../decompose/decomposer.ts';
import { tokenMaps, type MapSelection } from '../decompose/patch_maps.ts';
import { foldTexts, textMapsFromTaps, type VisionTaps } from '../decompose/prs.ts';
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
 * Maps [B, T, N] (CLS token first, then the patches row by row) of each text's direct
 * contribution per token, Σ over the selected layers and heads, for images given as
 * pixel_values [B, 3, S, S] or as the vision taps of an earlier forward pass. Terms are
 * normalised by ‖z‖, as in the reference.
 */
export async function textTokenMaps(dec: Decomposer, images: F32 | VisionTaps, texts: F32, sel: MapSelection = {}): Promise<F32> {
  const r = await dec.getReadout();
  const taps = 'dtype' in images ? await dec.taps(images, true) : images;
  const { maps } = await textMapsFromTaps(taps, r, await foldTexts(r, texts), true);
  return tokenMaps(maps, sel);
}
