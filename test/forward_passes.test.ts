import './helpers/env.ts';
// Forward passes sized by memory (RuntimeOptions.forwardBytes): on the CPU a caller's batch runs as
// several passes when one image's activations would overflow the budget. The results must not
// depend on how the batch was split — decomposition, per-token maps and every raw output, for CLIP
// and SigLIP — and the terms still sum to the embedding.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decomposerFor } from '../src/decompose/decomposers.ts';
import { readSafetensors } from '../src/io/safetensors.ts';
import { OpenClipSafetensors } from '../src/model/weights.ts';
import { ClipModel } from '../src/runtime/clip.ts';
import { familyOf } from '../src/runtime/family.ts';
import { loadClip } from '../src/runtime/load.ts';
import { f32, maxAbsDiff, type F32 } from '../src/tensor.ts';
import { fixturePath, refPixels, sumInvariant, tinyConfig, TINY_A } from './helpers/fixtures.ts';
import { normalRng } from '../src/rng.ts';

const texts = (T: number, d: number): F32 => {
  const rng = normalRng(3);
  return f32([T, d], Float32Array.from({ length: T * d }, rng));
};

test('forwardBatch: images per pass from the activation budget, at least one, never more than asked', () => {
  const cfg = tinyConfig();
  const per = familyOf(cfg).visionActivationBytes(cfg);
  assert.ok(per > 0);
  const weights = OpenClipSafetensors.open(TINY_A());
  const at = (forwardBytes: number) => new ClipModel({ name: 'tiny_a', config: cfg, weights }, { threads: 1, forwardBytes });
  assert.equal(at(3 * per + 1).forwardBatch(8), 3);
  assert.equal(at(1).forwardBatch(8), 1);
  assert.equal(at(1e12).forwardBatch(5), 5);
  // A graph variant with more outputs costs more per image.
  assert.ok(familyOf(cfg).visionActivationBytes(cfg, 'neurons:1') > per);
  assert.throws(() => at(1e12).forwardBatch(0), /batch size must be a positive integer, got 0/);
  weights.close();
});

test('CLIP: one image per pass gives the whole batch’s decomposition, maps and outputs', async () => {
  const weights = OpenClipSafetensors.open(TINY_A());
  const px = refPixels();
  const B = px.shape[0];
  assert.ok(B >= 3, 'the fixture batch must be split');
  const run = async (forwardBytes: number) => {
    const m = new ClipModel({ name: 'tiny_a', config: tinyConfig(), weights }, { threads: 1, forwardBytes });
    assert.equal(m.forwardBatch(8), forwardBytes === 1 ? 1 : 8);
    const dec = decomposerFor(m);
    const d = await dec.decompose(px, { normalise: false, spatial: true, batchSize: 8 });
    const maps = await dec.textMaps(px, texts(5, m.config.embedDim), { batchSize: 8 });
    const raw = await m.runVision(px, ['values', 'cls_probs', 'image_features'], 8);
    await m.release();
    return { d, maps, raw };
  };
  const whole = await run(1e12);
  const split = await run(1);
  assert.deepEqual(split.maps.maps.shape, whole.maps.maps.shape);
  for (const [a, b, what] of [
    [whole.d.imageFeatures, split.d.imageFeatures, 'image features'],
    [whole.d.attn, split.d.attn, 'attn terms'],
    [whole.d.mlp, split.d.mlp, 'mlp terms'],
    [whole.maps.maps, split.maps.maps, 'text maps'],
    [whole.maps.norm, split.maps.norm, 'norms'],
    [whole.raw.values, split.raw.values, 'values'],
    [whole.raw.cls_probs, split.raw.cls_probs, 'cls_probs'],
  ] as const) {
    assert.deepEqual(b.shape, a.shape, what);
    assert.ok(maxAbsDiff(a.data, b.data) < 1e-6, `${what}: ${maxAbsDiff(a.data, b.data)}`);
  }
  assert.ok(sumInvariant(split.d.attn, split.d.mlp, split.d.imageFeatures.data) < 1e-5);
  weights.close();
});

test('SigLIP: one image per pass gives the whole batch’s per-token maps', async () => {
  const px = readSafetensors(fixturePath('siglip/inputs_tiny_siglip_a.safetensors')).get('pixel_values')!;
  const pixels = f32(px.shape, px.data as Float32Array);
  const run = async (forwardBytes: number) => {
    const m = await loadClip(fixturePath('siglip/tiny_siglip_a'), { threads: 1, forwardBytes });
    const r = await decomposerFor(m).textMaps(pixels, texts(4, m.config.embedDim), { batchSize: 8 });
    await m.release();
    return r;
  };
  const whole = await run(1e12);
  const split = await run(1);
  assert.deepEqual(split.maps.shape, whole.maps.shape);
  assert.equal(split.maps.shape[0], pixels.shape[0]);
  assert.ok(maxAbsDiff(whole.maps.data, split.maps.data) < 1e-6);
  assert.ok(maxAbsDiff(whole.imageFeatures.data, split.imageFeatures.data) < 1e-6);
});
