// Randomly initialised CLIP weights in open_clip layout (benchmarks and tests), following the
// fixture's recipe: LN weights 1+N(0,0.1²), biases N(0,0.05²), embeddings N(0,0.5²),
// matrices N(0, (gain/√fan_in)²).

import { normalRng } from '../../src/rng.ts';
import type { F32 } from '../../src/tensor.ts';
import { f32 } from '../../src/tensor.ts';
import type { ClipConfig } from '../../src/model/config.ts';
import { parseOpenClipConfig, visionDims } from '../../src/model/config.ts';
import { MemoryWeights } from '../../src/model/weights.ts';


/** One tensor of the recipe: its open_clip name, shape and N(mean, std²) entries. */
export interface RandomTensor {
  name: string;
  shape: number[];
  std: number;
  mean: number;
}

/** Every tensor of an open_clip CLIP (the towers asked for, plus logit_scale) with its recipe. */
export function randomTensorSpecs(cfg: ClipConfig, towers: ('vision' | 'text')[] = ['vision', 'text']): RandomTensor[] {
  const out: RandomTensor[] = [];
  const fill = (name: string, shape: number[], std: number, mean = 0) => void out.push({ name, shape, std, mean });
  const block = (p: string, D: number, hidden: number) => {
    fill(`${p}.ln_1.weight`, [D], 0.1, 1);
    fill(`${p}.ln_1.bias`, [D], 0.05);
    fill(`${p}.attn.in_proj_weight`, [3 * D, D], 1.5 / Math.sqrt(D));
    fill(`${p}.attn.in_proj_bias`, [3 * D], 0.05);
    fill(`${p}.attn.out_proj.weight`, [D, D], 1 / Math.sqrt(D));
    fill(`${p}.attn.out_proj.bias`, [D], 0.05);
    fill(`${p}.ln_2.weight`, [D], 0.1, 1);
    fill(`${p}.ln_2.bias`, [D], 0.05);
    fill(`${p}.mlp.c_fc.weight`, [hidden, D], 1 / Math.sqrt(D));
    fill(`${p}.mlp.c_fc.bias`, [hidden], 0.05);
    fill(`${p}.mlp.c_proj.weight`, [D, hidden], 1 / Math.sqrt(hidden));
    fill(`${p}.mlp.c_proj.bias`, [D], 0.05);
  };
  const v = cfg.vision;
  const { tokens, hidden } = visionDims(v);
  if (towers.includes('vision')) {
    fill('visual.conv1.weight', [v.width, 3, v.patchSize, v.patchSize], 1 / Math.sqrt(3 * v.patchSize ** 2));
    fill('visual.class_embedding', [v.width], 0.5);
    fill('visual.positional_embedding', [tokens, v.width], 0.5);
    fill('visual.ln_pre.weight', [v.width], 0.1, 1);
    fill('visual.ln_pre.bias', [v.width], 0.05);
    for (let l = 0; l < v.layers; l++) block(`visual.transformer.resblocks.${l}`, v.width, hidden);
    fill('visual.ln_post.weight', [v.width], 0.1, 1);
    fill('visual.ln_post.bias', [v.width], 0.05);
    fill('visual.proj', [v.width, cfg.embedDim], 1 / Math.sqrt(v.width));
  }
  const t = cfg.text;
  if (towers.includes('text')) {
    fill('token_embedding.weight', [t.vocabSize, t.width], 0.5);
    fill('positional_embedding', [t.contextLength, t.width], 0.5);
    for (let l = 0; l < t.layers; l++) block(`transformer.resblocks.${l}`, t.width, Math.round(t.width * t.mlpRatio));
    fill('ln_final.weight', [t.width], 0.1, 1);
    fill('ln_final.bias', [t.width], 0.05);
    fill('text_projection', [t.width, cfg.embedDim], 1 / Math.sqrt(t.width));
  }
  out.push({ name: 'logit_scale', shape: [], std: 0, mean: Math.log(1 / 0.07) });
  return out;
}

/** Fill a tensor of `shape` with N(mean, std²) draws from `rng`. */
export function randomTensor(rng: () => number, shape: number[], std: number, mean = 0): F32 {
  const t = f32(shape);
  for (let i = 0; i < t.data.length; i++) t.data[i] = mean + std * rng();
  return t;
}

export function randomClipWeights(cfg: ClipConfig, seed = 0, towers: ('vision' | 'text')[] = ['vision', 'text']): MemoryWeights {
  const rng = normalRng(seed);
  const m = new Map<string, F32>();
  for (const s of randomTensorSpecs(cfg, towers)) m.set(s.name, s.std === 0 ? f32(s.shape, Float32Array.of(s.mean)) : randomTensor(rng, s.shape, s.std, s.mean));
  return new MemoryWeights(m, `random(seed=${seed})`);
}

/** open_clip's ViT-B-16 config. */
export const VIT_B_16 = {
  embed_dim: 512,
  vision_cfg: { image_size: 224, layers: 12, width: 768, patch_size: 16 },
  text_cfg: { context_length: 77, vocab_size: 49408, width: 512, heads: 8, layers: 12 },
};

export function vitB16Config(): ClipConfig {
  return parseOpenClipConfig(VIT_B_16);
}
