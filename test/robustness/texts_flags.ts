// Hostile text files and flags: numeric flags of every kind of wrong, directories and link loops
// where files belong, text encodings (UTF-8 ± BOM and UTF-16 with a BOM are read; UTF-16 without a
// BOM, UTF-32, Latin-1 and binary are refused), and writes that fail leaving no temp file behind.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe } from 'node:test';
import { decomposeDataset } from '../../src/decompose/dataset_job.ts';
import { loadDataset } from '../../src/io/datasets.ts';
import { atomicWrite, readLines } from '../../src/io/files.ts';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.ts';
import { f32 } from '../../src/tensor.ts';
import { parseIntFlag } from '../../src/cli/common.ts';
import { UsageError } from '../../src/errors.ts';
import { TINY_A, tinyModel } from '../helpers/fixtures.ts';
import { cli, cliOneLine, hostile, oneLine } from './tally.ts';

const G = 'texts/flags';
const TEXTS = ['a photo of a dog', 'une tête de chat', '東京の写真'];

const utf16 = (s: string, be: boolean) => {
  const le = Buffer.from(s, 'utf16le');
  if (be) for (let i = 0; i < le.length; i += 2) [le[i], le[i + 1]] = [le[i + 1], le[i]];
  return Buffer.concat([Buffer.from(be ? [0xfe, 0xff] : [0xff, 0xfe]), le]);
};

const temps = (dir: string) => readdirSync(dir).filter((f) => /\.tmp-\d+$/.test(f));

export function textsFlagsCases(tmp: string, image: string, dataset: string): void {
  describe('texts and flags', () => {
    const out = join(tmp, 'flags-out.safetensors');
    const M = ['--model', TINY_A()];

    for (const v of ['-1', '0.5', 'abc']) {
      hostile(G, `encode --batch-size '${v}'`, () => cliOneLine(['encode', ...M, image, '--out', out, '--batch-size', v], new RegExp(`--batch-size must be an integer ≥ 1, got '${v.replace('.', '\\.')}'`)));
    }
    hostile(G, "the shared flag parser: '0', '', ' ', '1e3', '0x10', '8x', '9007199254740993' are refused, '+8' and ' 12 ' read", () => {
      for (const v of ['0', '', ' ', '1e3', '0x10', '8x', '9007199254740993']) assert.throws(() => parseIntFlag(v, 'batch-size'), (e: Error) => e instanceof UsageError && e.message === `--batch-size must be an integer ≥ 1, got '${v}'`);
      assert.equal(parseIntFlag('+8', 'batch-size'), 8);
      assert.equal(parseIntFlag(' 12 ', 'batch-size'), 12);
      return 'clear error';
    });
    const more: [string[], RegExp][] = [
      [['decompose', ...M, '--dataset', dataset, '--store', join(tmp, 'never-store'), '--batch-size', '0'], /--batch-size must be an integer ≥ 1, got '0'/],
      [['segment', ...M, '--text', 'x', image, '--json', '--batch-size', '-2'], /--batch-size must be an integer ≥ 1, got '-2'/],
      [['encode', ...M, image, '--out', out, '--threads', '0'], /--threads must be an integer in 1\.\.1024, got '0'/],
      [['encode', ...M, image, '--out', out, '--threads', '5000'], /--threads must be an integer in 1\.\.1024/],
      [['heatmap', ...M, '--text', 'x', image, '--json', '--layer', '-1'], /--layer must be an integer ≥ 0, got '-1'/],
      [['joint', ...M, '--text', 'x', image, '--json', '--top', 'many'], /--top must be an integer ≥ 1, got 'many'/],
      [['serve', ...M, '--port', '70000'], /--port must be an integer in 0\.\.65535, got '70000'/],
      [['serve', ...M, '--cache', '0.5'], /--cache must be an integer ≥ 1/],
    ];
    for (const [args, re] of more) hostile(G, `${args[0]} ${args.slice(-2).join(' ')}`, () => cliOneLine(args, re));

    hostile(G, '--texts-file that is a directory', () => cliOneLine(['encode', ...M, '--texts-file', tmp, '--out', out], /texts file .* is a directory, not a file/));
    hostile(G, '--texts-file that is a symbolic link loop', () => {
      const loop = join(tmp, 'loop.txt');
      symlinkSync('loop.txt', loop);
      return cliOneLine(['encode', ...M, '--texts-file', loop, '--out', out], /texts file .*loop\.txt is a symbolic link loop/);
    });
    hostile(G, '--texts-file that does not exist', () => cliOneLine(['encode', ...M, '--texts-file', join(tmp, 'nope.txt'), '--out', out], /texts file .*nope\.txt does not exist/));
    hostile(G, 'texts --file that is a directory', () => cliOneLine(['texts', ...M, '--file', tmp, '--out', out], /text file .* is a directory/));

    hostile(G, 'UTF-8 with and without a BOM, UTF-16 LE and BE with a BOM: the same lines', () => {
      const text = TEXTS.join('\r\n') + '\n';
      const files: [string, Buffer][] = [
        ['utf8.txt', Buffer.from(text)],
        ['utf8-bom.txt', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)])],
        ['utf16le.txt', utf16(text, false)],
        ['utf16be.txt', utf16(text, true)],
      ];
      for (const [name, bytes] of files) {
        writeFileSync(join(tmp, name), bytes);
        assert.deepEqual(readLines(join(tmp, name)), TEXTS, name);
      }
      return 'handled';
    });

    hostile(G, 'a UTF-16 texts file is embedded as its text, not as garbage (CLI)', () => {
      const a = join(tmp, 'enc-utf8.safetensors');
      const b = join(tmp, 'enc-utf16.safetensors');
      for (const [file, o] of [['utf8.txt', a], ['utf16le.txt', b]]) {
        const r = cli(['encode', ...M, '--texts-file', join(tmp, file), '--out', o]);
        assert.equal(r.code, 0, r.stderr);
      }
      assert.deepEqual(readSafetensors(b).get('tokens')!.data, readSafetensors(a).get('tokens')!.data);
      return 'handled';
    });

    hostile(G, 'UTF-16 without a byte-order mark', () => {
      writeFileSync(join(tmp, 'utf16-nobom.txt'), Buffer.from(TEXTS.join('\n'), 'utf16le'));
      return oneLine(() => readLines(join(tmp, 'utf16-nobom.txt'), 'texts file'), /looks like UTF-16 text without a byte-order mark/);
    });
    hostile(G, 'UTF-32 with a BOM', () => {
      writeFileSync(join(tmp, 'utf32.txt'), Buffer.from([0xff, 0xfe, 0, 0, 0x61, 0, 0, 0]));
      return oneLine(() => readLines(join(tmp, 'utf32.txt')), /is UTF-32 text; save it as UTF-8/);
    });
    hostile(G, 'Latin-1 text', () => {
      writeFileSync(join(tmp, 'latin1.txt'), Buffer.from('a dog\nune t\xeate de chat\n', 'latin1'));
      return oneLine(() => readLines(join(tmp, 'latin1.txt')), /is not UTF-8 text \(invalid byte sequence on line 2\)/);
    });
    hostile(G, 'a binary file as texts', () => cliOneLine(['encode', ...M, '--texts-file', TINY_A(), '--out', out], /contains NUL bytes .*a binary file, not text/));

    hostile(G, 'a failed write (target is a directory) leaves no temp file, also when retried', () => {
      const dir = join(tmp, 'write-fail');
      mkdirSync(join(dir, 'out.safetensors'), { recursive: true });
      for (let i = 0; i < 3; i++) {
        assert.throws(() => writeSafetensors(join(dir, 'out.safetensors'), { x: f32([2], Float32Array.of(1, 2)) }), /safetensors file .*out\.safetensors is a directory/);
      }
      assert.deepEqual(temps(dir), []);
      return 'clear error';
    });

    hostile(G, 'a write into a missing folder', () => oneLine(() => atomicWrite(join(tmp, 'no', 'such', 'dir', 'x.json'), '{}', 'report'), /report .*x\.json cannot be written: the folder .*dir does not exist/));

    hostile(G, 'a store shard that cannot be written names it and leaves no temp file', async () => {
      const store = join(tmp, 'store-write-fail');
      mkdirSync(join(store, 'shard-000000.safetensors'), { recursive: true });
      await oneLine(decomposeDataset(tinyModel(1), loadDataset(dataset), { storeDir: store, batchSize: 4 }), /store shard .*shard-000000\.safetensors is a directory/);
      assert.deepEqual(temps(store), []);
      return 'clear error';
    });

    hostile(G, 'a dataset folder that is a symbolic link loop', () => {
      const loop = join(tmp, 'loop-ds');
      symlinkSync('loop-ds', loop);
      return oneLine(() => loadDataset(loop), /dataset .*loop-ds is a symbolic link loop/);
    });

    hostile(G, 'a dataset list naming a link loop: the run goes on and says why', async () => {
      const list = join(tmp, 'list.txt');
      const loop = join(tmp, 'loop2.png');
      symlinkSync('loop2.png', loop);
      writeFileSync(list, `${image}\n${loop}\n`);
      const store = join(tmp, 'store-loop');
      const r = await decomposeDataset(tinyModel(1), loadDataset(list), { storeDir: store, batchSize: 2 });
      assert.equal(r.complete, true);
      assert.equal(r.failed.length, 1);
      assert.match(r.failed[0].error, /loop2\.png: cannot read file: it is a symbolic link loop/);
      assert.ok(existsSync(join(store, 'shard-000000.safetensors')));
      return 'handled';
    });
  });
}
