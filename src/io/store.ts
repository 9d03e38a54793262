// A decomposition store on disk: safetensors shards + manifest.json, readable from Python with
// `safetensors` and `json` alone. Every shard is written atomically and only then recorded in the
// manifest (also replaced atomically), so a run killed at any point resumes at the first batch
// the manifest does not list, and finished batches are never lost or recomputed.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { f32, numel, type F32, type Tensor } from '../tensor.ts';
import { SafetensorsFile, writeSafetensors } from './safetensors.ts';
import { StoreError } from '../errors.ts';

export const STORE_FORMAT = 'cliplens-store';
export const STORE_VERSION = 1;

export interface StoreItem {
  id: string;
  label?: string;
  group?: string;
}

export interface ShardEntry {
  batch: number;
  /** null when every image of the batch failed */
  file: string | null;
  /** Item indices stored in this shard, in order. */
  indices: number[];
}

export interface FailedEntry {
  index: number;
  id: string;
  error: string;
}

export interface StoreManifest {
  format: typeof STORE_FORMAT;
  version: number;
  model: { name: string; fingerprint: string };
  dims: { L: number; H: number; N: number; D: number; d: number };
  /** Attention layers whose per-head terms are kept (MLP terms are always all L+1). */
  layers: number[];
  dtype: 'F32' | 'F16';
  normalised: boolean;
  batchSize: number;
  dataset: { root: string; kind: string; labels: string[]; groups: string[] };
  items: StoreItem[];
  shards: ShardEntry[];
  failed: FailedEntry[];
  complete: boolean;
  tensors: Record<string, string>;
}

/** What a fingerprint reads of a model: its config and a few checkpoint tensors (a ClipModel is one). */
export interface FingerprintSource {
  config: unknown;
  weight(name: string): F32;
}

/** Identifies a model's weights and layout, so a store is never mixed across models. */
export function modelFingerprint(model: FingerprintSource): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(model.config));
  for (const name of ['visual.proj', 'visual.class_embedding', 'visual.ln_post.weight', 'visual.transformer.resblocks.0.attn.in_proj_bias']) {
    const t = model.weight(name);
    h.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return h.digest('hex').slice(0, 16);
}

function atomicWriteJson(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(value, null, 1));
  const fd = openSync(tmp, 'r');
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, path);
}

export function readManifest(dir: string): StoreManifest {
  const p = join(dir, 'manifest.json');
  if (!existsSync(p)) throw new StoreError(`${dir} is not a cliplens store (no manifest.json)`);
  let m: StoreManifest;
  try {
    m = JSON.parse(readFileSync(p, 'utf8'));
  } catch (e) {
    throw new StoreError(`${p}: unreadable manifest (${(e as Error).message})`);
  }
  if (m.format !== STORE_FORMAT) throw new StoreError(`${p}: not a cliplens store manifest`);
  if (m.version !== STORE_VERSION) throw new StoreError(`${p}: store version ${m.version}, this cliplens reads version ${STORE_VERSION}`);
  return m;
}

export interface StoreWriterInit {
  dir: string;
  model: { name: string; fingerprint: string };
  dims: StoreManifest['dims'];
  layers: number[];
  dtype: 'F32' | 'F16';
  normalised: boolean;
  batchSize: number;
  dataset: StoreManifest['dataset'];
  items: StoreItem[];
}

/** Opens a new store or resumes an existing one made with the same model, options and inputs. */
export class StoreWriter {
  readonly manifest: StoreManifest;
  private done: Set<number>;

  constructor(readonly dir: string, manifest: StoreManifest) {
    this.manifest = manifest;
    this.done = new Set(manifest.shards.map((s) => s.batch));
  }

  static open(init: StoreWriterInit): StoreWriter {
    mkdirSync(init.dir, { recursive: true });
    if (existsSync(join(init.dir, 'manifest.json'))) {
      const m = readManifest(init.dir);
      const clash = (what: string, a: unknown, b: unknown) => {
        if (JSON.stringify(a) !== JSON.stringify(b)) {
          throw new StoreError(`store ${init.dir} was made with a different ${what} (${JSON.stringify(a)} there, ${JSON.stringify(b)} now); use a new --store directory`);
        }
      };
      if (m.model.fingerprint !== init.model.fingerprint) {
        throw new StoreError(`store ${init.dir} was made by model '${m.model.name}' (fingerprint ${m.model.fingerprint}), not '${init.model.name}' (${init.model.fingerprint}); use a new --store directory`);
      }
      clash('layer selection', m.layers, init.layers);
      clash('dtype', m.dtype, init.dtype);
      clash('normalisation', m.normalised, init.normalised);
      clash('batch size', m.batchSize, init.batchSize);
      if (m.items.length !== init.items.length || m.items.some((it, i) => it.id !== init.items[i].id)) {
        throw new StoreError(`store ${init.dir} holds a different list of ${m.items.length} inputs (now ${init.items.length}); use a new --store directory`);
      }
      // A shard listed but missing on disk is recomputed rather than trusted.
      m.shards = m.shards.filter((s) => s.file === null || existsSync(join(init.dir, s.file)));
      return new StoreWriter(init.dir, m);
    }
    const manifest: StoreManifest = {
      format: STORE_FORMAT,
      version: STORE_VERSION,
      model: init.model,
      dims: init.dims,
      layers: init.layers,
      dtype: init.dtype,
      normalised: init.normalised,
      batchSize: init.batchSize,
      dataset: init.dataset,
      items: init.items,
      shards: [],
      failed: [],
      complete: false,
      tensors: {
        attn: '[b, layers.length, H, d] per-head direct contributions of the kept layers (PRS, see normalised)',
        mlp: '[b, L+1, d] index 0 = ln_pre term (the CLS embedding after ln_pre), l+1 = MLP of layer l',
        image_features: '[b, d] the image embedding z (unnormalised)',
        norm: '[b] ||z||',
        index: '[b] int32 index into items',
      },
    };
    const w = new StoreWriter(init.dir, manifest);
    w.flush();
    return w;
  }

  get batches(): number {
    return Math.ceil(this.manifest.items.length / this.manifest.batchSize);
  }

  isDone(batch: number): boolean {
    return this.done.has(batch);
  }

  pendingBatches(): number[] {
    return Array.from({ length: this.batches }, (_, k) => k).filter((k) => !this.done.has(k));
  }

  /** Write one batch's tensors (rows in `indices` order) and record it. */
  writeBatch(batch: number, indices: number[], tensors: Record<string, Tensor>, failed: FailedEntry[]): void {
    let file: string | null = null;
    if (indices.length > 0) {
      file = `shard-${String(batch).padStart(6, '0')}.safetensors`;
      const all = { ...tensors, index: { dtype: 'I32' as const, shape: [indices.length], data: Int32Array.from(indices) } };
      writeSafetensors(join(this.dir, file), all, { half: this.manifest.dtype === 'F16', metadata: { batch: String(batch) } });
    }
    this.manifest.shards.push({ batch, file, indices });
    this.manifest.shards.sort((a, b) => a.batch - b.batch);
    this.manifest.failed.push(...failed);
    this.manifest.failed.sort((a, b) => a.index - b.index);
    this.done.add(batch);
    this.manifest.complete = this.done.size === this.batches;
    this.flush();
  }

  private flush(): void {
    atomicWriteJson(join(this.dir, 'manifest.json'), this.manifest);
  }
}

export interface StoreData {
  manifest: StoreManifest;
  /** [n, layers.length, H, d] */
  attn: F32;
  /** [n, L+1, d] */
  mlp: F32;
  /** [n, d] */
  imageFeatures: F32;
  /** [n] */
  norm: F32;
  /** [n] item index of each row */
  index: Int32Array;
  /** [n] label index into manifest.dataset.labels, −1 if none */
  labels: Int32Array;
  /** [n] group index into manifest.dataset.groups, −1 if none */
  groups: Int32Array;
}

/** Load every stored row (in item order) as float32. */
export function loadStore(dir: string, opts: { requireComplete?: boolean } = {}): StoreData {
  const m = readManifest(dir);
  if (opts.requireComplete && !m.complete) throw new StoreError(`store ${dir} is incomplete (${m.shards.length} of ${Math.ceil(m.items.length / m.batchSize)} batches); run cliplens decompose again to finish it`);
  const files = m.shards.filter((s) => s.file !== null);
  const n = files.reduce((a, s) => a + s.indices.length, 0);
  const { H, d, L } = m.dims;
  const Lk = m.layers.length;
  const attn = f32([n, Lk, H, d]);
  const mlp = f32([n, L + 1, d]);
  const imageFeatures = f32([n, d]);
  const norm = f32([n]);
  const index = new Int32Array(n);
  let row = 0;
  for (const s of files) {
    const f = SafetensorsFile.open(join(dir, s.file!));
    try {
      const b = s.indices.length;
      const put = (dst: F32, name: string) => {
        const t = f.readF32(name);
        if (numel(t.shape) !== b * numel(dst.shape.slice(1))) throw new StoreError(`${s.file}: tensor ${name} has shape [${t.shape}], expected ${b} rows of [${dst.shape.slice(1)}]`);
        dst.data.set(t.data, row * numel(dst.shape.slice(1)));
      };
      put(attn, 'attn');
      put(mlp, 'mlp');
      put(imageFeatures, 'image_features');
      put(norm, 'norm');
      index.set(s.indices, row);
      row += b;
    } finally {
      f.close();
    }
  }
  const labelIdx = new Map(m.dataset.labels.map((l, i) => [l, i]));
  const groupIdx = new Map(m.dataset.groups.map((g, i) => [g, i]));
  const labels = Int32Array.from(index, (i) => (m.items[i].label !== undefined ? labelIdx.get(m.items[i].label!) ?? -1 : -1));
  const groups = Int32Array.from(index, (i) => (m.items[i].group !== undefined ? groupIdx.get(m.items[i].group!) ?? -1 : -1));
  return { manifest: m, attn, mlp, imageFeatures, norm, index, labels, groups };
}
