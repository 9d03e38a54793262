// Validating safetensors reader and writer.
// Format: u64 LE header length n, n bytes of JSON header, then the data section.
// Everything in the header is checked against the file before any tensor is allocated,
// so a hostile header cannot make us allocate more than the file holds.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { AtomicFile, atomicWrite, fsProblem } from './files.ts';
import { bf16ToF32, f16ToF32, f32ToF16, numel, type DType, type Tensor, type TypedData } from '../tensor.ts';
import { SafetensorsError } from '../errors.ts';

export const ELEMENT_SIZE: Record<DType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

/** The dtypes a tensor may have where a float is expected (weights, pixels, embeddings, store terms). */
export const FLOAT_DTYPES: readonly DType[] = ['F32', 'F16', 'BF16', 'F64'];

export function isFloatDType(d: DType): boolean {
  return FLOAT_DTYPES.includes(d);
}

/** Header JSON larger than this is refused (the format's own implementation uses 100 MB). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** Byte range inside the data section. */
  begin: number;
  end: number;
}

function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(ELEMENT_SIZE, s);
}

/** Parse and validate a header against the size of the data section that follows it. */
export function parseHeader(file: string, json: string, dataBytes: number): { tensors: TensorInfo[]; metadata: Record<string, string> } {
  let header: unknown;
  try {
    header = JSON.parse(json);
  } catch (e) {
    throw new SafetensorsError(file, `header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new SafetensorsError(file, 'header is not a JSON object');
  }
  const tensors: TensorInfo[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SafetensorsError(file, '__metadata__ is not an object');
      metadata = Object.fromEntries(Object.entries(raw as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null) throw new SafetensorsError(file, `tensor '${name}': entry is not an object`);
    if (!isDType(e.dtype)) throw new SafetensorsError(file, `tensor '${name}': unsupported dtype ${JSON.stringify(e.dtype)}`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(file, `tensor '${name}': shape must be a list of non-negative integers`);
    }
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(file, `tensor '${name}': data_offsets must be two non-negative integers`);
    }
    const [begin, end] = off as [number, number];
    if (end < begin) throw new SafetensorsError(file, `tensor '${name}': data_offsets end ${end} < begin ${begin}`);
    if (end > dataBytes) {
      throw new SafetensorsError(file, `tensor '${name}': data ends at byte ${end} but the file's data section has only ${dataBytes} bytes (truncated or corrupt file)`);
    }
    const shape = e.shape as number[];
    const expected = numel(shape) * ELEMENT_SIZE[e.dtype];
    if (!Number.isSafeInteger(expected) || expected !== end - begin) {
      throw new SafetensorsError(file, `tensor '${name}': ${end - begin} bytes do not match dtype ${e.dtype} shape [${shape}] (${expected} bytes)`);
    }
    tensors.push({ name, dtype: e.dtype, shape, begin, end });
  }
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].begin < sorted[i - 1].end) {
      throw new SafetensorsError(file, `tensors '${sorted[i - 1].name}' and '${sorted[i].name}' overlap`);
    }
  }
  return { tensors, metadata };
}

/** A safetensors file opened for random access; tensors are read on demand. */
export class SafetensorsFile {
  readonly tensors: Map<string, TensorInfo>;
  readonly metadata: Record<string, string>;
  private fd: number;
  private dataStart: number;

  private constructor(readonly path: string, fd: number, dataStart: number, tensors: TensorInfo[], metadata: Record<string, string>, private size: number) {
    this.fd = fd;
    this.dataStart = dataStart;
    this.tensors = new Map(tensors.map((t) => [t.name, t]));
    this.metadata = metadata;
  }

  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      throw new SafetensorsError(path, `cannot open (${(e as NodeJS.ErrnoException).code ?? 'error'}): it ${fsProblem(e)}`);
    }
    try {
      const size = fstatSync(fd).size;
      if (size < 8) throw new SafetensorsError(path, `file is ${size} bytes, too short for a safetensors header`);
      const lenBuf = Buffer.alloc(8);
      readSync(fd, lenBuf, 0, 8, 0);
      const n = lenBuf.readBigUInt64LE(0);
      if (n > BigInt(size - 8)) {
        throw new SafetensorsError(path, `header claims ${n} bytes but the file has only ${size - 8} after the length field (truncated or not a safetensors file)`);
      }
      if (n > BigInt(MAX_HEADER_BYTES)) throw new SafetensorsError(path, `header of ${n} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit`);
      const headerLen = Number(n);
      const hb = Buffer.alloc(headerLen);
      readSync(fd, hb, 0, headerLen, 8);
      const { tensors, metadata } = parseHeader(path, hb.toString('utf8'), size - 8 - headerLen);
      return new SafetensorsFile(path, fd, 8 + headerLen, tensors, metadata, size);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  /** Read one tensor in its stored dtype. */
  read(name: string): Tensor {
    const info = this.tensors.get(name);
    if (!info) throw new SafetensorsError(this.path, `missing tensor '${name}'`);
    const bytes = info.end - info.begin;
    const buf = new ArrayBuffer(bytes);
    const view = new Uint8Array(buf);
    let done = 0;
    while (done < bytes) {
      // readSync reads at most 2 GB per call.
      const chunk = Math.min(bytes - done, 1 << 30);
      const got = readSync(this.fd, view, done, chunk, this.dataStart + info.begin + done);
      if (got <= 0) throw new SafetensorsError(this.path, `unexpected end of file reading '${name}'`);
      done += got;
    }
    return { dtype: info.dtype, shape: [...info.shape], data: typedView(info.dtype, buf) };
  }

  /** Size of the file when it was opened (bytes). */
  get byteLength(): number {
    return this.size;
  }

  /** Rows [start, start+count) along the first axis, converted to float32: reads only those bytes. */
  readRowsF32(name: string, start: number, count: number): Tensor<Float32Array> {
    const info = this.tensors.get(name);
    if (!info) throw new SafetensorsError(this.path, `missing tensor '${name}'`);
    if (!isFloatDType(info.dtype)) throw new SafetensorsError(this.path, `tensor '${name}' has dtype ${info.dtype} where a float (${FLOAT_DTYPES.join(', ')}) is expected`);
    const rows = info.shape[0] ?? 0;
    if (!(Number.isInteger(start) && Number.isInteger(count) && start >= 0 && count >= 0 && start + count <= rows)) {
      throw new SafetensorsError(this.path, `rows ${start}..${start + count} of '${name}' are outside its ${rows} rows`);
    }
    const rowBytes = rows ? (info.end - info.begin) / rows : 0;
    const bytes = rowBytes * count;
    const buf = new ArrayBuffer(bytes);
    const view = new Uint8Array(buf);
    for (let done = 0; done < bytes; ) {
      const got = readSync(this.fd, view, done, Math.min(bytes - done, 1 << 30), this.dataStart + info.begin + start * rowBytes + done);
      if (got <= 0) throw new SafetensorsError(this.path, `unexpected end of file reading '${name}'`);
      done += got;
    }
    const shape = [count, ...info.shape.slice(1)];
    return { dtype: 'F32', shape, data: toF32({ dtype: info.dtype, shape, data: typedView(info.dtype, buf) }) };
  }

  /**
   * Read a float tensor as float32 (F16/BF16/F64 converted). An integer or bool dtype is refused
   * naming the tensor: bytes relabelled I32 would otherwise be read as integers.
   */
  readF32(name: string): Tensor<Float32Array> {
    const info = this.tensors.get(name);
    if (info && !isFloatDType(info.dtype)) {
      throw new SafetensorsError(this.path, `tensor '${name}' has dtype ${info.dtype} where a float (${FLOAT_DTYPES.join(', ')}) is expected`);
    }
    const t = this.read(name);
    return { dtype: 'F32', shape: t.shape, data: toF32(t) };
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /** Run `fn` on this file, then close it (also when `fn` throws). */
  closeAfter<T>(fn: (f: SafetensorsFile) => T): T {
    try {
      return fn(this);
    } finally {
      this.close();
    }
  }
}

function typedView(dtype: DType, buf: ArrayBuffer): TypedData {
  switch (dtype) {
    case 'F64': return new Float64Array(buf);
    case 'F32': return new Float32Array(buf);
    case 'F16': case 'BF16': return new Uint16Array(buf);
    case 'I64': return new BigInt64Array(buf);
    case 'I32': return new Int32Array(buf);
    case 'I16': return new Int16Array(buf);
    case 'I8': return new Int8Array(buf);
    case 'U8': case 'BOOL': return new Uint8Array(buf);
  }
}

export function toF32(t: Tensor): Float32Array {
  switch (t.dtype) {
    case 'F32': return t.data as Float32Array;
    case 'F16': return f16ToF32(t.data as Uint16Array);
    case 'BF16': return bf16ToF32(t.data as Uint16Array);
    case 'I64': return Float32Array.from(t.data as BigInt64Array, (v) => Number(v));
    default: return Float32Array.from(t.data as ArrayLike<number>);
  }
}

/** Read every tensor of a (small) file. */
export function readSafetensors(path: string): Map<string, Tensor> {
  const f = SafetensorsFile.open(path);
  try {
    return new Map(f.names().map((n) => [n, f.read(n)]));
  } finally {
    f.close();
  }
}

export interface WriteOptions {
  metadata?: Record<string, string>;
  /** Store float32 tensors as float16. */
  half?: boolean;
}

/** Header bytes and data offsets for tensors in this order (callers order them for alignment). */
function layoutHeader(entries: readonly (readonly [string, { dtype: DType; shape: readonly number[] }])[], metadata?: Record<string, string>): { header: Buffer; offsets: number[]; dataBytes: number } {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  const offsets: number[] = [];
  for (const [name, t] of entries) {
    const bytes = numel([...t.shape]) * ELEMENT_SIZE[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offsets.push(offset);
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const hb = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + hb.length);
  out.writeBigUInt64LE(BigInt(hb.length), 0);
  hb.copy(out, 8);
  return { header: out, offsets, dataBytes: offset };
}

const bySizeDesc = (a: readonly [string, { dtype: DType }], b: readonly [string, { dtype: DType }]) => ELEMENT_SIZE[b[1].dtype] - ELEMENT_SIZE[a[1].dtype];

/** Serialise tensors to safetensors bytes: largest element size first so each tensor is aligned. */
export function encodeSafetensors(tensors: Record<string, Tensor> | Map<string, Tensor>, opts: WriteOptions = {}): Buffer {
  const entries = (tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors)).map(([name, t]) => {
    if (opts.half && t.dtype === 'F32') return [name, { dtype: 'F16' as DType, shape: t.shape, data: f32ToF16(t.data as Float32Array) }] as const;
    return [name, t] as const;
  });
  entries.sort(bySizeDesc);
  for (const [name, t] of entries) {
    const bytes = numel(t.shape) * ELEMENT_SIZE[t.dtype];
    if (t.data.byteLength !== bytes) throw new Error(`tensor '${name}': ${t.data.byteLength} bytes for dtype ${t.dtype} shape [${t.shape}]`);
  }
  const { header, dataBytes } = layoutHeader(entries, opts.metadata);
  const out = Buffer.alloc(header.length + dataBytes);
  header.copy(out, 0);
  let pos = header.length;
  for (const [, t] of entries) {
    const src = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    out.set(src, pos);
    pos += src.length;
  }
  return out;
}

/** Write atomically (temp file + fsync + rename) so an interrupted write never leaves a half file. */
export function writeSafetensors(path: string, tensors: Record<string, Tensor> | Map<string, Tensor>, opts: WriteOptions = {}): void {
  atomicWrite(path, encodeSafetensors(tensors, opts), 'safetensors file');
}

/**
 * A safetensors file written piece by piece, for tensors too large to hold at once: the shapes
 * are fixed up front (so the header is final), slices along the first axis arrive in any order,
 * and `finish()` publishes the file atomically once every byte has been written. `abort()`
 * removes the partial file.
 */
export class SafetensorsWriter {
  private readonly file: AtomicFile;
  private readonly layout: Map<string, { dtype: DType; shape: number[]; begin: number; written: number; bytes: number }>;

  constructor(readonly path: string, specs: Record<string, { dtype: DType; shape: number[] }>, metadata?: Record<string, string>) {
    const entries = Object.entries(specs).sort(bySizeDesc);
    const { header, offsets } = layoutHeader(entries, metadata);
    this.layout = new Map(
      entries.map(([name, t], i) => [name, { ...t, begin: header.length + offsets[i], written: 0, bytes: numel(t.shape) * ELEMENT_SIZE[t.dtype] }]),
    );
    this.file = new AtomicFile(path, 'safetensors file');
    this.file.writeAt(header, 0);
  }

  /** Write `data` as rows [row, row + n) of tensor `name` (n = data's length / the size of a row). */
  write(name: string, row: number, data: TypedData): void {
    const t = this.layout.get(name);
    if (!t) throw new Error(`SafetensorsWriter: no tensor '${name}' in ${this.path}`);
    const rowBytes = t.shape.length ? (numel(t.shape.slice(1)) * ELEMENT_SIZE[t.dtype]) : t.bytes;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.length % rowBytes !== 0 || row * rowBytes + bytes.length > t.bytes) {
      throw new Error(`SafetensorsWriter: ${bytes.length} bytes at row ${row} do not fit tensor '${name}' [${t.shape}] ${t.dtype}`);
    }
    this.file.writeAt(bytes, t.begin + row * rowBytes);
    t.written += bytes.length;
  }

  finish(): void {
    for (const [name, t] of this.layout) {
      if (t.written !== t.bytes) throw new Error(`SafetensorsWriter: tensor '${name}' has ${t.written} of its ${t.bytes} bytes written`);
    }
    this.file.commit();
  }

  abort(): void {
    this.file.abort();
  }
}
