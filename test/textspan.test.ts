import './helpers/env.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  headTerms,
  replaceWithReconstruction,
  textspan,
  textspanHeads,
  textspanLiteral,
} from '../src/analyses/textspan.ts';

import { normalRng } from '../src/rng.ts';
import { ShapeError } from '../src/errors.ts';

const rng = normalRng;

function randMat(rows: number, cols: number, g: () => number, scale = 1) {
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = g() * scale;
  return { shape: [rows, cols], data };
}

function unitRows(M: { shape: number[]; data: Float32Array }) {
  const [r, c] = M.shape;
  for (let i = 0; i < r; i++) {
    let n = 0;
    for (let j = 0; j < c; j++) n += M.data[i * c + j] ** 2;
    n = Math.sqrt(n);
    for (let j = 0; j < c; j++) M.data[i * c + j] /= n;
  }
  return M;
}

test('fast TextSpan picks exactly the texts the literal reference algorithm picks', async () => {
  const cases: [number, number, number, number, number][] = [
    // n, d, m, k, r
    [200, 32, 100, 10, 16],
    [50, 64, 300, 20, 80], // r > n: rank limited by the images
    [300, 24, 40, 20, 24], // r = d: no projection
    [120, 40, 500, 8, 8], // k = r: the last pick has a 1-D span left
    [400, 16, 16, 12, 80],
    // sizes where the covariance path's blocked eigensolver runs several panels with
    // ONNX Runtime updates between them, and r < d projects for real
    [700, 160, 600, 12, 80],
    [300, 257, 250, 10, 40],
  ];
  for (const [ci, [n, d, m, k, r]] of cases.entries()) {
    const g = rng(100 + ci);
    // Anisotropic data with a non-zero mean, like a head's terms.
    const C = randMat(n, d, g);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) C.data[i * d + j] = C.data[i * d + j] * (1 + j / 4) + 0.5;
    const T = unitRows(randMat(m, d, g));
    const lit = textspanLiteral(C, T, { k, r, reconstruction: true });
    const fast = await textspan(C, T, { k, r, reconstruction: true });
    assert.deepEqual(fast.indices, lit.indices, `case ${ci}: picks differ`);
    assert.equal(new Set(fast.indices).size, k, `case ${ci}: a text was picked twice`);
    for (let j = 0; j < k; j++) {
      assert.ok(Math.abs(fast.scores[j] - lit.scores[j]) <= 1e-9 * lit.scores[0], `case ${ci}: score ${j}`);
      assert.ok(Math.abs(fast.varianceExplained[j] - lit.varianceExplained[j]) < 1e-9, `case ${ci}: variance explained ${j}`);
      if (j > 0) assert.ok(fast.varianceExplained[j] >= fast.varianceExplained[j - 1] - 1e-12);
    }
    let diff = 0;
    for (let i = 0; i < n * d; i++) diff = Math.max(diff, Math.abs(fast.reconstruction![i] - lit.reconstruction![i]));
    assert.ok(diff < 1e-4, `case ${ci}: reconstructions differ by ${diff}`);
  }
});

test('texts are projected onto the uncentred top-r span before picking (reference step 1)', async () => {
  // Images at x ≈ 10 with spread only along y: the uncentred top singular vector is x, the
  // centred variance is along y. With r = 1 the y text projects to zero and x wins; with r = 2
  // y wins.
  const n = 50;
  const C = { shape: [n, 2], data: new Float32Array(2 * n) };
  const g = rng(7);
  for (let i = 0; i < n; i++) {
    C.data[2 * i] = 10 + 0.01 * g();
    C.data[2 * i + 1] = g();
  }
  const T = { shape: [2, 2], data: new Float32Array([1, 0, 0, 1]) };
  for (const f of [textspan, textspanLiteral]) {
    assert.deepEqual((await f(C, T, { k: 1, r: 1 })).indices, [0]);
    assert.deepEqual((await f(C, T, { k: 2, r: 2 })).indices, [1, 0]);
  }
});

test('a planted head: the planted texts come first, in order of their variance', async () => {
  const n = 400, d = 48, m = 60;
  const g = rng(42);
  const T = unitRows(randMat(m, d, g));
  const planted = [41, 7, 23];
  const scales = [5, 3, 2];
  const C = { shape: [n, d], data: new Float32Array(n * d) };
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) C.data[i * d + j] = 0.3 + 0.05 * g(); // mean + noise
    planted.forEach((p, q) => {
      const a = scales[q] * g();
      for (let j = 0; j < d; j++) C.data[i * d + j] += a * T.data[p * d + j];
    });
  }
  const res = await textspan(C, T, { k: 5, r: 20, reconstruction: true });
  assert.deepEqual(res.indices.slice(0, 3), planted);
  assert.ok(res.varianceExplained[2] > 0.95, `3 planted texts explain ${res.varianceExplained[2]}`);
  assert.deepEqual(textspanLiteral(C, T, { k: 5, r: 20 }).indices, res.indices);
  // The reconstruction from the planted texts is close to the head itself.
  let err = 0, tot = 0;
  for (let i = 0; i < n * d; i++) {
    err += (res.reconstruction![i] - C.data[i]) ** 2;
    tot += (C.data[i] - 0.3) ** 2;
  }
  assert.ok(err / tot < 0.02, `relative residual ${err / tot}`);
});

test('k = rank texts spanning everything reconstruct the head exactly', async () => {
  const n = 30, d = 6;
  const g = rng(3);
  const C = randMat(n, d, g);
  const T = unitRows(randMat(d, d, g));
  const res = await textspan(C, T, { k: d, r: d, reconstruction: true });
  assert.deepEqual([...res.indices].sort(), [0, 1, 2, 3, 4, 5]);
  for (let i = 0; i < n * d; i++) assert.ok(Math.abs(res.reconstruction![i] - C.data[i]) < 1e-4);
  assert.ok(Math.abs(res.varianceExplained[d - 1] - 1) < 1e-9);
});

test('bad TextSpan input gives clear errors', async () => {
  const g = rng(1);
  const C = randMat(10, 4, g);
  await assert.rejects(textspan(C, randMat(5, 3, g), { k: 2 }), ShapeError);
  await assert.rejects(textspan(C, randMat(5, 4, g), { k: 6 }), /more than the 5 texts/);
  await assert.rejects(textspan(C, randMat(5, 4, g), { k: 1, r: 0 }), /rank r/);
  await assert.rejects(textspan(randMat(1, 4, g), randMat(5, 4, g), { k: 1 }), /at least 2 images/);
  await assert.rejects(textspan({ shape: [10, 4], data: new Float32Array(39) }, randMat(5, 4, g), { k: 1 }), ShapeError);
});

test('heads: extract, replace with reconstruction, and run over layers', async () => {
  const n = 40, L = 2, H = 3, d = 8, m = 12;
  const g = rng(9);
  const attn = { shape: [n, L, H, d], data: randMat(n * L * H, d, g).data };
  const T = unitRows(randMat(m, d, g));
  const C = headTerms(attn, 1, 2);
  assert.equal(C[5 * d + 3], attn.data[((5 * L + 1) * H + 2) * d + 3]);
  const recon = new Float32Array(n * d).fill(7);
  const replaced = replaceWithReconstruction(attn, 1, 2, recon);
  assert.equal(replaced[((5 * L + 1) * H + 2) * d + 3], 7);
  assert.equal(replaced[((5 * L + 1) * H + 1) * d + 3], attn.data[((5 * L + 1) * H + 1) * d + 3]);
  assert.notEqual(attn.data[((5 * L + 1) * H + 2) * d + 3], 7, 'input left untouched');
  assert.throws(() => headTerms(attn, 2, 0), /layer 2 out of range/);

  const { heads, replaced: all } = await textspanHeads(attn, T, { k: 3, r: 8, layers: [1], replace: true });
  assert.equal(heads.length, H);
  const single = await textspan({ shape: [n, d], data: headTerms(attn, 1, 0) }, T, { k: 3, r: 8, reconstruction: true });
  assert.deepEqual(heads[0].indices, single.indices);
  assert.equal(heads[0].reconstruction, undefined);
  const got = headTerms({ shape: attn.shape, data: all! }, 1, 0);
  for (let i = 0; i < n * d; i++) assert.equal(got[i], single.reconstruction![i]);
  // Layer 0 untouched.
  assert.deepEqual(headTerms({ shape: attn.shape, data: all! }, 0, 1), headTerms(attn, 0, 1));
});
