// The text side of the study: a TextSpan pool of attribute texts (each naming one family, in
// the training grammar) plus distractors, and one zero-shot classifier per family built as the
// trainer's evaluation does (mean of the normalised prompt embeddings, renormalised).

import { normalizeRows } from '../analyses/linalg.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { f32, type F32 } from '../tensor.ts';
import { ATTRIBUTES, FAMILIES, attributePrompts, renderCaption, type Labels } from '../toyworld/index.ts';

/** Family of a pool text that names no attribute. */
export const OTHER = 'other';

export interface AttributePool {
  texts: string[];
  /** The family each text names, or OTHER for distractors. */
  family: string[];
  /** The value it names ('' for distractors). */
  value: string[];
}

const NEUTRAL: Labels = { shape: 'circle', color: 'red', size: 'small', position: 'left', count: 'one', background: 'plain' };

/** Texts that name no attribute: generic in-grammar phrases and scenes outside the toy world. */
export const DISTRACTORS = [
  'an object',
  'a shape',
  'a photo of an object',
  'an image of a shape',
  'a photo of a dog',
  'a city street at night',
  'a bowl of fruit on a table',
  'a portrait of a smiling person',
  'a snowy mountain landscape',
  'a handwritten letter',
  'a car parked on a road',
  'a plate of food',
  'a cat sleeping on a sofa',
  'a forest in autumn',
  'a crowded beach in summer',
  'a page of printed text',
];

/** Three phrasings per value (templates 0, 2, 3 of the caption grammar, singular), then the distractors. */
export function attributePool(): AttributePool {
  const out: AttributePool = { texts: [], family: [], value: [] };
  for (const fam of FAMILIES) {
    for (const v of ATTRIBUTES[fam]) {
      for (const template of [0, 2, 3]) {
        const text = renderCaption({ ...NEUTRAL, [fam]: v }, { mention: new Set([fam]), template, genericNoun: 'object' });
        if (out.texts.includes(text)) continue;
        out.texts.push(text);
        out.family.push(fam);
        out.value.push(v);
      }
    }
  }
  for (const t of DISTRACTORS) {
    out.texts.push(t);
    out.family.push(OTHER);
    out.value.push('');
  }
  return out;
}

/** Normalised text embeddings [T, d]. */
export async function embedTexts(model: ClipModel, texts: string[]): Promise<F32> {
  const d = model.config.embedDim;
  const { features } = await model.encodeTexts(texts);
  return f32([texts.length, d], normalizeRows(features.data, texts.length, d));
}

/** Classifier [C, d] of one family from attributePrompts: mean of normalised prompts, renormalised. */
export async function familyClassifier(model: ClipModel, family: string): Promise<F32> {
  const d = model.config.embedDim;
  const classes = attributePrompts(family);
  const all = classes.flatMap((c) => c.prompts);
  const emb = await embedTexts(model, all);
  const out = new Float32Array(classes.length * d);
  let row = 0;
  classes.forEach((c, ci) => {
    for (let p = 0; p < c.prompts.length; p++, row++) for (let j = 0; j < d; j++) out[ci * d + j] += emb.data[row * d + j];
  });
  return f32([classes.length, d], normalizeRows(out, classes.length, d));
}

export async function familyClassifiers(model: ClipModel): Promise<Record<string, F32>> {
  const out: Record<string, F32> = {};
  for (const fam of FAMILIES) out[fam] = await familyClassifier(model, fam);
  return out;
}

/** "a photo of a red circle" / "a photo of some red circles": the scene's shape and colour. */
export function shapeColorCaption(labels: Labels): string {
  return renderCaption(labels, { mention: new Set(['shape', 'color']), template: 2, genericNoun: 'object' });
}

/** Every shape × colour caption, singular and plural (the class set whose mean the maps subtract). */
export function shapeColorCaptions(): string[] {
  const out: string[] = [];
  for (const count of ['one', 'two'])
    for (const shape of ATTRIBUTES.shape) for (const color of ATTRIBUTES.color) out.push(shapeColorCaption({ ...NEUTRAL, shape, color, count }));
  return out;
}
