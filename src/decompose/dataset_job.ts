// Decompose a whole dataset into a store, batch by batch, resumable, with progress.
// Decoding of the next batch overlaps the forward pass of the current one (fillStore, which any
// store of per-image results shares).

import type { Dataset } from '../io/datasets.ts';
import { StoreWriter, batchRange, type FailedEntry, type ShardProblem, type ShardSpec } from '../io/store.ts';
import { modelProvenance } from '../io/provenance.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { preprocessFiles } from '../model/preprocess_model.ts';
import { f32, type F32, type Tensor } from '../tensor.ts';
import { decomposerFor } from './decomposers.ts';
import { UsageError } from '../errors.ts';

export interface DatasetJobOptions {
  storeDir: string;
  batchSize?: number;
  /** Attention layers to keep (default: all). */
  layers?: number[];
  half?: boolean;
  normalise?: boolean;
  onProgress?: (p: { done: number; total: number; skipped: number; failed: number }) => void;
  /** Stop after this many new batches (a dataset done in parts: a later call resumes where this one stopped). */
  maxBatches?: number;
  /** Decompose only shard K of N: a contiguous, deterministic slice of the batches (cliplens store merge joins them). */
  shard?: ShardSpec;
}

export interface DatasetJobResult {
  store: string;
  processed: number;
  skippedBatches: number;
  failed: FailedEntry[];
  /** Shards that were recorded but found missing or damaged, and so recomputed. */
  repaired: ShardProblem[];
  complete: boolean;
}

export async function decomposeDataset(model: ClipModel, ds: Dataset, opts: DatasetJobOptions): Promise<DatasetJobResult> {
  const dec = decomposerFor(model);
  const { L, H, N, d, blockNames, termNames } = dec.layout();
  const D = model.config.vision.width;
  const normalise = opts.normalise ?? model.family.normalisedTerms;
  const layers = opts.layers ?? Array.from({ length: L }, (_, l) => l);
  for (const l of layers) if (!Number.isInteger(l) || l < 0 || l >= L) throw new UsageError(`layer ${l} is out of range: the model has layers 0..${L - 1}`);
  const batchSize = opts.batchSize ?? 16;
  const store = StoreWriter.open({
    dir: opts.storeDir,
    model: modelProvenance(model),
    dims: { L, H, N, D, d },
    layers,
    dtype: opts.half ? 'F16' : 'F32',
    normalised: normalise,
    family: model.family.id,
    names: { blocks: blockNames, terms: termNames },
    batchSize,
    dataset: { root: ds.root, kind: ds.kind, labels: ds.labels, groups: ds.groups },
    items: ds.items.map((i) => ({ id: i.id, label: i.label, group: i.group })),
    shard: opts.shard,
  });
  return fillStore(model, ds, store, { ...opts, batchSize }, async (pixels) => {
    const res = await dec.decompose(pixels, { normalise });
    return {
      attn: selectLayers(res.attn, layers),
      ...(store.keepsClsAttn ? { cls_attn: selectLayers(res.clsAttn!, layers) } : {}),
      mlp: res.mlp,
      image_features: res.imageFeatures,
      norm: res.norm,
    };
  });
}

/**
 * Compute every batch the store does not hold yet, in order, and record each as it is done:
 * decoding of the next batch overlaps the computation of the current one; unreadable images are
 * recorded as failed. `compute` maps pixel_values [b, 3, S, S] to the batch's tensors (b rows each).
 */
export async function fillStore(
  model: ClipModel,
  ds: Dataset,
  store: StoreWriter,
  opts: Pick<DatasetJobOptions, 'onProgress' | 'maxBatches' | 'storeDir'> & { batchSize: number },
  compute: (pixels: F32) => Promise<Record<string, Tensor>>,
): Promise<DatasetJobResult> {
  const { batchSize } = opts;
  const pending = store.pendingBatches();
  const [first, end] = batchRange(store.manifest);
  // Items in this store's batches (all of them, or the shard's slice).
  const total = Math.max(0, Math.min(ds.items.length, end * batchSize) - first * batchSize);
  const skipped = store.rangeBatches - pending.length;
  let done = store.manifest.shards.reduce((a, s) => a + s.indices.length, 0) + store.manifest.failed.length;
  let failedCount = store.manifest.failed.length;
  opts.onProgress?.({ done, total, skipped, failed: failedCount });
  const newlyFailed: FailedEntry[] = [];
  let processed = 0;

  const prepare = (batch: number) => {
    const start = batch * batchSize;
    const idx = Array.from({ length: Math.min(batchSize, ds.items.length - start) }, (_, i) => start + i);
    return preprocessFiles(model.config, idx.map((i) => ds.items[i].path)).then((r) => ({ batch, idx, r }));
  };
  const todo = opts.maxBatches !== undefined ? pending.slice(0, opts.maxBatches) : pending;
  let next = todo.length ? prepare(todo[0]) : undefined;
  for (let k = 0; k < todo.length; k++) {
    const { batch, idx, r } = await next!;
    next = k + 1 < todo.length ? prepare(todo[k + 1]) : undefined;
    const ok = idx.filter((_, j) => r.errors[j] === undefined);
    const failed = idx.flatMap((i, j) => (r.errors[j] !== undefined ? [{ index: i, id: ds.items[i].id, error: r.errors[j]! }] : []));
    const tensors = ok.length ? await compute(r.pixels) : {};
    store.writeBatch(batch, ok, tensors, failed);
    newlyFailed.push(...failed);
    processed += idx.length;
    done += idx.length;
    failedCount += failed.length;
    opts.onProgress?.({ done, total, skipped, failed: failedCount });
  }
  await next?.catch(() => undefined);
  return { store: opts.storeDir, processed, skippedBatches: skipped, failed: newlyFailed, repaired: store.repaired, complete: store.manifest.complete };
}

/** [B, L, H, d] → [B, layers.length, H, d] */
export function selectLayers(attn: F32, layers: number[]): F32 {
  const [B, L, H, d] = attn.shape;
  if (layers.length === L && layers.every((l, i) => l === i)) return attn;
  const out = f32([B, layers.length, H, d]);
  const per = H * d;
  for (let b = 0; b < B; b++) {
    layers.forEach((l, j) => out.data.set(attn.data.subarray((b * L + l) * per, (b * L + l + 1) * per), (b * layers.length + j) * per));
  }
  return out;
}
