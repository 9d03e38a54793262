// The public entry (src/index.ts): the model takes files, bytes or pixels and gives the same
// tensors as the layers below; errors are CliplensErrors with stable codes.

import './helpers/env.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as cliplens from '../src/index.ts';
import { preprocessFiles } from '../src/model/preprocess_model.ts';
import { maxAbsDiff } from '../src/tensor.ts';

const { loadModel, CliplensError, ImageDecodeError, ShapeError } = cliplens;
const dir = mkdtempSync(join(tmpdir(), 'cliplens-api-'));
const photo = join(dir, 'photo.png');
const model = await loadModel(undefined, { threads: 1 });
{
  const w = 90, h = 70, rgb = Buffer.alloc(w * h * 3);
  for (let p = 0; p < w * h; p++) rgb.set([p % 251, (p * 7) % 256, 90], p * 3);
  await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).png().toFile(photo);
}

test('encodeImages: a file, its bytes and its pixels give the same features', async () => {
  const pixels = (await preprocessFiles(model.config, [photo])).pixels;
  const fromFile = await model.encodeImages([photo]);
  const fromBytes = await model.encodeImages([readFileSync(photo)]);
  const fromPixels = await model.encodeImages(pixels);
  assert.deepEqual(fromFile.shape, [1, model.dims.d]);
  assert.equal(fromFile.dtype, 'F32');
  assert.ok(fromFile.data instanceof Float32Array);
  assert.equal(maxAbsDiff(fromFile.data, fromBytes.data), 0);
  assert.equal(maxAbsDiff(fromFile.data, (await model.clip.encodeImages(pixels)).data), 0);
  assert.equal(maxAbsDiff(fromFile.data, fromPixels.data), 0);
});

test('decompose: terms sum to the unit embedding; textMaps per token, over all or chosen heads', async () => {
  const { L, H, d, tokens } = model.dims;
  const t = await model.decompose([photo]);
  assert.deepEqual(t.attn.shape, [1, L, H, d]);
  assert.deepEqual(t.mlp.shape, [1, L + 1, d]);
  const sum = new Float64Array(d);
  for (let i = 0; i < t.attn.data.length; i++) sum[i % d] += t.attn.data[i];
  for (let i = 0; i < t.mlp.data.length; i++) sum[i % d] += t.mlp.data[i];
  const z = t.imageFeatures.data;
  for (let k = 0; k < d; k++) assert.ok(Math.abs(sum[k] - z[k] / t.norm.data[0]) < 1e-5);
  const maps = await model.textMaps([photo], ['a red square', 'a blue circle']);
  assert.deepEqual(maps.shape, [1, 2, tokens]);
  const one = await model.textMaps([photo], ['a red square'], { layers: [L - 1], heads: [0] });
  assert.deepEqual(one.shape, [1, 1, tokens]);
  assert.notDeepEqual(Array.from(one.data), Array.from(maps.data.subarray(0, tokens)));
});

test('encodeTexts and tokenize give tensors', async () => {
  const t = await model.encodeTexts(['a red square']);
  assert.deepEqual(t.shape, [1, model.dims.d]);
  const ids = model.tokenize(['a red square', 'a circle']);
  assert.deepEqual(ids.shape, [2, model.config.text.contextLength]);
  assert.equal(ids.dtype, 'I32');
});

test('errors are CliplensErrors with stable codes and one-line messages', async () => {
  await assert.rejects(model.encodeImages([join(dir, 'missing.png')]), (e: unknown) => e instanceof ImageDecodeError && e.code === 'E_IMAGE' && /missing\.png: file not found/.test(e.message));
  await assert.rejects(model.encodeImages([Buffer.from('not an image')]), (e: unknown) => e instanceof ImageDecodeError && /^image 0: /.test(e.message));
  await assert.rejects(model.encodeImages({ dtype: 'F32', shape: [1, 3, 5, 5], data: new Float32Array(75) }), (e: unknown) => e instanceof ShapeError && e.code === 'E_SHAPE');
  await assert.rejects(loadModel('no-such-model'), (e: unknown) => e instanceof CliplensError && e.code === 'E_MODEL_NOT_FOUND' && !e.message.includes('\n'));
});

test('the entry exports every error class and the documented functions', () => {
  for (const name of ['CliplensError', 'UsageError', 'ConfigError', 'WeightError', 'ShapeError', 'ModelNotFoundError', 'TokenizerError', 'SafetensorsError', 'ImageDecodeError', 'StoreError', 'HubError', 'AnalysisError', 'HttpError'])
    assert.equal(typeof (cliplens as Record<string, unknown>)[name], 'function', name);
  for (const name of ['loadModel', 'textspan', 'textspanStudy', 'loadStore', 'readManifest', 'loadDataset', 'meanAblate', 'headName', 'parseHeadList'])
    assert.equal(typeof (cliplens as Record<string, unknown>)[name], 'function', name);
  assert.equal(cliplens.headName({ layer: 10, head: 3 }), 'L10.H3');
  assert.deepEqual(cliplens.parseHeadList('L10.H3,11:0,L2.H*').heads, [{ layer: 10, head: 3 }, { layer: 11, head: 0 }, { layer: 2, head: '*' }]);
});
