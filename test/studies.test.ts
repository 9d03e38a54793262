// Store studies on planted data: stores written directly with StoreWriter whose terms are known,
// so each study must find what was planted.

import './helpers/env.ts';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import sharp from 'sharp';
import { meanAblate } from '../src/analyses/ablation.ts';
import { segmentSpatial, segmentationSummary, jointHeads } from '../src/analyses/spatial_studies.ts';
import { ablationStudy } from '../src/analyses/ablation_study.ts';
import { debiasStudy, selectHeadsBySubstring } from '../src/analyses/debias.ts';
import { parseHeadSpec } from '../src/analyses/heads.ts';
import { retrievalStudy, resolveQuery } from '../src/analyses/retrieval_study.ts';
import { alignLabels, composeEmbeddings } from '../src/analyses/store_terms.ts';
import { textspanStudy } from '../src/analyses/textspan_study.ts';
import { replaceWithReconstruction, textspan, headTerms } from '../src/analyses/textspan.ts';
import type { TextSet } from '../src/analyses/text_sets.ts';
import { topkAccuracy } from '../src/analyses/zeroshot.ts';
import { fitMask, readMask } from '../src/io/masks.ts';
import { loadStore, StoreWriter, type StoreData } from '../src/io/store.ts';
import { mulberry32 as rng } from '../src/rng.ts';
import { f32, maxAbsDiff } from '../src/tensor.ts';
import { AnalysisError } from '../src/errors.ts';

const tmp = mkdtempSync(join(tmpdir(), 'cliplens-studies-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function gauss(r: () => number) {
  return Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
}
function unit(v: Float32Array): Float32Array {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}
const basis = (d: number, i: number, s = 1) => {
  const v = new Float32Array(d);
  v[i] = s;
  return v;
};

interface Planted {
  L: number;
  H: number;
  d: number;
  layers: number[];
  n: number;
  /** term of (row, absolute layer, head) added onto the noise */
  head: (i: number, l: number, h: number) => ArrayLike<number> | undefined;
  noise?: number;
  labels?: string[];
  rowLabel?: (i: number) => string;
  groups?: string[];
  rowGroup?: (i: number) => string;
  /** also a term of an attention layer the store does not keep */
  hidden?: (i: number) => ArrayLike<number>;
  seed?: number;
}

let storeCount = 0;
function plantStore(p: Planted): { dir: string; store: StoreData } {
  const dir = join(tmp, `store${storeCount++}`);
  const r = rng(p.seed ?? 1);
  const { n, L, H, d, layers } = p;
  const Lk = layers.length;
  const attn = f32([n, Lk, H, d]);
  const mlp = f32([n, L + 1, d]);
  const feats = f32([n, d]);
  for (let i = 0; i < n; i++) {
    const sum = new Float64Array(d);
    layers.forEach((l, j) => {
      for (let h = 0; h < H; h++) {
        const t = p.head(i, l, h);
        for (let k = 0; k < d; k++) {
          const v = (t ? t[k] : 0) + (p.noise ?? 0.01) * gauss(r);
          attn.data[((i * Lk + j) * H + h) * d + k] = v;
          sum[k] += v;
        }
      }
    });
    for (let t = 0; t <= L; t++)
      for (let k = 0; k < d; k++) {
        const v = 0.01 * gauss(r) + (k === d - 1 ? 0.05 : 0);
        mlp.data[(i * (L + 1) + t) * d + k] = v;
        sum[k] += v;
      }
    const hid = p.hidden?.(i);
    for (let k = 0; k < d; k++) feats.data[i * d + k] = sum[k] + (hid ? hid[k] : 0);
  }
  const items = Array.from({ length: n }, (_, i) => ({ id: `img${i}.png`, label: p.rowLabel?.(i), group: p.rowGroup?.(i) }));
  const w = StoreWriter.open({
    dir,
    model: { name: 'planted', fingerprint: 'planted' },
    dims: { L, H, N: 5, D: 8, d },
    layers,
    dtype: 'F32',
    normalised: false,
    batchSize: n,
    dataset: { root: join(tmp, 'nowhere'), kind: 'folder', labels: p.labels ?? [], groups: p.groups ?? [] },
    items,
  });
  // The CLS→CLS part of each head: a share of its term.
  const clsAttn = f32(attn.shape, attn.data.map((v, i) => 0.25 * v + 0.001 * Math.sin(i)));
  w.writeBatch(0, items.map((_, i) => i), { attn, cls_attn: clsAttn, mlp, image_features: feats, norm: f32([n], new Float32Array(n).fill(1)) }, []);
  return { dir, store: loadStore(dir) };
}

function classifier(names: string[], rows: Float32Array[]): TextSet {
  const d = rows[0].length;
  const e = f32([rows.length, d]);
  rows.forEach((r, i) => e.data.set(unit(r), i * d));
  return { kind: 'classifier', names, embeddings: e, model: { name: 'planted', fingerprint: 'planted' } };
}

describe('parseHeadSpec / labels', () => {
  const { store } = plantStore({ n: 4, L: 4, H: 3, d: 4, layers: [2, 3], head: () => undefined, labels: ['a', 'b'], rowLabel: (i) => (i % 2 ? 'a' : 'b') });
  it('reads absolute layer:head lists and whole layers', () => {
    assert.deepEqual(parseHeadSpec('3:1, 2:0', store.manifest), [{ layer: 3, head: 1 }, { layer: 2, head: 0 }]);
    assert.equal(parseHeadSpec('3:*', store.manifest).length, 3);
  });
  it('rejects heads outside the store with one line', () => {
    assert.throws(() => parseHeadSpec('99:0', store.manifest), (e: Error) => e instanceof AnalysisError && /layer 99 is not in the store \(it keeps attention layers 2-3/.test(e.message) && !e.message.includes('\n'));
    assert.throws(() => parseHeadSpec('1:0', store.manifest), /layer 1 is not in the store/);
    assert.throws(() => parseHeadSpec('2:7', store.manifest), /head 7 out of range \(the model has heads 0..2\)/);
    assert.throws(() => parseHeadSpec('x', store.manifest), /write heads as L10.H3 or 10:3/);
    assert.deepEqual(parseHeadSpec('L3.H1, 2:0, l2.h2', store.manifest), [{ layer: 3, head: 1 }, { layer: 2, head: 0 }, { layer: 2, head: 2 }]);
    assert.equal(parseHeadSpec('L2.H*', store.manifest).length, 3);
  });
  it('maps labels onto classifier names (any order, case/underscore-insensitive) and rejects others', () => {
    const al = alignLabels(store, classifier(['B', 'a'], [basis(4, 0), basis(4, 1)]));
    assert.deepEqual(Array.from(al.labels), [0, 1, 0, 1]);
    assert.throws(() => alignLabels(store, classifier(['cat', 'dog'], [basis(4, 0), basis(4, 1)])), /store labels not among the classifier's class names: a, b/);
    assert.throws(() => alignLabels(store, classifier(['a', 'b'], [basis(8, 0), basis(8, 1)])), /embedding size 8, the store's model 'planted' has 4/);
  });
});

describe('ablation study', () => {
  // Class = sign of layer 2 head 1 along e0; layer 3 noise; a hidden (unkept) layer 1 adds a
  // constant bias along e1 that the rest term must carry.
  const d = 6;
  const n = 40;
  const y = (i: number) => i % 2;
  const { store } = plantStore({
    n, L: 4, H: 2, d, layers: [2, 3],
    head: (i, l, h) => (l === 2 && h === 1 ? basis(d, 0, y(i) ? 1 : -1) : undefined),
    hidden: () => Float32Array.from([0.2, 0.3, 0, 0, 0, 0]),
    labels: ['neg', 'pos'], rowLabel: (i) => (y(i) ? 'pos' : 'neg'),
  });
  const cls = classifier(['neg', 'pos'], [Float32Array.from([-1, 0.2, 0, 0, 0, 0]), Float32Array.from([1, 0.2, 0, 0, 0, 0])]);
  it('finds that only layer 2 matters and the MLPs do not', () => {
    const r = ablationStudy(store, cls, { heads: [{ layer: 3, head: 0 }] });
    assert.equal(r.baseline, 1);
    assert.equal(r.mlps, 1);
    assert.deepEqual(r.cumulative.map((c) => [c.upTo, c.accuracy]), [[2, 0.5], [3, 0.5]]);
    assert.deepEqual(r.single.map((c) => [c.layer, c.accuracy]), [[2, 0.5], [3, 1]]);
    assert.equal(r.heads!.accuracy, 1);
    // CLS→CLS (a quarter of each head's term here) carries too little of the label to lose it.
    assert.equal(r.clsToCls, 1);
    assert.equal(r.mlpsAndClsToCls, 1);
    assert.ok(r.notes.some((t) => /keeps attention layers 2-3 only/.test(t)));
    // A store made before cliplens kept the CLS→CLS term: the rest is reported, and why not that.
    const old = ablationStudy({ ...store, clsAttn: undefined }, cls);
    assert.equal(old.clsToCls, undefined);
    assert.equal(old.baseline, 1);
    assert.ok(old.notes.some((t) => /no CLS→CLS terms \(cls_attn\): it was made before cliplens kept them; decompose the dataset again/.test(t)));
    assert.throws(() => composeEmbeddings({ ...store, clsAttn: undefined }, { clsToCls: true }), /no CLS→CLS terms/);
  });

  it('mean-ablates the CLS→CLS part of each head, and only that part', () => {
    // CLS→CLS ablated: every head's term minus its CLS part plus that part's mean (+ the rest, unchanged).
    const e = composeEmbeddings(store, { clsToCls: true });
    const base = composeEmbeddings(store, {});
    const [, Lk, H] = store.attn.shape;
    const C = store.clsAttn!.data;
    const mean = new Float64Array(d);
    for (let i = 0; i < n; i++) for (let s = 0; s < Lk * H; s++) for (let k = 0; k < d; k++) mean[k] += C[(i * Lk * H + s) * d + k] / n;
    for (const i of [0, 13, 39])
      for (let k = 0; k < d; k++) {
        let cls = 0;
        for (let s = 0; s < Lk * H; s++) cls += C[(i * Lk * H + s) * d + k];
        assert.ok(Math.abs(e[i * d + k] - (base[i * d + k] - cls + mean[k])) < 1e-5);
      }
  });
});

describe('TextSpan study', () => {
  const d = 16;
  const m = 30;
  const r = rng(7);
  const texts = Array.from({ length: m }, () => unit(Float32Array.from({ length: d }, () => gauss(r))));
  // The planted texts are orthogonal, so the label (the t7 part) is exactly what t3 alone misses.
  for (const [a, b] of [[7, 3], [11, 3], [11, 7]]) {
    const c = texts[a].reduce((s, v, k) => s + v * texts[b][k], 0);
    texts[a] = unit(texts[a].map((v, k) => v - c * texts[b][k]));
  }
  const pool: TextSet = { kind: 'pool', names: texts.map((_, i) => `text ${i}`), embeddings: f32([m, d]), model: { name: 'planted', fingerprint: 'planted' } };
  texts.forEach((t, i) => pool.embeddings.data.set(t, i * d));
  const n = 80;
  const coef = Array.from({ length: n }, (_, i) => [gauss(r), (i % 2 ? 1 : -1) * (0.3 + 0.5 * Math.abs(gauss(r))), gauss(r)]);
  const planted = (i: number) => {
    const v = new Float32Array(d);
    for (let k = 0; k < d; k++) v[k] = 3 * coef[i][0] * texts[3][k] + 2 * coef[i][1] * texts[7][k] + coef[i][2] * texts[11][k];
    return v;
  };
  // Label = which side of t7 the planted term lies on (what a t7 classifier reads).
  const y = (i: number) => (planted(i).reduce((a, v, k) => a + v * texts[7][k], 0) > 0 ? 1 : 0);
  // Head 1:0 = 3·a·t3 + 2·b·t7 + 1·c·t11 (+ noise); the label is the sign of b (the t7 part).
  const { store } = plantStore({
    n, L: 2, H: 2, d, layers: [0, 1],
    head: (i, l, h) => {
      return l === 1 && h === 0 ? planted(i) : undefined;
    },
    noise: 0.01,
    labels: ['no', 'yes'], rowLabel: (i) => (y(i) ? 'yes' : 'no'),
  });
  const t7 = texts[7];
  const cls = classifier(['no', 'yes'], [t7.map((x) => -x), t7]);

  it('recovers the planted texts first, in order of variance', async () => {
    const res = await textspanStudy(store, pool, { layers: [1], k: 5, rank: 16 });
    const h = res.heads.find((x) => x.layer === 1 && x.head === 0)!;
    assert.deepEqual(h.indices.slice(0, 3), [3, 7, 11]);
    assert.deepEqual(h.texts.slice(0, 3), ['text 3', 'text 7', 'text 11']);
    assert.ok(h.varianceExplained[2] > 0.999, `variance explained by 3 texts: ${h.varianceExplained[2]}`);
    assert.ok(h.varianceExplained[0] > 0.5 && h.varianceExplained[0] < 0.85);
    assert.equal(res.heads.length, 2);
    assert.equal(res.rank, 16);
  });

  it('accuracy vs m: one text loses the label, three keep it, and matches the reconstruction literally under either protocol', async () => {
    for (const protocol of ['reference', 'ablate-mlps'] as const) {
      const res = await textspanStudy(store, pool, { layers: [1], k: 3, rank: 16, classifier: cls, ms: [1, 3], protocol });
      const a = res.accuracy!;
      assert.equal(a.protocol, protocol);
      assert.deepEqual(a.m, [1, 3]);
      assert.equal(a.baseline, 1);
      assert.equal(a.replaced[1], 1);
      assert.ok(a.replaced[0] < 0.7, `with only t3 the label should be mostly lost, got ${a.replaced[0]}`);
      // Same numbers from textspan's own reconstructions + meanAblate: layer 0 mean-ablated, the
      // MLPs kept (reference) or mean-ablated too.
      for (const [q, mm] of [[0, 1], [1, 3]] as const) {
        let attn: Float32Array = Float32Array.from(store.attn.data);
        for (let h = 0; h < 2; h++) {
          const C = { shape: [n, d], data: headTerms(store.attn, 1, h) };
          const rec = (await textspan(C, pool.embeddings, { k: mm, r: 16, reconstruction: true })).reconstruction!;
          attn = replaceWithReconstruction({ shape: store.attn.shape, data: attn }, 1, h, rec);
        }
        const emb = meanAblate({ attn: { shape: store.attn.shape, data: attn }, mlp: store.mlp }, { mlps: protocol === 'ablate-mlps', heads: [[0, 0], [0, 1]] });
        assert.equal(a.replaced[q], topkAccuracy({ shape: [n, d], data: emb }, cls.embeddings, alignLabels(store, cls).labels));
      }
    }
  });

  it('rejects a pool of another size and k beyond the pool', async () => {
    const bad: TextSet = { ...pool, embeddings: f32([2, 8]) , names: ['a', 'b'] };
    await assert.rejects(textspanStudy(store, bad, { k: 1 }), /text pool has embedding size 8/);
    await assert.rejects(textspanStudy(store, pool, { k: 31 }), /more than the 30 texts/);
  });
});

describe('debias study', () => {
  // Waterbirds-like: label y, background g equal for 90% of images. Head 2:1 writes the
  // background along the classifier axis more strongly than head 2:0 writes the label.
  const d = 8;
  const n = 200;
  const y = (i: number) => (i < n / 2 ? 0 : 1);
  const g = (i: number) => (i % 10 === 0 ? 1 - y(i) : y(i));
  const { store } = plantStore({
    n, L: 3, H: 4, d, layers: [1, 2],
    head: (i, l, h) => {
      if (l === 2 && h === 0) return basis(d, 0, y(i) ? 0.5 : -0.5);
      if (l === 2 && h === 1) return basis(d, 0, g(i) ? 1 : -1);
      return undefined;
    },
    noise: 0.05,
    labels: ['landbird', 'waterbird'], rowLabel: (i) => (y(i) ? 'waterbird' : 'landbird'),
    groups: ['land', 'water'], rowGroup: (i) => (g(i) ? 'water' : 'land'),
  });
  const cls = classifier(['waterbird', 'landbird'], [basis(d, 0, 1), basis(d, 0, -1)]);

  it('ablating the spurious head raises worst-group accuracy; random heads do not', () => {
    const { result, edited, means } = debiasStudy(store, cls, [{ layer: 2, head: 1 }], { protocol: 'heads-only', randomDraws: 6, seed: 3 });
    assert.equal(result.protocol, 'heads-only');
    assert.equal(result.before.worst, 0);
    assert.equal(result.before.overall, 0.9);
    assert.equal(result.after.worst, 1);
    assert.equal(result.after.overall, 1);
    assert.ok(result.random!.meanWorst <= 0.05, `random heads worst group ${result.random!.meanWorst}`);
    assert.equal(result.random!.worst.length, 6);
    assert.equal(result.cells.length, 4);
    const minority = result.cells.find((c) => c.label === 'landbird' && c.group === 'water')!;
    assert.deepEqual([minority.count, minority.before, minority.after], [10, 0, 1]);
    // edited = features − head + its mean.
    const C = headTerms(store.attn, 1, 1);
    const mu = new Float64Array(d);
    for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) mu[k] += C[i * d + k] / n;
    for (let k = 0; k < d; k++) assert.ok(Math.abs(means[k] - mu[k]) < 1e-6);
    for (const i of [0, 57, 199])
      for (let k = 0; k < d; k++) assert.ok(Math.abs(edited[i * d + k] - (store.imageFeatures.data[i * d + k] - C[i * d + k] + mu[k])) < 1e-5);
  });

  it("the reference protocol needs the last 4 layers in the store, and says so", () => {
    assert.throws(() => debiasStudy(store, cls, [{ layer: 2, head: 1 }]), /the reference debias protocol keeps attention layers 0-2, but store .* keeps only layers 1-2; decompose the dataset with those layers, or use --protocol heads-only/);
  });

  it('reference protocol: the heads, every attention layer but the last 4 and every MLP mean-ablated', () => {
    const L = 6;
    const { store: full } = plantStore({
      n, L, H: 2, d, layers: [0, 1, 2, 3, 4, 5], seed: 5,
      head: (i, l, h) => (l === 5 && h === 0 ? basis(d, 0, y(i) ? 0.5 : -0.5) : l === 4 && h === 1 ? basis(d, 0, g(i) ? 1 : -1) : l === 0 && h === 0 ? basis(d, 0, g(i) ? 3 : -3) : undefined),
      noise: 0.05,
      labels: ['landbird', 'waterbird'], rowLabel: (i) => (y(i) ? 'waterbird' : 'landbird'),
      groups: ['land', 'water'], rowGroup: (i) => (g(i) ? 'water' : 'land'),
    });
    const { result, edited } = debiasStudy(full, cls, [{ layer: 4, head: 1 }], { randomDraws: 3, seed: 1 });
    assert.equal(result.protocol, 'reference');
    assert.match(result.protocolText, /compute_use_specific_heads\.py/);
    // Layer 0's strong background head goes with the protocol alone; the chosen head then too.
    assert.equal(result.before.worst, 0);
    assert.equal(result.protocolOnly!.worst, 0);
    assert.equal(result.after.worst, 1);
    const want = meanAblate({ attn: full.attn, mlp: full.mlp }, { heads: [[0, 0], [0, 1], [1, 0], [1, 1], [4, 1]], mlps: true });
    assert.ok(maxAbsDiff(edited, want) < 1e-5);
    // Random heads come from the layers the protocol keeps (2-5).
    assert.ok(result.notes.some((t) => /drawn from layers 2, 3, 4, 5/.test(t)));
  });

  it('picks heads by TextSpan texts', () => {
    const ts = { model: 'p', store: 's', rank: 8, heads: [
      { layer: 2, head: 0, texts: ['a bird', 'feathers'], indices: [0, 1], varianceExplained: [0.5, 0.6] },
      { layer: 2, head: 1, texts: ['a photo taken in the forest', 'Ocean view', 'a beach'], indices: [2, 3, 4], varianceExplained: [0.5, 0.6, 0.7] },
      { layer: 1, head: 3, texts: ['a forest'], indices: [5], varianceExplained: [0.4] },
    ] };
    const sel = selectHeadsBySubstring(ts, 'forest|ocean');
    assert.deepEqual(sel.map((h) => [h.layer, h.head, h.score]), [[2, 1, 2], [1, 3, 1]]);
    assert.deepEqual(selectHeadsBySubstring(ts, 'car'), []);
  });
});

describe('retrieval study', () => {
  // Head 2:3 writes one of 3 colours; the whole embedding is dominated by an unrelated class.
  const d = 12;
  const n = 60;
  const colour = (i: number) => i % 3;
  const shape = (i: number) => Math.floor(i / 3) % 2;
  const r = rng(11);
  const colours = [0, 1, 2].map(() => unit(Float32Array.from({ length: d }, () => gauss(r))));
  const { store } = plantStore({
    n, L: 3, H: 4, d, layers: [2],
    head: (i, _l, h) => (h === 3 ? colours[colour(i)] : h === 0 ? basis(d, 0, shape(i) ? 4 : -4) : h === 1 ? Float32Array.from({ length: d }, () => 2 * gauss(r)) : undefined),
    noise: 0.1,
    labels: ['round', 'square'], rowLabel: (i) => (shape(i) ? 'square' : 'round'),
    groups: ['red', 'green', 'blue'], rowGroup: (i) => ['red', 'green', 'blue'][colour(i)],
  });

  it('the colour head retrieves the same colour; the whole embedding does not', () => {
    const res = retrievalStudy(store, [{ layer: 2, head: 3 }], 4, { k: 5 });
    assert.equal(res.search, 'brute force (exact cosine)');
    assert.deepEqual(res.views.map((v) => v.name), ['head L2.H3', 'whole embedding']);
    const [head, whole] = res.views;
    assert.equal(head.neighbours.length, 5);
    assert.ok(head.neighbours.every((nb) => nb.group === 'green' && nb.row !== 4));
    assert.equal(head.precision!.groups, 1);
    assert.ok(whole.precision!.groups! < 0.6, `whole-embedding colour precision ${whole.precision!.groups}`);
    assert.ok(head.precision!.labels! < 0.7 && whole.precision!.labels! > 0.9, `shape precision head ${head.precision!.labels} whole ${whole.precision!.labels}`);
    assert.equal(head.precision!.queries, n);
  });

  it('uses the IVF index above the threshold and still finds the colour', () => {
    const res = retrievalStudy(store, [{ layer: 2, head: 3 }], 7, { k: 5, indexThreshold: 10 });
    assert.match(res.search, /^IVF index \(k-means, 8 lists, 1 probed/);
    assert.ok(res.views[0].neighbours.every((nb) => nb.group === 'green'));
  });

  it('resolves queries by row or id', () => {
    assert.equal(resolveQuery(store, '12'), 12);
    assert.equal(resolveQuery(store, 'img9.png'), 9);
    assert.throws(() => resolveQuery(store, '60'), /out of range/);
    assert.throws(() => resolveQuery(store, 'nope.png'), /neither a row number nor an image id/);
  });
});

describe('segmentation and joint maps', () => {
  it('post-processes and scores as computed by hand', () => {
    // [L=1, N=5, H=1]: CLS, then a 2×2 patch map [3, 1, −1, 1] at output size 2 (no resampling).
    const a = segmentSpatial(f32([1, 5, 1], Float32Array.from([9, 3, 1, -1, 1])), 2, 2, Uint8Array.from([1, 1, 0, 0]));
    assert.deepEqual(Array.from(a.heatmap.heat).map((v) => Number(v.toFixed(4))), [1, 0.3333, 0, 0.3333]);
    assert.deepEqual(Array.from(a.heatmap.mask), [1, 0, 0, 0]);
    const s = a.scores!;
    assert.deepEqual([s.correct, s.labeled, s.inter, s.union], [3, 4, [2, 1], [3, 2]]);
    assert.ok(Math.abs(s.ap - (0.5 + 0.25 * 0.75 + 0.25 * (4 / 6))) < 1e-6, `AP ${s.ap}`);
    // Second image: perfect prediction.
    const b = segmentSpatial(f32([1, 5, 1], Float32Array.from([0, 0, 0, 5, 5])), 2, 2, Uint8Array.from([0, 0, 1, 1]));
    const sum = segmentationSummary([a, b]);
    assert.ok(Math.abs(sum.pixelAccuracy - 7 / 8) < 1e-9);
    assert.ok(Math.abs(sum.iou[0] - 4 / 5) < 1e-9);
    assert.ok(Math.abs(sum.iou[1] - 3 / 4) < 1e-9);
    assert.ok(Math.abs(sum.mIoU - (0.8 + 0.75) / 2) < 1e-9);
    assert.ok(Math.abs(sum.mAP - (s.ap + 1) / 2) < 1e-9);
  });

  it('ranks heads by their total contribution', () => {
    // [L=2, N=5, H=2]; totals: (0,0)=1, (0,1)=-4, (1,0)=6, (1,1)=2.
    const sp = f32([2, 5, 2]);
    const put = (l: number, i: number, h: number, v: number) => (sp.data[(l * 5 + i) * 2 + h] = v);
    put(0, 1, 0, 1);
    put(0, 2, 1, -4);
    put(1, 0, 0, 2); // CLS counts in the total, not in the map
    put(1, 4, 0, 4);
    put(1, 3, 1, 2);
    const j = jointHeads(sp, 3);
    assert.deepEqual(j.heads.map((h) => [h.layer, h.head, h.total]), [[1, 0, 6], [1, 1, 2], [0, 0, 1]]);
    assert.deepEqual(Array.from(j.heads[0].map), [0, 0, 0, 4]);
    assert.deepEqual(Array.from(j.full), [1, -4, 2, 4]);
  });

  it('reads 0/255 and 0/1 masks and fits them like the images', async () => {
    const p1 = join(tmp, 'm255.png');
    const p2 = join(tmp, 'm01.png');
    // 4 wide × 2 high: the short side is already 2, the centre crop keeps columns 1..2.
    await sharp(Buffer.from([0, 255, 0, 255, 0, 0, 255, 255]), { raw: { width: 4, height: 2, channels: 1 } }).png().toFile(p1);
    await sharp(Buffer.from([0, 1, 0, 1, 0, 0, 1, 1]), { raw: { width: 4, height: 2, channels: 1 } }).png().toFile(p2);
    for (const p of [p1, p2]) {
      const m = await readMask(p);
      assert.deepEqual(Array.from(m.data), [0, 1, 0, 1, 0, 0, 1, 1]);
      assert.deepEqual(Array.from(fitMask(m, 2).data), [1, 0, 0, 1]);
    }
    // Upscaling keeps it binary: 2×2 → 4×4 nearest.
    const up = fitMask({ width: 2, height: 2, data: Uint8Array.from([1, 0, 0, 1]) }, 4);
    assert.deepEqual(Array.from(up.data), [1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1]);
  });
});
