// One entry point from a model spec (file, directory, hub id, builtin name) to config + weights + tokenizer.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { pathProblem } from '../io/files.ts';
import { basename, join, resolve as resolvePath } from 'node:path';
import { assetPath } from '../assets.ts';
import { cachedRepo, fetchRepoFiles, HubNotFoundError, isOffline, isRepoId, type CachedRepo, type HubFile, type HubOptions } from '../io/hub.ts';
import { FLOAT_DTYPES, isFloatDType, SafetensorsFile } from '../io/safetensors.ts';
import { assertFinite, type DType } from '../tensor.ts';
import { parseOpenClipConfig, visionDims, type ClipConfig } from './config.ts';
import { HfClipWeights, hfMapping, parseHfClipConfig } from './hf_layout.ts';
import { openClipNames, openClipPretrained, type OpenClipPretrained } from './open_clip_pretrained.ts';
import { OpenClipSafetensors, type WeightSource } from './weights.ts';
import { siglipExpectedTensors } from './siglip_weights.ts';
import { hfModelType, isOpenClipSiglip, SIGLIP_HF_HUB_FILES, SIGLIP_OPEN_CLIP_EXTRA_FILES, siglipFromHfDir, siglipFromOpenClip, type SpmTokenizerSpec } from './siglip_resolve.ts';
import { readJson, withPath } from './config_files.ts';
import { ConfigError, ModelNotFoundError, WeightError } from '../errors.ts';

export interface ResolvedModel {
  name: string; // display name
  config: ClipConfig;
  weights: WeightSource; // open_clip names (CLIP), transformers names (SigLIP)
  /** 'hf': paths of vocab.json and merges.txt; 'default': the bundled open_clip BPE; 'spm': SentencePiece (SigLIP). */
  tokenizer: { kind: 'default' } | { kind: 'hf'; vocab: string; merges: string } | SpmTokenizerSpec;
  files: string[]; // local files used (for provenance)
}

export interface ResolveOptions extends Omit<HubOptions, 'revision'> {
  /** Where builtin models live; default env CLIPLENS_MODELS_DIR, else <repo>/models. */
  modelsDir?: string;
  /** open_clip pretrained tag for an architecture name (ViT-B-16 + laion2b_s34b_b88k). */
  pretrained?: string;
}

export const DEFAULT_MODEL = 'toyworld';

const OPEN_CLIP_CONFIG = 'open_clip_config.json';
const OPEN_CLIP_WEIGHTS = 'open_clip_model.safetensors';
const HF_FILES = ['config.json', 'model.safetensors', 'vocab.json', 'merges.txt'];
const HF_HUB_FILES: HubFile[] = [...HF_FILES.map((name) => ({ name })), { name: 'preprocessor_config.json', optional: true }];
const OPEN_CLIP_HUB_FILES: HubFile[] = [{ name: OPEN_CLIP_CONFIG }, { name: OPEN_CLIP_WEIGHTS }];

const FORMS =
  'accepted forms: a .safetensors file in open_clip layout with a .json config beside it; ' +
  `a directory with ${OPEN_CLIP_CONFIG} + ${OPEN_CLIP_WEIGHTS}; ` +
  'a directory in Hugging Face CLIPModel layout (config.json, model.safetensors, vocab.json, merges.txt) or SiglipModel layout (config.json, model.safetensors, spiece.model); ' +
  'hf-hub:org/name (open_clip hub repo); org/name (transformers hub repo), optionally @revision; ' +
  'an open_clip architecture name with --pretrained TAG (e.g. ViT-B-16 --pretrained laion2b_s34b_b88k, or ViT-B-16:laion2b_s34b_b88k); a builtin name';

export function modelsDir(opt?: string): string {
  return opt || process.env.CLIPLENS_MODELS_DIR || assetPath('models');
}

/** Builtin names: subdirectories of the models dir that hold an open_clip hub layout. */
export function builtinModels(dir?: string): string[] {
  const root = modelsDir(dir);
  try {
    return readdirSync(root, { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(join(root, d.name, OPEN_CLIP_CONFIG)))
      .map((d) => d.name)
      .sort();
  } catch {
    return [];
  }
}

/** open_clip JSON: either a bare model config or a hub open_clip_config.json with model_cfg/preprocess_cfg. */
function parseOpenClipJson(path: string): ClipConfig {
  const raw = readJson(path);
  return withPath(path, () => {
    if (raw && typeof raw === 'object' && 'model_cfg' in raw) {
      const r = raw as { model_cfg: unknown; preprocess_cfg?: unknown };
      return parseOpenClipConfig(r.model_cfg, r.preprocess_cfg);
    }
    return parseOpenClipConfig(raw);
  });
}

/** Every open_clip tensor the config implies, with its shape. */
export function expectedTensors(cfg: ClipConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const v = cfg.vision;
  const { tokens, hidden } = visionDims(v);
  const D = v.width;
  const block = (prefix: string, w: number, hid: number) => {
    for (const ln of ['ln_1', 'ln_2']) for (const p of ['weight', 'bias']) m.set(`${prefix}.${ln}.${p}`, [w]);
    m.set(`${prefix}.attn.in_proj_weight`, [3 * w, w]);
    m.set(`${prefix}.attn.in_proj_bias`, [3 * w]);
    m.set(`${prefix}.attn.out_proj.weight`, [w, w]);
    m.set(`${prefix}.attn.out_proj.bias`, [w]);
    m.set(`${prefix}.mlp.c_fc.weight`, [hid, w]);
    m.set(`${prefix}.mlp.c_fc.bias`, [hid]);
    m.set(`${prefix}.mlp.c_proj.weight`, [w, hid]);
    m.set(`${prefix}.mlp.c_proj.bias`, [w]);
  };
  m.set('visual.class_embedding', [D]);
  m.set('visual.positional_embedding', [tokens, D]);
  m.set('visual.conv1.weight', [D, 3, v.patchSize, v.patchSize]);
  for (const ln of ['visual.ln_pre', 'visual.ln_post']) for (const p of ['weight', 'bias']) m.set(`${ln}.${p}`, [D]);
  for (let l = 0; l < v.layers; l++) block(`visual.transformer.resblocks.${l}`, D, hidden);
  m.set('visual.proj', [D, cfg.embedDim]);
  const t = cfg.text;
  m.set('token_embedding.weight', [t.vocabSize, t.width]);
  m.set('positional_embedding', [t.contextLength, t.width]);
  for (let l = 0; l < t.layers; l++) block(`transformer.resblocks.${l}`, t.width, Math.round(t.width * t.mlpRatio));
  for (const p of ['weight', 'bias']) m.set(`ln_final.${p}`, [t.width]);
  m.set('text_projection', [t.width, cfg.embedDim]);
  m.set('logit_scale', []);
  return m;
}

/** Where a layout's config names its tower depths (for messages). */
interface DepthFields {
  vision: string;
  text: string;
}
const OPEN_CLIP_DEPTHS: DepthFields = { vision: 'vision_cfg.layers', text: 'text_cfg.layers' };
const HF_DEPTHS: DepthFields = { vision: 'vision_config.num_hidden_layers', text: 'text_config.num_hidden_layers' };

interface CheckpointView {
  origin: string;
  shapeOf(name: string): number[] | undefined;
  dtypeOf(name: string): DType | undefined;
  /** The checkpoint's own name for an open_clip tensor (HF layout), for messages. */
  nativeName?(name: string): string;
}

/**
 * Header-only check that the checkpoint matches its config, so a wrong pair fails at load, not
 * mid-run. The tower depths are compared first, against the blocks the checkpoint holds, so an
 * absurd depth (layers: 1e9) is refused before anything proportional to it is built.
 */
function checkWeights(cfg: ClipConfig, ck: CheckpointView, depths: DepthFields): void {
  for (const [tower, prefix, want, field] of [
    ['vision', 'visual.transformer.resblocks', cfg.vision.layers, depths.vision],
    ['text', 'transformer.resblocks', cfg.text.layers, depths.text],
  ] as const) {
    // Each probe needs a tensor, so this stops within the checkpoint's tensor count.
    let held = 0;
    while (ck.shapeOf(`${prefix}.${held}.ln_1.weight`) !== undefined) held++;
    if (held !== want) {
      const holds = held ? `${held} ${tower} layers (${prefix}.0 to .${held - 1})` : `no ${tower} layers (${prefix}.*)`;
      throw new ConfigError(`${field} = ${want} in the config, but the checkpoint ${ck.origin} holds ${holds}`);
    }
  }
  for (const [name, shape] of expectedTensors(cfg)) {
    const got = ck.shapeOf(name);
    if (got === undefined) {
      const alt = ck.nativeName ? ` (Hugging Face '${ck.nativeName(name)}')` : '';
      throw new WeightError(`${ck.origin}: missing tensor '${name}'${alt} required by the config`);
    }
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      throw new WeightError(`${ck.origin}: tensor '${name}' has shape [${got}] but the config implies [${shape}]`);
    }
    const dtype = ck.dtypeOf(name);
    if (dtype !== undefined && !isFloatDType(dtype)) {
      const alt = ck.nativeName ? ` (Hugging Face '${ck.nativeName(name)}')` : '';
      throw new WeightError(`${ck.origin}: tensor '${name}'${alt} has dtype ${dtype} where a float (${FLOAT_DTYPES.join(', ')}) is expected`);
    }
  }
}

/** Every tensor the config uses, read and checked for NaN/±Inf (the first bad one is named). */
export function checkWeightsFinite(cfg: ClipConfig, w: WeightSource): void {
  const names = (cfg.family === 'siglip' ? siglipExpectedTensors : expectedTensors)(cfg).keys();
  for (const name of names) assertFinite(w.get(name), `${w.origin}: tensor '${name}'`, { hint: 'the checkpoint is damaged' });
}

function openOpenClip(name: string, cfg: ClipConfig, weightsPath: string, files: string[]): ResolvedModel {
  const file = SafetensorsFile.open(weightsPath);
  try {
    checkWeights(cfg, { origin: weightsPath, shapeOf: (n) => file.tensors.get(n)?.shape, dtypeOf: (n) => file.tensors.get(n)?.dtype }, OPEN_CLIP_DEPTHS);
  } catch (e) {
    file.close();
    throw e;
  }
  return { name, config: cfg, weights: new OpenClipSafetensors(file), tokenizer: { kind: 'default' }, files };
}

function fromOpenClipFile(path: string): ResolvedModel {
  const json = path.replace(/\.safetensors$/, '.json');
  if (!existsSync(json)) {
    throw new ConfigError(`no config for ${path}: expected the open_clip model config ${basename(json)} beside it`);
  }
  const cfg = parseOpenClipJson(json);
  return openOpenClip(basename(path, '.safetensors'), cfg, path, [path, json]);
}

function fromOpenClipDir(dir: string, name: string): ResolvedModel {
  const cfgPath = join(dir, OPEN_CLIP_CONFIG);
  const weights = join(dir, OPEN_CLIP_WEIGHTS);
  if (!existsSync(weights)) throw new ConfigError(`${dir} has ${OPEN_CLIP_CONFIG} but no ${OPEN_CLIP_WEIGHTS}`);
  const raw = readJson(cfgPath);
  if (raw && typeof raw === 'object' && 'model_cfg' in raw && isOpenClipSiglip(raw.model_cfg)) {
    return { name, ...siglipFromOpenClip(dir, cfgPath, raw as { model_cfg: unknown; preprocess_cfg?: unknown }, weights) };
  }
  const cfg = withPath(cfgPath, () => {
    if (!raw || typeof raw !== 'object' || !('model_cfg' in raw)) throw new ConfigError('has no model_cfg');
    const r = raw as { model_cfg: unknown; preprocess_cfg?: unknown };
    return parseOpenClipConfig(r.model_cfg, r.preprocess_cfg);
  });
  return openOpenClip(name, cfg, weights, [cfgPath, weights]);
}

function fromHfDir(dir: string, name: string): ResolvedModel {
  if (hfModelType(join(dir, 'config.json')) === 'siglip') return { name, ...siglipFromHfDir(dir) };
  const missing = HF_FILES.filter((f) => !existsSync(join(dir, f)));
  if (missing.length) throw new ConfigError(`${dir} looks like a Hugging Face CLIPModel directory but lacks ${missing.join(', ')}`);
  const cfgPath = join(dir, 'config.json');
  const ppPath = join(dir, 'preprocessor_config.json');
  const hasPp = existsSync(ppPath);
  const raw = readJson(cfgPath);
  const pp = hasPp ? readJson(ppPath) : undefined;
  const cfg = withPath(cfgPath, () => parseHfClipConfig(raw, pp));
  const wPath = join(dir, 'model.safetensors');
  const weights = HfClipWeights.open(wPath);
  try {
    checkWeights(cfg, { origin: wPath, shapeOf: (n) => weights.shapeOf(n), dtypeOf: (n) => weights.dtypeOf(n), nativeName: hfNameFor }, HF_DEPTHS);
  } catch (e) {
    weights.close();
    throw e;
  }
  const vocab = join(dir, 'vocab.json');
  const merges = join(dir, 'merges.txt');
  return {
    name,
    config: cfg,
    weights,
    tokenizer: { kind: 'hf', vocab, merges },
    files: [cfgPath, wPath, vocab, merges, ...(hasPp ? [ppPath] : [])],
  };
}

function hfNameFor(n: string): string {
  return hfMapping(n)?.sources.join("' + '") ?? '?';
}

function fromDir(dir: string, name: string): ResolvedModel {
  if (existsSync(join(dir, OPEN_CLIP_CONFIG))) return fromOpenClipDir(dir, name);
  if (existsSync(join(dir, 'config.json'))) return fromHfDir(dir, name);
  throw new ConfigError(`${dir} is not a model directory: it has neither ${OPEN_CLIP_CONFIG} (open_clip) nor config.json (Hugging Face CLIPModel)`);
}

function splitRevision(id: string): { repo: string; revision: string } {
  const at = id.lastIndexOf('@');
  return at > 0 ? { repo: id.slice(0, at), revision: id.slice(at + 1) } : { repo: id, revision: 'main' };
}

async function fromHub(spec: string, id: string, openClip: boolean, opts: ResolveOptions): Promise<ResolvedModel> {
  const { repo, revision } = splitRevision(id);
  if (!isRepoId(repo)) throw new ModelNotFoundError(`'${spec}' is not a valid hub id (org/name); ${FORMS}`);
  const hopts: HubOptions = { ...opts, revision };
  const load = async (c: CachedRepo, oc: boolean) => {
    if (!oc) return fromHfDir(c.dir, spec);
    // open_clip's SigLIP keeps its SentencePiece model beside the weights.
    const ocCfg = readJson(join(c.dir, OPEN_CLIP_CONFIG));
    if (ocCfg && typeof ocCfg === 'object' && 'model_cfg' in ocCfg && isOpenClipSiglip(ocCfg.model_cfg)) await fetchRepoFiles(repo, [...OPEN_CLIP_HUB_FILES, ...SIGLIP_OPEN_CLIP_EXTRA_FILES], hopts);
    return fromOpenClipDir(c.dir, spec);
  };
  // Cached first: a complete cache never touches the network.
  const layouts = openClip ? [true] : [false, true];
  for (const oc of layouts) {
    const c = cachedRepo(repo, oc ? OPEN_CLIP_HUB_FILES : HF_HUB_FILES, hopts);
    if (c) return load(c, oc);
  }
  let noConfig = false;
  if (!openClip) {
    const siglip = await siglipFromHub(repo, hopts);
    if (siglip === 'no-config') noConfig = true;
    else if (siglip) return fromHfDir(siglip.dir, spec);
  }
  if (isOffline(opts.offline)) {
    // Let the hub module produce its detailed offline message.
    await fetchRepoFiles(repo, openClip ? OPEN_CLIP_HUB_FILES : HF_HUB_FILES, hopts);
  }
  const notFound = (e: HubNotFoundError) =>
    new ModelNotFoundError(e.file === 'model.safetensors' || e.file === OPEN_CLIP_WEIGHTS ? `${e.message}; only safetensors checkpoints are loaded` : e.message);
  if (!noConfig) {
    try {
      return await load(await fetchRepoFiles(repo, openClip ? OPEN_CLIP_HUB_FILES : HF_HUB_FILES, hopts), openClip);
    } catch (e) {
      if (!(e instanceof HubNotFoundError)) throw e;
      if (openClip || e.file !== 'config.json') throw notFound(e);
    }
  }
  // A repo made by open_clip alone has no transformers config.json: try its own layout.
  try {
    return await load(await fetchRepoFiles(repo, OPEN_CLIP_HUB_FILES, hopts), true);
  } catch (e) {
    if (!(e instanceof HubNotFoundError)) throw e;
    throw notFound(e);
  }
}

/**
 * A transformers repository whose config.json says model_type "siglip": its files, cached.
 * 'no-config' when the hub has no config.json (an open_clip-only repository); undefined for any
 * other repository, which the CLIP layouts handle.
 */
async function siglipFromHub(repo: string, hopts: HubOptions): Promise<CachedRepo | 'no-config' | undefined> {
  let cfg: CachedRepo | undefined = cachedRepo(repo, [{ name: 'config.json' }], hopts);
  if (!cfg && !isOffline(hopts.offline)) {
    try {
      cfg = await fetchRepoFiles(repo, [{ name: 'config.json' }], hopts);
    } catch (e) {
      if (e instanceof HubNotFoundError) return 'no-config';
      throw e;
    }
  }
  if (!cfg?.files['config.json']) return undefined;
  if (hfModelType(cfg.files['config.json']) !== 'siglip') return undefined;
  try {
    return await fetchRepoFiles(repo, SIGLIP_HF_HUB_FILES, hopts);
  } catch (e) {
    if (e instanceof HubNotFoundError) throw new ModelNotFoundError(e.file === 'model.safetensors' ? `${e.message}; only safetensors checkpoints are loaded` : e.message);
    throw e;
  }
}

/** open_clip's own resolution: its model config, the tag's activation and normalisation, the weights from the tag's hub repository. */
async function fromOpenClipPretrained(p: OpenClipPretrained, opts: ResolveOptions): Promise<ResolvedModel> {
  const cfg = parseOpenClipConfig(p.modelCfg, p.preprocessCfg);
  const files: HubFile[] = [{ name: OPEN_CLIP_WEIGHTS }];
  const hopts: HubOptions = { ...opts, revision: 'main' };
  let repo = cachedRepo(p.hub, files, hopts);
  if (!repo) {
    try {
      repo = await fetchRepoFiles(p.hub, files, hopts);
    } catch (e) {
      if (e instanceof HubNotFoundError) throw new ModelNotFoundError(`${p.name}: ${e.message}; only safetensors checkpoints are loaded`);
      throw e;
    }
  }
  const weights = join(repo.dir, OPEN_CLIP_WEIGHTS);
  return openOpenClip(p.name, cfg, weights, [weights]);
}

function looksLikePath(spec: string): boolean {
  return /^(\.{1,2}|~)?[\\/]/.test(spec) || spec.includes('\\') || /\.(safetensors|json|bin|pt|pth)$/i.test(spec) || spec.startsWith('.');
}

/**
 * Resolve a model spec to config + weights (open_clip names) + tokenizer.
 * The caller owns `weights` and should close() it.
 */
export async function resolveModel(spec: string | undefined, opts: ResolveOptions = {}): Promise<ResolvedModel> {
  const s = (spec ?? DEFAULT_MODEL).trim();
  if (s === '') throw new ModelNotFoundError(`empty model name; ${FORMS}`);
  const openClip = existsSync(s) ? undefined : openClipPretrained(s, opts.pretrained);
  if (openClip) return fromOpenClipPretrained(openClip, opts);
  if (opts.pretrained !== undefined) throw new ModelNotFoundError(`--pretrained goes with an open_clip architecture name, not '${s}'; known: ${openClipNames()}`);
  if (s.startsWith('hf-hub:')) return fromHub(s, s.slice('hf-hub:'.length), true, opts);

  const path = s.startsWith('~/') ? join(process.env.HOME ?? '', s.slice(2)) : s;
  const why = pathProblem(path, 'any');
  // A link loop or an unreadable path is that, not an unknown model or a hub id.
  if (why && /symbolic link|permission/.test(why)) throw new ModelNotFoundError(`model ${path} ${why}`);
  if (!why) {
    const abs = resolvePath(path);
    if (statSync(abs).isDirectory()) return fromDir(abs, basename(abs));
    if (!abs.endsWith('.safetensors')) {
      throw new ConfigError(`${abs} is a file but not a .safetensors checkpoint; ${FORMS}`);
    }
    return fromOpenClipFile(abs);
  }
  if (looksLikePath(s)) throw new ModelNotFoundError(`no such file or directory: ${resolvePath(path)}`);
  if (s.includes('/')) return fromHub(s, s, false, opts);

  const builtins = builtinModels(opts.modelsDir);
  if (/^[\w.-]+$/.test(s) && builtins.includes(s)) {
    return fromDir(join(modelsDir(opts.modelsDir), s), s);
  }
  const list = builtins.length ? `builtin models are ${builtins.join(', ')}` : `no builtin models found in ${modelsDir(opts.modelsDir)}`;
  throw new ModelNotFoundError(`unknown model '${s}': ${list}; ${FORMS}`);
}

/** A model's name and config, without its weights. */
export interface ResolvedConfig {
  name: string;
  config: ClipConfig;
  files: string[];
}

/**
 * Resolve a model spec for its config alone (preprocessing): a local checkpoint is opened for its
 * header only and closed, no tensor is read. (A hub id that is not cached yet is still downloaded
 * whole, as resolveModel does.)
 */
export async function resolveModelConfig(spec: string | undefined, opts: ResolveOptions = {}): Promise<ResolvedConfig> {
  const m = await resolveModel(spec, opts);
  m.weights.close();
  return { name: m.name, config: m.config, files: m.files };
}
