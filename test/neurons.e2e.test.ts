// The explorer's neuron view: its API (search by text, a neuron's card with top store images and
// norm distribution, its map on an upload, the upload's concepts, errors) and the page driven in
// headless Chromium (see helpers/browser.ts; CLIPLENS_TEST_SCREENSHOTS=DIR keeps the screenshot).

import './helpers/env.ts';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import sharp from 'sharp';
import { embedPool, writeTextSet } from '../src/analyses/text_sets.ts';
import { loadDataset } from '../src/io/datasets.ts';
import { preprocessFiles } from '../src/model/preprocess_model.ts';
import { describeNeurons } from '../src/neurons/describe.ts';
import { NeuronEffects, neuronVariant } from '../src/neurons/effects.ts';
import { writeDescriptionsFile, writePcaFile } from '../src/neurons/files.ts';
import { neuronEffectsDataset } from '../src/neurons/job.ts';
import { neuronPca } from '../src/neurons/pca.ts';
import { NeuronStore } from '../src/neurons/store.ts';
import { startServer, type RunningServer } from '../src/server/server.ts';
import { makeServeFixture, type ServeFixture } from './helpers/serve_fixture.ts';
import { launchBrowser, SKIP_BROWSER } from './helpers/browser.ts';

const LAYER = 3;
const TEXTS = ['a red circle', 'a blue square', 'a striped background', 'a plain wall', 'something on the left', 'a bright colour', 'a dark image', 'a round shape'];

let fx: ServeFixture;
let srv: RunningServer;
let tmp: string;
let files: { pcs: string; descriptions: string; store: string };
let ctx: BrowserContext | undefined;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'cliplens-neurons-e2e-'));
  fx = await makeServeFixture(tmp);
  const store = join(tmp, 'neuron-store');
  await neuronEffectsDataset(fx.model, loadDataset(join(fx.datasetRoot, 'metadata.csv')), { storeDir: store, layer: LAYER, batchSize: 6 });
  const pca = await neuronPca(NeuronStore.open(store), 5);
  const pcs = join(tmp, 'pca.safetensors');
  writePcaFile(pcs, pca);
  const pool = await embedPool(fx.model, TEXTS);
  writeTextSet(join(tmp, 'texts.safetensors'), pool);
  const desc = describeNeurons(pca.pc.data, pca.pc.shape[0], pool.embeddings.data, TEXTS.length, pca.pc.shape[1], TEXTS, 3);
  const descriptions = join(tmp, 'descriptions.json');
  writeDescriptionsFile(descriptions, desc.descriptions);
  files = { pcs, descriptions, store };
  srv = await startServer({ model: fx.model, neurons: files, port: 0, log: () => {} });
});

after(async () => {
  await ctx?.close();
  await srv?.close();
  await fx?.model.release();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const get = async (path: string) => {
  const r = await fetch(new URL(path, srv.url));
  return { status: r.status, json: (await r.json()) as any };
};
const post = async (path: string, body: unknown) => {
  const r = await fetch(new URL(path, srv.url), { method: 'POST', headers: { 'content-type': body instanceof Buffer ? 'image/png' : 'application/json', 'x-cliplens': '1' }, body: body instanceof Buffer ? body : JSON.stringify(body) });
  return { status: r.status, json: (await r.json()) as any };
};

test('neuron API: search by text, cards from the store, maps and concepts of an upload, errors', async () => {
  const info = await get('/api/info');
  assert.deepEqual(info.json.neurons, { layer: LAYER, neurons: 512, descriptions: true, store: { images: fx.n, hasImages: true } });
  // Ranked by |pc · t| of the query's normalised embedding.
  const s = await post('/api/neurons/search', { q: 'a red circle', k: 5 });
  assert.equal(s.status, 200);
  assert.equal(s.json.neurons.length, 5);
  const scores = s.json.neurons.map((n: { score: number }) => Math.abs(n.score));
  assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
  assert.equal(s.json.neurons[0].texts.length, 3);
  assert.deepEqual((await post('/api/neurons/search', { q: '#7' })).json.neurons.map((n: { neuron: number }) => n.neuron), [7]);
  // A card: its top images are the store rows with the largest centred norms.
  const n = s.json.neurons[0].neuron;
  const card = await get(`/api/neurons/${n}?k=4`);
  assert.equal(card.status, 200);
  assert.equal(card.json.top.length, 4);
  const norms = card.json.top.map((t: { norm: number }) => t.norm);
  assert.deepEqual(norms, [...norms].sort((a, b) => b - a));
  assert.equal(card.json.histogram.counts.reduce((a: number, b: number) => a + b, 0), fx.n);
  const thumb = await fetch(new URL(`/api/neurons/thumb/${card.json.top[0].row}?size=64`, srv.url));
  assert.equal(thumb.headers.get('content-type'), 'image/jpeg');
  assert.equal((await sharp(Buffer.from(await thumb.arrayBuffer())).metadata()).width, 64);
  // Map on an upload: the neuron's post-activation at every patch, and its effect's norm.
  const up = await post('/api/upload', fx.uploads[0]);
  assert.equal(up.status, 200);
  const map = await post(`/api/neurons/${n}/map`, { id: up.json.id });
  assert.equal(map.status, 200);
  const { grid, tokens, hidden } = fx.model.dims();
  assert.equal(map.json.patches.length, grid * grid);
  const pixels = (await preprocessFiles(fx.model.config, [fx.uploads[0]])).pixels;
  const act = (await fx.model.runVision(pixels, [`mlp_post_${LAYER}`], 8, neuronVariant([LAYER])))[`mlp_post_${LAYER}`].data;
  for (let t = 1; t < tokens; t++) assert.ok(Math.abs(map.json.patches[t - 1] - act[t * hidden + n]) < 1e-5);
  const E = await new NeuronEffects(fx.model, LAYER).effects(pixels);
  const pca = (await import('../src/neurons/files.ts')).readPcaFile(files.pcs);
  let nn = 0;
  for (let e = 0; e < 64; e++) nn += (E.data[n * 64 + e] - pca.mean.data[n * 64 + e]) ** 2;
  assert.ok(Math.abs(map.json.norm - Math.sqrt(nn)) < 1e-5);
  const concepts = await post('/api/neurons/concepts', { id: up.json.id });
  assert.equal(concepts.status, 200);
  assert.ok(concepts.json.concepts.length > 0 && concepts.json.concepts.every((c: { text: string }) => TEXTS.includes(c.text)));
  // Errors are JSON with a status, never a crash.
  assert.equal((await get('/api/neurons/512')).status, 400);
  assert.equal((await get('/api/neurons/thumb/999')).status, 400);
  assert.equal((await post(`/api/neurons/${n}/map`, { id: 'nope' })).status, 400);
  assert.equal((await post('/api/neurons/search', { q: '' })).status, 400);
  const plain = await startServer({ model: fx.model, port: 0, log: () => {} });
  try {
    const r = await fetch(new URL('/api/neurons/3', plain.url));
    assert.equal(r.status, 404);
    assert.match(((await r.json()) as { error: string }).error, /--neurons/);
  } finally {
    await plain.close();
  }
});

test('the neuron view works in Chromium: search, card, top images, map on an upload, concepts', { skip: SKIP_BROWSER ? 'CLIPLENS_TEST_SKIP_BROWSER=1' : false, timeout: 240_000 }, async (t) => {
  ctx = await launchBrowser(join(tmp, 'profile'));
  const page = await ctx.newPage();
  page.setDefaultTimeout(30_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && errors.push(`console: ${m.text()}`));
  page.on('response', (r) => r.status() >= 400 && errors.push(`HTTP ${r.status()} for ${r.url()}`));
  await page.goto(`${srv.url}#neurons`);
  await page.waitForSelector('body[data-ready="1"]');
  assert.match((await page.textContent('#model-info')) ?? '', /neurons of MLP 3/);
  await page.fill('#neuron-query', 'a striped background');
  await page.waitForSelector('#neuron-results .neuron-card');
  assert.equal(await page.locator('#neuron-results .neuron-card').count(), 12);
  const first = await page.locator('#neuron-results .neuron-card').first().getAttribute('data-neuron');
  await page.locator('#neuron-results .neuron-card').first().click();
  await page.waitForSelector('#neuron-texts tr');
  assert.equal(await page.locator('#neuron-texts tr').count(), 3);
  await page.waitForSelector('#neuron-hist svg rect');
  await page.waitForFunction(() => {
    const imgs = Array.from(document.querySelectorAll<HTMLImageElement>('#neuron-top img'));
    return imgs.length === 12 && imgs.every((i) => i.complete && i.naturalWidth > 0);
  });
  assert.match((await page.textContent('#neuron-detail h2')) ?? '', new RegExp(`Neuron ${first}`));
  // Upload: the map of the open neuron is drawn and the concepts listed.
  await page.setInputFiles('#neuron-file-input', { name: 'scene.png', mimeType: 'image/png', buffer: fx.uploads[1] });
  await page.waitForFunction(() => /second-order effect/.test(document.getElementById('neuron-map-info')?.textContent ?? ''));
  await page.waitForSelector('#neuron-concepts li');
  const pixels = async () =>
    page.evaluate(() => {
      const c = document.getElementById('neuron-canvas') as HTMLCanvasElement;
      return Array.from(c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data.filter((_, i) => i % 4 === 0 && i % 64 === 0));
    });
  const one = await pixels();
  assert.ok(Math.max(...one) - Math.min(...one) > 30, 'the canvas shows something');
  // Another neuron, another map.
  await page.locator('#neuron-results .neuron-card').nth(1).click();
  await page.waitForFunction((n) => (document.getElementById('neuron-map-info')?.textContent ?? '').startsWith(`neuron ${n}:`), await page.locator('#neuron-results .neuron-card').nth(1).getAttribute('data-neuron'));
  const two = await pixels();
  assert.ok(one.some((v, i) => Math.abs(v - two[i]) > 10), 'the second neuron gives another map');
  assert.equal(await page.locator('#neuron-texts tr').count(), 3, 'the second card replaced the first');
  // By number.
  await page.fill('#neuron-query', '#42');
  await page.waitForSelector('#neuron-results .neuron-card[data-neuron="42"]');
  const shots = process.env.CLIPLENS_TEST_SCREENSHOTS ?? join(tmp, 'screenshots');
  const path = join(shots, 'neurons.png');
  await page.screenshot({ path, fullPage: true });
  const st = await sharp(path).stats();
  assert.ok(st.channels.slice(0, 3).reduce((a, c) => a + c.stdev, 0) / 3 > 15, 'screenshot looks blank');
  assert.deepEqual(errors, [], 'no errors in the page');
  t.diagnostic(`screenshot ${path}`);
});
