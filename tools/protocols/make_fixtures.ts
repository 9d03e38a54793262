// Protocol fixtures: the terms of toy-world scenes decomposed by two models, and the numbers the
// authors' scripts compute from those very terms.
//
//   node --import tsx tools/protocols/make_fixtures.ts /path/to/clip_text_span
//
// For each model (the builtin toyworld CLIP and the reference fixture's random tiny_a) this writes
// test/fixtures/protocols/<model>.safetensors: 160 held-out toy-world scenes decomposed (attn,
// cls_attn [n, L, H, d], mlp [n, L+1, d], image_features, norm; normalised as the reference), the
// scene's shape as label and background as group, a zero-shot shape classifier and the study's
// attribute text pool; then runs tools/protocols/reference_protocols.py (Debian's python3-torch,
// python3-numpy, python3-tqdm; the reference code imported from the checkout given) and writes its
// output to test/fixtures/protocols/<model>.expected.json.

import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Decomposer } from '../../src/decompose/decomposer.ts';
import { modelProvenance, provenanceMetadata } from '../../src/io/provenance.ts';
import { writeSafetensors } from '../../src/io/safetensors.ts';
import type { ClipModel } from '../../src/runtime/clip.ts';
import { loadClip } from '../../src/runtime/load.ts';
import { f32 } from '../../src/tensor.ts';
import { ATTRIBUTES } from '../../src/toyworld/index.ts';
import { sceneSet } from '../../src/toyworld_study/data.ts';
import { attributePool, embedTexts, familyClassifier } from '../../src/toyworld_study/texts.ts';

const REF_DIR = process.argv[2];
if (!REF_DIR) throw new Error('usage: make_fixtures.ts /path/to/clip_text_span');
const REPO = resolve(import.meta.dirname, '../..');
const OUT = join(REPO, 'test/fixtures/protocols');
const N = 160;
const SEED = 0x9e7a11;

async function fixture(name: string, model: ClipModel): Promise<void> {
  const set = sceneSet(model, N, SEED);
  const dec = await new Decomposer(model).decompose(set.pixels);
  const { L } = model.dims();
  const classifier = await familyClassifier(model, 'shape');
  const pool = attributePool();
  const poolEmb = await embedTexts(model, pool.texts);
  const file = join(OUT, `${name}.safetensors`);
  writeSafetensors(
    file,
    {
      attn: dec.attn,
      cls_attn: dec.clsAttn!,
      mlp: dec.mlp,
      image_features: dec.imageFeatures,
      norm: dec.norm,
      labels: { dtype: 'I32', shape: [N], data: set.labels.shape },
      groups: { dtype: 'I32', shape: [N], data: set.labels.background },
      classifier,
      pool: f32(poolEmb.shape, poolEmb.data),
    },
    {
      metadata: {
        ...provenanceMetadata(modelProvenance(model)),
        what: `${N} toy-world scenes (seed ${SEED}) decomposed by ${name} (normalised terms); label = shape, group = background; classifier = zero-shot shape classifier; pool = the toy-world study's attribute texts`,
        classes: JSON.stringify(ATTRIBUTES.shape),
        groups: JSON.stringify(ATTRIBUTES.background),
        pool: JSON.stringify(pool.texts),
      },
    },
  );
  const spec = {
    completeness: [
      { lastLayers: 4, rank: 80, m: 1 },
      { lastLayers: 4, rank: 80, m: 3 },
      { lastLayers: 4, rank: 80, m: 10 },
      { lastLayers: 2, rank: 16, m: 5 },
    ],
    debias: [{ heads: [[L - 1, 1], [L - 2, 2]] }, { heads: [[0, 2], [L - 1, 0], [L - 3, 3]] }],
  };
  const specFile = join(OUT, `${name}.spec.json`);
  writeFileSync(specFile, JSON.stringify(spec));
  execFileSync('/usr/bin/python3', [join(REPO, 'tools/protocols/reference_protocols.py'), REF_DIR, file, specFile, join(OUT, `${name}.expected.json`)], { stdio: 'inherit' });
  execFileSync('rm', [specFile]);
  process.stderr.write(`wrote ${file} and ${name}.expected.json\n`);
}

mkdirSync(OUT, { recursive: true });
await fixture('toyworld', await loadClip('toyworld', { threads: 2 }));
await fixture('tiny_a', await loadClip(join(REPO, 'test/fixtures/reference/tiny_a.safetensors'), { threads: 2 }));
