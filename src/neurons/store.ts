// Where second-order effects live between commands, and one way to read them all.
//
// A neuron store is a cliplens store (src/io/store.ts: safetensors shards + manifest, resumable)
// of kind 'neurons' holding the factored effects of one MLP block: per shard `coef` [b, J·H, M],
// `offset` [b, J·H, d], `image_features` [b, d], `norm` [b]; once per store `readout.safetensors`
// with `g` [M, J·H, d]. From Python: E[b] = einsum('km,mkd->md', coef[b], g) + offset[b].sum(0)
// is exactly the reference's `…_merged.npy` row (up to float32 rounding of the sum).
//
// Whatever holds the effects (a store, an exported or reference [B, M, d] file, an array) is read
// through an EffectsSource, by blocks of images and of neurons, so nothing downstream holds the
// [B, M, d] tensor.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SafetensorsFile, SafetensorsWriter, writeSafetensors } from '../io/safetensors.ts';
import { fromMetadata, modelProvenance, provenanceMetadata as modelMetadata, requireSameModel, type ModelProvenance } from '../io/provenance.ts';
import { readManifest, verifyStore, type StoreManifest } from '../io/store.ts';
import { f32, i32, type F32 } from '../tensor.ts';
import { rebuildEffects, rebuildImage, type NeuronEffects, type Rebuilder } from './effects.ts';
import type { NeuronReadout } from './readout.ts';
import { ProvenanceError, StoreError, UsageError } from '../errors.ts';

export const NEURON_STORE_KIND = 'neurons';
export const READOUT_FILE = 'readout.safetensors';
/** The tensor name of the full effects, as the reference's `…_merged.npy` holds them. */
export const EFFECTS_TENSOR = 'second_order';

/** Which model (src/io/provenance.ts) and MLP block made an artifact, as every neuron file records it. */
export interface Provenance {
  model?: ModelProvenance;
  layer?: number;
}

/** safetensors metadata: the model (`model`, `model_fingerprint`) and the block (`layer`). */
export function provenanceMetadata(p: Provenance): Record<string, string> {
  return { ...(p.model ? modelMetadata(p.model) : {}), ...(p.layer !== undefined ? { layer: String(p.layer) } : {}) };
}

export function provenanceOf(meta: Record<string, string>): Provenance {
  const layer = meta.layer !== undefined && /^\d+$/.test(meta.layer) ? Number(meta.layer) : undefined;
  return { model: fromMetadata(meta), layer };
}

/** Refuse to combine artifacts of different models (or MLP blocks): one line naming both. */
export function checkSameModel(a: Provenance & { what: string }, b: Provenance & { what: string }, opts: { layer?: boolean } = {}): void {
  requireSameModel({ what: a.what, model: a.model }, { what: b.what, model: b.model });
  if (opts.layer !== false && a.layer !== undefined && b.layer !== undefined && a.layer !== b.layer) {
    throw new ProvenanceError(`${a.what} holds MLP block ${a.layer} but ${b.what} block ${b.layer}`);
  }
}

/** Effects E [B, M, d] read by blocks. */
export interface EffectsSource {
  readonly B: number;
  readonly M: number;
  readonly d: number;
  /** Images per read that keep memory modest. */
  readonly chunk: number;
  readonly provenance: Provenance;
  /** E for images [start, start+count) and neurons [n0, n1): [count, n1−n0, d]. */
  read(start: number, count: number, n0?: number, n1?: number): Promise<Float32Array>;
  /** z [B, d] when the source has it (ablation needs it). */
  imageFeatures?(): F32;
  close?(): void;
}

/** The effects of pixel_values [B, 3, S, S], held in memory, with z and the model's stamp. */
export async function effectsOfPixels(ne: NeuronEffects, pixels: F32, batchSize = 8): Promise<EffectsSource> {
  const f = await ne.factors(pixels, batchSize);
  const E = await rebuildEffects(await ne.getReadout(), f);
  return memoryEffects(E, { model: modelProvenance(ne.model), layer: ne.layer }, f.imageFeatures);
}

/** Effects held in memory (tests, one batch). */
export function memoryEffects(E: F32, provenance: Provenance = {}, imageFeatures?: F32): EffectsSource {
  const [B, M, d] = E.shape;
  return {
    B, M, d, chunk: B, provenance,
    async read(start, count, n0 = 0, n1 = M) {
      const out = new Float32Array(count * (n1 - n0) * d);
      for (let b = 0; b < count; b++) out.set(E.data.subarray(((start + b) * M + n0) * d, ((start + b) * M + n1) * d), b * (n1 - n0) * d);
      return out;
    },
    ...(imageFeatures ? { imageFeatures: () => imageFeatures } : {}),
  };
}

/** A [B, M, d] `second_order` tensor in a safetensors file (ours, or the reference's .npy converted). */
export function openEffectsFile(path: string): EffectsSource {
  if (!existsSync(path)) throw new UsageError(`effects file ${path} does not exist`);
  const f = SafetensorsFile.open(path);
  try {
    const info = f.tensors.get(EFFECTS_TENSOR);
    if (!info) throw new UsageError(`${path} has no '${EFFECTS_TENSOR}' tensor [images, neurons, d] (it has: ${f.names().join(', ') || 'nothing'})`);
    if (info.shape.length !== 3 || info.shape.some((s) => s === 0)) throw new UsageError(`${path}: '${EFFECTS_TENSOR}' must be [images, neurons, d], got [${info.shape}]`);
    const [B, M, d] = info.shape;
    const chunk = Math.max(1, Math.min(B, Math.floor((64 << 20) / (M * d * 4))));
    return {
      B, M, d, chunk, provenance: provenanceOf(f.metadata),
      async read(start, count, n0 = 0, n1 = M) {
        const rows = f.readRowsF32(EFFECTS_TENSOR, start, count).data;
        if (n0 === 0 && n1 === M) return rows;
        const out = new Float32Array(count * (n1 - n0) * d);
        for (let b = 0; b < count; b++) out.set(rows.subarray((b * M + n0) * d, (b * M + n1) * d), b * (n1 - n0) * d);
        return out;
      },
      ...(f.has('image_features') ? { imageFeatures: () => f.readF32('image_features') } : {}),
      close: () => f.close(),
    };
  } catch (e) {
    f.close();
    throw e;
  }
}

export function writeReadoutFile(dir: string, r: NeuronReadout, prov: Provenance): void {
  const heads = i32([r.heads.length, 2], Int32Array.from(r.heads.flat()));
  writeSafetensors(join(dir, READOUT_FILE), { g: f32([r.M, r.heads.length, r.d], r.g), heads }, { metadata: provenanceMetadata(prov) });
}

export interface NeuronStoreParams {
  layer: number;
  M: number;
  heads: [number, number][];
  coefficient: number;
  /** How the store's readout file rebuilds the effects (for people reading the manifest). */
  readout: string;
}

/** A neuron store opened for reading: rows in item order, rebuilt on demand. */
export class NeuronStore implements EffectsSource {
  readonly manifest: StoreManifest;
  readonly params: NeuronStoreParams;
  readonly provenance: Provenance;
  readonly rebuilder: Rebuilder;
  readonly B: number;
  readonly M: number;
  readonly d: number;
  readonly chunk: number;
  /** [B] item index of each row. */
  readonly index: Int32Array;
  private shards: { file: string; start: number; count: number }[] = [];
  private cache?: { file: string; coef: Float32Array; offset: Float32Array };

  private constructor(readonly dir: string, manifest: StoreManifest) {
    this.manifest = manifest;
    this.params = manifest.params as unknown as NeuronStoreParams;
    this.provenance = { model: manifest.model, layer: this.params.layer };
    const rf = join(dir, READOUT_FILE);
    if (!existsSync(rf)) throw new StoreError(`neuron store ${dir} has no ${READOUT_FILE}; it is damaged, make it again`);
    const f = SafetensorsFile.open(rf);
    try {
      const g = f.readF32('g');
      this.rebuilder = { g: g.data, heads: this.params.heads, M: g.shape[0], d: g.shape[2] };
      if (g.shape[0] !== this.params.M || g.shape[1] !== this.params.heads.length) throw new StoreError(`${rf}: g has shape [${g.shape}], the manifest says ${this.params.M} neurons × ${this.params.heads.length} heads`);
    } finally {
      f.close();
    }
    this.M = this.rebuilder.M;
    this.d = this.rebuilder.d;
    let start = 0;
    const idx: number[] = [];
    for (const s of manifest.shards) {
      if (s.file === null) continue;
      this.shards.push({ file: s.file, start, count: s.indices.length });
      idx.push(...s.indices);
      start += s.indices.length;
    }
    this.B = start;
    this.index = Int32Array.from(idx);
    this.chunk = Math.max(1, manifest.batchSize);
  }

  static open(dir: string, opts: { requireComplete?: boolean; verify?: boolean } = {}): NeuronStore {
    if (!existsSync(dir)) throw new UsageError(`neuron store ${dir} does not exist (make one with 'cliplens neurons effects --dataset … --store ${dir}')`);
    const m = readManifest(dir);
    if (m.kind !== NEURON_STORE_KIND) throw new StoreError(`${dir} is a ${m.kind ?? 'decomposition'} store, not a neuron store (cliplens neurons effects --dataset … --store makes those)`);
    if (opts.requireComplete && !m.complete) throw new StoreError(`neuron store ${dir} is incomplete (${m.shards.length} of ${Math.ceil(m.items.length / m.batchSize)} batches); run the same command again to finish it`);
    // Every shard checked against the manifest (present, size, header, tensors, rows); sha256 with verify.
    verifyStore(dir, m, opts.verify ?? false);
    return new NeuronStore(dir, m);
  }

  get layer(): number {
    return this.params.layer;
  }

  private shard(file: string): { coef: Float32Array; offset: Float32Array } {
    if (this.cache?.file !== file) {
      const f = SafetensorsFile.open(join(this.dir, file));
      try {
        this.cache = { file, coef: f.readF32('coef').data, offset: f.readF32('offset').data };
      } finally {
        f.close();
      }
    }
    return this.cache;
  }

  /** The factors of row b: coef [J·H, M] and offset [J·H, d]. */
  factorsOf(b: number): { coef: Float32Array; offset: Float32Array } {
    const s = this.shards.find((x) => b >= x.start && b < x.start + x.count);
    if (!s) throw new RangeError(`row ${b} is outside the store's ${this.B} rows`);
    const { coef, offset } = this.shard(s.file);
    const JH = this.params.heads.length;
    const i = b - s.start;
    return { coef: coef.subarray(i * JH * this.M, (i + 1) * JH * this.M), offset: offset.subarray(i * JH * this.d, (i + 1) * JH * this.d) };
  }

  async read(start: number, count: number, n0 = 0, n1 = this.M): Promise<Float32Array> {
    const per = (n1 - n0) * this.d;
    const out = new Float32Array(count * per);
    for (let b = 0; b < count; b++) {
      const f = this.factorsOf(start + b);
      out.set(await rebuildImage(this.rebuilder, f.coef, f.offset, n0, n1), b * per);
    }
    return out;
  }

  /** A tensor of every stored row, concatenated (small per-image tensors: image_features, norm). */
  private gather(name: string): F32 {
    const parts: F32[] = [];
    for (const s of this.shards) {
      const f = SafetensorsFile.open(join(this.dir, s.file));
      try {
        parts.push(f.readF32(name));
      } finally {
        f.close();
      }
    }
    const rest = parts[0]?.shape.slice(1) ?? [];
    const out = f32([this.B, ...rest]);
    let o = 0;
    for (const p of parts) {
      out.data.set(p.data, o);
      o += p.data.length;
    }
    return out;
  }

  imageFeatures(): F32 {
    return this.gather('image_features');
  }

  /** [B] label index into manifest.dataset.labels (−1 without one). */
  labels(): Int32Array {
    const m = this.manifest;
    const at = new Map(m.dataset.labels.map((l, i) => [l, i]));
    return Int32Array.from(this.index, (i) => (m.items[i].label !== undefined ? at.get(m.items[i].label!) ?? -1 : -1));
  }

  itemId(b: number): string {
    return this.manifest.items[this.index[b]].id;
  }
}

/** Write the full effects [B, M, d] of a source to one safetensors file, image by image (Python: safetensors.numpy.load_file). */
export async function exportEffects(src: EffectsSource, path: string, extra: { imageFeatures?: F32; metadata?: Record<string, string> } = {}): Promise<void> {
  const specs: Record<string, { dtype: 'F32'; shape: number[] }> = { [EFFECTS_TENSOR]: { dtype: 'F32', shape: [src.B, src.M, src.d] } };
  if (extra.imageFeatures) specs.image_features = { dtype: 'F32', shape: extra.imageFeatures.shape };
  const w = new SafetensorsWriter(path, specs, { ...provenanceMetadata(src.provenance), ...extra.metadata });
  try {
    for (let b0 = 0; b0 < src.B; b0 += src.chunk) w.write(EFFECTS_TENSOR, b0, await src.read(b0, Math.min(src.chunk, src.B - b0)));
    if (extra.imageFeatures) w.write('image_features', 0, extra.imageFeatures.data);
    w.finish();
  } catch (e) {
    w.abort();
    throw e;
  }
}
