import './helpers/env.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { decodeImage } from '../src/io/image.ts';
import { readSafetensors } from '../src/io/safetensors.ts';
import { OPENAI_MEAN, OPENAI_STD } from '../src/model/config.ts';
import { preprocessDecoded, preprocessImages, type PreprocessOptions } from '../src/model/preprocess.ts';
import { resizeCropGeometry, roundHalfEven } from '../src/io/resample.ts';
import { preprocessFiles } from '../src/model/preprocess_model.ts';
import { vitB16Config } from './helpers/random_weights.ts';
import { REF, referencePath as ref } from './helpers/fixtures.ts';
import { pattern, syntheticPngs } from './helpers/synthetic_png.ts';
import { ImageDecodeError } from '../src/errors.ts';

const OPENAI: PreprocessOptions = { imageSize: 224, mean: OPENAI_MEAN, std: OPENAI_STD };
const IDENTITY = (S: number): PreprocessOptions => ({ imageSize: S, mean: [0, 0, 0], std: [1, 1, 1] });

test('reference images preprocess exactly like open_clip on PIL (inputs_tiny_a)', async () => {
  const manifest = JSON.parse(readFileSync(ref('manifest.json'), 'utf8'));
  const files = (manifest.images as { file: string }[]).map((m) => join(REF, m.file));
  assert.deepEqual(files.map((f) => f.split('/').pop()), ['catdog.png', 'rocket.jpg', 'coins.png', 'cell.png']);
  const inputs = readSafetensors(ref('inputs_tiny_a.safetensors'));
  const wantU8 = inputs.get('pixels_u8')!;
  const wantPx = inputs.get('pixel_values')!;
  assert.deepEqual(wantU8.shape, [4, 224, 224, 3]);
  const got = await preprocessImages(files, OPENAI);
  const per = 224 * 224 * 3;
  for (let b = 0; b < 4; b++) {
    let diff = 0;
    let worst = 0;
    for (let i = b * per; i < (b + 1) * per; i++) {
      if (got.u8[i] !== (wantU8.data as Uint8Array)[i]) diff++;
      worst = Math.max(worst, Math.abs(got.pixelValues[i] - (wantPx.data as Float32Array)[i]));
    }
    assert.equal(diff, 0, `${files[b]}: ${diff} bytes of pixels_u8 differ`);
    assert.ok(worst <= 1e-6, `${files[b]}: pixel_values differ by ${worst}`);
  }
});

test('resize/crop geometry equals the manifest', () => {
  const manifest = JSON.parse(readFileSync(ref('manifest.json'), 'utf8'));
  const geo = manifest.models.tiny_a.image_geometry as { file: string; orig_wh: [number, number]; resized_wh: [number, number]; crop_left_top: [number, number] }[];
  assert.equal(geo.length, 4);
  for (const g of geo) {
    const r = resizeCropGeometry(g.orig_wh[0], g.orig_wh[1], 224);
    assert.deepEqual([r.resizedW, r.resizedH], g.resized_wh, g.file);
    assert.deepEqual([r.left, r.top], g.crop_left_top, g.file);
  }
});

test('crop offsets round half to even like Python, where Math.round differs', () => {
  assert.deepEqual([0.5, 1.5, 2.5, 54.5, 55.5, 3, -0.5, -1.5].map(roundHalfEven), [0, 2, 2, 54, 56, 3, -0, -2]);
  // 333 wide: (333 - 224) / 2 = 54.5 -> 54 (Math.round gives 55)
  assert.deepEqual(resizeCropGeometry(333, 224, 224), { resizedW: 333, resizedH: 224, left: 54, top: 0 });
  assert.notEqual(Math.round(54.5), 54);
  // tall: 500x761 -> 224x340 (int(224*761/500) = 340), top (340-224)/2 = 58
  assert.deepEqual(resizeCropGeometry(500, 761, 224), { resizedW: 224, resizedH: 340, left: 0, top: 58 });
  // 1000x1493 -> 224x334 (int(334.43)), top 55
  assert.deepEqual(resizeCropGeometry(1000, 1493, 224), { resizedW: 224, resizedH: 334, left: 0, top: 55 });
  // height 449 at 224 wide stays: (449-224)/2 = 112.5 -> 112
  assert.equal(resizeCropGeometry(224, 449, 224).top, 112);
  // upscaling small images; short side already at size -> no resize
  assert.deepEqual(resizeCropGeometry(100, 50, 224), { resizedW: 448, resizedH: 224, left: 112, top: 0 });
  assert.throws(() => resizeCropGeometry(0, 5, 224), RangeError);
});

test('crop with a half-pixel tie ends at the even offset in the pixels too', async () => {
  // 333x224 image whose column index is encoded in the pixel value: the crop must start at column 54
  const w = 333;
  const h = 224;
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) data.fill(i % w & 255, i * 3, i * 3 + 3);
  const png = await sharp(data, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
  const { u8 } = preprocessDecoded(await decodeImage(png), IDENTITY(224));
  assert.equal(u8[0], 54);
});

// SHA-256 of [S,S,3] uint8 from Pillow 9.4.0: Image.open -> resize(BICUBIC, torchvision size rule)
// -> crop -> convert('RGB'), for the synthetic PNGs of test/helpers/synthetic_png.ts at S = 20.
const PIL_PREPROCESS: Record<string, [string, string]> = {
  L: ['L', '14a4725562a1d2d1b53d947d58fd191c6de59fd00cf8fcdb5f837c56db9185b3'],
  LA: ['LA', '1a0a98b19a8faa66be8ff2a25b85afae59c36e2993c036c5ec3894f5ae8559ce'],
  RGB: ['RGB', 'cb7bd78f6dadb14cdf3576cd89e64a4bdd41aae16aa70646ef6a68135ab8ae95'],
  RGBA: ['RGBA', '62cf96c0a05bc3955f7117d2f9eed197697d72e87f01359c998d5765475b0d78'],
  P: ['P', '5eea24f04f67e2b1847d2a2cdbcb8b99a1527e83efc26fc50b3df217eb019965'],
  '1': ['1', 'c03e8ba9b3a9f760116d0b0d95ec5e1315819f3c5135b733ee4e14215bc6fd6b'],
  L4: ['L', 'b6e975515a220d24989ddb3ffd87106ece5aace26461f89cc10807c6e90c073d'],
  I: ['I', 'b9f235d6b3162006c694c13a5db8b9ec93e1378341fec9a75fde53cdc46bc682'],
  RGB16: ['RGB', '5fb4c22476d48594ff1a722a9027a869c9e60d15e8b3503fa61a651691e32636'],
  RGBtRNS: ['RGB', 'cb7bd78f6dadb14cdf3576cd89e64a4bdd41aae16aa70646ef6a68135ab8ae95'],
};

test('every PNG mode preprocesses exactly like PIL (premultiplied alpha, NEAREST for P/1, int32 for I)', async () => {
  const pngs = syntheticPngs();
  assert.deepEqual(Object.keys(pngs).sort(), Object.keys(PIL_PREPROCESS).sort());
  for (const [name, png] of Object.entries(pngs)) {
    const img = await decodeImage(png, name);
    const [mode, digest] = PIL_PREPROCESS[name];
    assert.equal(img.mode, mode, name);
    const { u8 } = preprocessDecoded(img, IDENTITY(20));
    assert.equal(createHash('sha256').update(u8).digest('hex'), digest, `${name}: differs from PIL`);
  }
});

test('generated images of other kinds preprocess with sensible values', async () => {
  const w = 64;
  const h = 48;
  const S = 32;
  const g = Uint8Array.from(pattern(w, h, 1, 2));
  // grayscale -> three equal channels
  const gray = await sharp(g, { raw: { width: w, height: h, channels: 1 } }).toColourspace('b-w').png().toBuffer();
  let r = preprocessDecoded(await decodeImage(gray), { imageSize: S, mean: OPENAI_MEAN, std: OPENAI_STD });
  for (let i = 0; i < S * S; i++) assert.ok(r.u8[i * 3] === r.u8[i * 3 + 1] && r.u8[i * 3 + 1] === r.u8[i * 3 + 2]);
  assert.equal(r.pixels.length, 3 * S * S);
  assert.ok(r.pixels.every(Number.isFinite));
  // normalisation: u8 0 -> -mean/std in float32
  const f = Math.fround;
  const zero = r.u8.indexOf(0);
  if (zero >= 0) assert.equal(r.pixels[Math.floor(zero / 3)], f(f(0 - f(OPENAI_MEAN[0])) / f(OPENAI_STD[0])));

  // palette -> NEAREST: no colours outside the palette appear
  const rgb = Uint8Array.from(pattern(w, h, 3, 4));
  const pal = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).png({ palette: true, colours: 8, dither: 0 }).toBuffer();
  const pimg = await decodeImage(pal);
  assert.equal(pimg.mode, 'P');
  const colours = new Set(Array.from({ length: w * h }, (_, i) => pimg.data.subarray(i * 3, i * 3 + 3).join()));
  r = preprocessDecoded(pimg, IDENTITY(S));
  for (let i = 0; i < S * S; i++) assert.ok(colours.has(r.u8.subarray(i * 3, i * 3 + 3).join()), 'palette image must be resized with NEAREST');

  // RGBA (alpha ignored by convert) and lossy WebP
  const rgba = Uint8Array.from(pattern(w, h, 4, 6));
  const rgbaPng = await sharp(rgba, { raw: { width: w, height: h, channels: 4 } }).png().toBuffer();
  r = preprocessDecoded(await decodeImage(rgbaPng), IDENTITY(S));
  assert.ok(r.u8.some((v) => v > 0));
  const webp = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).webp({ quality: 90 }).toBuffer();
  const wimg = await decodeImage(webp);
  assert.equal(wimg.mode, 'RGB');
  r = preprocessDecoded(wimg, IDENTITY(S));
  const mean = r.u8.reduce((a, v) => a + v, 0) / r.u8.length;
  const srcMean = rgb.reduce((a, v) => a + v, 0) / rgb.length;
  assert.ok(Math.abs(mean - srcMean) < 10, `webp mean ${mean} vs source ${srcMean}`);

  // 16-bit gray: PIL's convert('RGB') clips I values to 0..255
  const flat = (v: number) => sharp(new Uint16Array(w * h).fill(v), { raw: { width: w, height: h, channels: 1 } }).toColourspace('grey16').png().toBuffer();
  assert.ok(preprocessDecoded(await decodeImage(await flat(100)), IDENTITY(S)).u8.every((v) => v === 100));
  assert.ok(preprocessDecoded(await decodeImage(await flat(1000)), IDENTITY(S)).u8.every((v) => v === 255));
});

test('preprocessImages: batch layout, Buffer inputs, errors name the image', async () => {
  const a = await sharp(Uint8Array.from(pattern(40, 30, 3, 1)), { raw: { width: 40, height: 30, channels: 3 } }).png().toBuffer();
  const b = await sharp(Uint8Array.from(pattern(30, 50, 3, 2)), { raw: { width: 30, height: 50, channels: 3 } }).png().toBuffer();
  const S = 16;
  const opts = { imageSize: S, mean: OPENAI_MEAN, std: OPENAI_STD };
  const batch = await preprocessImages([a, b], opts);
  assert.equal(batch.pixelValues.length, 2 * 3 * S * S);
  assert.equal(batch.u8.length, 2 * S * S * 3);
  const one = preprocessDecoded(await decodeImage(b), opts);
  assert.deepEqual(batch.pixelValues.subarray(3 * S * S), one.pixels);
  assert.deepEqual(batch.u8.subarray(3 * S * S), one.u8);
  // CHW layout: channel plane 1 at offset S*S holds the green of pixel 0
  const f = Math.fround;
  assert.equal(one.pixels[S * S], f(f(f(one.u8[1] / 255) - f(OPENAI_MEAN[1])) / f(OPENAI_STD[1])));
  await assert.rejects(preprocessImages([a, Buffer.from('not an image')], opts), (e: unknown) => e instanceof ImageDecodeError && /^image 1: /.test(e.message));
  await assert.rejects(preprocessImages([a], { ...opts, imageSize: 0 }), RangeError);
  await assert.rejects(preprocessImages([a], { ...opts, std: [1, 0, 1] }), RangeError);
});

test('preprocessFiles gives the same bytes on worker threads as on the calling thread, unreadable images included', async () => {
  const cfg = vitB16Config();
  const files = [...['catdog.png', 'rocket.jpg', 'coins.png', 'cell.png'].map((f) => join(REF, 'images', f)), Buffer.from('not an image'), join(REF, 'no-such.png')];
  const here = await preprocessFiles(cfg, files, { workers: false });
  const pool = await preprocessFiles(cfg, files, { workers: true });
  assert.deepEqual(pool.pixels.shape, [4, 3, 224, 224]);
  assert.ok(Buffer.from(pool.pixels.data.buffer).equals(Buffer.from(here.pixels.data.buffer)));
  assert.deepEqual(pool.u8, here.u8);
  assert.deepEqual(pool.errors, here.errors);
  assert.deepEqual(pool.errors.slice(0, 4), [undefined, undefined, undefined, undefined]);
  assert.match(pool.errors[4]!, /^<image buffer>: /);
  assert.match(pool.errors[5]!, /no-such\.png: file not found/);
});
