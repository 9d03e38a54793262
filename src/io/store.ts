// A decomposition store on disk: safetensors shards + manifest.json, readable from Python with
// `safetensors` and `json` alone. Every shard is written atomically and only then recorded in the
// manifest (also replaced atomically), so a run killed at any point resumes at the first batch
// the manifest does not list, and finished batches are never lost or recomputed.

import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { f32, shapeEq, type F32, type Tensor } from '../tensor.ts';
import { atomicWrite, pathProblem, removeStaleTemps } from './files.ts';
import { encodeSafetensors, SafetensorsFile } from './safetensors.ts';
import { StoreError } from '../errors.ts';
import { requireSameModel, type ModelProvenance } from './provenance.ts';

export const STORE_FORMAT = 'cliplens-store';
/** 2: each shard's size and sha256 in the manifest. Version 1 stores are read (cheap checks only) and upgraded on resume. */
export const STORE_VERSION = 2;
const READABLE_VERSIONS = [1, 2];
const SHARD_NAME = /^shard-\d+\.safetensors$/;

export interface StoreItem {
  id: string;
  label?: string;
  group?: string;
}

export interface ShardEntry {
  batch: number;
  /** null when every image of the batch failed */
  file: string | null;
  /** Item indices stored in this shard, in order (the shard's own `index` tensor holds the same). */
  indices: number[];
  /** The shard file's size in bytes and sha256 (version 2; absent when file is null). */
  bytes?: number;
  sha256?: string;
}

export interface FailedEntry {
  index: number;
  id: string;
  error: string;
}

/** Shard K of N (K counted from 0) of a dataset decomposed on several machines. */
export interface ShardSpec {
  index: number;
  count: number;
}

export interface StoreManifest {
  format: typeof STORE_FORMAT;
  version: number;
  /** The model that made it (src/io/provenance.ts). */
  model: Required<ModelProvenance>;
  dims: { L: number; H: number; N: number; D: number; d: number };
  /** The model family that made the store (absent in stores written before SigLIP support: CLIP). */
  family?: StoreFamily;
  /** For people: names of the L attention blocks and of the L+1 `mlp` slots (SigLIP: the pooling head; out_proj bias, pooling MLP). */
  names?: { blocks: string[]; terms: string[] };
  /** Attention layers whose per-head terms are kept (MLP terms are always all L+1). */
  layers: number[];
  dtype: 'F32' | 'F16';
  normalised: boolean;
  batchSize: number;
  dataset: { root: string; kind: string; labels: string[]; groups: string[] };
  items: StoreItem[];
  /** Present when this store holds one slice of the items' batches: [start, end) of them (cliplens store merge joins the slices). */
  shard?: ShardSpec & { batches: [number, number] };
  shards: ShardEntry[];
  failed: FailedEntry[];
  /** Every batch of the store's range (its slice, or all) is recorded. */
  complete: boolean;
  tensors: Record<string, string>;
  /** What the shards hold when not a decomposition (e.g. 'neurons'), with the parameters that made them. */
  kind?: string;
  params?: Record<string, unknown>;
  /** Shape of one row of each shard tensor, for stores of another kind (a decomposition's are implied by dims and layers). */
  rowShapes?: Record<string, number[]>;
}

/** Batches [start, end) of `batches` that shard K of N decomposes: contiguous, disjoint, covering all. */
export function shardBatches(batches: number, s: ShardSpec): [number, number] {
  return [Math.floor((s.index * batches) / s.count), Math.floor(((s.index + 1) * batches) / s.count)];
}

/** The batches a store is responsible for: its slice, or every batch. */
export function batchRange(m: Pick<StoreManifest, 'shard' | 'items' | 'batchSize'>): [number, number] {
  return m.shard?.batches ?? [0, Math.ceil(m.items.length / m.batchSize)];
}

/** Model families a store may come from (see src/model/family_info.ts). */
export type StoreFamily = 'clip' | 'siglip';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function sha256File(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 22);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

const describe = (v: unknown) => {
  const j = v === undefined ? 'nothing' : JSON.stringify(v);
  return j.length > 40 ? `${j.slice(0, 37)}...` : j;
};

/**
 * A manifest parsed from JSON, every field checked, so a hand-edited or damaged one fails here
 * with one line naming the field (never deep inside a reader). `complete` is recomputed from the
 * recorded batches; duplicated `failed` entries (left by versions before 2) are merged.
 */
export function validateManifest(raw: unknown, p: string): StoreManifest {
  const bad = (what: string) => new StoreError(`${p}: ${what}`);
  const obj = (v: unknown, at: string) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${at} must be an object, got ${describe(v)}`);
    return v as Record<string, unknown>;
  };
  const arr = (v: unknown, at: string) => {
    if (!Array.isArray(v)) throw bad(`${at} must be a list, got ${describe(v)}`);
    return v as unknown[];
  };
  const str = (v: unknown, at: string) => {
    if (typeof v !== 'string') throw bad(`${at} must be a string, got ${describe(v)}`);
    return v;
  };
  const int = (v: unknown, at: string, lo: number, hi: number) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < lo || v > hi) {
      throw bad(`${at} must be an integer in ${lo}..${hi}, got ${describe(v)}${typeof v === 'number' && Number.isInteger(v) ? ' (out of range)' : ''}`);
    }
    return v;
  };
  const bool = (v: unknown, at: string) => {
    if (typeof v !== 'boolean') throw bad(`${at} must be true or false, got ${describe(v)}`);
    return v;
  };
  const m = obj(raw, 'the manifest');
  if (m.format !== STORE_FORMAT) throw bad(`not a cliplens store manifest (format ${describe(m.format)})`);
  const version = int(m.version, 'version', 0, Number.MAX_SAFE_INTEGER);
  if (!READABLE_VERSIONS.includes(version)) {
    throw bad(`store version ${version}; this cliplens reads versions ${READABLE_VERSIONS.join(' and ')}${version > STORE_VERSION ? ' (the store was made by a newer cliplens: upgrade)' : ''}`);
  }
  const model = obj(m.model, 'model');
  const md = obj(m.dims, 'dims');
  const BIG = 1 << 24;
  const dims = { L: int(md.L, 'dims.L', 1, BIG), H: int(md.H, 'dims.H', 1, BIG), N: int(md.N, 'dims.N', 1, BIG), D: int(md.D, 'dims.D', 1, BIG), d: int(md.d, 'dims.d', 1, BIG) };
  const layers = arr(m.layers, 'layers').map((l, i) => int(l, `layers[${i}]`, 0, dims.L - 1));
  layers.forEach((l, i) => {
    if (i > 0 && l <= layers[i - 1]) throw bad(`layers must be increasing without repeats, got ${describe(layers)}`);
  });
  if (m.dtype !== 'F32' && m.dtype !== 'F16') throw bad(`dtype must be "F32" or "F16", got ${describe(m.dtype)}`);
  const batchSize = int(m.batchSize, 'batchSize', 1, Number.MAX_SAFE_INTEGER);
  const ds = obj(m.dataset, 'dataset');
  const labels = arr(ds.labels, 'dataset.labels').map((x, i) => str(x, `dataset.labels[${i}]`));
  const groups = arr(ds.groups, 'dataset.groups').map((x, i) => str(x, `dataset.groups[${i}]`));
  const items = arr(m.items, 'items').map((x, i) => {
    const it = obj(x, `items[${i}]`);
    const item: StoreItem = { id: str(it.id, `items[${i}].id`) };
    if (it.label !== undefined) item.label = str(it.label, `items[${i}].label`);
    if (it.group !== undefined) item.group = str(it.group, `items[${i}].group`);
    return item;
  });
  const n = items.length;
  const batches = Math.ceil(n / batchSize);
  const owner = new Map<number, string>();
  const claim = (index: number, by: string) => {
    const prev = owner.get(index);
    if (prev !== undefined) throw bad(`${by} lists item ${index}, which ${prev} already lists`);
    owner.set(index, by);
  };
  const shard = m.shard === undefined ? undefined : storeShard(obj(m.shard, 'shard'), batches, bad);
  const [first, end] = shard?.batches ?? [0, batches];
  const byBatch = new Map<number, number>();
  const files = new Map<string, number>();
  const shards = arr(m.shards, 'shards').map((x, k) => {
    const at = `shards[${k}]`;
    const e = obj(x, at);
    const batch = int(e.batch, `${at}.batch`, first, Math.max(first, end - 1));
    if (byBatch.has(batch)) throw bad(`${at} repeats batch ${batch} (already shards[${byBatch.get(batch)}])`);
    byBatch.set(batch, k);
    const file = e.file === null ? null : str(e.file, `${at}.file`);
    if (file !== null) {
      if (!SHARD_NAME.test(file)) throw bad(`${at}.file ${describe(file)} is not a shard file name (shard-NNNNNN.safetensors, inside the store)`);
      if (files.has(file)) throw bad(`${at}.file ${file} is also shards[${files.get(file)}].file`);
      files.set(file, k);
    }
    const lo = batch * batchSize;
    const hi = Math.min(n, lo + batchSize) - 1;
    const indices = arr(e.indices, `${at}.indices`).map((v, j) => int(v, `${at}.indices[${j}]`, lo, hi));
    indices.forEach((v, j) => {
      if (j > 0 && v <= indices[j - 1]) throw bad(`${at}.indices must be increasing without repeats, got ${describe(indices)}`);
      claim(v, at);
    });
    if ((file === null) !== (indices.length === 0)) throw bad(`${at} ${file === null ? 'has no file but lists rows' : 'has a file but lists no rows'}`);
    const entry: ShardEntry = { batch, file, indices };
    if (file !== null && (version >= 2 || e.sha256 !== undefined || e.bytes !== undefined)) {
      entry.bytes = int(e.bytes, `${at}.bytes`, 8, Number.MAX_SAFE_INTEGER);
      if (typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256)) throw bad(`${at}.sha256 must be 64 hex digits, got ${describe(e.sha256)}`);
      entry.sha256 = e.sha256;
    }
    return entry;
  });
  const seenFailed = new Set<number>();
  const failed: FailedEntry[] = [];
  arr(m.failed, 'failed').forEach((x, k) => {
    const at = `failed[${k}]`;
    const f = obj(x, at);
    const index = int(f.index, `${at}.index`, 0, n - 1);
    const entry = { index, id: str(f.id, `${at}.id`), error: str(f.error, `${at}.error`) };
    if (seenFailed.has(index)) return;
    seenFailed.add(index);
    if (owner.has(index)) throw bad(`${at} lists item ${index} as unreadable, but ${owner.get(index)} holds it`);
    failed.push(entry);
  });
  bool(m.complete, 'complete');
  shards.sort((a, b) => a.batch - b.batch);
  failed.sort((a, b) => a.index - b.index);
  return {
    format: STORE_FORMAT,
    version,
    model: { name: str(model.name, 'model.name'), fingerprint: str(model.fingerprint, 'model.fingerprint') },
    dims,
    layers,
    dtype: m.dtype,
    normalised: bool(m.normalised, 'normalised'),
    batchSize,
    dataset: { root: str(ds.root, 'dataset.root'), kind: str(ds.kind, 'dataset.kind'), labels, groups },
    items,
    ...(shard ? { shard } : {}),
    shards,
    failed,
    complete: shards.length === end - first,
    tensors: m.tensors && typeof m.tensors === 'object' ? (m.tensors as Record<string, string>) : {},
    ...storeFamily(m, bad),
    ...(m.kind !== undefined ? { kind: str(m.kind, 'kind') } : {}),
    ...(m.params !== undefined ? { params: obj(m.params, 'params') } : {}),
    ...(m.rowShapes !== undefined
      ? { rowShapes: Object.fromEntries(Object.entries(obj(m.rowShapes, 'rowShapes')).map(([k, v]) => [k, arr(v, `rowShapes.${k}`).map((x, i) => int(x, `rowShapes.${k}[${i}]`, 0, BIG))])) }
      : {}),
  };
}

/** The optional shard slice: K of N, and the batches that K of N gives for this many batches. */
function storeShard(s: Record<string, unknown>, batches: number, bad: (why: string) => Error): NonNullable<StoreManifest['shard']> {
  const { index, count } = s;
  if (!Number.isSafeInteger(count) || (count as number) < 1 || !Number.isSafeInteger(index) || (index as number) < 0 || (index as number) >= (count as number)) {
    throw bad(`shard must be {index: K, count: N} with 0 ≤ K < N, got ${JSON.stringify({ index, count })}`);
  }
  const spec = { index: index as number, count: count as number };
  const want = shardBatches(batches, spec);
  if (JSON.stringify(s.batches) !== JSON.stringify(want)) throw bad(`shard ${spec.index}/${spec.count} of ${batches} batches covers batches ${JSON.stringify(want)}, but the manifest says ${JSON.stringify(s.batches)}`);
  return { ...spec, batches: want };
}

/** The optional family and display names (absent: a CLIP store). */
function storeFamily(m: Record<string, unknown>, bad: (why: string) => Error): Pick<StoreManifest, 'family' | 'names'> {
  const out: Pick<StoreManifest, 'family' | 'names'> = {};
  if (m.family !== undefined) {
    if (m.family !== 'clip' && m.family !== 'siglip') throw bad(`family must be "clip" or "siglip", got ${JSON.stringify(m.family)}`);
    out.family = m.family;
  }
  const names = m.names as { blocks?: unknown; terms?: unknown } | undefined;
  const strings = (x: unknown) => Array.isArray(x) && x.every((v) => typeof v === 'string');
  if (names !== undefined) {
    if (!names || typeof names !== 'object' || !strings(names.blocks) || !strings(names.terms)) throw bad('names must be {blocks: string[], terms: string[]}');
    out.names = { blocks: names.blocks as string[], terms: names.terms as string[] };
  }
  return out;
}

export function readManifest(dir: string): StoreManifest {
  const p = join(dir, 'manifest.json');
  if (!existsSync(p)) {
    const why = pathProblem(dir, 'directory');
    throw new StoreError(why ? `store ${dir} ${why}` : `${dir} is not a cliplens store (no manifest.json)`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(p, 'utf8'));
  } catch (e) {
    throw new StoreError(`${p}: unreadable manifest (${(e as Error).message.split('\n')[0]})`);
  }
  return validateManifest(raw, p);
}

/** What is wrong with one recorded shard, if anything (see checkShard). */
export interface ShardProblem {
  batch: number;
  file: string;
  problem: string;
}

/**
 * Check a recorded shard against its manifest entry. Always (cheap): present, the recorded size,
 * a valid header, every tensor with the store's dtype and the entry's row count, and its own
 * `index` tensor equal to the entry's rows. With `full`: also the sha256 of the whole file.
 * Returns the problem in words, or undefined.
 */
export function checkShard(dir: string, m: StoreManifest, s: ShardEntry, full: boolean): string | undefined {
  const path = join(dir, s.file!);
  const why = pathProblem(path);
  if (why) return why === 'does not exist' ? 'is missing' : why;
  const size = statSync(path).size;
  if (s.bytes !== undefined && size !== s.bytes) return `is ${size} bytes but was written as ${s.bytes} (truncated or replaced)`;
  let f: SafetensorsFile;
  try {
    f = SafetensorsFile.open(path);
  } catch (e) {
    return `is damaged (${(e as Error).message.slice(path.length + 2)})`;
  }
  try {
    const b = s.indices.length;
    const { L, H, d } = m.dims;
    const want: Record<string, number[]> = m.rowShapes
      ? { ...Object.fromEntries(Object.entries(m.rowShapes).map(([name, row]) => [name, [b, ...row]])), index: [b] }
      : { attn: [b, m.layers.length, H, d], mlp: [b, L + 1, d], image_features: [b, d], norm: [b], index: [b] };
    if (!m.rowShapes && 'cls_attn' in m.tensors) want.cls_attn = [b, m.layers.length, H, d];
    for (const [name, shape] of Object.entries(want)) {
      const t = f.tensors.get(name);
      if (!t) return `has no '${name}' tensor`;
      const dtype = name === 'index' ? 'I32' : m.dtype;
      if (t.dtype !== dtype) return `has '${name}' in ${t.dtype}, the store keeps ${dtype}`;
      if (!shapeEq(t.shape, shape)) return `has '${name}' of shape [${t.shape}], expected [${shape}] for its ${b} rows`;
    }
    const index = f.read('index').data as Int32Array;
    if (index.some((v, i) => v !== s.indices[i])) {
      return `holds rows [${shortList(index)}] but the manifest records rows [${shortList(s.indices)}] for batch ${s.batch} (a shard copied over another?)`;
    }
  } finally {
    f.close();
  }
  if (full && s.sha256 !== undefined && sha256File(path) !== s.sha256) return 'does not have the sha256 recorded when it was written (changed or damaged on disk)';
  return undefined;
}

const shortList = (xs: ArrayLike<number>) => {
  const a = Array.from(xs);
  return a.length > 6 ? `${a.slice(0, 5).join(', ')}, …` : a.join(', ');
};

export interface StoreWriterInit {
  dir: string;
  model: Required<ModelProvenance>;
  dims: StoreManifest['dims'];
  family?: StoreFamily;
  names?: StoreManifest['names'];
  layers: number[];
  dtype: 'F32' | 'F16';
  normalised: boolean;
  batchSize: number;
  dataset: StoreManifest['dataset'];
  items: StoreItem[];
  /** Another kind of store than a decomposition: its kind, parameters, tensor descriptions and row shapes. */
  content?: { kind: string; params: Record<string, unknown>; tensors: Record<string, string>; rowShapes: Record<string, number[]> };
  shard?: ShardSpec;
}

/** Opens a new store or resumes an existing one made with the same model, options and inputs. */
export class StoreWriter {
  readonly manifest: StoreManifest;
  /** Recorded shards found damaged or missing when the store was opened: they are recomputed. */
  readonly repaired: ShardProblem[];
  private done: Set<number>;
  private range: [number, number];

  constructor(readonly dir: string, manifest: StoreManifest, repaired: ShardProblem[] = []) {
    this.manifest = manifest;
    this.repaired = repaired;
    this.done = new Set(manifest.shards.map((s) => s.batch));
    this.range = batchRange(manifest);
  }

  static open(init: StoreWriterInit): StoreWriter {
    mkdirSync(init.dir, { recursive: true });
    // Temp files of runs killed mid-write (their process is gone) are debris.
    removeStaleTemps(init.dir);
    if (existsSync(join(init.dir, 'manifest.json'))) {
      const m = readManifest(init.dir);
      const clash = (what: string, a: unknown, b: unknown) => {
        if (JSON.stringify(a) !== JSON.stringify(b)) {
          throw new StoreError(`store ${init.dir} was made with a different ${what} (${JSON.stringify(a)} there, ${JSON.stringify(b)} now); use a new --store directory`);
        }
      };
      requireSameModel({ what: `store ${init.dir}`, model: m.model }, { what: 'this run', model: init.model });
      if ((m.kind ?? 'decomposition') !== (init.content?.kind ?? 'decomposition')) {
        throw new StoreError(`store ${init.dir} is a ${m.kind ?? 'decomposition'} store, not a ${init.content?.kind ?? 'decomposition'} store; use a new --store directory`);
      }
      clash('parameters', m.params, init.content?.params);
      clash('layer selection', m.layers, init.layers);
      clash('dtype', m.dtype, init.dtype);
      clash('normalisation', m.normalised, init.normalised);
      clash('batch size', m.batchSize, init.batchSize);
      if (m.items.length !== init.items.length || m.items.some((it, i) => it.id !== init.items[i].id)) {
        throw new StoreError(`store ${init.dir} holds a different list of ${m.items.length} inputs (now ${init.items.length}); use a new --store directory`);
      }
      const shardOf = (s?: ShardSpec) => (s ? `shard ${s.index}/${s.count}` : 'no shard');
      if (shardOf(m.shard) !== shardOf(init.shard)) {
        throw new StoreError(`store ${init.dir} was made with ${shardOf(m.shard)}, not ${shardOf(init.shard)}; use a new --store directory`);
      }
      // Every recorded shard is verified in full; a missing or damaged one is recomputed, not trusted.
      const repaired: ShardProblem[] = [];
      m.shards = m.shards.filter((s) => {
        if (s.file === null) return true;
        const problem = checkShard(init.dir, m, s, true);
        if (problem) repaired.push({ batch: s.batch, file: s.file, problem });
        else if (s.sha256 === undefined) {
          // A version-1 entry that passed the structural checks: record its size and hash now.
          s.sha256 = sha256File(join(init.dir, s.file));
          s.bytes = statSync(join(init.dir, s.file)).size;
        }
        return !problem;
      });
      const w = new StoreWriter(init.dir, m, repaired);
      for (const r of repaired) w.forgetFailed(r.batch);
      m.complete = w.pendingBatches().length === 0;
      if (m.version !== STORE_VERSION || repaired.length) {
        m.version = STORE_VERSION;
        w.flush();
      }
      return w;
    }
    const manifest: StoreManifest = {
      format: STORE_FORMAT,
      version: STORE_VERSION,
      model: init.model,
      dims: init.dims,
      ...(init.family ? { family: init.family } : {}),
      ...(init.names ? { names: init.names } : {}),
      layers: init.layers,
      dtype: init.dtype,
      normalised: init.normalised,
      batchSize: init.batchSize,
      dataset: init.dataset,
      items: init.items,
      ...(init.shard ? { shard: { ...init.shard, batches: shardBatches(Math.ceil(init.items.length / init.batchSize), init.shard) } } : {}),
      shards: [],
      failed: [],
      complete: false,
      tensors: init.content?.tensors ?? {
        attn: init.family === 'siglip' ? '[b, 1, H, d] the attention-pooling head\'s term per pooling head (compute_siglip attention records)' : '[b, layers.length, H, d] per-head direct contributions of the kept layers (PRS, see normalised)',
        ...(init.family === 'siglip' ? {} : { cls_attn: '[b, layers.length, H, d] the CLS→CLS part of attn: source token 0 of each head, as attn[:, :, 0] of the per-token decomposition' }),
        mlp: init.family === 'siglip' ? '[b, 2, d] index 0 = the pooling head\'s out_proj bias, 1 = its MLP (fc2 bias inside)' : '[b, L+1, d] index 0 = ln_pre term (the CLS embedding after ln_pre), l+1 = MLP of layer l',
        image_features: '[b, d] the image embedding z (unnormalised)',
        norm: '[b] ||z||',
        index: '[b] int32 index into items (equal to the shard entry\'s indices)',
      },
      ...(init.content ? { kind: init.content.kind, params: init.content.params, rowShapes: init.content.rowShapes } : {}),
    };
    const w = new StoreWriter(init.dir, manifest);
    w.flush();
    return w;
  }

  /** Stores made before cliplens kept the CLS→CLS term go on without it, so their shards stay alike. */
  get keepsClsAttn(): boolean {
    return 'cls_attn' in this.manifest.tensors;
  }

  get batches(): number {
    return Math.ceil(this.manifest.items.length / this.manifest.batchSize);
  }

  isDone(batch: number): boolean {
    return this.done.has(batch);
  }

  /** Batches of this store's range not yet recorded, in order. */
  pendingBatches(): number[] {
    const [start, end] = this.range;
    return Array.from({ length: end - start }, (_, i) => start + i).filter((k) => !this.done.has(k));
  }

  /** How many batches this store is responsible for (its slice, or all). */
  get rangeBatches(): number {
    return this.range[1] - this.range[0];
  }

  /** Drop the unreadable-image entries of one batch (it is being recomputed, and lists them again). */
  private forgetFailed(batch: number): void {
    const lo = batch * this.manifest.batchSize;
    const hi = lo + this.manifest.batchSize;
    this.manifest.failed = this.manifest.failed.filter((f) => f.index < lo || f.index >= hi);
  }

  /** Write one batch's tensors (rows in `indices` order) and record it with its size and sha256. */
  writeBatch(batch: number, indices: number[], tensors: Record<string, Tensor>, failed: FailedEntry[]): void {
    if (batch < this.range[0] || batch >= this.range[1]) throw new StoreError(`batch ${batch} is outside store ${this.dir}'s batches ${this.range[0]}..${this.range[1] - 1}`);
    const entry: ShardEntry = { batch, file: null, indices };
    if (indices.length > 0) {
      const missing = Object.keys(this.manifest.tensors).filter((t) => t !== 'index' && !(t in tensors));
      if (missing.length) throw new StoreError(`store ${this.dir}: batch ${batch} lacks ${missing.join(', ')}, which the manifest lists`);
      const file = `shard-${String(batch).padStart(6, '0')}.safetensors`;
      const all = { ...tensors, index: { dtype: 'I32' as const, shape: [indices.length], data: Int32Array.from(indices) } };
      const bytes = encodeSafetensors(all, { half: this.manifest.dtype === 'F16', metadata: { batch: String(batch) } });
      atomicWrite(join(this.dir, file), bytes, 'store shard');
      Object.assign(entry, { file, bytes: bytes.length, sha256: sha256(bytes) });
    }
    this.manifest.shards = this.manifest.shards.filter((s) => s.batch !== batch);
    this.manifest.shards.push(entry);
    this.manifest.shards.sort((a, b) => a.batch - b.batch);
    this.forgetFailed(batch);
    this.manifest.failed.push(...failed);
    this.manifest.failed.sort((a, b) => a.index - b.index);
    this.done.add(batch);
    this.manifest.complete = this.pendingBatches().length === 0;
    this.flush();
  }

  private flush(): void {
    atomicWrite(join(this.dir, 'manifest.json'), JSON.stringify(this.manifest, null, 1), 'store manifest');
  }
}

export interface StoreData {
  /** The store's directory. */
  dir: string;
  manifest: StoreManifest;
  /** [n, layers.length, H, d] */
  attn: F32;
  /** [n, L+1, d] */
  mlp: F32;
  /** [n, layers.length, H, d] the CLS→CLS part of attn; absent in stores made before cliplens kept it. */
  clsAttn?: F32;
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

export interface LoadStoreOptions {
  requireComplete?: boolean;
  /** Also check every shard's sha256 (reads each file twice); size, header and rows are always checked. */
  verify?: boolean;
}

/** Every recorded shard checked (see checkShard); the first problem is a StoreError naming the shard. */
export function verifyStore(dir: string, m: StoreManifest, full: boolean): void {
  for (const s of m.shards) {
    if (s.file === null) continue;
    const problem = checkShard(dir, m, s, full);
    if (problem) {
      throw new StoreError(`store ${dir}: shard ${s.file} (batch ${s.batch}) ${problem}; run '${m.kind === undefined ? 'cliplens decompose' : 'the command that made it'}' again with the same --dataset and --store to recompute it`);
    }
  }
}

/** Load every stored row (in item order) as float32, after checking every shard against the manifest. */
export function loadStore(dir: string, opts: LoadStoreOptions = {}): StoreData {
  const m = readManifest(dir);
  if (m.kind !== undefined && m.kind !== 'decomposition') throw new StoreError(`${dir} is a ${m.kind} store, not a decomposition store (cliplens decompose --dataset makes those)`);
  if (opts.requireComplete && m.shard) throw new StoreError(`store ${dir} is shard ${m.shard.index}/${m.shard.count} of its dataset; join the shards first with cliplens store merge`);
  if (opts.requireComplete && !m.complete) throw new StoreError(`store ${dir} is incomplete (${m.shards.length} of ${Math.ceil(m.items.length / m.batchSize)} batches); run cliplens decompose again to finish it`);
  // Shapes are checked against the manifest before anything is allocated, so the sizes below are bounded by the files.
  verifyStore(dir, m, opts.verify ?? false);
  const files = m.shards.filter((s) => s.file !== null);
  const n = files.reduce((a, s) => a + s.indices.length, 0);
  const { H, d, L } = m.dims;
  const Lk = m.layers.length;
  const attn = f32([n, Lk, H, d]);
  const clsAttn = 'cls_attn' in m.tensors ? f32([n, Lk, H, d]) : undefined;
  const mlp = f32([n, L + 1, d]);
  const imageFeatures = f32([n, d]);
  const norm = f32([n]);
  const index = new Int32Array(n);
  let row = 0;
  for (const s of files) {
    SafetensorsFile.open(join(dir, s.file!)).closeAfter((f) => {
      const per = (t: F32) => t.data.length / t.shape[0];
      const parts: [F32, string][] = [[attn, 'attn'], [mlp, 'mlp'], [imageFeatures, 'image_features'], [norm, 'norm']];
      if (clsAttn) parts.push([clsAttn, 'cls_attn']);
      for (const [dst, name] of parts) dst.data.set(f.readF32(name).data, row * per(dst));
    });
    index.set(s.indices, row);
    row += s.indices.length;
  }
  const labelIdx = new Map(m.dataset.labels.map((l, i) => [l, i]));
  const groupIdx = new Map(m.dataset.groups.map((g, i) => [g, i]));
  const labels = Int32Array.from(index, (i) => (m.items[i].label !== undefined ? labelIdx.get(m.items[i].label!) ?? -1 : -1));
  const groups = Int32Array.from(index, (i) => (m.items[i].group !== undefined ? groupIdx.get(m.items[i].group!) ?? -1 : -1));
  return { dir, manifest: m, attn, mlp, ...(clsAttn ? { clsAttn } : {}), imageFeatures, norm, index, labels, groups };
}
