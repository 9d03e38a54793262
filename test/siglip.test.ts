// SigLIP: the port checks of test/fixtures/siglip/manifest.json (the authors' compute_siglip.py
// on a random tiny model), a second layout against an independent float64 forward pass, the
// timm layout, the hub, and the through-layers split.

import './helpers/env.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { headOrthogonality, layerShares, siglipFeatures } from '../src/analyses/siglip.ts';
import { decomposerFor } from '../src/decompose/decomposers.ts';
import { SiglipDecomposer } from '../src/decompose/siglip.ts';
import { readSafetensors, SafetensorsFile, writeSafetensors } from '../src/io/safetensors.ts';
import type { ClipModel } from '../src/runtime/clip.ts';
import { loadClip } from '../src/runtime/load.ts';
import { preprocessFiles } from '../src/model/preprocess_model.ts';
import { resolveModel } from '../src/model/resolve.ts';
import { parseHfSiglipConfig } from '../src/model/siglip_config.ts';
import { siglipExpectedTensors, timmSource } from '../src/model/siglip_weights.ts';
import { SiglipTokenizer } from '../src/model/siglip_tokenizer.ts';
import { f32, maxAbsDiff, type F32, type Tensor } from '../src/tensor.ts';
import { fixturePath } from './helpers/fixtures.ts';
import { rejectsOneLine } from './helpers/errors.ts';
import { startHubServer } from '../tools/hub_server.ts';

const DIR_A = fixturePath('siglip/tiny_siglip_a');
const DIR_B = fixturePath('siglip_b/tiny_siglip_b');
const manifest = JSON.parse(readFileSync(fixturePath('siglip/manifest.json'), 'utf8'));
const load = (p: string) => Object.fromEntries(readSafetensors(p)) as Record<string, Tensor>;
const inA = load(fixturePath('siglip/inputs_tiny_siglip_a.safetensors'));
const outA = load(fixturePath('siglip/outputs_tiny_siglip_a.safetensors'));
const inB = load(fixturePath('siglip_b/inputs_tiny_siglip_b.safetensors'));
const outB = load(fixturePath('siglip_b/outputs_tiny_siglip_b_f64.safetensors'));
const F = (t: Tensor) => t.data as Float32Array;
const asF32 = (t: Tensor): F32 => f32(t.shape, t.dtype === 'F32' ? (t.data as Float32Array) : Float32Array.from(t.data as Float64Array));
const ids32 = (t: Tensor) => Int32Array.from(t.data as BigInt64Array, (x) => Number(x));
const tmp = mkdtempSync(join(tmpdir(), 'cliplens-siglip-'));

let modelA: ClipModel | undefined;
async function tinyA(): Promise<ClipModel> {
  modelA ??= await loadClip(DIR_A, { threads: 2 });
  return modelA;
}

test('load: config defaults as SiglipVisionConfig/SiglipTextConfig, every fixture tensor consumed with its shape', async () => {
  const cfg = parseHfSiglipConfig({ model_type: 'siglip' });
  const d = manifest.config_defaults;
  assert.equal(cfg.vision.width, d.vision_config.hidden_size);
  assert.equal(cfg.vision.imageSize, d.vision_config.image_size);
  assert.equal(cfg.vision.patchSize, d.vision_config.patch_size);
  assert.equal(cfg.vision.lnEps, d.vision_config.layer_norm_eps);
  assert.equal(cfg.activation, 'gelu_tanh');
  assert.equal(cfg.text.positions, d.text_config.max_position_embeddings);
  assert.equal(cfg.text.contextLength, 64);
  assert.equal(cfg.text.vocabSize, d.text_config.vocab_size);
  assert.equal(cfg.embedDim, 768);
  const model = await tinyA();
  const expected = siglipExpectedTensors(model.config);
  const spec = manifest.files['tiny_siglip_a/model.safetensors'].tensors as Record<string, { shape: number[] }>;
  assert.deepEqual([...expected.keys()].sort(), Object.keys(spec).sort());
  for (const [k, v] of Object.entries(spec)) assert.deepEqual(expected.get(k), v.shape, k);
  assert.equal(model.family.id, 'siglip');
  assert.equal(model.config.text.contextLength, manifest.models.tiny_siglip_a.text_max_len);
});

test('tokenizer: every tokenizer_cases.json entry id for id (no truncation, max 16, max 64)', async () => {
  const tc = JSON.parse(readFileSync(join(DIR_A, 'tokenizer_config.json'), 'utf8'));
  const tok = await SiglipTokenizer.load(join(DIR_A, 'spiece.model'), { maxLength: 16, mode: 'hf', config: tc });
  const cases = JSON.parse(readFileSync(fixturePath('siglip/tokenizer_cases.json'), 'utf8')) as { index: number; text: string; ids: number[]; input_ids_max16: number[]; input_ids_max64: number[] }[];
  assert.equal(cases.length, 20);
  for (const c of cases) {
    assert.deepEqual(tok.withEos(tok.encode(c.text)), c.ids, `case ${c.index}`);
    assert.deepEqual([...tok.tokenize([c.text], 16)], c.input_ids_max16, `case ${c.index} max16`);
    assert.deepEqual([...tok.tokenize([c.text], 64)], c.input_ids_max64, `case ${c.index} max64`);
  }
  // The model's own tokenizer pads to tokenizer_config's model_max_length, as the fixture's texts were.
  const model = await tinyA();
  const rows = manifest.models.tiny_siglip_a.texts.filter((t: { text: string | null }) => t.text !== null);
  assert.deepEqual([...model.tokenize(rows.map((r: { text: string }) => r.text))], rows.flatMap((r: { input_ids: number[] }) => r.input_ids));
});

test('preprocess: RGB, PIL bicubic to S×S, rescale, normalise bit-exact to pixels_u8 / pixel_values', async () => {
  const model = await tinyA();
  const images = manifest.images.map((i: { file: string }) => fixturePath(join('siglip', i.file)));
  const r = await preprocessFiles(model.config, images);
  assert.deepEqual(r.errors, [undefined, undefined, undefined, undefined]);
  const u8 = inA.pixels_u8.data as Uint8Array;
  assert.equal(maxAbsDiff(r.u8, u8), 0);
  assert.equal(maxAbsDiff(r.pixels.data, F(inA.pixel_values)), 0);
  // The fast (torchvision) path differs, as the manifest records; ours is the slow path.
  assert.ok(maxAbsDiff(r.pixels.data, F(inA.pixel_values_fast)) > 0.01);
});

test('vision forward, logits and text forward (no attention mask) within 1e-5 of the reference', async () => {
  const model = await tinyA();
  const px = asF32(inA.pixel_values);
  const v = await model.runVision(px, ['image_features', 'last_hidden_state', 'hidden_states']);
  assert.ok(maxAbsDiff(v.image_features.data, F(outA.image_embeds)) < 1e-5);
  assert.ok(maxAbsDiff(v.last_hidden_state.data, F(outA.last_hidden_state)) < 1e-5);
  assert.ok(maxAbsDiff(v.hidden_states.data, F(outA.hidden_states)) < 2e-5);
  const text = await model.encodeTokens(ids32(inA.input_ids));
  assert.ok(maxAbsDiff(text.data, F(outA.text_embeds)) < 1e-5);
  assert.ok(maxAbsDiff(text.data, F(outA.text_embeds_masked)) > 1e-3, 'a mask would change the embedding');
  assert.ok(maxAbsDiff(model.logits(v.image_features, text).data, F(outA.logits_per_image)) < 1e-4);
});

test('decomposition as compute_siglip records it: attn per pooling head (and token), mlp, bias; Σ = image embedding', async () => {
  const model = await tinyA();
  const dec = decomposerFor(model);
  assert.ok(dec instanceof SiglipDecomposer);
  const px = asF32(inA.pixel_values);
  const res = await dec.decompose(px);
  const ref = dec.referenceTensors(res);
  assert.deepEqual(ref.attn.shape, [4, 4, 48]);
  assert.ok(maxAbsDiff(ref.attn.data as Float32Array, F(outA.attention_records)) < 1e-5);
  assert.ok(maxAbsDiff(ref.mlp.data as Float32Array, F(outA.mlp_records)) < 1e-5);
  assert.ok(maxAbsDiff(ref.bias.data as Float32Array, F(outA.out_proj_bias)) === 0);
  const sp = dec.referenceTensors(await dec.decompose(px, { spatial: true }));
  assert.deepEqual(sp.attn.shape, [4, 16, 4, 48]);
  assert.ok(maxAbsDiff(sp.attn.data as Float32Array, F(outA.attention_records_spatial)) < 1e-5);
  const probs = (await model.runVision(px, ['pool_probs'])).pool_probs;
  assert.ok(maxAbsDiff(probs.data, F(outA.head_attn_probs)) < 1e-5);
  // Sum identity, on our own terms and against the reference embedding.
  const [B, , H, d] = [4, 1, 4, 48];
  const z = F(outA.image_embeds);
  for (const s of [ref, sp]) {
    const recon = new Float64Array(B * d);
    const per = (s.attn.data.length / B) | 0;
    for (let b = 0; b < B; b++) {
      for (let i = 0; i < per; i++) recon[b * d + (i % d)] += (s.attn.data as Float32Array)[b * per + i];
      for (let k = 0; k < d; k++) recon[b * d + k] += (s.mlp.data as Float32Array)[b * d + k] + (s.bias.data as Float32Array)[k];
    }
    assert.ok(maxAbsDiff(recon, z) < 1e-5);
    assert.ok(maxAbsDiff(recon, s.image_features.data as Float32Array) < 1e-5);
  }
  // The common layout (stores, analyses) sums the same way: Σ attn + Σ mlp slots = z.
  let worst = 0;
  for (let b = 0; b < B; b++)
    for (let k = 0; k < d; k++) {
      let t = res.mlp.data[(b * 2) * d + k] + res.mlp.data[(b * 2 + 1) * d + k];
      for (let h = 0; h < H; h++) t += res.attn.data[(b * H + h) * d + k];
      worst = Math.max(worst, Math.abs(t - z[b * d + k]));
    }
  assert.ok(worst < 1e-5);
});

test("compute_siglip's features and head orthogonality; demo_siglip's spatial text scores", async () => {
  const model = await tinyA();
  const dec = decomposerFor(model);
  const px = asF32(inA.pixel_values);
  const ref = dec.referenceTensors(await dec.decompose(px));
  const feats = siglipFeatures(ref.attn as F32, ref.mlp.data as Float32Array, F(outA.out_proj_bias), F(outA.fc2_bias));
  assert.ok(maxAbsDiff(feats.mlpRepr, F(outA.mlp_repr)) < 1e-5);
  assert.ok(maxAbsDiff(feats.attnRepr, F(outA.attn_repr)) < 1e-5);
  assert.ok(maxAbsDiff(feats.recon, F(outA.recon)) < 1e-5);
  assert.ok(maxAbsDiff(headOrthogonality(ref.attn as F32), F(outA.head_orthogonality)) < 1e-5);
  // Spatial scores: per-token records · normalised text embeddings (unnormalised terms).
  const text = F(outA.text_embeds);
  const T = 6;
  const tn = new Float32Array(text.length);
  for (let t = 0; t < T; t++) {
    const row = text.subarray(t * 48, (t + 1) * 48);
    const n = Math.sqrt(row.reduce((a, x) => a + x * x, 0));
    for (let k = 0; k < 48; k++) tn[t * 48 + k] = row[k] / n;
  }
  const { maps } = await dec.textMaps(px, f32([T, 48], tn));
  assert.deepEqual(maps.shape, [4, 1, 16, 4, 6]);
  assert.ok(maxAbsDiff(maps.data, F(outA.spatial_text_scores)) < 1e-5);
});

test('second layout (36 px, patch 6, width 40, 5 heads, 2 layers, defaults from omitted fields) against a float64 forward pass', async () => {
  const model = await loadClip(DIR_B, { threads: 2 });
  try {
    assert.equal(model.config.vision.lnEps, 1e-6);
    assert.equal(model.config.text.contextLength, 12);
    const px = asF32(inB.pixel_values);
    const dec = decomposerFor(model);
    const sp = dec.referenceTensors(await dec.decompose(px, { spatial: true }));
    const z = outB.image_embeds.data as Float64Array;
    assert.ok(maxAbsDiff(sp.image_features.data as Float32Array, z) < 1e-4);
    assert.ok(maxAbsDiff(sp.attn.data as Float32Array, outB.attention_records_spatial.data as Float64Array) < 1e-4);
    assert.ok(maxAbsDiff(sp.mlp.data as Float32Array, outB.mlp_records.data as Float64Array) < 1e-4);
    const text = await model.encodeTokens(ids32(inB.input_ids));
    assert.ok(maxAbsDiff(text.data, outB.text_embeds.data as Float64Array) < 1e-4);
    // Invariant: the through-layers split sums to each pooling head's term.
    const t = await (dec as SiglipDecomposer).throughLayers(px);
    assertThroughSums(t);
    const ts = await (dec as SiglipDecomposer).throughLayers(px, { spatial: true });
    assertThroughSums(ts);
    const sh = layerShares(t);
    for (let hp = 0; hp < 5; hp++) {
      const row = sh.shares.subarray(hp * sh.columns.length, (hp + 1) * sh.columns.length);
      assert.ok(Math.abs(row.reduce((a, x) => a + x, 0) - 1) < 1e-4);
    }
  } finally {
    await model.release();
  }
});

function assertThroughSums(t: Awaited<ReturnType<SiglipDecomposer['throughLayers']>>): void {
  const [B, Hp, d] = t.attn.shape;
  const L = t.bias.shape[1];
  const per = t.heads.data.length / (B * L); // H (× N) × H' × d per image and layer
  let worst = 0;
  let scale = 0;
  for (let b = 0; b < B; b++)
    for (let hp = 0; hp < Hp; hp++)
      for (let k = 0; k < d; k++) {
        let s = t.embed.data[(b * Hp + hp) * d + k] + t.constant.data[hp * d + k];
        for (let l = 0; l < L; l++) {
          s += t.bias.data[((b * L + l) * Hp + hp) * d + k] + t.mlp.data[((b * L + l) * Hp + hp) * d + k];
          const base = (b * L + l) * per;
          for (let i = 0; i < per / (Hp * d); i++) s += t.heads.data[base + (i * Hp + hp) * d + k];
        }
        const a = t.attn.data[(b * Hp + hp) * d + k];
        worst = Math.max(worst, Math.abs(s - a));
        scale = Math.max(scale, Math.abs(a));
      }
  assert.ok(worst < 1e-5 * Math.max(1, scale), `through-layers sum off by ${worst}`);
}

test('through-layers on the fixture: Σ (layers, heads, tokens) + embedding + constant = each pooling head term', async () => {
  const dec = decomposerFor(await tinyA()) as SiglipDecomposer;
  const t = await dec.throughLayers(asF32(inA.pixel_values));
  assert.deepEqual(t.heads.shape, [4, 3, 4, 4, 48]);
  assert.ok(maxAbsDiff(t.attn.data, F(outA.attention_records)) < 1e-5);
  assertThroughSums(t);
  assertThroughSums(await dec.throughLayers(asF32(inA.pixel_values), { spatial: true }));
});

/** The fixture's tensors renamed into open_clip's timm layout (what hf-hub:timm/ViT-B-16-SigLIP holds). */
function writeTimmDir(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const model = SafetensorsFile.open(join(DIR_A, 'model.safetensors'));
  const cfg = parseHfSiglipConfig(JSON.parse(readFileSync(join(DIR_A, 'config.json'), 'utf8')));
  const out: Record<string, Tensor> = {};
  const D = cfg.vision.width;
  const Dt = cfg.text.width;
  for (const name of model.names()) {
    const src = timmSource(name, cfg)!;
    const t = model.read(name) as Tensor<Float32Array>;
    if (src.kind === 'same') out[src.names[0]] = name.endsWith('position_embedding.weight') && name.startsWith('vision') ? { ...t, shape: [1, ...t.shape] } : t;
    else if (src.kind === 'rows') {
      const w = name.startsWith('vision') ? D : Dt;
      const packed = (out[src.names[0]] ??= f32(t.shape.length === 2 ? [3 * w, w] : [3 * w])) as F32;
      packed.data.set(t.data, src.rows![0] * (t.shape.length === 2 ? w : 1));
    } else {
      // in_proj [3D, D] → attn_pool.q [D, D] + attn_pool.kv [2D, D]
      const per = t.shape.length === 2 ? D : 1;
      out[src.names[0]] = f32(t.shape.length === 2 ? [D, D] : [D], t.data.slice(0, D * per));
      out[src.names[1]] = f32(t.shape.length === 2 ? [2 * D, D] : [2 * D], t.data.slice(D * per));
    }
  }
  model.close();
  writeSafetensors(join(dir, 'open_clip_model.safetensors'), out);
  const openClipConfig = {
    model_cfg: {
      embed_dim: 48, init_logit_bias: -10, custom_text: true,
      vision_cfg: { image_size: 32, timm_model_name: 'vit_base_patch16_siglip_224', timm_model_pretrained: false, timm_pool: 'map', timm_proj: 'none', timm_model_kwargs: { patch_size: 8, embed_dim: 48, depth: 3, num_heads: 4, mlp_ratio: 2, act_layer: 'gelu_tanh' } },
      text_cfg: { context_length: 16, vocab_size: 1000, hf_tokenizer_name: 'timm/ViT-B-16-SigLIP', tokenizer_kwargs: { clean: 'canonicalize' }, width: 48, heads: 4, layers: 2, mlp_ratio: 2, no_causal_mask: true, proj_bias: true, pool_type: 'last', norm_kwargs: { eps: 1e-6 }, act_kwargs: { approximate: 'tanh' } },
    },
    preprocess_cfg: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], interpolation: 'bicubic', resize_mode: 'squash' },
  };
  writeFileSync(join(dir, 'open_clip_config.json'), JSON.stringify(openClipConfig));
  copyFileSync(join(DIR_A, 'spiece.model'), join(dir, 'spiece.model'));
}

test("open_clip's timm-layout SigLIP (the fixture renamed) gives the reference's features", async () => {
  const dir = join(tmp, 'timm');
  writeTimmDir(dir);
  const model = await loadClip(dir, { threads: 2 });
  try {
    assert.equal(model.family.id, 'siglip');
    assert.equal(model.config.preprocess.pipeline, 'open_clip');
    const z = await model.encodeImages(asF32(inA.pixel_values));
    assert.ok(maxAbsDiff(z.data, F(outA.image_embeds)) < 1e-5);
    const text = await model.encodeTokens(ids32(inA.input_ids));
    assert.ok(maxAbsDiff(text.data, F(outA.text_embeds)) < 1e-5);
    // open_clip's cleaning + the T5-style SentencePiece path agree with transformers' on plain captions.
    const a = await tinyA();
    assert.deepEqual([...model.tokenize(['a photo of a dog.'])], [...a.tokenize(['a photo of a dog.'])]);
  } finally {
    await model.release();
  }
  await rejectsOneLine(resolveModel(join(tmp, 'nope')), /no such file/);
});

test('hub: google/<siglip> downloads config, weights, spiece.model and the processor files into the cache', async () => {
  const files: Record<string, Buffer> = {};
  for (const f of ['config.json', 'model.safetensors', 'spiece.model', 'tokenizer_config.json', 'preprocessor_config.json', 'special_tokens_map.json']) files[f] = readFileSync(join(DIR_A, f));
  const server = await startHubServer({ 'google/siglip-tiny': files });
  try {
    const cacheDir = join(tmp, 'hub');
    const model = await loadClip('google/siglip-tiny', { endpoint: server.endpoint, cacheDir, threads: 2 });
    assert.equal(model.family.id, 'siglip');
    assert.ok(maxAbsDiff((await model.encodeImages(asF32(inA.pixel_values))).data, F(outA.image_embeds)) < 1e-5);
    assert.deepEqual([...model.tokenize(['a photo of a dog.'])], manifest.models.tiny_siglip_a.texts[0].input_ids);
    await model.release();
    const got = new Set(server.requests.map((r) => r.file));
    for (const f of Object.keys(files)) assert.ok(got.has(f), `${f} was not downloaded`);
    // A complete cache is used offline without any request.
    const before = server.requests.length;
    const again = await resolveModel('google/siglip-tiny', { endpoint: server.endpoint, cacheDir, offline: true });
    again.weights.close();
    assert.equal(server.requests.length, before);
  } finally {
    await server.close();
  }
});

test('SigLIP inputs refused in one line: wrong token length, ids outside the vocabulary, no spiece.model', async () => {
  const model = await tinyA();
  await rejectsOneLine(model.encodeTokens(new Int32Array(17), 64, 17), /length 17.*1\.\.16/);
  await rejectsOneLine(model.encodeTokens(Int32Array.of(5, 1000), 64, 2), /token id 1000 outside/);
  const dir = join(tmp, 'nospiece');
  mkdirSync(dir, { recursive: true });
  for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(DIR_A, f), join(dir, f));
  await rejectsOneLine(resolveModel(dir), /lacks spiece\.model/);
  writeFileSync(join(dir, 'spiece.model'), 'not a sentencepiece model');
  await rejectsOneLine(loadClip(dir), /not a SentencePiece model/);
});

test.after(async () => {
  await modelA?.release();
});
