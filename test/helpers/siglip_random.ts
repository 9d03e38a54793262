// Randomly initialised SigLIP weights under transformers' names (benchmarks), with the recipe of
// random.ts: LayerNorm weights 1+N(0,0.1²), biases N(0,0.05²), embeddings N(0,0.5²), matrices
// N(0, (gain/√fan_in)²) (q/k/v gain 1.5), the probe N(0, 2²).

import { normalRng } from '../../src/rng.ts';
import { f32, type F32 } from '../../src/tensor.ts';
import type { ClipConfig } from '../../src/model/config.ts';
import { parseHfSiglipConfig } from '../../src/model/siglip_config.ts';
import { siglipExpectedTensors } from '../../src/model/siglip_weights.ts';
import { MemoryWeights } from '../../src/model/weights.ts';

export function randomSiglipWeights(cfg: ClipConfig, seed = 0, towers: ('vision' | 'text')[] = ['vision', 'text']): MemoryWeights {
  const rng = normalRng(seed);
  const m = new Map<string, F32>();
  for (const [name, shape] of siglipExpectedTensors(cfg)) {
    const tower = name.startsWith('vision_model') ? 'vision' : name.startsWith('text_model') ? 'text' : undefined;
    if (tower && !towers.includes(tower)) continue;
    const t = f32(shape);
    let mean = 0;
    let std = 0.05;
    if (/(layer_?norm\d?|post_layernorm|final_layer_norm)\.weight$/.test(name)) (mean = 1), (std = 0.1);
    else if (/embedding\.weight$/.test(name) && !name.includes('patch')) std = 0.5;
    else if (name.endsWith('probe')) std = 2;
    else if (name === 'logit_scale') (mean = Math.log(10)), (std = 0);
    else if (name === 'logit_bias') (mean = -10), (std = 0);
    else if (shape.length >= 2) {
      const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
      std = (/(q_proj|k_proj|v_proj|in_proj)/.test(name) ? 1.5 : 1) / Math.sqrt(fanIn);
    }
    for (let i = 0; i < t.data.length; i++) t.data[i] = mean + std * rng();
    m.set(name, t);
  }
  return new MemoryWeights(m, `random siglip(seed=${seed})`);
}

/** transformers' google/siglip-base-patch16-224 config (every field at its default). */
export function siglipBase224Config(): ClipConfig {
  return parseHfSiglipConfig({ model_type: 'siglip' });
}
