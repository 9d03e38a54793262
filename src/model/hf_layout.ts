// Hugging Face transformers CLIPModel layout (config.json + model.safetensors), presented
// under open_clip names so the rest of the project knows only one naming scheme.

import { isFloatDType, SafetensorsFile } from '../io/safetensors.ts';
import { concatBatch, f32, type DType, type F32 } from '../tensor.ts';
import { parsePreprocess, type Activation, type ClipConfig, type PreprocessConfig } from './config.ts';
import { type WeightSource } from './weights.ts';
import { ConfigError, WeightError } from '../errors.ts';

type Json = Record<string, unknown>;

// transformers' CLIPVisionConfig / CLIPTextConfig defaults: fields a saved config.json may omit.
const HF_VISION_DEFAULTS = {
  hidden_size: 768, intermediate_size: 3072, num_attention_heads: 12, num_hidden_layers: 12,
  image_size: 224, patch_size: 32, layer_norm_eps: 1e-5, hidden_act: 'quick_gelu', num_channels: 3,
};
const HF_TEXT_DEFAULTS = {
  hidden_size: 512, intermediate_size: 2048, num_attention_heads: 8, num_hidden_layers: 12,
  max_position_embeddings: 77, vocab_size: 49408, layer_norm_eps: 1e-5, hidden_act: 'quick_gelu',
};
const ACTIVATIONS: Record<string, Activation> = { quick_gelu: 'quick_gelu', gelu: 'gelu' };

function isObj(x: unknown): x is Json {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function int(obj: Json, dflt: Json, key: string, where: string): number {
  const v = obj[key] ?? dflt[key];
  if (!Number.isSafeInteger(v) || (v as number) <= 0) throw new ConfigError(`${where}.${key} must be a positive integer, got ${JSON.stringify(v)}`);
  return v as number;
}

function eps(obj: Json, dflt: Json, where: string): number {
  const v = obj.layer_norm_eps ?? dflt.layer_norm_eps;
  if (typeof v !== 'number' || !(v > 0) || !(v < 1)) throw new ConfigError(`${where}.layer_norm_eps must be a small positive number, got ${JSON.stringify(v)}`);
  return v;
}

function act(obj: Json, dflt: Json, where: string): Activation {
  const v = obj.hidden_act ?? dflt.hidden_act;
  const a = typeof v === 'string' ? ACTIVATIONS[v] : undefined;
  if (!a) throw new ConfigError(`${where}.hidden_act = ${JSON.stringify(v)} is not supported (supported: "quick_gelu", "gelu")`);
  return a;
}

/** The sub-config; transformers also accepts the older `*_config_dict` spelling. */
function sub(top: Json, key: 'vision_config' | 'text_config'): Json {
  const v = top[key] ?? top[`${key}_dict`] ?? {};
  if (!isObj(v)) throw new ConfigError(`config.json ${key} is not an object`);
  return v;
}

/** Tower width / heads / MLP ratio, checked so visionDims() gives back intermediate_size exactly. */
function tower(c: Json, d: Json, where: string) {
  const width = int(c, d, 'hidden_size', where);
  const heads = int(c, d, 'num_attention_heads', where);
  if (width % heads !== 0) throw new ConfigError(`${where}.hidden_size ${width} is not a multiple of num_attention_heads ${heads}`);
  const inter = int(c, d, 'intermediate_size', where);
  const mlpRatio = inter / width;
  if (Math.round(width * mlpRatio) !== inter) throw new ConfigError(`${where}.intermediate_size ${inter} cannot be expressed as a ratio of hidden_size ${width}`);
  return { width, heads, layers: int(c, d, 'num_hidden_layers', where), mlpRatio };
}

/**
 * Parse a transformers CLIPModel config.json (+ optional preprocessor_config.json) into ClipConfig.
 */
export function parseHfClipConfig(raw: unknown, preprocessorRaw?: unknown): ClipConfig {
  if (!isObj(raw)) throw new ConfigError('config.json is not a JSON object');
  if (raw.model_type !== undefined && raw.model_type !== 'clip') {
    throw new ConfigError(`config.json model_type = ${JSON.stringify(raw.model_type)} is not supported (supported: "clip")`);
  }
  const v = sub(raw, 'vision_config');
  const t = sub(raw, 'text_config');
  const vAct = act(v, HF_VISION_DEFAULTS, 'vision_config');
  const tAct = act(t, HF_TEXT_DEFAULTS, 'text_config');
  if (vAct !== tAct) throw new ConfigError(`config.json vision_config.hidden_act "${vAct}" differs from text_config.hidden_act "${tAct}"; one activation for both towers is supported`);
  const channels = v.num_channels ?? HF_VISION_DEFAULTS.num_channels;
  if (channels !== 3) throw new ConfigError(`vision_config.num_channels = ${JSON.stringify(channels)} is not supported (supported: 3)`);

  const imageSize = int(v, HF_VISION_DEFAULTS, 'image_size', 'vision_config');
  const patchSize = int(v, HF_VISION_DEFAULTS, 'patch_size', 'vision_config');
  if (imageSize % patchSize !== 0) throw new ConfigError(`vision_config.image_size ${imageSize} is not a multiple of patch_size ${patchSize}`);
  const pd = raw.projection_dim ?? 512;
  if (!Number.isSafeInteger(pd) || (pd as number) <= 0) throw new ConfigError(`config.json projection_dim must be a positive integer, got ${JSON.stringify(pd)}`);

  return {
    embedDim: pd as number,
    activation: vAct,
    vision: { imageSize, patchSize, ...tower(v, HF_VISION_DEFAULTS, 'vision_config'), lnEps: eps(v, HF_VISION_DEFAULTS, 'vision_config') },
    text: {
      contextLength: int(t, HF_TEXT_DEFAULTS, 'max_position_embeddings', 'text_config'),
      vocabSize: int(t, HF_TEXT_DEFAULTS, 'vocab_size', 'text_config'),
      ...tower(t, HF_TEXT_DEFAULTS, 'text_config'),
      lnEps: eps(t, HF_TEXT_DEFAULTS, 'text_config'),
    },
    preprocess: parseHfPreprocessor(preprocessorRaw, imageSize),
  };
}

// PIL resample codes as stored by transformers image processors.
const RESAMPLE: Record<number, string> = { 0: 'nearest', 1: 'lanczos', 2: 'bilinear', 3: 'bicubic', 4: 'box', 5: 'hamming' };

/** preprocessor_config.json → PreprocessConfig; absent → OpenAI mean/std, bicubic shortest-side resize. */
export function parseHfPreprocessor(raw: unknown, imageSize: number): PreprocessConfig {
  if (raw === undefined) return parsePreprocess(undefined);
  if (!isObj(raw)) throw new ConfigError('preprocessor_config.json is not a JSON object');
  const crop = raw.crop_size;
  const cropSize = isObj(crop) ? (crop.height !== crop.width ? NaN : crop.height) : crop;
  if (cropSize !== undefined && cropSize !== imageSize) {
    throw new ConfigError(`preprocessor_config.json crop_size ${JSON.stringify(crop)} differs from vision_config.image_size ${imageSize}`);
  }
  if (raw.do_center_crop === false) throw new ConfigError('preprocessor_config.json do_center_crop = false is not supported (shortest-side resize + centre crop only)');
  const p: Json = { mean: raw.image_mean, std: raw.image_std };
  if (raw.resample !== undefined) p.interpolation = typeof raw.resample === 'number' ? (RESAMPLE[raw.resample] ?? raw.resample) : raw.resample;
  try {
    return parsePreprocess(p);
  } catch (e) {
    throw new ConfigError(`preprocessor_config.json: ${(e as Error).message}`);
  }
}

/** One open_clip tensor described as HF tensors plus how to combine them. */
interface Mapping {
  kind: 'same' | 'transpose' | 'concat';
  sources: string[];
}

const LAYER = /^(visual\.)?transformer\.resblocks\.(\d+)\.(.+)$/;
const BLOCK: Record<string, Mapping> = {
  'ln_1.weight': { kind: 'same', sources: ['layer_norm1.weight'] },
  'ln_1.bias': { kind: 'same', sources: ['layer_norm1.bias'] },
  'ln_2.weight': { kind: 'same', sources: ['layer_norm2.weight'] },
  'ln_2.bias': { kind: 'same', sources: ['layer_norm2.bias'] },
  'attn.in_proj_weight': { kind: 'concat', sources: ['self_attn.q_proj.weight', 'self_attn.k_proj.weight', 'self_attn.v_proj.weight'] },
  'attn.in_proj_bias': { kind: 'concat', sources: ['self_attn.q_proj.bias', 'self_attn.k_proj.bias', 'self_attn.v_proj.bias'] },
  'attn.out_proj.weight': { kind: 'same', sources: ['self_attn.out_proj.weight'] },
  'attn.out_proj.bias': { kind: 'same', sources: ['self_attn.out_proj.bias'] },
  'mlp.c_fc.weight': { kind: 'same', sources: ['mlp.fc1.weight'] },
  'mlp.c_fc.bias': { kind: 'same', sources: ['mlp.fc1.bias'] },
  'mlp.c_proj.weight': { kind: 'same', sources: ['mlp.fc2.weight'] },
  'mlp.c_proj.bias': { kind: 'same', sources: ['mlp.fc2.bias'] },
};
const same = (s: string): Mapping => ({ kind: 'same', sources: [s] });
const FLAT: Record<string, Mapping> = {
  'visual.class_embedding': same('vision_model.embeddings.class_embedding'),
  'visual.positional_embedding': same('vision_model.embeddings.position_embedding.weight'),
  'visual.conv1.weight': same('vision_model.embeddings.patch_embedding.weight'),
  'visual.ln_pre.weight': same('vision_model.pre_layrnorm.weight'), // sic: transformers' spelling
  'visual.ln_pre.bias': same('vision_model.pre_layrnorm.bias'),
  'visual.ln_post.weight': same('vision_model.post_layernorm.weight'),
  'visual.ln_post.bias': same('vision_model.post_layernorm.bias'),
  'visual.proj': { kind: 'transpose', sources: ['visual_projection.weight'] },
  'token_embedding.weight': same('text_model.embeddings.token_embedding.weight'),
  'positional_embedding': same('text_model.embeddings.position_embedding.weight'),
  'ln_final.weight': same('text_model.final_layer_norm.weight'),
  'ln_final.bias': same('text_model.final_layer_norm.bias'),
  'text_projection': { kind: 'transpose', sources: ['text_projection.weight'] },
  'logit_scale': same('logit_scale'),
};

/** HF tensor names that make up an open_clip tensor, or undefined for a name with no HF counterpart. */
export function hfMapping(name: string): Mapping | undefined {
  const flat = FLAT[name];
  if (flat) return flat;
  const m = LAYER.exec(name);
  if (!m) return undefined;
  const b = BLOCK[m[3]];
  if (!b) return undefined;
  const prefix = `${m[1] ? 'vision_model' : 'text_model'}.encoder.layers.${m[2]}.`;
  return { kind: b.kind, sources: b.sources.map((s) => prefix + s) };
}

function transpose2d(t: F32, origin: string, name: string): F32 {
  if (t.shape.length !== 2) throw new WeightError(`${origin}: tensor '${name}' should be 2-D to transpose, has shape [${t.shape}]`);
  const [r, c] = t.shape;
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = t.data[i * c + j];
  return f32([c, r], out);
}

/** transformers CLIPModel safetensors, read under open_clip state-dict names. */
export class HfClipWeights implements WeightSource {
  readonly origin: string;
  constructor(private file: SafetensorsFile) {
    this.origin = file.path;
  }
  static open(path: string): HfClipWeights {
    return new HfClipWeights(SafetensorsFile.open(path));
  }

  private mapping(name: string): Mapping {
    const m = hfMapping(name);
    if (!m) throw new WeightError(`${this.origin}: no Hugging Face CLIP tensor corresponds to open_clip tensor '${name}'`);
    return m;
  }

  private missing(name: string, m: Mapping): string | undefined {
    return m.sources.find((s) => !this.file.has(s));
  }

  has(name: string): boolean {
    const m = hfMapping(name);
    return m !== undefined && this.missing(name, m) === undefined;
  }

  /** Shape the open_clip tensor will have, without reading data; undefined when absent or inconsistent. */
  shapeOf(name: string): number[] | undefined {
    const m = hfMapping(name);
    if (!m || this.missing(name, m) !== undefined) return undefined;
    const shapes = m.sources.map((s) => this.file.tensors.get(s)!.shape);
    if (m.kind === 'same') return [...shapes[0]];
    if (m.kind === 'transpose') return shapes[0].length === 2 ? [shapes[0][1], shapes[0][0]] : undefined;
    const rest = JSON.stringify(shapes[0].slice(1));
    if (shapes[0].length === 0 || shapes.some((s) => JSON.stringify(s.slice(1)) !== rest)) return undefined;
    return [shapes.reduce((a, s) => a + s[0], 0), ...shapes[0].slice(1)];
  }

  /** The dtype of the open_clip tensor's first source that is not a float, else of its first source. */
  dtypeOf(name: string): DType | undefined {
    const m = hfMapping(name);
    if (!m || this.missing(name, m) !== undefined) return undefined;
    const dts = m.sources.map((s) => this.file.tensors.get(s)!.dtype);
    return dts.find((d) => !isFloatDType(d)) ?? dts[0];
  }

  get(name: string): F32 {
    const m = this.mapping(name);
    const gone = this.missing(name, m);
    if (gone) throw new WeightError(`${this.origin}: missing tensor '${gone}' (Hugging Face name for open_clip '${name}')`);
    const parts = m.sources.map((s) => this.file.readF32(s));
    if (m.kind === 'same') return parts[0];
    if (m.kind === 'transpose') return transpose2d(parts[0], this.origin, m.sources[0]);
    // q, k, v stacked along dim 0, as open_clip's in_proj packs them.
    const tail = parts[0].shape.slice(1);
    for (let i = 0; i < parts.length; i++) {
      if (parts[i].shape.length === 0 || JSON.stringify(parts[i].shape.slice(1)) !== JSON.stringify(tail)) {
        throw new WeightError(`${this.origin}: cannot stack '${m.sources.join("', '")}' into '${name}': shapes ${parts.map((p) => `[${p.shape}]`).join(', ')}`);
      }
    }
    return concatBatch(parts);
  }

  close(): void {
    this.file.close();
  }
}
