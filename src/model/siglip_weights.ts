// SigLIP checkpoint tensors. The project addresses SigLIP weights by their transformers names
// (vision_model.encoder.layers.0.self_attn.q_proj.weight, ...): the reference code is a hooked
// copy of transformers' modelling. open_clip's timm-tower checkpoints are presented under those
// names by TimmSiglipWeights, the way HfClipWeights presents transformers CLIP under open_clip's.

import { SafetensorsFile } from '../io/safetensors.ts';
import { f32, numel, type DType, type F32 } from '../tensor.ts';
import { visionDims, type ClipConfig } from './config.ts';
import type { WeightSource } from './weights.ts';
import { WeightError } from '../errors.ts';

/** Every tensor a SigLIP config implies (transformers names), with its shape. */
export function siglipExpectedTensors(cfg: ClipConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const v = cfg.vision;
  const { tokens: N, hidden } = visionDims(v);
  const D = v.width;
  const layer = (p: string, w: number, hid: number) => {
    for (const ln of ['layer_norm1', 'layer_norm2']) for (const x of ['weight', 'bias']) m.set(`${p}.${ln}.${x}`, [w]);
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
      m.set(`${p}.self_attn.${proj}.weight`, [w, w]);
      m.set(`${p}.self_attn.${proj}.bias`, [w]);
    }
    m.set(`${p}.mlp.fc1.weight`, [hid, w]);
    m.set(`${p}.mlp.fc1.bias`, [hid]);
    m.set(`${p}.mlp.fc2.weight`, [w, hid]);
    m.set(`${p}.mlp.fc2.bias`, [w]);
  };
  m.set('vision_model.embeddings.patch_embedding.weight', [D, 3, v.patchSize, v.patchSize]);
  m.set('vision_model.embeddings.patch_embedding.bias', [D]);
  m.set('vision_model.embeddings.position_embedding.weight', [N, D]);
  for (let l = 0; l < v.layers; l++) layer(`vision_model.encoder.layers.${l}`, D, hidden);
  for (const x of ['weight', 'bias']) m.set(`vision_model.post_layernorm.${x}`, [D]);
  m.set('vision_model.head.probe', [1, 1, D]);
  m.set('vision_model.head.attention.in_proj_weight', [3 * D, D]);
  m.set('vision_model.head.attention.in_proj_bias', [3 * D]);
  m.set('vision_model.head.attention.out_proj.weight', [D, D]);
  m.set('vision_model.head.attention.out_proj.bias', [D]);
  for (const x of ['weight', 'bias']) m.set(`vision_model.head.layernorm.${x}`, [D]);
  m.set('vision_model.head.mlp.fc1.weight', [hidden, D]);
  m.set('vision_model.head.mlp.fc1.bias', [hidden]);
  m.set('vision_model.head.mlp.fc2.weight', [D, hidden]);
  m.set('vision_model.head.mlp.fc2.bias', [D]);
  const t = cfg.text;
  const tw = t.width;
  m.set('text_model.embeddings.token_embedding.weight', [t.vocabSize, tw]);
  m.set('text_model.embeddings.position_embedding.weight', [t.positions ?? t.contextLength, tw]);
  for (let l = 0; l < t.layers; l++) layer(`text_model.encoder.layers.${l}`, tw, Math.round(tw * t.mlpRatio));
  for (const x of ['weight', 'bias']) m.set(`text_model.final_layer_norm.${x}`, [tw]);
  m.set('text_model.head.weight', [cfg.embedDim, tw]);
  m.set('text_model.head.bias', [cfg.embedDim]);
  m.set('logit_scale', [1]);
  m.set('logit_bias', [1]);
  return m;
}

/** How one transformers tensor is read from a timm/open_clip state dict. */
interface Source {
  names: string[];
  /** 'rows': rows [from, to) of the single source (q/k/v out of a packed qkv); 'concat': sources stacked on dim 0. */
  kind: 'same' | 'rows' | 'concat';
  rows?: [number, number];
  /** Shape to present (e.g. pos_embed [1, N, D] as [N, D]); same element count. */
  reshape?: (shape: number[]) => number[];
}

const VISION_LAYER = /^vision_model\.encoder\.layers\.(\d+)\.(.+)$/;
const TEXT_LAYER = /^text_model\.encoder\.layers\.(\d+)\.(.+)$/;
const QKV = ['q_proj', 'k_proj', 'v_proj'];

function layerSource(prefix: string, rest: string, timm: boolean, width: number): Source | undefined {
  const n = (s: string): Source => ({ names: [`${prefix}.${s}`], kind: 'same' });
  const m = /^self_attn\.(q_proj|k_proj|v_proj|out_proj)\.(weight|bias)$/.exec(rest);
  if (m) {
    if (m[1] === 'out_proj') return n(`${timm ? 'attn.proj' : 'attn.out_proj'}.${m[2]}`);
    const i = QKV.indexOf(m[1]);
    const packed = timm ? `attn.qkv.${m[2]}` : `attn.in_proj_${m[2]}`;
    return { names: [`${prefix}.${packed}`], kind: 'rows', rows: [i * width, (i + 1) * width] };
  }
  const ln = /^layer_norm([12])\.(weight|bias)$/.exec(rest);
  if (ln) return n(`${timm ? `norm${ln[1]}` : `ln_${ln[1]}`}.${ln[2]}`);
  const mlp = /^mlp\.(fc1|fc2)\.(weight|bias)$/.exec(rest);
  if (mlp) return n(`mlp.${timm ? mlp[1] : mlp[1] === 'fc1' ? 'c_fc' : 'c_proj'}.${mlp[2]}`);
  return undefined;
}

const FLAT: Record<string, Source> = {
  'vision_model.embeddings.patch_embedding.weight': { names: ['visual.trunk.patch_embed.proj.weight'], kind: 'same' },
  'vision_model.embeddings.patch_embedding.bias': { names: ['visual.trunk.patch_embed.proj.bias'], kind: 'same' },
  'vision_model.embeddings.position_embedding.weight': { names: ['visual.trunk.pos_embed'], kind: 'same', reshape: (s) => (s.length === 3 && s[0] === 1 ? s.slice(1) : s) },
  'vision_model.post_layernorm.weight': { names: ['visual.trunk.norm.weight'], kind: 'same' },
  'vision_model.post_layernorm.bias': { names: ['visual.trunk.norm.bias'], kind: 'same' },
  'vision_model.head.probe': { names: ['visual.trunk.attn_pool.latent'], kind: 'same' },
  'vision_model.head.attention.in_proj_weight': { names: ['visual.trunk.attn_pool.q.weight', 'visual.trunk.attn_pool.kv.weight'], kind: 'concat' },
  'vision_model.head.attention.in_proj_bias': { names: ['visual.trunk.attn_pool.q.bias', 'visual.trunk.attn_pool.kv.bias'], kind: 'concat' },
  'vision_model.head.attention.out_proj.weight': { names: ['visual.trunk.attn_pool.proj.weight'], kind: 'same' },
  'vision_model.head.attention.out_proj.bias': { names: ['visual.trunk.attn_pool.proj.bias'], kind: 'same' },
  'vision_model.head.layernorm.weight': { names: ['visual.trunk.attn_pool.norm.weight'], kind: 'same' },
  'vision_model.head.layernorm.bias': { names: ['visual.trunk.attn_pool.norm.bias'], kind: 'same' },
  'vision_model.head.mlp.fc1.weight': { names: ['visual.trunk.attn_pool.mlp.fc1.weight'], kind: 'same' },
  'vision_model.head.mlp.fc1.bias': { names: ['visual.trunk.attn_pool.mlp.fc1.bias'], kind: 'same' },
  'vision_model.head.mlp.fc2.weight': { names: ['visual.trunk.attn_pool.mlp.fc2.weight'], kind: 'same' },
  'vision_model.head.mlp.fc2.bias': { names: ['visual.trunk.attn_pool.mlp.fc2.bias'], kind: 'same' },
  'text_model.embeddings.token_embedding.weight': { names: ['text.token_embedding.weight'], kind: 'same' },
  'text_model.embeddings.position_embedding.weight': { names: ['text.positional_embedding'], kind: 'same' },
  'text_model.final_layer_norm.weight': { names: ['text.ln_final.weight'], kind: 'same' },
  'text_model.final_layer_norm.bias': { names: ['text.ln_final.bias'], kind: 'same' },
  'text_model.head.weight': { names: ['text.text_projection.weight'], kind: 'same' },
  'text_model.head.bias': { names: ['text.text_projection.bias'], kind: 'same' },
  logit_scale: { names: ['logit_scale'], kind: 'same', reshape: (s) => (s.length === 0 ? [1] : s) },
  logit_bias: { names: ['logit_bias'], kind: 'same', reshape: (s) => (s.length === 0 ? [1] : s) },
};

/** The open_clip/timm tensor(s) a transformers SigLIP tensor name is read from. */
export function timmSource(name: string, cfg: ClipConfig): Source | undefined {
  if (FLAT[name]) return FLAT[name];
  const v = VISION_LAYER.exec(name);
  if (v) return layerSource(`visual.trunk.blocks.${v[1]}`, v[2], true, cfg.vision.width);
  const t = TEXT_LAYER.exec(name);
  if (t) return layerSource(`text.transformer.resblocks.${t[1]}`, t[2], false, cfg.text.width);
  return undefined;
}

/** open_clip's timm-tower SigLIP safetensors, read under transformers SigLIP names. */
export class TimmSiglipWeights implements WeightSource {
  readonly origin: string;
  constructor(private file: SafetensorsFile, private cfg: ClipConfig) {
    this.origin = file.path;
  }

  private source(name: string): Source {
    const s = timmSource(name, this.cfg);
    if (!s) throw new WeightError(`${this.origin}: no open_clip/timm tensor corresponds to SigLIP tensor '${name}'`);
    return s;
  }

  has(name: string): boolean {
    const s = timmSource(name, this.cfg);
    return !!s && s.names.every((n) => this.file.has(n));
  }

  /** Shape the tensor will have, from the header only; undefined when absent or not combinable. */
  shapeOf(name: string): number[] | undefined {
    const s = timmSource(name, this.cfg);
    if (!s || !s.names.every((n) => this.file.has(n))) return undefined;
    const shapes = s.names.map((n) => this.file.tensors.get(n)!.shape);
    if (s.kind === 'rows') return shapes[0].length >= 1 && shapes[0][0] >= s.rows![1] ? [s.rows![1] - s.rows![0], ...shapes[0].slice(1)] : undefined;
    if (s.kind === 'concat') {
      const tail = JSON.stringify(shapes[0].slice(1));
      if (shapes.some((x) => x.length === 0 || JSON.stringify(x.slice(1)) !== tail)) return undefined;
      return [shapes.reduce((a, x) => a + x[0], 0), ...shapes[0].slice(1)];
    }
    return s.reshape ? s.reshape([...shapes[0]]) : [...shapes[0]];
  }

  /** dtype of the (first) source tensor, from the header. */
  dtypeOf(name: string): DType | undefined {
    const s = timmSource(name, this.cfg);
    return s ? this.file.tensors.get(s.names[0])?.dtype : undefined;
  }

  get(name: string): F32 {
    const s = this.source(name);
    const gone = s.names.find((n) => !this.file.has(n));
    if (gone) throw new WeightError(`${this.origin}: missing tensor '${gone}' (open_clip/timm name for SigLIP '${name}')`);
    const parts = s.names.map((n) => this.file.readF32(n));
    if (s.kind === 'same') return s.reshape ? f32(s.reshape(parts[0].shape), parts[0].data) : parts[0];
    if (s.kind === 'rows') {
      const [a, b] = s.rows!;
      const per = numel(parts[0].shape.slice(1));
      if (parts[0].shape[0] < b) throw new WeightError(`${this.origin}: tensor '${s.names[0]}' has ${parts[0].shape[0]} rows, '${name}' needs rows ${a}..${b - 1}`);
      return f32([b - a, ...parts[0].shape.slice(1)], parts[0].data.slice(a * per, b * per));
    }
    const tail = parts[0].shape.slice(1);
    const rows = parts.reduce((n, p) => n + p.shape[0], 0);
    const out = new Float32Array(rows * numel(tail));
    let off = 0;
    for (const p of parts) {
      if (JSON.stringify(p.shape.slice(1)) !== JSON.stringify(tail)) throw new WeightError(`${this.origin}: cannot stack '${s.names.join("', '")}' into '${name}'`);
      out.set(p.data, off);
      off += p.data.length;
    }
    return f32([rows, ...tail], out);
  }

  close(): void {
    this.file.close();
  }
}
