// One place that knows how checkpoint tensors are addressed: every layout is presented
// under open_clip state-dict names (visual.transformer.resblocks.0.attn.in_proj_weight, ...).

import { SafetensorsFile } from '../io/safetensors.ts';
import { shapeEq, type F32 } from '../tensor.ts';
import { WeightError } from '../errors.ts';

export interface WeightSource {
  /** Human-readable origin for error messages. */
  readonly origin: string;
  has(name: string): boolean;
  /** The tensor's shape without reading its data; undefined when absent (sources without it are read to learn it). */
  shapeOf?(name: string): number[] | undefined;
  /** The tensor as float32 under its open_clip name; throws naming the tensor when absent. */
  get(name: string): F32;
  close(): void;
}

/** open_clip state dict stored in one safetensors file. */
export class OpenClipSafetensors implements WeightSource {
  readonly origin: string;
  constructor(private file: SafetensorsFile) {
    this.origin = file.path;
  }
  static open(path: string): OpenClipSafetensors {
    return new OpenClipSafetensors(SafetensorsFile.open(path));
  }
  has(name: string): boolean {
    return this.file.has(name);
  }
  shapeOf(name: string): number[] | undefined {
    const t = this.file.tensors.get(name);
    return t && [...t.shape];
  }
  get(name: string): F32 {
    if (!this.file.has(name)) throw new WeightError(`${this.origin}: missing tensor '${name}'`);
    return this.file.readF32(name);
  }
  close(): void {
    this.file.close();
  }
}

/** In-memory weights (tests, synthetic models). */
export class MemoryWeights implements WeightSource {
  constructor(private tensors: Map<string, F32>, readonly origin = 'memory') {}
  names(): string[] {
    return [...this.tensors.keys()];
  }
  has(name: string): boolean {
    return this.tensors.has(name);
  }
  shapeOf(name: string): number[] | undefined {
    const t = this.tensors.get(name);
    return t && [...t.shape];
  }
  get(name: string): F32 {
    const t = this.tensors.get(name);
    if (!t) throw new WeightError(`${this.origin}: missing tensor '${name}'`);
    return t;
  }
  close(): void {}
}

function checkShape(w: WeightSource, name: string, got: number[] | undefined, shape: number[]): void {
  if (got === undefined) w.get(name); // throws the source's own "missing tensor" message
  if (!shapeEq(got!, shape)) {
    throw new WeightError(`${w.origin}: tensor '${name}' has shape [${got}] but the config implies [${shape}]`);
  }
}

/** Fetch a tensor and check its shape, so a wrong checkpoint/config pair fails with a clear message. */
export function expectTensor(w: WeightSource, name: string, shape: number[]): F32 {
  const t = w.get(name);
  checkShape(w, name, t.shape, shape);
  return t;
}

/**
 * Check a tensor's shape now (from the header) and return a loader that reads it later, optionally
 * transformed (e.g. transposed): graphs are built without reading any weight.
 */
export function tensorLoader(w: WeightSource, name: string, shape: number[], transform?: (data: Float32Array) => Float32Array): () => Float32Array {
  checkShape(w, name, w.shapeOf ? w.shapeOf(name) : w.has(name) ? w.get(name).shape : undefined, shape);
  return () => {
    const data = expectTensor(w, name, shape).data;
    return transform ? transform(data) : data;
  };
}
