import './helpers/env.ts';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodeSafetensors, readSafetensors } from '../src/io/safetensors.ts';
import { parseOpenClipConfig } from '../src/model/config.ts';
import { parseHfClipConfig } from '../src/model/hf_layout.ts';
import { DEFAULT_MODEL, resolveModel, type ResolvedModel } from '../src/model/resolve.ts';
import type { Tensor } from '../src/tensor.ts';
import { hfConfigJson, writeHfClipDir } from './helpers/hf_convert.ts';
import { referencePath } from './helpers/fixtures.ts';
import { rejectsOneLine } from './helpers/errors.ts';
import { ModelNotFoundError } from '../src/errors.ts';

const FIX_ST = referencePath('tiny_a.safetensors');
const FIX_JSON = referencePath('tiny_a.json');
const tinyCfg = JSON.parse(readFileSync(FIX_JSON, 'utf8'));
const fixture = readSafetensors(FIX_ST);

let tmp: string;
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'cliplens-resolve-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

function assertSameWeights(m: ResolvedModel): void {
  assert.equal(fixture.size, 134);
  for (const [name, t] of fixture) {
    const got = m.weights.get(name);
    assert.deepEqual(got.shape, t.shape, name);
    assert.ok(Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), `${name} differs`);
  }
}

/** Bad input must give one clear line, never a stack dump. */
function openClipDir(dir: string, modelCfg: unknown, preprocess?: unknown): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'open_clip_config.json'), JSON.stringify({ model_cfg: modelCfg, ...(preprocess ? { preprocess_cfg: preprocess } : {}) }));
  copyFileSync(FIX_ST, join(dir, 'open_clip_model.safetensors'));
  return dir;
}

describe('open_clip layouts', () => {
  test('(a) .safetensors file with .json beside it', async () => {
    const m = await resolveModel(FIX_ST);
    try {
      assert.equal(m.name, 'tiny_a');
      assert.deepEqual(m.config, parseOpenClipConfig(tinyCfg));
      assert.deepEqual(m.tokenizer, { kind: 'default' });
      assert.deepEqual(m.files, [FIX_ST, FIX_JSON]);
      assertSameWeights(m);
    } finally {
      m.weights.close();
    }
  });

  test('(b) directory with open_clip_config.json and preprocess_cfg', async () => {
    const pp = { mean: [0.5, 0.4, 0.3], std: [0.2, 0.3, 0.4], interpolation: 'bicubic', resize_mode: 'shortest' };
    const dir = openClipDir(join(tmp, 'oc_dir'), tinyCfg, pp);
    const m = await resolveModel(dir);
    try {
      assert.equal(m.name, 'oc_dir');
      assert.deepEqual(m.config, parseOpenClipConfig(tinyCfg, pp));
      assert.deepEqual(m.config.preprocess.mean, [0.5, 0.4, 0.3]);
      assert.equal(m.weights.get('logit_scale').shape.length, 0);
      assert.equal(m.files.length, 2);
    } finally {
      m.weights.close();
    }
  });
});

describe('Hugging Face CLIPModel layout', () => {
  let hfDir: string;
  before(() => {
    hfDir = join(tmp, 'hf_tiny');
    writeHfClipDir(hfDir, fixture, tinyCfg, { hiddenAct: 'gelu' });
  });

  test('every open_clip tensor equals the fixture exactly', async () => {
    const m = await resolveModel(hfDir);
    try {
      const expected = parseOpenClipConfig(tinyCfg, { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] });
      assert.deepEqual(m.config, expected);
      assert.equal(m.config.activation, 'gelu');
      assert.deepEqual(m.tokenizer, { kind: 'hf', vocab: join(hfDir, 'vocab.json'), merges: join(hfDir, 'merges.txt') });
      assert.ok(m.files.includes(join(hfDir, 'preprocessor_config.json')));
      assertSameWeights(m);
      assert.equal(m.weights.has('visual.transformer.resblocks.5.attn.in_proj_weight'), true);
      assert.equal(m.weights.has('visual.transformer.resblocks.6.attn.in_proj_weight'), false);
    } finally {
      m.weights.close();
    }
  });

  test('layer_norm_eps and quick_gelu are carried into the config', () => {
    const c = parseHfClipConfig(hfConfigJson(tinyCfg, { hiddenAct: 'quick_gelu', layerNormEps: 1e-6 }));
    assert.equal(c.activation, 'quick_gelu');
    assert.equal(c.vision.lnEps, 1e-6);
    assert.equal(c.text.lnEps, 1e-6);
    assert.equal(c.vision.heads, 4);
    assert.equal(c.text.heads, 4);
    assert.equal(c.vision.mlpRatio, 4);
    assert.equal(c.embedDim, 64);
    assert.deepEqual(c.preprocess.mean, [0.48145466, 0.4578275, 0.40821073]);
  });

  test('config defaults follow transformers when fields are omitted', () => {
    const c = parseHfClipConfig({ model_type: 'clip', vision_config: {}, text_config: {} });
    assert.equal(c.vision.width, 768);
    assert.equal(c.vision.patchSize, 32);
    assert.equal(c.text.width, 512);
    assert.equal(c.activation, 'quick_gelu');
    assert.equal(c.embedDim, 512);
  });

  test('unsupported or mismatched activation is refused', () => {
    assert.throws(() => parseHfClipConfig(hfConfigJson(tinyCfg, { hiddenAct: 'gelu_new' })), /hidden_act = "gelu_new" is not supported/);
    assert.throws(() => parseHfClipConfig(hfConfigJson(tinyCfg, { hiddenAct: 'gelu', textHiddenAct: 'quick_gelu' })), /differs from text_config\.hidden_act/);
    assert.throws(() => parseHfClipConfig({ model_type: 'siglip' }), /model_type = "siglip" is not supported/);
  });

  test('bad hidden_act in a directory gives a one-line error naming config.json', async () => {
    const dir = join(tmp, 'hf_badact');
    writeHfClipDir(dir, fixture, tinyCfg, { hiddenAct: 'relu' });
    await rejectsOneLine(resolveModel(dir), /config\.json: vision_config\.hidden_act = "relu" is not supported/);
  });

  test('missing HF tensor names both the open_clip and the HF name', async () => {
    const dir = join(tmp, 'hf_missing');
    writeHfClipDir(dir, fixture, tinyCfg, { drop: ['vision_model.encoder.layers.2.self_attn.k_proj.weight'] });
    await rejectsOneLine(resolveModel(dir), /missing tensor 'visual\.transformer\.resblocks\.2\.attn\.in_proj_weight'.*vision_model\.encoder\.layers\.2\.self_attn\.k_proj\.weight/);
  });

  test('half-precision HF checkpoint widens to float32', async () => {
    const dir = join(tmp, 'hf_half');
    writeHfClipDir(dir, fixture, tinyCfg, { half: true, preprocessor: null });
    const m = await resolveModel(dir);
    try {
      const t = m.weights.get('visual.proj');
      const ref = fixture.get('visual.proj')!.data as Float32Array;
      assert.deepEqual(t.shape, [128, 64]);
      let maxd = 0;
      for (let i = 0; i < ref.length; i++) maxd = Math.max(maxd, Math.abs(ref[i] - t.data[i]));
      assert.ok(maxd < 1e-2 && maxd > 0, `f16 round trip error ${maxd}`);
      assert.equal(m.files.length, 4); // no preprocessor_config.json
    } finally {
      m.weights.close();
    }
  });

  test('preprocessor with a non-bicubic resample is refused', async () => {
    const dir = join(tmp, 'hf_bilinear');
    writeHfClipDir(dir, fixture, tinyCfg, { preprocessor: { image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5], resample: 2 } });
    await rejectsOneLine(resolveModel(dir), /preprocessor_config\.json.*interpolation = "bilinear" is not supported/);
  });
});

describe('builtin names', () => {
  let models: string;
  before(() => {
    models = join(tmp, 'models');
    openClipDir(join(models, DEFAULT_MODEL), tinyCfg);
    openClipDir(join(models, 'other'), tinyCfg);
    mkdirSync(join(models, 'not_a_model'));
  });

  test('undefined spec resolves the default builtin', async () => {
    const m = await resolveModel(undefined, { modelsDir: models });
    try {
      assert.equal(m.name, DEFAULT_MODEL);
      assert.equal(m.files[0], join(models, DEFAULT_MODEL, 'open_clip_config.json'));
      assert.deepEqual(m.config, parseOpenClipConfig(tinyCfg));
    } finally {
      m.weights.close();
    }
  });

  test('CLIPLENS_MODELS_DIR is honoured', async () => {
    process.env.CLIPLENS_MODELS_DIR = models;
    try {
      const m = await resolveModel('other');
      m.weights.close();
      assert.equal(m.name, 'other');
    } finally {
      delete process.env.CLIPLENS_MODELS_DIR;
    }
  });

  test('unknown name lists builtins and accepted forms', async () => {
    const e = await rejectsOneLine(resolveModel('nosuchmodel', { modelsDir: models }), /unknown model 'nosuchmodel': builtin models are other, toyworld; accepted forms: .*hf-hub:org\/name/);
    assert.ok(e instanceof ModelNotFoundError);
    await rejectsOneLine(resolveModel('not_a_model', { modelsDir: models }), /unknown model 'not_a_model'/);
  });
});

describe('bad input', () => {
  test('missing .json beside a .safetensors', async () => {
    const p = join(tmp, 'lonely.safetensors');
    copyFileSync(FIX_ST, p);
    await rejectsOneLine(resolveModel(p), /no config for .*lonely\.safetensors: expected the open_clip model config lonely\.json beside it/);
  });

  test('non-existent path', async () => {
    const e = await rejectsOneLine(resolveModel(join(tmp, 'nope', 'm.safetensors')), /no such file or directory: .*nope/);
    assert.ok(e instanceof ModelNotFoundError);
    await rejectsOneLine(resolveModel('./missing_dir'), /no such file or directory/);
  });

  test('safetensors header claiming 100 GB', async () => {
    const p = join(tmp, 'huge.safetensors');
    const b = Buffer.alloc(64);
    b.writeBigUInt64LE(100_000_000_000n, 0);
    writeFileSync(p, b);
    writeFileSync(join(tmp, 'huge.json'), JSON.stringify(tinyCfg));
    await rejectsOneLine(resolveModel(p), /header claims 100000000000 bytes/);
  });

  test('tensor entry claiming 100 GB of data', async () => {
    const p = join(tmp, 'huge2.safetensors');
    const header = JSON.stringify({ logit_scale: { dtype: 'F32', shape: [25_000_000_000], data_offsets: [0, 100_000_000_000] } });
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length), 0);
    writeFileSync(p, Buffer.concat([len, Buffer.from(header), Buffer.alloc(16)]));
    writeFileSync(join(tmp, 'huge2.json'), JSON.stringify(tinyCfg));
    await rejectsOneLine(resolveModel(p), /data ends at byte 100000000000/);
  });

  test('missing tensor in an open_clip checkpoint', async () => {
    const sd = new Map<string, Tensor>(fixture);
    sd.delete('visual.transformer.resblocks.3.mlp.c_fc.bias');
    const p = join(tmp, 'holey.safetensors');
    writeFileSync(p, encodeSafetensors(sd));
    writeFileSync(join(tmp, 'holey.json'), JSON.stringify(tinyCfg));
    await rejectsOneLine(resolveModel(p), /missing tensor 'visual\.transformer\.resblocks\.3\.mlp\.c_fc\.bias' required by the config/);
  });

  test('checkpoint that does not match its config', async () => {
    const p = join(tmp, 'wrongcfg.safetensors');
    copyFileSync(FIX_ST, p);
    writeFileSync(join(tmp, 'wrongcfg.json'), JSON.stringify({ ...tinyCfg, embed_dim: 32 }));
    await rejectsOneLine(resolveModel(p), /tensor 'visual\.proj' has shape \[128,64\] but the config implies \[128,32\]/);
  });

  test('unknown config field value (vision_cfg.pool_type "avg")', async () => {
    const dir = openClipDir(join(tmp, 'avgpool'), { ...tinyCfg, vision_cfg: { ...tinyCfg.vision_cfg, pool_type: 'avg' } });
    await rejectsOneLine(resolveModel(dir), /open_clip_config\.json: vision_cfg\.pool_type = "avg" is not supported/);
  });

  test('directory that is no model', async () => {
    const dir = join(tmp, 'empty_dir');
    mkdirSync(dir);
    await rejectsOneLine(resolveModel(dir), /is not a model directory/);
  });

  test('invalid JSON config', async () => {
    const p = join(tmp, 'badjson.safetensors');
    copyFileSync(FIX_ST, p);
    writeFileSync(join(tmp, 'badjson.json'), '{ "embed_dim": ');
    await rejectsOneLine(resolveModel(p), /badjson\.json is not valid JSON/);
  });
});
