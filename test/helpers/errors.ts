import assert from 'node:assert/strict';
import type { ResolvedModel } from '../../src/model/resolve.ts';

/** The promise rejects with one line matching `pattern` (a model it resolves to anyway is closed). */
export async function rejectsOneLine(p: Promise<unknown>, pattern: RegExp): Promise<Error> {
  let err: Error | undefined;
  try {
    ((await p) as ResolvedModel | undefined)?.weights?.close();
  } catch (e) {
    err = e as Error;
  }
  assert.ok(err, 'expected an error');
  assert.match(err.message, pattern);
  assert.ok(!err.message.includes('\n'), `multi-line message: ${err.message}`);
  return err;
}
