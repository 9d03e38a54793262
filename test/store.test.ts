// Dataset decomposition into a store: resume after interruption (kill -9 included) gives the
// same store as an uninterrupted run; bad inputs give clear errors and lose nothing.

import './helpers/env.ts';
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { decomposeDataset } from '../src/decompose/dataset_job.ts';
import { Decomposer } from '../src/decompose/decomposer.ts';
import { loadDataset } from '../src/io/datasets.ts';
import { loadStore, readManifest } from '../src/io/store.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.ts';
import { ClipModel } from '../src/runtime/clip.ts';
import { preprocessFiles } from '../src/model/preprocess_model.ts';
import { randomClipWeights } from './helpers/random_weights.ts';
import { maxAbsDiff } from '../src/tensor.ts';
import { REPO, TINY_A, sumInvariant, tinyConfig, tinyModel } from './helpers/fixtures.ts';
import { killAfterShards, runToEnd } from './helpers/processes.ts';

const root = mkdtempSync(join(tmpdir(), 'cliplens-store-'));
const data = join(root, 'data');
const N_IMAGES = 9;

before(async () => {
  for (const [k, cls] of ['red', 'blue', 'green'].entries()) {
    mkdirSync(join(data, cls), { recursive: true });
    for (let i = 0; i < 3; i++) {
      const rgb = Buffer.alloc(40 * 30 * 3);
      for (let p = 0; p < 40 * 30; p++) {
        rgb[p * 3 + k] = 120 + ((p * (i + 3)) % 120);
        rgb[p * 3 + ((k + 1) % 3)] = (p * 7) % 50;
      }
      await sharp(rgb, { raw: { width: 40, height: 30, channels: 3 } }).png().toFile(join(data, cls, `img${i}.png`));
    }
  }
  writeFileSync(join(data, 'blue', 'broken.png'), Buffer.from('definitely not a png'));
});

function storeFiles(dir: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const f of readdirSync(dir).sort()) if (f.endsWith('.safetensors')) out[f] = readFileSync(join(dir, f));
  return out;
}

function comparableManifest(dir: string) {
  const m = readManifest(dir);
  return { ...m, dataset: { ...m.dataset, root: '' } };
}

test('folder dataset: labels from subfolders, unreadable images reported, terms sum to the embedding', async () => {
  const ds = loadDataset(data);
  assert.equal(ds.items.length, N_IMAGES + 1);
  assert.deepEqual(ds.labels, ['blue', 'green', 'red']);
  const model = tinyModel();
  const dir = join(root, 'full');
  const res = await decomposeDataset(model, ds, { storeDir: dir, batchSize: 2 });
  assert.equal(res.complete, true);
  assert.equal(res.failed.length, 1);
  assert.match(res.failed[0].error, /broken\.png: not an image/);
  const s = loadStore(dir, { requireComplete: true });
  assert.equal(s.attn.shape[0], N_IMAGES);
  assert.deepEqual(s.attn.shape.slice(1), [6, 4, 64]);
  assert.ok(sumInvariant(s.attn, s.mlp, s.imageFeatures.data, s.norm.data) < 1e-5);
  // Rows equal a direct decomposition of the same images.
  const paths = [...s.index].map((i) => ds.items[i].path);
  const direct = await new Decomposer(model).decompose((await preprocessFiles(model.config, paths)).pixels);
  assert.ok(maxAbsDiff(direct.attn.data, s.attn.data) < 1e-6);
  // The CLS→CLS part of every head is kept beside its term.
  assert.deepEqual(s.clsAttn!.shape, s.attn.shape);
  assert.ok(maxAbsDiff(direct.clsAttn!.data, s.clsAttn!.data) < 1e-6);
  assert.deepEqual([...s.labels], [...s.index].map((i) => ds.labels.indexOf(ds.items[i].label!)));
});

test('an interrupted run resumes to exactly the uninterrupted store and repeats no work', async () => {
  const ds = loadDataset(data);
  const model = tinyModel();
  const full = join(root, 'full');
  const dir = join(root, 'resumed');
  const first = await decomposeDataset(model, ds, { storeDir: dir, batchSize: 2, maxBatches: 2 });
  assert.equal(first.complete, false);
  assert.throws(() => loadStore(dir, { requireComplete: true }), /incomplete \(2 of 5 batches\)/);
  // A crash between writing a shard and recording it leaves an orphan shard and a temp file.
  copyFileSync(join(full, 'shard-000002.safetensors'), join(dir, 'shard-000002.safetensors.tmp-999'));
  const second = await decomposeDataset(model, ds, { storeDir: dir, batchSize: 2 });
  assert.equal(second.skippedBatches, 2);
  assert.equal(second.complete, true);
  assert.deepEqual(storeFiles(dir), storeFiles(full));
  assert.deepEqual(comparableManifest(dir), comparableManifest(full));
  const third = await decomposeDataset(model, ds, { storeDir: dir, batchSize: 2 });
  assert.equal(third.processed, 0);
});

test('kill -9 in the middle of a CLI run, then resume: identical store', { timeout: 180_000 }, async () => {
  const dir = join(root, 'killed');
  const args = [join(REPO, 'bin/cliplens.js'), 'decompose', '--model', TINY_A(), '--dataset', data, '--store', dir, '--batch-size', '1', '--threads', '1'];
  // The child stops itself right after recording its 2nd shard (of 10); then it is killed.
  await killAfterShards(args, 2);
  const partial = readManifest(dir);
  assert.equal(partial.shards.length, 2);
  assert.equal(partial.complete, false);
  assert.equal(await runToEnd(args), 0);
  const reference = join(root, 'killed-ref');
  await decomposeDataset(tinyModel(), loadDataset(data), { storeDir: reference, batchSize: 1 });
  assert.deepEqual(storeFiles(dir), storeFiles(reference));
  assert.deepEqual(comparableManifest(dir), comparableManifest(reference));
});

test('a store made before cliplens kept the CLS→CLS term resumes without it and loads without it', async () => {
  const ds = loadDataset(data);
  const dir = join(root, 'old');
  await decomposeDataset(tinyModel(), ds, { storeDir: dir, batchSize: 2, maxBatches: 1 });
  // What an older cliplens wrote: no cls_attn in the shards, nor in the manifest's tensor list.
  const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  delete m.tensors.cls_attn;
  const shard = m.shards[0].file;
  const t = readSafetensors(join(dir, shard));
  t.delete('cls_attn');
  writeSafetensors(join(dir, shard), Object.fromEntries(t), { metadata: { batch: '0' } });
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
  const res = await decomposeDataset(tinyModel(), ds, { storeDir: dir, batchSize: 2 });
  assert.equal(res.complete, true);
  const s = loadStore(dir);
  assert.equal(s.clsAttn, undefined);
  assert.ok(maxAbsDiff(s.attn.data, loadStore(join(root, 'full')).attn.data) < 1e-6);
  for (const f of Object.keys(storeFiles(dir))) assert.equal(readSafetensors(join(dir, f)).has('cls_attn'), false);
});

test('float16 stores and a layer selection', async () => {
  const ds = loadDataset(data);
  const dir = join(root, 'half');
  await decomposeDataset(tinyModel(), ds, { storeDir: dir, batchSize: 4, half: true, layers: [4, 5] });
  const s = loadStore(dir);
  assert.deepEqual(s.attn.shape.slice(1), [2, 4, 64]);
  const full = loadStore(join(root, 'full'));
  let worst = 0;
  for (let b = 0; b < s.attn.shape[0]; b++) {
    for (let j = 0; j < 2 * 4 * 64; j++) worst = Math.max(worst, Math.abs(s.attn.data[b * 512 + j] - full.attn.data[b * 6 * 4 * 64 + 4 * 4 * 64 + j]));
  }
  assert.ok(worst < 1e-4 && worst > 0, `float16 error ${worst}`);
});

test('CSV datasets with path, label and group columns (Waterbirds layout) and filters', () => {
  const csv = join(root, 'metadata.csv');
  writeFileSync(csv, 'img_id,img_filename,y,split,place\n1,data/red/img0.png,0,0,1\n2,"data/blue/img1.png",1,0,0\n3,data/green/img2.png,1,2,1\n');
  const ds = loadDataset(csv, { filter: [['split', '0']] });
  assert.equal(ds.items.length, 2);
  assert.deepEqual(ds.items.map((i) => [i.label, i.group]), [['0', '1'], ['1', '0']]);
  assert.ok(existsSync(ds.items[1].path));
  writeFileSync(join(root, 'nopath.csv'), 'a,b\n1,2\n');
  assert.throws(() => loadDataset(join(root, 'nopath.csv')), /no image path column .*columns: a, b/);
  mkdirSync(join(root, 'empty'), { recursive: true });
  assert.throws(() => loadDataset(join(root, 'empty')), /has no images/);
  assert.throws(() => loadDataset(join(root, 'missing')), /does not exist/);
});

test('a store made by another model or with other options is refused and left intact', async () => {
  const ds = loadDataset(data);
  const dir = join(root, 'full');
  const before = storeFiles(dir);
  const manifestBefore = readFileSync(join(dir, 'manifest.json'));
  const other = new ClipModel({ name: 'other', config: tinyConfig(), weights: randomClipWeights(tinyConfig(), 99) }, { threads: 1 });
  await assert.rejects(decomposeDataset(other, ds, { storeDir: dir, batchSize: 2 }), /different models: store .* is 'tiny_a' \(fingerprint [0-9a-f]{16}\), this run is 'other'/);
  await assert.rejects(decomposeDataset(tinyModel(), ds, { storeDir: dir, batchSize: 3 }), /different batch size/);
  await assert.rejects(decomposeDataset(tinyModel(), ds, { storeDir: dir, batchSize: 2, layers: [9] }), /layer 9 is out of range/);
  assert.deepEqual(storeFiles(dir), before);
  assert.deepEqual(readFileSync(join(dir, 'manifest.json')), manifestBefore);
});
