// "Run and give me the terms" in one call: a forward pass with the taps, then the PRS.
// `decomposerFor(model)` picks the family's decomposer (CLIP here, SigLIP in siglip.ts); both
// give the same layout — attention terms per (block, head[, token]), the remaining terms in `mlp` —
// so stores, analyses and the explorer need not know which family made them.

import type { VisionOutput } from '../graph/clip_graphs.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { batchRows, concatBatch, type F32, type Tensor } from '../tensor.ts';
import { decomposeTaps, foldTexts, textMapsFromTaps, type DecomposeOptions, type Decomposition, type TextMaps, type VisionTaps } from './prs.ts';
import { foldReadout, type Readout } from './readout.ts';

const HEAD_TAPS: VisionOutput[] = ['image_features', 'ln_pre_cls', 'resid_cls', 'heads_cls', 'mlp_cls', 'cls_self'];
const SPATIAL_TAPS: VisionOutput[] = [...HEAD_TAPS, 'cls_probs', 'values'];

/** Shape of a family's decomposition, in the common layout. */
export interface DecompositionLayout {
  /** Attention blocks with per-head terms (CLIP: the L layers; SigLIP: 1, the pooling head). */
  L: number;
  H: number;
  /** Tokens of the per-token terms (CLS first when clsToken). */
  N: number;
  d: number;
  grid: number;
  clsToken: boolean;
  /** Names of the attention blocks and of the `mlp` slots ([L] and [L+1]), for people. */
  blockNames: string[];
  termNames: string[];
  /** Short labels of the L+1 columns that pair `mlp` slot k with attention block k−1. */
  chartLabels: string[];
}

/** What every family's decomposer offers. */
export interface ImageDecomposer {
  readonly model: ClipModel;
  layout(): DecompositionLayout;
  /** Forward pass with the taps the decomposition needs (per token with `spatial`). */
  taps(pixels: F32, spatial: boolean, batchSize?: number): Promise<unknown>;
  fromTaps(taps: unknown, opts?: DecomposeOptions): Promise<Decomposition>;
  decompose(pixels: F32, opts?: DecomposeOptions & { batchSize?: number }): Promise<Decomposition>;
  /** Per-token, per-head maps along texts [T, d]: maps [B, L, N, H, T]. */
  textMapsFromTaps(taps: unknown, texts: F32, normalise?: boolean): Promise<TextMaps>;
  textMaps(pixels: F32, texts: F32, opts?: { normalise?: boolean; batchSize?: number }): Promise<TextMaps>;
  /** The decomposition as the family's reference code records it (what `cliplens decompose --out` writes). */
  referenceTensors(res: Decomposition): Record<string, Tensor>;
  /** Axes of referenceTensors' attn, e.g. 'B,L,H,d'. */
  referenceLayout(spatial: boolean): string;
}

/**
 * Text maps of pixels [B, 3, S, S], one forward pass at a time (ClipModel.forwardBatch): each pass's
 * taps — every token's values, L·N·D floats an image — are dropped once `maps` has made its maps.
 */
export async function textMapsByPass(model: ClipModel, pixels: F32, batchSize: number | undefined, maps: (px: F32, step: number) => Promise<TextMaps>): Promise<TextMaps> {
  const B = pixels.shape[0];
  const step = model.forwardBatch(batchSize ?? 8);
  if (B <= step) return maps(pixels, step);
  const parts: TextMaps[] = [];
  for (let b0 = 0; b0 < B; b0 += step) parts.push(await maps(batchRows(pixels, b0, Math.min(B, b0 + step)), step));
  return { maps: concatBatch(parts.map((p) => p.maps)), imageFeatures: concatBatch(parts.map((p) => p.imageFeatures)), norm: concatBatch(parts.map((p) => p.norm)) };
}

export class Decomposer implements ImageDecomposer {
  private readout?: Promise<Readout>;

  constructor(readonly model: ClipModel) {}

  layout(): DecompositionLayout {
    const { L, H, d, grid, tokens } = this.model.dims();
    return {
      L, H, N: tokens, d, grid, clsToken: true,
      blockNames: Array.from({ length: L }, (_, l) => `layer ${l}`),
      termNames: ['ln_pre (embedding)', ...Array.from({ length: L }, (_, l) => `MLP ${l}`)],
      chartLabels: ['ln_pre', ...Array.from({ length: L }, (_, l) => String(l))],
    };
  }

  getReadout(): Promise<Readout> {
    this.readout ??= foldReadout(this.model);
    return this.readout;
  }

  async taps(pixels: F32, spatial: boolean, batchSize = 8): Promise<VisionTaps> {
    return (await this.model.runVision(pixels, spatial ? SPATIAL_TAPS : HEAD_TAPS, batchSize)) as unknown as VisionTaps;
  }

  async fromTaps(taps: unknown, opts: DecomposeOptions = {}): Promise<Decomposition> {
    return decomposeTaps(taps as VisionTaps, await this.getReadout(), opts);
  }

  /** Terms per layer × head (× token with `spatial`) and per MLP, for a batch of pixel_values [B, 3, S, S]. */
  async decompose(pixels: F32, opts: DecomposeOptions & { batchSize?: number } = {}): Promise<Decomposition> {
    const [taps, r] = await Promise.all([this.taps(pixels, !!opts.spatial, opts.batchSize), this.getReadout()]);
    return decomposeTaps(taps, r, opts);
  }

  async textMapsFromTaps(taps: unknown, texts: F32, normalise = true): Promise<TextMaps> {
    const r = await this.getReadout();
    return textMapsFromTaps(taps as VisionTaps, r, await foldTexts(r, texts), normalise);
  }

  /** Per-token, per-head maps along text directions texts [T, d]: maps [B, L, N, H, T]. */
  async textMaps(pixels: F32, texts: F32, opts: { normalise?: boolean; batchSize?: number } = {}): Promise<TextMaps> {
    const r = await this.getReadout();
    const folded = await foldTexts(r, texts);
    return textMapsByPass(this.model, pixels, opts.batchSize, async (px, step) => textMapsFromTaps(await this.taps(px, true, step), r, folded, opts.normalise ?? true));
  }

  referenceTensors(res: Decomposition): Record<string, Tensor> {
    return { attn: res.attn, mlp: res.mlp, ...(res.clsAttn ? { cls_attn: res.clsAttn } : {}), image_features: res.imageFeatures, norm: res.norm };
  }

  referenceLayout(spatial: boolean): string {
    return spatial ? 'B,L,N,H,d' : 'B,L,H,d';
  }
}

