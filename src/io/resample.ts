// PIL-exact resampling (Pillow 9.4 libImaging/Resample.c and Geometry.c ImagingScaleAffine).
// Byte parity with the reference preprocessing depends on every rounding step here, so the
// arithmetic mirrors the C code: double coefficients normalised per output pixel, 8-bit
// images through 22-bit fixed point with clip8, a uint8 intermediate after the horizontal pass.

import { ResampleError, ShapeError } from '../errors.ts';
import { RESAMPLE_WASM_BASE64 } from './resample_wasm.ts';

export type Filter = 'nearest' | 'box' | 'bilinear' | 'hamming' | 'bicubic' | 'lanczos';

interface FilterDef {
  fn: (x: number) => number;
  support: number;
}

function boxFilter(x: number): number {
  return x > -0.5 && x <= 0.5 ? 1.0 : 0.0;
}

function bilinearFilter(x: number): number {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}

// 0.54f / 0.46f are float literals in the C source.
const H054 = Math.fround(0.54);
const H046 = Math.fround(0.46);
function hammingFilter(x: number): number {
  if (x < 0.0) x = -x;
  if (x === 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * Math.PI;
  return (Math.sin(x) / x) * (H054 + H046 * Math.cos(x));
}

function bicubicFilter(x: number): number {
  const a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

function sinc(x: number): number {
  if (x === 0.0) return 1.0;
  x = x * Math.PI;
  return Math.sin(x) / x;
}

function lanczosFilter(x: number): number {
  return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0;
}

const FILTERS: Record<Exclude<Filter, 'nearest'>, FilterDef> = {
  box: { fn: boxFilter, support: 0.5 },
  bilinear: { fn: bilinearFilter, support: 1.0 },
  hamming: { fn: hammingFilter, support: 1.0 },
  bicubic: { fn: bicubicFilter, support: 2.0 },
  lanczos: { fn: lanczosFilter, support: 3.0 },
};

const PRECISION_BITS = 32 - 8 - 2;
const ROUND_HALF = 1 << (PRECISION_BITS - 1);
const ONE = 1 << PRECISION_BITS;

export interface Coeffs {
  ksize: number;
  /** per output pixel: first input index and number of taps */
  bounds: Int32Array;
  /** [outSize * ksize] normalised weights */
  kk: Float64Array;
}

/** Pillow precompute_coeffs for the box [in0, in1) of an axis of length inSize. */
export function precomputeCoeffs(inSize: number, in0: number, in1: number, outSize: number, filter: Exclude<Filter, 'nearest'>): Coeffs {
  const f = FILTERS[filter];
  // box coordinates are C floats
  in0 = Math.fround(in0);
  in1 = Math.fround(in1);
  const scale = Math.fround(in1 - in0) / outSize;
  const filterscale = scale < 1.0 ? 1.0 : scale;
  const support = f.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const kk = new Float64Array(outSize * ksize);
  const bounds = new Int32Array(outSize * 2);
  const ss = 1.0 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = in0 + (xx + 0.5) * scale;
    let ww = 0.0;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    const base = xx * ksize;
    for (let x = 0; x < xmax; x++) {
      const w = f.fn((x + xmin - center + 0.5) * ss);
      kk[base + x] = w;
      ww += w;
    }
    if (ww !== 0.0) for (let x = 0; x < xmax; x++) kk[base + x] /= ww;
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

/** normalize_coeffs_8bpc: double weights to 22-bit fixed point, rounding away from zero. */
function fixedCoeffs(kk: Float64Array): Int32Array {
  const out = new Int32Array(kk.length);
  for (let i = 0; i < kk.length; i++) {
    const v = kk[i];
    out[i] = v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE);
  }
  return out;
}

interface AxisCoeffs extends Coeffs {
  /** kk in 22-bit fixed point */
  fixed: Int32Array;
}

// Coefficients depend only on (input size, output size, filter): a dataset has few distinct
// sizes, so they are computed once per size pair and kept (a small most-recently-used cache).
const COEFF_CACHE = new Map<string, AxisCoeffs>();
const COEFF_CACHE_SIZE = 64;

function axisCoeffs(inSize: number, outSize: number, filter: Exclude<Filter, 'nearest'>): AxisCoeffs {
  const key = `${inSize}:${outSize}:${filter}`;
  let c = COEFF_CACHE.get(key);
  if (c) {
    COEFF_CACHE.delete(key); // re-insert: Map order is the recency order
  } else {
    const kk = precomputeCoeffs(inSize, 0, inSize, outSize, filter);
    c = { ...kk, fixed: fixedCoeffs(kk.kk) };
    if (COEFF_CACHE.size >= COEFF_CACHE_SIZE) COEFF_CACHE.delete(COEFF_CACHE.keys().next().value!);
  }
  COEFF_CACHE.set(key, c);
  return c;
}

function clip8(ss: number): number {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function checkArgs(len: number, w: number, h: number, c: number, outW: number, outH: number): void {
  for (const [n, v] of [['width', w], ['height', h], ['channels', c], ['output width', outW], ['output height', outH]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new ResampleError(`resample: ${n} must be a positive integer, got ${v}`);
  }
  if (len !== w * h * c) throw new ResampleError(`resample: buffer has ${len} values, expected ${w}x${h}x${c} = ${w * h * c}`);
}

/** A region of the resized image: only its pixels are computed. */
export interface CropBox {
  left: number;
  top: number;
  width: number;
  height: number;
}

function checkCrop(crop: CropBox, outW: number, outH: number): void {
  const { left, top, width, height } = crop;
  const ok = [left, top, width, height].every(Number.isInteger) && left >= 0 && top >= 0 && width >= 1 && height >= 1 && left + width <= outW && top + height <= outH;
  if (!ok) throw new ResampleError(`resample: crop ${width}x${height}+${left}+${top} is outside the ${outW}x${outH} output`);
}

/** Which passes Pillow runs, and the input rows the horizontal pass must cover. */
function plan(w: number, h: number, outW: number, outH: number, filter: Exclude<Filter, 'nearest'>) {
  const needH = outW !== w;
  const needV = outH !== h;
  const vert = axisCoeffs(h, outH, filter);
  const yFirst = vert.bounds[0];
  const yLast = vert.bounds[outH * 2 - 2] + vert.bounds[outH * 2 - 1];
  const horiz = needH ? axisCoeffs(w, outW, filter) : undefined;
  return { needH, needV, vert, horiz, yFirst, yLast };
}

/**
 * Resample an 8-bit HWC image like Pillow's ImagingResample on a UINT8 image (modes L, RGB,
 * RGBX, CMYK, La, RGBa ...): each channel independently, no premultiplication here.
 * Pillow runs the horizontal pass first (on only the rows the vertical pass reads), storing a
 * clipped uint8 intermediate, then the vertical pass.
 *
 * With `crop`, returns only that region of the resized image, computing only the pixels in it:
 * every output pixel depends on its own coefficients alone, so this equals resize-then-crop
 * byte for byte (torchvision's Resize + CenterCrop, without the discarded quarter of the work).
 */
export function resampleU8(src: Uint8Array, w: number, h: number, c: number, outW: number, outH: number, filter: Filter, crop?: CropBox): Uint8Array {
  checkArgs(src.length, w, h, c, outW, outH);
  const box = crop ?? { left: 0, top: 0, width: outW, height: outH };
  checkCrop(box, outW, outH);
  if (filter === 'nearest') {
    const full = resizeNearest(src, w, h, c, outW, outH);
    return crop ? cropU8(full, outW, c, box) : full;
  }
  if (outW === w && outH === h) return cropU8(src, w, c, box);
  const p = plan(w, h, outW, outH, filter);
  const { left, top, width, height } = box;
  const vb = p.vert.bounds;
  const simd = useSimd ? simdKernels() : null;
  if (simd) return resampleSimd(simd, src, w, c, p, box);
  if (!p.needV) {
    // rows pass through: the horizontal pass on the cropped rows is the answer
    return horizontalU8(src, w, c, top, height, left, width, p.horiz!.ksize, p.horiz!.bounds, p.horiz!.fixed);
  }
  // input rows the cropped output rows read
  const r0 = vb[top * 2];
  const r1 = vb[(top + height - 1) * 2] + vb[(top + height - 1) * 2 + 1];
  let img: Uint8Array;
  let rowLen: number;
  let colOffset: number;
  let rowOffset: number;
  if (p.needH) {
    img = horizontalU8(src, w, c, r0, r1 - r0, left, width, p.horiz!.ksize, p.horiz!.bounds, p.horiz!.fixed);
    rowLen = width * c;
    colOffset = 0;
    rowOffset = r0;
  } else {
    img = src;
    rowLen = w * c;
    colOffset = left * c;
    rowOffset = 0;
  }
  return verticalU8(img, rowLen, colOffset, width * c, rowOffset, top, height, p.vert.ksize, vb, p.vert.fixed);
}

// ---------------------------------------------------------------------------------------------
// The same passes as WebAssembly SIMD kernels (resample.wat): 16 bytes a step, identical integer
// arithmetic. The horizontal pass runs as a vertical one on the transposed image, so both passes
// stream whole rows. Used wherever WebAssembly SIMD is available (Node ≥ 16); else the JS above.

interface SimdKernels {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  pass(img: number, rowLen: number, colOffset: number, outRowLen: number, rowOffset: number, y0: number, ny: number, ksize: number, bounds: number, k: number, out: number): void;
  transpose(src: number, rows: number, cols: number, c: number, dst: number): void;
}

let simdCache: SimdKernels | null | undefined;
let useSimd = true;

function simdKernels(): SimdKernels | null {
  if (simdCache === undefined) {
    try {
      // (the package's type library has no DOM, where WebAssembly's types live)
      const wasm = (globalThis as unknown as { WebAssembly: { Module: new (b: Uint8Array) => object; Instance: new (m: object) => { exports: unknown } } }).WebAssembly;
      simdCache = new wasm.Instance(new wasm.Module(Buffer.from(RESAMPLE_WASM_BASE64, 'base64'))).exports as SimdKernels;
    } catch {
      simdCache = null;
    }
  }
  return simdCache;
}

/** Which kernels resampleU8 runs: 'simd' (the default where available) or 'js' (tests compare the two). */
export function setResampleKernels(kind: 'simd' | 'js'): void {
  useSimd = kind === 'simd';
}

/** Both passes in WebAssembly memory (laid out once per call, each buffer padded for the 16-byte steps). */
function resampleSimd(K: SimdKernels, src: Uint8Array, w: number, c: number, p: ReturnType<typeof plan>, box: CropBox): Uint8Array {
  const { left, top, width, height } = box;
  const vb = p.vert.bounds;
  // input rows needed: those the kept output rows read (all rows of the box when no vertical pass)
  const r0 = p.needV ? vb[top * 2] : top;
  const r1 = p.needV ? vb[(top + height - 1) * 2] + vb[(top + height - 1) * 2 + 1] : top + height;
  const rows = r1 - r0;
  let end = 0;
  const at = (bytes: number) => {
    const o = end;
    end = (o + bytes + 16 + 15) & ~15;
    return o;
  };
  const S = at(rows * w * c);
  const hz = p.horiz;
  const hb = hz ? at(hz.bounds.byteLength) : 0;
  const hk = hz ? at(hz.fixed.byteLength) : 0;
  const vbo = at(vb.byteLength);
  const vk = at(p.vert.fixed.byteLength);
  const T = hz ? at(rows * w * c) : 0;
  const T2 = hz ? at(rows * width * c) : 0;
  const TMP = hz ? at(rows * width * c) : 0;
  const OUT = at(height * width * c);
  const need = Math.ceil(end / 65536) - K.memory.buffer.byteLength / 65536;
  if (need > 0) K.memory.grow(need);
  const mem = new Uint8Array(K.memory.buffer);
  mem.set(src.subarray(r0 * w * c, r1 * w * c), S);
  const put = (a: Int32Array, o: number) => mem.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), o);
  put(vb, vbo);
  put(p.vert.fixed, vk);
  let img = S;
  let rowLen = w * c;
  let colOffset = left * c;
  if (hz) {
    put(hz.bounds, hb);
    put(hz.fixed, hk);
    // horizontal pass = a row pass over the transpose, then transposed back: [rows, width, c]
    K.transpose(S, rows, w, c, T);
    K.pass(T, rows * c, 0, rows * c, 0, left, width, hz.ksize, hb, hk, T2);
    K.transpose(T2, width, rows, c, TMP);
    if (!p.needV) return mem.slice(TMP, TMP + height * width * c);
    img = TMP;
    rowLen = width * c;
    colOffset = 0;
  }
  K.pass(img, rowLen, colOffset, width * c, r0, top, height, p.vert.ksize, vbo, vk, OUT);
  return mem.slice(OUT, OUT + height * width * c);
}

function cropU8(src: Uint8Array, w: number, c: number, box: CropBox): Uint8Array {
  const { left, top, width, height } = box;
  if (left === 0 && top === 0 && width === w && src.length === w * height * c) return src.slice();
  const out = new Uint8Array(width * height * c);
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * w + left) * c;
    out.set(src.subarray(from, from + width * c), y * width * c);
  }
  return out;
}

/** Output columns [x0, x0 + nx) of input rows [y0, y0 + rows), as a [rows, nx, c] uint8 image. */
function horizontalU8(src: Uint8Array, w: number, c: number, y0: number, rows: number, x0: number, nx: number, ksize: number, bounds: Int32Array, k: Int32Array): Uint8Array {
  const tmp = new Uint8Array(rows * nx * c);
  let o = 0;
  for (let yy = 0; yy < rows; yy++) {
    const inRow = (yy + y0) * w * c;
    for (let xx = x0; xx < x0 + nx; xx++) {
      const xmin = bounds[xx * 2];
      const xmax = bounds[xx * 2 + 1];
      const kb = xx * ksize;
      let pi = inRow + xmin * c;
      // specialised for the common channel counts: accumulators stay in registers
      if (c === 3) {
        let s0 = ROUND_HALF, s1 = ROUND_HALF, s2 = ROUND_HALF;
        for (let x = 0; x < xmax; x++, pi += 3) {
          const kv = k[kb + x];
          s0 = (s0 + src[pi] * kv) | 0;
          s1 = (s1 + src[pi + 1] * kv) | 0;
          s2 = (s2 + src[pi + 2] * kv) | 0;
        }
        tmp[o++] = clip8(s0);
        tmp[o++] = clip8(s1);
        tmp[o++] = clip8(s2);
      } else if (c === 1) {
        let s0 = ROUND_HALF;
        for (let x = 0; x < xmax; x++) s0 = (s0 + src[pi + x] * k[kb + x]) | 0;
        tmp[o++] = clip8(s0);
      } else {
        for (let ch = 0; ch < c; ch++) {
          let ss = ROUND_HALF;
          let q = pi + ch;
          for (let x = 0; x < xmax; x++, q += c) ss = (ss + src[q] * k[kb + x]) | 0;
          tmp[o++] = clip8(ss);
        }
      }
    }
  }
  return tmp;
}

/**
 * Output rows [y0, y0 + ny) of the vertical pass over `img` (rows of `rowLen` values, the first
 * being input row `rowOffset`), columns [colOffset, colOffset + outRowLen) of each row.
 * Row-wise accumulation, four taps at a time, keeps the inner loop sequential in memory.
 * Sums are exact in doubles and stay in int32 range, as in C (Pillow's two spare bits).
 */
function verticalU8(img: Uint8Array, rowLen: number, colOffset: number, outRowLen: number, rowOffset: number, y0: number, ny: number, ksize: number, bounds: Int32Array, k: Int32Array): Uint8Array {
  const out = new Uint8Array(ny * outRowLen);
  const acc = new Int32Array(outRowLen);
  for (let yy = y0; yy < y0 + ny; yy++) {
    const ymin = bounds[yy * 2] - rowOffset;
    const ymax = bounds[yy * 2 + 1];
    const kb = yy * ksize;
    acc.fill(ROUND_HALF);
    let y = 0;
    for (; y + 4 <= ymax; y += 4) {
      const k0 = k[kb + y], k1 = k[kb + y + 1], k2 = k[kb + y + 2], k3 = k[kb + y + 3];
      const b0 = (ymin + y) * rowLen + colOffset, b1 = b0 + rowLen, b2 = b1 + rowLen, b3 = b2 + rowLen;
      for (let i = 0; i < outRowLen; i++) acc[i] = (acc[i] + img[b0 + i] * k0 + img[b1 + i] * k1 + img[b2 + i] * k2 + img[b3 + i] * k3) | 0;
    }
    for (; y < ymax; y++) {
      const kv = k[kb + y];
      const b = (ymin + y) * rowLen + colOffset;
      for (let i = 0; i < outRowLen; i++) acc[i] = (acc[i] + img[b + i] * kv) | 0;
    }
    const ob = (yy - y0) * outRowLen;
    for (let i = 0; i < outRowLen; i++) out[ob + i] = clip8(acc[i]);
  }
  return out;
}

function roundUp(f: number): number {
  // ROUND_UP: (int)(f >= 0 ? f + 0.5 : f - 0.5)
  return Math.trunc(f >= 0.0 ? f + 0.5 : f - 0.5);
}

/**
 * Pillow's 32-bit resampling (modes I and F): double weights, double accumulation; mode I
 * rounds half away from zero into int32, mode F stores float32. One channel per pixel in
 * Pillow; here any channel count, each independent.
 */
function resample32(src: ArrayLike<number>, w: number, h: number, c: number, outW: number, outH: number, filter: Exclude<Filter, 'nearest'>, isInt: boolean): Int32Array | Float32Array {
  const make = (n: number) => (isInt ? new Int32Array(n) : new Float32Array(n));
  const store = isInt ? roundUp : (v: number) => v;
  const p = plan(w, h, outW, outH, filter);
  let img: ArrayLike<number> = src;
  let rowOffset = 0;
  if (p.needH) {
    const { ksize, bounds, kk } = p.horiz!;
    const rows = p.yLast - p.yFirst;
    const tmp = make(rows * outW * c);
    for (let yy = 0; yy < rows; yy++) {
      const inRow = (yy + p.yFirst) * w * c;
      const outRow = yy * outW * c;
      for (let xx = 0; xx < outW; xx++) {
        const xmin = bounds[xx * 2];
        const xmax = bounds[xx * 2 + 1];
        const kb = xx * ksize;
        for (let ch = 0; ch < c; ch++) {
          let ss = 0.0;
          let pi = inRow + xmin * c + ch;
          for (let x = 0; x < xmax; x++, pi += c) ss += src[pi] * kk[kb + x];
          tmp[outRow + xx * c + ch] = store(ss);
        }
      }
    }
    img = tmp;
    rowOffset = p.yFirst;
  }
  if (!p.needV) return img === src ? (isInt ? Int32Array.from(src) : Float32Array.from(src)) : (img as Int32Array | Float32Array);
  const { ksize, bounds, kk } = p.vert;
  const rowLen = outW * c;
  const out = make(outH * rowLen);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[yy * 2] - rowOffset;
    const ymax = bounds[yy * 2 + 1];
    const kb = yy * ksize;
    const outRow = yy * rowLen;
    for (let i = 0; i < rowLen; i++) {
      let ss = 0.0;
      let pi = ymin * rowLen + i;
      for (let y = 0; y < ymax; y++, pi += rowLen) ss += img[pi] * kk[kb + y];
      out[outRow + i] = store(ss);
    }
  }
  return out;
}

/** Pillow mode 'I' resampling (int32 samples, e.g. 16-bit grayscale PNGs as PIL 9.4 opens them). */
export function resampleI32(src: Int32Array | Uint16Array, w: number, h: number, c: number, outW: number, outH: number, filter: Filter): Int32Array {
  checkArgs(src.length, w, h, c, outW, outH);
  if (filter === 'nearest') return resizeNearest(Int32Array.from(src), w, h, c, outW, outH);
  if (outW === w && outH === h) return Int32Array.from(src);
  return resample32(src, w, h, c, outW, outH, filter, true) as Int32Array;
}

/**
 * Pillow mode 'F' resampling (float32 samples). Used for upsampling score maps with
 * 'bilinear'; equals `Image.fromarray(a, 'F').resize((outW, outH), BILINEAR)` per channel.
 */
export function resampleF32(src: Float32Array, w: number, h: number, c: number, outW: number, outH: number, filter: Filter): Float32Array {
  checkArgs(src.length, w, h, c, outW, outH);
  if (filter === 'nearest') return resizeNearest(src, w, h, c, outW, outH);
  if (outW === w && outH === h) return src.slice();
  return resample32(src, w, h, c, outW, outH, filter, false) as Float32Array;
}

/**
 * Nearest-neighbour scaling as Pillow does it (ImagingScaleAffine): source positions are
 * accumulated by repeated addition of the scale, truncated; pixels mapping outside are 0.
 */
export function resizeNearest<T extends Uint8Array | Int32Array | Float32Array | Uint16Array>(src: T, w: number, h: number, c: number, outW: number, outH: number): T {
  checkArgs(src.length, w, h, c, outW, outH);
  const out = new (src.constructor as { new (n: number): T })(outW * outH * c);
  if (outW === w && outH === h) {
    out.set(src);
    return out;
  }
  const a0 = Math.fround(w) / outW;
  const a4 = Math.fround(h) / outH;
  const coord = (v: number) => (v < 0.0 ? -1 : Math.trunc(v));
  const xintab = new Int32Array(outW).fill(-1);
  let xo = a0 * 0.5;
  for (let x = 0; x < outW; x++) {
    const xin = coord(xo);
    if (xin >= 0 && xin < w) xintab[x] = xin;
    xo += a0;
  }
  let yo = a4 * 0.5;
  for (let y = 0; y < outH; y++) {
    const yi = coord(yo);
    if (yi >= 0 && yi < h) {
      const inRow = yi * w * c;
      const outRow = y * outW * c;
      for (let x = 0; x < outW; x++) {
        const xi = xintab[x];
        if (xi < 0) continue;
        for (let ch = 0; ch < c; ch++) out[outRow + x * c + ch] = src[inRow + xi * c + ch];
      }
    }
    yo += a4;
  }
  return out;
}

const muldiv255 = (a: number, b: number) => {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
};

/**
 * Pillow's Image.resize for images with a trailing alpha channel (LA, RGBA): convert to
 * premultiplied (La/RGBa, MULDIV255), resample every channel, then un-premultiply with
 * truncating integer division; alpha 0 and 255 pass through unchanged. `crop` as for resampleU8.
 */
export function resampleU8Premultiplied(src: Uint8Array, w: number, h: number, c: 2 | 4, outW: number, outH: number, filter: Exclude<Filter, 'nearest'>, crop?: CropBox): Uint8Array {
  checkArgs(src.length, w, h, c, outW, outH);
  if (outW === w && outH === h) return resampleU8(src, w, h, c, outW, outH, filter, crop);
  const pre = new Uint8Array(src.length);
  const nc = c - 1;
  for (let i = 0; i < src.length; i += c) {
    const alpha = src[i + nc];
    for (let k = 0; k < nc; k++) pre[i + k] = muldiv255(src[i + k], alpha);
    pre[i + nc] = alpha;
  }
  const res = resampleU8(pre, w, h, c, outW, outH, filter, crop);
  for (let i = 0; i < res.length; i += c) {
    const alpha = res[i + nc];
    if (alpha === 255 || alpha === 0) continue;
    for (let k = 0; k < nc; k++) {
      const v = Math.trunc((255 * res[i + k]) / alpha);
      res[i + k] = v > 255 ? 255 : v;
    }
  }
  return res;
}

// ---------------------------------------------------------------------------------------------
// Geometry of the models' preprocessing, and maps resized as torch does

/** Python's round() for the halves that (H - S) / 2 can produce: ties go to the even integer. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * torchvision Resize(int) size rule (shorter side to `size`, longer side int(size*long/short),
 * no resize when the short side already equals `size`) and CenterCrop offsets
 * int(round((dim - size) / 2)) with Python rounding.
 */
export function resizeCropGeometry(w: number, h: number, size: number): { resizedW: number; resizedH: number; left: number; top: number } {
  for (const [n, v] of [['width', w], ['height', h], ['size', size]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`resizeCropGeometry: ${n} must be a positive integer, got ${v}`);
  }
  const short = Math.min(w, h);
  const long = Math.max(w, h);
  let resizedW = w;
  let resizedH = h;
  if (short !== size) {
    const newLong = Math.trunc((size * long) / short);
    [resizedW, resizedH] = w <= h ? [size, newLong] : [newLong, size];
  }
  return { resizedW, resizedH, left: roundHalfEven((resizedW - size) / 2), top: roundHalfEven((resizedH - size) / 2) };
}

/**
 * Bilinear resize of map [h, w] → [outH, outW] with the semantics of
 * torch.nn.functional.interpolate(mode='bilinear', align_corners=False): source coordinate
 * (dst + 0.5)·(in/out) − 0.5, clamped below at 0, neighbours clamped at the edge.
 */
export function upsampleBilinear(map: ArrayLike<number>, h: number, w: number, outH: number, outW: number): Float32Array {
  if (!(Number.isInteger(h) && Number.isInteger(w) && h >= 0 && w >= 0) || map.length !== h * w)
    throw new ShapeError(`upsampleBilinear: map has ${map.length} values, expected ${h}x${w}`);
  if (!(outH > 0 && outW > 0 && Number.isInteger(outH) && Number.isInteger(outW)))
    throw new RangeError(`upsampleBilinear: output size must be positive integers, got ${outH}x${outW}`);
  if (h === 0 || w === 0) throw new RangeError('upsampleBilinear: empty input map');
  const axis = (inN: number, outN: number) => {
    const i0 = new Int32Array(outN), i1 = new Int32Array(outN), f = new Float64Array(outN);
    const scale = inN / outN;
    for (let o = 0; o < outN; o++) {
      const src = Math.max((o + 0.5) * scale - 0.5, 0);
      const lo = Math.min(Math.floor(src), inN - 1);
      i0[o] = lo;
      i1[o] = Math.min(lo + 1, inN - 1);
      f[o] = src - lo;
    }
    return { i0, i1, f };
  };
  const ys = axis(h, outH), xs = axis(w, outW);
  const out = new Float32Array(outH * outW);
  for (let y = 0; y < outH; y++) {
    const r0 = ys.i0[y] * w, r1 = ys.i1[y] * w, fy = ys.f[y];
    for (let x = 0; x < outW; x++) {
      const c0 = xs.i0[x], c1 = xs.i1[x], fx = xs.f[x];
      const top = (1 - fx) * map[r0 + c0] + fx * map[r0 + c1];
      const bot = (1 - fx) * map[r1 + c0] + fx * map[r1 + c1];
      out[y * outW + x] = (1 - fy) * top + fy * bot;
    }
  }
  return out;
}
