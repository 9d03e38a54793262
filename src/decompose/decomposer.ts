// "Run and give me the terms" in one call: a forward pass with the taps, then the PRS.

import type { VisionOutput } from '../graph/clip_graphs.ts';
import type { ClipModel } from '../runtime/clip.ts';
import type { F32 } from '../tensor.ts';
import { decomposeTaps, foldTexts, textMapsFromTaps, type DecomposeOptions, type Decomposition, type TextMaps, type VisionTaps } from './prs.ts';
import { foldReadout, type Readout } from './readout.ts';

const HEAD_TAPS: VisionOutput[] = ['image_features', 'ln_pre_cls', 'resid_cls', 'heads_cls', 'mlp_cls'];
const SPATIAL_TAPS: VisionOutput[] = [...HEAD_TAPS, 'cls_probs', 'values'];

export class Decomposer {
  private readout?: Promise<Readout>;

  constructor(readonly model: ClipModel) {}

  getReadout(): Promise<Readout> {
    this.readout ??= foldReadout(this.model);
    return this.readout;
  }

  async taps(pixels: F32, spatial: boolean, batchSize = 8): Promise<VisionTaps> {
    return (await this.model.runVision(pixels, spatial ? SPATIAL_TAPS : HEAD_TAPS, batchSize)) as unknown as VisionTaps;
  }

  /** Terms per layer × head (× token with `spatial`) and per MLP, for a batch of pixel_values [B, 3, S, S]. */
  async decompose(pixels: F32, opts: DecomposeOptions & { batchSize?: number } = {}): Promise<Decomposition> {
    const [taps, r] = await Promise.all([this.taps(pixels, !!opts.spatial, opts.batchSize), this.getReadout()]);
    return decomposeTaps(taps, r, opts);
  }

  /** Per-token, per-head maps along text directions texts [T, d]: maps [B, L, N, H, T]. */
  async textMaps(pixels: F32, texts: F32, opts: { normalise?: boolean; batchSize?: number } = {}): Promise<TextMaps> {
    const r = await this.getReadout();
    const folded = await foldTexts(r, texts);
    const taps = await this.taps(pixels, true, opts.batchSize);
    return textMapsFromTaps(taps, r, folded, opts.normalise ?? true);
  }
}
