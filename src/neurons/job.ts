// Second-order effects of a whole dataset into a neuron store, batch by batch, resumable after any
// interruption (kill -9 included), with progress: the decomposition job's protocol
// (src/decompose/dataset_job.ts) with the factored effects as the payload.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fillStore, type DatasetJobOptions, type DatasetJobResult } from '../decompose/dataset_job.ts';
import type { Dataset } from '../io/datasets.ts';
import { modelProvenance } from '../io/provenance.ts';
import { StoreWriter } from '../io/store.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { NeuronEffects } from './effects.ts';
import { COEFFICIENT } from './readout.ts';
import { NEURON_STORE_KIND, READOUT_FILE, writeReadoutFile, type NeuronStoreParams } from './store.ts';

export interface NeuronJobOptions extends Pick<DatasetJobOptions, 'storeDir' | 'batchSize' | 'onProgress' | 'maxBatches'> {
  /** MLP block whose neurons are measured. */
  layer: number;
}

export async function neuronEffectsDataset(model: ClipModel, ds: Dataset, opts: NeuronJobOptions): Promise<DatasetJobResult> {
  const ne = new NeuronEffects(model, opts.layer);
  const r = await ne.getReadout();
  const { L, H, tokens: N, D, d } = model.dims();
  const batchSize = opts.batchSize ?? 16;
  const made = modelProvenance(model);
  const JH = r.heads.length;
  const params: NeuronStoreParams = {
    layer: opts.layer,
    M: r.M,
    heads: r.heads,
    coefficient: COEFFICIENT,
    readout: `${READOUT_FILE}: g [${r.M}, ${JH}, d]; E[b, n] = Σ_k coef[b, k, n]·g[n, k] + Σ_k offset[b, k] (the reference's second_order[b, n])`,
  };
  const store = StoreWriter.open({
    dir: opts.storeDir,
    model: made,
    dims: { L, H, N, D, d },
    layers: [...new Set(r.heads.map(([j]) => j))],
    dtype: 'F32',
    normalised: true,
    batchSize,
    dataset: { root: ds.root, kind: ds.kind, labels: ds.labels, groups: ds.groups },
    items: ds.items.map((i) => ({ id: i.id, label: i.label, group: i.group })),
    content: {
      kind: NEURON_STORE_KIND,
      params: params as unknown as Record<string, unknown>,
      tensors: {
        coef: `[b, ${JH}, ${r.M}] per later head (params.heads, j then h) and neuron: ${COEFFICIENT}·u_n/(‖z‖·σ_post), u_n = Σ_t A(0,t)·a_n(t)/σ_j(t)`,
        offset: `[b, ${JH}, d] per later head: the part of its term every neuron shares (κ)`,
        image_features: '[b, d] the image embedding z (unnormalised)',
        norm: '[b] ||z||',
        index: '[b] int32 index into items',
      },
      rowShapes: { coef: [JH, r.M], offset: [JH, d], image_features: [d], norm: [] },
    },
  });
  if (!existsSync(join(opts.storeDir, READOUT_FILE))) writeReadoutFile(opts.storeDir, r, { model: made, layer: opts.layer });
  return fillStore(model, ds, store, { ...opts, batchSize }, async (pixels) => {
    const f = await ne.factors(pixels, batchSize);
    return { coef: f.coef, offset: f.offset, image_features: f.imageFeatures, norm: f.norm };
  });
}
