// What differs between the model families cliplens runs — CLIP (CLS token read out through
// ln_post and a projection, causal text tower pooled at the end-of-text id, softmax logits) and
// SigLIP (no CLS token, an attention-pooling head, bidirectional text tower pooled at the last
// position, sigmoid logits with a bias) — in one place. Everything above the graphs asks the
// family instead of testing for a model type.

import ort from 'onnxruntime-node';
import type { GraphBuilder, GraphOptions } from '../graph/builder.ts';
import { buildTextGraph, buildVisionGraph, clipVisionVariant, visionActivationBytes } from '../graph/clip_graphs.ts';
import { buildSiglipTextGraph, buildSiglipVisionGraph, siglipVisionActivationBytes } from '../graph/siglip_graphs.ts';
import type { ClipConfig } from '../model/config.ts';
import { CLIP_INFO, SIGLIP_INFO, type FamilyInfo } from '../model/family_info.ts';
import type { WeightSource } from '../model/weights.ts';
import { ShapeError } from '../errors.ts';

export interface ModelFamily extends FamilyInfo {
  /** The vision graph; `variant` names a graph with extra outputs (CLIP: 'neurons:<l,…>'; SigLIP: 'through', 'through_spatial'). */
  buildVisionGraph(cfg: ClipConfig, w: WeightSource, variant?: string, opts?: GraphOptions): GraphBuilder;
  buildTextGraph(cfg: ClipConfig, w: WeightSource, opts?: GraphOptions): GraphBuilder;
  /** Bytes one image adds to ONNX Runtime's memory in a forward pass of that vision graph (an estimate from its shapes). */
  visionActivationBytes(cfg: ClipConfig, variant?: string): number;
  /** Token ids per text the text graph accepts; throws naming the allowed lengths otherwise. */
  checkTokenLength(cfg: ClipConfig, S: number): void;
  /** The text graph's feeds for ids [T, S]. */
  textFeeds(tokens: Int32Array, T: number, S: number): Record<string, ort.Tensor>;
  /** Tensors hashed (with the config) into the model's fingerprint. */
  fingerprintTensors(cfg: ClipConfig): string[];
  /** Logits of normalised embeddings: cos · scale + bias. */
  logitParams(w: WeightSource): { scale: number; bias: number };
}

const scalar = (w: WeightSource, name: string, dflt: number) => (w.has(name) ? w.get(name).data[0] : dflt);

export const CLIP_FAMILY: ModelFamily = {
  ...CLIP_INFO,
  buildVisionGraph: (cfg, w, variant, opts) => buildVisionGraph(cfg, w, { ...clipVisionVariant(variant), ...opts }),
  buildTextGraph: (cfg, w, opts) => buildTextGraph(cfg, w, opts),
  visionActivationBytes: (cfg, variant) => visionActivationBytes(cfg, clipVisionVariant(variant)),
  checkTokenLength(cfg, S) {
    if (S !== cfg.text.contextLength) throw new ShapeError(`token ids have length ${S}; this model's text tower takes exactly ${cfg.text.contextLength}`);
  },
  textFeeds(tokens, T, S) {
    // Pooled at the first maximum id (open_clip's argmax: the end-of-text token).
    const onehot = new Float32Array(T * S);
    for (let i = 0; i < T; i++) {
      let best = 0;
      for (let j = 1; j < S; j++) if (tokens[i * S + j] > tokens[i * S + best]) best = j;
      onehot[i * S + best] = 1;
    }
    return { tokens: new ort.Tensor('int32', tokens, [T, S]), eot_onehot: new ort.Tensor('float32', onehot, [T, S]) };
  },
  fingerprintTensors: () => ['visual.proj', 'visual.class_embedding', 'visual.ln_post.weight', 'visual.transformer.resblocks.0.attn.in_proj_bias'],
  logitParams: (w) => ({ scale: Math.exp(scalar(w, 'logit_scale', Math.log(100))), bias: 0 }),
};

const siglipThrough = (variant?: string) => (variant === 'through' ? 'sum' : variant === 'through_spatial' ? 'spatial' : undefined);

export const SIGLIP_FAMILY: ModelFamily = {
  ...SIGLIP_INFO,
  buildVisionGraph: (cfg, w, variant) => buildSiglipVisionGraph(cfg, w, { through: siglipThrough(variant) }),
  buildTextGraph: (cfg, w) => buildSiglipTextGraph(cfg, w),
  visionActivationBytes: (cfg, variant) => siglipVisionActivationBytes(cfg, siglipThrough(variant)),
  checkTokenLength(cfg, S) {
    const P = cfg.text.positions ?? cfg.text.contextLength;
    if (!(S >= 1 && S <= P)) throw new ShapeError(`token ids have length ${S}; this model's text tower takes 1..${P} (it pads to ${cfg.text.contextLength})`);
  },
  textFeeds: (tokens, T, S) => ({ tokens: new ort.Tensor('int32', tokens, [T, S]) }),
  fingerprintTensors: () => ['vision_model.head.probe', 'vision_model.head.attention.in_proj_bias', 'vision_model.post_layernorm.weight', 'vision_model.encoder.layers.0.self_attn.q_proj.bias'],
  logitParams: (w) => ({ scale: Math.exp(scalar(w, 'logit_scale', Math.log(10))), bias: scalar(w, 'logit_bias', -10) }),
};

export function familyOf(cfg: ClipConfig): ModelFamily {
  return cfg.family === 'siglip' ? SIGLIP_FAMILY : CLIP_FAMILY;
}
