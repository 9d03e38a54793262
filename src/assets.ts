// Files that ship with the package (builtin models, the BPE merges, the bundled web UI), found
// relative to the package root, so a source checkout, the compiled dist/ and an installed copy
// all find them the same way.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The directory holding cliplens' package.json (this file lives in src/ or dist/ below it). */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'cliplens') return (root = dir);
      } catch {
        // not ours; keep looking
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`cliplens: cannot find the package root above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** A path inside the package, e.g. assetPath('assets', 'bpe_simple_vocab_16e6.txt.gz'). */
export function assetPath(...parts: string[]): string {
  return join(packageRoot(), ...parts);
}

/** The package's version, from its package.json. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(assetPath('package.json'), 'utf8')) as { version: string }).version;
}
