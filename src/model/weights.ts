// One place that knows how checkpoint tensors are addressed: every layout is presented
// under open_clip state-dict names (visual.transformer.resblocks.0.attn.in_proj_weight, ...).

import { SafetensorsFile } from '../io/safetensors.ts';
import { shapeEq, type F32 } from '../tensor.ts';
import { WeightError } from '../errors.ts';

export interface WeightSource {
  /** Human-readable origin for error messages. */
  readonly origin: string;
  has(name: string): boolean;
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
  get(name: string): F32 {
    const t = this.tensors.get(name);
    if (!t) throw new WeightError(`${this.origin}: missing tensor '${name}'`);
    return t;
  }
  close(): void {}
}

/** Fetch a tensor and check its shape, so a wrong checkpoint/config pair fails with a clear message. */
export function expectTensor(w: WeightSource, name: string, shape: number[]): F32 {
  const t = w.get(name);
  if (!shapeEq(t.shape, shape)) {
    throw new WeightError(`${w.origin}: tensor '${name}' has shape [${t.shape}] but the config implies [${shape}]`);
  }
  return t;
}
