// The decomposer of a model's family: one switch, so callers never test for a family.

import type { ClipModel } from '../runtime/clip.ts';
import { Decomposer, type ImageDecomposer } from './decomposer.ts';
import { SiglipDecomposer } from './siglip.ts';

export function decomposerFor(model: ClipModel): ImageDecomposer {
  return model.family.id === 'siglip' ? new SiglipDecomposer(model) : new Decomposer(model);
}
