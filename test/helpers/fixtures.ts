// The one way tests reach their fixtures: test/fixtures/ (copied byte for byte from the project's
// shared fixtures; see test/fixtures/PROVENANCE.md). Fails loudly when a file is missing.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.ts';
import { parseOpenClipConfig } from '../../src/model/config.ts';
import { ClipModel } from '../../src/runtime/clip.ts';
import { OpenClipSafetensors } from '../../src/model/weights.ts';
import { f32, type F32, type Tensor } from '../../src/tensor.ts';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const FIXTURES = join(REPO, 'test/fixtures');
export const REF = join(FIXTURES, 'reference');

/** Path of a fixture file, relative to test/fixtures (e.g. 'reference/tiny_a.json'). */
export function fixturePath(rel: string): string {
  const p = join(FIXTURES, rel);
  if (!existsSync(p)) throw new Error(`test fixture missing: ${p}`);
  return p;
}

/** Path of a file of the reference (clip_text_span) fixtures. */
export const referencePath = (name: string): string => fixturePath(join('reference', name));

export const TINY_A = () => referencePath('tiny_a.safetensors');

export function tinyConfig() {
  return parseOpenClipConfig(JSON.parse(readFileSync(referencePath('tiny_a.json'), 'utf8')));
}

export function tinyModel(threads = 2): ClipModel {
  return new ClipModel({ name: 'tiny_a', config: tinyConfig(), weights: OpenClipSafetensors.open(TINY_A()) }, { threads });
}

let outputs: Map<string, Tensor> | undefined;
let inputs: Map<string, Tensor> | undefined;

export function refOutput(name: string): F32 {
  outputs ??= readSafetensors(referencePath('outputs_tiny_a.safetensors'));
  const t = outputs.get(name);
  if (!t) throw new Error(`fixture tensor ${name} missing`);
  return f32(t.shape, t.data as Float32Array);
}

export function refInput(name: string): Tensor {
  inputs ??= readSafetensors(referencePath('inputs_tiny_a.safetensors'));
  const t = inputs.get(name);
  if (!t) throw new Error(`fixture tensor ${name} missing`);
  return t;
}

export function refPixels(): F32 {
  const t = refInput('pixel_values');
  return f32(t.shape, t.data as Float32Array);
}

export function refTokens(): Int32Array {
  return readSafetensors(referencePath('tokens.safetensors')).get('tokens')!.data as Int32Array;
}

/** Largest |Σ terms − target| over images, for the decomposition invariant. */
export function sumInvariant(attn: F32, mlp: F32, target: Float32Array, scale?: Float32Array): number {
  const B = attn.shape[0];
  const d = attn.shape[attn.shape.length - 1];
  const perA = attn.data.length / B / d;
  const perM = mlp.data.length / B / d;
  let worst = 0;
  for (let b = 0; b < B; b++) {
    for (let k = 0; k < d; k++) {
      let s = 0;
      for (let j = 0; j < perA; j++) s += attn.data[(b * perA + j) * d + k];
      for (let j = 0; j < perM; j++) s += mlp.data[(b * perM + j) * d + k];
      const want = target[b * d + k] / (scale ? scale[b] : 1);
      worst = Math.max(worst, Math.abs(s - want));
    }
  }
  return worst;
}
