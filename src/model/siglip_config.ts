// SigLIP configurations, in the two layouts people download, parsed into the one ClipConfig
// (family 'siglip'): transformers' SiglipModel (config.json model_type "siglip", fields omitted
// from config.json defaulted as SiglipVisionConfig / SiglipTextConfig do) and open_clip's
// timm-tower SigLIP (open_clip_config.json with vision_cfg.timm_model_name vit_*_siglip_*).

import { ConfigError } from '../errors.ts';
import type { Activation, ClipConfig, Interpolation, PreprocessConfig } from './config.ts';

type Json = Record<string, unknown>;

// transformers' SiglipVisionConfig / SiglipTextConfig class defaults.
export const SIGLIP_VISION_DEFAULTS = {
  hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12, num_channels: 3,
  image_size: 224, patch_size: 16, hidden_act: 'gelu_pytorch_tanh', layer_norm_eps: 1e-6,
};
export const SIGLIP_TEXT_DEFAULTS = {
  vocab_size: 32000, hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12,
  max_position_embeddings: 64, hidden_act: 'gelu_pytorch_tanh', layer_norm_eps: 1e-6,
};
/** SiglipTokenizer's model_max_length when tokenizer_config.json does not say. */
export const SIGLIP_DEFAULT_MAX_LENGTH = 64;

// transformers' ACT2FN names for the activations the graphs build.
const HF_ACTIVATIONS: Record<string, Activation> = {
  gelu_pytorch_tanh: 'gelu_tanh', gelu_new: 'gelu_tanh', gelu_fast: 'gelu_tanh', gelu: 'gelu', quick_gelu: 'quick_gelu',
};
// PIL resample codes as transformers image processors store them.
const PIL_RESAMPLE: Record<number, Interpolation> = { 0: 'nearest', 1: 'lanczos', 2: 'bilinear', 3: 'bicubic', 4: 'box', 5: 'hamming' };

const isObj = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x);

function int(obj: Json, dflt: Json, key: string, where: string): number {
  const v = obj[key] ?? dflt[key];
  if (!Number.isSafeInteger(v) || (v as number) <= 0) throw new ConfigError(`${where}.${key} must be a positive integer, got ${JSON.stringify(v)}`);
  return v as number;
}

function eps(obj: Json, dflt: Json, where: string, key = 'layer_norm_eps'): number {
  const v = obj[key] ?? dflt[key];
  if (typeof v !== 'number' || !(v > 0) || !(v < 1)) throw new ConfigError(`${where}.${key} must be a small positive number, got ${JSON.stringify(v)}`);
  return v;
}

function hfAct(obj: Json, dflt: Json, where: string): Activation {
  const v = obj.hidden_act ?? dflt.hidden_act;
  const a = typeof v === 'string' ? HF_ACTIVATIONS[v] : undefined;
  if (!a) throw new ConfigError(`${where}.hidden_act = ${JSON.stringify(v)} is not supported (supported: ${Object.keys(HF_ACTIVATIONS).map((k) => JSON.stringify(k)).join(', ')})`);
  return a;
}

/** Width, heads and MLP ratio, checked so round(width·ratio) gives intermediate_size back exactly. */
function tower(c: Json, d: Json, where: string) {
  const width = int(c, d, 'hidden_size', where);
  const heads = int(c, d, 'num_attention_heads', where);
  if (width % heads !== 0) throw new ConfigError(`${where}.hidden_size ${width} is not a multiple of num_attention_heads ${heads}`);
  const inter = int(c, d, 'intermediate_size', where);
  return { width, heads, layers: int(c, d, 'num_hidden_layers', where), mlpRatio: inter / width };
}

function square(imageSize: number, patchSize: number, where: string): void {
  if (imageSize % patchSize !== 0) throw new ConfigError(`${where}.image_size ${imageSize} is not a multiple of patch_size ${patchSize}`);
}

/**
 * transformers SiglipModel config.json (+ preprocessor_config.json, tokenizer_config.json) → ClipConfig.
 * d = vision hidden_size (SigLIP has no image projection); the text head must map to the same d.
 */
export function parseHfSiglipConfig(raw: unknown, preprocessorRaw?: unknown, tokenizerRaw?: unknown): ClipConfig {
  if (!isObj(raw)) throw new ConfigError('config.json is not a JSON object');
  if (raw.model_type !== 'siglip') throw new ConfigError(`config.json model_type = ${JSON.stringify(raw.model_type)} is not "siglip"`);
  const sub = (key: 'vision_config' | 'text_config'): Json => {
    const v = raw[key] ?? {};
    if (!isObj(v)) throw new ConfigError(`config.json ${key} is not an object`);
    return v;
  };
  const v = sub('vision_config');
  const t = sub('text_config');
  if (v.vision_use_head === false) throw new ConfigError('vision_config.vision_use_head = false: a SigLIP without its attention-pooling head has no image embedding to decompose');
  const channels = v.num_channels ?? SIGLIP_VISION_DEFAULTS.num_channels;
  if (channels !== 3) throw new ConfigError(`vision_config.num_channels = ${JSON.stringify(channels)} is not supported (supported: 3)`);
  const imageSize = int(v, SIGLIP_VISION_DEFAULTS, 'image_size', 'vision_config');
  const patchSize = int(v, SIGLIP_VISION_DEFAULTS, 'patch_size', 'vision_config');
  square(imageSize, patchSize, 'vision_config');
  const vt = tower(v, SIGLIP_VISION_DEFAULTS, 'vision_config');
  const tt = tower(t, SIGLIP_TEXT_DEFAULTS, 'text_config');
  const proj = t.projection_size ?? tt.width;
  if (proj !== vt.width) throw new ConfigError(`text_config.projection_size ${JSON.stringify(proj)} differs from vision_config.hidden_size ${vt.width}: image and text embeddings must have one size`);
  const positions = int(t, SIGLIP_TEXT_DEFAULTS, 'max_position_embeddings', 'text_config');
  return {
    family: 'siglip',
    embedDim: vt.width,
    activation: hfAct(v, SIGLIP_VISION_DEFAULTS, 'vision_config'),
    vision: { imageSize, patchSize, ...vt, lnEps: eps(v, SIGLIP_VISION_DEFAULTS, 'vision_config'), pool: 'map' },
    text: {
      contextLength: Math.min(positions, tokenizerMaxLength(tokenizerRaw)),
      positions,
      vocabSize: int(t, SIGLIP_TEXT_DEFAULTS, 'vocab_size', 'text_config'),
      ...tt,
      lnEps: eps(t, SIGLIP_TEXT_DEFAULTS, 'text_config'),
      activation: hfAct(t, SIGLIP_TEXT_DEFAULTS, 'text_config'),
    },
    preprocess: parseSiglipPreprocessor(preprocessorRaw, imageSize),
  };
}

/** The padding length SiglipTokenizer uses: tokenizer_config.json model_max_length, else 64. */
export function tokenizerMaxLength(tokenizerRaw: unknown): number {
  if (tokenizerRaw === undefined) return SIGLIP_DEFAULT_MAX_LENGTH;
  if (!isObj(tokenizerRaw)) throw new ConfigError('tokenizer_config.json is not a JSON object');
  const m = tokenizerRaw.model_max_length;
  if (m === undefined || m === null) return SIGLIP_DEFAULT_MAX_LENGTH;
  if (!Number.isSafeInteger(m) || (m as number) <= 0) {
    // transformers writes a huge sentinel (1e30) when no length is set: the config's positions decide then.
    if (typeof m === 'number' && m > 1e6) return Number.MAX_SAFE_INTEGER;
    throw new ConfigError(`tokenizer_config.json model_max_length must be a positive integer, got ${JSON.stringify(m)}`);
  }
  return m as number;
}

function triple(x: unknown, what: string, dflt: number): [number, number, number] {
  if (x === undefined) return [dflt, dflt, dflt];
  if (typeof x === 'number' && Number.isFinite(x)) return [x, x, x];
  if (Array.isArray(x) && x.length === 3 && x.every((n) => typeof n === 'number' && Number.isFinite(n))) return x as [number, number, number];
  throw new ConfigError(`preprocessor_config.json ${what} must be three numbers, got ${JSON.stringify(x)}`);
}

/**
 * SiglipImageProcessor settings (the slow, PIL path that preprocessor_config.json names): resize to
 * size.height × size.width with `resample`, rescale, normalise; no crop. Absent → its defaults.
 */
export function parseSiglipPreprocessor(raw: unknown, imageSize: number): PreprocessConfig {
  const p = raw ?? {};
  if (!isObj(p)) throw new ConfigError('preprocessor_config.json is not a JSON object');
  for (const flag of ['do_resize', 'do_rescale', 'do_normalize'] as const) {
    if (p[flag] === false) throw new ConfigError(`preprocessor_config.json ${flag} = false is not supported (the model expects resized, rescaled, normalised pixels)`);
  }
  if (p.do_center_crop === true) throw new ConfigError('preprocessor_config.json do_center_crop = true is not supported for SigLIP (SiglipImageProcessor resizes to the full size)');
  const size = p.size;
  if (size !== undefined) {
    const ok = isObj(size) ? size.height === imageSize && size.width === imageSize : size === imageSize;
    if (!ok) throw new ConfigError(`preprocessor_config.json size ${JSON.stringify(size)} differs from vision_config.image_size ${imageSize}`);
  }
  const resample = p.resample ?? 3;
  const interpolation = typeof resample === 'number' ? PIL_RESAMPLE[resample] : undefined;
  if (!interpolation) throw new ConfigError(`preprocessor_config.json resample = ${JSON.stringify(resample)} is not a PIL resampling filter (0-5)`);
  const rescale = p.rescale_factor ?? 1 / 255;
  if (typeof rescale !== 'number' || !(rescale > 0)) throw new ConfigError(`preprocessor_config.json rescale_factor must be a positive number, got ${JSON.stringify(rescale)}`);
  const std = triple(p.image_std, 'image_std', 0.5);
  if (std.some((s) => !(s > 0))) throw new ConfigError(`preprocessor_config.json image_std must be positive, got ${JSON.stringify(std)}`);
  return { mean: triple(p.image_mean, 'image_mean', 0.5), std, resizeMode: 'squash', interpolation, pipeline: 'hf', rescaleFactor: rescale };
}

// ---------------------------------------------------------------------------------------------
// open_clip + timm

interface TimmArch {
  patch: number;
  width: number;
  depth: number;
  heads: number;
  mlpRatio: number;
  act: Activation;
}

// timm's vision_transformer.py model_args of its attention-pooled SigLIP towers (global_pool='map').
// SigLIP-1 towers keep timm's default nn.GELU (erf); the later ones set act_layer='gelu_tanh'.
const TIMM_SIGLIP: Record<string, TimmArch> = {};
const arch = (patch: number, width: number, depth: number, heads: number, mlpRatio: number, act: Activation): TimmArch => ({ patch, width, depth, heads, mlpRatio, act });
for (const [names, a] of [
  [['vit_base_patch32_siglip_256'], arch(32, 768, 12, 12, 4, 'gelu_tanh')],
  [['vit_base_patch16_siglip_224', 'vit_base_patch16_siglip_256', 'vit_base_patch16_siglip_384', 'vit_base_patch16_siglip_512'], arch(16, 768, 12, 12, 4, 'gelu')],
  [['vit_large_patch16_siglip_256', 'vit_large_patch16_siglip_384'], arch(16, 1024, 24, 16, 4, 'gelu')],
  [['vit_large_patch16_siglip_512'], arch(16, 1024, 24, 16, 4, 'gelu_tanh')],
  [['vit_so400m_patch14_siglip_224', 'vit_so400m_patch14_siglip_384'], arch(14, 1152, 27, 16, 3.7362, 'gelu')],
  [['vit_so400m_patch16_siglip_256', 'vit_so400m_patch16_siglip_384', 'vit_so400m_patch16_siglip_512'], arch(16, 1152, 27, 16, 3.7362, 'gelu_tanh')],
  [['vit_giantopt_patch16_siglip_256', 'vit_giantopt_patch16_siglip_384'], arch(16, 1536, 40, 16, 4, 'gelu_tanh')],
] as [string[], TimmArch][]) for (const n of names) TIMM_SIGLIP[n] = a;

// timm.layers.get_act_layer names for the activations the graphs build.
const TIMM_ACTIVATIONS: Record<string, Activation> = { gelu_tanh: 'gelu_tanh', gelu: 'gelu', quick_gelu: 'quick_gelu' };

/** An open_clip model_cfg whose vision tower is one of timm's SigLIP towers. */
export function isOpenClipSiglip(modelCfg: unknown): boolean {
  if (!isObj(modelCfg) || !isObj(modelCfg.vision_cfg)) return false;
  const name = modelCfg.vision_cfg.timm_model_name;
  return typeof name === 'string' && /_siglip/.test(name);
}

const KNOWN_TOP = new Set(['embed_dim', 'init_logit_bias', 'init_logit_scale', 'custom_text', 'quick_gelu', 'vision_cfg', 'text_cfg', 'cast_dtype']);
const KNOWN_VISION = new Set(['image_size', 'timm_model_name', 'timm_model_pretrained', 'timm_pool', 'timm_proj', 'timm_proj_bias', 'timm_drop', 'timm_drop_path', 'timm_model_kwargs', 'patch_dropout']);
const KNOWN_TEXT = new Set([
  'context_length', 'vocab_size', 'hf_tokenizer_name', 'tokenizer_kwargs', 'width', 'heads', 'layers', 'mlp_ratio', 'no_causal_mask',
  'proj_bias', 'pool_type', 'norm_kwargs', 'act_kwargs', 'ls_init_value', 'embed_cls', 'pad_id', 'output_tokens',
]);

function known(obj: Json, set: Set<string>, where: string): void {
  for (const k of Object.keys(obj)) if (!set.has(k)) throw new ConfigError(`${where}.${k} is not a known open_clip SigLIP config field`);
}

function requireValue(obj: Json, key: string, allowed: unknown[], where: string): void {
  if (!allowed.some((a) => JSON.stringify(a) === JSON.stringify(obj[key]))) {
    throw new ConfigError(`${where}.${key} = ${JSON.stringify(obj[key])} is not supported for SigLIP (supported: ${allowed.map((a) => JSON.stringify(a) ?? 'absent').join(', ')})`);
  }
}

/**
 * open_clip's timm-tower SigLIP (e.g. hf-hub:timm/ViT-B-16-SigLIP): the vision tower is timm's
 * `timm_model_name` (architecture from timm's table, overridable by timm_model_kwargs as
 * timm.create_model does), the text tower open_clip's bidirectional TextTransformer pooled at
 * the last token with a biased projection.
 */
export function parseOpenClipSiglipConfig(raw: unknown, preprocessCfg?: unknown): ClipConfig {
  if (!isObj(raw)) throw new ConfigError('model config is not a JSON object');
  known(raw, KNOWN_TOP, 'config');
  const v = raw.vision_cfg;
  const t = raw.text_cfg;
  if (!isObj(v) || !isObj(t)) throw new ConfigError('config needs vision_cfg and text_cfg objects');
  known(v, KNOWN_VISION, 'vision_cfg');
  known(t, KNOWN_TEXT, 'text_cfg');
  if (raw.quick_gelu === true) throw new ConfigError('config.quick_gelu = true is not supported for SigLIP');
  const name = String(v.timm_model_name);
  const base = TIMM_SIGLIP[name];
  if (!base) {
    throw new ConfigError(`vision_cfg.timm_model_name '${name}' is not one of timm's attention-pooled SigLIP towers (${Object.keys(TIMM_SIGLIP).join(', ')})`);
  }
  requireValue(v, 'timm_pool', ['map', undefined], 'vision_cfg');
  requireValue(v, 'timm_proj', ['none'], 'vision_cfg');
  requireValue(t, 'no_causal_mask', [true], 'text_cfg');
  requireValue(t, 'pool_type', ['last'], 'text_cfg');
  requireValue(t, 'proj_bias', [true], 'text_cfg');
  requireValue(t, 'ls_init_value', [null, undefined], 'text_cfg');
  requireValue(t, 'embed_cls', [false, undefined], 'text_cfg');

  const kw = v.timm_model_kwargs ?? {};
  if (!isObj(kw)) throw new ConfigError('vision_cfg.timm_model_kwargs is not an object');
  const KW: Record<string, keyof TimmArch | 'img_size'> = { patch_size: 'patch', embed_dim: 'width', depth: 'depth', num_heads: 'heads', mlp_ratio: 'mlpRatio', act_layer: 'act', img_size: 'img_size' };
  for (const k of Object.keys(kw)) if (!(k in KW)) throw new ConfigError(`vision_cfg.timm_model_kwargs.${k} is not supported (supported: ${Object.keys(KW).join(', ')})`);
  const pos = (x: unknown, what: string) => {
    if (!Number.isSafeInteger(x) || (x as number) <= 0) throw new ConfigError(`${what} must be a positive integer, got ${JSON.stringify(x)}`);
    return x as number;
  };
  const a: TimmArch = { ...base };
  if (kw.patch_size !== undefined) a.patch = pos(kw.patch_size, 'timm_model_kwargs.patch_size');
  if (kw.embed_dim !== undefined) a.width = pos(kw.embed_dim, 'timm_model_kwargs.embed_dim');
  if (kw.depth !== undefined) a.depth = pos(kw.depth, 'timm_model_kwargs.depth');
  if (kw.num_heads !== undefined) a.heads = pos(kw.num_heads, 'timm_model_kwargs.num_heads');
  if (kw.mlp_ratio !== undefined) {
    if (typeof kw.mlp_ratio !== 'number' || !(kw.mlp_ratio > 0)) throw new ConfigError(`timm_model_kwargs.mlp_ratio must be a positive number, got ${JSON.stringify(kw.mlp_ratio)}`);
    a.mlpRatio = kw.mlp_ratio;
  }
  if (kw.act_layer !== undefined) {
    const act = typeof kw.act_layer === 'string' ? TIMM_ACTIVATIONS[kw.act_layer] : undefined;
    if (!act) throw new ConfigError(`timm_model_kwargs.act_layer = ${JSON.stringify(kw.act_layer)} is not supported (supported: ${Object.keys(TIMM_ACTIVATIONS).join(', ')})`);
    a.act = act;
  }
  if (a.width % a.heads !== 0) throw new ConfigError(`vision width ${a.width} is not a multiple of its ${a.heads} heads`);
  const imageSize = pos(kw.img_size ?? v.image_size ?? Number(/_(\d+)$/.exec(name)?.[1]), 'vision_cfg.image_size');
  square(imageSize, a.patch, 'vision_cfg');
  const embedDim = pos(raw.embed_dim, 'config.embed_dim');
  if (embedDim !== a.width) throw new ConfigError(`config.embed_dim ${embedDim} differs from the timm tower's width ${a.width} (timm_proj 'none' keeps the tower's width)`);

  const tw = pos(t.width ?? 512, 'text_cfg.width');
  const th = pos(t.heads ?? 8, 'text_cfg.heads');
  if (tw % th !== 0) throw new ConfigError(`text_cfg.width ${tw} is not a multiple of heads ${th}`);
  const norm = t.norm_kwargs ?? {};
  if (!isObj(norm) || Object.keys(norm).some((k) => k !== 'eps')) throw new ConfigError(`text_cfg.norm_kwargs ${JSON.stringify(norm)}: only {eps} is supported`);
  const actKw = t.act_kwargs ?? {};
  if (!isObj(actKw) || Object.keys(actKw).some((k) => k !== 'approximate') || ![undefined, 'none', 'tanh'].includes(actKw.approximate as string)) {
    throw new ConfigError(`text_cfg.act_kwargs ${JSON.stringify(actKw)}: only {approximate: 'none'|'tanh'} (torch GELU) is supported`);
  }
  const ctx = pos(t.context_length ?? 77, 'text_cfg.context_length');
  const mlpRatio = t.mlp_ratio ?? 4;
  if (typeof mlpRatio !== 'number' || !(mlpRatio > 0)) throw new ConfigError(`text_cfg.mlp_ratio must be a positive number, got ${JSON.stringify(mlpRatio)}`);
  return {
    family: 'siglip',
    embedDim,
    activation: a.act,
    vision: { imageSize, patchSize: a.patch, width: a.width, layers: a.depth, heads: a.heads, mlpRatio: a.mlpRatio, lnEps: 1e-6, pool: 'map' },
    text: {
      contextLength: ctx,
      positions: ctx,
      vocabSize: pos(t.vocab_size ?? 49408, 'text_cfg.vocab_size'),
      width: tw,
      heads: th,
      layers: pos(t.layers ?? 12, 'text_cfg.layers'),
      mlpRatio,
      lnEps: eps(norm, { eps: 1e-5 }, 'text_cfg.norm_kwargs', 'eps'),
      activation: actKw.approximate === 'tanh' ? 'gelu_tanh' : 'gelu',
    },
    preprocess: parseOpenClipSiglipPreprocess(preprocessCfg),
  };
}

/** open_clip preprocess_cfg of a SigLIP: squash resize (torchvision on PIL), mean/std 0.5 by default. */
function parseOpenClipSiglipPreprocess(raw: unknown): PreprocessConfig {
  const p = raw ?? {};
  if (!isObj(p)) throw new ConfigError('preprocess_cfg is not an object');
  const interp = p.interpolation ?? 'bicubic';
  const allowed: Interpolation[] = ['bicubic', 'bilinear'];
  if (!allowed.includes(interp as Interpolation)) throw new ConfigError(`preprocess_cfg.interpolation = ${JSON.stringify(interp)} is not supported (supported: "bicubic", "bilinear")`);
  if ((p.resize_mode ?? 'squash') !== 'squash') throw new ConfigError(`preprocess_cfg.resize_mode = ${JSON.stringify(p.resize_mode)} is not supported for SigLIP (supported: "squash")`);
  const std = triple(p.std, 'std', 0.5);
  if (std.some((s) => !(s > 0))) throw new ConfigError(`preprocess_cfg std must be positive, got ${JSON.stringify(std)}`);
  return { mean: triple(p.mean, 'mean', 0.5), std, resizeMode: 'squash', interpolation: interp as Interpolation, pipeline: 'open_clip' };
}
