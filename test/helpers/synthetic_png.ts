// Hand-built PNGs (any colour type / bit depth, optional extra chunks) and the integer test
// pattern shared with the Pillow 9.4 script that produced the digests in the image tests.

import { crc32, createDeflate, deflateSync } from 'node:zlib';

/** pattern(x, y, ch) = (3x² + 7y + 50ch + 11seed + 5((x·y) mod 23)) mod 256, HWC. */
export function pattern(w: number, h: number, c: number, seed: number): Int32Array {
  const out = new Int32Array(w * h * c);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) out[(y * w + x) * c + ch] = (x * x * 3 + y * 7 + ch * 50 + seed * 11 + ((x * y) % 23) * 5) % 256;
    }
  }
  return out;
}

/** Alpha with holes: 0 where (x+y) % 5 == 0, opaque in the first 3 rows. */
export function alphaFix(v: number, x: number, y: number): number {
  if (y < 3) return 255;
  return (x + y) % 5 === 0 ? 0 : v;
}

export function chunk(type: string, data: Uint8Array): Buffer {
  const t = Buffer.from(type, 'latin1');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([t, data])) >>> 0);
  return Buffer.concat([len, t, Buffer.from(data), crc]);
}

/**
 * PNG with rows of `samples` (row-major, `channels` per pixel) at `bitDepth` (1,2,4,8,16);
 * sub-byte depths pack MSB first, 16-bit is big-endian.
 */
export function makePng(w: number, h: number, bitDepth: number, colorType: number, channels: number, samples: ArrayLike<number>, extra: Buffer[] = []): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colorType;
  const rowBytes = Math.ceil((w * channels * bitDepth) / 8);
  const raw = Buffer.alloc(h * (rowBytes + 1));
  for (let y = 0; y < h; y++) {
    const r = y * (rowBytes + 1) + 1;
    for (let i = 0; i < w * channels; i++) {
      const v = samples[y * w * channels + i];
      if (bitDepth === 16) raw.writeUInt16BE(v, r + i * 2);
      else if (bitDepth === 8) raw[r + i] = v;
      else {
        const bit = i * bitDepth;
        raw[r + (bit >> 3)] |= v << (8 - bitDepth - (bit & 7));
      }
    }
  }
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), ...extra, chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]);
}

/** The PNGs the digest script builds, by name (see test/preprocess.test.ts). */
export function syntheticPngs(): Record<string, Buffer> {
  const W = 45;
  const H = 31;
  const p = pattern(W, H, 4, 1);
  const n = W * H;
  const take = (chs: number[], fix?: number) => {
    const out = new Int32Array(n * chs.length);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < chs.length; k++) {
        let v = p[i * 4 + chs[k]];
        if (k === fix) v = alphaFix(v, i % W, Math.floor(i / W));
        out[i * chs.length + k] = v;
      }
    }
    return out;
  };
  const g = take([0]);
  const pal = pattern(16, 1, 3, 5);
  const trnsP = new Uint8Array(16).map((_, i) => i * 16);
  const i16 = pattern(31, 45, 1, 2).map((v) => v * 4);
  // numpy's astype('>u2') in the digest script wraps modulo 2^16
  const r16 = pattern(W, H, 3, 3).map((v, i) => (v * 257 + (Math.floor(i / 3) % W)) & 0xffff);
  const trnsRgb = Buffer.alloc(6);
  trnsRgb.writeUInt16BE(p[0], 0);
  trnsRgb.writeUInt16BE(p[1], 2);
  trnsRgb.writeUInt16BE(p[2], 4);
  return {
    L: makePng(W, H, 8, 0, 1, g),
    LA: makePng(W, H, 8, 4, 2, take([0, 1], 1)),
    RGB: makePng(W, H, 8, 2, 3, take([0, 1, 2])),
    RGBA: makePng(W, H, 8, 6, 4, take([0, 1, 2, 3], 3)),
    P: makePng(W, H, 8, 3, 1, g.map((v) => v % 16), [chunk('PLTE', Uint8Array.from(pal)), chunk('tRNS', trnsP)]),
    '1': makePng(W, H, 1, 0, 1, g.map((v) => (v >= 128 ? 1 : 0))),
    L4: makePng(W, H, 4, 0, 1, g.map((v) => v % 16)),
    I: makePng(31, 45, 16, 0, 1, i16),
    RGB16: makePng(W, H, 16, 2, 3, r16),
    RGBtRNS: makePng(W, H, 8, 2, 3, take([0, 1, 2]), [chunk('tRNS', trnsRgb)]),
  };
}

/**
 * A w×h RGB PNG of one colour that stays small on disk (every row after the first is "same as
 * above"): 13000×13000 is 0.5 MB, 169 Mpx once decoded. Built with streaming deflate, never holding
 * the decoded image.
 */
export async function hugeFlatPng(w: number, h: number, rgb: [number, number, number]): Promise<Buffer> {
  const rowBytes = 1 + w * 3;
  const first = Buffer.alloc(rowBytes);
  for (let i = 1; i < rowBytes; i += 3) first.set(rgb, i);
  const block = 64;
  const ups = Buffer.alloc(rowBytes * block);
  for (let k = 0; k < block; k++) ups[k * rowBytes] = 2; // PNG filter 'Up' with zero deltas
  const z = createDeflate({ level: 6 });
  const out: Buffer[] = [];
  z.on('data', (c: Buffer) => out.push(c));
  const ended = new Promise((r) => z.once('end', r));
  z.write(first);
  for (let y = 1; y < h; y += block) {
    if (!z.write(ups.subarray(0, Math.min(block, h - y) * rowBytes))) await new Promise((r) => z.once('drain', r));
  }
  z.end();
  await ended;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', Buffer.concat(out)), chunk('IEND', new Uint8Array(0))]);
}
