// Attribute vocabulary of the toy world and the caption grammar built on it.
// Captions may leave attributes out so that each word must be bound to its own visual
// property; `constraints` records which label values a caption is still true of.

import { pick, type Rng } from './rng.ts';
import { ToyworldError } from '../errors.ts';

export const ATTRIBUTES: Record<string, string[]> = {
  shape: ['circle', 'square', 'triangle', 'cross'],
  color: ['red', 'orange', 'yellow', 'green', 'blue', 'purple', 'pink'],
  size: ['small', 'large'],
  position: ['left', 'right', 'top', 'bottom'],
  count: ['one', 'two', 'three'],
  background: ['plain', 'striped', 'dotted', 'checkered'],
};

/** Attribute families in a fixed order (used for label index tensors). */
export const FAMILIES = Object.keys(ATTRIBUTES);

export type Labels = Record<string, string>;

const POSITION_PHRASE: Record<string, string> = { left: 'on the left', right: 'on the right', top: 'at the top', bottom: 'at the bottom' };
const COUNT_NUMBER: Record<string, number> = { one: 1, two: 2, three: 3 };

function article(nextWord: string): string {
  return /^[aeiou]/.test(nextWord) ? 'an' : 'a';
}

export interface CaptionParts {
  /** Families whose value the caption names. */
  mention: Set<string>;
  /** 0..3: which sentence frame. */
  template: number;
  /** Word used when the shape is not named. */
  genericNoun: 'object' | 'shape';
}

/** Render a caption from labels and what it mentions. */
export function renderCaption(labels: Labels, parts: CaptionParts): string {
  const m = parts.mention;
  const n = COUNT_NUMBER[labels.count];
  const plural = n > 1;
  const word = m.has('shape') ? labels.shape : parts.genericNoun;
  const noun = plural ? (word.endsWith('s') ? `${word}es` : `${word}s`) : word;
  const adjs = [m.has('size') ? labels.size : '', m.has('color') ? labels.color : ''].filter(Boolean);
  const rest = [...adjs, noun].join(' ');
  // "a"/"an" still says "one"; "some" still says "more than one".
  const det = m.has('count') ? labels.count : plural ? 'some' : article(rest);
  const np = `${det} ${rest}`;
  const pos = m.has('position') ? ` ${POSITION_PHRASE[labels.position]}` : '';
  const bg = m.has('background') ? labels.background : '';
  switch (parts.template) {
    case 0:
      return `${np}${pos}${bg ? ` on a ${bg} background` : ''}`;
    case 1:
      return `${np}${pos}${bg ? `, ${bg} background` : ''}`;
    case 2:
      return `a photo of ${np}${pos}${bg ? ` on a ${bg} background` : ''}`;
    default:
      return bg ? `a ${bg} background with ${np}${pos}` : `an image of ${np}${pos}`;
  }
}

/**
 * Values of each family that a caption is still true of: one value when named,
 * all values when left out (count is narrowed by the singular/plural determiner).
 */
export function captionConstraints(labels: Labels, mention: Set<string>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [fam, values] of Object.entries(ATTRIBUTES)) {
    if (mention.has(fam)) out[fam] = [labels[fam]];
    else if (fam === 'count') out[fam] = labels.count === 'one' ? ['one'] : ['two', 'three'];
    else out[fam] = [...values];
  }
  return out;
}

export interface SampledCaption {
  caption: string;
  mention: string[];
  constraints: Record<string, string[]>;
}

/** A caption naming each family with probability keepProb (at least one family named). */
export function sampleCaption(labels: Labels, rng: Rng, keepProb = 1): SampledCaption {
  const mention = new Set<string>();
  for (const fam of FAMILIES) if (rng() < keepProb) mention.add(fam);
  if (mention.size === 0) mention.add(pick(rng, FAMILIES));
  const template = Math.floor(rng() * 4);
  const genericNoun = rng() < 0.5 ? 'object' : 'shape';
  return {
    caption: renderCaption(labels, { mention, template, genericNoun }),
    mention: FAMILIES.filter((f) => mention.has(f)),
    constraints: captionConstraints(labels, mention),
  };
}

/**
 * Zero-shot prompts per value of a family: captions of the training grammar that name
 * only that family, in every frame, singular and plural, so the class embedding is
 * neutral to the other families.
 */
export function attributePrompts(attr: string): { value: string; prompts: string[] }[] {
  const values = ATTRIBUTES[attr];
  if (!values) throw new ToyworldError(`unknown attribute family '${attr}' (known: ${FAMILIES.join(', ')})`);
  // Neutral filler values for the families the prompt does not name.
  const base: Labels = { shape: 'circle', color: 'red', size: 'small', position: 'left', count: 'one', background: 'plain' };
  return values.map((value) => {
    const prompts = new Set<string>();
    const counts = attr === 'count' ? [value] : ['one', 'two'];
    for (const count of counts) {
      for (let template = 0; template < 4; template++) {
        for (const genericNoun of ['object', 'shape'] as const) {
          if (attr === 'shape' && genericNoun === 'shape') continue;
          const labels = { ...base, count, [attr]: value };
          prompts.add(renderCaption(labels, { mention: new Set([attr]), template, genericNoun }));
        }
      }
    }
    return { value, prompts: [...prompts] };
  });
}
