// Paths into ../shared/fixtures/reference, failing with a clear message when the shared folder is absent.

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const REF = fileURLToPath(new URL('../../../shared/fixtures/reference/', import.meta.url));

export function referencePath(name: string): string {
  const p = join(REF, name);
  if (!existsSync(p)) throw new Error(`shared fixture missing: ${p} (tests need ../shared/fixtures/reference beside the repository)`);
  return p;
}
