// ONNX Runtime sessions over built graphs: thread count, execution provider, external data.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import ort from 'onnxruntime-node';
import { CliplensError, ConfigError, ExecutionProviderError, UsageError } from '../errors.ts';
import type { GraphBuilder } from './builder.ts';

// ONNX Runtime's own log lines would break the one-line error contract; its errors reach us as
// exceptions, which are reported in one line (CLIPLENS_DEBUG=1 keeps its warnings).
if (!process.env.CLIPLENS_DEBUG) ort.env.logLevel = 'fatal';

export interface RuntimeOptions {
  /** Intra-op threads; default: every core (env CLIPLENS_THREADS overrides). */
  threads?: number;
  /** Execution provider: 'cpu' (default), 'cuda', ... (env CLIPLENS_EP overrides). */
  executionProvider?: string;
  /** 'fp16' builds float16 graphs (for GPUs; inputs and outputs stay float32). Default 'fp32'. */
  precision?: 'fp32' | 'fp16';
  /**
   * On the CPU, a forward pass of the vision tower takes at most as many images as fit this many
   * bytes of activations by the family's estimate (at least one; default 256 MiB); a caller's larger
   * batch runs as several passes. Devices run the caller's batch whole.
   */
  forwardBytes?: number;
  /** ONNX Runtime writes outputs into buffers allocated once per call (default: on GPUs, not on the CPU). */
  preallocateOutputs?: boolean;
  /**
   * Initializer bytes above which the graph goes to ONNX Runtime as a file with external data
   * instead of one in-memory protobuf (default 64 MiB; protobuf itself caps a model at 2 GB).
   */
  externalDataThreshold?: number;
  /** Told how each graph reached ONNX Runtime (benchmarks record it). */
  onSessionCreated?: (info: SessionInfo) => void;
}

export interface SessionInfo {
  graph: string;
  weightBytes: number;
  externalData: boolean;
  seconds: number;
}

/**
 * In memory, the weights exist three times while the session is created (JS arrays, the protobuf,
 * ONNX Runtime's parsed copy) before ORT pre-packs its own; through an external-data file, written
 * one tensor at a time, only ORT's pre-packed copy stays (ViT-B/16 in npm run bench -- scale: peak
 * 1.19 GB vs 0.49 GB at load).
 */
const EXTERNAL_DATA_BYTES = 64 * 1024 ** 2;

export function resolveThreads(opts: RuntimeOptions = {}): number {
  const raw = process.env.CLIPLENS_THREADS;
  if (opts.threads === undefined && raw) {
    if (!/^\s*\d+\s*$/.test(raw) || Number(raw) < 1 || Number(raw) > 1024) throw new UsageError(`CLIPLENS_THREADS must be an integer in 1..1024, got '${raw}'`);
    return Number(raw);
  }
  const n = opts.threads ?? availableParallelism();
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`thread count must be a positive integer, got ${n}`);
  return n;
}

/** Where onnxruntime-node keeps its native libraries (the CUDA ones are installed there on request). */
function ortBinDir(): string {
  const main = createRequire(import.meta.url).resolve('onnxruntime-node');
  return join(dirname(main), '..', 'bin', 'napi-v6', process.platform, process.arch);
}

/** The provider libraries ONNX Runtime loads for a provider that onnxruntime-node does not bundle. */
const PROVIDER_LIBS: Record<string, string[]> = {
  cuda: ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'],
  tensorrt: ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_tensorrt.so'],
};

export const CUDA_INSTALL = 'ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js';

export function resolveExecutionProvider(opts: RuntimeOptions = {}): string {
  return opts.executionProvider ?? process.env.CLIPLENS_EP ?? 'cpu';
}

/**
 * Refuse, in one line and before any model is read, an execution provider this onnxruntime-node
 * cannot use: unknown here, or one whose libraries were never installed (CUDA is downloaded only
 * on request, see the README).
 */
export function checkExecutionProvider(ep: string): void {
  if (ep === 'cpu') return;
  const backends = ort.listSupportedBackends();
  const b = backends.find((x) => x.name === ep);
  if (!b) {
    throw new ExecutionProviderError(`--ep '${ep}' is not an execution provider of onnxruntime-node on ${process.platform}/${process.arch} (it has: ${backends.map((x) => x.name).join(', ')})`);
  }
  const libs = PROVIDER_LIBS[ep];
  if (b.bundled || !libs) return;
  const dir = ortBinDir();
  const missing = libs.filter((l) => !existsSync(join(dir, l)));
  if (missing.length) {
    throw new ExecutionProviderError(
      `execution provider '${ep}' is not installed: ${missing.join(', ')} missing from ${dir}; install the GPU libraries with ${CUDA_INSTALL} (downloads onnxruntime's CUDA 12 build from nuget.org; the machine needs CUDA 12 and cuDNN 9), or use --ep cpu`,
    );
  }
}

export async function createSession(g: GraphBuilder, opts: RuntimeOptions = {}): Promise<ort.InferenceSession> {
  const ep = resolveExecutionProvider(opts);
  checkExecutionProvider(ep);
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: resolveThreads(opts),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    // The arena keeps freed activation blocks: ~150 MB more peak RSS on ViT-B-16 batch 8, no speed gain here.
    enableCpuMemArena: false,
    executionProviders: ep === 'cpu' ? ['cpu'] : [ep, 'cpu'],
  };
  const threshold = opts.externalDataThreshold ?? EXTERNAL_DATA_BYTES;
  const t0 = performance.now();
  const externalData = g.weightBytes() > threshold;
  const done = (s: ort.InferenceSession) => {
    opts.onSessionCreated?.({ graph: g.name, weightBytes: g.weightBytes(), externalData, seconds: (performance.now() - t0) / 1000 });
    return s;
  };
  try {
    if (!externalData) return done(await ort.InferenceSession.create(g.toBytes(), sessionOptions));
    const dir = mkdtempSync(join(tmpdir(), 'cliplens-onnx-'));
    try {
      return done(await ort.InferenceSession.create(g.toExternalFiles(dir), sessionOptions));
    } finally {
      // ONNX Runtime has read (and pre-packed) the weights by now; a failed write (no space) leaves nothing either.
      rmSync(dir, { recursive: true, force: true });
    }
  } catch (e) {
    // A weight that cannot be read (its loader ran while the graph was written) keeps its own message.
    if (e instanceof CliplensError) throw e;
    const msg = (e as Error).message.split('\n')[0];
    if (ep !== 'cpu' && /provider|cuda|backend|shared librar/i.test(msg)) {
      throw new ExecutionProviderError(`execution provider '${ep}' could not start (${msg}); check that CUDA 12 and cuDNN 9 are on the library path (LD_LIBRARY_PATH), or use --ep cpu`);
    }
    throw new ConfigError(`onnxruntime could not load the ${g.name} graph: ${msg}`);
  }
}
