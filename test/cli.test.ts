// The CLI contract other tools call: outputs match the reference, errors are one clear line.

import './helpers/env.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { SafetensorsFile, readSafetensors } from '../src/io/safetensors.ts';
import { maxAbsDiff } from '../src/tensor.ts';
import { REF, REPO, TINY_A, refOutput, referencePath } from './helpers/fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'cliplens-cli-'));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(REPO, 'bin/cliplens.js'), ...args], { encoding: 'utf8', env: { ...process.env, CLIPLENS_THREADS: '2', CLIPLENS_OFFLINE: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Exit code ≠ 0 and exactly one line on stderr matching `re`, no stack trace. */
function assertOneLineError(r: ReturnType<typeof cli>, re: RegExp) {
  assert.notEqual(r.code, 0);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0], re);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

const texts = JSON.parse(readFileSync(referencePath('tokenizer_cases.json'), 'utf8')).map((c: { text: string }) => c.text) as string[];

test('encode: image features, text features and tokens equal the reference', () => {
  const out = join(tmp, 'enc.safetensors');
  const textFile = join(tmp, 'texts.txt');
  // Texts with newlines cannot go in a one-per-line file; pass those few with --text.
  const multi = texts.filter((t) => /[\r\n]/.test(t) || t.trim() === '');
  assert.ok(multi.length < texts.length);
  const r = cli('encode', '--model', TINY_A(), '--pixels', join(REF, 'inputs_tiny_a.safetensors'), ...texts.flatMap((t) => ['--text', t]), '--out', out);
  assert.equal(r.code, 0, r.stderr);
  const o = readSafetensors(out);
  assert.deepEqual(o.get('image_features')!.shape, [4, 64]);
  assert.ok(maxAbsDiff(o.get('image_features')!.data as Float32Array, refOutput('image_features').data) < 1e-4);
  assert.ok(maxAbsDiff(o.get('text_features')!.data as Float32Array, refOutput('text_features').data) < 1e-4);
  const tokens = readSafetensors(join(REF, 'tokens.safetensors')).get('tokens')!;
  assert.equal(o.get('tokens')!.dtype, 'I32');
  assert.deepEqual([...(o.get('tokens')!.data as Int32Array)], [...(tokens.data as Int32Array)]);
  writeFileSync(textFile, 'a photo of a dog.\nAn image with dogs.\n');
  const r2 = cli('encode', '--model', TINY_A(), '--texts-file', textFile, '--out', out);
  assert.equal(r2.code, 0, r2.stderr);
  assert.ok(maxAbsDiff(readSafetensors(out).get('text_features')!.data as Float32Array, refOutput('text_features').data.subarray(0, 128)) < 1e-4);
});

test('preprocess + encode from image files reproduce the reference pixels and features', () => {
  const imgs = ['catdog.png', 'rocket.jpg', 'coins.png', 'cell.png'].map((f) => join(REF, 'images', f));
  const px = join(tmp, 'px.safetensors');
  assert.equal(cli('preprocess', '--model', TINY_A(), ...imgs, '--out', px).code, 0);
  const ref = readSafetensors(join(REF, 'inputs_tiny_a.safetensors'));
  const got = readSafetensors(px);
  assert.ok(maxAbsDiff(got.get('pixel_values')!.data as Float32Array, ref.get('pixel_values')!.data as Float32Array) < 1e-6);
  const out = join(tmp, 'enc2.safetensors');
  assert.equal(cli('encode', '--model', TINY_A(), ...imgs, '--out', out).code, 0);
  assert.ok(maxAbsDiff(readSafetensors(out).get('image_features')!.data as Float32Array, refOutput('image_features').data) < 1e-4);
});

test('preprocess streams a dataset in batches and leaves no file on an unreadable image', () => {
  const model = TINY_A();
  const names = ['catdog.png', 'rocket.jpg', 'coins.png', 'cell.png'];
  const list = join(tmp, 'images.txt');
  writeFileSync(list, [...names, 'rocket.jpg', 'catdog.png'].map((f) => join(REF, 'images', f)).join('\n'));
  const px = join(tmp, 'stream.safetensors');
  const r = cli('preprocess', '--model', model, '--dataset', list, '--batch-size', '4', '--out', px);
  assert.equal(r.code, 0, r.stderr);
  const got = readSafetensors(px);
  const ref = readSafetensors(join(REF, 'inputs_tiny_a.safetensors'));
  assert.deepEqual(got.get('pixel_values')!.shape, [6, 3, 224, 224]);
  const per = 3 * 224 * 224;
  const want = [0, 1, 2, 3, 1, 0].map((i) => (ref.get('pixels_u8')!.data as Uint8Array).subarray(i * per, (i + 1) * per));
  const u8 = got.get('pixels_u8')!.data as Uint8Array;
  want.forEach((w, b) => assert.ok(Buffer.from(u8.subarray(b * per, (b + 1) * per)).equals(Buffer.from(w)), `image ${b}`));
  const pv = got.get('pixel_values')!.data as Float32Array;
  assert.ok(maxAbsDiff(pv.subarray(4 * per, 5 * per), (ref.get('pixel_values')!.data as Float32Array).subarray(per, 2 * per)) === 0);
  // an unreadable image in the second batch: one line naming it, and no output left behind
  const bad = join(tmp, 'bad.jpg');
  writeFileSync(bad, Buffer.from('not a jpeg'));
  writeFileSync(list, [...names, bad].map((f) => (f === bad ? f : join(REF, 'images', f))).join('\n'));
  const out2 = join(tmp, 'stream2.safetensors');
  const r2 = cli('preprocess', '--model', model, '--dataset', list, '--batch-size', '4', '--out', out2);
  assert.notEqual(r2.code, 0);
  const errors = r2.stderr.split('\n').filter((l) => l.startsWith('cliplens: error'));
  assert.equal(errors.length, 1, r2.stderr);
  assert.match(errors[0], /bad\.jpg: not an image/);
  assert.doesNotMatch(r2.stderr, /\n\s+at /);
  assert.deepEqual(readdirSync(tmp).filter((f) => f.startsWith('stream2')), []);
  assertOneLineError(cli('preprocess', '--model', model, '--out', out2), /no images/);
});

test('decompose: spatial and per-head outputs in the reference convention', () => {
  const out = join(tmp, 'dec.safetensors');
  const r = cli('decompose', '--model', TINY_A(), '--pixels', join(REF, 'inputs_tiny_a.safetensors'), '--spatial', '--out', out);
  assert.equal(r.code, 0, r.stderr);
  const o = readSafetensors(out);
  assert.deepEqual(o.get('attn')!.shape, [4, 6, 197, 4, 64]);
  assert.ok(maxAbsDiff(o.get('attn')!.data as Float32Array, refOutput('attn_spatial').data) < 1e-5);
  assert.ok(maxAbsDiff(o.get('mlp')!.data as Float32Array, refOutput('mlps').data) < 1e-5);
  assert.ok(maxAbsDiff(o.get('norm')!.data as Float32Array, refOutput('representation_norm').data) < 1e-4);
  assert.equal(cli('decompose', '--model', TINY_A(), '--pixels', join(REF, 'inputs_tiny_a.safetensors'), '--out', out).code, 0);
  assert.ok(maxAbsDiff(readSafetensors(out).get('attn')!.data as Float32Array, refOutput('attn_nonspatial').data) < 1e-5);
});

test('heatmap writes a non-blank PNG with a panel per text plus their difference, and raw maps as JSON', async () => {
  const out = join(tmp, 'map.png');
  const img = join(REF, 'images/catdog.png');
  const r = cli('heatmap', '--model', TINY_A(), '--text', 'a dog', '--text', 'a cat', img, '--out', out, '--json');
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.maps.length, 2);
  assert.equal(j.maps[0].map.length, 197);
  const meta = await sharp(out).metadata();
  assert.ok(meta.width! > 3 * 224 && meta.height! >= 224);
  const stats = await sharp(out).stats();
  assert.ok(stats.channels.some((c) => c.stdev > 10));
});

test('bad inputs give one clear line and a non-zero exit', () => {
  const corrupt = join(tmp, 'corrupt.jpg');
  writeFileSync(corrupt, readFileSync(join(REF, 'images/rocket.jpg')).subarray(0, 2000));
  assertOneLineError(cli('encode', '--model', TINY_A(), corrupt, '--out', join(tmp, 'x.safetensors')), /corrupt\.jpg: .*(truncated|corrupt|premature)/i);

  const huge = join(tmp, 'huge.safetensors');
  const hdr = Buffer.alloc(8);
  hdr.writeBigUInt64LE(100n * 1024n ** 3n);
  writeFileSync(huge, Buffer.concat([hdr, Buffer.from('{}')]));
  copyFileSync(join(REF, 'tiny_a.json'), join(tmp, 'huge.json'));
  assertOneLineError(cli('encode', '--model', huge, '--text', 'x', '--out', join(tmp, 'x.safetensors')), /header claims 107374182400 bytes/);

  const cfg = JSON.parse(readFileSync(join(REF, 'tiny_a.json'), 'utf8'));
  const wide = join(tmp, 'wide.safetensors');
  copyFileSync(TINY_A(), wide);
  writeFileSync(join(tmp, 'wide.json'), JSON.stringify({ ...cfg, vision_cfg: { ...cfg.vision_cfg, width: 192 } }));
  assertOneLineError(cli('encode', '--model', wide, '--text', 'x', '--out', join(tmp, 'x.safetensors')), /visual\..* has shape .* \[/);

  const avg = join(tmp, 'avg.safetensors');
  copyFileSync(TINY_A(), avg);
  writeFileSync(join(tmp, 'avg.json'), JSON.stringify({ ...cfg, vision_cfg: { ...cfg.vision_cfg, pool_type: 'avg' } }));
  assertOneLineError(cli('encode', '--model', avg, '--text', 'x', '--out', join(tmp, 'x.safetensors')), /pool_type = "avg" is not supported/);

  assertOneLineError(cli('encode', '--model', 'hf-hub:nobody/no-such-model', '--offline', '--text', 'x', '--out', join(tmp, 'x.safetensors')), /nobody\/no-such-model/);
  assertOneLineError(cli('encode', '--model', 'no-such-builtin', '--text', 'x', '--out', join(tmp, 'x.safetensors')), /unknown model 'no-such-builtin'/);
  assertOneLineError(cli('decompose', '--model', TINY_A(), '--pixels', join(REF, 'tokens.safetensors'), '--out', join(tmp, 'x.safetensors')), /has no 'pixel_values' tensor/);
  assertOneLineError(cli('decompose', '--model', TINY_A(), '--dataset', join(tmp, 'nowhere'), '--store', join(tmp, 's')), /does not exist/);
  assertOneLineError(cli('heatmap', '--model', TINY_A(), '--text', 'x', '--layer', '9', join(REF, 'images/catdog.png'), '--out', join(tmp, 'x.png')), /--layer 9: the model has layers 0..5/);
  assertOneLineError(cli('encode', '--model', TINY_A(), '--threads', 'many', '--text', 'x', '--out', join(tmp, 'x.safetensors')), /--threads must be an integer/);
  const unknownFlag = cli('encode', '--frobnicate', '--out', join(tmp, 'x.safetensors'));
  assert.equal(unknownFlag.code, 2);
  assert.match(unknownFlag.stderr, /unknown option '--frobnicate'/);
  // The same for subcommands (neurons effects, store merge): commander's error and exit code 2.
  for (const args of [['neurons', 'effects', '--frobnicate'], ['store', 'merge', 'a', 'b'], ['study', 'toyworld', '--frobnicate']]) {
    const sub = cli(...args);
    assert.equal(sub.code, 2, `${args.join(' ')}: ${sub.stderr}`);
    assert.match(sub.stderr, /^error: (unknown option '--frobnicate'|required option '-o, --out <dir>' not specified)/);
  }
  // A choice that only an object's prototype has is not a protocol.
  assertOneLineError(cli('textspan', '--store', tmp, '--texts', tmp, '--protocol', 'constructor', '--json'), /--protocol 'constructor': use reference or ablate-mlps/);
});

test("texts: the bundled lists ('--classes imagenet', '--templates openai') and the model recorded with the classifier", () => {
  const imagenet = join(tmp, 'imagenet.safetensors');
  const r = cli('texts', '--model', TINY_A(), '--classes', 'imagenet', '-o', imagenet);
  assert.equal(r.code, 0, r.stderr);
  const f = SafetensorsFile.open(imagenet);
  const names = JSON.parse(f.metadata.names) as string[];
  assert.equal(names.length, 1000);
  assert.deepEqual([names[0], names[1], names[999]], ['tench', 'goldfish', 'toilet paper']);
  assert.deepEqual(f.readF32('text_features').shape, [1000, 64]);
  assert.equal(f.metadata.model, 'tiny_a');
  assert.match(f.metadata.model_fingerprint, /^[0-9a-f]{16}$/);
  f.close();

  // With OpenAI's 80 templates: each class is the renormalised mean of its 80 normalised prompts.
  const classes = join(tmp, 'two.txt');
  writeFileSync(classes, 'goldfish\ntoilet paper\n');
  const cls = join(tmp, 'openai.safetensors');
  assert.equal(cli('texts', '--model', TINY_A(), '--classes', classes, '--templates', 'openai', '-o', cls).code, 0);
  const templates = readFileSync(join(REPO, 'assets', 'openai_imagenet_templates.txt'), 'utf8').trim().split('\n');
  assert.equal(templates.length, 80);
  const prompts = join(tmp, 'prompts.txt');
  writeFileSync(prompts, templates.map((t) => t.replace('{}', 'toilet paper')).join('\n'));
  const enc = join(tmp, 'prompts.safetensors');
  assert.equal(cli('encode', '--model', TINY_A(), '--texts-file', prompts, '--out', enc).code, 0);
  const e = readSafetensors(enc).get('text_features')!.data as Float32Array;
  const mean = new Float64Array(64);
  for (let t = 0; t < 80; t++) {
    const row = e.subarray(t * 64, (t + 1) * 64);
    const n = Math.hypot(...row);
    for (let k = 0; k < 64; k++) mean[k] += row[k] / n;
  }
  const mn = Math.hypot(...mean);
  const got = (readSafetensors(cls).get('text_features')!.data as Float32Array).subarray(64, 128);
  assert.ok(maxAbsDiff(got, Float32Array.from(mean, (v) => v / mn)) < 1e-5);
});
