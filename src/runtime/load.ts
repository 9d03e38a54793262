// One call from a model spec (builtin name, path, hub id) to a ready ClipModel with its tokenizer.

import type { RuntimeOptions } from '../graph/session.ts';
import { ClipModel, type Tokenizer } from './clip.ts';
import { checkWeightsFinite, resolveModel, type ResolvedModel } from '../model/resolve.ts';
import { SiglipTokenizer } from '../model/siglip_tokenizer.ts';
import { ClipTokenizer } from '../model/tokenizer.ts';

export interface LoadOptions extends RuntimeOptions {
  cacheDir?: string;
  endpoint?: string;
  offline?: boolean;
  progress?: boolean;
  /** open_clip pretrained tag, with an architecture name as spec. */
  pretrained?: string;
  /** Read every weight once at load and refuse NaN/±Inf, naming the tensor (outputs are always checked). */
  checkWeights?: boolean;
}

async function tokenizerFor(r: ResolvedModel): Promise<Tokenizer | undefined> {
  const t = r.tokenizer;
  if (t.kind === 'hf') return ClipTokenizer.fromHf(t.vocab, t.merges);
  if (t.kind === 'default') return ClipTokenizer.default();
  // SigLIP: SentencePiece; a checkpoint without spiece.model encodes pre-tokenised ids only.
  return t.model ? SiglipTokenizer.load(t.model, { maxLength: r.config.text.contextLength, mode: t.mode, config: t.config }) : undefined;
}

export async function loadClip(spec?: string, opts: LoadOptions = {}): Promise<ClipModel> {
  const r = await resolveModel(spec, { cacheDir: opts.cacheDir, endpoint: opts.endpoint, offline: opts.offline, progress: opts.progress, pretrained: opts.pretrained });
  let tokenizer: Tokenizer | undefined;
  try {
    if (opts.checkWeights) checkWeightsFinite(r.config, r.weights);
    tokenizer = await tokenizerFor(r);
  } catch (e) {
    r.weights.close();
    throw e;
  }
  return new ClipModel({ name: r.name, config: r.config, weights: r.weights, tokenizer }, opts);
}
