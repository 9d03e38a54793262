import './helpers/env.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import sharp from 'sharp';
import { convertToRGB, decodeImage, encodePng, resizeImage } from '../src/io/image.ts';
import { precomputeCoeffs, resampleF32, resampleI32, resampleU8, resizeNearest, setResampleKernels, type Filter } from '../src/io/resample.ts';
import { RESAMPLE_WASM_BASE64 } from '../src/io/resample_wasm.ts';
import { readSafetensors } from '../src/io/safetensors.ts';
import { REF, referencePath as ref } from './helpers/fixtures.ts';
import { makePng, pattern } from './helpers/synthetic_png.ts';
import { mulberry32 } from '../src/rng.ts';
import { ImageDecodeError, ResampleError } from '../src/errors.ts';

const tmp = mkdtempSync(join(tmpdir(), 'cliplens-img-'));
const sha = (b: ArrayBufferView) => createHash('sha256').update(new Uint8Array(b.buffer, b.byteOffset, b.byteLength)).digest('hex');

async function rejectsDecode(input: string | Buffer, name: string | undefined, re: RegExp, opts?: { maxPixels?: number }) {
  await assert.rejects(decodeImage(input, name, opts), (e: unknown) => {
    assert.ok(e instanceof ImageDecodeError, `expected ImageDecodeError, got ${e}`);
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), `message must be one line: ${JSON.stringify(e.message)}`);
    return true;
  });
}

test('rocket.jpg decodes byte-for-byte like PIL (ICC profile ignored)', async () => {
  const want = readSafetensors(ref('images_decoded.safetensors')).get('rocket.jpg')!;
  const img = await decodeImage(ref('images/rocket.jpg'));
  assert.equal(img.mode, 'RGB');
  assert.deepEqual([img.height, img.width, img.channels], want.shape);
  const w = want.data as Uint8Array;
  let diff = 0;
  for (let i = 0; i < w.length; i++) if (img.data[i] !== w[i]) diff++;
  assert.equal(diff, 0, `${diff} bytes differ from PIL's decode`);
});

test('fixture PNGs open in PIL modes (manifest)', async () => {
  const manifest = JSON.parse(readFileSync(ref('manifest.json'), 'utf8'));
  for (const m of manifest.images as { file: string; mode: string; width: number; height: number }[]) {
    const img = await decodeImage(join(REF, m.file));
    assert.equal(img.mode, m.mode, m.file);
    assert.deepEqual([img.width, img.height], [m.width, m.height], m.file);
    assert.equal(img.data.length, img.width * img.height * img.channels);
  }
});

test('decode errors are ImageDecodeError with a one-line message naming the file', async () => {
  const jpg = readFileSync(ref('images/rocket.jpg'));
  const png = readFileSync(ref('images/catdog.png'));
  await rejectsDecode(jpg.subarray(0, jpg.length >> 1), 'half.jpg', /^half\.jpg: .*truncated/i);
  await rejectsDecode(png.subarray(0, png.length >> 1), 'half.png', /^half\.png: truncated PNG: IDAT chunk/);
  const p = join(tmp, 'half.png');
  writeFileSync(p, png.subarray(0, png.length - 2000));
  await rejectsDecode(p, undefined, new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
  let s = 12345;
  const noise = Buffer.from(Uint8Array.from({ length: 4096 }, () => ((s = (s * 1103515245 + 12345) >>> 0) >>> 24) & 255));
  await rejectsDecode(noise, 'noise.bin', /^noise\.bin: not an image in a supported format/);
  await rejectsDecode(Buffer.alloc(0), 'empty.png', /^empty\.png: empty file/);
  await rejectsDecode(join(tmp, 'nope.png'), undefined, /nope\.png: file not found/);
  await rejectsDecode(png, 'bomb.png', /^bomb\.png: 224x224 image exceeds the limit of 1000 pixels/, { maxPixels: 1000 });
  // a PNG whose header claims a huge image is refused before decoding
  const big = makePng(1, 1, 8, 0, 1, [0]);
  big.writeUInt32BE(60000, 16);
  big.writeUInt32BE(60000, 20);
  big.writeUInt32BE(crc32(big.subarray(12, 29)) >>> 0, 29);
  await rejectsDecode(big, 'huge.png', /^huge\.png: 60000x60000 image exceeds the limit/);
});

test('generated images decode in their PIL modes with exact samples', async () => {
  const w = 7;
  const h = 5;
  const g = pattern(w, h, 1, 0);
  const gray = await sharp(Uint8Array.from(g), { raw: { width: w, height: h, channels: 1 } }).toColourspace('b-w').png().toBuffer();
  let img = await decodeImage(gray, 'gray.png');
  assert.equal(img.mode, 'L');
  assert.equal(img.channels, 1);
  assert.deepEqual(Array.from(img.data), Array.from(g));
  assert.deepEqual(Array.from(convertToRGB(img).subarray(0, 6)), [g[0], g[0], g[0], g[1], g[1], g[1]]);

  const rgba = pattern(w, h, 4, 3);
  const rgbaPng = await sharp(Uint8Array.from(rgba), { raw: { width: w, height: h, channels: 4 } }).png().toBuffer();
  img = await decodeImage(rgbaPng, 'rgba.png');
  assert.equal(img.mode, 'RGBA');
  assert.deepEqual(Array.from(img.data), Array.from(rgba));
  // convert('RGB') drops alpha without compositing
  assert.deepEqual(Array.from(convertToRGB(img).subarray(0, 3)), Array.from(rgba.subarray(0, 3)));

  const webp = await sharp(Uint8Array.from(pattern(w, h, 3, 4)), { raw: { width: w, height: h, channels: 3 } }).webp({ lossless: true }).toBuffer();
  img = await decodeImage(webp, 'x.webp');
  assert.equal(img.mode, 'RGB');
  assert.equal(img.format, 'webp');
  assert.deepEqual(Array.from(img.data), Array.from(pattern(w, h, 3, 4)));
  const webpA = await sharp(Uint8Array.from(rgba), { raw: { width: w, height: h, channels: 4 } }).webp({ lossless: true, exact: true }).toBuffer();
  assert.equal((await decodeImage(webpA)).mode, 'RGBA');

  const pal = await sharp(Uint8Array.from(pattern(w, h, 3, 5)), { raw: { width: w, height: h, channels: 3 } }).png({ palette: true, colours: 4, dither: 0 }).toBuffer();
  img = await decodeImage(pal, 'pal.png');
  assert.equal(img.mode, 'P');
  assert.equal(img.channels, 3);
  assert.ok(new Set(Array.from({ length: w * h }, (_, i) => img.data.subarray(i * 3, i * 3 + 3).join())).size <= 4);

  // 16-bit gray opens as 'I' with full-range samples; 8-bit view clipped like PIL's convert
  const s16 = new Uint16Array(w * h).map((_, i) => i * 1500);
  img = await decodeImage(makePng(w, h, 16, 0, 1, s16), 'g16.png');
  assert.equal(img.mode, 'I');
  assert.deepEqual(Array.from(img.samples!), Array.from(s16));
  assert.deepEqual(Array.from(img.data), Array.from(s16, (v) => Math.min(v, 255)));
  // 16-bit RGB keeps the high byte (PIL's RGB;16B unpacker)
  const r16 = new Uint16Array(w * h * 3).map((_, i) => i * 613 + 255);
  img = await decodeImage(makePng(w, h, 16, 2, 3, r16), 'rgb16.png');
  assert.equal(img.mode, 'RGB');
  assert.deepEqual(Array.from(img.data), Array.from(r16, (v) => v >> 8));
  // 1-bit gray -> '1' with 0/255; 4-bit gray -> 'L' scaled by 17
  const bits = Array.from({ length: w * h }, (_, i) => (i * 7) % 3 === 0 ? 1 : 0);
  img = await decodeImage(makePng(w, h, 1, 0, 1, bits), 'bits.png');
  assert.equal(img.mode, '1');
  assert.deepEqual(Array.from(img.data), bits.map((b) => b * 255));
  const nib = Array.from({ length: w * h }, (_, i) => i % 16);
  img = await decodeImage(makePng(w, h, 4, 0, 1, nib), 'nib.png');
  assert.equal(img.mode, 'L');
  assert.deepEqual(Array.from(img.data), nib.map((v) => v * 17));
});

test('EXIF orientation is not applied (PIL does not)', async () => {
  const raw = Uint8Array.from(pattern(6, 4, 3, 1));
  const jpg = await sharp(raw, { raw: { width: 6, height: 4, channels: 3 } }).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
  assert.equal((await sharp(jpg).metadata()).orientation, 6);
  const img = await decodeImage(jpg);
  assert.deepEqual([img.width, img.height], [6, 4]);
});

test('encodePng round-trips', async () => {
  const rgb = Uint8Array.from(pattern(5, 3, 3, 2));
  const img = await decodeImage(await encodePng(rgb, 5, 3, 3));
  assert.deepEqual(Array.from(img.data), Array.from(rgb));
  await assert.rejects(encodePng(rgb, 5, 4, 3), RangeError);
});

// SHA-256 of Pillow 9.4.0 output for the same inputs (Image.resize on the pattern image).
const PIL_U8: Record<string, string> = {
  '17x29:bicubic': 'f99d343495cb6302b5a55ccb0f99628b0cf6e8e8e930dc3c313d7abbacf421f5',
  '90x62:bicubic': 'b46ab8600d9dba2442f7052f5b83bd27812fe78cb7b6f36183551a9c678befd4',
  '20x13:bilinear': '4210717c6d0e0a2ac81adfd17ad578342625462a7587028ed67ed93083e6dca7',
  '70x40:nearest': '353f51ab5b9789eae76ff5f3428bc5f6755a6a177113ffc800ce5e8c2bfa87dc',
  '13x9:nearest': '504c42507dce4504bc4d42e52a49a71930ce5209050e5c60d5d48c5e790025aa',
  '33x33:lanczos': '85110335a139a233bf25c2f06b32168dfb9a428350cb1d2bf1bcf8628782520d',
  '15x10:box': 'd87975b7e80fc1e4295280b42023d61a1dc1303c8a35a1ea4e9ccaa75ef6747f',
  '30x50:hamming': 'f5bbded29d5ed37367efe6318b29d7b0f815071967ae964ba9bd190dcd71a63e',
  '45x12:bicubic': '6103a4040376d0587cab4721d7054e0bed4b3cca8f07f95135245d98119f2f1f',
  '9x31:bicubic': '8ab3ffaf85f200418f1f4fa5d59968d7534ecce65ab92dce6ddaa28ab8ae30b0',
};
const PIL_F32: Record<string, string> = {
  '224x224:bilinear': '973b463988d2f27304a277629edd61937fb8acc8c655c7f1c12ebee49b470606',
  '33x20:bicubic': '4d982558aeef1c366c73ebcdc88230368ce8fd17b64d71e2581d97a0dc3fcdec',
  '5x7:bilinear': '9741c81187116d38589ffa3ac09b8812f8b89928b67e85431ac6ef9396e9a0d9',
};

test('resampleU8 equals Pillow 9.4 for every filter, down and up', () => {
  const rgb = Uint8Array.from(pattern(45, 31, 3, 7));
  for (const [key, want] of Object.entries(PIL_U8)) {
    const [size, filter] = key.split(':');
    const [ow, oh] = size.split('x').map(Number);
    assert.equal(sha(resampleU8(rgb, 45, 31, 3, ow, oh, filter as Filter)), want, key);
  }
});

test('resampleU8 with a crop box equals resizing then cropping, for every filter and channel count', () => {
  const rand = mulberry32(5);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  for (let t = 0; t < 60; t++) {
    const c = [1, 2, 3, 4][t % 4];
    const filter = (['bicubic', 'bilinear', 'lanczos', 'box', 'hamming', 'nearest'] as Filter[])[t % 6];
    const w = int(1, 60), h = int(1, 60);
    // keep one side unchanged now and then: Pillow then skips that pass
    const outW = t % 5 === 0 ? w : int(1, 80), outH = t % 7 === 0 ? h : int(1, 80);
    const src = Uint8Array.from({ length: w * h * c }, () => int(0, 255));
    const full = resampleU8(src, w, h, c, outW, outH, filter);
    const cw = int(1, outW), ch = int(1, outH);
    const left = int(0, outW - cw), top = int(0, outH - ch);
    const got = resampleU8(src, w, h, c, outW, outH, filter, { left, top, width: cw, height: ch });
    const want = new Uint8Array(cw * ch * c);
    for (let y = 0; y < ch; y++) want.set(full.subarray(((top + y) * outW + left) * c, ((top + y) * outW + left + cw) * c), y * cw * c);
    assert.deepEqual(got, want, `${w}x${h}x${c} → ${outW}x${outH} ${filter}, crop ${cw}x${ch}+${left}+${top}`);
  }
  assert.throws(() => resampleU8(new Uint8Array(12), 2, 2, 3, 4, 4, 'bicubic', { left: 2, top: 0, width: 3, height: 1 }), ResampleError);
});

test('the WebAssembly SIMD kernels and the JS kernels give the same bytes', async () => {
  const rand = mulberry32(9);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  try {
    for (let t = 0; t < 80; t++) {
      const c = [1, 2, 3, 4][t % 4];
      const filter = (['bicubic', 'bilinear', 'lanczos', 'box', 'hamming'] as Filter[])[t % 5];
      const w = int(1, 90), h = int(1, 90);
      const outW = t % 6 === 0 ? w : int(1, 120), outH = t % 9 === 0 ? h : int(1, 120);
      const src = Uint8Array.from({ length: w * h * c }, () => int(0, 255));
      const cw = int(1, outW), ch = int(1, outH);
      const crop = t % 2 ? { left: int(0, outW - cw), top: int(0, outH - ch), width: cw, height: ch } : undefined;
      setResampleKernels('js');
      const js = resampleU8(src, w, h, c, outW, outH, filter, crop);
      setResampleKernels('simd');
      assert.deepEqual(resampleU8(src, w, h, c, outW, outH, filter, crop), js, `${w}x${h}x${c} → ${outW}x${outH} ${filter} ${JSON.stringify(crop)}`);
    }
  } finally {
    setResampleKernels('simd');
  }
  // the committed module is the assembled source
  const { assembleResampleWat } = await import('../tools/build_wasm.ts');
  assert.equal((await assembleResampleWat()).toString('base64'), RESAMPLE_WASM_BASE64, 'src/io/resample_wasm.ts is stale: run node --import tsx tools/build_wasm.ts');
});

test('resampleF32 equals Pillow mode F resize', () => {
  const f = Math.fround;
  const src = Float32Array.from(pattern(14, 14, 1, 9), (v) => f(f(v - 128) / 37));
  for (const [key, want] of Object.entries(PIL_F32)) {
    const [size, filter] = key.split(':');
    const [ow, oh] = size.split('x').map(Number);
    assert.equal(sha(resampleF32(src, 14, 14, 1, ow, oh, filter as Filter)), want, key);
  }
});

test('resampling basics: constants stay constant, weights sum to one, nearest copies pixels', () => {
  const flat = new Uint8Array(40 * 30 * 3).fill(173);
  for (const f of ['bicubic', 'bilinear', 'lanczos'] as Filter[]) {
    assert.ok(resampleU8(flat, 40, 30, 3, 13, 71, f).every((v) => v === 173), f);
  }
  const c = precomputeCoeffs(640, 0, 640, 335, 'bicubic');
  for (let i = 0; i < 335; i++) {
    let s = 0;
    for (let k = 0; k < c.bounds[i * 2 + 1]; k++) s += c.kk[i * c.ksize + k];
    assert.ok(Math.abs(s - 1) < 1e-12);
  }
  const src = Uint8Array.from({ length: 16 }, (_, i) => i * 10);
  assert.deepEqual(Array.from(resizeNearest(src, 4, 4, 1, 2, 2)), [50, 70, 130, 150]);
  const i32 = resampleI32(Uint16Array.from({ length: 16 }, () => 40000), 4, 4, 1, 3, 5, 'bicubic');
  assert.ok(i32.every((v) => v === 40000));
  assert.throws(() => resampleU8(src, 4, 3, 1, 2, 2, 'bicubic'), ResampleError);
  assert.throws(() => resampleU8(src, 4, 4, 1, 0, 2, 'bicubic'), ResampleError);
});

test('RGBA resize is premultiplied like PIL: transparent pixels do not bleed colour', () => {
  // left half opaque red, right half transparent green
  const w = 8;
  const h = 2;
  const data = new Uint8Array(w * h * 4);
  for (let i = 0; i < w * h; i++) data.set(i % w < 4 ? [255, 0, 0, 255] : [0, 255, 0, 0], i * 4);
  const img = { width: w, height: h, channels: 4, mode: 'RGBA' as const, data, format: 'raw' };
  const out = resizeImage(img, 5, 2, 'bicubic');
  assert.ok(Array.from({ length: 10 }, (_, i) => out.data[i * 4 + 3]).some((a) => a > 0 && a < 255), 'expected partly transparent pixels');
  for (let i = 0; i < 10; i++) {
    const [r, g, , a] = out.data.subarray(i * 4, i * 4 + 4);
    if (a > 0 && a < 255) assert.equal(g, 0, `pixel ${i} picked up green through alpha 0: ${[r, g, a]}`);
  }
  // a non-premultiplied resize would mix green in
  const plain = resampleU8(data, w, h, 4, 5, 2, 'bicubic');
  assert.ok(Array.from({ length: 10 }, (_, i) => plain[i * 4 + 1]).some((g) => g > 0));
});

// GIFs written by Pillow 9.4.0: a 16x16 gray ramp palette (PIL opens it as mode L) and an
// 8x6 palette image, both with a transparent index; digests of PIL's convert('RGB') and of
// resize((5, 11), BICUBIC).convert('RGB').
const RAMP_GIF = [
  'R0lGODlhEAAQAIcAAAAAAAEBAQICAgMDAwQEBAUFBQYGBgcHBwgICAkJCQoKCgsLCwwMDA0NDQ4ODg8PDxAQEBERERISEhMTExQUFBUVFRYWFhcXFxgYGBkZ',
  'GRoaGhsbGxwcHB0dHR4eHh8fHyAgICEhISIiIiMjIyQkJCUlJSYmJicnJygoKCkpKSoqKisrKywsLC0tLS4uLi8vLzAwMDExMTIyMjMzMzQ0NDU1NTY2Njc3',
  'Nzg4ODk5OTo6Ojs7Ozw8PD09PT4+Pj8/P0BAQEFBQUJCQkNDQ0REREVFRUZGRkdHR0hISElJSUpKSktLS0xMTE1NTU5OTk9PT1BQUFFRUVJSUlNTU1RUVFVV',
  'VVZWVldXV1hYWFlZWVpaWltbW1xcXF1dXV5eXl9fX2BgYGFhYWJiYmNjY2RkZGVlZWZmZmdnZ2hoaGlpaWpqamtra2xsbG1tbW5ubm9vb3BwcHFxcXJycnNz',
  'c3R0dHV1dXZ2dnd3d3h4eHl5eXp6ent7e3x8fH19fX5+fn9/f4CAgIGBgYKCgoODg4SEhIWFhYaGhoeHh4iIiImJiYqKiouLi4yMjI2NjY6Ojo+Pj5CQkJGR',
  'kZKSkpOTk5SUlJWVlZaWlpeXl5iYmJmZmZqampubm5ycnJ2dnZ6enp+fn6CgoKGhoaKioqOjo6SkpKWlpaampqenp6ioqKmpqaqqqqurq6ysrK2tra6urq+v',
  'r7CwsLGxsbKysrOzs7S0tLW1tba2tre3t7i4uLm5ubq6uru7u7y8vL29vb6+vr+/v8DAwMHBwcLCwsPDw8TExMXFxcbGxsfHx8jIyMnJycrKysvLy8zMzM3N',
  'zc7Ozs/Pz9DQ0NHR0dLS0tPT09TU1NXV1dbW1tfX19jY2NnZ2dra2tvb29zc3N3d3d7e3t/f3+Dg4OHh4eLi4uPj4+Tk5OXl5ebm5ufn5+jo6Onp6erq6uvr',
  '6+zs7O3t7e7u7u/v7/Dw8PHx8fLy8vPz8/T09PX19fb29vf39/j4+Pn5+fr6+vv7+/z8/P39/f7+/v///yH5BAEAAAcALAAAAAAQABAAQAj/AAGUUPKGUi5v',
  'A1A0kXOJVzgDKwCVUvaOQg4vg1A1k3eBRxhDq4CUUfSKWj4PQ9A0knWNXwgja4CVU/CCSh5Pw9A1kHGFTyhj60AVU/eARhY/o5C1k3CDSyBTy8AVUPGETiZf',
  '4xC0kHKHUzBzC0AUUfOIVjZ/I5C0kXSLWwATS8AUUvWMXgYfYxC1knaPQxAzi6DU0fSLXAIXU/B0EnaOQQwre+BV0PGFUCpn8zD0EHOIVTR7GyDV0vaPRBI3',
  'k3B1E3CCSRxLu2BU0fOJWDoHM7D0EXWMXQQbW6DV0/CDTCJX0/B1EHKGUSxr++BU0vWNQAonczD1EneARRQ7myDUJNDyh1QydxNwdBF0ilk8CztgVdP3gUga',
  'R7Ow9RNxhE0kW9sEBAA7',
].join('');
// An Adobe CMYK JPEG written by Pillow 9.4.0 (8x6).
const CMYK_JPG =
  '/9j/7gAOQWRvYmUAZAAAAAAA/9sAQwACAQEBAQECAQEBAgICAgIEAwICAgIFBAQDBAYFBgYGBQYGBgcJCAYHCQcGBggLCAkKCgoKCgYICwwLCgwJCgoK/8AAFAgABgAIBEMRAE0RAFkRAEsRAP/EAB8AAAEFAQEBAQEBAAAAAAAAAAABAgMEBQYHCAkKC//EALUQAAIBAwMCBAMFBQQEAAABfQECAwAEEQUSITFBBhNRYQcicRQygZGhCCNCscEVUtHwJDNicoIJChYXGBkaJSYnKCkqNDU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6g4SFhoeIiYqSk5SVlpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2drh4uPk5ebn6Onq8fLz9PX29/j5+v/aAA4EQwBNAFkASwAAPwDV8HfE/wASfHfx38QP+CnHxrsNO17SPh74guvD/gDwxfQyTTWviSKKzvDrL5dYV+zw3EawBlmPnTtMBBJaQPJmfEPxt41/YU/ZG1j9svxjro8Q/EL48eD9O1iG4tbWLy/DugTxfbLXT4J3UTmWYTRTXeGWJpIbeNUb7KJ5pfjF8G/Enw+8R+Ff+CRH7N3xPv7TUPHPiDUtV8a/EXxMJJPtt/HpzXGo6glnHIVjxaaeI7ezR1U+TCks+95rprukfDbwf+0d8VNW8J+G/DWneFPgX+zN/ZV3N8OLSyS6/t+aee6mtbGVbkSRy200tncy3005kmuN7KQz3UlzD//Z';
const TRANS_GIF = 'R0lGODlhCAAGAIIAAF+tH95XOovl4t9OBMe1xQAJgFVv7jSHUyH5BAEAAAMALAAAAAAIAAYAAAgtAAsYAGBgAIECAg4AEGBwQAAAEAMcCCAwAMOEEg0MHFCAY4ECAA4QOCAAI4CAADs=';

test('GIF and CMYK JPEG: PIL 9.4 modes, transparent GIF pixels keep their palette colour, cmyk2rgb', async () => {
  const cases: [string, string, string, string][] = [
    [RAMP_GIF, 'L', '400651ebe283a6fa27f6d525ebcdec33c0d1c2ce07faaa8b9f8a2e2dd2559d7d', '3ba38766f02ffe8b8746c9ed5979e175b6557eaf33e60ddd5a417a504068c77d'],
    [CMYK_JPG, 'CMYK', 'a8fc4fbdd625c06a30dafaaa1ceeb864d2516c7a3c562527fc29b7aed89b64aa', '10beaf37a4654ceec14289eb11bd8755d3c489da62f27c8c282231699536973b'],
    [TRANS_GIF, 'P', 'fd43b88eaed6765788127bfbcd8f3a1027ad3bfd6460c862859cbd5aa00d0eb9', 'f8145a7898f9aba7b57d75e54126d585b4f41a5b3f63ed9d3cd1f8b81b078c09'],
  ];
  for (const [b64, mode, dec, resized] of cases) {
    const img = await decodeImage(Buffer.from(b64, 'base64'), mode);
    assert.equal(img.mode, mode);
    assert.equal(sha(convertToRGB(img)), dec, `${mode} decode`);
    assert.equal(sha(convertToRGB(resizeImage(img, 5, 11, 'bicubic'))), resized, `${mode} resize`);
  }
});
