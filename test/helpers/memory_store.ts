// A decomposition store built in memory from given terms (no files), for analyses whose input
// is a loaded store: the features are the sum of the terms, so the decomposition is exact.

import type { StoreData } from '../../src/io/store.ts';
import { f32, type F32 } from '../../src/tensor.ts';

export interface MemoryStoreInit {
  /** [n, layers.length, H, d] */
  attn: F32;
  /** [n, L+1, d] */
  mlp: F32;
  /** Absolute layers of attn (default 0..Lk−1, all of the model's L = Lk layers). */
  layers?: number[];
  L?: number;
  labels?: string[];
  rowLabels?: number[];
  groups?: string[];
  rowGroups?: number[];
  model?: { name: string; fingerprint: string };
}

export function memoryStore(o: MemoryStoreInit): StoreData {
  const [n, Lk, H, d] = o.attn.shape;
  const L = o.L ?? Lk;
  const layers = o.layers ?? Array.from({ length: Lk }, (_, l) => l);
  const feats = f32([n, d]);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < d; k++) {
      let s = 0;
      for (let s2 = 0; s2 < Lk * H; s2++) s += o.attn.data[(i * Lk * H + s2) * d + k];
      for (let t = 0; t <= L; t++) s += o.mlp.data[(i * (L + 1) + t) * d + k];
      feats.data[i * d + k] = s;
    }
  const labels = o.labels ?? [];
  const groups = o.groups ?? [];
  return {
    dir: '/nowhere',
    manifest: {
      format: 'cliplens-store',
      version: 1,
      model: o.model ?? { name: 'memory', fingerprint: 'memory' },
      dims: { L, H, N: 5, D: d, d },
      layers,
      dtype: 'F32',
      normalised: false,
      batchSize: n,
      dataset: { root: '/nowhere', kind: 'folder', labels, groups },
      items: Array.from({ length: n }, (_, i) => ({
        id: `img${i}.png`,
        ...(o.rowLabels ? { label: labels[o.rowLabels[i]] } : {}),
        ...(o.rowGroups ? { group: groups[o.rowGroups[i]] } : {}),
      })),
      shards: [{ batch: 0, file: 'memory', indices: Array.from({ length: n }, (_, i) => i) }],
      failed: [],
      complete: true,
      tensors: {},
    },
    attn: o.attn,
    mlp: o.mlp,
    imageFeatures: feats,
    norm: f32([n], new Float32Array(n).fill(1)),
    index: Int32Array.from({ length: n }, (_, i) => i),
    labels: Int32Array.from({ length: n }, (_, i) => o.rowLabels?.[i] ?? -1),
    groups: Int32Array.from({ length: n }, (_, i) => o.rowGroups?.[i] ?? -1),
  };
}
