// cliplens public API: a small surface over the model, the decomposition and the analyses.
//
//   const model = await loadClip('hf-hub:laion/CLIP-ViT-B-16-laion2B-s34B-b88K');
//   const { pixels } = await preprocessFiles(model.config, ['cat.jpg']);
//   const terms = await new Decomposer(model).decompose(pixels);   // attn [B,L,H,d], mlp [B,L+1,d]

export { loadClip, type LoadOptions } from './runtime/load.ts';
export { ClipModel, type Tokenizer } from './runtime/clip.ts';
export { parseOpenClipConfig, type ClipConfig } from './model/config.ts';
export { resolveModel, DEFAULT_MODEL, type ResolvedModel } from './model/resolve.ts';
export { ClipTokenizer } from './model/tokenizer.ts';
export { preprocessFiles } from './model/preprocess_model.ts';
export { Decomposer } from './decompose/decomposer.ts';
export type { Decomposition, TextMaps } from './decompose/prs.ts';
export { tokenMaps, patchGrid } from './decompose/patch_maps.ts';
export { decomposeDataset } from './decompose/dataset_job.ts';
export { loadDataset } from './io/datasets.ts';
export { loadStore, readManifest } from './io/store.ts';
export { SafetensorsFile, readSafetensors, writeSafetensors } from './io/safetensors.ts';
export { decodeImage } from './io/image.ts';
export { textspan, textspanHeads } from './analyses/textspan.ts';
export { meanAblate } from './analyses/ablation.ts';
export { buildClassifier, predict, groupAccuracy } from './analyses/zeroshot.ts';
export { nearestNeighbours, headSum } from './analyses/retrieval.ts';
export { embedPool, embedClassifier, readTextSet } from './analyses/text_sets.ts';
export type { Tensor, F32 } from './tensor.ts';
