// `cliplens serve` API: real model (tiny_a fixture), real store, real HTTP.

import './helpers/env.ts';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { meanAblate } from '../src/analyses/ablation.ts';
import { normalizeRows } from '../src/analyses/linalg.ts';
import { buildClassifier, predict } from '../src/analyses/zeroshot.ts';
import { loadStore } from '../src/io/store.ts';
import { preprocessFiles } from '../src/model/preprocess_model.ts';
import { parseSize, safeResolve, sniffImage } from '../src/server/http_util.ts';
import { readTextSpanFile } from '../src/analyses/textspan_study.ts';
import { Gate, Lru } from '../src/server/lru.ts';
import { startServer, type RunningServer } from '../src/server/server.ts';
import { makeServeFixture, SECRET, type ServeFixture } from './helpers/serve_fixture.ts';
import { HttpError } from '../src/errors.ts';

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json: any;
}

/** One HTTP request with the path sent exactly as given (fetch would normalise '..'). */
function req(base: string, method: string, path: string, body?: Buffer | string | object, headers: Record<string, string> = {}, timeoutMs = 30_000): Promise<Res> {
  const u = new URL(base);
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  // What the explorer's page sends with every POST (the same-origin checks are tested on their own).
  const post = method === 'POST' ? { 'x-cliplens': '1', 'content-type': Buffer.isBuffer(body) ? 'application/octet-stream' : 'application/json' } : {};
  return new Promise((resolve, reject) => {
    const r = httpRequest({ host: u.hostname, port: u.port, method, path, headers: { ...post, ...(payload ? { 'content-length': String(payload.length) } : {}), ...headers }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const b = Buffer.concat(chunks);
        let json: unknown;
        try {
          json = JSON.parse(b.toString('utf8'));
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b, json });
      });
    });
    r.on('timeout', () => r.destroy(new Error(`${method} ${path} timed out after ${timeoutMs} ms`)));
    r.on('error', reject);
    if (payload) r.write(payload);
    r.end();
  });
}

let fx: ServeFixture;
let srv: RunningServer;
let tmp: string;
const MAX_UPLOAD = 256 * 1024;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'cliplens-serve-'));
  fx = await makeServeFixture(tmp);
  srv = await startServer({ model: fx.model, store: fx.storeDir, textspan: fx.textspanFile, port: 0, maxUpload: MAX_UPLOAD, cacheSize: 8, log: () => {} });
});

after(async () => {
  await srv?.close();
  await fx?.model.release();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function upload(png: Buffer): Promise<string> {
  const r = await req(srv.url, 'POST', '/api/upload', png, { 'content-type': 'image/png' });
  assert.equal(r.status, 200, r.body.toString());
  assert.match(r.json.id, /^[0-9a-f]{24}$/);
  return r.json.id;
}

const cos = (a: Float32Array, ao: number, b: Float32Array, bo: number, d: number) => {
  let s = 0;
  let na = 0;
  let nb = 0;
  for (let k = 0; k < d; k++) {
    s += a[ao + k] * b[bo + k];
    na += a[ao + k] ** 2;
    nb += b[bo + k] ** 2;
  }
  return s / Math.sqrt(na * nb);
};

describe('helpers', () => {
  test('sniffImage knows PNG, JPEG, WebP, GIF by their bytes only', async () => {
    const img = sharp({ create: { width: 4, height: 4, channels: 3, background: '#f00' } });
    assert.equal(sniffImage(await img.clone().png().toBuffer()), 'png');
    assert.equal(sniffImage(await img.clone().jpeg().toBuffer()), 'jpeg');
    assert.equal(sniffImage(await img.clone().webp().toBuffer()), 'webp');
    assert.equal(sniffImage(await img.clone().gif().toBuffer()), 'gif');
    assert.equal(sniffImage(Buffer.from('%PDF-1.7 ...')), undefined);
    assert.equal(sniffImage(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>')), undefined);
    assert.equal(sniffImage(Buffer.alloc(0)), undefined);
  });

  test('parseSize', () => {
    assert.equal(parseSize('20MB'), 20 << 20);
    assert.equal(parseSize('512k'), 512 << 10);
    assert.equal(parseSize('1000'), 1000);
    assert.throws(() => parseSize('lots'), /not a size/);
  });

  test('safeResolve refuses escapes and follows symlinks before deciding', () => {
    const root = fx.datasetRoot;
    const status = (p: string, encoded = true) => {
      try {
        safeResolve(root, p, { encoded });
        return 200;
      } catch (e) {
        assert.ok(e instanceof HttpError);
        return e.status;
      }
    };
    assert.equal(status('images/red_plain_0.png'), 200);
    assert.equal(status('../outside.png'), 403);
    assert.equal(status('%2e%2e/outside.png'), 403);
    assert.equal(status('..%2Foutside.png'), 403);
    assert.equal(status('images/..%5C..%5Coutside.png'), 403);
    assert.equal(status(fx.outsideFile.slice(1)), 404); // relative to the root: does not exist there
    assert.equal(status(encodeURIComponent(fx.outsideFile)), 403);
    assert.equal(status('images/link.png'), 403);
    assert.equal(status('images/%00.png'), 403);
    assert.equal(status('images/nope.png'), 404);
    assert.equal(status('images/%zz.png'), 400);
    assert.equal(status('../outside.png', false), 403);
  });

  test('TextSpan files: texts per head, or indices into a top-level pool; clear errors otherwise', () => {
    const p = join(tmp, 'ts-indices.json');
    writeFileSync(p, JSON.stringify({ texts: ['a', 'b', 'c'], heads: [{ layer: 1, head: 2, indices: [2, 0], varianceExplained: [0.1, 0.2], scores: [1, 0.5] }] }));
    assert.deepEqual(readTextSpanFile(p).heads, [{ layer: 1, head: 2, texts: ['c', 'a'], varianceExplained: [0.1, 0.2] }]);
    writeFileSync(p, JSON.stringify({ heads: [{ layer: 'x', head: 0, texts: [] }] }));
    assert.throws(() => readTextSpanFile(p), /heads\[0\] needs integer "layer" and "head"/);
    writeFileSync(p, '{"heads": 3}');
    assert.throws(() => readTextSpanFile(p), /has no "heads" array/);
    writeFileSync(p, 'nope');
    assert.throws(() => readTextSpanFile(p), /not valid JSON/);
    assert.throws(() => readTextSpanFile(join(tmp, 'missing.json')), /does not exist/);
  });

  test('Lru evicts the least recently used; Gate bounds concurrency', async () => {
    const l = new Lru<string, number>(2);
    l.set('a', 1);
    l.set('b', 2);
    l.get('a');
    l.set('c', 3);
    assert.deepEqual([l.has('a'), l.has('b'), l.has('c')], [true, false, true]);
    const g = new Gate(2);
    let active = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 10 }, () =>
        g.run(async () => {
          peak = Math.max(peak, ++active);
          await new Promise((r) => setTimeout(r, 2));
          active--;
        }),
      ),
    );
    assert.equal(peak, 2);
  });
});

describe('server', { timeout: 180_000 }, () => {
  test('binds loopback and serves the page and its prebuilt bundle', async () => {
    assert.match(srv.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await req(srv.url, 'GET', '/');
    assert.equal(page.status, 200);
    assert.match(page.body.toString(), /<script type="module" src="\/app\/app.js">/);
    const js = await req(srv.url, 'GET', '/app/app.js');
    assert.equal(js.status, 200);
    assert.match(String(js.headers['content-type']), /javascript/);
    assert.doesNotMatch(js.body.toString(), /^import |: Info\b|as const;/m, 'one bundle, types stripped');
    assert.equal((await req(srv.url, 'GET', '/app/app.ts')).status, 404, 'sources are not served');
    const info = await req(srv.url, 'GET', '/api/info');
    assert.equal(info.json.model.name, 'tiny_a');
    assert.equal(info.json.model.grid, 14);
    assert.equal(info.json.store.n, fx.n);
    assert.deepEqual(info.json.store.labels, ['blue', 'red']);
    assert.equal(info.json.maxUpload, MAX_UPLOAD);
  });

  test('refuses a store made by another model, and a TextSpan head the model lacks', async () => {
    const other = join(tmp, 'store-other');
    cpSync(fx.storeDir, other, { recursive: true });
    const m = JSON.parse(readFileSync(join(other, 'manifest.json'), 'utf8'));
    m.model = { name: 'someone-else', fingerprint: '0123456789abcdef' };
    writeFileSync(join(other, 'manifest.json'), JSON.stringify(m));
    await assert.rejects(startServer({ model: fx.model, store: other, log: () => {} }), /different models: --model tiny_a is 'tiny_a' \(fingerprint [0-9a-f]{16}\), store .*store-other is 'someone-else' \(fingerprint 0123456789abcdef\); use files made by one model$/);
    // A TextSpan file of another model is refused the same way.
    const tsOther = join(tmp, 'ts-other.json');
    writeFileSync(tsOther, JSON.stringify({ model: 'someone-else', modelFingerprint: '0123456789abcdef', heads: [{ layer: 1, head: 0, texts: ['x'] }] }));
    await assert.rejects(startServer({ model: fx.model, textspan: tsOther, log: () => {} }), /different models: --model tiny_a is 'tiny_a' .*, TextSpan file .*ts-other\.json is 'someone-else' \(fingerprint 0123456789abcdef\)/);
    const ts = join(tmp, 'ts-big.json');
    writeFileSync(ts, JSON.stringify({ heads: [{ layer: 6, head: 0, texts: ['x'] }] }));
    await assert.rejects(startServer({ model: fx.model, textspan: ts, log: () => {} }), /L6\.H0 does not exist in model tiny_a/);
  });

  test('a foreign Host header is refused (DNS rebinding)', async () => {
    const r = await req(srv.url, 'GET', '/api/info', undefined, { host: 'evil.example:80' });
    assert.equal(r.status, 403);
  });

  test('upload limits: 413 for too large, 415 for other types, 400 for empty or undecodable', async () => {
    const big = Buffer.concat([fx.uploads[0], Buffer.alloc(MAX_UPLOAD)]);
    const r1 = await req(srv.url, 'POST', '/api/upload', big);
    assert.equal(r1.status, 413);
    assert.match(r1.json.error, /too large.*256 KB/);
    // Same without a Content-Length: the server counts as it reads.
    const r1b = await new Promise<Res>((resolve, reject) => {
      const u = new URL(srv.url);
      const r = httpRequest({ host: u.hostname, port: u.port, method: 'POST', path: '/api/upload', headers: { 'transfer-encoding': 'chunked', 'x-cliplens': '1', 'content-type': 'image/png' }, timeout: 30_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), json: JSON.parse(Buffer.concat(chunks).toString()) }));
      });
      r.on('error', reject);
      for (let i = 0; i < 8; i++) r.write(Buffer.alloc(64 * 1024, 7));
      r.end();
    });
    assert.equal(r1b.status, 413);
    const r2 = await req(srv.url, 'POST', '/api/upload', 'just some text', { 'content-type': 'image/png' });
    assert.equal(r2.status, 415);
    assert.match(r2.json.error, /PNG, JPEG, WebP or GIF/);
    const r3 = await req(srv.url, 'POST', '/api/upload', '<svg xmlns="http://www.w3.org/2000/svg"></svg>', { 'content-type': 'image/svg+xml' });
    assert.equal(r3.status, 415);
    const r4 = await req(srv.url, 'POST', '/api/upload', Buffer.alloc(0));
    assert.equal(r4.status, 400);
    const r5 = await req(srv.url, 'POST', '/api/upload', Buffer.concat([fx.uploads[0].subarray(0, 8), Buffer.from('garbage garbage garbage')]));
    assert.equal(r5.status, 400);
    assert.match(r5.json.error, /could not be decoded/);
    // The server is still fine afterwards.
    assert.equal((await req(srv.url, 'GET', '/api/info')).status, 200);
  });

  test('bad API requests get clear JSON errors', async () => {
    const id = await upload(fx.uploads[0]);
    const cases: [string, string, unknown, number, RegExp][] = [
      ['POST', '/api/heatmap', '{not json', 400, /not valid JSON/],
      ['POST', '/api/heatmap', { id: 'f'.repeat(24), texts: ['x'] }, 404, /upload it again/],
      ['POST', '/api/heatmap', { id: '../../etc', texts: ['x'] }, 400, /id must be/],
      ['POST', '/api/heatmap', { id, texts: [] }, 400, /non-empty array/],
      ['POST', '/api/heatmap', { id, texts: ['x'], layer: 99 }, 400, /layer must be an integer in 0\.\.5/],
      ['POST', '/api/heatmap', { id, texts: Array(17).fill('x') }, 400, /at most 16/],
      ['GET', '/api/heatmap', undefined, 405, /use POST/],
      ['POST', '/api/info', {}, 405, /use GET/],
      ['GET', '/api/nothing', undefined, 404, /no API endpoint/],
      ['POST', '/api/retrieval', { row: 999, layer: 5, head: 0 }, 400, /row must be/],
      ['POST', '/api/ablation', { heads: [[0, 9]] }, 400, /head must be/],
      ['POST', '/api/ablation', { heads: 'all' }, 400, /array of \[layer, head\]/],
      ['GET', '/api/heads/5/0/top?k=0', undefined, 400, /k must be/],
      ['GET', '/api/heads/0/0/top', undefined, 404, /no TextSpan texts/],
    ];
    for (const [method, path, body, status, re] of cases) {
      const r = await req(srv.url, method, path, body as object);
      assert.equal(r.status, status, `${method} ${path}: ${r.body}`);
      assert.match(String(r.headers['content-type']), /application\/json/);
      assert.match(r.json.error, re, `${method} ${path}`);
    }
  });

  test('path traversal never leaks a file', async () => {
    const attempts = [
      '/dataset/../outside.png',
      '/dataset/../../../../etc/passwd',
      '/dataset/%2e%2e/outside.png',
      '/dataset/%2E%2E/secret.txt',
      '/dataset/images/..%2f..%2foutside.png',
      '/dataset/images/%2e%2e%2f%2e%2e%2fsecret.txt',
      '/dataset/..%5coutside.png',
      '/dataset//etc/passwd',
      `/dataset/${encodeURIComponent(fx.outsideFile)}`,
      `/dataset${fx.outsideFile}`,
      '/dataset/images/link.png',
      '/dataset/metadata.csv',
      '/dataset/images/%00.png',
      '/dataset/%252e%252e/outside.png',
      '/app/../../package.json',
      '/app/%2e%2e/%2e%2e/package.json',
      '/app/..%2f..%2fpackage.json',
      '/app/../server/server.ts',
      '/app//etc/passwd',
      '/../../etc/passwd',
      '/api/upload/..%2f..%2fetc/image.png',
      '/api/store/thumb/-1',
    ];
    for (const p of attempts) {
      const r = await req(srv.url, 'GET', p);
      assert.ok([400, 403, 404].includes(r.status), `${p} answered ${r.status}`);
      const text = r.body.toString('latin1');
      assert.ok(!text.includes(SECRET) && !text.includes('root:x:') && !text.includes('"devDependencies"') && !text.includes('createServer'), `${p} leaked a file`);
      assert.ok(r.json?.error, `${p}: JSON error expected`);
    }
    // The legitimate versions work.
    const ok = await req(srv.url, 'GET', '/dataset/images/red_plain_0.png');
    assert.equal(ok.status, 200);
    assert.equal(sniffImage(ok.body), 'png');
    const th = await req(srv.url, 'GET', '/api/store/thumb/0?size=64');
    assert.equal(th.status, 200);
    const meta = await sharp(th.body).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['jpeg', 64, 64]);
  });

  test('decomposition and heatmaps agree with each other and with the model', async () => {
    const png = fx.uploads[1];
    const id = await upload(png);
    const texts = ['a blue square', 'a red circle'];
    const dec = (await req(srv.url, 'POST', '/api/decompose', { id, texts })).json;
    const { L, H, d } = fx.model.dims();
    assert.equal(dec.attn.norm.length, L);
    assert.equal(dec.mlp.norm.length, L + 1);
    assert.equal(dec.heads.proj[0].length, L);
    assert.equal(dec.heads.proj[0][0].length, H);
    assert.ok(Math.abs(dec.sumNorm - 1) < 1e-3, `terms sum to z/‖z‖, got norm ${dec.sumNorm}`);
    // cos(z, t) from the model directly.
    const { pixels } = await preprocessFiles(fx.model.config, [png]);
    const z = await fx.model.encodeImages(pixels);
    const t = (await fx.model.encodeTexts(texts)).features;
    for (let i = 0; i < texts.length; i++) {
      const expect = cos(z.data, 0, t.data, i * d, d);
      assert.ok(Math.abs(dec.similarity[i] - expect) < 1e-4, `similarity ${dec.similarity[i]} vs ${expect}`);
      const sumTerms = dec.attn.proj[i].reduce((a: number, b: number) => a + b, 0) + dec.mlp.proj[i].reduce((a: number, b: number) => a + b, 0);
      assert.ok(Math.abs(sumTerms - expect) < 1e-4);
    }
    // Σ over tokens of the all-heads map = Σ over layers of the attention projections.
    const heat = (await req(srv.url, 'POST', '/api/heatmap', { id, texts })).json;
    assert.equal(heat.grid, 14);
    assert.equal(heat.maps[0].patches.length, 196);
    for (let i = 0; i < texts.length; i++) {
      const total = heat.maps[i].cls + heat.maps[i].patches.reduce((a: number, b: number) => a + b, 0);
      const attn = dec.attn.proj[i].reduce((a: number, b: number) => a + b, 0);
      assert.ok(Math.abs(total - attn) < 1e-4, `${total} vs ${attn}`);
    }
    // One layer and head: the map sums to that head's projection.
    const one = (await req(srv.url, 'POST', '/api/heatmap', { id, texts, layer: 4, head: 2 })).json;
    const tot = one.maps[1].cls + one.maps[1].patches.reduce((a: number, b: number) => a + b, 0);
    assert.ok(Math.abs(tot - dec.heads.proj[1][4][2]) < 1e-4);
    assert.notDeepEqual(one.maps[1].patches, heat.maps[1].patches);
    const png2 = await req(srv.url, 'GET', `/api/upload/${id}/image.png`);
    const m = await sharp(png2.body).metadata();
    assert.deepEqual([m.width, m.height], [224, 224]);
  });

  test('50 concurrent requests all succeed with consistent results', { timeout: 120_000 }, async () => {
    const ids = [await upload(fx.uploads[0]), await upload(fx.uploads[1])];
    const textSets = [['a red circle', 'a blue square'], ['on the left', 'a striped background', 'green']];
    const heatBody = (i: number) => ({ id: ids[i % 2], texts: textSets[Math.floor(i / 2) % 2], ...(i % 3 === 0 ? { layer: 5, head: i % 4 } : {}) });
    const decBody = (i: number) => ({ id: ids[i % 2], texts: textSets[Math.floor(i / 2) % 2] });
    // Reference answers, one at a time.
    const ref = new Map<string, unknown>();
    for (let i = 0; i < 12; i++) {
      ref.set(`h${i % 12}`, (await req(srv.url, 'POST', '/api/heatmap', heatBody(i))).json);
      ref.set(`d${i % 4}`, (await req(srv.url, 'POST', '/api/decompose', decBody(i))).json);
    }
    const jobs = Array.from({ length: 50 }, async (_, j) => {
      if (j % 10 === 9) {
        // Re-uploads of a known image mixed in: same id, no state corrupted.
        const r = await req(srv.url, 'POST', '/api/upload', fx.uploads[j % 2]);
        assert.equal(r.status, 200);
        assert.equal(r.json.id, ids[j % 2]);
        return;
      }
      const i = j % 12;
      if (j % 2 === 0) {
        const r = await req(srv.url, 'POST', '/api/heatmap', heatBody(i));
        assert.equal(r.status, 200, r.body.toString());
        assert.deepEqual(r.json, ref.get(`h${i}`));
      } else {
        const r = await req(srv.url, 'POST', '/api/decompose', decBody(i));
        assert.equal(r.status, 200, r.body.toString());
        assert.deepEqual(r.json, ref.get(`d${i % 4}`));
      }
    });
    await Promise.all(jobs);
  });

  test('the upload cache is bounded and an evicted id says so', async () => {
    const first = await upload(fx.uploads[2]);
    for (let i = 0; i < 9; i++) await upload(await sharp({ create: { width: 20 + i, height: 20, channels: 3, background: { r: 10 * i, g: 0, b: 0 } } }).png().toBuffer());
    const r = await req(srv.url, 'POST', '/api/heatmap', { id: first, texts: ['x'] });
    assert.equal(r.status, 404);
    assert.match(r.json.error, /not in the cache/);
  });

  test('store: items, retrieval by head vs whole embedding, head top images', async () => {
    const store = loadStore(fx.storeDir);
    const { H, d } = fx.model.dims();
    const items = (await req(srv.url, 'GET', '/api/store/items?offset=2&limit=3')).json;
    assert.equal(items.total, fx.n);
    assert.deepEqual(items.items.map((x: { row: number }) => x.row), [2, 3, 4]);
    const r = (await req(srv.url, 'POST', '/api/retrieval', { row: 3, layer: 5, head: 1, k: 4 })).json;
    assert.equal(r.byHead.length, 4);
    assert.ok(r.byHead.every((x: { row: number }) => x.row !== 3));
    // Whole-embedding neighbours by brute force.
    const n = fx.n;
    const sims = Array.from({ length: n }, (_, b) => [b, cos(store.imageFeatures.data, b * d, store.imageFeatures.data, 3 * d, d)] as const)
      .filter(([b]) => b !== 3)
      .sort((a, b) => b[1] - a[1]);
    assert.deepEqual(r.whole.map((x: { row: number }) => x.row), sims.slice(0, 4).map(([b]) => b));
    const headSims = Array.from({ length: n }, (_, b) => [b, cos(store.attn.data, ((b * 6 + 5) * H + 1) * d, store.attn.data, ((3 * 6 + 5) * H + 1) * d, d)] as const)
      .filter(([b]) => b !== 3)
      .sort((a, b) => b[1] - a[1]);
    assert.deepEqual(r.byHead.map((x: { row: number }) => x.row), headSims.slice(0, 4).map(([b]) => b));
    // An uploaded query image, decomposed by the served model: ranked by the dot product of the terms.
    const id = await upload(fx.uploads[0]);
    const u = (await req(srv.url, 'POST', '/api/retrieval', { id, layer: 5, head: 1, k: 4 })).json;
    assert.equal(u.score, 'dot');
    assert.deepEqual(u.query, { id, upload: true });
    const dec = (await req(srv.url, 'POST', '/api/decompose', { id })).json;
    assert.ok(dec.heads.norm[5][1] > 0);
    const uScores = u.byHead.map((x: { score: number }) => x.score);
    assert.deepEqual(uScores, [...uScores].sort((a: number, b: number) => b - a));
    assert.equal(u.byHead.length, 4);
    assert.equal(u.whole.length, 4);
    const all = (await req(srv.url, 'GET', '/api/heads')).json;
    assert.equal(all.total, 8);
    const colour = (await req(srv.url, 'GET', '/api/heads?q=colour')).json;
    assert.ok(colour.heads.length > 0 && colour.heads.length < 8);
    assert.ok(colour.heads.every((h: { texts: string[] }) => h.texts.some((t) => t.includes('colour'))));
    const top = (await req(srv.url, 'GET', '/api/heads/5/0/top?k=5')).json;
    assert.equal(top.images.length, 5);
    const scores = top.images.map((x: { score: number }) => x.score);
    assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
  });

  test('ablation: no heads = baseline; ablated heads match meanAblate', async () => {
    const store = loadStore(fx.storeDir);
    const { d } = fx.model.dims();
    const base = (await req(srv.url, 'POST', '/api/ablation', { heads: [] })).json;
    assert.equal(base.n, fx.n);
    assert.deepEqual(base.result, base.baseline);
    assert.equal(base.changed, 0);
    assert.ok(base.baseline.cells.length === 4 && base.baseline.cells.every((c: { group: string }) => c.group === 'plain' || c.group === 'striped'));
    const heads: [number, number][] = [[5, 0], [5, 1], [5, 2], [5, 3], [4, 0]];
    const abl = (await req(srv.url, 'POST', '/api/ablation', { heads, mlps: true })).json;
    // Independent computation with the library.
    const prompts = store.manifest.dataset.labels.map((l) => `a photo of a ${l}.`);
    const cls = buildClassifier((await fx.model.encodeTexts(prompts)).features, prompts.length, 1);
    const emb = meanAblate({ attn: store.attn, mlp: store.mlp }, { heads, mlps: true });
    const preds = predict({ shape: [fx.n, d], data: normalizeRows(emb, fx.n, d) }, { shape: [prompts.length, d], data: cls });
    let correct = 0;
    for (let i = 0; i < fx.n; i++) if (preds[i] === store.labels[i]) correct++;
    assert.ok(Math.abs(abl.result.overall - correct / fx.n) < 1e-9, `${abl.result.overall} vs ${correct / fx.n}`);
    assert.deepEqual(abl.ablated, { heads, mlps: true });
  });
});

test('with no arguments the explorer serves the embedded default model', { timeout: 120_000 }, async () => {
  const s = await startServer({ log: () => {} });
  try {
    const info = (await req(s.url, 'GET', '/api/info')).json;
    assert.equal(info.model.name, 'toyworld');
    const png = await sharp({ create: { width: 80, height: 64, channels: 3, background: '#3060e0' } }).png().toBuffer();
    const up = await req(s.url, 'POST', '/api/upload', png, { 'content-type': 'image/png' });
    assert.equal(up.status, 200);
    const heat = await req(s.url, 'POST', '/api/heatmap', { id: up.json.id, texts: ['a blue square', 'a red circle'] });
    assert.equal(heat.status, 200);
    assert.equal(heat.json.maps[0].patches.length, info.model.grid ** 2);
  } finally {
    await s.close();
  }
});
