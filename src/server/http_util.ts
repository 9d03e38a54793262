// Small HTTP helpers for the explorer: JSON errors, bounded bodies, image sniffing, safe paths,
// and who may talk to it (Host allow-list, same-origin checks for requests that change state).

import { realpathSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hostname, networkInterfaces } from 'node:os';
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

/**
 * The request's media type must pass `ok`, else 415 (the body is drained unread). Cross-site forms
 * and "simple" fetches can only send text/plain, form or multipart types.
 */
export function requireType(req: IncomingMessage, ok: (type: string) => boolean, want: string): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (ok(type)) return;
  req.resume();
  throw new HttpError(415, `send ${want} (got ${type ? `'${type}'` : 'no Content-Type'})`);
}

export async function readJson(req: IncomingMessage, limit = 1 << 20): Promise<Record<string, unknown>> {
  requireType(req, (t) => t === 'application/json', 'the request body as JSON with Content-Type: application/json');
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

/** A host name or address as Host and Origin carry it: lower case, IPv6 in brackets, no trailing dot. */
export function normHostName(h: string): string {
  let s = h.trim().toLowerCase().replace(/\.$/, '');
  if (s.includes(':') && !s.startsWith('[')) s = `[${s}]`;
  return s;
}

/** 'name:port', '[v6]:port' or 'name' → its parts; undefined when malformed. */
export function parseHostHeader(h: string): { name: string; port?: number } | undefined {
  const m = /^(\[[0-9a-f:.]+\]|[^:[\]/\s@]+)(?::(\d{1,5}))?$/i.exec(h.trim());
  if (!m) return undefined;
  return { name: normHostName(m[1]), port: m[2] === undefined ? undefined : Number(m[2]) };
}

const WILDCARD = new Set(['0.0.0.0', '[::]', '']);
export const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

/**
 * The names a request may address the server by (Host, Origin): always the loopback names and the
 * bound name or address; bound to 0.0.0.0 or ::, also this machine's name and its interfaces'
 * addresses; plus `extra` (--allow-host). Anything else is a DNS name someone pointed here.
 */
export function allowedHostNames(bind: string, extra: string[] = []): Set<string> {
  const names = new Set(LOOPBACK_NAMES);
  const b = normHostName(bind);
  if (WILDCARD.has(b)) {
    names.add(normHostName(hostname()));
    for (const addrs of Object.values(networkInterfaces())) for (const a of addrs ?? []) names.add(normHostName(a.address.replace(/%.*$/, '')));
  } else names.add(b);
  for (const e of extra) names.add(normHostName(e));
  return names;
}

/** The Host header names this server (an allowed name and its port): else 403. */
export function checkHost(req: IncomingMessage, allowed: Set<string>, port: number): void {
  const h = parseHostHeader(req.headers.host ?? '');
  if (!h || !allowed.has(h.name) || (h.port ?? 80) !== port) {
    throw new HttpError(403, `unexpected Host header ${JSON.stringify(req.headers.host ?? '')}: the explorer answers to ${[...allowed].slice(0, 4).join(', ')}${allowed.size > 4 ? ', …' : ''} on port ${port} (add a name with --allow-host)`);
  }
}

/**
 * A request that changes state must come from the explorer's own page: Sec-Fetch-Site (sent by
 * browsers) same-origin or none, an Origin (if sent) naming this server, and the custom header
 * X-Cliplens: 1, which a page on another site cannot add without a CORS preflight this server
 * never grants.
 */
export function checkSameOrigin(req: IncomingMessage, allowed: Set<string>, port: number): void {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new HttpError(403, `cross-site request refused (Sec-Fetch-Site: ${site}): only the explorer's own page may change anything`);
  }
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let u: URL | undefined;
    try {
      u = new URL(origin);
    } catch {
      u = undefined;
    }
    if (!u || u.protocol !== 'http:' || !allowed.has(normHostName(u.hostname)) || Number(u.port || 80) !== port) {
      throw new HttpError(403, `cross-origin request from ${origin} refused: only the explorer's own page may change anything`);
    }
  }
  if (req.headers['x-cliplens'] !== '1') {
    throw new HttpError(403, "POST requests need the header 'X-Cliplens: 1' (the explorer's page sends it; a page on another site cannot)");
  }
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
