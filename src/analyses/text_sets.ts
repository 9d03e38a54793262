// Text sets on disk: a pool of normalised text embeddings (TextSpan candidates) or a zero-shot
// classifier (class names × templates), as safetensors with the strings in its metadata.

import { existsSync } from 'node:fs';
import { assetPath } from '../assets.ts';
import { readLines } from '../io/files.ts';
import { fromMetadata, modelProvenance, provenanceMetadata, type ModelProvenance } from '../io/provenance.ts';
import { SafetensorsFile, writeSafetensors } from '../io/safetensors.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { f32, type F32 } from '../tensor.ts';
import { normalizeRows } from './linalg.ts';
import { buildClassifier } from './zeroshot.ts';
import { AnalysisError } from '../errors.ts';

export interface TextSet {
  kind: 'pool' | 'classifier';
  /** The texts (pool) or class names (classifier). */
  names: string[];
  /** [m, d] normalised rows */
  embeddings: F32;
  /** The model whose text encoder made it (absent in files that record none). */
  model?: ModelProvenance;
  /** The file it was read from. */
  path?: string;
}

export { readLines } from '../io/files.ts';

/** Lists that ship with cliplens (assets/, see assets/PROVENANCE.md), by the name a flag gives them. */
export const BUNDLED_LISTS = {
  classes: { imagenet: 'imagenet_classnames.txt' },
  templates: { openai: 'openai_imagenet_templates.txt' },
} as const;

/** The lines of `spec`: a file, or — when no such file exists — a bundled list's name ('imagenet', 'openai'). */
export function readListOrBundled(spec: string, kind: keyof typeof BUNDLED_LISTS): string[] {
  const bundled = (BUNDLED_LISTS[kind] as Record<string, string>)[spec];
  return readLines(bundled && !existsSync(spec) ? assetPath('assets', bundled) : spec);
}

/** Unit embeddings [T, d] of the texts, in batches: a TextSpan pool. */
export async function embedPool(model: ClipModel, texts: string[], onProgress?: (done: number) => void, batch = 256): Promise<TextSet> {
  const d = model.config.embedDim;
  const out = new Float32Array(texts.length * d);
  for (let i = 0; i < texts.length; i += batch) {
    const chunk = texts.slice(i, i + batch);
    const { features } = await model.encodeTexts(chunk);
    out.set(normalizeRows(features.data, chunk.length, d), i * d);
    onProgress?.(Math.min(i + batch, texts.length));
  }
  return { kind: 'pool', names: texts, embeddings: f32([texts.length, d], out), model: modelProvenance(model) };
}

/** Zero-shot classifier: average of the normalised template embeddings per class, renormalised. */
export async function embedClassifier(model: ClipModel, classes: string[], templates: string[], onProgress?: (done: number) => void): Promise<TextSet> {
  if (!templates.length) throw new AnalysisError('no prompt templates');
  for (const t of templates) if (!t.includes('{}')) throw new AnalysisError(`template '${t}' has no {} for the class name`);
  const prompts = classes.flatMap((c) => templates.map((t) => t.replaceAll('{}', c)));
  const pool = await embedPool(model, prompts, onProgress);
  const d = model.config.embedDim;
  const cls = buildClassifier(pool.embeddings, classes.length, templates.length);
  return { kind: 'classifier', names: classes, embeddings: f32([classes.length, d], cls), model: modelProvenance(model) };
}

export function writeTextSet(path: string, set: TextSet): void {
  writeSafetensors(path, { text_features: set.embeddings }, { metadata: { kind: set.kind, ...(set.model ? provenanceMetadata(set.model) : {}), names: JSON.stringify(set.names) } });
}

export function readTextSet(path: string): TextSet {
  const f = SafetensorsFile.open(path);
  try {
    if (!f.has('text_features')) throw new AnalysisError(`${path} has no text_features tensor; make it with 'cliplens texts'`);
    const names = JSON.parse(f.metadata.names ?? 'null');
    const emb = f.readF32('text_features');
    if (!Array.isArray(names) || names.length !== emb.shape[0]) throw new AnalysisError(`${path}: metadata 'names' missing or not matching ${emb.shape[0]} rows`);
    const kind = f.metadata.kind === 'classifier' ? 'classifier' : 'pool';
    const model = fromMetadata(f.metadata);
    return { kind, names, embeddings: emb, ...(model ? { model } : {}), path };
  } finally {
    f.close();
  }
}
