// Model configuration as data (open_clip's JSON layout), validated into one typed form.

import { ConfigError } from '../errors.ts';

export type Activation = 'gelu' | 'quick_gelu' | 'gelu_tanh';

/** Which network the config describes (see src/model/family.ts). */
export type FamilyId = 'clip' | 'siglip';

/** PIL resampling filters (resample.ts implements all of them exactly). */
export type Interpolation = 'nearest' | 'box' | 'bilinear' | 'hamming' | 'bicubic' | 'lanczos';

export interface VisionConfig {
  imageSize: number;
  patchSize: number;
  width: number; // D
  layers: number; // L
  heads: number; // H = D / head_width
  mlpRatio: number;
  lnEps: number;
  /** 'cls': CLS token read out through ln_post + proj (CLIP); 'map': no CLS token, attention-pooling head (SigLIP). Default 'cls'. */
  pool?: 'cls' | 'map';
}

export interface TextConfig {
  /** Token ids per text the tokenizer produces (CLIP: the positions; SigLIP: the padded length). */
  contextLength: number;
  /** Position embeddings, when more than contextLength (SigLIP's text tower accepts any length up to it). */
  positions?: number;
  vocabSize: number;
  width: number;
  heads: number;
  layers: number;
  mlpRatio: number;
  lnEps: number;
  /** Activation of the text tower when it differs from the vision tower's (open_clip SigLIP). */
  activation?: Activation;
}

export interface PreprocessConfig {
  mean: [number, number, number];
  std: [number, number, number];
  /** 'shortest': shorter side resized to imageSize, then centre-cropped; 'squash': resized to imageSize² (aspect not kept). */
  resizeMode: 'shortest' | 'squash';
  interpolation: Interpolation;
  /**
   * 'open_clip' (default): resize in the image's own mode, convert('RGB'), u/255 and normalise in float32 (torchvision).
   * 'hf': convert('RGB') first, resize, rescale u·rescaleFactor in float64 then float32, normalise in float32 (transformers' slow image processors).
   */
  pipeline?: 'open_clip' | 'hf';
  /** transformers' rescale_factor (pipeline 'hf'; default 1/255). */
  rescaleFactor?: number;
}

export interface ClipConfig {
  /** Default 'clip'. */
  family?: FamilyId;
  embedDim: number; // d, output of the projection
  activation: Activation;
  vision: VisionConfig;
  text: TextConfig;
  preprocess: PreprocessConfig;
}

export const OPENAI_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

type Json = Record<string, unknown>;

function posInt(obj: Json, key: string, where: string, dflt?: number): number {
  const v = obj[key] ?? dflt;
  if (v === undefined) throw new ConfigError(`${where}.${key} is missing`);
  if (!Number.isSafeInteger(v) || (v as number) <= 0) throw new ConfigError(`${where}.${key} must be a positive integer, got ${JSON.stringify(v)}`);
  return v as number;
}

function posNum(obj: Json, key: string, where: string, dflt: number): number {
  const v = obj[key] ?? dflt;
  if (typeof v !== 'number' || !(v > 0)) throw new ConfigError(`${where}.${key} must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

/** Fields that would change the architecture into something this project does not build. */
function refuse(obj: Json, where: string, key: string, allowed: unknown[]): void {
  if (!(key in obj)) return;
  if (!allowed.some((a) => JSON.stringify(a) === JSON.stringify(obj[key]))) {
    throw new ConfigError(`${where}.${key} = ${JSON.stringify(obj[key])} is not supported (supported: ${allowed.map((a) => JSON.stringify(a)).join(', ')})`);
  }
}

const KNOWN_TOP = new Set(['embed_dim', 'quick_gelu', 'vision_cfg', 'text_cfg', 'custom_text', 'init_logit_scale', 'cast_dtype']);
const KNOWN_VISION = new Set([
  'image_size', 'layers', 'width', 'head_width', 'patch_size', 'mlp_ratio', 'ls_init_value', 'patch_dropout',
  'attentional_pool', 'no_ln_pre', 'pool_type', 'final_ln_after_pool', 'output_tokens', 'timm_model_name',
  'act_kwargs', 'norm_kwargs', 'pos_embed_type', 'global_average_pool', 'output_dim', 'attn_pooler_heads', 'embed_cls',
]);
const KNOWN_TEXT = new Set([
  'context_length', 'vocab_size', 'width', 'heads', 'layers', 'mlp_ratio', 'ls_init_value', 'hf_model_name',
  'hf_tokenizer_name', 'proj_bias', 'pool_type', 'embed_cls', 'no_causal_mask', 'pad_id', 'output_tokens',
  'final_ln_after_pool', 'norm_kwargs', 'act_kwargs', 'proj', 'hf_proj_type', 'hf_pooler_type', 'tokenizer_kwargs',
]);

function checkKeys(obj: Json, known: Set<string>, where: string): void {
  for (const k of Object.keys(obj)) {
    if (!known.has(k)) throw new ConfigError(`${where}.${k} is not a known open_clip config field`);
  }
}

/**
 * Parse an open_clip model config (e.g. ViT-B-16.json, or `model_cfg` of open_clip_config.json).
 * `preprocessCfg` is the optional `preprocess_cfg` block of a hub config.
 */
export function parseOpenClipConfig(raw: unknown, preprocessCfg?: unknown): ClipConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError('model config is not a JSON object');
  const top = raw as Json;
  checkKeys(top, KNOWN_TOP, 'config');
  const v = top.vision_cfg as Json | undefined;
  const t = top.text_cfg as Json | undefined;
  if (!v || typeof v !== 'object') throw new ConfigError('config.vision_cfg is missing');
  if (!t || typeof t !== 'object') throw new ConfigError('config.text_cfg is missing');
  checkKeys(v, KNOWN_VISION, 'vision_cfg');
  checkKeys(t, KNOWN_TEXT, 'text_cfg');
  if (top.quick_gelu !== undefined && typeof top.quick_gelu !== 'boolean') throw new ConfigError(`config.quick_gelu must be true or false, got ${JSON.stringify(top.quick_gelu)}`);

  refuse(v, 'vision_cfg', 'timm_model_name', [null]);
  refuse(v, 'vision_cfg', 'attentional_pool', [false]);
  refuse(v, 'vision_cfg', 'no_ln_pre', [false]);
  refuse(v, 'vision_cfg', 'pool_type', ['tok']);
  refuse(v, 'vision_cfg', 'global_average_pool', [false]);
  refuse(v, 'vision_cfg', 'final_ln_after_pool', [false]);
  refuse(v, 'vision_cfg', 'ls_init_value', [null]);
  refuse(v, 'vision_cfg', 'pos_embed_type', ['learnable']);
  refuse(v, 'vision_cfg', 'act_kwargs', [null, {}]);
  refuse(v, 'vision_cfg', 'norm_kwargs', [null, {}, { eps: 1e-5 }]);
  refuse(t, 'text_cfg', 'hf_model_name', [null]);
  refuse(t, 'text_cfg', 'pool_type', ['argmax']);
  refuse(t, 'text_cfg', 'embed_cls', [false]);
  refuse(t, 'text_cfg', 'no_causal_mask', [false]);
  refuse(t, 'text_cfg', 'proj_bias', [false]);
  refuse(t, 'text_cfg', 'ls_init_value', [null]);
  refuse(t, 'text_cfg', 'final_ln_after_pool', [false]);
  refuse(t, 'text_cfg', 'act_kwargs', [null, {}]);
  refuse(t, 'text_cfg', 'norm_kwargs', [null, {}, { eps: 1e-5 }]);

  let imageSize: number;
  if (Array.isArray(v.image_size)) {
    if (v.image_size.length !== 2 || v.image_size[0] !== v.image_size[1]) throw new ConfigError(`vision_cfg.image_size ${JSON.stringify(v.image_size)}: only square images are supported`);
    imageSize = posInt({ s: v.image_size[0] }, 's', 'vision_cfg.image_size');
  } else imageSize = posInt(v, 'image_size', 'vision_cfg');
  const patchSize = posInt(v, 'patch_size', 'vision_cfg');
  if (imageSize % patchSize !== 0) throw new ConfigError(`vision_cfg.image_size ${imageSize} is not a multiple of patch_size ${patchSize}`);
  const vWidth = posInt(v, 'width', 'vision_cfg');
  if (typeof v.layers !== 'number') throw new ConfigError(`vision_cfg.layers must be a positive integer, got ${JSON.stringify(v.layers)}`);
  const headWidth = posInt(v, 'head_width', 'vision_cfg', 64);
  if (vWidth % headWidth !== 0) throw new ConfigError(`vision_cfg.width ${vWidth} is not a multiple of head_width ${headWidth}`);
  const tWidth = posInt(t, 'width', 'text_cfg', 512);
  const tHeads = posInt(t, 'heads', 'text_cfg', 8);
  if (tWidth % tHeads !== 0) throw new ConfigError(`text_cfg.width ${tWidth} is not a multiple of heads ${tHeads}`);

  return {
    embedDim: posInt(top, 'embed_dim', 'config'),
    activation: top.quick_gelu ? 'quick_gelu' : 'gelu',
    vision: {
      imageSize,
      patchSize,
      width: vWidth,
      layers: posInt(v, 'layers', 'vision_cfg'),
      heads: vWidth / headWidth,
      mlpRatio: posNum(v, 'mlp_ratio', 'vision_cfg', 4),
      lnEps: 1e-5,
    },
    text: {
      contextLength: posInt(t, 'context_length', 'text_cfg', 77),
      vocabSize: posInt(t, 'vocab_size', 'text_cfg', 49408),
      width: tWidth,
      heads: tHeads,
      layers: posInt(t, 'layers', 'text_cfg', 12),
      mlpRatio: posNum(t, 'mlp_ratio', 'text_cfg', 4),
      lnEps: 1e-5,
    },
    preprocess: parsePreprocess(preprocessCfg),
  };
}

function triple(x: unknown, what: string): [number, number, number] {
  if (Array.isArray(x) && x.length === 3 && x.every((n) => typeof n === 'number' && Number.isFinite(n))) return x as [number, number, number];
  if (typeof x === 'number' && Number.isFinite(x)) return [x, x, x];
  throw new ConfigError(`preprocess ${what} must be three numbers, got ${JSON.stringify(x)}`);
}

export function parsePreprocess(raw: unknown): PreprocessConfig {
  const p = (raw ?? {}) as Json;
  if (typeof p !== 'object' || p === null) throw new ConfigError('preprocess_cfg is not an object');
  refuse(p, 'preprocess_cfg', 'interpolation', ['bicubic']);
  refuse(p, 'preprocess_cfg', 'resize_mode', ['shortest']);
  const std = p.std === undefined ? OPENAI_STD : triple(p.std, 'std');
  if (std.some((s) => s <= 0)) throw new ConfigError(`preprocess std must be positive, got ${JSON.stringify(std)}`);
  return {
    mean: p.mean === undefined ? OPENAI_MEAN : triple(p.mean, 'mean'),
    std,
    resizeMode: 'shortest',
    interpolation: 'bicubic',
  };
}

/** Derived sizes used everywhere: grid, tokens N (CLS first when there is one), head width d_h, MLP hidden width. */
export function visionDims(v: VisionConfig) {
  const grid = v.imageSize / v.patchSize;
  const cls = v.pool !== 'map';
  return { grid, tokens: (cls ? 1 : 0) + grid * grid, clsToken: cls, headWidth: v.width / v.heads, hidden: Math.round(v.width * v.mlpRatio) };
}
