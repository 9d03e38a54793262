// What the analysis commands share: opening stores and text sets with one-line errors, writing
// the report and the --json result.

import { writeReport, type Report } from '../report/writer.ts';
import { checkInputPath, pathProblem } from '../io/files.ts';
import { loadStore, type StoreData } from '../io/store.ts';
import { readTextSet, type TextSet } from '../analyses/text_sets.ts';
import { UsageError } from '../errors.ts';

export const VERIFY_HELP = "check every store shard's sha256 before use (size, header and rows are always checked)";

export function openStore(dir: string | undefined, verify = false): StoreData {
  if (!dir) throw new UsageError('--store DIR is required');
  const why = pathProblem(dir, 'directory');
  if (why) throw new UsageError(`store ${dir} ${why}${why === 'does not exist' ? ` (make one with 'cliplens decompose --dataset ... --store ${dir}')` : ''}`);
  const s = loadStore(dir, { verify });
  if (s.attn.shape[0] === 0) throw new UsageError(`store ${dir} holds no decomposed images yet`);
  return s;
}

export function openTextSet(path: string, flag: string): TextSet {
  checkInputPath(path, `--${flag}`);
  return readTextSet(path);
}

export const toJson = (v: unknown) =>
  JSON.stringify(v, (_k, x) => (ArrayBuffer.isView(x) && !(x instanceof DataView) ? Array.from(x as unknown as ArrayLike<number>) : typeof x === 'number' && !Number.isFinite(x) ? null : x));

/** Write the report (when asked) and print the result as JSON (when asked). */
export async function finish(o: { report?: string; json?: boolean }, result: unknown, report: () => Promise<Report>): Promise<void> {
  if (o.report) {
    const w = await writeReport(o.report, await report());
    process.stderr.write(`wrote report ${o.report}/index.html (${w.files.length} files)\n`);
  }
  if (o.json) process.stdout.write(toJson(result) + '\n');
}
