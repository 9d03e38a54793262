// Parity with the reference implementation's fixtures, and with a literal float64 forward pass
// for layouts the fixtures do not cover.

import './helpers/env.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Decomposer } from '../src/decompose/decomposer.ts';
import { ClipModel } from '../src/runtime/clip.ts';
import { parseOpenClipConfig } from '../src/model/config.ts';
import { normalRng } from '../src/rng.ts';
import { randomClipWeights } from './helpers/random_weights.ts';
import { f32, maxAbsDiff } from '../src/tensor.ts';
import { naiveImageFeatures, naiveTextFeatures } from './helpers/naive_clip.ts';
import { refOutput, refPixels, refTokens, sumInvariant, tinyModel } from './helpers/fixtures.ts';

test('image and text features match the reference fixtures', async () => {
  const m = tinyModel();
  const z = await m.encodeImages(refPixels());
  assert.ok(maxAbsDiff(z.data, refOutput('image_features').data) < 1e-4);
  const t = await m.encodeTokens(refTokens());
  assert.deepEqual(t.shape, [13, 64]);
  assert.ok(maxAbsDiff(t.data, refOutput('text_features').data) < 1e-4);
  // Odd batch sizes split into chunks give the same answer.
  const z3 = await m.encodeImages(refPixels(), 3);
  assert.ok(maxAbsDiff(z3.data, z.data) < 1e-6);
});

test('decomposition matches the reference: per head, per token, MLPs, LN statistics', async () => {
  const dec = new Decomposer(tinyModel());
  const px = refPixels();
  const ns = await dec.decompose(px);
  assert.deepEqual(ns.attn.shape, [4, 6, 4, 64]);
  assert.deepEqual(ns.mlp.shape, [4, 7, 64]);
  assert.ok(maxAbsDiff(ns.attn.data, refOutput('attn_nonspatial').data) < 1e-5);
  assert.ok(maxAbsDiff(ns.mlp.data, refOutput('mlps').data) < 1e-5);
  assert.ok(maxAbsDiff(ns.lnMean!.data, refOutput('post_ln_mean').data) < 1e-5);
  assert.ok(maxAbsDiff(ns.lnStd!.data, refOutput('post_ln_std').data) < 1e-5);
  assert.ok(maxAbsDiff(ns.norm.data, refOutput('representation_norm').data) < 1e-4);
  assert.ok(sumInvariant(ns.attn, ns.mlp, ns.imageFeatures.data, ns.norm.data) < 1e-5);

  const sp = await dec.decompose(px, { spatial: true });
  assert.deepEqual(sp.attn.shape, [4, 6, 197, 4, 64]);
  assert.ok(maxAbsDiff(sp.attn.data, refOutput('attn_spatial').data) < 1e-5);
  assert.ok(sumInvariant(sp.attn, sp.mlp, sp.imageFeatures.data, sp.norm.data) < 1e-5);

  // CLS→CLS (what the reference's compute_prs.py keeps as cls_attn, before summing heads): the
  // token-0 slice of its per-token terms, from the per-head pass and from the per-token pass.
  const refSp = refOutput('attn_spatial');
  const [B, L, N, H, d] = refSp.shape;
  const tok0 = new Float32Array(B * L * H * d);
  for (let bl = 0; bl < B * L; bl++) tok0.set(refSp.data.subarray(bl * N * H * d, (bl * N + 1) * H * d), bl * H * d);
  assert.deepEqual(ns.clsAttn!.shape, [B, L, H, d]);
  assert.ok(maxAbsDiff(ns.clsAttn!.data, tok0) < 1e-5);
  assert.ok(maxAbsDiff(sp.clsAttn!.data, tok0) < 1e-5);

  const raw = await dec.decompose(px, { normalise: false });
  assert.ok(sumInvariant(raw.attn, raw.mlp, raw.imageFeatures.data) < 1e-4);
  const probs = await dec.model.runVision(px, ['cls_probs']);
  assert.ok(maxAbsDiff(probs.cls_probs.data, refOutput('attn_cls_probs').data) < 1e-5);
});

test('text maps equal the full spatial tensor contracted with the texts', async () => {
  const dec = new Decomposer(tinyModel());
  const px = refPixels();
  const texts = refOutput('text_features'); // [13, 64]
  const T = 5;
  const tx = f32([T, 64], texts.data.slice(0, T * 64));
  const { maps } = await dec.textMaps(px, tx);
  const sp = await dec.decompose(px, { spatial: true });
  const [B, L, N, H, d] = sp.attn.shape;
  assert.deepEqual(maps.shape, [B, L, N, H, T]);
  let worst = 0;
  for (let e = 0; e < B * L * N * H; e++) {
    for (let t = 0; t < T; t++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += sp.attn.data[e * d + k] * tx.data[t * d + k];
      worst = Math.max(worst, Math.abs(s - maps.data[e * T + t]));
    }
  }
  assert.ok(worst < 1e-5, `max difference ${worst}`);
});

// Layouts other than the fixture's: the graph must follow the config, checked against float64 maths.
const LAYOUTS = [
  { name: 'QuickGELU, patch 8, 3 heads, mlp_ratio 2.5', cfg: { embed_dim: 24, quick_gelu: true, vision_cfg: { image_size: 32, layers: 2, width: 48, head_width: 16, patch_size: 8, mlp_ratio: 2.5 }, text_cfg: { context_length: 12, vocab_size: 300, width: 32, heads: 2, layers: 2 } } },
  { name: 'GELU, patch 5, 1 head, mlp_ratio 3', cfg: { embed_dim: 16, vision_cfg: { image_size: 20, layers: 3, width: 24, head_width: 24, patch_size: 5, mlp_ratio: 3 }, text_cfg: { context_length: 8, vocab_size: 100, width: 24, heads: 3, layers: 1, mlp_ratio: 2 } } },
];

for (const { name, cfg: raw } of LAYOUTS) {
  test(`other layout (${name}): features and decomposition follow the maths`, async () => {
    const cfg = parseOpenClipConfig(raw);
    const w = randomClipWeights(cfg, 7);
    const m = new ClipModel({ name, config: cfg, weights: w }, { threads: 1 });
    const S = cfg.vision.imageSize;
    const B = 2;
    const px = f32([B, 3, S, S]);
    const rng = normalRng(11);
    for (let i = 0; i < px.data.length; i++) px.data[i] = rng();
    const z = await m.encodeImages(px);
    for (let b = 0; b < B; b++) {
      const ref = naiveImageFeatures(cfg, w, px.data.subarray(b * 3 * S * S, (b + 1) * 3 * S * S));
      assert.ok(maxAbsDiff(z.data.subarray(b * cfg.embedDim, (b + 1) * cfg.embedDim), ref.z) < 1e-4);
    }
    const ctx = cfg.text.contextLength;
    const toks = new Int32Array(2 * ctx);
    toks.set([1, 5, 9, cfg.text.vocabSize - 1], 0);
    toks.set([3, cfg.text.vocabSize - 1, 2], ctx);
    const tf = await m.encodeTokens(toks);
    for (let i = 0; i < 2; i++) {
      const ref = naiveTextFeatures(cfg, w, toks.subarray(i * ctx, (i + 1) * ctx));
      assert.ok(maxAbsDiff(tf.data.subarray(i * cfg.embedDim, (i + 1) * cfg.embedDim), ref) < 1e-4);
    }
    const dec = new Decomposer(m);
    const sp = await dec.decompose(px, { spatial: true });
    const ns = await dec.decompose(px);
    assert.ok(sumInvariant(sp.attn, sp.mlp, sp.imageFeatures.data, sp.norm.data) < 1e-5);
    assert.ok(sumInvariant(ns.attn, ns.mlp, ns.imageFeatures.data, ns.norm.data) < 1e-5);
    // Per-token terms summed over tokens equal the per-head terms.
    const [, L, N, H, d] = sp.attn.shape;
    let worst = 0;
    for (let b = 0; b < B; b++) for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) for (let k = 0; k < d; k++) {
      let s = 0;
      for (let i = 0; i < N; i++) s += sp.attn.data[((((b * L + l) * N + i) * H + h) * d) + k];
      worst = Math.max(worst, Math.abs(s - ns.attn.data[((b * L + l) * H + h) * d + k]));
    }
    assert.ok(worst < 1e-6);
  });
}

test('external-data graphs (the >2 GB path) give identical results', async () => {
  const cfg = parseOpenClipConfig(LAYOUTS[0].cfg);
  const w = randomClipWeights(cfg, 3);
  const inline = new ClipModel({ name: 'a', config: cfg, weights: w }, { threads: 1 });
  const external = new ClipModel({ name: 'b', config: cfg, weights: w }, { threads: 1, externalDataThreshold: 0 });
  const px = f32([1, 3, 32, 32]);
  px.data.fill(0.25);
  assert.deepEqual((await external.encodeImages(px)).data, (await inline.encodeImages(px)).data);
});

test('wrong pixel shapes and token ids give clear errors', async () => {
  const m = tinyModel(1);
  await assert.rejects(m.encodeImages(f32([1, 3, 32, 32])), /pixel_values must be \[B, 3, 224, 224\]/);
  await assert.rejects(m.encodeTokens(new Int32Array(10)), /not a multiple of the context length 77/);
  const bad = new Int32Array(77);
  bad[0] = 60000;
  await assert.rejects(m.encodeTokens(bad), /outside the vocabulary/);
});
