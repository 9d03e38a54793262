// One call from a model spec (builtin name, path, hub id) to a ready ClipModel with its tokenizer.

import type { RuntimeOptions } from '../graph/session.ts';
import { ClipModel } from './clip.ts';
import { resolveModel } from '../model/resolve.ts';
import { ClipTokenizer } from '../model/tokenizer.ts';

export interface LoadOptions extends RuntimeOptions {
  cacheDir?: string;
  endpoint?: string;
  offline?: boolean;
  progress?: boolean;
}

export async function loadClip(spec?: string, opts: LoadOptions = {}): Promise<ClipModel> {
  const r = await resolveModel(spec, { cacheDir: opts.cacheDir, endpoint: opts.endpoint, offline: opts.offline, progress: opts.progress });
  const tokenizer = r.tokenizer.kind === 'hf' ? ClipTokenizer.fromHf(r.tokenizer.vocab, r.tokenizer.merges) : ClipTokenizer.default();
  return new ClipModel({ name: r.name, config: r.config, weights: r.weights, tokenizer }, opts);
}
