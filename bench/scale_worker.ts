// Scale benchmark worker: one model, loaded from the hub cache offline, in its own process so that
// peak RSS belongs to that model alone. Prints one JSON line.
//   node --import tsx bench/scale_worker.ts <spec> <cacheDir> <batch> [pixels.safetensors] [outputs.safetensors]
//   node --import tsx bench/scale_worker.ts <spec> <cacheDir> in-memory
// Times: load (resolve + vision graph + ONNX Runtime session), then one warm-up encode and one timed
// pass each of plain encoding, per-head decomposition and per-token maps along 10 texts.
// in-memory: only the load, with the graph handed to ONNX Runtime as one in-memory protobuf (the
// path small models take), for its peak RSS next to the external-data path's.

import { Decomposer } from '../src/decompose/decomposer.ts';
import type { SessionInfo } from '../src/graph/session.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.ts';
import { loadClip } from '../src/runtime/load.ts';
import { normalRng } from '../src/rng.ts';
import { f32, type F32 } from '../src/tensor.ts';

const [spec, cacheDir, batchArg, pixelsIn, outputsOut] = process.argv.slice(2);
const B = Number(batchArg);
const hwmMB = () => process.resourceUsage().maxRSS / 1024;

const sessions: SessionInfo[] = [];
const t0 = performance.now();
const inMemory = batchArg === 'in-memory';
const model = await loadClip(spec, { cacheDir, offline: true, onSessionCreated: (s) => sessions.push(s), ...(inMemory ? { externalDataThreshold: Infinity } : {}) });
await model.warm(['vision']);
const loadS = (performance.now() - t0) / 1000;
const loadPeakMB = hwmMB();
if (inMemory) {
  console.log(JSON.stringify({ spec, loadS, loadPeakMB, sessions }));
  process.exit(0);
}

const S = model.config.vision.imageSize;
let px: F32;
if (pixelsIn) {
  const t = readSafetensors(pixelsIn).get('pixel_values')!;
  px = f32(t.shape, t.data as Float32Array);
} else {
  const rng = normalRng(5);
  px = f32([B, 3, S, S]);
  for (let i = 0; i < px.data.length; i++) px.data[i] = rng();
}
const d = model.config.embedDim;
const rng = normalRng(9);
const texts = f32([10, d]);
for (let i = 0; i < texts.data.length; i++) texts.data[i] = rng() / Math.sqrt(d);

const dec = new Decomposer(model);
const timed = async (f: () => Promise<unknown>) => {
  const t = performance.now();
  await f();
  return px.shape[0] / ((performance.now() - t) / 1000);
};
await model.encodeImages(px, B); // warm-up: ONNX Runtime's first run of a shape
await dec.getReadout();
const encode = await timed(() => model.encodeImages(px, B));
const peaks: Record<string, number> = { load: loadPeakMB, encode: hwmMB() };
let heads!: Awaited<ReturnType<Decomposer['decompose']>>;
const perHead = await timed(async () => (heads = await dec.decompose(px, { batchSize: B })));
peaks.perHead = hwmMB();
const perToken = await timed(() => dec.textMaps(px, texts, { batchSize: B }));
peaks.perToken = hwmMB();
if (outputsOut) writeSafetensors(outputsOut, { image_features: heads.imageFeatures, attn: heads.attn, mlp: heads.mlp });
await model.release();
console.log(JSON.stringify({ spec, batch: B, images: px.shape[0], loadS, loadPeakMB, peakMB: hwmMB(), peaks, sessions, encode, perHead, perToken }));
