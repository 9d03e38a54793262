// Reductions of per-token text maps [B, L, N, H, T] to what people look at: a map over tokens
// for each text, summed over all (or chosen) layers and heads.

import { f32, type F32 } from '../tensor.ts';
import { ShapeError } from '../errors.ts';

export interface MapSelection {
  layers?: number[];
  heads?: number[];
}

/** [B, L, N, H, T] → [B, T, N]: Σ over the selected layers and heads. */
export function tokenMaps(maps: F32, sel: MapSelection = {}): F32 {
  const [B, L, N, H, T] = maps.shape;
  const layers = sel.layers ?? Array.from({ length: L }, (_, l) => l);
  const heads = sel.heads ?? Array.from({ length: H }, (_, h) => h);
  for (const l of layers) if (l < 0 || l >= L) throw new ShapeError(`layer ${l} out of range 0..${L - 1}`);
  for (const h of heads) if (h < 0 || h >= H) throw new ShapeError(`head ${h} out of range 0..${H - 1}`);
  const out = f32([B, T, N]);
  for (let b = 0; b < B; b++) {
    for (const l of layers) {
      for (let i = 0; i < N; i++) {
        for (const h of heads) {
          const src = (((b * L + l) * N + i) * H + h) * T;
          for (let t = 0; t < T; t++) out.data[(b * T + t) * N + i] += maps.data[src + t];
        }
      }
    }
  }
  return out;
}

/** The patch part of a token map (CLS, when the model has one, dropped) as a [grid, grid] image, row-major. */
export function patchGrid(tokenMap: Float32Array, grid: number): F32 {
  const cls = tokenMap.length - grid * grid;
  if (cls !== 0 && cls !== 1) throw new ShapeError(`token map has ${tokenMap.length} entries, expected ${grid}² (+1 with a CLS token)`);
  return f32([grid, grid], tokenMap.slice(cls));
}
