// A minimal dense tensor: row-major (C order) data with its shape.

import { NonFiniteError, ShapeError } from './errors.ts';

export type DType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export type TypedData = Float64Array | Float32Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array | Uint16Array;

export interface Tensor<D extends TypedData = TypedData> {
  dtype: DType;
  shape: number[];
  data: D;
}

export type F32 = Tensor<Float32Array>;

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function f32(shape: number[], data?: Float32Array): F32 {
  const n = numel(shape);
  if (data && data.length !== n) throw new ShapeError(`tensor data has ${data.length} elements, shape [${shape}] needs ${n}`);
  return { dtype: 'F32', shape, data: data ?? new Float32Array(n) };
}

export function i32(shape: number[], data?: Int32Array): Tensor<Int32Array> {
  const n = numel(shape);
  if (data && data.length !== n) throw new ShapeError(`tensor data has ${data.length} elements, shape [${shape}] needs ${n}`);
  return { dtype: 'I32', shape, data: data ?? new Int32Array(n) };
}

export function shapeEq(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Max |a - b| over two arrays of equal length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > m || Number.isNaN(d)) m = d;
  }
  return m;
}

/** Rows b0..b1 of a tensor's first axis, sharing its data. */
export function batchRows(t: F32, b0: number, b1: number): F32 {
  const per = numel(t.shape.slice(1));
  return f32([b1 - b0, ...t.shape.slice(1)], t.data.subarray(b0 * per, b1 * per));
}

/** Tensors stacked along their first axis (the rest of the shape from the first); `emptyShape` when there are none. */
export function concatBatch(parts: F32[], emptyShape?: number[]): F32 {
  if (parts.length === 0) return f32(emptyShape ?? [0]);
  if (parts.length === 1) return parts[0];
  const rest = parts[0].shape.slice(1);
  const total = parts.reduce((a, p) => a + p.shape[0], 0);
  const out = new Float32Array(total * numel(rest));
  let off = 0;
  for (const p of parts) {
    out.set(p.data, off);
    off += p.data.length;
  }
  return f32([total, ...rest], out);
}

/** Decode IEEE half floats to float32. */
export function f16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const h = src[i];
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const f = h & 0x3ff;
    if (e === 0) out[i] = s * f * 2 ** -24;
    else if (e === 31) out[i] = f ? NaN : s * Infinity;
    else out[i] = s * (1 + f / 1024) * 2 ** (e - 15);
  }
  return out;
}

/** Encode float32 to IEEE half (round to nearest even). */
export function f32ToF16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < src.length; i++) {
    f[0] = src[i];
    const x = u[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    let e = exp - 127 + 15;
    if (e >= 31) {
      out[i] = sign | 0x7c00;
      continue;
    }
    if (e <= 0) {
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      mant |= 0x800000;
      const shift = 14 - e;
      let half = mant >>> shift;
      const rem = mant & ((1 << shift) - 1);
      const mid = 1 << (shift - 1);
      if (rem > mid || (rem === mid && half & 1)) half++;
      out[i] = sign | half;
      continue;
    }
    let half = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
    out[i] = sign | half;
  }
  return out;
}

/** Decode bfloat16 (upper half of float32) to float32. */
export function bf16ToF32(src: Uint16Array): Float32Array {
  const u = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) u[i] = src[i] << 16;
  return new Float32Array(u.buffer);
}

/** Index of the first NaN or ±Inf in `a`, or −1. */
export function firstNonFinite(a: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    // v − v is 0 for finite v and NaN for NaN and ±Inf: one compare per element.
    if (v - v !== 0) return i;
  }
  return -1;
}

/**
 * Throw NonFiniteError unless every value of `t` is finite. `what` names the tensor and who made it
 * ("model 'x': image_features"); `row` names the first axis (image, text) in the message.
 */
export function assertFinite(t: Tensor, what: string, opts: { row?: string; hint?: string } = {}): void {
  if (t.dtype !== 'F32' && t.dtype !== 'F64') return;
  const i = firstNonFinite(t.data as Float32Array);
  if (i < 0) return;
  const v = (t.data as Float32Array)[i];
  const rows = t.shape[0] ?? 1;
  const per = t.data.length / Math.max(1, rows);
  const at = opts.row && t.shape.length > 1 ? ` (${opts.row} ${Math.floor(i / per)} of ${rows})` : '';
  throw new NonFiniteError(`${what} holds ${Number.isNaN(v) ? 'NaN' : v > 0 ? '+Inf' : '-Inf'}${at}${opts.hint ? `; ${opts.hint}` : ''}`);
}
