// The README's JavaScript examples run as a user would run them: each ```js block in its own
// Node process, in a folder holding photo.png and images/<class>/*.png (toy-world scenes), with
// 'cliplens' resolved to the built package (dist/). A `console.log(…); // X` line promises that
// X (up to a ':' or ' …' that starts an explanation) is printed.

import './helpers/env.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { generateScene, sceneSeed } from '../src/toyworld/index.ts';
import { REPO } from './helpers/fixtures.ts';

const blocks = [...readFileSync(join(REPO, 'README.md'), 'utf8').matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
const entry = pathToFileURL(join(REPO, 'dist', 'index.js')).href;

async function scenePng(path: string, seed: number): Promise<void> {
  const sc = generateScene(seed, { size: 64 });
  await sharp(Buffer.from(sc.image), { raw: { width: sc.size, height: sc.size, channels: 3 } }).png().toFile(path);
}

test('the README has JavaScript examples', () => assert.ok(blocks.length >= 3, `${blocks.length} js blocks`));

test('every README example runs and prints what its comments say', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cliplens-readme-'));
  await scenePng(join(dir, 'photo.png'), 7);
  for (const color of ['red', 'blue']) {
    mkdirSync(join(dir, 'images', color), { recursive: true });
    for (let i = 0; i < 3; i++) await scenePng(join(dir, 'images', color, `${i}.png`), sceneSeed(color.length, i));
  }
  for (const [i, code] of blocks.entries()) {
    const file = join(dir, `example-${i}.mjs`);
    writeFileSync(file, code.replaceAll(`from 'cliplens'`, `from '${entry}'`));
    const r = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8' });
    assert.equal(r.status, 0, `README example ${i + 1} failed:\n${code}\n${r.stderr}`);
    for (const m of code.matchAll(/console\.log\(.*\/\/ (.*)$/gm)) {
      const promised = m[1].split(/:| …/)[0].trim();
      assert.ok(r.stdout.includes(promised), `README example ${i + 1} should print '${promised}'; it printed:\n${r.stdout}`);
    }
  }
  rmSync(dir, { recursive: true, force: true });
});
