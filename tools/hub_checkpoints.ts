// Randomly initialised checkpoints with the exact file layout and tensor names of the hub
// repositories users download, for the scale benchmark and the hub tests: open_clip repos
// (open_clip_config.json with the real model_cfg and preprocess_cfg + open_clip_model.safetensors,
// plus the repos' tokenizer and preprocessor files) and transformers CLIPModel repos (config.json,
// model.safetensors with transformers' tensor names, vocab.json, merges.txt, tokenizer files,
// preprocessor_config.json). Weights are written one tensor at a time, so a 10 GB ViT-bigG/14
// needs only its largest tensor in memory. Pickled duplicates on the hub (*.bin, *.h5) are not written.
//
//   node --import tsx tools/hub_checkpoints.ts --out .cache/hub-src [--seed 1] [--vision-layers 2 --text-layers 1] REPO|ALIAS …
//   aliases: b16, l14, l14-336, h14, bigG, b16-openai
// Writes <out>/<org>/<name>/<files> and <out>/<org>/<name>/.sha256.json (the small files' sha256, which
// tools/hub_server.ts announces as the hub's x-linked-etag; it hashes the weights itself).

import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { pathToFileURL } from 'node:url';
import { assetPath } from '../src/assets.ts';
import { SafetensorsWriter } from '../src/io/safetensors.ts';
import { OPENAI_MEAN, OPENAI_STD, parseOpenClipConfig, type ClipConfig } from '../src/model/config.ts';
import { hfMapping } from '../src/model/hf_layout.ts';
import { randomTensorSpecs, type RandomTensor } from '../test/helpers/random_weights.ts';
import { normalRng } from '../src/rng.ts';
import { bytesToUnicode } from '../src/model/tokenizer.ts';
import type { TypedData } from '../src/tensor.ts';

type OpenClipModelCfg = {
  embed_dim: number;
  quick_gelu?: boolean;
  vision_cfg: { image_size: number; layers: number; width: number; head_width?: number; mlp_ratio?: number; patch_size: number };
  text_cfg: { context_length: number; vocab_size: number; width: number; heads: number; layers: number };
};

export interface HubModel {
  repo: string;
  layout: 'open_clip' | 'transformers';
  /** The open_clip model config (open_clip's model_configs/<arch>.json). */
  modelCfg: OpenClipModelCfg;
  /** open_clip_config.json preprocess_cfg (open_clip layout). */
  preprocessCfg?: { mean: number[]; std: number[] };
  /** The transformers repo's preprocessor_config.json. */
  preprocessor?: Record<string, unknown>;
}

const INCEPTION = [0.5, 0.5, 0.5];
const text = (width: number, heads: number, layers: number) => ({ context_length: 77, vocab_size: 49408, width, heads, layers });

// open_clip's model_configs: ViT-B-16.json, ViT-L-14.json, ViT-L-14-336.json, ViT-H-14.json, ViT-bigG-14.json.
const VIT_B_16: OpenClipModelCfg = { embed_dim: 512, vision_cfg: { image_size: 224, layers: 12, width: 768, patch_size: 16 }, text_cfg: text(512, 8, 12) };
const VIT_L_14: OpenClipModelCfg = { embed_dim: 768, vision_cfg: { image_size: 224, layers: 24, width: 1024, patch_size: 14 }, text_cfg: text(768, 12, 12) };
const VIT_L_14_336: OpenClipModelCfg = { ...VIT_L_14, vision_cfg: { ...VIT_L_14.vision_cfg, image_size: 336 } };
const VIT_H_14: OpenClipModelCfg = { embed_dim: 1024, vision_cfg: { image_size: 224, layers: 32, width: 1280, head_width: 80, patch_size: 14 }, text_cfg: text(1024, 16, 24) };
const VIT_BIGG_14: OpenClipModelCfg = {
  embed_dim: 1280,
  vision_cfg: { image_size: 224, layers: 48, width: 1664, head_width: 104, mlp_ratio: 4.9231, patch_size: 14 },
  text_cfg: text(1280, 20, 32),
};

/** The transformers repos' old-style preprocessor_config.json (OpenAI CLIP). */
const openaiPreprocessor = (size: number) => ({
  crop_size: size, do_center_crop: true, do_normalize: true, do_resize: true, feature_extractor_type: 'CLIPFeatureExtractor',
  image_mean: OPENAI_MEAN, image_std: OPENAI_STD, resample: 3, size,
});

export const HUB_MODELS: Record<string, HubModel> = {
  b16: { repo: 'laion/CLIP-ViT-B-16-laion2B-s34B-b88K', layout: 'open_clip', modelCfg: VIT_B_16, preprocessCfg: { mean: OPENAI_MEAN, std: OPENAI_STD } },
  l14: { repo: 'laion/CLIP-ViT-L-14-laion2B-s32B-b82K', layout: 'open_clip', modelCfg: VIT_L_14, preprocessCfg: { mean: INCEPTION, std: INCEPTION } },
  'l14-336': { repo: 'openai/clip-vit-large-patch14-336', layout: 'transformers', modelCfg: { ...VIT_L_14_336, quick_gelu: true }, preprocessor: openaiPreprocessor(336) },
  h14: { repo: 'laion/CLIP-ViT-H-14-laion2B-s32B-b79K', layout: 'open_clip', modelCfg: VIT_H_14, preprocessCfg: { mean: OPENAI_MEAN, std: OPENAI_STD } },
  bigG: { repo: 'laion/CLIP-ViT-bigG-14-laion2B-39B-b160k', layout: 'open_clip', modelCfg: VIT_BIGG_14, preprocessCfg: { mean: OPENAI_MEAN, std: OPENAI_STD } },
  'b16-openai': { repo: 'openai/clip-vit-base-patch16', layout: 'transformers', modelCfg: { ...VIT_B_16, quick_gelu: true }, preprocessor: openaiPreprocessor(224) },
};

export function hubModel(nameOrRepo: string): HubModel {
  const m = HUB_MODELS[nameOrRepo] ?? Object.values(HUB_MODELS).find((x) => x.repo === nameOrRepo);
  if (!m) throw new Error(`unknown hub model '${nameOrRepo}': known are ${Object.entries(HUB_MODELS).map(([k, v]) => `${k} (${v.repo})`).join(', ')}`);
  return m;
}

export interface WriteOptions {
  seed?: number;
  /** Fewer layers than the real model (tests): same layout and tensor names, smaller file. */
  visionLayers?: number;
  textLayers?: number;
  /** Rewrite even when the files are there. */
  force?: boolean;
}

/** The config actually written (depth reduced when asked). */
export function writtenModelCfg(m: HubModel, o: WriteOptions = {}): OpenClipModelCfg {
  return {
    ...m.modelCfg,
    vision_cfg: { ...m.modelCfg.vision_cfg, layers: o.visionLayers ?? m.modelCfg.vision_cfg.layers },
    text_cfg: { ...m.modelCfg.text_cfg, layers: o.textLayers ?? m.modelCfg.text_cfg.layers },
  };
}

/** fp32 bytes of one tower's weights (what a vision-only run loads) and of the whole checkpoint. */
export function weightBytes(cfg: ClipConfig): { vision: number; text: number; total: number } {
  const sum = (towers: ('vision' | 'text')[]) => randomTensorSpecs(cfg, towers).filter((s) => s.name !== 'logit_scale').reduce((a, s) => a + 4 * s.shape.reduce((x, y) => x * y, 1), 0);
  const vision = sum(['vision']);
  const text = sum(['text']);
  return { vision, text, total: vision + text + 4 };
}

// ---- tokenizer files (transformers' CLIPTokenizer layout, from the bundled open_clip BPE) ----

const N_MERGES = 49152 - 256 - 2;

function tokenizerFiles(): Record<string, string> {
  const merges = gunzipSync(readFileSync(assetPath('assets', 'bpe_simple_vocab_16e6.txt.gz'))).toString('utf8').split('\n').slice(1, N_MERGES + 1);
  const bytes = bytesToUnicode().map(([, c]) => c);
  const vocabList = [...bytes, ...bytes.map((c) => c + '</w>'), ...merges.map((l) => l.split(' ').join('')), '<|startoftext|>', '<|endoftext|>'];
  const vocab = Object.fromEntries(vocabList.map((t, i) => [t, i]));
  const special = (content: string, id: number) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true });
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special('<|startoftext|>', 49406), special('<|endoftext|>', 49407)],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }] },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+" }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: { type: 'RobertaProcessing', sep: ['<|endoftext|>', 49407], cls: ['<|startoftext|>', 49406], trim_offsets: false, add_prefix_space: false },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: '<|endoftext|>', continuing_subword_prefix: '', end_of_word_suffix: '</w>', fuse_unk: false, vocab, merges },
  };
  const tok = (content: string) => ({ content, lstrip: false, normalized: true, rstrip: false, single_word: false });
  return {
    'vocab.json': JSON.stringify(vocab),
    'merges.txt': '#version: 0.2\n' + merges.join('\n') + '\n',
    'tokenizer.json': JSON.stringify(tokenizerJson),
    'tokenizer_config.json': JSON.stringify({ add_prefix_space: false, bos_token: tok('<|startoftext|>'), do_lower_case: true, eos_token: tok('<|endoftext|>'), errors: 'replace', model_max_length: 77, pad_token: '<|endoftext|>', tokenizer_class: 'CLIPTokenizer', unk_token: tok('<|endoftext|>') }, null, 2),
    'special_tokens_map.json': JSON.stringify({ bos_token: tok('<|startoftext|>'), eos_token: tok('<|endoftext|>'), pad_token: '<|endoftext|>', unk_token: tok('<|endoftext|>') }, null, 2),
  };
}

// ---- transformers config.json ----

function hfConfig(c: OpenClipModelCfg): Record<string, unknown> {
  const v = c.vision_cfg;
  const t = c.text_cfg;
  const act = c.quick_gelu ? 'quick_gelu' : 'gelu';
  const vision = {
    hidden_size: v.width, image_size: v.image_size, intermediate_size: Math.round(v.width * (v.mlp_ratio ?? 4)),
    num_attention_heads: v.width / (v.head_width ?? 64), num_hidden_layers: v.layers, patch_size: v.patch_size, projection_dim: c.embed_dim,
  };
  const textCfg = { hidden_size: t.width, intermediate_size: 4 * t.width, num_attention_heads: t.heads, num_hidden_layers: t.layers, projection_dim: c.embed_dim };
  return {
    _name_or_path: '', architectures: ['CLIPModel'], initializer_factor: 1.0, logit_scale_init_value: 2.6592, model_type: 'clip', projection_dim: c.embed_dim,
    text_config: { ...textCfg, model_type: 'clip_text_model', hidden_act: act, layer_norm_eps: 1e-5, max_position_embeddings: t.context_length, vocab_size: t.vocab_size, bos_token_id: 0, eos_token_id: 2, pad_token_id: 1, dropout: 0.0, attention_dropout: 0.0, initializer_range: 0.02, initializer_factor: 1.0 },
    text_config_dict: textCfg,
    torch_dtype: 'float32',
    transformers_version: null,
    vision_config: { ...vision, model_type: 'clip_vision_model', hidden_act: act, layer_norm_eps: 1e-5, num_channels: 3, dropout: 0.0, attention_dropout: 0.0, initializer_range: 0.02, initializer_factor: 1.0 },
    vision_config_dict: vision,
  };
}

/** The recipe's tensors under transformers' names (q/k/v split, projections transposed) plus the position_ids buffers. */
function hfSpecs(specs: RandomTensor[], cfg: ClipConfig): (RandomTensor & { dtype?: 'I64' })[] {
  const out: (RandomTensor & { dtype?: 'I64' })[] = [];
  for (const s of specs) {
    const m = hfMapping(s.name);
    if (!m) throw new Error(`no transformers name for ${s.name}`);
    if (m.kind === 'same') out.push({ ...s, name: m.sources[0] });
    else if (m.kind === 'transpose') out.push({ ...s, name: m.sources[0], shape: [s.shape[1], s.shape[0]] });
    else for (const src of m.sources) out.push({ ...s, name: src, shape: [s.shape[0] / m.sources.length, ...s.shape.slice(1)] });
  }
  const tokens = (cfg.vision.imageSize / cfg.vision.patchSize) ** 2 + 1;
  out.push({ name: 'text_model.embeddings.position_ids', shape: [1, cfg.text.contextLength], std: 0, mean: 0, dtype: 'I64' });
  out.push({ name: 'vision_model.embeddings.position_ids', shape: [1, tokens], std: 0, mean: 0, dtype: 'I64' });
  return out;
}

function writeText(path: string, body: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, body);
  renameSync(tmp, path);
}

/**
 * Write the repo under <out>/<org>/<name>/ (skipped when complete, unless force). Returns its directory.
 * Random draws: one seeded normal stream, tensors in the recipe's order, so a seed fixes the weights.
 */
export function writeHubCheckpoint(m: HubModel, out: string, o: WriteOptions = {}, log: (s: string) => void = () => {}): string {
  const dir = join(resolve(out), ...m.repo.split('/'));
  const shaFile = join(dir, '.sha256.json');
  const modelCfg = writtenModelCfg(m, o);
  const weightsName = m.layout === 'open_clip' ? 'open_clip_model.safetensors' : 'model.safetensors';
  const stamp = JSON.stringify({ modelCfg, seed: o.seed ?? 0, generator: 'table-rows-v1' });
  if (!o.force && existsSync(shaFile) && existsSync(join(dir, weightsName))) {
    const rec = JSON.parse(readFileSync(shaFile, 'utf8')) as { stamp?: string };
    if (rec.stamp === stamp) return dir;
  }
  mkdirSync(dir, { recursive: true });
  const cfg = parseOpenClipConfig(modelCfg);
  const files: Record<string, string> = tokenizerFiles();
  if (m.layout === 'open_clip') {
    files['open_clip_config.json'] = JSON.stringify({ model_cfg: modelCfg, preprocess_cfg: m.preprocessCfg }, null, 2);
    const pp = m.preprocessCfg ?? { mean: OPENAI_MEAN, std: OPENAI_STD };
    files['preprocessor_config.json'] = JSON.stringify({ ...openaiPreprocessor(modelCfg.vision_cfg.image_size), image_mean: pp.mean, image_std: pp.std }, null, 2);
  } else {
    files['config.json'] = JSON.stringify(hfConfig(modelCfg), null, 2);
    files['preprocessor_config.json'] = JSON.stringify(m.preprocessor, null, 2);
  }
  const sha: Record<string, string> = {};
  for (const [name, body] of Object.entries(files)) {
    writeText(join(dir, name), body);
    sha[name] = createHash('sha256').update(body).digest('hex');
  }
  const recipe = randomTensorSpecs(cfg);
  const specs: (RandomTensor & { dtype?: 'I64' })[] = m.layout === 'open_clip' ? recipe : hfSpecs(recipe, cfg);
  // Random values: rows of a table of 2^20 seeded standard normals read from random offsets (a fresh
  // offset per row of 1024 values), so writing 10 GB costs memory bandwidth, not 2.5 billion
  // Box-Muller draws; every tensor still gets its own seeded, row-wise distinct values.
  const table = tableFor(o.seed ?? 0);
  const t0 = Date.now();
  let written = 0;
  const total = specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1) * (s.dtype === 'I64' ? 8 : 4), 0);
  let lastLog = 0;
  const produce = (s: RandomTensor & { dtype?: 'I64' }): TypedData => {
    const n = s.shape.reduce((x, y) => x * y, 1);
    written += n * (s.dtype === 'I64' ? 8 : 4);
    if (Date.now() - lastLog > 30_000) {
      lastLog = Date.now();
      log(`  ${m.repo}/${weightsName}: ${(written / 2 ** 30).toFixed(2)} of ${(total / 2 ** 30).toFixed(2)} GiB`);
    }
    if (s.dtype === 'I64') return BigInt64Array.from({ length: n }, (_, i) => BigInt(i % s.shape[s.shape.length - 1]));
    const data = new Float32Array(n);
    if (s.std === 0) return data.fill(s.mean);
    let state = (hashName(s.name) ^ Math.imul(o.seed ?? 0, 0x9e3779b1)) >>> 0;
    for (let r = 0; r < n; r += ROW) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      const off = state & (TABLE - 1);
      const len = Math.min(ROW, n - r);
      for (let i = 0; i < len; i++) data[r + i] = s.mean + s.std * table[(off + i) & (TABLE - 1)];
    }
    return data;
  };
  // One tensor at a time into its place in the file (the writer fixes the header up front); the
  // hub server hashes the weights file itself when it first announces it.
  const writer = new SafetensorsWriter(join(dir, weightsName), Object.fromEntries(specs.map((s) => [s.name, { dtype: s.dtype ?? 'F32', shape: s.shape }])), { format: 'pt' });
  try {
    for (const s of specs) writer.write(s.name, 0, produce(s));
    writer.finish();
  } catch (e) {
    writer.abort();
    throw e;
  }
  writeText(shaFile, JSON.stringify({ stamp, files: sha, sizes: Object.fromEntries(Object.keys(sha).map((f) => [f, statSync(join(dir, f)).size])) }, null, 1));
  log(`wrote ${m.repo} (${(total / 2 ** 30).toFixed(2)} GiB of weights) in ${((Date.now() - t0) / 1000).toFixed(0)} s → ${dir}`);
  return dir;
}

const TABLE = 1 << 20;
const ROW = 1024;
const tables = new Map<number, Float32Array>();

function tableFor(seed: number): Float32Array {
  let t = tables.get(seed);
  if (!t) {
    const rng = normalRng(seed);
    t = Float32Array.from({ length: TABLE }, rng);
    tables.set(seed, t);
  }
  return t;
}

/** Each tensor's offsets come from its name, so writing order (dtype-sorted in the file) does not matter. */
function hashName(name: string): number {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return h >>> 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const flag = (name: string) => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const v = args[i + 1];
    args.splice(i, 2);
    return v;
  };
  const out = flag('--out') ?? '.cache/hub-src';
  const seed = Number(flag('--seed') ?? 0);
  const vl = flag('--vision-layers');
  const tl = flag('--text-layers');
  const force = args.includes('--force');
  const names = args.filter((a) => a !== '--force');
  if (!names.length) {
    console.error(`usage: node --import tsx tools/hub_checkpoints.ts [--out DIR] [--seed S] [--vision-layers N] [--text-layers N] [--force] MODEL…\nmodels: ${Object.entries(HUB_MODELS).map(([k, v]) => `${k} = ${v.repo}`).join(', ')}`);
    process.exit(2);
  }
  for (const n of names) {
    const dir = writeHubCheckpoint(hubModel(n), out, { seed, visionLayers: vl ? Number(vl) : undefined, textLayers: tl ? Number(tl) : undefined, force }, (s) => console.error(s));
    console.log(dir);
  }
}
