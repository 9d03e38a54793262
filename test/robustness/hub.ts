// The hub cache against a loopback server that misbehaves: bodies that end without a length or a
// checksum (close-delimited), servers that drip a few bytes at a time forever, downloads that run
// past their per-file deadline. A file is cached only when its size is known and matches, or its
// hash does; anything else stays a `.incomplete` partial.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe } from 'node:test';
import { fetchRepoFiles, repoCacheDir } from '../../src/io/hub.ts';
import { startHubServer, type HubServer } from '../../tools/hub_server.ts';
import { hostile, oneLine } from './tally.ts';

const G = 'hub';
const FILE = 'model.bin';

export function hubCases(tmp: string): void {
  describe('hub', () => {
    const body = randomBytes(64 * 1024);
    let server: HubServer;
    let n = 0;
    let cache = '';
    before(async () => {
      server = await startHubServer({ 'org/r': { [FILE]: body } });
    });
    after(() => server.close());
    beforeEach(() => {
      cache = join(tmp, `hub-cache-${n++}`);
      server.closeDelimited.clear();
      server.drip.clear();
      server.headLength = false;
      server.announceSha = false;
    });
    const opts = (more: object = {}) => ({ cacheDir: cache, endpoint: server.endpoint, timeoutMs: 5_000, ...more });
    const dir = () => repoCacheDir('org/r', { cacheDir: cache });
    const recorded = () => (existsSync(join(dir(), '.complete.json')) ? JSON.parse(readFileSync(join(dir(), '.complete.json'), 'utf8')).files : {});

    hostile(G, 'a body cut short with no length and no hash is not cached; the partial stays partial', async () => {
      server.closeDelimited.set(FILE, 20_000);
      await oneLine(fetchRepoFiles('org/r', [{ name: FILE }], opts()), /cannot tell whether org\/r\/model\.bin is complete: .* without a length .* and without a sha256 .*; not caching it \(20000 bytes kept in .*model\.bin\.incomplete\)/);
      assert.equal(existsSync(join(dir(), FILE)), false);
      assert.equal(statSync(join(dir(), `${FILE}.incomplete`)).size, 20_000);
      assert.equal(recorded()[FILE], undefined);
      return 'clear error';
    });

    hostile(G, 'the same, complete, with no length and no hash: still not cached (it cannot be told apart)', async () => {
      server.closeDelimited.set(FILE, Infinity);
      await oneLine(fetchRepoFiles('org/r', [{ name: FILE }], opts()), /cannot tell whether .* is complete/);
      assert.equal(existsSync(join(dir(), FILE)), false);
      return 'clear error';
    });

    hostile(G, 'a body cut short without a length, the size announced on HEAD: resumed and completed', async () => {
      server.closeDelimited.set(FILE, 20_000);
      server.headLength = true;
      // The first GET stops at 20 000 bytes; HEAD says 65 536, so it resumes (Range) and finishes.
      const r = await fetchRepoFiles('org/r', [{ name: FILE }], opts());
      assert.deepEqual(readFileSync(r.files[FILE]), body);
      assert.equal(recorded()[FILE], body.length);
      return 'handled';
    });

    hostile(G, 'a close-delimited body with an announced sha256 is checked by its hash and cached', async () => {
      server.closeDelimited.set(FILE, Infinity);
      server.announceSha = true;
      const r = await fetchRepoFiles('org/r', [{ name: FILE }], opts());
      assert.equal(createHash('sha256').update(readFileSync(r.files[FILE])).digest('hex'), createHash('sha256').update(body).digest('hex'));
      return 'handled';
    });

    hostile(G, 'a server dripping one byte at a time never resets the clock', async () => {
      server.drip.set(FILE, { intervalMs: 100, bytes: 1 });
      await oneLine(fetchRepoFiles('org/r', [{ name: FILE }], opts({ timeoutMs: 600 })), /cannot download org\/r\/model\.bin from .*: stalled: only \d+ bytes in 0\.6s \(at least 1024 expected\) \(\d+ bytes kept in .*\.incomplete; the next run resumes\)/);
      assert.equal(existsSync(join(dir(), FILE)), false);
      assert.ok(statSync(join(dir(), `${FILE}.incomplete`)).size > 0);
      return 'clear error';
    });

    hostile(G, 'a download slower than the per-file deadline fails with that line and keeps its partial', async () => {
      server.drip.set(FILE, { intervalMs: 50, bytes: 2048 });
      await oneLine(fetchRepoFiles('org/r', [{ name: FILE }], opts({ deadlineMs: 400 })), /download of org\/r\/model\.bin did not finish within 0\.4s \(the per-file deadline\) \(\d+ bytes kept in .*\.incomplete; the next run resumes\)/);
      assert.equal(existsSync(join(dir(), FILE)), false);
      return 'clear error';
    });
  });
}
