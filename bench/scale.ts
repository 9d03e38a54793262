// npm run bench -- scale [--models b16,l14,l14-336,h14,bigG] [--batch 4] [--images 8] [--keep] [--no-path] [--no-reference]
// (ViT-bigG/14 runs at half the batch: its activations take ~0.7 GB per image.)
//
// The paper's big models for real: randomly initialised checkpoints with the hub repos' exact file
// layout and tensor names (tools/hub_checkpoints.ts) served from a loopback hub that redirects and
// announces sha256 like the real one (tools/hub_server.ts). Per model:
//   1. the whole path through the CLI, from an empty cache: decompose a dataset (resolve + download
//      with progress), texts (text tower), textspan, heatmap, segment (with masks);
//   2. a worker process that loads the model offline and times load, plain encoding, per-head and
//      per-token decomposition, with its peak RSS against the fp32 weights it loads (the vision tower);
//   3. for ViT-L/14, the reference (clip_text_span's PyTorch code, from CLIP_TEXT_SPAN=<checkout>) on
//      the same checkpoint and pixels in the same run: speed, peak RSS and max |Δ| of the outputs.
// A model whose weights do not fit the memory available now is skipped with a note (shared machines).
// Files: checkpoints in .cache/hub-src (kept below 2 GB, removed above unless --keep), everything
// else in .cache/scale (removed per model).

import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.ts';
import { parseOpenClipConfig } from '../src/model/config.ts';
import { resolveModel } from '../src/model/resolve.ts';
import { normalRng } from '../src/rng.ts';
import { f32, maxAbsDiff } from '../src/tensor.ts';
import { HUB_MODELS, weightBytes, writeHubCheckpoint, type HubModel } from '../tools/hub_checkpoints.ts';
import { startDiskHub } from '../tools/hub_server.ts';

const here = dirname(fileURLToPath(import.meta.url));
const REPO = join(here, '..');
const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const aliases = opt('--models', 'b16,l14,l14-336,h14,bigG').split(',');
const batchArg = Number(opt('--batch', '4'));
const nImages = Number(opt('--images', '8'));
const SRC = join(REPO, '.cache/hub-src');
const WORK = join(REPO, '.cache/scale');
const threads = Number(process.env.CLIPLENS_THREADS ?? cpus().length);
const GB = 1024 ** 3;

const spec = (m: HubModel) => (m.layout === 'open_clip' ? `hf-hub:${m.repo}` : m.repo);
const log = (s: string) => process.stderr.write(`${s}\n`);
/** The line of a failed child's stderr that says why (an error line, else the last one). */
const why = (stderr: string) => {
  const lines = stderr.trim().split('\n');
  return [...lines].reverse().find((l) => /error/i.test(l)) ?? lines.pop();
};

function memAvailable(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : Infinity;
}

function run(cmd: string, argv: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string; seconds: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const p = spawn(cmd, argv, { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b) => (stdout += b));
    p.stderr.on('data', (b) => (stderr += b));
    p.on('close', (code) => resolve({ code, stdout, stderr, seconds: (performance.now() - t0) / 1000 }));
  });
}

/** n scenes (a yellow square on a coloured background) in two label folders, with their masks. */
async function dataset(dir: string): Promise<{ data: string; masks: string; pool: string }> {
  const data = join(dir, 'data');
  const masks = join(dir, 'masks');
  for (const d of [join(data, 'left'), join(data, 'right'), masks]) mkdirSync(d, { recursive: true });
  for (let i = 0; i < nImages; i++) {
    const w = 260 + 16 * i;
    const h = 240;
    const left = i % 2 === 0 ? 20 + 5 * i : w - 110 - 5 * i;
    const box = { left, top: 60 + 4 * i, width: 90, height: 70 };
    const square = { input: { create: { width: box.width, height: box.height, channels: 3 as const, background: { r: 240, g: 220, b: 20 } } }, left: box.left, top: box.top };
    await sharp({ create: { width: w, height: h, channels: 3, background: { r: 30 + 25 * i, g: 90, b: 200 - 20 * i } } }).composite([square]).png().toFile(join(data, i % 2 === 0 ? 'left' : 'right', `scene${i}.png`));
    const white = { ...square, input: { create: { ...square.input.create, background: { r: 255, g: 255, b: 255 } } } };
    await sharp({ create: { width: w, height: h, channels: 3, background: { r: 0, g: 0, b: 0 } } }).composite([white]).png().toFile(join(masks, `scene${i}.png`));
  }
  const colors = ['yellow', 'blue', 'red', 'green', 'purple', 'orange', 'white', 'black'];
  const things = ['square', 'circle', 'background', 'photo', 'painting'];
  const pool = join(dir, 'pool.txt');
  writeFileSync(pool, colors.flatMap((c) => things.map((t) => `a ${c} ${t}`)).join('\n') + '\n');
  return { data, masks, pool };
}

interface PathResult {
  steps: { step: string; seconds: number; ok: boolean; note?: string }[];
  downloaded?: string;
}

async function wholePath(m: HubModel, batch: number, endpoint: string, cache: string, dir: string): Promise<PathResult> {
  const { data, masks, pool } = await dataset(dir);
  const env = { CLIPLENS_HUB_ENDPOINT: endpoint, CLIPLENS_CACHE: cache, CLIPLENS_THREADS: String(threads) };
  const cli = (...a: string[]) => run(process.execPath, [join(REPO, 'bin/cliplens.js'), ...a], env);
  const store = join(dir, 'store');
  const steps: PathResult['steps'] = [];
  const record = (step: string, r: Awaited<ReturnType<typeof cli>>, note?: string) => {
    const ok = r.code === 0;
    steps.push({ step, seconds: r.seconds, ok, note: ok ? note : why(r.stderr) });
    log(`  ${step}: ${ok ? 'ok' : 'FAILED'} in ${r.seconds.toFixed(1)} s${ok && note ? ` (${note})` : ''}${ok ? '' : `: ${why(r.stderr)}`}`);
    return ok;
  };
  const dec = await cli('decompose', '--model', spec(m), '--dataset', data, '--store', store, '--batch-size', String(batch));
  const dl = /downloading \S+?\/(?:open_clip_model|model)\.safetensors \(([^)]+)\)/.exec(dec.stderr);
  record('decompose dataset (resolve + download)', dec, dl ? `downloaded ${dl[1]} with progress` : undefined);
  const texts = await cli('texts', '--model', spec(m), '--offline', '--file', pool, '--out', join(dir, 'pool.safetensors'));
  record('texts (text tower)', texts);
  const ts = await cli('textspan', '--store', store, '--texts', join(dir, 'pool.safetensors'), '--layers', 'last:2', '-k', '3', '--rank', '4', '--out', join(dir, 'heads.json'));
  record('textspan (last 2 layers)', ts);
  const hm = await cli('heatmap', '--model', spec(m), '--offline', '--text', 'a yellow square', '--text', 'a blue background', join(data, 'left', 'scene0.png'), '--out', join(dir, 'heatmap.png'));
  record('heatmap', hm);
  const sg = await cli('segment', '--model', spec(m), '--offline', '--text', 'a yellow square', '--dataset', data, '--masks', masks, '--json', '--batch-size', String(batch));
  let note: string | undefined;
  try {
    // The study's JSON holds the summary somewhere; report its three metrics.
    const find = (o: unknown, k: string): number | undefined => {
      if (!o || typeof o !== 'object') return undefined;
      const v = (o as Record<string, unknown>)[k];
      if (typeof v === 'number') return v;
      for (const x of Object.values(o)) {
        const r = find(x, k);
        if (r !== undefined) return r;
      }
      return undefined;
    };
    const j = JSON.parse(sg.stdout) as unknown;
    note = ['pixelAccuracy', 'mIoU', 'mAP'].map((k) => `${k} ${find(j, k)?.toFixed(3) ?? '?'}`).join(', ');
  } catch {
    /* the step's own status says whether it failed */
  }
  record('segment (with masks)', sg, note);
  return { steps, downloaded: dl?.[1] };
}

interface WorkerResult {
  loadS: number;
  loadPeakMB: number;
  peakMB: number;
  sessions: { graph: string; weightBytes: number; externalData: boolean; seconds: number }[];
  encode: number;
  perHead: number;
  perToken: number;
}

interface Row {
  alias: string;
  m: HubModel;
  batch: number;
  visionBytes: number;
  totalBytes: number;
  w?: WorkerResult;
  path?: PathResult;
  skipped?: string;
  /** The same load through the in-memory protobuf path (models below 2 GB). */
  inMemory?: { loadS: number; loadPeakMB: number };
  ref?: { encode_ips: number; heads_ips: number; peak_rss_mb: number; load_s: number; dz: number; dattn: number; dmlp: number };
}

const rows: Row[] = [];
mkdirSync(WORK, { recursive: true });
mkdirSync(SRC, { recursive: true });
const server = await startDiskHub(SRC);

for (const alias of aliases) {
  const m = HUB_MODELS[alias];
  if (!m) throw new Error(`unknown model '${alias}'; known: ${Object.keys(HUB_MODELS).join(', ')}`);
  const cfg = parseOpenClipConfig(m.modelCfg);
  const bytes = weightBytes(cfg);
  const batch = alias === 'bigG' ? Math.max(1, batchArg >> 1) : batchArg;
  const row: Row = { alias, m, batch, visionBytes: bytes.vision, totalBytes: bytes.total };
  rows.push(row);
  const need = 1.6 * bytes.vision + 1.5 * GB;
  if (memAvailable() < need) {
    row.skipped = `${(memAvailable() / GB).toFixed(1)} GB available now, needs about ${(need / GB).toFixed(1)} GB`;
    log(`${m.repo}: skipped (${row.skipped})`);
    continue;
  }
  log(`${m.repo}: writing the random checkpoint (${(bytes.total / GB).toFixed(2)} GB fp32) if needed…`);
  writeHubCheckpoint(m, SRC, { seed: 1 }, log);
  server.serveDirectory(SRC);
  const dir = join(WORK, alias);
  const cache = join(WORK, `cache-${alias}`);
  rmSync(dir, { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  if (!args.includes('--no-path')) {
    log(`${m.repo}: the whole path through the CLI`);
    row.path = await wholePath(m, batch, server.endpoint, cache, dir);
  } else {
    (await resolveModel(spec(m), { endpoint: server.endpoint, cacheDir: cache, progress: true })).weights.close();
  }
  if (bytes.vision < 1.8 * GB) {
    const im = await run(process.execPath, ['--import', 'tsx', join(here, 'scale_worker.ts'), spec(m), cache, 'in-memory'], { CLIPLENS_THREADS: String(threads) });
    if (im.code === 0) row.inMemory = JSON.parse(im.stdout.trim().split('\n').pop()!);
    else log(`  in-memory load failed: ${why(im.stderr)}`);
  }
  const reference = alias === 'l14' && !args.includes('--no-reference') && process.env.CLIP_TEXT_SPAN;
  const S = cfg.vision.imageSize;
  const pixels = join(dir, 'pixels.safetensors');
  const rng = normalRng(5);
  const px = f32([batch, 3, S, S]);
  for (let i = 0; i < px.data.length; i++) px.data[i] = rng();
  writeSafetensors(pixels, { pixel_values: px });
  log(`${m.repo}: timing load, encode, per-head and per-token (batch ${batch}) in a worker`);
  const wr = await run(process.execPath, ['--import', 'tsx', join(here, 'scale_worker.ts'), spec(m), cache, String(batch), pixels, join(dir, 'ours.safetensors')], { CLIPLENS_THREADS: String(threads) });
  if (wr.code !== 0) {
    row.skipped = `worker failed: ${why(wr.stderr)}`;
    log(`  ${row.skipped}`);
  } else row.w = JSON.parse(wr.stdout.trim().split('\n').pop()!) as WorkerResult;
  if (reference && row.w) {
    log(`${m.repo}: the reference (clip_text_span, PyTorch) on the same checkpoint and pixels`);
    const repoDir = join(SRC, ...m.repo.split('/'));
    const rr = await run('/usr/bin/python3', [join(REPO, 'tools/reference_scale.py'), repoDir, pixels, join(dir, 'ref.safetensors'), String(threads)]);
    if (rr.code !== 0) log(`  reference failed: ${why(rr.stderr)}`);
    else {
      const ref = readSafetensors(join(dir, 'ref.safetensors'));
      const ours = readSafetensors(join(dir, 'ours.safetensors'));
      const diff = (k: string) => maxAbsDiff(ref.get(k)!.data as Float32Array, ours.get(k)!.data as Float32Array);
      row.ref = { ...JSON.parse(rr.stdout.trim().split('\n').pop()!), dz: diff('image_features'), dattn: diff('attn'), dmlp: diff('mlp') };
    }
  }
  rmSync(cache, { recursive: true, force: true });
  if (bytes.total > 2 * GB && !args.includes('--keep')) rmSync(join(SRC, ...m.repo.split('/')), { recursive: true, force: true });
}
await server.close();

const f = (x: number | undefined, d = 2) => (x === undefined ? '—' : x.toFixed(d));
console.log(`\nscale: random checkpoints in the hub repos' layouts, served from a loopback hub; ${threads} threads, ${new Date().toISOString().slice(0, 10)}`);
console.log('model (hub repo)                                   vision fp32   load s   peak RSS          batch  encode   per-head  per-token  path');
console.log('                                                   weights                (× weights)              img/s    img/s     img/s (10 texts)');
for (const r of rows) {
  const name = `${r.m.repo}`.padEnd(50);
  if (!r.w) {
    console.log(`${name} ${f(r.visionBytes / GB).padStart(6)} GB   skipped: ${r.skipped}`);
    continue;
  }
  const peak = r.w.peakMB / 1024;
  const ratio = (r.w.peakMB * 1024 ** 2) / r.visionBytes;
  const path = r.path ? `${r.path.steps.filter((s) => s.ok).length}/${r.path.steps.length} steps ok` : 'skipped';
  console.log(
    `${name} ${f(r.visionBytes / GB).padStart(6)} GB ${f(r.w.loadS, 1).padStart(8)}   ${f(peak).padStart(6)} GB (${f(ratio)}×)  ${String(r.batch).padStart(5)}  ${f(r.w.encode).padStart(7)}  ${f(r.w.perHead).padStart(8)}  ${f(r.w.perToken).padStart(8)}    ${path}`,
  );
}
for (const r of rows) {
  if (!r.w) continue;
  const vs = r.w.sessions.find((s) => s.graph === 'clip_vision');
  console.log(`  ${r.alias}: vision graph ${(vs!.weightBytes / GB).toFixed(2)} GB of initializers, ${vs!.externalData ? 'external data (streamed from the checkpoint, read by ONNX Runtime from disk)' : 'in memory'}, session ${vs!.seconds.toFixed(1)} s; peak RSS at load ${(r.w.loadPeakMB / 1024).toFixed(2)} GB; checkpoint ${(r.totalBytes / GB).toFixed(2)} GB${r.path?.downloaded ? ` (downloaded ${r.path.downloaded})` : ''}`);
  if (r.inMemory) console.log(`    the same load with the graph as one in-memory protobuf: peak RSS ${(r.inMemory.loadPeakMB / 1024).toFixed(2)} GB (${((r.inMemory.loadPeakMB * 1024 ** 2) / r.visionBytes).toFixed(2)}× the weights), ${r.inMemory.loadS.toFixed(1)} s`);
  if (r.path) console.log(`    path: ${r.path.steps.map((s) => `${s.step} ${s.ok ? f(s.seconds, 0) + ' s' : 'FAILED (' + s.note + ')'}${s.ok && s.note ? ` [${s.note}]` : ''}`).join('; ')}`);
  if (r.ref) {
    console.log(`    reference clip_text_span (PyTorch, same checkpoint and pixels): encode ${f(r.ref.encode_ips)} img/s, per-head ${f(r.ref.heads_ips)} img/s, peak RSS ${f(r.ref.peak_rss_mb / 1024)} GB, load ${f(r.ref.load_s, 1)} s`);
    console.log(`    cliplens vs reference: encode ${f(r.w.encode / r.ref.encode_ips)}×, per-head ${f(r.w.perHead / r.ref.heads_ips)}×; max |Δ| image_features ${r.ref.dz.toExponential(1)}, per-head terms ${r.ref.dattn.toExponential(1)}, MLP terms ${r.ref.dmlp.toExponential(1)}`);
  }
}
for (const r of rows) {
  if (!r.w) continue;
  const ratio = (r.w.peakMB * 1024 ** 2) / r.visionBytes;
  if (ratio > 1.5) console.log(`  ${r.alias}: peak RSS ${ratio.toFixed(2)}× the fp32 vision weights (goal ≤ 1.5×)`);
}
