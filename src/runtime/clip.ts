// A CLIP model on ONNX Runtime: the vision graph (with the decomposition's taps) and the text graph.

import ort from 'onnxruntime-node';
import { buildTextGraph, buildVisionGraph, type VisionOutput } from '../graph/clip_graphs.ts';
import { createSession, type RuntimeOptions } from '../graph/session.ts';
import { assertFinite, concatBatch, f32, numel, type F32 } from '../tensor.ts';
import type { ClipConfig } from '../model/config.ts';
import { visionDims } from '../model/config.ts';
import type { WeightSource } from '../model/weights.ts';
import { ShapeError, TokenizerError } from '../errors.ts';

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

export class ClipModel {
  readonly name: string;
  readonly config: ClipConfig;
  readonly tokenizer?: Tokenizer;
  private weights: WeightSource;
  private vision?: Promise<ort.InferenceSession>;
  private text?: Promise<ort.InferenceSession>;

  constructor(parts: ClipParts, private runtime: RuntimeOptions = {}) {
    this.name = parts.name;
    this.config = parts.config;
    this.weights = parts.weights;
    this.tokenizer = parts.tokenizer;
  }

  /** Graphs are built on first use, so a text-only job never builds the vision tower. */
  private visionSession(): Promise<ort.InferenceSession> {
    this.vision ??= createSession(buildVisionGraph(this.config, this.weights), this.runtime);
    return this.vision;
  }

  private textSession(): Promise<ort.InferenceSession> {
    this.text ??= createSession(buildTextGraph(this.config, this.weights), this.runtime);
    return this.text;
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
   * processed in chunks of `batchSize` images and concatenated along the batch axis.
   */
  async runVision<K extends VisionOutput>(pixels: F32, outputs: K[], batchSize = 8): Promise<Record<K, F32>> {
    const B = this.checkPixels(pixels);
    const session = await this.visionSession();
    const per = numel(pixels.shape.slice(1));
    const chunks: Record<string, F32[]> = Object.fromEntries(outputs.map((o) => [o, []]));
    for (let b0 = 0; b0 < B; b0 += batchSize) {
      const nb = Math.min(batchSize, B - b0);
      const input = new ort.Tensor('float32', pixels.data.subarray(b0 * per, (b0 + nb) * per), [nb, ...pixels.shape.slice(1)]);
      const res = await session.run({ pixel_values: input }, outputs);
      for (const o of outputs) {
        const t = res[o];
        chunks[o].push(f32(t.dims.map(Number), t.data as Float32Array));
      }
    }
    const out = Object.fromEntries(outputs.map((o) => [o, concatBatch(chunks[o])])) as Record<K, F32>;
    for (const o of outputs) assertFinite(out[o], `model '${this.name}': the vision tower's ${o}`, { row: 'image', hint: NON_FINITE_HINT });
    return out;
  }

  /** Image embeddings z [B, d] (unnormalised, as the reference's encode_image). */
  async encodeImages(pixels: F32, batchSize = 8): Promise<F32> {
    return (await this.runVision(pixels, ['image_features'], batchSize)).image_features;
  }

  tokenize(texts: string[]): Int32Array {
    if (!this.tokenizer) throw new TokenizerError(`model ${this.name} has no tokenizer`);
    return this.tokenizer.tokenize(texts, this.config.text.contextLength);
  }

  /** Text embeddings [T, d] (unnormalised) from token ids [T, ctx]; pooled at argmax id (EOT). */
  async encodeTokens(tokens: Int32Array, batchSize = 64): Promise<F32> {
    const ctx = this.config.text.contextLength;
    if (tokens.length % ctx !== 0) throw new ShapeError(`tokens length ${tokens.length} is not a multiple of the context length ${ctx}`);
    const T = tokens.length / ctx;
    const vocab = this.config.text.vocabSize;
    for (const id of tokens) if (id < 0 || id >= vocab) throw new ShapeError(`token id ${id} outside the vocabulary [0, ${vocab})`);
    const session = await this.textSession();
    const out: F32[] = [];
    for (let t0 = 0; t0 < T; t0 += batchSize) {
      const nt = Math.min(batchSize, T - t0);
      const tok = tokens.subarray(t0 * ctx, (t0 + nt) * ctx);
      const onehot = new Float32Array(nt * ctx);
      for (let i = 0; i < nt; i++) {
        let best = 0;
        for (let j = 1; j < ctx; j++) if (tok[i * ctx + j] > tok[i * ctx + best]) best = j; // first maximum, as torch.argmax
        onehot[i * ctx + best] = 1;
      }
      const res = await session.run({
        tokens: new ort.Tensor('int32', tok, [nt, ctx]),
        eot_onehot: new ort.Tensor('float32', onehot, [nt, ctx]),
      });
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

  /** Read a checkpoint tensor by its open_clip name (for folding weights in the decomposition). */
  weight(name: string): F32 {
    return this.weights.get(name);
  }

  async release(): Promise<void> {
    for (const s of [this.vision, this.text]) if (s) await (await s).release();
    this.vision = this.text = undefined;
  }
}
