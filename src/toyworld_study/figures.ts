// Small image helpers for the toy-world reports: scenes enlarged (nearest neighbour, so the
// pixels stay crisp), maps blended over them, masks, and one colour per attribute family.

import { pct } from '../notation.ts';
import { blendMap, maskImage, type RGBImage } from '../report/figures.ts';
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
export function enlarge(rgb: ArrayLike<number>, S: number, scale: number, caption?: string): RGBImage {
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
export function maskScene(mask: ArrayLike<number>, S: number, scale = 2, caption?: string): RGBImage {
  return enlarge(maskImage(mask, S, S).rgb, S, scale, caption);
}

/**
 * A map [grid·grid] upsampled bilinearly and blended in 'jet' over the enlarged scene; range
 * min..max of the map unless given (symmetric ranges show signed differences).
 */
export function overlay(scene: Scene, map: ArrayLike<number>, grid: number, opts: { scale?: number; alpha?: number; range?: [number, number]; caption?: string } = {}): RGBImage {
  return blendMap(sceneImage(scene, opts.scale ?? 2), map, grid, grid, { alpha: opts.alpha ?? 0.55, range: opts.range, caption: opts.caption });
}

/** Largest |value| of a map, for symmetric ranges. */
export function absMax(map: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < map.length; i++) m = Math.max(m, Math.abs(map[i]));
  return m || 1;
}

/** The toy world's reports give percentages with one decimal. */
export const pct1 = (x: number) => pct(x, 1);
