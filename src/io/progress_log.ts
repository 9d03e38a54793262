// A job's progress as a JSON-lines file, so a long run can resume after any interruption
// (kill -9 included): line 1 is the run's key (what a continuing run must agree on), then one
// record per finished item, appended as each finishes. A last line torn by a kill is dropped;
// a file written by another run is refused rather than mixed in.

import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { StoreError } from '../errors.ts';
import { fromJson, provenanceFields, requireSameModel, type ModelProvenance } from './provenance.ts';

export class ProgressLog<R> {
  private constructor(
    readonly path: string,
    /** Records of earlier runs, by item name. */
    readonly done: Map<string, R>,
  ) {}

  /**
   * Open (or start) the log at `path` for a run of `model` identified by `key`; `kind` names the
   * job in the key's first field (e.g. 'segment'), `nameOf` gives a record's item name. A log
   * written for another model is refused with a ProvenanceError naming both.
   */
  static open<R>(path: string, kind: string, model: ModelProvenance, key: Record<string, string>, nameOf: (record: R) => string): ProgressLog<R> {
    const head = { cliplens: kind, ...provenanceFields(model), ...key };
    const done = new Map<string, R>();
    if (!existsSync(path)) {
      writeFileSync(path, `${JSON.stringify(head)}\n`);
      return new ProgressLog(path, done);
    }
    const lines = readFileSync(path, 'utf8').split('\n');
    let first: Record<string, unknown> = {};
    try {
      first = JSON.parse(lines[0]) as Record<string, unknown>;
    } catch {
      /* reported below */
    }
    if (first?.cliplens !== kind) throw new StoreError(`progress file ${path} (--resume) is not a cliplens ${kind} progress file`);
    requireSameModel({ what: `progress file ${path} (--resume)`, model: fromJson(first) ?? { name: '?' } }, { what: 'this run', model });
    for (const [k, v] of Object.entries(key))
      if (first[k] !== v) throw new StoreError(`progress file ${path} (--resume) belongs to another run (${k} '${String(first[k])}', now '${v}'); give a new file or delete it`);
    let intact = lines.length;
    for (let i = 1; i < lines.length; i++) {
      if (!lines[i]) continue;
      try {
        const r = JSON.parse(lines[i]) as R;
        done.set(nameOf(r), r);
      } catch {
        intact = i;
        break;
      }
    }
    // Drop a torn last line so appends start on a fresh line.
    if (intact < lines.length) writeFileSync(path, `${lines.slice(0, intact).join('\n')}\n`);
    return new ProgressLog(path, done);
  }

  /** Record one finished item (one line, appended). */
  append(record: R): void {
    appendFileSync(this.path, `${JSON.stringify(record)}\n`);
  }
}
