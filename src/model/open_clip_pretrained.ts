// open_clip's names: an architecture (ViT-B-16, ViT-L-14, …) and a pretrained tag
// (laion2b_s34b_b88k, openai, …) resolve, as open_clip's pretrained.py resolves them, to the hub
// repository holding the weights in open_clip layout, the activation the weights were trained
// with (QuickGELU for OpenAI's and some LAION-400M checkpoints) and the normalisation of their
// preprocessing. The architecture's numbers are open_clip's model configs (model_configs/*.json).
//
// As in open_clip, `<arch>-quickgelu` names the same architecture with QuickGELU and takes only the
// tags trained with it, and tags are compared lower-case with '-' read as '_'.

import { ModelNotFoundError } from '../errors.ts';

const INCEPTION_NORM = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };

interface PretrainedTag {
  /** Hub repository with open_clip_model.safetensors. */
  hub: string;
  /** Trained with QuickGELU (open_clip's quick_gelu=True for the tag). */
  quickGelu?: boolean;
  /** Absent: open_clip's default, OpenAI's dataset mean and std. */
  norm?: { mean: number[]; std: number[] };
}

interface Architecture {
  /** open_clip model config (model_configs/<name>.json). */
  config: Record<string, unknown>;
  tags: Record<string, PretrainedTag>;
}

const TEXT_B = { context_length: 77, vocab_size: 49408, width: 512, heads: 8, layers: 12 };
const TEXT_L = { context_length: 77, vocab_size: 49408, width: 768, heads: 12, layers: 12 };

export const OPEN_CLIP_ARCHITECTURES: Record<string, Architecture> = {
  'ViT-B-32': {
    config: { embed_dim: 512, vision_cfg: { image_size: 224, layers: 12, width: 768, patch_size: 32 }, text_cfg: TEXT_B },
    tags: {
      openai: { hub: 'timm/vit_base_patch32_clip_224.openai', quickGelu: true },
      laion400m_e31: { hub: 'timm/vit_base_patch32_clip_224.laion400m_e31', quickGelu: true },
      laion400m_e32: { hub: 'timm/vit_base_patch32_clip_224.laion400m_e32', quickGelu: true },
      laion2b_e16: { hub: 'timm/vit_base_patch32_clip_224.laion2b_e16' },
      laion2b_s34b_b79k: { hub: 'laion/CLIP-ViT-B-32-laion2B-s34B-b79K' },
    },
  },
  'ViT-B-16': {
    config: { embed_dim: 512, vision_cfg: { image_size: 224, layers: 12, width: 768, patch_size: 16 }, text_cfg: TEXT_B },
    tags: {
      openai: { hub: 'timm/vit_base_patch16_clip_224.openai', quickGelu: true },
      laion400m_e31: { hub: 'timm/vit_base_patch16_clip_224.laion400m_e31' },
      laion400m_e32: { hub: 'timm/vit_base_patch16_clip_224.laion400m_e32' },
      laion2b_s34b_b88k: { hub: 'laion/CLIP-ViT-B-16-laion2B-s34B-b88K' },
    },
  },
  'ViT-L-14': {
    config: { embed_dim: 768, vision_cfg: { image_size: 224, layers: 24, width: 1024, patch_size: 14 }, text_cfg: TEXT_L },
    tags: {
      openai: { hub: 'timm/vit_large_patch14_clip_224.openai', quickGelu: true },
      laion400m_e31: { hub: 'timm/vit_large_patch14_clip_224.laion400m_e31' },
      laion400m_e32: { hub: 'timm/vit_large_patch14_clip_224.laion400m_e32' },
      laion2b_s32b_b82k: { hub: 'laion/CLIP-ViT-L-14-laion2B-s32B-b82K', norm: INCEPTION_NORM },
    },
  },
  'ViT-L-14-336': {
    config: { embed_dim: 768, vision_cfg: { image_size: 336, layers: 24, width: 1024, patch_size: 14 }, text_cfg: TEXT_L },
    tags: {
      openai: { hub: 'timm/vit_large_patch14_clip_336.openai', quickGelu: true },
    },
  },
  'ViT-H-14': {
    config: {
      embed_dim: 1024,
      vision_cfg: { image_size: 224, layers: 32, width: 1280, head_width: 80, patch_size: 14 },
      text_cfg: { context_length: 77, vocab_size: 49408, width: 1024, heads: 16, layers: 24 },
    },
    tags: {
      laion2b_s32b_b79k: { hub: 'laion/CLIP-ViT-H-14-laion2B-s32B-b79K' },
    },
  },
  'ViT-bigG-14': {
    config: {
      embed_dim: 1280,
      vision_cfg: { image_size: 224, layers: 48, width: 1664, head_width: 104, mlp_ratio: 4.9231, patch_size: 14 },
      text_cfg: { context_length: 77, vocab_size: 49408, width: 1280, heads: 20, layers: 32 },
    },
    tags: {
      laion2b_s39b_b160k: { hub: 'laion/CLIP-ViT-bigG-14-laion2B-39B-b160k' },
    },
  },
};

const QUICKGELU = '-quickgelu';

/** What `<arch> + <tag>` resolves to. */
export interface OpenClipPretrained {
  /** Display name, also accepted back as a model spec: 'ViT-B-16:laion2b_s34b_b88k'. */
  name: string;
  /** Hub repository of the weights (open_clip_model.safetensors). */
  hub: string;
  /** open_clip model config with quick_gelu set as the weights were trained. */
  modelCfg: Record<string, unknown>;
  /** open_clip preprocess_cfg (mean, std) of the tag. */
  preprocessCfg: Record<string, unknown>;
}

const cleanTag = (t: string) => t.toLowerCase().replace(/-/g, '_');

/** Whether `name` is an open_clip architecture name cliplens knows (with or without -quickgelu). */
export function isOpenClipArchitecture(name: string): boolean {
  return name in OPEN_CLIP_ARCHITECTURES || (name.endsWith(QUICKGELU) && name.slice(0, -QUICKGELU.length) in OPEN_CLIP_ARCHITECTURES);
}

export function openClipNames(): string {
  return Object.entries(OPEN_CLIP_ARCHITECTURES)
    .map(([a, x]) => `${a} (${Object.keys(x.tags).join(', ')})`)
    .join('; ');
}

/**
 * Resolve an architecture name and a pretrained tag (`tag` undefined: the name may carry it as
 * 'ViT-B-16:laion2b_s34b_b88k'). Returns undefined when `spec` is no open_clip architecture name.
 */
export function openClipPretrained(spec: string, tag?: string): OpenClipPretrained | undefined {
  let arch = spec;
  const colon = spec.indexOf(':');
  if (colon > 0 && tag === undefined) {
    arch = spec.slice(0, colon);
    tag = spec.slice(colon + 1);
  }
  if (!isOpenClipArchitecture(arch)) return undefined;
  const forceQuickGelu = arch.endsWith(QUICKGELU) && !(arch in OPEN_CLIP_ARCHITECTURES);
  const base = forceQuickGelu ? arch.slice(0, -QUICKGELU.length) : arch;
  const a = OPEN_CLIP_ARCHITECTURES[base];
  const tags = Object.entries(a.tags).filter(([, t]) => !forceQuickGelu || t.quickGelu);
  const list = tags.map(([k]) => k).join(', ');
  if (!tag) throw new ModelNotFoundError(`open_clip model '${arch}' needs --pretrained TAG: one of ${list}`);
  const hit = tags.find(([k]) => k === cleanTag(tag!));
  if (!hit) throw new ModelNotFoundError(`'${tag}' is not a pretrained tag of open_clip model '${arch}': use one of ${list}`);
  const [key, t] = hit;
  return {
    name: `${arch}:${key}`,
    hub: t.hub,
    modelCfg: { ...a.config, quick_gelu: forceQuickGelu || !!t.quickGelu },
    preprocessCfg: { ...(t.norm ?? {}), interpolation: 'bicubic', resize_mode: 'shortest' },
  };
}
