/**
 * cliplens: the image embedding of a CLIP vision transformer split exactly into the direct
 * contributions of its layers, heads and patches, and described in words (Gandelsman, Efros,
 * Steinhardt, ICLR 2024). The maths and the conventions are in docs/decomposition.md.
 *
 * ```js
 * import { loadModel } from 'cliplens';
 * const model = await loadModel();                       // the embedded toy-world CLIP
 * const z = await model.encodeImages(['photo.png']);      // { data, shape: [1, d], dtype }
 * const terms = await model.decompose(['photo.png']);     // attn [1, L, H, d], mlp [1, L+1, d]
 * const maps = await model.textMaps(['photo.png'], ['a red square']); // [1, 1, N]
 * ```
 *
 * Every error cliplens throws on purpose is a {@link CliplensError} with a stable `code`.
 *
 * @packageDocumentation
 */

// The model
export { loadModel, Model, type DecomposeOptions, type ImageInput, type Images, type ModelDims } from './api/model.ts';
export type { LoadOptions } from './runtime/load.ts';
export type { ClipModel } from './runtime/clip.ts';
export type { ClipConfig } from './model/config.ts';
export { ClipTokenizer } from './model/tokenizer.ts';
export type { Decomposition } from './decompose/prs.ts';
export type { ImageDecomposer, DecompositionLayout } from './decompose/decomposer.ts';
export { decomposerFor } from './decompose/decomposers.ts';

// SigLIP (google/siglip-*, hf-hub:timm/ViT-*-SigLIP load like any model): the pooling head's terms,
// their split through the encoder, and compute_siglip.py's features
export { SiglipDecomposer, type ThroughLayers } from './decompose/siglip.ts';
export { SiglipTokenizer } from './model/siglip_tokenizer.ts';
export { siglipFeatures, headOrthogonality, layerShares, type LayerShares } from './analyses/siglip.ts';
export type { MapSelection } from './decompose/patch_maps.ts';
export type { DType, F32, Tensor, TypedData } from './tensor.ts';

// Datasets and stores (decompose a dataset with model.decomposeDataset)
export { loadDataset, type Dataset, type DatasetItem, type CsvColumns } from './io/datasets.ts';
export { loadStore, readManifest, type StoreData, type StoreManifest } from './io/store.ts';
export { modelFingerprint, modelProvenance, requireSameModel, type ModelProvenance } from './io/provenance.ts';
export type { DatasetJobOptions, DatasetJobResult } from './decompose/dataset_job.ts';
export { readSafetensors, writeSafetensors, SafetensorsFile } from './io/safetensors.ts';

// The methods: TextSpan, mean-ablation, zero-shot, text sets
export { textspan, type TextSpanOptions, type TextSpanResult } from './analyses/textspan.ts';
export {
  meanAblate, debiasSpec, COMPLETENESS_PROTOCOLS, DEBIAS_PROTOCOLS,
  type AblationSpec, type CompletenessProtocol, type DebiasProtocol, type DecompositionTerms,
} from './analyses/ablation.ts';
export { predict, groupAccuracy, type GroupAccuracy } from './analyses/zeroshot.ts';
export { readTextSet, writeTextSet, type TextSet } from './analyses/text_sets.ts';

// The paper's studies on a store
export { ablationStudy, type AblationStudyResult } from './analyses/ablation_study.ts';
export { textspanStudy, readTextSpanFile, type TextSpanStudyOptions, type TextSpanStudyResult, type TextSpanHead, type TextSpanFile } from './analyses/textspan_study.ts';
export { debiasStudy, type DebiasOptions, type DebiasStudyResult } from './analyses/debias.ts';
export { retrievalStudy, decomposeQueryImage, type QueryImage, type RetrievalScore, type RetrievalStudyResult } from './analyses/retrieval_study.ts';
export { parseHeadSpec } from './analyses/heads.ts';
export { textspanBaselines, randomDirections, randomTexts, type PoolCurve, type BaselineOptions } from './analyses/text_baselines.ts';
export { rawAttentionMap, rolloutMap } from './analyses/attention_maps.ts';

// All of the paper's experiments as one resumable plan (what `cliplens paper` runs)
export { planPaper, runPaper, type PaperOptions, type PaperPlan, type PaperRunResult } from './paper/paper.ts';

// Second-order effects of neurons (Gandelsman et al., ICLR 2025): model.neuronEffects, or a store
export { NeuronEffects } from './neurons/effects.ts';
export { NeuronStore, openEffectsFile, exportEffects, memoryEffects, type EffectsSource } from './neurons/store.ts';
export { neuronPca, type NeuronPca } from './neurons/pca.ts';
export { neuronAblation, type NeuronAblationResult, type NeuronStats } from './neurons/ablation.ts';
export { describeNeurons, textDictionary, type DescribeResult, type Description } from './neurons/describe.ts';
export { discoverConcepts, type ImageConcepts } from './neurons/concepts.ts';
export type { NeuronJobOptions } from './neurons/job.ts';

// Notation and errors
export { headName, parseHeadList, LN_PRE_SLOT, mlpSlot, type HeadRef } from './notation.ts';
export * from './errors.ts';
