// The gradient-free attention baselines the paper's segmentation table compares with (§6.1,
// after Chefer et al. 2021, whose ImageNet-segmentation protocol the reference follows):
//   raw attention: the last layer's attention of the CLS query on the patches, averaged over heads;
//   attention rollout (Abnar & Zuidema 2020, as Chefer et al. implement it): per layer the
//     head-averaged attention plus the identity, rows renormalised, Â_l = (A_l + I) / rowsum;
//     R = Â_L ··· Â_{s+1} (later layers on the left); the map is R's CLS row over the patches.
// Both read attn_mean, the head-averaged attention maps of every layer ([L, N, N] per image,
// row i = query token i; the vision graph's `attn_mean` tap).

import { type Mat, dims } from './linalg.ts';
import { ShapeError } from '../errors.ts';

/** [L, N, N] → L, N (square per layer). */
function layersTokens(attnMean: Mat): [number, number] {
  const [L, N, N2] = dims('head-averaged attention', attnMean, ['L', 'N', 'N']);
  if (N !== N2) throw new ShapeError(`head-averaged attention must be [L, N, N], got [${attnMean.shape.join(', ')}]`);
  return [L, N];
}

/** Raw attention of the CLS query on the patches in `layer` (default: the last), [N−1]. */
export function rawAttentionMap(attnMean: Mat, layer?: number): Float32Array {
  const [L, N] = layersTokens(attnMean);
  const l = layer ?? L - 1;
  if (!Number.isInteger(l) || l < 0 || l >= L) throw new RangeError(`layer ${l} out of range 0..${L - 1}`);
  return Float32Array.from(attnMean.data.subarray(l * N * N + 1, l * N * N + N));
}

/**
 * Attention rollout's CLS row over the patches, [N−1]: e₀ᵀ Â_{L−1} ··· Â_{start}, computed as a
 * row vector times each layer's matrix from the last layer down (O(L·N²), not O(L·N³)).
 */
export function rolloutMap(attnMean: Mat, startLayer = 0): Float32Array {
  const [L, N] = layersTokens(attnMean);
  if (!Number.isInteger(startLayer) || startLayer < 0 || startLayer >= L) throw new RangeError(`start layer ${startLayer} out of range 0..${L - 1}`);
  const A = attnMean.data;
  let row = new Float64Array(N);
  row[0] = 1;
  let next = new Float64Array(N);
  const rowSum = new Float64Array(N);
  for (let l = L - 1; l >= startLayer; l--) {
    const o = l * N * N;
    for (let i = 0; i < N; i++) {
      let s = 1; // + I
      for (let j = 0; j < N; j++) s += A[o + i * N + j];
      rowSum[i] = s;
    }
    // next_j = Σ_i row_i · (A_ij + δ_ij) / rowSum_i
    next.fill(0);
    for (let i = 0; i < N; i++) {
      const c = row[i] / rowSum[i];
      if (c === 0) continue;
      for (let j = 0; j < N; j++) next[j] += c * A[o + i * N + j];
      next[i] += c;
    }
    [row, next] = [next, row];
  }
  return Float32Array.from(row.subarray(1));
}
