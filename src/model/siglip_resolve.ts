// Opening SigLIP checkpoints: a transformers SiglipModel directory (config.json model_type
// "siglip", model.safetensors, spiece.model, optional preprocessor_config.json /
// tokenizer_config.json) or open_clip's timm-tower layout (open_clip_config.json +
// open_clip_model.safetensors, spiece.model beside them). Hooked into resolve.ts.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { HubFile } from '../io/hub.ts';
import { FLOAT_DTYPES, isFloatDType, SafetensorsFile } from '../io/safetensors.ts';
import type { DType } from '../tensor.ts';
import type { ClipConfig } from './config.ts';
import { isOpenClipSiglip, parseHfSiglipConfig, parseOpenClipSiglipConfig } from './siglip_config.ts';
import { siglipExpectedTensors, TimmSiglipWeights } from './siglip_weights.ts';
import { OpenClipSafetensors, type WeightSource } from './weights.ts';
import { readJson, withPath } from './config_files.ts';
import { ConfigError, WeightError } from '../errors.ts';

/** How a SigLIP model's text is tokenized (src/model/siglip_tokenizer.ts). */
export interface SpmTokenizerSpec {
  kind: 'spm';
  /** spiece.model; absent when the checkpoint came without one (texts then need --tokens). */
  model?: string;
  mode: 'hf' | 'open_clip';
  config?: Record<string, unknown>;
}

export interface SiglipResolved {
  config: ClipConfig;
  weights: WeightSource;
  tokenizer: SpmTokenizerSpec;
  files: string[];
}

export const SIGLIP_SPIECE = 'spiece.model';
const TOKENIZER_CONFIG = 'tokenizer_config.json';
const PREPROCESSOR_CONFIG = 'preprocessor_config.json';

/** Files of a transformers SigLIP hub repository (beyond config.json). */
export const SIGLIP_HF_HUB_FILES: HubFile[] = [
  { name: 'config.json' },
  { name: 'model.safetensors' },
  { name: SIGLIP_SPIECE },
  { name: TOKENIZER_CONFIG, optional: true },
  { name: PREPROCESSOR_CONFIG, optional: true },
  { name: 'special_tokens_map.json', optional: true },
];

/** What open_clip's timm SigLIP repositories add to open_clip_config.json + open_clip_model.safetensors. */
export const SIGLIP_OPEN_CLIP_EXTRA_FILES: HubFile[] = [
  { name: SIGLIP_SPIECE, optional: true },
  { name: TOKENIZER_CONFIG, optional: true },
];

/** config.json's model_type, or undefined when the file is not a JSON object. */
export function hfModelType(configPath: string): unknown {
  const raw = readJson(configPath);
  return raw && typeof raw === 'object' ? (raw as Record<string, unknown>).model_type : undefined;
}

/** A checkpoint's header as the checks see it (transformers SigLIP names). */
interface SiglipCheckpointView {
  origin: string;
  shapeOf(name: string): number[] | undefined;
  dtypeOf(name: string): DType | undefined;
}

/**
 * Header-only check that the checkpoint matches its config: the layer counts first (each probe
 * needs a tensor, so a config claiming a billion layers stops at the checkpoint's size), then every
 * tensor the config implies, with its shape and a float dtype.
 */
export function checkSiglipWeights(cfg: ClipConfig, ck: SiglipCheckpointView, fields: { vision: string; text: string }): void {
  for (const [tower, want, field] of [['vision', cfg.vision.layers, fields.vision], ['text', cfg.text.layers, fields.text]] as const) {
    let held = 0;
    while (ck.shapeOf(`${tower}_model.encoder.layers.${held}.layer_norm1.weight`) !== undefined) held++;
    if (held !== want) throw new ConfigError(`${field} = ${want} in the config, but the checkpoint ${ck.origin} holds ${held} ${tower} layers`);
  }
  for (const [name, shape] of siglipExpectedTensors(cfg)) {
    const got = ck.shapeOf(name);
    if (got === undefined) throw new WeightError(`${ck.origin}: missing tensor '${name}' required by the SigLIP config`);
    const same = got.length === shape.length && got.every((d, i) => d === shape[i]);
    const scalarOk = shape.length === 1 && shape[0] === 1 && got.length === 0; // logit_scale / logit_bias stored as scalars
    if (!same && !scalarOk) throw new WeightError(`${ck.origin}: tensor '${name}' has shape [${got}] but the config implies [${shape}]`);
    const dtype = ck.dtypeOf(name);
    if (dtype !== undefined && !isFloatDType(dtype)) throw new WeightError(`${ck.origin}: tensor '${name}' has dtype ${dtype} where a float (${FLOAT_DTYPES.join(', ')}) is expected`);
  }
}

function optionalJson(path: string): Record<string, unknown> | undefined {
  if (!existsSync(path)) return undefined;
  const j = readJson(path);
  if (!j || typeof j !== 'object' || Array.isArray(j)) throw new ConfigError(`${path} is not a JSON object`);
  return j as Record<string, unknown>;
}

/** A transformers SiglipModel directory. */
export function siglipFromHfDir(dir: string): SiglipResolved {
  const cfgPath = join(dir, 'config.json');
  const wPath = join(dir, 'model.safetensors');
  const spiece = join(dir, SIGLIP_SPIECE);
  const missing = [wPath, spiece].filter((p) => !existsSync(p));
  if (missing.length) throw new ConfigError(`${dir} looks like a Hugging Face SigLIP directory but lacks ${missing.map((p) => p.slice(dir.length + 1)).join(', ')}`);
  const ppPath = join(dir, PREPROCESSOR_CONFIG);
  const tcPath = join(dir, TOKENIZER_CONFIG);
  const tc = optionalJson(tcPath);
  const pp = existsSync(ppPath) ? readJson(ppPath) : undefined;
  const config = withPath(cfgPath, () => parseHfSiglipConfig(readJson(cfgPath), pp, tc));
  const file = SafetensorsFile.open(wPath);
  try {
    checkSiglipWeights(config, { origin: wPath, shapeOf: (n) => file.tensors.get(n)?.shape, dtypeOf: (n) => file.tensors.get(n)?.dtype }, { vision: 'vision_config.num_hidden_layers', text: 'text_config.num_hidden_layers' });
  } catch (e) {
    file.close();
    throw e;
  }
  return {
    config,
    weights: new OpenClipSafetensors(file),
    tokenizer: { kind: 'spm', model: spiece, mode: 'hf', config: tc },
    files: [cfgPath, wPath, spiece, ...[ppPath, tcPath].filter((p) => existsSync(p))],
  };
}

/** open_clip_config.json of a timm-tower SigLIP (already read), with its weights in `weightsPath`. */
export function siglipFromOpenClip(dir: string, cfgPath: string, raw: { model_cfg: unknown; preprocess_cfg?: unknown }, weightsPath: string): SiglipResolved {
  const config = withPath(cfgPath, () => parseOpenClipSiglipConfig(raw.model_cfg, raw.preprocess_cfg));
  const file = SafetensorsFile.open(weightsPath);
  const weights = new TimmSiglipWeights(file, config);
  try {
    checkSiglipWeights(config, { origin: weightsPath, shapeOf: (n) => weights.shapeOf(n), dtypeOf: (n) => weights.dtypeOf(n) }, { vision: 'vision_cfg.timm_model_kwargs.depth', text: 'text_cfg.layers' });
  } catch (e) {
    file.close();
    throw e;
  }
  const spiece = join(dir, SIGLIP_SPIECE);
  const tcPath = join(dir, TOKENIZER_CONFIG);
  const has = existsSync(spiece);
  return {
    config,
    weights,
    tokenizer: { kind: 'spm', model: has ? spiece : undefined, mode: 'open_clip', config: optionalJson(tcPath) },
    files: [cfgPath, weightsPath, ...(has ? [spiece] : []), ...(existsSync(tcPath) ? [tcPath] : [])],
  };
}

export { isOpenClipSiglip };
