// A small pool of worker threads running one module, for CPU work that should overlap the
// forward pass (image decoding and preprocessing). Tasks are messages answered one for one, in
// any order; idle workers do not keep the process alive.

import { availableParallelism } from 'node:os';
import { Worker, type TransferListItem, type WorkerOptions } from 'node:worker_threads';

/** One worker per core, at most `max` (the forward pass has the cores most of the time). */
export function defaultPoolSize(max = 4): number {
  return Math.max(1, Math.min(max, availableParallelism()));
}

/**
 * The URL of a module beside `importMetaUrl`, written `name` without extension: .ts when running
 * from source (tsx), .js when running the compiled package.
 */
export function siblingModule(importMetaUrl: string, name: string): URL {
  return new URL(`./${name}${importMetaUrl.endsWith('.ts') ? '.ts' : '.js'}`, importMetaUrl);
}

/**
 * Workers do not inherit tsx's loader from `--import tsx` on Node 20: a module run from source
 * (.ts, in tests and benchmarks) is started through a bootstrap that registers tsx first.
 */
export function startWorker(module: URL, opts: WorkerOptions = {}): Worker {
  if (!module.pathname.endsWith('.ts')) return new Worker(module, opts);
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(module.href)}); });`;
  return new Worker(boot, { ...opts, eval: true });
}

interface Task<In, Out> {
  msg: In;
  transfer: readonly TransferListItem[];
  resolve: (out: Out) => void;
  reject: (e: unknown) => void;
}

interface Slot<In, Out> {
  worker: Worker;
  task?: Task<In, Out>;
}

export class WorkerPool<In, Out> {
  private slots: Slot<In, Out>[] = [];
  private queue: Task<In, Out>[] = [];
  private closed = false;

  constructor(
    private readonly module: URL,
    readonly size = defaultPoolSize(),
  ) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`worker pool size must be a positive integer, got ${size}`);
  }

  /** Send `msg` to a free worker (queued while all are busy); resolves with its answer. */
  run(msg: In, transfer: readonly TransferListItem[] = []): Promise<Out> {
    if (this.closed) return Promise.reject(new Error('worker pool is closed'));
    return new Promise<Out>((resolve, reject) => {
      this.queue.push({ msg, transfer, resolve, reject });
      this.dispatch();
    });
  }

  private spawn(): Slot<In, Out> {
    const slot: Slot<In, Out> = { worker: startWorker(this.module) };
    slot.worker.unref();
    slot.worker.on('message', (out: Out) => {
      const t = slot.task;
      slot.task = undefined;
      slot.worker.unref();
      t?.resolve(out);
      this.dispatch();
    });
    const fail = (e: unknown) => {
      // a worker that died takes its task with it; the next task gets a fresh worker
      this.slots = this.slots.filter((s) => s !== slot);
      const t = slot.task;
      slot.task = undefined;
      t?.reject(e instanceof Error ? e : new Error(`worker exited (${String(e)})`));
      this.dispatch();
    };
    slot.worker.on('error', fail);
    slot.worker.on('exit', (code) => {
      if (slot.task) fail(new Error(`worker exited with code ${code}`));
      else this.slots = this.slots.filter((s) => s !== slot);
    });
    this.slots.push(slot);
    return slot;
  }

  private dispatch(): void {
    while (this.queue.length && !this.closed) {
      const slot = this.slots.find((s) => !s.task) ?? (this.slots.length < this.size ? this.spawn() : undefined);
      if (!slot) return;
      const t = this.queue.shift()!;
      slot.task = t;
      slot.worker.ref();
      slot.worker.postMessage(t.msg, t.transfer);
    }
  }

  /** Stop every worker; queued and running tasks are rejected. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.queue.splice(0)) t.reject(new Error('worker pool is closed'));
    const slots = this.slots.splice(0);
    await Promise.all(
      slots.map((s) => {
        s.task?.reject(new Error('worker pool is closed'));
        s.task = undefined;
        return s.worker.terminate();
      }),
    );
  }
}
