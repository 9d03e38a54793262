// Join the stores that shards of one dataset were decomposed into (decompose --shard K/N, one per
// machine) into the store a single run would have written: same shard files, same manifest.
// Refused, with one line naming the stores, unless they come from the same model with the same
// layers, dtype, normalisation, batch size and inputs, and their batches are disjoint and cover
// the dataset.

import { constants, copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { StoreError } from '../errors.ts';
import { atomicWrite } from './files.ts';
import { batchRange, readManifest, type StoreManifest } from './store.ts';

export interface MergeResult {
  out: string;
  stores: number;
  batches: number;
  items: number;
  failed: number;
}

function describe(dir: string, m: StoreManifest): string {
  return m.shard ? `${dir} (shard ${m.shard.index}/${m.shard.count})` : dir;
}

function spans(batches: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < batches.length; ) {
    let j = i;
    while (j + 1 < batches.length && batches[j + 1] === batches[j] + 1) j++;
    out.push(i === j ? `${batches[i]}` : `${batches[i]}-${batches[j]}`);
    i = j + 1;
  }
  return out.join(', ');
}

/** Same model, layout and inputs as the first store, or a one-line StoreError naming both. */
function checkCompatible(a: { dir: string; m: StoreManifest }, b: { dir: string; m: StoreManifest }): void {
  const [A, B] = [a.m, b.m];
  if (A.model.fingerprint !== B.model.fingerprint) {
    throw new StoreError(`cannot merge: store ${b.dir} was made by model '${B.model.name}' (fingerprint ${B.model.fingerprint}) but ${a.dir} by '${A.model.name}' (${A.model.fingerprint})`);
  }
  const same = (what: string, x: unknown, y: unknown) => {
    if (JSON.stringify(x) !== JSON.stringify(y)) throw new StoreError(`cannot merge: store ${b.dir} has ${what} ${JSON.stringify(y)} but ${a.dir} has ${JSON.stringify(x)}`);
  };
  same('dims', A.dims, B.dims);
  same('layers', A.layers, B.layers);
  same('dtype', A.dtype, B.dtype);
  same('normalised', A.normalised, B.normalised);
  same('batch size', A.batchSize, B.batchSize);
  const key = (m: StoreManifest) => JSON.stringify([m.items, m.dataset.kind, m.dataset.labels, m.dataset.groups]);
  if (key(A) !== key(B)) {
    throw new StoreError(`cannot merge: store ${b.dir} was made from a different dataset (${B.items.length} inputs) than ${a.dir} (${A.items.length} inputs)`);
  }
}

export function mergeStores(inputs: string[], out: string): MergeResult {
  if (inputs.length === 0) throw new StoreError('cannot merge: no stores given');
  if (existsSync(join(out, 'manifest.json'))) throw new StoreError(`cannot merge into ${out}: it is already a store; give a new --out directory`);
  const stores = inputs.map((dir) => ({ dir, m: readManifest(dir) }));
  for (const s of stores.slice(1)) checkCompatible(stores[0], s);
  for (const { dir, m } of stores) {
    if (!m.complete) {
      const [b0, b1] = batchRange(m);
      throw new StoreError(`cannot merge: store ${describe(dir, m)} is incomplete (${m.shards.length} of ${b1 - b0} batches); finish it by running the same decompose command again`);
    }
  }

  // Disjoint: no batch held by two stores; complete: every batch held by one.
  const first = stores[0].m;
  const total = Math.ceil(first.items.length / first.batchSize);
  const owner = new Map<number, (typeof stores)[number]>();
  for (const s of stores) {
    const [b0, b1] = batchRange(s.m);
    for (let b = b0; b < b1; b++) {
      const prev = owner.get(b);
      if (prev) throw new StoreError(`cannot merge: stores ${describe(prev.dir, prev.m)} and ${describe(s.dir, s.m)} overlap (both hold batch ${b})`);
      owner.set(b, s);
    }
  }
  const missing = Array.from({ length: total }, (_, b) => b).filter((b) => !owner.has(b));
  if (missing.length) {
    throw new StoreError(`cannot merge: no store holds batch${missing.length > 1 ? 'es' : ''} ${spans(missing)} of 0-${total - 1}; a shard is missing`);
  }

  mkdirSync(out, { recursive: true });
  const shards = stores.flatMap((s) => s.m.shards.map((e) => ({ e, dir: s.dir }))).sort((x, y) => x.e.batch - y.e.batch);
  for (const { e, dir } of shards) {
    if (e.file === null) continue;
    const src = join(dir, e.file);
    if (!existsSync(src)) throw new StoreError(`cannot merge: store ${dir} lists ${e.file} but the file is missing`);
    // A copy-on-write clone where the filesystem can, a plain copy elsewhere.
    copyFileSync(src, join(out, e.file), constants.COPYFILE_FICLONE);
  }
  const { shard: _slice, ...rest } = first;
  const manifest: StoreManifest = {
    ...rest,
    shards: shards.map((s) => s.e),
    failed: stores.flatMap((s) => s.m.failed).sort((x, y) => x.index - y.index),
    complete: true,
  };
  // The manifest last, so an interrupted merge leaves no store behind.
  atomicWrite(join(out, 'manifest.json'), JSON.stringify(manifest, null, 1), 'store manifest');
  return { out, stores: stores.length, batches: total, items: first.items.length, failed: manifest.failed.length };
}
