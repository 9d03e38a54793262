// Second-order effects of neurons against the reference's fixtures (test/fixtures/second_order,
// see its SPEC.md and manifest.json): effects, PCs, ablation, OMP text decompositions,
// segmentation, concept discovery, the indirect-effect probe — every check of the manifest.

import './helpers/env.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SegmentationMeter, segmentationScores } from '../src/analyses/segmentation.ts';
import { lnStats } from '../src/decompose/readout.ts';
import { readSafetensors } from '../src/io/safetensors.ts';
import { neuronAblation } from '../src/neurons/ablation.ts';
import { discoverConcepts } from '../src/neurons/concepts.ts';
import { describeNeurons, omp, parseDescriptions, textDictionary } from '../src/neurons/describe.ts';
import { NeuronEffects, headTerm, neuronTapNames, neuronVariant, rebuildEffects } from '../src/neurons/effects.ts';
import { indirectEffects, meanActivations } from '../src/neurons/indirect.ts';
import { centredNorms, neuronPca } from '../src/neurons/pca.ts';
import { curveAveragePrecision, neuronClassMaps, neuronHeatmap, precisionRecallCurve, selectNeuronsPerClass } from '../src/neurons/segmentation.ts';
import { memoryEffects } from '../src/neurons/store.ts';
import { f32, maxAbsDiff, type F32, type Tensor } from '../src/tensor.ts';
import { fixturePath, tinyModel } from './helpers/fixtures.ts';

const so = (name: string) => readSafetensors(fixturePath(`second_order/${name}.safetensors`));
const asF32 = (t: Tensor | undefined): F32 => {
  assert.ok(t, 'fixture tensor missing');
  return f32(t.shape, t.data as Float32Array);
};
const manifest = JSON.parse(readFileSync(fixturePath('second_order/manifest.json'), 'utf8'));
const LINES: string[] = manifest.text_pool.lines;
const inputs = so('inputs');
const forward = so('forward');
const text = so('text');
const PIXELS = asF32(inputs.get('pixel_values'));
const LABELS = Array.from(inputs.get('labels')!.data as BigInt64Array, Number);
const B = 12, M = 512, d = 64, C = 10;
/** The reference's classifier is [d, C]; cliplens keeps classes as rows [C, d]. */
const CLASSIFIER = (() => {
  const w = text.get('classifier')!.data as Float32Array;
  const out = f32([C, d]);
  for (let c = 0; c < C; c++) for (let e = 0; e < d; e++) out.data[c * d + e] = w[e * C + c];
  return out;
})();
const blocks = [3, 4].map((l) => ({ l, t: so(`second_order_l${l}`) }));
const model = tinyModel();

/** Largest |a − b| relative to the largest |b| (the manifest's "rel"). */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < b.length; i++) s = Math.max(s, Math.abs(b[i]));
  return maxAbsDiff(a, b) / s;
}

test('second-order effects match the reference: full tensor, per-head terms, their neuron sums, the frozen forward statistics', async () => {
  const taps = await model.runVision(PIXELS, neuronTapNames(3), 8, neuronVariant([3]));
  assert.ok(maxAbsDiff(taps.ln1_mean.data, forward.get('ln1_mean')!.data as Float32Array) < 1e-5);
  assert.ok(maxAbsDiff(taps.ln1_std.data, forward.get('ln1_std')!.data as Float32Array) < 1e-5);
  const cls = taps.cls_probs.data; // [B, L, H, N] vs the fixture's [B, L, H, N]
  assert.ok(maxAbsDiff(cls, forward.get('attn_cls')!.data as Float32Array) < 1e-5);
  assert.ok(relDiff(taps.image_features.data, forward.get('representation')!.data as Float32Array) < 1e-5);
  assert.ok(relDiff(taps.image_features.data, forward.get('representation_direct')!.data as Float32Array) < 1e-5);
  const { mean, std } = lnStats(taps.resid_cls.data, 128, model.config.vision.lnEps);
  assert.ok(maxAbsDiff(mean, forward.get('post_ln_mean')!.data as Float32Array) < 1e-5);
  assert.ok(maxAbsDiff(std, forward.get('post_ln_std')!.data as Float32Array) < 1e-5);

  for (const { l, t } of blocks) {
    const ne = new NeuronEffects(model, l);
    const r = await ne.getReadout();
    const f = await ne.factors(PIXELS);
    assert.ok(relDiff(f.norm.data, forward.get('representation_norm')!.data as Float32Array) < 1e-6);
    const E = await rebuildEffects(r, f);
    assert.deepEqual(E.shape, [B, M, d]);
    const ref = t.get('second_order')!.data as Float32Array;
    assert.ok(maxAbsDiff(E.data, ref) < 1e-5, `block ${l}: effects differ by ${maxAbsDiff(E.data, ref)}`);
    // Images 3 and 11 are the same file: bit-identical rows (thresholds and ties depend on it).
    assert.deepEqual(E.data.subarray(3 * M * d, 4 * M * d), E.data.subarray(11 * M * d, 12 * M * d));
    // The un-summed term of every later head (j, h) for image 0, and for all images its sum over
    // neurons: the block's linearised share of head (j, h)'s direct effect (SPEC 2.4).
    const JH = r.heads.length;
    assert.equal(JH, (5 - l) * 4);
    const detail = t.get('second_order_per_layer_head_detail')!.data as Float32Array;
    const sums = t.get('second_order_neuronsum_per_layer_head')!.data as Float32Array;
    let worstDetail = 0, worstSum = 0;
    for (let k = 0; k < JH; k++) {
      worstDetail = Math.max(worstDetail, maxAbsDiff(headTerm(r, f, 0, k), detail.subarray(k * M * d, (k + 1) * M * d)));
      for (let b = 0; b < B; b++) {
        const h = headTerm(r, f, b, k);
        const s = new Float64Array(d);
        for (let n = 0; n < M; n++) for (let e = 0; e < d; e++) s[e] += h[n * d + e];
        worstSum = Math.max(worstSum, maxAbsDiff(s, sums.subarray((b * JH + k) * d, (b * JH + k + 1) * d)));
      }
    }
    assert.ok(worstDetail < 1e-5, `block ${l}: per-head terms differ by ${worstDetail}`);
    assert.ok(worstSum < 2e-5, `block ${l}: per-head neuron sums differ by ${worstSum}`);
    // The post-activations the effects are built from.
    const act = (await model.runVision(PIXELS, [`mlp_post_${l}`], 8, neuronVariant([l])))[`mlp_post_${l}`];
    assert.ok(maxAbsDiff(act.data.subarray(0, 197 * M), t.get('post_gelu_detail')!.data as Float32Array) < 1e-5);
  }
});

test('first PC per neuron: the top-k selection, centring and sign rule of compute_pcas.py, streamed with bounded memory', async () => {
  for (const { l, t } of blocks) {
    const E = asF32(t.get('second_order'));
    const src = memoryEffects(E);
    const p7 = await neuronPca(src, 7);
    // Odd k: the sign rule always decides, so the PCs match with their sign.
    assert.equal(p7.signDecided.reduce((a, b) => a + b, 0), M);
    assert.ok(maxAbsDiff(p7.pc.data, t.get('pca_top7')!.data as Float32Array) < 1e-5, `block ${l}`);
    assert.ok(maxAbsDiff(p7.norms.data, t.get('norms_top7')!.data as Float32Array) < 1e-5);
    assert.ok(maxAbsDiff(p7.mean.data, t.get('neuron_mean')!.data as Float32Array) < 1e-5);
    assert.ok(maxAbsDiff(centredNorms(E.data, B, 0, M, d, p7.mean.data), t.get('centered_norm')!.data as Float32Array) < 1e-5);
    // k = 100 > B: all images, and p > 100 // 2 is impossible, so the reference keeps LAPACK's sign.
    const p100 = await neuronPca(src, 100);
    assert.deepEqual(p100.norms.shape, [M, B]);
    assert.equal(p100.signDecided.reduce((a, b) => a + b, 0), 0);
    const ref100 = t.get('pca_top100')!.data as Float32Array;
    let worst = 0;
    for (let n = 0; n < M; n++) {
      const a = p100.pc.data.subarray(n * d, (n + 1) * d), b = ref100.subarray(n * d, (n + 1) * d);
      worst = Math.max(worst, Math.min(maxAbsDiff(a, b), maxAbsDiff(a.map((x) => -x), b)));
    }
    assert.ok(worst < 1e-5, `block ${l}: top-100 PCs differ up to sign by ${worst}`);
    assert.ok(maxAbsDiff(p100.norms.data, t.get('norms_top100')!.data as Float32Array) < 1e-5);
    assert.deepEqual(Array.from(p100.topImages.data), Array.from(t.get('top_images')!.data as Int32Array));
    // Significant neurons per image (strict >, in the thresholds' float32).
    const sig = t.get('significant')!.data as Uint8Array;
    const norms = centredNorms(E.data, B, 0, M, d, p7.mean.data);
    for (let b = 0; b < B; b++) for (let n = 0; n < M; n++) assert.equal(Math.fround(norms[b * M + n]) > p7.norms.data[n * 7] ? 1 : 0, sig[b * M + n], `image ${b} neuron ${n}`);
    // Images arriving 5 at a time and a memory budget of 40 neurons' rows: the same result.
    const chunked = { ...src, chunk: 5 };
    const small = await neuronPca(chunked, 7, { memoryBudget: 40 * 7 * d * 8 });
    assert.deepEqual(small.pc.data, p7.pc.data);
    assert.deepEqual(small.norms.data, p7.norms.data);
  }
});

test('ablation study: every row of compute_ablations.py and the text-reconstruction row of --evaluate', async () => {
  const z = asF32(forward.get('representation'));
  for (const { l, t } of blocks) {
    const src = memoryEffects(asF32(t.get('second_order')), {}, z);
    const stats = await neuronPca(src, 7);
    const desc = describeNeurons(stats.pc.data, M, text.get('text_features')!.data as Float32Array, 300, d, LINES, 8);
    const r = await neuronAblation(src, stats, CLASSIFIER, LABELS, desc.reconstruction);
    assert.deepEqual(r.rows.slice(0, 5), manifest.checks[`l${l}.abl_stdout`].slice(4).map((s: string) => s.split(':')[0]));
    assert.deepEqual(r.accuracy.slice(0, 5), Array.from(t.get('ablation_accuracy')!.data as Float64Array));
    assert.ok(relDiff(r.logits.data.subarray(0, 5 * B * C), t.get('ablation_logits')!.data as Float32Array) < 1e-5);
    assert.equal(r.rows[5], 'Reconstructed neurons');
    assert.equal(r.accuracy[5], (t.get('sparse_eval_accuracy')!.data as Float64Array)[0]);
    assert.ok(relDiff(r.logits.data.subarray(5 * B * C), t.get('sparse_eval_logits')!.data as Float32Array) < 1e-5);
    const sig = t.get('significant')!.data as Uint8Array;
    for (let b = 0; b < B; b++) assert.equal(r.significant[b], sig.subarray(b * M, (b + 1) * M).reduce((a, x) => a + x, 0));
  }
});

test("sparse text decomposition: the reference's dictionary bit for bit, scikit-learn's OMP atoms, coefficients within 1e-5", () => {
  const F = text.get('text_features')!.data as Float32Array;
  assert.deepEqual(Float32Array.from(textDictionary(F, 300, d)), text.get('text_dictionary')!.data as Float32Array);
  // A global scale of the features (cliplens texts stores them unit-norm, the reference ×100) cancels.
  const unit = F.map((x) => x / 100);
  assert.ok(maxAbsDiff(textDictionary(unit, 300, d), textDictionary(F, 300, d)) < 1e-4);
  for (const { l, t } of blocks) {
    const pcs = t.get('pca_top7')!.data as Float32Array;
    const r = describeNeurons(pcs, M, F, 300, d, LINES, 8);
    const idx = t.get('sparse_idx')!.data as Int32Array;
    const coef = t.get('sparse_coef')!.data as Float32Array;
    assert.deepEqual(Array.from(r.nonzero), Array.from(t.get('omp_nnz')!.data as Int32Array));
    assert.deepEqual(r.descriptions.map((dsc) => dsc.map((e) => e[0])).flat(), Array.from(idx));
    assert.ok(maxAbsDiff(r.descriptions.map((dsc) => dsc.map((e) => e[1])).flat(), coef) < 1e-5);
    const json = parseDescriptions(JSON.parse(readFileSync(fixturePath(`second_order/decomposition_l${l}.json`), 'utf8')), 'fixture');
    for (const [n, entries] of json) {
      assert.deepEqual(r.descriptions[n].map((e) => [e[0], e[2]]), entries.map((e) => [e[0], e[2]]));
      assert.ok(maxAbsDiff(r.descriptions[n].map((e) => e[1]), entries.map((e) => e[1])) < 1e-5);
    }
    assert.ok(r.cosine.every((c) => c > 0 && c <= 1 + 1e-12));
  }
  // OMP stops once the residual is gone: x equal to an atom needs one text, the rest are zeros.
  const D = textDictionary(F, 300, d);
  const x = Float64Array.from(D.subarray(7 * d, 8 * d));
  const c = new Float64Array(300);
  for (let i = 0; i < 300; i++) for (let e = 0; e < d; e++) c[i] += D[i * d + e] * x[e];
  const col = (i: number) => Float64Array.from({ length: 300 }, (_, j) => { let s = 0; for (let e = 0; e < d; e++) s += D[i * d + e] * D[j * d + e]; return s; });
  const code = omp(c, col, 5);
  assert.deepEqual(code.atoms, [7]);
  assert.ok(Math.abs(code.coefs[0] - 1) < 1e-9);
  assert.throws(() => describeNeurons(x, 1, F, 300, d, LINES, 301), /more than the 300 texts/);
});

test('segmentation with neurons: per-class selection, maps, metrics and the pixel precision-recall curve of compute_segmentation.py', async () => {
  const seg = so('segmentation');
  const pcs = blocks.map(({ t }) => asF32(t.get('pca_top7')));
  const perClass = selectNeuronsPerClass(pcs, [3, 4], CLASSIFIER, 200);
  assert.deepEqual(perClass.flat(2), Array.from(seg.get('selected_per_class')!.data as Int32Array));
  const r = await neuronClassMaps(model, PIXELS, perClass, CLASSIFIER);
  assert.deepEqual(Array.from(r.chosenClass), Array.from(seg.get('chosen_class')!.data as BigInt64Array, Number));
  assert.ok(relDiff(r.classLogits, seg.get('class_logits')!.data as Float32Array) < 1e-5);
  const perImage = seg.get('selected_per_image')!.data as Int32Array; // [B, (layers, neurons), 200]
  for (let b = 0; b < B; b++) {
    const sel = perClass[r.chosenClass[b]];
    assert.deepEqual(Array.from(perImage.subarray(b * 400, b * 400 + 200)), sel.map((x) => x[1]));
    assert.deepEqual(Array.from(perImage.subarray(b * 400 + 200, b * 400 + 400)), sel.map((x) => x[0]));
  }
  assert.ok(maxAbsDiff(r.maps, seg.get('map_patches')!.data as Float32Array) < 1e-5);
  const masks = inputs.get('seg_masks')!.data as Uint8Array;
  const S = 224;
  const correct = seg.get('per_image_correct_labeled')!.data as BigInt64Array;
  const interUnion = seg.get('per_image_inter_union')!.data as BigInt64Array;
  const ap = seg.get('per_image_ap')!.data as Float64Array;
  const detail = seg.get('pred_detail')!.data as Float32Array;
  const meter = new SegmentationMeter();
  const scores = new Float32Array(B * S * S);
  for (let b = 0; b < B; b++) {
    const hm = neuronHeatmap(r.maps.subarray(b * 196, (b + 1) * 196), 14, S);
    if (b === 0) assert.ok(maxAbsDiff(hm.heat, detail.subarray(0, S * S)) < 1e-5);
    if (b === 4) assert.ok(maxAbsDiff(hm.heat, detail.subarray(S * S)) < 1e-5);
    const s = segmentationScores(hm, masks.subarray(b * S * S, (b + 1) * S * S));
    assert.deepEqual([s.correct, s.labeled], [Number(correct[2 * b]), Number(correct[2 * b + 1])]);
    assert.deepEqual([...s.inter, ...s.union], Array.from(interUnion.subarray(4 * b, 4 * b + 4), Number));
    assert.ok(Math.abs(s.ap - ap[b]) < 1e-5, `image ${b}: AP ${s.ap} vs ${ap[b]}`);
    meter.add(s);
    scores.set(hm.heat, b * S * S);
  }
  const m = meter.result();
  const [pixAcc, mIoU, mAP] = seg.get('metrics')!.data as Float64Array;
  assert.equal(m.pixelAccuracy, pixAcc);
  assert.equal(m.mIoU, mIoU);
  assert.deepEqual(m.iou, Array.from(seg.get('iou_per_class')!.data as Float64Array));
  assert.ok(Math.abs(m.mAP - mAP) < 1e-5);
  // The curve has one point per distinct pixel score: float32 ties among 602 112 scores are not
  // reproducible across implementations, so its length agrees to 0.1 %, and every sampled point of
  // the reference's curve lies on ours.
  const pr = precisionRecallCurve(scores, masks);
  const n = Number((seg.get('pr_curve_length')!.data as BigInt64Array)[0]);
  assert.ok(Math.abs(pr.precision.length - n) / n < 1e-3, `curve of ${pr.precision.length} points vs ${n}`);
  assert.ok(Math.abs(curveAveragePrecision(pr) - (seg.get('pooled_ap')!.data as Float64Array)[0]) < 1e-6);
  const rec = seg.get('recall_sample')!.data as Float64Array, prec = seg.get('precision_sample')!.data as Float64Array;
  for (let k = 0; k < rec.length; k++) {
    let lo = 0, hi = pr.recall.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pr.recall[mid] > rec[k]) lo = mid + 1;
      else hi = mid;
    }
    let best = Infinity;
    for (let j = Math.max(0, lo - 300); j < Math.min(pr.recall.length, lo + 300); j++) best = Math.min(best, Math.abs(pr.recall[j] - rec[k]) + Math.abs(pr.precision[j] - prec[k]));
    assert.ok(best < 1e-4, `sample ${k} is ${best} from our curve`);
  }
});

test('concept discovery: the significant neurons and the ten texts of every image, as the notebook computes them', async () => {
  const cd = JSON.parse(readFileSync(fixturePath('second_order/concept_discovery.json'), 'utf8'));
  for (const { l, t } of blocks) {
    const E = t.get('second_order')!.data as Float32Array;
    const stats = await neuronPca(memoryEffects(asF32(t.get('second_order'))), 7);
    const desc = parseDescriptions(JSON.parse(readFileSync(fixturePath(`second_order/decomposition_l${l}.json`), 'utf8')), 'fixture');
    const tau = Float32Array.from({ length: M }, (_, n) => stats.norms.data[n * 7]);
    const norms = centredNorms(E, B, 0, M, d, stats.mean.data);
    for (let b = 0; b < B; b++) {
      const ref = cd.layers[String(l)][b];
      const r = discoverConcepts(norms.subarray(b * M, (b + 1) * M), tau, desc);
      assert.deepEqual(r.significant, ref.significant_neurons);
      assert.deepEqual(r.concepts.map((c) => [c.text, c.printed]), ref.top_words.map((w: [string, number, number]) => [w[0], w[2]]));
      assert.ok(maxAbsDiff(r.concepts.map((c) => c.score), ref.top_words.map((w: [string, number, number]) => w[1])) < 1e-6);
    }
  }
});

test('indirect effect probe: a neuron set to its per-token mean, every path recomputed (prs_indirect_effect.py)', async () => {
  for (const { l, t } of blocks) {
    const mean = await meanActivations(model, PIXELS, l);
    assert.ok(maxAbsDiff(mean.data, t.get('post_gelu_mean')!.data as Float32Array) < 1e-5);
    const neurons = Array.from(t.get('indirect_neurons')!.data as Int32Array);
    const z = await indirectEffects(model, PIXELS, l, neurons, asF32(t.get('post_gelu_mean')));
    assert.ok(relDiff(z.data, t.get('indirect_representation')!.data as Float32Array) < 1e-5);
  }
});
