// Held-out toy-world scenes as model input: pixels straight from Scene.image (scenes are drawn
// at the model's image size, so no resize), normalised with the model's mean/std, and the
// labels of every attribute family as class indices.

import type { ClipModel } from '../runtime/clip.ts';
import { normalizeU8 } from '../model/preprocess.ts';
import { f32, type F32 } from '../tensor.ts';
import { ATTRIBUTES, FAMILIES, generateScene, mixSeed, sceneSeed, type Scene, type SceneOptions } from '../toyworld/index.ts';
import { ToyworldError } from '../errors.ts';

/** Split seeds far from the trainer's (mixSeed(base, 1..4)), so study scenes are held out. */
export const STUDY_SEED = 0x57d1e5;
export const DEMO_SEED = 0xde3011;

export interface SceneSet {
  scenes: Scene[];
  /** [n, 3, S, S] */
  pixels: F32;
  /** Class index of every scene for each family (index into ATTRIBUTES[family]). [n] */
  labels: Record<string, Int32Array>;
}

export function labelIndices(scenes: Scene[]): Record<string, Int32Array> {
  const out: Record<string, Int32Array> = {};
  for (const fam of FAMILIES) out[fam] = Int32Array.from(scenes, (s) => ATTRIBUTES[fam].indexOf(s.labels[fam]));
  return out;
}

export function scenePixels(model: ClipModel, scenes: Scene[]): F32 {
  const S = model.config.vision.imageSize;
  const { mean, std } = model.config.preprocess;
  const per = 3 * S * S;
  const out = new Float32Array(scenes.length * per);
  scenes.forEach((s, i) => {
    if (s.size !== S) throw new ToyworldError(`scene ${i} is ${s.size}px, the model takes ${S}px`);
    normalizeU8(s.image, S, mean, std, out, i * per);
  });
  return f32([scenes.length, 3, S, S], out);
}

function checkSize(model: ClipModel): number {
  const S = model.config.vision.imageSize;
  if (S < 48 || S > 512) throw new ToyworldError(`model ${model.name} takes ${S}px images; toy-world scenes are 48..512 px`);
  return S;
}

/** n held-out scenes at the model's image size, a pure function of (n, seed, opts). */
export function sceneSet(model: ClipModel, n: number, seed: number, opts: Omit<SceneOptions, 'size'> = {}): SceneSet {
  if (!Number.isSafeInteger(n) || n < 2) throw new ToyworldError(`need at least 2 scenes, got ${n}`);
  const size = checkSize(model);
  const scenes = Array.from({ length: n }, (_, i) => generateScene(sceneSeed(seed, i), { ...opts, size }));
  return { scenes, pixels: scenePixels(model, scenes), labels: labelIndices(scenes) };
}

/**
 * A test set balanced over the (a, b) value pairs: exactly `perGroup` scenes in every cell, the
 * first ones of an independent seeded stream that fall in it.
 */
export function balancedSet(model: ClipModel, a: string, b: string, perGroup: number, seed: number): SceneSet {
  if (!ATTRIBUTES[a] || !ATTRIBUTES[b]) throw new ToyworldError(`unknown attribute family '${ATTRIBUTES[a] ? b : a}' (known: ${FAMILIES.join(', ')})`);
  if (!Number.isSafeInteger(perGroup) || perGroup < 1) throw new ToyworldError(`scenes per group must be a positive integer, got ${perGroup}`);
  const size = checkSize(model);
  const cells = ATTRIBUTES[a].length * ATTRIBUTES[b].length;
  const count = new Map<string, number>();
  const scenes: Scene[] = [];
  const seedB = mixSeed(seed, 0xba1);
  for (let i = 0; scenes.length < cells * perGroup; i++) {
    if (i > cells * perGroup * 200) throw new ToyworldError('could not fill the balanced groups');
    const s = generateScene(sceneSeed(seedB, i), { size });
    const key = `${s.labels[a]}|${s.labels[b]}`;
    const c = count.get(key) ?? 0;
    if (c >= perGroup) continue;
    count.set(key, c + 1);
    scenes.push(s);
  }
  return { scenes, pixels: scenePixels(model, scenes), labels: labelIndices(scenes) };
}

/** Rows `rows` of a scene set. */
export function subset(set: SceneSet, rows: number[]): SceneSet {
  const per = set.pixels.shape.slice(1).reduce((x, y) => x * y, 1);
  const px = new Float32Array(rows.length * per);
  rows.forEach((r, i) => px.set(set.pixels.data.subarray(r * per, (r + 1) * per), i * per));
  const labels: Record<string, Int32Array> = {};
  for (const [f, l] of Object.entries(set.labels)) labels[f] = Int32Array.from(rows, (r) => l[r]);
  return { scenes: rows.map((r) => set.scenes[r]), pixels: f32([rows.length, ...set.pixels.shape.slice(1)], px), labels };
}
