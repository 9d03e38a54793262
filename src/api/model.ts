// The library's model: a loaded CLIP whose methods take images as files, bytes or pixels and
// return plain tensors. Everything here delegates to the layers below (runtime, decompose,
// analyses); this file only adapts inputs and names.

import { embedClassifier, embedPool, type TextSet } from '../analyses/text_sets.ts';
import { textTokenMaps, unitTextEmbeddings } from '../analyses/text_maps.ts';
import { decomposeDataset, type DatasetJobOptions, type DatasetJobResult } from '../decompose/dataset_job.ts';
import type { ImageDecomposer } from '../decompose/decomposer.ts';
import { decomposerFor } from '../decompose/decomposers.ts';
import type { MapSelection } from '../decompose/patch_maps.ts';
import type { Decomposition } from '../decompose/prs.ts';
import { loadDataset, type Dataset } from '../io/datasets.ts';
import { decodeImage } from '../io/image.ts';
import type { ClipConfig } from '../model/config.ts';
import { preprocessDecodedBatch } from '../model/preprocess_model.ts';
import { NeuronEffects } from '../neurons/effects.ts';
import { neuronEffectsDataset, type NeuronJobOptions } from '../neurons/job.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { loadClip, type LoadOptions } from '../runtime/load.ts';
import type { F32, Tensor } from '../tensor.ts';
import { ImageDecodeError } from '../errors.ts';

/** An image as a file path, or the bytes of an encoded image (PNG, JPEG, WebP, …). */
export type ImageInput = string | Uint8Array;

/** Images to run: a list of files / encoded bytes, or pixel_values [B, 3, S, S] already preprocessed for this model. */
export type Images = readonly ImageInput[] | F32;

/** The model's sizes, with the paper's names. */
export interface ModelDims {
  /** Attention layers of the vision tower. */
  L: number;
  /** Heads per layer. */
  H: number;
  /** Residual width of the vision tower. */
  D: number;
  /** Embedding size (the joint image–text space). */
  d: number;
  /** Input image side in pixels. */
  imageSize: number;
  /** Patches per side. */
  grid: number;
  /** Tokens: 1 (CLS) + grid². */
  tokens: number;
}

export interface DecomposeOptions {
  /** Keep the token axis: attn [B, L, N, H, d] instead of [B, L, H, d]. */
  spatial?: boolean;
  /** Divide every term by ‖z‖ as the reference does (default true): the terms then sum to z/‖z‖. */
  normalise?: boolean;
  batchSize?: number;
}

/**
 * A CLIP model ready to run (from {@link loadModel}). Image methods accept file paths, encoded
 * image bytes or pixel tensors; every result is a tensor `{ data, shape, dtype }` in row-major
 * order.
 */
export class Model {
  /** The model's name (builtin name, file, or hub id). */
  readonly name: string;
  readonly config: ClipConfig;
  /** The family's decomposer (CLIP: PRS terms per layer; SigLIP: the pooling head's terms). */
  readonly decomposer: ImageDecomposer;
  private readonly neurons = new Map<number, NeuronEffects>();

  /** Wrap a runtime model (loadModel does this for you). */
  constructor(
    /** The runtime model underneath, for the lower-level functions this package also exports. */
    readonly clip: ClipModel,
  ) {
    this.name = clip.name;
    this.config = clip.config;
    this.decomposer = decomposerFor(clip);
  }

  /** Sizes of the vision tower and the embedding. */
  get dims(): ModelDims {
    const { L, H, D, d, grid, tokens } = this.clip.dims();
    return { L, H, D, d, imageSize: this.config.vision.imageSize, grid, tokens };
  }

  /**
   * Decode and preprocess images with this model's settings (resize the shorter side with
   * PIL-exact bicubic, centre crop, normalise): pixel_values [B, 3, S, S]. Throws
   * ImageDecodeError naming the first image that cannot be read.
   */
  async preprocess(images: readonly ImageInput[]): Promise<F32> {
    const decoded = await Promise.all(images.map((im, i) => decodeImage(typeof im === 'string' ? im : Buffer.from(im.buffer, im.byteOffset, im.byteLength), typeof im === 'string' ? undefined : `image ${i}`)));
    const batch = preprocessDecodedBatch(this.config, decoded);
    const bad = batch.errors.findIndex((e) => e !== undefined);
    if (bad >= 0) throw new ImageDecodeError(typeof images[bad] === 'string' ? (images[bad] as string) : `image ${bad}`, batch.errors[bad]!);
    return batch.pixels;
  }

  private pixels(images: Images): Promise<F32> {
    return isTensor(images) ? Promise.resolve(images) : this.preprocess(images);
  }

  /** Image embeddings [B, d], unnormalised (as the reference's encode_image). */
  async encodeImages(images: Images, opts: { batchSize?: number } = {}): Promise<F32> {
    return this.clip.encodeImages(await this.pixels(images), opts.batchSize);
  }

  /** Text embeddings [T, d], unnormalised (as the reference's encode_text). */
  async encodeTexts(texts: readonly string[], opts: { batchSize?: number } = {}): Promise<F32> {
    return (await this.clip.encodeTexts([...texts], opts.batchSize)).features;
  }

  /** Token ids [T, contextLength] as the model's tokenizer makes them. */
  tokenize(texts: readonly string[]): Tensor<Int32Array> {
    return { dtype: 'I32', shape: [texts.length, this.config.text.contextLength], data: this.clip.tokenize([...texts]) };
  }

  /**
   * The image embedding split exactly into direct contributions (docs/decomposition.md):
   * `attn` [B, L, H, d] per layer and head ([B, L, N, H, d] per token with `spatial`), `mlp`
   * [B, L+1, d] (slot 0 the ln_pre term, slot l+1 layer l's MLP), `imageFeatures` z [B, d] and
   * `norm` ‖z‖ [B]. The terms sum to z/‖z‖ (or z with `normalise: false`).
   */
  async decompose(images: Images, opts: DecomposeOptions = {}): Promise<Decomposition> {
    return this.decomposer.decompose(await this.pixels(images), opts);
  }

  /**
   * Where in each image each text is read: maps [B, T, N] of every token's direct contribution
   * along the text (token 0 is CLS, then the grid×grid patches row by row), summed over all
   * layers and heads, or over the chosen ones.
   */
  async textMaps(images: Images, texts: readonly string[], select: MapSelection = {}): Promise<F32> {
    const [pixels, directions] = await Promise.all([this.pixels(images), unitTextEmbeddings(this.clip, [...texts])]);
    return textTokenMaps(this.decomposer, pixels, directions, select);
  }

  /** A text pool for TextSpan: the texts' unit embeddings [T, d] with the texts. */
  textPool(texts: readonly string[]): Promise<TextSet> {
    return embedPool(this.clip, [...texts]);
  }

  /** A zero-shot classifier: per class, the mean unit embedding of the templates (`{}` = class name), renormalised. */
  classifier(classNames: readonly string[], templates: readonly string[] = ['a photo of a {}.']): Promise<TextSet> {
    return embedClassifier(this.clip, [...classNames], [...templates]);
  }

  /**
   * Decompose every image of a dataset (a folder with class subfolders, a CSV, or a list file;
   * see loadDataset) into a store on disk, batch by batch; an interrupted run resumes.
   */
  decomposeDataset(dataset: string | Dataset, opts: DatasetJobOptions): Promise<DatasetJobResult> {
    return decomposeDataset(this.clip, typeof dataset === 'string' ? loadDataset(dataset) : dataset, opts);
  }

  /**
   * Second-order effects of every neuron of MLP block `layer` (0-based), as the reference
   * (second_order_lens) saves them: [B, M, d], M the MLP width.
   */
  async neuronEffects(images: Images, layer: number, opts: { batchSize?: number } = {}): Promise<F32> {
    let ne = this.neurons.get(layer);
    if (!ne) this.neurons.set(layer, (ne = new NeuronEffects(this.clip, layer)));
    return ne.effects(await this.pixels(images), opts.batchSize);
  }

  /**
   * The second-order effects of a dataset's images into a neuron store on disk (factored: one
   * scalar per neuron and later head per image); an interrupted run resumes. Open it with
   * NeuronStore.open.
   */
  neuronEffectsDataset(dataset: string | Dataset, opts: NeuronJobOptions): Promise<DatasetJobResult> {
    return neuronEffectsDataset(this.clip, typeof dataset === 'string' ? loadDataset(dataset) : dataset, opts);
  }

  /** Free the ONNX Runtime sessions (the model can still be used: they are rebuilt on demand). */
  release(): Promise<void> {
    return this.clip.release();
  }
}

function isTensor(x: Images): x is F32 {
  return !Array.isArray(x) && typeof x === 'object' && 'shape' in x && 'data' in x;
}

/**
 * Load a CLIP model: a builtin name (`'toyworld'`, the default, embedded in the package), a
 * `.safetensors` file in open_clip layout with its config beside it, a model directory, or a hub
 * id (`'hf-hub:laion/CLIP-ViT-B-16-laion2B-s34B-b88K'`, `'openai/clip-vit-base-patch32'`),
 * downloaded once into the cache.
 */
export async function loadModel(spec?: string, opts: LoadOptions = {}): Promise<Model> {
  return new Model(await loadClip(spec, opts));
}
