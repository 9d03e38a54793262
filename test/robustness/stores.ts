// Hostile stores: shards copied over each other, zeroed, truncated, deleted or contradicting the
// manifest; hand-edited manifests; old (version 1) stores; kill -9 followed by damage. Readers name
// the damaged shard; resume recomputes it, to a store identical to an uninterrupted run.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe } from 'node:test';
import { decomposeDataset } from '../../src/decompose/dataset_job.ts';
import { loadDataset } from '../../src/io/datasets.ts';
import { pidAlive } from '../../src/io/files.ts';
import { readSafetensors, SafetensorsFile, writeSafetensors } from '../../src/io/safetensors.ts';
import { loadStore, readManifest } from '../../src/io/store.ts';
import { REPO, TINY_A, tinyModel } from '../helpers/fixtures.ts';
import { killAfterShards } from '../helpers/processes.ts';
import { cliOneLine, hostile, oneLine } from './tally.ts';

const G = 'stores';
const shard = (dir: string, b: number) => join(dir, `shard-${String(b).padStart(6, '0')}.safetensors`);

function storeFiles(dir: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const f of readdirSync(dir).sort()) if (f.endsWith('.safetensors')) out[f] = readFileSync(join(dir, f));
  return out;
}

const comparable = (dir: string) => {
  const m = readManifest(dir);
  return { ...m, dataset: { ...m.dataset, root: '' } };
};

function zeroBytes(path: string, from: number, n: number): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.alloc(n), 0, n, from);
  closeSync(fd);
}

export function storeCases(tmp: string, dataset: string): void {
  describe('stores', () => {
    const ref = join(tmp, 'store-ref');
    let n = 0;
    /** A fresh copy of the reference store. */
    const copy = () => {
      const d = join(tmp, `store-case-${n++}`);
      cpSync(ref, d, { recursive: true });
      return d;
    };
    const resume = (d: string) => decomposeDataset(tinyModel(1), loadDataset(dataset), { storeDir: d, batchSize: 2 });
    const assertSameAsRef = (d: string) => {
      assert.deepEqual(storeFiles(d), storeFiles(ref));
      assert.deepEqual(comparable(d), comparable(ref));
    };
    const editManifest = (d: string, f: (m: any) => void) => {
      const p = join(d, 'manifest.json');
      const m = JSON.parse(readFileSync(p, 'utf8'));
      f(m);
      writeFileSync(p, JSON.stringify(m));
    };

    before(async () => {
      const r = await decomposeDataset(tinyModel(1), loadDataset(dataset), { storeDir: ref, batchSize: 2 });
      assert.equal(r.complete, true);
      assert.equal(r.failed.length, 1);
    });

    hostile(G, 'a shard copied over another: readers name it', () => {
      const d = copy();
      copyFileSync(shard(d, 1), shard(d, 0));
      return oneLine(() => loadStore(d), /store .*: shard shard-000000\.safetensors \(batch 0\) holds rows \[2, 3\] but the manifest records rows \[0, 1\] for batch 0 \(a shard copied over another\?\); run 'cliplens decompose' again/);
    });

    hostile(G, 'a shard copied over another: resume recomputes it, identical to an uninterrupted run', async () => {
      const d = copy();
      copyFileSync(shard(d, 1), shard(d, 0));
      const r = await resume(d);
      assert.deepEqual(r.repaired.map((x) => x.batch), [0]);
      assert.equal(r.processed, 2);
      assertSameAsRef(d);
      return 'handled';
    });

    hostile(G, 'a shard copied over another: retrieve gives one line, not rows with cosine 1.0', () => {
      const d = copy();
      copyFileSync(shard(d, 1), shard(d, 0));
      return cliOneLine(['retrieve', '--store', d, '--query', '0', '--heads', '5:0', '--json'], /shard shard-000000\.safetensors \(batch 0\) holds rows/);
    });

    hostile(G, '100 zeroed bytes inside a shard: --verify names it', () => {
      const d = copy();
      const p = shard(d, 1);
      zeroBytes(p, statSync(p).size - 300, 100);
      assert.doesNotThrow(() => loadStore(d)); // the cheap checks cannot see inside the data
      return oneLine(() => loadStore(d, { verify: true }), /shard shard-000001\.safetensors \(batch 1\) does not have the sha256 recorded when it was written/);
    });

    hostile(G, '100 zeroed bytes inside a shard: resume finds and recomputes it', async () => {
      const d = copy();
      const p = shard(d, 1);
      zeroBytes(p, statSync(p).size - 300, 100);
      const r = await resume(d);
      assert.deepEqual(r.repaired.map((x) => [x.batch, x.problem]), [[1, 'does not have the sha256 recorded when it was written (changed or damaged on disk)']]);
      assertSameAsRef(d);
      return 'handled';
    });

    hostile(G, '100 zeroed bytes in a shard header', () => {
      const d = copy();
      zeroBytes(shard(d, 2), 20, 100);
      return oneLine(() => loadStore(d), /shard shard-000002\.safetensors \(batch 2\) is damaged \(header is not valid JSON/);
    });

    hostile(G, 'a truncated shard', () => {
      const d = copy();
      truncateSync(shard(d, 0), statSync(shard(d, 0)).size - 50);
      return oneLine(() => loadStore(d), /shard shard-000000\.safetensors \(batch 0\) is \d+ bytes but was written as \d+ \(truncated or replaced\)/);
    });

    hostile(G, 'a deleted shard', () => {
      const d = copy();
      rmSync(shard(d, 1));
      return oneLine(() => loadStore(d), /shard shard-000001\.safetensors \(batch 1\) is missing/);
    });

    hostile(G, "a shard whose own index tensor contradicts the manifest", () => {
      const d = copy();
      const t = readSafetensors(shard(d, 0));
      t.set('index', { dtype: 'I32', shape: [2], data: Int32Array.of(1, 0) });
      writeSafetensors(shard(d, 0), t, { metadata: SafetensorsFile.open(shard(d, 0)).closeAfter((f) => f.metadata) });
      return oneLine(() => loadStore(d), /holds rows \[1, 0\] but the manifest records rows \[0, 1\]/);
    });

    const manifestEdits: [string, (m: any) => void, RegExp][] = [
      ['an out-of-range index', (m) => (m.shards[0].indices[1] = 99), /manifest\.json: shards\[0\]\.indices\[1\] must be an integer in 0\.\.1, got 99 \(out of range\)/],
      ['a negative index', (m) => (m.shards[1].indices[0] = -1), /shards\[1\]\.indices\[0\] must be an integer in 2\.\.3, got -1/],
      ['a duplicated shard entry', (m) => m.shards.push(m.shards[0]), /shards\[\d+\] repeats batch 0 \(already shards\[0\]\)/],
      ['shards: null', (m) => (m.shards = null), /manifest\.json: shards must be a list, got null/],
      ['batchSize as a string', (m) => (m.batchSize = '2'), /batchSize must be an integer in 1\.\.\d+, got "2"/],
      ['an item that is not an object', (m) => (m.items[2] = 5), /items\[2\] must be an object, got 5/],
      ['a shard file outside the store', (m) => (m.shards[0].file = '../../etc/passwd'), /shards\[0\]\.file "\.\.\/\.\.\/etc\/passwd" is not a shard file name/],
      ['a layer out of range', (m) => (m.layers = [0, 9]), /layers\[1\] must be an integer in 0\.\.5, got 9/],
      ['an unreadable image that a shard also holds', (m) => m.failed.push({ index: 0, id: 'x', error: 'y' }), /failed\[1\] lists item 0 as unreadable, but shards\[0\] holds it/],
      ['a store from a newer cliplens', (m) => (m.version = 99), /store version 99; this cliplens reads versions 1 and 2 \(the store was made by a newer cliplens/],
      ['a shard entry without its checksum', (m) => delete m.shards[0].sha256, /shards\[0\]\.sha256 must be 64 hex digits, got nothing/],
    ];
    for (const [what, edit, re] of manifestEdits) {
      hostile(G, `hand-edited manifest: ${what}`, () => {
        const d = copy();
        editManifest(d, edit);
        return oneLine(() => loadStore(d), re);
      });
    }

    hostile(G, 'a manifest that is not JSON', () => {
      const d = copy();
      writeFileSync(join(d, 'manifest.json'), '{"format": "cliplens-store", ');
      return oneLine(() => loadStore(d), /manifest\.json: unreadable manifest/);
    });

    hostile(G, 'a version-1 store (before checksums) is read, and resume upgrades it', async () => {
      const d = copy();
      editManifest(d, (m) => {
        m.version = 1;
        for (const s of m.shards) delete s.bytes, delete s.sha256;
      });
      const old = loadStore(d);
      assert.deepEqual(old.attn.data, loadStore(ref).attn.data);
      const r = await resume(d);
      assert.equal(r.processed, 0);
      assertSameAsRef(d);
      return 'handled';
    });

    hostile(G, 'a deleted shard whose batch holds an unreadable image: failed is listed once after resume', async () => {
      const d = copy();
      const m = readManifest(d);
      const bad = m.failed[0].index;
      const b = Math.floor(bad / m.batchSize);
      rmSync(shard(d, b), { force: true });
      const r = await resume(d);
      assert.deepEqual(r.repaired.map((x) => x.batch), m.shards.find((s) => s.batch === b)!.file ? [b] : []);
      assert.deepEqual(readManifest(d).failed.map((f) => f.index), [bad]);
      assertSameAsRef(d);
      return 'handled';
    });

    hostile(G, 'a temp file left by a killed writer is cleared on resume', async () => {
      const d = copy();
      let pid = 4_000_000;
      while (pidAlive(pid)) pid++;
      const stale = `${shard(d, 3)}.tmp-${pid}`;
      writeFileSync(stale, 'half a shard');
      await resume(d);
      assert.equal(existsSync(stale), false);
      assertSameAsRef(d);
      return 'handled';
    });

    hostile(G, 'kill -9 mid-run, then a recorded shard damaged, then resume: identical store', async () => {
      const d = join(tmp, 'store-killed');
      const args = [join(REPO, 'bin/cliplens.js'), 'decompose', '--model', TINY_A(), '--dataset', dataset, '--store', d, '--batch-size', '2', '--threads', '1'];
      await killAfterShards(args, 1); // stopped right after its manifest records one shard, then kill -9
      assert.equal(readManifest(d).complete, false);
      const recorded = readManifest(d).shards.find((s) => s.file)!;
      zeroBytes(join(d, recorded.file!), statSync(join(d, recorded.file!)).size - 200, 100);
      const rerun = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      rerun.stderr!.on('data', (c) => (stderr += c));
      const code = await new Promise((r) => rerun.once('exit', r));
      assert.equal(code, 0, stderr);
      assert.match(stderr, new RegExp(`warning: shard ${recorded.file!.replace('.', '\\.')} \\(batch ${recorded.batch}\\) does not have the sha256 recorded.*; recomputed it`));
      assertSameAsRef(d);
      return 'handled';
    });
  });
}
