// Rewrite an open_clip state dict into a transformers CLIPModel directory, the way
// transformers' convert_clip_original_pytorch_to_hf.py does, written independently of
// src/model/hf_layout.ts so the test checks one against the other.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeSafetensors } from '../../src/io/safetensors.ts';
import type { Tensor } from '../../src/tensor.ts';

type OpenClipCfg = {
  embed_dim: number;
  quick_gelu?: boolean;
  vision_cfg: { image_size: number; layers: number; width: number; head_width?: number; patch_size: number; mlp_ratio?: number };
  text_cfg: { context_length?: number; vocab_size?: number; width?: number; heads?: number; layers?: number; mlp_ratio?: number };
};

function f32t(t: Tensor): Float32Array {
  if (t.dtype !== 'F32') throw new Error(`converter expects F32 tensors, got ${t.dtype}`);
  return t.data as Float32Array;
}

function rows(t: Tensor, from: number, to: number): Tensor {
  const cols = t.shape.length > 1 ? t.shape.slice(1).reduce((a, b) => a * b, 1) : 1;
  return { dtype: 'F32', shape: [to - from, ...t.shape.slice(1)], data: f32t(t).slice(from * cols, to * cols) };
}

function transposed(t: Tensor): Tensor {
  const [r, c] = t.shape;
  const src = f32t(t);
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = src[i * c + j];
  return { dtype: 'F32', shape: [c, r], data: out };
}

export interface HfWriteOptions {
  hiddenAct?: string;
  textHiddenAct?: string;
  layerNormEps?: number;
  preprocessor?: Record<string, unknown> | null;
  /** HF tensor names to leave out (missing-tensor tests). */
  drop?: string[];
  /** Store as float16. */
  half?: boolean;
}

export function openClipToHf(sd: Map<string, Tensor>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  const put = (k: string, t: Tensor | undefined) => {
    if (!t) throw new Error(`converter: source tensor for ${k} missing`);
    out.set(k, t);
  };
  const blocks = (src: string, dst: string) => {
    for (let l = 0; ; l++) {
      const p = `${src}${l}.`;
      const w = sd.get(`${p}attn.in_proj_weight`);
      if (!w) break;
      const b = sd.get(`${p}attn.in_proj_bias`)!;
      const D = w.shape[1];
      const q = `${dst}${l}.`;
      ['q', 'k', 'v'].forEach((n, i) => {
        put(`${q}self_attn.${n}_proj.weight`, rows(w, i * D, (i + 1) * D));
        put(`${q}self_attn.${n}_proj.bias`, rows(b, i * D, (i + 1) * D));
      });
      for (const x of ['weight', 'bias']) {
        put(`${q}self_attn.out_proj.${x}`, sd.get(`${p}attn.out_proj.${x}`));
        put(`${q}layer_norm1.${x}`, sd.get(`${p}ln_1.${x}`));
        put(`${q}layer_norm2.${x}`, sd.get(`${p}ln_2.${x}`));
        put(`${q}mlp.fc1.${x}`, sd.get(`${p}mlp.c_fc.${x}`));
        put(`${q}mlp.fc2.${x}`, sd.get(`${p}mlp.c_proj.${x}`));
      }
    }
  };
  put('vision_model.embeddings.class_embedding', sd.get('visual.class_embedding'));
  put('vision_model.embeddings.position_embedding.weight', sd.get('visual.positional_embedding'));
  put('vision_model.embeddings.patch_embedding.weight', sd.get('visual.conv1.weight'));
  for (const x of ['weight', 'bias']) {
    put(`vision_model.pre_layrnorm.${x}`, sd.get(`visual.ln_pre.${x}`));
    put(`vision_model.post_layernorm.${x}`, sd.get(`visual.ln_post.${x}`));
    put(`text_model.final_layer_norm.${x}`, sd.get(`ln_final.${x}`));
  }
  blocks('visual.transformer.resblocks.', 'vision_model.encoder.layers.');
  blocks('transformer.resblocks.', 'text_model.encoder.layers.');
  put('visual_projection.weight', transposed(sd.get('visual.proj')!));
  put('text_model.embeddings.token_embedding.weight', sd.get('token_embedding.weight'));
  put('text_model.embeddings.position_embedding.weight', sd.get('positional_embedding'));
  put('text_projection.weight', transposed(sd.get('text_projection')!));
  put('logit_scale', sd.get('logit_scale'));
  // Buffers real transformers checkpoints carry; the loader must ignore them.
  const ctx = sd.get('positional_embedding')!.shape[0];
  put('text_model.embeddings.position_ids', { dtype: 'I64', shape: [1, ctx], data: BigInt64Array.from({ length: ctx }, (_, i) => BigInt(i)) });
  return out;
}

export function hfConfigJson(cfg: OpenClipCfg, o: HfWriteOptions = {}): Record<string, unknown> {
  const v = cfg.vision_cfg;
  const t = cfg.text_cfg;
  const act = o.hiddenAct ?? (cfg.quick_gelu ? 'quick_gelu' : 'gelu');
  const tw = t.width ?? 512;
  return {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: cfg.embed_dim,
    logit_scale_init_value: 2.6592,
    torch_dtype: 'float32',
    vision_config: {
      model_type: 'clip_vision_model',
      hidden_size: v.width,
      intermediate_size: Math.round(v.width * (v.mlp_ratio ?? 4)),
      num_attention_heads: v.width / (v.head_width ?? 64),
      num_hidden_layers: v.layers,
      image_size: v.image_size,
      patch_size: v.patch_size,
      hidden_act: act,
      layer_norm_eps: o.layerNormEps ?? 1e-5,
      num_channels: 3,
      projection_dim: cfg.embed_dim,
    },
    text_config: {
      model_type: 'clip_text_model',
      hidden_size: tw,
      intermediate_size: Math.round(tw * (t.mlp_ratio ?? 4)),
      num_attention_heads: t.heads ?? 8,
      num_hidden_layers: t.layers ?? 12,
      max_position_embeddings: t.context_length ?? 77,
      vocab_size: t.vocab_size ?? 49408,
      hidden_act: o.textHiddenAct ?? act,
      layer_norm_eps: o.layerNormEps ?? 1e-5,
      projection_dim: cfg.embed_dim,
      bos_token_id: 49406,
      eos_token_id: 49407,
    },
  };
}

/** Write config.json, model.safetensors, placeholder vocab.json/merges.txt, preprocessor_config.json. */
export function writeHfClipDir(dir: string, sd: Map<string, Tensor>, cfg: OpenClipCfg, o: HfWriteOptions = {}): void {
  mkdirSync(dir, { recursive: true });
  const hf = openClipToHf(sd);
  for (const k of o.drop ?? []) hf.delete(k);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(hfConfigJson(cfg, o), null, 2));
  writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors(hf, { half: o.half, metadata: { format: 'pt' } }));
  // Tokenizer files are placeholders: tokenizer correctness is tested elsewhere.
  writeFileSync(join(dir, 'vocab.json'), JSON.stringify({ '<|startoftext|>': 49406, '<|endoftext|>': 49407 }));
  writeFileSync(join(dir, 'merges.txt'), '#version: 0.2\n');
  const pp = o.preprocessor === undefined
    ? { crop_size: { height: cfg.vision_cfg.image_size, width: cfg.vision_cfg.image_size }, do_center_crop: true, image_mean: [0.5, 0.5, 0.5], image_std: [0.25, 0.25, 0.25], resample: 3, size: { shortest_edge: cfg.vision_cfg.image_size } }
    : o.preprocessor;
  if (pp) writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify(pp));
}
