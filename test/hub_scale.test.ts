// The hub path on the big models' real layouts: randomly initialised checkpoints with the exact
// files and tensor names of laion/CLIP-ViT-L-14-laion2B-s32B-b82K (open_clip) and
// openai/clip-vit-large-patch14-336 (transformers), at reduced depth so the test stays fast (the
// full-size runs are `npm run bench -- scale`), served from a loopback hub that redirects and
// announces sha256 as the real one does: download with progress → decompose a dataset → heatmap.

import './helpers/env.ts';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadStore } from '../src/io/store.ts';
import { loadClip } from '../src/runtime/load.ts';
import { ClipTokenizer } from '../src/model/tokenizer.ts';
import { f32 } from '../src/tensor.ts';
import { HUB_MODELS, writeHubCheckpoint } from '../tools/hub_checkpoints.ts';
import { startDiskHub, type HubServer } from '../tools/hub_server.ts';
import { REPO, sumInvariant } from './helpers/fixtures.ts';

const root = mkdtempSync(join(tmpdir(), 'cliplens-hubscale-'));
const src = join(root, 'hub');
const cache = join(root, 'cache');
const data = join(root, 'data');
let hub: HubServer;

const L14 = HUB_MODELS.l14.repo;
const L14_336 = HUB_MODELS['l14-336'].repo;

before(async () => {
  writeHubCheckpoint(HUB_MODELS.l14, src, { seed: 3, visionLayers: 2, textLayers: 1 });
  writeHubCheckpoint(HUB_MODELS['l14-336'], src, { seed: 4, visionLayers: 1, textLayers: 1 });
  hub = await startDiskHub(src);
  mkdirSync(data);
  for (let i = 0; i < 3; i++) {
    await sharp({ create: { width: 250 + 20 * i, height: 230, channels: 3, background: { r: 40 + 60 * i, g: 120, b: 200 - 50 * i } } })
      .composite([{ input: { create: { width: 80, height: 60, channels: 3, background: { r: 250, g: 250 - 80 * i, b: 10 } } }, left: 30 + 40 * i, top: 50 }])
      .png()
      .toFile(join(data, `scene${i}.png`));
  }
});
after(async () => {
  await hub.close();
  rmSync(root, { recursive: true, force: true });
});

/** The CLI in a child process; asynchronous, so the hub in this process keeps answering. */
function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(REPO, 'bin/cliplens.js'), ...args], {
      env: { ...process.env, CLIPLENS_THREADS: '2', CLIPLENS_HUB_ENDPOINT: hub.endpoint, CLIPLENS_CACHE: cache, CLIPLENS_OFFLINE: '' },
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b) => (stdout += b));
    p.stderr.on('data', (b) => (stderr += b));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('the repos carry the hub files users download', () => {
  assert.deepEqual(readdirSync(join(src, L14)).filter((f) => !f.startsWith('.')).sort(), [
    'merges.txt', 'open_clip_config.json', 'open_clip_model.safetensors', 'preprocessor_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.json',
  ]);
  assert.deepEqual(readdirSync(join(src, L14_336)).filter((f) => !f.startsWith('.')).sort(), [
    'config.json', 'merges.txt', 'model.safetensors', 'preprocessor_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.json',
  ]);
});

test('open_clip ViT-L-14 layout from the hub: download with progress, decompose a dataset (external-data graph), heatmap offline', async () => {
  const store = join(root, 'store');
  const r = await cli('decompose', '--model', `hf-hub:${L14}`, '--dataset', data, '--store', store, '--batch-size', '2');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`downloading ${L14}/open_clip_model\\.safetensors \\(\\d+\\.\\d MiB\\)`));
  assert.ok(existsSync(join(cache, L14.replace('/', '--'), 'main', 'open_clip_model.safetensors')));
  // Every LFS file was fetched through the redirect, its sha256 checked against the announced one.
  assert.ok(hub.requests.some((q) => q.url.startsWith('/cdn/') && q.file === 'open_clip_model.safetensors'));

  const s = loadStore(store, { requireComplete: true });
  assert.deepEqual(s.manifest.dims, { L: 2, H: 16, N: 257, D: 1024, d: 768 });
  assert.equal(s.manifest.items.length, 3);
  // Normalised terms sum to z/‖z‖.
  const unit = f32(s.imageFeatures.shape, s.imageFeatures.data.map((v, i) => v / s.norm.data[Math.floor(i / 768)]));
  assert.ok(sumInvariant(s.attn, s.mlp, unit.data) < 1e-4);

  const before = hub.requests.length;
  const h = await cli('heatmap', '--model', `hf-hub:${L14}`, '--offline', '--text', 'a yellow square', join(data, 'scene1.png'), '--json');
  assert.equal(h.code, 0, h.stderr);
  assert.equal(hub.requests.length, before, 'offline run touched the hub');
  const out = JSON.parse(h.stdout) as { grid: number; tokens: number; maps: { text: string; map: number[] }[] };
  assert.equal(out.grid, 16);
  assert.equal(out.maps[0].map.length, 257);
  assert.ok(out.maps[0].map.every(Number.isFinite));
});

test('transformers ViT-L/14-336 layout from the hub: config, preprocessor, tokenizer files and weights resolve', async () => {
  const model = await loadClip(L14_336, { endpoint: hub.endpoint, cacheDir: cache, threads: 2 });
  try {
    assert.equal(model.config.vision.imageSize, 336);
    assert.equal(model.config.activation, 'quick_gelu');
    assert.deepEqual(model.dims(), { L: 1, H: 16, D: 1024, d: 768, grid: 24, tokens: 577, clsToken: true, headWidth: 64, hidden: 4096 });
    // vocab.json + merges.txt written from the bundled BPE tokenise exactly as the bundled tokenizer.
    const texts = ['a photo of a dog.', 'ÜNÏCÖDÉ 42 things'];
    assert.deepEqual(Array.from(model.tokenize(texts)), Array.from(ClipTokenizer.default().tokenize(texts)));
    const px = f32([1, 3, 336, 336]);
    px.data.forEach((_, i) => (px.data[i] = Math.sin(i / 977)));
    const z = await model.encodeImages(px);
    assert.deepEqual(z.shape, [1, 768]);
    assert.ok(z.data.every(Number.isFinite));
  } finally {
    await model.release();
  }
});
