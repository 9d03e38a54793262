// cliplens paper on small stand-ins laid out like the real datasets (ImageNet class folders,
// Waterbirds' metadata.csv, a gtsegs_ijcv.mat, pictures): resume after SIGKILL inside a step and
// after a step, every section's numbers against the single-purpose commands run on the plan's own
// stores and text sets, skipped sections, and a work folder of another model refused.

import './helpers/env.ts';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { jointHeads, spatialMaps } from '../src/analyses/spatial_studies.ts';
import { Decomposer } from '../src/decompose/decomposer.ts';
import { normalizeRows } from '../src/analyses/linalg.ts';
import { loadClip } from '../src/runtime/load.ts';
import { planPaper } from '../src/paper/paper.ts';
import { preprocessFiles } from '../src/model/preprocess_model.ts';
import { writeToyStandIns, type ToyStandIns } from '../src/toyworld_study/paper_data.ts';
import { fixturePath, REPO, TINY_A } from './helpers/fixtures.ts';
import { runCli } from './helpers/cli_in_process.ts';

const tmp = mkdtempSync(join(tmpdir(), 'cliplens-paper-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const run = runCli;
async function ok(args: string[]) {
  const r = await run(args);
  assert.equal(r.rc, 0, `cliplens ${args.join(' ')} failed: ${r.err}`);
  return r;
}

/** The CLI as a separate process (the kill hook ends it with SIGKILL). */
function spawnCli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [join(REPO, 'bin', 'cliplens.js'), ...args], { cwd: REPO, env: { ...process.env, ...env }, encoding: 'utf8' });
}

const close = (a: number, b: number, tol = 1e-9) => Math.abs(a - b) <= tol;

describe('cliplens paper', () => {
  let data: ToyStandIns;
  const out = join(tmp, 'out');
  const work = join(out, 'work');
  let args: string[];
  let results: Record<string, any>;

  before(async () => {
    data = await writeToyStandIns(join(tmp, 'data'), { size: 64, imagenet: 60, waterbirdsPerGroup: 6, segmentation: 8, pairs: 1 });
    args = ['paper', '--model', 'toyworld', '--imagenet', data.imagenet, '--waterbirds', data.waterbirds, '--imagenet-seg', data.imagenetSeg, '--images', data.images, '--out', out, '--draws', '2', '--batch-size', '8'];
  });

  it('resumes after SIGKILL inside the ImageNet store and after the TextSpan step, recomputing nothing finished', async () => {
    assert.ok(existsSync(join(data.waterbirds, 'metadata.csv')) && existsSync(data.imagenetSeg) && readdirSync(data.imagenet).length === 4);
    const k1 = spawnCli(args, { CLIPLENS_TEST_PAPER_KILL: 'in:store:imagenet:24' });
    assert.equal(k1.signal, 'SIGKILL', k1.stderr);
    assert.match(k1.stderr, /plan: \d+ steps, 0 already done/);
    assert.match(k1.stderr, /estimate: ~.* on disk/);
    const store = readdirSync(join(work, 'stores')).find((f) => f.startsWith('imagenet-'))!;
    const partial = JSON.parse(readFileSync(join(work, 'stores', store, 'manifest.json'), 'utf8'));
    assert.ok(partial.shards.length >= 3 && !partial.complete, `store after the kill: ${partial.shards.length} shards`);

    const k2 = spawnCli(args, { CLIPLENS_TEST_PAPER_KILL: 'after:textspan' });
    assert.equal(k2.signal, 'SIGKILL', k2.stderr);
    assert.match(k2.stderr, /already done/);
    const done = readdirSync(join(work, 'steps'));
    for (const s of ['classifier--imagenet.json', 'texts--descriptions.json', 'store--imagenet.json', 'ablation.json', 'textspan.json']) assert.ok(done.includes(s), `${s} recorded (${done})`);
    assert.ok(!done.includes('segmentation.json'));

    const r = await ok(args);
    const m = /(\d+) steps run, (\d+) reused/.exec(r.out)!;
    assert.ok(m, r.out);
    assert.equal(Number(m[2]), 5, `the five steps up to TextSpan are reused: ${r.out}`);
    const full = JSON.parse(readFileSync(join(work, 'stores', store, 'manifest.json'), 'utf8'));
    assert.ok(full.complete);
    assert.equal(full.shards.reduce((a: number, s: { indices: number[] }) => a + s.indices.length, 0), 60);
    const rep = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    results = rep.data.results;
    assert.deepEqual(rep.data.skipped, []);
    for (const f of ['report.md', 'index.html']) assert.ok(existsSync(join(out, f)));
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    for (const t of ['§3 Mean-ablation', '§4 TextSpan', '§5 Spurious cues (Waterbirds)', '§5 Property-based retrieval', '§6 Zero-shot segmentation', '§6 Joint decomposition', "The paper's numbers"]) assert.ok(md.includes(`## ${t}`), `report has ${t}`);

    // A second run reuses everything.
    const again = await ok(args);
    assert.match(again.out, /0 steps run, \d+ reused/);
  });

  it("each section's numbers are the single-purpose commands' on the plan's own stores and text sets", async () => {
    assert.ok(results, 'needs the run above');
    const stores = readdirSync(join(work, 'stores'));
    const inet = join(work, 'stores', stores.find((f) => f.startsWith('imagenet-'))!);
    const wb = join(work, 'stores', stores.find((f) => f.startsWith('waterbirds-'))!);
    const cls = join(work, 'texts', 'classifier_imagenet.safetensors');
    const pool = join(work, 'texts', 'texts_descriptions.safetensors');

    // §3
    const ab = JSON.parse((await ok(['ablate', '--store', inet, '--classifier', cls, '--json'])).out);
    assert.equal(ab.baseline, results.ablation.baseline);
    assert.equal(ab.mlps, results.ablation.mlps);
    assert.deepEqual(ab.cumulative, results.ablation.cumulative);

    // §4: TextSpan, and its baselines from textspan --baselines with the same draws and seed.
    const ts = JSON.parse((await ok(['textspan', '--store', inet, '--texts', pool, '--classifier', cls, '-k', '5', '--rank', '80', '--m-grid', '1,2,3,5,10,20', '--baselines', '--draws', '2', '--seed', '0', '--json'])).out);
    assert.deepEqual(ts.heads.map((h: { texts: string[] }) => h.texts), results.textspan.result.heads.map((h: { texts: string[] }) => h.texts));
    assert.deepEqual(ts.accuracy, results.textspan.result.accuracy);
    for (const kind of ['common-words', 'random-texts', 'random-directions']) {
      const mine = results[`baseline:${kind}`];
      const cmd = ts.baselines.find((b: { kind: string }) => b.kind === kind.replace(/-/g, ' '));
      assert.deepEqual(cmd.draws, mine.draws, kind);
      assert.deepEqual(cmd.seeds, mine.seeds, kind);
    }

    // §5 Waterbirds: the chosen heads through debias --heads.
    const w = results.waterbirds;
    assert.ok(w.selection.length > 0, 'some location head is chosen');
    const heads = w.selection.map((h: { layer: number; head: number }) => `${h.layer}:${h.head}`).join(',');
    const db = JSON.parse((await ok(['debias', '--store', wb, '--classifier', join(work, 'texts', 'classifier_waterbirds.safetensors'), '--heads', heads, '--random-baseline', '2', '--seed', '0', '--json'])).out);
    assert.deepEqual(db.before, w.result.before);
    assert.deepEqual(db.after, w.result.after);
    assert.deepEqual(db.random.worst, w.result.random.worst);

    // §5 retrieval through retrieve.
    const prop = results.retrieval.properties.find((p: { head?: unknown }) => p.head);
    const view = prop.views[0];
    const rt = JSON.parse((await ok(['retrieve', '--store', inet, '--query', String(view.query.row), '--heads', `${prop.head.layer}:${prop.head.head}`, '--k', '8', '--json'])).out);
    assert.deepEqual(rt.views, view.views);

    // §6 segmentation: the decomposition row is segment's reference-geometry run on the same file.
    const sg = JSON.parse((await ok(['segment', '--model', 'toyworld', '--mat', data.imagenetSeg, '--classifier', cls, '--mask-geometry', 'reference', '--json'])).out);
    const dec = results.segmentation.results.decomposition;
    for (const k of ['pixelAccuracy', 'mIoU', 'mAP'] as const) assert.ok(close(sg.metrics[k], dec[k], 1e-6), `${k}: segment ${sg.metrics[k]} vs paper ${dec[k]}`);
    assert.equal(sg.metrics.images, results.segmentation.scored);
    for (const b of ['raw attention', 'attention rollout']) assert.ok(results.segmentation.results[b].images === 8);

    // §6 joint: the maps along each text minus the mean of the two.
    const model = await loadClip('toyworld');
    const d = model.config.embedDim;
    const texts = results.joint.texts;
    const t = normalizeRows((await model.encodeTexts(texts)).features.data, 2, d);
    const dir = Float32Array.from({ length: d }, (_, k) => t[k] - (t[k] + t[d + k]) / 2);
    const file = join(data.images, 'pair_0.png');
    const [spatial] = await spatialMaps(new Decomposer(model), (await preprocessFiles(model.config, [file])).pixels, [dir]);
    const j = jointHeads(spatial, 6);
    const mine = results.joint.images[0].maps[0];
    assert.deepEqual(mine.heads.map((h: { layer: number; head: number }) => [h.layer, h.head]), j.heads.map((h) => [h.layer, h.head]));
    mine.full.forEach((v: number, i: number) => assert.ok(close(v, j.full[i], 1e-6)));
    await model.release();
  });

  it('refuses the work folder of another model, naming both', async () => {
    const r = await run(['paper', '--model', 'toyworld-correlated', '--images', data.images, '--out', out, '--no-stand-ins']);
    assert.equal(r.rc, 1);
    assert.match(r.err, /^cliplens: error: work folder .* holds results of model 'toyworld' \(fingerprint \w+\), not 'toyworld-correlated' \(fingerprint \w+\)/);
    assert.equal(r.err.trim().split('\n').length, 1);
  });

  it('refuses data it cannot use with one line', async () => {
    const flat = await run(['paper', '--model', 'toyworld', '--imagenet', data.images, '--out', join(tmp, 'bad1')]);
    assert.equal(flat.rc, 1);
    assert.match(flat.err, /^cliplens: error: --imagenet .* has no class folders/);
    const wb = await run(['paper', '--model', 'toyworld', '--waterbirds', data.imagenet, '--out', join(tmp, 'bad2')]);
    assert.match(wb.err, /^cliplens: error: --waterbirds .*: no metadata\.csv/);
    const outFile = await run(['paper', '--model', 'toyworld', '--no-stand-ins', '--out', join(data.images, 'pair_0.png')]);
    assert.match(outFile.err, /^cliplens: error: --out: .*pair_0\.png is a file, not a directory\n$/);
    const siglip = await run(['paper', '--model', fixturePath('siglip/tiny_siglip_a'), '--plan-only', '--out', join(tmp, 'bad4')]);
    assert.match(siglip.err, /^cliplens: error: cliplens paper runs the experiments of the CLIP paper; .* is a siglip model/);
    const missing = await run(['paper', '--model', 'toyworld', '--imagenet-seg', join(tmp, 'nope.mat'), '--out', join(tmp, 'bad3')]);
    assert.match(missing.err, /^cliplens: error: --imagenet-seg .* does not exist\n$/);
  });

  it('skips the sections whose data is missing and says so', async () => {
    const o2 = join(tmp, 'only_joint');
    const r = await ok(['paper', '--model', 'toyworld', '--no-stand-ins', '--images', data.images, '--out', o2]);
    for (const s of ['§3 Mean-ablation', '§4 TextSpan', '§5 Spurious cues', '§5 Property-based retrieval', '§6 Zero-shot segmentation']) assert.match(r.err, new RegExp(`skipped: ${s}.*: no --`));
    const rep = JSON.parse(readFileSync(join(o2, 'report.json'), 'utf8'));
    assert.deepEqual(rep.data.skipped.map((s: { section: string }) => s.section).sort(), ['ablation', 'retrieval', 'segmentation', 'textspan', 'waterbirds']);
    assert.deepEqual(Object.keys(rep.data.results), ['joint']);
    assert.match(readFileSync(join(o2, 'report.md'), 'utf8'), /## Skipped experiments\n\n§3 Mean-ablation: skipped, no --imagenet DIR/);
    // A real CLIP (the tiny fixture) with no data at all: the plan is empty and every section is skipped.
    const p = await ok(['paper', '--model', TINY_A(), '--plan-only', '--out', join(tmp, 'nothing')]);
    assert.match(p.err, /plan: 0 steps/);
    assert.equal((p.err.match(/^skipped: /gm) ?? []).length, 6);
  });

  it("the classifiers' cache keys include the templates: other templates are not answered from the old classifier", async () => {
    const model = await loadClip(TINY_A(), { threads: 1 });
    const templates = (name: string, lines: string[]) => {
      const f = join(tmp, name);
      writeFileSync(f, lines.join('\n'));
      return f;
    };
    const keyOf = async (t: string) => {
      const pp = await planPaper(model, { out: join(tmp, 'keys'), data: { imagenet: data.imagenet, waterbirds: data.waterbirds }, templates: t, standIns: false, loadModel: (s) => loadClip(s) });
      const params = (id: string) => JSON.stringify(pp.plan.steps.find((s) => s.id === id)!.params);
      await pp.close();
      return [params('classifier:imagenet'), params('classifier:waterbirds')];
    };
    const a = await keyOf(templates('a.txt', ['a photo of a {}.']));
    assert.deepEqual(await keyOf(templates('a2.txt', ['a photo of a {}.'])), a);
    const b = await keyOf(templates('b.txt', ['a drawing of a {}.']));
    assert.notEqual(b[0], a[0]);
    assert.notEqual(b[1], a[1]);
    await model.release();
  });
});
