// The toy scene world: a synthetic dataset whose ground truth we control, used to train
// and check cliplens' embedded default CLIP.

export { ATTRIBUTES, FAMILIES, attributePrompts, captionConstraints, renderCaption, sampleCaption } from './captions.ts';
export type { CaptionParts, Labels, SampledCaption } from './captions.ts';
export { COLOR_JITTER, COLOR_RGB, generateScene, generateScenes, partnerValue, sceneSeed } from './scene.ts';
export type { Correlation, Scene, SceneOptions } from './scene.ts';
export { mixSeed, mulberry32 } from './rng.ts';
