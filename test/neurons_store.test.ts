// Neuron stores (factored second-order effects of a dataset) and the `cliplens neurons` commands:
// exact rebuild, export, resume after interruption and kill -9, provenance refusals, the CLI
// contract (effects → pca → describe) against the reference's fixtures.

import './helpers/env.ts';
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decomposeDataset } from '../src/decompose/dataset_job.ts';
import { loadDataset } from '../src/io/datasets.ts';
import { readSafetensors, SafetensorsFile, writeSafetensors } from '../src/io/safetensors.ts';
import { loadStore, readManifest } from '../src/io/store.ts';
import { ClipModel } from '../src/runtime/clip.ts';
import { preprocessFiles } from '../src/model/preprocess_model.ts';
import { randomClipWeights } from './helpers/random_weights.ts';
import { NeuronEffects } from '../src/neurons/effects.ts';
import { neuronEffectsDataset } from '../src/neurons/job.ts';
import { neuronPca } from '../src/neurons/pca.ts';
import { exportEffects, NeuronStore, openEffectsFile } from '../src/neurons/store.ts';
import { f32, maxAbsDiff } from '../src/tensor.ts';
import { REPO, TINY_A, fixturePath, referencePath, tinyConfig, tinyModel } from './helpers/fixtures.ts';
import { killAfterShards, runToEnd } from './helpers/processes.ts';

const root = mkdtempSync(join(tmpdir(), 'cliplens-neurons-'));
const data = join(root, 'data');
const IMAGES = ['catdog.png', 'cell.png', 'coins.png', 'rocket.jpg']; // fixture images 0..3
const LAYER = 3;

before(() => {
  // Two classes, the reference images (the fixture's first four) and one unreadable file.
  for (const [i, name] of IMAGES.entries()) {
    const dir = join(data, i < 2 ? 'a' : 'b');
    mkdirSync(dir, { recursive: true });
    copyFileSync(referencePath(`images/${name}`), join(dir, name));
  }
  writeFileSync(join(data, 'b', 'zz_broken.png'), 'not a png');
});

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(REPO, 'bin/cliplens.js'), ...args], { encoding: 'utf8', env: { ...process.env, CLIPLENS_THREADS: '2' }, maxBuffer: 1 << 26 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function storeFiles(dir: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const f of readdirSync(dir).sort()) if (f.endsWith('.safetensors')) out[f] = readFileSync(join(dir, f));
  return out;
}

const comparableManifest = (dir: string) => ({ ...readManifest(dir), dataset: { ...readManifest(dir).dataset, root: '' } });

test('a neuron store holds the factored effects: rebuilt exactly, equal to the reference, exported for Python', async () => {
  const model = tinyModel();
  const ds = loadDataset(data);
  const dir = join(root, 'full');
  const res = await neuronEffectsDataset(model, ds, { storeDir: dir, layer: LAYER, batchSize: 2 });
  assert.equal(res.complete, true);
  assert.equal(res.failed.length, 1);
  assert.match(res.failed[0].error, /zz_broken\.png/);
  const s = NeuronStore.open(dir, { requireComplete: true });
  assert.equal(s.B, 4);
  assert.deepEqual([s.M, s.d, s.layer], [512, 64, LAYER]);
  assert.deepEqual(s.params.heads.length, 8);
  // One scalar per neuron and later head per image, plus one offset per head: never [B, M, d].
  const shard = SafetensorsFile.open(join(dir, 'shard-000000.safetensors'));
  assert.deepEqual(shard.tensors.get('coef')!.shape, [2, 8, 512]);
  assert.deepEqual(shard.tensors.get('offset')!.shape, [2, 8, 64]);
  shard.close();
  // Rebuilt rows equal the batch computation exactly, and the reference's array to 1e-5.
  const rows = await s.read(0, 4);
  const paths = [...s.index].map((i) => ds.items[i].path);
  const direct = await new NeuronEffects(model, LAYER).effects((await preprocessFiles(model.config, paths)).pixels, 2);
  assert.deepEqual(rows, direct.data);
  const ref = readSafetensors(fixturePath(`second_order/second_order_l${LAYER}.safetensors`)).get('second_order')!.data as Float32Array;
  assert.ok(maxAbsDiff(rows, ref.subarray(0, rows.length)) < 1e-5);
  // A block of neurons alone is the same numbers.
  assert.deepEqual(await s.read(1, 2, 100, 110), Float32Array.from([1, 2].flatMap((b) => Array.from(rows.subarray((b * 512 + 100) * 64, (b * 512 + 110) * 64)))));
  // Full tensor for Python, streamed image by image, read back through the same source interface.
  const out = join(root, 'export.safetensors');
  await exportEffects(s, out, { imageFeatures: s.imageFeatures() });
  const e = openEffectsFile(out);
  assert.deepEqual(await e.read(0, 4), rows);
  assert.deepEqual(e.provenance, s.provenance);
  e.close?.();
  // PCA streamed from the store = PCA of the dense tensor.
  const p1 = await neuronPca(s, 3);
  const p2 = await neuronPca(openEffectsFile(out), 3);
  assert.deepEqual(p1.pc.data, p2.pc.data);
  // Every shard is checked when the store is opened: a truncated one is named.
  const damaged = join(root, 'damaged');
  mkdirSync(damaged);
  for (const f of readdirSync(dir)) copyFileSync(join(dir, f), join(damaged, f));
  writeFileSync(join(damaged, 'shard-000001.safetensors'), readFileSync(join(dir, 'shard-000001.safetensors')).subarray(0, 100));
  assert.throws(() => NeuronStore.open(damaged), /shard shard-000001\.safetensors \(batch 1\) is 100 bytes but was written as \d+/);
  // A decomposition store is not a neuron store, and the reverse.
  await decomposeDataset(model, ds, { storeDir: join(root, 'decomp'), batchSize: 4 });
  assert.throws(() => NeuronStore.open(join(root, 'decomp')), /is a decomposition store, not a neuron store/);
  assert.throws(() => loadStore(dir), /is a neurons store, not a decomposition store/);
});

test('an interrupted neuron run resumes to exactly the uninterrupted store; other models and options are refused', async () => {
  const ds = loadDataset(data);
  const dir = join(root, 'resumed');
  const first = await neuronEffectsDataset(tinyModel(), ds, { storeDir: dir, layer: LAYER, batchSize: 2, maxBatches: 1 });
  assert.equal(first.complete, false);
  assert.throws(() => NeuronStore.open(dir, { requireComplete: true }), /incomplete \(1 of 3 batches\)/);
  const second = await neuronEffectsDataset(tinyModel(), ds, { storeDir: dir, layer: LAYER, batchSize: 2 });
  assert.equal(second.skippedBatches, 1);
  assert.deepEqual(storeFiles(dir), storeFiles(join(root, 'full')));
  assert.deepEqual(comparableManifest(dir), comparableManifest(join(root, 'full')));
  const before = storeFiles(dir);
  const other = new ClipModel({ name: 'other', config: tinyConfig(), weights: randomClipWeights(tinyConfig(), 99) }, { threads: 1 });
  await assert.rejects(neuronEffectsDataset(other, ds, { storeDir: dir, layer: LAYER, batchSize: 2 }), /different models: store .* is 'tiny_a' .*, this run is 'other'/);
  await assert.rejects(neuronEffectsDataset(tinyModel(), ds, { storeDir: dir, layer: 4, batchSize: 2 }), /different parameters/);
  await assert.rejects(neuronEffectsDataset(tinyModel(), ds, { storeDir: dir, layer: 5, batchSize: 2 }), /MLP block 5 has no second-order effect/);
  assert.deepEqual(storeFiles(dir), before);
});

test('kill -9 in the middle of `cliplens neurons effects --dataset`, then resume: identical store', async () => {
  const dir = join(root, 'killed');
  const args = [join(REPO, 'bin/cliplens.js'), 'neurons', 'effects', '--model', TINY_A(), '--layer', String(LAYER), '--dataset', data, '--store', dir, '--batch-size', '1', '--threads', '1'];
  // The child stops itself right after recording its 2nd shard (of 5); then it is killed.
  await killAfterShards(args, 2);
  const partial = readManifest(dir);
  assert.equal(partial.shards.length, 2);
  assert.equal(partial.complete, false);
  assert.equal(await runToEnd(args), 0);
  const reference = join(root, 'killed-ref');
  await neuronEffectsDataset(tinyModel(), loadDataset(data), { storeDir: reference, layer: LAYER, batchSize: 1 });
  assert.deepEqual(storeFiles(dir), storeFiles(reference));
  assert.deepEqual(comparableManifest(dir), comparableManifest(reference));
});

test('CLI contract: neurons effects → pca → describe reproduce the reference; artifacts of two models are refused', () => {
  const F = 'test/fixtures/second_order';
  const e = join(root, 'e4.safetensors'), p = join(root, 'p4.safetensors');
  let r = cli(['neurons', 'effects', '--model', TINY_A(), '--layer', '4', '--pixels', fixturePath('second_order/inputs.safetensors'), '--out', e]);
  assert.equal(r.status, 0, r.stderr);
  const ref = readSafetensors(fixturePath('second_order/second_order_l4.safetensors'));
  const mine = readSafetensors(e);
  assert.equal(mine.get('second_order')!.dtype, 'F32');
  assert.deepEqual(mine.get('second_order')!.shape, [12, 512, 64]);
  assert.ok(maxAbsDiff(mine.get('second_order')!.data as Float32Array, ref.get('second_order')!.data as Float32Array) < 1e-5);
  r = cli(['neurons', 'pca', '--effects', e, '--top-k', '7', '--out', p]);
  assert.equal(r.status, 0, r.stderr);
  const pca = readSafetensors(p);
  assert.ok(maxAbsDiff(pca.get('pc')!.data as Float32Array, ref.get('pca_top7')!.data as Float32Array) < 1e-5);
  assert.deepEqual(pca.get('norms')!.shape, [512, 7]);
  assert.ok(maxAbsDiff(pca.get('norms')!.data as Float32Array, ref.get('norms_top7')!.data as Float32Array) < 1e-5);
  // The reference's own text features (×100, unnamed), named by its text file.
  const manifest = JSON.parse(readFileSync(fixturePath('second_order/manifest.json'), 'utf8'));
  const lines = join(root, 'google300.txt');
  writeFileSync(lines, manifest.text_pool.lines.map((l: string) => `${l}\n`).join(''));
  r = cli(['neurons', 'describe', '--pcs', p, '--texts', `${F}/text.safetensors`, '--lines', lines, '--components', '8', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout) as Record<string, [number, number, string][]>;
  const want = JSON.parse(readFileSync(fixturePath('second_order/decomposition_l4.json'), 'utf8')) as Record<string, [number, number, string][]>;
  assert.deepEqual(Object.keys(got), Object.keys(want));
  for (const n of Object.keys(want)) {
    assert.deepEqual(got[n].map((x) => [x[0], x[2]]), want[n].map((x) => [x[0], x[2]]));
    assert.ok(maxAbsDiff(got[n].map((x) => x[1]), want[n].map((x) => x[1])) < 1e-5);
  }
  // Texts named in the file's metadata (one a line) instead of --lines: the same output.
  const named = join(root, 'named_texts.safetensors');
  writeSafetensors(named, { text_features: f32([300, 64], readSafetensors(fixturePath('second_order/text.safetensors')).get('text_features')!.data as Float32Array) }, { metadata: { texts: manifest.text_pool.lines.join('\n') } });
  r = cli(['neurons', 'describe', '--pcs', p, '--texts', named, '--components', '8', '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), got);
  // Unnamed texts without --lines: the same picks, each named by its row, and a warning saying so.
  r = cli(['neurons', 'describe', '--pcs', p, '--texts', `${F}/text.safetensors`, '--components', '8', '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /does not name its texts; they are listed by row/);
  const byRow = JSON.parse(r.stdout) as typeof got;
  for (const n of Object.keys(got)) assert.deepEqual(byRow[n].map((x) => x[2]), got[n].map((x) => `text ${manifest.text_pool.lines.indexOf(x[2])}`));
  // Text features of another model are refused with one line naming both.
  const foreign = join(root, 'foreign_texts.safetensors');
  writeSafetensors(foreign, { text_features: f32([300, 64], readSafetensors(fixturePath('second_order/text.safetensors')).get('text_features')!.data as Float32Array) }, { metadata: { model: 'other', model_fingerprint: '0123456789abcdef' } });
  r = cli(['neurons', 'describe', '--pcs', p, '--texts', foreign, '--components', '8', '--json']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^cliplens: error: different models: --pcs .* is 'tiny_a' \(fingerprint [0-9a-f]{16}\), --texts .* is 'other' \(fingerprint 0123456789abcdef\)/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  // Bad flags: one line each.
  for (const [args, pattern] of [
    [['neurons', 'effects', '--model', TINY_A(), '--layer', '5', '--pixels', fixturePath('second_order/inputs.safetensors'), '--out', e], /MLP block 5 has no second-order effect/],
    [['neurons', 'effects', '--model', TINY_A(), '--pixels', fixturePath('second_order/inputs.safetensors'), '--out', e], /--layer L is required/],
    [['neurons', 'effects', '--model', fixturePath('siglip/tiny_siglip_a'), '--layer', '0', '--pixels', fixturePath('second_order/inputs.safetensors'), '--out', e], /defined for CLIP .* tiny_siglip_a is SigLIP/],
    [['neurons', 'pca', '--effects', p, '--top-k', '7', '--out', p], /has no 'second_order' tensor/],
    [['neurons', 'describe', '--pcs', p, '--texts', `${F}/text.safetensors`, '--components', '301', '--json'], /more than the 300 texts/],
  ] as [string[], RegExp][]) {
    r = cli(args);
    assert.equal(r.status, 1, args.join(' '));
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split('\n').filter((l) => l.startsWith('cliplens: error')).length, 1);
  }
});

test('the analysis commands on a neuron store: pca, describe, ablate, concepts, report, segment, export', async () => {
  const dir = join(root, 'full');
  const cls = join(root, 'classes.txt');
  writeFileSync(cls, 'a\nb\n');
  const pool = join(root, 'pool.txt');
  writeFileSync(pool, 'a cat\na coin\na rocket\na cell\nred\nround\nmetal\nblue\n');
  const run = (args: string[]) => {
    const r = cli(args);
    assert.equal(r.status, 0, `${args.slice(0, 2).join(' ')}: ${r.stderr}`);
    return r;
  };
  run(['texts', '--model', TINY_A(), '--classes', cls, '--out', join(root, 'cls.safetensors')]);
  run(['texts', '--model', TINY_A(), '--file', pool, '--out', join(root, 'pool.safetensors')]);
  run(['neurons', 'pca', '--store', dir, '--top-k', '3', '--out', join(root, 'pca.safetensors')]);
  run(['neurons', 'describe', '--pcs', join(root, 'pca.safetensors'), '--texts', join(root, 'pool.safetensors'), '--components', '3', '--out', join(root, 'desc.json')]);
  const desc = JSON.parse(readFileSync(join(root, 'desc.json'), 'utf8'));
  assert.equal(Object.keys(desc).length, 512);
  assert.ok(desc['0'].every((e: [number, number, string]) => e.length === 3 && typeof e[2] === 'string' && e[2].length > 0));
  // Ablation through the CLI = the library on the same store.
  const abl = JSON.parse(run(['neurons', 'ablate', '--pcs', join(root, 'pca.safetensors'), '--store', dir, '--classifier', join(root, 'cls.safetensors'), '--descriptions', join(root, 'desc.json'), '--texts', join(root, 'pool.safetensors'), '--json']).stdout);
  const { neuronAblation } = await import('../src/neurons/ablation.ts');
  const { readPcaFile } = await import('../src/neurons/files.ts');
  const { readTextSet } = await import('../src/analyses/text_sets.ts');
  const s = NeuronStore.open(dir);
  const lib = await neuronAblation(s, readPcaFile(join(root, 'pca.safetensors')), readTextSet(join(root, 'cls.safetensors')).embeddings, [0, 0, 1, 1]);
  assert.deepEqual(abl.accuracy.slice(0, 5), lib.accuracy);
  assert.equal(abl.rows.length, 6);
  const concepts = JSON.parse(run(['neurons', 'concepts', '--pcs', join(root, 'pca.safetensors'), '--descriptions', join(root, 'desc.json'), '--store', dir, '--rows', '1', '--top', '3', '--json']).stdout);
  assert.equal(concepts.length, 1);
  assert.equal(concepts[0].id, 'a/cell.png');
  assert.equal(concepts[0].concepts.concepts.length, 3);
  // The same image given as a file: the same concepts.
  const fromFile = JSON.parse(run(['neurons', 'concepts', '--model', TINY_A(), '--pcs', join(root, 'pca.safetensors'), '--descriptions', join(root, 'desc.json'), '--top', '3', '--json', join(data, 'a', 'cell.png')]).stdout);
  assert.deepEqual(fromFile[0].concepts, concepts[0].concepts);
  run(['neurons', 'report', '--store', dir, '--pcs', join(root, 'pca.safetensors'), '--descriptions', join(root, 'desc.json'), '--texts', join(root, 'pool.safetensors'), '--neurons', '0,7', '--top', '3', '--out', join(root, 'report')]);
  const md = readFileSync(join(root, 'report', 'report.md'), 'utf8');
  assert.match(md, /## Neuron 0[\s\S]*## Neuron 7/);
  assert.match(md, /cosine 0\.\d+/);
  assert.ok(existsSync(join(root, 'report', 'figures', 'neuron_7_top.png')));
  const seg = JSON.parse(run(['neurons', 'segment', '--model', TINY_A(), '--pcs', join(root, 'pca.safetensors'), '--classifier', join(root, 'cls.safetensors'), '--top-neurons', '20', '--json', join(data, 'a', 'catdog.png')]).stdout);
  assert.deepEqual(seg.layers, [LAYER]);
  assert.ok(['a', 'b'].includes(seg.images[0].target));
  run(['neurons', 'export', '--store', dir, '--out', join(root, 'cli-export.safetensors')]);
  assert.deepEqual(await openEffectsFile(join(root, 'cli-export.safetensors')).read(0, 4), await s.read(0, 4));
});
