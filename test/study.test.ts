// The toy-world study and the demo end to end on a reduced run against the embedded model:
// structure and invariants (exact decomposition, purities, precisions, the uniform baseline's
// hand-computable scores, valid non-blank figures) and the demo command's output.

import './helpers/env.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadClip } from '../src/runtime/load.ts';
import { startServer } from '../src/server/server.ts';
import { builtinModels } from '../src/model/resolve.ts';
import { writeReport } from '../src/report/writer.ts';
import { ATTRIBUTES, FAMILIES } from '../src/toyworld/index.ts';
import {
  attributePool, balancedSet, chanceLevel, labelHead, OTHER, runToyworldStudy, SEG_METHODS, studyReport, uniformBaseline, type ToyworldScenes, type ToyworldStudy,
} from '../src/toyworld_study/index.ts';
import { exactnessStatement } from '../src/decompose/invariant.ts';
import { headsByFamily } from '../src/toyworld_study/heads.ts';
import { findings } from '../src/toyworld_study/report.ts';

const REPO = join(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'cliplens-study-'));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(REPO, 'bin/cliplens.js'), ...args], { encoding: 'utf8', env: { ...process.env, CLIPLENS_OFFLINE: '1' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A PNG that decodes, has a sensible size and is not one flat colour. */
async function assertPng(path: string) {
  const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
  assert.ok(info.width >= 64 && info.height >= 64, `${path}: ${info.width}x${info.height}`);
  let distinct = 0;
  for (let i = info.channels; i < data.length; i += info.channels) if (data[i] !== data[0]) distinct++;
  assert.ok(distinct > data.length / info.channels / 100, `${path} is (nearly) blank`);
}

const inUnit = (x: number, what: string) => assert.ok(x >= 0 && x <= 1 && Number.isFinite(x), `${what} = ${x} not in [0, 1]`);

let run: { study: ToyworldStudy; scenes: ToyworldScenes } | undefined;

test('reduced study: every part runs and its numbers respect their invariants', async () => {
  const model = await loadClip(undefined, { threads: 1 });
  const hasCorrelated = builtinModels().includes('toyworld-correlated');
  if (!hasCorrelated) console.log('# models/toyworld-correlated is absent: part (e) runs on the main model as a stand-in');
  const correlated = hasCorrelated ? await loadClip('toyworld-correlated', { threads: 1 }) : undefined;
  run = await runToyworldStudy(model, { quick: true, n: 64, segImages: 12, perGroup: 3, draws: 3, correlated });
  const s = run.study;
  const { L, H } = s.dims;

  // The terms sum to the (normalised) embedding.
  assert.ok(s.decompositionError < 1e-4, `decomposition error ${s.decompositionError}`);

  // (a) accuracies per family, one per cumulative layer ablation.
  assert.deepEqual(s.ablation.map((a) => a.family), FAMILIES);
  for (const a of s.ablation) {
    assert.equal(a.upTo.length, L);
    assert.equal(a.classes, ATTRIBUTES[a.family].length);
    for (const x of [a.baseline, a.mlps, ...a.upTo]) inUnit(x, `accuracy ${a.family}`);
    assert.equal(s.zeroShot[a.family], a.baseline);
  }

  // (b) one label per head; shares are a distribution over the families and OTHER; purity is the top family share.
  assert.equal(s.heads.length, L * H);
  for (const h of s.heads) {
    assert.equal(h.texts.length, s.settings.m);
    inUnit(h.purity, `purity ${h.layer}:${h.head}`);
    const total = Object.values(h.shares).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(total - 1) < 1e-9);
    const top = Math.max(...FAMILIES.map((f) => h.shares[f]));
    assert.ok(Math.abs(h.purity - top) < 1e-9);
    assert.equal(h.specialised, h.purity >= s.settings.minPurity - 1e-9);
    h.texts.forEach((t, i) => assert.equal(h.families[i], s.pool.family[s.pool.texts.indexOf(t)]));
  }

  // (c) precision@k and chance in [0, 1] for every head and family.
  assert.equal(s.retrieval.heads.length, L * H);
  for (const f of FAMILIES) {
    inUnit(s.retrieval.whole[f], `whole P@k ${f}`);
    inUnit(s.retrieval.chance[f], `chance ${f}`);
    for (const h of s.retrieval.heads) inUnit(h.precision[f], `P@k ${h.layer}:${h.head} ${f}`);
  }

  // (d) the uniform map predicts background everywhere: its scores follow from the masks alone.
  const g = s.segmentation;
  assert.equal(g.images, 12);
  const expect = uniformBaseline(run.scenes.seg.scenes.map((x) => x.mask));
  const got = g.results['uniform map'];
  assert.equal(g.degenerate['uniform map'], 12);
  for (const key of ['pixelAccuracy', 'mIoU', 'mAP'] as const) assert.ok(Math.abs(got[key] - expect[key]) < 1e-9, `uniform ${key}: ${got[key]} vs ${expect[key]}`);
  assert.ok(Math.abs(got.iou[1]) < 1e-12);
  assert.equal(expect.mAP, 0.5);
  for (const m of SEG_METHODS) for (const x of [g.results[m].pixelAccuracy, g.results[m].mIoU, g.results[m].mAP]) inUnit(x, `segmentation ${m}`);

  // (e) one cell per (shape, background) group, each with perGroup scenes.
  const e = s.spurious;
  assert.equal(e.standIn, !hasCorrelated);
  assert.equal(e.cells.length, ATTRIBUTES.shape.length * ATTRIBUTES.background.length);
  for (const c of e.cells) assert.equal(c.count, 3);
  for (const sm of [e.before, e.after]) {
    inUnit(sm.worst, 'worst');
    assert.ok(sm.worst <= sm.mean + 1e-12 && sm.mean <= 1);
  }
  if (e.heads.length) {
    assert.equal(e.random.draws, 3);
    assert.equal(e.random.worstPerDraw.length, 3);
  }
  // The sweep adds heads in decreasing background share; each point's accuracies are consistent.
  assert.equal(e.allHeads.length, L * H);
  assert.ok(e.sweep.length <= 8);
  e.sweep.forEach((p, i) => {
    assert.equal(p.k, i + 1);
    if (i) assert.ok(p.added.backgroundShare <= e.sweep[i - 1].added.backgroundShare + 1e-12);
    assert.ok(p.added.backgroundShare > 0);
    for (const [w, m] of [[p.worst, p.mean], [p.randomWorst, p.randomMean]]) {
      inUnit(w, 'sweep worst');
      assert.ok(w <= m + 1e-12 && m <= 1);
    }
  });
  // With the same heads as the main selection, the sweep repeats its numbers.
  const same = e.sweep[e.heads.length - 1];
  if (same && e.heads.every((h) => e.sweep.slice(0, e.heads.length).some((p) => p.added.layer === h.layer && p.added.head === h.head))) {
    assert.ok(Math.abs(same.worst - e.after.worst) < 1e-12);
    assert.ok(Math.abs(same.mean - e.after.mean) < 1e-12);
  }
  await model.release();
  if (correlated) await correlated.release();
});

test('reduced study: the report has every section and valid, non-blank figures', async () => {
  assert.ok(run, 'the study test did not run');
  const dir = join(tmp, 'study');
  const w = await writeReport(dir, await studyReport(run.study, run.scenes));
  for (const f of ['report.md', 'index.html', 'report.json']) assert.ok(w.files.includes(f));
  const md = readFileSync(join(dir, 'report.md'), 'utf8');
  for (const title of ['(a) Mean-ablation by layer', '(b) TextSpan', '(c) Property retrieval', '(d) Zero-shot segmentation', '(e) Removing a spurious cue']) assert.ok(md.includes(title), `report.md lacks '${title}'`);
  const pngs = readdirSync(join(dir, 'figures')).filter((f) => f.endsWith('.png'));
  assert.ok(pngs.length >= 8, `only ${pngs.length} figures`);
  for (const p of pngs) await assertPng(join(dir, 'figures', p));
  const json = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
  assert.equal(json.sections.length, 7);
  // The summary's claims are counted from the data: (c) names every labelled head, better or not.
  const f = findings(run.study);
  assert.deepEqual(f.map((x) => x.slice(0, 3)), ['(a)', '(b)', '(c)', '(d)', '(e)']);
  assert.ok(md.includes('## What the numbers show'));
  const by = headsByFamily(run.study.heads);
  const labelled = FAMILIES.flatMap((fam) => by[fam].map((h) => ({ h, fam })));
  const P = (h: { layer: number; head: number }, fam: string) => run!.study.retrieval.heads.find((x) => x.layer === h.layer && x.head === h.head)!.precision[fam];
  const better = labelled.filter(({ h, fam }) => P(h, fam) > run!.study.retrieval.whole[fam]);
  if (labelled.length) assert.ok(f[2].includes(`${better.length} of ${labelled.length} labelled heads retrieve their own family better`), f[2]);
  for (const { h } of labelled) assert.ok(f[2].includes(`L${h.layer}.H${h.head} `), `(c) omits L${h.layer}.H${h.head}`);
  assert.ok(f[4].includes(run.study.spurious.protocolText));
  assert.match(exactnessStatement(run.study.decompositionError, 5), /^The terms sum to the embedding within float32 round-off: max \|Σ terms − z\/‖z‖\| = \S+ over 5 images \(tolerance 1e-5\)\.$/);
  assert.match(exactnessStatement(2e-3, 5), /^The terms do NOT sum to the embedding/);
});

test('purity, chance level and the uniform baseline on hand-made inputs', () => {
  const h = labelHead(['a', 'b', 'c', 'd', 'e'], ['color', OTHER, 'shape', 'color', 'shape'], [0.1, 0.2, 0.3, 0.4, 0.5], 5, 1, 0.6);
  assert.equal(h.family, 'color'); // tie with shape: colour was picked first
  assert.ok(Math.abs(h.purity - 0.4) < 1e-12);
  assert.equal(h.specialised, false);
  const none = labelHead(['a', 'b'], [OTHER, OTHER], [0.1, 0.2], 0, 0, 0.6);
  assert.equal(none.family, 'none');
  assert.equal(none.purity, 0);
  // Labels [0, 0, 1, 1]: each row shares its value with 1 of the 3 others.
  assert.ok(Math.abs(chanceLevel(Int32Array.from([0, 0, 1, 1])) - 1 / 3) < 1e-12);
  const masks = [Uint8Array.from([1, 0, 0, 0]), Uint8Array.from([1, 1, 0, 0])];
  const u = uniformBaseline(masks);
  assert.equal(u.pixelAccuracy, 5 / 8);
  assert.equal(u.mIoU, 5 / 16);
  const pool = attributePool();
  assert.equal(new Set(pool.texts).size, pool.texts.length);
  for (const f of FAMILIES) assert.ok(pool.family.filter((x) => x === f).length >= 3 * ATTRIBUTES[f].length);
});

test('balanced test set: exactly perGroup scenes in each (shape, background) group, deterministic', async () => {
  const model = await loadClip(undefined, { threads: 1 });
  const a = balancedSet(model, 'shape', 'background', 2, 99);
  const b = balancedSet(model, 'shape', 'background', 2, 99);
  assert.equal(a.scenes.length, 32);
  const counts = new Map<string, number>();
  for (const s of a.scenes) counts.set(`${s.labels.shape}|${s.labels.background}`, (counts.get(`${s.labels.shape}|${s.labels.background}`) ?? 0) + 1);
  assert.equal(counts.size, 16);
  for (const c of counts.values()) assert.equal(c, 2);
  assert.deepEqual(a.pixels.data, b.pixels.data);
  assert.equal(a.labels.shape[0], ATTRIBUTES.shape.indexOf(a.scenes[0].labels.shape));
  await model.release();
});

test('cliplens demo: prints zero-shot per family and each head with its family and purity, writes the report', () => {
  const out = join(tmp, 'demo');
  const r = cli('demo', '--out', out);
  assert.equal(r.code, 0, r.stderr);
  for (const f of FAMILIES) assert.match(r.stdout, new RegExp(`^\\s+${f}\\s+\\d+\\.\\d%`, 'm'), `no zero-shot line for ${f}`);
  const headLines = r.stdout.split('\n').filter((l) => /^\s+head L\d+\.H\d+\s+\w+\s+purity\s+\d+%/.test(l));
  assert.equal(headLines.length, 12, r.stdout); // last 3 layers × 4 heads
  assert.match(r.stdout, /report: .*index\.html/);
  for (const f of ['index.html', 'report.md', 'report.json', 'figures/heatmaps.png', 'figures/purity.png']) assert.ok(existsSync(join(out, f)), `demo did not write ${f}`);
  // Deterministic: a second run prints the same summary.
  const again = cli('demo', '--out', join(tmp, 'demo2'));
  const strip = (s: string) => s.replace(/report: .*/, '').replace(/explore .*/, '');
  assert.equal(strip(again.stdout), strip(r.stdout));
});

test('cliplens demo writes an explorer workspace that cliplens serve opens: scenes, store, heads', async () => {
  const out = join(tmp, 'demo-ws');
  const r = cli('demo', '--out', out, '--n', '40');
  assert.equal(r.code, 0, r.stderr);
  const serveLine = /explore the same scenes in the browser: (npx cliplens serve .*)$/m.exec(r.stdout);
  assert.ok(serveLine, r.stdout);
  assert.ok(serveLine[1].includes(join(out, 'store')) && serveLine[1].includes(join(out, 'heads.json')));
  const manifest = JSON.parse(readFileSync(join(out, 'store', 'manifest.json'), 'utf8'));
  assert.deepEqual(manifest.dataset.labels, [...ATTRIBUTES.shape].sort());
  assert.deepEqual(manifest.dataset.groups, [...ATTRIBUTES.background].sort());
  const heads = JSON.parse(readFileSync(join(out, 'heads.json'), 'utf8')).heads;
  assert.equal(heads.length, 12);
  const model = await loadClip(undefined, { threads: 1 });
  const srv = await startServer({ model, store: join(out, 'store'), textspan: join(out, 'heads.json'), port: 0, log: () => {} });
  try {
    const get = async (path: string, body?: object) => {
      const res = await fetch(new URL(path, srv.url), body ? { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', 'x-cliplens': '1' } } : {});
      assert.equal(res.status, 200, path);
      return res.json() as Promise<Record<string, any>>;
    };
    const info = await get('/api/info');
    assert.equal(info.store.n, 40);
    assert.equal((await get('/api/heads')).total, 12);
    // The stored scenes are the demo's: the store's image features classify shapes as well as the model does.
    const abl = await get('/api/ablation', { heads: [] });
    assert.equal(abl.n, 40);
    assert.ok(abl.baseline.overall > 0.8, `shape accuracy on the demo store ${abl.baseline.overall}`);
  } finally {
    await srv.close();
    await model.release();
  }
  // A demo with another model into the same folder replaces the workspace instead of being refused.
  const other = cli('demo', '--out', out, '--n', '40', '--model', 'toyworld-correlated', '--no-explorer');
  assert.equal(other.code, 0, other.stderr);
  const corr = cli('demo', '--out', out, '--n', '40', '--model', 'toyworld-correlated');
  assert.equal(corr.code, 0, corr.stderr);
  assert.match(corr.stdout, /npx cliplens serve --model toyworld-correlated --store/);
});

test('cliplens study toyworld --quick runs; bad input is one clear line', async () => {
  const out = join(tmp, 'study-cli');
  const r = cli('study', 'toyworld', '--quick', '--n', '40', '--out', out);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /zero-shot: shape \d/);
  assert.match(r.stdout, /report: .*index\.html/);
  if (!builtinModels().includes('toyworld-correlated')) assert.match(r.stderr, /no correlated model/);
  await assertPng(join(out, 'figures', 'd_overlays.png'));
  const bad = cli('study', 'toyworld', '--quick', '--correlated-model', join(tmp, 'nope'), '--out', join(tmp, 'x'));
  assert.notEqual(bad.code, 0);
  const lines = bad.stderr.trim().split('\n');
  assert.equal(lines.length, 1, bad.stderr);
  assert.match(lines[0], /no such file or directory/);
  const badN = cli('demo', '--n', '3', '--out', join(tmp, 'y'));
  assert.notEqual(badN.code, 0);
  assert.match(badN.stderr.trim(), /^cliplens: error: --n must be an integer ≥ 20/);
});
