// `cliplens serve`: a local web explorer on node:http (no framework: a dozen routes do not need
// one, and every path check stays in plain sight). JSON API under /api, the page under /app
// (the browser bundle built into dist/web by `npm run build`), store images under /dataset.

import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join } from 'node:path';
import { assetPath } from '../assets.ts';
import { IMAGE_EXTENSIONS } from '../io/datasets.ts';
import type { ClipModel } from '../runtime/clip.ts';
import { loadClip, type LoadOptions } from '../runtime/load.ts';
import { checkInt, checkTexts, Explorer, type ExplorerOptions } from './explorer.ts';
import { allowedHostNames, checkHost, checkSameOrigin, CONTENT_TYPES, readBody, readJson, requireType, safeResolve, sendError, sendJson, sniffImage } from './http_util.ts';
import { HttpError, UsageError } from '../errors.ts';

/** The explorer's page, style sheet and bundled script (built by tools/build.mjs). */
export const WEB_DIR = assetPath('dist', 'web');
export const DEFAULT_MAX_UPLOAD = 20 << 20;

export interface ServerOptions extends Omit<ExplorerOptions, 'model'> {
  /** A loaded model (shared, not released on close) or a spec for loadClip (default: toyworld). */
  model?: ClipModel | string;
  loadOptions?: LoadOptions;
  /** 0 = any free port (default). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Largest accepted upload in bytes (default 20 MB). */
  maxUpload?: number;
  /** Where server-side failures are reported (default: stderr). */
  log?: (line: string) => void;
  /** More names or addresses the Host header may carry (e.g. the name a reverse proxy uses). */
  allowHosts?: string[];
  /** Longest a request may compute (ms) before it is answered 503; default 120 s. */
  computeTimeoutMs?: number;
}

export interface RunningServer {
  url: string;
  explorer: Explorer;
  close(): Promise<void>;
}

export async function startServer(opts: ServerOptions = {}): Promise<RunningServer> {
  if (!existsSync(join(WEB_DIR, 'index.html'))) throw new UsageError(`the explorer's web bundle is missing (${WEB_DIR}): run 'npm run build'`);
  const ownModel = typeof opts.model !== 'object';
  const model = typeof opts.model === 'object' ? opts.model : await loadClip(opts.model, opts.loadOptions);
  let explorer: Explorer;
  try {
    // Build both towers now: a graph is built synchronously, which must not happen while requests wait.
    await model.warm();
    explorer = await Explorer.create({ ...opts, model });
    await explorer.decoder.warm();
  } catch (e) {
    if (ownModel) await model.release();
    throw e;
  }
  const maxUpload = opts.maxUpload ?? DEFAULT_MAX_UPLOAD;
  const host = opts.host ?? '127.0.0.1';
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const allowedHosts = allowedHostNames(host, opts.allowHosts);
  const computeTimeoutMs = opts.computeTimeoutMs ?? 120_000;
  let port = 0;
  /** The handler's work, or 503 once it runs past the per-request limit (the work itself is bounded by the queues). */
  const limited = <T>(p: Promise<T>, what: string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new HttpError(503, `${what} took longer than ${computeTimeoutMs / 1000}s (the explorer's limit per request)`)), computeTimeoutMs);
    });
    return Promise.race([p, late]).finally(() => clearTimeout(timer));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (e instanceof HttpError) {
        if (e.status === 413) res.setHeader('connection', 'close');
        sendError(res, e.status, e.message);
      } else {
        const msg = ((e as Error)?.message ?? String(e)).split('\n')[0];
        log(`cliplens serve: ${req.method} ${req.url}: ${msg}`);
        sendError(res, 500, msg);
      }
    });
  });
  server.requestTimeout = 120_000;
  server.headersTimeout = 30_000;

  async function serveStatic(res: ServerResponse, rel: string, head: boolean): Promise<void> {
    const path = safeResolve(WEB_DIR, rel, { encoded: true });
    const ext = extname(path);
    const type = CONTENT_TYPES[ext];
    if (!type) throw new HttpError(404, 'file not found');
    const body = readFileSync(path);
    res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
    res.end(head ? undefined : body);
  }

  function sendImage(res: ServerResponse, body: Buffer, type: string, head = false): void {
    res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'cache-control': 'private, max-age=3600', 'x-content-type-options': 'nosniff' });
    res.end(head ? undefined : body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // A page on another site must not reach this server through a DNS name pointed at it (any bind address).
    checkHost(req, allowedHosts, port);
    const raw = req.url ?? '/';
    const qi = raw.indexOf('?');
    // The raw path, not a WHATWG-normalised one: traversal checks see exactly what was sent.
    const path = qi < 0 ? raw : raw.slice(0, qi);
    const q = new URLSearchParams(qi < 0 ? '' : raw.slice(qi + 1));
    const method = req.method ?? 'GET';
    const isGet = method === 'GET' || method === 'HEAD';
    const head = method === 'HEAD';
    const want = (m: 'GET' | 'POST') => {
      if (m === 'GET' ? !isGet : method !== 'POST') {
        res.setHeader('allow', m === 'GET' ? 'GET, HEAD' : 'POST');
        throw new HttpError(405, `${method} is not allowed on ${path}; use ${m}`);
      }
      // Everything that computes or changes state is a POST, and only the explorer's page may send one.
      if (m === 'POST') checkSameOrigin(req, allowedHosts, port);
    };
    let m: RegExpExecArray | null;

    if (path === '/' || path === '/index.html') {
      want('GET');
      return serveStatic(res, 'index.html', head);
    }
    if (path.startsWith('/app/')) {
      want('GET');
      return serveStatic(res, path.slice('/app/'.length), head);
    }
    if (path.startsWith('/dataset/')) {
      want('GET');
      const file = safeResolve(explorer.datasetRoot(), path.slice('/dataset/'.length), { encoded: true });
      const ext = extname(file).toLowerCase();
      if (!IMAGE_EXTENSIONS.has(ext)) throw new HttpError(404, 'only image files are served from the dataset');
      return sendImage(res, readFileSync(file), CONTENT_TYPES[ext] ?? 'application/octet-stream', head);
    }
    if (path === '/api/info') {
      want('GET');
      return sendJson(res, 200, { ...explorer.info(), maxUpload });
    }
    if (path === '/api/upload') {
      want('POST');
      requireType(req, (t) => t.startsWith('image/') || t === 'application/octet-stream', 'the image bytes with an image/* or application/octet-stream Content-Type');
      const body = await readBody(req, maxUpload);
      if (body.length === 0) throw new HttpError(400, 'empty upload: send the image bytes as the request body');
      const kind = sniffImage(body);
      if (!kind) throw new HttpError(415, 'unsupported file type: upload a PNG, JPEG, WebP or GIF image');
      const r = await limited(explorer.addUpload(body), 'the upload');
      return sendJson(res, 200, { ...r, type: kind, bytes: body.length, image: `/api/upload/${r.id}/image.png` });
    }
    if ((m = /^\/api\/upload\/([^/]+)\/image\.png$/.exec(path))) {
      want('GET');
      return sendImage(res, await explorer.uploadPng(m[1]), 'image/png', head);
    }
    if (path === '/api/decompose') {
      want('POST');
      const b = await readJson(req);
      return sendJson(res, 200, await limited(explorer.decompose(b.id, b.texts), 'the decomposition'));
    }
    if (path === '/api/heatmap') {
      want('POST');
      const b = await readJson(req);
      return sendJson(res, 200, await limited(explorer.heatmap(b.id, b.texts, b.layer, b.head), 'the heatmap'));
    }
    if (path === '/api/heads') {
      want('GET');
      return sendJson(res, 200, explorer.headCards(q.get('q') ?? undefined));
    }
    if ((m = /^\/api\/heads\/(\d+)\/(\d+)\/top$/.exec(path))) {
      want('GET');
      return sendJson(res, 200, await explorer.headTop(m[1], m[2], q.get('k') ?? undefined));
    }
    if (path === '/api/store/items') {
      want('GET');
      return sendJson(res, 200, explorer.items(q.get('offset') ?? undefined, q.get('limit') ?? undefined));
    }
    if ((m = /^\/api\/store\/thumb\/(\d+)$/.exec(path))) {
      want('GET');
      return sendImage(res, await explorer.thumbnail(m[1], q.get('size') ?? undefined), 'image/jpeg', head);
    }
    if (path === '/api/retrieval') {
      want('POST');
      const b = await readJson(req);
      return sendJson(res, 200, await limited(explorer.retrieval(b.row, b.layer, b.head, b.k, b.id), 'the retrieval'));
    }
    if (path === '/api/neurons/search') {
      want('POST');
      const b = await readJson(req);
      const k = b.k === undefined ? 12 : checkInt(b.k, 'k', 1, 100);
      const nv = explorer.neuronView();
      return sendJson(res, 200, await limited(nv.search(typeof b.q === 'string' ? b.q : '', k, (t) => explorer.textEmbeddings(checkTexts(t, 'q'))), 'the neuron search'));
    }
    if ((m = /^\/api\/neurons\/thumb\/(\d+)$/.exec(path))) {
      want('GET');
      return sendImage(res, await explorer.thumbnailFile(explorer.neuronView().thumbPath(m[1]), q.get('size') ?? undefined), 'image/jpeg', head);
    }
    if ((m = /^\/api\/neurons\/(\d+)$/.exec(path))) {
      want('GET');
      const k = q.get('k') === null ? 12 : checkInt(q.get('k'), 'k', 1, 100);
      return sendJson(res, 200, await limited(explorer.neuronView().card(m[1], k), 'the neuron card'));
    }
    if ((m = /^\/api\/neurons\/(\d+)\/map$/.exec(path))) {
      want('POST');
      const b = await readJson(req);
      const nv = explorer.neuronView();
      return sendJson(res, 200, await limited(nv.map(m[1], String(b.id), () => explorer.uploadPixels(b.id)), 'the neuron map'));
    }
    if (path === '/api/neurons/concepts') {
      want('POST');
      const b = await readJson(req);
      const nv = explorer.neuronView();
      return sendJson(res, 200, await limited(nv.concepts(String(b.id), () => explorer.uploadPixels(b.id)), 'the concepts'));
    }
    if (path === '/api/ablation') {
      want('POST');
      const b = await readJson(req);
      return sendJson(res, 200, await limited(explorer.ablation(b.heads, b.mlps), 'the ablation'));
    }
    throw new HttpError(404, path.startsWith('/api/') ? `no API endpoint ${path}` : 'not found');
  }

  try {
    await new Promise<void>((resolveListen, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => {
        reject(new UsageError(e.code === 'EADDRINUSE' ? `port ${opts.port} on ${host} is already in use; pick another --port (0 = any free port)` : `cannot listen on ${host}:${opts.port ?? 0}: ${e.message}`));
      });
      server.listen(opts.port ?? 0, host, () => resolveListen());
    });
  } catch (e) {
    await explorer.close();
    if (ownModel) await model.release();
    throw e;
  }
  port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
  let closed: Promise<void> | undefined;
  return {
    url,
    explorer,
    close() {
      closed ??= (async () => {
        await new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        });
        await explorer.close();
        if (ownModel) await model.release();
      })();
      return closed;
    },
  };
}

