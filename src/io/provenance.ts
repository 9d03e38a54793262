// Provenance: every artifact cliplens writes (stores, text pools, classifiers, heads.json,
// segmentation resume files, reports, exported tensors) names the model that made it, by display
// name and weights fingerprint. Everything that combines artifacts checks them here, so a
// classifier of one model is never applied to the terms of another.
//
// Where it is written:
//   safetensors metadata   model, model_fingerprint          (provenanceMetadata / fromMetadata)
//   JSON files             "model": name, "modelFingerprint"  (provenanceFields / fromJson)
//   store manifest.json    "model": {name, fingerprint}       (src/io/store.ts)

import { createHash } from 'node:crypto';
import { ProvenanceError } from '../errors.ts';
import type { F32 } from '../tensor.ts';

/** The model that made an artifact. `fingerprint` is absent in files made before cliplens recorded it. */
export interface ModelProvenance {
  name: string;
  fingerprint?: string;
}

/** What a fingerprint reads of a model: its name, config and a few checkpoint tensors (a ClipModel is one). */
export interface FingerprintSource {
  name: string;
  config: unknown;
  weight(name: string): F32;
  /** The tensors to hash (the model family's choice; default: CLIP's). */
  fingerprintTensors?(): string[];
}

const CLIP_FINGERPRINT = ['visual.proj', 'visual.class_embedding', 'visual.ln_post.weight', 'visual.transformer.resblocks.0.attn.in_proj_bias'];

const fingerprints = new WeakMap<FingerprintSource, string>();

/** 16 hex digits identifying a model's weights and layout: its config and tensors every CLIP has. */
export function modelFingerprint(model: FingerprintSource): string {
  let fp = fingerprints.get(model);
  if (!fp) {
    const h = createHash('sha256');
    h.update(JSON.stringify(model.config));
    for (const name of model.fingerprintTensors?.() ?? CLIP_FINGERPRINT) {
      const t = model.weight(name);
      h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    }
    fp = h.digest('hex').slice(0, 16);
    fingerprints.set(model, fp);
  }
  return fp;
}

/** What an artifact made by this model records about it. */
export function modelProvenance(model: FingerprintSource): Required<ModelProvenance> {
  return { name: model.name, fingerprint: modelFingerprint(model) };
}

/**
 * An artifact (or the loaded model) in a combination: what to call it ("classifier c.safetensors",
 * "--model") and its model; `model` is absent for files that record none (nothing to check).
 */
export interface Provenanced {
  what: string;
  model?: ModelProvenance;
}

export function describeModel(p: ModelProvenance): string {
  return `'${p.name}' (${p.fingerprint ? `fingerprint ${p.fingerprint}` : 'no fingerprint recorded'})`;
}

/**
 * Same model: equal fingerprints; where one side has none (an older file), equal names, since
 * nothing better is known.
 */
export function sameModel(a: ModelProvenance, b: ModelProvenance): boolean {
  if (a.fingerprint && b.fingerprint) return a.fingerprint === b.fingerprint;
  return a.name === b.name;
}

/** Refuse, with one line naming both models, artifacts that were not made by one model. */
export function requireSameModel(first: Provenanced, ...others: Provenanced[]): void {
  for (const o of others) {
    if (first.model && o.model && !sameModel(first.model, o.model))
      throw new ProvenanceError(`different models: ${first.what} is ${describeModel(first.model)}, ${o.what} is ${describeModel(o.model)}; use files made by one model`);
  }
}

/** safetensors metadata entries that record the model. */
export function provenanceMetadata(p: ModelProvenance): Record<string, string> {
  return { model: p.name, ...(p.fingerprint ? { model_fingerprint: p.fingerprint } : {}) };
}

/** The model recorded in safetensors metadata, if any. */
export function fromMetadata(md: Record<string, string>): ModelProvenance | undefined {
  if (md.model === undefined) return undefined;
  return { name: md.model, ...(md.model_fingerprint ? { fingerprint: md.model_fingerprint } : {}) };
}

/** Fields a JSON artifact carries: "model" (the name, as always) and "modelFingerprint". */
export function provenanceFields(p: ModelProvenance): { model: string; modelFingerprint?: string } {
  return { model: p.name, ...(p.fingerprint ? { modelFingerprint: p.fingerprint } : {}) };
}

/** The model recorded in a JSON artifact written with provenanceFields, if any. */
export function fromJson(j: { model?: unknown; modelFingerprint?: unknown }): ModelProvenance | undefined {
  if (typeof j.model !== 'string') return undefined;
  return { name: j.model, ...(typeof j.modelFingerprint === 'string' ? { fingerprint: j.modelFingerprint } : {}) };
}
