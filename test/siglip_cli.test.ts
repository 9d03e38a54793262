// The SigLIP CLI contract (encode / preprocess / decompose as other tools call them), --tokens
// for every family, and the store-based commands on a SigLIP store.

import './helpers/env.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.ts';
import { maxAbsDiff, type Tensor } from '../src/tensor.ts';
import { REF, REPO, TINY_A, fixturePath, refOutput } from './helpers/fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'cliplens-siglip-cli-'));
const DIR_A = fixturePath('siglip/tiny_siglip_a');
const INPUTS = fixturePath('siglip/inputs_tiny_siglip_a.safetensors');
const out = Object.fromEntries(readSafetensors(fixturePath('siglip/outputs_tiny_siglip_a.safetensors'))) as Record<string, Tensor>;
const F = (t: Tensor) => t.data as Float32Array;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(REPO, 'bin/cliplens.js'), ...args], { encoding: 'utf8', env: { ...process.env, CLIPLENS_THREADS: '2', CLIPLENS_OFFLINE: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const read = (p: string) => Object.fromEntries(readSafetensors(p)) as Record<string, Tensor>;

test('encode --pixels --tokens (int64 input_ids) and from images + texts: image_features, text_features, tokens', () => {
  const o = join(tmp, 'enc.safetensors');
  const r = cli('encode', '--model', DIR_A, '--pixels', INPUTS, '--tokens', INPUTS, '--out', o);
  assert.equal(r.code, 0, r.stderr);
  const e = read(o);
  assert.deepEqual(e.image_features.shape, [4, 48]);
  assert.ok(maxAbsDiff(F(e.image_features), F(out.image_embeds)) < 1e-5);
  assert.ok(maxAbsDiff(F(e.text_features), F(out.text_embeds)) < 1e-5);
  assert.equal(e.tokens.dtype, 'I32');
  assert.deepEqual(e.tokens.shape, [6, 16]);
  const images = ['catdog.png', 'rocket.jpg', 'coins.png', 'cell.png'].map((f) => join(REF, 'images', f));
  const o2 = join(tmp, 'enc2.safetensors');
  const r2 = cli('encode', '--model', DIR_A, ...images, '--text', 'a photo of a dog.', '--text', 'A photo of a cat, sitting on a mat!!! (really?)', '--out', o2);
  assert.equal(r2.code, 0, r2.stderr);
  const e2 = read(o2);
  assert.ok(maxAbsDiff(F(e2.image_features), F(out.image_embeds)) < 1e-5);
  assert.ok(maxAbsDiff(F(e2.text_features), F(out.text_embeds).subarray(0, 96)) < 1e-5);
  assert.deepEqual([...(e2.tokens.data as Int32Array)], [...F(out.text_embeds).subarray(0, 0)].concat([3, 19, 6, 3, 33, 30, 72, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 19, 6, 3, 252, 17, 101, 35, 145, 9, 38, 3, 113, 17, 282, 1]));
});

test('encode --tokens works for CLIP too (tokens or input_ids, int32 or int64)', () => {
  const tokens = read(join(REF, 'tokens.safetensors')).tokens;
  const i64 = join(tmp, 'ids64.safetensors');
  writeSafetensors(i64, { input_ids: { dtype: 'I64', shape: tokens.shape, data: BigInt64Array.from(tokens.data as Int32Array, (x) => BigInt(x)) } });
  for (const file of [join(REF, 'tokens.safetensors'), i64]) {
    const o = join(tmp, 'clip_tok.safetensors');
    const r = cli('encode', '--model', TINY_A(), '--tokens', file, '--out', o);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(maxAbsDiff(F(read(o).text_features), refOutput('text_features').data) < 1e-4);
  }
  const bad = join(tmp, 'bad_tok.safetensors');
  writeSafetensors(bad, { tokens: { dtype: 'I32', shape: [2, 5], data: new Int32Array(10) } });
  const r = cli('encode', '--model', TINY_A(), '--tokens', bad, '--out', join(tmp, 'x.safetensors'));
  assert.notEqual(r.code, 0);
  assert.match(r.stderr.trim(), /^cliplens: error: .*length 5.*77$/);
});

test('preprocess writes pixel_values bit-exact; decompose writes attn/mlp/bias/image_features unnormalised', () => {
  const images = ['catdog.png', 'rocket.jpg', 'coins.png', 'cell.png'].map((f) => join(REF, 'images', f));
  const px = join(tmp, 'px.safetensors');
  assert.equal(cli('preprocess', '--model', DIR_A, ...images, '--out', px).code, 0);
  const inputs = read(INPUTS);
  assert.equal(maxAbsDiff(F(read(px).pixel_values), F(inputs.pixel_values)), 0);
  const o = join(tmp, 'dec.safetensors');
  const r = cli('decompose', '--model', DIR_A, '--pixels', px, '--out', o);
  assert.equal(r.code, 0, r.stderr);
  const d = read(o);
  assert.deepEqual(d.attn.shape, [4, 4, 48]);
  assert.deepEqual(d.mlp.shape, [4, 48]);
  assert.deepEqual(d.bias.shape, [48]);
  assert.ok(maxAbsDiff(F(d.attn), F(out.attention_records)) < 1e-5);
  assert.ok(maxAbsDiff(F(d.mlp), F(out.mlp_records)) < 1e-5);
  assert.ok(maxAbsDiff(F(d.bias), F(out.out_proj_bias)) < 1e-7);
  assert.ok(maxAbsDiff(F(d.image_features), F(out.image_embeds)) < 1e-5);
  const os = join(tmp, 'dec_sp.safetensors');
  assert.equal(cli('decompose', '--model', DIR_A, '--pixels', px, '--spatial', '--out', os).code, 0);
  const ds = read(os);
  assert.deepEqual(ds.attn.shape, [4, 16, 4, 48]);
  assert.ok(maxAbsDiff(F(ds.attn), F(out.attention_records_spatial)) < 1e-5);
  const n = cli('decompose', '--model', DIR_A, '--pixels', px, '--normalise', '--out', os);
  assert.notEqual(n.code, 0);
  assert.match(n.stderr, /unnormalised/);
});

test('decompose --through-layers writes the split and a report of which layers feed each pooling head', () => {
  const o = join(tmp, 'through.safetensors');
  const rep = join(tmp, 'layers_report');
  const r = cli('decompose', '--model', DIR_A, '--pixels', INPUTS, '--through-layers', '--report', rep, '--out', o);
  assert.equal(r.code, 0, r.stderr);
  const t = read(o);
  assert.deepEqual(t.through_heads.shape, [4, 3, 4, 4, 48]);
  assert.deepEqual(t.through_mlp.shape, [4, 3, 4, 48]);
  assert.deepEqual(t.through_constant.shape, [4, 48]);
  assert.ok(existsSync(join(rep, 'index.html')));
  const report = JSON.parse(readFileSync(join(rep, 'report.json'), 'utf8'));
  assert.match(JSON.stringify(report), /layer 2/);
  const clip = cli('decompose', '--model', TINY_A(), '--pixels', join(REF, 'inputs_tiny_a.safetensors'), '--through-layers', '--out', o);
  assert.notEqual(clip.code, 0);
  assert.match(clip.stderr, /SigLIP/);
});

test('a SigLIP store: decompose --dataset, textspan (rank d), ablate, retrieve, heatmap', () => {
  const data = join(tmp, 'ds');
  for (const [cls, files] of [['animal', ['catdog.png', 'rocket.jpg']], ['object', ['coins.png', 'cell.png']]] as const) {
    mkdirSync(join(data, cls), { recursive: true });
    for (const f of files) copyFileSync(join(REF, 'images', f), join(data, cls, f));
  }
  const store = join(tmp, 'store');
  const r = cli('decompose', '--model', DIR_A, '--dataset', data, '--store', store, '--batch-size', '3');
  assert.equal(r.code, 0, r.stderr);
  const m = JSON.parse(readFileSync(join(store, 'manifest.json'), 'utf8'));
  assert.equal(m.family, 'siglip');
  assert.equal(m.normalised, false);
  assert.deepEqual(m.dims.L, 1);
  const pool = join(tmp, 'pool.safetensors');
  const texts = join(tmp, 'texts.txt');
  writeFileSync(texts, ['a photo of a dog', 'a red rocket', 'coins on a table', 'a cell under a microscope', 'a cat', 'gray pattern'].join('\n'));
  assert.equal(cli('texts', '--model', DIR_A, '--file', texts, '--out', pool).code, 0);
  const cls = join(tmp, 'cls.safetensors');
  const classes = join(tmp, 'classes.txt');
  writeFileSync(classes, 'animal\nobject\n');
  assert.equal(cli('texts', '--model', DIR_A, '--classes', classes, '--templates', 'openai', '--out', cls).code, 0);
  const ts = cli('textspan', '--store', store, '--texts', pool, '--k', '3', '--json');
  assert.equal(ts.code, 0, ts.stderr);
  const tj = JSON.parse(ts.stdout);
  assert.equal(tj.rank, 48);
  assert.equal(tj.heads.length, 4);
  const ab = cli('ablate', '--store', store, '--classifier', cls, '--heads', 'pool:1', '--json');
  assert.equal(ab.code, 0, ab.stderr);
  const aj = JSON.parse(ab.stdout);
  assert.equal(aj.headOrthogonality[0].matrix.length, 4);
  assert.equal(aj.headOrthogonality[0].layer, 0);
  const rt = cli('retrieve', '--store', store, '--query', '0', '--heads', '0:2', '--k', '2', '--json');
  assert.equal(rt.code, 0, rt.stderr);
  // An outside image, decomposed with the store's (SigLIP) model: the store's own image comes first.
  const ri = cli('retrieve', '--store', store, '--image', join(data, 'object', 'coins.png'), '--model', DIR_A, '--heads', '0:2', '--k', '2', '--json');
  assert.equal(ri.code, 0, ri.stderr);
  const rj = JSON.parse(ri.stdout);
  const top = JSON.stringify(rj).match(/"[^"]*coins\.png"/g);
  assert.ok(top, ri.stdout);
  const hm = cli('heatmap', '--model', DIR_A, join(REF, 'images', 'catdog.png'), '--text', 'a dog', '--json');
  assert.equal(hm.code, 0, hm.stderr);
  assert.equal(JSON.parse(hm.stdout).maps[0].map.length, 16);
});

test('the explorer on a SigLIP model and store: info names the pooling head, decompose sums to z, heatmap has no CLS', async () => {
  const { startServer } = await import('../src/server/server.ts');
  const store = join(tmp, 'store');
  assert.ok(existsSync(join(store, 'manifest.json')), 'the store test runs first');
  const srv = await startServer({ model: DIR_A, loadOptions: { threads: 2 }, store, port: 0, log: () => {} });
  try {
    const post = async (path: string, body: unknown, type = 'application/json') => {
      const r = await fetch(new URL(path, srv.url), { method: 'POST', headers: { 'content-type': type, 'x-cliplens': '1' }, body: Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body) });
      return { status: r.status, json: await r.json() };
    };
    const info = await (await fetch(new URL('/api/info', srv.url))).json();
    assert.ok(info.model, JSON.stringify(info));
    assert.equal(info.model.family, 'siglip');
    assert.equal(info.model.L, 1);
    assert.deepEqual(info.model.blockNames, ['pooling head']);
    const up = await post('/api/upload', readFileSync(join(REF, 'images', 'catdog.png')), 'image/png');
    assert.equal(up.status, 200, JSON.stringify(up.json));
    const dec = await post('/api/decompose', { id: up.json.id, texts: ['a dog'] });
    assert.equal(dec.status, 200, JSON.stringify(dec.json));
    assert.ok(Math.abs(dec.json.sumNorm - 1) < 1e-4);
    const hm = await post('/api/heatmap', { id: up.json.id, texts: ['a dog'] });
    assert.equal(hm.status, 200, JSON.stringify(hm.json));
    assert.equal(hm.json.maps[0].cls, null);
    assert.equal(hm.json.maps[0].patches.length, 16);
    const ab = await post('/api/ablation', { heads: [[0, 1]], mlps: true });
    assert.equal(ab.status, 200, JSON.stringify(ab.json));
  } finally {
    await srv.close();
    await srv.explorer.model.release();
  }
});
