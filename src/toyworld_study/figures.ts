// Small image helpers for the toy-world reports: scenes enlarged (nearest neighbour, so the
// pixels stay crisp), maps blended over them, masks, and one colour per attribute family.

import { upsampleBilinear } from '../analyses/segmentation.ts';
import { colormap, type RGBImage } from '../report/figures.ts';
import type { Scene } from '../toyworld/index.ts';

export const FAMILY_COLOR: Record<string, string> = {
  shape: '#1f77b4',
  color: '#d62728',
  size: '#2ca02c',
  position: '#9467bd',
  count: '#ff7f0e',
  background: '#8c564b',
  none: '#7f7f7f',
  other: '#7f7f7f',
};

/** Colour names for captions (same order as FAMILY_COLOR). */
export const FAMILY_COLOR_NAMES: Record<string, string> = { shape: 'blue', color: 'red', size: 'green', position: 'purple', count: 'orange', background: 'brown', none: 'grey' };

export const COLOR_KEY = Object.entries(FAMILY_COLOR_NAMES).map(([f, c]) => `${c} ${f}`).join(', ');

export const familyColor = (f: string) => FAMILY_COLOR[f] ?? '#7f7f7f';

/** RGB [S, S, 3] enlarged `scale`× by pixel repetition. */
export function enlarge(rgb: Uint8Array, S: number, scale: number, caption?: string): RGBImage {
  const W = S * scale;
  const out = new Uint8Array(W * W * 3);
  for (let y = 0; y < W; y++)
    for (let x = 0; x < W; x++) {
      const s = (Math.floor(y / scale) * S + Math.floor(x / scale)) * 3;
      const o = (y * W + x) * 3;
      out[o] = rgb[s];
      out[o + 1] = rgb[s + 1];
      out[o + 2] = rgb[s + 2];
    }
  return { rgb: out, width: W, height: W, caption };
}

export function sceneImage(scene: Scene, scale = 2, caption?: string): RGBImage {
  return enlarge(scene.image, scene.size, scale, caption);
}

/** A binary mask [S·S] as black/white, enlarged. */
export function maskImage(mask: ArrayLike<number>, S: number, scale = 2, caption?: string): RGBImage {
  const rgb = new Uint8Array(S * S * 3);
  for (let p = 0; p < S * S; p++) rgb.fill(mask[p] ? 255 : 0, p * 3, p * 3 + 3);
  return enlarge(rgb, S, scale, caption);
}

/**
 * A map [grid·grid] upsampled bilinearly and blended in 'jet' over the enlarged scene; range
 * min..max of the map unless given (symmetric ranges show signed differences).
 */
export function overlay(scene: Scene, map: ArrayLike<number>, grid: number, opts: { scale?: number; alpha?: number; range?: [number, number]; caption?: string } = {}): RGBImage {
  const base = sceneImage(scene, opts.scale ?? 2);
  const W = base.width;
  const up = upsampleBilinear(map, grid, grid, W, W);
  let lo = opts.range?.[0] ?? Infinity;
  let hi = opts.range?.[1] ?? -Infinity;
  if (!opts.range) for (const v of up) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  const span = hi > lo ? hi - lo : 1;
  const a = opts.alpha ?? 0.55;
  const out = new Uint8Array(W * W * 3);
  for (let p = 0; p < W * W; p++) {
    const c = colormap('jet', (up[p] - lo) / span);
    for (let k = 0; k < 3; k++) out[p * 3 + k] = Math.round((1 - a) * base.rgb[p * 3 + k] + a * c[k]);
  }
  return { rgb: out, width: W, height: W, caption: opts.caption };
}

/** Largest |value| of a map, for symmetric ranges. */
export function absMax(map: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < map.length; i++) m = Math.max(m, Math.abs(map[i]));
  return m || 1;
}

export const pct = (x: number) => Number((100 * x).toFixed(1));
