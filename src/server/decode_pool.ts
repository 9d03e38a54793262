// The explorer's bounded decode queue: uploads are decoded and preprocessed in worker threads
// (decode_worker.ts), at most `workers` at once, at most `maxQueue` waiting (more are refused with
// 503 at once), each within `timeoutMs` (the worker is terminated past it) and a worker heap limit.
// Memory per decode is bounded by the pixel budget: a file never decodes to more than
// budget.pixels pixels (see DecodeOptions.budget in io/image.ts).

import { Worker } from 'node:worker_threads';
import { DEFAULT_MAX_PIXELS } from '../io/image.ts';
import type { PreprocessOptions } from '../model/preprocess.ts';
import { HttpError } from '../errors.ts';
import { siblingModule, startWorker } from '../worker_pool.ts';

export interface DecodeJob {
  id: number;
  label: string;
  bytes: Uint8Array;
  maxPixels: number;
  budget: { pixels: number; minSide: number };
  preprocess: PreprocessOptions;
}

export type DecodeReply =
  | { id: number; u8: Uint8Array; pixels: Float32Array; width: number; height: number; decodedAs?: { width: number; height: number } }
  | { id: number; error: string };

export type Decoded = Extract<DecodeReply, { u8: Uint8Array }>;

export interface DecodePoolOptions {
  /** Decodes at once (worker threads); default 2. */
  workers?: number;
  /** Uploads waiting for a worker before new ones are refused; default 8. */
  maxQueue?: number;
  /** One decode's time limit (ms); default 60 s. */
  timeoutMs?: number;
  /** Each worker's JS heap limit (MB); default 256. Pixel buffers are bounded by the budget instead. */
  heapMb?: number;
}

/** Pixels an upload may decode to for a model of input size S: (16·S)², 12.8 Mpx at 224. */
export function uploadBudget(imageSize: number): { pixels: number; minSide: number } {
  return { pixels: (16 * imageSize) ** 2, minSide: imageSize };
}

interface Pending {
  job: DecodeJob;
  resolve: (r: Decoded) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  current?: Pending;
  timer?: NodeJS.Timeout;
  timedOut?: boolean;
}

// Beside this module: decode_worker.js in dist/, decode_worker.ts when running from source.
const WORKER_URL = siblingModule(import.meta.url, 'decode_worker');

export class DecodePool {
  readonly workers: number;
  readonly maxQueue: number;
  readonly timeoutMs: number;
  private heapMb: number;
  private idle: Slot[] = [];
  private busy = new Set<Slot>();
  private queue: Pending[] = [];
  private nextId = 0;
  private closed = false;

  constructor(opts: DecodePoolOptions = {}) {
    this.workers = opts.workers ?? 2;
    this.maxQueue = opts.maxQueue ?? 8;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.heapMb = opts.heapMb ?? 256;
  }

  stats() {
    return { running: this.busy.size, queued: this.queue.length, workers: this.workers, maxQueue: this.maxQueue };
  }

  /** Start every worker now (at server start), so the first uploads do not pay for it. */
  async warm(): Promise<void> {
    const fresh: Slot[] = [];
    while (this.idle.length + this.busy.size + fresh.length < this.workers) fresh.push(this.spawn());
    await Promise.all(fresh.map((s) => new Promise((r) => s.worker.once('online', r))));
    this.idle.push(...fresh);
  }

  /** Decode and preprocess one upload off the event loop. */
  decode(bytes: Uint8Array, preprocess: PreprocessOptions, label = 'upload'): Promise<Decoded> {
    if (this.closed) return Promise.reject(new HttpError(503, 'the explorer is shutting down'));
    if (this.queue.length >= this.maxQueue) {
      return Promise.reject(new HttpError(503, `the explorer is busy: ${this.busy.size} uploads decoding and ${this.queue.length} waiting (the limit); try again in a moment`));
    }
    const job: DecodeJob = { id: this.nextId++, label, bytes, maxPixels: DEFAULT_MAX_PIXELS, budget: uploadBudget(preprocess.imageSize), preprocess };
    return new Promise<Decoded>((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length && this.busy.size < this.workers) {
      const p = this.queue.shift()!;
      const slot = this.idle.pop() ?? this.spawn();
      this.busy.add(slot);
      slot.current = p;
      slot.timer = setTimeout(() => {
        slot.timedOut = true;
        void slot.worker.terminate();
      }, this.timeoutMs);
      // A copy the worker owns: the caller keeps its buffer.
      const bytes = new Uint8Array(p.job.bytes);
      slot.worker.postMessage({ ...p.job, bytes }, [bytes.buffer as ArrayBuffer]);
    }
  }

  private spawn(): Slot {
    const worker = startWorker(WORKER_URL, { resourceLimits: { maxOldGenerationSizeMb: this.heapMb, maxYoungGenerationSizeMb: 32 } });
    worker.unref();
    const slot: Slot = { worker };
    worker.on('message', (r: DecodeReply) => {
      const p = slot.current;
      this.release(slot);
      this.idle.push(slot);
      if (p && p.job.id === r.id) {
        if ('error' in r) p.reject(new HttpError(400, `image could not be decoded: ${r.error}`));
        else p.resolve(r);
      }
      this.pump();
    });
    const gone = (why: Error | number) => {
      const p = slot.current;
      this.release(slot);
      this.idle = this.idle.filter((s) => s !== slot);
      if (p) {
        const err = slot.timedOut
          ? new HttpError(503, `decoding the image took longer than ${this.timeoutMs / 1000}s (the explorer's limit per upload)`)
          : why instanceof Error && (why as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? new HttpError(503, `decoding the image needed more than the explorer's ${this.heapMb} MB per upload`)
            : new HttpError(500, `the decode worker stopped (${why instanceof Error ? why.message.split('\n')[0] : `exit code ${why}`})`);
        p.reject(err);
      }
      this.pump();
    };
    worker.on('error', (e) => gone(e));
    worker.on('exit', (code) => {
      if (this.busy.has(slot) || this.idle.includes(slot)) gone(code);
    });
    return slot;
  }

  private release(slot: Slot): void {
    clearTimeout(slot.timer);
    slot.current = undefined;
    this.busy.delete(slot);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new HttpError(503, 'the explorer is shutting down'));
    const all = [...this.idle, ...this.busy];
    this.idle = [];
    await Promise.all(all.map((s) => s.worker.terminate()));
  }
}
