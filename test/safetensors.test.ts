import './helpers/env.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors, readSafetensors, SafetensorsFile, SafetensorsWriter, writeSafetensors } from '../src/io/safetensors.ts';
import { OutputFileError } from '../src/errors.ts';
import { f32, f32ToF16, f16ToF32, maxAbsDiff } from '../src/tensor.ts';
import { TINY_A } from './helpers/fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'cliplens-st-'));

function fileWithHeader(name: string, header: unknown, dataBytes = 0, lengthOverride?: bigint): string {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(json.length));
  const p = join(dir, name);
  writeFileSync(p, Buffer.concat([len, json, Buffer.alloc(dataBytes)]));
  return p;
}

test('reads the fixture checkpoint with every tensor and shape', () => {
  const f = SafetensorsFile.open(TINY_A());
  assert.equal(f.names().length, 134);
  assert.deepEqual(f.tensors.get('visual.conv1.weight')!.shape, [128, 3, 16, 16]);
  const t = f.readF32('visual.proj');
  assert.equal(t.data.length, 128 * 64);
  assert.ok(t.data.some((v) => v !== 0));
  f.close();
});

test('round trip, including float16 storage and metadata', () => {
  const a = f32([2, 3], Float32Array.of(1, -2.5, 3.25, 0, 1e-3, 65504));
  const b = { dtype: 'I32' as const, shape: [4], data: Int32Array.of(1, 2, 3, 4) };
  const p = join(dir, 'rt.safetensors');
  writeSafetensors(p, { a, b }, { metadata: { model: 'x' } });
  const m = readSafetensors(p);
  assert.deepEqual([...(m.get('a')!.data as Float32Array)], [...a.data]);
  assert.deepEqual([...(m.get('b')!.data as Int32Array)], [1, 2, 3, 4]);
  assert.equal(SafetensorsFile.open(p).metadata.model, 'x');
  const ph = join(dir, 'half.safetensors');
  writeSafetensors(ph, { a }, { half: true });
  const f = SafetensorsFile.open(ph);
  assert.equal(f.tensors.get('a')!.dtype, 'F16');
  assert.ok(maxAbsDiff(f.readF32('a').data, a.data) < 2e-3 * 65504 / 1024);
  assert.equal(Buffer.from(encodeSafetensors({ a })).readBigUInt64LE(0) % 8n, 0n);
});

test('float16 conversion rounds to nearest even and keeps specials', () => {
  const x = Float32Array.of(0, -0, 1, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520, 6e-8, Infinity, NaN);
  const y = f16ToF32(f32ToF16(x));
  assert.equal(y[2], 1);
  assert.equal(y[3], 1); // tie to even
  assert.equal(y[4], 1 + 2 ** -9);
  assert.equal(y[5], Infinity);
  assert.ok(Math.abs(y[6] - 5.96e-8) < 1e-9);
  assert.equal(y[7], Infinity);
  assert.ok(Number.isNaN(y[8]));
});

test('hostile or broken files give clear errors, never huge allocations', () => {
  assert.throws(() => SafetensorsFile.open(fileWithHeader('huge.safetensors', {}, 0, 100n * 1024n ** 3n)), /header claims 107374182400 bytes but the file has only/);
  assert.throws(() => SafetensorsFile.open(fileWithHeader('past.safetensors', { w: { dtype: 'F32', shape: [1000000000, 25], data_offsets: [0, 100000000000] } }, 16)), /truncated or corrupt/);
  assert.throws(() => SafetensorsFile.open(fileWithHeader('mismatch.safetensors', { w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8)), /do not match dtype F32 shape \[3\]/);
  assert.throws(() => SafetensorsFile.open(fileWithHeader('overlap.safetensors', { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12)), /overlap/);
  assert.throws(() => SafetensorsFile.open(fileWithHeader('dtype.safetensors', { a: { dtype: 'Q4', shape: [2], data_offsets: [0, 2] } }, 2)), /unsupported dtype "Q4"/);
  assert.throws(() => SafetensorsFile.open(fileWithHeader('neg.safetensors', { a: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } })), /non-negative integers/);
  const short = join(dir, 'short.safetensors');
  writeFileSync(short, Buffer.from([1, 2, 3]));
  assert.throws(() => SafetensorsFile.open(short), /too short/);
  const notJson = join(dir, 'notjson.safetensors');
  writeFileSync(notJson, Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{{{{')]));
  assert.throws(() => SafetensorsFile.open(notJson), /not valid JSON/);
  // A real file cut short.
  const cut = join(dir, 'cut.safetensors');
  writeFileSync(cut, readFileSync(TINY_A()).subarray(0, 100000));
  assert.throws(() => SafetensorsFile.open(cut), /truncated or corrupt/);
  assert.throws(() => SafetensorsFile.open(join(dir, 'absent.safetensors')), /cannot open \(ENOENT\)/);
  const f = SafetensorsFile.open(TINY_A());
  assert.throws(() => f.read('visual.nope'), /missing tensor 'visual.nope'/);
});

test('SafetensorsWriter: rows written in any order give the same file as writing at once', () => {
  const a = f32([5, 2, 3], Float32Array.from({ length: 30 }, (_, i) => i * 0.5 - 3));
  const b = { dtype: 'U8' as const, shape: [5, 4], data: Uint8Array.from({ length: 20 }, (_, i) => 250 - i) };
  const whole = join(dir, 'whole.safetensors');
  writeSafetensors(whole, { a, b }, { metadata: { model: 'm' } });
  const pieces = join(dir, 'pieces.safetensors');
  const w = new SafetensorsWriter(pieces, { a: { dtype: 'F32', shape: [5, 2, 3] }, b: { dtype: 'U8', shape: [5, 4] } }, { model: 'm' });
  w.write('a', 3, a.data.subarray(18, 30));
  w.write('b', 0, b.data.subarray(0, 8));
  w.write('a', 0, a.data.subarray(0, 18));
  assert.ok(!existsSync(pieces), 'nothing is published before finish()');
  w.write('b', 2, b.data.subarray(8));
  w.finish();
  assert.ok(readFileSync(pieces).equals(readFileSync(whole)));
  // a slice that does not fit, a missing row, and abort leaving nothing behind
  const p2 = join(dir, 'partial.safetensors');
  const w2 = new SafetensorsWriter(p2, { a: { dtype: 'F32', shape: [5, 2, 3] } });
  assert.throws(() => w2.write('a', 4, a.data.subarray(0, 12)), /do not fit/);
  assert.throws(() => w2.write('c', 0, a.data), /no tensor 'c'/);
  w2.write('a', 0, a.data.subarray(0, 24));
  assert.throws(() => w2.finish(), /96 of its 120 bytes/);
  w2.abort();
  assert.ok(!existsSync(p2));
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('partial')), []);
  // a destination that cannot be published (a folder) or a missing folder: one OutputFileError naming
  // the destination, and no temp file left with the data written so far
  const taken = join(dir, 'taken.safetensors');
  mkdirSync(taken);
  const w3 = new SafetensorsWriter(taken, { a: { dtype: 'F32', shape: [5, 2, 3] } });
  w3.write('a', 0, a.data);
  assert.throws(() => w3.finish(), (e: Error) => e instanceof OutputFileError && e.message.startsWith(`safetensors file ${taken} `) && !e.message.includes('.tmp-'));
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('taken') && f !== 'taken.safetensors'), []);
  const nowhere = join(dir, 'no-such-folder', 'x.safetensors');
  assert.throws(() => new SafetensorsWriter(nowhere, { a: { dtype: 'F32', shape: [1] } }), new RegExp(`safetensors file ${nowhere} cannot be written: the folder .*no-such-folder does not exist$`));
});
