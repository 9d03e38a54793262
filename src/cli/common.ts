// Shared pieces of the commands: model options, errors, progress.

import { Command, Option } from 'commander';
import cliProgress from 'cli-progress';
import { checkExecutionProvider, resolveExecutionProvider } from '../graph/session.ts';
import { loadClip } from '../runtime/load.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { UsageError } from '../errors.ts';

/** An error the user caused (bad flag, bad file): printed as one line, exit code 1. */
export interface ModelFlags {
  model?: string;
  pretrained?: string;
  threads?: string;
  ep?: string;
  precision?: string;
  offline?: boolean;
  cacheDir?: string;
  checkWeights?: boolean;
}

/** The model flags; `short: false` leaves out -m (for commands where -m means something else). */
export function withModelOptions(cmd: Command, opts: { short?: boolean } = {}): Command {
  return cmd
    .option(`${opts.short === false ? '' : '-m, '}--model <spec>`, 'builtin name, .safetensors file (open_clip layout, config beside it), model directory, or hub id (hf-hub:org/name, org/name); default: the embedded toyworld model')
    .option('--pretrained <tag>', 'with an open_clip architecture name as --model (ViT-B-16, ViT-L-14, ViT-H-14, ViT-bigG-14, ViT-B-32, ViT-L-14-336): its pretrained tag, e.g. laion2b_s34b_b88k or openai')
    .option('--threads <n>', 'compute threads (default: all cores)')
    .option('--ep <provider>', 'onnxruntime execution provider: cpu (default; env CLIPLENS_EP), or cuda once its libraries are installed (see the README)')
    .addOption(new Option('--precision <p>', 'fp32, or fp16 graphs on a GPU (--ep cuda); see the README for its error').choices(['fp32', 'fp16']).default('fp32'))
    .option('--offline', 'never contact the hub; use the cache only')
    .option('--cache-dir <dir>', 'hub download cache (default ~/.cache/cliplens/hub)')
    .option('--check-weights', 'read every weight once at load and refuse NaN/Inf values, naming the tensor');
}

/**
 * The one parser for whole-number flags: decimal digits only (a sign allowed; no '1e3', '0x10',
 * '8.0', '' or 'abc'), within [min, max]. The error names the flag and what it accepts.
 */
export function parseIntFlag(value: string | undefined, name: string, min = 1, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `in ${min}..${max}`;
  const s = value.trim();
  const n = Number(s);
  if (!/^[+-]?\d+$/.test(s) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer ${range}, got '${value}'`);
  }
  return n;
}

/** "8-11", "0,3,5", "last:4" or "all" → layer indices. */
export function parseLayers(spec: string | undefined, L: number): number[] | undefined {
  if (spec === undefined || spec === 'all') return undefined;
  const bad = () => new UsageError(`--layers '${spec}': use e.g. 8-11, 0,3,5 or last:4 (the model has layers 0..${L - 1})`);
  let out: number[] = [];
  const last = /^last:(\d+)$/.exec(spec);
  if (last) {
    const k = Number(last[1]);
    if (k < 1 || k > L) throw bad();
    out = Array.from({ length: k }, (_, i) => L - k + i);
  } else {
    for (const part of spec.split(',')) {
      const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
      if (!m) throw bad();
      const a = Number(m[1]);
      const b = m[2] !== undefined ? Number(m[2]) : a;
      if (b < a) throw bad();
      for (let l = a; l <= b; l++) out.push(l);
    }
  }
  if (out.some((l) => l >= L)) throw bad();
  return [...new Set(out)].sort((a, b) => a - b);
}
/** Thread counts past this are a typo, not a machine. */
export const MAX_THREADS = 1024;

export async function modelFromFlags(f: ModelFlags): Promise<ClipModel> {
  const ep = resolveExecutionProvider({ executionProvider: f.ep });
  // Before anything is downloaded or read: a GPU that cannot be used is one line, now.
  checkExecutionProvider(ep);
  if (f.precision === 'fp16' && ep === 'cpu') {
    throw new UsageError("--precision fp16 is for GPUs (--ep cuda): ONNX Runtime's CPU kernels run a float16 graph through casts to float32, slower and less exact than fp32");
  }
  return loadClip(f.model, {
    pretrained: f.pretrained,
    threads: parseIntFlag(f.threads, 'threads', 1, MAX_THREADS),
    executionProvider: ep,
    precision: f.precision === 'fp16' ? 'fp16' : 'fp32',
    offline: f.offline,
    cacheDir: f.cacheDir,
    checkWeights: f.checkWeights,
    progress: true,
  });
}

/** A progress bar with images/s and ETA on a terminal; a line every few seconds otherwise. */
export function progressBar(label: string, total: number, unit = 'img'): { update(done: number, extra?: string): void; stop(): void } {
  const start = Date.now();
  let first = -1;
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {value}/{total} | {rate} ${unit}/s | ETA {eta_formatted} {extra}`, hideCursor: true, stream: process.stderr, etaBuffer: 50 },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { rate: '0.0', extra: '' });
    return {
      update(done, extra = '') {
        if (first < 0) first = done;
        const dt = (Date.now() - start) / 1000;
        bar.update(done, { rate: dt > 0 ? ((done - first) / dt).toFixed(1) : '0.0', extra });
      },
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  return {
    update(done, extra = '') {
      if (first < 0) first = done;
      const now = Date.now();
      if (now - last < 5000 && done < total) return;
      last = now;
      const dt = (now - start) / 1000;
      const rate = dt > 0 ? (done - first) / dt : 0;
      const eta = rate > 0 ? Math.round((total - done) / rate) : NaN;
      process.stderr.write(`${label}: ${done}/${total} (${rate.toFixed(1)} ${unit}/s, ETA ${Number.isNaN(eta) ? '?' : eta + 's'}) ${extra}\n`);
    },
    stop() {},
  };
}
