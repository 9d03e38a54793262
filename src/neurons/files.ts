// The neuron artifacts on disk, each stamped with the model (fingerprint) and MLP block that made
// it: PCA files (`pc` [M, d] and `norms` [M, k] as compute_pcas.py saves them, plus `mean` and
// `top_images`), text features (ours from `cliplens texts`, or the reference's ×100 array) and
// description JSON (the reference's format).

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { SafetensorsFile, writeSafetensors } from '../io/safetensors.ts';
import { f32, type F32, type Tensor } from '../tensor.ts';
import { descriptionsJson, parseDescriptions, textDictionary, type Description } from './describe.ts';
import type { NeuronPca } from './pca.ts';
import { provenanceMetadata, provenanceOf, type Provenance } from './store.ts';
import type { NeuronStats } from './ablation.ts';
import { UsageError } from '../errors.ts';

export interface PcaFile extends NeuronStats {
  topImages?: Tensor<Int32Array>;
  topK: number;
  images: number;
  provenance: Provenance;
}

export function writePcaFile(path: string, p: NeuronPca): void {
  writeSafetensors(path, { pc: p.pc, norms: p.norms, mean: p.mean, top_images: p.topImages, sign_decided: { dtype: 'U8', shape: [p.signDecided.length], data: p.signDecided } }, {
    metadata: { ...provenanceMetadata(p.provenance), top_k: String(p.topK), images: String(p.images) },
  });
}

function need(path: string, flag: string): SafetensorsFile {
  if (!existsSync(path)) throw new UsageError(`--${flag} ${path} does not exist`);
  return SafetensorsFile.open(path);
}

export function readPcaFile(path: string, flag = 'pcs'): PcaFile {
  const f = need(path, flag);
  try {
    if (!f.has('pc')) throw new UsageError(`--${flag} ${path} has no 'pc' tensor [neurons, d] (make it with cliplens neurons pca)`);
    const pc = f.readF32('pc');
    if (pc.shape.length !== 2) throw new UsageError(`--${flag} ${path}: 'pc' must be [neurons, d], got [${pc.shape}]`);
    const [M, d] = pc.shape;
    const norms = f.has('norms') ? f.readF32('norms') : f32([M, 0]);
    if (norms.shape.length !== 2 || norms.shape[0] !== M) throw new UsageError(`--${flag} ${path}: 'norms' must be [${M}, k], got [${norms.shape}]`);
    const mean = f.has('mean') ? f.readF32('mean') : f32([0, d]);
    return {
      pc,
      norms,
      mean,
      topImages: f.has('top_images') ? (f.read('top_images') as Tensor<Int32Array>) : undefined,
      topK: Number(f.metadata.top_k ?? norms.shape[1]),
      images: Number(f.metadata.images ?? norms.shape[1]),
      provenance: provenanceOf(f.metadata),
    };
  } finally {
    f.close();
  }
}

/** A PCA file with what the ablation and concept discovery need beyond pc (made by cliplens). */
export function requireStats(p: PcaFile, path: string): void {
  if (p.mean.shape[0] !== p.pc.shape[0] || p.norms.shape[1] === 0) throw new UsageError(`${path} has no 'mean' and 'norms' of the neurons; make it with cliplens neurons pca`);
}

export interface TextFeatures {
  features: F32;
  /** The texts, when the file or --lines names them. */
  texts?: string[];
  provenance: Provenance;
}

/**
 * Text features [T, d] from a safetensors file's `text_features` (cliplens texts: normalised, names
 * in the metadata; the reference's array: ×100, no names). `linesFile` names them as the reference
 * does: every line of the file (readlines) without its newline.
 */
export function readTextFeatures(path: string, linesFile?: string): TextFeatures {
  const f = need(path, 'texts');
  let features: F32;
  let meta: Record<string, string>;
  let provenance: Provenance;
  try {
    if (!f.has('text_features')) throw new UsageError(`--texts ${path} has no 'text_features' tensor [texts, d] (make it with cliplens texts --file …)`);
    features = f.readF32('text_features');
    if (features.shape.length !== 2) throw new UsageError(`--texts ${path}: 'text_features' must be [texts, d], got [${features.shape}]`);
    meta = f.metadata;
    provenance = provenanceOf(f.metadata);
  } finally {
    f.close();
  }
  const T = features.shape[0];
  let texts = textsOf(meta, T);
  if (linesFile) {
    if (!existsSync(linesFile)) throw new UsageError(`--lines ${linesFile} does not exist`);
    const raw = readFileSync(linesFile, 'utf8');
    const lines = raw.split('\n');
    if (raw.endsWith('\n')) lines.pop();
    if (lines.length !== T) throw new UsageError(`--lines ${linesFile} has ${lines.length} lines but --texts ${path} holds ${T} text features`);
    texts = lines;
  }
  return { features, texts, provenance };
}

/** The texts a text-feature file names in its metadata: `names` (cliplens texts), or `texts`/`lines`, as a JSON list or one per line. */
function textsOf(meta: Record<string, string>, T: number): string[] | undefined {
  for (const key of ['names', 'texts', 'lines']) {
    const v = meta[key];
    if (v === undefined) continue;
    let list: unknown;
    try {
      list = JSON.parse(v);
    } catch {
      list = v.replace(/\n$/, '').split('\n');
    }
    if (Array.isArray(list) && list.length === T && list.every((x) => typeof x === 'string')) return list as string[];
  }
  return undefined;
}

export function readDescriptionsFile(path: string): Map<number, Description> {
  if (!existsSync(path)) throw new UsageError(`--descriptions ${path} does not exist`);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UsageError(`--descriptions ${path} is not JSON (${(e as Error).message.split('\n')[0]})`);
  }
  return parseDescriptions(json, `--descriptions ${path}`);
}

export function writeDescriptionsFile(path: string, descriptions: Description[]): void {
  writeFileSync(path, descriptionsJson(descriptions));
}

/** The text reconstruction of each neuron (code · D, D the reference's dictionary) from descriptions and the text features [T, d] they index. */
export function reconstructionFromDescriptions(desc: Map<number, Description>, M: number, features: F32): Float64Array {
  const [T, d] = features.shape;
  const D = textDictionary(features.data, T, d);
  const out = new Float64Array(M * d);
  for (const [n, entries] of desc) {
    if (n >= M) throw new UsageError(`the descriptions name neuron ${n}, the PCs have ${M}`);
    for (const [t, c] of entries) {
      if (t >= T) throw new UsageError(`the descriptions use text ${t}, the text features have ${T}`);
      for (let e = 0; e < d; e++) out[n * d + e] += c * D[t * d + e];
    }
  }
  return out;
}
