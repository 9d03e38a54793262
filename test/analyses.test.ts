import './helpers/env.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gram, matmul, matmulABt, rightSvd, symEig, symEigTop, topK } from '../src/analyses/linalg.ts';
import { accuracy, buildClassifier, groupAccuracy, logits, predict, topkAccuracy, topkClasses } from '../src/analyses/zeroshot.ts';
import { ablationSummary, accuracy as ablAccuracy, meanAblate, sumTerms } from '../src/analyses/ablation.ts';
import { headSum, nearestNeighbours, precisionAtK } from '../src/analyses/retrieval.ts';
import {
  SegmentationMeter,
  averagePrecision,
  classPatchMap,
  heatmapAndMask,
  patchMapFromSpatial,
  segmentationScores,
} from '../src/analyses/segmentation.ts';
import { upsampleBilinear } from '../src/io/resample.ts';
import { mulberry32 } from '../src/rng.ts';
import { ShapeError } from '../src/errors.ts';

/** Uniform in [-0.5, 0.5). */
function rng(seed: number) {
  const u = mulberry32(seed);
  return () => u() - 0.5;
}
const rand = (len: number, g: () => number) => Float32Array.from({ length: len }, g);
const close = (a: number, b: number, tol = 1e-6, msg = '') => assert.ok(Math.abs(a - b) <= tol, `${msg} ${a} vs ${b}`);

test('linalg: top-k eigenpairs (blocked tridiagonalisation + inverse iteration) equal the full decomposition', async () => {
  const g = rng(11);
  // d below, at and above the 32-column panel; a repeated eigenvalue; a matrix already tridiagonal
  const rankDeficient = (n: number, d: number) => gram(rand(n * d, g), n, d); // rank n < d: zero eigenvalues repeat
  const cases: [string, Float64Array, number, number][] = [
    ['d=5', gram(rand(40 * 5, g), 40, 5), 5, 3],
    ['d=33', gram(rand(90 * 33, g), 90, 33), 33, 10],
    ['d=150', gram(rand(400 * 150, g), 400, 150), 150, 40],
    ['rank 20 of d=70', rankDeficient(20, 70), 70, 30],
    ['diagonal', Float64Array.from({ length: 36 }, (_, i) => (i % 7 === 0 ? [4, 1, 3, 3, 2, 0][i / 7] : 0)), 6, 6],
  ];
  for (const [name, S, d, k] of cases) {
    const full = symEig(S, d);
    const top = await symEigTop(S, d, k);
    const scale = Math.max(1, full.values[0]);
    for (let j = 0; j < k; j++) close(top.values[j], full.values[j], 1e-12 * scale, `${name}: eigenvalue ${j}`);
    // residual ‖S v − λ v‖ and orthonormality of the computed vectors
    for (let j = 0; j < k; j++) {
      for (let i = 0; i < d; i++) {
        let s = 0;
        for (let q = 0; q < d; q++) s += S[i * d + q] * top.vectors[j * d + q];
        close(s, top.values[j] * top.vectors[j * d + i], 1e-11 * scale, `${name}: residual of vector ${j}`);
      }
      for (let j2 = 0; j2 <= j; j2++) close(top.vectors.subarray(j * d, j * d + d).reduce((a, v, q) => a + v * top.vectors[j2 * d + q], 0), j === j2 ? 1 : 0, 1e-10, `${name}: ${j}·${j2}`);
    }
    // the span of the top k equals the full decomposition's, where the k-th eigenvalue is separated
    if (k < d && full.values[k - 1] - full.values[k] > 1e-6 * scale) {
      for (let i = 0; i < d; i++)
        for (let q = 0; q < d; q += 7) {
          let a = 0, b = 0;
          for (let j = 0; j < k; j++) {
            a += full.vectors[j * d + i] * full.vectors[j * d + q];
            b += top.vectors[j * d + i] * top.vectors[j * d + q];
          }
          close(a, b, 1e-10, `${name}: projector (${i}, ${q})`);
        }
    }
  }
  await assert.rejects(symEigTop(new Float64Array(9), 3, 4), RangeError);
});

// ---------------------------------------------------------------------------------------------
test('linalg: matmul kernels agree with the naive product', () => {
  const g = rng(1);
  for (const [n, k, m] of [[1, 1, 1], [7, 5, 9], [13, 70, 66], [4, 3, 130]]) {
    const A = rand(n * k, g), B = rand(m * k, g);
    const C = matmulABt(A, n, k, B, m);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < m; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += A[i * k + p] * B[j * k + p];
        close(C[i * m + j], s, 1e-12);
      }
    const Bt = rand(k * m, g);
    const D = matmul(A, n, k, Bt, m);
    let s = 0;
    for (let p = 0; p < k; p++) s += A[(n - 1) * k + p] * Bt[p * m + m - 1];
    close(D[n * m - 1], s, 1e-12);
  }
  assert.throws(() => matmulABt(new Float32Array(5), 2, 3, new Float32Array(6), 2), ShapeError);
});

test('linalg: symmetric eigendecomposition and SVD', () => {
  const g = rng(2);
  const n = 60, d = 37;
  const X = rand(n * d, g);
  const G = gram(X, n, d);
  const { values, vectors } = symEig(G, d);
  for (let j = 1; j < d; j++) assert.ok(values[j] <= values[j - 1]);
  for (let j = 0; j < d; j += 5) {
    for (let i = 0; i < d; i++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += G[i * d + k] * vectors[j * d + k];
      close(s, values[j] * vectors[j * d + i], 1e-10);
    }
    for (let j2 = 0; j2 < d; j2 += 3) {
      let s = 0;
      for (let k = 0; k < d; k++) s += vectors[j * d + k] * vectors[j2 * d + k];
      close(s, j === j2 ? 1 : 0, 1e-12);
    }
  }
  // Known spectrum: diag(3, 1, 2) → 3, 2, 1.
  const e = symEig(new Float64Array([3, 0, 0, 0, 1, 0, 0, 0, 2]), 3);
  assert.deepEqual(Array.from(e.values).map((v) => Math.round(v * 1e9) / 1e9), [3, 2, 1]);
  close(Math.abs(e.vectors[0]), 1, 1e-12);
  // SVD of a rank-1 matrix u vᵀ: one singular value ‖u‖‖v‖, right vector ±v/‖v‖.
  const u = [1, 2, 2], v = [3, 4];
  const R = Float32Array.from(u.flatMap((a) => v.map((b) => a * b)));
  const svd = rightSvd(R, 3, 2);
  close(svd.s[0], 15, 1e-9);
  close(svd.s[1], 0, 1e-6);
  close(Math.abs(svd.vt[0]), 0.6, 1e-9);
  close(Math.abs(svd.vt[1]), 0.8, 1e-9);
  assert.deepEqual(topK([3, 9, 1, 9, 4], 3), [1, 3, 4]);
});

// ---------------------------------------------------------------------------------------------
test('zero-shot: classifier = renormalised mean of normalised template embeddings', () => {
  // 2 classes × 2 templates, d = 2.
  const T = { shape: [4, 2], data: new Float32Array([3, 4, 1, 0, 0, 2, 0, -5]) };
  const W = buildClassifier(T, 2, 2);
  // class 0: mean([.6,.8],[1,0]) = [.8,.4] → /√.8
  close(W[0], 0.8 / Math.sqrt(0.8));
  close(W[1], 0.4 / Math.sqrt(0.8));
  // class 1: mean([0,1],[0,-1]) = 0 → zero vector (no direction)
  close(W[2], 0);
  close(W[3], 0);
  assert.throws(() => buildClassifier(T, 3, 2), /expected C\*K/);
  assert.throws(() => buildClassifier({ shape: [2, 2], data: new Float32Array([0, 0, 1, 1]) }, 1, 2), /zero or invalid norm/);
});

test('zero-shot: predictions, top-k and accuracy', () => {
  const cls = { shape: [3, 2], data: new Float32Array([1, 0, 0, 1, -1, 0]) };
  const emb = { shape: [4, 2], data: new Float32Array([2, 1, 0.1, 3, -5, 1, 1, 1]) };
  const L = logits(emb, cls);
  assert.deepEqual(Array.from(L.slice(0, 3)), [2, 1, -2]);
  assert.deepEqual(Array.from(predict(emb, cls)), [0, 1, 2, 0]); // tie at row 3: lower index
  assert.deepEqual(Array.from(topkClasses(L, 4, 3, 2)), [0, 1, 1, 0, 2, 1, 0, 1]);
  const labels = [0, 1, 1, 1];
  close(accuracy(predict(emb, cls), labels), 0.5);
  close(topkAccuracy(emb, cls, labels, 1), 0.5);
  close(topkAccuracy(emb, cls, labels, 2), 1);
  assert.throws(() => accuracy([0, 1], [0]), /labels for 2/);
});

test('zero-shot: accuracy per (label, group) cell and the worst group', () => {
  const labels = [0, 0, 0, 0, 1, 1, 1, 1, 1];
  const groups = [0, 0, 1, 1, 0, 0, 1, 1, 1];
  const preds = [0, 0, 1, 0, 1, 0, 1, 1, 1];
  const r = groupAccuracy(preds, labels, groups);
  assert.deepEqual(
    r.cells.map((c) => [c.label, c.group, c.count, c.correct]),
    [[0, 0, 2, 2], [0, 1, 2, 1], [1, 0, 2, 1], [1, 1, 3, 3]],
  );
  close(r.overall, 7 / 9);
  close(r.mean, (1 + 0.5 + 0.5 + 1) / 4);
  close(r.worst, 0.5);
  assert.deepEqual([r.worstCell.label, r.worstCell.group], [0, 1]);
});

// ---------------------------------------------------------------------------------------------
function terms(n: number, L: number, H: number, d: number, seed: number) {
  const g = rng(seed);
  return {
    attn: { shape: [n, L, H, d], data: rand(n * L * H * d, g) },
    mlp: { shape: [n, L + 1, d], data: rand(n * (L + 1) * d, g) },
    attnCls: { shape: [n, L, H, d], data: rand(n * L * H * d, g) },
  };
}

/** Brute force: build every term (mean or own) and add up. */
function bruteAblate(t: ReturnType<typeof terms>, ablHead: (l: number, h: number) => boolean, mlps: boolean, cls: boolean) {
  const [n, L, H, d] = t.attn.shape;
  const at = (b: number, l: number, h: number, j: number) => t.attn.data[((b * L + l) * H + h) * d + j];
  const ct = (b: number, l: number, h: number, j: number) => t.attnCls.data[((b * L + l) * H + h) * d + j];
  const mt = (b: number, l: number, j: number) => t.mlp.data[(b * (L + 1) + l) * d + j];
  const mean = (f: (b: number) => number) => {
    let s = 0;
    for (let b = 0; b < n; b++) s += f(b);
    return s / n;
  };
  const out = new Float64Array(n * d);
  for (let b = 0; b < n; b++)
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let l = 0; l < L; l++)
        for (let h = 0; h < H; h++) {
          if (ablHead(l, h)) s += mean((bb) => at(bb, l, h, j));
          else if (cls) s += at(b, l, h, j) - ct(b, l, h, j) + mean((bb) => ct(bb, l, h, j));
          else s += at(b, l, h, j);
        }
      for (let l = 0; l <= L; l++) s += mlps ? mean((bb) => mt(bb, l, j)) : mt(b, l, j);
      out[b * d + j] = s;
    }
  return out;
}

test('mean-ablation matches building the edited sum term by term', () => {
  const t = terms(7, 3, 2, 5, 11);
  const cmp = (got: Float32Array, want: Float64Array, what: string) => {
    for (let i = 0; i < want.length; i++) close(got[i], want[i], 1e-5, what);
  };
  cmp(sumTerms(t), bruteAblate(t, () => false, false, false), 'baseline');
  cmp(meanAblate(t, { mlps: true }), bruteAblate(t, () => false, true, false), 'mlps');
  cmp(meanAblate(t, { layersUpTo: 1 }), bruteAblate(t, (l) => l <= 1, false, false), 'layersUpTo');
  cmp(meanAblate(t, { heads: [[2, 1], [0, 0]] }), bruteAblate(t, (l, h) => (l === 2 && h === 1) || (l === 0 && h === 0), false, false), 'heads');
  cmp(meanAblate(t, { clsToCls: true }), bruteAblate(t, () => false, false, true), 'cls');
  cmp(
    meanAblate(t, { clsToCls: true, mlps: true, heads: [[2, 0]], layersUpTo: 0 }),
    bruteAblate(t, (l, h) => l === 0 || (l === 2 && h === 0), true, true),
    'combined',
  );
  // CLS terms summed over heads [n, L, d] give the same result when no layer is partly ablated.
  const [n, L, H, d] = t.attn.shape;
  const clsL = new Float32Array(n * L * d);
  for (let b = 0; b < n; b++) for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) for (let j = 0; j < d; j++)
    clsL[(b * L + l) * d + j] += t.attnCls.data[((b * L + l) * H + h) * d + j];
  const perLayer = { ...t, attnCls: { shape: [n, L, d], data: clsL } };
  cmp(meanAblate(perLayer, { clsToCls: true, layersUpTo: 1 }), bruteAblate(t, (l) => l <= 1, false, true), 'cls per layer');
  assert.throws(() => meanAblate(perLayer, { clsToCls: true, heads: [[0, 1]] }), /per-head CLS terms/);
  assert.throws(() => meanAblate({ attn: t.attn, mlp: t.mlp }, { clsToCls: true }), /needs the CLS→CLS/);
  assert.throws(() => meanAblate(t, { heads: [[3, 0]] }), /out of range/);
  assert.throws(() => meanAblate({ ...t, mlp: { shape: [n, L, d], data: new Float32Array(n * L * d) } }, {}), /L\+1/);
});

test('mean-ablation accuracy: last-layer signal survives early-layer ablation', () => {
  // Class signal only in layer 2 head 0; everything else noise. Ablating layers 0..1 keeps accuracy,
  // ablating layer 2 destroys it.
  const n = 60, L = 3, H = 2, d = 4, C = 4;
  const g = rng(5);
  const t = terms(n, L, H, d, 6);
  const labels = Array.from({ length: n }, (_, i) => i % C);
  for (let b = 0; b < n; b++) {
    for (let j = 0; j < d; j++) t.attn.data[((b * L + 2) * H + 0) * d + j] = (j === labels[b] ? 5 : 0) + 0.1 * g();
  }
  const classifier = { shape: [C, d], data: new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]) };
  const s = ablationSummary(t, classifier, labels);
  assert.equal(s.baseline, 1);
  assert.equal(s.layersUpTo.length, L);
  assert.equal(s.layersUpTo[1], 1);
  assert.ok(s.layersUpTo[2] <= 0.5, `all attention ablated: ${s.layersUpTo[2]}`);
  assert.equal(ablAccuracy(meanAblate(t, { heads: [[2, 1]] }), classifier, labels), 1);
  assert.ok(ablAccuracy(meanAblate(t, { heads: [[2, 0]] }), classifier, labels) <= 0.5);
  assert.ok(s.clsToCls !== undefined && s.mlpsAndClsToCls !== undefined);
});

// ---------------------------------------------------------------------------------------------
test('retrieval: blocked nearest neighbours equal brute force; precision@k', () => {
  const g = rng(8);
  const n = 700, d = 6, L = 2, H = 3; // > one base block
  const attn = { shape: [n, L, H, d], data: rand(n * L * H * d, g) };
  const X = headSum(attn, [[1, 2], [0, 1]]);
  for (const [b, j] of [[0, 0], [123, 5]]) {
    const want = attn.data[((b * L + 1) * H + 2) * d + j] + attn.data[((b * L + 0) * H + 1) * d + j];
    close(X[b * d + j], want, 1e-6);
  }
  const base = { shape: [n, d], data: X };
  const k = 5;
  const nb = nearestNeighbours(base, base, k, { excludeSelf: true });
  const norm = (i: number) => Math.hypot(...X.subarray(i * d, i * d + d));
  for (const q of [0, 1, 350, 699]) {
    const sims = [];
    for (let i = 0; i < n; i++) {
      if (i === q) continue;
      let s = 0;
      for (let j = 0; j < d; j++) s += X[q * d + j] * X[i * d + j];
      sims.push({ i, s: s / (norm(q) * norm(i)) });
    }
    sims.sort((a, b) => b.s - a.s || a.i - b.i);
    assert.deepEqual(Array.from(nb.indices.subarray(q * k, q * k + k)), sims.slice(0, k).map((e) => e.i));
    close(nb.scores[q * k], sims[0].s, 1e-5);
  }
  const self = nearestNeighbours(base, base, 1);
  assert.equal(self.indices[42], 42); // without excludeSelf the query finds itself
  assert.throws(() => nearestNeighbours(base, base, n, { excludeSelf: true }), /k must be in 1\.\.699/);
  assert.throws(() => headSum(attn, [[2, 0]]), /out of range/);

  const labels = [0, 0, 1, 1];
  const hand = { indices: Int32Array.from([1, 2, 2, 0, 3, 0, 2, 1]), scores: new Float32Array(8), k: 2 };
  // Neighbour labels: q0 (label 0) → 0,1; q1 (0) → 1,0; q2 (1) → 1,0; q3 (1) → 1,0.
  // k = 2: every query 1/2; k = 1: q0 ✓, q1 ✗, q2 ✓, q3 ✓.
  close(precisionAtK(hand, labels, 2), 0.5);
  close(precisionAtK(hand, labels, 1), 0.75);
});

// ---------------------------------------------------------------------------------------------
test('segmentation: bilinear upsampling matches torch interpolate(align_corners=False)', () => {
  const up = upsampleBilinear([0, 1, 2, 3], 2, 2, 4, 4);
  assert.deepEqual(Array.from(up), [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3]);
  // 1×3 → 1×2: scale 1.5, src = (o+.5)·1.5 − .5 = .25, 1.75
  const down = upsampleBilinear([0, 10, 20], 1, 3, 1, 2);
  close(down[0], 2.5);
  close(down[1], 17.5);
  // A constant map stays constant.
  assert.ok(upsampleBilinear([4, 4, 4, 4], 2, 2, 7, 5).every((v) => v === 4));
});

test('segmentation: reference post-processing and metrics on a hand-computed example', () => {
  const hm = heatmapAndMask([0, 1, 2, 3], 2, 4);
  close(hm.heat[15], 1);
  close(hm.heat[0], 0);
  close(hm.heat[5], 0.75 / 3);
  // Mean of heat is 0.5; mask = heat > 0.5.
  assert.deepEqual(Array.from(hm.mask), [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]);
  const gt = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1];
  const s = segmentationScores(hm, gt);
  assert.equal(s.correct, 15);
  assert.equal(s.labeled, 16);
  assert.deepEqual(s.inter, [8, 7]);
  assert.deepEqual(s.union, [9, 8]);
  close(s.ap, 0.9861111111111112, 1e-6); // computed by hand over the 32 (score, target) pairs
  const meter = new SegmentationMeter();
  meter.add(s);
  // A second image, all wrong: prediction fg where gt is bg and vice versa.
  const inv = heatmapAndMask([3, 2, 1, 0], 2, 4);
  const s2 = segmentationScores(inv, gt);
  meter.add(s2);
  const r = meter.result();
  close(r.pixelAccuracy, (15 + s2.correct) / 32, 1e-12);
  close(r.iou[0], (8 + s2.inter[0]) / (9 + s2.union[0]), 1e-12);
  close(r.mIoU, (r.iou[0] + r.iou[1]) / 2, 1e-12);
  close(r.mAP, (s.ap + s2.ap) / 2, 1e-12);
  assert.equal(r.images, 2);
  // Negative everywhere → degenerate (reference: NaN → background, AP inputs 0 → AP = 1/2).
  const deg = heatmapAndMask([-1, -2, -3, -4], 2, 4);
  assert.equal(deg.degenerate, true);
  assert.ok(deg.mask.every((v) => v === 0));
  close(segmentationScores(deg, gt).ap, 0.5);
  assert.throws(() => segmentationScores(hm, gt.slice(1)), /15 pixels/);
});

test('segmentation: average precision as sklearn', () => {
  close(averagePrecision([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.8333333333333333, 1e-12); // sklearn docs
  close(averagePrecision([0.5, 0.5, 0.2], [1, 0, 1]), 0.5 * 0.5 + 0.5 * (2 / 3), 1e-12); // tie grouped
  close(averagePrecision([1, 2, 3], [0, 0, 0]), 0);
  close(averagePrecision([3, 2, 1], [1, 1, 0]), 1);
});

test('segmentation: class and spatial patch maps', () => {
  // 2 patches, d = 2, 3 classes.
  const patches = { shape: [2, 2], data: new Float32Array([1, 2, 3, -1]) };
  const classifier = { shape: [3, 2], data: new Float32Array([1, 0, 0, 1, 1, 1]) };
  // scores: p0 = [1, 2, 3], p1 = [3, -1, 2]; class 0 minus class mean: 1 − 2, 3 − 4/3
  const m = classPatchMap(patches, classifier, 0);
  close(m[0], -1);
  close(m[1], 3 - 4 / 3, 1e-6);
  assert.deepEqual(Array.from(classPatchMap(patches, classifier, 0, false)), [1, 3]);
  // spatial [L=2, N=3, H=2]
  const sp = { shape: [2, 3, 2], data: Float32Array.from({ length: 12 }, (_, i) => i) };
  // patch i (token i+1): Σ_l Σ_h (l*6 + tok*2 + h)
  assert.deepEqual(Array.from(patchMapFromSpatial(sp)), [2 + 3 + 8 + 9, 4 + 5 + 10 + 11]);
  assert.deepEqual(Array.from(patchMapFromSpatial(sp, { layers: [1], heads: [0] })), [8, 10]);
  assert.throws(() => patchMapFromSpatial(sp, { heads: [2] }), /head 2 out of range/);
});
