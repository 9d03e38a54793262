// Zero-shot classification with a CLIP text classifier, and per-group accuracy (Waterbirds:
// groups = (label, background) cells; the spurious-cue experiment reports the worst cell).

import { type Mat, checkLen, dims, matmulABt } from './linalg.ts';
import { ShapeError } from '../errors.ts';

/**
 * Classifier [C, d] from template text embeddings [C*K, d] (rows c*K .. c*K+K-1 belong to class
 * c): normalise each embedding, average over the K templates, normalise again (as open_clip's
 * zero_shot_classifier, stored here as rows rather than columns).
 */
export function buildClassifier(textEmb: Mat, C: number, K: number): Float32Array {
  const [rows, d] = dims('template text embeddings', textEmb, ['C*K', 'd']);
  if (!Number.isInteger(C) || !Number.isInteger(K) || C < 1 || K < 1)
    throw new RangeError(`buildClassifier: C and K must be positive integers, got C=${C} K=${K}`);
  if (rows !== C * K) throw new ShapeError(`buildClassifier: ${rows} text embeddings, expected C*K = ${C}*${K} = ${C * K}`);
  const X = textEmb.data;
  const out = new Float32Array(C * d);
  const acc = new Float64Array(d);
  for (let c = 0; c < C; c++) {
    acc.fill(0);
    for (let t = 0; t < K; t++) {
      const o = (c * K + t) * d;
      let nr = 0;
      for (let j = 0; j < d; j++) nr += X[o + j] * X[o + j];
      nr = Math.sqrt(nr);
      if (!(nr > 0)) throw new RangeError(`buildClassifier: text embedding ${c * K + t} (class ${c}, template ${t}) has zero or invalid norm`);
      for (let j = 0; j < d; j++) acc[j] += X[o + j] / nr;
    }
    let nr = 0;
    for (let j = 0; j < d; j++) nr += (acc[j] / K) ** 2;
    nr = Math.sqrt(nr);
    for (let j = 0; j < d; j++) out[c * d + j] = nr > 0 ? acc[j] / K / nr : 0;
  }
  return out;
}

/** Logits emb·classifierᵀ: emb [n, d], classifier [C, d] → [n, C]. */
export function logits(emb: Mat, classifier: Mat): Float32Array {
  const [n, d] = dims('image embeddings', emb, ['n', 'd']);
  const [C] = dims('classifier', classifier, ['C', 'd'], { d });
  return matmulABt(emb.data, n, d, classifier.data, C, new Float32Array(n * C)) as Float32Array;
}

/** Top-k class indices per row of logits [n, C], best first (ties: lower index) → [n, k]. */
export function topkClasses(logitsArr: ArrayLike<number>, n: number, C: number, k: number): Int32Array {
  checkLen('logits', logitsArr, n, C);
  if (!Number.isInteger(k) || k < 1 || k > C) throw new RangeError(`top-k: k must be in 1..${C}, got ${k}`);
  const out = new Int32Array(n * k);
  const bestV = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    let len = 0;
    const o = i * k;
    for (let c = 0; c < C; c++) {
      const v = logitsArr[i * C + c];
      if (len === k && !(v > bestV[k - 1])) continue;
      let p = len < k ? len++ : k - 1;
      while (p > 0 && v > bestV[p - 1]) {
        bestV[p] = bestV[p - 1];
        out[o + p] = out[o + p - 1];
        p--;
      }
      bestV[p] = v;
      out[o + p] = c;
    }
  }
  return out;
}

/** Predicted class per image: argmax of emb·classifierᵀ → [n]. */
export function predict(emb: Mat, classifier: Mat): Int32Array {
  const [n] = dims('image embeddings', emb, ['n', 'd']);
  const C = classifier.shape[0];
  return topkClasses(logits(emb, classifier), n, C, 1);
}

function checkLabels(what: string, labels: ArrayLike<number>, n: number) {
  if (labels.length !== n) throw new ShapeError(`${what}: ${labels.length} labels for ${n} predictions`);
}

/** Fraction of predictions equal to labels (0..1; the paper reports ×100). */
export function accuracy(preds: ArrayLike<number>, labels: ArrayLike<number>): number {
  checkLabels('accuracy', labels, preds.length);
  if (preds.length === 0) throw new RangeError('accuracy: no predictions');
  let ok = 0;
  for (let i = 0; i < preds.length; i++) if (preds[i] === labels[i]) ok++;
  return ok / preds.length;
}

/** Top-k accuracy (0..1) from embeddings and a classifier, as the reference `accuracy(output, target, topk)`. */
export function topkAccuracy(emb: Mat, classifier: Mat, labels: ArrayLike<number>, k = 1): number {
  const [n] = dims('image embeddings', emb, ['n', 'd']);
  const C = classifier.shape[0];
  checkLabels('top-k accuracy', labels, n);
  if (n === 0) throw new RangeError('top-k accuracy: no images');
  const top = topkClasses(logits(emb, classifier), n, C, k);
  let ok = 0;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < k; j++)
      if (top[i * k + j] === labels[i]) {
        ok++;
        break;
      }
  return ok / n;
}

export interface GroupCell {
  label: number;
  group: number;
  count: number;
  correct: number;
  accuracy: number;
}

export interface GroupAccuracy {
  /** One entry per non-empty (label, group) cell, sorted by label then group. */
  cells: GroupCell[];
  /** Accuracy over all samples. */
  overall: number;
  /** Unweighted mean of the cell accuracies. */
  mean: number;
  /** Lowest cell accuracy, and its cell. */
  worst: number;
  worstCell: GroupCell;
}

/** Accuracy per (label, group) cell, their mean and the worst cell. */
export function groupAccuracy(preds: ArrayLike<number>, labels: ArrayLike<number>, groups: ArrayLike<number>): GroupAccuracy {
  checkLabels('groupAccuracy labels', labels, preds.length);
  checkLabels('groupAccuracy groups', groups, preds.length);
  if (preds.length === 0) throw new RangeError('groupAccuracy: no predictions');
  const map = new Map<string, GroupCell>();
  let ok = 0;
  for (let i = 0; i < preds.length; i++) {
    const key = `${labels[i]}|${groups[i]}`;
    let cell = map.get(key);
    if (!cell) map.set(key, (cell = { label: labels[i], group: groups[i], count: 0, correct: 0, accuracy: 0 }));
    cell.count++;
    if (preds[i] === labels[i]) {
      cell.correct++;
      ok++;
    }
  }
  const cells = [...map.values()].sort((a, b) => a.label - b.label || a.group - b.group);
  for (const c of cells) c.accuracy = c.correct / c.count;
  let worstCell = cells[0];
  for (const c of cells) if (c.accuracy < worstCell.accuracy) worstCell = c;
  return {
    cells,
    overall: ok / preds.length,
    mean: cells.reduce((s, c) => s + c.accuracy, 0) / cells.length,
    worst: worstCell.accuracy,
    worstCell,
  };
}
