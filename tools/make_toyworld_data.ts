// Export toy-world splits for tools/train_toyworld.py.
//   node --import tsx tools/make_toyworld_data.ts --out .cache/toyworld
// Per split: SPLIT.safetensors (images u8 [n,S,S,3], masks u8 [n,S,S], labels i32 [n,F],
// tokens i32 [n,ctx]; train also aug_tokens i32 [n,K,ctx] and aug_allowed i32 [n,K,F], a bitmask
// of the label values each augmented caption is true of) and SPLIT.json (captions, labels).
// prompts.safetensors / prompts.json hold the zero-shot prompts of every attribute family.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { writeSafetensors } from '../src/io/safetensors.ts';
import { ClipTokenizer } from '../src/model/tokenizer.ts';
import type { Tensor } from '../src/tensor.ts';
import {
  ATTRIBUTES, FAMILIES, attributePrompts, generateScene, mixSeed, mulberry32, sampleCaption, sceneSeed,
  type Correlation,
} from '../src/toyworld/index.ts';

const EOT = 49407;

function parseCorrelation(s: string | undefined): Correlation | undefined {
  if (!s) return undefined;
  const m = /^(\w+):(\w+):([0-9.]+)$/.exec(s);
  if (!m) throw new Error(`--correlate expects A:B:P such as shape:background:0.9, got '${s}'`);
  return { a: m[1], b: m[2], p: Number(m[3]) };
}

function tokenize(tok: ClipTokenizer, texts: string[], ctx: number): Int32Array {
  const t = tok.tokenize(texts, ctx);
  for (let i = 0; i < texts.length; i++) {
    // The last slot must be padding, else the caption was cut.
    if (t[i * ctx + ctx - 1] !== 0) throw new Error(`caption does not fit context length ${ctx}: '${texts[i]}'`);
    if (!t.subarray(i * ctx, (i + 1) * ctx).includes(EOT)) throw new Error(`tokenizer gave no end token for '${texts[i]}'`);
  }
  return t;
}

interface SplitSpec {
  name: string;
  n: number;
  seed: number;
  correlate?: Correlation;
  augment: number; // captions with dropped attributes per image (train only)
  masks: boolean;
}

function writeSplit(dir: string, spec: SplitSpec, size: number, ctx: number, keepProb: number, tok: ClipTokenizer): void {
  const { n, augment: K } = spec;
  const F = FAMILIES.length;
  const images = new Uint8Array(n * size * size * 3);
  const masks = spec.masks ? new Uint8Array(n * size * size) : undefined;
  const labels = new Int32Array(n * F);
  const captions: string[] = [];
  const labelStrings: string[][] = [];
  const augCaptions: string[] = [];
  const augAllowed = new Int32Array(n * K * F);
  for (let i = 0; i < n; i++) {
    const seed = sceneSeed(spec.seed, i);
    const s = generateScene(seed, { size, correlate: spec.correlate });
    images.set(s.image, i * size * size * 3);
    masks?.set(s.mask, i * size * size);
    FAMILIES.forEach((f, j) => (labels[i * F + j] = ATTRIBUTES[f].indexOf(s.labels[f])));
    captions.push(s.caption);
    labelStrings.push(FAMILIES.map((f) => s.labels[f]));
    const rng = mulberry32(mixSeed(seed, 0xa06));
    for (let k = 0; k < K; k++) {
      const c = sampleCaption(s.labels, rng, keepProb);
      augCaptions.push(c.caption);
      FAMILIES.forEach((f, j) => {
        let bits = 0;
        for (const v of c.constraints[f]) bits |= 1 << ATTRIBUTES[f].indexOf(v);
        augAllowed[(i * K + k) * F + j] = bits;
      });
    }
  }
  const tensors: Record<string, Tensor> = {
    images: { dtype: 'U8', shape: [n, size, size, 3], data: images },
    labels: { dtype: 'I32', shape: [n, F], data: labels },
    tokens: { dtype: 'I32', shape: [n, ctx], data: tokenize(tok, captions, ctx) },
  };
  if (masks) tensors.masks = { dtype: 'U8', shape: [n, size, size], data: masks };
  if (K > 0) {
    tensors.aug_tokens = { dtype: 'I32', shape: [n, K, ctx], data: tokenize(tok, augCaptions, ctx) };
    tensors.aug_allowed = { dtype: 'I32', shape: [n, K, F], data: augAllowed };
  }
  writeSafetensors(join(dir, `${spec.name}.safetensors`), tensors, {
    metadata: { split: spec.name, seed: String(spec.seed), families: FAMILIES.join(','), correlate: JSON.stringify(spec.correlate ?? null) },
  });
  const json = {
    split: spec.name, seed: spec.seed, n, size, context_length: ctx, families: FAMILIES, attributes: ATTRIBUTES,
    correlate: spec.correlate ?? null, keep_prob: K > 0 ? keepProb : undefined, captions, labels: labelStrings,
    aug_captions: K > 0 ? augCaptions : undefined,
  };
  writeFileSync(join(dir, `${spec.name}.json`), JSON.stringify(json));
  console.log(`${spec.name}: ${n} scenes${K ? `, ${K} extra captions each` : ''}${spec.correlate ? `, ${spec.correlate.a}~${spec.correlate.b} p=${spec.correlate.p}` : ''}`);
}

function writePrompts(dir: string, ctx: number, tok: ClipTokenizer): void {
  const tensors: Record<string, Tensor> = {};
  const json: Record<string, { value: string; prompts: string[] }[]> = {};
  for (const fam of FAMILIES) {
    const groups = attributePrompts(fam);
    json[fam] = groups;
    const texts = groups.flatMap((g) => g.prompts);
    const cls = Int32Array.from(groups.flatMap((g, v) => g.prompts.map(() => v)));
    tensors[`${fam}.tokens`] = { dtype: 'I32', shape: [texts.length, ctx], data: tokenize(tok, texts, ctx) };
    tensors[`${fam}.class`] = { dtype: 'I32', shape: [texts.length], data: cls };
  }
  writeSafetensors(join(dir, 'prompts.safetensors'), tensors, { metadata: { families: FAMILIES.join(',') } });
  writeFileSync(join(dir, 'prompts.json'), JSON.stringify({ families: FAMILIES, attributes: ATTRIBUTES, prompts: json }, null, 1));
}

const program = new Command()
  .name('make_toyworld_data')
  .description('write toy-world train/val/balanced/correlated splits for tools/train_toyworld.py')
  .option('--out <dir>', 'output directory', '.cache/toyworld')
  .option('--size <n>', 'image size (must equal the model image_size)', '64')
  .option('--context-length <n>', 'token context length', '32')
  .option('--n-train <n>', 'training scenes', '40000')
  .option('--n-eval <n>', 'scenes in each of val, balanced, correlated', '2000')
  .option('--captions-per-image <k>', 'extra training captions per image with dropped attributes', '4')
  .option('--keep-prob <p>', 'probability an extra caption names a given attribute', '0.3')
  .option('--train-correlate <a:b:p>', 'correlate two attributes in the train split (default: independent)')
  .option('--correlate <a:b:p>', 'correlation of the correlated split', 'shape:background:0.9')
  .option('--seed <n>', 'base seed; split seeds are derived from it', '1');

program.parse();
const o = program.opts();
const int = (s: string, what: string): number => {
  const v = Number(s);
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${what} must be a non-negative integer, got '${s}'`);
  return v;
};
const size = int(o.size, '--size');
const ctx = int(o.contextLength, '--context-length');
const base = int(o.seed, '--seed');
const keepProb = Number(o.keepProb);
const nEval = int(o.nEval, '--n-eval');
mkdirSync(o.out, { recursive: true });
const tok = ClipTokenizer.default();
const t0 = performance.now();
const splits: SplitSpec[] = [
  { name: 'train', n: int(o.nTrain, '--n-train'), seed: mixSeed(base, 1), correlate: parseCorrelation(o.trainCorrelate), augment: int(o.captionsPerImage, '--captions-per-image'), masks: false },
  { name: 'val', n: nEval, seed: mixSeed(base, 2), augment: 0, masks: true },
  { name: 'balanced', n: nEval, seed: mixSeed(base, 3), augment: 0, masks: true },
  { name: 'correlated', n: nEval, seed: mixSeed(base, 4), correlate: parseCorrelation(o.correlate), augment: 0, masks: true },
];
for (const s of splits) writeSplit(o.out, s, size, ctx, keepProb, tok);
writePrompts(o.out, ctx, tok);
console.log(`wrote ${o.out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
