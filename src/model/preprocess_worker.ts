// Worker thread of the preprocessing pool (preprocess_model.ts): decode one image and run the
// model's eval transform on it; the result's buffers are transferred, not copied.

import { parentPort } from 'node:worker_threads';
import { decodeImage } from '../io/image.ts';
import { preprocessDecoded, type PreprocessOptions } from './preprocess.ts';

export interface PreprocessTask {
  /** a path, or the file's bytes */
  input: string | Uint8Array;
  opts: PreprocessOptions;
}

export type PreprocessAnswer = { pixels: Float32Array; u8: Uint8Array } | { error: string };

parentPort?.on('message', async ({ input, opts }: PreprocessTask) => {
  let answer: PreprocessAnswer;
  try {
    const img = await decodeImage(typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.length), typeof input === 'string' ? input : undefined);
    answer = preprocessDecoded(img, opts);
  } catch (e) {
    answer = { error: (e as Error).message.split('\n')[0] };
  }
  parentPort!.postMessage(answer, 'pixels' in answer ? [answer.pixels.buffer as ArrayBuffer, answer.u8.buffer as ArrayBuffer] : []);
});
