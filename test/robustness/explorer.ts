// The explorer under attack: a 13000×13000 PNG uploaded to a server whose address space is capped
// (its idle size + 512 MB; decoding the whole image needed ~1.2 GB more) with /api/info asked while
// the uploads decode; cross-origin and header-less POSTs; Host checks on every bind address; the
// per-upload time limit.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { hostname } from 'node:os';
import { after, before, describe } from 'node:test';
import { startServer, type RunningServer } from '../../src/server/server.ts';
import { tinyModel } from '../helpers/fixtures.ts';
import { procStatusKB, serveChild, stopChild } from '../helpers/serve_child.ts';
import type { ClipModel } from '../../src/runtime/clip.ts';
import { scenePng } from '../helpers/serve_fixture.ts';
import { hostile } from './tally.ts';

const G = 'explorer';

interface Res {
  status: number;
  json: any;
}

function req(port: number, method: string, path: string, body?: Buffer | string, headers: Record<string, string> = {}, host = '127.0.0.1'): Promise<Res> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(body);
    const r = request({ host, port, method, path, headers: { ...(payload ? { 'content-length': String(payload.length) } : {}), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(Buffer.concat(chunks).toString());
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    r.on('error', reject);
    r.end(payload);
  });
}

const PAGE = { 'x-cliplens': '1' };
export function explorerCases(bigPng: (rgb: [number, number, number]) => Promise<Buffer>): void {
  describe('explorer', () => {
    let model: ClipModel;
    let srv: RunningServer;
    let png: Buffer;
    before(async () => {
      model = tinyModel(1);
      srv = await startServer({ model, port: 0, log: () => {} });
      png = await scenePng(120, 90, [220, 30, 40], [200, 200, 190]);
    });
    after(async () => {
      await srv?.close();
      await model?.release();
    });
    const port = () => Number(new URL(srv.url).port);
    /** The upload was never processed: its content id is unknown to the server. */
    const notProcessed = async (bytes: Buffer) => {
      const id = createHash('sha256').update(bytes).digest('hex').slice(0, 24);
      assert.equal((await req(port(), 'GET', `/api/upload/${id}/image.png`)).status, 404);
    };

    hostile(G, 'a 13000×13000 PNG under a memory cap, /api/info answering while uploads decode', async () => {
      // The cap: the server's own idle address space plus 512 MB (measured on an uncapped run).
      // MALLOC_ARENA_MAX=2 keeps the address space of its threads predictable.
      const env = { MALLOC_ARENA_MAX: '2', CLIPLENS_THREADS: '1' };
      const probe = await serveChild([], { env });
      await req(probe.port, 'GET', '/api/info');
      const idleKB = procStatusKB(probe.pid, 'VmPeak');
      await stopChild(probe.child);
      const { child, port: p } = await serveChild([], { limitKB: idleKB + 512 * 1024, env });
      try {
        const bigs = [await bigPng([200, 100, 50]), await bigPng([10, 200, 90])];
        const uploads = bigs.map((b) => req(p, 'POST', '/api/upload', b, { ...PAGE, 'content-type': 'image/png' }));
        let pending = uploads.length;
        for (const u of uploads) void u.finally(() => pending--);
        // /api/info keeps answering; at least one answer comes while a decode is running.
        let sawDecoding = false;
        let budget = 0;
        while (pending > 0) {
          const info = await req(p, 'GET', '/api/info');
          assert.equal(info.status, 200);
          budget = info.json.decode.budgetPixels;
          if (pending > 0 && info.json.decode.running > 0) sawDecoding = true;
          await new Promise((r) => setTimeout(r, 10));
        }
        assert.ok(sawDecoding, '/api/info never answered while an upload was decoding');
        for (const u of await Promise.all(uploads)) {
          assert.equal(u.status, 200, JSON.stringify(u.json));
          assert.deepEqual(u.json.source, { width: 13000, height: 13000 });
          assert.ok(u.json.decodedAs.width * u.json.decodedAs.height <= budget, JSON.stringify(u.json));
        }
        return 'handled';
      } finally {
        await stopChild(child);
      }
    }, { timeout: 180_000 });

    hostile(G, 'cross-origin upload (Origin: http://evil.example, text/plain)', async () => {
      const r = await req(port(), 'POST', '/api/upload', png, { origin: 'http://evil.example', 'content-type': 'text/plain' });
      assert.equal(r.status, 403);
      assert.match(r.json.error, /cross-origin request from http:\/\/evil\.example refused/);
      await notProcessed(png);
      return 'clear error';
    });

    hostile(G, 'cross-origin decompose with text/plain', async () => {
      const r = await req(port(), 'POST', '/api/decompose', JSON.stringify({ id: 'f'.repeat(24), texts: ['x'] }), { origin: 'http://evil.example', 'content-type': 'text/plain' });
      assert.equal(r.status, 403);
      return 'clear error';
    });

    hostile(G, 'Sec-Fetch-Site: cross-site, even with the custom header', async () => {
      const r = await req(port(), 'POST', '/api/upload', png, { ...PAGE, 'sec-fetch-site': 'cross-site', 'content-type': 'image/png' });
      assert.equal(r.status, 403);
      assert.match(r.json.error, /cross-site request refused/);
      await notProcessed(png);
      return 'clear error';
    });

    hostile(G, 'a POST without X-Cliplens (a plain form or simple fetch)', async () => {
      const r = await req(port(), 'POST', '/api/upload', png, { 'content-type': 'image/png' });
      assert.equal(r.status, 403);
      assert.match(r.json.error, /X-Cliplens: 1/);
      await notProcessed(png);
      return 'clear error';
    });

    hostile(G, 'JSON endpoints refuse a non-JSON content type', async () => {
      const r = await req(port(), 'POST', '/api/heatmap', JSON.stringify({ id: 'f'.repeat(24), texts: ['x'] }), { ...PAGE, 'content-type': 'text/plain' });
      assert.equal(r.status, 415);
      assert.match(r.json.error, /Content-Type: application\/json/);
      return 'clear error';
    });

    hostile(G, 'uploads refuse a text content type', async () => {
      const r = await req(port(), 'POST', '/api/upload', png, { ...PAGE, 'content-type': 'text/plain' });
      assert.equal(r.status, 415);
      await notProcessed(png);
      return 'clear error';
    });

    hostile(G, "the explorer's own page (same Origin, the header) is served", async () => {
      const r = await req(port(), 'POST', '/api/upload', png, { ...PAGE, origin: `http://127.0.0.1:${port()}`, 'sec-fetch-site': 'same-origin', 'content-type': 'image/png' });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.deepEqual(r.json.source, { width: 120, height: 90 });
      assert.equal(r.json.decodedAs, undefined);
      return 'handled';
    });

    hostile(G, 'bound to 0.0.0.0: a foreign Host is refused; loopback, this machine and --allow-host are served', async () => {
      const s = await startServer({ model, port: 0, host: '0.0.0.0', allowHosts: ['proxy.example'], log: () => {} });
      try {
        const p = Number(new URL(s.url).port);
        const get = (h: string) => req(p, 'GET', '/api/info', undefined, { host: h });
        assert.equal((await get(`evil.example:${p}`)).status, 403);
        assert.match((await get(`evil.example:${p}`)).json.error, /unexpected Host header/);
        assert.equal((await get(`127.0.0.1:${p}`)).status, 200);
        assert.equal((await get(`localhost:${p}`)).status, 200);
        assert.equal((await get(`${hostname()}:${p}`)).status, 200);
        assert.equal((await get(`proxy.example:${p}`)).status, 200);
        assert.equal((await get(`127.0.0.1:${p + 1}`)).status, 403);
        return 'clear error';
      } finally {
        await s.close();
      }
    });

    hostile(G, 'bound to another address (127.0.0.2): the Host check stays on', async () => {
      const s = await startServer({ model, port: 0, host: '127.0.0.2', log: () => {} });
      try {
        const p = Number(new URL(s.url).port);
        const get = (h: string) => req(p, 'GET', '/api/info', undefined, { host: h }, '127.0.0.2');
        assert.equal((await get(`evil.example:${p}`)).status, 403);
        assert.equal((await get(`127.0.0.2:${p}`)).status, 200);
        return 'clear error';
      } finally {
        await s.close();
      }
    });

    hostile(G, 'an upload past the per-upload time limit is stopped, and the server goes on', async () => {
      // 1 ms for a 13000×13000 PNG (decoding takes about a second)
      const s = await startServer({ model, port: 0, decode: { timeoutMs: 1 }, log: () => {} });
      try {
        const p = Number(new URL(s.url).port);
        const r = await req(p, 'POST', '/api/upload', await bigPng([1, 2, 3]), { ...PAGE, 'content-type': 'image/png' });
        assert.equal(r.status, 503);
        assert.match(r.json.error, /decoding the image took longer than 0\.001s/);
        assert.equal((await req(p, 'GET', '/api/info')).status, 200);
        return 'clear error';
      } finally {
        await s.close();
      }
    });
  });
}
