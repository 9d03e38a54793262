// The indirect-effect probe of prs_indirect_effect.py (SPEC §9; no script of the reference uses it):
// neuron n of block l has its post-activation at every token replaced by a per-token mean over a
// dataset, and the forward pass runs on with every path, attention pattern and LayerNorm
// recomputed. The contrast to the ablation study, which edits only the second-order term.

import ort from 'onnxruntime-node';
import { buildVisionGraph } from '../graph/clip_graphs.ts';
import { createSession } from '../graph/session.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { f32, type F32 } from '../tensor.ts';
import { neuronVariant } from './effects.ts';
import { ShapeError } from '../errors.ts';

/** Per-token mean over images of MLP block l's post-activations [N, M] (float64 sums). */
export async function meanActivations(model: ClipModel, pixels: F32, layer: number, batchSize = 8): Promise<F32> {
  const { tokens: N, hidden: M } = model.dims();
  const a = (await model.runVision(pixels, [`mlp_post_${layer}`], batchSize, neuronVariant([layer])))[`mlp_post_${layer}`];
  const B = a.shape[0];
  const sum = new Float64Array(N * M);
  for (let b = 0; b < B; b++) for (let i = 0; i < N * M; i++) sum[i] += a.data[b * N * M + i];
  return f32([N, M], Float32Array.from(sum, (v) => v / B));
}

/**
 * z = encode_image(x) [n, B, d] with each of `neurons` in turn set to `mean` [N, M] at every token
 * (one forward pass per neuron).
 */
export async function indirectEffects(model: ClipModel, pixels: F32, layer: number, neurons: number[], mean: F32): Promise<F32> {
  const { tokens: N, hidden: M } = model.dims();
  if (mean.shape[0] !== N || mean.shape[1] !== M) throw new ShapeError(`mean activations must be [${N}, ${M}], got [${mean.shape}]`);
  const B = model.checkPixels(pixels);
  const d = model.config.embedDim;
  const weights = { origin: model.name, has: () => true, get: (name: string) => model.weight(name), close() {} };
  const session = await createSession(buildVisionGraph(model.config, weights, { setNeurons: layer }));
  try {
    const out = f32([neurons.length, B, d]);
    for (const [i, n] of neurons.entries()) {
      const keep = new Float32Array(M).fill(1);
      keep[n] = 0;
      const value = new Float32Array(N * M);
      for (let t = 0; t < N; t++) value[t * M + n] = mean.data[t * M + n];
      const r = await session.run(
        { pixel_values: new ort.Tensor('float32', pixels.data, pixels.shape), neuron_keep: new ort.Tensor('float32', keep, [M]), neuron_value: new ort.Tensor('float32', value, [N, M]) },
        ['image_features'],
      );
      out.data.set(r.image_features.data as Float32Array, i * B * d);
    }
    return out;
  } finally {
    await session.release();
  }
}
