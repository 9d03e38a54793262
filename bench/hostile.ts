// Explorer under hostile uploads: peak RSS of the `cliplens serve` process and /api/info latency
// while 4 different 13000×13000 PNGs (0.5 MB each, 169 Mpx) are uploaded at once, next to the
// same figures with the server idle (the baseline, measured in the same run).
//   npm run bench -- hostile [--model M] [--uploads N] [--cli path/to/bin/cliplens.js]
// Runs the compiled CLI (dist/): `npm run build` first after changing src/. --cli measures another
// build (e.g. an older checkout) the same way.

import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hugeFlatPng } from '../test/helpers/synthetic_png.ts';
import { procStatusKB, serveChild, stopChild } from '../test/helpers/serve_child.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const SIDE = 13000;
const UPLOADS = Number(flag('--uploads') ?? 4);
const model = flag('--model');
const bin = flag('--cli');

if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run npm run build');

/** N different 13000×13000 single-colour PNGs (0.5 MB each). */
async function bigPngs(n: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let k = 0; k < n; k++) out.push(await hugeFlatPng(SIDE, SIDE, [40 + 50 * k, 120, 200 - 40 * k]));
  return out;
}

function http(port: number, method: string, path: string, body?: Buffer): Promise<{ status: number; text: string; seconds: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const headers: Record<string, string> = body ? { 'content-type': 'image/png', 'x-cliplens': '1', 'content-length': String(body.length) } : {};
    const r = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString(), seconds: (performance.now() - t0) / 1000 }));
    });
    // A request the server drops (it resets connections it could not read in time) counts as failed.
    r.on('error', (e) => resolve({ status: 0, text: (e as Error).message, seconds: (performance.now() - t0) / 1000 }));
    r.end(body);
  });
}


const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
const ms = (s: number) => `${(s * 1000).toFixed(1)} ms`;

const pngs = await bigPngs(UPLOADS);
const { child, port, pid } = await serveChild(model ? ['--model', model] : [], { bin });
try {
  // Baseline: the idle server.
  await http(port, 'GET', '/api/info');
  const idle: number[] = [];
  for (let i = 0; i < 40; i++) idle.push((await http(port, 'GET', '/api/info')).seconds);
  const idleRss = procStatusKB(pid, 'VmRSS') / 1024;
  const idleHwm = procStatusKB(pid, 'VmHWM') / 1024;

  // Hostile: UPLOADS big uploads at once, /api/info asked every 50 ms until they are answered.
  const t0 = performance.now();
  const uploads = pngs.map((b) => http(port, 'POST', '/api/upload', b));
  let pending = uploads.length;
  uploads.forEach((u) => u.finally(() => pending--));
  const busy: number[] = [];
  let failed = 0;
  let rssMax = 0;
  while (pending > 0) {
    const r = await http(port, 'GET', '/api/info');
    if (r.status !== 200) failed++;
    if (pending > 0) busy.push(r.seconds);
    rssMax = Math.max(rssMax, procStatusKB(pid, 'VmRSS') / 1024);
    await new Promise((r) => setTimeout(r, 50));
  }
  const results = await Promise.all(uploads);
  const wall = (performance.now() - t0) / 1000;
  const peak = procStatusKB(pid, 'VmHWM') / 1024;

  console.log(`explorer ${bin ? `${bin} ` : ''}(${model ?? 'default model'}), ${UPLOADS} concurrent ${SIDE}×${SIDE} PNG uploads (${(pngs[0].length / 1e6).toFixed(2)} MB each)`);
  console.log(`  baseline, idle:     /api/info median ${ms(pct(idle, 0.5))}, p95 ${ms(pct(idle, 0.95))}, max ${ms(Math.max(...idle))}; RSS ${idleRss.toFixed(0)} MB (peak so far ${idleHwm.toFixed(0)} MB)`);
  console.log(`  during the uploads: /api/info median ${ms(pct(busy, 0.5))}, p95 ${ms(pct(busy, 0.95))}, max ${ms(Math.max(...busy))} over ${busy.length} requests${failed ? `, ${failed} dropped by the server` : ''} (target < 200 ms)`);
  console.log(`  peak RSS of the server process (VmHWM): ${peak.toFixed(0)} MB (target < 1024 MB); largest RSS sampled ${rssMax.toFixed(0)} MB`);
  console.log(`  uploads: ${results.map((r) => `${r.status} in ${r.seconds.toFixed(1)} s`).join(', ')}; all answered after ${wall.toFixed(1)} s`);
  const first = (results[0].status === 200 ? JSON.parse(results[0].text) : {}) as { source?: { width: number; height: number }; decodedAs?: { width: number; height: number } };
  if (first.decodedAs) console.log(`  decoded as ${first.decodedAs.width}×${first.decodedAs.height} (shrunk on load from ${first.source?.width}×${first.source?.height})`);
  if (results.some((r) => r.status !== 200)) process.exitCode = 1;
} finally {
  await stopChild(child);
}
