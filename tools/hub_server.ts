// Loopback stand-in for a Hugging Face hub: GET /<org>/<name>/resolve/<rev>/<file>, with Range,
// request log, and switches for the failure modes the downloader must survive. Files are held in
// memory (tests) or streamed from disk (serveDirectory: multi-GB checkpoints for the scale bench).
//
//   node --import tsx tools/hub_server.ts [--root .cache/hub-src] [--port 8765]
// serves <root>/<org>/<name>/<file> the way the hub does (302 to a CDN path with x-linked-size and
// x-linked-etag = sha256), until interrupted; point CLIPLENS_HUB_ENDPOINT at the printed address.

import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** A file on disk served without reading it into memory; sha256 as recorded beside it, or computed once when first announced. */
export interface DiskFile {
  path: string;
  size: number;
  sha256?: string;
}

export type Body = Buffer | DiskFile;

const sizeOf = (b: Body) => (Buffer.isBuffer(b) ? b.length : b.size);

export interface LoggedRequest {
  url: string;
  file: string;
  range?: string;
}

export interface HubServer {
  endpoint: string;
  requests: LoggedRequest[];
  /** repo → file → bytes or a file on disk; mutate freely between requests. */
  repos: Map<string, Map<string, Body>>;
  /** Serve every <root>/<org>/<name>/ directory as repo org/name (files streamed from disk). */
  serveDirectory(root: string): string[];
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
   * file → bytes: answer GETs of `file` (held in memory) the HTTP/1.0 way, with no Content-Length (the
   * body ends when the connection closes), sending only that many bytes of the body (Infinity: all of it).
   */
  closeDelimited: Map<string, number>;
  /** With closeDelimited: HEAD requests do announce the Content-Length. */
  headLength: boolean;
  /** file → drip: after the headers, `bytes` bytes of `file` (held in memory) every `intervalMs` (a server that is never quite stalled). */
  drip: Map<string, { intervalMs: number; bytes: number }>;
  close(): Promise<void>;
}

async function sha256Of(b: Body): Promise<string> {
  if (Buffer.isBuffer(b)) return createHash('sha256').update(b).digest('hex');
  if (!b.sha256) {
    const h = createHash('sha256');
    for await (const chunk of createReadStream(b.path)) h.update(chunk as Buffer);
    b.sha256 = h.digest('hex');
  }
  return b.sha256;
}

/** The repos under root: <root>/<org>/<name>/<file>, with sha256s from the .sha256.json tools/hub_checkpoints.ts writes. */
function reposOnDisk(root: string): Map<string, Map<string, Body>> {
  const out = new Map<string, Map<string, Body>>();
  for (const org of readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory())) {
    for (const name of readdirSync(join(root, org.name), { withFileTypes: true }).filter((d) => d.isDirectory())) {
      const dir = join(root, org.name, name.name);
      const rec = existsSync(join(dir, '.sha256.json')) ? (JSON.parse(readFileSync(join(dir, '.sha256.json'), 'utf8')) as { files?: Record<string, string>; sizes?: Record<string, number> }) : {};
      const files = new Map<string, Body>();
      for (const f of readdirSync(dir, { withFileTypes: true })) {
        if (!f.isFile() || f.name.startsWith('.') || f.name.includes('.tmp-')) continue;
        const path = join(dir, f.name);
        const size = statSync(path).size;
        // A recorded checksum counts only while the file still has the size it was recorded with.
        const sha256 = rec.sizes?.[f.name] === size ? rec.files?.[f.name] : undefined;
        files.set(f.name, { path, size, sha256 });
      }
      out.set(`${org.name}/${name.name}`, files);
    }
  }
  return out;
}

export async function startHubServer(repos: Record<string, Record<string, Body>> = {}, opts: { port?: number } = {}): Promise<HubServer> {
  const drops = new Map<string, number>();
  const sockets = new Set<Socket>();
  const state: HubServer = {
    endpoint: '',
    requests: [],
    repos: new Map(Object.entries(repos).map(([r, files]) => [r, new Map(Object.entries(files))])),
    serveDirectory: (root) => {
      const found = reposOnDisk(root);
      for (const [repo, files] of found) state.repos.set(repo, files);
      return [...found.keys()];
    },
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

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
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
    const size = sizeOf(body);
    const etag = state.linkedEtag.get(file) ?? (state.announceSha ? `"${await sha256Of(body)}"` : undefined);
    if (state.redirect && !cdn) {
      res.writeHead(302, { location: `/cdn${url}`, 'x-linked-size': String(size), ...(etag ? { 'x-linked-etag': etag } : {}) }).end();
      return;
    }
    const cut = state.closeDelimited.get(file);
    if (cut !== undefined && Buffer.isBuffer(body)) {
      // Raw response: no Content-Length, no chunking; the end of the body is the end of the connection.
      const r = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const start = r ? Number(r[1]) : 0;
      const head = req.method === 'HEAD';
      const lines = [r ? 'HTTP/1.1 206 Partial Content' : 'HTTP/1.1 200 OK', 'Connection: close', 'Content-Type: application/octet-stream'];
      if (r) lines.push(`Content-Range: bytes ${start}-${size - 1}/*`);
      if (etag) lines.push(`x-linked-etag: ${etag}`);
      if (head && state.headLength) lines.push(`Content-Length: ${size}`);
      const sock = res.socket!;
      res.detachSocket(sock);
      sock.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (!head) sock.write(body.subarray(start, Number.isFinite(cut) ? start + cut : size));
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
      if (start >= size) {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        return;
      }
      status = 206;
      headers['content-range'] = `bytes ${start}-${size - 1}/${size}`;
    }
    headers['content-length'] = String(size - start);
    res.writeHead(status, headers);
    if (!Buffer.isBuffer(body)) {
      createReadStream(body.path, { start }).pipe(res);
      return;
    }
    const part = body.subarray(start);
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

  const server = createServer((req, res) => void handle(req, res).catch((e) => res.destroy(e as Error)));
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', () => resolve()));
  state.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

/** The hub as users meet it: LFS files behind a redirect, their size and sha256 announced. */
export async function startDiskHub(root: string, opts: { port?: number } = {}): Promise<HubServer & { served: string[] }> {
  const hub = await startHubServer({}, opts);
  hub.redirect = true;
  hub.announceSha = true;
  return Object.assign(hub, { served: hub.serveDirectory(root) });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const arg = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
  const hub = await startDiskHub(arg('--root') ?? '.cache/hub-src', { port: Number(arg('--port') ?? 0) });
  console.log(hub.endpoint);
  console.error(`serving ${hub.served.join(', ') || 'no repos'}; CLIPLENS_HUB_ENDPOINT=${hub.endpoint}`);
}
