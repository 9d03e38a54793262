// The CLI run in this process (through main(), as bin/cliplens does), its stdout and stderr captured.

import { main } from '../../src/cli/main.ts';

export async function runCli(args: string[]): Promise<{ rc: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  // The CLI writes strings; the test runner's own messages (binary) go through untouched.
  process.stdout.write = ((c: string | Uint8Array, ...rest: unknown[]) => (typeof c === 'string' ? ((out += c), true) : (ow as (...a: unknown[]) => boolean)(c, ...rest))) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array, ...rest: unknown[]) => (typeof c === 'string' ? ((err += c), true) : (ew as (...a: unknown[]) => boolean)(c, ...rest))) as typeof process.stderr.write;
  try {
    const rc = await main(args);
    return { rc, out, err };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}
