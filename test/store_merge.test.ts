// Many machines: decompose --shard K/N writes one slice of a dataset into its own store, and
// `cliplens store merge` joins the slices into the store a single run writes — same files byte for
// byte, same manifest — or refuses, in one line, stores that do not fit together.

import './helpers/env.ts';
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { writeSafetensors } from '../src/io/safetensors.ts';
import { loadStore, readManifest } from '../src/io/store.ts';
import { randomClipWeights } from './helpers/random_weights.ts';
import { REPO, TINY_A, referencePath, tinyConfig } from './helpers/fixtures.ts';

const root = mkdtempSync(join(tmpdir(), 'cliplens-merge-'));
const data = join(root, 'data');
const BIN = join(REPO, 'bin/cliplens.js');
const ENV = { ...process.env, CLIPLENS_THREADS: '1', CLIPLENS_OFFLINE: '1' };
const common = ['--dataset', data, '--batch-size', '2'];

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: ENV });
  return { code: r.status, stderr: r.stderr };
}

function cliAsync(...args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: ENV });
    let stderr = '';
    p.stderr.on('data', (b) => (stderr += b));
    p.on('close', (code) => resolve({ code, stderr }));
  });
}

function assertOneLineError(r: { code: number | null; stderr: string }, re: RegExp) {
  assert.notEqual(r.code, 0);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0], /^cliplens: error: /);
  assert.match(lines[0], re);
}

const shardDir = (k: number) => join(root, `shard-${k}`);

before(async () => {
  // 13 images (one unreadable) in batches of 2: 7 batches, so 4 shards get 1, 2, 2 and 2 batches.
  for (const [k, cls] of ['red', 'blue', 'green'].entries()) {
    mkdirSync(join(data, cls), { recursive: true });
    for (let i = 0; i < 4; i++) {
      const rgb = Buffer.alloc(36 * 28 * 3);
      for (let p = 0; p < 36 * 28; p++) {
        rgb[p * 3 + k] = 100 + ((p * (i + 2)) % 150);
        rgb[p * 3 + ((k + 2) % 3)] = (p * 5 + i * 31) % 70;
      }
      await sharp(rgb, { raw: { width: 36, height: 28, channels: 3 } }).png().toFile(join(data, cls, `img${i}.png`));
    }
  }
  writeFileSync(join(data, 'green', 'broken.png'), Buffer.from('not a png at all'));

  const single = cli('decompose', '--model', TINY_A(), ...common, '--store', join(root, 'single'));
  assert.equal(single.code, 0, single.stderr);
  // Four processes at once, as four machines of a job array would run.
  const runs = await Promise.all([0, 1, 2, 3].map((k) => cliAsync('decompose', '--model', TINY_A(), ...common, '--shard', `${k}/4`, '--store', shardDir(k))));
  for (const r of runs) assert.equal(r.code, 0, r.stderr);
});

function safetensorsFiles(dir: string): Record<string, Buffer> {
  return Object.fromEntries(readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort().map((f) => [f, readFileSync(join(dir, f))]));
}

test('each shard store holds its own contiguous slice of the batches', () => {
  const slices = [0, 1, 2, 3].map((k) => readManifest(shardDir(k)));
  assert.deepEqual(slices.map((m) => m.shard), [
    { index: 0, count: 4, batches: [0, 1] },
    { index: 1, count: 4, batches: [1, 3] },
    { index: 2, count: 4, batches: [3, 5] },
    { index: 3, count: 4, batches: [5, 7] },
  ]);
  for (const m of slices) {
    assert.equal(m.complete, true);
    assert.deepEqual(m.shards.map((s) => s.batch), Array.from({ length: m.shard!.batches[1] - m.shard!.batches[0] }, (_, i) => m.shard!.batches[0] + i));
  }
  // An analysis refuses one slice as if it were the dataset.
  assert.throws(() => loadStore(shardDir(1), { requireComplete: true }), /shard 1\/4 .*store merge/);
});

test('four shards merged equal one run: same shard files byte for byte, same manifest, same tensors', () => {
  const out = join(root, 'merged');
  const r = cli('store', 'merge', shardDir(2), shardDir(0), shardDir(3), shardDir(1), '--out', out);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /merged 4 stores .* 13 inputs in 7 batches, 1 unreadable/);
  const single = join(root, 'single');
  assert.deepEqual(readManifest(out), readManifest(single));
  assert.deepEqual(safetensorsFiles(out), safetensorsFiles(single));
  const a = loadStore(out, { requireComplete: true });
  const b = loadStore(single, { requireComplete: true });
  for (const k of ['attn', 'mlp', 'imageFeatures', 'norm'] as const) assert.deepEqual(a[k], b[k], k);
  assert.deepEqual(a.index, b.index);
  assert.equal(a.manifest.failed.length, 1);
  assert.match(a.manifest.failed[0].id, /broken\.png/);
});

test('merge refuses overlapping shards, a missing shard, another model, an unfinished shard and an existing store, each in one line', () => {
  const again = join(root, 'shard-1-again');
  cpSync(shardDir(1), again, { recursive: true });
  assertOneLineError(cli('store', 'merge', shardDir(0), shardDir(1), again, shardDir(2), shardDir(3), '--out', join(root, 'x1')), /overlap \(both hold batch 1\)/);
  assertOneLineError(cli('store', 'merge', shardDir(0), shardDir(1), shardDir(3), '--out', join(root, 'x2')), /no store holds batches 3-4 of 0-6; a shard is missing/);

  // Shard 2 decomposed by a different model (same architecture, other weights).
  const other = join(root, 'other.safetensors');
  const w = randomClipWeights(tinyConfig(), 99);
  writeSafetensors(other, Object.fromEntries(w.names().map((n) => [n, w.get(n)])));
  writeFileSync(join(root, 'other.json'), readFileSync(referencePath('tiny_a.json')));
  const foreign = join(root, 'shard-2-other');
  const r = cli('decompose', '--model', other, ...common, '--shard', '2/4', '--store', foreign);
  assert.equal(r.code, 0, r.stderr);
  assertOneLineError(cli('store', 'merge', shardDir(0), shardDir(1), foreign, shardDir(3), '--out', join(root, 'x3')), /store .*shard-2-other was made by model 'other' \(fingerprint \w+\) but .*shard-0 by 'tiny_a'/);

  // Other layers kept.
  const layers = join(root, 'shard-3-layers');
  assert.equal(cli('decompose', '--model', TINY_A(), ...common, '--shard', '3/4', '--layers', 'last:1', '--store', layers).code, 0);
  assertOneLineError(cli('store', 'merge', shardDir(0), shardDir(1), shardDir(2), layers, '--out', join(root, 'x4')), /has layers \[\d+\] but .* has \[0,1/);

  // An unfinished shard: its manifest lists one batch fewer.
  const partial = join(root, 'shard-3-partial');
  cpSync(shardDir(3), partial, { recursive: true });
  const m = readManifest(partial);
  m.shards.pop();
  m.complete = false;
  writeFileSync(join(partial, 'manifest.json'), JSON.stringify(m));
  assertOneLineError(cli('store', 'merge', shardDir(0), shardDir(1), shardDir(2), partial, '--out', join(root, 'x5')), /shard 3\/4\) is incomplete \(1 of 2 batches\)/);

  assertOneLineError(cli('store', 'merge', shardDir(0), shardDir(1), shardDir(2), shardDir(3), '--out', join(root, 'single')), /already a store/);
  assertOneLineError(cli('decompose', '--model', TINY_A(), ...common, '--shard', '4/4', '--store', join(root, 'x6')), /--shard '4\/4': use K\/N with 0 ≤ K < N/);
  // A shard store resumed with another slice is refused rather than mixed.
  const resumed = cli('decompose', '--model', TINY_A(), ...common, '--shard', '1/4', '--store', shardDir(0));
  assert.notEqual(resumed.code, 0);
  assert.match(resumed.stderr.trim().split('\n').pop()!, /^cliplens: error: store .*shard-0 was made with shard 0\/4, not shard 1\/4/);
});
