// GPUs without a GPU: --ep cuda on a machine without onnxruntime's CUDA libraries is one line that
// says how to install them, unknown providers and fp16 on the CPU are refused, and the fp16 graph
// variant (for CUDA) computes the same thing as fp32 within float16's precision.

import './helpers/env.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Decomposer } from '../src/decompose/decomposer.ts';
import { ClipModel } from '../src/runtime/clip.ts';
import { OpenClipSafetensors } from '../src/model/weights.ts';
import { maxAbsDiff } from '../src/tensor.ts';
import { REF, REPO, TINY_A, refPixels, sumInvariant, tinyConfig } from './helpers/fixtures.ts';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(REPO, 'bin/cliplens.js'), ...args], { encoding: 'utf8', env: { ...process.env, CLIPLENS_THREADS: '1', CLIPLENS_OFFLINE: '1' } });
  return { code: r.status, stderr: r.stderr };
}

function oneLine(r: ReturnType<typeof cli>, re: RegExp) {
  assert.notEqual(r.code, 0);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0], /^cliplens: error: /);
  assert.match(lines[0], re);
}

const encodeArgs = ['encode', '--model', TINY_A(), '--pixels', join(REF, 'inputs_tiny_a.safetensors'), '--out', join(REPO, '.cache', 'never-written.safetensors')];
const cudaInstalled = existsSync(join(dirname(createRequire(import.meta.url).resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so'));

test('--ep cuda without the CUDA libraries: one line naming the install command, before the model is read', { skip: cudaInstalled && 'the CUDA provider is installed here' }, () => {
  const r = cli(...encodeArgs.slice(0, 2), '/no/such/model.safetensors', ...encodeArgs.slice(3), '--ep', 'cuda');
  oneLine(r, /execution provider 'cuda' is not installed: .*libonnxruntime_providers_\w+\.so.* missing .*ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules\/onnxruntime-node\/script\/install\.js.*or use --ep cpu/);
  // CLIPLENS_EP is honoured the same way.
  const env = spawnSync(process.execPath, [join(REPO, 'bin/cliplens.js'), ...encodeArgs], { encoding: 'utf8', env: { ...process.env, CLIPLENS_EP: 'cuda', CLIPLENS_OFFLINE: '1' } });
  oneLine({ code: env.status, stderr: env.stderr }, /execution provider 'cuda' is not installed/);
});

test('an unknown --ep and fp16 on the CPU are refused in one line', () => {
  oneLine(cli(...encodeArgs, '--ep', 'tpu'), /--ep 'tpu' is not an execution provider of onnxruntime-node on \w+\/\w+ \(it has: cpu.*cuda/);
  oneLine(cli(...encodeArgs, '--precision', 'fp16'), /--precision fp16 is for GPUs \(--ep cuda\)/);
  const bad = cli(...encodeArgs, '--precision', 'fp8');
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /argument 'fp8' is invalid\. Allowed choices are fp32, fp16/);
});

test('the fp16 graph variant matches fp32 within float16 precision (run on the CPU through casts)', async () => {
  const weights = OpenClipSafetensors.open(TINY_A());
  const px = refPixels();
  const run = async (precision: 'fp32' | 'fp16') => {
    const m = new ClipModel({ name: 'tiny_a', config: tinyConfig(), weights }, { threads: 1, precision });
    const d = await new Decomposer(m).decompose(px, { normalise: false });
    await m.release();
    return d;
  };
  const a = await run('fp32');
  const b = await run('fp16');
  const zMax = Math.max(...Array.from(a.imageFeatures.data, Math.abs));
  const dz = maxAbsDiff(a.imageFeatures.data, b.imageFeatures.data);
  assert.ok(dz > 0, 'fp16 graph gave bit-identical output: the variant was not built');
  assert.ok(dz / zMax < 1e-2, `fp16 |Δz| ${dz} vs max |z| ${zMax}`);
  // The terms still sum to the fp16 graph's own embedding, to float16's precision.
  assert.ok(sumInvariant(b.attn, b.mlp, b.imageFeatures.data) / zMax < 1e-2);
  weights.close();
});

test('outputs preallocated once per call (the GPU path) equal the CPU path, for every output', async () => {
  const weights = OpenClipSafetensors.open(TINY_A());
  const px = refPixels();
  const outputs = ['image_features', 'ln_pre_cls', 'resid_cls', 'heads_cls', 'mlp_cls', 'cls_probs', 'values', 'cls_self'] as const;
  const run = async (preallocateOutputs: boolean) => {
    const m = new ClipModel({ name: 'tiny_a', config: tinyConfig(), weights }, { threads: 1, preallocateOutputs });
    const r = await m.runVision(px, [...outputs], 3); // 3 does not divide the batch: a short last chunk
    await m.release();
    return r;
  };
  const a = await run(false);
  const b = await run(true);
  for (const o of outputs) {
    assert.deepEqual(b[o].shape, a[o].shape, o);
    assert.deepEqual(b[o].data, a[o].data, o);
  }
  weights.close();
});
