// TextSpan's pool baselines (paper Fig. 3): the random pools are seeded and reproducible, and
// every reported number equals a direct computation on the explicit candidate set.

import './helpers/env.ts';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { textspanStudy } from '../src/analyses/textspan_study.ts';
import {
  accuracyCurve,
  baselineSpecs,
  drawSeed,
  meanAndSpread,
  poolCurve,
  poolVocabulary,
  randomDirections,
  randomTexts,
  specPool,
  textspanBaselines,
  words,
} from '../src/analyses/text_baselines.ts';
import type { TextSet } from '../src/analyses/text_sets.ts';
import { mulberry32, normalRng } from '../src/rng.ts';
import { f32 } from '../src/tensor.ts';
import { memoryStore } from './helpers/memory_store.ts';

const unit = (v: ArrayLike<number>) => {
  const n = Math.hypot(...Array.from(v));
  return Float32Array.from(v, (x) => x / n);
};

describe('random pools', () => {
  it('random directions are N(0, I) draws normalised to unit length, one seed one set', () => {
    const a = randomDirections(5, 7, 42);
    assert.deepEqual(a.shape, [5, 7]);
    const g = normalRng(42);
    for (let i = 0; i < 5; i++) {
      const raw = Array.from({ length: 7 }, () => g());
      const direct = unit(raw);
      for (let j = 0; j < 7; j++) assert.ok(Math.abs(a.data[i * 7 + j] - direct[j]) < 1e-7);
      assert.ok(Math.abs(Math.hypot(...a.data.subarray(i * 7, i * 7 + 7)) - 1) < 1e-6);
    }
    assert.deepEqual(randomDirections(5, 7, 42).data, a.data);
    assert.notDeepEqual(randomDirections(5, 7, 43).data, a.data);
  });

  it('random texts use only the pool vocabulary and the pool text lengths', () => {
    const pool = ['A red circle on the left', 'two blue squares', "a dog's bowl", 'Sunset'];
    const vocab = poolVocabulary(pool);
    assert.deepEqual(vocab, ['a', 'red', 'circle', 'on', 'the', 'left', 'two', 'blue', 'squares', "dog's", 'bowl', 'sunset']);
    const lengths = new Set(pool.map((t) => words(t).length));
    const texts = randomTexts(pool, 50, 9);
    assert.equal(texts.length, 50);
    for (const t of texts) {
      const w = t.split(' ');
      assert.ok(lengths.has(w.length), `length ${w.length} of '${t}'`);
      for (const x of w) assert.ok(vocab.includes(x), `'${x}' is not in the vocabulary`);
    }
    // Direct: the same draws from mulberry32(9).
    const r = mulberry32(9);
    const L = pool.map((t) => words(t).length);
    const first = Array.from({ length: L[Math.floor(r() * L.length)] }, () => vocab[Math.floor(r() * vocab.length)]).join(' ');
    assert.equal(texts[0], first);
    assert.deepEqual(randomTexts(pool, 50, 9), texts);
    assert.notDeepEqual(randomTexts(pool, 50, 10), texts);
    assert.throws(() => randomTexts(['', '...'], 3, 1), /no words/);
  });

  it('mean and spread are the mean and the sample standard deviation per m', () => {
    const draws = [[0.5, 0.9], [0.7, 0.8], [0.6, 1.0]];
    const { mean, std } = meanAndSpread(draws);
    assert.deepEqual(mean.map((x) => +x.toFixed(12)), [0.6, 0.9]);
    assert.ok(Math.abs(std[0] - 0.1) < 1e-12 && Math.abs(std[1] - 0.1) < 1e-12);
    assert.deepEqual(meanAndSpread([[0.3, 0.4]]).std, [0, 0]);
  });

  it('draw seeds do not depend on how many draws are asked for', () => {
    const a = baselineSpecs(10, { draws: 2, seed: 5, texts: true, commonWords: true });
    const b = baselineSpecs(10, { draws: 4, seed: 5, texts: true, commonWords: true });
    assert.deepEqual(a.map((s) => s.kind), ['pool', 'common words', 'random texts', 'random directions']);
    assert.deepEqual(b[3].seeds.slice(0, 2), a[3].seeds);
    assert.deepEqual(a[3].seeds, [drawSeed(5, 0), drawSeed(5, 1)]);
    assert.deepEqual(baselineSpecs(10, { texts: false, commonWords: true }).map((s) => s.kind), ['pool', 'random directions']);
  });
});

describe('TextSpan baselines on planted heads', () => {
  // d = 12; one head of the last layer carries the label along the text 'dog' of the pool; the
  // pool's texts are word-sum embeddings, so the same embedder serves the baselines.
  const d = 12;
  const g = normalRng(3);
  const vocab = ['dog', 'cat', 'red', 'blue', 'big', 'small', 'tree', 'sky', 'sea', 'car', 'house', 'road'];
  const wordVec = new Map(vocab.map((w) => [w, Float32Array.from({ length: d }, () => g())]));
  const embedOne = (t: string) => {
    const v = new Float64Array(d);
    for (const w of words(t)) {
      const e = wordVec.get(w) ?? Float32Array.from({ length: d }, (_, j) => Math.sin((w.length + 1) * (j + 1)));
      for (let j = 0; j < d; j++) v[j] += e[j];
    }
    return unit(v);
  };
  const embed = async (texts: string[]): Promise<TextSet> => {
    const e = f32([texts.length, d]);
    texts.forEach((t, i) => e.data.set(embedOne(t), i * d));
    return { kind: 'pool', names: texts, embeddings: e, model: { name: 'memory' } };
  };
  const poolTexts = ['dog', 'cat', 'red car', 'blue sky', 'big tree', 'small house', 'sea', 'road', 'a dog', 'red house', 'big sea', 'blue car'];
  const n = 60;
  const r = normalRng(11);
  const L = 2, H = 2;
  const attn = f32([n, L, H, d]);
  const mlp = f32([n, L + 1, d]);
  const dog = embedOne('dog');
  // The head's other direction is 'blue sky' made orthogonal to 'dog', so two pool texts span the head exactly.
  const skyRaw = embedOne('blue sky');
  const c = skyRaw.reduce((a, v, k) => a + v * dog[k], 0);
  const sky = unit(skyRaw.map((v, k) => v - c * dog[k]));
  const rowLabels = Array.from({ length: n }, (_, i) => i % 2);
  for (let i = 0; i < n; i++) {
    const y = rowLabels[i] ? 1 : -1;
    for (let l = 0; l < L; l++)
      for (let h = 0; h < H; h++)
        for (let k = 0; k < d; k++) {
          let v = 0.05 * r();
          if (l === 1 && h === 0) v += y * (0.6 + 0.2 * Math.abs(r())) * dog[k] + 1.5 * r() * sky[k];
          attn.data[((i * L + l) * H + h) * d + k] = v;
        }
    for (let t = 0; t <= L; t++) for (let k = 0; k < d; k++) mlp.data[(i * (L + 1) + t) * d + k] = 0.02 * r();
  }
  const store = memoryStore({ attn, mlp, labels: ['no', 'yes'], rowLabels });
  const neg = dog.map((x) => -x);
  const classifier: TextSet = { kind: 'classifier', names: ['no', 'yes'], embeddings: f32([2, d], Float32Array.from([...neg, ...dog])), model: { name: 'memory' } };
  const ms = [1, 2, 4];
  const opts = { layers: [1], rank: d, ms, draws: 3, seed: 7, embed, commonWords: vocab.slice().reverse() };

  it('every curve equals textspanStudy on its explicit candidate set; mean and spread are those of the draws', async () => {
    const pool = await embed(poolTexts);
    const curves = await textspanBaselines(store, pool, classifier, opts);
    assert.deepEqual(curves.map((c) => c.kind), ['pool', 'common words', 'random texts', 'random directions']);
    const specs = baselineSpecs(pool.names.length, { ...opts, texts: true, commonWords: true });
    for (const [i, c] of curves.entries()) {
      assert.deepEqual(c.m, ms);
      assert.equal(c.draws.length, c.kind === 'pool' || c.kind === 'common words' ? 1 : 3);
      for (const [j, row] of c.draws.entries()) {
        const cands = await specPool(specs[i], j, pool, d, opts);
        const direct = (await textspanStudy(store, cands, { layers: [1], rank: d, k: 1, classifier, ms })).accuracy!.replaced;
        assert.deepEqual(row, direct, `${c.name} draw ${j}`);
      }
      const direct = meanAndSpread(c.draws);
      assert.deepEqual(c.mean, direct.mean);
      assert.deepEqual(c.std, direct.std);
    }
    // The random texts really are random texts of the pool's words, seeded per draw.
    const rt = await specPool(specs[2], 1, pool, d, opts);
    assert.deepEqual(rt.names, randomTexts(poolTexts, pool.names.length, drawSeed(7, 1)));
    // The pool's first two texts ('blue sky', 'a dog') nearly span the head; two random directions do not.
    const byKind = Object.fromEntries(curves.map((c) => [c.kind, c]));
    assert.equal(byKind.pool.mean[2], 1);
    assert.ok(byKind['random directions'].mean[1] < byKind.pool.mean[1] - 0.1, `random directions at m=2: ${byKind['random directions'].mean[1]}`);
  });

  it('a single spec is the same curve as in the full run (what the paper plan caches per step)', async () => {
    const pool = await embed(poolTexts);
    const spec = baselineSpecs(pool.names.length, { ...opts, texts: true, commonWords: true })[3];
    const c = await poolCurve(store, pool, classifier, spec, opts);
    const all = await textspanBaselines(store, pool, classifier, opts);
    assert.deepEqual(c, all[3]);
    assert.deepEqual((await accuracyCurve(store, pool, classifier, opts)).accuracy, all[0].draws[0]);
  });

  it('without an embedder only random directions run', async () => {
    const pool = await embed(poolTexts);
    const curves = await textspanBaselines(store, pool, classifier, { layers: [1], rank: d, ms, draws: 2 });
    assert.deepEqual(curves.map((c) => c.kind), ['pool', 'random directions']);
  });
});
