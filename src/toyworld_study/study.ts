// The end-to-end toy-world study: every experiment of the paper run on cliplens' own small CLIP,
// where the ground truth (what each scene shows, where the object is) is known exactly.

import { Decomposer } from '../decompose/decomposer.ts';
import { decompositionError } from '../decompose/invariant.ts';
import { modelProvenance, type ModelProvenance } from '../io/provenance.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { layerAblation, type FamilyAblation } from './ablation.ts';
import { balancedSet, sceneSet, STUDY_SEED, subset, type SceneSet } from './data.ts';
import { labelHeads, type HeadLabel } from './heads.ts';
import { propertyRetrieval, type RetrievalResult } from './retrieval.ts';
import { segmentationStudy, type SegmentationStudy } from './segmentation.ts';
import { backgroundHeads, spuriousStudy, type SpuriousStudy } from './spurious.ts';
import { attributePool, embedTexts, familyClassifiers, type AttributePool } from './texts.ts';
import { ToyworldError } from '../errors.ts';

export interface ToyworldStudyOptions {
  /** Scenes for (a)–(c) (default 2000; 96 with quick). */
  n?: number;
  /** A reduced run for tests. */
  quick?: boolean;
  /** Scenes segmented in (d) (default min(n, 500); 16 with quick). */
  segImages?: number;
  /** Balanced test scenes per (shape, background) group in (e) (default 60; 4 with quick). */
  perGroup?: number;
  /** Random-head draws in (e) (default 10; 3 with quick). */
  draws?: number;
  /** TextSpan texts per head, and the purity a head needs to count as a family's head. */
  m?: number;
  minPurity?: number;
  /** Neighbours for precision@k. */
  k?: number;
  /** Model trained on shape~background correlated scenes, for (e); absent: the main model stands in. */
  correlated?: ClipModel;
  /** Why the stand-in is used (for the report), when `correlated` is absent. */
  correlatedNote?: string;
  log?: (msg: string) => void;
}

export interface ToyworldSettings {
  model: string;
  correlatedModel: string;
  n: number;
  segImages: number;
  perGroup: number;
  draws: number;
  m: number;
  minPurity: number;
  k: number;
  seed: number;
  quick: boolean;
}

export interface ToyworldStudy {
  settings: ToyworldSettings;
  /** The models the numbers come from: the main one, then the correlated one when it is another. */
  models: ModelProvenance[];
  dims: { L: number; H: number; d: number; grid: number; imageSize: number };
  /** max |Σ terms − z/‖z‖| over the scenes (the report states exactness from it). */
  decompositionError: number;
  zeroShot: Record<string, number>;
  ablation: FamilyAblation[];
  pool: AttributePool;
  heads: HeadLabel[];
  retrieval: RetrievalResult;
  segmentation: SegmentationStudy;
  spurious: SpuriousStudy;
  notes: string[];
}

/** The scenes behind the numbers (kept out of report.json; used for figures). */
export interface ToyworldScenes {
  main: SceneSet;
  seg: SceneSet;
  balanced: SceneSet;
}

function positiveInt(v: number, what: string, min = 1): number {
  if (!Number.isSafeInteger(v) || v < min) throw new ToyworldError(`${what} must be an integer ≥ ${min}, got ${v}`);
  return v;
}

export async function runToyworldStudy(model: ClipModel, opts: ToyworldStudyOptions = {}): Promise<{ study: ToyworldStudy; scenes: ToyworldScenes }> {
  const quick = !!opts.quick;
  const log = opts.log ?? (() => {});
  const n = positiveInt(opts.n ?? (quick ? 96 : 2000), 'number of scenes', 20);
  const segImages = positiveInt(opts.segImages ?? Math.min(n, quick ? 16 : 500), 'segmentation scenes');
  const perGroup = positiveInt(opts.perGroup ?? (quick ? 4 : 60), 'scenes per group');
  const draws = positiveInt(opts.draws ?? (quick ? 3 : 10), 'random draws');
  const m = positiveInt(opts.m ?? 5, 'texts per head');
  const k = positiveInt(opts.k ?? 10, 'k');
  const minPurity = opts.minPurity ?? 0.6;
  const { L, H, d, grid } = model.dims();
  const corr = opts.correlated ?? model;
  const notes: string[] = [];
  const settings: ToyworldSettings = { model: model.name, correlatedModel: corr.name, n, segImages, perGroup, draws, m, minPurity, k, seed: STUDY_SEED, quick };

  log(`scenes: ${n} held-out scenes (seed ${STUDY_SEED})`);
  const main = sceneSet(model, n, STUDY_SEED);
  const dec = new Decomposer(model);
  log('decomposing');
  const terms = await dec.decompose(main.pixels, { batchSize: 32 });
  const decErr = decompositionError(terms);
  log('embedding texts');
  const classifiers = await familyClassifiers(model);
  const pool = attributePool();
  const poolEmb = await embedTexts(model, pool.texts);

  log('(a) mean-ablation');
  const ablation = layerAblation(terms, classifiers, main.labels);
  const zeroShot = Object.fromEntries(ablation.map((a) => [a.family, a.baseline]));

  log('(b) TextSpan');
  const heads = await labelHeads(terms.attn, poolEmb, pool, { m, minPurity });

  log('(c) property retrieval');
  const retrieval = propertyRetrieval(terms.attn, terms.imageFeatures, main.labels, heads, { k, queries: [0, 1, 2, 3, 4, 5] });

  log('(d) segmentation');
  const seg = subset(main, Array.from({ length: Math.min(segImages, n) }, (_, i) => i));
  const segmentation = await segmentationStudy(dec, seg, { examples: 6 });

  log(`(e) spurious cue on ${corr.name}`);
  const balanced = balancedSet(corr, 'shape', 'background', perGroup, STUDY_SEED);
  const cdec = corr === model ? dec : new Decomposer(corr);
  const cterms = await cdec.decompose(balanced.pixels, { batchSize: 32 });
  const cClassifiers = corr === model ? classifiers : await familyClassifiers(corr);
  const cHeads = corr === model ? heads : await labelHeads(cterms.attn, await embedTexts(corr, pool.texts), pool, { m, minPurity });
  const chosen = backgroundHeads(cHeads);
  const spurious = spuriousStudy(cterms, cClassifiers.shape, cClassifiers.background, balanced.labels, chosen, { model: corr.name, standIn: corr === model, draws, allHeads: cHeads });
  if (corr === model) notes.push(opts.correlatedNote ?? `Part (e) ran on the main model ${model.name} as a stand-in for a model trained on correlated data.`);
  if (!chosen.heads.length) notes.push('Part (e): no head to ablate, so "after" equals "before".');

  const study: ToyworldStudy = {
    settings,
    models: corr === model ? [modelProvenance(model)] : [modelProvenance(model), modelProvenance(corr)],
    dims: { L, H, d, grid, imageSize: model.config.vision.imageSize },
    decompositionError: decErr,
    zeroShot,
    ablation,
    pool,
    heads,
    retrieval,
    segmentation,
    spurious,
    notes,
  };
  return { study, scenes: { main, seg, balanced } };
}

