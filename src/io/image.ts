// Image decoding with sharp into the pixel modes PIL 9.4 would open, so that resizing and
// convert('RGB') can follow PIL's per-mode rules exactly (see resizeImage / convertToRGB).
//
// Mode rules (what PIL's Image.open yields):
//  PNG   colour type 0: bit depth 1 -> '1', 2/4/8 -> 'L', 16 -> 'I' (int32 samples);
//        2 -> 'RGB', 3 -> 'P', 4 -> 'LA' ('RGBA' at 16 bits), 6 -> 'RGBA'. 16-bit RGB/LA/RGBA keep the high byte.
//        tRNS transparency is ignored (PIL keeps mode L/RGB/P and convert('RGB') drops it).
//  JPEG  'L', 'RGB' or 'CMYK'.  GIF 'P', or 'L' when the palette is the gray ramp (first
//        frame; transparent pixels keep their palette colour).  WebP 'RGB' or 'RGBA'.
//  other formats: from sharp's channels/depth (best effort, not verified against PIL).
// 'P' images are stored already expanded through their palette to RGB: PIL resizes P with
// NEAREST, and nearest sampling commutes with the palette lookup, so the result is the same.
// EXIF orientation is never applied and ICC profiles are ignored (PIL does neither);
// with ignoreIcc sharp's JPEG decode equals PIL's byte for byte.

import { readFile } from 'node:fs/promises';
import sharp, { type Metadata } from 'sharp';
import { resampleI32, resampleU8, resampleU8Premultiplied, type CropBox, type Filter } from './resample.ts';
import { ImageDecodeError } from '../errors.ts';
import { fsProblem } from './files.ts';

export type PilMode = '1' | 'L' | 'LA' | 'I' | 'P' | 'RGB' | 'RGBA' | 'CMYK';

export interface DecodedImage {
  width: number;
  height: number;
  /** samples per pixel in `data` (1 for 1/L/I, 2 for LA, 3 for RGB/P, 4 for RGBA/CMYK) */
  channels: number;
  mode: PilMode;
  /** HWC uint8 samples; for mode 'I' the samples clipped to 0..255 (what PIL's convert would give) */
  data: Uint8Array;
  /** mode 'I' only: the samples (16-bit grayscale PNG values 0..65535) */
  samples?: Int32Array;
  /** container format as sharp names it (png, jpeg, webp, gif, tiff ...) */
  format: string;
  /** Set when the image was shrunk on load (see DecodeOptions.budget): the file's own size. */
  source?: { width: number; height: number };
}

export interface DecodeOptions {
  /** refuse images with more pixels than this (decompression bombs); default as PIL's error limit */
  maxPixels?: number;
  /**
   * A pixel budget (the explorer's): an image with more pixels than `pixels` is decoded already
   * shrunk (libvips shrink-on-load, JPEG in the DCT; lanczos3) to at most that many pixels, same
   * aspect, shorter side at least `minSide`, so decoding costs memory in proportion to the budget
   * and not to the file. '1' and 'P' images come back as 'L' and 'RGB', and `source` records the
   * file's size. Images within the budget decode exactly as without it.
   */
  budget?: { pixels: number; minSide: number };
}

/**
 * The size an image of w×h is decoded at under `budget`, or undefined when it fits. The shorter side
 * never goes below `minSide`, the longer one never below ⌊long·minSide/short⌋.
 */
export function budgetSize(w: number, h: number, budget: { pixels: number; minSide: number }): { width: number; height: number } | undefined {
  if (w * h <= budget.pixels) return undefined;
  const k = Math.sqrt(budget.pixels / (w * h));
  let width = Math.floor(w * k);
  let height = Math.floor(h * k);
  if (Math.min(width, height) < budget.minSide) {
    const long = Math.trunc((Math.max(w, h) * budget.minSide) / Math.min(w, h));
    [width, height] = w <= h ? [budget.minSide, long] : [long, budget.minSide];
  }
  return { width: Math.min(width, w), height: Math.min(height, h) };
}

/** PIL raises DecompressionBombError above 2 * Image.MAX_IMAGE_PIXELS. */
export const DEFAULT_MAX_PIXELS = 2 * 89_478_485;

export const MODE_CHANNELS: Record<PilMode, number> = { '1': 1, L: 1, LA: 2, I: 1, P: 3, RGB: 3, RGBA: 4, CMYK: 4 };

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

function explain(name: string, e: unknown): ImageDecodeError {
  if (e instanceof ImageDecodeError) return e;
  const msg = oneLine((e as Error)?.message ?? String(e));
  if (/unsupported image format/i.test(msg)) return new ImageDecodeError(name, 'not an image in a supported format (PNG, JPEG, WebP, GIF, TIFF, AVIF ...)');
  if (/pixel limit/i.test(msg)) return new ImageDecodeError(name, `image exceeds the pixel limit (${msg})`);
  if (/truncat|premature|end of (file|input|data)|out of data|not enough data/i.test(msg)) return new ImageDecodeError(name, `truncated image data (${msg})`);
  return new ImageDecodeError(name, `cannot decode image (${msg})`);
}

interface GifFrameInfo {
  /** the first frame's palette (local, else global), RGB triples */
  palette?: Uint8Array;
  /** palette is the identity ramp i -> (i,i,i): PIL 9.4 then opens the GIF as mode L */
  gray: boolean;
  /** transparent palette index from the graphic control extension */
  transparency?: number;
}

/** Walk a GIF's blocks up to the first image descriptor (what PIL reads to open frame 0). */
function gifFirstFrame(buf: Buffer): GifFrameInfo | undefined {
  if (buf.length < 13 || !/^GIF8[79]a$/.test(buf.toString('latin1', 0, 6))) return undefined;
  let palette: Uint8Array | undefined;
  let transparency: number | undefined;
  const flags = buf[10];
  let off = 13;
  if (flags & 0x80) {
    const n = 3 << ((flags & 7) + 1);
    palette = buf.subarray(off, off + n);
    off += n;
  }
  const skipSubBlocks = () => {
    while (off < buf.length && buf[off] !== 0) off += buf[off] + 1;
    off++;
  };
  while (off < buf.length) {
    const tag = buf[off++];
    if (tag === 0x21) {
      const label = buf[off++];
      if (label === 0xf9 && off + 5 <= buf.length && buf[off] >= 4 && buf[off + 1] & 1) transparency = buf[off + 4];
      skipSubBlocks();
    } else if (tag === 0x2c) {
      const f = buf[off + 8];
      if (f & 0x80) palette = buf.subarray(off + 9, off + 9 + (3 << ((f & 7) + 1)));
      break;
    } else {
      break;
    }
  }
  let gray = true;
  if (palette) for (let i = 0; i < palette.length && gray; i++) gray = palette[i] === Math.floor(i / 3);
  return { palette, gray, transparency };
}

/** PNG IHDR bit depth and colour type, or undefined when the header is not a PNG one. */
function pngHeader(buf: Buffer): { bitDepth: number; colorType: number } | undefined {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (buf.length < 29 || sig.some((b, i) => buf[i] !== b) || buf.toString('latin1', 12, 16) !== 'IHDR') return undefined;
  return { bitDepth: buf[24], colorType: buf[25] };
}

function pilMode(meta: Metadata, buf: Buffer, name: string): PilMode {
  const fmt = meta.format as string;
  if (fmt === 'png') {
    const h = pngHeader(buf);
    if (!h) throw new ImageDecodeError(name, 'PNG without a readable IHDR header');
    switch (h.colorType) {
      case 0:
        return h.bitDepth === 1 ? '1' : h.bitDepth === 16 ? 'I' : 'L';
      case 2:
        return 'RGB';
      case 3:
        return 'P';
      case 4:
        return h.bitDepth === 16 ? 'RGBA' : 'LA'; // PIL 9.4 opens 16-bit gray+alpha as RGBA
      case 6:
        return 'RGBA';
      default:
        throw new ImageDecodeError(name, `PNG colour type ${h.colorType} is invalid`);
    }
  }
  if (meta.space === 'cmyk') return 'CMYK';
  if (fmt === 'gif') return gifFirstFrame(buf)?.gray ? 'L' : 'P';
  const ch = meta.channels ?? 3;
  if (fmt === 'jpeg') return ch === 1 ? 'L' : 'RGB';
  if (fmt === 'webp') return meta.hasAlpha ? 'RGBA' : 'RGB';
  if (ch === 1) return meta.depth === 'ushort' ? 'I' : 'L';
  if (ch === 2) return 'LA';
  return meta.hasAlpha ? 'RGBA' : 'RGB';
}

/**
 * Decode an image file or buffer into PIL's native mode for it. Throws ImageDecodeError
 * (one line, naming the file) for unreadable, corrupt, truncated, unsupported or too large input.
 */
export async function decodeImage(input: string | Buffer, name?: string, opts: DecodeOptions = {}): Promise<DecodedImage> {
  const label = name ?? (typeof input === 'string' ? input : '<image buffer>');
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  let buf: Buffer;
  if (typeof input === 'string') {
    try {
      buf = await readFile(input);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ImageDecodeError(label, code === 'ENOENT' ? 'file not found' : `cannot read file: it ${fsProblem(e)}`);
    }
  } else {
    buf = input;
  }
  if (buf.length === 0) throw new ImageDecodeError(label, 'empty file');
  let shrinkTo: { width: number; height: number } | undefined;
  const open = () => {
    const s = sharp(buf, { failOn: 'truncated', limitInputPixels: maxPixels, ignoreIcc: true, autoOrient: false, pages: 1 });
    return shrinkTo ? s.resize(shrinkTo.width, shrinkTo.height, { fit: 'fill', kernel: 'lanczos3' }) : s;
  };
  try {
    // header only, so no limit needed here; the explicit check below gives the clearer message
    const meta = await sharp(buf, { limitInputPixels: false, pages: 1 }).metadata();
    let width = meta.width;
    let height = meta.height;
    if (!width || !height) throw new ImageDecodeError(label, 'image has no dimensions');
    if (width * height > maxPixels) {
      throw new ImageDecodeError(label, `${width}x${height} image exceeds the limit of ${maxPixels} pixels (possible decompression bomb)`);
    }
    let mode = pilMode(meta, buf, label);
    shrinkTo = opts.budget && budgetSize(width, height, opts.budget);
    const source = shrinkTo && { width, height };
    if (shrinkTo) {
      if (shrinkTo.width * shrinkTo.height > opts.budget!.pixels) {
        throw new ImageDecodeError(label, `${width}x${height} is too elongated to decode within ${opts.budget!.pixels} pixels with its shorter side kept at ${opts.budget!.minSide} or more`);
      }
      ({ width, height } = shrinkTo);
      // A filtered shrink leaves no bilevel or palette image behind.
      if (mode === '1') mode = 'L';
      if (mode === 'P') mode = 'RGB';
    }
    const n = width * height;
    const sixteen = meta.depth === 'ushort';

    if (mode === 'I') {
      const { data, info } = await open().toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
      const s16 = u16(data);
      const samples = new Int32Array(n);
      const out = new Uint8Array(n);
      for (let i = 0, j = 0; i < n; i++, j += info.channels) {
        const v = s16[j];
        samples[i] = v;
        out[i] = v > 255 ? 255 : v;
      }
      return { width, height, channels: 1, mode, data: out, samples, format: meta.format!, ...(source && { source }) };
    }

    let src: ArrayLike<number>;
    let srcCh: number;
    let shift = 0;
    if (mode === 'CMYK') {
      // a cmyk pipeline keeps the decoded bands; toColourspace alone round-trips through sRGB
      const r = await open().pipelineColourspace('cmyk').toColourspace('cmyk').raw().toBuffer({ resolveWithObject: true });
      src = r.data;
      srcCh = r.info.channels;
    } else if (sixteen) {
      // PIL unpacks 16-bit RGB/LA/RGBA PNGs by keeping the most significant byte.
      const r = await open().toColourspace('rgb16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
      src = u16(r.data);
      srcCh = r.info.channels;
      shift = 8;
    } else {
      const r = await open().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
      src = r.data;
      srcCh = r.info.channels;
    }
    if (srcCh * n !== src.length) throw new ImageDecodeError(label, `decoder returned ${src.length} samples for ${width}x${height}x${srcCh}`);
    const channels = MODE_CHANNELS[mode];
    // which decoded channel feeds each mode channel; -1 = opaque alpha
    const alphaIdx = srcCh === 2 || srcCh === 4 ? srcCh - 1 : -1;
    const pick: number[] =
      mode === '1' || mode === 'L' ? [0] : mode === 'LA' ? [0, alphaIdx] : mode === 'RGBA' ? [0, 1, 2, alphaIdx] : mode === 'CMYK' ? [0, 1, 2, 3] : [0, 1, 2];
    if (srcCh < 3 && pick.some((p) => p >= srcCh && p !== alphaIdx)) throw new ImageDecodeError(label, `decoder returned ${srcCh} channels for mode ${mode}`);
    const direct = shift === 0 && srcCh === channels && pick.every((p, c) => p === c);
    // the decoder's buffer already is the image (8-bit RGB, L, RGBA, CMYK): no copy
    const data = direct ? new Uint8Array((src as Buffer).buffer, (src as Buffer).byteOffset, n * channels) : new Uint8Array(n * channels);
    for (let c = 0; c < channels && !direct; c++) {
      const p = pick[c];
      if (p < 0) {
        for (let i = c; i < data.length; i += channels) data[i] = 255;
        continue;
      }
      for (let i = 0, j = p; i < n; i++, j += srcCh) data[i * channels + c] = src[j] >> shift;
    }
    if (meta.format === 'gif' && srcCh === 4 && !source) {
      // sharp blanks transparent pixels; PIL keeps the transparent index's palette colour
      const gif = gifFirstFrame(buf);
      if (gif?.transparency !== undefined) {
        const t = gif.transparency;
        const col = gif.palette && gif.palette.length >= 3 * t + 3 ? gif.palette.subarray(3 * t, 3 * t + 3) : Uint8Array.of(t, t, t);
        for (let i = 0; i < n; i++) {
          if (src[i * 4 + 3] !== 0) continue;
          for (let c = 0; c < channels; c++) data[i * channels + c] = col[c];
        }
      }
    }
    return { width, height, channels, mode, data, format: meta.format!, ...(source && { source }) };
  } catch (e) {
    const trunc = e instanceof ImageDecodeError ? undefined : pngTruncation(buf);
    throw trunc ? new ImageDecodeError(label, trunc) : explain(label, e);
  }
}

/** Native-endian 16-bit view of sharp's ushort output (copied if misaligned). */
function u16(b: Buffer): Uint16Array {
  const a = b.byteOffset % 2 === 0 ? b : Buffer.from(b);
  return new Uint16Array(a.buffer, a.byteOffset, a.length >> 1);
}

/** For a PNG that failed to decode: say where the chunk stream stops, if it is cut short. */
function pngTruncation(buf: Buffer): string | undefined {
  if (!pngHeader(buf)) return undefined;
  let off = 8;
  while (off + 12 <= buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    if (off + 12 + len > buf.length) return `truncated PNG: ${type} chunk at byte ${off} needs ${len + 12} bytes, file ends at ${buf.length}`;
    if (type === 'IEND') return undefined;
    off += 12 + len;
  }
  return `truncated PNG: no IEND chunk, file ends at byte ${buf.length}`;
}

/**
 * PIL's Image.resize((outW, outH), filter) with its mode rules: '1' and 'P' always NEAREST;
 * LA/RGBA resized premultiplied; 'I' in int32 with double weights; the rest 8-bit fixed point.
 * With `crop`, the result is that region of the resized image (= resize then cropImage), and
 * 8-bit images compute only its pixels.
 */
export function resizeImage(img: DecodedImage, outW: number, outH: number, filter: Filter, crop?: CropBox): DecodedImage {
  const { width: w, height: h, channels: c, mode } = img;
  const box = crop ?? { left: 0, top: 0, width: outW, height: outH };
  const f: Filter = mode === '1' || mode === 'P' ? 'nearest' : filter;
  if (mode === 'I') {
    let resized = img;
    if (outW !== w || outH !== h) {
      const samples = resampleI32(img.samples ?? Int32Array.from(img.data), w, h, 1, outW, outH, f);
      const data = new Uint8Array(samples.length);
      for (let i = 0; i < samples.length; i++) {
        const v = samples[i];
        data[i] = v <= 0 ? 0 : v >= 255 ? 255 : v;
      }
      resized = { ...img, width: outW, height: outH, data, samples };
    }
    return cropImage(resized, box.left, box.top, box.width, box.height);
  }
  let data: Uint8Array;
  if (f === 'nearest') data = resampleU8(img.data, w, h, c, outW, outH, 'nearest', box);
  else if (mode === 'LA' || mode === 'RGBA') data = resampleU8Premultiplied(img.data, w, h, c as 2 | 4, outW, outH, f, box);
  else data = resampleU8(img.data, w, h, c, outW, outH, f, box);
  return { ...img, width: box.width, height: box.height, data };
}

/** PIL's Image.crop for a box inside the image. */
export function cropImage(img: DecodedImage, left: number, top: number, cw: number, ch: number): DecodedImage {
  const { width: w, height: h, channels: c } = img;
  if (left < 0 || top < 0 || left + cw > w || top + ch > h || cw < 1 || ch < 1) {
    throw new RangeError(`crop ${cw}x${ch}+${left}+${top} is outside the ${w}x${h} image`);
  }
  const data = new Uint8Array(cw * ch * c);
  const samples = img.samples ? new Int32Array(cw * ch) : undefined;
  for (let y = 0; y < ch; y++) {
    const from = ((top + y) * w + left) * c;
    data.set(img.data.subarray(from, from + cw * c), y * cw * c);
    if (samples) samples.set(img.samples!.subarray(from, from + cw), y * cw);
  }
  return { ...img, width: cw, height: ch, data, samples };
}

/** PIL's convert('RGB'): gray replicated, alpha dropped (not composited), 'I' clipped, CMYK via cmyk2rgb. */
export function convertToRGB(img: DecodedImage): Uint8Array {
  const n = img.width * img.height;
  const src = img.data;
  const c = img.channels;
  const out = new Uint8Array(n * 3);
  switch (img.mode) {
    case 'RGB':
    case 'P':
      out.set(src.subarray(0, n * 3));
      break;
    case 'RGBA':
      for (let i = 0; i < n; i++) {
        out[i * 3] = src[i * 4];
        out[i * 3 + 1] = src[i * 4 + 1];
        out[i * 3 + 2] = src[i * 4 + 2];
      }
      break;
    case 'CMYK':
      for (let i = 0; i < n; i++) {
        const nk = 255 - src[i * 4 + 3];
        for (let k = 0; k < 3; k++) {
          const t = src[i * 4 + k] * nk + 128;
          const v = nk - (((t >> 8) + t) >> 8);
          out[i * 3 + k] = v < 0 ? 0 : v;
        }
      }
      break;
    default:
      // 1, L, LA, I: first channel (already clipped to 0..255 for I)
      for (let i = 0; i < n; i++) out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = src[i * c];
  }
  return out;
}

/** PNG-encode raw RGB(A) pixels (for reports). */
export async function encodePng(rgb: Uint8Array, width: number, height: number, channels: 3 | 4): Promise<Buffer> {
  if (rgb.length !== width * height * channels) throw new RangeError(`encodePng: ${rgb.length} bytes for ${width}x${height}x${channels}`);
  return sharp(rgb, { raw: { width, height, channels } }).png().toBuffer();
}
