// Matrix products on ONNX Runtime, for work outside the forward pass that is big enough to
// matter (folding readout matrices, materialising per-token terms, TextSpan's covariances).
// Plain JS is ~25x slower in float32; float64 products here run at about half the float32 rate.

import ort from 'onnxruntime-node';
import { GraphBuilder } from './builder.ts';
import { resolveThreads } from './session.ts';

const sessions = new Map<string, Promise<ort.InferenceSession>>();

/** One session per small graph, built on first use. */
function session(key: string, build: (g: GraphBuilder) => void): Promise<ort.InferenceSession> {
  let s = sessions.get(key);
  if (!s) {
    const g = new GraphBuilder(key);
    build(g);
    // no spin-waiting between calls: these products alternate with JS work that needs the cores
    s = ort.InferenceSession.create(g.toBytes(), { intraOpNumThreads: resolveThreads(), interOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '0' } } } });
    sessions.set(key, s);
  }
  return s;
}

function batchedSession(elem: 'float' | 'double'): Promise<ort.InferenceSession> {
  return session(`matmul_${elem}`, (g) => {
    const a = g.input('a', elem, ['batch', 'm', 'k']);
    const b = g.input('b', elem, ['batchb', 'k', 'n']);
    g.output(g.op('MatMul', [a, b]), 'c', elem, ['batch', 'm', 'n']);
  });
}

function checkBatched(a: ArrayLike<number>, b: ArrayLike<number>, batch: number, m: number, k: number, n: number): number {
  const bBatch = b.length / (k * n);
  if (a.length !== batch * m * k || !(bBatch === 1 || bBatch === batch)) {
    throw new Error(`batchedMatmul: A has ${a.length} elements for [${batch},${m},${k}], B has ${b.length} for [*,${k},${n}]`);
  }
  return bBatch;
}

/** C[i] = A[i] · B[i or 0]: A [batch, m, k], B [batch or 1, k, n] → C [batch, m, n]. */
export async function batchedMatmul(a: Float32Array, b: Float32Array, batch: number, m: number, k: number, n: number): Promise<Float32Array> {
  const bBatch = checkBatched(a, b, batch, m, k, n);
  const s = await batchedSession('float');
  const res = await s.run({ a: new ort.Tensor('float32', a, [batch, m, k]), b: new ort.Tensor('float32', b, [bBatch, k, n]) });
  return res.c.data as Float32Array;
}

/** The same in float64: A [m, k] · B [k, n] → [m, n]. */
export async function matmulF64(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Promise<Float64Array> {
  checkBatched(a, b, 1, m, k, n);
  const s = await batchedSession('double');
  const res = await s.run({ a: new ort.Tensor('float64', a, [1, m, k]), b: new ort.Tensor('float64', b, [1, k, n]) });
  return res.c.data as Float64Array;
}

/**
 * Column means μ [d] and scatter matrix (X − μ)ᵀ(X − μ) [d, d] of X [n, d], in float64
 * (float32 X is widened first; the sums never round to float32).
 */
export async function centredGram(X: Float32Array | Float64Array, n: number, d: number): Promise<{ mu: Float64Array; S: Float64Array }> {
  if (X.length !== n * d) throw new Error(`centredGram: X has ${X.length} elements for [${n},${d}]`);
  const f32 = X instanceof Float32Array;
  const s = await session(`centred_gram_${f32 ? 'float' : 'double'}`, (g) => {
    const input = g.input('x', f32 ? 'float' : 'double', ['n', 'd']);
    const x = f32 ? g.op('Cast', [input], { to: 11 }) : input;
    const mu = g.op('ReduceMean', [x], { axes: [0], keepdims: 1 });
    const xc = g.op('Sub', [x, mu]);
    g.output(mu, 'mu', 'double', [1, 'd']);
    g.output(g.op('MatMul', [g.op('Transpose', [xc], { perm: [1, 0] }), xc]), 's', 'double', ['d', 'd']);
  });
  const res = await s.run({ x: new ort.Tensor(f32 ? 'float32' : 'float64', X, [n, d]) });
  return { mu: res.mu.data as Float64Array, S: res.s.data as Float64Array };
}
