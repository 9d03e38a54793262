// Preprocessing against PIL + torchvision on the same ~1000 ImageNet-like JPEGs, and the
// streaming `cliplens preprocess` command's peak RSS against the number of images.
//
//   node --import tsx bench/preprocess_pil.ts [--n 1000] [--skip-pil]     (npm run bench -- pil)
//
// 1. cliplens on one thread (decode with sharp, PIL-exact resize + crop + normalise), then with
//    the worker pool (one worker per core), then PIL + torchvision (tools/pil_preprocess.py, one
//    thread: what one DataLoader worker does), each over all n images; every float of
//    pixel_values is compared with PIL's bit for bit.
// 2. `cliplens preprocess --dataset LIST` (a child process) on 100, 300 and n images: peak RSS.
// The JPEGs are written once to .cache/imagenet-like (tools/make_jpegs.ts).

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SafetensorsFile } from '../src/io/safetensors.ts';
import { preprocessFiles } from '../src/model/preprocess_model.ts';
import { vitB16Config } from '../test/helpers/random_weights.ts';
import { makeJpegs } from '../tools/make_jpegs.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..');
const argv = process.argv.slice(2);
const nArg = argv.indexOf('--n');
const N = nArg >= 0 ? Number(argv[nArg + 1]) : 1000;
const python = process.env.PYTHON ?? 'python3';

const jpegDir = join(repo, '.cache/imagenet-like');
if (!existsSync(jpegDir) || readdirSync(jpegDir).length < N) {
  process.stderr.write(`writing ${N} ImageNet-like JPEGs to ${jpegDir} (once)…\n`);
  await makeJpegs(jpegDir, N);
}
const paths = readdirSync(jpegDir).filter((f) => f.endsWith('.jpg')).sort().slice(0, N).map((f) => join(jpegDir, f));
const cfg = vitB16Config();
const S = cfg.vision.imageSize;
const per = 3 * S * S;
const CHUNK = 64;
const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** All images in chunks; `each` sees every chunk's pixel_values. */
async function run(workers: boolean, each?: (start: number, px: Float32Array) => void): Promise<{ wall: number; cpu: number }> {
  const t0 = performance.now();
  const c0 = cpuSeconds();
  for (let s = 0; s < paths.length; s += CHUNK) {
    const r = await preprocessFiles(cfg, paths.slice(s, s + CHUNK), { workers });
    if (r.errors.some((e) => e)) throw new Error(`unreadable image in ${jpegDir}: ${r.errors.find((e) => e)}`);
    each?.(s, r.pixels.data);
  }
  return { wall: (performance.now() - t0) / 1000, cpu: cpuSeconds() - c0 };
}

const avgKB = paths.reduce((a, p) => a + statSync(p).size, 0) / paths.length / 1024;
console.log(`preprocess bench: ${paths.length} JPEGs (${jpegDir}, ${avgKB.toFixed(0)} KB on average), ViT-B-16 transform (${S} px), ${availableParallelism()} cores`);
await run(false); // warm-up: JIT, coefficient cache, sharp
const one = await run(false);
const pool = await run(true);
console.log(`cliplens, one thread:      ${one.wall.toFixed(2)} s wall, ${one.cpu.toFixed(2)} s CPU  (${((one.wall / paths.length) * 1000).toFixed(2)} ms/image)`);
console.log(`cliplens, worker pool:     ${pool.wall.toFixed(2)} s wall  (${(paths.length / pool.wall).toFixed(0)} images/s)`);

const pilOut = join(mkdtempSync(join(tmpdir(), 'cliplens-pil-')), 'pil.safetensors');
const probe = spawnSync(python, ['-c', 'import PIL, torch, torchvision'], { encoding: 'utf8' });
if (argv.includes('--skip-pil') || probe.status !== 0) {
  console.log(`PIL + torchvision: skipped (${argv.includes('--skip-pil') ? '--skip-pil' : `${python} lacks PIL/torch/torchvision: apt-get install python3-pil python3-torch python3-torchvision`})`);
} else {
  const pil = JSON.parse(execFileSync(python, [join(repo, 'tools/pil_preprocess.py'), jpegDir, pilOut, '--size', String(S), '--limit', String(paths.length)], { encoding: 'utf8' }).trim().split('\n').pop()!);
  console.log(`PIL ${pil.pil} + torchvision, one thread: ${pil.seconds.toFixed(2)} s wall, ${pil.cpu_seconds.toFixed(2)} s CPU  (${((pil.seconds / paths.length) * 1000).toFixed(2)} ms/image; decoding alone ${pil.decode_seconds.toFixed(2)} s)`);
  console.log(`  cliplens one thread vs PIL: ${(pil.seconds / one.wall).toFixed(2)}x wall, ${(pil.cpu_seconds / one.cpu).toFixed(2)}x CPU; worker pool vs PIL: ${(pil.seconds / pool.wall).toFixed(2)}x wall`);
  const want = SafetensorsFile.open(pilOut);
  const ref = want.readF32('pixel_values').data;
  want.close();
  let differing = 0;
  await run(true, (start, px) => {
    const a = new Uint32Array(px.buffer, px.byteOffset, px.length);
    const b = new Uint32Array(ref.buffer, ref.byteOffset + start * per * 4, px.length);
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differing++;
  });
  console.log(`  pixel_values bit-identical to PIL + torchvision: ${differing === 0 ? 'yes' : `NO (${differing} floats differ)`} (${paths.length}×3×${S}×${S} floats)`);
  if (differing) process.exitCode = 1;
}
rmSync(dirname(pilOut), { recursive: true, force: true });

// Streaming preprocess: peak RSS of the command against the number of images.
const work = mkdtempSync(join(tmpdir(), 'cliplens-preprocess-'));
try {
  // the tests' tiny checkpoint: its vision tower takes 224 px images like ViT-B-16 (preprocess reads its header only)
  const model = join(repo, 'test/fixtures/reference/tiny_a.safetensors');
  const rssProbe = join(work, 'rss.mjs');
  // the process's own high-water mark (VmHWM is per address space; getrusage's maxrss would include the parent's at fork)
  writeFileSync(rssProbe, "import { readFileSync } from 'node:fs';\nprocess.on('exit', () => process.stderr.write(`maxrss ${/VmHWM:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]}\\n`));\n");
  const counts = [...new Set([100, 300, paths.length].filter((c) => c <= paths.length))];
  const rows: string[] = [];
  for (const c of counts) {
    const list = join(work, `list-${c}.txt`);
    writeFileSync(list, paths.slice(0, c).join('\n'));
    const t0 = performance.now();
    const r = spawnSync(process.execPath, ['--import', rssProbe, join(repo, 'bin/cliplens.js'), 'preprocess', '-m', model, '--dataset', list, '-o', join(work, 'out.safetensors')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cliplens preprocess failed: ${r.stderr}`);
    const kb = Number(/maxrss (\d+)/.exec(r.stderr)![1]);
    rows.push(`${String(c).padStart(5)} images: peak RSS ${(kb / 1024).toFixed(0)} MB, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    rmSync(join(work, 'out.safetensors'), { force: true });
  }
  console.log(`cliplens preprocess --dataset (streaming, batch 64, output ${(paths.length * per * 5) / 1e6 | 0} MB at ${paths.length} images):`);
  for (const row of rows) console.log(`  ${row}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
