// The headline numbers as the authors' code computes them: on the very terms stored in
// test/fixtures/protocols (toy-world scenes decomposed by the toyworld and tiny_a CLIPs), the
// ablation table with CLS→CLS (compute_ablations.py), TextSpan's texts and completeness accuracy
// (compute_complete_text_set.py) and spurious-cue removal per group and worst group
// (compute_use_specific_heads.py) through the CLI's --json equal the values those scripts printed
// (see test/fixtures/protocols/PROVENANCE.md for how they were produced).

import './helpers/env.ts';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { writeTextSet } from '../src/analyses/text_sets.ts';
import { fromMetadata } from '../src/io/provenance.ts';
import { SafetensorsFile } from '../src/io/safetensors.ts';
import { StoreWriter } from '../src/io/store.ts';
import { f32, type F32 } from '../src/tensor.ts';
import { runCli } from './helpers/cli_in_process.ts';
import { fixturePath } from './helpers/fixtures.ts';

const tmp = mkdtempSync(join(tmpdir(), 'cliplens-protocols-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Expected {
  ablation: { baseline: number; mlps: number; clsToCls: number; mlpsAndClsToCls: number; attentionAblations: number[] };
  completeness: { lastLayers: number; rank: number; m: number; accuracy: number; heads: { layer: number; head: number; texts: string[] }[] }[];
  debias: { heads: [number, number][]; before: ReferenceGroups; after: ReferenceGroups }[];
}
interface ReferenceGroups {
  fullAccuracy: Record<string, number>;
  cells: Record<string, number>;
  worst: number;
}

async function json(args: string[]): Promise<any> {
  const r = await runCli(args);
  assert.equal(r.rc, 0, `cliplens ${args.join(' ')} failed: ${r.err}`);
  return JSON.parse(r.out);
}

/** The fixture's terms as a cliplens store, its classifier and pool as text sets. */
function materialise(name: string) {
  const f = SafetensorsFile.open(fixturePath(`protocols/${name}.safetensors`));
  const t = (k: string): F32 => f.readF32(k);
  const attn = t('attn');
  const [n, L, H, d] = attn.shape;
  const labels = f.read('labels').data as Int32Array;
  const groups = f.read('groups').data as Int32Array;
  const classes = JSON.parse(f.metadata.classes) as string[];
  const groupNames = JSON.parse(f.metadata.groups) as string[];
  const model = fromMetadata(f.metadata)!;
  const dir = join(tmp, name);
  const items = Array.from({ length: n }, (_, i) => ({ id: `scene${i}.png`, label: classes[labels[i]], group: groupNames[groups[i]] }));
  const w = StoreWriter.open({
    dir,
    model: { name: model.name, fingerprint: model.fingerprint! },
    dims: { L, H, N: 1, D: 1, d }, // token count and width are not what these analyses read
    layers: Array.from({ length: L }, (_, l) => l),
    dtype: 'F32',
    normalised: true,
    batchSize: n,
    dataset: { root: tmp, kind: 'list', labels: classes, groups: groupNames },
    items,
  });
  w.writeBatch(0, items.map((_, i) => i), { attn, cls_attn: t('cls_attn'), mlp: t('mlp'), image_features: t('image_features'), norm: t('norm') }, []);
  writeTextSet(join(dir, 'classifier.safetensors'), { kind: 'classifier', names: classes, embeddings: t('classifier'), model });
  const pool = t('pool');
  writeTextSet(join(dir, 'pool.safetensors'), { kind: 'pool', names: JSON.parse(f.metadata.pool), embeddings: f32(pool.shape, pool.data), model });
  f.close();
  const expected = JSON.parse(readFileSync(fixturePath(`protocols/${name}.expected.json`), 'utf8')) as Expected;
  return { dir, L, classes, groupNames, expected };
}

/** Percent as the reference prints it vs a 0..1 accuracy. */
const same = (ours: number, reference: number, what: string) => assert.ok(Math.abs(100 * ours - reference) < 1e-6, `${what}: cliplens ${100 * ours}%, reference ${reference}%`);

for (const name of ['toyworld', 'tiny_a']) {
  describe(`the reference's protocols on ${name}'s stored terms`, () => {
    const fx = materialise(name);
    const store = ['--store', fx.dir];
    const classifier = ['--classifier', join(fx.dir, 'classifier.safetensors')];

    it('ablate: baseline, MLPs, CLS→CLS, both, and attention layers cumulatively (compute_ablations.py)', async () => {
      const r = await json(['ablate', ...store, ...classifier, '--json']);
      const e = fx.expected.ablation;
      same(r.baseline, e.baseline, 'baseline');
      same(r.mlps, e.mlps, 'MLPs');
      same(r.clsToCls, e.clsToCls, 'CLS→CLS');
      same(r.mlpsAndClsToCls, e.mlpsAndClsToCls, 'MLPs + CLS→CLS');
      assert.equal(r.cumulative.length, fx.L);
      same(r.baseline, e.attentionAblations[0], 'curve start');
      r.cumulative.forEach((c: { upTo: number; accuracy: number }, j: number) => same(c.accuracy, e.attentionAblations[j + 1], `layers 0..${c.upTo}`));
    });

    for (const run of fx.expected.completeness)
      it(`textspan: texts and completeness accuracy, last ${run.lastLayers} layers, rank ${run.rank}, m = ${run.m} (compute_complete_text_set.py)`, async () => {
        const r = await json(['textspan', ...store, '--texts', join(fx.dir, 'pool.safetensors'), '--layers', `last:${run.lastLayers}`, '-m', String(run.m), '--rank', String(run.rank), ...classifier, '--m-grid', String(run.m), '--json']);
        assert.deepEqual(
          r.heads.map((h: { layer: number; head: number; texts: string[] }) => [h.layer, h.head, h.texts]),
          run.heads.map((h) => [h.layer, h.head, h.texts]),
        );
        assert.equal(r.accuracy.protocol, 'reference');
        same(r.accuracy.replaced[0], run.accuracy, 'completeness accuracy');
      });

    for (const run of fx.expected.debias)
      it(`debias: per (label, group) and worst group before and after, heads ${run.heads.map(([l, h]) => `L${l}.H${h}`).join(', ')} (compute_use_specific_heads.py)`, async () => {
        const heads = run.heads.map(([l, h]) => `L${l}.H${h}`).join(',');
        const r = await json(['debias', ...store, ...classifier, '--heads', heads, '--random-baseline', '0', '--json']);
        assert.equal(r.protocol, 'reference');
        const key = (c: { label: string; group: string }) => `(${fx.classes.indexOf(c.label)}, ${fx.groupNames.indexOf(c.group)})`;
        assert.deepEqual(r.cells.map(key).sort(), Object.keys(run.before.cells).sort());
        for (const c of r.cells) {
          same(c.before, run.before.cells[key(c)], `before ${key(c)}`);
          same(c.after, run.after.cells[key(c)], `after ${key(c)}`);
        }
        same(r.before.worst, run.before.worst, 'worst group before');
        same(r.after.worst, run.after.worst, 'worst group after');
        same(r.before.overall, run.before.fullAccuracy.full, 'all images before');
        same(r.after.overall, run.after.fullAccuracy.full, 'all images after');
        // The reference's own full_accuracy (labels and groups 0 and 1) agrees with the cells.
        for (const k of ['(0, 0)', '(0, 1)', '(1, 0)', '(1, 1)']) assert.ok(Math.abs(run.after.fullAccuracy[k] - run.after.cells[k]) < 1e-9);
      });
  });
}
