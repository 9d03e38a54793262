// Batched matrix products on ONNX Runtime, for work outside the forward pass that is big enough
// to matter (folding readout matrices, materialising per-token terms). Plain JS is ~25x slower.

import ort from 'onnxruntime-node';
import { GraphBuilder } from './builder.ts';
import { resolveThreads } from './session.ts';

let session: Promise<ort.InferenceSession> | undefined;

function matmulSession(): Promise<ort.InferenceSession> {
  if (!session) {
    const g = new GraphBuilder('matmul');
    const a = g.input('a', 'float', ['batch', 'm', 'k']);
    const b = g.input('b', 'float', ['batchb', 'k', 'n']);
    g.output(g.op('MatMul', [a, b]), 'c', 'float', ['batch', 'm', 'n']);
    session = ort.InferenceSession.create(g.toBytes(), { intraOpNumThreads: resolveThreads(), interOpNumThreads: 1 });
  }
  return session;
}

/** C[i] = A[i] · B[i or 0]: A [batch, m, k], B [batch or 1, k, n] → C [batch, m, n]. */
export async function batchedMatmul(a: Float32Array, b: Float32Array, batch: number, m: number, k: number, n: number): Promise<Float32Array> {
  const bBatch = b.length / (k * n);
  if (a.length !== batch * m * k || !(bBatch === 1 || bBatch === batch)) {
    throw new Error(`batchedMatmul: A has ${a.length} elements for [${batch},${m},${k}], B has ${b.length} for [*,${k},${n}]`);
  }
  const s = await matmulSession();
  const res = await s.run({ a: new ort.Tensor('float32', a, [batch, m, k]), b: new ort.Tensor('float32', b, [bBatch, k, n]) });
  return res.c.data as Float32Array;
}
