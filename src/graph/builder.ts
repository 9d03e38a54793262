// A small builder for ONNX graphs. Weights become initializers (so ONNX Runtime can pre-pack
// them). A weight may be given as a loader, called only when the graph is serialised: written
// with external data, one tensor at a time is read, converted, written and dropped, so building
// a model never holds its weights in JavaScript.

import { closeSync, mkdtempSync, openSync, writeSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { f32ToF16 } from '../tensor.ts';

const { onnx } = onnxProto;
type AttrValue = number | number[] | string | { floats: number[] } | { tensor: onnxProto.onnx.ITensorProto };

export type ElemType = 'float' | 'double' | 'int64' | 'int32';
const ELEM: Record<ElemType, number> = { float: 1, double: 11, int64: 7, int32: 6 };
const FLOAT16 = 10;

export interface GraphOptions {
  /**
   * Compute in float16: weights and constants are stored as float16, float inputs are cast to
   * float16 on entry and float outputs back to float32, so callers see the same interface.
   */
  float16?: boolean;
}

/** Opset 17 has LayerNormalization; nothing newer is needed. */
export const OPSET = 17;

interface Initializer {
  name: string;
  dims: number[];
  dataType: number;
  byteLength: number;
  /** The bytes, or how to produce them on demand. */
  bytes: Uint8Array | (() => Uint8Array);
}

/** Float32 data now, or a loader that produces it when the graph is serialised. */
export type WeightData = Float32Array | (() => Float32Array);

function f32Bytes(data: Float32Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export class GraphBuilder {
  private nodes: onnxProto.onnx.INodeProto[] = [];
  private inits: Initializer[] = [];
  private inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private counter = 0;
  private constCache = new Map<string, string>();

  constructor(readonly name: string, readonly options: GraphOptions = {}) {}

  private valueInfo(name: string, elem: ElemType, dims: (number | string)[]): onnxProto.onnx.IValueInfoProto {
    return {
      name,
      type: {
        tensorType: {
          elemType: ELEM[elem],
          shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
        },
      },
    };
  }

  input(name: string, elem: ElemType, dims: (number | string)[]): string {
    this.inputs.push(this.valueInfo(name, elem, dims));
    return this.options.float16 && elem === 'float' ? this.op('Cast', [name], { to: FLOAT16 }) : name;
  }

  output(value: string, name: string, elem: ElemType, dims: (number | string)[]): void {
    // Outputs get stable names; an Identity (or the cast back to float32) keeps the internal value name free.
    if (this.options.float16 && elem === 'float') this.op('Cast', [value], { to: ELEM.float }, name);
    else this.op('Identity', [value], {}, name);
    this.outputs.push(this.valueInfo(name, elem, dims));
  }

  /** A float32 weight: its data, or a loader returning exactly numel(dims) values. */
  weight(name: string, data: WeightData, dims: number[]): string {
    const n = dims.reduce((a, b) => a * b, 1);
    if (typeof data !== 'function' && data.length !== n) throw new Error(`weight ${name}: ${data.length} values for dims [${dims}]`);
    const half = this.options.float16 ?? false;
    const encode = (d: Float32Array) => (half ? new Uint8Array(f32ToF16(d).buffer) : f32Bytes(d));
    const bytes = typeof data === 'function'
      ? () => {
          const d = data();
          if (d.length !== n) throw new Error(`weight ${name}: loader gave ${d.length} values for dims [${dims}]`);
          return encode(d);
        }
      : encode(data);
    this.inits.push({ name, dims, dataType: half ? FLOAT16 : ELEM.float, byteLength: (half ? 2 : 4) * n, bytes });
    return name;
  }

  /** Small constants, deduplicated. */
  constF(values: number[], dims: number[] = [values.length]): string {
    const key = `f:${dims}:${values}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = `const_${this.counter++}`;
      this.weight(name, Float32Array.from(values), dims);
      this.constCache.set(key, name);
    }
    return name;
  }

  constI64(values: number[], dims: number[] = [values.length]): string {
    const key = `i:${dims}:${values}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = `const_${this.counter++}`;
      const data = BigInt64Array.from(values.map((v) => BigInt(v)));
      this.inits.push({ name, dims, dataType: ELEM.int64, byteLength: data.byteLength, bytes: new Uint8Array(data.buffer) });
      this.constCache.set(key, name);
    }
    return name;
  }

  /** Add a node; returns its (single) output name. */
  op(type: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outName?: string): string {
    const out = outName ?? `${type.toLowerCase()}_${this.counter++}`;
    this.nodes.push({ opType: type, input: inputs, output: [out], name: `n${this.nodes.length}_${type}`, attribute: encodeAttrs(attrs) });
    return out;
  }

  /** Add a node with several outputs. */
  opMulti(type: string, inputs: string[], nOut: number, attrs: Record<string, AttrValue> = {}): string[] {
    const outs = Array.from({ length: nOut }, () => `${type.toLowerCase()}_${this.counter++}`);
    this.nodes.push({ opType: type, input: inputs, output: outs, name: `n${this.nodes.length}_${type}`, attribute: encodeAttrs(attrs) });
    return outs;
  }

  /**
   * `x` again, computed only after every value of `deps`. ONNX has no control edges, and ONNX
   * Runtime's default node order is a depth-first walk back from the graph's outputs, so a side
   * branch that only an output stacked at the end reads (a layer's tap) runs after everything else
   * and keeps what it reads (that layer's [B, H, N, N] attention) alive until then. The edge made
   * here is x + Σ(empty slices of deps) = x + 0: exact, and a few bytes of work.
   */
  after(x: string, deps: string[]): string {
    const empty = deps.map((d) => this.op('Slice', [this.op('Reshape', [d, this.constI64([-1])]), this.constI64([0]), this.constI64([0])]));
    const zero = this.op('ReduceSum', [empty.length === 1 ? empty[0] : this.op('Concat', empty, { axis: 0 })], { keepdims: 0 });
    return this.op('Add', [x, zero]);
  }

  /** Total bytes held by initializers. */
  weightBytes(): number {
    return this.inits.reduce((a, t) => a + t.byteLength, 0);
  }

  private modelProto(initializers: onnxProto.onnx.ITensorProto[]): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'cliplens',
      opsetImport: [{ domain: '', version: OPSET }],
      graph: { name: this.name, node: this.nodes, initializer: initializers, input: this.inputs, output: this.outputs },
    });
    return onnx.ModelProto.encode(model).finish();
  }

  /** Serialise with every initializer inline (fine below ~2 GB; holds every weight at once). */
  toBytes(): Uint8Array {
    return this.modelProto(this.inits.map((t) => ({ name: t.name, dims: t.dims, dataType: t.dataType, rawData: materialise(t) })));
  }

  /**
   * Serialise with large initializers in `<dir>/<name>.weights` (ONNX external data), for models past
   * protobuf's 2 GB limit. Returns the model path; ONNX Runtime resolves the data file beside it.
   */
  toExternalFiles(dir = mkdtempSync(join(tmpdir(), 'cliplens-onnx-'))): string {
    const dataFile = `${this.name}.weights`;
    const fd = openSync(join(dir, dataFile), 'w');
    let offset = 0;
    const protos: onnxProto.onnx.ITensorProto[] = [];
    try {
      for (const t of this.inits) {
        if (t.byteLength < 1024) {
          protos.push({ name: t.name, dims: t.dims, dataType: t.dataType, rawData: materialise(t) });
          continue;
        }
        // Page-align each tensor so ONNX Runtime may map it.
        const pad = (4096 - (offset % 4096)) % 4096;
        if (pad) writeSync(fd, new Uint8Array(pad));
        offset += pad;
        // Only this tensor is in memory: it is read (and converted) now and dropped after writing.
        const bytes = materialise(t);
        let done = 0;
        while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done);
        protos.push({
          name: t.name, dims: t.dims, dataType: t.dataType, dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
          externalData: [
            { key: 'location', value: dataFile },
            { key: 'offset', value: String(offset) },
            { key: 'length', value: String(t.byteLength) },
          ],
        });
        offset += t.byteLength;
      }
    } finally {
      closeSync(fd);
    }
    const path = join(dir, `${this.name}.onnx`);
    writeFileSync(path, this.modelProto(protos));
    return path;
  }
}

function materialise(t: Initializer): Uint8Array {
  return typeof t.bytes === 'function' ? t.bytes() : t.bytes;
}

function encodeAttrs(attrs: Record<string, AttrValue>): onnxProto.onnx.IAttributeProto[] {
  const T = onnx.AttributeProto.AttributeType;
  return Object.entries(attrs).map(([name, v]) => {
    if (typeof v === 'number') {
      return Number.isInteger(v) && !Object.is(v, -0) ? { name, type: T.INT, i: v } : { name, type: T.FLOAT, f: v };
    }
    if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
    if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
    if ('floats' in v) return { name, type: T.FLOATS, floats: v.floats };
    return { name, type: T.TENSOR, t: v.tensor };
  });
}
