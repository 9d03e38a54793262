// One call from a model spec (builtin name, path, hub id) to a ready ClipModel with its tokenizer.

import type { RuntimeOptions } from '../graph/session.ts';
import { ClipModel } from './clip.ts';
import { checkWeightsFinite, resolveModel } from '../model/resolve.ts';
import { ClipTokenizer } from '../model/tokenizer.ts';

export interface LoadOptions extends RuntimeOptions {
  cacheDir?: string;
  endpoint?: string;
  offline?: boolean;
  progress?: boolean;
  /** Read every weight once at load and refuse NaN/±Inf, naming the tensor (outputs are always checked). */
  checkWeights?: boolean;
}

export async function loadClip(spec?: string, opts: LoadOptions = {}): Promise<ClipModel> {
  const r = await resolveModel(spec, { cacheDir: opts.cacheDir, endpoint: opts.endpoint, offline: opts.offline, progress: opts.progress });
  if (opts.checkWeights) {
    try {
      checkWeightsFinite(r.config, r.weights);
    } catch (e) {
      r.weights.close();
      throw e;
    }
  }
  const tokenizer = r.tokenizer.kind === 'hf' ? ClipTokenizer.fromHf(r.tokenizer.vocab, r.tokenizer.merges) : ClipTokenizer.default();
  return new ClipModel({ name: r.name, config: r.config, weights: r.weights, tokenizer }, opts);
}
