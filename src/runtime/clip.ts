// A CLIP or SigLIP model on ONNX Runtime: the vision graph (with the decomposition's taps) and the text graph.

import ort from 'onnxruntime-node';
import { createSession, resolveExecutionProvider, type RuntimeOptions } from '../graph/session.ts';
import { VISION_TAPS, type VisionOutput } from '../graph/clip_graphs.ts';
import { assertFinite, concatBatch, f32, numel, type F32 } from '../tensor.ts';
import type { ClipConfig } from '../model/config.ts';
import { visionDims } from '../model/config.ts';
import type { WeightSource } from '../model/weights.ts';
import { familyOf, type ModelFamily } from './family.ts';
import { ShapeError, TokenizerError, UsageError } from '../errors.ts';

/**
 * Activation bytes a forward pass on the CPU may take (RuntimeOptions.forwardBytes). ONNX Runtime's
 * memory in a pass grows with images × tokens (every layer's values for the per-token terms, one
 * layer's [H, N, N] attention) while its speed per image does not grow with the batch on the CPU, so
 * a ViT-L/14 at 336 px runs one image a pass and a ViT-B/16 nine (README "The big models").
 */
const FORWARD_BYTES = 256 * 1024 ** 2;

const NON_FINITE_HINT = 'the checkpoint probably holds NaN/Inf weights (--check-weights names them)';

/** What tokenises text for the text tower (src/model/tokenizer.ts implements it). */
export interface Tokenizer {
  tokenize(texts: string[], contextLength?: number): Int32Array;
}

export interface ClipParts {
  name: string;
  config: ClipConfig;
  weights: WeightSource;
  tokenizer?: Tokenizer;
}

/** A vision–language model on ONNX Runtime: CLIP or SigLIP (see `family`). */
export class ClipModel {
  readonly name: string;
  readonly config: ClipConfig;
  /** What makes this network differ from the others cliplens runs (graphs, text pooling, logits). */
  readonly family: ModelFamily;
  readonly tokenizer?: Tokenizer;
  private weights: WeightSource;
  private vision?: Promise<ort.InferenceSession>;
  /** Vision graphs with extra outputs that would weigh on plain encoding (CLIP's neuron taps, SigLIP's through-layers split). */
  private variants = new Map<string, Promise<ort.InferenceSession>>();
  private text?: Promise<ort.InferenceSession>;

  constructor(parts: ClipParts, private runtime: RuntimeOptions = {}) {
    this.name = parts.name;
    this.config = parts.config;
    this.weights = parts.weights;
    this.tokenizer = parts.tokenizer;
    this.family = familyOf(parts.config);
  }

  /** Graphs are built on first use, so a text-only job never builds the vision tower. */
  private visionSession(variant?: string): Promise<ort.InferenceSession> {
    if (variant) {
      let s = this.variants.get(variant);
      if (!s) this.variants.set(variant, (s = createSession(this.family.buildVisionGraph(this.config, this.weights, variant, this.graphOptions()), this.runtime)));
      return s;
    }
    this.vision ??= createSession(this.family.buildVisionGraph(this.config, this.weights, undefined, this.graphOptions()), this.runtime);
    return this.vision;
  }

  private textSession(): Promise<ort.InferenceSession> {
    this.text ??= createSession(this.family.buildTextGraph(this.config, this.weights, this.graphOptions()), this.runtime);
    return this.text;
  }

  /** fp16 graphs (GPUs) are built for CLIP towers; other families refuse them in one line. */
  private graphOptions() {
    if (this.runtime.precision !== 'fp16') return {};
    if (this.family.id !== 'clip') throw new UsageError(`--precision fp16 is available for CLIP models, not ${this.family.id} (model '${this.name}')`);
    return { float16: true };
  }

  /** Build both graphs now (e.g. before timing). */
  async warm(which: ('vision' | 'text')[] = ['vision', 'text']): Promise<void> {
    await Promise.all(which.map((w) => (w === 'vision' ? this.visionSession() : this.textSession())));
  }

  checkPixels(pixels: F32): number {
    const S = this.config.vision.imageSize;
    const [B, c, h, w] = pixels.shape;
    if (pixels.shape.length !== 4 || c !== 3 || h !== S || w !== S) {
      throw new ShapeError(`pixel_values must be [B, 3, ${S}, ${S}] for this model, got [${pixels.shape}]`);
    }
    assertFinite(pixels, 'pixel_values', { row: 'image' });
    return B;
  }

  /**
   * One forward pass of the vision tower returning the requested outputs (see clip_graphs.ts),
   * processed in chunks of `batchSize` images (fewer per pass on the CPU, see forwardBatch) and
   * concatenated along the batch axis.
   */
  async runVision<K extends string>(pixels: F32, outputs: K[], batchSize = 8, variant?: string): Promise<Record<K, F32>> {
    const B = this.checkPixels(pixels);
    const session = await this.visionSession(variant);
    const per = numel(pixels.shape.slice(1));
    const step = this.forwardBatch(batchSize, variant);
    const preallocate = this.runtime.preallocateOutputs ?? resolveExecutionProvider(this.runtime) !== 'cpu';
    if (preallocate && !variant && this.family.id === 'clip' && outputs.every((o) => o === 'image_features' || (VISION_TAPS as readonly string[]).includes(o))) {
      return this.runVisionInto(session, pixels, outputs as unknown as VisionOutput[], step) as unknown as Record<K, F32>;
    }
    // Each pass's outputs are copied into the result as they come (one pass's worth in flight); a single pass's are the result.
    const out = {} as Record<K, F32>;
    for (let b0 = 0; b0 < B; b0 += step) {
      const nb = Math.min(step, B - b0);
      const input = new ort.Tensor('float32', pixels.data.subarray(b0 * per, (b0 + nb) * per), [nb, ...pixels.shape.slice(1)]);
      const res = await session.run({ pixel_values: input }, outputs);
      for (const o of outputs) {
        const t = res[o];
        const shape = t.dims.map(Number);
        if (nb === B) out[o] = f32(shape, t.data as Float32Array);
        else (out[o] ??= f32([B, ...shape.slice(1)])).data.set(t.data as Float32Array, b0 * numel(shape.slice(1)));
      }
    }
    for (const o of outputs) out[o] ??= f32([0]);
    for (const o of outputs) assertFinite(out[o], `model '${this.name}': the vision tower's ${o}`, { row: 'image', hint: NON_FINITE_HINT });
    return out;
  }

  /**
   * Images per forward pass of the vision graph (variant) for a caller's batch: on the CPU, no more
   * than fit `forwardBytes` of activations by the family's estimate per image, at least one.
   */
  forwardBatch(batchSize: number, variant?: string): number {
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new UsageError(`batch size must be a positive integer, got ${batchSize}`);
    if (resolveExecutionProvider(this.runtime) !== 'cpu') return batchSize;
    const fit = Math.floor((this.runtime.forwardBytes ?? FORWARD_BYTES) / this.family.visionActivationBytes(this.config, variant));
    return Math.max(1, Math.min(batchSize, fit));
  }

  /** Shape of a plain vision graph's output (image_features or a decomposition tap) for B images. */
  visionOutputShape(o: VisionOutput, B: number): number[] {
    const { L, H, D, d, tokens: N, headWidth } = this.dims();
    const shapes: Record<string, number[]> = {
      image_features: [d], ln_pre_cls: [D], resid_cls: [D], heads_cls: [L, D], mlp_cls: [L, D], cls_probs: [L, H, N], values: [L, H, N, headWidth], cls_self: [L, H, headWidth],
    };
    const shape = shapes[o];
    if (!shape) throw new ShapeError(`no preallocated shape for vision output '${o}'`);
    return [B, ...shape];
  }

  /**
   * runVision for devices (GPUs): every output of every chunk is written by ONNX Runtime straight
   * into its rows of the result, allocated once up front, so batches follow one another with no
   * per-batch allocation, no gathering copy and no garbage for the collector.
   */
  private async runVisionInto<K extends VisionOutput>(session: ort.InferenceSession, pixels: F32, outputs: K[], batchSize: number): Promise<Record<K, F32>> {
    const B = pixels.shape[0];
    const per = numel(pixels.shape.slice(1));
    const result = Object.fromEntries(outputs.map((o) => [o, f32(this.visionOutputShape(o, B))])) as Record<K, F32>;
    for (let b0 = 0; b0 < B; b0 += batchSize) {
      const nb = Math.min(batchSize, B - b0);
      const input = new ort.Tensor('float32', pixels.data.subarray(b0 * per, (b0 + nb) * per), [nb, ...pixels.shape.slice(1)]);
      const fetches: Record<string, ort.Tensor> = {};
      for (const o of outputs) {
        const shape = this.visionOutputShape(o, nb);
        const row = numel(shape.slice(1));
        fetches[o] = new ort.Tensor('float32', result[o].data.subarray(b0 * row, (b0 + nb) * row), shape);
      }
      await session.run({ pixel_values: input }, fetches);
    }
    for (const o of outputs) assertFinite(result[o], `model '${this.name}': the vision tower's ${o}`, { row: 'image', hint: NON_FINITE_HINT });
    return result;
  }

  /** Image embeddings z [B, d] (unnormalised, as the reference's encode_image). */
  async encodeImages(pixels: F32, batchSize = 8): Promise<F32> {
    return (await this.runVision(pixels, ['image_features'], batchSize)).image_features;
  }

  tokenize(texts: string[]): Int32Array {
    if (!this.tokenizer) throw new TokenizerError(`model ${this.name} has no tokenizer (its checkpoint came without one): give pre-tokenised ids (encode --tokens)`);
    return this.tokenizer.tokenize(texts, this.config.text.contextLength);
  }

  /**
   * Text embeddings [T, d] (unnormalised) from token ids [T, S], S = the context length unless
   * given (SigLIP accepts any length up to its positions); pooled as the family pools.
   */
  async encodeTokens(tokens: Int32Array, batchSize = 64, seqLength = this.config.text.contextLength): Promise<F32> {
    const S = seqLength;
    if (!Number.isInteger(S) || S < 1 || tokens.length % S !== 0) throw new ShapeError(`tokens length ${tokens.length} is not a multiple of the context length ${S}`);
    this.family.checkTokenLength(this.config, S);
    const T = tokens.length / S;
    const vocab = this.config.text.vocabSize;
    for (const id of tokens) if (id < 0 || id >= vocab) throw new ShapeError(`token id ${id} outside the vocabulary [0, ${vocab})`);
    const session = await this.textSession();
    const out: F32[] = [];
    for (let t0 = 0; t0 < T; t0 += batchSize) {
      const nt = Math.min(batchSize, T - t0);
      const res = await session.run(this.family.textFeeds(tokens.subarray(t0 * S, (t0 + nt) * S), nt, S), ['text_features']);
      const t = res.text_features;
      out.push(f32(t.dims.map(Number), t.data as Float32Array));
    }
    const features = concatBatch(out, [0, this.config.embedDim]);
    assertFinite(features, `model '${this.name}': text_features`, { row: 'text', hint: NON_FINITE_HINT });
    return features;
  }

  async encodeTexts(texts: string[], batchSize = 64): Promise<{ features: F32; tokens: Int32Array }> {
    const tokens = this.tokenize(texts);
    return { features: await this.encodeTokens(tokens, batchSize), tokens };
  }

  dims() {
    const v = this.config.vision;
    return { L: v.layers, H: v.heads, D: v.width, d: this.config.embedDim, ...visionDims(v) };
  }

  /** The checkpoint tensors a store's fingerprint hashes with the config. */
  fingerprintTensors(): string[] {
    return this.family.fingerprintTensors(this.config);
  }

  /** Logits of image and text embeddings as the family defines them: cos(z, t) · scale + bias, [B, T]. */
  logits(images: F32, texts: F32): F32 {
    const [B, d] = images.shape;
    const T = texts.shape[0];
    const { scale, bias } = this.family.logitParams(this.weights);
    const norm = (x: Float32Array, i: number) => Math.sqrt(x.subarray(i * d, (i + 1) * d).reduce((a, v) => a + v * v, 0));
    const out = f32([B, T]);
    for (let b = 0; b < B; b++) {
      const nb = norm(images.data, b);
      for (let t = 0; t < T; t++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += images.data[b * d + k] * texts.data[t * d + k];
        out.data[b * T + t] = (s / (nb * norm(texts.data, t))) * scale + bias;
      }
    }
    return out;
  }

  /** Read a checkpoint tensor by its name in the family's layout (open_clip names for CLIP, transformers names for SigLIP). */
  weight(name: string): F32 {
    return this.weights.get(name);
  }

  /** Release every session; one that failed to start does not keep the others alive. */
  async release(): Promise<void> {
    const all = [this.vision, this.text, ...this.variants.values()];
    this.vision = this.text = undefined;
    this.variants.clear();
    await Promise.allSettled(all.map(async (s) => s && (await s).release()));
  }
}
