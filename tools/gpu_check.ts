// The GPU measurements of tools/gpu-check.sh, in one process per step so each is timed alone.
//   node --import tsx tools/gpu_check.ts fp16-error <model spec> <cacheDir>   fp32 vs fp16 on the EP in CLIPLENS_EP, and vs fp32 on the CPU
//   node --import tsx tools/gpu_check.ts images <dir> <n>                      n synthetic JPEGs in two label folders (the 1000-image decompose)
// Prints one JSON line.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { Decomposer } from '../src/decompose/decomposer.ts';
import { loadClip } from '../src/runtime/load.ts';
import { normalRng } from '../src/rng.ts';
import { f32, maxAbsDiff, type F32 } from '../src/tensor.ts';

const [step, a, b] = process.argv.slice(2);

if (step === 'images') {
  const n = Number(b);
  for (const c of ['even', 'odd']) mkdirSync(join(a, c), { recursive: true });
  for (let i = 0; i < n; i++) {
    const w = 300 + (i % 7) * 40;
    const h = 260 + (i % 5) * 30;
    const sq = { create: { width: 80 + (i % 3) * 20, height: 70, channels: 3 as const, background: { r: 240, g: (i * 37) % 256, b: 30 } } };
    await sharp({ create: { width: w, height: h, channels: 3, background: { r: (i * 13) % 256, g: (i * 29) % 256, b: (i * 53) % 256 } } })
      .composite([{ input: sq, left: (i * 17) % (w - 120), top: (i * 11) % (h - 80) }])
      .jpeg({ quality: 90 })
      .toFile(join(a, i % 2 ? 'odd' : 'even', `img${String(i).padStart(5, '0')}.jpg`));
  }
  console.log(JSON.stringify({ images: n, dir: a }));
} else if (step === 'fp16-error') {
  const ep = process.env.CLIPLENS_EP ?? 'cpu';
  const run = async (executionProvider: string, precision: 'fp32' | 'fp16') => {
    const m = await loadClip(a, { cacheDir: b, offline: true, executionProvider, precision });
    const S = m.config.vision.imageSize;
    const rng = normalRng(5);
    const px = f32([8, 3, S, S]);
    for (let i = 0; i < px.data.length; i++) px.data[i] = rng();
    const dec = new Decomposer(m);
    await dec.decompose(px, { batchSize: 8 }); // warm-up
    const t0 = performance.now();
    const d = await dec.decompose(px, { batchSize: 8 });
    const ips = 8 / ((performance.now() - t0) / 1000);
    await m.release();
    return { d, ips };
  };
  const cpu = await run('cpu', 'fp32');
  const g32 = ep === 'cpu' ? cpu : await run(ep, 'fp32');
  const g16 = await run(ep, 'fp16');
  const rel = (x: F32, y: F32) => maxAbsDiff(x.data, y.data) / x.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  console.log(JSON.stringify({
    model: a, ep,
    perHeadImagesPerSecond: { cpuFp32: cpu.ips, fp32: g32.ips, fp16: g16.ips },
    // max |Δ| / max |reference|, for the embedding and the per-head terms
    fp32VsCpu: { z: rel(cpu.d.imageFeatures, g32.d.imageFeatures), attn: rel(cpu.d.attn, g32.d.attn) },
    fp16VsCpu: { z: rel(cpu.d.imageFeatures, g16.d.imageFeatures), attn: rel(cpu.d.attn, g16.d.attn) },
  }));
} else {
  console.error('usage: gpu_check.ts fp16-error <spec> <cacheDir> | images <dir> <n>');
  process.exit(2);
}
