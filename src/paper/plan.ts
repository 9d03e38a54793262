// A plan of steps that runs once, resumes after any interruption (kill -9 included) and never
// mixes models: every finished step is recorded in the work folder as one JSON file, written
// atomically, with a key (a hash of its parameters, its model's fingerprint and the keys of the
// steps it reads) and the model that made it. A rerun skips every step whose record has the same
// key; a record (or a work folder) made by another model is refused, not overwritten. Steps with
// long inner loops (stores, per-image scores) keep their own resumable files in the work folder.
//
// Progress is one display over the whole plan: each step's estimate weighs its share, and a step
// reports how far it is through its own units.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { atomicWrite, removeStaleTemps } from '../io/files.ts';
import { ProvenanceError, UsageError } from '../errors.ts';

export interface ModelId {
  name: string;
  fingerprint: string;
}

export interface StepEstimate {
  /** Seconds on this machine (from a calibration run). */
  seconds: number;
  /** Bytes written to disk. */
  bytes: number;
}

export interface StepContext {
  /** The work folder (stores, text sets, step records). */
  work: string;
  /** Progress inside the step: `done` of `total` units. */
  progress(done: number, total: number, note?: string): void;
  log(msg: string): void;
}

export interface Step<T = unknown> {
  /** Unique and stable: the record's file name. */
  id: string;
  title: string;
  /** Paper section the step belongs to (for the plan table and the report). */
  section: string;
  /** Steps whose results this one reads (earlier in the plan). */
  deps?: string[];
  /** Everything besides its inputs the result depends on (settings, data identity): part of the key. */
  params: unknown;
  /** The model that makes the result (default: the plan's). */
  model?: ModelId;
  /** Read when the plan is shown or run (so it can depend on a calibration made after the plan). */
  estimate: StepEstimate | (() => StepEstimate);
  /** Files (relative to the work folder) the result refers to; a record whose files are gone is recomputed. */
  files?(result: T): string[];
  run(ctx: StepContext, inputs: Record<string, unknown>): Promise<T>;
}

export interface PlannedStep {
  id: string;
  title: string;
  section: string;
  model: ModelId;
  estimate: StepEstimate;
  cached: boolean;
}

export type PlanEvent =
  | { type: 'start'; step: PlannedStep; index: number; count: number }
  | { type: 'progress'; step: PlannedStep; fraction: number; overall: number; note?: string }
  | { type: 'done'; step: PlannedStep; index: number; seconds: number; cached: boolean; overall: number };

const FORMAT = 'cliplens-paper-work';
const STEP_FORMAT = 'cliplens-paper-step';
const VERSION = 1;

interface StepRecord {
  format: typeof STEP_FORMAT;
  version: number;
  step: string;
  key: string;
  model: ModelId;
  seconds: number;
  finishedAt: string;
  result: unknown;
}

/** JSON with typed arrays as plain arrays and non-finite numbers as null (what a record holds). */
export function toPlainJson(v: unknown, space?: number): string {
  return JSON.stringify(v, (_k, x) => (ArrayBuffer.isView(x) && !(x instanceof DataView) ? Array.from(x as unknown as ArrayLike<number>) : typeof x === 'number' && !Number.isFinite(x) ? null : x), space);
}

const describe = (m: ModelId) => `'${m.name}' (fingerprint ${m.fingerprint})`;

/** Test hook: CLIPLENS_TEST_PAPER_KILL=after:<step id> or in:<step id>:<units> kills the process with SIGKILL there. */
function killHook(): { after?: string; inStep?: string; units?: number } {
  const v = process.env.CLIPLENS_TEST_PAPER_KILL;
  if (!v) return {};
  const a = /^after:(.+)$/.exec(v);
  if (a) return { after: a[1] };
  const i = /^in:(.+):(\d+)$/.exec(v);
  if (i) return { inStep: i[1], units: Number(i[2]) };
  return {};
}

export class Plan {
  readonly steps: Step[];
  private keys = new Map<string, string>();
  private readonly stepDir: string;

  /**
   * `version` names the format of the steps' results: part of every key, so records written by a
   * version that computed or laid out results differently are recomputed, not misread.
   */
  constructor(readonly work: string, readonly model: ModelId, steps: Step[], readonly version = '1') {
    const seen = new Set<string>();
    for (const s of steps) {
      if (seen.has(s.id)) throw new UsageError(`plan: step '${s.id}' appears twice`);
      if (!/^[A-Za-z0-9_.:-]+$/.test(s.id)) throw new UsageError(`plan: step id '${s.id}' has characters a file name cannot hold`);
      for (const d of s.deps ?? []) if (!seen.has(d)) throw new UsageError(`plan: step '${s.id}' reads '${d}', which does not come before it`);
      seen.add(s.id);
    }
    this.steps = steps;
    this.stepDir = join(work, 'steps');
    for (const s of steps) {
      const h = createHash('sha256');
      h.update(toPlainJson({ id: s.id, version: this.version, params: s.params, model: this.modelOf(s).fingerprint, deps: (s.deps ?? []).map((d) => this.keys.get(d)) }));
      this.keys.set(s.id, h.digest('hex').slice(0, 24));
    }
  }

  private modelOf(s: Step): ModelId {
    return s.model ?? this.model;
  }

  private recordPath(id: string): string {
    return join(this.stepDir, `${id.replace(/:/g, '--')}.json`);
  }

  /** The work folder's own record, if there is one: made by this plan's model, or refused. */
  private checkWork(): boolean {
    const p = join(this.work, 'work.json');
    if (!existsSync(p)) return false;
    let w: { format?: string; model?: ModelId };
    try {
      w = JSON.parse(readFileSync(p, 'utf8'));
    } catch (e) {
      throw new UsageError(`${p} is not readable JSON (${(e as Error).message}); delete the folder ${this.work} to start again`);
    }
    if (w.format !== FORMAT || !w.model) throw new UsageError(`${this.work} is not a cliplens paper work folder (${p} says otherwise); give another --out`);
    if (w.model.fingerprint !== this.model.fingerprint)
      throw new ProvenanceError(`work folder ${this.work} holds results of model ${describe(w.model)}, not ${describe(this.model)}; give another --out or delete it`);
    return true;
  }

  /** Claims the work folder for this plan's model (a folder of another model is refused). */
  claim(): void {
    mkdirSync(this.stepDir, { recursive: true });
    removeStaleTemps(this.stepDir);
    if (!this.checkWork()) atomicWrite(join(this.work, 'work.json'), toPlainJson({ format: FORMAT, version: VERSION, model: this.model }, 1) + '\n', 'paper work record');
  }

  /** The record of a step if it is there, made by the step's model, with the current key and its files. */
  private cachedRecord(s: Step): StepRecord | undefined {
    const p = this.recordPath(s.id);
    if (!existsSync(p)) return undefined;
    let r: StepRecord;
    try {
      r = JSON.parse(readFileSync(p, 'utf8')) as StepRecord;
    } catch {
      return undefined; // a torn record cannot be: records are renamed into place; recompute anyway
    }
    if (r.format !== STEP_FORMAT || r.step !== s.id) return undefined;
    const m = this.modelOf(s);
    if (r.model?.fingerprint !== m.fingerprint) throw new ProvenanceError(`step record ${p} was made by model ${describe(r.model)}, this plan's step needs ${describe(m)}; give another --out or delete it`);
    if (r.key !== this.keys.get(s.id)) return undefined;
    const files = s.files?.(r.result as never) ?? [];
    if (files.some((f) => !existsSync(join(this.work, f)))) return undefined;
    return r;
  }

  /** Every step with its estimate and whether a valid record already holds it. */
  status(): PlannedStep[] {
    this.checkWork();
    return this.steps.map((s) => ({ id: s.id, title: s.title, section: s.section, model: this.modelOf(s), estimate: typeof s.estimate === 'function' ? s.estimate() : s.estimate, cached: !!this.cachedRecord(s) }));
  }

  /** Ids of the steps no valid record holds yet. */
  pending(): string[] {
    this.checkWork();
    return this.steps.filter((s) => !this.cachedRecord(s)).map((s) => s.id);
  }

  /** Runs every step not already recorded, in order; returns every step's result by id. */
  async run(onEvent: (e: PlanEvent) => void = () => {}, log: (msg: string) => void = () => {}): Promise<Record<string, unknown>> {
    this.claim();
    const kill = killHook();
    const planned = this.status();
    const weight = planned.map((p) => (p.cached ? 0 : Math.max(p.estimate.seconds, 0.01)));
    const total = weight.reduce((a, b) => a + b, 0) || 1;
    let doneWeight = 0;
    const results: Record<string, unknown> = {};
    for (const [i, s] of this.steps.entries()) {
      const step = planned[i];
      onEvent({ type: 'start', step, index: i, count: this.steps.length });
      const rec = step.cached ? this.cachedRecord(s) : undefined;
      if (rec) {
        results[s.id] = rec.result;
        onEvent({ type: 'done', step, index: i, seconds: 0, cached: true, overall: doneWeight / total });
        continue;
      }
      const inputs = Object.fromEntries((s.deps ?? []).map((d) => [d, results[d]]));
      const t0 = performance.now();
      const ctx: StepContext = {
        work: this.work,
        log,
        progress: (done, of, note) => {
          const f = of > 0 ? Math.min(1, done / of) : 0;
          onEvent({ type: 'progress', step, fraction: f, overall: (doneWeight + f * weight[i]) / total, note });
          if (kill.inStep === s.id && done >= kill.units!) process.kill(process.pid, 'SIGKILL');
        },
      };
      const value = await s.run(ctx, inputs);
      const seconds = (performance.now() - t0) / 1000;
      // What a later run reads back is exactly what this run uses.
      const result = JSON.parse(toPlainJson(value ?? null));
      const record: StepRecord = { format: STEP_FORMAT, version: VERSION, step: s.id, key: this.keys.get(s.id)!, model: this.modelOf(s), seconds, finishedAt: new Date().toISOString(), result };
      atomicWrite(this.recordPath(s.id), toPlainJson(record) + '\n', 'paper step record');
      results[s.id] = result;
      doneWeight += weight[i];
      onEvent({ type: 'done', step, index: i, seconds, cached: false, overall: doneWeight / total });
      if (kill.after === s.id) process.kill(process.pid, 'SIGKILL');
    }
    return results;
  }
}
