// Loopback stand-in for a Hugging Face hub: GET /<org>/<name>/resolve/<rev>/<file>, with Range,
// request log, and switches for the failure modes the downloader must survive.

import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface LoggedRequest {
  url: string;
  file: string;
  range?: string;
}

export interface HubServer {
  endpoint: string;
  requests: LoggedRequest[];
  /** repo → file → bytes; mutate freely between requests. */
  repos: Map<string, Map<string, Buffer>>;
  /** Next GET of `file` sends its headers and `bytes` bytes of body, then drops the connection. */
  dropOnce(file: string, bytes: number): void;
  /** Answer Range requests with a full 200 (as some servers and proxies do). */
  ignoreRange: boolean;
  /** file → x-linked-size value to announce (a lie when it differs from the file). */
  linkedSize: Map<string, number>;
  /** Serve LFS-like files via a 302 to /cdn/... as the real hub does. */
  redirect: boolean;
  /** Announce each file's sha256 as x-linked-etag (on the 302 when redirecting, as the real hub does). */
  announceSha: boolean;
  /** file → x-linked-etag value to announce instead of the true sha256. */
  linkedEtag: Map<string, string>;
  /** Accept requests but never answer (timeout tests). */
  hang: boolean;
  /**
   * file → bytes: answer GETs of `file` the HTTP/1.0 way, with no Content-Length (the body ends when
   * the connection closes), sending only that many bytes of the body (Infinity: all of it).
   */
  closeDelimited: Map<string, number>;
  /** With closeDelimited: HEAD requests do announce the Content-Length. */
  headLength: boolean;
  /** file → drip: after the headers, `bytes` bytes every `intervalMs` (a server that is never quite stalled). */
  drip: Map<string, { intervalMs: number; bytes: number }>;
  close(): Promise<void>;
}

export async function startHubServer(repos: Record<string, Record<string, Buffer>> = {}): Promise<HubServer> {
  const drops = new Map<string, number>();
  const sockets = new Set<Socket>();
  const state: HubServer = {
    endpoint: '',
    requests: [],
    repos: new Map(Object.entries(repos).map(([r, files]) => [r, new Map(Object.entries(files))])),
    dropOnce: (file, bytes) => void drops.set(file, bytes),
    ignoreRange: false,
    linkedSize: new Map(),
    redirect: false,
    announceSha: false,
    linkedEtag: new Map(),
    hang: false,
    closeDelimited: new Map(),
    headLength: false,
    drip: new Map(),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    const cdn = url.startsWith('/cdn/');
    const m = /^\/(?:cdn\/)?([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url);
    const file = m ? decodeURIComponent(m[3]) : '';
    state.requests.push({ url, file, range: req.headers.range });
    if (state.hang) return;
    const body = m ? state.repos.get(m[1])?.get(file) : undefined;
    if (!m || !body) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Entry not found');
      return;
    }
    const etag = state.linkedEtag.get(file) ?? (state.announceSha ? `"${createHash('sha256').update(body).digest('hex')}"` : undefined);
    if (state.redirect && !cdn) {
      res.writeHead(302, { location: `/cdn${url}`, 'x-linked-size': String(body.length), ...(etag ? { 'x-linked-etag': etag } : {}) }).end();
      return;
    }
    const cut = state.closeDelimited.get(file);
    if (cut !== undefined) {
      // Raw response: no Content-Length, no chunking; the end of the body is the end of the connection.
      const r = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const start = r ? Number(r[1]) : 0;
      const head = req.method === 'HEAD';
      const lines = [r ? 'HTTP/1.1 206 Partial Content' : 'HTTP/1.1 200 OK', 'Connection: close', 'Content-Type: application/octet-stream'];
      if (r) lines.push(`Content-Range: bytes ${start}-${body.length - 1}/*`);
      if (etag) lines.push(`x-linked-etag: ${etag}`);
      if (head && state.headLength) lines.push(`Content-Length: ${body.length}`);
      const sock = res.socket!;
      res.detachSocket(sock);
      sock.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (!head) sock.write(body.subarray(start, Number.isFinite(cut) ? start + cut : body.length));
      sock.end();
      return;
    }
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' };
    if (etag && !cdn) headers['x-linked-etag'] = etag;
    const lie = state.linkedSize.get(file);
    if (lie !== undefined) headers['x-linked-size'] = String(lie);
    let start = 0;
    let status = 200;
    const r = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (r && !state.ignoreRange) {
      start = Number(r[1]);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      status = 206;
      headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
    }
    const part = body.subarray(start);
    headers['content-length'] = String(part.length);
    res.writeHead(status, headers);
    const drip = state.drip.get(file);
    if (drip) {
      let at = 0;
      const timer = setInterval(() => {
        if (res.destroyed || at >= part.length) {
          clearInterval(timer);
          if (!res.destroyed) res.end();
          return;
        }
        res.write(part.subarray(at, at + drip.bytes));
        at += drip.bytes;
      }, drip.intervalMs);
      res.on('close', () => clearInterval(timer));
      return;
    }
    const drop = drops.get(file);
    if (drop !== undefined) {
      drops.delete(file);
      res.write(part.subarray(0, Math.min(drop, part.length)), () => {
        // Let the bytes reach the client before the reset.
        setTimeout(() => res.socket?.destroy(), 20);
      });
      return;
    }
    res.end(part);
  };

  const server = createServer(handle);
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  state.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}
