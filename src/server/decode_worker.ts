// A decode worker of the explorer (see decode_pool.ts): image bytes in, the model's pixel_values
// and the cropped RGB out, decoded under the pixel budget. Runs in a worker thread so that decoding
// and PIL-exact resampling never hold the server's event loop.

import { parentPort } from 'node:worker_threads';
import sharp from 'sharp';
import { decodeImage } from '../io/image.ts';
import { preprocessDecoded } from '../model/preprocess.ts';
import type { DecodeJob, DecodeReply } from './decode_pool.ts';

// One libvips thread and no operation cache per worker: the pool, not libvips, sets the parallelism.
sharp.concurrency(1);
sharp.cache(false);

parentPort!.on('message', async (job: DecodeJob) => {
  let reply: DecodeReply;
  const transfer: ArrayBuffer[] = [];
  try {
    const img = await decodeImage(Buffer.from(job.bytes.buffer, job.bytes.byteOffset, job.bytes.byteLength), job.label, { maxPixels: job.maxPixels, budget: job.budget });
    const { u8, pixels } = preprocessDecoded(img, job.preprocess);
    reply = { id: job.id, u8, pixels, width: img.source?.width ?? img.width, height: img.source?.height ?? img.height, decodedAs: img.source ? { width: img.width, height: img.height } : undefined };
    transfer.push(u8.buffer as ArrayBuffer, pixels.buffer as ArrayBuffer);
  } catch (e) {
    reply = { id: job.id, error: ((e as Error)?.message ?? String(e)).split('\n')[0] };
  }
  parentPort!.postMessage(reply, transfer);
});
