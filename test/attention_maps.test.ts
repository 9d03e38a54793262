// The attention baselines of the segmentation table: the graph's head-averaged attention maps
// against a literal float64 forward pass, raw attention against the CLS-row tap, and rollout
// against the full matrix product written out.

import './helpers/env.ts';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { rawAttentionMap, rolloutMap } from '../src/analyses/attention_maps.ts';
import { ATTENTION_VARIANT } from '../src/graph/clip_graphs.ts';
import { ClipModel } from '../src/runtime/clip.ts';
import { normalRng } from '../src/rng.ts';
import { f32 } from '../src/tensor.ts';
import { tinyModel } from './helpers/fixtures.ts';
import { naiveImageFeatures } from './helpers/naive_clip.ts';

/** Chefer et al.'s compute_rollout_attention, literally: full [N, N] products in float64. */
function literalRollout(A: Float32Array, L: number, N: number, start: number): number[] {
  const aug = (l: number) => {
    const M = Array.from({ length: N }, (_, i) => Array.from({ length: N }, (_, j) => A[(l * N + i) * N + j] + (i === j ? 1 : 0)));
    return M.map((r) => r.map((v) => v / r.reduce((a, b) => a + b, 0)));
  };
  let joint = aug(start);
  for (let l = start + 1; l < L; l++) {
    const M = aug(l);
    joint = M.map((r) => Array.from({ length: N }, (_, j) => r.reduce((a, v, k) => a + v * joint[k][j], 0)));
  }
  return joint[0].slice(1);
}

describe('attention baselines', () => {
  it("attn_mean (the 'attention' graph variant) is the head-averaged softmax attention of every query, per layer", async () => {
    const m: ClipModel = tinyModel();
    const { L, tokens: N } = m.dims();
    const S = m.config.vision.imageSize;
    const px = f32([2, 3, S, S]);
    const g = normalRng(5);
    for (let i = 0; i < px.data.length; i++) px.data[i] = g();
    const { attn_mean, cls_probs } = await m.runVision(px, ['attn_mean', 'cls_probs'], 8, ATTENTION_VARIANT);
    await assert.rejects(m.runVision(px, ['attn_mean']), /attn_mean/, 'the plain graph has no attention maps: encoding never pays for them');
    assert.deepEqual(attn_mean.shape, [2, L, N, N]);
    const H = cls_probs.shape[2];
    let worst = 0;
    for (let b = 0; b < 2; b++) {
      const ref = naiveImageFeatures(m.config, { get: (n: string) => m.weight(n) } as never, px.data.subarray(b * 3 * S * S, (b + 1) * 3 * S * S));
      for (let l = 0; l < L; l++)
        for (let i = 0; i < N; i++)
          for (let j = 0; j < N; j++) worst = Math.max(worst, Math.abs(attn_mean.data[((b * L + l) * N + i) * N + j] - ref.meanProbs[l][i][j]));
      // Raw attention = the CLS row of the last layer = the cls_probs tap averaged over heads.
      const one = f32([L, N, N], attn_mean.data.slice(b * L * N * N, (b + 1) * L * N * N));
      const raw = rawAttentionMap(one);
      for (let j = 1; j < N; j++) {
        let s = 0;
        for (let h = 0; h < H; h++) s += cls_probs.data[((b * L + L - 1) * H + h) * N + j] / H;
        assert.ok(Math.abs(raw[j - 1] - s) < 1e-6);
      }
    }
    assert.ok(worst < 1e-5, `attn_mean vs literal forward: ${worst}`);
    await m.release();
  });

  it('rollout equals the full product of the augmented, renormalised layers, from any start layer', () => {
    const L = 4, N = 6;
    const g = normalRng(9);
    const A = new Float32Array(L * N * N);
    for (let r = 0; r < L * N; r++) {
      const e = Array.from({ length: N }, () => Math.exp(g()));
      const z = e.reduce((a, b) => a + b, 0);
      e.forEach((v, j) => (A[r * N + j] = v / z));
    }
    for (const start of [0, 2, 3]) {
      const got = rolloutMap(f32([L, N, N], A), start);
      const want = literalRollout(A, L, N, start);
      assert.equal(got.length, N - 1);
      for (let j = 0; j < N - 1; j++) assert.ok(Math.abs(got[j] - want[j]) < 1e-6, `start ${start}, patch ${j}: ${got[j]} vs ${want[j]}`);
    }
    assert.throws(() => rolloutMap(f32([L, N, N], A), L), /out of range/);
    assert.throws(() => rawAttentionMap(f32([L, N, N + 1], new Float32Array(L * N * (N + 1)))), /N/);
  });
});
