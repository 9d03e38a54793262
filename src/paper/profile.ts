// What the paper's experiments need besides the data, per kind of model: the text pools, how
// zero-shot classifiers are made, which texts choose the location heads and the property heads,
// the texts of the joint figure, and the TextSpan settings. A real CLIP gets the paper's own
// (the clip_text_span pools, the OpenAI ImageNet templates); the builtin toy-world models get the
// toy world's (its caption grammar's texts and prompts), and a stand-in for every dataset.

import { assetPath } from '../assets.ts';
import { modelProvenance } from '../io/provenance.ts';
import { embedClassifier, readLines, readListOrBundled, type TextSet } from '../analyses/text_sets.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { f32 } from '../tensor.ts';
import { ATTRIBUTES } from '../toyworld/index.ts';
import { attributePool, familyClassifier } from '../toyworld_study/texts.ts';
import { PAIR_TEXTS, WATERBIRDS_CLASSES, WATERBIRDS_PLACES } from '../toyworld_study/paper_data.ts';
import { UsageError } from '../errors.ts';

/** How heads are chosen by text: substring of their TextSpan texts (share of texts that must match), or closeness of their texts to a query in the model's text space. */
export type HeadQuery = { match: 'substring'; query: string; minShare: number } | { match: 'embedding'; query: string; top: number };

export interface PaperProfile {
  kind: 'toyworld' | 'clip';
  /** TextSpan's candidate texts and where they come from. */
  descriptions: { name: string; texts: string[]; source: string };
  /** The common-words baseline pool (most frequent first). */
  commonWords: { texts: string[]; source: string };
  /** Zero-shot classifier for the ImageNet stand-in's or ImageNet's class names. */
  imagenetClassifier(model: ClipModel, classNames: string[]): Promise<TextSet>;
  /** Class names of ImageNet (class-index order); the toy world's shapes. */
  imagenetClassNames(): string[];
  /** Waterbirds' classes in y order, its places in `place` order, and how the classifier is made. */
  waterbirdsClasses: string[];
  waterbirdsPlaces: string[];
  waterbirdsClassifier(model: ClipModel): Promise<TextSet>;
  /** The prompt templates both classifiers are built with (none for the toy world's fixed texts): part of their cache keys. */
  templates(): string[];
  /** Heads whose texts are about location / background (§5). */
  location: HeadQuery;
  /** Properties for retrieval (§5): the head whose texts best match each query. */
  properties: { name: string; query: HeadQuery }[];
  /** The two texts of the joint figure (§6). */
  jointTexts: [string, string];
  textspan: { layers: number; k: number; rank: number; ms: number[] };
  /** A builtin model for §5 when the main one was not trained with a spurious cue. */
  spuriousModel?: string;
}

const TEXT = (f: string) => assetPath('assets', f);

/** ImageNet's class names and the 80 OpenAI templates: files, or the bundled lists ('imagenet', 'openai'). */
export function imagenetTexts(classes = 'imagenet', templates = 'openai'): { classes: string[]; templates: string[] } {
  return { classes: readListOrBundled(classes, 'classes'), templates: readListOrBundled(templates, 'templates') };
}

function clipProfile(opts: { classes?: string; templates?: string }): PaperProfile {
  const lazy = () => imagenetTexts(opts.classes, opts.templates);
  return {
    kind: 'clip',
    descriptions: { name: 'image descriptions', texts: readLines(TEXT('image_descriptions_general.txt')), source: 'image_descriptions_general.txt (clip_text_span, 3498 general image descriptions)' },
    commonWords: { texts: readLines(TEXT('google_3498_english.txt')), source: 'google_3498_english.txt (clip_text_span, 3498 most common English words)' },
    imagenetClassifier: (model, names) => embedClassifier(model, names, lazy().templates),
    imagenetClassNames: () => lazy().classes,
    waterbirdsClasses: ['landbird', 'waterbird'],
    waterbirdsPlaces: ['land', 'water'],
    waterbirdsClassifier: (model) => embedClassifier(model, ['landbird', 'waterbird'], lazy().templates),
    templates: () => lazy().templates,
    location: { match: 'embedding', query: 'a photo taken in a specific place or location', top: 6 },
    properties: [
      { name: 'colour', query: { match: 'embedding', query: 'a photo with a specific color', top: 1 } },
      { name: 'shape', query: { match: 'embedding', query: 'an object with a specific shape', top: 1 } },
      { name: 'texture', query: { match: 'embedding', query: 'a close-up of a texture', top: 1 } },
      { name: 'location', query: { match: 'embedding', query: 'a photo taken in a specific place or location', top: 1 } },
      { name: 'count', query: { match: 'embedding', query: 'a photo of several objects', top: 1 } },
    ],
    jointTexts: ['An image of a dog', 'An image of a cat'],
    textspan: { layers: 4, k: 10, rank: 80, ms: [10, 20, 30, 40, 50, 60] },
  };
}

/** A classifier from per-class prompt lists (the toy world's trainer prompts), names = classes. */
async function toyClassifier(model: ClipModel, family: string, classes: string[]): Promise<TextSet> {
  const all = await familyClassifier(model, family);
  const d = all.shape[1];
  const out = f32([classes.length, d]);
  classes.forEach((c, i) => {
    const k = ATTRIBUTES[family].indexOf(c);
    if (k < 0) throw new UsageError(`class '${c}' is not a toy-world ${family} (${ATTRIBUTES[family].join(', ')})`);
    out.data.set(all.data.subarray(k * d, (k + 1) * d), i * d);
  });
  return { kind: 'classifier', names: classes, embeddings: out, model: modelProvenance(model) };
}

const anyOf = (values: string[]) => values.join('|');

function toyProfile(): PaperProfile {
  const pool = attributePool();
  return {
    kind: 'toyworld',
    descriptions: { name: 'toy-world attribute texts', texts: pool.texts, source: "the toy world's attribute texts (three phrasings of every attribute value, and 16 distractors)" },
    commonWords: { texts: readLines(TEXT('google_3498_english.txt')), source: 'google_3498_english.txt (clip_text_span), its first words up to the pool size' },
    imagenetClassifier: (model, names) => toyClassifier(model, 'shape', names),
    imagenetClassNames: () => ATTRIBUTES.shape,
    waterbirdsClasses: WATERBIRDS_CLASSES,
    waterbirdsPlaces: WATERBIRDS_PLACES.map((p) => `${p} background`),
    waterbirdsClassifier: (model) => toyClassifier(model, 'shape', WATERBIRDS_CLASSES),
    templates: () => [],
    location: { match: 'substring', query: 'background', minShare: 0.5 },
    properties: ['color', 'shape', 'size', 'position', 'count', 'background'].map((f) => ({
      name: f,
      query: { match: 'substring' as const, query: f === 'background' ? 'background' : f === 'count' ? anyOf(['two', 'three']) : anyOf(ATTRIBUTES[f]), minShare: 0 },
    })),
    jointTexts: PAIR_TEXTS as [string, string],
    textspan: { layers: 4, k: 5, rank: 80, ms: [1, 2, 3, 5, 10, 20] },
    spuriousModel: 'toyworld-correlated',
  };
}

/** Builtin toy-world models are the ones named toyworld…; everything else is a real CLIP. */
export function isToyworld(model: ClipModel): boolean {
  return /^toyworld(-|$)/.test(model.name);
}

export function paperProfile(model: ClipModel, opts: { classes?: string; templates?: string } = {}): PaperProfile {
  return isToyworld(model) ? toyProfile() : clipProfile(opts);
}
