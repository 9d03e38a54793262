// The README's main job in one call: decompose a few hundred held-out toy-world scenes with the
// embedded model, say in words what each late head describes, and show where in a scene the
// model reads an attribute.

import { barChart, imageGrid, type RGBImage } from '../report/figures.ts';
import { headName } from '../notation.ts';
import type { Report } from '../report/writer.ts';
import { Decomposer } from '../decompose/decomposer.ts';
import { textTokenMaps } from '../analyses/text_maps.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { f32 } from '../tensor.ts';
import { ATTRIBUTES, FAMILIES, renderCaption, type Scene } from '../toyworld/index.ts';
import { zeroShot } from './ablation.ts';
import { DEMO_SEED, sceneSet, subset, type SceneSet } from './data.ts';
import { absMax, COLOR_KEY, familyColor, overlay, pct1, sceneImage } from './figures.ts';
import { labelHeads, type HeadLabel } from './heads.ts';
import { decompositionError, exactnessStatement } from '../decompose/invariant.ts';
import { fromJson, modelProvenance, provenanceFields } from '../io/provenance.ts';
import { attributePool, embedTexts, familyClassifiers } from './texts.ts';
import { ToyworldError } from '../errors.ts';

export interface DemoOptions {
  /** Scenes (default 300). */
  n?: number;
  /** How many of the last layers TextSpan runs on (default 3). */
  lastLayers?: number;
  /** Texts per head (default 5). */
  m?: number;
  /** Scenes shown in the heatmaps (default 3). */
  heatmapScenes?: number;
  log?: (msg: string) => void;
}

export interface DemoResult {
  model: string;
  modelFingerprint?: string;
  n: number;
  layers: number[];
  dims: { L: number; H: number; d: number };
  decompositionError: number;
  zeroShot: Record<string, number>;
  heads: HeadLabel[];
}

/** A caption naming one family of a scene, with that family's value replaced by `value`. */
function attrText(scene: Scene, family: string, value: string): string {
  return renderCaption({ ...scene.labels, [family]: value }, { mention: new Set([family]), template: 2, genericNoun: 'object' });
}

/** Another value of the family, chosen deterministically. */
function otherValue(family: string, value: string): string {
  const vs = ATTRIBUTES[family];
  return vs[(vs.indexOf(value) + Math.ceil(vs.length / 2)) % vs.length];
}

/** Heatmaps of the first `nh` scenes: their true colour and shape vs another value, and the differences. */
async function demoHeatmaps(dec: Decomposer, set: SceneSet, nh: number): Promise<Buffer> {
  const model = dec.model;
  const { d, grid } = model.dims();
  const shown = subset(set, Array.from({ length: nh }, (_, i) => i));
  const texts: string[] = [];
  const pairs: { family: string; a: number; b: number }[][] = shown.scenes.map((sc) =>
    ['color', 'shape'].map((family) => {
      const a = texts.push(attrText(sc, family, sc.labels[family])) - 1;
      const b = texts.push(attrText(sc, family, otherValue(family, sc.labels[family]))) - 1;
      return { family, a, b };
    }),
  );
  const temb = await embedTexts(model, texts);
  const tm = await textTokenMaps(dec, shown.pixels, f32([texts.length, d], temb.data)); // [B, T, N]
  const N = tm.shape[2];
  const T = texts.length;
  const patchOf = (b: number, t: number) => tm.data.slice((b * T + t) * N + 1, (b * T + t + 1) * N);
  const cells: RGBImage[] = [];
  shown.scenes.forEach((sc, b) => {
    cells.push(sceneImage(sc, 3, sc.caption.length > 34 ? `${sc.labels.color} ${sc.labels.shape}, ${sc.labels.background}` : sc.caption));
    for (const p of pairs[b]) {
      const ma = patchOf(b, p.a);
      const mb = patchOf(b, p.b);
      const lo = Math.min(...ma, ...mb);
      const hi = Math.max(...ma, ...mb);
      const diff = ma.map((v, i) => v - mb[i]);
      const r = absMax(diff);
      const va = sc.labels[p.family];
      const vb = otherValue(p.family, va);
      cells.push(overlay(sc, ma, grid, { scale: 3, range: [lo, hi], caption: `"${va}"` }));
      cells.push(overlay(sc, mb, grid, { scale: 3, range: [lo, hi], caption: `"${vb}"` }));
      cells.push(overlay(sc, diff, grid, { scale: 3, range: [-r, r], caption: `${va} − ${vb}` }));
    }
  });
  return imageGrid(cells, 7, { title: 'where the model reads colour and shape: true value, another value, difference', cellWidth: 192, cellHeight: 192 });
}

/** The demo's terminal summary and its report. */
async function demoReport(result: DemoResult, poolSize: number, m: number, heatmaps: Buffer): Promise<{ summary: string[]; report: Report }> {
  const { model, n, layers, heads, zeroShot: zs } = result;
  const { L, H, d } = result.dims;
  const fam = (f: string) => f.padEnd(10);
  const summary = [
    `cliplens demo — model ${model} (ViT, ${L} layers × ${H} heads, embedding ${d}), ${n} held-out toy-world scenes`,
    `decomposition check: max |Σ terms − z/‖z‖| = ${result.decompositionError.toExponential(1)}`,
    '',
    'zero-shot accuracy per attribute family:',
    ...FAMILIES.map((f) => `  ${fam(f)} ${pct1(zs[f]).toFixed(1).padStart(5)}%   (chance ${pct1(1 / ATTRIBUTES[f].length).toFixed(1)}%, ${ATTRIBUTES[f].length} classes)`),
    '',
    `TextSpan on the heads of layers ${layers[0]}-${layers[layers.length - 1]}: top ${m} texts per head; family = the attribute family most of them name, purity = its share`,
    ...heads.map((h) => `  head ${headName(h).padEnd(6)} ${fam(h.family)} purity ${String(pct1(h.purity)).padStart(3)}%   ${h.texts.join(' | ')}`),
  ];
  const purity = await barChart({
    title: 'Purity per head (colour = family)',
    labels: heads.map(headName),
    values: heads.map((h) => pct1(h.purity)),
    color: heads.map((h) => familyColor(h.family)),
    yLabel: 'purity (%)',
    yMin: 0,
    yMax: 100,
  });
  const report: Report = {
    title: 'cliplens demo: what the toy CLIP\'s heads describe',
    summary: `${n} held-out toy-world scenes decomposed into per-layer, per-head terms with the embedded model ${model}; TextSpan names each late head's role in words.`,
    meta: { model: model, scenes: n, seed: DEMO_SEED, layers: layers.join(','), 'texts per head': m, 'text pool': poolSize },
    sections: [
      {
        title: 'Zero-shot accuracy',
        text: exactnessStatement(result.decompositionError, n),
        tables: [{ caption: 'top-1 zero-shot accuracy (%) per attribute family', headers: ['family', 'classes', 'chance', 'accuracy'], rows: FAMILIES.map((f) => [f, ATTRIBUTES[f].length, pct1(1 / ATTRIBUTES[f].length), pct1(zs[f])]) }],
      },
      {
        title: 'What each head describes (TextSpan)',
        text: `Pool: ${poolSize} texts (three phrasings of every attribute value, plus texts naming no attribute). Purity = share of the head's top ${m} texts naming its family.`,
        tables: [{ headers: ['head', 'family', 'purity (%)', 'texts'], rows: heads.map((h) => [headName(h), h.family, pct1(h.purity), h.texts.join(' | ')]) }],
        figures: [{ name: 'purity', png: purity, caption: `purity per head; colour = the family it mostly describes: ${COLOR_KEY}` }],
      },
      {
        title: 'Where the model reads an attribute',
        text: "Each map is a text's direct contribution per image patch, summed over all layers and heads. The difference of two texts' maps shows where the image tells them apart.",
        figures: [{ name: 'heatmaps', png: heatmaps, caption: 'scene; its colour vs another colour and the difference; its shape vs another shape and the difference' }],
      },
    ],
    models: [fromJson(result)!],
    data: result,
  };
  return { summary, report };
}

export async function runDemo(model: ClipModel, opts: DemoOptions = {}): Promise<{ result: DemoResult; report: Report; summary: string[]; scenes: Scene[] }> {
  const log = opts.log ?? (() => {});
  const n = opts.n ?? 300;
  const { L, H, d } = model.dims();
  const last = Math.min(opts.lastLayers ?? 3, L);
  if (!Number.isInteger(last) || last < 1) throw new ToyworldError(`last layers must be a positive integer, got ${opts.lastLayers}`);
  const layers = Array.from({ length: last }, (_, i) => L - last + i);
  const m = opts.m ?? 5;

  log(`generating ${n} held-out scenes`);
  const set = sceneSet(model, n, DEMO_SEED);
  const dec = new Decomposer(model);
  log('decomposing');
  const terms = await dec.decompose(set.pixels, { batchSize: 32 });
  log('embedding texts');
  const classifiers = await familyClassifiers(model);
  const pool = attributePool();
  const poolEmb = await embedTexts(model, pool.texts);
  const zs: Record<string, number> = {};
  for (const f of FAMILIES) zs[f] = zeroShot(terms.imageFeatures.data, d, classifiers[f], set.labels[f]);
  log('TextSpan');
  const heads = await labelHeads(terms.attn, poolEmb, pool, { layers, m });

  const heatmaps = await demoHeatmaps(dec, set, Math.min(opts.heatmapScenes ?? 3, n));

  const result: DemoResult = { ...provenanceFields(modelProvenance(model)), n, layers, dims: { L, H, d }, decompositionError: decompositionError(terms), zeroShot: zs, heads };
  const { summary, report } = await demoReport(result, pool.texts.length, m, heatmaps);
  return { result, report, summary, scenes: set.scenes };
}
