// Small HTTP helpers for the explorer: JSON errors, bounded bodies, image sniffing, safe paths.

import { realpathSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isAbsolute, join, resolve, sep } from 'node:path';
import { HttpError, UsageError } from '../errors.ts';

/** An error with an HTTP status; its message is sent to the client as { error }. */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length, 'cache-control': 'no-store' });
  res.end(body);
}

export function sendError(res: ServerResponse, status: number, message: string): void {
  sendJson(res, status, { error: message, status });
}

/**
 * The request body, at most `limit` bytes. Over the limit → 413, answered at once; the rest of
 * the upload is drained (not read into memory) so the client sees the answer rather than a reset.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolveBody, reject) => {
    const tooBig = () => new HttpError(413, `upload too large: the limit is ${formatBytes(limit)}`);
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      reject(tooBig());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > limit) {
        failed = true;
        chunks.length = 0;
        reject(tooBig());
        return;
      }
      chunks.push(c);
    });
    let ended = false;
    req.on('end', () => {
      ended = true;
      if (!failed) resolveBody(Buffer.concat(chunks));
    });
    // A client that goes away mid-upload must not leave the promise hanging.
    req.on('close', () => {
      if (!ended && !failed) reject(new HttpError(400, 'the upload was interrupted'));
      failed = true;
    });
    req.on('error', (e) => {
      if (!failed) reject(new HttpError(400, `request body could not be read: ${e.message}`));
      failed = true;
    });
  });
}

export async function readJson(req: IncomingMessage, limit = 1 << 20): Promise<Record<string, unknown>> {
  const body = await readBody(req, limit);
  if (body.length === 0) throw new HttpError(400, 'expected a JSON object in the request body, got nothing');
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new HttpError(400, `request body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HttpError(400, 'expected a JSON object in the request body');
  return v as Record<string, unknown>;
}

export type ImageKind = 'png' | 'jpeg' | 'webp' | 'gif';

/** The image type from its first bytes (never from a name or a Content-Type header). */
export function sniffImage(b: Buffer): ImageKind | undefined {
  if (b.length >= 8 && b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  if (b.length >= 6 && (b.toString('latin1', 0, 6) === 'GIF87a' || b.toString('latin1', 0, 6) === 'GIF89a')) return 'gif';
  return undefined;
}

export function formatBytes(n: number): string {
  if (n >= 1 << 20) return `${+(n / (1 << 20)).toFixed(1)} MB`;
  if (n >= 1 << 10) return `${+(n / (1 << 10)).toFixed(1)} KB`;
  return `${n} bytes`;
}

/** '20MB', '512k', '1048576' → bytes. */
export function parseSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?\s*$/i.exec(s);
  if (!m) throw new UsageError(`'${s}' is not a size (examples: 20MB, 512KB, 1048576)`);
  const mult = { '': 1, k: 1 << 10, m: 1 << 20, g: 1 << 30 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  const n = Math.floor(Number(m[1]) * mult);
  if (n < 1) throw new UsageError(`size '${s}' must be at least 1 byte`);
  return n;
}

/**
 * Resolve a URL path (still percent-encoded, '/'-separated) or a manifest id inside `root`.
 * Every segment is decoded once and must be a plain name: '..', '.', empty segments, and
 * segments hiding '/', '\' or NUL are refused (403), as is anything whose real path (symlinks
 * followed) leaves the real root. A missing file is 404.
 */
export function safeResolve(root: string, relPath: string, opts: { encoded: boolean }): string {
  if (relPath.length === 0) throw new HttpError(404, 'no file named');
  const parts = relPath.split('/');
  const names = parts.map((p) => {
    let s = p;
    if (opts.encoded) {
      try {
        s = decodeURIComponent(p);
      } catch {
        throw new HttpError(400, 'malformed percent-encoding in the path');
      }
    }
    if (s === '' || s === '.' || s === '..' || /[/\\\0]/.test(s) || isAbsolute(s)) throw new HttpError(403, 'path not allowed: it must stay inside the served folder');
    return s;
  });
  const absRoot = resolve(root);
  const candidate = resolve(join(absRoot, ...names));
  if (!candidate.startsWith(absRoot + sep)) throw new HttpError(403, 'path not allowed: it must stay inside the served folder');
  let real: string;
  let realRoot: string;
  try {
    realRoot = realpathSync(absRoot);
    real = realpathSync(candidate);
  } catch {
    throw new HttpError(404, 'file not found');
  }
  if (!real.startsWith(realRoot + sep)) throw new HttpError(403, 'path not allowed: it leads outside the served folder');
  if (!statSync(real).isFile()) throw new HttpError(404, 'file not found');
  return real;
}

export const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.bmp': 'image/bmp',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.avif': 'image/avif',
  '.ico': 'image/x-icon',
};
