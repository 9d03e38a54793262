// The explorer page driven in headless Chromium (Debian's /usr/bin/chromium, which .ci/run
// installs; CLIPLENS_TEST_CHROMIUM overrides the path): upload, heatmap, head catalogue, retrieval,
// ablation; screenshots must not be blank (CLIPLENS_TEST_SCREENSHOTS=DIR keeps them).

import './helpers/env.ts';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import sharp from 'sharp';
import { startServer, type RunningServer } from '../src/server/server.ts';
import { makeServeFixture, type ServeFixture } from './helpers/serve_fixture.ts';
import { launchBrowser, SKIP_BROWSER } from './helpers/browser.ts';

const SKIP = SKIP_BROWSER;

let fx: ServeFixture;
let srv: RunningServer;
let tmp: string;
let shots: string;
let ctx: BrowserContext | undefined;

before(async () => {
  if (SKIP) return;
  tmp = mkdtempSync(join(tmpdir(), 'cliplens-e2e-'));
  shots = process.env.CLIPLENS_TEST_SCREENSHOTS ?? join(tmp, 'screenshots');
  fx = await makeServeFixture(tmp);
  srv = await startServer({ model: fx.model, store: fx.storeDir, textspan: fx.textspanFile, port: 0, log: () => {} });
  ctx = await launchBrowser(join(tmp, 'profile'));
});

after(async () => {
  await ctx?.close();
  await srv?.close();
  await fx?.model.release();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Nothing spinning any more. */
async function idle(page: Page): Promise<void> {
  await page.waitForFunction(() => !document.querySelector('[data-busy]'), undefined, { timeout: 30_000 });
}

/** The heatmap canvas, downsampled to 28×28 RGB means in the page. */
async function canvasPixels(page: Page): Promise<number[]> {
  return page.evaluate(() => {
    const c = document.getElementById('heatmap') as HTMLCanvasElement;
    const { data, width, height } = c.getContext('2d')!.getImageData(0, 0, c.width, c.height);
    const g = 28;
    const out = new Array(g * g * 3).fill(0);
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const o = ((Math.floor((y * g) / height) * g + Math.floor((x * g) / width)) * 3) as number;
        for (let ch = 0; ch < 3; ch++) out[o + ch] += data[(y * width + x) * 4 + ch];
      }
    const per = (width / g) * (height / g);
    return out.map((v) => v / per);
  });
}

const meanAbsDiff = (a: number[], b: number[]) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

async function screenshot(page: Page, name: string): Promise<void> {
  const path = join(shots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  const st = await sharp(path).stats();
  const spread = st.channels.slice(0, 3).reduce((s, c) => s + c.stdev, 0) / 3;
  assert.ok(spread > 15, `${name} screenshot looks blank (pixel stdev ${spread.toFixed(1)})`);
  const { width, height } = await sharp(path).metadata();
  assert.ok((width ?? 0) >= 1000 && (height ?? 0) >= 400, `${name} screenshot is ${width}×${height}`);
}

test('the explorer page works end to end in Chromium', { skip: SKIP ? 'CLIPLENS_TEST_SKIP_BROWSER=1' : false, timeout: 240_000 }, async (t) => {
  const page = await ctx!.newPage();
  page.setDefaultTimeout(30_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && errors.push(`console: ${m.text()}`));
  page.on('response', (r) => r.status() >= 400 && errors.push(`HTTP ${r.status()} for ${r.url()}`));
  await page.goto(srv.url);
  await page.waitForSelector('body[data-ready="1"]');
  assert.match(await page.textContent('#model-info') ?? '', /tiny_a.*6 layers × 4 heads/);

  // 1. Image view: upload, heatmap appears and changes with the texts.
  await page.setInputFiles('#file-input', { name: 'scene.png', mimeType: 'image/png', buffer: fx.uploads[0] });
  await page.waitForSelector('.colorbar:not([hidden])');
  await page.waitForSelector('#layer-chart svg rect');
  await idle(page);
  assert.ok(await page.isHidden('#drop'), 'the drop zone gives way to the canvas');
  assert.ok(await page.isVisible('#heatmap'));
  const before = await canvasPixels(page);
  assert.ok(Math.max(...before) - Math.min(...before) > 30, 'the canvas shows something');
  assert.equal(await page.locator('#similarity > span').count(), 4); // 2 texts × (name, value)
  await page.fill('#texts', 'a striped background\na green circle on the left');
  await page.click('#apply-texts');
  await page.waitForFunction(() => document.querySelector('#map-select option')?.textContent === 'a striped background');
  await idle(page);
  const afterTexts = await canvasPixels(page);
  assert.ok(meanAbsDiff(before, afterTexts) > 1, `heatmap did not change with the texts (Δ ${meanAbsDiff(before, afterTexts)})`);
  await page.selectOption('#map-select', 'd0-1');
  const diff = await canvasPixels(page);
  assert.ok(meanAbsDiff(afterTexts, diff) > 1, 'the difference map differs from the single-text map');
  await page.selectOption('#layer-select', '5');
  await idle(page);
  await page.selectOption('#head-select', '1');
  await idle(page);
  const oneHead = await canvasPixels(page);
  assert.ok(meanAbsDiff(diff, oneHead) > 0.5, 'a single head gives another map');
  await page.selectOption('#contrib-mode', 'p0');
  assert.ok((await page.locator('#head-matrix td').count()) >= 16);
  await screenshot(page, '1-image');

  // 2. Head catalogue: filter, open a card, its top images load.
  await page.click('[data-tab=heads]');
  await page.waitForSelector('.head-card');
  assert.equal(await page.locator('.head-card').count(), 8);
  await page.fill('#head-filter', 'colour');
  await page.waitForFunction(() => {
    const n = document.querySelectorAll('.head-card').length;
    return n > 0 && n < 8;
  });
  for (const txt of await page.locator('.head-card ol').allTextContents()) assert.match(txt, /colour/);
  const card = page.locator('.head-card').first();
  await card.locator('[data-action=top]').click();
  await page.waitForFunction(() => {
    const imgs = Array.from(document.querySelectorAll<HTMLImageElement>('.head-card.open .thumb img'));
    return imgs.length === 8 && imgs.every((i) => i.complete && i.naturalWidth > 0);
  });
  await screenshot(page, '2-heads');

  // 3. Retrieval: pick a store image; by-head and whole-embedding neighbours appear.
  await page.click('[data-tab=retrieval]');
  await page.waitForSelector('#store-picker button img');
  await page.selectOption('#ret-head', '2');
  await page.locator('#store-picker button').nth(2).click();
  await page.waitForSelector('#ret-byhead .thumb');
  await idle(page);
  assert.equal(await page.locator('#ret-byhead .thumb').count(), 8);
  assert.equal(await page.locator('#ret-whole .thumb').count(), 8);
  assert.match((await page.textContent('#ret-byhead h2')) ?? '', /head L5\.H2/);
  await page.waitForFunction(() => Array.from(document.querySelectorAll<HTMLImageElement>('#ret-results img')).every((i) => i.complete && i.naturalWidth > 0));
  await screenshot(page, '3-retrieval');

  // 4. Ablation: toggling heads re-classifies the store.
  await page.click('[data-tab=ablation]');
  await page.waitForSelector('#abl-summary');
  await idle(page);
  assert.equal(await page.locator('#abl-grid button').count(), 24);
  await page.click('#abl-grid button[data-head="5.1"]');
  await page.waitForFunction(() => document.getElementById('abl-status')?.textContent === '1 head off');
  await page.click('#abl-grid .rowlab >> text=L4');
  await page.waitForFunction(() => document.getElementById('abl-status')?.textContent === '5 heads off');
  await page.check('#abl-mlps');
  await page.waitForFunction(() => document.getElementById('abl-status')?.textContent === '5 heads off + MLPs');
  await idle(page);
  assert.equal(await page.locator('#abl-grid button.off').count(), 5);
  assert.equal(await page.locator('#abl-cells tr').count(), 5); // header + 2 classes × 2 groups
  await screenshot(page, '4-ablation');

  assert.deepEqual(errors, [], 'no errors in the page');
  t.diagnostic(`screenshots in ${shots}`);
});
