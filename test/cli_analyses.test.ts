// The analysis commands end to end through main(): a store decomposed by the tiny fixture model
// from coloured squares, then every command writing its report; bad input as one-line errors.

import './helpers/env.ts';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { readSafetensors } from '../src/io/safetensors.ts';
import { loadStore } from '../src/io/store.ts';
import { writeTextSet } from '../src/analyses/text_sets.ts';
import { f32 } from '../src/tensor.ts';
import { runCli } from './helpers/cli_in_process.ts';
import { TINY_A } from './helpers/fixtures.ts';
import { writeSegmentationMat, type MatScene } from './helpers/segmentation_mat.ts';

const tmp = mkdtempSync(join(tmpdir(), 'cliplens-cli-analyses-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const p = (...s: string[]) => join(tmp, ...s);

const run = runCli;

async function ok(args: string[]) {
  const r = await run(args);
  assert.equal(r.rc, 0, `cliplens ${args.join(' ')} failed: ${r.err}`);
  return r;
}

/** A report folder with report.json/md/html and a valid, non-flat PNG figure. */
async function checkReport(dir: string): Promise<unknown> {
  for (const f of ['report.json', 'report.md', 'index.html']) assert.ok(existsSync(join(dir, f)), `${dir}/${f} missing`);
  const rep = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
  const figs = rep.sections.flatMap((s: { figures: { path: string }[] }) => s.figures.map((f) => f.path));
  assert.ok(figs.length > 0, 'report has no figure');
  for (const f of figs) {
    const img = sharp(join(dir, f));
    const meta = await img.metadata();
    assert.equal(meta.format, 'png');
    assert.ok((meta.width ?? 0) > 50 && (meta.height ?? 0) > 50, `${f} is ${meta.width}x${meta.height}`);
    const st = await img.stats();
    assert.ok(st.channels.slice(0, 3).some((c) => c.stdev > 5), `${f} is flat`);
  }
  return rep;
}

const MODEL = ['--model', TINY_A(), '--threads', '1'];
const COLOURS: Record<string, [number, number, number]> = { red: [220, 30, 30], blue: [30, 40, 220] };

before(async () => {
  for (const [name, rgb] of Object.entries(COLOURS)) {
    mkdirSync(p('ds', name), { recursive: true });
    for (let i = 0; i < 3; i++)
      await sharp({ create: { width: 48, height: 48, channels: 3, background: { r: rgb[0], g: rgb[1] + 25 * i, b: rgb[2] } } }).png().toFile(p('ds', name, `${name}${i}.png`));
  }
  // Images with a red square on green, and masks of the square, for segment.
  mkdirSync(p('seg', 'img'), { recursive: true });
  mkdirSync(p('seg', 'mask'), { recursive: true });
  for (let i = 0; i < 2; i++) {
    const W = 64;
    const img = Buffer.alloc(W * W * 3);
    const m = Buffer.alloc(W * W);
    for (let y = 0; y < W; y++)
      for (let x = 0; x < W; x++) {
        const fg = x >= 10 + 12 * i && x < 40 + 12 * i && y >= 12 && y < 44;
        img.set(fg ? [230, 20, 20] : [20, 160, 40], (y * W + x) * 3);
        m[y * W + x] = fg ? 255 : 0;
      }
    await sharp(img, { raw: { width: W, height: W, channels: 3 } }).png().toFile(p('seg', 'img', `s${i}.png`));
    await sharp(m, { raw: { width: W, height: W, channels: 1 } }).png().toFile(p('seg', 'mask', `s${i}.png`));
  }
  writeFileSync(p('classes.txt'), 'red\nblue\n');
  writeFileSync(p('wrong.txt'), 'cat\ndog\n');
  writeFileSync(p('pool.txt'), ['a red square', 'a blue square', 'a dog', 'a green field', 'the sky', 'a car', 'water', 'a forest'].join('\n'));
  await ok(['texts', ...MODEL, '--classes', p('classes.txt'), '-o', p('cls.safetensors')]);
  await ok(['texts', ...MODEL, '--classes', p('wrong.txt'), '-o', p('wrong.safetensors')]);
  await ok(['texts', ...MODEL, '--file', p('pool.txt'), '-o', p('pool.safetensors')]);
  await ok(['decompose', ...MODEL, '--dataset', p('ds'), '--store', p('store'), '--batch-size', '6']);
  writeTextSet(p('small.safetensors'), { kind: 'classifier', names: ['red', 'blue'], embeddings: f32([2, 8]), model: { name: 'tiny_a' } });
});

describe('analysis commands on a fixture-model store', () => {
  it('ablate: accuracies and a report', async () => {
    const r = await ok(['ablate', '--store', p('store'), '--classifier', p('cls.safetensors'), '--heads', '5:1,4:*', '--report', p('rep_ablate'), '--json']);
    const j = JSON.parse(r.out);
    assert.equal(j.images, 6);
    assert.equal(j.cumulative.length, 6);
    assert.equal(j.single.length, 6);
    for (const a of [j.baseline, j.mlps, j.heads.accuracy, ...j.cumulative.map((c: { accuracy: number }) => c.accuracy)])
      assert.ok(a >= 0 && a <= 1 && Number.isInteger(a * 6), `accuracy ${a} is not k/6`);
    // Everything ablated → one constant embedding → one class for all: 3 of 6 right.
    assert.equal(j.cumulative.at(-1).accuracy, 0.5);
    for (const a of [j.clsToCls, j.mlpsAndClsToCls]) assert.ok(a >= 0 && a <= 1 && Number.isInteger(a * 6), `CLS→CLS accuracy ${a} is not k/6`);
    assert.match(j.modelFingerprint, /^[0-9a-f]{16}$/);
    const rep = (await checkReport(p('rep_ablate'))) as { summary: string; models: { name: string; fingerprint: string }[] };
    assert.match(rep.summary, /Baseline/);
    assert.deepEqual(rep.models, [{ name: 'tiny_a', fingerprint: j.modelFingerprint }]);
    assert.match(readFileSync(p('rep_ablate', 'report.md'), 'utf8'), /\| CLS→CLS attention \| [\d.]+ \|/);
  });

  it('textspan: heads.json in the explorer format, accuracy curve', async () => {
    await ok(['textspan', '--store', p('store'), '--texts', p('pool.safetensors'), '--layers', 'last:2', '-k', '3', '--classifier', p('cls.safetensors'), '--m-grid', '1,2,4', '--out', p('heads.json'), '--report', p('rep_ts')]);
    const h = JSON.parse(readFileSync(p('heads.json'), 'utf8'));
    assert.equal(h.model, 'tiny_a');
    assert.equal(h.rank, 80);
    assert.deepEqual(h.heads.map((x: { layer: number; head: number }) => `${x.layer}:${x.head}`), ['4:0', '4:1', '4:2', '4:3', '5:0', '5:1', '5:2', '5:3']);
    for (const x of h.heads) {
      assert.equal(x.texts.length, 3);
      assert.equal(new Set(x.indices).size, 3);
      assert.ok(x.varianceExplained[0] > 0 && x.varianceExplained[2] <= 1 + 1e-9 && x.varianceExplained[2] >= x.varianceExplained[0]);
    }
    const rep = (await checkReport(p('rep_ts'))) as { data: { accuracy: { m: number[]; replaced: number[] } } };
    assert.deepEqual(rep.data.accuracy.m, [1, 2, 4]);
    assert.equal(rep.data.accuracy.replaced.length, 3);
  });

  it('debias: by heads and by TextSpan query, with export', async () => {
    const r = await ok(['debias', '--store', p('store'), '--classifier', p('cls.safetensors'), '--heads', '5:0', '--random-baseline', '4', '--report', p('rep_db'), '--export', p('edited.safetensors'), '--json']);
    const j = JSON.parse(r.out);
    assert.deepEqual(j.heads, [{ layer: 5, head: 0 }]);
    assert.equal(j.random.draws, 4);
    assert.equal(j.cells.length, 2); // no groups: one cell per label
    await checkReport(p('rep_db'));
    const ex = readSafetensors(p('edited.safetensors'));
    assert.deepEqual(ex.get('image_features')!.shape, [6, 64]);
    assert.deepEqual(ex.get('head_means')!.shape, [1, 64]);
    const q = await ok(['debias', '--store', p('store'), '--classifier', p('cls.safetensors'), '--query', 'square', '--textspan', p('heads.json'), '--random-baseline', '0', '--json']);
    const jq = JSON.parse(q.out);
    const hs = JSON.parse(readFileSync(p('heads.json'), 'utf8')).heads.filter((x: { texts: string[] }) => x.texts.some((t) => t.includes('square')));
    assert.equal(jq.heads.length, hs.length);
    assert.equal(jq.selection.match, 'substring');
  });

  it('retrieve: neighbours per head with image grids', async () => {
    const r = await ok(['retrieve', '--store', p('store'), '--query', 'red/red1.png', '--heads', '5:1,5:2', '--k', '3', '--report', p('rep_rt'), '--json']);
    const j = JSON.parse(r.out);
    assert.equal(j.query.row, 4);
    assert.deepEqual(j.views.map((v: { name: string }) => v.name), ['head L5.H1', 'head L5.H2', 'heads L5.H1+L5.H2', 'whole embedding']);
    assert.match(j.search, /brute force/);
    for (const v of j.views) {
      assert.equal(v.neighbours.length, 3);
      assert.ok(v.neighbours.every((n: { row: number }) => n.row !== 4));
      assert.ok(v.precision.labels >= 0 && v.precision.labels <= 1);
    }
    await checkReport(p('rep_rt'));
  });

  it('segment: metrics against masks, overlays and a report', async () => {
    const r = await ok(['segment', ...MODEL, '--text', 'a red square', '--dataset', p('seg', 'img'), '--masks', p('seg', 'mask'), '--report', p('rep_seg'), '--out-dir', p('ov'), '--json']);
    const j = JSON.parse(r.out);
    assert.equal(j.metrics.images, 2);
    for (const k of ['pixelAccuracy', 'mIoU', 'mAP']) assert.ok(j.metrics[k] > 0 && j.metrics[k] < 1, `${k} = ${j.metrics[k]}`);
    const pa = (j.images[0].pixelAccuracy + j.images[1].pixelAccuracy) / 2;
    assert.ok(Math.abs(pa - j.metrics.pixelAccuracy) < 1e-6); // equal-size images: mean of per-image accuracy
    assert.ok(existsSync(p('ov', 's0.png')) && existsSync(p('ov', 's1.png')));
    await checkReport(p('rep_seg'));
  });

  it('segment --mat: the same images and masks from a gtsegs_ijcv.mat give the same metrics', async () => {
    const scenes: MatScene[] = [];
    for (let i = 0; i < 2; i++) {
      const img = await sharp(p('seg', 'img', `s${i}.png`)).raw().toBuffer({ resolveWithObject: true });
      const m = await sharp(p('seg', 'mask', `s${i}.png`)).extractChannel(0).raw().toBuffer();
      scenes.push({ width: img.info.width, height: img.info.height, rgb: new Uint8Array(img.data), mask: Uint8Array.from(m, (v) => (v > 0 ? 1 : 0)) });
    }
    await writeSegmentationMat(p('seg.mat'), scenes);
    const folder = JSON.parse((await ok(['segment', ...MODEL, '--text', 'a red square', '--dataset', p('seg', 'img'), '--masks', p('seg', 'mask'), '--json'])).out);
    const fromMat = JSON.parse((await ok(['segment', ...MODEL, '--text', 'a red square', '--mat', p('seg.mat'), '--json', '--report', p('rep_mat')])).out);
    assert.deepEqual(fromMat.images.map((r: { name: string }) => r.name), ['seg_0', 'seg_1']);
    for (const k of ['pixelAccuracy', 'mIoU', 'mAP']) assert.equal(fromMat.metrics[k], folder.metrics[k], k);
    await checkReport(p('rep_mat'));
    const one = JSON.parse((await ok(['segment', ...MODEL, '--text', 'a red square', '--mat', p('seg.mat'), '--limit', '1', '--json'])).out);
    assert.equal(one.metrics.images, 1);
    assert.equal(one.images[0].pixelAccuracy, fromMat.images[0].pixelAccuracy);
  });

  it('segment --resume: an interrupted run continues where it stopped and gives the full-run metrics', async () => {
    const args = ['segment', ...MODEL, '--text', 'a red square', '--mat', p('seg.mat'), '--json', '--resume', p('seg.progress')];
    const full = JSON.parse((await ok(['segment', ...MODEL, '--text', 'a red square', '--mat', p('seg.mat'), '--json'])).out);
    await ok([...args, '--limit', '1']);
    // A line torn by a kill is dropped, not trusted.
    writeFileSync(p('seg.progress'), readFileSync(p('seg.progress'), 'utf8') + '{"row":{"name":"seg_1","tar');
    const r = await ok(args);
    assert.match(r.err, /resuming: 1 of 2 images already scored/);
    const j = JSON.parse(r.out);
    assert.deepEqual(j.metrics, full.metrics);
    assert.deepEqual(j.images, full.images);
    assert.equal(readFileSync(p('seg.progress'), 'utf8').trim().split('\n').length, 3);
    const again = await run(['segment', ...MODEL, '--text', 'a blue square', '--mat', p('seg.mat'), '--json', '--resume', p('seg.progress')]);
    assert.equal(again.rc, 1);
    assert.match(again.err, /progress file .*seg\.progress \(--resume\) belongs to another run \(target 'text:a red square', now 'text:a blue square'\)/);
  });

  it('segment: --mask-geometry reference squashes the mask, aligned crops it like the image', async () => {
    // A wide image whose right-hand third holds the object: after the centre crop it sits at the right edge.
    const W = 96, H = 48;
    const rgb = new Uint8Array(W * H * 3);
    const mask = new Uint8Array(W * H);
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const fg = x >= 56 && x < 80 && y >= 10 && y < 38;
        rgb.set(fg ? [230, 20, 20] : [20, 160, 40], (y * W + x) * 3);
        mask[y * W + x] = fg ? 1 : 0;
      }
    await writeSegmentationMat(p('wide.mat'), [{ width: W, height: H, rgb, mask }]);
    const run1 = async (g: string) => JSON.parse((await ok(['segment', ...MODEL, '--text', 'a red square', '--mat', p('wide.mat'), '--mask-geometry', g, '--json'])).out);
    const aligned = await run1('aligned');
    const reference = await run1('reference');
    assert.equal(aligned.maskGeometry, 'aligned');
    assert.equal(reference.maskGeometry, 'reference');
    // Same heat map, different ground truth on the input square.
    assert.notEqual(aligned.metrics.pixelAccuracy, reference.metrics.pixelAccuracy);
  });

  it('joint: a grid of per-head overlays', async () => {
    const r = await ok(['joint', ...MODEL, '--text', 'a red square', p('seg', 'img', 's0.png'), '--top', '4', '--out', p('joint.png'), '--json']);
    const j = JSON.parse(r.out);
    assert.equal(j.heads.length, 4);
    for (let i = 1; i < 4; i++) assert.ok(j.heads[i - 1].total >= j.heads[i].total);
    assert.equal(j.full.length, 14 * 14);
    const meta = await sharp(p('joint.png')).metadata();
    assert.equal(meta.format, 'png');
    assert.ok((await sharp(p('joint.png')).stats()).channels[0].stdev > 5);
  });
});

describe('retrieve --image: an image outside the store, decomposed by the store model', () => {
  it('ranks the store by the dot product of the terms (nns.ipynb), its own copy first by the whole embedding', async () => {
    const img = p('ds', 'red', 'red1.png');
    const r = await ok(['retrieve', '--store', p('store'), '--image', img, ...MODEL, '--heads', 'L5.H1', '--k', '6', '--json', '--report', p('rep_img')]);
    const j = JSON.parse(r.out);
    assert.equal(j.score, 'dot');
    assert.equal(j.query.row, undefined);
    assert.equal(j.query.id, img);
    const whole = j.views.find((v: { name: string }) => v.name === 'whole embedding');
    // The same picture is in the store: its unit embedding has the largest dot product with itself.
    assert.equal(whole.neighbours[0].id, 'red/red1.png');
    assert.ok(Math.abs(whole.neighbours[0].score - 1) < 1e-4);
    // The head view's scores are the dot products of L5.H1's terms: the query's (decompose) with each row's (store).
    await ok(['decompose', ...MODEL, img, '--out', p('q.safetensors')]);
    const q = readSafetensors(p('q.safetensors')).get('attn')!.data as Float32Array; // [1, 6, 4, 64]
    const qh = q.subarray((5 * 4 + 1) * 64, (5 * 4 + 2) * 64);
    const s = loadStore(p('store'));
    const rows = j.views[0].neighbours as { row: number; score: number }[];
    assert.equal(rows.length, 6);
    for (const nb of rows) {
      const o = ((nb.row * 6 + 5) * 4 + 1) * 64;
      let dotp = 0;
      for (let k = 0; k < 64; k++) dotp += qh[k] * s.attn.data[o + k];
      assert.ok(Math.abs(dotp - nb.score) < 1e-5, `row ${nb.row}: ${dotp} vs ${nb.score}`);
    }
    for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1].score >= rows[i].score);
    await checkReport(p('rep_img'));
  });

  it('needs the store model: another one is refused, a name it cannot find asks for --model', async () => {
    const img = p('ds', 'red', 'red1.png');
    const other = await run(['retrieve', '--store', p('store'), '--image', img, '--model', 'toyworld', '--heads', 'L5.H1', '--json']);
    assert.equal(other.rc, 1);
    assert.match(other.err.trim(), /^cliplens: error: different models: store .*store is 'tiny_a' \(fingerprint [0-9a-f]{16}\), --model is 'toyworld' \(fingerprint [0-9a-f]{16}\); use files made by one model$/);
    const unnamed = await run(['retrieve', '--store', p('store'), '--image', img, '--heads', 'L5.H1', '--json']);
    assert.equal(unnamed.rc, 1);
    assert.match(unnamed.err.trim(), /^cliplens: error: --image needs the model that made the store \('tiny_a'\), which cliplens cannot find by that name: give --model$/);
  });
});

describe('artifacts of different models are refused with one line naming both', () => {
  const refused = async (args: string[], re: RegExp) => {
    const r = await run(args);
    assert.equal(r.rc, 1, r.err);
    const lines = r.err.trim().split('\n');
    assert.equal(lines.length, 1, r.err);
    assert.match(lines[0], re);
  };
  const tiny = "'tiny_a' \\(fingerprint [0-9a-f]{16}\\)";
  const toy = "'toyworld' \\(fingerprint [0-9a-f]{16}\\)";

  before(async () => {
    await ok(['texts', '--model', 'toyworld', '--classes', p('classes.txt'), '-o', p('toy_cls.safetensors')]);
    await ok(['texts', '--model', 'toyworld', '--file', p('pool.txt'), '-o', p('toy_pool.safetensors')]);
  });

  it('store × classifier (ablate, textspan, debias)', async () => {
    const re = new RegExp(`different models: store .*store is ${tiny}, classifier .*toy_cls\\.safetensors is ${toy}; use files made by one model$`);
    await refused(['ablate', '--store', p('store'), '--classifier', p('toy_cls.safetensors'), '--json'], re);
    await refused(['debias', '--store', p('store'), '--classifier', p('toy_cls.safetensors'), '--heads', '5:0', '--json'], re);
    await refused(['textspan', '--store', p('store'), '--texts', p('pool.safetensors'), '-k', '3', '--classifier', p('toy_cls.safetensors'), '--json'], re);
  });

  it('store × text pool (textspan)', async () => {
    await refused(['textspan', '--store', p('store'), '--texts', p('toy_pool.safetensors'), '--json'], new RegExp(`different models: store .*store is ${tiny}, text pool .*toy_pool\\.safetensors is ${toy}`));
  });

  it('store × heads.json (debias --query)', async () => {
    const h = JSON.parse(readFileSync(p('heads.json'), 'utf8'));
    assert.equal(h.model, 'tiny_a');
    assert.match(h.modelFingerprint, /^[0-9a-f]{16}$/);
    writeFileSync(p('heads-toy.json'), JSON.stringify({ ...h, model: 'toyworld', modelFingerprint: 'feedfacefeedface' }));
    await refused(['debias', '--store', p('store'), '--classifier', p('cls.safetensors'), '--query', 'square', '--textspan', p('heads-toy.json'), '--json'], new RegExp(`different models: store .*store is ${tiny}, TextSpan file .*heads-toy\\.json is 'toyworld' \\(fingerprint feedfacefeedface\\)`));
  });

  it('resume file × model (segment --resume)', async () => {
    const args = ['segment', '--text', 'a red square', '--mat', p('seg.mat'), '--json', '--resume', p('seg-prov.progress')];
    await ok([...args, ...MODEL, '--limit', '1']);
    await refused([...args, '--model', 'toyworld'], new RegExp(`different models: progress file .*seg-prov\\.progress \\(--resume\\) is ${tiny}, this run is ${toy}`));
  });

  it('model × classifier (segment --classifier)', async () => {
    await refused(['segment', '--model', 'toyworld', '--classifier', p('cls.safetensors'), '--mat', p('seg.mat'), '--json'], new RegExp(`different models: --model is ${toy}, classifier .*cls\\.safetensors is ${tiny}`));
  });

  it('debias --query picks the same heads with or without --model; embedding matching says why it needs one', async () => {
    const base = ['debias', '--store', p('store'), '--classifier', p('cls.safetensors'), '--query', 'square', '--textspan', p('heads.json'), '--random-baseline', '0', '--json'];
    const without = JSON.parse((await ok(base)).out);
    const withModel = JSON.parse((await ok([...base, ...MODEL])).out);
    assert.deepEqual(withModel.heads, without.heads);
    assert.equal(withModel.selection.match, 'substring');
    await refused([...base, '--match', 'embedding'], /--match embedding ranks heads with the model's text encoder: give --model \(the model that made the store\)/);
    await refused([...base, '--match', 'embedding', '--model', 'toyworld'], new RegExp(`different models: store .*store is ${tiny}, --model is ${toy}`));
    const emb = JSON.parse((await ok([...base, '--match', 'embedding', ...MODEL, '--top', '2'])).out);
    assert.equal(emb.heads.length, 2);
  });
});

describe('bad input gives one-line errors', () => {
  const cases: [string, string[], RegExp][] = [
    ['missing store', ['ablate', '--store', '/nonexistent/store', '--classifier', 'x'], /store \/nonexistent\/store does not exist/],
    ['classifier of another size', ['ablate', '--store', '__store', '--classifier', '__small'], /embedding size 8, the store's model 'tiny_a' has 64/],
    ['unknown head', ['retrieve', '--store', '__store', '--query', '0', '--heads', '99:0'], /layer 99 is not in the store/],
    ['labels not class names', ['debias', '--store', '__store', '--classifier', '__wrong', '--heads', '5:0'], /store labels not among the classifier's class names: blue, red/],
    ['missing classifier', ['ablate', '--store', '__store', '--classifier', '/nonexistent.safetensors'], /--classifier \/nonexistent.safetensors does not exist/],
    ['mat masks', ['segment', '--text', 'x', '--masks', '__mat', 'a.png', '--json'], /MATLAB v7\.3 \(HDF5\) file, not a masks folder; .*pass it as --mat /],
    ['broken mat', ['segment', '--text', 'x', '--mat', '__mat', '--json'], /gt\.mat: cannot open as HDF5/],
    ['mat and masks', ['segment', '--text', 'x', '--mat', '__mat', '--masks', '__mat', '--json'], /--mat holds its own masks/],
    ['mat and images', ['segment', '--text', 'x', '--mat', '__mat', 'a.png', '--json'], /give one of: image files, --dataset, --mat/],
    ['bad geometry', ['segment', '--text', 'x', '--mat', '__mat', '--mask-geometry', 'squash', '--json'], /--mask-geometry must be one of aligned, reference, got 'squash'/],
  ];
  for (const [what, args, re] of cases)
    it(what, async () => {
      writeFileSync(p('gt.mat'), Buffer.concat([Buffer.from('MATLAB 7.3 MAT-file, Platform: GLNXA64'.padEnd(128, ' ')), Buffer.alloc(512)]));
      const sub = { __store: p('store'), __small: p('small.safetensors'), __wrong: p('wrong.safetensors'), __mat: p('gt.mat') } as Record<string, string>;
      const r = await run(args.map((a) => sub[a] ?? a));
      assert.equal(r.rc, 1);
      const lines = r.err.trim().split('\n');
      assert.equal(lines.length, 1, r.err);
      assert.match(lines[0], /^cliplens: error: /);
      assert.match(lines[0], re);
    });
});
